//! How a request ends, and the status the client gets for it: one pure
//! mapping from what happened (the admission checks, the pool, the guest's
//! response head, the guest call's outcome, the request body's fate) to the
//! host's answer, unit-tested over every combination.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use wasmtime::Trap;

use crate::body::{Fault, ResponseBody};
use crate::metrics::METRICS;

/// A response produced for a request, by the guest or by the host.
pub type AppResponse = Response<ResponseBody>;

/// How a guest call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The guest returned.
    Completed,
    /// The guest failed.
    Failed(Failure),
}

/// What went wrong in a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The guest ran past `request_timeout`.
    Timeout,
    /// The guest was refused memory and then failed.
    Memory,
    /// The guest exhausted its wasm stack.
    StackOverflow,
    /// The guest trapped (a Python exception escapes as a trap) or a host
    /// call failed.
    Trap,
}

impl Failure {
    /// Names the cause of a failed guest call.
    pub fn classify(err: &wasmtime::Error, memory_exhausted: bool) -> Self {
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Failure::Timeout,
            Some(Trap::StackOverflow) => Failure::StackOverflow,
            _ if memory_exhausted => Failure::Memory,
            _ => Failure::Trap,
        }
    }

    /// The kind as a metric label.
    pub fn label(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Memory => "memory",
            Failure::StackOverflow => "stack",
            Failure::Trap => "trap",
        }
    }
}

/// Why the host answers a request instead of the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The request declares or sends a body over `max_body_size`.
    BodyTooLarge,
    /// The request body's framing broke or the client went away mid-body.
    BodyUnreadable,
    /// The request body did not arrive within `request_timeout`.
    BodyTimeout,
    /// An HTTP/1.1 request without a `Host`.
    MissingHost,
    /// The body could not be handed to the schema check.
    ValidationFailed,
    /// The queue for an instance is full.
    QueueFull,
    /// The request waited `queue_timeout` for an instance.
    QueueTimeout,
    /// A new instance could not be created.
    Instantiation,
    /// `wasi:http` could not take the request (its head is unusable).
    MalformedRequest,
    /// The guest set an error code instead of a response.
    GuestError,
    /// The guest's response head would frame the connection ambiguously.
    InvalidResponse,
    /// The guest returned without a response.
    NoResponse,
    /// The guest failed before sending a response head.
    Failed(Failure),
}

/// The host's answer for a [`Refusal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The one-line reason in the body.
    pub reason: &'static str,
    /// Whether the client is told to retry (`Retry-After: 1`).
    pub retry: bool,
    /// Whether it counts in `wasmhost_rejected_requests_total` (refusals of
    /// requests; guest failures are counted as such instead).
    pub rejected: bool,
}

