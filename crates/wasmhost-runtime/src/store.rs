//! The data of every store: what host functions can see of a guest.
//!
//! A [`StoreData`] holds the store's resource table (shared by every
//! capability's resources), its memory accounting, its deadline, and each
//! capability's instance state ([`Instances`]). Per-request state has one
//! owner: [`StoreData::begin_request`] sets it and [`StoreData::end_request`]
//! clears it, so an idle instance keeps nothing of the request it served.

use std::time::{Duration, Instant};

use wasmtime::{Engine, Store, UpdateDeadline};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use crate::capability::{Apps, Instances, RequestContext};
use crate::limits::MemoryLimiter;

/// The `T` of every `Store<T>`.
pub struct StoreData {
    /// Resources of every capability (WASI streams, HTTP bodies, schemas).
    pub table: ResourceTable,
    /// The store's memory accounting.
    pub limiter: MemoryLimiter,
    /// When the current request's guest time runs out (epoch interruption
    /// checks it).
    pub deadline: Instant,
    /// Each capability's state for this instance.
    pub capabilities: Instances,
    /// Whether a request is in progress.
    serving: bool,
}

impl StoreData {
    /// The state of a new instance of an app with capabilities `apps`,
    /// holding at most `memory_limit` bytes of linear memory.
    pub fn new(apps: &Apps, memory_limit: usize) -> anyhow::Result<Self> {
        Ok(Self {
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_limit),
            deadline: Instant::now(),
            capabilities: apps.instance()?,
            serving: false,
        })
    }

    /// A store for a new instance of an app with capabilities `apps`: at
    /// most `memory_limit` bytes of linear memory, `run_for` of guest time
    /// (a running guest yields to the async runtime at every epoch tick and
    /// is interrupted at the first one past its deadline).
    pub fn new_store(
        engine: &Engine,
        apps: &Apps,
        memory_limit: usize,
        run_for: Duration,
    ) -> anyhow::Result<Store<Self>> {
        let mut store = Store::new(engine, Self::new(apps, memory_limit)?);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
            }
        });
        store.set_epoch_deadline(1);
        store.data_mut().deadline = Instant::now() + run_for;
        Ok(store)
    }

    /// A request starts: arms its deadline and tells every capability.
    pub fn begin_request(&mut self, request: &RequestContext) {
        self.deadline = request.deadline;
        self.limiter.reset_exhausted();
        self.capabilities.begin_request(request);
        self.serving = true;
    }

    /// The request ended: every capability drops what it kept of it.
    pub fn end_request(&mut self) {
        self.capabilities.end_request();
        self.serving = false;
    }

    /// Whether the instance holds nothing of a request: none in progress,
    /// and no capability kept any of its data.
    pub fn is_idle(&self) -> bool {
        !self.serving && !self.capabilities.hold_request()
    }
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.capabilities.wasi.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for StoreData {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let capabilities = &mut self.capabilities;
        WasiHttpCtxView { ctx: &mut capabilities.wasi.http, table: &mut self.table, hooks: &mut capabilities.outbound }
    }
}
