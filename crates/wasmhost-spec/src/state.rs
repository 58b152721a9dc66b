//! What an app keeps between requests: its key-value buckets
//! (`wasi:keyvalue`) and SQL databases (`wasmhost:platform/sql`), where
//! their data lives, and its config values and secrets (`wasi:config`).

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context as _, Result};

/// The directory under which each app's embedded state lives, one
/// subdirectory per app name: `$WASMHOST_DATA_DIR`, else
/// `$XDG_DATA_HOME/wasmhost`, else `~/.local/share/wasmhost`.
pub fn default_data_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|value| !value.is_empty()).map(PathBuf::from);
    var("WASMHOST_DATA_DIR")
        .or_else(|| var("XDG_DATA_HOME").map(|dir| dir.join("wasmhost")))
        .or_else(|| var("HOME").map(|home| home.join(".local/share/wasmhost")))
        .unwrap_or_else(|| PathBuf::from(".wasmhost-data"))
}

/// The key-value buckets an app may open, and where the embedded ones keep
/// their data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyValueSpec {
    /// The declared buckets, in declaration order; opening any other name
    /// is an error (`no-such-store`).
    pub buckets: Vec<BucketSpec>,
    /// The app's own data directory, `<data dir>/<app name>`, holding
    /// `kv.sqlite3` when a bucket is embedded.
    pub dir: PathBuf,
}

/// One declared bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketSpec {
    /// The name the guest opens it by.
    pub name: String,
    /// Where its data lives.
    pub backend: Backend,
}

/// Where a bucket's data lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Backend {
    /// A table in the app's own SQLite file (`<app data dir>/kv.sqlite3`).
    Embedded,
    /// A Redis server (`redis://[user:password@]host[:port][/db]`), under
    /// keys prefixed `wasmhost:{app}:{bucket}:`.
    Redis(String),
}

