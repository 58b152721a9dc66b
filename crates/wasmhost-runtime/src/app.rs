//! An app: one compiled component, its pool and its limits, turning HTTP
//! requests into guest calls and every guest failure into a status code.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use tokio::sync::oneshot;
use wasmtime::component::Linker;
use wasmtime::{Engine, Trap};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

use crate::cache::CompileCache;
use crate::exchange::{BufferedBody, RequestHead};
use crate::framing::check_response_head;
use crate::host::{GuestEnv, HostState};
use crate::limits::Limits;
use crate::metrics::METRICS;
use crate::pool::{InstancePool, Rejection};
use wasmhost_outbound::ConnectionBudget;
use wasmhost_platform::{CompiledSchema, ManifestExport, PlatformCtx, RouteTable, SchemaCache};

/// Largest module file accepted, in bytes.
pub const MAX_MODULE_SIZE: u64 = 512 << 20;

/// Reads a module file, refusing files over [`MAX_MODULE_SIZE`].
pub fn read_module(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_MODULE_SIZE + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(
        bytes.starts_with(b"\0asm"),
        "{} is not a WebAssembly binary (it does not start with \\0asm)",
        path.display()
    );
    anyhow::ensure!(
        bytes.len() as u64 <= MAX_MODULE_SIZE,
        "{} is larger than {MAX_MODULE_SIZE} bytes; modules that large are refused",
        path.display()
    );
    Ok(bytes)
}

/// Bodies declaring at most this many bytes are read before the request
/// takes an instance.
const BUFFERED_BODY_MAX: u64 = 1 << 20;

/// Bodies up to this size are validated on the async thread that read them
/// (microseconds); larger ones on a blocking thread.
const INLINE_CHECK_MAX: usize = 64 << 10;

/// A request body on its way to a guest.
type GuestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// Extra wall time past `request_timeout` before the guest's task is
/// cancelled outright, for a guest stuck in a host call where epoch
/// interruption cannot reach it.
const HARD_DEADLINE_GRACE: Duration = Duration::from_millis(500);

/// A response produced for a request, by the guest or by the host.
pub type AppResponse = Response<ResponseBody>;

/// What an app is: its name, module file, limits and what its guest may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSpec {
    /// Name used in logs and introspection.
    pub name: String,
    /// The component file.
    pub module: PathBuf,
    /// Limits the app runs under.
    pub limits: Limits,
    /// Environment variables and directories the guest may see.
    pub env: GuestEnv,
}

/// A loaded app, ready to serve.
pub struct App {
    name: Arc<str>,
    digest: String,
    spec: AppSpec,
    pre: ProxyPre<HostState>,
    schemas: Arc<SchemaCache>,
    /// The routes the app declared, when it exports `wasmhost:platform/manifest`.
    routes: Option<RouteTable>,
    pool: InstancePool,
    connections: ConnectionBudget,
}

/// How a guest call ended.
#[derive(Debug)]
enum Outcome {
    Completed,
    Failed(Failure),
}

/// What went wrong in a guest.
#[derive(Debug)]
enum Failure {
    /// The guest ran past `request_timeout`.
    Timeout,
    /// The guest was refused memory and then failed.
    Memory,
    /// The guest exhausted its wasm stack.
    StackOverflow,
    /// The guest trapped (a Python exception escapes as a trap) or a host
    /// call failed.
    Trap,
}

