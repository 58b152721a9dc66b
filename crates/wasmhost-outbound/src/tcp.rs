//! Outbound TCP for one instance (`wasi:sockets`): which names its guest may
//! look up, which of their addresses it gets, and which addresses it may
//! connect to, under the app's `tcp://` entries.
//!
//! A guest may look up only names a `tcp://` entry lists (`*` lists every
//! name). Of the addresses a name resolves to it gets the public ones, and
//! the loopback, private or otherwise special ones an entry for that name
//! lists itself (the address, its network, or `localhost` for loopback);
//! the ones it gets are *pinned*: remembered for the instance, with the
//! name they answered. A connection is then allowed when an entry admits
//! its port and either names the address itself or names a name the
//! address was pinned for, and the address is public or listed. The address
//! checked is the one the socket connects to, so a later DNS answer changes
//! nothing about a connection already checked.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use crate::{is_public, metrics, Denied, OutboundPolicy};

/// Most addresses pinned per instance; beyond it the oldest answers are
/// forgotten (a guest resolves again before it reconnects).
const MAX_PINNED: usize = 256;

/// The TCP allow-list of one instance and the DNS answers it handed out.
pub struct TcpGate {
    app: Arc<str>,
    policy: Arc<OutboundPolicy>,
    /// Each address handed out, with the names it answered.
    pinned: Mutex<HashMap<IpAddr, Vec<Arc<str>>>>,
}

impl TcpGate {
    /// The gate of an instance of `app`, allowing what `policy`'s `tcp://`
    /// entries list.
    pub fn new(app: Arc<str>, policy: Arc<OutboundPolicy>) -> Self {
        Self { app, policy, pinned: Mutex::new(HashMap::new()) }
    }

    /// Whether the guest may look up `name`; refusals are counted and logged.
    pub fn may_resolve(&self, name: &str) -> Result<(), Denied> {
        if self.policy.lists_tcp_host(name) {
            return Ok(());
        }
        Err(self.refuse(Denied::NotListed, name))
    }

    /// Whether the guest gets `ip`, an answer for `name` (which
    /// [`TcpGate::may_resolve`] allowed): a public address or one a `tcp://`
    /// entry lists. An address given is pinned; whether a connection to it
    /// is allowed (its port) is [`TcpGate::check_connect`]'s call.
    pub fn admit_answer(&self, name: &str, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let allowed = is_public(ip) || self.policy.lists_tcp_address(ip);
        if allowed {
            let mut pinned = self.pinned.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if pinned.len() >= MAX_PINNED && !pinned.contains_key(&ip) {
                pinned.clear();
            }
            let names = pinned.entry(ip).or_default();
            if !names.iter().any(|known| **known == *name) {
                names.push(Arc::from(name));
            }
        }
        allowed
    }

    /// Refuses a bind, listen, accept or UDP use of `addr`: guests only
    /// connect out.
    pub fn refuse_inbound(&self, addr: SocketAddr) -> Denied {
        self.refuse(Denied::Inbound, &addr.to_string())
    }

    /// Whether the guest may connect to `addr`; refusals are counted and
    /// logged.
    pub fn check_connect(&self, addr: SocketAddr) -> Result<(), Denied> {
        let (ip, port) = (addr.ip().to_canonical(), addr.port());
        let names: Vec<Arc<str>> = {
            let pinned = self.pinned.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            pinned.get(&ip).cloned().unwrap_or_default()
        };
        let literal = ip.to_string();
        let mut denied = Denied::NotListed;
        for name in names.iter().map(|name| &**name).chain([literal.as_str()]) {
            if let Ok(admitted) = self.policy.admit_tcp(name, port) {
                if is_public(ip) || admitted.lists_address(ip) {
                    return Ok(());
                }
                denied = Denied::PrivateAddress;
            }
        }
        Err(self.refuse(denied, &SocketAddr::new(ip, port).to_string()))
    }

    /// Counts and logs a refusal of what the guest asked of `target` (say,
    /// when every answer for a name was withheld), and returns it.
    pub fn refuse(&self, denied: Denied, target: &str) -> Denied {
        metrics::rejected(&self.app, denied.label());
        tracing::warn!(app = %self.app, target, reason = denied.reason(), "outbound TCP refused");
        denied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(entries: &[&str]) -> TcpGate {
        TcpGate::new(Arc::from("tcp-test"), Arc::new(OutboundPolicy::new(entries).unwrap()))
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_listed_names_resolve() {
        let gate = gate(&["tcp://redis.internal:6379", "https://api.example.com"]);
        assert!(gate.may_resolve("redis.internal").is_ok());
        assert_eq!(gate.may_resolve("api.example.com"), Err(Denied::NotListed), "an HTTP entry");
        assert_eq!(gate.may_resolve("other.internal"), Err(Denied::NotListed));
    }

    #[test]
    fn a_name_reaches_its_public_answers_on_its_port() {
        let gate = gate(&["tcp://db.example:5432"]);
        assert_eq!(gate.check_connect(addr("93.184.215.14:5432")), Err(Denied::NotListed), "not an answer yet");
        assert!(gate.admit_answer("db.example", "93.184.215.14".parse().unwrap()));
        assert!(gate.check_connect(addr("93.184.215.14:5432")).is_ok());
        assert_eq!(gate.check_connect(addr("93.184.215.14:22")), Err(Denied::NotListed), "another port");
        assert!(gate.check_connect(addr("[::ffff:93.184.215.14]:5432")).is_ok(), "the same address, mapped");
    }

    #[test]
    fn private_answers_need_an_entry_that_lists_them() {
        let named = gate(&["tcp://db.example:5432", "tcp://*:6379"]);
        assert!(!named.admit_answer("db.example", "10.0.0.5".parse().unwrap()));
        assert!(!named.admit_answer("localhost", "127.0.0.1".parse().unwrap()), "`*` lists no address");
        assert_eq!(named.check_connect(addr("10.0.0.5:5432")), Err(Denied::NotListed));
        assert_eq!(named.check_connect(addr("127.0.0.1:6379")), Err(Denied::PrivateAddress));
        let listed = gate(&["tcp://localhost:6379", "tcp://10.0.0.0/8"]);
        assert!(listed.admit_answer("localhost", "127.0.0.1".parse().unwrap()));
        assert!(listed.check_connect(addr("127.0.0.1:6379")).is_ok());
        assert_eq!(listed.check_connect(addr("127.0.0.1:6380")), Err(Denied::NotListed));
        assert!(listed.check_connect(addr("10.9.8.7:5432")).is_ok(), "a listed network, any port");
        assert_eq!(listed.check_connect(addr("192.168.1.1:6379")), Err(Denied::NotListed));
    }

    #[test]
    fn pinned_answers_are_bounded() {
        let gate = gate(&["tcp://*:443"]);
        for i in 0..(MAX_PINNED as u32 + 10) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0808_0000 + i)); // from 8.8.0.0 on (public)
            gate.admit_answer("many.example", ip);
        }
        let pinned = gate.pinned.lock().unwrap();
        assert!(!pinned.is_empty() && pinned.len() <= MAX_PINNED, "{}", pinned.len());
    }
}
