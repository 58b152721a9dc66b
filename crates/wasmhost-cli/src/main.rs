//! `wasmhost`: serve `wasi:http/proxy` WebAssembly components (Python first)
//! with instance pools, hard limits and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytesize::ByteSize;
use clap::{Parser, Subcommand, ValueEnum};
use wasmhost_runtime::engine::build_engine;
use wasmhost_reload::AppSlot;
use wasmhost_runtime::{AppSpec, CompileCache, EngineOptions, EpochTicker, GuestEnv, Isolation, Limits};
use wasmhost_server::{serve_admin, AdminState, Router, ServerOptions};

#[derive(Parser)]
#[command(name = "wasmhost", version, about = "Serve wasi:http WebAssembly components")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a wasi:http/proxy component over HTTP.
    Serve(ServeArgs),
    /// Serve a Python app from its sources; edits take effect on save.
    Dev(DevArgs),
}

/// Instance sharing modes, as spelled on the command line.
#[derive(Clone, Copy, ValueEnum)]
enum IsolationArg {
    /// Warm instances serve many requests each (state carries over).
    Reuse,
    /// Every request gets a never-used instance.
    Fresh,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The component to serve (a .wasm built for wasi:http/proxy).
    app: PathBuf,
    /// Do not reload the app when its module file changes (SIGHUP and
    /// POST /admin/reload still reload it).
    #[arg(long)]
    no_watch: bool,
    #[command(flatten)]
    options: ServeOptions,
}

#[derive(clap::Args)]
struct DevArgs {
    /// The app's main module: a Python file defining `IncomingHandler` (a
    /// plain wasi:http handler); its directory is the app's source tree.
    app: PathBuf,
    #[command(flatten)]
    options: ServeOptions,
}

/// Options shared by `serve` and `dev`.
#[derive(clap::Args)]
struct ServeOptions {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Address of the admin listener (/healthz, /readyz, /apps, POST /admin/reload).
    #[arg(long, default_value = "127.0.0.1:9090")]
    admin_addr: SocketAddr,
    /// Do not start the admin listener.
    #[arg(long)]
    no_admin: bool,
    /// Let the guest read a host directory: `HOST_DIR::GUEST_DIR` (or just
    /// `DIR`, seen under the same path). Read-only. Repeatable.
    #[arg(long = "dir", value_name = "HOST::GUEST", value_parser = parse_dir)]
    dirs: Vec<(PathBuf, String)>,
    /// Set an environment variable for the guest: `NAME=VALUE`. Repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env)]
    envs: Vec<(String, String)>,
    /// `reuse`: warm instances serve many requests; `fresh`: one instance per request.
    #[arg(long, value_enum, default_value = "reuse")]
    isolation: IsolationArg,
    /// Most instances busy at once (the app's concurrency).
    #[arg(long, default_value_t = Limits::default().max_instances)]
    max_instances: usize,
    /// Instances kept ready ahead of demand.
    #[arg(long, default_value_t = Limits::default().min_instances)]
    min_instances: usize,
    /// Most requests waiting for an instance; beyond it requests get 503.
    #[arg(long, default_value_t = Limits::default().max_queue)]
    max_queue: usize,
    /// Longest a request waits for an instance before getting 503.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    queue_timeout: Duration,
    /// Longest a guest may run for one request (CPU and wall time); then 504.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
    /// Linear memory an instance may hold, summed over its memories.
    #[arg(long, default_value = "256MiB")]
    memory_limit: ByteSize,
    /// Retire an instance whose memory grew past this after its request.
    #[arg(long, default_value = "128MiB")]
    recycle_memory: ByteSize,
    /// Retire an instance after about this many requests (±10%).
    #[arg(long, default_value_t = Limits::default().max_requests_per_instance)]
    max_requests_per_instance: u64,
    /// Largest request body; larger ones get 413.
    #[arg(long, default_value = "10MiB")]
    max_body_size: ByteSize,
    /// Largest request head (request line and headers); larger ones get 431.
    #[arg(long, default_value = "32KiB")]
    max_header_size: ByteSize,
    /// Time a client has to send its request head; idle connections close after it too.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    header_read_timeout: Duration,
    /// Most client connections open at once; more wait in the accept backlog.
    #[arg(long, default_value_t = ServerOptions::default().max_connections)]
    max_connections: usize,
    /// Longest wait for in-flight requests after SIGTERM or SIGINT.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// Directory of compiled components [default: ~/.cache/wasmhost].
    #[arg(long, env = "WASMHOST_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile from scratch and store nothing.
    #[arg(long)]
    no_cache: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let options = match &cli.command {
        Command::Serve(args) => &args.options,
        Command::Dev(args) => &args.options,
    };
    let _log = init_logging(options.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => {
                let mode = if args.no_watch { Mode::Serve } else { Mode::ServeWatched };
                serve(args.app, args.options, mode).await
            }
            Command::Dev(args) => dev(args).await,
        }
    })
}

