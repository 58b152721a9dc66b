//! The admin listener (default 127.0.0.1:9090): health, readiness, app
//! introspection and reloads. It is separate from the app listener so it can
//! be kept off public interfaces.
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | `200 ok` while the process runs |
//! | `GET /readyz` | `200 ready`; `503 draining` once shutdown started |
//! | `GET /apps` | JSON: each app's name, module, digest, limits, reload counts |
//! | `POST /admin/reload` | reloads every app from its module file; JSON result per app, `200` if all succeeded or were unchanged, else `422` |

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;
use wasmhost_reload::Reloaded;

use crate::Router;

/// What the admin listener reports on.
pub struct AdminState {
    /// The apps.
    pub router: Arc<Router>,
    /// Set when shutdown starts; readiness turns false.
    pub draining: Arc<AtomicBool>,
}

/// Serves the admin routes on `listener` until the process ends.
pub async fn serve_admin(listener: TcpListener, state: Arc<AdminState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
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
        (&Method::POST, "/admin/reload") => reload(state).await,
        (_, "/healthz" | "/readyz" | "/apps" | "/admin/reload") => {
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
                },
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

async fn reload(state: &AdminState) -> Response<Full<Bytes>> {
    let mut results = Vec::new();
    let mut all_ok = true;
    for slot in state.router.slots() {
        let result = match slot.reload("admin").await {
            Ok(Reloaded::Swapped(digest)) => json!({"app": slot.name(), "result": "swapped", "digest": digest}),
            Ok(Reloaded::Unchanged) => json!({"app": slot.name(), "result": "unchanged"}),
            Err(err) => {
                all_ok = false;
                json!({"app": slot.name(), "result": "refused", "error": format!("{err:#}")})
            }
        };
        results.push(result);
    }
    let status = if all_ok { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    json_response(status, &json!({ "reloads": results }))
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string() + "\n")));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}
