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
        write_json(out, &line(ev, sensor, cap));
        out.push(b'\n');
        if out.len() <= MAX_LINE || cap == 0 {
            return;
        }
        cap /= 2;
    }
}

/// The line as JSON, written field by field: the same bytes as
/// `serde_json::to_writer` of the derived `Serialize` (a test holds the
/// two together), at about a third of its instructions. Alerts are many on
/// a scan-heavy capture (58,884 lines for the scans reference file), and
/// the derived form went through the serializer's map machinery, escaping
/// every key, for each of some seventy fields.
fn write_json(out: &mut Vec<u8>, l: &Line<'_>) {
    field_str(out, b"{\"timestamp\":", &l.timestamp);
    if let Some(v) = l.flow_id {
        field_u64(out, b",\"flow_id\":", v);
    }
    if let Some(v) = l.in_iface {
        field_str(out, b",\"in_iface\":", v);
    }
    field_str(out, b",\"event_type\":", l.event_type);
    field_str(out, b",\"src_ip\":", &l.src_ip);
    if let Some(v) = l.src_port {
        field_u64(out, b",\"src_port\":", u64::from(v));
    }
    if let Some(v) = &l.dest_ip {
        field_str(out, b",\"dest_ip\":", v);
    }
    if let Some(v) = l.dest_port {
        field_u64(out, b",\"dest_port\":", u64::from(v));
    }
    field_str(out, b",\"proto\":", l.proto);
    if let Some(v) = l.icmp_type {
        field_u64(out, b",\"icmp_type\":", u64::from(v));
    }
    field_str(out, b",\"direction\":", l.direction);
    if let Some(v) = l.host {
        field_str(out, b",\"host\":", v);
    }
    let a = &l.alert;
    field_str(out, b",\"alert\":{\"action\":", a.action);
    field_u64(out, b",\"gid\":", u64::from(a.gid));
    field_u64(out, b",\"signature_id\":", u64::from(a.signature_id));
    field_u64(out, b",\"rev\":", u64::from(a.rev));
    field_str(out, b",\"signature\":", &a.signature);
    field_str(out, b",\"category\":", a.category);
    field_u64(out, b",\"severity\":", u64::from(a.severity));
    let m = &a.metadata;
    field_strs(
        out,
        b",\"metadata\":{\"scanwatch_event\":",
        &m.scanwatch_event,
    );
    field_strs(out, b",\"scan_kind\":", &m.scan_kind);
    field_strs(out, b",\"scan_direction\":", &m.scan_direction);
    field_strs(out, b",\"scan_technique\":", &m.scan_technique);
    field_strs(out, b",\"scan_tool\":", &m.scan_tool);
    field_strs(out, b",\"signature_severity\":", &m.signature_severity);
    field_strs(out, b",\"tag\":", &m.tag);
    let f = &a.context.scan;
    field_str(out, b"},\"context\":{\"scan\":{\"id\":", f.id);
    field_str(out, b",\"phase\":", f.phase);
    field_str(out, b",\"kind\":", f.kind);
    if let Some(v) = f.previous_kind {
        field_str(out, b",\"previous_kind\":", v);
    }
    field_str(out, b",\"proto\":", f.proto);
    field_str(out, b",\"technique\":", f.technique);
    field_str(out, b",\"tool\":", f.tool);
    field_strs(out, b",\"tool_evidence\":", f.tool_evidence);
    out.extend_from_slice(b",\"rate_pps\":");
    // Floats as serde_json writes them (shortest round trip; null when
    // not finite).
    let _ = serde_json::to_writer(&mut *out, &f.rate_pps);
    field_str(out, b",\"order\":", f.order);
    field_str(out, b",\"port_set\":", f.port_set);
    if !f.campaign_id.is_empty() {
        field_str(out, b",\"campaign_id\":", f.campaign_id);
    }
    field_str(out, b",\"detector\":", f.detector);
    field_str(out, b",\"first_seen\":", &f.first_seen);
    field_str(out, b",\"last_seen\":", &f.last_seen);
    field_str(out, b",\"detected\":", &f.detected);
    for (k, v) in [
        (&b",\"dst_count\":"[..], f.dst_count),
        (b",\"port_count\":", f.port_count),
        (b",\"probes\":", f.probes),
        (b",\"answered\":", f.answered),
        (b",\"rejected\":", f.rejected),
        (b",\"unanswered\":", f.unanswered),
        (b",\"open_count\":", f.open_count),
    ] {
        field_u64(out, k, v);
    }
    out.extend_from_slice(b",\"ports\":[");
    for (i, &p) in f.ports.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_u64(out, u64::from(p));
    }
    field_bool(out, b"],\"ports_truncated\":", f.ports_truncated);
    field_strs(out, b",\"targets\":", &f.targets);
    field_bool(out, b",\"targets_truncated\":", f.targets_truncated);
    field_strs(out, b",\"open\":", f.open);
    field_bool(out, b",\"open_truncated\":", f.open_truncated);
    if !f.new_open.is_empty() {
        field_strs(out, b",\"new_open\":", f.new_open);
    }
    if f.new_open_truncated {
        out.extend_from_slice(b",\"new_open_truncated\":true");
    }
    field_strs(out, b",\"sources\":", &f.sources);
    field_bool(out, b",\"sources_truncated\":", f.sources_truncated);
    out.extend_from_slice(b"}}}}");
}

