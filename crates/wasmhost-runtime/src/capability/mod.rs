//! Host capabilities: what a guest can call besides its own code, each one
//! module plugged into the runtime the same way.
//!
//! A capability has three parts and one linker hook (the [`Capability`]
//! trait):
//!
//! * **app state** ([`Capability::App`]), built once per app version from its
//!   [`AppSpec`] and shared by all its instances (a policy, a cache, a budget);
//! * **instance state** ([`Capability::Instance`]), a field of every
//!   [`StoreData`], built from the app state when an instance is created;
//! * **per-request hooks** ([`Capability::begin_request`],
//!   [`Capability::end_request`]), called when a request starts on an instance
//!   and when it ends, whatever the outcome: whatever a request left in an
//!   instance is cleared by the time the instance serves the next one;
//! * [`Capability::add_to_linker`], which adds the capability's imports to the
//!   one [`Linker`] of the process (built once per engine, see
//!   [`crate::Runtime`]).
//!
//! The list of capabilities is the [`capabilities!`] invocation below: adding
//! one means writing its module and adding a line there. `docs/architecture.md`
//! walks through the smallest one.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use wasmtime::component::Linker;

use crate::store::StoreData;
use exchange::RequestHead;
use wasmhost_spec::AppSpec;

pub mod config;
pub mod crypto;
pub mod exchange;
pub mod keyvalue;
pub mod outbound;
pub mod platform;
pub mod sql;
pub mod wasi;

/// One host capability. See the [module documentation](self).
pub trait Capability {
    /// State shared by the instances of one app version.
    type App: Send + Sync + 'static;
    /// State of one instance, kept in its store.
    type Instance: Send + 'static;

    /// The app state for the app `spec` describes. `previous` is the state
    /// of the version this one replaces (a reload), from which state that
    /// must outlive a version carries over (a budget of connections still
    /// open, say).
    fn app(spec: &AppSpec, previous: Option<&Self::App>) -> Result<Self::App>;

    /// The state of a new instance of an app with state `app`.
    fn instance(app: &Self::App) -> Result<Self::Instance>;

    /// A request starts on the instance.
    fn begin_request(_instance: &mut Self::Instance, _request: &RequestContext) {}

    /// The request ended (answered, failed or cancelled): nothing of it may
    /// stay in the instance.
    fn end_request(_instance: &mut Self::Instance) {}

    /// Whether the instance still holds anything of a request (checked by
    /// tests after [`Capability::end_request`]).
    fn holds_request(_instance: &Self::Instance) -> bool {
        false
    }

    /// Adds the capability's imports to `linker`. Host functions reach their
    /// instance state through [`StoreData`]'s field of the same name.
    fn add_to_linker(linker: &mut Linker<StoreData>) -> Result<()>;
}

/// What the capabilities are told about the request an instance starts.
pub struct RequestContext {
    /// The request id (logs, `x-request-id`).
    pub id: Arc<str>,
    /// When the guest's time for the request runs out.
    pub deadline: Instant,
    /// The `rep` of the guest's `incoming-request` handle.
    pub handle: u32,
    /// The request's head (and its body when the host read it whole).
    pub head: Arc<RequestHead>,
}

/// Declares the capability list: one field per capability in [`Apps`] (app
/// state) and [`Instances`] (instance state), and the functions that run
/// every capability's part in list order.
macro_rules! capabilities {
    ($($(#[$doc:meta])* $field:ident: $capability:ty,)*) => {
        /// The app state of every capability, for one app version.
        pub struct Apps {
            $($(#[$doc])* pub $field: <$capability as Capability>::App,)*
        }

        /// The instance state of every capability, for one instance.
        pub struct Instances {
            $($(#[$doc])* pub $field: <$capability as Capability>::Instance,)*
        }

        impl Apps {
            /// Every capability's app state for the app `spec` describes,
            /// carrying over from `previous`, the version it replaces.
            pub fn new(spec: &AppSpec, previous: Option<&Apps>) -> Result<Self> {
                Ok(Self { $($field: <$capability as Capability>::app(spec, previous.map(|apps| &apps.$field))?,)* })
            }

            /// Every capability's state for a new instance.
            pub fn instance(&self) -> Result<Instances> {
                Ok(Instances { $($field: <$capability as Capability>::instance(&self.$field)?,)* })
            }
        }

        impl Instances {
            /// Runs every capability's [`Capability::begin_request`].
            pub fn begin_request(&mut self, request: &RequestContext) {
                $(<$capability as Capability>::begin_request(&mut self.$field, request);)*
            }

            /// Runs every capability's [`Capability::end_request`].
            pub fn end_request(&mut self) {
                $(<$capability as Capability>::end_request(&mut self.$field);)*
            }

            /// Whether any capability holds anything of a request.
            pub fn hold_request(&self) -> bool {
                false $(|| <$capability as Capability>::holds_request(&self.$field))*
            }
        }

        /// Adds every capability's imports to `linker`.
        pub fn add_to_linker(linker: &mut Linker<StoreData>) -> Result<()> {
            $(<$capability as Capability>::add_to_linker(linker)?;)*
            Ok(())
        }
    };
}

capabilities! {
    /// WASI 0.2 and `wasi:http`: environment, preopened directories, clocks,
    /// random, guest output, HTTP types.
    wasi: wasi::Wasi,
    /// Outbound HTTP: the hooks `wasi:http` sends a guest's requests through.
    outbound: outbound::Outbound,
    /// `wasmhost:platform/json` and `validation`: native JSON and JSON Schema.
    platform: platform::Platform,
    /// `wasmhost:platform/exchange`: a request head, body or response in one call.
    exchange: exchange::Exchange,
    /// `wasi:keyvalue`: the app's declared buckets, persistent and shared.
    keyvalue: keyvalue::KeyValue,
    /// `wasi:config`: the app's config values and secrets.
    config: config::Config,
    /// `wasmhost:platform/sql`: the app's declared SQL databases.
    sql: sql::Sql,
    /// `wasmhost:platform/crypto`: PBKDF2 for the guest's `hashlib`.
    crypto: crypto::Crypto,
}
