//! The `wasmhost serve --config wasmhost.toml` file: many apps in one
//! process, each with its routing, limits and what its guest may see.
//!
//! ```toml
//! [server]
//! addr = "127.0.0.1:8080"
//! access_log = '{peer} "{method} {path}" {status} {duration_ms}ms'   # or "fields", "off"
//!
//! [[app]]
//! name = "shop"
//! module = "shop:app"            # app.wasm | app.py | module:attr
//! dir = "flask-shop"             # where a Python app lives (default: next to this file)
//! interface = "wsgi"
//! hosts = ["shop.localhost"]
//! prefix = "/"                   # longest prefix wins; strip_prefix = true hides it
//! max_instances = 2
//! memory_limit = "128MiB"
//! env = { SHOP_NAME = "demo" }
//! allowed_outbound = ["https://api.example.com", "tcp://localhost:6379"]   # deny by default
//! key_value = ["default", "sessions"]              # buckets, in <data_dir>/shop/kv.sqlite3
//! databases = ["default"]                          # SQL, in <data_dir>/shop/sql/default.sqlite3
//! kv_max_keys = 10000
//!
//! [app.config]                   # wasi:config, read with wasmhost.config
//! MODE = "demo"
//! DB_PASSWORD = { from_env = "SHOP_DB_PASSWORD" }   # secrets: never shown
//! API_KEY = { from_file = "secrets/api-key" }
//! ```
//!
//! Unknown keys and bad values are errors naming the file, line and key.
//! Relative paths are relative to the config file's directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bytesize::ByteSize;
use serde::{Deserialize, Deserializer};
use wasmhost_spec::{
    AccessLogFormat, ConfigValueSource, DatabaseSpec, GuestEnv, Interface, Isolation, KeyValueSpec, LimitSettings,
    Limits, Mount, OutboundPolicy, ServerOptions, ServerSettings, DEFAULT_ADDR, DEFAULT_ADMIN_ADDR,
};

pub mod reload;

/// A parsed, checked config file.
#[derive(Debug)]
pub struct Config {
    /// The listener and process-wide settings.
    pub server: ServerConfig,
    /// The apps, in file order.
    pub apps: Vec<AppConfig>,
}

/// The `[server]` table.
#[derive(Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Address of the admin listener; `None` when disabled.
    pub admin_addr: Option<SocketAddr>,
    /// Host names the admin listener answers for besides loopback.
    pub admin_hosts: Vec<String>,
    /// The file holding the admin API's bearer token.
    pub admin_token_file: Option<PathBuf>,
    /// Where apps keep their embedded state, one directory per app.
    pub data_dir: PathBuf,
    /// Connection-level limits and timeouts.
    pub options: ServerOptions,
}

/// One `[[app]]`.
#[derive(Debug)]
pub struct AppConfig {
    /// Name in logs, metrics and the admin API; unique.
    pub name: String,
    /// What to run.
    pub source: AppSource,
    /// Which requests it serves.
    pub mount: Mount,
    /// Its limits.
    pub limits: Limits,
    /// Its guest's environment variables and directories.
    pub env: GuestEnv,
    /// Whether a `.wasm` module is reloaded when its file changes.
    pub watch: bool,
}

