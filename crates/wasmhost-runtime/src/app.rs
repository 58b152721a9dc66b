//! One loaded version of an app: a compiled component, its capabilities, its
//! declared routes and its instance pool, turning HTTP requests into guest
//! calls and every guest failure into a status code.
//!
//! A request goes through [`AppVersion::handle`] in four named steps:
//! admission ([`crate::admission`]: limits, `Host`, schema-checked or small
//! bodies read), acquiring an instance ([`crate::pool`]), the guest call
//! ([`GuestCall`]: the request handed to the guest, run under its deadline on
//! a task of its own), and the response ([`GuestCall::response`]: the guest's
//! head checked by [`crate::framing`], or the host's answer from
//! [`crate::outcome`]).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http_body::Body;
use tokio::sync::oneshot;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

use crate::admission;
use crate::body::{BodyFault, LimitedBody, ResponseBody};
use crate::capability::exchange::RequestHead;
use crate::capability::{Apps, RequestContext};
use crate::engine::{LoadSource, LoadedComponent, Runtime};
use crate::framing::check_response_head;
use crate::metrics::METRICS;
use crate::outcome::{settle_head, settle_outcome, AppResponse, Failure, Head, Outcome, Refusal};
use crate::pool::{InstancePool, Lease, Unavailable};
use crate::store::StoreData;
use wasmhost_platform::{DeclaredRoutes, ManifestExport};
use wasmhost_spec::{AppSpec, Limits};

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

/// Extra wall time past `request_timeout` before the guest's task is
/// cancelled outright, for a guest stuck in a host call where epoch
/// interruption cannot reach it.
const HARD_DEADLINE_GRACE: Duration = Duration::from_millis(500);

/// One loaded version of an app, ready to serve.
pub struct AppVersion {
    name: Arc<str>,
    /// The compiled, linked component, shared with every version and app
    /// loaded from the same bytes.
    component: Arc<LoadedComponent>,
    spec: AppSpec,
    capabilities: Arc<Apps>,
    /// The routes the app declared, when it exports `wasmhost:platform/manifest`.
    routes: Option<DeclaredRoutes>,
    pool: InstancePool,
}

