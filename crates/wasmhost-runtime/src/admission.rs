//! What a request must pass before it may take an instance: a declared body
//! within `max_body_size`, a `Host`, and, for a route whose body has a
//! schema, a body that is valid JSON for it. Small bodies are read here too,
//! so that neither an invalid request nor a slow client ever holds an
//! instance.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use wasmhost_platform::{CompiledSchema, DeclaredRoutes, Problem};

use crate::body::{buffered, GuestBody, ResponseBody};
use crate::metrics::METRICS;
use crate::outcome::{AppResponse, Refusal};
use wasmhost_spec::Limits;

/// Bodies declaring at most this many bytes are read before the request
/// takes an instance.
const BUFFERED_BODY_MAX: u64 = 1 << 20;

/// Bodies up to this size are validated on the async thread that read them
/// (microseconds); larger ones on a blocking thread.
const INLINE_CHECK_MAX: usize = 64 << 10;

/// Why a request was not admitted.
pub enum Rejected {
    /// The host's plain refusal.
    Refused(Refusal),
    /// The body broke its route's schema: an RFC 9457 problem.
    Invalid(Problem),
}

impl From<Refusal> for Rejected {
    fn from(refusal: Refusal) -> Self {
        Rejected::Refused(refusal)
    }
}

impl Rejected {
    /// The response for app `app`, counted in `wasmhost_rejected_requests_total`.
    pub fn response(self, app: &str) -> AppResponse {
        match self {
            Rejected::Refused(refusal) => refusal.response(app),
            Rejected::Invalid(problem) => {
                let status = StatusCode::from_u16(problem.status()).unwrap_or(StatusCode::BAD_REQUEST);
                METRICS.rejected.with_label_values(&[app, status.as_str()]).inc();
                let mut response = Response::new(ResponseBody::full(Bytes::from(problem.to_json_bytes())));
                *response.status_mut() = status;
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
                response
            }
        }
    }
}

/// Admits `request` under `limits` and the app's declared `routes`: the
/// request to hand to the guest (its body read whole when it is small or
/// checked against a schema), or why not.
pub async fn admit<B>(
    request: http::Request<B>,
    limits: &Limits,
    routes: Option<&DeclaredRoutes>,
) -> Result<http::Request<GuestBody>, Rejected>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    if declared_length(&request).is_some_and(|len| len > limits.max_body_size) {
        return Err(Refusal::BodyTooLarge.into());
    }
    if request.uri().authority().is_none() && !request.headers().contains_key(header::HOST) {
        return Err(Refusal::MissingHost.into());
    }
    let schema = routes.and_then(|routes| routes.body_schema(request.method().as_str(), request.uri().path()));
    match schema {
        Some(schema) => validate_body(request, schema, limits).await,
        None => read_small_body(request, limits).await,
    }
}

/// Reads the whole body (within `max_body_size` and `request_timeout`) and
/// checks it against the route's `schema`.
async fn validate_body<B>(
    request: http::Request<B>,
    schema: &Arc<CompiledSchema>,
    limits: &Limits,
) -> Result<http::Request<GuestBody>, Rejected>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    let (parts, mut body) = request.into_parts();
    let limit = limits.max_body_size;
    let read = async {
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return Err(Refusal::BodyUnreadable) };
            if let Some(data) = frame.data_ref() {
                if (bytes.len() + data.len()) as u64 > limit {
                    return Err(Refusal::BodyTooLarge);
                }
                bytes.extend_from_slice(data);
            }
        }
        Ok(Bytes::from(bytes))
    };
    let bytes = match tokio::time::timeout(limits.request_timeout, read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(refusal)) => return Err(refusal.into()),
        Err(_) => return Err(Refusal::BodyTimeout.into()),
    };
    // A Content-Type that is not even ASCII is not JSON's: 415.
    let content_type = parts.headers.get(header::CONTENT_TYPE).map(|value| value.to_str().unwrap_or("?"));
    let checked = if bytes.len() <= INLINE_CHECK_MAX {
        wasmhost_platform::check_body(schema, content_type, &bytes)
    } else {
        // Large bodies take milliseconds to seconds: off the async threads.
        let (schema, content_type, bytes) = (schema.clone(), content_type.map(str::to_owned), bytes.clone());
        let check = move || wasmhost_platform::check_body(&schema, content_type.as_deref(), &bytes);
        tokio::task::spawn_blocking(check).await.map_err(|_| Refusal::ValidationFailed)?
    };
    checked.map_err(Rejected::Invalid)?;
    Ok(buffered(parts, bytes))
}

/// Buffers a body that declares at most [`BUFFERED_BODY_MAX`] bytes, within
/// `request_timeout`; other bodies stream to the guest.
async fn read_small_body<B>(request: http::Request<B>, limits: &Limits) -> Result<http::Request<GuestBody>, Rejected>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    if declared_length(&request).is_none_or(|len| len > BUFFERED_BODY_MAX) {
        return Ok(request.map(|body| body.map_err(Into::into).boxed_unsync()));
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(limits.request_timeout, body.collect()).await {
        Ok(Ok(collected)) => Ok(buffered(parts, collected.to_bytes())),
        Ok(Err(_)) => Err(Refusal::BodyUnreadable.into()),
        Err(_) => Err(Refusal::BodyTimeout.into()),
    }
}

/// The request's `Content-Length`, if it declares one.
fn declared_length<B>(request: &http::Request<B>) -> Option<u64> {
    request.headers().get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}
