//! Per-store host state: WASI, `wasi:http`, memory limits, guest logs.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;

use wasmhost_outbound::{InstanceBudget, OutboundHooks, OutboundPolicy};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::exchange::RequestHead;
pub use crate::guest_log::RequestTag;
use crate::guest_log::{GuestLog, OutputBudget};
use crate::limits::MemoryLimiter;
use wasmhost_platform::{PlatformCtx, PlatformView};

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
    /// bytes, seeing what `env` grants, with the app's `platform` services,
    /// printing within the app's `output` budget, and holding at most as
    /// many outbound connections as `connections` permits.
    pub fn new(
        app: &Arc<str>,
        memory_limit: usize,
        env: &GuestEnv,
        platform: PlatformCtx,
        output: &Arc<OutputBudget>,
        connections: InstanceBudget,
    ) -> anyhow::Result<Self> {
        let request = RequestTag::default();
        let mut wasi = WasiCtx::builder();
        wasi.stdout(GuestLog::new("stdout", request.clone(), output.clone()))
            .stderr(GuestLog::new("stderr", request.clone(), output.clone()))
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
