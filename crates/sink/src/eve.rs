//! The alert line: one Suricata EVE `alert` event per scan event, so that
//! what reads Suricata's `eve.json` (a SIEM content pack, a log shipper, a
//! `jq` filter on `event_type == "alert"`) reads scanwatch's alerts too.
//!
//! The top level has only fields of Suricata's EVE schema (`timestamp`,
//! `flow_id`, `in_iface`, `event_type`, `src_ip`, `src_port`, `dest_ip`,
//! `dest_port`, `proto`, `icmp_type`, `direction`, `host`, `alert`); the
//! scan's own facts go in `alert.context.scan`, where EVE allows any
//! content, and a few keys for filtering in `alert.metadata` (arrays of
//! strings, as Suricata writes rule metadata). Every list is capped
//! ([`LIST_CAP`] items, with its full count and a `…_truncated` flag; the
//! full lists stay in the detections table) and a line never exceeds
//! [`MAX_LINE`] bytes: the caps shrink until it fits.
//!
//! Signature ids are stable across versions: `gid` 1, and a seven-digit
//! `signature_id` `910DPEK` built from the direction, protocol, event and
//! kind (see [`signature_id`]); each id has one signature text. A
//! distributed scan (many sources, one target) has kind digit 4 and only
//! the start, update and end events; `src_ip` is its busiest source and
//! `alert.context.scan.sources` lists them all (capped as the other lists).

use scanwatch_model::{eve_timestamp, proto, Addr, Detection, Direction, Micros, ScanKind};
use serde::Serialize;

/// Most items of each list in an alert line.
pub const LIST_CAP: usize = 50;

/// Longest alert line, newline included: common log shippers and SIEMs
/// cut events at 10,000 bytes or less.
pub const MAX_LINE: usize = 8192;

/// The `gid` of every scanwatch signature (Suricata's, for rules).
pub const GID: u32 = 1;

/// The `rev` of every signature: the texts and ids are stable.
pub const REV: u32 = 1;

/// The probe that triggered an event (for an end event: the scan's last).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlertTrigger {
    pub dst: Addr,
    /// Destination port; ICMP type for ICMP probes.
    pub dport: u16,
    pub sport: u16,
    /// The probe's flow (the flows table's `flow_id`).
    pub flow_id: u64,
}

/// One scan event as the alert writer takes it.
#[derive(Clone, Copy, Debug)]
pub struct AlertEvent<'a> {
    /// `start`, `update`, `kind_change`, `open_door` or `end`.
    pub phase: &'a str,
    pub time: Micros,
    pub detection: &'a Detection,
    pub trigger: Option<AlertTrigger>,
    /// For `kind_change`: the kind before.
    pub previous_kind: Option<ScanKind>,
    /// For `open_door`: the doors found since the last such event.
    pub new_open: &'a [String],
}

impl<'a> AlertEvent<'a> {
    /// An event with only a phase, a time and the scan record.
    pub fn plain(phase: &'a str, time: Micros, detection: &'a Detection) -> AlertEvent<'a> {
        AlertEvent {
            phase,
            time,
            detection,
            trigger: None,
            previous_kind: None,
            new_open: &[],
        }
    }
}

/// Where the sensor is: the `host` and `in_iface` of every line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SensorInfo {
    /// The sensor's name (`--sensor`, else the machine's host name).
    pub host: Option<String>,
    /// The capture interface (live only; several joined by `,`).
    pub in_iface: Option<String>,
}

/// The events, in signature-id order (digit E of the id).
pub const EVENTS: [&str; 5] = ["start", "update", "kind_change", "open_door", "end"];

/// Directions in signature-id order (digit D, from 1).
pub const DIRECTIONS: [Direction; 4] = [
    Direction::Inbound,
    Direction::Outbound,
    Direction::Internal,
    Direction::External,
];

/// Kinds in signature-id order (digit K, from 1): distributed came last,
/// so the ids of the others are unchanged.
pub const KINDS: [ScanKind; 4] = [
    ScanKind::Horizontal,
    ScanKind::Vertical,
    ScanKind::Block,
    ScanKind::Distributed,
];

/// The events a distributed record has (it never changes kind and tells
/// its open doors only in its record).
pub const DISTRIBUTED_EVENTS: [&str; 3] = ["start", "update", "end"];

/// Protocols in signature-id order (digit P, from 1); anything else is 5.
pub const PROTOS: [u8; 4] = [proto::TCP, proto::UDP, proto::ICMP, proto::ICMP6];

