//! What wasmhost serves, as plain data: each app's [`AppSpec`] (its
//! [`Limits`], what its guest may see: [`GuestEnv`] and its outbound
//! [`OutboundPolicy`]), how requests reach it ([`Mount`]), how a Python app is
//! served ([`Interface`]), what it keeps between requests ([`KeyValueSpec`],
//! [`ConfigValue`]), and the HTTP server's [`ServerOptions`].
//!
//! Every default lives here, once: [`Limits::default`],
//! [`ServerOptions::default`], [`DEFAULT_ADDR`], [`DEFAULT_ADMIN_ADDR`]. The
//! command line ([`LimitSettings`] and [`ServerSettings`] are its flags, with
//! these defaults shown in `--help`) and `wasmhost.toml` (`wasmhost-config`)
//! both set values through the same settings types, whose `resolve` is the
//! one place that turns them into [`Limits`] and [`ServerOptions`].
//!
//! No I/O, no HTTP server, no wasm engine: the config parser and every
//! other crate can depend on this one.

pub mod access_log;
pub mod allow_list;
mod app;
mod interface;
mod limits;
mod mount;
mod server;
mod state;

pub use access_log::AccessLogFormat;
pub use allow_list::OutboundPolicy;
pub use app::{AppSpec, GuestEnv};
pub use interface::Interface;
pub use limits::{Isolation, LimitSettings, Limits};
pub use mount::Mount;
pub use server::{ServerOptions, ServerSettings, DEFAULT_ADDR, DEFAULT_ADMIN_ADDR};
pub use state::{
    app_data_dir, default_data_dir, Backend, BucketSpec, ConfigValue, ConfigValueSource, DatabaseSpec, KeyValueSpec,
};
