//! Outbound HTTP: the `wasi:http` hooks through which a guest's outgoing
//! requests are checked against the app's allow-list and sent by the host
//! (`wasmhost-outbound`), within the app's connection budget. It adds no
//! imports of its own: `wasi:http`'s outgoing handler (see [`super::wasi`])
//! calls these hooks.

use std::sync::Arc;

use anyhow::Result;
use wasmhost_outbound::{ConnectionBudget, OutboundHooks, OutboundPolicy};
use wasmtime::component::Linker;

use super::Capability;
use crate::store::StoreData;
use wasmhost_spec::AppSpec;

/// The outbound HTTP capability.
pub struct Outbound;

/// The app's allow-list and connection budget.
pub struct OutboundApp {
    app: Arc<str>,
    policy: Arc<OutboundPolicy>,
    /// Shared by every instance and version of the app.
    connections: ConnectionBudget,
    per_instance: usize,
}

impl OutboundApp {
    /// The connection budget the app's instances and versions share.
    pub fn connections(&self) -> &ConnectionBudget {
        &self.connections
    }
}

impl Capability for Outbound {
    type App = OutboundApp;
    type Instance = OutboundHooks;

    fn app(spec: &AppSpec, previous: Option<&OutboundApp>) -> Result<OutboundApp> {
        let (app, limits) = (Arc::<str>::from(spec.name.as_str()), &spec.limits);
        // A new version keeps counting the connections its predecessor still
        // holds, so both together stay within the bound (unless it changed).
        let connections = match previous {
            Some(previous) if previous.connections.limit() == limits.max_outbound_connections => {
                previous.connections.clone()
            }
            _ => ConnectionBudget::new(app.clone(), limits.max_outbound_connections),
        };
        let per_instance = limits.max_outbound_connections_per_instance;
        Ok(OutboundApp { app, policy: spec.env.outbound.clone(), connections, per_instance })
    }

    fn instance(app: &OutboundApp) -> Result<OutboundHooks> {
        let connections = app.connections.instance(app.per_instance);
        Ok(OutboundHooks::new(app.app.clone(), app.policy.clone(), connections))
    }

    fn add_to_linker(_linker: &mut Linker<StoreData>) -> Result<()> {
        Ok(())
    }
}