/// EVE's name of a protocol (Suricata's spelling).
pub fn eve_proto(p: u8) -> &'static str {
    match p {
        proto::TCP => "TCP",
        proto::UDP => "UDP",
        proto::ICMP => "ICMP",
        proto::ICMP6 => "IPv6-ICMP",
        _ => "IP",
    }
}

fn digit<T: PartialEq>(list: &[T], x: &T) -> u32 {
    list.iter().position(|y| y == x).map_or(list.len(), |i| i) as u32 + 1
}

/// The signature id of (direction, protocol, event, kind): the digits
/// `910DPEK`, e.g. 9101101 for the start of an inbound TCP horizontal scan.
/// An unknown event name counts as `update`.
pub fn signature_id(dir: Direction, proto: u8, event: &str, kind: ScanKind) -> u32 {
    let e = EVENTS.iter().position(|x| *x == event).unwrap_or(1) as u32;
    9_100_000
        + 1000 * digit(&DIRECTIONS, &dir)
        + 100 * digit(&PROTOS, &proto)
        + 10 * e
        + digit(&KINDS, &kind)
}

/// The signature text of a signature id's parts (one text per id).
pub fn signature(dir: Direction, proto: u8, event: &str, kind: ScanKind) -> String {
    let (d, p, k) = (dir.name(), eve_proto(proto), kind.name());
    match event {
        "start" => format!("scanwatch {d} {p} {k} scan started"),
        "kind_change" => format!("scanwatch {d} {p} scan changed to {k}"),
        "open_door" => format!("scanwatch {d} {p} {k} scan found an open door"),
        "end" => format!("scanwatch {d} {p} {k} scan ended"),
        _ => format!("scanwatch {d} {p} {k} scan continues"),
    }
}

/// Every signature: (id, text), in id order (for `scanwatch signatures`).
pub fn all_signatures() -> Vec<(u32, String)> {
    let mut v = Vec::new();
    for d in DIRECTIONS {
        for p in PROTOS.iter().copied().chain([255]) {
            for e in EVENTS {
                for k in KINDS {
                    if k == ScanKind::Distributed && !DISTRIBUTED_EVENTS.contains(&e) {
                        continue;
                    }
                    v.push((signature_id(d, p, e, k), signature(d, p, e, k)));
                }
            }
        }
    }
    v
}

/// Severity, 1 (most urgent) to 3, as Suricata's: 1 for an internal scan
/// (one of ours probing ours) and for any scan that found an open door;
/// 2 for inbound and outbound; 3 for external (neither end ours).
pub fn severity(dir: Direction, found_open: bool) -> u8 {
    match dir {
        _ if found_open => 1,
        Direction::Internal => 1,
        Direction::Inbound | Direction::Outbound => 2,
        Direction::External => 3,
    }
}

/// Suricata classification of every scanwatch alert (`network-scan`).
pub const CATEGORY: &str = "Detection of a Network Scan";

#[derive(Serialize)]
struct Line<'a> {
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    in_iface: Option<&'a str>,
    event_type: &'static str,
    src_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    proto: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u16>,
    direction: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    alert: Sig<'a>,
}

#[derive(Serialize)]
struct Sig<'a> {
    action: &'static str,
    gid: u32,
    signature_id: u32,
    rev: u32,
    signature: String,
    category: &'static str,
    severity: u8,
    metadata: Meta<'a>,
    context: Context<'a>,
}

