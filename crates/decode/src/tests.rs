//! Byte-fixture tests for the decoder, plus proptests that throw arbitrary
//! bytes at every link type.

use super::*;
use etherparse::PacketBuilder;
use proptest::prelude::*;
use scanwatch_model::TcpFlags;

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn tcp_syn_eth() -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([198, 18, 0, 2], [198, 19, 1, 10], 64)
        .tcp(40000, 22, 1, 1024)
        .syn();
    let mut out = Vec::new();
    b.write(&mut out, &[]).unwrap();
    out
}

fn a(s: &str) -> Addr {
    s.parse().unwrap()
}

#[test]
fn ethernet_ipv4_tcp_syn() {
    let pkt = tcp_syn_eth();
    let m = decode(linktype::ETHERNET, &pkt, 7).unwrap();
    assert_eq!(m.src(), a("198.18.0.2"));
    assert_eq!(m.dst(), a("198.19.1.10"));
    assert_eq!((m.sport(), m.dport(), m.proto()), (40000, 22, 6));
    assert_eq!(m.kind, PacketKind::Tcp);
    assert_eq!(m.tcp_flags, TcpFlags::SYN);
    assert_eq!(m.payload_len, 0);
    assert_eq!(m.ts, 7);
}

#[test]
fn tcp_payload_length_comes_from_the_ip_header_when_snaplen_cut() {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(80, 5555, 1, 1024)
        .ack(1)
        .psh();
    let mut pkt = Vec::new();
    b.write(&mut pkt, &[0x41; 1000]).unwrap();
    pkt.truncate(128);
    let m = decode(linktype::ETHERNET, &pkt, 0).unwrap();
    assert_eq!(m.payload_len, 1000);
    assert_eq!((m.sport(), m.dport()), (80, 5555));
}

#[test]
fn vlan_and_qinq_are_walked_and_outer_vlan_kept() {
    let inner = tcp_syn_eth();
    let mut pkt = inner[..12].to_vec();
    pkt.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0a]);
    pkt.extend_from_slice(&inner[12..]);
    let m = decode(linktype::ETHERNET, &pkt, 0).unwrap();
    assert_eq!(m.vlan, 100);
    assert_eq!(m.dport(), 22);
}

#[test]
fn mpls_stack_then_ipv4() {
    let inner = tcp_syn_eth();
    let mut pkt = inner[..12].to_vec();
    pkt.extend_from_slice(&[0x88, 0x47]);
    pkt.extend_from_slice(&[0x00, 0x01, 0x00, 0x40]); // label, not bottom
    pkt.extend_from_slice(&[0x00, 0x02, 0x01, 0x40]); // bottom of stack
    pkt.extend_from_slice(&inner[14..]);
    let m = decode(linktype::ETHERNET, &pkt, 0).unwrap();
    assert_eq!(m.dst(), a("198.19.1.10"));
}

#[test]
fn sll_sll2_null_loop_and_raw() {
    let eth = tcp_syn_eth();
    let ip = &eth[14..];
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(ip);
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
    ];
    sll2.extend_from_slice(ip);
    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(ip);
    let mut lo = 2u32.to_be_bytes().to_vec();
    lo.extend_from_slice(ip);
    for (lt, p) in [
        (linktype::LINUX_SLL, sll),
        (linktype::LINUX_SLL2, sll2),
        (linktype::NULL, null),
        (linktype::LOOP, lo),
        (linktype::RAW, ip.to_vec()),
        (linktype::IPV4, ip.to_vec()),
    ] {
        let m = decode(lt, &p, 0).unwrap_or_else(|e| panic!("{lt}: {e}"));
        assert_eq!(
            (m.src(), m.dport()),
            (a("198.18.0.2"), 22),
            "link type {lt}"
        );
    }
}

#[test]
fn arp_is_not_ip() {
    let mut pkt = vec![0u8; 42];
    pkt[12] = 0x08;
    pkt[13] = 0x06;
    assert_eq!(decode(linktype::ETHERNET, &pkt, 0), Err(DecodeError::NotIp));
}

