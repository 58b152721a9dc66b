//! `wasmhost`: serve `wasi:http/proxy` WebAssembly components (Python first)
//! with instance pools, hard limits and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
mod tenants;

use wasmhost_build::{Build, BuildRequest};
use wasmhost_config::{AppSource, Config, ServerConfig};
use wasmhost_runtime::engine::build_engine;
use wasmhost_runtime::metrics::METRICS;
use wasmhost_runtime::{CompileCache, EngineOptions, EpochTicker, Runtime};
use wasmhost_server::{reload_all, serve_admin, AdminAccess, AdminState, ConfigReload, Router};
use wasmhost_spec::{
    AppSpec, ConfigValueSource, DatabaseSpec, GuestEnv, Interface, KeyValueSpec, LimitSettings, Mount, OutboundPolicy,
    ServerOptions, ServerSettings, DEFAULT_ADDR, DEFAULT_ADMIN_ADDR,
};

use crate::tenants::{AppPlan, Capacity, Mode, Tenants};

#[derive(Parser)]
#[command(name = "wasmhost", version, about = "Serve wasi:http WebAssembly components")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve an app over HTTP: a wasi:http/proxy component (.wasm), or a
    /// Python app (app.py, module:attr), built first.
    Serve(ServeArgs),
    /// Serve a Python app from its sources; edits take effect on save.
    Dev(DevArgs),
    /// Build a Python app into a component (cached by a digest of all inputs).
    Build(BuildArgs),
    /// Run Python in an app's sandbox instead of serving it, with the app's
    /// databases, buckets, config, environment and limits, on this terminal:
    /// `wasmhost run APP -- -m django migrate`, `-- manage.py shell`,
    /// `-- -c CODE`. Exits with the command's status.
    Run(RunArgs),
}

/// Which Python app to build, shared by `serve`, `dev` and `build`.
#[derive(clap::Args)]
struct PythonArgs {
    /// How the app is served: `auto` finds a `wasmhost.App` named by the
    /// target (or a module's own `IncomingHandler`); `wsgi` serves a WSGI
    /// callable such as a Flask app.
    #[arg(long, value_enum, default_value_t = Interface::Auto)]
    interface: Interface,
}

#[derive(clap::Args)]
struct BuildArgs {
    /// The app: a Python file (`app.py`) or `module:attr` (`shop:app`)
    /// importable from the current directory.
    app: String,
    /// Also copy the component here.
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    python: PythonArgs,
    /// Directory of builds and compiled components [default: ~/.cache/wasmhost].
    #[arg(long, env = "WASMHOST_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The app: a component (`app.wasm`, built for wasi:http/proxy or
    /// wasmhost's `app` world), a Python file (`app.py`), or `module:attr`
    /// (`shop:app`) importable from the current directory.
    #[arg(required_unless_present = "config", conflicts_with = "config")]
    app: Option<String>,
    /// Serve the apps a config file lists (routing, per-app limits); see
    /// README.md. `--addr`, `--admin-addr`, `--no-admin` and the cache
    /// flags given here override the file's.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Do not reload a component (or, with --config, the config file)
    /// when its file changes; SIGHUP and POST /admin/reload still do.
    #[arg(long)]
    no_watch: bool,
    #[command(flatten)]
    python: PythonArgs,
    #[command(flatten)]
    options: ServeOptions,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The app: a Python file (`app.py`) or `module:attr` (`mysite.wsgi:application`)
    /// importable from the current directory, built as `serve` builds it.
    #[arg(required_unless_present = "config", conflicts_with = "config")]
    app: Option<String>,
    /// Take the app, and all its settings, from this config file (with --app).
    #[arg(long, value_name = "FILE", requires = "app_name")]
    config: Option<PathBuf>,
    /// The app of --config to run in.
    #[arg(long = "app", value_name = "NAME", requires = "config")]
    app_name: Option<String>,
    #[command(flatten)]
    python: PythonArgs,
    #[command(flatten)]
    options: AppOptions,
    /// What to run, as for `python`: `-m MODULE ARGS...`, `-c CODE ARGS...`
    /// or `SCRIPT ARGS...` (relative to the app's directory). After `--`.
    #[arg(last = true, required = true, value_name = "ARGS")]
    args: Vec<String>,
}

