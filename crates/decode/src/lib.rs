//! Bytes and a link type in, one [`PacketMeta`] out.
//!
//! The capture stage calls [`decode`] on every packet before it picks a flow
//! worker (the symmetric flow hash needs the decoded addresses and ports), so
//! this is the hottest code in scanwatch and the first to see hostile bytes.
//! It is a pure function: no allocation, no state, and no panic on any input —
//! every read goes through a bounds-checked accessor, and the proptests at the
//! bottom throw random bytes at every link type.
//!
//! Link layers are read here (Ethernet, 802.1Q/QinQ, MPLS, PPPoE, Linux SLL
//! and SLL2, BSD loopback, raw IP); the IP layer (IPv4 options, IPv6
//! extension headers, fragments, snaplen-cut packets) is etherparse's lax
//! slicer; transport fields are read at their fixed offsets so that a header
//! cut short by the snap length still yields its ports. ICMP and ICMPv6 errors
//! carry the tuple of the packet they quote, so the flow worker can tie a
//! port-unreachable to the probe that caused it. Checksums are not checked:
//! offloaded captures have wrong ones.

use etherparse::LaxIpSlice;
use scanwatch_model::print::mark;
use scanwatch_model::{
    icmp, proto, Addr, Micros, PacketKind, PacketMeta, ProbePrint, Quoted, TcpFlags,
};

/// pcap/pcapng link types this decoder understands.
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const RAW_OPENBSD: u32 = 12;
    pub const RAW_BSD: u32 = 14;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;

    pub fn is_supported(lt: u32) -> bool {
        matches!(
            lt,
            NULL | ETHERNET
                | RAW_OPENBSD
                | RAW_BSD
                | RAW
                | LOOP
                | LINUX_SLL
                | IPV4
                | IPV6
                | LINUX_SLL2
        )
    }
}

mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86dd;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const QINQ_OLD: u16 = 0x9100;
    pub const MPLS: u16 = 0x8847;
    pub const MPLS_MC: u16 = 0x8848;
    pub const PPPOE_SESSION: u16 = 0x8864;
}