impl Backend {
    /// The backend as it may be shown: a Redis URL without its password.
    pub fn redacted(&self) -> String {
        match self {
            Self::Embedded => "embedded".to_owned(),
            Self::Redis(url) => {
                match url.split_once("://").and_then(|(scheme, rest)| Some((scheme, rest.split_once('@')?))) {
                    Some((scheme, (_, host))) => format!("{scheme}://***@{host}"),
                    None => url.clone(),
                }
            }
        }
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl KeyValueSpec {
    /// The buckets `declared` (`NAME`, each once) of app `app`, whose data
    /// lives under `data_dir`.
    pub fn new(declared: &[String], data_dir: &Path, app: &str) -> Result<Self> {
        let mut buckets: Vec<BucketSpec> = Vec::new();
        for entry in declared {
            let (name, backend) = match entry.split_once('=') {
                None => (entry.as_str(), Backend::Embedded),
                Some((name, url)) if url.starts_with("redis://") => (name, Backend::Redis(url.to_owned())),
                Some((name, url)) => bail!(
                    "bucket `{name}`: the backend must be a redis://HOST[:PORT][/DB] URL (rediss:// with TLS is \
                     not supported yet), got {:?}",
                    Backend::Redis(url.to_owned()).redacted()
                ),
            };
            check_name("bucket", name)?;
            ensure!(buckets.iter().all(|bucket| bucket.name != name), "bucket `{name}` is declared twice");
            buckets.push(BucketSpec { name: name.to_owned(), backend });
        }
        // The app's name is also its Redis key prefix: check it either way.
        let dir = if buckets.is_empty() { PathBuf::new() } else { app_data_dir(data_dir, app)? };
        Ok(Self { buckets, dir })
    }

    /// The declared bucket called `name`.
    pub fn bucket(&self, name: &str) -> Option<&BucketSpec> {
        self.buckets.iter().find(|bucket| bucket.name == name)
    }
}

/// A bucket or database name: 1 to 64 letters, digits, `-`, `_` or `.`,
/// not starting with `.` (a database's is part of its file name).
fn check_name(kind: &str, name: &str) -> Result<()> {
    let valid = (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    ensure!(valid, "{kind} names are 1 to 64 letters, digits, `-`, `_` or `.` (not starting with `.`), got {name:?}");
    Ok(())
}

/// The SQL databases an app may open, each an embedded SQLite file in its
/// data directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DatabaseSpec {
    /// The declared databases, in declaration order; opening any other
    /// name is an error (`no-such-database`).
    pub names: Vec<String>,
    /// Where their files are: `<data dir>/<app name>/sql`, one
    /// `<name>.sqlite3` per database, and the app's file databases (see
    /// [`DatabaseSpec::file_of_path`]) in `files/`. Empty when the app's
    /// name cannot have a data directory.
    pub dir: PathBuf,
}

impl DatabaseSpec {
    /// The databases `declared` (`NAME`, each once) of app `app`, whose
    /// files live under `data_dir`.
    pub fn new(declared: &[String], data_dir: &Path, app: &str) -> Result<Self> {
        let mut names: Vec<String> = Vec::new();
        for name in declared {
            ensure!(
                !name.contains('='),
                "database `{}`: only embedded SQLite databases are supported so far (no server URL)",
                name.split('=').next().unwrap_or_default()
            );
            check_name("database", name)?;
            ensure!(!names.contains(name), "database `{name}` is declared twice");
            names.push(name.clone());
        }
        let dir = match app_data_dir(data_dir, app) {
            Ok(dir) => dir.join("sql"),
            // Without declared databases, an app whose name cannot be a
            // directory just has no file databases.
            Err(_) if names.is_empty() => PathBuf::new(),
            Err(err) => return Err(err),
        };
        Ok(Self { names, dir })
    }

    /// The file of the declared database `name`, if it is declared.
    pub fn file(&self, name: &str) -> Option<PathBuf> {
        self.names.iter().any(|declared| declared == name).then(|| self.dir.join(format!("{name}.sqlite3")))
    }

    /// The file that keeps the app's file database `path`: a SQLite file
    /// the guest opens by its path relative to the app's directory (what
    /// `sqlite3.connect("instance/app.sqlite")` names), 1 to
    /// [`MAX_FILE_DATABASE_DEPTH`] components of 1 to 64 letters, digits,
    /// `-`, `_` or `.` (none starting with `.`). It lives in the app's own
    /// `files/` directory, its `/` written as `~`, so no path reaches
    /// beyond it. The error says what is wrong with `path`.
    pub fn file_of_path(&self, path: &str) -> Result<PathBuf, String> {
        if self.dir.as_os_str().is_empty() {
            return Err("this app has no data directory (its name cannot be a directory name)".to_owned());
        }
        let components: Vec<&str> = path.split('/').collect();
        let valid = components.len() <= MAX_FILE_DATABASE_DEPTH
            && components.iter().all(|part| check_name("path component", part).is_ok());
        if !valid {
            return Err(format!(
                "{path:?} cannot be a database file: use a path in the app's directory of at most \
                 {MAX_FILE_DATABASE_DEPTH} components, each 1 to 64 letters, digits, `-`, `_` or `.` (not starting with `.`)"
            ));
        }
        Ok(self.dir.join("files").join(components.join("~")))
    }
}

/// Most directory levels in a file database's path ([`DatabaseSpec::file_of_path`]).
pub const MAX_FILE_DATABASE_DEPTH: usize = 4;

/// The data directory of app `app` under `data_dir`. App names are one
/// path component, so one app's directory is never inside another's.
pub fn app_data_dir(data_dir: &Path, app: &str) -> Result<PathBuf> {
    let valid =
        !app.is_empty() && !app.starts_with('.') && app.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    ensure!(valid, "app `{app}` cannot have a data directory: its name must not start with `.` and must be letters, digits, `-`, `_` or `.`");
    let root = std::path::absolute(data_dir).with_context(|| format!("cannot resolve {}", data_dir.display()))?;
    Ok(root.join(app))
}

/// One value an app reads through `wasi:config` (`wasmhost.config`).
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigValue {
    /// The key the guest asks for.
    pub key: String,
    /// The value.
    pub value: String,
    /// Whether it is a secret (taken from the host's environment or a
    /// file): its value is never shown in `/apps`, logs or errors.
    pub secret: bool,
}

impl std::fmt::Debug for ConfigValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value: &dyn std::fmt::Debug = if self.secret { &"<secret>" } else { &self.value };
        f.debug_struct("ConfigValue").field("key", &self.key).field("value", value).finish()
    }
}

/// Where a config value comes from, as written in a config file or on the
/// command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigValueSource {
    /// The value itself.
    Value(String),
    /// A secret: the host's environment variable of this name.
    FromEnv(String),
    /// A secret: the contents of this file, without a final newline.
    FromFile(PathBuf),
}

impl ConfigValueSource {
    /// The value for `key`, read now.
    pub fn resolve(&self, key: &str) -> Result<ConfigValue> {
        check_config_key(key)?;
        let (value, secret) = match self {
            Self::Value(value) => (value.clone(), false),
            Self::FromEnv(var) => {
                let value = std::env::var(var).with_context(|| {
                    format!("config `{key}` is taken from the environment variable {var}, which is not set")
                })?;
                (value, true)
            }
            Self::FromFile(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("config `{key}` is taken from {}, which cannot be read", path.display())
                })?;
                (text.strip_suffix('\n').unwrap_or(&text).to_owned(), true)
            }
        };
        Ok(ConfigValue { key: key.to_owned(), value, secret })
    }
}