/// Where an app's component comes from.
#[derive(Debug, Clone)]
pub enum AppSource {
    /// A component file.
    Wasm(PathBuf),
    /// A Python app built with `wasmhost build`: `target` (`module:attr`)
    /// in `dir`.
    Python {
        /// The app directory.
        dir: PathBuf,
        /// `module` or `module:attr`, or a `.py` file name in `dir`.
        target: String,
        /// How it is served.
        interface: Interface,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    server: ServerTable,
    #[serde(default)]
    app: Vec<AppTable>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServerTable {
    addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    #[serde(default)]
    no_admin: bool,
    #[serde(default)]
    admin_hosts: Vec<String>,
    admin_token_file: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    max_connections: Option<usize>,
    #[serde(default, deserialize_with = "duration")]
    header_read_timeout: Option<humantime::Duration>,
    #[serde(default, deserialize_with = "size")]
    max_header_size: Option<ByteSize>,
    #[serde(default, deserialize_with = "duration")]
    drain_timeout: Option<humantime::Duration>,
    #[serde(default, deserialize_with = "access_log")]
    access_log: Option<AccessLogFormat>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppTable {
    name: String,
    module: String,
    dir: Option<PathBuf>,
    interface: Option<Interface>,
    #[serde(default)]
    hosts: Vec<String>,
    prefix: Option<String>,
    #[serde(default)]
    strip_prefix: bool,
    // The limits: the fields of `LimitSettings`, which turns them into `Limits`.
    isolation: Option<Isolation>,
    max_instances: Option<usize>,
    min_instances: Option<usize>,
    #[serde(default, deserialize_with = "duration")]
    idle_timeout: Option<humantime::Duration>,
    max_queue: Option<usize>,
    #[serde(default, deserialize_with = "duration")]
    queue_timeout: Option<humantime::Duration>,
    #[serde(default, deserialize_with = "duration")]
    request_timeout: Option<humantime::Duration>,
    #[serde(default, deserialize_with = "size")]
    memory_limit: Option<ByteSize>,
    #[serde(default, deserialize_with = "size")]
    recycle_memory: Option<ByteSize>,
    max_requests_per_instance: Option<u64>,
    #[serde(default, deserialize_with = "size")]
    max_body_size: Option<ByteSize>,
    #[serde(default, deserialize_with = "size")]
    guest_log_rate: Option<ByteSize>,
    max_outbound_connections: Option<usize>,
    max_outbound_connections_per_instance: Option<usize>,
    #[serde(default, deserialize_with = "size")]
    kv_max_key_size: Option<ByteSize>,
    #[serde(default, deserialize_with = "size")]
    kv_max_value_size: Option<ByteSize>,
    kv_max_keys: Option<u64>,
    #[serde(default, deserialize_with = "size")]
    sql_max_size: Option<ByteSize>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Bucket names.
    #[serde(default)]
    key_value: Vec<String>,
    /// SQL database names.
    #[serde(default)]
    databases: Vec<String>,
    /// `wasi:config` values: a string, `{ from_env = "VAR" }` or `{ from_file = "path" }`.
    #[serde(default)]
    config: BTreeMap<String, ConfigEntry>,
    /// Guest path → host directory.
    #[serde(default)]
    dirs: BTreeMap<String, PathBuf>,
    #[serde(default = "yes")]
    watch: bool,
    #[serde(default, deserialize_with = "outbound")]
    allowed_outbound: OutboundPolicy,
}

/// One `[app.config]` value as written: the value, or where a secret is.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a string, { from_env = \"VAR\" } or { from_file = \"path\" }")]
enum ConfigEntry {
    Value(String),
    Secret(SecretEntry),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretEntry {
    from_env: Option<String>,
    from_file: Option<PathBuf>,
}

impl ConfigEntry {
    fn source(self, key: &str, base: &Path) -> Result<ConfigValueSource> {
        Ok(match self {
            Self::Value(value) => ConfigValueSource::Value(value),
            Self::Secret(SecretEntry { from_env: Some(var), from_file: None }) => ConfigValueSource::FromEnv(var),
            Self::Secret(SecretEntry { from_env: None, from_file: Some(file) }) => {
                ConfigValueSource::FromFile(base.join(file))
            }
            Self::Secret(_) => bail!("`config.{key}` needs exactly one of `from_env` and `from_file`"),
        })
    }
}

fn yes() -> bool {
    true
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<humantime::Duration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse::<humantime::Duration>()
        .map(Some)
        .map_err(|err| serde::de::Error::custom(format!("{text:?} is not a duration like \"5s\" or \"250ms\": {err}")))
}

fn outbound<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OutboundPolicy, D::Error> {
    let entries = Vec::<String>::deserialize(deserializer)?;
    OutboundPolicy::new(&entries).map_err(|err| serde::de::Error::custom(format!("{err:#}")))
}

fn access_log<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<AccessLogFormat>, D::Error> {
    String::deserialize(deserializer)?.parse().map(Some).map_err(serde::de::Error::custom)
}

fn size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<ByteSize>, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse::<ByteSize>()
        .map(Some)
        .map_err(|err| serde::de::Error::custom(format!("{text:?} is not a size like \"128MiB\": {err}")))
}

impl Config {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let base = std::path::absolute(path)?.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &base).with_context(|| format!("invalid config {}", path.display()))
    }

    /// Parses config `text`, resolving relative paths against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self> {
        // toml's error says which line, column and key, and shows the line.
        let file: File = toml::from_str(text).map_err(|err| anyhow::anyhow!("{err}"))?;
        anyhow::ensure!(!file.app.is_empty(), "no apps: add at least one [[app]] table with `name` and `module`");
        let server = ServerConfig::from_table(file.server, base)?;
        let mut apps = Vec::new();
        for table in file.app {
            let name = table.name.clone();
            let app =
                AppConfig::from_table(table, base, &server.data_dir).with_context(|| format!("in [[app]] `{name}`"))?;
            if apps.iter().any(|other: &AppConfig| other.name == app.name) {
                bail!("two apps are named `{}`; names must be unique", app.name);
            }
            apps.push(app);
        }
        Ok(Self { server, apps })
    }
}

