//! The vocabulary every scanwatch stage speaks, and nothing else.
//!
//! The capture stage turns bytes into [`PacketMeta`] (compact, `Copy`), the
//! flow workers turn packets into [`FlowRecord`]s and connection
//! [`Attempt`]s, the detectors turn attempts into [`Detection`]s and the sinks
//! write those out. Keeping these types here, with no heavy dependency, lets
//! each stage be built and tested without its neighbours.
//!
//! Times are [`Micros`]: microseconds since the Unix epoch, UTC, taken from
//! packet timestamps — never from the wall clock — so that a replayed capture
//! gives the same answer at any speed.

mod addr;
mod community;
mod flow;
pub mod icmp;
pub mod ids;
pub mod print;
mod tcp;
mod time;
mod watermark;

pub use addr::Addr;
pub use print::ProbePrint;

/// Text of bytes that are ASCII by construction (digits, letters, the base64
/// and base62 alphabets): checked with the word-at-a-time `is_ascii`, not
/// the general UTF-8 validator, which showed at 7% of a worker's
/// instructions when it ran on every uid, Community ID and address.
#[inline]
pub fn ascii_str(b: &[u8]) -> &str {
    if b.is_ascii() {
        // SAFETY: every ASCII byte sequence is valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(b) }
    } else {
        ""
    }
}
pub use community::{community_id, community_id_bytes};
pub use flow::{bucket, vshard, worker_of, ConnState, FlowKey, FlowRecord, History, VSHARDS};
pub use tcp::TcpFlags;
pub use time::{civil, civil_clamped, eve_timestamp, Civil, CIVIL_MAX, CIVIL_MIN};
pub use watermark::Watermark;

/// Microseconds since the Unix epoch (UTC), from packet timestamps.
pub type Micros = i64;

/// IP protocol numbers we treat specially.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMP6: u8 = 58;
    pub const SCTP: u8 = 132;

    /// Short lower-case name, as Zeek's `proto` column (`tcp`, `udp`, `icmp`)
    /// and DESIGN §5's detection `proto` (`icmp6`, otherwise `ip`).
    pub fn name(p: u8) -> &'static str {
        match p {
            TCP => "tcp",
            UDP => "udp",
            ICMP => "icmp",
            ICMP6 => "icmp6",
            _ => "ip",
        }
    }

    /// Parses the names [`name`] produces.
    pub fn from_name(s: &str) -> Option<u8> {
        Some(match s {
            "tcp" => TCP,
            "udp" => UDP,
            "icmp" => ICMP,
            "icmp6" => ICMP6,
            _ => return None,
        })
    }
}

/// What kind of packet a [`PacketMeta`] describes; decides how the flow
/// worker reads `sport`/`dport`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum PacketKind {
    /// TCP: ports are ports, `tcp_flags` is set.
    Tcp,
    /// UDP: ports are ports.
    Udp,
    /// ICMP/ICMPv6 other than errors: `sport` is the type, `dport` the type
    /// it pairs with (echo request ↔ reply), as Community ID maps them.
    IcmpQuery,
    /// ICMP/ICMPv6 destination unreachable, time exceeded, parameter problem
    /// or packet too big (the decoder returns the quoted header's tuple
    /// beside the record, when it could be read; the capture stage makes an
    /// [`IcmpNotice`] of it).
    IcmpError,
    /// Any other IP protocol, a non-first fragment, or a transport header cut
    /// short: ports are zero.
    #[default]
    Other,
}

/// The 5-tuple quoted inside an ICMP error: the packet that caused it, as its
/// sender sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Quoted {
    pub src: Addr,
    pub dst: Addr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
}