impl Refusal {
    /// The answer the client gets.
    pub fn reply(self) -> Reply {
        let (status, reason, retry, rejected) = match self {
            Refusal::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "request body is too large", false, true),
            Refusal::BodyUnreadable => (StatusCode::BAD_REQUEST, "the request body could not be read", false, true),
            Refusal::BodyTimeout => {
                (StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time", false, true)
            }
            Refusal::MissingHost => (StatusCode::BAD_REQUEST, "missing Host header", false, true),
            Refusal::ValidationFailed => {
                (StatusCode::INTERNAL_SERVER_ERROR, "the body could not be validated", false, true)
            }
            Refusal::QueueFull | Refusal::QueueTimeout => {
                (StatusCode::SERVICE_UNAVAILABLE, "server is at capacity, retry later", true, true)
            }
            Refusal::Instantiation => {
                (StatusCode::SERVICE_UNAVAILABLE, "the app could not start an instance, retry later", true, true)
            }
            Refusal::MalformedRequest => (StatusCode::BAD_REQUEST, "malformed request", false, true),
            Refusal::GuestError | Refusal::Failed(Failure::Trap | Failure::StackOverflow) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "the app failed", false, false)
            }
            Refusal::InvalidResponse => {
                (StatusCode::INTERNAL_SERVER_ERROR, "the app sent an invalid response", false, false)
            }
            Refusal::NoResponse => (StatusCode::INTERNAL_SERVER_ERROR, "the app did not respond", false, false),
            Refusal::Failed(Failure::Timeout) => (StatusCode::GATEWAY_TIMEOUT, "the app timed out", false, false),
            Refusal::Failed(Failure::Memory) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "the app ran out of memory", false, false)
            }
        };
        Reply { status, reason, retry, rejected }
    }

    /// The refusal for a request body that was the client's fault.
    pub fn for_body(fault: Fault) -> Self {
        match fault {
            Fault::TooLarge => Refusal::BodyTooLarge,
            Fault::Unreadable => Refusal::BodyUnreadable,
        }
    }

    /// The host's response for this refusal to a request of app `app`,
    /// counted in the metrics when it refuses the request.
    pub fn response(self, app: &str) -> AppResponse {
        let reply = self.reply();
        if reply.rejected {
            METRICS.rejected.with_label_values(&[app, reply.status.as_str()]).inc();
        }
        let mut response = error_response(reply.status, reply.reason);
        if reply.retry {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// What the guest handed over for its response head, and what that means
/// for the request given the fate of its body (`fault`).
pub enum Head<R> {
    /// The guest's response, to send.
    Respond(R),
    /// The host answers instead.
    Refuse(Refusal),
    /// No response head: the guest call's [`Outcome`] decides
    /// ([`settle_outcome`]).
    AwaitOutcome,
}

/// What happened to the response head (`Some(Ok)`: the guest sent one,
/// `Some(Err)`: an error code, `None`: none) given the body's `fault`.
pub fn settle_head<R, E>(head: Option<Result<R, E>>, fault: Option<Fault>) -> Head<R> {
    match (head, fault) {
        // The guest answered before it read past the limit, but the client
        // still sent too much: the client's fault wins.
        (Some(Ok(_)), Some(Fault::TooLarge)) => Head::Refuse(Refusal::BodyTooLarge),
        (Some(Ok(response)), _) => Head::Respond(response),
        (Some(Err(_)), Some(fault)) => Head::Refuse(Refusal::for_body(fault)),
        (Some(Err(_)), None) => Head::Refuse(Refusal::GuestError),
        (None, _) => Head::AwaitOutcome,
    }
}

/// Why there is no response when the guest call ended with `outcome` and
/// never sent a head, given the body's `fault`.
pub fn settle_outcome(outcome: Outcome, fault: Option<Fault>) -> Refusal {
    match (outcome, fault) {
        (_, Some(fault)) => Refusal::for_body(fault),
        (Outcome::Completed, None) => Refusal::NoResponse,
        (Outcome::Failed(failure), None) => Refusal::Failed(failure),
    }
}

/// A short plain-text response made by the host.
pub fn error_response(status: StatusCode, reason: &str) -> AppResponse {
    let text = format!("{} {}: {reason}\n", status.as_u16(), status.canonical_reason().unwrap_or(""));
    let mut response = Response::new(ResponseBody::full(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAULTS: [Option<Fault>; 3] = [None, Some(Fault::TooLarge), Some(Fault::Unreadable)];
    const FAILURES: [Failure; 4] = [Failure::Timeout, Failure::Memory, Failure::StackOverflow, Failure::Trap];

    fn status(refusal: Refusal) -> u16 {
        refusal.reply().status.as_u16()
    }

    #[test]
    fn a_response_head_is_sent_unless_the_body_was_too_large() {
        for fault in FAULTS {
            let settled = settle_head::<&str, ()>(Some(Ok("response")), fault);
            match (settled, fault) {
                (Head::Refuse(refusal), Some(Fault::TooLarge)) => assert_eq!(status(refusal), 413),
                (Head::Respond("response"), None | Some(Fault::Unreadable)) => {}
                _ => panic!("unexpected settlement for {fault:?}"),
            }
        }
    }

    #[test]
    fn an_error_code_is_the_clients_fault_when_its_body_broke() {
        let statuses: Vec<u16> = FAULTS
            .iter()
            .map(|fault| match settle_head::<(), &str>(Some(Err("code")), *fault) {
                Head::Refuse(refusal) => status(refusal),
                _ => panic!("an error code is always refused"),
            })
            .collect();
        assert_eq!(statuses, [500, 413, 400]);
        assert!(matches!(settle_head::<(), ()>(None, None), Head::AwaitOutcome));
    }

    #[test]
    fn every_outcome_without_a_head_has_its_status() {
        assert_eq!(status(settle_outcome(Outcome::Completed, None)), 500);
        assert_eq!(settle_outcome(Outcome::Completed, None).reply().reason, "the app did not respond");
        let expected =
            [(Failure::Timeout, 504), (Failure::Memory, 500), (Failure::StackOverflow, 500), (Failure::Trap, 500)];
        for (failure, code) in expected {
            assert_eq!(status(settle_outcome(Outcome::Failed(failure), None)), code, "{failure:?}");
        }
        assert_eq!(settle_outcome(Outcome::Failed(Failure::Memory), None).reply().reason, "the app ran out of memory");
        // A broken body is the client's fault, whatever the guest did next.
        for outcome in [Outcome::Completed].into_iter().chain(FAILURES.map(Outcome::Failed)) {
            assert_eq!(status(settle_outcome(outcome, Some(Fault::TooLarge))), 413);
            assert_eq!(status(settle_outcome(outcome, Some(Fault::Unreadable))), 400);
        }
    }

    #[test]
    fn refusals_of_requests_are_counted_and_only_capacity_asks_for_a_retry() {
        let rejections = [
            Refusal::BodyTooLarge,
            Refusal::BodyUnreadable,
            Refusal::BodyTimeout,
            Refusal::MissingHost,
            Refusal::ValidationFailed,
            Refusal::QueueFull,
            Refusal::QueueTimeout,
            Refusal::Instantiation,
            Refusal::MalformedRequest,
        ];
        let guest = [Refusal::GuestError, Refusal::InvalidResponse, Refusal::NoResponse]
            .into_iter()
            .chain(FAILURES.map(Refusal::Failed));
        for refusal in rejections {
            assert!(refusal.reply().rejected, "{refusal:?}");
        }
        for refusal in guest {
            assert!(!refusal.reply().rejected, "{refusal:?} is a guest failure");
            assert!(status(refusal) >= 500, "{refusal:?}");
        }
        let retried: Vec<_> = rejections.into_iter().filter(|refusal| refusal.reply().retry).collect();
        assert_eq!(retried, [Refusal::QueueFull, Refusal::QueueTimeout, Refusal::Instantiation]);
        assert_ne!(Refusal::Instantiation.reply().reason, Refusal::QueueFull.reply().reason);
        assert_eq!(status(Refusal::BodyTimeout), 408);
    }
}