#[test]
fn icmp_port_unreachable_carries_the_quoted_udp_tuple() {
    // The probe: UDP 198.18.0.2:33333 -> 198.19.1.53:161.
    let probe = PacketBuilder::ipv4([198, 18, 0, 2], [198, 19, 1, 53], 64).udp(33333, 161);
    let mut quoted = Vec::new();
    probe.write(&mut quoted, &[1, 2, 3, 4]).unwrap();
    let reply = PacketBuilder::ethernet2(MAC_B, MAC_A)
        .ipv4([198, 19, 1, 53], [198, 18, 0, 2], 64)
        .icmpv4_raw(3, 3, [0; 4]);
    let mut pkt = Vec::new();
    reply.write(&mut pkt, &quoted).unwrap();
    let (m, q) = decode_with_quote(linktype::ETHERNET, &pkt, 0).unwrap();
    assert_eq!(m.kind, PacketKind::IcmpError);
    assert_eq!((m.icmp_type, m.icmp_code), (3, 3));
    let q = q.unwrap();
    assert_eq!((q.src, q.dst), (a("198.18.0.2"), a("198.19.1.53")));
    assert_eq!((q.sport, q.dport, q.proto), (33333, 161, 17));
}

#[test]
fn icmp_echo_request_and_reply_map_to_paired_ports() {
    let req = PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64).icmpv4_echo_request(7, 1);
    let mut p = Vec::new();
    req.write(&mut p, &[]).unwrap();
    let m = decode(linktype::RAW, &p, 0).unwrap();
    assert_eq!(
        (m.kind, m.sport(), m.dport()),
        (PacketKind::IcmpQuery, 8, 0)
    );
    let rep = PacketBuilder::ipv4([2, 2, 2, 2], [1, 1, 1, 1], 64).icmpv4_echo_reply(7, 1);
    let mut p = Vec::new();
    rep.write(&mut p, &[]).unwrap();
    let m = decode(linktype::RAW, &p, 0).unwrap();
    assert_eq!((m.sport(), m.dport()), (0, 8));
}

/// One ICMP or ICMPv6 packet of type `ty` and code `code` from `src` to
/// `dst`, decoded from its bytes.
fn icmp_packet(v6: bool, src: u8, dst: u8, ty: u8, code: u8) -> PacketMeta {
    let mut p = Vec::new();
    if v6 {
        let addr = |x: u8| {
            let mut b = [0u8; 16];
            b[0] = 0x20;
            b[1] = 0x01;
            b[15] = x;
            b
        };
        PacketBuilder::ipv6(addr(src), addr(dst), 64)
            .icmpv6_raw(ty, code, [0; 4])
            .write(&mut p, &[])
            .unwrap();
    } else {
        PacketBuilder::ipv4([10, 0, 0, src], [10, 0, 0, dst], 64)
            .icmpv4_raw(ty, code, [0; 4])
            .write(&mut p, &[])
            .unwrap();
    }
    decode(linktype::RAW, &p, 0).unwrap()
}

/// The decoder's ICMP ports decide which packets make one flow (one flow
/// key); Community ID decides which share an ID. For every pair of types,
/// a packet from A to B and one from B to A must be grouped alike by both:
/// same flow key exactly when same Community ID (computed, as a flow record
/// does, from the decoded tuple with that packet as the originator).
///
/// One exception is old and kept (outputs stay as they are): a one-way type
/// whose code equals its type, against its own mirror image, gives the same
/// ports both ways, hence one flow key, while Community ID keeps one-way
/// packets' directions apart. The test lists exactly those cases.
#[test]
fn icmp_flow_keys_and_community_ids_group_the_same_packets() {
    use scanwatch_model::community_id_bytes;
    for v6 in [false, true] {
        let p = if v6 { proto::ICMP6 } else { proto::ICMP };
        for code in [0u8, 1, 3] {
            let fwd: Vec<PacketMeta> = (0..=255).map(|t| icmp_packet(v6, 1, 2, t, code)).collect();
            let rev: Vec<PacketMeta> = (0..=255).map(|t| icmp_packet(v6, 2, 1, t, code)).collect();
            let key = |m: &PacketMeta| m.key;
            let cid = |m: &PacketMeta| {
                community_id_bytes(m.src(), m.dst(), m.sport(), m.dport(), m.proto())
            };
            let fwd_ids: Vec<_> = fwd.iter().map(cid).collect();
            let rev_ids: Vec<_> = rev.iter().map(cid).collect();
            let mut paired = 0;
            for (t1, a) in fwd.iter().enumerate() {
                assert_eq!((a.proto(), usize::from(a.icmp_type)), (p, t1));
                for (t2, b) in rev.iter().enumerate() {
                    let same_key = key(a) == key(b);
                    let same_id = fwd_ids[t1] == rev_ids[t2];
                    let mirror_one_way =
                        t1 == t2 && icmp::pair(p, t1 as u8).is_none() && t1 == usize::from(code);
                    if mirror_one_way {
                        assert!(same_key && !same_id, "{p} type {t1} code {code}");
                        continue;
                    }
                    assert_eq!(same_key, same_id, "{p}: {t1} against {t2}, code {code}");
                    paired += usize::from(same_key);
                }
            }
            // Five request/reply pairs, each matched in both orders.
            assert_eq!(paired, 10, "{p} code {code}");
        }
    }
}

