//! The access log: one line per request, written when its response body is
//! done (sent, aborted, or abandoned by the client).
//!
//! By default each line is a structured event (fields, or a JSON object with
//! `--log-format json`); `--access-log` picks a template instead, e.g.
//! `'{peer} "{method} {path}" {status} {bytes} {duration_ms}ms {request_id}'`,
//! or `off`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::Request;
use http_body::{Body, Frame, SizeHint};
use wasmhost_runtime::body::BodyError;
use wasmhost_runtime::metrics::METRICS;
use wasmhost_runtime::ResponseBody;
use wasmhost_spec::access_log::{Field, Piece};
use wasmhost_spec::AccessLogFormat;

/// What is known about a request until its line is written.
pub(crate) struct AccessLog {
    format: Arc<AccessLogFormat>,
    arrived: std::time::SystemTime,
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
    pub(crate) fn new<B>(
        format: Arc<AccessLogFormat>,
        request: &Request<B>,
        request_id: &str,
        peer: SocketAddr,
        started: Instant,
    ) -> Self {
        Self {
            format,
            arrived: std::time::SystemTime::now(),
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
        self.content_length =
            parts.headers.get(http::header::CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse().ok());
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        // hyper stops polling a body once it has sent `Content-Length` bytes,
        // and never polls one that HTTP forbids (HEAD, 1xx, 204, 304).
        let bodyless = self.method == "HEAD" || matches!(self.status, 100..=199 | 204 | 304);
        if self.end == "client-gone" && (self.content_length == Some(self.bytes) || (bodyless && self.status != 0)) {
            self.end = "complete";
        }
        let elapsed = self.started.elapsed();
        let class = match self.status {
            100..=599 => ["1xx", "2xx", "3xx", "4xx", "5xx"][usize::from(self.status / 100 - 1)],
            _ => "none",
        };
        METRICS.requests.with_label_values(&[&self.app, class]).inc();
        METRICS.request_duration.with_label_values(&[&self.app]).observe(elapsed.as_secs_f64());
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        match &*self.format {
            AccessLogFormat::Off => {}
            AccessLogFormat::Fields => tracing::info!(
                target: "wasmhost::access",
                app = %self.app,
                method = %self.method,
                path = %self.path,
                status = self.status,
                duration_ms = %format_args!("{duration_ms:.3}"),
                bytes = self.bytes,
                end = self.end,
                request_id = %self.request_id,
                peer = %self.peer,
            ),
            AccessLogFormat::Template(pieces) => {
                let line = self.render(pieces, duration_ms);
                tracing::info!(target: "wasmhost::access", "{line}");
            }
        }
    }
}

impl AccessLog {
    fn render(&self, pieces: &[Piece], duration_ms: f64) -> String {
        let mut line = String::new();
        for piece in pieces {
            let _ = match piece {
                Piece::Text(text) => write!(line, "{text}"),
                Piece::Field(Field::Time) => write!(line, "{}", humantime::format_rfc3339_millis(self.arrived)),
                Piece::Field(Field::App) => write!(line, "{}", self.app),
                Piece::Field(Field::Method) => write!(line, "{}", self.method),
                Piece::Field(Field::Path) => write!(line, "{}", self.path),
                Piece::Field(Field::Status) => write!(line, "{}", self.status),
                Piece::Field(Field::DurationMs) => write!(line, "{duration_ms:.3}"),
                Piece::Field(Field::Bytes) => write!(line, "{}", self.bytes),
                Piece::Field(Field::End) => write!(line, "{}", self.end),
                Piece::Field(Field::RequestId) => write!(line, "{}", self.request_id),
                Piece::Field(Field::Peer) => write!(line, "{}", self.peer),
            };
        }
        line
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

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_render() {
        let format: AccessLogFormat = r#"{peer} "{method} {path}" {status} {bytes}"#.parse().unwrap();
        let request = Request::get("/x?y").body(()).unwrap();
        let mut log =
            AccessLog::new(Arc::new(format.clone()), &request, "id1", "127.0.0.1:5".parse().unwrap(), Instant::now());
        log.status = 201;
        log.bytes = 7;
        let AccessLogFormat::Template(pieces) = &format else { panic!("{format:?}") };
        assert_eq!(log.render(pieces, 1.0), r#"127.0.0.1:5 "GET /x" 201 7"#);
        log.format = Arc::new(AccessLogFormat::Off); // no line when it drops
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!("{nope}".parse::<AccessLogFormat>().unwrap_err().contains("known: time"));
        assert!("{status".parse::<AccessLogFormat>().is_err());
        assert!("plain".parse::<AccessLogFormat>().is_err());
        assert_eq!("off".parse::<AccessLogFormat>(), Ok(AccessLogFormat::Off));
    }
}
