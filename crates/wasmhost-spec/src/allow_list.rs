//! The outbound allow-list of an app: which hosts its guest may call
//! (`allowed_outbound` in wasmhost.toml, `--allow-outbound` on the command
//! line). An entry is `[http://|https://]HOST[:PORT]` for HTTP requests
//! (`wasi:http`; no scheme allows both) or `tcp://HOST[:PORT]` for TCP
//! connections (`wasi:sockets`), where `HOST` is a name, `*.domain` (any
//! subdomain), `*` (any host), an IP address or a network (`10.0.0.0/8`).
//! Deny by default: an HTTP entry allows no TCP connection and a TCP entry
//! no HTTP request.
//!
//! This is the policy as data; `wasmhost-outbound` resolves names, drops
//! private addresses no entry lists, sends the HTTP requests and checks the
//! TCP connections.

use std::net::IpAddr;

use anyhow::{bail, Context as _};
use http::uri::Scheme;
use ipnet::IpNet;

/// The hosts one app may call: deny by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    rules: Vec<Rule>,
}

/// One allow-list entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    /// The entry as written (it holds no credentials: `@` is refused).
    entry: String,
    protocol: Protocol,
    host: HostPattern,
    port: Option<u16>,
}

/// What an entry lets a guest open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP requests, with TLS or without (an entry without a scheme).
    Web,
    /// `http://`: HTTP requests without TLS.
    Http,
    /// `https://`: HTTP requests over TLS.
    Https,
    /// `tcp://`: TCP connections.
    Tcp,
}

impl Protocol {
    /// Whether an entry for `self` admits a target reached over `target`.
    fn admits(self, target: Protocol) -> bool {
        self == target || (self == Self::Web && matches!(target, Self::Http | Self::Https))
    }
}

/// The host part of an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    /// `*`: any host.
    Any,
    /// A host name, lower case.
    Name(String),
    /// `*.domain`: any name under `domain` (not `domain` itself).
    Subdomains(String),
    /// An IP address (as a one-address network) or a network.
    Net(IpNet),
}

impl OutboundPolicy {
    /// The policy allowing what `entries` list; fails on the first entry
    /// that is not `[scheme://]host[:port]`, naming it.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> anyhow::Result<Self> {
        let rules = entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref();
                Rule::parse(entry).with_context(|| format!("bad outbound entry {entry:?}"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { rules })
    }

    /// Whether the app may call nothing at all.
    pub fn denies_all(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any entry allows TCP connections.
    pub fn allows_tcp(&self) -> bool {
        self.rules.iter().any(|rule| rule.protocol == Protocol::Tcp)
    }

    /// The entries for `protocol` (HTTP: every entry but `tcp://` ones), as
    /// written.
    pub fn entries(&self, protocol: Protocol) -> impl Iterator<Item = &str> {
        self.rules.iter().filter(move |rule| protocol.admits(rule.protocol)).map(|rule| rule.entry.as_str())
    }

    /// The target of a request to `uri` if an entry allows it: its host and
    /// port, and which of its addresses an entry lists by itself.
    pub fn admit(&self, uri: &http::Uri) -> Result<Admitted<'_>, Denied> {
        self.admit_target(Target::of(uri).ok_or(Denied::InvalidUri)?)
    }

    /// The target of a TCP connection to `host` (a name or an IP address)
    /// and `port` if a `tcp://` entry allows it.
    pub fn admit_tcp(&self, host: &str, port: u16) -> Result<Admitted<'_>, Denied> {
        let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
        self.admit_target(Target { protocol: Protocol::Tcp, host, port })
    }

    /// Whether a `tcp://` entry names `host` (on any port): the names a
    /// guest may look up.
    pub fn lists_tcp_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.rules.iter().any(|rule| rule.protocol == Protocol::Tcp && rule.host.matches(&host))
    }

    /// Whether a `tcp://` entry (on any port) lists `ip` itself.
    pub fn lists_tcp_address(&self, ip: IpAddr) -> bool {
        self.rules.iter().any(|rule| rule.protocol == Protocol::Tcp && rule.host.lists_address(ip))
    }

    fn admit_target(&self, target: Target) -> Result<Admitted<'_>, Denied> {
        let rules: Vec<&Rule> = self.rules.iter().filter(|rule| rule.allows_endpoint(&target)).collect();
        if !rules.iter().any(|rule| rule.host.matches(&target.host)) {
            return Err(Denied::NotListed);
        }
        Ok(Admitted { host: target.host, port: target.port, rules })
    }
}

/// A request target an entry allows.
pub struct Admitted<'a> {
    /// The host, lower case, without brackets around an IPv6 address.
    pub host: String,
    /// The port (the scheme's default when the URI names none).
    pub port: u16,
    rules: Vec<&'a Rule>,
}

