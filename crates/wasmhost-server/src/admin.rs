//! The admin listener (default 127.0.0.1:9090): health, readiness, app
//! introspection and reloads. It is separate from the app listener so it can
//! be kept off public interfaces.
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | `200 ok` while the process runs |
//! | `GET /readyz` | `200 ready`; `503 draining` once shutdown started |
//! | `GET /apps` | JSON: each app's name, module, digest, limits, buckets, config keys (never values), reload counts |
//! | `GET /metrics` | Prometheus text format: requests, latencies, queue, instances, failures, reloads, process |
//! | `POST /admin/reload` | re-reads the config file (`serve --config`), then reloads every app from its module file; JSON result per app, `200` if all succeeded or were unchanged, else `422` |
//!
//! A web page open in a browser on the same machine can send requests to
//! `127.0.0.1:9090` too, so the listener only answers a `Host` that names it
//! (a loopback name or address, the address the client connected to, or a
//! name given with `--admin-host`): a DNS-rebound name gets `421`. A reload
//! must be a request a page cannot send without asking first: `POST` with
//! `Content-Type: application/json`, from no foreign `Origin`. With
//! `--admin-token-file`, every route but `/healthz` and `/readyz` also needs
//! `Authorization: Bearer TOKEN`. See [`AdminAccess`].

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::TextEncoder;
use serde_json::json;
use tokio::net::TcpListener;
use wasmhost_reload::Reloaded;
use wasmhost_runtime::metrics::METRICS;
use wasmhost_spec::allow_list::Protocol;

use crate::accept::Acceptor;
use crate::Router;

/// What the admin listener reports on.
pub struct AdminState {
    /// The apps.
    pub router: Arc<Router>,
    /// Set when shutdown starts; readiness turns false.
    pub draining: Arc<AtomicBool>,
    /// Re-reads the config file, for a process serving one.
    pub config: Option<ConfigReload>,
    /// Who may use the admin listener.
    pub access: AdminAccess,
}

/// Who may use the admin listener besides its own machine's processes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AdminAccess {
    /// Host names (lower case, no port) the listener answers for, besides
    /// loopback names and addresses and the address a client connected to.
    pub hosts: Vec<String>,
    /// The bearer token every route but `/healthz` and `/readyz` requires.
    pub token: Option<String>,
}

impl std::fmt::Debug for AdminAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = self.token.as_ref().map(|_| "<redacted>");
        f.debug_struct("AdminAccess").field("hosts", &self.hosts).field("token", &token).finish()
    }
}