#[test]
fn ipv6_tcp_and_icmpv6_echo() {
    let b = PacketBuilder::ipv6(a("2001:db8:5::2").0, a("2001:db8:6::1").0, 64)
        .tcp(50000, 22, 1, 1024)
        .syn();
    let mut p = Vec::new();
    b.write(&mut p, &[]).unwrap();
    let m = decode(linktype::IPV6, &p, 0).unwrap();
    assert_eq!(m.src(), a("2001:db8:5::2"));
    assert_eq!((m.dport(), m.kind), (22, PacketKind::Tcp));

    let e = PacketBuilder::ipv6(a("2001:db8:5::2").0, a("2001:db8:6::1").0, 64)
        .icmpv6_echo_request(1, 1);
    let mut p = Vec::new();
    e.write(&mut p, &[]).unwrap();
    let m = decode(linktype::RAW, &p, 0).unwrap();
    assert_eq!((m.proto(), m.sport(), m.dport()), (58, 128, 129));
}

fn ipv6_with_fragment(offset_units: u16, more: bool) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    let payload_len: u16 = 8 + 20;
    p.extend_from_slice(&payload_len.to_be_bytes());
    p.push(44); // next header: fragment
    p.push(64);
    p.extend_from_slice(&a("2001:db8::1").0);
    p.extend_from_slice(&a("2001:db8::2").0);
    let off = (offset_units << 3) | u16::from(more);
    p.extend_from_slice(&[6, 0]);
    p.extend_from_slice(&off.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1]);
    // "TCP header" bytes: ports 1234 -> 80, SYN.
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&1234u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = TcpFlags::SYN.bits();
    p.extend_from_slice(&tcp);
    p
}

#[test]
fn ipv6_first_fragment_has_ports_later_fragment_has_none() {
    let first = ipv6_with_fragment(0, true);
    let m = decode(linktype::RAW, &first, 0).unwrap();
    assert_eq!((m.proto(), m.dport(), m.kind), (6, 80, PacketKind::Tcp));
    let later = ipv6_with_fragment(10, false);
    let m = decode(linktype::RAW, &later, 0).unwrap();
    assert_eq!((m.proto(), m.dport(), m.kind), (6, 0, PacketKind::Other));
}

#[test]
fn ipv4_header_length_zero_is_rejected_not_panicking() {
    let mut pkt = tcp_syn_eth();
    pkt[14] = 0x40; // version 4, IHL 0
    assert_eq!(
        decode(linktype::ETHERNET, &pkt, 0),
        Err(DecodeError::BadIp { offset: 14 })
    );
}

#[test]
fn icmp_error_quoting_garbage_has_no_inner_tuple() {
    let reply = PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64).icmpv4_raw(3, 1, [0; 4]);
    let mut p = Vec::new();
    reply.write(&mut p, &[0xff; 12]).unwrap();
    let (m, q) = decode_with_quote(linktype::RAW, &p, 0).unwrap();
    assert_eq!(m.kind, PacketKind::IcmpError);
    assert_eq!(q, None);
}

