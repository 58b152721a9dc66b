//! The access log: one line per request, written when its response body is
//! done (sent, aborted, or abandoned by the client).

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::Request;
use http_body::{Body, Frame, SizeHint};
use wasmhost_runtime::metrics::METRICS;
use wasmhost_runtime::ResponseBody;
use wasmhost_runtime::app::BodyError;

/// What is known about a request until its line is written.
pub(crate) struct AccessLog {
    started: Instant,
    method: String,
    path: String,
    request_id: String,
    peer: SocketAddr,
    app: String,
    status: u16,
    content_length: Option<u64>,
    bytes: u64,
    end: &'static str,
}

impl AccessLog {
    pub(crate) fn new<B>(request: &Request<B>, request_id: &str, peer: SocketAddr, started: Instant) -> Self {
        Self {
            started,
            method: request.method().to_string(),
            path: request.uri().path().to_owned(),
            request_id: request_id.to_owned(),
            peer,
            app: String::from("-"),
            status: 0,
            content_length: None,
            bytes: 0,
            // Until the body says otherwise, the client went away first.
            end: "client-gone",
        }
    }

    pub(crate) fn app(&mut self, name: &str) {
        self.app = name.to_owned();
    }

    /// Records the response head.
    pub(crate) fn response(&mut self, parts: &http::response::Parts) {
        self.status = parts.status.as_u16();
        self.content_length = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse().ok());
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        // hyper stops polling a body once it has sent `Content-Length` bytes.
        if self.end == "client-gone" && self.content_length == Some(self.bytes) {
            self.end = "complete";
        }
        let elapsed = self.started.elapsed();
        let class = match self.status {
            100..=599 => ["1xx", "2xx", "3xx", "4xx", "5xx"][usize::from(self.status / 100 - 1)],
            _ => "none",
        };
        METRICS.requests.with_label_values(&[&self.app, class]).inc();
        METRICS.request_duration.with_label_values(&[&self.app]).observe(elapsed.as_secs_f64());
        tracing::info!(
            target: "wasmhost::access",
            app = %self.app,
            method = %self.method,
            path = %self.path,
            status = self.status,
            duration_ms = %format_args!("{:.3}", elapsed.as_secs_f64() * 1000.0),
            bytes = self.bytes,
            end = self.end,
            request_id = %self.request_id,
            peer = %self.peer,
        );
    }
}

/// A response body that records its size and how it ended in the access log.
pub struct LoggedBody {
    inner: ResponseBody,
    log: AccessLog,
}

impl LoggedBody {
    pub(crate) fn new(inner: ResponseBody, log: AccessLog) -> Self {
        Self { inner, log }
    }
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                self.log.bytes += frame.data_ref().map_or(0, |data| data.len() as u64);
                if self.inner.is_end_stream() {
                    self.log.end = "complete";
                }
            }
            Poll::Ready(Some(Err(_))) => self.log.end = "aborted",
            Poll::Ready(None) => self.log.end = "complete",
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