#[derive(clap::Args)]
struct DevArgs {
    /// The app: a Python file (`app.py`) or `module:attr` (`shop:app`)
    /// importable from the current directory; that directory is the app's
    /// source tree, watched along with its `requirements.txt`.
    app: String,
    #[command(flatten)]
    python: PythonArgs,
    #[command(flatten)]
    options: ServeOptions,
}

/// Options shared by `serve` and `dev`: the listeners, the server and the app.
#[derive(clap::Args)]
struct ServeOptions {
    /// Address to listen on.
    #[arg(long, default_value_t = DEFAULT_ADDR)]
    addr: SocketAddr,
    /// Address of the admin listener (/healthz, /readyz, /apps, POST /admin/reload).
    #[arg(long, default_value_t = DEFAULT_ADMIN_ADDR)]
    admin_addr: SocketAddr,
    /// Do not start the admin listener.
    #[arg(long)]
    no_admin: bool,
    /// A file whose first line is the bearer token the admin API requires
    /// (`Authorization: Bearer TOKEN`) on every route but /healthz and /readyz.
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// A host name the admin API answers for, besides loopback names and the
    /// address a client connected to. Repeatable.
    #[arg(long = "admin-host", value_name = "NAME")]
    admin_hosts: Vec<String>,
    #[command(flatten)]
    app: AppOptions,
    #[command(flatten)]
    server: ServerSettings,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

/// What an app run from the command line is given (`serve`, `dev`, `run`).
#[derive(clap::Args)]
struct AppOptions {
    /// Let the guest read a host directory: `HOST_DIR::GUEST_DIR` (or just
    /// `DIR`, seen under the same path). Read-only. Repeatable.
    #[arg(long = "dir", value_name = "HOST::GUEST", value_parser = parse_dir)]
    dirs: Vec<(PathBuf, String)>,
    /// Set an environment variable for the guest: `NAME=VALUE`. Repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env)]
    envs: Vec<(String, String)>,
    /// Let the guest send HTTP requests to `[http://|https://]HOST[:PORT]`,
    /// or open TCP connections to `tcp://HOST[:PORT]` (HOST: a name,
    /// `*.domain`, `*`, an IP or a network). Private and loopback addresses
    /// need an entry naming them. Repeatable; by default nothing is allowed.
    #[arg(long = "allow-outbound", value_name = "URL")]
    allowed_outbound: Vec<String>,
    /// Declare a key-value bucket the app may open (`wasmhost.kv.open(NAME)`,
    /// `wasi:keyvalue`), kept in DATA_DIR/APP/kv.sqlite3. Repeatable; by
    /// default the app has none.
    #[arg(long = "key-value", value_name = "NAME")]
    key_value: Vec<String>,
    /// Declare a SQL database the app may open (`wasmhost.db.connect(NAME)`,
    /// `wasmhost:platform/sql`), kept in DATA_DIR/APP/sql/NAME.sqlite3.
    /// Repeatable; by default the app has none.
    #[arg(long = "database", value_name = "NAME")]
    databases: Vec<String>,
    /// Where apps keep their key-value and SQL data, one directory per app
    /// [default: $WASMHOST_DATA_DIR, else $XDG_DATA_HOME/wasmhost, else
    /// ~/.local/share/wasmhost]. With --config, `data_dir` in [server].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Give the app a config value (`wasmhost.config`, `wasi:config`):
    /// `KEY=VALUE`. Repeatable.
    #[arg(long = "config-value", value_name = "KEY=VALUE", value_parser = parse_env)]
    config_values: Vec<(String, String)>,
    /// Give the app a secret taken from this process's environment
    /// variable VAR, read as config KEY and never shown: `KEY=VAR`. Repeatable.
    #[arg(long = "config-secret-env", value_name = "KEY=VAR", value_parser = parse_env)]
    config_secrets: Vec<(String, String)>,
    #[command(flatten)]
    limits: LimitSettings,
    /// Directory of compiled components [default: ~/.cache/wasmhost].
    #[arg(long, env = "WASMHOST_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile from scratch and store nothing.
    #[arg(long)]
    no_cache: bool,
}

impl AppOptions {
    /// The spec of the app named `name` running `module` with these options.
    fn spec(self, name: &str, module: PathBuf) -> Result<AppSpec> {
        let limits = self.limits.resolve()?;
        let outbound = OutboundPolicy::new(&self.allowed_outbound).context("in --allow-outbound")?;
        let data_dir = self.data_dir.unwrap_or_else(wasmhost_spec::default_data_dir);
        let key_value = KeyValueSpec::new(&self.key_value, &data_dir, name).context("in --key-value")?;
        let databases = DatabaseSpec::new(&self.databases, &data_dir, name).context("in --database")?;
        let values = self.config_values.into_iter().map(|(key, value)| (key, ConfigValueSource::Value(value)));
        let secrets = self.config_secrets.into_iter().map(|(key, var)| (key, ConfigValueSource::FromEnv(var)));
        let config = values
            .chain(secrets)
            .map(|(key, source)| source.resolve(&key))
            .collect::<Result<Vec<_>>>()
            .context("in --config-value or --config-secret-env")?;
        let env =
            GuestEnv { vars: self.envs, dirs: self.dirs, outbound: Arc::new(outbound), key_value, databases, config };
        Ok(AppSpec { name: name.to_owned(), module, limits, env })
    }

