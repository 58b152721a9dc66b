//! Host side of `wasmhost:platform/exchange`: a guest reads the head of the
//! request it serves, or sends a complete response, in one host call instead
//! of the dozen `wasi:http/types` calls and resources it would otherwise take
//! (the SDK's request path; see `wit/platform.wit`).
//!
//! `wasi:http` keeps a request's head private to its own crate, so the host
//! keeps a copy of each request's head as it hands the request to the guest
//! ([`RequestHead::of`]) and answers `request-head` from that copy.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};
use wasmtime_wasi_http::WasiHttpHooks;

use crate::host::HostState;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        inline: "
            package wasmhost:exchange-host;

            world exchange-host {
                import wasmhost:platform/exchange@0.1.0;
            }
        ",
        world: "wasmhost:exchange-host/exchange-host",
        imports: { default: trappable },
        require_store_data_send: true,
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

use bindings::wasmhost::platform::exchange::{self, RequestHead as WitHead};

/// Adds `wasmhost:platform/exchange` to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    exchange::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)
        .map_err(anyhow::Error::from)
        .map_err(|err| err.context("cannot add wasmhost:platform/exchange to the linker"))
}

/// A request body the host read whole before the guest ran, kept in the
/// request's extensions so `take-body` can hand it over in one call.
#[derive(Clone)]
pub struct BufferedBody(pub Bytes);

/// The head of the request an instance is serving, as `wasi:http` shows it
/// to the guest, and its body if the host holds all of it.
pub struct RequestHead {
    method: http::Method,
    uri: http::Uri,
    authority: String,
    headers: HeaderMap,
    body: Option<Bytes>,
}

impl RequestHead {
    /// A copy of `request`'s head. Header values are reference-counted, so
    /// the copy costs one small map.
    pub fn of<B>(request: &http::Request<B>) -> Self {
        let authority = match request.uri().authority() {
            Some(authority) => authority.to_string(),
            None => request
                .headers()
                .get(http::header::HOST)
                .and_then(|host| host.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        };
        Self {
            method: request.method().clone(),
            uri: request.uri().clone(),
            authority,
            headers: request.headers().clone(),
            body: request.extensions().get::<BufferedBody>().map(|buffered| buffered.0.clone()),
        }
    }
}

impl exchange::Host for HostState {
    fn head(&mut self, request: Resource<HostIncomingRequest>) -> wasmtime::Result<WitHead> {
        let filter = self.http_hooks().forbidden_header_filter();
        let head = match self.request_head.as_ref() {
            Some((handle, head)) if *handle == request.rep() => head,
            _ => wasmtime::bail!("exchange.head: not the request of the call in progress"),
        };
        let headers = head
            .headers
            .iter()
            .filter(|(name, _)| !filter(name))
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        Ok(WitHead {
            method: head.method.as_str().to_owned(),
            path_with_query: head.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default(),
            scheme: "http".to_owned(),
            authority: head.authority.clone(),
            headers,
        })
    }

    fn take_body(&mut self, request: Resource<HostIncomingRequest>) -> wasmtime::Result<Option<Vec<u8>>> {
        let body = match self.request_head.as_mut() {
            Some((handle, head)) if *handle == request.rep() => head.body.take(),
            _ => wasmtime::bail!("exchange.take-body: not the request of the call in progress"),
        };
        let Some(body) = body else { return Ok(None) };
        // The guest now holds the body: `consume` must fail, as after a
        // first `consume`.
        self.table().get_mut(&request)?.body = None;
        Ok(Some(body.to_vec()))
    }

    fn respond(
        &mut self,
        out: Resource<HostResponseOutparam>,
        status: u16,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        let outparam = self.table().delete(out)?;
        let filter = self.http_hooks().forbidden_header_filter();
        let method = self.request_head.as_ref().map_or(http::Method::GET, |(_, head)| head.method.clone());
        match build_response(&method, status, headers, body, |name| filter(name)) {
            Ok(response) => {
                (outparam.send)(Ok(response));
                Ok(Ok(()))
            }
            Err(reason) => {
                (outparam.send)(Err(ErrorCode::InternalError(Some(reason.clone()))));
                Ok(Err(reason))
            }
        }
    }
}

/// A complete response to a `method` request, or why the guest's parts do
/// not make one (framing: [`crate::framing::check_response_head`]).
fn build_response(
    method: &http::Method,
    status: u16,
    fields: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    is_forbidden: impl Fn(&HeaderName) -> bool,
) -> Result<hyper::Response<wasmtime_wasi_http::p2::body::HyperOutgoingBody>, String> {
    let status = StatusCode::from_u16(status).map_err(|_| format!("invalid status code {status}"))?;
    let mut headers = HeaderMap::with_capacity(fields.len() + 1);
    for (name, value) in fields {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name {name:?}"))?;
        if is_forbidden(&name) {
            return Err(format!("header {name} is not allowed in a response"));
        }
        let value = HeaderValue::from_bytes(&value).map_err(|_| format!("invalid value for header {name}"))?;
        headers.append(name, value);
    }
    crate::framing::check_response_head(method, status, &mut headers, Some(body.len() as u64))?;
    let mut response =
        hyper::Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect()
    }

    #[test]
    fn checks_the_framing_the_guest_declares() {
        let get = &http::Method::GET;
        let response = build_response(get, 201, fields(&[("x-a", "1"), ("x-a", "2")]), b"hello".to_vec(), |_| false)
            .expect("valid");
        assert_eq!(response.status(), 201);
        assert_eq!(response.body().size_hint().exact(), Some(5), "hyper sends the length");
        assert_eq!(response.headers().get_all("x-a").iter().count(), 2, "repeated fields are kept");

        let head = fields(&[("content-length", "12")]);
        let head = build_response(&http::Method::HEAD, 200, head, Vec::new(), |_| false).expect("HEAD");
        assert_eq!(head.headers()[http::header::CONTENT_LENGTH], "12", "a HEAD response keeps its GET's length");
        let not_head = build_response(get, 200, fields(&[("content-length", "12")]), Vec::new(), |_| false);
        assert!(not_head.unwrap_err().contains("does not match"), "only HEAD may declare more than it sends");

        let wrong = build_response(get, 200, fields(&[("content-length", "4")]), b"hello".to_vec(), |_| false);
        assert!(wrong.unwrap_err().contains("does not match"));
    }

    #[test]
    fn refuses_what_wasi_http_would_refuse() {
        assert!(build_response(&http::Method::GET, 42, Vec::new(), Vec::new(), |_| false)
            .unwrap_err()
            .contains("status"));
        assert!(build_response(&http::Method::GET, 200, fields(&[("bad name", "x")]), Vec::new(), |_| false)
            .unwrap_err()
            .contains("name"));
        assert!(build_response(&http::Method::GET, 200, fields(&[("x", "a\nb")]), Vec::new(), |_| false)
            .unwrap_err()
            .contains("value"));
        let forbidden = build_response(&http::Method::GET, 200, fields(&[("connection", "close")]), Vec::new(), |n| {
            n == "connection"
        });
        assert!(forbidden.unwrap_err().contains("not allowed"));
    }
}
