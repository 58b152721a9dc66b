//! A guest's stdout and stderr: each line becomes a log event tagged with the
//! app and the request being served, within a per-app volume budget.
//!
//! A guest can print as fast as it can loop, and every byte it prints costs
//! the host CPU, the log pipe and the disk behind it, for every tenant. So
//! the output of all instances of an app shares one budget
//! (`guest_log_rate` bytes per second, with a burst of twice that): lines
//! beyond it are dropped, counted in `wasmhost_guest_output_dropped_bytes_total`,
//! and said so in one line per burst. Lines are cut at [`MAX_LOG_LINE`]
//! bytes and control characters are escaped (`\r`, `\x1b`, ...), so a guest
//! can neither overwrite nor colour the operator's terminal.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::metrics::METRICS;

/// Longest guest log line kept; the rest of a longer line is cut off.
pub const MAX_LOG_LINE: usize = 4096;

/// The request an instance is serving, shared with its log streams.
#[derive(Clone, Default)]
pub struct RequestTag(Arc<Mutex<Arc<str>>>);

impl RequestTag {
    /// Tags the instance's output with `request_id` from now on.
    pub fn set(&self, request_id: &str) {
        if let Ok(mut current) = self.0.lock() {
            *current = Arc::from(request_id);
        }
    }

    /// The request id the instance's output is tagged with now.
    pub fn get(&self) -> Arc<str> {
        self.0.lock().map(|id| id.clone()).unwrap_or_else(|_| Arc::from(""))
    }
}

/// The output budget shared by every instance of one app: a token bucket of
/// bytes, and what was dropped since the last report.
pub struct OutputBudget {
    app: Arc<str>,
    /// Bytes per second the bucket refills with, as configured.
    configured: u64,
    /// Bytes per second the bucket refills with.
    rate: f64,
    /// Most bytes the bucket holds.
    burst: f64,
    state: Mutex<BudgetState>,
}

struct BudgetState {
    tokens: f64,
    refilled: Instant,
    /// Bytes and lines dropped since dropping last started.
    dropped_bytes: u64,
    dropped_lines: u64,
}

impl OutputBudget {
    /// A budget of `rate` bytes per second (at least 1 KiB/s) for the
    /// output of `app`, starting full.
    pub fn new(app: Arc<str>, configured: u64) -> Arc<Self> {
        let rate = configured.max(1024) as f64;
        let burst = 2.0 * rate;
        let state = BudgetState { tokens: burst, refilled: Instant::now(), dropped_bytes: 0, dropped_lines: 0 };
        Arc::new(Self { app, configured, rate, burst, state: Mutex::new(state) })
    }

    /// The rate the budget was made with (`guest_log_rate`).
    pub fn rate(&self) -> u64 {
        self.configured
    }

    /// Takes `len` bytes from the budget. `Err` when they do not fit (the
    /// line is to be dropped); `Ok(Some((bytes, lines)))` when this line is
    /// the first to fit after some were dropped, to report them.
    fn take(&self, len: usize) -> Result<Option<(u64, u64)>, Dropping> {
        let Ok(mut state) = self.state.lock() else { return Ok(None) };
        let now = Instant::now();
        let elapsed = now.duration_since(state.refilled).as_secs_f64();
        state.tokens = (state.tokens + elapsed * self.rate).min(self.burst);
        state.refilled = now;
        let cost = len.max(1) as f64;
        if state.tokens < cost {
            let first = state.dropped_lines == 0;
            state.dropped_bytes += len as u64;
            state.dropped_lines += 1;
            METRICS.guest_output_dropped.with_label_values(&[&*self.app]).inc_by(len as u64);
            return Err(Dropping { first });
        }
        state.tokens -= cost;
        let dropped = (state.dropped_lines > 0).then_some((state.dropped_bytes, state.dropped_lines));
        state.dropped_bytes = 0;
        state.dropped_lines = 0;
        Ok(dropped)
    }
}

/// A line did not fit the budget; `first` when it starts a burst of drops.
struct Dropping {
    first: bool,
}

/// A guest's stdout or stderr.
#[derive(Clone)]
pub struct GuestLog {
    stream: &'static str,
    request: RequestTag,
    budget: Arc<OutputBudget>,
}

impl GuestLog {
    /// The `stream` (`"stdout"` or `"stderr"`) of an instance serving
    /// `request`, within the app's `budget`.
    pub fn new(stream: &'static str, request: RequestTag, budget: Arc<OutputBudget>) -> Self {
        Self { stream, request, budget }
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(GuestLogWriter { log: self.clone(), line: Vec::new() })
    }
}

/// Line-buffering writer behind [`GuestLog`].
struct GuestLogWriter {
    log: GuestLog,
    line: Vec<u8>,
}

impl GuestLogWriter {
    fn emit(&mut self) {
        let log = &self.log;
        let app = &*log.budget.app;
        match log.budget.take(self.line.len()) {
            Err(Dropping { first: true }) => tracing::warn!(
                target: "wasmhost::guest",
                app,
                request_id = %log.request.get(),
                rate = log.budget.rate as u64,
                "guest output exceeds its budget of {} bytes/s; dropping lines (counted in \
                 wasmhost_guest_output_dropped_bytes_total)",
                log.budget.rate as u64
            ),
            Err(Dropping { first: false }) => {}
            Ok(dropped) => {
                if let Some((bytes, lines)) = dropped {
                    tracing::warn!(target: "wasmhost::guest", app, bytes, lines, "guest output dropped: {lines} lines, {bytes} bytes");
                }
                let line = String::from_utf8_lossy(&self.line);
                let text = escape_controls(&line);
                tracing::info!(
                    target: "wasmhost::guest",
                    app,
                    request_id = %log.request.get(),
                    stream = log.stream,
                    "{text}"
                );
            }
        }
        self.line.clear();
    }
}

/// `text` without a trailing line break, with control characters (but tab)
/// written as escapes: `\r`, `\x1b`, `\u{9b}`.
fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let text = text.strip_suffix('\r').unwrap_or(text);
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => escaped.push(c),
            '\r' => escaped.push_str("\\r"),
            c if (c as u32) < 0x80 && c.is_control() => escaped.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => escaped.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => escaped.push(c),
        }
    }
    std::borrow::Cow::Owned(escaped)
}

impl tokio::io::AsyncWrite for GuestLogWriter {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        for &byte in buf {
            if byte == b'\n' {
                self.emit();
            } else if self.line.len() < MAX_LOG_LINE {
                self.line.push(byte);
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.line.is_empty() {
            self.emit();
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("plain\ttext"), "plain\ttext");
        assert_eq!(escape_controls("abc\rdef"), "abc\\rdef");
        assert_eq!(escape_controls("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
        assert_eq!(escape_controls("a\u{9b}b\u{7f}"), "a\\u{9b}b\\x7f");
        assert_eq!(escape_controls("windows line\r"), "windows line", "a CRLF line ends at the CR");
    }

    #[test]
    fn the_budget_drops_lines_past_the_burst_and_reports_them_once() {
        let budget = OutputBudget::new(Arc::from("t"), 1024);
        // Burst: 2 KiB.
        assert!(matches!(budget.take(1500), Ok(None)));
        assert!(matches!(budget.take(1000), Err(Dropping { first: true })));
        assert!(matches!(budget.take(1000), Err(Dropping { first: false })));
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(budget.take(100).ok(), Some(Some((2000, 2))), "the next line that fits reports the drops");
        assert_eq!(budget.take(100).ok(), Some(None), "reported once");
    }
}
