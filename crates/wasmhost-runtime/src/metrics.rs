//! Prometheus metrics of the runtime, labelled by app, in the process-wide
//! default registry (the admin listener serves them at `/metrics`).
//!
//! Counters and histograms are recorded where things happen; gauges that
//! describe state (queue depth, idle and busy instances, loaded module) are
//! set by the admin listener when it is scraped.

use std::sync::LazyLock;

use prometheus::{
    register_histogram_vec, register_int_counter_vec, register_int_gauge_vec, HistogramVec, IntCounterVec, IntGaugeVec,
};

/// Latency buckets, in seconds: 100 µs to 30 s.
const BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Key-value and SQL latency buckets, in seconds: 5 µs to 1 s.
const KV_BUCKETS: &[f64] =
    &[0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1, 1.0];

/// Every metric wasmhost exports.
pub struct Metrics {
    /// Responses by app and status class (`2xx`, `4xx`, ...).
    pub requests: IntCounterVec,
    /// Time from request head to the end of the response body.
    pub request_duration: HistogramVec,
    /// Time a request waited for an instance.
    pub queue_wait: HistogramVec,
    /// Time to create an instance.
    pub instantiation: HistogramVec,
    /// Instances retired, by reason.
    pub retired: IntCounterVec,
    /// Guest failures, by kind (`trap`, `timeout`, `memory`, `stack`).
    pub guest_failures: IntCounterVec,
    /// Requests refused by the host, by status (`413`, `503`, ...).
    pub rejected: IntCounterVec,
    /// Bytes of guest output dropped over the app's log budget.
    pub guest_output_dropped: IntCounterVec,
    /// Reloads, by result (`swapped`, `unchanged`, `refused`).
    pub reloads: IntCounterVec,
    /// Config file reloads, by result (`applied`, `refused`).
    pub config_reloads: IntCounterVec,
    /// Requests waiting for an instance (set at scrape).
    pub queue_depth: IntGaugeVec,
    /// Instances by state, `idle`, `busy` or `max` (set at scrape).
    pub instances: IntGaugeVec,
    /// The module digest an app serves: 1 for the live digest (set at scrape).
    pub module_info: IntGaugeVec,
    /// Outbound connections an app's guests hold open (set at scrape).
    pub outbound_connections: IntGaugeVec,
    /// TCP sockets an app's guests hold open (`wasi:sockets`; also counted
    /// in `outbound_connections`).
    pub tcp_sockets: IntGaugeVec,
    /// Failed `accept` calls, by listener (`http`, `admin`).
    pub accept_errors: IntCounterVec,
    /// Key-value operations, by app, bucket, operation and result (`ok`,
    /// `refused` by a limit, `error` from the backend).
    pub kv_operations: IntCounterVec,
    /// Time a key-value operation took, by app and operation.
    pub kv_duration: HistogramVec,
    /// Key-value bytes, by app, bucket and direction (`read`, `written`).
    pub kv_bytes: IntCounterVec,
    /// Keys an app holds (its quota is `kv_max_keys`).
    pub kv_keys: IntGaugeVec,
    /// SQL statements and transaction steps, by app, database and result
    /// (`ok`, `refused`: an error the guest caused, `error` from storage).
    pub sql_statements: IntCounterVec,
    /// Time a SQL call took, by app and operation.
    pub sql_duration: HistogramVec,
    /// SQL connections an app's instances hold open.
    pub sql_connections: IntGaugeVec,
    /// Transactions the host rolled back because their request ended.
    pub sql_rollbacks: IntCounterVec,
}

