//! Host side of `wasmhost:platform/exchange`: a guest reads the head of the
//! request it serves, or sends a complete response, in one host call instead
//! of the dozen `wasi:http/types` calls and resources it would otherwise take
//! (the SDK's request path; see `wit/platform.wit`).
//!
//! `wasi:http` keeps a request's head private to its own crate, so the host
//! keeps a copy of each request's head as it hands the request to the guest
//! ([`RequestHead::of`]) and answers `request-head` from that copy. The copy
//! (and the body the host read) is the capability's per-request state: set by
//! [`Capability::begin_request`], dropped by [`Capability::end_request`].

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use wasmhost_outbound::OutboundHooks;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};
use wasmtime_wasi_http::WasiHttpHooks;

use super::{Capability, RequestContext};
use crate::store::StoreData;
use wasmhost_spec::AppSpec;

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

/// The exchange capability.
pub struct Exchange;

/// The request an instance serves, as far as `exchange` is concerned.
#[derive(Default)]
pub struct ExchangeInstance {
    current: Option<Current>,
}

/// The request of the call in progress.
struct Current {
    /// The `rep` of the guest's handle for it.
    handle: u32,
    head: Arc<RequestHead>,
    /// The body the host read, until the guest takes it.
    body: Option<Bytes>,
}

impl Capability for Exchange {
    type App = ();
    type Instance = ExchangeInstance;

    fn app(_spec: &AppSpec, _previous: Option<&()>) -> anyhow::Result<()> {
        Ok(())
    }

    fn instance(_app: &()) -> anyhow::Result<ExchangeInstance> {
        Ok(ExchangeInstance::default())
    }

    fn begin_request(instance: &mut ExchangeInstance, request: &RequestContext) {
        let body = request.head.body.clone();
        instance.current = Some(Current { handle: request.handle, head: request.head.clone(), body });
    }

    fn end_request(instance: &mut ExchangeInstance) {
        instance.current = None;
    }

    fn holds_request(instance: &ExchangeInstance) -> bool {
        instance.current.is_some()
    }

    fn add_to_linker(linker: &mut Linker<StoreData>) -> anyhow::Result<()> {
        exchange::add_to_linker::<StoreData, ExchangeData>(linker, |data| ExchangeView {
            state: &mut data.capabilities.exchange,
            table: &mut data.table,
            hooks: &mut data.capabilities.outbound,
        })
        .map_err(anyhow::Error::from)
        .map_err(|err| err.context("cannot add wasmhost:platform/exchange to the linker"))
    }
}

/// What the `exchange` imports see of a store.
struct ExchangeView<'a> {
    state: &'a mut ExchangeInstance,
    table: &'a mut ResourceTable,
    /// For the header fields `wasi:http` hides from guests.
    hooks: &'a mut OutboundHooks,
}

/// Marks [`ExchangeView`] as the host state of the generated bindings.
struct ExchangeData;

impl HasData for ExchangeData {
    type Data<'a> = ExchangeView<'a>;
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

impl exchange::Host for ExchangeView<'_> {
    fn head(&mut self, request: Resource<HostIncomingRequest>) -> wasmtime::Result<WitHead> {
        let filter = self.hooks.forbidden_header_filter();
        let head = match self.state.current.as_ref() {
            Some(current) if current.handle == request.rep() => &current.head,
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
        let body = match self.state.current.as_mut() {
            Some(current) if current.handle == request.rep() => current.body.take(),
            _ => wasmtime::bail!("exchange.take-body: not the request of the call in progress"),
        };
        let Some(body) = body else { return Ok(None) };
        // The guest now holds the body: `consume` must fail, as after a
        // first `consume`.
        self.table.get_mut(&request)?.body = None;
        Ok(Some(body.to_vec()))
    }

    fn respond(
        &mut self,
        out: Resource<HostResponseOutparam>,
        status: u16,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        let outparam = self.table.delete(out)?;
        let filter = self.hooks.forbidden_header_filter();
        let method = self.state.current.as_ref().map_or(http::Method::GET, |current| current.head.method.clone());
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