    /// The build and compile cache directory.
    fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(CompileCache::default_dir)
    }
}

/// Runs the command; on failure prints the error and its causes (no
/// backtrace: these errors are for users) and exits with status 1.
fn main() -> std::process::ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    // The serve flags given on the command line, as opposed to defaults.
    let explicit: Vec<&str> = matches
        .subcommand_matches("serve")
        .map(|serve| {
            ["addr", "admin_addr", "access_log", "admin_token_file", "admin_hosts", "data_dir"]
                .into_iter()
                .filter(|id| serve.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
                .collect()
        })
        .unwrap_or_default();
    match execute(cli, &explicit) {
        Ok(status) => std::process::ExitCode::from(status),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the command; the process's exit status.
fn execute(cli: Cli, explicit: &[&str]) -> Result<u8> {
    let (log_format, log_level) = match &cli.command {
        Command::Serve(args) => (args.options.log_format, "info"),
        Command::Dev(args) => (args.options.log_format, "info"),
        Command::Build(_) => (LogFormat::Text, "info"),
        // The terminal is the command's: only warnings and errors of wasmhost's own.
        Command::Run(_) => (LogFormat::Text, "warn"),
    };
    let _log = init_logging(log_format, log_level);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args, explicit).await.map(|()| 0),
            Command::Dev(args) => dev(args).await.map(|()| 0),
            Command::Build(args) => build(args).await.map(|()| 0),
            Command::Run(args) => run_in_sandbox(args).await,
        }
    })
}

/// Logs to stderr through a writer thread, so request threads never block
/// on the log's pipe or terminal. The returned guard flushes it on drop.
/// `level` is the filter unless `$WASMHOST_LOG` sets one.
fn init_logging(format: LogFormat, level: &str) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WASMHOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let (writer, guard) =
        tracing_appender::non_blocking::NonBlockingBuilder::default().lossy(false).finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    guard
}

