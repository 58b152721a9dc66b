//! Bounds on the outbound connections a guest holds open at once: one
//! budget per app, shared by all its instances (and by its versions across a
//! reload), and a smaller share of it per instance.
//!
//! A connection takes a [`ConnectionPermit`] before anything else happens
//! (before DNS resolution) and gives it back when the permit is dropped,
//! which is when the connection is closed: its response body finished or
//! dropped, its I/O task done, or the whole request abandoned by the guest.
//! Beyond either bound the request is refused at once, never queued: a guest
//! that opens connections faster than they close learns it immediately and
//! cannot pile up sockets (file descriptors) that every tenant of the
//! process shares.
//!
//! The budget is not specific to HTTP: a guest's own TCP socket
//! (`wasi:sockets`) takes its permit from the same budgets when it is
//! created and gives it back when the guest drops it or the instance is
//! retired.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics;

/// At most one log line per app in this interval about refused connections;
/// the refusals in between are counted in the next line (and each one in
/// `wasmhost_outbound_rejected_total`).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// The outbound connections one app may hold open at once. Cheap to clone;
/// clones share the budget.
#[derive(Clone)]
pub struct ConnectionBudget {
    shared: Arc<AppBudget>,
}

struct AppBudget {
    app: Arc<str>,
    limit: usize,
    permits: Arc<Semaphore>,
    refusals: Mutex<RefusalLog>,
}

/// Refusals since the last log line, and when that line was written.
#[derive(Default)]
struct RefusalLog {
    last_line: Option<Instant>,
    unlogged: u64,
}

impl ConnectionBudget {
    /// A budget of `limit` concurrent connections (at least one) for `app`.
    pub fn new(app: Arc<str>, limit: usize) -> Self {
        let limit = limit.max(1);
        for reason in [LimitReached::App, LimitReached::Instance] {
            metrics::touch_rejected(&app, reason.label());
        }
        let shared = AppBudget {
            app,
            limit,
            permits: Arc::new(Semaphore::new(limit)),
            refusals: Mutex::new(RefusalLog::default()),
        };
        Self { shared: Arc::new(shared) }
    }

    /// The most connections the app may hold at once.
    pub fn limit(&self) -> usize {
        self.shared.limit
    }

    /// Connections held right now, over all instances.
    pub fn in_use(&self) -> usize {
        self.shared.limit - self.shared.permits.available_permits()
    }

    /// The share of this budget one instance may use: at most `limit`
    /// connections (at least one), and never more than the app has left.
    pub fn instance(&self, limit: usize) -> InstanceBudget {
        let limit = limit.max(1);
        InstanceBudget { app: self.clone(), limit, permits: Arc::new(Semaphore::new(limit)) }
    }
}

impl std::fmt::Debug for ConnectionBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionBudget")
            .field("app", &self.shared.app)
            .field("limit", &self.shared.limit)
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl AppBudget {
    /// Counts a refusal and logs it, at most one line per
    /// [`REFUSAL_LOG_INTERVAL`], with the number refused since the last line.
    fn refused(&self, reason: LimitReached, instance_limit: usize) {
        metrics::rejected(&self.app, reason.label());
        let Ok(mut log) = self.refusals.lock() else { return };
        log.unlogged += 1;
        let now = Instant::now();
        if log.last_line.is_some_and(|last| now.duration_since(last) < REFUSAL_LOG_INTERVAL) {
            return;
        }
        tracing::warn!(
            app = %self.app,
            reason = reason.label(),
            refused = log.unlogged,
            app_limit = self.limit,
            instance_limit,
            "outbound connection refused with connection-limit-reached: {}",
            reason.describe(),
        );
        log.last_line = Some(now);
        log.unlogged = 0;
    }
}

/// One instance's share of its app's [`ConnectionBudget`].
pub struct InstanceBudget {
    app: ConnectionBudget,
    limit: usize,
    permits: Arc<Semaphore>,
}

