//! Outbound HTTP and TCP for wasmhost guests: which hosts an app may call,
//! the client that calls them, and the checks on a guest's own TCP
//! connections ([`TcpGate`]).
//!
//! An app may call nothing unless its config lists it (`allowed_outbound`
//! in wasmhost.toml, `--allow-outbound` on the command line). An entry is
//! `[http://|https://]HOST[:PORT]`, where `HOST` is a name, `*.domain` (any
//! subdomain), `*` (any host), an IP address or a network (`10.0.0.0/8`).
//!
//! A request that no entry allows fails in the guest with
//! `HTTP-request-denied`. A name that is allowed is then resolved, and every
//! loopback, private, link-local or otherwise non-public address it resolves
//! to is dropped unless an entry lists that address (an IP, a network, or
//! `localhost` for loopback); when nothing is left the guest gets
//! `destination-IP-prohibited`. The client then connects to one of the
//! checked addresses, so a second DNS answer cannot slip in between the
//! check and the connection. The authority is the one the guest wrote in
//! its request; the inbound request's `Host` header plays no part.
//! "Private" is judged by the IANA special-purpose address registries
//! ([`is_public`]).
//!
//! Every request also takes a place in its app's [`ConnectionBudget`]
//! before it resolves anything, and keeps it until its connection closes;
//! beyond the app's or the instance's bound the guest gets
//! `connection-limit-reached` at once.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

pub use wasmhost_spec::allow_list::{Denied, OutboundPolicy};

mod address;
mod budget;
mod metrics;
mod tcp;

pub use address::is_public;
pub use budget::{ConnectionBudget, ConnectionPermit, InstanceBudget, LimitReached};
pub use tcp::TcpGate;

/// Longest wait for a connection when the guest sets no connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a response head, or between two body frames, when the
/// guest sets no timeout of its own.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a request to `uri` may connect under `policy`: the checked
/// addresses, in the order DNS gave them (loopback, private and other
/// special-purpose addresses only when an entry lists them); or why not.
pub async fn resolve(policy: &OutboundPolicy, uri: &http::Uri, timeout: Duration) -> Result<Vec<SocketAddr>, Denied> {
    let target = policy.admit(uri)?;
    let resolved: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => {
            match tokio::time::timeout(timeout, tokio::net::lookup_host((target.host.as_str(), target.port))).await {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(_)) => return Err(Denied::Dns),
                Err(_) => return Err(Denied::DnsTimeout),
            }
        }
    };
    let allowed: Vec<SocketAddr> =
        resolved.iter().copied().filter(|addr| is_public(addr.ip()) || target.lists_address(addr.ip())).collect();
    match (resolved.is_empty(), allowed.is_empty()) {
        (true, _) => Err(Denied::Dns),
        (false, true) => Err(Denied::PrivateAddress),
        (false, false) => Ok(allowed),
    }
}

/// The `wasi:http` error code a guest sees for a refusal.
fn denied_error(denied: Denied) -> Error {
    match denied {
        Denied::InvalidUri => Error::HttpRequestUriInvalid,
        Denied::NotListed | Denied::Inbound => Error::HttpRequestDenied,
        Denied::PrivateAddress => Error::DestinationIpProhibited,
        Denied::Dns => Error::DnsError { rcode: None, info_code: None },
        Denied::DnsTimeout => Error::DnsTimeout,
    }
}

/// The `wasi:http` hooks of one instance: sends what its app's policy
/// allows, within the instance's share of the app's connection budget, and
/// refuses the rest.
pub struct OutboundHooks {
    app: Arc<str>,
    policy: Arc<OutboundPolicy>,
    connections: InstanceBudget,
}

impl OutboundHooks {
    /// Hooks for an instance of `app`, allowing what `policy` lists, with
    /// at most as many connections open at once as `connections` permits.
    pub fn new(app: Arc<str>, policy: Arc<OutboundPolicy>, connections: InstanceBudget) -> Self {
        Self { app, policy, connections }
    }

    /// The instance's connection budget, which its TCP sockets share.
    pub fn connections(&self) -> &InstanceBudget {
        &self.connections
    }
}

/// The future of a request's connection I/O, which `wasi:http` watches for
/// errors after the response head arrived.
type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send> {
        // Taken before anything else, DNS included, and held until the
        // connection closes; refused at once when the budget is spent.
        let permit = match self.connections.try_acquire() {
            Ok(permit) => permit,
            Err(_) => return Box::new(std::future::ready(Err(Error::ConnectionLimitReached))),
        };
        let (app, policy) = (self.app.clone(), self.policy.clone());
        Box::new(async move {
            let connect_timeout = options.and_then(|o| o.connect_timeout).unwrap_or(CONNECT_TIMEOUT);
            let addrs = match resolve(&policy, request.uri(), connect_timeout).await {
                Ok(addrs) => addrs,
                Err(denied) => {
                    metrics::rejected(&app, denied.label());
                    tracing::warn!(app = %app, uri = %request.uri(), reason = denied.reason(), "outbound HTTP request refused");
                    return Err(denied_error(denied));
                }
            };
            tracing::debug!(app = %app, uri = %request.uri(), "outbound HTTP request");
            send(request, &addrs, options, permit).await
        })
    }
}