#[derive(Serialize)]
struct Meta<'a> {
    scanwatch_event: [String; 1],
    scan_kind: [&'static str; 1],
    scan_direction: [&'static str; 1],
    scan_technique: [&'static str; 1],
    scan_tool: [&'a str; 1],
    signature_severity: [&'static str; 1],
    tag: [&'static str; 1],
}

#[derive(Serialize)]
struct Context<'a> {
    scan: Facts<'a>,
}

#[derive(Serialize)]
struct Facts<'a> {
    id: &'a str,
    phase: &'a str,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_kind: Option<&'static str>,
    proto: &'static str,
    technique: &'static str,
    tool: &'a str,
    tool_evidence: &'a [String],
    rate_pps: f64,
    order: &'a str,
    port_set: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    campaign_id: &'a str,
    detector: &'a str,
    first_seen: String,
    last_seen: String,
    detected: String,
    dst_count: u64,
    port_count: u64,
    probes: u64,
    answered: u64,
    rejected: u64,
    unanswered: u64,
    open_count: u64,
    /// Ports probed, ascending, the first `cap`.
    ports: &'a [u16],
    ports_truncated: bool,
    targets: Vec<String>,
    targets_truncated: bool,
    open: &'a [String],
    open_truncated: bool,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    new_open: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    new_open_truncated: bool,
    /// A distributed scan's sources, the first `cap` (empty for the other
    /// kinds).
    sources: Vec<String>,
    sources_truncated: bool,
}

fn portless(p: u8) -> bool {
    !matches!(p, proto::TCP | proto::UDP | proto::SCTP)
}

fn line<'a>(ev: &AlertEvent<'a>, sensor: &'a SensorInfo, cap: usize) -> Line<'a> {
    let d = ev.detection;
    let dir = d.direction;
    let kind = d.kind;
    let found_open = !d.open.is_empty() || ev.phase == "open_door";
    let sev = severity(dir, found_open);
    let first = |n: usize| n.min(cap);
    let (src_port, dest_ip, dest_port, icmp_type) = match ev.trigger {
        Some(t) if !portless(d.proto) => {
            (Some(t.sport), Some(t.dst.to_string()), Some(t.dport), None)
        }
        Some(t) => (
            None,
            Some(t.dst.to_string()),
            None,
            matches!(d.proto, proto::ICMP | proto::ICMP6).then_some(t.dport),
        ),
        None => (None, d.targets.first().map(|a| a.to_string()), None, None),
    };
    let new_open = &ev.new_open[..first(ev.new_open.len())];
    Line {
        timestamp: eve_timestamp(ev.time),
        flow_id: ev.trigger.map(|t| t.flow_id),
        in_iface: sensor.in_iface.as_deref(),
        event_type: "alert",
        src_ip: d.scanner.to_string(),
        src_port,
        dest_ip,
        dest_port,
        proto: eve_proto(d.proto),
        icmp_type,
        direction: dir.name(),
        host: sensor.host.as_deref(),
        alert: Sig {
            action: "allowed",
            gid: GID,
            signature_id: signature_id(dir, d.proto, ev.phase, kind),
            rev: REV,
            signature: signature(dir, d.proto, ev.phase, kind),
            category: CATEGORY,
            severity: sev,
            metadata: Meta {
                scanwatch_event: [ev.phase.to_string()],
                scan_kind: [kind.name()],
                scan_direction: [dir.name()],
                scan_technique: [d.technique.name()],
                scan_tool: [&d.tool],
                signature_severity: [match sev {
                    1 => "Major",
                    2 => "Minor",
                    _ => "Informational",
                }],
                tag: ["port-scan"],
            },
            context: Context {
                scan: Facts {
                    id: &d.detection_id,
                    phase: ev.phase,
                    kind: kind.name(),
                    previous_kind: ev.previous_kind.map(|k| k.name()),
                    proto: proto::name(d.proto),
                    technique: d.technique.name(),
                    tool: &d.tool,
                    tool_evidence: &d.tool_evidence,
                    rate_pps: d.rate_pps,
                    order: &d.order,
                    port_set: &d.port_set,
                    campaign_id: &d.campaign_id,
                    detector: &d.detector,
                    first_seen: eve_timestamp(d.ts_first),
                    last_seen: eve_timestamp(d.ts_last),
                    detected: eve_timestamp(d.ts_detected),
                    dst_count: d.dst_count,
                    port_count: d.port_count,
                    probes: d.probes,
                    answered: d.answered,
                    rejected: d.rejected,
                    unanswered: d.unanswered,
                    open_count: d.open.len() as u64,
                    ports: &d.ports[..first(d.ports.len())],
                    ports_truncated: d.ports.len() > cap,
                    targets: d.targets.iter().take(cap).map(|a| a.to_string()).collect(),
                    targets_truncated: d.targets.len() > cap
                        || d.dst_count > d.targets.len() as u64,
                    open: &d.open[..first(d.open.len())],
                    open_truncated: d.open.len() > cap,
                    new_open,
                    new_open_truncated: ev.new_open.len() > cap,
                    sources: d.sources.iter().take(cap).map(|a| a.to_string()).collect(),
                    sources_truncated: d.sources.len() > cap,
                },
            },
        },
    }
}

/// Writes `ev` as one EVE line (with its newline) into `out`, which is
/// cleared first; the lists shrink from [`LIST_CAP`] until the line fits
/// in [`MAX_LINE`] bytes.
pub fn write_line(out: &mut Vec<u8>, ev: &AlertEvent<'_>, sensor: &SensorInfo) {
    let mut cap = LIST_CAP;
    loop {
        out.clear();
        // Serializing plain data into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &line(ev, sensor, cap));
        out.push(b'\n');
        if out.len() <= MAX_LINE || cap == 0 {
            return;
        }
        cap /= 2;
    }
}
