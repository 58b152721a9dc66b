//! Outbound HTTP: the `wasi:http` hooks through which a guest's outgoing
//! requests are checked against the app's allow-list and sent by the host
//! (`wasmhost-outbound`). It adds no imports of its own: `wasi:http`'s
//! outgoing handler (see [`super::wasi`]) calls these hooks.

use std::sync::Arc;

use anyhow::Result;
use wasmhost_outbound::{OutboundHooks, OutboundPolicy};
use wasmtime::component::Linker;

use super::Capability;
use crate::store::StoreData;
use crate::AppSpec;

/// The outbound HTTP capability.
pub struct Outbound;

/// The app's allow-list.
pub struct OutboundApp {
    app: Arc<str>,
    policy: Arc<OutboundPolicy>,
}

impl Capability for Outbound {
    type App = OutboundApp;
    type Instance = OutboundHooks;

    fn app(spec: &AppSpec) -> Result<OutboundApp> {
        Ok(OutboundApp { app: Arc::from(spec.name.as_str()), policy: spec.env.outbound.clone() })
    }

    fn instance(app: &OutboundApp) -> Result<OutboundHooks> {
        Ok(OutboundHooks::new(app.app.clone(), app.policy.clone()))
    }

    fn add_to_linker(_linker: &mut Linker<StoreData>) -> Result<()> {
        Ok(())
    }
}
