//! The instance pool of one app: pre-instantiated instances, recycling rules,
//! fresh-instance mode and bounded admission.
//!
//! Admission is a FIFO semaphore with one permit per instance that may be
//! busy at once (`max_instances`). A request that finds no permit waits in a
//! bounded queue (`max_queue` deep) for at most `queue_timeout`, then is
//! refused; nothing in the pool is unbounded.
//!
//! Instances that are not busy sit in a stack of ready instances. In `reuse`
//! mode a busy instance goes back on the stack after a successful request,
//! unless it has served its quota of requests, its memory grew past the
//! recycling threshold, or anything went wrong (a store that trapped can
//! never be entered again). In `fresh` mode every instance serves one request
//! and is dropped. A background task keeps `min_instances` ready ahead of
//! demand in both modes, so requests rarely pay for instantiation.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::Rng;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use wasmtime::component::Resource;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};

use crate::capability::Apps;
use crate::metrics::METRICS;
use crate::store::StoreData;
use wasmhost_spec::{Isolation, Limits};

/// Why a request could not get an instance.
#[derive(Debug)]
pub enum Unavailable {
    /// The queue was full when the request arrived.
    QueueFull,
    /// The request waited `queue_timeout` without getting an instance.
    QueueTimeout,
    /// A new instance could not be created.
    Instantiation(anyhow::Error),
}

/// Why an instance left the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retirement {
    /// `fresh` mode: it served its one request.
    SingleUse,
    /// It served its quota of requests.
    RequestQuota,
    /// Its memory grew past the recycling threshold.
    Memory,
    /// Its request failed; the store may be poisoned.
    Failure,
    /// A new version of the app replaced it.
    Replaced,
    /// It was ready but unused for `idle_timeout`, beyond `min_instances`.
    Idle,
}

/// The pool of instances of one app.
pub struct InstancePool {
    shared: Arc<Shared>,
}

struct Shared {
    app: Arc<str>,
    /// The app state of every capability, shared by the pool's instances.
    capabilities: Arc<Apps>,
    pre: ProxyPre<StoreData>,
    limits: Limits,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    ready: Mutex<Vec<Instance>>,
    refill: Arc<Notify>,
    /// Set when a newer version replaced this pool: instances are no longer
    /// kept or prepared, only the requests in flight finish.
    retired: AtomicBool,
}

/// One instance and its store.
pub struct Instance {
    store: Store<StoreData>,
    proxy: Proxy,
    served: u64,
    retire_after: u64,
    /// When it last became ready (created or returned).
    idle_since: Instant,
}

impl InstancePool {
    /// Creates the pool and fills it with `min_instances` ready instances,
    /// each taking its outbound connections from `connections`.
    ///
    /// Fails if an instance cannot be created, which also proves the
    /// component instantiates under the app's limits.
    pub async fn new(app: Arc<str>, pre: ProxyPre<StoreData>, limits: Limits, capabilities: Arc<Apps>) -> Result<Self> {
        let shared = Arc::new(Shared {
            app,
            capabilities,
            pre,
            permits: Arc::new(Semaphore::new(limits.max_instances)),
            waiting: AtomicUsize::new(0),
            ready: Mutex::new(Vec::new()),
            refill: Arc::new(Notify::new()),
            retired: AtomicBool::new(false),
            limits,
        });
        let first = shared
            .instantiate()
            .await
            .context("the component failed to instantiate; is it a wasi:http/proxy component?")?;
        shared.push_ready(first);
        shared.fill().await?;
        tokio::spawn(refill_task(Arc::downgrade(&shared), shared.refill.clone()));
        Ok(Self { shared })
    }

    /// One more instance, outside the pool and its admission, under the
    /// app's limits: for calls other than requests, such as reading the
    /// app's manifest.
    pub async fn spare_instance(&self) -> Result<(Store<StoreData>, wasmtime::component::Instance)> {
        let mut store = self.shared.new_store()?;
        let instance = self.shared.pre.instance_pre().instantiate_async(&mut store).await?;
        Ok((store, instance))
    }