/// Why a packet yielded no [`PacketMeta`]. Each names the layer; none is
/// fatal to the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Not an IP packet (ARP, LLDP, STP, …): counted, not an error.
    NotIp,
    /// The link type is not one we decode.
    UnsupportedLinkType(u32),
    /// The link-layer header is cut short at `offset`.
    TruncatedLink { offset: usize },
    /// The IP header is missing, cut short or inconsistent at `offset`.
    BadIp { offset: usize },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::NotIp => write!(f, "not an IP packet"),
            DecodeError::UnsupportedLinkType(lt) => write!(f, "unsupported link type {lt}"),
            DecodeError::TruncatedLink { offset } => {
                write!(f, "link-layer header truncated at byte {offset}")
            }
            DecodeError::BadIp { offset } => {
                write!(f, "bad or truncated IP header at byte {offset}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

#[inline]
fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// Decodes one captured packet.
///
/// `data` is the captured bytes (possibly cut by the snap length), `ts` the
/// packet time in µs. Lengths come from the IP header, not the capture.
pub fn decode(link_type: u32, data: &[u8], ts: Micros) -> Result<PacketMeta, DecodeError> {
    let mut meta = PacketMeta::default();
    decode_into(link_type, data, ts, &mut meta)?;
    Ok(meta)
}

/// [`decode`], and for an ICMP error the tuple of the packet it quotes,
/// when readable.
pub fn decode_with_quote(
    link_type: u32,
    data: &[u8],
    ts: Micros,
) -> Result<(PacketMeta, Option<Quoted>), DecodeError> {
    let mut meta = PacketMeta::default();
    let q = decode_into(link_type, data, ts, &mut meta)?;
    Ok((meta, q))
}

/// [`decode_into`] for the capture stage: the quoted tuple of an ICMP error,
/// when there is one, goes to `quoted` (left as it is otherwise), and only
/// success or the error comes back. Returning the whole
/// `Result<Option<Quoted>, _>` made the caller read it back with wide loads
/// while this function's narrow stores of it were in flight: a
/// store-forwarding stall per packet, a quarter of the capture loop's own
/// time on the bulk reference.
#[inline(never)]
pub fn decode_in_place(
    link_type: u32,
    data: &[u8],
    ts: Micros,
    meta: &mut PacketMeta,
    quoted: &mut Option<Quoted>,
) -> Result<(), DecodeError> {
    match decode_into(link_type, data, ts, meta) {
        Ok(None) => Ok(()),
        Ok(q) => {
            *quoted = q;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// [`decode`] into a record the caller owns (every field is written; on an
/// error its contents are unspecified); returns the quoted tuple of an ICMP
/// error, kept out of the record so that the record stays at 64 bytes. The capture stage decodes in place
/// into its staging buffer: a record built on the stack and then moved is
/// read back by the move's wide loads while its narrow field stores are
/// still in flight, which stalls on store forwarding.
#[inline]
pub fn decode_into(
    link_type: u32,
    data: &[u8],
    ts: Micros,
    meta: &mut PacketMeta,
) -> Result<Option<Quoted>, DecodeError> {
    *meta = PacketMeta {
        ts,
        ..PacketMeta::default()
    };
    let (ip_off, ethertype) = match link_type {
        linktype::ETHERNET => (
            14,
            be16(data, 12).ok_or(DecodeError::TruncatedLink { offset: 0 })?,
        ),
        linktype::RAW
        | linktype::RAW_BSD
        | linktype::RAW_OPENBSD
        | linktype::IPV4
        | linktype::IPV6 => (0, ip_version_ethertype(data)?),
        linktype::NULL | linktype::LOOP => {
            let family = le32(data, 0).ok_or(DecodeError::TruncatedLink { offset: 0 })?;
            // NULL is host byte order, LOOP network order: accept either.
            let family = if family > 0xffff {
                family.swap_bytes()
            } else {
                family
            };
            match family {
                2 => (4, ethertype::IPV4),
                10 | 24 | 28 | 30 => (4, ethertype::IPV6),
                _ => return Err(DecodeError::NotIp),
            }
        }
        linktype::LINUX_SLL => (
            16,
            be16(data, 14).ok_or(DecodeError::TruncatedLink { offset: 0 })?,
        ),
        linktype::LINUX_SLL2 => (20, {
            if data.len() < 20 {
                return Err(DecodeError::TruncatedLink { offset: 0 });
            }
            be16(data, 0).ok_or(DecodeError::TruncatedLink { offset: 0 })?
        }),
        other => return Err(DecodeError::UnsupportedLinkType(other)),
    };
    let ip_off = walk_ethertypes(data, ip_off, ethertype, &mut meta.vlan)?;
    let ip = data
        .get(ip_off..)
        .ok_or(DecodeError::TruncatedLink { offset: ip_off })?;
    decode_ip(ip, ip_off, meta)
}

fn ip_version_ethertype(data: &[u8]) -> Result<u16, DecodeError> {
    match data.first().map(|b| b >> 4) {
        Some(4) => Ok(ethertype::IPV4),
        Some(6) => Ok(ethertype::IPV6),
        Some(_) => Err(DecodeError::BadIp { offset: 0 }),
        None => Err(DecodeError::TruncatedLink { offset: 0 }),
    }
}

/// Follows VLAN tags, MPLS labels and PPPoE to the IP header; returns its
/// offset. The loop is bounded: each step consumes at least 2 bytes.
fn walk_ethertypes(
    data: &[u8],
    mut off: usize,
    mut et: u16,
    vlan: &mut u16,
) -> Result<usize, DecodeError> {
    for _ in 0..16 {
        match et {
            ethertype::IPV4 | ethertype::IPV6 => return Ok(off),
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {
                let tci = be16(data, off).ok_or(DecodeError::TruncatedLink { offset: off })?;
                if *vlan == 0 {
                    *vlan = tci & 0x0fff;
                }
                et = be16(data, off + 2).ok_or(DecodeError::TruncatedLink { offset: off })?;
                off += 4;
            }
            ethertype::MPLS | ethertype::MPLS_MC => {
                // Labels until bottom-of-stack, then guess the payload by its
                // first nibble (there is no type field in MPLS).
                let mut bottom = false;
                for _ in 0..16 {
                    let b2 = *data
                        .get(off + 2)
                        .ok_or(DecodeError::TruncatedLink { offset: off })?;
                    off += 4;
                    if b2 & 1 == 1 {
                        bottom = true;
                        break;
                    }
                }
                if !bottom {
                    return Err(DecodeError::TruncatedLink { offset: off });
                }
                et = match data.get(off).map(|b| b >> 4) {
                    Some(4) => ethertype::IPV4,
                    Some(6) => ethertype::IPV6,
                    _ => return Err(DecodeError::NotIp),
                };
            }
            ethertype::PPPOE_SESSION => {
                // 6-byte PPPoE header, then the 2-byte PPP protocol.
                let ppp = be16(data, off + 6).ok_or(DecodeError::TruncatedLink { offset: off })?;
                off += 8;
                et = match ppp {
                    0x0021 => ethertype::IPV4,
                    0x0057 => ethertype::IPV6,
                    _ => return Err(DecodeError::NotIp),
                };
            }
            _ => return Err(DecodeError::NotIp),
        }
    }
    Err(DecodeError::TruncatedLink { offset: off })
}

/// What the IP layer told us, kept small so the quoted header of an ICMP error
/// can be read with the same code.
struct IpView<'a> {
    src: Addr,
    dst: Addr,
    proto: u8,
    /// Transport bytes as captured (may be shorter than claimed).
    payload: &'a [u8],
    /// Transport length as the IP header states it.
    claimed_len: u32,
    /// A fragment other than the first: no transport header inside.
    later_fragment: bool,
    /// TTL or hop limit.
    ttl: u8,
    /// IPv4 identification (0 for IPv6).
    ip_id: u16,
    /// IPv4 "don't fragment".
    df: bool,
}

#[inline(always)]
fn read_ip(ip: &[u8]) -> Option<IpView<'_>> {
    match read_plain_ipv4(ip) {
        Some(v) => Some(v),
        None => read_ip_lax(ip),
    }
}

/// The common case read directly: an IPv4 header (options allowed) whose
/// total length covers the header, no AH extension. Gives exactly what
/// etherparse's lax reader gives for such a header (a property test holds
/// the two together) in a third of the time; everything else (IPv6,
/// odd lengths, AH) goes to etherparse.
#[inline(always)]
fn read_plain_ipv4(ip: &[u8]) -> Option<IpView<'_>> {
    let h: &[u8; 20] = ip.get(..20)?.try_into().ok()?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    let proto = h[9];
    if h[0] >> 4 != 4 || ihl < 20 || ip.len() < ihl || total < ihl || proto == 51 {
        return None;
    }
    // Cut to the stated length (link padding), or all that was captured
    // when the capture is shorter (snap length); the stated length counts.
    let payload = &ip[ihl..total.min(ip.len())];
    Some(IpView {
        src: Addr::from_v4([h[12], h[13], h[14], h[15]]),
        dst: Addr::from_v4([h[16], h[17], h[18], h[19]]),
        proto,
        payload,
        claimed_len: (total - ihl) as u32,
        later_fragment: u16::from_be_bytes([h[6], h[7]]) & 0x1fff != 0,
        ttl: h[8],
        ip_id: u16::from_be_bytes([h[4], h[5]]),
        df: h[6] & 0x40 != 0,
    })
}

#[inline(never)]
fn read_ip_lax(ip: &[u8]) -> Option<IpView<'_>> {
    let (slice, _ext_err) = LaxIpSlice::from_slice(ip).ok()?;
    let payload = slice.payload();
    let (src, dst, later_fragment, claimed_len, (ttl, ip_id, df)) = match &slice {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            let later = h.fragments_offset().value() != 0;
            let claimed = if !payload.incomplete {
                payload.payload.len() as u32
            } else {
                let hdr_and_ext = ip.len().saturating_sub(payload.payload.len());
                u32::from(h.total_len()).saturating_sub(hdr_and_ext as u32)
            };
            (
                Addr::from_v4(h.source()),
                Addr::from_v4(h.destination()),
                later,
                claimed,
                (h.ttl(), h.identification(), h.dont_fragment()),
            )
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            let exts = v6.extensions();
            let later = payload.fragmented && ipv6_later_fragment(h.next_header().0, exts.slice());
            let claimed = if !payload.incomplete {
                payload.payload.len() as u32
            } else {
                u32::from(h.payload_length()).saturating_sub(exts.slice().len() as u32)
            };
            (
                Addr::from_v6(h.source()),
                Addr::from_v6(h.destination()),
                later,
                claimed,
                (h.hop_limit(), 0, false),
            )
        }
    };
    Some(IpView {
        src,
        dst,
        proto: payload.ip_number.0,
        payload: payload.payload,
        claimed_len,
        later_fragment,
        ttl,
        ip_id,
        df,
    })
}