/// `wasmhost build APP`: prints the component's path.
async fn build(args: BuildArgs) -> Result<()> {
    let cache_dir = args.cache_dir.unwrap_or_else(CompileCache::default_dir);
    let built = build_python(&args.app, args.python.interface, &current_dir()?, cache_dir).await?;
    let component = match args.output {
        Some(output) => {
            std::fs::copy(&built.component, &output).with_context(|| format!("cannot write {}", output.display()))?;
            output
        }
        None => built.component,
    };
    println!("{}", component.display());
    Ok(())
}

/// Builds a Python app (`app.py` or `module:attr`, relative to `cwd`) off
/// the async runtime.
async fn build_python(app: &str, interface: Interface, cwd: &std::path::Path, cache_dir: PathBuf) -> Result<Build> {
    let (app_dir, target) = wasmhost_build::parse_target(app, cwd)?;
    let request = BuildRequest { app_dir, target, interface, cache_dir };
    let started = std::time::Instant::now();
    let built = tokio::task::spawn_blocking(move || wasmhost_build::build(&request))
        .await
        .context("the build thread panicked")??;
    tracing::info!(
        component = %built.component.display(),
        cached = built.cached,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "app built"
    );
    Ok(built)
}

/// `wasmhost serve APP` (a component as it is, a Python app built first)
/// or `wasmhost serve --config FILE`.
async fn serve(args: ServeArgs, explicit: &[&str]) -> Result<()> {
    let Some(app) = args.app else {
        let config = args.config.context("pass an app or --config FILE")?;
        let options = args.options;
        anyhow::ensure!(
            !explicit.contains(&"data_dir"),
            "with --config, the data directory is `data_dir` in the file's [server] table"
        );
        let mut plan =
            Plan::from_config(&config, options.app.cache_dir.clone(), options.app.no_cache, !args.no_watch).await?;
        // Listener flags given on the command line win over the file.
        if explicit.contains(&"addr") {
            plan.addr = options.addr;
        }
        if explicit.contains(&"admin_addr") {
            plan.admin_addr = Some(options.admin_addr);
        }
        if options.no_admin {
            plan.admin_addr = None;
        }
        if explicit.contains(&"access_log") {
            plan.server.access_log = options.server.resolve()?.access_log;
        }
        if explicit.contains(&"admin_token_file") || explicit.contains(&"admin_hosts") {
            plan.admin_access = AdminAccess::new(options.admin_hosts, options.admin_token_file.as_deref())?;
        }
        return run(plan).await;
    };
    let path = PathBuf::from(&app);
    if path.extension().is_some_and(|ext| ext == "wasm") {
        let name = path.file_stem().and_then(|stem| stem.to_str()).unwrap_or("app").to_owned();
        let mode = if args.no_watch { Mode::Serve } else { Mode::ServeWatched };
        return run(Plan::single(&name, path, args.options, mode)?).await;
    }
    let built = build_python(&app, args.python.interface, &current_dir()?, args.options.app.cache_dir()).await?;
    let mut options = args.options;
    options.app.dirs.extend(built.guest_dirs());
    run(Plan::single(&app_name(&app), built.component, options, Mode::Serve)?).await
}

/// `wasmhost run APP -- ARGS...`: builds the app as `serve` does and runs
/// ARGS in its sandbox; the command's exit status.
async fn run_in_sandbox(args: RunArgs) -> Result<u8> {
    let cache_dir = args.options.cache_dir();
    let no_cache = args.options.no_cache;
    let spec = match (args.app, args.config, args.app_name) {
        (Some(app), _, _) => {
            let built = build_python(&app, args.python.interface, &current_dir()?, cache_dir.clone()).await?;
            let mut options = args.options;
            options.dirs.extend(built.guest_dirs());
            options.spec(&app_name(&app), built.component)?
        }
        (None, Some(config), Some(name)) => {
            let mut apps = Config::load(&config)?.apps;
            apps.retain(|app| app.name == name);
            anyhow::ensure!(!apps.is_empty(), "{} has no app named {name:?}", config.display());
            let mut planned = plan_apps(apps, &cache_dir).await?;
            planned.pop().context("the config's app was not planned")?.spec
        }
        _ => anyhow::bail!("pass an app, or --config FILE --app NAME"),
    };
    let engine = build_engine(&EngineOptions {
        max_instances: 1,
        max_memory_bytes: spec.limits.memory_limit,
        keep_resident_bytes: 0,
        cache_dir: (!no_cache).then(|| cache_dir.clone()),
    })?;
    let runtime = Runtime::new(engine, compile_cache(no_cache, Some(cache_dir)))?;
    wasmhost_runtime::run_command(&runtime, &spec, &args.args).await
}