/// Sends `request` over a new HTTP/1.1 connection to the first of `addrs`
/// that accepts one, with TLS for `https`. The connection's `permit` goes
/// with its I/O future, which ends when the connection closes (the response
/// body read to its end or dropped) or is dropped with the response.
async fn send(
    mut request: http::Request<WasiBody>,
    addrs: &[SocketAddr],
    options: Option<RequestOptions>,
    permit: ConnectionPermit,
) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
    let connect_timeout = options.and_then(|o| o.connect_timeout).unwrap_or(CONNECT_TIMEOUT);
    let first_byte_timeout = options.and_then(|o| o.first_byte_timeout).unwrap_or(READ_TIMEOUT);
    let between_bytes_timeout = options.and_then(|o| o.between_bytes_timeout).unwrap_or(READ_TIMEOUT);

    let stream =
        tokio::time::timeout(connect_timeout, connect(addrs)).await.map_err(|_| Error::ConnectionTimeout)??;
    let io: Box<dyn IoStream> = if request.uri().scheme() == Some(&Scheme::HTTPS) {
        let host = request.uri().host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())?;
        let connector = tokio_rustls::TlsConnector::from(tls_config());
        Box::new(
            tokio::time::timeout(connect_timeout, connector.connect(name, stream))
                .await
                .map_err(|_| Error::ConnectionTimeout)?
                .map_err(Error::Tls)?,
        )
    } else {
        Box::new(stream)
    };
    let (mut sender, conn) =
        tokio::time::timeout(connect_timeout, hyper::client::conn::http1::handshake(TokioIo::new(io)))
            .await
            .map_err(|_| Error::ConnectionTimeout)??;

    // The request line carries only the path; the authority is in `Host`.
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;

    // Drive the connection while waiting for the response head, then hand
    // it to `wasi:http`, which watches it for errors while the body streams.
    let mut conn = Box::pin(conn);
    let mut conn_result = None;
    let response = {
        let send = sender.send_request(request);
        tokio::pin!(send);
        let head = async {
            loop {
                tokio::select! {
                    response = &mut send => break response,
                    result = &mut conn, if conn_result.is_none() => conn_result = Some(result),
                }
            }
        };
        tokio::time::timeout(first_byte_timeout, head).await.map_err(|_| Error::ConnectionReadTimeout)??
    };
    let io_future: IoFuture = Box::new(async move {
        let _permit = permit;
        match conn_result {
            Some(result) => result.map_err(Error::from),
            None => conn.await.map_err(Error::from),
        }
    });
    let response = response.map(|body| {
        TimedBody { body, timeout: between_bytes_timeout, sleep: Box::pin(tokio::time::sleep(between_bytes_timeout)) }
            .boxed_unsync()
    });
    Ok((response, io_future))
}

/// A connection, plain or TLS.
trait IoStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> IoStream for T {}

/// Connects to the first of `addrs` that accepts.
async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, Error> {
    let mut last = Error::ConnectionRefused;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => last = Error::ConnectionRefused,
            Err(err) => last = Error::Connect(err),
        }
    }
    Err(last)
}

/// TLS client settings: the Mozilla root certificates, no client auth.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
            Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
        })
        .clone()
}

/// A response body that fails with `connection-read-timeout` when no frame
/// arrives for `timeout`.
struct TimedBody {
    body: hyper::body::Incoming,
    timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let deadline = tokio::time::Instant::now() + self.timeout;
                self.sleep.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(Error::from(err)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(self.sleep.as_mut().poll(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OutboundPolicy {
        OutboundPolicy::new(entries).unwrap()
    }

    async fn check(policy: &OutboundPolicy, uri: &str) -> Result<Vec<SocketAddr>, Denied> {
        resolve(policy, &uri.parse().unwrap(), Duration::from_secs(5)).await
    }

    #[tokio::test]
    async fn listed_public_addresses_resolve() {
        let policy = policy(&["8.8.8.8", "http://198.51.100.7:8080"]);
        assert_eq!(check(&policy, "http://8.8.8.8:1234/x").await, Ok(vec!["8.8.8.8:1234".parse().unwrap()]));
        assert_eq!(check(&policy, "http://198.51.100.7/").await, Err(Denied::NotListed), "port 80, not 8080");
    }

    #[tokio::test]
    async fn private_addresses_need_an_entry_of_their_own() {
        // `*` and names allow public addresses only.
        let any = policy(&["*"]);
        for uri in [
            "http://127.0.0.1:9/",
            "http://10.1.2.3/",
            "http://[::1]/",
            "http://169.254.169.254/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert_eq!(check(&any, uri).await, Err(Denied::PrivateAddress), "{uri}");
        }
        assert_eq!(check(&any, "http://localhost:9/").await, Err(Denied::PrivateAddress));
        // Listing the address, its network or `localhost` lets it through.
        let listed = policy(&["http://127.0.0.1:9", "10.0.0.0/8", "localhost"]);
        assert!(check(&listed, "http://127.0.0.1:9/").await.is_ok());
        assert!(check(&listed, "http://10.1.2.3/").await.is_ok());
        let local = check(&listed, "http://localhost:7/").await.unwrap();
        assert!(local.iter().all(|addr| addr.ip().is_loopback()), "{local:?}");
    }
}