impl Admitted<'_> {
    /// Whether an entry lists `ip` itself (its address, its network, or
    /// `localhost` for a loopback address), which lets a request reach it
    /// even when it is not a public address.
    pub fn lists_address(&self, ip: IpAddr) -> bool {
        self.rules.iter().any(|rule| rule.host.lists_address(ip))
    }
}

/// Why a guest's outbound request is not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// Not `http` or `https`, or no host.
    InvalidUri,
    /// No entry of the allow-list covers it.
    NotListed,
    /// Every address the name resolved to is private and not listed.
    PrivateAddress,
    /// The name does not resolve.
    Dns,
    /// The name did not resolve in time.
    DnsTimeout,
    /// A bind, listen, accept or UDP socket: guests may only connect out.
    Inbound,
}

impl Denied {
    /// The `reason` label of `wasmhost_outbound_rejected_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::InvalidUri => "invalid_uri",
            Self::NotListed => "not_listed",
            Self::PrivateAddress => "private_address",
            Self::Dns => "dns",
            Self::DnsTimeout => "dns_timeout",
            Self::Inbound => "inbound",
        }
    }

    /// Why, in words, for the log.
    pub fn reason(self) -> &'static str {
        match self {
            Self::InvalidUri => "not an http(s) URL with a host",
            Self::NotListed => "not in the app's allowed_outbound list",
            Self::PrivateAddress => "resolves only to private or loopback addresses that are not listed",
            Self::Dns => "the host name does not resolve",
            Self::DnsTimeout => "the host name did not resolve in time",
            Self::Inbound => "guests may only open outbound TCP connections: binding, listening and UDP are refused",
        }
    }
}

/// The protocol, host and port a request or connection goes to.
struct Target {
    protocol: Protocol,
    /// Lower case, without brackets around an IPv6 address.
    host: String,
    port: u16,
}

impl Target {
    fn of(uri: &http::Uri) -> Option<Self> {
        let scheme = uri.scheme()?;
        let (protocol, default_port) = if *scheme == Scheme::HTTPS {
            (Protocol::Https, 443)
        } else if *scheme == Scheme::HTTP {
            (Protocol::Http, 80)
        } else {
            return None;
        };
        let authority = uri.authority()?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return None;
        }
        Some(Self { protocol, host, port: authority.port_u16().unwrap_or(default_port) })
    }
}

impl Rule {
    fn parse(entry: &str) -> anyhow::Result<Self> {
        let (protocol, rest) = match entry.split_once("://") {
            Some(("http", rest)) => (Protocol::Http, rest),
            Some(("https", rest)) => (Protocol::Https, rest),
            Some(("tcp", rest)) => (Protocol::Tcp, rest),
            Some((other, _)) => bail!("the scheme must be http, https or tcp, not {other:?}"),
            None => (Protocol::Web, entry),
        };
        let entry = entry.to_owned();
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if let Ok(net) = rest.parse::<IpNet>() {
            return Ok(Self { entry, protocol, host: HostPattern::Net(net), port: None });
        }
        if rest.contains(['/', '?', '#', '@']) {
            bail!("write it as [http://|https://|tcp://]HOST[:PORT], without a path or user");
        }
        let (host, port) = split_port(rest)?;
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let pattern = if host == "*" {
            HostPattern::Any
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            HostPattern::Net(IpNet::from(ip))
        } else {
            let name = host.strip_prefix("*.").unwrap_or(&host);
            let valid = !name.is_empty()
                && name.split('.').all(|label| {
                    !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                });
            if !valid {
                bail!("{host:?} is not a host name, `*.domain`, `*` or an IP address");
            }
            if host.starts_with("*.") {
                HostPattern::Subdomains(name.to_owned())
            } else {
                HostPattern::Name(name.to_owned())
            }
        };
        Ok(Self { entry, protocol, host: pattern, port })
    }

    /// Whether the rule's protocol and port admit `target` (its host aside).
    fn allows_endpoint(&self, target: &Target) -> bool {
        self.protocol.admits(target.protocol) && self.port.is_none_or(|port| port == target.port)
    }
}

/// `host[:port]`, with `[v6]` or a bare IPv6 address as the host.
fn split_port(text: &str) -> anyhow::Result<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').context("an unclosed `[` around an IPv6 address")?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => bail!("unexpected {after:?} after the IPv6 address"),
        }
    } else if text.parse::<IpAddr>().is_ok() {
        (text, None)
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port =
        port.map(|port| port.parse::<u16>().with_context(|| format!("{port:?} is not a port number"))).transpose()?;
    Ok((host, port))
}

