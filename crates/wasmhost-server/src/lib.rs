//! The HTTP front of wasmhost: accepts connections, routes each request to an
//! [`App`], tags it with a request id, writes the access log, and shuts down
//! gracefully.
//!
//! hyper serves HTTP/1.1 and HTTP/2 (h2c, prior knowledge) with its
//! hardening switched on: a timer is installed so the header read timeout
//! actually fires (and it also bounds the wait for a new connection's first
//! bytes), the request head is capped, and the number of open connections is
//! bounded (further connections wait in the kernel's accept backlog).

mod accept;
mod access;
mod admin;
mod router;
mod target;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasmhost_runtime::metrics::METRICS;
use wasmhost_spec::{AccessLogFormat, ServerOptions};

use accept::Acceptor;
pub use access::LoggedBody;
pub use admin::{reload_all, serve_admin, AdminAccess, AdminState, ConfigReload};
pub use router::{Chosen, Router};

/// Name of the header carrying the request id, in both directions.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting and lets open requests finish for up to `drain_timeout`.
pub async fn serve(
    listener: TcpListener,
    router: Arc<Router>,
    options: &ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let mut http1 = http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(options.max_header_size.max(8192))
        // `max_buf_size` alone lets a head that arrives in one read grow
        // past the limit; this checks the whole head.
        .max_header_size(options.max_header_size)
        .keep_alive(true);
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2.timer(TokioTimer::new()).max_concurrent_streams(128).max_header_list_size(options.max_header_size as u32);
    let (http1, http2) = (Arc::new(http1), Arc::new(http2));

    let access_log = Arc::new(options.access_log.clone());
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(options.max_connections));
    let mut acceptor = Acceptor::new(listener, "http");
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = acceptor.accept() => accepted,
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (router, access_log) = (router.clone(), access_log.clone());
        let service = hyper::service::service_fn(move |request| {
            let (router, access_log) = (router.clone(), access_log.clone());
            async move { Ok::<_, Infallible>(handle(&router, access_log, request, peer).await) }
        });
        let (http1, http2, watcher) = (http1.clone(), http2.clone(), graceful.watcher());
        let header_read_timeout = options.header_read_timeout;
        tokio::spawn(async move {
            let result = match detect_protocol(&stream, header_read_timeout).await {
                Some(Protocol::Http1) => {
                    let connection = http1.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection).await
                }
                Some(Protocol::Http2) => {
                    let connection = http2.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection).await
                }
                None => Ok(()),
            };
            if let Err(err) = result {
                // hyper answered these itself (431, 400), before any app.
                if err.is_parse_too_large() {
                    METRICS.rejected.with_label_values(&["-", "431"]).inc();
                } else if err.is_parse() {
                    METRICS.rejected.with_label_values(&["-", "400"]).inc();
                }
                tracing::debug!(%peer, "connection ended: {err}");
            }
            drop(permit);
        });
    }

    drop(acceptor);
    tracing::info!(open_connections = graceful.count(), "stopped accepting; draining");
    match tokio::time::timeout(options.drain_timeout, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections drained"),
        Err(_) => tracing::warn!("drain timeout reached; closing remaining connections"),
    }
    Ok(())
}

/// The HTTP version a client speaks.
enum Protocol {
    Http1,
    /// HTTP/2 with prior knowledge (h2c): the client opened with the preface.
    Http2,
}

/// The HTTP/2 client connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Looks at a new connection's first bytes, without consuming them, to tell
/// HTTP/1 from HTTP/2. A client that has not sent enough to tell within
/// `timeout` (nothing at all, or a stalled partial preface) is dropped: the
/// header read timeout covers the very first bytes too.
///
/// hyper-util's `server::conn::auto::Builder` tells the two apart as well,
/// but its version read (`read_version`, hyper-util 0.1.21) has no timeout of
/// its own, and hyper's header read timeout only starts once HTTP/1 parsing
/// does: a client that sends `PRI * HTT` and stalls would hold a connection
/// slot for as long as the kernel keeps the socket. Peeking under the
/// header read timeout keeps every connection's first bytes bounded.
async fn detect_protocol(stream: &tokio::net::TcpStream, timeout: Duration) -> Option<Protocol> {
    let detect = async {
        let mut buf = [0u8; H2_PREFACE.len()];
        loop {
            let n = stream.peek(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            if !H2_PREFACE.starts_with(&buf[..n]) {
                return Some(Protocol::Http1);
            }
            if n == H2_PREFACE.len() {
                return Some(Protocol::Http2);
            }
            // A prefix of the preface: wait for more bytes. `peek` returns
            // at once while bytes are buffered, so pace the retries.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(timeout, detect).await.ok().flatten()
}

/// Request → router → app → response, with the request id and access log.
async fn handle(
    router: &Router,
    access_log: Arc<AccessLogFormat>,
    mut request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<LoggedBody> {
    let started = Instant::now();
    let request_id = request_id(&request);
    let mut log = access::AccessLog::new(access_log, &request, &request_id, peer, started);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        request.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let response = if let Err(reason) = target::admit(&mut request) {
        METRICS.rejected.with_label_values(&["-", "400"]).inc();
        wasmhost_runtime::outcome::error_response(http::StatusCode::BAD_REQUEST, reason)
    } else {
        match router.choose(&request) {
            Some(chosen) => {
                log.app(chosen.app.name());
                target::strip_prefix(&mut request, chosen.strip);
                chosen.app.handle(request, &request_id).await
            }
            None => {
                wasmhost_runtime::outcome::error_response(http::StatusCode::NOT_FOUND, "no app serves this address")
            }
        }
    };
    let (mut parts, body) = response.into_parts();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        parts.headers.insert(REQUEST_ID_HEADER, value);
    }
    log.response(&parts);
    Response::from_parts(parts, LoggedBody::new(body, log))
}

/// The client's `x-request-id` when it is short and printable, else a new
/// random one.
fn request_id<B>(request: &Request<B>) -> String {
    let given = request.headers().get(REQUEST_ID_HEADER).and_then(|value| value.to_str().ok()).filter(|id| {
        !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    });
    match given {
        Some(id) => id.to_owned(),
        None => format!("{:016x}", rand::random::<u64>()),
    }
}

/// Resolves on the first SIGTERM or SIGINT. A second one exits the process
/// at once, for an operator who does not want to wait for the drain.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers; stop the server with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutdown requested; send the signal again to exit immediately");
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("second signal: exiting without draining");
        std::process::exit(130);
    });
}

#[cfg(test)]
mod tests {
    use super::{request_id, Request, REQUEST_ID_HEADER};

    fn with_id(id: &str) -> Request<()> {
        Request::builder().header(REQUEST_ID_HEADER, id).body(()).unwrap()
    }

    #[test]
    fn client_request_id_is_kept_when_sane() {
        assert_eq!(request_id(&with_id("abc-123_x.y:z")), "abc-123_x.y:z");
    }

    #[test]
    fn unsafe_or_missing_request_ids_are_replaced() {
        for bad in ["", "has space", "semi;colon/slash", &"x".repeat(129)] {
            let id = request_id(&with_id(bad));
            assert_ne!(id, bad);
            assert_eq!(id.len(), 16, "generated ids are 16 hex digits");
        }
        let generated = request_id(&Request::new(()));
        assert!(generated.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