fn current_dir() -> Result<PathBuf> {
    std::env::current_dir().context("cannot read the current directory")
}

/// An app's name for logs and metrics: the module of `app.py` or
/// `module:attr`.
fn app_name(app: &str) -> String {
    let module = app.split(':').next().unwrap_or(app);
    let path = std::path::Path::new(module);
    match path.extension() {
        Some(ext) if ext == "py" => path.file_stem().and_then(|stem| stem.to_str()).unwrap_or("app").to_owned(),
        _ => module.to_owned(),
    }
}

/// `wasmhost dev APP`: builds (once) the dev loader and serves the app's
/// sources through it.
async fn dev(args: DevArgs) -> Result<()> {
    let (src_dir, target) = wasmhost_build::parse_target(&args.app, &current_dir()?)?;
    let cache_dir = args.options.app.cache_dir();
    let loader = {
        let cache_dir = cache_dir.clone();
        tokio::task::spawn_blocking(move || wasmhost_build::build_dev_loader(&cache_dir))
            .await
            .context("the loader build thread panicked")??
    };
    let deps = {
        let (src_dir, cache_dir) = (src_dir.clone(), cache_dir.clone());
        tokio::task::spawn_blocking(move || wasmhost_dev::Deps::new(&src_dir, &cache_dir))
            .await
            .context("the dependency install thread panicked")??
    };
    let interface = args.python.interface;
    let mut options = args.options;
    options.app.dirs.push((src_dir.clone(), wasmhost_dev::GUEST_APP_DIR.to_owned()));
    options.app.dirs.push((deps.dir().to_owned(), wasmhost_dev::GUEST_DEPS_DIR.to_owned()));
    options.app.envs.push((wasmhost_dev::TARGET_VAR.to_owned(), target));
    options.app.envs.push((wasmhost_dev::INTERFACE_VAR.to_owned(), interface.to_string()));
    run(Plan::single(&app_name(&args.app), loader, options, Mode::Dev { src_dir, deps })?).await
}

/// What a `serve` or `dev` process runs: its listeners and its apps.
struct Plan {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    admin_access: AdminAccess,
    server: ServerOptions,
    cache: CompileCache,
    apps: Vec<AppPlan>,
    /// The config file the apps come from, for `serve --config`.
    config: Option<ConfigSource>,
}

/// Where a `serve --config` process re-reads its apps from.
struct ConfigSource {
    path: PathBuf,
    /// Where Python apps are built.
    build_cache: PathBuf,
    /// The `[server]` table the process started with; changes to it need a
    /// restart.
    server: ServerConfig,
    /// Whether changes to the file reload it.
    watch: bool,
}

impl Plan {
    /// The plan for one app named `name` running `module`, from the
    /// command-line flags.
    fn single(name: &str, module: PathBuf, args: ServeOptions, mode: Mode) -> Result<Self> {
        let server = args.server.resolve()?;
        let cache = compile_cache(args.app.no_cache, args.app.cache_dir.clone());
        let spec = args.app.spec(name, module)?;
        Ok(Self {
            addr: args.addr,
            admin_addr: (!args.no_admin).then_some(args.admin_addr),
            admin_access: AdminAccess::new(args.admin_hosts, args.admin_token_file.as_deref())?,
            server,
            cache,
            apps: vec![AppPlan { spec, mount: Mount::default(), mode }],
            config: None,
        })
    }