    /// Waits for an instance, in FIFO order, within the app's queue limits.
    pub async fn acquire(&self) -> Result<Lease, Unavailable> {
        let shared = &self.shared;
        let started = Instant::now();
        let permit = match shared.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if shared.waiting.fetch_add(1, Ordering::AcqRel) >= shared.limits.max_queue {
                    shared.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(Unavailable::QueueFull);
                }
                let waited =
                    tokio::time::timeout(shared.limits.queue_timeout, shared.permits.clone().acquire_owned()).await;
                shared.waiting.fetch_sub(1, Ordering::AcqRel);
                match waited {
                    Ok(Ok(permit)) => permit,
                    // The semaphore is never closed; a closed one would mean
                    // the pool is going away, which a client sees as busy.
                    Ok(Err(_)) | Err(_) => return Err(Unavailable::QueueTimeout),
                }
            }
        };
        METRICS.queue_wait.with_label_values(&[&*shared.app]).observe(started.elapsed().as_secs_f64());
        let ready = shared.pop_ready();
        if shared.limits.isolation == Isolation::Fresh || ready.is_none() {
            shared.refill.notify_one();
        }
        let instance = match ready {
            Some(instance) => instance,
            None => shared.instantiate().await.map_err(Unavailable::Instantiation)?,
        };
        Ok(Lease { instance: Some(instance), shared: shared.clone(), _permit: permit })
    }

    /// Drops every ready instance and stops refilling: the pool is being
    /// replaced. Each one counts as retired (`replaced`), as the busy ones
    /// will when their requests end.
    pub fn retire_idle(&self) {
        self.shared.retired.store(true, Ordering::Release);
        let idle = self.shared.ready.lock().map(|mut ready| std::mem::take(&mut *ready)).unwrap_or_default();
        METRICS.retired.with_label_values(&[&*self.shared.app, Retirement::Replaced.label()]).inc_by(idle.len() as u64);
        drop(idle);
    }

    /// Requests waiting for an instance right now.
    pub fn queued(&self) -> usize {
        self.shared.waiting.load(Ordering::Acquire)
    }

    /// Whether every ready instance holds nothing of the requests it served.
    #[cfg(test)]
    pub(crate) fn ready_are_idle(&self) -> bool {
        self.shared.ready.lock().is_ok_and(|ready| ready.iter().all(|instance| instance.store.data().is_idle()))
    }

    /// Instances ready (idle) and busy right now.
    pub fn instance_counts(&self) -> (usize, usize) {
        let busy = self.shared.limits.max_instances - self.shared.permits.available_permits();
        (self.shared.ready_len(), busy)
    }
}

impl Shared {
    async fn instantiate(&self) -> Result<Instance> {
        let started = Instant::now();
        let mut store = self.new_store()?;
        let proxy = self.pre.instantiate_async(&mut store).await?;
        METRICS.instantiation.with_label_values(&[&*self.app]).observe(started.elapsed().as_secs_f64());
        let quota = self.limits.max_requests_per_instance.max(1);
        let jitter = quota / 10;
        let retire_after = quota - jitter + rand::rng().random_range(0..=2 * jitter);
        Ok(Instance { store, proxy, served: 0, retire_after: retire_after.max(1), idle_since: Instant::now() })
    }

    /// A store under the app's limits, with `request_timeout` to run in.
    fn new_store(&self) -> Result<Store<StoreData>> {
        StoreData::new_store(
            self.pre.engine(),
            &self.capabilities,
            self.limits.memory_limit,
            self.limits.request_timeout,
        )
    }

    fn pop_ready(&self) -> Option<Instance> {
        self.ready.lock().ok()?.pop()
    }

    fn push_ready(&self, mut instance: Instance) {
        instance.idle_since = Instant::now();
        if let Ok(mut ready) = self.ready.lock() {
            ready.push(instance);
        }
    }

    /// Drops the ready instances beyond `min_instances` that have been idle
    /// for `idle_timeout`. Requests take the most recently returned instance
    /// (the top of the stack), so the longest idle are at the bottom.
    fn drop_idle(&self) {
        let (timeout, keep) = (self.limits.idle_timeout, self.limits.min_instances);
        let idle: Vec<Instance> = match self.ready.lock() {
            Ok(mut ready) => {
                let stale = ready.iter().take_while(|instance| instance.idle_since.elapsed() >= timeout).count();
                let drop = stale.min(ready.len().saturating_sub(keep));
                ready.drain(..drop).collect()
            }
            Err(_) => return,
        };
        if !idle.is_empty() {
            tracing::debug!(app = %self.app, dropped = idle.len(), "idle instances dropped");
            METRICS.retired.with_label_values(&[&*self.app, Retirement::Idle.label()]).inc_by(idle.len() as u64);
        }
    }

    fn ready_len(&self) -> usize {
        self.ready.lock().map(|ready| ready.len()).unwrap_or(0)
    }