/// One decoded packet: everything the flow and detection stages need, and
/// nothing that points back into the capture buffer.
///
/// The packet's flow key is made once, by the decoder ([`PacketMeta::set_tuple`]),
/// and carried: the capture stage picks the worker by it and the flow table
/// looks the flow up by it. The sender's view (`src`, `sport`, …) is read
/// back through the accessors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PacketMeta {
    /// Packet time (µs, UTC), made non-decreasing by the capture stage.
    pub ts: Micros,
    /// The packet's flow, direction-free (see [`FlowKey::new`]).
    pub key: FlowKey,
    /// The packet goes from the key's `a` endpoint to its `b`.
    pub from_a: bool,
    /// Transport payload length as the IP header states it (not as captured),
    /// so a snaplen-cut capture still counts bytes right.
    pub payload_len: u32,
    /// Outermost 802.1Q VLAN id, 0 when untagged.
    pub vlan: u16,
    pub kind: PacketKind,
    pub tcp_flags: TcpFlags,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// Header facts for tool attribution (see [`ProbePrint`]); filled for
    /// TCP, UDP and ICMP queries, the packets that can open a probe.
    pub print: ProbePrint,
}

impl PacketMeta {
    /// Sets the packet's tuple, as its sender sent it: the key and the
    /// direction, in one place.
    #[inline]
    pub fn set_tuple(&mut self, src: Addr, sport: u16, dst: Addr, dport: u16, proto: u8) {
        let (key, from_a) = FlowKey::new(src, sport, dst, dport, proto);
        self.key = key;
        self.from_a = from_a;
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> Addr {
        self.key.host(self.from_a)
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Addr {
        self.key.host(!self.from_a)
    }

    /// Source port (for ICMP queries, the type; see [`PacketKind`]).
    #[inline]
    pub fn sport(&self) -> u16 {
        self.key.port(self.from_a)
    }

    /// Destination port (for ICMP queries, the paired type).
    #[inline]
    pub fn dport(&self) -> u16 {
        self.key.port(!self.from_a)
    }

    /// IP protocol number.
    #[inline]
    pub fn proto(&self) -> u8 {
        self.key.proto
    }
}

/// Not a packet: the notice the capture stage derives from an
/// [`PacketKind::IcmpError`] with a readable quote, routed to the worker of
/// the quoted flow so that it can reject that flow's pending probe. The
/// error itself is counted in its own ICMP flow, on the worker of its own
/// key, so flow records do not depend on the number of workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct IcmpNotice {
    /// The error's time.
    pub ts: Micros,
    /// The quoted packet's flow.
    pub key: FlowKey,
    /// The quoted packet went from the key's `a` endpoint to its `b`.
    pub from_a: bool,
    /// The error's ICMP type and code (its family is the key's addresses').
    pub icmp_type: u8,
    pub icmp_code: u8,
}

impl IcmpNotice {
    /// The notice that ICMP error `error`, quoting `q`, gives the worker of
    /// the quoted flow.
    #[inline]
    pub fn new(error: &PacketMeta, q: &Quoted) -> IcmpNotice {
        let (key, from_a) = FlowKey::new(q.src, q.sport, q.dst, q.dport, q.proto);
        IcmpNotice {
            ts: error.ts,
            key,
            from_a,
            icmp_type: error.icmp_type,
            icmp_code: error.icmp_code,
        }
    }
}

/// What a flow worker is sent: a packet, or the notice of an ICMP error
/// about a flow it owns. One cache line, like the packet alone (the notice
/// is told apart by a value of the packet's `kind` that no packet has).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    Packet(PacketMeta),
    Notice(IcmpNotice),
}

impl Item {
    /// The packet's or the error's time.
    #[inline]
    pub fn ts(&self) -> Micros {
        match self {
            Item::Packet(m) => m.ts,
            Item::Notice(n) => n.ts,
        }
    }

    /// The flow it belongs to: the packet's own, or the quoted one.
    #[inline]
    pub fn key(&self) -> &FlowKey {
        match self {
            Item::Packet(m) => &m.key,
            Item::Notice(n) => &n.key,
        }
    }
}

