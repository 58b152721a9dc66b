//! Chooses the app that serves a request.

use std::sync::Arc;

use http::Request;
use wasmhost_reload::AppSlot;
use wasmhost_runtime::App;

/// Maps requests to apps. Today a server hosts one app, which serves every
/// request.
pub struct Router {
    slots: Vec<Arc<AppSlot>>,
}

impl Router {
    /// A router sending everything to the app in `slot`.
    pub fn single(slot: Arc<AppSlot>) -> Self {
        Self { slots: vec![slot] }
    }

    /// The version of the app serving `request` now, or `None` when no app
    /// serves it. The caller holds it for the whole request, so a reload
    /// never switches versions under a request.
    pub fn route<B>(&self, _request: &Request<B>) -> Option<Arc<App>> {
        self.slots.first().map(|slot| slot.current())
    }

    /// Every app slot, for reloads and introspection.
    pub fn slots(&self) -> &[Arc<AppSlot>] {
        &self.slots
    }
}