/// Walks IPv6 extension headers to the fragment header and says whether
/// its offset is non-zero. Bounded by the slice length.
fn ipv6_later_fragment(first: u8, exts: &[u8]) -> bool {
    let mut next = first;
    let mut off = 0usize;
    while off < exts.len() {
        let (Some(&nh), Some(&len)) = (exts.get(off), exts.get(off + 1)) else {
            return false;
        };
        match next {
            44 => {
                return be16(exts, off + 2).map(|v| v >> 3 != 0).unwrap_or(false);
            }
            51 => off += (usize::from(len) + 2) * 4,
            _ => off += (usize::from(len) + 1) * 8,
        }
        next = nh;
    }
    false
}

fn decode_ip(
    ip: &[u8],
    ip_off: usize,
    meta: &mut PacketMeta,
) -> Result<Option<Quoted>, DecodeError> {
    // Two copies of the transport step, so that the plain case's view stays
    // in registers: moved through memory, its freshly built addresses were
    // read back before their stores had landed (a store-forwarding stall that
    // cost more than the whole header read).
    Ok(match read_plain_ipv4(ip) {
        Some(v) => decode_transport(v, meta),
        None => decode_transport(
            read_ip_lax(ip).ok_or(DecodeError::BadIp { offset: ip_off })?,
            meta,
        ),
    })
}