/// How a connection attempt was started: the probe's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ProbeKind {
    Syn,
    Fin,
    Null,
    Xmas,
    Ack,
    Maimon,
    Udp,
    IcmpEcho,
    IcmpTimestamp,
    IcmpAddrMask,
    /// First packet of an unusual IP protocol (`nmap -sO`): `dport` holds
    /// the protocol number.
    IpProto,
}

impl ProbeKind {
    /// Stealth probes have no "open" answer: silence is open|filtered and a
    /// RST is closed.
    pub fn is_stealth(self) -> bool {
        matches!(
            self,
            ProbeKind::Fin | ProbeKind::Null | ProbeKind::Xmas | ProbeKind::Ack | ProbeKind::Maimon
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Syn => "syn",
            ProbeKind::Fin => "fin",
            ProbeKind::Null => "null",
            ProbeKind::Xmas => "xmas",
            ProbeKind::Ack => "ack",
            ProbeKind::Maimon => "maimon",
            ProbeKind::Udp => "udp",
            ProbeKind::IcmpEcho => "echo",
            ProbeKind::IcmpTimestamp => "timestamp",
            ProbeKind::IcmpAddrMask => "addrmask",
            ProbeKind::IpProto => "ipproto",
        }
    }
}

/// How a connection attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Outcome {
    /// SYN-ACK, any UDP reply, an echo reply, any reply to an unusual protocol.
    Answered,
    /// TCP RST from the target, or an ICMP unreachable quoting the probe.
    Rejected,
    /// Nothing within the attempt timeout (packet time).
    Unanswered,
}

/// One connection attempt with its outcome, sent from a flow worker to the
/// detector shard that owns `src`.
///
/// Field order matters: the derived `Ord` sorts by resolution `time` first and
/// then by content, which is the order detector shards replay attempts in, so
/// detections do not depend on which worker sent what when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Attempt {
    /// When the outcome became known (answer time, or probe time + timeout).
    pub time: Micros,
    pub src: Addr,
    pub dst: Addr,
    pub proto: u8,
    /// Destination port; ICMP type for ICMP probes; protocol number for
    /// [`ProbeKind::IpProto`].
    pub dport: u16,
    pub sport: u16,
    /// Time of the probe itself.
    pub probe_ts: Micros,
    pub probe: ProbeKind,
    pub outcome: Outcome,
    /// The originator sent payload after being answered: a conversation, not
    /// a probe. Always false for stealth and unanswered attempts.
    pub data: bool,
    /// The probe's flow ([`ids::flow_id`] of its key and first packet).
    pub flow_id: u64,
    /// The probe's header facts (its flow's first packet).
    pub print: ProbePrint,
    /// TCP: the originator completed the handshake (acknowledged the
    /// SYN-ACK) before closing or sending: a `connect()`, not a raw SYN.
    pub handshake: bool,
    /// TCP: the originator sent neither data nor a FIN (it reset the
    /// connection, or the target closed first): with `handshake`, a
    /// `connect()` that was only a probe, closed the way `nmap -sT` does
    /// (linger 0), not by a polite FIN (`nc -z`).
    pub abortive: bool,
}

impl Attempt {
    /// A contact that went nowhere or went nowhere useful: refused, ignored,
    /// or answered but then dropped with no data (a connect scan on an open
    /// port). These are what scan detection counts.
    pub fn is_probe_like(&self) -> bool {
        !self.is_success()
    }

    /// A contact that became a conversation: answered and carried data, or a
    /// UDP/other-protocol exchange that got a reply.
    pub fn is_success(&self) -> bool {
        if self.outcome != Outcome::Answered || self.probe.is_stealth() {
            return false;
        }
        match self.probe {
            ProbeKind::Syn => self.data,
            ProbeKind::Udp | ProbeKind::IpProto => true,
            _ => false,
        }
    }
}