impl App {
    /// Compiles (or loads from `cache`) the component in `bytes` (read from
    /// `spec.module`), checks it against the `wasi:http/proxy` world, and
    /// fills its pool, which instantiates it at least once. Its guests'
    /// outbound connections count against `connections`, which the app's
    /// other versions may share.
    pub async fn new(
        engine: &Engine,
        cache: &CompileCache,
        spec: &AppSpec,
        bytes: Vec<u8>,
        connections: ConnectionBudget,
    ) -> Result<Self> {
        let (name, path) = (spec.name.as_str(), spec.module.as_path());
        let started = std::time::Instant::now();
        let compiled = {
            let (engine, cache) = (engine.clone(), cache.clone());
            tokio::task::spawn_blocking(move || cache.load(&engine, &bytes))
                .await
                .context("the compiler thread panicked")?
                .with_context(|| format!("cannot compile {}", path.display()))?
        };
        tracing::info!(
            app = name,
            digest = %&compiled.digest[..16],
            cached = compiled.cache_hit,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "component compiled"
        );

        let mut linker = Linker::<HostState>::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        wasmhost_platform::add_to_linker(&mut linker, HostState::platform)?;
        crate::exchange::add_to_linker(&mut linker)?;
        let pre = linker.instantiate_pre(&compiled.component).map_err(anyhow::Error::from).with_context(|| {
            format!(
                "{} needs imports wasmhost does not provide; build it for the wasi:http/proxy world",
                path.display()
            )
        })?;
        let pre = ProxyPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} does not export wasi:http/incoming-handler", path.display()))?;
        let schemas = Arc::new(SchemaCache::default());
        Self::with_component(Arc::from(name), compiled.digest, spec.clone(), pre, schemas, connections).await
    }

    async fn with_component(
        name: Arc<str>,
        digest: String,
        spec: AppSpec,
        pre: ProxyPre<HostState>,
        schemas: Arc<SchemaCache>,
        connections: ConnectionBudget,
    ) -> Result<Self> {
        let platform = PlatformCtx::new(name.clone(), schemas.clone());
        let (limits, env) = (spec.limits.clone(), spec.env.clone());
        let pool = InstancePool::new(name.clone(), pre.clone(), limits, env, platform, connections.clone()).await?;
        let routes = if let Some(manifest) = ManifestExport::new(pre.instance_pre())? {
            let (mut store, instance) = pool.spare_instance().await?;
            let routes = manifest.routes(&mut store, &instance).await?;
            // Compiling schemas can take a while (up to ~1 s for a
            // pathological one): off the async threads.
            let cache = schemas.clone();
            let table = tokio::task::spawn_blocking(move || RouteTable::new(routes, &cache))
                .await
                .context("the schema compiler thread panicked")?
                .context("the app declares an invalid route")?;
            tracing::info!(app = %name, routes = table.len(), "routes loaded");
            Some(table)
        } else {
            None
        };
        Ok(Self { name, digest, spec, pre, schemas, routes, pool, connections })
    }

    /// A new version of the same component with a new pool: every instance
    /// starts from the component's initial state again. No compilation; the
    /// outbound connection budget is shared with this version.
    pub async fn renew(&self) -> Result<Self> {
        let (name, digest, spec) = (self.name.clone(), self.digest.clone(), self.spec.clone());
        let connections = self.connections.clone();
        Self::with_component(name, digest, spec, self.pre.clone(), self.schemas.clone(), connections).await
    }

    /// The app's outbound connection budget (shared by its versions).
    pub fn connections(&self) -> &ConnectionBudget {
        &self.connections
    }

    /// The app's name, used in logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hex SHA-256 of the module the app runs.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The limits the app runs under.
    pub fn limits(&self) -> &Limits {
        &self.spec.limits
    }

    /// Requests waiting for an instance right now.
    pub fn queued(&self) -> usize {
        self.pool.queued()
    }

    /// Instances ready (idle) and busy right now.
    pub fn instance_counts(&self) -> (usize, usize) {
        self.pool.instance_counts()
    }

    /// Drops the app's idle instances; called when a new version replaces
    /// it. Requests in flight finish on their instances.
    pub fn retire_idle(&self) {
        self.pool.retire_idle();
    }

    /// Serves one request. Never fails: every problem becomes a response.
    pub async fn handle<B>(&self, request: http::Request<B>, request_id: &str) -> AppResponse
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        if declared_length(&request).is_some_and(|len| len > self.spec.limits.max_body_size) {
            return self.reject(StatusCode::PAYLOAD_TOO_LARGE, "request body is too large");
        }
        if request.uri().authority().is_none() && !request.headers().contains_key(header::HOST) {
            return self.reject(StatusCode::BAD_REQUEST, "missing Host header");
        }

        // Validate declared bodies, and read small ones, before taking an
        // instance, so neither an invalid request nor a slow client ever
        // holds one.
        let schema =
            self.routes.as_ref().and_then(|routes| routes.body_schema(request.method().as_str(), request.uri().path()));
        let request = match schema {
            Some(schema) => self.validate_body(request, schema).await,
            None => self.read_small_body(request).await,
        };
        let request = match request {
            Ok(request) => request,
            Err(response) => return response,
        };

        let mut lease = match self.pool.acquire().await {
            Ok(lease) => lease,
            Err(Rejection::QueueFull | Rejection::QueueTimeout) => {
                let mut response = self.reject(StatusCode::SERVICE_UNAVAILABLE, "server is at capacity, retry later");
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
            Err(Rejection::Instantiation(err)) => {
                tracing::error!(app = %self.name, request_id, "cannot instantiate: {err:#}");
                let mut response = self.reject(StatusCode::SERVICE_UNAVAILABLE, "server is at capacity, retry later");
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
        };

        let fault = Arc::new(BodyFault::default());
        let request = request.map(|body| LimitedBody {
            inner: body,
            remaining: self.spec.limits.max_body_size,
            fault: fault.clone(),
        });
        let method = request.method().clone();
        let (response_tx, response_rx) = oneshot::channel();
        lease.begin(request_id);
        let head = RequestHead::of(&request);
        let resources = {
            let state = lease.store().data_mut();
            let mut http = state.http();
            let resources = http
                .new_incoming_request(Scheme::Http, request)
                .and_then(|req| Ok((req, http.new_response_outparam(response_tx)?)));
            if let Ok((req, _)) = &resources {
                state.request_head = Some((req.rep(), head));
            }
            resources
        };
        let (guest_request, outparam) = match resources {
            Ok(resources) => resources,
            Err(err) => {
                tracing::info!(app = %self.name, request_id, "unusable request: {err:#}");
                return self.reject(StatusCode::BAD_REQUEST, "malformed request");
            }
        };

        let (outcome_tx, outcome_rx) = oneshot::channel();
        let hard_deadline = self.spec.limits.request_timeout + HARD_DEADLINE_GRACE;
        let app = self.name.clone();
        let id: Arc<str> = Arc::from(request_id);
        let body_fault = fault.clone();
        tokio::spawn(async move {
            let result = tokio::time::timeout(hard_deadline, lease.call_handle(guest_request, outparam)).await;
            let outcome = match result {
                Ok(Ok(())) => Outcome::Completed,
                Ok(Err(err)) => {
                    let failure = classify(&err, lease.memory_exhausted());
                    if body_fault.get().is_some() {
                        // The client's body broke first: its fault, not the app's.
                        tracing::debug!(app = %app, request_id = %id, ?failure, "guest failed on a broken request body: {err:#}");
                    } else {
                        tracing::warn!(app = %app, request_id = %id, ?failure, "guest failed: {err:#}");
                        METRICS.guest_failures.with_label_values(&[&*app, failure.label()]).inc();
                    }
                    Outcome::Failed(failure)
                }
                Err(_elapsed) => {
                    tracing::warn!(app = %app, request_id = %id, "guest timed out in a host call");
                    METRICS.guest_failures.with_label_values(&[&*app, Failure::Timeout.label()]).inc();
                    Outcome::Failed(Failure::Timeout)
                }
            };
            lease.finish(matches!(outcome, Outcome::Failed(_)));
            let _ = outcome_tx.send(outcome);
        });

        match response_rx.await {
            Ok(Ok(mut response)) if fault.get() != Some(Fault::TooLarge) => {
                let (status, body_len) = (response.status(), response.body().size_hint().exact());
                if let Err(reason) = check_response_head(&method, status, response.headers_mut(), body_len) {
                    tracing::warn!(app = %self.name, request_id, "the app's response was refused: {reason}");
                    METRICS.guest_failures.with_label_values(&[&*self.name, "response"]).inc();
                    return error_response(StatusCode::INTERNAL_SERVER_ERROR, "the app sent an invalid response");
                }
                response.map(|body| ResponseBody {
                    kind: Kind::Guest { body, outcome: Some(outcome_rx), completed: false },
                })
            }
            Ok(Ok(_)) => self.reject(StatusCode::PAYLOAD_TOO_LARGE, "request body is too large"),
            Ok(Err(_)) if fault.get().is_some() => self.reject_body(&fault),
            Ok(Err(code)) => {
                tracing::warn!(app = %self.name, request_id, "guest responded with error {code:?}");
                error_response(StatusCode::INTERNAL_SERVER_ERROR, "the app failed")
            }
            Err(_) => {
                let outcome = outcome_rx.await.unwrap_or(Outcome::Failed(Failure::Trap));
                if fault.get().is_some() {
                    return self.reject_body(&fault);
                }
                match outcome {
                    Outcome::Completed => {
                        tracing::warn!(app = %self.name, request_id, "guest returned without setting a response");
                        error_response(StatusCode::INTERNAL_SERVER_ERROR, "the app did not respond")
                    }
                    Outcome::Failed(Failure::Timeout) => {
                        error_response(StatusCode::GATEWAY_TIMEOUT, "the app timed out")
                    }
                    Outcome::Failed(Failure::Memory) => {
                        error_response(StatusCode::INTERNAL_SERVER_ERROR, "the app ran out of memory")
                    }
                    Outcome::Failed(Failure::StackOverflow | Failure::Trap) => {
                        error_response(StatusCode::INTERNAL_SERVER_ERROR, "the app failed")
                    }
                }
            }
        }
    }
}