    /// The plan a config file describes; Python apps are built first.
    async fn from_config(
        path: &std::path::Path,
        cache_dir: Option<PathBuf>,
        no_cache: bool,
        watch: bool,
    ) -> Result<Self> {
        let config = Config::load(path)?;
        let build_cache = cache_dir.clone().unwrap_or_else(CompileCache::default_dir);
        let apps = plan_apps(config.apps, &build_cache).await?;
        let admin_token_file = config.server.admin_token_file.as_deref();
        Ok(Self {
            addr: config.server.addr,
            admin_addr: config.server.admin_addr,
            admin_access: AdminAccess::new(config.server.admin_hosts.clone(), admin_token_file)?,
            server: config.server.options.clone(),
            cache: compile_cache(no_cache, cache_dir),
            apps,
            config: Some(ConfigSource { path: path.to_owned(), build_cache, server: config.server, watch }),
        })
    }
}

/// The apps of a config file, Python apps built (or found in the cache).
async fn plan_apps(apps: Vec<wasmhost_config::AppConfig>, build_cache: &std::path::Path) -> Result<Vec<AppPlan>> {
    let mut planned = Vec::new();
    for app in apps {
        let mut env = app.env;
        let (module, mode) = match app.source {
            AppSource::Wasm(module) => (module, if app.watch { Mode::ServeWatched } else { Mode::Serve }),
            AppSource::Python { dir, target, interface } => {
                let built = build_python(&target, interface, &dir, build_cache.to_owned())
                    .await
                    .with_context(|| format!("cannot build app `{}`", app.name))?;
                env.dirs.extend(built.guest_dirs());
                (built.component, Mode::Serve)
            }
        };
        let spec = AppSpec { name: app.name, module, limits: app.limits, env };
        planned.push(AppPlan { spec, mount: app.mount, mode });
    }
    Ok(planned)
}

fn compile_cache(no_cache: bool, cache_dir: Option<PathBuf>) -> CompileCache {
    match (no_cache, cache_dir) {
        (true, _) => CompileCache::disabled(),
        (false, Some(dir)) => CompileCache::new(dir),
        (false, None) => CompileCache::new(CompileCache::default_dir()),
    }
}

/// Serves the apps of `plan` until shut down.
async fn run(plan: Plan) -> Result<()> {
    let mut capacity = Capacity::needed(&plan.apps)?;
    if plan.config.is_some() {
        capacity = capacity.with_headroom();
    }
    let engine = build_engine(&EngineOptions {
        max_instances: capacity.instances,
        max_memory_bytes: capacity.memory_bytes,
        keep_resident_bytes: 16 << 20,
        cache_dir: plan.cache.dir().map(Into::into),
    })?;
    let _ticker = EpochTicker::start(&engine)?;

    let runtime = Runtime::new(engine, plan.cache)?;
    let tenants = Arc::new(Tenants::start(runtime, capacity, plan.apps).await?);
    let router = tenants.router();
    let mut config_watcher = None;
    let config = match plan.config {
        Some(source) => {
            let watch = source.watch.then(|| source.path.clone());
            let reload = config_reloader(tenants.clone(), source);
            if let Some(path) = watch {
                config_watcher = Some(watch_config(&path, reload.clone())?);
            }
            Some(reload)
        }
        None => None,
    };
    tokio::spawn(reload_on_sighup(router.clone(), config.clone()));

    let draining = Arc::new(AtomicBool::new(false));
    if let Some(admin_addr) = plan.admin_addr {
        let admin = tokio::net::TcpListener::bind(admin_addr).await.with_context(|| {
            format!("cannot listen on {admin_addr} for the admin API; pick another --admin-addr or pass --no-admin")
        })?;
        tracing::info!("admin API on http://{}", admin.local_addr()?);
        plan.admin_access.warn_if_open(admin_addr);
        let state = Arc::new(AdminState {
            router: router.clone(),
            draining: draining.clone(),
            config,
            access: plan.admin_access,
        });
        tokio::spawn(serve_admin(admin, state));
    }

    let listener = tokio::net::TcpListener::bind(plan.addr)
        .await
        .with_context(|| format!("cannot listen on {}; is another server using it?", plan.addr))?;
    let addr = listener.local_addr()?;
    for slot in router.slots() {
        let app = slot.current();
        tracing::info!(app = %app.name(), digest = %&app.digest()[..16], "serving");
    }
    tracing::info!("listening on http://{addr}");
    let shutdown = async move {
        wasmhost_server::shutdown_signal().await;
        draining.store(true, Ordering::Release);
    };
    wasmhost_server::serve(listener, router, &plan.server, shutdown).await?;
    drop(config_watcher);
    drop(tenants);
    tracing::info!("stopped");
    Ok(())
}

