//! How a Python app's target object is served.

use std::fmt;

/// How a Python app's target object is served (`--interface`, `interface`
/// in wasmhost.toml).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interface {
    /// A `wasmhost.App`, or a module defining its own `IncomingHandler`.
    #[default]
    Auto,
    /// A `wasmhost.App` (the Python SDK).
    Sdk,
    /// A WSGI callable, such as a Flask app.
    Wsgi,
}

impl Interface {
    /// The name the SDK's entry point takes, as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Auto => "auto",
            Interface::Sdk => "sdk",
            Interface::Wsgi => "wsgi",
        }
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
