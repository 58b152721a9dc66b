//! `wasmhost_outbound_rejected_total{app,reason}`: outbound requests the host
//! refused, in the process-wide default registry (served at `/metrics` with
//! the runtime's metrics).

use std::sync::LazyLock;

use prometheus::{register_int_counter_vec, IntCounterVec};

static REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    // Registration fails only for a name registered twice, which this
    // single static rules out.
    register_int_counter_vec!(
        "wasmhost_outbound_rejected_total",
        "Outbound requests the host refused before connecting, by app and reason.",
        &["app", "reason"]
    )
    .expect("metric registered once")
});

/// Counts one refused outbound request of `app`.
pub(crate) fn rejected(app: &str, reason: &str) {
    REJECTED.with_label_values(&[app, reason]).inc();
}

/// Creates the `app`/`reason` series at 0, so that `increase()` sees its
/// first refusal.
pub(crate) fn touch_rejected(app: &str, reason: &str) {
    REJECTED.with_label_values(&[app, reason]);
}

#[cfg(test)]
pub(crate) fn rejected_count(app: &str, reason: &str) -> u64 {
    REJECTED.with_label_values(&[app, reason]).get()
}