#[inline(always)]
fn decode_transport(v: IpView<'_>, meta: &mut PacketMeta) -> Option<Quoted> {
    // Ports are gathered first and the tuple set once, at the end: the
    // packet's flow key is made here and nowhere downstream.
    let (mut sport, mut dport) = (0u16, 0u16);
    let mut kind = PacketKind::Other;
    let mut quoted = None;
    let t = v.payload;
    if v.later_fragment {
        meta.payload_len = v.claimed_len;
    } else {
        match v.proto {
            proto::TCP => {
                if let (Some(sp), Some(dp)) = (be16(t, 0), be16(t, 2)) {
                    (sport, dport) = (sp, dp);
                    if let Some(&flags) = t.get(13) {
                        let data_off = t
                            .get(12)
                            .map(|b| u32::from(b >> 4).max(5) * 4)
                            .unwrap_or(20);
                        kind = PacketKind::Tcp;
                        meta.tcp_flags = TcpFlags::from_bits(flags);
                        meta.payload_len = v.claimed_len.saturating_sub(data_off);
                        meta.print = tcp_print(&v, t, dp, data_off, meta.tcp_flags);
                    }
                }
            }
            proto::UDP => {
                if let (Some(sp), Some(dp)) = (be16(t, 0), be16(t, 2)) {
                    (sport, dport) = (sp, dp);
                    kind = PacketKind::Udp;
                    meta.payload_len = v.claimed_len.saturating_sub(8);
                    meta.print = ip_print(&v, meta.payload_len);
                    if udp_reply_shaped(sp, dp, meta.payload_len, t.get(8..).unwrap_or(&[])) {
                        meta.print.marks |= mark::UDP_REPLY;
                    }
                }
            }
            proto::ICMP | proto::ICMP6 => {
                if let (Some(&ty), Some(&code)) = (t.first(), t.get(1)) {
                    meta.icmp_type = ty;
                    meta.icmp_code = code;
                    meta.payload_len = v.claimed_len.saturating_sub(8);
                    if icmp::is_error(v.proto, ty) {
                        kind = PacketKind::IcmpError;
                        (sport, dport) = (u16::from(ty), u16::from(code));
                        quoted = t.get(8..).and_then(read_quoted);
                    } else {
                        kind = PacketKind::IcmpQuery;
                        (sport, dport) = icmp::ports(v.proto, ty, code);
                        meta.print = ip_print(&v, meta.payload_len);
                    }
                }
            }
            _ => {
                meta.payload_len = v.claimed_len;
            }
        }
    }
    meta.kind = kind;
    meta.set_tuple(v.src, sport, v.dst, dport, v.proto);
    quoted
}

