//! Which IP addresses are globally reachable: the IANA special-purpose
//! address registries, as a table.
//!
//! Sources (every entry of both registries is in the tables below, with the
//! registry's "Globally Reachable" value):
//!
//! * IANA IPv4 Special-Purpose Address Registry
//!   (<https://www.iana.org/assignments/iana-ipv4-special-registry>), with
//!   224.0.0.0/4 (multicast, its own registry) added.
//! * IANA IPv6 Special-Purpose Address Registry
//!   (<https://www.iana.org/assignments/iana-ipv6-special-registry>),
//!   revision of 2025-10-09, and the IANA IPv6 Address Space registry, by
//!   which only 2000::/3 is global unicast: everything outside it that the
//!   special-purpose registry does not list (fec0::/10 site-local, ff00::/8
//!   multicast, ::/96 IPv4-compatible, reserved space) is refused.
//!
//! Where the registry says "N/A" (6to4, Teredo, the deprecated 6to4 relay
//! anycast), the address is refused: each reaches an IPv4 host through a
//! relay or tunnel that this check cannot see. Addresses that carry an IPv4
//! address a connection really goes to (IPv4-mapped, the NAT64 well-known
//! prefix) are judged by that IPv4 address. Within a listed block, the
//! longest matching entry decides (192.0.0.9/32 is reachable inside the
//! unreachable 192.0.0.0/24).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How an address in a special-purpose block is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// Globally reachable.
    Global,
    /// Not globally reachable, or reachable through something this check
    /// cannot see: refused unless listed.
    Refused,
    /// Judged by the IPv4 address in its last 32 bits.
    EmbeddedIpv4,
}

/// One registry entry (its name and RFC are in the comment beside it).
struct Block<A> {
    addr: A,
    len: u8,
    reach: Reach,
}

const fn v4(addr: [u8; 4], len: u8, reach: Reach) -> Block<Ipv4Addr> {
    Block { addr: Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]), len, reach }
}

const fn v6(addr: [u16; 8], len: u8, reach: Reach) -> Block<Ipv6Addr> {
    let [a, b, c, d, e, f, g, h] = addr;
    Block { addr: Ipv6Addr::new(a, b, c, d, e, f, g, h), len, reach }
}

use Reach::{EmbeddedIpv4, Global, Refused};

/// The IANA IPv4 Special-Purpose Address Registry, and multicast.
#[rustfmt::skip]
const IPV4: &[Block<Ipv4Addr>] = &[
    v4([0, 0, 0, 0], 8, Refused), // "this network", RFC 791
    v4([0, 0, 0, 0], 32, Refused), // "this host on this network", RFC 1122
    v4([10, 0, 0, 0], 8, Refused), // private-use, RFC 1918
    v4([100, 64, 0, 0], 10, Refused), // shared address space (CGNAT), RFC 6598
    v4([127, 0, 0, 0], 8, Refused), // loopback, RFC 1122
    v4([169, 254, 0, 0], 16, Refused), // link local, RFC 3927
    v4([172, 16, 0, 0], 12, Refused), // private-use, RFC 1918
    v4([192, 0, 0, 0], 24, Refused), // IETF protocol assignments, RFC 6890
    v4([192, 0, 0, 0], 29, Refused), // IPv4 service continuity prefix (DS-Lite), RFC 7335
    v4([192, 0, 0, 8], 32, Refused), // IPv4 dummy address, RFC 7600
    v4([192, 0, 0, 9], 32, Global), // Port Control Protocol anycast, RFC 7723
    v4([192, 0, 0, 10], 32, Global), // TURN anycast, RFC 8155
    v4([192, 0, 0, 170], 32, Refused), // NAT64/DNS64 discovery, RFC 8880
    v4([192, 0, 0, 171], 32, Refused), // NAT64/DNS64 discovery, RFC 8880
    v4([192, 0, 2, 0], 24, Refused), // documentation (TEST-NET-1), RFC 5737
    v4([192, 31, 196, 0], 24, Global), // AS112-v4, RFC 7535
    v4([192, 52, 193, 0], 24, Global), // AMT, RFC 7450
    // Globally reachable "N/A": a relay forwards to 6to4 addresses unchecked.
    v4([192, 88, 99, 0], 24, Refused), // deprecated (6to4 relay anycast), RFC 7526
    v4([192, 88, 99, 2], 32, Refused), // 6a44-relay anycast, RFC 6751
    v4([192, 168, 0, 0], 16, Refused), // private-use, RFC 1918
    v4([192, 175, 48, 0], 24, Global), // direct delegation AS112 service, RFC 7534
    v4([198, 18, 0, 0], 15, Refused), // benchmarking, RFC 2544
    v4([198, 51, 100, 0], 24, Refused), // documentation (TEST-NET-2), RFC 5737
    v4([203, 0, 113, 0], 24, Refused), // documentation (TEST-NET-3), RFC 5737
    // Not in the special-purpose registry: the multicast registry's block.
    v4([224, 0, 0, 0], 4, Refused), // multicast, RFC 5771
    v4([240, 0, 0, 0], 4, Refused), // reserved, RFC 1112
    v4([255, 255, 255, 255], 32, Refused), // limited broadcast, RFC 919
];

