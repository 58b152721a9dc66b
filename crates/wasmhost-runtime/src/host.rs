//! Per-store host state: WASI, `wasi:http`, memory limits, guest logs.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use anyhow::Context as _;

use wasmhost_outbound::{InstanceBudget, OutboundHooks, OutboundPolicy};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::exchange::RequestHead;
use crate::limits::MemoryLimiter;
use wasmhost_platform::{PlatformCtx, PlatformView};

/// Longest guest log line kept; the rest of a longer line is cut off.
const MAX_LOG_LINE: usize = 4096;

/// The request an instance is serving, shared with its log streams.
#[derive(Clone, Default)]
pub struct RequestTag(Arc<Mutex<Arc<str>>>);

impl RequestTag {
    /// Tags the instance's output with `request_id` from now on.
    pub fn set(&self, request_id: &str) {
        if let Ok(mut current) = self.0.lock() {
            *current = Arc::from(request_id);
        }
    }

    fn get(&self) -> Arc<str> {
        self.0.lock().map(|id| id.clone()).unwrap_or_else(|_| Arc::from(""))
    }
}

/// The `T` of every `Store<T>`: what host functions can see of a guest.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: OutboundHooks,
    platform: PlatformCtx,
    /// The store's memory accounting.
    pub limiter: MemoryLimiter,
    /// When the current request's guest time runs out.
    pub deadline: Instant,
    /// The request being served, for log lines.
    pub request: RequestTag,
    /// The head of the request being served and the `rep` of its guest
    /// handle, for `wasmhost:platform/exchange`.
    pub request_head: Option<(u32, RequestHead)>,
}

impl HostState {
    /// Fresh state for one instance of `app`, capped at `memory_limit`
    /// bytes, seeing what `env` grants, with the app's `platform` services
    /// and at most as many outbound connections as `connections` permits.
    pub fn new(
        app: &Arc<str>,
        memory_limit: usize,
        env: &GuestEnv,
        platform: PlatformCtx,
        connections: InstanceBudget,
    ) -> anyhow::Result<Self> {
        let request = RequestTag::default();
        let mut wasi = WasiCtx::builder();
        wasi.stdout(GuestLog { app: app.clone(), stream: "stdout", request: request.clone() })
            .stderr(GuestLog { app: app.clone(), stream: "stderr", request: request.clone() })
            .envs(&env.vars);
        for (host, guest) in &env.dirs {
            wasi.preopened_dir(host, guest, wasmtime_wasi::FsPerms::ReadOnly)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("cannot open {} for the guest", host.display()))?;
        }
        let wasi = wasi.build();
        Ok(Self {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHooks::new(app.clone(), env.outbound.clone(), connections),
            platform,
            limiter: MemoryLimiter::new(memory_limit),
            deadline: Instant::now(),
            request,
            request_head: None,
        })
    }
}

/// What a guest may see of the host besides the request it serves:
/// environment variables, read-only directories and outbound HTTP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestEnv {
    /// Environment variables, as `(name, value)`.
    pub vars: Vec<(String, String)>,
    /// Directories the guest may read, as `(host path, guest path)`.
    pub dirs: Vec<(std::path::PathBuf, String)>,
    /// The hosts it may send HTTP requests to (none by default).
    pub outbound: Arc<OutboundPolicy>,
}

impl HostState {
    /// What the `wasmhost:platform` imports see of the store.
    pub fn platform(&mut self) -> PlatformView<'_> {
        PlatformView { ctx: &self.platform, table: &mut self.table }
    }

    /// The store's resource table.
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// The `wasi:http` hooks (forbidden headers, outbound policy).
    pub(crate) fn http_hooks(&mut self) -> &mut OutboundHooks {
        &mut self.hooks
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// A guest's stdout or stderr: each line becomes a log event tagged with the
/// app and the request being served.
#[derive(Clone)]
struct GuestLog {
    app: Arc<str>,
    stream: &'static str,
    request: RequestTag,
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(GuestLogWriter { log: self.clone(), line: Vec::new() })
    }
}

/// Line-buffering writer behind [`GuestLog`].
struct GuestLogWriter {
    log: GuestLog,
    line: Vec<u8>,
}

impl GuestLogWriter {
    fn emit(&mut self) {
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_end_matches(['\r', '\n']);
        tracing::info!(
            target: "wasmhost::guest",
            app = %self.log.app,
            request_id = %self.log.request.get(),
            stream = self.log.stream,
            "{text}"
        );
        self.line.clear();
    }
}

impl tokio::io::AsyncWrite for GuestLogWriter {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        for &byte in buf {
            if byte == b'\n' {
                self.emit();
            } else if self.line.len() < MAX_LOG_LINE {
                self.line.push(byte);
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.line.is_empty() {
            self.emit();
        }
        Poll::Ready(Ok(()))
    }
}