impl HostPattern {
    /// Whether the pattern names `host` (lower case, no brackets).
    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Name(name) => name == host,
            Self::Subdomains(domain) => {
                host.strip_suffix(domain.as_str()).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
            }
            Self::Net(net) => host.parse::<IpAddr>().is_ok_and(|ip| net.contains(&ip)),
        }
    }

    /// Whether the pattern lists `ip` itself, which lets a request reach it
    /// even when it is not a public address.
    fn lists_address(&self, ip: IpAddr) -> bool {
        match self {
            Self::Net(net) => net.contains(&ip),
            Self::Name(name) => name == "localhost" && ip.is_loopback(),
            Self::Any | Self::Subdomains(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admit(policy: &OutboundPolicy, uri: &str) -> Result<(String, u16), Denied> {
        policy.admit(&uri.parse().unwrap()).map(|admitted| (admitted.host, admitted.port))
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        let policy = OutboundPolicy::default();
        assert!(policy.denies_all());
        assert_eq!(admit(&policy, "http://93.184.215.14/"), Err(Denied::NotListed));
    }

    #[test]
    fn scheme_host_and_port_must_all_match() {
        let policy = OutboundPolicy::new(&["https://203.0.113.0/24", "http://198.51.100.7:8080", "8.8.8.8"]).unwrap();
        assert_eq!(admit(&policy, "http://8.8.8.8:1234/x"), Ok(("8.8.8.8".into(), 1234)));
        assert_eq!(admit(&policy, "https://8.8.4.4/"), Err(Denied::NotListed));
        assert_eq!(admit(&policy, "http://198.51.100.7/"), Err(Denied::NotListed), "port 80, not 8080");
        assert_eq!(admit(&policy, "ftp://8.8.8.8/"), Err(Denied::InvalidUri));
        assert_eq!(admit(&policy, "https://203.0.113.9/"), Ok(("203.0.113.9".into(), 443)));
    }

    #[test]
    fn only_listed_addresses_are_listed() {
        let policy = OutboundPolicy::new(&["*", "10.0.0.0/8", "localhost"]).unwrap();
        let admitted = policy.admit(&"http://localhost:7/".parse().unwrap()).unwrap();
        assert!(admitted.lists_address("127.0.0.1".parse().unwrap()));
        assert!(admitted.lists_address("10.1.2.3".parse().unwrap()));
        assert!(!admitted.lists_address("192.168.1.1".parse().unwrap()), "`*` lists no address");
    }

    #[test]
    fn entries_are_parsed_strictly() {
        for good in ["api.example.com", "https://api.example.com:8443/", "*.example.com", "[::1]:80", "::1", "fd00::/8"]
        {
            assert!(OutboundPolicy::new(&[good]).is_ok(), "{good}");
        }
        for bad in ["ftp://x", "http://a.example/path", "user@host", "host:port", "exa mple.com", "http://", "[::1"] {
            assert!(OutboundPolicy::new(&[bad]).is_err(), "{bad}");
        }
        let err = OutboundPolicy::new(&["ok.example", "http://a.example/path"]).unwrap_err();
        assert!(format!("{err:#}").contains("a.example/path"), "{err:#}");
    }

    #[test]
    fn tcp_entries_allow_tcp_only_and_http_entries_http_only() {
        let policy =
            OutboundPolicy::new(&["tcp://redis.internal:6379", "tcp://10.0.0.0/8", "api.example.com"]).unwrap();
        assert!(policy.allows_tcp());
        assert!(policy.admit_tcp("redis.internal", 6379).is_ok());
        assert!(policy.admit_tcp("REDIS.internal.", 6379).is_ok(), "case and a trailing dot do not matter");
        assert_eq!(policy.admit_tcp("redis.internal", 6380).err(), Some(Denied::NotListed));
        assert!(policy.admit_tcp("10.1.2.3", 5432).unwrap().lists_address("10.1.2.3".parse().unwrap()));
        assert_eq!(policy.admit_tcp("api.example.com", 443).err(), Some(Denied::NotListed), "an HTTP entry");
        assert_eq!(admit(&policy, "http://redis.internal:6379/"), Err(Denied::NotListed), "a TCP entry");
        assert!(policy.lists_tcp_host("redis.internal") && !policy.lists_tcp_host("api.example.com"));
        assert_eq!(
            policy.entries(Protocol::Tcp).collect::<Vec<_>>(),
            ["tcp://redis.internal:6379", "tcp://10.0.0.0/8"]
        );
        assert_eq!(policy.entries(Protocol::Web).collect::<Vec<_>>(), ["api.example.com"]);
        assert!(!OutboundPolicy::new(&["https://x.example"]).unwrap().allows_tcp());
        assert!(OutboundPolicy::new(&["tcp://user@db:5432"]).is_err(), "no credentials in an entry");
    }

    #[test]
    fn subdomain_patterns_do_not_match_the_domain_or_lookalikes() {
        let pattern = HostPattern::Subdomains("example.com".into());
        assert!(pattern.matches("api.example.com"));
        assert!(pattern.matches("a.b.example.com"));
        assert!(!pattern.matches("example.com"));
        assert!(!pattern.matches("badexample.com"));
    }
}