impl InstanceBudget {
    /// A permit for one more connection, or which bound refused it (counted
    /// and logged). Never waits.
    pub fn try_acquire(&self) -> Result<ConnectionPermit, LimitReached> {
        let refused = |reason| {
            self.app.shared.refused(reason, self.limit);
            reason
        };
        let instance = self.permits.clone().try_acquire_owned().map_err(|_| refused(LimitReached::Instance))?;
        let app = self.app.shared.permits.clone().try_acquire_owned().map_err(|_| refused(LimitReached::App))?;
        Ok(ConnectionPermit { _instance: instance, _app: app })
    }
}

/// One open outbound connection's place in its budgets; dropping it frees
/// the place.
#[must_use = "the connection's place in the budget is given back when the permit is dropped"]
pub struct ConnectionPermit {
    _instance: OwnedSemaphorePermit,
    _app: OwnedSemaphorePermit,
}

/// Which bound refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitReached {
    /// The app holds `max_outbound_connections` already.
    App,
    /// The instance holds `max_outbound_connections_per_instance` already.
    Instance,
}

impl LimitReached {
    /// The `reason` label of `wasmhost_outbound_rejected_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::App => "app_limit",
            Self::Instance => "instance_limit",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::App => "the app holds max_outbound_connections open already (raise it if the app needs more)",
            Self::Instance => {
                "the instance holds max_outbound_connections_per_instance open already (raise it if one request \
                 needs more)"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl InstanceBudget {
        fn in_use(&self) -> usize {
            self.limit - self.permits.available_permits()
        }
    }

    #[test]
    fn the_instance_bound_applies_before_the_app_bound() {
        let budget = ConnectionBudget::new(Arc::from("budget-instance"), 5);
        let (a, b) = (budget.instance(3), budget.instance(3));
        let held_a: Vec<_> = (0..3).map(|_| a.try_acquire().unwrap()).collect();
        assert_eq!(a.try_acquire().err(), Some(LimitReached::Instance));
        let held_b: Vec<_> = (0..2).map(|_| b.try_acquire().unwrap()).collect();
        assert_eq!(b.try_acquire().err(), Some(LimitReached::App), "the app has 5 in all");
        assert_eq!(budget.in_use(), 5);
        assert_eq!((a.in_use(), b.in_use()), (3, 2));
        drop(held_a);
        assert_eq!(budget.in_use(), 2);
        let again: Vec<_> = (0..3).map(|_| b.try_acquire()).collect();
        assert_eq!(again.iter().filter(|permit| permit.is_ok()).count(), 1, "b's own bound is 3, it holds 2");
        drop((held_b, again));
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn a_refused_permit_takes_nothing() {
        let budget = ConnectionBudget::new(Arc::from("budget-refused"), 1);
        let instance = budget.instance(4);
        let held = instance.try_acquire().unwrap();
        for _ in 0..10 {
            assert_eq!(instance.try_acquire().err(), Some(LimitReached::App));
        }
        assert_eq!((budget.in_use(), instance.in_use(), instance.limit), (1, 1, 4));
        drop(held);
        assert_eq!((budget.in_use(), instance.in_use()), (0, 0));
        assert!(instance.try_acquire().is_ok());
    }

    #[test]
    fn clones_share_the_budget_and_limits_are_at_least_one() {
        let budget = ConnectionBudget::new(Arc::from("budget-clones"), 0);
        assert_eq!(budget.limit(), 1);
        let next_version = budget.clone().instance(0);
        let held = next_version.try_acquire().unwrap();
        assert_eq!(budget.in_use(), 1);
        assert_eq!(budget.instance(8).try_acquire().err(), Some(LimitReached::App));
        drop(held);
    }

    #[test]
    fn refusals_are_counted_every_time_and_logged_once_per_interval() {
        let budget = ConnectionBudget::new(Arc::from("budget-log"), 1);
        let instance = budget.instance(1);
        let _held = instance.try_acquire().unwrap();
        let before = metrics::rejected_count("budget-log", "instance_limit");
        for _ in 0..100 {
            let _ = instance.try_acquire();
        }
        assert_eq!(metrics::rejected_count("budget-log", "instance_limit") - before, 100);
        let log = budget.shared.refusals.lock().unwrap();
        assert_eq!(log.unlogged, 99, "the first refusal was logged, the other 99 wait for the next line");
    }
}
