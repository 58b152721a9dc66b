//! Accepting connections without spinning when the process runs out of file
//! descriptors (or kernel memory for sockets).
//!
//! `accept` fails with `EMFILE`/`ENFILE`/`ENOBUFS`/`ENOMEM` while the
//! process (or the system) is out of descriptors or socket buffers; the
//! pending connection stays in the kernel's backlog, so the listener stays
//! readable and a plain retry loop would spin a core and write a log line
//! per attempt. [`Acceptor`] instead waits, 10 ms at first and twice as long
//! after each failure up to 1 s, logs one line when such a burst starts and
//! one when accepting works again, and counts every failure in
//! `wasmhost_accept_errors_total{listener}`. Errors that concern only the
//! one connection (aborted or reset before it was accepted) are retried at
//! once.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use wasmhost_runtime::metrics::METRICS;

/// The first wait after a failed accept.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// The longest wait between two attempts: how long a listener may stay
/// idle after descriptors are free again.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A listener whose [`accept`](Acceptor::accept) rides out resource
/// exhaustion.
pub struct Acceptor {
    listener: TcpListener,
    /// The `listener` label of the metric and the log lines.
    name: &'static str,
    burst: Option<Burst>,
}

/// A run of failed accepts.
struct Burst {
    started: Instant,
    failures: u64,
    backoff: Duration,
}

impl Acceptor {
    /// Accepts on `listener`, named `name` in metrics and logs.
    pub fn new(listener: TcpListener, name: &'static str) -> Self {
        // The series starts at 0, so `increase()` sees the first failure.
        METRICS.accept_errors.with_label_values(&[name]);
        Self { listener, name, burst: None }
    }

    /// The next connection. Waits, never fails: errors are counted, logged
    /// once per burst and retried with a growing pause. Cancel-safe: a wait
    /// cut short keeps its place in the backoff.
    pub async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok(accepted) => {
                    self.recovered();
                    return accepted;
                }
                Err(err) => {
                    METRICS.accept_errors.with_label_values(&[self.name]).inc();
                    if is_connection_error(&err) {
                        tracing::debug!(listener = self.name, "a connection failed before it was accepted: {err}");
                        continue;
                    }
                    let pause = self.failed(&err);
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// Records a failure; returns how long to wait before the next attempt.
    fn failed(&mut self, err: &std::io::Error) -> Duration {
        let burst = self.burst.get_or_insert_with(|| {
            tracing::warn!(
                listener = self.name,
                "cannot accept connections: {err}; retrying up to every {} ms until it works again{}",
                MAX_BACKOFF.as_millis(),
                hint(err),
            );
            Burst { started: Instant::now(), failures: 0, backoff: FIRST_BACKOFF / 2 }
        });
        burst.failures += 1;
        burst.backoff = (burst.backoff * 2).min(MAX_BACKOFF);
        burst.backoff
    }

    /// Ends a burst of failures, if there was one.
    fn recovered(&mut self) {
        if let Some(burst) = self.burst.take() {
            tracing::info!(
                listener = self.name,
                failures = burst.failures,
                after_ms = burst.started.elapsed().as_millis() as u64,
                "accepting connections again"
            );
        }
    }
}

/// Whether `err` concerns only the connection being accepted, not the
/// listener or the process.
fn is_connection_error(err: &std::io::Error) -> bool {
    matches!(err.kind(), ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused)
}

/// What to do about the usual causes.
fn hint(err: &std::io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(EMFILE) => {
            " (the process is out of file descriptors: raise its limit, `ulimit -n` or LimitNOFILE, or lower \
             --max-connections and the apps' max_outbound_connections)"
        }
        Some(ENFILE) => " (the system is out of file descriptors)",
        _ => "",
    }
}

/// `EMFILE`, the process's descriptor limit, on Linux and the BSDs.
const EMFILE: i32 = 24;
/// `ENFILE`, the system's descriptor limit, on Linux and the BSDs.
const ENFILE: i32 = 23;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_up_to_its_cap_and_resets_after_a_success() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _guard = runtime.enter();
        let mut acceptor = Acceptor::new(TcpListener::from_std(listener).unwrap(), "test");
        let emfile = std::io::Error::from_raw_os_error(EMFILE);
        let pauses: Vec<u128> = (0..10).map(|_| acceptor.failed(&emfile).as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        assert_eq!(acceptor.burst.as_ref().map(|burst| burst.failures), Some(10));
        acceptor.recovered();
        assert!(acceptor.burst.is_none());
        assert_eq!(acceptor.failed(&emfile), FIRST_BACKOFF);
    }

    #[test]
    fn only_per_connection_errors_are_retried_at_once() {
        assert!(is_connection_error(&ErrorKind::ConnectionAborted.into()));
        for resource in [EMFILE, ENFILE, 105 /* ENOBUFS */, 12 /* ENOMEM */] {
            assert!(!is_connection_error(&std::io::Error::from_raw_os_error(resource)), "{resource}");
        }
    }
}