#[test]
fn ipv6_extension_header_loop_terminates() {
    // Hop-by-hop headers that each claim another hop-by-hop header follows.
    let mut p = vec![0x60, 0, 0, 0, 0, 64, 0, 64];
    p.extend_from_slice(&[0u8; 32]);
    for _ in 0..8 {
        p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    }
    // Must return (Ok or Err) without hanging or panicking.
    let _ = decode(linktype::RAW, &p, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn never_panics_on_arbitrary_bytes(
        lt in prop::sample::select(vec![0u32, 1, 12, 14, 101, 108, 113, 228, 229, 276, 9999]),
        data in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let _ = decode(lt, &data, 0);
    }

    #[test]
    fn plain_ipv4_reader_agrees_with_etherparse(
        ihl in 0u8..16,
        total in prop::sample::select(vec![0u16, 1, 19, 20, 24, 39, 40, 41, 60, 64, 80, 1500, 65535]),
        frag in prop::sample::select(vec![0u16, 0x2000, 0x4000, 0x0001, 0x1fff, 0x20b9]),
        proto in prop::sample::select(vec![6u8, 17, 1, 51, 47, 0, 255]),
        body in prop::collection::vec(any::<u8>(), 0..80),
        cut in 0usize..120,
    ) {
        // An IPv4 header with chosen length fields, then bytes, cut short.
        let mut ip = vec![0x40 | ihl, 0, 0, 0, 0, 1, 0, 0, 64, proto, 0, 0,
                          198, 18, 0, 2, 198, 19, 1, 10];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        ip.extend_from_slice(&body);
        ip.truncate(cut.max(1));
        if let Some(fast) = read_plain_ipv4(&ip) {
            let lax = read_ip_lax(&ip);
            prop_assert!(lax.is_some(), "etherparse rejects what the fast path read");
            let lax = lax.unwrap();
            prop_assert_eq!(fast.src, lax.src);
            prop_assert_eq!(fast.dst, lax.dst);
            prop_assert_eq!(fast.proto, lax.proto);
            prop_assert_eq!(fast.payload, lax.payload);
            prop_assert_eq!(fast.claimed_len, lax.claimed_len);
            prop_assert_eq!(fast.later_fragment, lax.later_fragment);
        }
    }

    #[test]
    fn never_panics_on_mutated_real_packets(
        flips in prop::collection::vec((0usize..60, any::<u8>()), 1..8),
        cut in 0usize..60,
    ) {
        let mut p = tcp_syn_eth();
        for (i, v) in flips { if i < p.len() { p[i] = v; } }
        p.truncate(cut.max(1));
        let _ = decode(linktype::ETHERNET, &p, 0);
    }
}

fn udp_eth(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_B, MAC_A)
        .ipv4([198, 19, 1, 53], [198, 18, 0, 2], 64)
        .udp(sport, dport);
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

/// Which UDP datagrams from a service port are marked as replies (and so
/// open no probe): the service's reply shapes, on real headers.
#[test]
fn udp_from_a_service_port_is_marked_a_reply_only_when_shaped_like_one() {
    // A DNS response (id 0x1234, flags 0x8180: QR set) and a DNS query
    // (flags 0x0100) as `nmap -sU -g 53` might send to a high port.
    let dns_response = [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0];
    let dns_query = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0];
    // NTP: LI 0, version 4, mode 4 (server) = 0x24; mode 3 (client) = 0x23;
    // mode 7 response (monlist reply) = 0x97.
    let ntp = |b0: u8| {
        let mut p = [0u8; 48];
        p[0] = b0;
        p
    };
    let cases: Vec<(u16, u16, Vec<u8>, bool)> = vec![
        (53, 41234, dns_response.to_vec(), true),
        (53, 41234, dns_query.to_vec(), false),
        (53, 11211, b"\0\x01\0\0\0\x01\0\0stats\r\n".to_vec(), false),
        (53, 1025, b"x".to_vec(), false),
        (53, 41234, Vec::new(), false),
        (123, 40000, ntp(0x24).to_vec(), true),
        (123, 40000, ntp(0x23).to_vec(), false),
        (123, 40000, ntp(0x97).to_vec(), true),
        (161, 40000, vec![0x30, 0x26, 0x02, 0x01], true),
        (161, 40000, Vec::new(), false),
        (443, 50000, vec![0xc0, 0, 0, 0, 1], true),
        // nmap's game-server payloads sent with -g 53 / -g 88: byte 2 of
        // `\xff\xff\xff\xffTSource` has the "response bit", but no DNS
        // opcode or question count fits; nor is it a Kerberos reply.
        (
            53,
            27015,
            b"\xff\xff\xff\xffTSource Engine Query\0".to_vec(),
            false,
        ),
        (
            88,
            27015,
            b"\xff\xff\xff\xffTSource Engine Query\0".to_vec(),
            false,
        ),
        (88, 50000, vec![0x6b, 0x81, 0xe0], true),
        (88, 50000, vec![0x6a, 0x81, 0xe0], false),
        // From a low port that serves no client on a high one: a probe.
        (20, 40000, b"x".to_vec(), false),
        (67, 40000, b"xyz".to_vec(), false),
        // Not from a service port, or to one: never.
        (5353, 40000, dns_response.to_vec(), false),
        (53, 161, dns_response.to_vec(), false),
    ];
    for (sp, dp, payload, want) in cases {
        let pkt = udp_eth(sp, dp, &payload);
        let m = decode(linktype::ETHERNET, &pkt, 0).unwrap();
        assert_eq!(m.kind, PacketKind::Udp);
        let got = m.print.marks & mark::UDP_REPLY != 0;
        assert_eq!(got, want, "{sp} -> {dp}, payload {payload:02x?}");
    }
    // A DNS response cut by the snaplen before its flags: not called one.
    let mut cut = udp_eth(53, 41234, &dns_response);
    cut.truncate(14 + 20 + 8 + 2);
    let m = decode(linktype::ETHERNET, &cut, 0).unwrap();
    assert_eq!(m.payload_len, 13);
    assert_eq!(m.print.marks & mark::UDP_REPLY, 0);
}
