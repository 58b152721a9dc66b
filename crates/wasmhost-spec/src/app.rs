//! One app: its name, module, limits and what its guest may see.

use std::path::PathBuf;
use std::sync::Arc;

use crate::{ConfigValue, DatabaseSpec, KeyValueSpec, Limits, OutboundPolicy};

/// What an app is: its name, module file, limits and what its guest may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSpec {
    /// Name used in logs, metrics and the admin API; unique in a process.
    pub name: String,
    /// The component file.
    pub module: PathBuf,
    /// Limits the app runs under.
    pub limits: Limits,
    /// Environment variables, directories and outbound hosts the guest may see.
    pub env: GuestEnv,
}

/// What a guest may see of the host besides the request it serves:
/// environment variables, read-only directories, outbound HTTP and TCP,
/// key-value buckets, SQL databases and config values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestEnv {
    /// Environment variables, as `(name, value)`.
    pub vars: Vec<(String, String)>,
    /// Directories the guest may read, as `(host path, guest path)`.
    pub dirs: Vec<(PathBuf, String)>,
    /// The hosts it may send HTTP requests or connect to (none by default).
    pub outbound: Arc<OutboundPolicy>,
    /// The key-value buckets it may open (none by default).
    pub key_value: KeyValueSpec,
    /// The SQL databases it may open (none by default).
    pub databases: DatabaseSpec,
    /// The values `wasi:config` gives it, secrets among them.
    pub config: Vec<ConfigValue>,
}