impl AdminAccess {
    /// Access for `hosts`, with the token read from `token_file` (its first
    /// line, trimmed) when given.
    pub fn new(hosts: Vec<String>, token_file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let token = match token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the admin token file {}", path.display()))?;
                let token = text.lines().next().unwrap_or_default().trim().to_owned();
                anyhow::ensure!(
                    token.len() >= 16 && token.bytes().all(|b| b.is_ascii_graphic()),
                    "the admin token in {} must be at least 16 printable characters on its first line \
                     (e.g. `openssl rand -hex 32 > {}`)",
                    path.display(),
                    path.display()
                );
                Some(token)
            }
            None => None,
        };
        let hosts = hosts.into_iter().map(|host| host.trim_end_matches('.').to_ascii_lowercase()).collect();
        Ok(Self { hosts, token })
    }

    /// Warns when the admin listener on `addr` is reachable from other
    /// machines without a token.
    pub fn warn_if_open(&self, addr: std::net::SocketAddr) {
        if self.token.is_none() && !addr.ip().is_loopback() {
            tracing::warn!(
                %addr,
                "the admin API listens beyond this machine without --admin-token-file: anyone who can reach it \
                 can reload apps and read /apps and /metrics"
            );
        }
    }

    /// Why `request`, received on a connection to `local`, must not be
    /// served: the refusal to send instead.
    fn refusal<B>(&self, request: &Request<B>, local: std::net::IpAddr) -> Option<Response<Full<Bytes>>> {
        if let Some(host) = request_host(request) {
            if !self.names_listener(&host, local) {
                return Some(text_response(
                    StatusCode::MISDIRECTED_REQUEST,
                    format!("the admin API does not answer for host {host:?}; add it with --admin-host\n"),
                ));
            }
        }
        let path = request.uri().path();
        if let Some(token) = &self.token {
            let open = matches!(path, "/healthz" | "/readyz");
            if !open && !bearer_matches(request, token) {
                let mut response = text(StatusCode::UNAUTHORIZED, "send Authorization: Bearer TOKEN\n");
                response.headers_mut().insert(header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
                return Some(response);
            }
        }
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let headers = request.headers();
            let cross_site =
                headers.get("sec-fetch-site").is_some_and(|site| !matches!(site.as_bytes(), b"same-origin" | b"none"));
            if headers.contains_key(header::ORIGIN) || cross_site {
                return Some(text(StatusCode::FORBIDDEN, "admin requests from web pages are refused\n"));
            }
            let json = headers
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split(';').next())
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
            if !json {
                return Some(text(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "send admin POSTs with Content-Type: application/json\n",
                ));
            }
        }
        None
    }

    /// Whether `host` (lower case, no port) names this listener.
    fn names_listener(&self, host: &str, local: std::net::IpAddr) -> bool {
        let ip = host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>();
        match ip {
            Ok(ip) => ip.to_canonical().is_loopback() || ip.to_canonical() == local.to_canonical(),
            Err(_) => host == "localhost" || host.ends_with(".localhost") || self.hosts.iter().any(|h| h == host),
        }
    }
}

/// The request's host, lower case, without port or trailing dot.
fn request_host<B>(request: &Request<B>) -> Option<String> {
    let authority = match request.uri().authority() {
        Some(authority) => authority.clone(),
        None => request.headers().get(header::HOST)?.to_str().ok()?.parse().ok()?,
    };
    Some(authority.host().trim_end_matches('.').to_ascii_lowercase())
}