/// Where a scan points, seen from the home network (`--home-net`): the
/// scanner's side and its targets' side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// A scanner outside probing our hosts.
    Inbound,
    /// One of ours probing hosts outside only.
    Outbound,
    /// One of ours probing ours: lateral movement.
    Internal,
    /// Neither end is ours (transit traffic on the span), or not yet known.
    #[default]
    External,
}

impl Direction {
    /// The direction of a scan by `scanner_home` (the scanner is ours) and
    /// `targets_home` (at least one target is ours).
    pub fn of(scanner_home: bool, targets_home: bool) -> Direction {
        match (scanner_home, targets_home) {
            (false, true) => Direction::Inbound,
            (true, false) => Direction::Outbound,
            (true, true) => Direction::Internal,
            (false, false) => Direction::External,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Internal => "internal",
            Direction::External => "external",
        }
    }

    pub fn from_name(s: &str) -> Option<Direction> {
        [
            Direction::Inbound,
            Direction::Outbound,
            Direction::Internal,
            Direction::External,
        ]
        .into_iter()
        .find(|d| d.name() == s)
    }
}

/// How a scan probes: the shape of its probes (one detection per source,
/// protocol and technique).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Technique {
    /// Raw SYN, reset (or left) after the SYN-ACK (`nmap -sS`, masscan,
    /// zmap, hping3 `-S`).
    #[default]
    Syn,
    /// Full handshake then close: the operating system's `connect()`
    /// (`nmap -sT`, netcat `-z`).
    Connect,
    Fin,
    Null,
    Xmas,
    /// Bare ACK (`nmap -sA`, and `-sW`, whose probes are the same).
    Ack,
    /// FIN+ACK (`nmap -sM`).
    Maimon,
    Udp,
    IcmpEcho,
    IcmpTimestamp,
    IcmpAddrMask,
    Icmpv6Echo,
    /// First packets of unusual IP protocols (`nmap -sO`).
    IpProto,
}

impl Technique {
    /// The technique of one probe; a SYN is `syn` until its scan shows a
    /// `connect()` (see the detector's record).
    pub fn of_probe(p: ProbeKind, ip_proto: u8) -> Technique {
        match p {
            ProbeKind::Syn => Technique::Syn,
            ProbeKind::Fin => Technique::Fin,
            ProbeKind::Null => Technique::Null,
            ProbeKind::Xmas => Technique::Xmas,
            ProbeKind::Ack => Technique::Ack,
            ProbeKind::Maimon => Technique::Maimon,
            ProbeKind::Udp => Technique::Udp,
            ProbeKind::IcmpEcho if ip_proto == proto::ICMP6 => Technique::Icmpv6Echo,
            ProbeKind::IcmpEcho => Technique::IcmpEcho,
            ProbeKind::IcmpTimestamp => Technique::IcmpTimestamp,
            ProbeKind::IcmpAddrMask => Technique::IcmpAddrMask,
            ProbeKind::IpProto => Technique::IpProto,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Technique::Syn => "syn",
            Technique::Connect => "connect",
            Technique::Fin => "fin",
            Technique::Null => "null",
            Technique::Xmas => "xmas",
            Technique::Ack => "ack",
            Technique::Maimon => "maimon",
            Technique::Udp => "udp",
            Technique::IcmpEcho => "icmp-echo",
            Technique::IcmpTimestamp => "icmp-timestamp",
            Technique::IcmpAddrMask => "icmp-addrmask",
            Technique::Icmpv6Echo => "icmpv6-echo",
            Technique::IpProto => "ip-proto",
        }
    }

    pub const ALL: [Technique; 13] = [
        Technique::Syn,
        Technique::Connect,
        Technique::Fin,
        Technique::Null,
        Technique::Xmas,
        Technique::Ack,
        Technique::Maimon,
        Technique::Udp,
        Technique::IcmpEcho,
        Technique::IcmpTimestamp,
        Technique::IcmpAddrMask,
        Technique::Icmpv6Echo,
        Technique::IpProto,
    ];