/// The IANA IPv6 Special-Purpose Address Registry, and the blocks outside
/// 2000::/3 that the IPv6 Address Space registry gives a meaning.
#[rustfmt::skip]
const IPV6: &[Block<Ipv6Addr>] = &[
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, Refused), // loopback, RFC 4291
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, Refused), // unspecified, RFC 4291
    v6([0, 0, 0, 0, 0, 0, 0, 0], 96, Refused), // IPv4-compatible (deprecated), RFC 4291
    v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, EmbeddedIpv4), // IPv4-mapped, RFC 4291
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, EmbeddedIpv4), // IPv4-IPv6 translation (NAT64), RFC 6052
    // Local-use prefixes may embed the IPv4 address anywhere: refused.
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, Refused), // local-use IPv4-IPv6 translation, RFC 8215
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, Refused), // discard-only, RFC 6666
    v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64, Refused), // dummy IPv6 prefix, RFC 9780
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, Refused), // IETF protocol assignments, RFC 2928
    // Globally reachable "N/A": the tunnel ends at an unchecked IPv4 host.
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, Refused), // Teredo, RFC 4380
    v6([0x2001, 1, 0, 0, 0, 0, 0, 1], 128, Global), // Port Control Protocol anycast, RFC 7723
    v6([0x2001, 1, 0, 0, 0, 0, 0, 2], 128, Global), // TURN anycast, RFC 8155
    v6([0x2001, 1, 0, 0, 0, 0, 0, 3], 128, Global), // DNS-SD service registration protocol anycast, RFC 9665
    v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, Refused), // benchmarking, RFC 5180
    v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32, Global), // AMT, RFC 7450
    v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48, Global), // AS112-v6, RFC 7535
    v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28, Refused), // deprecated (previously ORCHID), RFC 4843
    v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28, Global), // ORCHIDv2, RFC 7343
    v6([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28, Global), // drone remote ID protocol entity tags, RFC 9374
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, Refused), // documentation, RFC 3849
    // Globally reachable "N/A": traffic goes to the IPv4 host it embeds
    // through 6to4 relays; refused rather than trusted.
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, Refused), // 6to4, RFC 3056
    v6([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0], 48, Global), // direct delegation AS112 service, RFC 7534
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, Refused), // documentation, RFC 9637
    v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, Refused), // segment routing (SRv6) SIDs, RFC 9602
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, Refused), // unique-local, RFC 4193
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, Refused), // link-local unicast, RFC 4291
    // From the IPv6 Address Space registry: refused as outside 2000::/3
    // anyway, listed for the record.
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, Refused), // site-local (deprecated), RFC 3879
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Refused), // multicast, RFC 4291
];

/// 2000::/3, the only global unicast space IANA allocates.
const GLOBAL_UNICAST: Block<Ipv6Addr> = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3, Global);

/// Whether `ip` is a globally reachable unicast address by the IANA
/// special-purpose registries (see the module documentation): not
/// loopback, private, shared, link-local, documentation, benchmarking,
/// multicast, reserved or tunnelled through something unchecked.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_reach(v4) == Global,
        IpAddr::V6(v6) => match v6_reach(v6) {
            Global => true,
            Refused => false,
            EmbeddedIpv4 => v4_reach(Ipv4Addr::from_bits(v6.to_bits() as u32)) == Global,
        },
    }
}

fn v4_reach(ip: Ipv4Addr) -> Reach {
    let bits = ip.to_bits();
    longest_match(IPV4, |block| prefix_matches(bits, block.addr.to_bits(), block.len)).map_or(Global, |b| b.reach)
}

