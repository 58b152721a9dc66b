//! Chooses the app that serves a request.

use std::sync::Arc;

use http::Request;
use wasmhost_runtime::App;

/// Maps requests to apps. Today a server hosts one app, which serves every
/// request.
pub struct Router {
    app: Arc<App>,
}

impl Router {
    /// A router sending everything to `app`.
    pub fn single(app: Arc<App>) -> Self {
        Self { app }
    }

    /// The app for `request`, or `None` when no app serves it.
    pub fn route<B>(&self, _request: &Request<B>) -> Option<&App> {
        Some(&self.app)
    }
}
