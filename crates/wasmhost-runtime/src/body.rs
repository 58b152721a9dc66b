//! The bodies of a request on its way to a guest and of its response on
//! its way back.
//!
//! * [`GuestBody`]: what `wasi:http` reads; [`LimitedBody`] cuts it off at
//!   `max_body_size` and records whose fault a broken body was
//!   ([`BodyFault`]), so a guest that then fails is not blamed for it.
//! * [`ResponseBody`]: a host-made message, or a guest's stream that ends
//!   cleanly only if the guest call completed; otherwise the connection is
//!   aborted, so a client can never take a truncated body for a whole one.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use tokio::sync::oneshot;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::capability::exchange::BufferedBody;
use crate::outcome::Outcome;

/// A request body on its way to a guest.
pub type GuestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// A request whose whole body the host has read: the body, and a copy of
/// it for `exchange.take-body` (a reference, not a second buffer).
pub(crate) fn buffered(mut parts: http::request::Parts, bytes: Bytes) -> http::Request<GuestBody> {
    parts.extensions.insert(BufferedBody(bytes.clone()));
    http::Request::from_parts(parts, Full::new(bytes).map_err(|never| match never {}).boxed_unsync())
}

/// The request body as the guest sees it: at most `max_body_size` bytes, then
/// an error, with the overrun recorded so the client gets `413`.
pub(crate) struct LimitedBody<B> {
    pub(crate) inner: B,
    pub(crate) remaining: u64,
    pub(crate) fault: Arc<BodyFault>,
}

/// What went wrong with a request body on its way to the guest: the
/// client's fault, so a guest that then fails is not blamed for it.
#[derive(Default)]
pub(crate) struct BodyFault(std::sync::atomic::AtomicU8);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Longer than `max_body_size`: 413.
    TooLarge,
    /// Broken framing or a connection lost mid-body: 400.
    Unreadable,
}

impl BodyFault {
    pub(crate) fn set(&self, fault: Fault) {
        let code = match fault {
            Fault::TooLarge => 1,
            Fault::Unreadable => 2,
        };
        let _ = self.0.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
    }

    pub(crate) fn get(&self) -> Option<Fault> {
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

impl ResponseBody {
    /// A complete body made by the host.
    pub fn full(bytes: Bytes) -> Self {
        Self { kind: Kind::Full(Some(bytes)) }
    }

    /// A guest's body, complete only once `outcome` says the guest call
    /// completed.
    pub(crate) fn guest(body: HyperOutgoingBody, outcome: oneshot::Receiver<Outcome>) -> Self {
        Self { kind: Kind::Guest { body, outcome: Some(outcome), completed: false } }
    }
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