/// A UDP datagram from a service port (below 1024) to a higher port that
/// reads as the service's reply ([`mark::UDP_REPLY`]):
/// - DNS (53) and NetBIOS name service (137): a header with the response
///   bit, an opcode the protocol defines and at most one question;
/// - NTP (123): a server's mode (2 symmetric passive, 4 server, 5
///   broadcast, or 7 private with the response bit);
/// - Kerberos (88): an AS-REP, TGS-REP or KRB-ERROR (ASN.1 application
///   tags 11, 13, 30);
/// - services that answer clients on their own high ports and serve in
///   reflection floods (echo, qotd, chargen, TFTP, portmap, SNMP, CLDAP,
///   SLP, QUIC on 443, IKE, RIP, IPMI, DNS over QUIC): any payload.
///
/// From any other port below 1024 (`nmap -g 20`, `-g 67`) a datagram is a
/// probe. `payload_len` is the length the headers claim, `payload` what
/// was captured of it (a snaplen-cut packet without the bytes needed is not
/// called a reply).
pub fn udp_reply_shaped(sport: u16, dport: u16, payload_len: u32, payload: &[u8]) -> bool {
    if sport >= 1024 || dport < 1024 || payload_len == 0 {
        return false;
    }
    match sport {
        53 => payload_len >= 12 && dns_like_response(payload, &[0, 1, 2, 4, 5]),
        137 => payload_len >= 12 && dns_like_response(payload, &[0, 5, 6, 7, 8]),
        123 => payload
            .first()
            .is_some_and(|&b| matches!(b & 7, 2 | 4 | 5) || (b & 7 == 7 && b & 0x80 != 0)),
        88 => payload
            .first()
            .is_some_and(|&b| matches!(b, 0x6b | 0x6d | 0x7e)),
        7 | 17 | 19 | 69 | 111 | 161 | 162 | 389 | 427 | 443 | 500 | 520 | 623 | 853 => true,
        _ => false,
    }
}

/// A DNS-shaped header (DNS, NetBIOS name service) of a response: the QR
/// bit, an opcode among `opcodes`, at most one question. A scanner's
/// payload from port 53 (a game server query, `\xff\xff\xff\xff…`) is none.
fn dns_like_response(p: &[u8], opcodes: &[u8]) -> bool {
    let (Some(&flags), Some(&qd_hi), Some(&qd_lo)) = (p.get(2), p.get(4), p.get(5)) else {
        return false;
    };
    flags & 0x80 != 0
        && opcodes.contains(&((flags >> 3) & 0x0f))
        && u16::from_be_bytes([qd_hi, qd_lo]) <= 1
}

/// The header facts of a UDP or ICMP packet.
#[inline(always)]
fn ip_print(v: &IpView<'_>, payload_len: u32) -> ProbePrint {
    let v4 = v.dst.is_v4();
    ProbePrint {
        ttl: v.ttl,
        marks: ProbePrint::ip_marks(v.ip_id, v4) | if v.df { mark::DF } else { 0 },
        plen: payload_len.min(255) as u8,
        ..ProbePrint::default()
    }
}

/// The header facts of a TCP packet (`t` its header and what follows):
/// window, marks from its IP ID and sequence number, and for an opening
/// SYN the options' layout.
#[inline(always)]
fn tcp_print(v: &IpView<'_>, t: &[u8], dport: u16, data_off: u32, flags: TcpFlags) -> ProbePrint {
    let seq = t
        .get(4..8)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0);
    let dst_v4 = v.dst.is_v4().then(|| {
        let o = v.dst.0;
        u32::from_be_bytes([o[12], o[13], o[14], o[15]])
    });
    let opts = if flags.syn() && data_off > 20 {
        t.get(20..data_off as usize)
            .map(ProbePrint::tcp_options)
            .unwrap_or(0)
    } else {
        0
    };
    ProbePrint {
        ttl: v.ttl,
        opts,
        marks: ProbePrint::tcp_marks(v.ip_id, dst_v4, dport, seq) | if v.df { mark::DF } else { 0 },
        plen: 0,
        win: be16(t, 14).unwrap_or(0),
    }
}

/// Reads the tuple of the packet quoted inside an ICMP error (only its IP
/// header and first 8 bytes are guaranteed to be there).
fn read_quoted(q: &[u8]) -> Option<Quoted> {
    let v = read_ip(q)?;
    let t = v.payload;
    let (sport, dport) = match v.proto {
        proto::TCP | proto::UDP if !v.later_fragment => (be16(t, 0)?, be16(t, 2)?),
        proto::ICMP | proto::ICMP6 if !v.later_fragment => {
            let ty = *t.first()?;
            if icmp::is_error(v.proto, ty) {
                return None;
            }
            icmp::ports(v.proto, ty, *t.get(1)?)
        }
        _ => (0, 0),
    };
    Some(Quoted {
        src: v.src,
        dst: v.dst,
        sport,
        dport,
        proto: v.proto,
    })
}

#[cfg(test)]
mod tests;