    /// Instantiates until `min_instances` are ready, without exceeding
    /// `max_instances` live instances in `reuse` mode.
    async fn fill(&self) -> Result<()> {
        while self.wants_instance() {
            let instance = self.instantiate().await?;
            // A request that found no ready instance may have created its
            // own meanwhile: check again, so that live instances never
            // exceed `max_instances` in `reuse` mode.
            if self.wants_instance() {
                self.push_ready(instance);
            }
        }
        Ok(())
    }

    /// Whether the pool is short of ready instances and has room for one.
    fn wants_instance(&self) -> bool {
        let ready = self.ready_len();
        let busy = self.limits.max_instances - self.permits.available_permits();
        let room = match self.limits.isolation {
            Isolation::Reuse => ready + busy < self.limits.max_instances,
            Isolation::Fresh => true,
        };
        ready < self.limits.min_instances && room && !self.retired.load(Ordering::Acquire)
    }

    fn release(&self, mut instance: Instance, failed: bool) -> Option<Retirement> {
        instance.served += 1;
        let retirement = if failed {
            Some(Retirement::Failure)
        } else if self.retired.load(Ordering::Acquire) {
            Some(Retirement::Replaced)
        } else if self.limits.isolation == Isolation::Fresh {
            Some(Retirement::SingleUse)
        } else if instance.served >= instance.retire_after {
            Some(Retirement::RequestQuota)
        } else if instance.store.data().limiter.used() > self.limits.recycle_memory {
            Some(Retirement::Memory)
        } else {
            None
        };
        match retirement {
            None => self.push_ready(instance),
            Some(reason) => {
                tracing::debug!(app = %self.app, ?reason, served = instance.served, "instance retired");
                self.count_retired(reason.label());
                drop(instance);
                self.refill.notify_one();
            }
        }
        retirement
    }
}

impl Shared {
    fn count_retired(&self, reason: &str) {
        METRICS.retired.with_label_values(&[&*self.app, reason]).inc();
    }
}

impl Retirement {
    /// The reason as a metric label.
    pub fn label(self) -> &'static str {
        match self {
            Retirement::SingleUse => "single_use",
            Retirement::RequestQuota => "request_quota",
            Retirement::Memory => "memory",
            Retirement::Failure => "failure",
            Retirement::Replaced => "replaced",
            Retirement::Idle => "idle",
        }
    }
}

/// Until the pool is dropped: keeps `min_instances` ready, and every half
/// `idle_timeout` drops the instances idle for longer than it (so an unused
/// instance goes after one to one and a half times `idle_timeout`).
async fn refill_task(shared: Weak<Shared>, refill: Arc<Notify>) {
    while let Some(pool) = shared.upgrade() {
        if let Err(err) = pool.fill().await {
            tracing::warn!(app = %pool.app, "could not pre-instantiate: {err:#}");
        }
        pool.drop_idle();
        let check = (pool.limits.idle_timeout / 2).max(Duration::from_millis(50));
        drop(pool);
        let _woken = tokio::time::timeout(check, refill.notified()).await;
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Wake the refill task so it sees the pool is gone and ends.
        self.refill.notify_one();
    }
}

/// An instance checked out of the pool for one request.
///
/// Dropping a lease without [`Lease::finish`] discards the instance: a
/// request that was cancelled half-way leaves its store in an unknown state.
pub struct Lease {
    instance: Option<Instance>,
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    /// The store, to create the request's resources in.
    pub fn store(&mut self) -> &mut Store<StoreData> {
        &mut self.instance.as_mut().expect("lease holds an instance until finished").store
    }

    /// The app the instance belongs to.
    pub fn app(&self) -> &Arc<str> {
        &self.shared.app
    }

    /// Runs the guest's `wasi:http/incoming-handler.handle`.
    pub async fn call_handle(
        &mut self,
        request: Resource<HostIncomingRequest>,
        response: Resource<HostResponseOutparam>,
    ) -> wasmtime::Result<()> {
        let instance = self.instance.as_mut().expect("lease holds an instance until finished");
        instance.proxy.wasi_http_incoming_handler().call_handle(&mut instance.store, request, response).await
    }

    /// Whether a memory growth was refused during this request.
    pub fn memory_exhausted(&mut self) -> bool {
        self.store().data().limiter.exhausted()
    }

    /// Returns the instance to the pool, or retires it; `failed` instances
    /// are always retired.
    pub fn finish(mut self, failed: bool) -> Option<Retirement> {
        let mut instance = self.instance.take()?;
        instance.store.data_mut().end_request();
        self.shared.release(instance, failed)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.instance.take().is_some() {
            self.shared.count_retired("cancelled");
            self.shared.refill.notify_one();
        }
    }
}