impl ServerConfig {
    fn from_table(table: ServerTable, base: &Path) -> Result<Self> {
        let settings = ServerSettings {
            max_connections: table.max_connections,
            header_read_timeout: table.header_read_timeout,
            max_header_size: table.max_header_size,
            drain_timeout: table.drain_timeout,
            access_log: table.access_log,
        };
        Ok(Self {
            addr: table.addr.unwrap_or(DEFAULT_ADDR),
            admin_addr: (!table.no_admin).then_some(table.admin_addr.unwrap_or(DEFAULT_ADMIN_ADDR)),
            admin_hosts: table.admin_hosts,
            admin_token_file: table.admin_token_file.map(|file| base.join(file)),
            data_dir: table.data_dir.map_or_else(wasmhost_spec::default_data_dir, |dir| base.join(dir)),
            options: settings.resolve().context("in [server]")?,
        })
    }
}

impl AppConfig {
    fn from_table(table: AppTable, base: &Path, data_dir: &Path) -> Result<Self> {
        let valid_name =
            !table.name.is_empty() && table.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        anyhow::ensure!(valid_name, "`name` must be letters, digits, `-`, `_` or `.`, got {:?}", table.name);
        let dir = base.join(table.dir.unwrap_or_default());
        let source = if table.module.ends_with(".wasm") {
            anyhow::ensure!(table.interface.is_none(), "`interface` applies to Python apps, not to {}", table.module);
            AppSource::Wasm(dir.join(&table.module))
        } else {
            let interface = table.interface.unwrap_or_default();
            AppSource::Python { dir, target: table.module.clone(), interface }
        };

        let prefix = table.prefix.unwrap_or_else(|| "/".to_owned());
        anyhow::ensure!(prefix.starts_with('/'), "`prefix` must start with `/`, got {prefix:?}");
        let mut hosts = Vec::new();
        for host in table.hosts {
            let lower = host.trim_end_matches('.').to_ascii_lowercase();
            let valid = !lower.is_empty() && lower.parse::<http::uri::Authority>().is_ok_and(|a| a.port().is_none());
            anyhow::ensure!(valid, "`hosts` entries are host names without a port, got {host:?}");
            hosts.push(lower);
        }

        let limits = LimitSettings {
            isolation: table.isolation,
            max_instances: table.max_instances,
            min_instances: table.min_instances,
            idle_timeout: table.idle_timeout,
            max_queue: table.max_queue,
            queue_timeout: table.queue_timeout,
            request_timeout: table.request_timeout,
            memory_limit: table.memory_limit,
            recycle_memory: table.recycle_memory,
            max_requests_per_instance: table.max_requests_per_instance,
            max_body_size: table.max_body_size,
            guest_log_rate: table.guest_log_rate,
            max_outbound_connections: table.max_outbound_connections,
            max_outbound_connections_per_instance: table.max_outbound_connections_per_instance,
            kv_max_key_size: table.kv_max_key_size,
            kv_max_value_size: table.kv_max_value_size,
            kv_max_keys: table.kv_max_keys,
            sql_max_size: table.sql_max_size,
        }
        .resolve()?;

        let mut dirs = Vec::new();
        for (guest, host) in table.dirs {
            let host = base.join(host);
            anyhow::ensure!(host.is_dir(), "`dirs`: {} is not a directory", host.display());
            anyhow::ensure!(guest.starts_with('/'), "`dirs` keys are absolute guest paths, got {guest:?}");
            dirs.push((host, guest));
        }
        let key_value = KeyValueSpec::new(&table.key_value, data_dir, &table.name).context("in `key_value`")?;
        let databases = DatabaseSpec::new(&table.databases, data_dir, &table.name).context("in `databases`")?;
        let mut config = Vec::new();
        for (key, entry) in table.config {
            config.push(entry.source(&key, base)?.resolve(&key)?);
        }
        let env = GuestEnv {
            vars: table.env.into_iter().collect(),
            dirs,
            outbound: Arc::new(table.allowed_outbound),
            key_value,
            databases,
            config,
        };
        Ok(Self {
            name: table.name,
            source,
            mount: Mount { hosts, prefix, strip_prefix: table.strip_prefix },
            limits,
            env,
            watch: table.watch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("/srv"))
    }

    #[test]
    fn a_full_config_parses() {
        let config = parse(
            r#"
            [server]
            addr = "127.0.0.1:8000"
            no_admin = true
            drain_timeout = "5s"
            data_dir = "state"

            [[app]]
            name = "shop"
            module = "shop:app"
            dir = "flask-shop"
            interface = "wsgi"
            hosts = ["Shop.Example"]
            max_instances = 3
            memory_limit = "64MiB"
            request_timeout = "2s"
            max_outbound_connections = 8
            max_outbound_connections_per_instance = 2
            env = { MODE = "demo" }
            key_value = ["default", "sessions"]
            kv_max_keys = 50
            databases = ["default"]
            sql_max_size = "10MiB"

            [app.config]
            MODE = "demo"
            TOKEN = { from_env = "PATH" }

            [[app]]
            name = "api"
            module = "api.wasm"
            prefix = "/api"
            isolation = "fresh"
            "#,
        )
        .unwrap();
        assert_eq!(config.server.addr.port(), 8000);
        assert!(config.server.admin_addr.is_none());
        assert_eq!(config.server.options.drain_timeout, Duration::from_secs(5));
        let shop = &config.apps[0];
        assert_eq!(shop.mount.hosts, ["shop.example"]);
        assert_eq!(shop.limits.max_instances, 3);
        assert_eq!(shop.limits.memory_limit, 64 << 20);
        assert_eq!((shop.limits.max_outbound_connections, shop.limits.max_outbound_connections_per_instance), (8, 2));
        assert_eq!(shop.env.vars, [("MODE".to_owned(), "demo".to_owned())]);
        assert_eq!(shop.env.key_value.dir, Path::new("/srv/state/shop"));
        assert_eq!(shop.env.key_value.buckets.len(), 2);
        assert_eq!(shop.limits.kv_max_keys, 50);
        assert_eq!(shop.env.databases.file("default"), Some(PathBuf::from("/srv/state/shop/sql/default.sqlite3")));
        assert_eq!(shop.limits.sql_max_size, 10 << 20);
        let values: Vec<_> = shop.env.config.iter().map(|v| (v.key.as_str(), v.secret)).collect();
        assert_eq!(values, [("MODE", false), ("TOKEN", true)]);
        assert_eq!(shop.env.config[1].value, std::env::var("PATH").unwrap());
        assert!(
            matches!(&shop.source, AppSource::Python { dir, interface: Interface::Wsgi, .. } if dir == Path::new("/srv/flask-shop"))
        );
        let api = &config.apps[1];
        assert!(matches!(&api.source, AppSource::Wasm(path) if path == Path::new("/srv/api.wasm")));
        assert_eq!(api.mount.prefix, "/api");
        assert_eq!(api.limits.isolation, Isolation::Fresh);
        assert_eq!(api.limits.max_outbound_connections, Limits::default().max_outbound_connections);
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let err = parse("[[app]]\nname = \"a\"\nmodule = \"a.wasm\"\nmax_instancs = 2\n").unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("line 4") && text.contains("max_instancs"), "{text}");
        let err = parse("[[app]]\nname = \"a\"\nmodule = \"a.wasm\"\nmemory_limit = \"lots\"\n").unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("line 4") && text.contains("size"), "{text}");
        let err = parse("[[app]]\nname = \"a\"\nmodule = \"a.wasm\"\nrequest_timeout = \"soon\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("line 4"), "{err:#}");
    }

    #[test]
    fn bad_values_are_refused() {
        let app = |extra: &str| parse(&format!("[[app]]\nname = \"a\"\nmodule = \"a.py\"\n{extra}\n"));
        assert!(app("prefix = \"api\"").is_err());
        assert!(app("hosts = [\"a.example:80\"]").is_err());
        assert!(app("isolation = \"shared\"").is_err());
        assert!(parse("").is_err(), "no apps");
        assert!(app("key_value = [\"../other\"]").is_err());
        assert!(app("[app.config]\nK = { from_env = \"A\", from_file = \"b\" }").is_err());
        assert!(app("[app.config]\nK = { from_envv = \"A\" }").is_err());
        let unset = app("[app.config]\nK = { from_env = \"WASMHOST_TEST_NOT_SET\" }").unwrap_err();
        assert!(format!("{unset:#}").contains("WASMHOST_TEST_NOT_SET"), "{unset:#}");
        let twice = "[[app]]\nname = \"a\"\nmodule = \"a.py\"\n[[app]]\nname = \"a\"\nmodule = \"b.py\"\n";
        assert!(format!("{:#}", parse(twice).unwrap_err()).contains("unique"));
    }
}
