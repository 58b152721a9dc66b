//! `wasi:sockets` for guests: outbound TCP to what the app's `tcp://`
//! entries list, nothing else (no listening, no UDP).
//!
//! wasmtime-wasi implements the sockets; this module narrows them:
//!
//! * the `WasiCtx` of an app without a `tcp://` entry has TCP and name
//!   lookups switched off (as before TCP existed);
//! * its socket address check ([`configure`]) allows a connect only to an
//!   address the instance's [`TcpGate`] admits, the implicit bind of a
//!   connect (the unspecified address, port 0) and nothing else: listen,
//!   accept, other binds and UDP are refused;
//! * `ip-name-lookup` is wrapped: only listed names are looked up, and only
//!   the answers the gate admits reach the guest (and are pinned for its
//!   connects);
//! * `create-tcp-socket` is wrapped and the `tcp-socket` destructor
//!   replaced, so that every open socket holds a place in the app's
//!   outbound [`ConnectionBudget`](wasmhost_outbound::ConnectionBudget),
//!   shared with its HTTP connections: beyond the instance's or the app's
//!   bound the guest gets `new-socket-limit`. A socket's place is freed
//!   when the guest drops it or its instance is retired (the store, and
//!   with it every socket, is dropped).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use wasmhost_outbound::{ConnectionPermit, Denied, InstanceBudget, OutboundPolicy, TcpGate};
use wasmtime::component::{HasData, Linker, Resource, ResourceType};
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{self, HostResolveAddressStream, ResolveAddressStream};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddress, IpAddressFamily, Network};
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket;
use wasmtime_wasi::p2::{DynPollable, SocketError, SocketResult, TcpSocket};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsCtxView};
use wasmtime_wasi::WasiCtxBuilder;

use crate::metrics::METRICS;
use crate::store::StoreData;

/// The `wasi:sockets/tcp` interface whose `tcp-socket` destructor
/// [`add_to_linker`] replaces: the version wasmtime-wasi links (its
/// `wasi:sockets` WIT package). A wasmtime upgrade that changes it shows in
/// the TCP tests, whose socket budget would no longer be given back.
const TCP_INTERFACE: &str = "wasi:sockets/tcp@0.2.12";

/// One instance's sockets: the gate its connections pass, the budget place
/// of each open socket, and its name lookups in progress.
pub struct Sockets {
    app: Arc<str>,
    gate: Arc<TcpGate>,
    /// The budget place of each open socket, by its resource's rep.
    open: HashMap<u32, ConnectionPermit>,
    /// What each lookup in progress resolves, by its stream's rep.
    lookups: HashMap<u32, Lookup>,
}

/// A name lookup in progress.
struct Lookup {
    name: String,
    /// Whether the guest was given an answer.
    given: bool,
    /// Whether an answer was withheld from it.
    withheld: bool,
}

impl Sockets {
    /// The sockets of a new instance of `app` under `policy`; configures
    /// `wasi`, the instance's WASI context, to check its connections.
    pub fn new(app: Arc<str>, policy: &Arc<OutboundPolicy>, wasi: &mut WasiCtxBuilder) -> Self {
        let gate = Arc::new(TcpGate::new(app.clone(), policy.clone()));
        if policy.allows_tcp() {
            configure(wasi, gate.clone());
            // The series exists (at 0) from the first instance on.
            METRICS.tcp_sockets.with_label_values(&[&*app]);
        }
        Self { app, gate, open: HashMap::new(), lookups: HashMap::new() }
    }
}

impl Drop for Sockets {
    fn drop(&mut self) {
        METRICS.tcp_sockets.with_label_values(&[&*self.app]).sub(self.open.len() as i64);
    }
}

/// Lets `wasi` open TCP connections and look up names, every address
/// checked by `gate`.
fn configure(wasi: &mut WasiCtxBuilder, gate: Arc<TcpGate>) {
    wasi.allow_tcp(true).allow_ip_name_lookup(true).socket_addr_check(move |addr, usage| {
        let allowed = match usage {
            SocketAddrUse::TcpConnect => gate.check_connect(addr).is_ok(),
            // What wasmtime-wasi checks before the OS binds a connecting
            // socket to an ephemeral port.
            SocketAddrUse::TcpBind if addr.ip().is_unspecified() && addr.port() == 0 => true,
            _ => {
                gate.refuse_inbound(addr);
                false
            }
        };
        Box::pin(std::future::ready(allowed))
    });
}