/// Logs to stderr through a writer thread, so request threads never block
/// on the log's pipe or terminal. The returned guard flushes it on drop.
fn init_logging(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WASMHOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
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

/// How `serve` keeps the app current.
enum Mode {
    /// Reload on SIGHUP and POST /admin/reload only.
    Serve,
    /// Also reload when the module file changes.
    ServeWatched,
    /// `wasmhost dev`: the module is the dev loader; restart on changes in
    /// the app's source directory.
    Dev { src_dir: PathBuf },
}

/// `wasmhost dev app.py`: builds (once) the dev loader and serves the app's
/// sources through it.
async fn dev(args: DevArgs) -> Result<()> {
    let main = std::path::absolute(&args.app).context("cannot resolve the app path")?;
    anyhow::ensure!(main.is_file(), "{} is not a file; pass the app's main Python module", main.display());
    let module = main
        .file_stem()
        .and_then(|stem| stem.to_str())
        .filter(|_| main.extension().is_some_and(|ext| ext == "py"))
        .with_context(|| format!("{} is not a Python module (.py)", main.display()))?
        .to_owned();
    let src_dir = main.parent().context("the app has no directory")?.to_owned();
    let cache_dir = args.options.cache_dir.clone().unwrap_or_else(CompileCache::default_dir);
    let loader = tokio::task::spawn_blocking(move || wasmhost_dev::build_loader(&cache_dir))
        .await
        .context("the loader build thread panicked")??;
    let mut options = args.options;
    options.dirs.push((src_dir.clone(), wasmhost_dev::GUEST_APP_DIR.to_owned()));
    options.envs.push((wasmhost_dev::MODULE_VAR.to_owned(), module.clone()));
    serve_named(&module, loader, options, Mode::Dev { src_dir }).await
}

/// `wasmhost serve app.wasm`.
async fn serve(app: PathBuf, options: ServeOptions, mode: Mode) -> Result<()> {
    let name = app.file_stem().and_then(|stem| stem.to_str()).unwrap_or("app").to_owned();
    serve_named(&name, app, options, mode).await
}

/// Serves the component at `module` as the app `name` until shut down.
async fn serve_named(name: &str, module: PathBuf, args: ServeOptions, mode: Mode) -> Result<()> {
    let limits = Limits {
        isolation: match args.isolation {
            IsolationArg::Reuse => Isolation::Reuse,
            IsolationArg::Fresh => Isolation::Fresh,
        },
        max_instances: args.max_instances.max(1),
        min_instances: args.min_instances,
        max_queue: args.max_queue,
        queue_timeout: args.queue_timeout,
        request_timeout: args.request_timeout,
        memory_limit: to_usize(args.memory_limit, "--memory-limit")?,
        recycle_memory: to_usize(args.recycle_memory, "--recycle-memory")?,
        max_requests_per_instance: args.max_requests_per_instance,
        max_body_size: args.max_body_size.as_u64(),
    };
    let server = ServerOptions {
        max_connections: args.max_connections.max(1),
        header_read_timeout: args.header_read_timeout,
        max_header_size: to_usize(args.max_header_size, "--max-header-size")?,
        drain_timeout: args.drain_timeout,
    };
    let cache = match (args.no_cache, args.cache_dir) {
        (true, _) => CompileCache::disabled(),
        (false, Some(dir)) => CompileCache::new(dir),
        (false, None) => CompileCache::new(CompileCache::default_dir()),
    };
    let engine = build_engine(&EngineOptions {
        // Busy instances, ready ones and one spare for pre-instantiation,
        // twice over: during a reload the old and new versions overlap.
        max_instances: 2 * (limits.max_instances + limits.min_instances + 1) as u32,
        max_memory_bytes: limits.memory_limit,
        keep_resident_bytes: 16 << 20,
        cache_dir: cache.dir().map(Into::into),
    })?;
    let _ticker = EpochTicker::start(&engine)?;

    let env = GuestEnv { vars: args.envs, dirs: args.dirs };
    let spec = AppSpec { name: name.to_owned(), module: module.clone(), limits, env };
    let slot = AppSlot::load(&engine, &cache, spec)
        .await
        .with_context(|| format!("cannot serve {}", module.display()))?;
    let _watcher = match mode {
        Mode::Serve => None,
        Mode::ServeWatched => Some(wasmhost_reload::watch(slot.clone())?),
        Mode::Dev { src_dir } => {
            if let Err(err) = wasmhost_dev::probe(&slot.current(), &src_dir).await {
                tracing::warn!(app = name, "{err:#}");
            }
            Some(wasmhost_dev::watch_sources(slot.clone(), src_dir)?)
        }
    };
    let router = Arc::new(Router::single(slot));
    tokio::spawn(reload_on_sighup(router.clone()));

    let draining = Arc::new(AtomicBool::new(false));
    if !args.no_admin {
        let admin = tokio::net::TcpListener::bind(args.admin_addr).await.with_context(|| {
            format!("cannot listen on {} for the admin API; pick another --admin-addr or pass --no-admin", args.admin_addr)
        })?;
        tracing::info!("admin API on http://{}", admin.local_addr()?);
        let state = Arc::new(AdminState { router: router.clone(), draining: draining.clone() });
        tokio::spawn(serve_admin(admin, state));
    }

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}; is another server using it?", args.addr))?;
    let addr = listener.local_addr()?;
    let app = router.slots()[0].current();
    tracing::info!(app = %app.name(), digest = %&app.digest()[..16], "listening on http://{addr}");
    drop(app);
    let shutdown = async move {
        wasmhost_server::shutdown_signal().await;
        draining.store(true, Ordering::Release);
    };
    wasmhost_server::serve(listener, router, &server, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Reloads every app on SIGHUP.
async fn reload_on_sighup(router: Arc<Router>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot install the SIGHUP handler; reload with POST /admin/reload");
        return;
    };
    while hangups.recv().await.is_some() {
        for slot in router.slots() {
            let _ = slot.reload("SIGHUP").await;
        }
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

fn to_usize(size: ByteSize, flag: &str) -> Result<usize> {
    usize::try_from(size.as_u64()).with_context(|| format!("{flag} is too large for this machine"))
}