/// A config key: 1 to 128 letters, digits, `_`, `-` or `.`.
fn check_config_key(key: &str) -> Result<()> {
    let valid = (1..=128).contains(&key.len()) && key.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    ensure!(valid, "config keys are 1 to 128 letters, digits, `-`, `_` or `.`, got {key:?}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn databases_are_checked_and_live_in_the_apps_own_directory() {
        let spec =
            DatabaseSpec::new(&["default".to_owned(), "audit".to_owned()], Path::new("/srv/data"), "shop").unwrap();
        assert_eq!(spec.file("audit"), Some(PathBuf::from("/srv/data/shop/sql/audit.sqlite3")));
        assert_eq!(spec.file("other"), None);
        for bad in ["../b", "a/b", ".hidden", "", "x=postgres://db/x"] {
            assert!(DatabaseSpec::new(&[bad.to_owned()], Path::new("/d"), "shop").is_err(), "{bad}");
        }
        assert!(DatabaseSpec::new(&["a".to_owned(), "a".to_owned()], Path::new("/d"), "shop").is_err());
        assert_eq!(DatabaseSpec::new(&[], Path::new("/d"), ".x").unwrap(), DatabaseSpec::default());
    }

    #[test]
    fn file_databases_stay_in_the_apps_files_directory() {
        let spec = DatabaseSpec::new(&[], Path::new("/srv/data"), "blog").unwrap();
        assert_eq!(spec.file_of_path("db.sqlite3"), Ok(PathBuf::from("/srv/data/blog/sql/files/db.sqlite3")));
        assert_eq!(
            spec.file_of_path("instance/flaskr.sqlite"),
            Ok(PathBuf::from("/srv/data/blog/sql/files/instance~flaskr.sqlite"))
        );
        for bad in ["", "/abs", "../up", "a/../b", "a//b", ".hidden", "a/.git/x", "a~b", "a/b/c/d/e", "a b"] {
            assert!(spec.file_of_path(bad).is_err(), "{bad}");
        }
        assert!(DatabaseSpec::new(&[], Path::new("/d"), ".x").unwrap().file_of_path("db.sqlite3").is_err());
    }

    #[test]
    fn buckets_are_checked_and_live_in_the_apps_own_directory() {
        let declared = ["default".to_owned(), "sessions".to_owned()];
        let spec = KeyValueSpec::new(&declared, Path::new("/data"), "shop").unwrap();
        assert_eq!(spec.dir, Path::new("/data/shop"));
        assert_eq!(spec.bucket("sessions").map(|b| &b.backend), Some(&Backend::Embedded));
        assert!(spec.bucket("other").is_none());
        for bad in ["", "../x", "a/b", ".hidden", &"x".repeat(65)] {
            let err = KeyValueSpec::new(&[bad.to_owned()], Path::new("/data"), "shop").unwrap_err();
            assert!(err.to_string().contains("bucket names"), "{bad:?}: {err}");
        }
        let twice = KeyValueSpec::new(&["a".into(), "a".into()], Path::new("/data"), "shop").unwrap_err();
        assert!(twice.to_string().contains("declared twice"), "{twice}");
        for app in ["..", ".", "a/b", ""] {
            assert!(KeyValueSpec::new(&declared, Path::new("/data"), app).is_err(), "{app:?}");
        }
        assert!(KeyValueSpec::new(&[], Path::new("/data"), "..").is_ok(), "no bucket, no directory");
        let redis = KeyValueSpec::new(&["c=redis://u:pw@db:6379/1".into()], Path::new("/d"), "shop").unwrap();
        assert_eq!(redis.buckets[0].backend, Backend::Redis("redis://u:pw@db:6379/1".into()));
        assert!(!format!("{redis:?}").contains("pw"), "{redis:?}");
        let tls = KeyValueSpec::new(&["c=rediss://u:pw@db".into()], Path::new("/d"), "shop").unwrap_err();
        assert!(tls.to_string().contains("not supported yet") && !tls.to_string().contains("pw"), "{tls}");
    }

    #[test]
    fn secrets_come_from_the_environment_or_a_file_and_never_show() {
        let dir = std::env::temp_dir().join(format!("wasmhost-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "hunter2\n").unwrap();
        let value = ConfigValueSource::FromFile(file).resolve("DB_PASSWORD").unwrap();
        assert_eq!((value.value.as_str(), value.secret), ("hunter2", true));
        assert!(!format!("{value:?}").contains("hunter2"));
        let plain = ConfigValueSource::Value("x".into()).resolve("MODE").unwrap();
        assert!(!plain.secret && format!("{plain:?}").contains("\"x\""));
        let unset = ConfigValueSource::FromEnv("WASMHOST_SPEC_TEST_UNSET".into()).resolve("K").unwrap_err();
        assert!(unset.to_string().contains("WASMHOST_SPEC_TEST_UNSET"), "{unset}");
        assert!(ConfigValueSource::Value("x".into()).resolve("no spaces").is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