/// Re-reads the config file of `source` into `tenants`, logging and
/// counting each attempt.
fn config_reloader(tenants: Arc<Tenants>, source: ConfigSource) -> ConfigReload {
    // Both series start at 0, so `increase()` sees the first reload.
    for result in ["applied", "refused"] {
        METRICS.config_reloads.with_label_values(&[result]);
    }
    let source = Arc::new(source);
    Arc::new(move |trigger| {
        let (tenants, source) = (tenants.clone(), source.clone());
        Box::pin(async move {
            let result = reload_config(&tenants, &source).await;
            match &result {
                Ok(changes) => {
                    METRICS.config_reloads.with_label_values(&["applied"]).inc();
                    tracing::info!(trigger, %changes, "config reloaded");
                }
                Err(err) => {
                    METRICS.config_reloads.with_label_values(&["refused"]).inc();
                    tracing::warn!(trigger, "config reload refused, the previous apps keep serving: {err:#}");
                }
            }
            result
        })
    })
}

async fn reload_config(tenants: &Tenants, source: &ConfigSource) -> Result<serde_json::Value> {
    let config = Config::load(&source.path)?;
    if config.server != source.server {
        tracing::warn!(config = %source.path.display(), "[server] settings changed; they take effect on restart");
    }
    tenants.apply(plan_apps(config.apps, &source.build_cache).await?).await
}

/// Reloads the config file when it changes, until the watcher is dropped.
fn watch_config(path: &std::path::Path, reload: ConfigReload) -> Result<notify::RecommendedWatcher> {
    let path = std::path::absolute(path).context("cannot resolve the config path")?;
    let dir = path.parent().context("the config path has no directory")?.to_owned();
    let name = path.file_name().context("the config path has no file name")?.to_owned();
    wasmhost_reload::watch_changes(
        &dir,
        notify::RecursiveMode::NonRecursive,
        wasmhost_reload::DEBOUNCE,
        move |changed| changed.file_name() == Some(name.as_os_str()),
        move || {
            let reload = reload.clone();
            async move {
                let _ = reload("file change").await;
            }
        },
    )
}

/// Reloads the config file (if any) and every app on SIGHUP.
async fn reload_on_sighup(router: Arc<Router>, config: Option<ConfigReload>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot install the SIGHUP handler; reload with POST /admin/reload");
        return;
    };
    while hangups.recv().await.is_some() {
        reload_all(&router, config.as_ref(), "SIGHUP").await;
    }
}

fn parse_dir(value: &str) -> Result<(PathBuf, String), String> {
    let (host, guest) = value.split_once("::").unwrap_or((value, value));
    if !std::path::Path::new(host).is_dir() {
        return Err(format!("{host} is not a directory"));
    }
    Ok((PathBuf::from(host), guest.to_owned()))
}

fn parse_env(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {value:?}")),
    }
}