/// Whether the request carries `Authorization: Bearer token`, compared in
/// constant time.
fn bearer_matches<B>(request: &Request<B>, token: &str) -> bool {
    let Some(given) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (given, token) = (given.trim().as_bytes(), token.as_bytes());
    given.len() == token.len() && given.iter().zip(token).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

/// Re-reads a config file and swaps in the apps that were added or changed
/// (`trigger` says why, for the log); a JSON summary of what changed, or
/// why the new file was refused while the old apps keep serving.
pub type ConfigReload =
    Arc<dyn Fn(&'static str) -> Pin<Box<dyn Future<Output = anyhow::Result<serde_json::Value>> + Send>> + Send + Sync>;

/// Reloads what the process serves: the config file first (when there is
/// one), then every app from its module file. Returns whether everything
/// was reloaded or unchanged, and a JSON report (the body of
/// `POST /admin/reload`).
pub async fn reload_all(
    router: &Router,
    config: Option<&ConfigReload>,
    trigger: &'static str,
) -> (bool, serde_json::Value) {
    let mut all_ok = true;
    let mut report = serde_json::Map::new();
    if let Some(config) = config {
        let result = match config(trigger).await {
            Ok(summary) => json!({"result": "applied", "changes": summary}),
            Err(err) => {
                all_ok = false;
                json!({"result": "refused", "error": format!("{err:#}")})
            }
        };
        report.insert("config".into(), result);
    }
    let mut results = Vec::new();
    for slot in router.slots() {
        let result = match slot.reload(trigger).await {
            Ok(Reloaded::Swapped(digest)) => json!({"app": slot.name(), "result": "swapped", "digest": digest}),
            Ok(Reloaded::Unchanged) => json!({"app": slot.name(), "result": "unchanged"}),
            Err(err) => {
                all_ok = false;
                json!({"app": slot.name(), "result": "refused", "error": format!("{err:#}")})
            }
        };
        results.push(result);
    }
    report.insert("reloads".into(), results.into());
    (all_ok, report.into())
}

/// Serves the admin routes on `listener` until the process ends.
pub async fn serve_admin(listener: TcpListener, state: Arc<AdminState>) {
    let mut acceptor = Acceptor::new(listener, "admin");
    loop {
        let (stream, _) = acceptor.accept().await;
        let Ok(local) = stream.local_addr().map(|addr| addr.ip()) else { continue };
        let state = state.clone();
        let service = hyper::service::service_fn(move |request| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(route(&state, request, local).await) }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(state: &AdminState, request: Request<Incoming>, local: std::net::IpAddr) -> Response<Full<Bytes>> {
    if let Some(refusal) = state.access.refusal(&request, local) {
        return refusal;
    }
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => {
            if state.draining.load(Ordering::Acquire) {
                text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
            } else {
                text(StatusCode::OK, "ready\n")
            }
        }
        (&Method::GET, "/apps") => apps(state),
        (&Method::GET, "/metrics") => metrics(state),
        (&Method::POST, "/admin/reload") => reload(state).await,
        (_, "/healthz" | "/readyz" | "/apps" | "/metrics" | "/admin/reload") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn apps(state: &AdminState) -> Response<Full<Bytes>> {
    let apps: Vec<_> = state
        .router
        .slots()
        .iter()
        .map(|slot| {
            let app = slot.current();
            let limits = app.limits();
            let stats = slot.stats();
            json!({
                "name": slot.name(),
                "module": slot.path().display().to_string(),
                "digest": app.digest(),
                "isolation": format!("{:?}", limits.isolation).to_lowercase(),
                "limits": {
                    "max_instances": limits.max_instances,
                    "min_instances": limits.min_instances,
                    "max_queue": limits.max_queue,
                    "queue_timeout_ms": limits.queue_timeout.as_millis() as u64,
                    "request_timeout_ms": limits.request_timeout.as_millis() as u64,
                    "memory_limit": limits.memory_limit,
                    "recycle_memory": limits.recycle_memory,
                    "max_requests_per_instance": limits.max_requests_per_instance,
                    "max_body_size": limits.max_body_size,
                    "max_outbound_connections": limits.max_outbound_connections,
                    "max_outbound_connections_per_instance": limits.max_outbound_connections_per_instance,
                },
                "outbound_connections": app.connections().in_use(),
                // The allow-list as written (entries hold no credentials).
                "allowed_outbound": {
                    "http": app.spec().env.outbound.entries(Protocol::Web).collect::<Vec<_>>(),
                    "tcp": app.spec().env.outbound.entries(Protocol::Tcp).collect::<Vec<_>>(),
                },
                "key_value": {
                    "buckets": app.spec().env.key_value.buckets.iter().map(|bucket| &bucket.name).collect::<Vec<_>>(),
                    // Redis URLs without their passwords.
                    "backends": app.spec().env.key_value.buckets.iter()
                        .map(|bucket| (bucket.name.clone(), serde_json::Value::from(bucket.backend.redacted())))
                        .collect::<serde_json::Map<_, _>>(),
                    "data_dir": (!app.spec().env.key_value.buckets.is_empty())
                        .then(|| app.spec().env.key_value.dir.display().to_string()),
                    "max_key_size": limits.kv_max_key_size,
                    "max_value_size": limits.kv_max_value_size,
                    "max_keys": limits.kv_max_keys,
                },
                "databases": {
                    "names": &app.spec().env.databases.names,
                    "dir": (!app.spec().env.databases.names.is_empty())
                        .then(|| app.spec().env.databases.dir.display().to_string()),
                    "max_size": limits.sql_max_size,
                },
                // Keys only: values may be secrets.
                "config_keys": app.spec().env.config.iter().map(|value| &value.key).collect::<Vec<_>>(),
                "queued": app.queued(),
                "reloads": {
                    "swapped": stats.swapped.load(Ordering::Relaxed),
                    "unchanged": stats.unchanged.load(Ordering::Relaxed),
                    "failed": stats.failed.load(Ordering::Relaxed),
                },
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "apps": apps }))
}

/// Sets the state gauges from the apps as they are now, then encodes every
/// registered metric.
fn metrics(state: &AdminState) -> Response<Full<Bytes>> {
    METRICS.module_info.reset();
    for slot in state.router.slots() {
        let app = slot.current();
        let name = slot.name();
        let (idle, busy) = app.instance_counts();
        METRICS.queue_depth.with_label_values(&[name]).set(app.queued() as i64);
        METRICS.instances.with_label_values(&[name, "idle"]).set(idle as i64);
        METRICS.instances.with_label_values(&[name, "busy"]).set(busy as i64);
        METRICS.instances.with_label_values(&[name, "max"]).set(app.limits().max_instances as i64);
        METRICS.outbound_connections.with_label_values(&[name]).set(app.connections().in_use() as i64);
        METRICS.module_info.with_label_values(&[name, app.digest()]).set(1);
    }
    let mut text = String::new();
    if let Err(err) = TextEncoder::new().encode_utf8(&prometheus::gather(), &mut text) {
        tracing::warn!("cannot encode metrics: {err}");
        return text_response(StatusCode::INTERNAL_SERVER_ERROR, String::from("cannot encode metrics\n"));
    }
    let mut response = text_response(StatusCode::OK, text);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

async fn reload(state: &AdminState) -> Response<Full<Bytes>> {
    let (all_ok, report) = reload_all(&state.router, state.config.as_ref(), "admin").await;
    let status = if all_ok { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    json_response(status, &report)
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    text_response(status, String::from(body))
}

fn text_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string() + "\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, 3));

    fn status(access: &AdminAccess, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<u16> {
        let mut builder = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        access.refusal(&builder.body(()).unwrap(), LOCAL).map(|response| response.status().as_u16())
    }

    const JSON: (&str, &str) = ("content-type", "application/json");

    #[test]
    fn only_hosts_that_name_the_listener_are_answered() {
        let access = AdminAccess { hosts: vec!["admin.internal".into()], token: None };
        for host in
            ["localhost:9090", "127.0.0.1:9090", "[::1]:9090", "10.1.2.3:9090", "x.localhost", "Admin.Internal."]
        {
            assert_eq!(status(&access, "GET", "/apps", &[("host", host)]), None, "{host}");
        }
        for host in ["evil.example", "evil.example:9090", "10.9.9.9:9090", "localhost.evil.example"] {
            assert_eq!(status(&access, "GET", "/metrics", &[("host", host)]), Some(421), "{host}");
        }
    }

    #[test]
    fn a_reload_cannot_be_a_simple_cross_origin_request() {
        let access = AdminAccess::default();
        let host = ("host", "127.0.0.1:9090");
        assert_eq!(status(&access, "POST", "/admin/reload", &[host, JSON]), None);
        assert_eq!(status(&access, "POST", "/admin/reload", &[host, ("content-type", "text/plain")]), Some(415));
        assert_eq!(status(&access, "POST", "/admin/reload", &[host]), Some(415));
        let evil = ("origin", "http://evil.example");
        assert_eq!(status(&access, "POST", "/admin/reload", &[host, JSON, evil]), Some(403));
        let site = ("sec-fetch-site", "cross-site");
        assert_eq!(status(&access, "POST", "/admin/reload", &[host, JSON, site]), Some(403));
    }

    #[test]
    fn a_token_guards_everything_but_the_probes() {
        let access = AdminAccess { hosts: Vec::new(), token: Some("s3cret-token-0123456789".into()) };
        let host = ("host", "localhost");
        assert_eq!(status(&access, "GET", "/healthz", &[host]), None);
        assert_eq!(status(&access, "GET", "/readyz", &[host]), None);
        assert_eq!(status(&access, "GET", "/apps", &[host]), Some(401));
        assert_eq!(status(&access, "GET", "/apps", &[host, ("authorization", "Bearer wrong")]), Some(401));
        let good = ("authorization", "Bearer s3cret-token-0123456789");
        assert_eq!(status(&access, "GET", "/metrics", &[host, good]), None);
        assert_eq!(status(&access, "POST", "/admin/reload", &[host, good, JSON]), None);
    }
}
