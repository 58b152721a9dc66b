//! The admin listener (default 127.0.0.1:9090): health, readiness, app
//! introspection and reloads. It is separate from the app listener so it can
//! be kept off public interfaces.
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | `200 ok` while the process runs |
//! | `GET /readyz` | `200 ready`; `503 draining` once shutdown started |
//! | `GET /apps` | JSON: each app's name, module, digest, limits, reload counts |
//! | `GET /metrics` | Prometheus text format: requests, latencies, queue, instances, failures, reloads, process |
//! | `POST /admin/reload` | re-reads the config file (`serve --config`), then reloads every app from its module file; JSON result per app, `200` if all succeeded or were unchanged, else `422` |

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
        let state = state.clone();
        let service = hyper::service::service_fn(move |request| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(route(&state, request).await) }
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

async fn route(state: &AdminState, request: Request<Incoming>) -> Response<Full<Bytes>> {
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