    pub fn from_name(s: &str) -> Option<Technique> {
        Technique::ALL.into_iter().find(|t| t.name() == s)
    }
}

/// Kind of scan, DESIGN §4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScanKind {
    Horizontal,
    Vertical,
    Block,
    /// Many sources probing many ports of one target, none of them enough
    /// alone (the record lists them in [`Detection::sources`]).
    Distributed,
}

impl ScanKind {
    pub fn name(self) -> &'static str {
        match self {
            ScanKind::Horizontal => "horizontal",
            ScanKind::Vertical => "vertical",
            ScanKind::Block => "block",
            ScanKind::Distributed => "distributed",
        }
    }

    pub fn from_name(s: &str) -> Option<ScanKind> {
        match s {
            "horizontal" => Some(ScanKind::Horizontal),
            "vertical" => Some(ScanKind::Vertical),
            "block" => Some(ScanKind::Block),
            "distributed" => Some(ScanKind::Distributed),
            _ => None,
        }
    }
}

/// A flagged scan, as written to the `detections` table (DESIGN §5).
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub detection_id: String,
    pub ts_first: Micros,
    pub ts_last: Micros,
    pub ts_detected: Micros,
    pub scanner: Addr,
    pub kind: ScanKind,
    pub proto: u8,
    /// Which detectors fired, joined by `+` (`trw`, `window:5m`, …).
    pub detector: String,
    /// Distinct targets: exact up to the detector's `max_scan_targets`, an
    /// estimate (HyperLogLog, ~1.6% error) beyond it.
    pub dst_count: u64,
    /// Distinct ports (or ICMP types): always exact.
    pub port_count: u64,
    pub probes: u64,
    pub answered: u64,
    pub rejected: u64,
    pub unanswered: u64,
    /// Ports probed, ascending (all of them, at most 65 536).
    pub ports: Vec<u16>,
    /// Targets, sampled (the first ones seen, at most a few hundred).
    pub targets: Vec<Addr>,
    /// Every (target, port) probed that answered: `addr:port`, `[v6]:port`,
    /// or the bare address for ICMP.
    pub open: Vec<String>,
    /// Inbound, outbound, internal or external, from the home network.
    pub direction: Direction,
    /// How it probed: one record per (scanner, protocol, technique).
    pub technique: Technique,
    /// The tool its probes' headers point to (`nmap`, `masscan`, `zmap`,
    /// `hping3`, `mirai-like`, `unknown`), and the facts that matched.
    pub tool: String,
    pub tool_evidence: Vec<String>,
    /// Probes per second over the record's span (0 for one probe).
    pub rate_pps: f64,
    /// `sequential`, `random`, or `unknown` (too few probes).
    pub order: String,
    /// `all`, `nmap-top-N` or `custom`.
    pub port_set: String,
    /// Scanners sharing a tool fingerprint and a target set get one
    /// campaign id (empty when the record stands alone).
    pub campaign_id: String,
    /// For a [`ScanKind::Distributed`] record: every source seen probing
    /// its target (at most 256, sorted). Empty for the other kinds.
    pub sources: Vec<Addr>,
}

