//! The wasmhost runtime: everything between an HTTP request and a WebAssembly
//! instance.
//!
//! * [`engine`] builds the one wasmtime [`Engine`](wasmtime::Engine) of a
//!   process (pooling allocator, epoch interruption), its epoch ticker, and
//!   the [`Runtime`]: engine, linker and compile cache.
//! * [`cache`] keeps compiled components on disk so a restart does not pay
//!   for Cranelift again.
//! * [`capability`] is every host capability (WASI and `wasi:http`, outbound
//!   HTTP, JSON and validation, exchange), each one module plugged in the
//!   same way; [`store`] is the data of every store, which holds their
//!   instance state and owns the per-request state.
//! * [`pool`] is the [`InstancePool`]: pre-instantiated instances, recycling,
//!   fresh-instance mode and bounded admission.
//! * [`app`] ties them together: an [`AppVersion`] turns a `hyper` request
//!   into a response produced by a guest, through [`admission`], the pool,
//!   the guest call, [`framing`] and [`outcome`] (every failure to a status);
//!   [`body`] holds the request and response bodies on their way.
//! * [`command`] runs Python in an app's sandbox instead of serving it
//!   (`wasmhost run`).
//! * [`limits`] enforces memory limits inside a store (the limits
//!   themselves are `wasmhost-spec`'s), [`guest_log`] turns
//!   guest output into log lines, [`metrics`] exports what happens.

pub mod admission;
pub mod app;
pub mod body;
pub mod cache;
pub mod capability;
pub mod command;
pub mod engine;
pub mod framing;
pub mod guest_log;
pub mod limits;
pub mod metrics;
pub mod outcome;
pub mod pool;
pub mod store;
#[cfg(test)]
mod testing;

pub use app::AppVersion;
pub use body::ResponseBody;
pub use cache::CompileCache;
pub use command::run_command;
pub use engine::{EngineOptions, EpochTicker, LoadSource, LoadedComponent, Runtime};
pub use outcome::AppResponse;
pub use pool::InstancePool;
pub use wasmhost_outbound::ConnectionBudget;