impl AppVersion {
    /// Compiles (or loads from the runtime's cache) the component in
    /// `bytes` (read from `spec.module`), checks it against the
    /// `wasi:http/proxy` world, builds its capabilities (carrying over what
    /// they keep from `previous`, the version it replaces), reads its
    /// manifest and fills its pool, which instantiates it at least once.
    pub async fn load(
        runtime: &Runtime,
        spec: &AppSpec,
        bytes: Vec<u8>,
        previous: Option<&AppVersion>,
    ) -> Result<Self> {
        let (name, path) = (spec.name.as_str(), spec.module.as_path());
        let started = Instant::now();
        let (component, source) = runtime.load(bytes, path).await?;
        tracing::info!(
            app = name,
            digest = %&component.digest[..16],
            // `cached`: not compiled by Cranelift now (the log line's
            // contract since before sharing); `source` says from where.
            cached = source != LoadSource::Compiled,
            source = source.label(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "component compiled"
        );
        let capabilities = Arc::new(Apps::new(spec, previous.map(|previous| &*previous.capabilities))?);
        Self::with_component(component, spec.clone(), capabilities).await
    }

    async fn with_component(component: Arc<LoadedComponent>, spec: AppSpec, capabilities: Arc<Apps>) -> Result<Self> {
        let name: Arc<str> = Arc::from(spec.name.as_str());
        let pool =
            InstancePool::new(name.clone(), component.pre.clone(), spec.limits.clone(), capabilities.clone()).await?;
        let routes = Self::declared_routes(&name, &component.pre, &pool, &capabilities).await?;
        Ok(Self { name, component, spec, capabilities, routes, pool })
    }

    /// The routes the component declares in its `manifest` export, with
    /// their schemas compiled; `None` for a plain `wasi:http/proxy` app.
    async fn declared_routes(
        name: &str,
        pre: &ProxyPre<StoreData>,
        pool: &InstancePool,
        capabilities: &Apps,
    ) -> Result<Option<DeclaredRoutes>> {
        let Some(manifest) = ManifestExport::new(pre.instance_pre())? else { return Ok(None) };
        let (mut store, instance) = pool.spare_instance().await?;
        let routes = manifest.routes(&mut store, &instance).await?;
        // Compiling schemas can take a while (up to ~1 s for a pathological
        // one): off the async threads.
        let cache = capabilities.platform.schemas().clone();
        let table = tokio::task::spawn_blocking(move || DeclaredRoutes::new(routes, &cache))
            .await
            .context("the schema compiler thread panicked")?
            .context("the app declares an invalid route")?;
        tracing::info!(app = name, routes = table.len(), "routes loaded");
        Ok(Some(table))
    }

    /// A new version of the same component with a new pool: every instance
    /// starts from the component's initial state again. No compilation; the
    /// outbound connection budget is shared with this version.
    pub async fn renew(&self) -> Result<Self> {
        Self::with_component(self.component.clone(), self.spec.clone(), self.capabilities.clone()).await
    }

    /// The app's name, used in logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hex SHA-256 of the module the app runs.
    pub fn digest(&self) -> &str {
        &self.component.digest
    }

    /// The limits the app runs under.
    pub fn limits(&self) -> &Limits {
        &self.spec.limits
    }

    /// What the app is: its limits, and what its guest may see (buckets,
    /// config keys; secrets' values are in it, so never print it whole).
    pub fn spec(&self) -> &AppSpec {
        &self.spec
    }

    /// The outbound connection budget the app's versions share.
    pub fn connections(&self) -> &wasmhost_outbound::ConnectionBudget {
        self.capabilities.outbound.connections()
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
        let request = match admission::admit(request, &self.spec.limits, self.routes.as_ref()).await {
            Ok(request) => request,
            Err(rejected) => return rejected.response(&self.name),
        };
        let lease = match self.pool.acquire().await {
            Ok(lease) => lease,
            Err(unavailable) => return self.unavailable(unavailable, request_id),
        };
        match GuestCall::start(lease, request, request_id, &self.spec.limits) {
            Ok(call) => call.response(&self.name, request_id).await,
            Err(refusal) => refusal.response(&self.name),
        }
    }

    /// The answer when no instance could be had.
    fn unavailable(&self, unavailable: Unavailable, request_id: &str) -> AppResponse {
        let refusal = match unavailable {
            Unavailable::QueueFull => Refusal::QueueFull,
            Unavailable::QueueTimeout => Refusal::QueueTimeout,
            Unavailable::Instantiation(err) => {
                tracing::error!(app = %self.name, request_id, "cannot instantiate: {err:#}");
                Refusal::Instantiation
            }
        };
        refusal.response(&self.name)
    }
}

/// A request handed to a guest, running on a task of its own under the
/// request's deadlines.
struct GuestCall {
    method: http::Method,
    /// The response head the guest sets (or the error code instead).
    response: oneshot::Receiver<Result<hyper::Response<HyperOutgoingBody>, ErrorCode>>,
    /// How the call ended, once it did.
    outcome: oneshot::Receiver<Outcome>,
    /// What happened to the request body on its way in.
    fault: Arc<BodyFault>,
}

impl GuestCall {
    /// Hands `request` to the guest of `lease` and starts the call.
    fn start(
        mut lease: Lease,
        request: http::Request<crate::body::GuestBody>,
        request_id: &str,
        limits: &Limits,
    ) -> Result<Self, Refusal> {
        let fault = Arc::new(BodyFault::default());
        let request =
            request.map(|body| LimitedBody { inner: body, remaining: limits.max_body_size, fault: fault.clone() });
        let method = request.method().clone();
        let head = Arc::new(RequestHead::of(&request));
        let (response_tx, response) = oneshot::channel();
        let store = lease.store();
        let resources = {
            let mut http = store.data_mut().http();
            http.new_incoming_request(Scheme::Http, request)
                .and_then(|guest_request| Ok((guest_request, http.new_response_outparam(response_tx)?)))
        };
        let (guest_request, outparam) = resources.map_err(|err| {
            tracing::info!(request_id, "unusable request: {err:#}");
            Refusal::MalformedRequest
        })?;
        let id: Arc<str> = Arc::from(request_id);
        let deadline = Instant::now() + limits.request_timeout;
        store.data_mut().begin_request(&RequestContext { id: id.clone(), deadline, handle: guest_request.rep(), head });

        let (outcome_tx, outcome) = oneshot::channel();
        let hard_deadline = limits.request_timeout + HARD_DEADLINE_GRACE;
        let body_fault = fault.clone();
        tokio::spawn(async move {
            let result = tokio::time::timeout(hard_deadline, lease.call_handle(guest_request, outparam)).await;
            let app = lease.app().clone();
            let outcome = match result {
                Ok(Ok(())) => Outcome::Completed,
                Ok(Err(err)) => {
                    let failure = Failure::classify(&err, lease.memory_exhausted());
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
        Ok(Self { method, response, outcome, fault })
    }

    /// The response to send: the guest's, once its head is known to frame
    /// the connection unambiguously, or the host's answer.
    async fn response(self, app: &str, request_id: &str) -> AppResponse {
        let head = self.response.await.ok();
        if let (Some(Err(code)), None) = (&head, self.fault.get()) {
            tracing::warn!(app, request_id, "guest responded with error {code:?}");
        }
        match settle_head(head, self.fault.get()) {
            Head::Respond(mut response) => {
                let (status, body_len) = (response.status(), response.body().size_hint().exact());
                if let Err(reason) = check_response_head(&self.method, status, response.headers_mut(), body_len) {
                    tracing::warn!(app, request_id, "the app's response was refused: {reason}");
                    METRICS.guest_failures.with_label_values(&[app, "response"]).inc();
                    return Refusal::InvalidResponse.response(app);
                }
                let outcome = self.outcome;
                response.map(|body| ResponseBody::guest(body, outcome))
            }
            Head::Refuse(refusal) => refusal.response(app),
            Head::AwaitOutcome => {
                let outcome = self.outcome.await.unwrap_or(Outcome::Failed(Failure::Trap));
                let refusal = settle_outcome(outcome, self.fault.get());
                if refusal == Refusal::NoResponse {
                    tracing::warn!(app, request_id, "guest returned without setting a response");
                }
                refusal.response(app)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use wasmhost_spec::{Isolation, Limits};

    use crate::testing::{self, get};
    use crate::EpochTicker;

    /// One instance, kept warm, under a 2 s deadline.
    fn one_instance() -> Limits {
        Limits { max_instances: 1, min_instances: 1, request_timeout: Duration::from_secs(2), ..Default::default() }
    }

    /// The fixture under `limits`, with the epoch ticker its deadlines need.
    async fn fixture(limits: Limits) -> (Arc<super::AppVersion>, EpochTicker) {
        let engine = testing::engine();
        let ticker = EpochTicker::start(&engine).expect("an epoch ticker");
        (Arc::new(testing::app(&engine, limits).await), ticker)
    }

    /// Waits until `ready` holds, for at most 5 s.
    async fn until(mut ready: impl FnMut() -> bool) {
        let give_up = std::time::Instant::now() + Duration::from_secs(5);
        while !ready() {
            assert!(std::time::Instant::now() < give_up, "gave up waiting");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[tokio::test]
    async fn apps_loaded_from_the_same_bytes_share_one_component() {
        let engine = testing::engine();
        let _ticker = EpochTicker::start(&engine).expect("an epoch ticker");
        let runtime = crate::Runtime::new(engine, crate::CompileCache::disabled()).expect("a runtime");
        let a = testing::load(&runtime, "a", one_instance()).await;
        let b = testing::load(&runtime, "b", one_instance()).await;
        assert!(Arc::ptr_eq(&a.component, &b.component), "one compiled component for both");
        assert_eq!(runtime.loaded_components(), 1);
        // Sharing code shares no state: each app has its own instances.
        assert_eq!(get(&a, "/").await, (200, "1".into()));
        assert_eq!(get(&a, "/").await, (200, "2".into()));
        assert_eq!(get(&b, "/").await, (200, "1".into()), "b's instance is its own");
        let renewed = a.renew().await.expect("renews");
        assert!(Arc::ptr_eq(&renewed.component, &a.component));
        assert_eq!(get(&renewed, "/").await, (200, "1".into()), "a renewed version starts over");
        assert_eq!(get(&b, "/").await, (200, "2".into()), "renewing a did not disturb b");
        drop((a, b, renewed));
        assert_eq!(runtime.loaded_components(), 0, "a component no version uses is let go");
        let again = testing::load(&runtime, "a", one_instance()).await;
        assert_eq!(get(&again, "/").await, (200, "1".into()), "and is loaded again when needed");
    }

    #[tokio::test]
    async fn an_instance_is_retired_after_about_its_quota_of_requests() {
        let (app, _ticker) = fixture(Limits { max_requests_per_instance: 20, ..one_instance() }).await;
        let mut runs = Vec::new();
        let mut last = 0;
        for _ in 0..100 {
            let (status, body) = get(&app, "/").await;
            assert_eq!(status, 200);
            let count: u32 = body.parse().expect("a count");
            if count <= last {
                runs.push(last);
            }
            last = count;
        }
        assert!(runs.len() >= 3, "instances were retired after {runs:?} requests");
        assert!(runs.iter().all(|&run| (18..=22).contains(&run)), "quota 20 ± 10%, got runs of {runs:?}");
        assert!(app.pool.ready_are_idle());
    }

    #[tokio::test]
    async fn an_instance_whose_memory_grew_past_the_threshold_is_retired() {
        let (app, _ticker) = fixture(Limits { recycle_memory: 32 << 20, ..one_instance() }).await;
        assert_eq!(get(&app, "/").await, (200, "1".into()));
        assert_eq!(get(&app, "/").await, (200, "2".into()), "small requests keep the instance");
        assert_eq!(get(&app, "/grow").await, (200, "3".into()), "the request that grew is answered");
        assert_eq!(get(&app, "/").await, (200, "1".into()), "then its instance is gone");
    }

    #[tokio::test]
    async fn an_idle_app_scales_to_zero_and_answers_again() {
        let limits =
            Limits { max_instances: 2, min_instances: 0, idle_timeout: Duration::from_millis(100), ..one_instance() };
        let (app, _ticker) = fixture(limits).await;
        let (first, second) = tokio::join!(get(&app, "/spin/50"), get(&app, "/spin/50"));
        assert_eq!((first.0, second.0), (200, 200));
        until(|| app.instance_counts() == (0, 0)).await;
        assert_eq!(get(&app, "/").await, (200, "1".into()), "a cold app instantiates on the spot");
    }

    #[tokio::test]
    async fn idle_instances_are_dropped_down_to_min_instances() {
        let limits =
            Limits { max_instances: 3, min_instances: 1, idle_timeout: Duration::from_millis(100), ..one_instance() };
        let (app, _ticker) = fixture(limits).await;
        let (a, b, c) = tokio::join!(get(&app, "/spin/50"), get(&app, "/spin/50"), get(&app, "/spin/50"));
        assert_eq!((a.0, b.0, c.0), (200, 200, 200));
        until(|| app.instance_counts() == (1, 0)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(app.instance_counts(), (1, 0), "min_instances stay ready however long they idle");
    }

    #[tokio::test]
    async fn fresh_mode_never_reuses_an_instance() {
        let (app, _ticker) = fixture(Limits { isolation: Isolation::Fresh, ..one_instance() }).await;
        for path in ["/", "/a", "/b?c"] {
            assert_eq!(get(&app, path).await, (200, "1".into()), "{path}");
        }
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_queued_requests_are_served_in_turn() {
        let limits = Limits { max_queue: 1, queue_timeout: Duration::from_secs(5), ..one_instance() };
        let (app, _ticker) = fixture(limits).await;
        let busy = tokio::spawn({
            let app = app.clone();
            async move { get(&app, "/spin/300").await }
        });
        until(|| app.instance_counts().1 == 1).await;
        let queued = tokio::spawn({
            let app = app.clone();
            async move { get(&app, "/").await }
        });
        until(|| app.queued() == 1).await;
        let (status, body) = get(&app, "/").await;
        assert_eq!(status, 503, "the queue is full: {body}");
        assert_eq!(busy.await.unwrap(), (200, "1".into()));
        assert_eq!(queued.await.unwrap(), (200, "2".into()), "the queued request got the instance next");
    }

    #[tokio::test]
    async fn a_request_waits_at_most_the_queue_timeout() {
        let limits = Limits { queue_timeout: Duration::from_millis(50), ..one_instance() };
        let (app, _ticker) = fixture(limits).await;
        let busy = tokio::spawn({
            let app = app.clone();
            async move { get(&app, "/spin/1000").await }
        });
        until(|| app.instance_counts().1 == 1).await;
        assert_eq!(get(&app, "/").await.0, 503, "refused while the instance is still busy");
        assert!(!busy.is_finished(), "the refusal came from the queue timeout, not the busy request ending");
        assert_eq!(busy.await.unwrap(), (200, "1".into()));
        assert_eq!(app.queued(), 0);
    }

    #[tokio::test]
    async fn whatever_a_request_ends_with_its_instance_keeps_nothing_of_it() {
        let limits = Limits {
            max_instances: 2,
            min_instances: 2,
            request_timeout: Duration::from_millis(300),
            ..one_instance()
        };
        let (app, _ticker) = fixture(limits).await;
        for path in ["/", "/trap", "/noresponse", "/loop", "/spin/5", "/grow"] {
            let _ = get(&app, path).await;
            until(|| app.instance_counts() == (2, 0)).await;
            assert!(app.pool.ready_are_idle(), "after {path}");
        }
    }
}