impl Failure {
    /// The kind as a metric label.
    fn label(&self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Memory => "memory",
            Failure::StackOverflow => "stack",
            Failure::Trap => "trap",
        }
    }
}

impl App {
    /// A host-made refusal, counted in `wasmhost_rejected_requests_total`.
    fn reject(&self, status: StatusCode, reason: &str) -> AppResponse {
        METRICS.rejected.with_label_values(&[&*self.name, status.as_str()]).inc();
        error_response(status, reason)
    }

    /// The refusal for a request whose body was the client's fault.
    fn reject_body(&self, fault: &BodyFault) -> AppResponse {
        match fault.get() {
            Some(Fault::TooLarge) => self.reject(StatusCode::PAYLOAD_TOO_LARGE, "request body is too large"),
            _ => self.reject(StatusCode::BAD_REQUEST, "the request body could not be read"),
        }
    }

    /// Reads the whole body (within `max_body_size` and `request_timeout`)
    /// and checks it against the route's schema: the request to pass on, or
    /// the host's `application/problem+json` refusal.
    async fn validate_body<B>(
        &self,
        request: http::Request<B>,
        schema: &Arc<CompiledSchema>,
    ) -> Result<http::Request<GuestBody>, AppResponse>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let (parts, mut body) = request.into_parts();
        let limit = self.spec.limits.max_body_size;
        let read = async {
            let mut bytes = Vec::new();
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { return Err(StatusCode::BAD_REQUEST) };
                if let Some(data) = frame.data_ref() {
                    if (bytes.len() + data.len()) as u64 > limit {
                        return Err(StatusCode::PAYLOAD_TOO_LARGE);
                    }
                    bytes.extend_from_slice(data);
                }
            }
            Ok(Bytes::from(bytes))
        };
        let bytes = match tokio::time::timeout(self.spec.limits.request_timeout, read).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(StatusCode::PAYLOAD_TOO_LARGE)) => {
                return Err(self.reject(StatusCode::PAYLOAD_TOO_LARGE, "request body is too large"))
            }
            Ok(Err(_)) => return Err(self.reject(StatusCode::BAD_REQUEST, "the request body could not be read")),
            Err(_) => return Err(self.reject(StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time")),
        };
        // A Content-Type that is not even ASCII is not JSON's: 415.
        let content_type = parts.headers.get(header::CONTENT_TYPE).map(|value| value.to_str().unwrap_or("?"));
        let checked = if bytes.len() <= INLINE_CHECK_MAX {
            wasmhost_platform::check_body(schema, content_type, &bytes)
        } else {
            // Large bodies take milliseconds to seconds: off the async threads.
            let (schema, content_type, bytes) = (schema.clone(), content_type.map(str::to_owned), bytes.clone());
            let check = move || wasmhost_platform::check_body(&schema, content_type.as_deref(), &bytes);
            match tokio::task::spawn_blocking(check).await {
                Ok(checked) => checked,
                Err(_) => return Err(self.reject(StatusCode::INTERNAL_SERVER_ERROR, "the body could not be validated")),
            }
        };
        if let Err(problem) = checked {
            let status = StatusCode::from_u16(problem.status()).unwrap_or(StatusCode::BAD_REQUEST);
            METRICS.rejected.with_label_values(&[&*self.name, status.as_str()]).inc();
            let mut response =
                Response::new(ResponseBody { kind: Kind::Full(Some(Bytes::from(problem.to_json_bytes()))) });
            *response.status_mut() = status;
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
            return Err(response);
        }
        Ok(buffered(parts, bytes))
    }

    /// Buffers a body that declares at most [`BUFFERED_BODY_MAX`] bytes,
    /// within `request_timeout`; other bodies stream to the guest.
    async fn read_small_body<B>(&self, request: http::Request<B>) -> Result<http::Request<GuestBody>, AppResponse>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        if declared_length(&request).is_none_or(|len| len > BUFFERED_BODY_MAX) {
            return Ok(request.map(|body| body.map_err(Into::into).boxed_unsync()));
        }
        let (parts, body) = request.into_parts();
        match tokio::time::timeout(self.spec.limits.request_timeout, body.collect()).await {
            Ok(Ok(collected)) => Ok(buffered(parts, collected.to_bytes())),
            Ok(Err(_)) => Err(self.reject(StatusCode::BAD_REQUEST, "the request body could not be read")),
            Err(_) => Err(self.reject(StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time")),
        }
    }
}

