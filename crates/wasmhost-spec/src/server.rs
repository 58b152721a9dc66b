//! The HTTP server's own settings: where it listens, connection limits
//! and timeouts, the access log.

use std::net::SocketAddr;
use std::time::Duration;

use bytesize::ByteSize;

use crate::AccessLogFormat;

/// Where the server listens by default (`--addr`, `addr`).
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

/// Where the admin listener listens by default (`--admin-addr`, `admin_addr`).
pub const DEFAULT_ADMIN_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9090);

/// Connection-level limits and timeouts. [`ServerOptions::default`] holds
/// the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Time a client has to send a complete request head; also closes idle
    /// keep-alive connections.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_size: usize,
    /// Longest wait for in-flight requests at shutdown.
    pub drain_timeout: Duration,
    /// How the access log is written.
    pub access_log: AccessLogFormat,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            max_header_size: 32 << 10,
            drain_timeout: Duration::from_secs(30),
            access_log: AccessLogFormat::default(),
        }
    }
}

/// The server options as the command line or a config file's `[server]`
/// sets them; [`ServerSettings::resolve`] turns them into [`ServerOptions`]
/// (see [`crate::LimitSettings`] for how the two sources meet).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ServerSettings {
    /// Most client connections open at once; more wait in the accept backlog.
    #[arg(long, default_value = ServerOptions::default().max_connections.to_string())]
    pub max_connections: Option<usize>,
    /// Time a client has to send its request head; idle connections close after it too.
    #[arg(long, default_value = humantime::Duration::from(ServerOptions::default().header_read_timeout).to_string())]
    pub header_read_timeout: Option<humantime::Duration>,
    /// Largest request head (request line and headers); larger ones get 431.
    #[arg(long, default_value = ByteSize(ServerOptions::default().max_header_size as u64).to_string())]
    pub max_header_size: Option<ByteSize>,
    /// Longest wait for in-flight requests after SIGTERM or SIGINT.
    #[arg(long, default_value = humantime::Duration::from(ServerOptions::default().drain_timeout).to_string())]
    pub drain_timeout: Option<humantime::Duration>,
    /// Access log: `fields` (one structured event per request, JSON with
    /// --log-format json), `off`, or a template such as
    /// '{peer} "{method} {path}" {status} {bytes} {duration_ms}ms'. Fields:
    /// time, app, method, path, status, duration_ms, bytes, end, request_id, peer.
    #[arg(long, default_value = AccessLogFormat::default().to_string())]
    pub access_log: Option<AccessLogFormat>,
}

impl ServerSettings {
    /// The options these settings give: each one set, or its default.
    pub fn resolve(&self) -> anyhow::Result<ServerOptions> {
        let default = ServerOptions::default();
        let max_header_size = match self.max_header_size {
            None => default.max_header_size,
            Some(size) => usize::try_from(size.as_u64())
                .map_err(|_| anyhow::anyhow!("`max_header_size` of {size} is too large for this machine"))?,
        };
        Ok(ServerOptions {
            max_connections: self.max_connections.unwrap_or(default.max_connections).max(1),
            header_read_timeout: self.header_read_timeout.map_or(default.header_read_timeout, Into::into),
            max_header_size,
            drain_timeout: self.drain_timeout.map_or(default.drain_timeout, Into::into),
            access_log: self.access_log.clone().unwrap_or(default.access_log),
        })
    }
}