/// Replaces wasmtime-wasi's `create-tcp-socket`, `ip-name-lookup` and
/// `tcp-socket` destructor in `linker` (which holds wasmtime-wasi already).
pub fn add_to_linker(linker: &mut Linker<StoreData>) -> Result<()> {
    linker.allow_shadowing(true);
    let added = (|| -> Result<()> {
        tcp_create_socket::add_to_linker::<StoreData, SocketsData>(linker, view)?;
        ip_name_lookup::add_to_linker::<StoreData, SocketsData>(linker, view)?;
        linker.instance(TCP_INTERFACE)?.resource(
            "tcp-socket",
            ResourceType::host::<TcpSocket>(),
            |mut store, rep| {
                let data = store.data_mut();
                data.table.delete(Resource::<TcpSocket>::new_own(rep))?;
                data.capabilities.wasi.sockets.closed(rep);
                Ok(())
            },
        )?;
        Ok(())
    })();
    linker.allow_shadowing(false);
    added.context("cannot add wasi:sockets to the linker")
}

/// What the wrapped `wasi:sockets` functions see: wasmtime-wasi's view, the
/// instance's [`Sockets`] and its connection budget.
struct SocketsView<'a> {
    wasi: WasiSocketsCtxView<'a>,
    sockets: &'a mut Sockets,
    budget: &'a InstanceBudget,
}

struct SocketsData;

impl HasData for SocketsData {
    type Data<'a> = SocketsView<'a>;
}

fn view(data: &mut StoreData) -> SocketsView<'_> {
    let capabilities = &mut data.capabilities;
    SocketsView {
        wasi: WasiSocketsCtxView { ctx: capabilities.wasi.wasi.sockets(), table: &mut data.table },
        sockets: &mut capabilities.wasi.sockets,
        budget: capabilities.outbound.connections(),
    }
}

impl Sockets {
    fn opened(&mut self, rep: u32, permit: ConnectionPermit) {
        if self.open.insert(rep, permit).is_none() {
            METRICS.tcp_sockets.with_label_values(&[&*self.app]).inc();
        }
    }

    fn closed(&mut self, rep: u32) {
        if self.open.remove(&rep).is_some() {
            METRICS.tcp_sockets.with_label_values(&[&*self.app]).dec();
        }
    }
}

// The error conversions the wrapped functions' bindings need: wasmtime-wasi's.
impl network::Host for SocketsView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.wasi, error)
    }

    fn network_error_code(&mut self, err: Resource<wasmtime::Error>) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.wasi, err)
    }
}

impl network::HostNetwork for SocketsView<'_> {
    fn drop(&mut self, network: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.wasi, network)
    }
}

impl tcp_create_socket::Host for SocketsView<'_> {
    fn create_tcp_socket(&mut self, family: IpAddressFamily) -> SocketResult<Resource<TcpSocket>> {
        // Refused before the OS socket exists (counted and logged by the
        // budget).
        let permit = self.budget.try_acquire().map_err(|_| ErrorCode::NewSocketLimit)?;
        let socket = tcp_create_socket::Host::create_tcp_socket(&mut self.wasi, family)?;
        self.sockets.opened(socket.rep(), permit);
        Ok(socket)
    }
}

impl ip_name_lookup::Host for SocketsView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> SocketResult<Resource<ResolveAddressStream>> {
        self.sockets.gate.may_resolve(&name).map_err(|_| ErrorCode::AccessDenied)?;
        let stream = ip_name_lookup::Host::resolve_addresses(&mut self.wasi, network, name.clone())?;
        self.sockets.lookups.insert(stream.rep(), Lookup { name, given: false, withheld: false });
        Ok(stream)
    }
}

impl HostResolveAddressStream for SocketsView<'_> {
    fn resolve_next_address(&mut self, stream: Resource<ResolveAddressStream>) -> SocketResult<Option<IpAddress>> {
        let rep = stream.rep();
        loop {
            let next = HostResolveAddressStream::resolve_next_address(&mut self.wasi, Resource::new_borrow(rep))?;
            let Some(lookup) = self.sockets.lookups.get_mut(&rep) else {
                return Ok(None);
            };
            match next {
                Some(address) if self.sockets.gate.admit_answer(&lookup.name, ip_addr(address)) => {
                    lookup.given = true;
                    return Ok(Some(address));
                }
                Some(_) => lookup.withheld = true,
                None if lookup.withheld && !lookup.given => {
                    lookup.withheld = false;
                    self.sockets.gate.refuse(Denied::PrivateAddress, &lookup.name);
                    return Err(ErrorCode::AccessDenied.into());
                }
                None => return Ok(None),
            }
        }
    }

    fn subscribe(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<Resource<DynPollable>> {
        HostResolveAddressStream::subscribe(&mut self.wasi, stream)
    }

    fn drop(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        self.sockets.lookups.remove(&stream.rep());
        HostResolveAddressStream::drop(&mut self.wasi, stream)
    }
}

/// The address a `wasi:sockets` address stands for.
fn ip_addr(address: IpAddress) -> IpAddr {
    match address {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasi_addresses_convert() {
        assert_eq!(
            ip_addr(IpAddress::from("10.1.2.3".parse::<IpAddr>().unwrap())),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        assert_eq!(ip_addr(IpAddress::from(v6)), v6);
    }
}