/// A request whose whole body the host has read: the body, and a copy of
/// it for `exchange.take-body` (a reference, not a second buffer).
fn buffered(mut parts: http::request::Parts, bytes: Bytes) -> http::Request<GuestBody> {
    parts.extensions.insert(BufferedBody(bytes.clone()));
    http::Request::from_parts(parts, Full::new(bytes).map_err(|never| match never {}).boxed_unsync())
}

/// Names the cause of a failed guest call.
fn classify(err: &wasmtime::Error, memory_exhausted: bool) -> Failure {
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Failure::Timeout,
        Some(Trap::StackOverflow) => Failure::StackOverflow,
        _ if memory_exhausted => Failure::Memory,
        _ => Failure::Trap,
    }
}

/// The request's `Content-Length`, if it declares one.
fn declared_length<B>(request: &http::Request<B>) -> Option<u64> {
    request.headers().get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// A short plain-text response made by the host.
pub fn error_response(status: StatusCode, reason: &str) -> AppResponse {
    let text = format!("{} {}: {reason}\n", status.as_u16(), status.canonical_reason().unwrap_or(""));
    let mut response = Response::new(ResponseBody { kind: Kind::Full(Some(Bytes::from(text))) });
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// The request body as the guest sees it: at most `max_body_size` bytes, then
/// an error, with the overrun recorded so the client gets `413`.
struct LimitedBody<B> {
    inner: B,
    remaining: u64,
    fault: Arc<BodyFault>,
}

/// What went wrong with a request body on its way to the guest: the
/// client's fault, so a guest that then fails is not blamed for it.
#[derive(Default)]
struct BodyFault(std::sync::atomic::AtomicU8);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Longer than `max_body_size`: 413.
    TooLarge,
    /// Broken framing or a connection lost mid-body: 400.
    Unreadable,
}

impl BodyFault {
    fn set(&self, fault: Fault) {
        let code = match fault {
            Fault::TooLarge => 1,
            Fault::Unreadable => 2,
        };
        let _ = self.0.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
    }

    fn get(&self) -> Option<Fault> {
        match self.0.load(Ordering::Acquire) {
            1 => Some(Fault::TooLarge),
            2 => Some(Fault::Unreadable),
            _ => None,
        }
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(err))) => {
                self.fault.set(Fault::Unreadable);
                return Poll::Ready(Some(Err(err.into())));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            let len = data.len() as u64;
            if len > self.remaining {
                self.fault.set(Fault::TooLarge);
                return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpRequestBodySize(None))));
            }
            self.remaining -= len;
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The body of a response: a host-made message, or a guest's stream that
/// ends cleanly only if the guest call completed.
pub struct ResponseBody {
    kind: Kind,
}

