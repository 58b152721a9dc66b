//! The wasmhost runtime: everything between an HTTP request and a WebAssembly
//! instance.
//!
//! * [`engine`] builds the one wasmtime [`Engine`](wasmtime::Engine) of a
//!   process (pooling allocator, epoch interruption) and its epoch ticker.
//! * [`cache`] keeps compiled components on disk so a restart does not pay
//!   for Cranelift again.
//! * [`limits`] holds the per-app limits and the memory limiter that enforces
//!   them inside a store.
//! * [`host`] is the per-store host state: WASI, `wasi:http`, guest logs.
//! * [`exchange`] implements `wasmhost:platform/exchange`, the one-call
//!   request head and response for SDK guests.
//! * [`pool`] is the [`InstancePool`]: pre-instantiated instances, recycling,
//!   fresh-instance mode and bounded admission.
//! * [`app`] ties them together: an [`App`] turns a `hyper` request into a
//!   response produced by a guest, mapping every guest failure to a status.

pub mod app;
pub mod cache;
pub mod engine;
pub mod exchange;
pub mod framing;
pub mod guest_log;
pub mod host;
pub mod limits;
pub mod metrics;
pub mod pool;
#[cfg(test)]
mod testing;

pub use app::{App, AppResponse, AppSpec, ResponseBody};
pub use cache::CompileCache;
pub use engine::{EngineOptions, EpochTicker};
pub use host::GuestEnv;
pub use limits::{Isolation, Limits};
pub use pool::InstancePool;
pub use wasmhost_outbound::{ConnectionBudget, OutboundPolicy};
