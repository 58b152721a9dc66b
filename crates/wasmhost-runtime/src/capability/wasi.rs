//! WASI 0.2 and `wasi:http` for guests: the environment variables and
//! read-only directories the app's spec grants, clocks, random, stdout and
//! stderr as log lines (see [`crate::guest_log`]; the terminal under
//! `wasmhost run`), outbound TCP to what the
//! app's `tcp://` entries list ([`sockets`]); `wasi:http`'s types and
//! outgoing handler, whose requests go through [`super::outbound`].
//!
//! wasmtime-wasi links through the `WasiView` and `WasiHttpView` traits,
//! which [`StoreData`] implements by projecting to this capability's
//! instance state and the store's resource table.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use wasmtime::component::Linker;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpCtx;

use super::{Capability, RequestContext};
use crate::guest_log::{GuestLog, OutputBudget, RequestTag};
use crate::store::StoreData;
use sockets::Sockets;
use wasmhost_spec::{AppSpec, GuestEnv};

pub mod sockets;

/// The WASI capability.
pub struct Wasi;

/// What every instance of an app is given.
pub struct WasiApp {
    app: Arc<str>,
    env: GuestEnv,
    /// The output budget shared by the app's instances.
    output: Arc<OutputBudget>,
    /// Whether instances use this process's stdin, stdout and stderr
    /// (`wasmhost run`) instead of logging their output.
    terminal: bool,
}

impl WasiApp {
    /// Gives the app's instances this process's stdin, stdout and stderr
    /// (`wasmhost run`) instead of turning their output into log lines.
    pub fn use_terminal(&mut self) {
        self.terminal = true;
    }
}

/// One instance's WASI and `wasi:http` contexts.
pub struct WasiInstance {
    /// The WASI context.
    pub wasi: WasiCtx,
    /// The `wasi:http` context.
    pub http: WasiHttpCtx,
    /// The instance's TCP sockets and name lookups.
    pub sockets: Sockets,
    /// The request the instance serves, for its log lines.
    request: RequestTag,
}

impl Capability for Wasi {
    type App = WasiApp;
    type Instance = WasiInstance;

    fn app(spec: &AppSpec, previous: Option<&WasiApp>) -> Result<WasiApp> {
        // Output budgets span versions: a reload does not refill one.
        let output = match previous {
            Some(previous) if previous.output.rate() == spec.limits.guest_log_rate => previous.output.clone(),
            _ => OutputBudget::new(Arc::from(spec.name.as_str()), spec.limits.guest_log_rate),
        };
        Ok(WasiApp { app: Arc::from(spec.name.as_str()), env: spec.env.clone(), output, terminal: false })
    }

    fn instance(app: &WasiApp) -> Result<WasiInstance> {
        let request = RequestTag::default();
        let mut wasi = WasiCtx::builder();
        if app.terminal {
            wasi.inherit_stdio();
        } else {
            wasi.stdout(GuestLog::new("stdout", request.clone(), app.output.clone())).stderr(GuestLog::new(
                "stderr",
                request.clone(),
                app.output.clone(),
            ));
        }
        wasi.envs(&app.env.vars);
        for (host, guest) in &app.env.dirs {
            wasi.preopened_dir(host, guest, wasmtime_wasi::FsPerms::ReadOnly)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("cannot open {} for the guest", host.display()))?;
        }
        let sockets = Sockets::new(app.app.clone(), &app.env.outbound, &mut wasi);
        Ok(WasiInstance { wasi: wasi.build(), http: WasiHttpCtx::new(), sockets, request })
    }

    fn begin_request(instance: &mut WasiInstance, request: &RequestContext) {
        instance.request.set(&request.id);
    }

    fn end_request(instance: &mut WasiInstance) {
        instance.request.set("");
    }

    fn holds_request(instance: &WasiInstance) -> bool {
        !instance.request.get().is_empty()
    }

    fn add_to_linker(linker: &mut Linker<StoreData>) -> Result<()> {
        wasmtime_wasi::p2::add_to_linker_async(linker)
            .map_err(anyhow::Error::from)
            .context("cannot add WASI to the linker")?;
        sockets::add_to_linker(linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
            .map_err(anyhow::Error::from)
            .context("cannot add wasi:http to the linker")?;
        Ok(())
    }
}