/// The metrics, registered on first use.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    // Registration fails only for a name registered twice, which this
    // single static rules out.
    let expect = "metric registered once";
    Metrics {
        requests: register_int_counter_vec!(
            "wasmhost_requests_total",
            "Responses sent, by app and status class.",
            &["app", "status_class"]
        )
        .expect(expect),
        request_duration: register_histogram_vec!(
            "wasmhost_request_duration_seconds",
            "Time from request head to the end of the response body.",
            &["app"],
            BUCKETS.to_vec()
        )
        .expect(expect),
        queue_wait: register_histogram_vec!(
            "wasmhost_queue_wait_seconds",
            "Time a request waited for an instance.",
            &["app"],
            BUCKETS.to_vec()
        )
        .expect(expect),
        instantiation: register_histogram_vec!(
            "wasmhost_instantiation_seconds",
            "Time to create an instance.",
            &["app"],
            BUCKETS.to_vec()
        )
        .expect(expect),
        retired: register_int_counter_vec!(
            "wasmhost_instances_retired_total",
            "Instances retired, by reason.",
            &["app", "reason"]
        )
        .expect(expect),
        guest_failures: register_int_counter_vec!(
            "wasmhost_guest_failures_total",
            "Guest failures, by kind.",
            &["app", "kind"]
        )
        .expect(expect),
        rejected: register_int_counter_vec!(
            "wasmhost_rejected_requests_total",
            "Requests the host refused before or instead of running the guest, by status.",
            &["app", "status"]
        )
        .expect(expect),
        guest_output_dropped: register_int_counter_vec!(
            "wasmhost_guest_output_dropped_bytes_total",
            "Bytes a guest wrote to stdout or stderr beyond its app's guest_log_rate, dropped.",
            &["app"]
        )
        .expect(expect),
        reloads: register_int_counter_vec!(
            "wasmhost_reloads_total",
            "Reloads of an app, by result.",
            &["app", "result"]
        )
        .expect(expect),
        config_reloads: register_int_counter_vec!(
            "wasmhost_config_reloads_total",
            "Reloads of the config file (serve --config), by result.",
            &["result"]
        )
        .expect(expect),
        queue_depth: register_int_gauge_vec!("wasmhost_queue_depth", "Requests waiting for an instance.", &["app"])
            .expect(expect),
        instances: register_int_gauge_vec!(
            "wasmhost_instances",
            "Instances of an app by state: idle, busy, max.",
            &["app", "state"]
        )
        .expect(expect),
        module_info: register_int_gauge_vec!(
            "wasmhost_module_info",
            "The module an app serves, as its SHA-256 digest label.",
            &["app", "digest"]
        )
        .expect(expect),
        outbound_connections: register_int_gauge_vec!(
            "wasmhost_outbound_connections",
            "Outbound connections an app's guests hold open, over all its instances and versions.",
            &["app"]
        )
        .expect(expect),
        tcp_sockets: register_int_gauge_vec!(
            "wasmhost_tcp_sockets",
            "TCP sockets an app's guests hold open (wasi:sockets; part of wasmhost_outbound_connections).",
            &["app"]
        )
        .expect(expect),
        accept_errors: register_int_counter_vec!(
            "wasmhost_accept_errors_total",
            "Failed accepts of new connections (e.g. out of file descriptors), by listener.",
            &["listener"]
        )
        .expect(expect),
        kv_operations: register_int_counter_vec!(
            "wasmhost_kv_operations_total",
            "Key-value operations, by app, bucket, operation and result (ok, refused, error).",
            &["app", "bucket", "operation", "result"]
        )
        .expect(expect),
        kv_duration: register_histogram_vec!(
            "wasmhost_kv_operation_seconds",
            "Time a key-value operation took in the host, by app and operation.",
            &["app", "operation"],
            KV_BUCKETS.to_vec()
        )
        .expect(expect),
        kv_bytes: register_int_counter_vec!(
            "wasmhost_kv_bytes_total",
            "Key-value bytes read and written, by app, bucket and direction.",
            &["app", "bucket", "direction"]
        )
        .expect(expect),
        kv_keys: register_int_gauge_vec!(
            "wasmhost_kv_keys",
            "Keys an app holds over its embedded buckets (its quota is kv_max_keys).",
            &["app"]
        )
        .expect(expect),
        sql_statements: register_int_counter_vec!(
            "wasmhost_sql_statements_total",
            "SQL statements and transaction steps, by app, database and result (ok, refused, error).",
            &["app", "database", "result"]
        )
        .expect(expect),
        sql_duration: register_histogram_vec!(
            "wasmhost_sql_statement_seconds",
            "Time a SQL call took (waiting for a lock included), by app and operation.",
            &["app", "operation"],
            KV_BUCKETS.to_vec()
        )
        .expect(expect),
        sql_connections: register_int_gauge_vec!(
            "wasmhost_sql_connections",
            "SQL connections an app's instances hold open.",
            &["app"]
        )
        .expect(expect),
        sql_rollbacks: register_int_counter_vec!(
            "wasmhost_sql_rollbacks_total",
            "SQL transactions the host rolled back because the request that opened them ended.",
            &["app"]
        )
        .expect(expect),
    }
});