fn v6_reach(ip: Ipv6Addr) -> Reach {
    let bits = ip.to_bits();
    let matches = |block: &Block<Ipv6Addr>| prefix_matches(bits, block.addr.to_bits(), block.len);
    match longest_match(IPV6, matches) {
        Some(block) => block.reach,
        None if matches(&GLOBAL_UNICAST) => Global,
        None => Refused,
    }
}

/// The most specific block of `table` that `matches`.
fn longest_match<A>(table: &[Block<A>], matches: impl Fn(&Block<A>) -> bool) -> Option<&Block<A>> {
    table.iter().filter(|block| matches(block)).max_by_key(|block| block.len)
}

/// Whether the first `len` bits of `bits` and `net` agree.
fn prefix_matches<T>(bits: T, net: T, len: u8) -> bool
where
    T: Copy + Eq + std::ops::Shr<u32, Output = T>,
{
    let width = (std::mem::size_of::<T>() * 8) as u32;
    let shift = width - u32::from(len);
    // A shift by the whole width overflows: a /0 block matches everything.
    shift == width || bits >> shift == net >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(ip: &str) -> bool {
        is_public(ip.parse().unwrap_or_else(|_| panic!("{ip} is not an address")))
    }

    /// Per registry entry, addresses inside it (first, last, one in the
    /// middle) with the verdict expected, and neighbours just outside.
    #[test]
    fn every_ipv4_special_purpose_block() {
        #[rustfmt::skip]
        let cases: &[(&str, bool)] = &[
            ("0.0.0.0", false), ("0.1.2.3", false), ("0.255.255.255", false), ("1.0.0.0", true),
            ("10.0.0.0", false), ("10.20.30.40", false), ("10.255.255.255", false),
            ("9.255.255.255", true), ("11.0.0.0", true),
            ("100.64.0.0", false), ("100.100.100.100", false), ("100.127.255.255", false),
            ("100.63.255.255", true), ("100.128.0.0", true),
            ("127.0.0.1", false), ("127.255.255.255", false), ("126.255.255.255", true), ("128.0.0.0", true),
            ("169.254.0.0", false), ("169.254.169.254", false), ("169.254.255.255", false),
            ("169.253.255.255", true), ("169.255.0.0", true),
            ("172.16.0.0", false), ("172.31.255.255", false), ("172.15.255.255", true), ("172.32.0.0", true),
            ("192.0.0.0", false), ("192.0.0.7", false), ("192.0.0.8", false),
            ("192.0.0.9", true), ("192.0.0.10", true), ("192.0.0.11", false),
            ("192.0.0.170", false), ("192.0.0.171", false), ("192.0.0.255", false),
            ("191.255.255.255", true), ("192.0.1.0", true),
            ("192.0.2.0", false), ("192.0.2.255", false), ("192.0.3.0", true),
            ("192.31.196.0", true), ("192.31.196.255", true),
            ("192.52.193.1", true),
            ("192.88.99.0", false), ("192.88.99.1", false), ("192.88.99.2", false), ("192.88.99.255", false),
            ("192.88.98.255", true), ("192.88.100.0", true),
            ("192.168.0.0", false), ("192.168.1.1", false), ("192.168.255.255", false),
            ("192.167.255.255", true), ("192.169.0.0", true),
            ("192.175.48.1", true),
            ("198.18.0.0", false), ("198.19.255.255", false), ("198.17.255.255", true), ("198.20.0.0", true),
            ("198.51.100.0", false), ("198.51.100.255", false), ("198.51.101.0", true),
            ("203.0.113.0", false), ("203.0.113.255", false), ("203.0.112.255", true), ("203.0.114.0", true),
            ("224.0.0.0", false), ("239.255.255.255", false), ("223.255.255.255", true),
            ("240.0.0.0", false), ("254.255.255.255", false), ("255.255.255.255", false),
            ("8.8.8.8", true), ("1.1.1.1", true), ("93.184.215.14", true),
        ];
        for &(ip, expected) in cases {
            assert_eq!(public(ip), expected, "{ip}");
        }
    }

    #[test]
    fn every_ipv6_special_purpose_block() {
        #[rustfmt::skip]
        let cases: &[(&str, bool)] = &[
            ("::1", false), ("::", false),
            // IPv4-compatible (deprecated): refused whatever it embeds.
            ("::808:808", false), ("::127.0.0.1", false),
            // IPv4-mapped: the IPv4 address decides.
            ("::ffff:8.8.8.8", true), ("::ffff:127.0.0.1", false), ("::ffff:10.0.0.1", false),
            ("::ffff:169.254.169.254", false), ("::ffff:192.0.0.9", true),
            // NAT64 well-known prefix: the IPv4 address decides.
            ("64:ff9b::8.8.8.8", true), ("64:ff9b::127.0.0.1", false), ("64:ff9b::10.1.2.3", false),
            ("64:ff9b::192.168.0.1", false), ("64:ff9b::ffff:ffff", false),
            // Local-use NAT64: refused.
            ("64:ff9b:1::", false), ("64:ff9b:1::808:808", false), ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", false),
            ("100::", false), ("100::ffff:ffff:ffff:ffff", false),
            ("100:0:0:1::", false), ("100:0:0:1:ffff:ffff:ffff:ffff", false), ("100:0:0:2::", false),
            // 2001::/23 and its exceptions.
            ("2001::", false), ("2001::1", false), ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
            ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("2001:1::1", true), ("2001:1::2", true), ("2001:1::3", true), ("2001:1::4", false),
            ("2001:2::", false), ("2001:2:0:ffff:ffff:ffff:ffff:ffff", false), ("2001:2:1::", false),
            ("2001:3::", true), ("2001:3:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("2001:4:112::", true), ("2001:4:112:ffff::1", true), ("2001:4:113::", false),
            ("2001:10::", false), ("2001:1f:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("2001:20::", true), ("2001:2f:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("2001:30::", true), ("2001:3f:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("2001:40::", false), ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", false), ("2001:200::", true),
            ("2001:db8::", false), ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", false), ("2001:db9::", true),
            // 6to4: refused, whatever it embeds.
            ("2002::", false), ("2002:7f00:1::", false), ("2002:a00:1::1", false), ("2002:808:808::1", false),
            ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false), ("2003::", true), ("2001:ffff::", true),
            ("2620:4f:8000::", true), ("2620:4f:8000:ffff::1", true),
            ("3fff::", false), ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", false), ("3fff:1000::", true),
            ("3ffe:ffff::", true),
            ("5f00::", false), ("5f00:ffff::1", false),
            ("fc00::", false), ("fd12:3456::1", false), ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("fe80::", false), ("fe80::1", false), ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("fec0::", false), ("fec0::1", false), ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("ff00::", false), ("ff02::1", false), ("ff0e::1", false),
            // Outside 2000::/3 and unlisted: reserved by the IETF.
            ("::2:0:0", false), ("1::", false), ("200::1", false), ("4000::1", false), ("8000::1", false),
            ("e000::1", false), ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false), ("4000::", false),
            // Global unicast.
            ("2000::", true), ("2606:4700::1111", true), ("2a00:1450:4001::200e", true),
            ("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
        ];
        for &(ip, expected) in cases {
            assert_eq!(public(ip), expected, "{ip}");
        }
    }

    /// The first and last address of every block get the block's own
    /// verdict unless a more specific block says otherwise, so no entry is
    /// shadowed by a mistake in the table.
    #[test]
    fn every_block_decides_its_own_edges() {
        fn check<T, A>(table: &[Block<A>], bits: impl Fn(&A) -> T, max: T)
        where
            T: Copy + Eq + std::fmt::LowerHex + std::ops::Shr<u32, Output = T> + std::ops::BitAnd<Output = T>,
            T: std::ops::BitOr<Output = T> + std::ops::Not<Output = T> + Default,
        {
            let width = (std::mem::size_of::<T>() * 8) as u32;
            for block in table {
                let host = if u32::from(block.len) == width { T::default() } else { max >> u32::from(block.len) };
                let first = bits(&block.addr);
                assert!((first & host) == T::default(), "{first:x}/{}: host bits set", block.len);
                for edge in [first, first | host] {
                    let winner = longest_match(table, |b| prefix_matches(edge, bits(&b.addr), b.len)).unwrap();
                    assert!(winner.len >= block.len, "{first:x}/{} lost to a shorter block", block.len);
                }
            }
        }
        check(IPV4, |addr| addr.to_bits(), u32::MAX);
        check(IPV6, |addr| addr.to_bits(), u128::MAX);
    }
}