/// Formats `addr:port` the way DESIGN §5 writes the `open` column.
///
/// Built from [`Addr::write_text`] and the port's digits, with no
/// formatter: detections carry every open door and target as this text,
/// rebuilt at each of a scan's events.
pub fn endpoint_text(addr: Addr, port: Option<u16>) -> String {
    let mut buf = [0u8; 46];
    let text = addr.write_text(&mut buf);
    let Some(p) = port else {
        return text.to_string();
    };
    let v6 = !addr.is_v4();
    let mut s = String::with_capacity(text.len() + 8);
    if v6 {
        s.push('[');
    }
    s.push_str(text);
    if v6 {
        s.push(']');
    }
    s.push(':');
    let mut digits = [0u8; 5];
    let mut i = digits.len();
    let mut n = p;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    s.push_str(ascii_str(&digits[i..]));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_text_matches_the_formatter() {
        let addrs = [
            Addr::from_v4([0, 0, 0, 0]),
            Addr::from_v4([10, 0, 0, 9]),
            Addr::from_v4([255, 255, 255, 255]),
            "2001:db8::1".parse::<Addr>().expect("v6 literal"),
            "::ffff:1.2.3.4".parse::<Addr>().expect("v6 literal"),
            "::".parse::<Addr>().expect("v6 literal"),
        ];
        for a in addrs {
            assert_eq!(endpoint_text(a, None), a.to_string());
            for p in [0u16, 7, 10, 99, 100, 8080, 9999, 10000, 65535] {
                let want = if a.is_v4() {
                    format!("{a}:{p}")
                } else {
                    format!("[{a}]:{p}")
                };
                assert_eq!(endpoint_text(a, Some(p)), want, "{a} {p}");
            }
        }
    }

    #[test]
    fn a_packet_record_fits_one_cache_line() {
        // Batches of these cross from the capture core to the workers'.
        assert_eq!(std::mem::size_of::<PacketMeta>(), 64);
        // A notice rides in the packet's niche: no bigger on the queue.
        assert_eq!(std::mem::size_of::<Item>(), 64);
    }

    #[test]
    fn accessors_give_the_senders_view_either_way() {
        let x = Addr::from_v4([10, 0, 0, 9]);
        let y = Addr::from_v4([10, 0, 0, 1]);
        for (s, sp, d, dp) in [(x, 40000, y, 22), (y, 22, x, 40000)] {
            let mut m = PacketMeta::default();
            m.set_tuple(s, sp, d, dp, proto::TCP);
            assert_eq!((m.src(), m.sport(), m.dst(), m.dport()), (s, sp, d, dp));
            assert_eq!(m.proto(), proto::TCP);
            assert_eq!(m.key, FlowKey::new(x, 40000, y, 22, proto::TCP).0);
        }
    }

    fn attempt(probe: ProbeKind, outcome: Outcome, data: bool) -> Attempt {
        Attempt {
            time: 0,
            src: Addr::from_v4([10, 0, 0, 1]),
            dst: Addr::from_v4([10, 0, 0, 2]),
            proto: proto::TCP,
            dport: 80,
            sport: 40000,
            probe_ts: 0,
            probe,
            outcome,
            data,
            flow_id: 0,
            print: ProbePrint::default(),
            handshake: false,
            abortive: false,
        }
    }

    #[test]
    fn success_needs_answer_and_data_for_tcp() {
        assert!(attempt(ProbeKind::Syn, Outcome::Answered, true).is_success());
        assert!(attempt(ProbeKind::Syn, Outcome::Answered, false).is_probe_like());
        assert!(attempt(ProbeKind::Syn, Outcome::Rejected, false).is_probe_like());
        assert!(attempt(ProbeKind::Fin, Outcome::Answered, true).is_probe_like());
        assert!(attempt(ProbeKind::Udp, Outcome::Answered, false).is_success());
        assert!(attempt(ProbeKind::IcmpEcho, Outcome::Answered, false).is_probe_like());
    }

    #[test]
    fn attempts_sort_by_time_then_content() {
        let mut a = attempt(ProbeKind::Syn, Outcome::Answered, true);
        let mut b = a;
        a.time = 5;
        b.time = 3;
        b.dport = 9999;
        let mut v = [a, b];
        v.sort();
        assert_eq!(v[0].time, 3);
    }

    #[test]
    fn endpoint_text_brackets_v6() {
        let v6: Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(endpoint_text(v6, Some(22)), "[2001:db8::1]:22");
        assert_eq!(
            endpoint_text(Addr::from_v4([1, 2, 3, 4]), Some(80)),
            "1.2.3.4:80"
        );
        assert_eq!(endpoint_text(Addr::from_v4([1, 2, 3, 4]), None), "1.2.3.4");
    }
}