enum Kind {
    Full(Option<Bytes>),
    Guest { body: HyperOutgoingBody, outcome: Option<oneshot::Receiver<Outcome>>, completed: bool },
}

impl Drop for ResponseBody {
    /// hyper drops a body as soon as it has sent `Content-Length` bytes, or
    /// when the client goes away. A guest still writing (typically its final
    /// flush) would then see a closed stream, raise, and lose its instance
    /// for a response that was delivered whole. So the rest of the body is
    /// drained in the background, up to [`DRAIN_LIMIT`] bytes and
    /// [`DRAIN_TIMEOUT`]; past that the stream closes on the guest.
    fn drop(&mut self) {
        let Kind::Guest { body, outcome: Some(_), .. } = &mut self.kind else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let empty = http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync();
        let mut body = std::mem::replace(body, empty);
        runtime.spawn(async move {
            let mut left = DRAIN_LIMIT;
            let drain = async {
                while let Some(Ok(frame)) = body.frame().await {
                    let len = frame.data_ref().map_or(0, Bytes::len);
                    if len > left {
                        return;
                    }
                    left -= len;
                }
            };
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
        });
    }
}

/// Most bytes of an abandoned response body drained on the guest's behalf.
const DRAIN_LIMIT: usize = 1 << 20;
/// Longest an abandoned response body is drained.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A response body the guest could not finish; the connection is aborted so
/// the client cannot mistake a truncated body for a complete one.
#[derive(Debug)]
pub struct BodyError(&'static str);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BodyError {}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        const ABORTED: BodyError = BodyError("the app aborted its response body");
        const UNFINISHED: BodyError = BodyError("the app returned without finishing its response body");
        const FAILED: BodyError = BodyError("the app failed while sending its response");
        let (body, outcome, completed) = match &mut self.kind {
            Kind::Full(data) => return Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::Guest { body, outcome, completed } => (body, outcome, completed),
        };
        match Pin::new(&mut *body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => return Poll::Ready(Some(Ok(frame))),
            Poll::Ready(Some(Err(_))) => return Poll::Ready(Some(Err(ABORTED))),
            Poll::Ready(None) if *completed => return Poll::Ready(None),
            // The body ended, or is stalled: only the guest's outcome says
            // whether it is complete.
            Poll::Ready(None) | Poll::Pending => {}
        }
        let Some(receiver) = outcome.as_mut() else {
            return Poll::Ready(Some(Err(UNFINISHED)));
        };
        match Pin::new(receiver).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Outcome::Completed)) => {
                *outcome = None;
                *completed = true;
                // Everything a guest writes is queued before its call
                // returns, so the body must be ready now; if it is still
                // pending the guest never finished it.
                match Pin::new(&mut *body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                    Poll::Ready(Some(Err(_))) => Poll::Ready(Some(Err(ABORTED))),
                    Poll::Ready(None) => Poll::Ready(None),
                    Poll::Pending => Poll::Ready(Some(Err(UNFINISHED))),
                }
            }
            Poll::Ready(_) => {
                *outcome = None;
                Poll::Ready(Some(Err(FAILED)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(data) => data.is_none(),
            Kind::Guest { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(data)) => SizeHint::with_exact(data.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Guest { body, .. } => body.size_hint(),
        }
    }
}