/// `key` (with its comma, quotes and colon) and a string value.
fn field_str(out: &mut Vec<u8>, key: &[u8], v: &str) {
    out.extend_from_slice(key);
    json_str(out, v);
}

fn field_u64(out: &mut Vec<u8>, key: &[u8], v: u64) {
    out.extend_from_slice(key);
    json_u64(out, v);
}

fn field_strs<S: AsRef<str>>(out: &mut Vec<u8>, key: &[u8], v: &[S]) {
    out.extend_from_slice(key);
    json_strs(out, v);
}

fn field_bool(out: &mut Vec<u8>, key: &[u8], v: bool) {
    out.extend_from_slice(key);
    json_bool(out, v);
}

fn json_bool(out: &mut Vec<u8>, v: bool) {
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

fn json_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut b = [0u8; 20];
    let mut i = b.len();
    loop {
        i -= 1;
        b[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&b[i..]);
}

/// A JSON string: as is between quotes when nothing in it needs escaping
/// (our own texts, addresses, times), else through serde_json.
fn json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

fn json_strs<S: AsRef<str>>(out: &mut Vec<u8>, v: &[S]) {
    out.push(b'[');
    for (i, s) in v.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_str(out, s.as_ref());
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every optional field present and absent, texts that need escaping,
    /// floats of every form, the widest integers, empty and full lists:
    /// the written line is the derived serialization, byte for byte.
    #[test]
    fn the_written_line_is_the_derived_serialization() {
        let texts = [
            "",
            "plain",
            "quote \" and \\ backslash",
            "only \"quotes\"",
            "only C:\\back\\slashes",
            "tab\tnew\nline\r\u{1}\u{1f}\u{7f}",
            "é ü 東京 🦀",
            "</script>",
        ];
        let floats = [
            0.0,
            -0.0,
            670.5,
            0.1,
            1e21,
            1e-7,
            123_456_789.123,
            f64::NAN,
            f64::INFINITY,
            f64::MAX,
        ];
        let ev_list: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        let ports: Vec<u16> = vec![0, 1, 80, 443, 65535];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..2000usize {
            let r = next();
            let bit = |k: u32| r >> k & 1 == 1;
            let t = |k: usize| texts[(r as usize >> k) % texts.len()];
            let n = |k: u32| (r >> k) as usize % 4;
            let l = Line {
                timestamp: t(1).to_string(),
                flow_id: bit(2).then_some(if bit(3) { u64::MAX } else { r }),
                in_iface: bit(4).then_some(t(5)),
                event_type: "alert",
                src_ip: t(7).to_string(),
                src_port: bit(8).then_some(r as u16),
                dest_ip: bit(9).then(|| t(10).to_string()),
                dest_port: bit(11).then_some(65535),
                proto: "TCP",
                icmp_type: bit(12).then_some(3),
                direction: "external",
                host: bit(13).then_some(t(14)),
                alert: Sig {
                    action: "allowed",
                    gid: 1,
                    signature_id: u32::MAX - (i as u32),
                    rev: 1,
                    signature: t(16).to_string(),
                    category: CATEGORY,
                    severity: (r % 4) as u8,
                    metadata: Meta {
                        scanwatch_event: [t(18).to_string()],
                        scan_kind: ["vertical"],
                        scan_direction: ["inbound"],
                        scan_technique: ["syn"],
                        scan_tool: [t(20)],
                        signature_severity: ["Major"],
                        tag: ["port-scan"],
                    },
                    context: Context {
                        scan: Facts {
                            id: t(22),
                            phase: t(24),
                            kind: "block",
                            previous_kind: bit(26).then_some("horizontal"),
                            proto: "tcp",
                            technique: "syn",
                            tool: t(27),
                            tool_evidence: &ev_list[..n(29)],
                            rate_pps: floats[i % floats.len()],
                            order: t(31),
                            port_set: t(33),
                            campaign_id: t(35),
                            detector: t(37),
                            first_seen: t(39).to_string(),
                            last_seen: t(41).to_string(),
                            detected: t(43).to_string(),
                            dst_count: r,
                            port_count: u64::MAX,
                            probes: 0,
                            answered: r >> 40,
                            rejected: 9,
                            unanswered: 10,
                            open_count: r % 7,
                            ports: &ports[..n(45) + 1],
                            ports_truncated: bit(47),
                            targets: ev_list[..n(48)].to_vec(),
                            targets_truncated: bit(50),
                            open: &ev_list[n(51)..],
                            open_truncated: bit(53),
                            new_open: &ev_list[..n(54)],
                            new_open_truncated: bit(56),
                            sources: ev_list[n(57)..].to_vec(),
                            sources_truncated: bit(59),
                        },
                    },
                },
            };
            let mut ours = Vec::new();
            write_json(&mut ours, &l);
            let derived = serde_json::to_vec(&l).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&derived),
                "case {i}"
            );
        }
    }
}
