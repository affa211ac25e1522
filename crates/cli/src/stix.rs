//! STIX 2.1 objects for what scanwatch saw, shaped so that a partner's
//! platform (MISP, OpenCTI, a TAXII client) takes them in unattended:
//! no custom properties (the scan facts ride in a declared
//! `extension-definition`), TLP 2.0 markings on every object, ids a strict
//! validator accepts, and timestamps taken from the packets, never from the
//! wall clock, so the same input gives a byte-identical bundle and a
//! sighting that grows gets a newer `modified` under the same id.
//!
//! Used for the whole table (`scanwatch share`) and for one detection at a
//! time (`scanwatch run --taxii`): build a [`Detected`] per detection row,
//! group them into [`Seen`] (one scanner, one sensor, or all sensors), then
//! [`indicator`], [`sighting`], [`sensor_identity`], [`common_objects`] and
//! [`bundle`].
//!
//! Ids are derived from names (the sharing organisation's name is part of
//! every name, so two organisations never mint the same id for different
//! content): SHA-1 of the name as in UUIDv5, with the version nibble set to
//! 4 because STIX 2.1 asks SDO ids to be UUIDv4 and `stix2-validator
//! --strict` refuses others.

use crate::cryptopan::CryptoPan;
use scanwatch_model::ids::name_uuid;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// The TLP 2.0 level of everything shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tlp {
    Clear,
    Green,
    Amber,
    #[value(name = "amber+strict")]
    AmberStrict,
    Red,
}

/// The TLP 2.0 extension definition of the OASIS common objects
/// (cti-stix-common-objects, extension-definition-specifications/tlp-2.0).
pub const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

impl Tlp {
    /// `clear`, `green`, `amber`, `amber+strict`, `red`.
    pub fn name(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber+strict",
            Tlp::Red => "red",
        }
    }

    /// The id of the official TLP 2.0 marking definition (the same id in
    /// every producer's bundle, so a consumer knows it without reading it).
    pub fn marking_id(self) -> &'static str {
        match self {
            Tlp::Clear => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
            Tlp::Green => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
            Tlp::Amber => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
            Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            Tlp::Red => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        }
    }

    /// The official marking-definition object, as OASIS publishes it.
    pub fn marking_definition(self) -> Value {
        json!({
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": self.marking_id(),
            "created": "2022-10-01T00:00:00.000Z",
            "name": format!("TLP:{}", self.name().to_uppercase()),
            "extensions": {
                TLP2_EXTENSION: {
                    "extension_type": "property-extension",
                    "tlp_2_0": self.name(),
                }
            }
        })
    }
}

/// How the scanned side (our own addresses) appears in the sightings.
#[derive(Clone, Debug)]
pub enum Targets {
    /// Not at all (the default).
    Omit,
    /// As Crypto-PAn pseudonyms under the organisation's key.
    Pseudonym(Box<CryptoPan>),
    /// In clear.
    Clear,
}

impl Targets {
    pub fn name(&self) -> &'static str {
        match self {
            Targets::Omit => "omit",
            Targets::Pseudonym(_) => "pseudonym",
            Targets::Clear => "clear",
        }
    }
}

/// Everything the objects depend on besides the detections.
#[derive(Clone, Debug)]
pub struct StixOptions {
    /// Name of the sharing organisation (its STIX identity).
    pub identity: String,
    pub tlp: Tlp,
    /// An indicator stays valid this many days after the scanner was last
    /// seen (at least 1).
    pub valid_days: u32,
    pub targets: Targets,
}

impl Default for StixOptions {
    fn default() -> Self {
        StixOptions {
            identity: "scanwatch sensor operator".to_string(),
            tlp: Tlp::Amber,
            valid_days: 30,
            targets: Targets::Omit,
        }
    }
}

/// One detection, as sharing sees it: a row of the detections table or a
/// live [`scanwatch_model::Detection`].
#[derive(Clone, Debug, PartialEq)]
pub struct Detected {
    pub sensor: String,
    pub scanner: IpAddr,
    /// `horizontal`, `vertical`, `block`, `distributed`.
    pub kind: String,
    /// `tcp`, `udp`, `icmp`, …
    pub proto: String,
    /// Microseconds since the epoch, packet time.
    pub first: i64,
    pub last: i64,
    pub probes: u64,
    pub answered: u64,
    pub ports: Vec<u16>,
    /// Sampled targets (our side).
    pub targets: Vec<IpAddr>,
    /// `inbound`, `outbound`, `internal`, `external`; `None` in tables
    /// written before the column existed (schema version 1).
    pub direction: Option<String>,
}

impl Detected {
    /// The sharing view of a live detection seen by `sensor`.
    pub fn from_detection(d: &scanwatch_model::Detection, sensor: &str) -> Detected {
        Detected {
            sensor: sensor.to_string(),
            scanner: d.scanner.to_ip(),
            kind: d.kind.name().to_string(),
            proto: scanwatch_model::proto::name(d.proto).to_string(),
            first: d.ts_first,
            last: d.ts_last,
            probes: d.probes,
            answered: d.answered,
            ports: d.ports.clone(),
            targets: d.targets.iter().map(|a| a.to_ip()).collect(),
            direction: Some(d.direction.name().to_string()),
        }
    }

    /// The scanner is one of ours (direction `outbound` or `internal`, from
    /// the run's `--home-net`).
    pub fn own_scanner(&self) -> bool {
        matches!(self.direction.as_deref(), Some("outbound" | "internal"))
    }
}

/// Why a scanner is never an indicator: an address no partner can block
/// or see (loopback, private, link-local, shared, multicast, unspecified),
/// whatever `--home-net` says. `None` when it can be shared.
pub fn unshareable(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            if a.is_loopback() {
                Some("loopback")
            } else if a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || o[0] == 0
                || o[0] >= 240
            {
                Some("not a unicast source")
            } else if a.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
                Some("private")
            } else if a.is_link_local() {
                Some("link-local")
            } else {
                None
            }
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return unshareable(IpAddr::V4(v4));
            }
            let s = a.segments();
            if a.is_loopback() {
                Some("loopback")
            } else if a.is_unspecified() || a.is_multicast() {
                Some("not a unicast source")
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Some("private")
            } else if (s[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else {
                None
            }
        }
    }
}

/// Detections of one scanner: by one sensor (a sighting) or by all (the
/// indicator).
#[derive(Clone, Debug, Default)]
pub struct Seen<'a> {
    pub rows: Vec<&'a Detected>,
}

impl<'a> Seen<'a> {
    pub fn new(rows: Vec<&'a Detected>) -> Self {
        Seen { rows }
    }
    pub fn first(&self) -> i64 {
        self.rows.iter().map(|r| r.first).min().unwrap_or(0)
    }
    pub fn last(&self) -> i64 {
        self.rows.iter().map(|r| r.last).max().unwrap_or(0)
    }
    /// `kind proto` pairs, e.g. `vertical tcp`.
    pub fn kinds(&self) -> BTreeSet<String> {
        self.rows
            .iter()
            .map(|r| format!("{} {}", r.kind, r.proto))
            .collect()
    }
    pub fn ports(&self) -> BTreeSet<u16> {
        self.rows
            .iter()
            .flat_map(|r| r.ports.iter().copied())
            .collect()
    }
    pub fn probes(&self) -> u64 {
        self.rows.iter().map(|r| r.probes).sum()
    }
    pub fn answered(&self) -> u64 {
        self.rows.iter().map(|r| r.answered).sum()
    }
    /// Distinct sensors among the rows.
    pub fn sensors(&self) -> BTreeSet<&str> {
        self.rows.iter().map(|r| r.sensor.as_str()).collect()
    }
    pub fn targets(&self) -> BTreeSet<IpAddr> {
        self.rows
            .iter()
            .flat_map(|r| r.targets.iter().copied())
            .collect()
    }
}

/// Ports listed in a sighting's extension (the count is always exact).
pub const MAX_PORTS_LISTED: usize = 1000;

/// STIX's millisecond UTC time; outside chrono's range, the nearest instant
/// it can represent (`civil_clamped`).
pub fn stix_time(us: i64) -> String {
    let c = scanwatch_model::civil_clamped(us);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.micros / 1000
    )
}

/// The creation time of objects whose content depends only on names (the
/// identities and the extension definition): they never change, so one
/// fixed version.
const FIXED_TIME: &str = "1970-01-01T00:00:00.000Z";

/// `kind--uuid` for a name: SHA-1 based like UUIDv5, version nibble 4.
pub fn object_id(kind: &str, name: &str) -> String {
    let u = name_uuid(&[
        b"scanwatch-stix-2.1:",
        kind.as_bytes(),
        b":",
        name.as_bytes(),
    ]);
    // xxxxxxxx-xxxx-Vxxx-…: the version is the first digit of the third group.
    let mut b = u.into_bytes();
    b[14] = b'4';
    format!("{kind}--{}", String::from_utf8_lossy(&b))
}

/// The organisation's identity id.
pub fn identity_id(o: &StixOptions) -> String {
    object_id("identity", &o.identity)
}

/// The id of the extension that carries the scan facts of a sighting.
pub fn facts_extension_id(o: &StixOptions) -> String {
    object_id(
        "extension-definition",
        &format!("{}/scan-facts/1", o.identity),
    )
}

pub fn sensor_identity_id(o: &StixOptions, sensor: &str) -> String {
    object_id("identity", &format!("{}/sensor/{sensor}", o.identity))
}

pub fn indicator_id(o: &StixOptions, scanner: IpAddr) -> String {
    object_id("indicator", &format!("{}/{scanner}", o.identity))
}

pub fn sighting_id(o: &StixOptions, scanner: IpAddr, sensor: &str) -> String {
    object_id("sighting", &format!("{}/{scanner}@{sensor}", o.identity))
}

fn marked(o: &StixOptions, mut v: Value) -> Value {
    v["object_marking_refs"] = json!([o.tlp.marking_id()]);
    v
}

/// The objects every bundle carries once: the TLP marking definition, the
/// organisation's identity and the scan-facts extension definition.
pub fn common_objects(o: &StixOptions) -> Vec<Value> {
    let org = identity_id(o);
    vec![
        o.tlp.marking_definition(),
        marked(
            o,
            json!({
                "type": "identity", "spec_version": "2.1", "id": org,
                "created": FIXED_TIME, "modified": FIXED_TIME,
                "name": o.identity, "identity_class": "organization",
                "description": "Operator of scanwatch port-scan sensors.",
            }),
        ),
        marked(
            o,
            json!({
                "type": "extension-definition", "spec_version": "2.1",
                "id": facts_extension_id(o),
                "created": FIXED_TIME, "modified": FIXED_TIME, "created_by_ref": org,
                "name": "scanwatch scan facts",
                "description": "What one sensor saw of one port scanner.",
                "schema": "Property extension of sighting. Properties: scan_kinds (list of \
                    'kind proto', kind one of horizontal, vertical, block, distributed), \
                    probes (integer, connection attempts), answered (integer, attempts \
                    answered), port_count (integer, distinct ports probed), ports (list of \
                    integers, the lowest 1000 ports probed), targets (list of addresses \
                    scanned, present only when the producer shares them), targets_form \
                    ('clear' or 'pseudonym': Crypto-PAn, AES-128, prefix-preserving, \
                    under the producer's key).",
                "version": "1.0.0",
                "extension_types": ["property-extension"],
            }),
        ),
    ]
}

/// A sensor as a STIX identity (`identity_class` system), the place of its
/// sightings.
pub fn sensor_identity(o: &StixOptions, sensor: &str) -> Value {
    marked(
        o,
        json!({
            "type": "identity", "spec_version": "2.1",
            "id": sensor_identity_id(o, sensor),
            "created": FIXED_TIME, "modified": FIXED_TIME, "created_by_ref": identity_id(o),
            "name": format!("{} sensor {sensor}", o.identity), "identity_class": "system",
            "description": "A scanwatch sensor.",
        }),
    )
}

/// The indicator's confidence (0–100) from the evidence of all sensors:
/// 40, plus 15 for each sensor beyond the first (at most 30), plus 10 at
/// 100 probes and 10 more at 1000, plus 10 when fewer than half the probes
/// were answered (failed contacts are what a scanner leaves), minus 20 when
/// more than 90% were answered (a busy client looks like that). Range 20–100.
pub fn confidence(seen: &Seen) -> u8 {
    let sensors = seen.sensors().len().max(1) as u64;
    let probes = seen.probes();
    let answered = seen.answered();
    let mut c: i64 = 40;
    c += 15 * (sensors - 1).min(2) as i64;
    if probes >= 100 {
        c += 10;
    }
    if probes >= 1000 {
        c += 10;
    }
    // Shares compared in integers: answered/probes < 1/2, > 9/10.
    if probes > 0 && 2 * answered < probes {
        c += 10;
    } else if probes > 0 && 10 * answered > 9 * probes {
        c -= 20;
    }
    c as u8
}

/// The STIX name of a detection's protocol (IANA service-name registry,
/// as STIX asks for `network-traffic:protocols`); `None` for the other IP
/// protocols (detection proto `ip`).
fn stix_protocol(proto: &str) -> Option<&'static str> {
    match proto {
        "tcp" => Some("tcp"),
        "udp" => Some("udp"),
        "icmp" => Some("icmp"),
        "icmp6" => Some("ipv6-icmp"),
        "sctp" => Some("sctp"),
        _ => None,
    }
}

/// The STIX pattern on the scan's source: the source address and the
/// protocols it probed with, e.g.
/// `[network-traffic:src_ref.type = 'ipv4-addr' AND
/// network-traffic:src_ref.value = '203.0.113.5' AND
/// (network-traffic:protocols[*] = 'tcp' OR network-traffic:protocols[*] = 'udp')]`.
/// MISP's STIX 2 import (misp-stix) turns this into a network-traffic
/// object whose `src_ip` is an `ip-src` attribute; without the protocol
/// clause it takes the single-attribute path, which fails in misp-stix
/// 2026.10 (attribute without a type). When a probe used another IP
/// protocol, the pattern is on the source alone (it must match all of the
/// scanner's traffic).
pub fn source_pattern<'a>(scanner: IpAddr, protos: impl IntoIterator<Item = &'a str>) -> String {
    let t = if scanner.is_ipv4() {
        "ipv4-addr"
    } else {
        "ipv6-addr"
    };
    let src = format!(
        "network-traffic:src_ref.type = '{t}' AND network-traffic:src_ref.value = '{scanner}'"
    );
    let named: Option<BTreeSet<&str>> = protos.into_iter().map(stix_protocol).collect();
    match named {
        Some(p) if !p.is_empty() => {
            let any: Vec<String> = p
                .iter()
                .map(|x| format!("network-traffic:protocols[*] = '{x}'"))
                .collect();
            if any.len() == 1 {
                format!("[{src} AND {}]", any[0])
            } else {
                format!("[{src} AND ({})]", any.join(" OR "))
            }
        }
        _ => format!("[{src}]"),
    }
}

/// One indicator per scanner, from its detections by all sensors: created
/// at the first probe seen, modified at the last, valid from the first
/// probe until `valid_days` after the last.
pub fn indicator(scanner: IpAddr, seen: &Seen, o: &StixOptions) -> Value {
    let kinds: Vec<String> = seen.kinds().into_iter().collect();
    let (first, last) = (seen.first(), seen.last());
    let until = last.saturating_add(i64::from(o.valid_days.max(1)) * 86_400_000_000);
    let sensors = seen.sensors().len();
    marked(
        o,
        json!({
            "type": "indicator", "spec_version": "2.1", "id": indicator_id(o, scanner),
            "created": stix_time(first), "modified": stix_time(last),
            "created_by_ref": identity_id(o),
            "name": format!("Port scanner {scanner}"),
            "description": format!(
                "{scanner} scanned: {} ({} probes, {} answered, {} ports) between {} and {}, seen by {} sensor(s).",
                kinds.join(", "), seen.probes(), seen.answered(), seen.ports().len(),
                stix_time(first), stix_time(last), sensors
            ),
            "indicator_types": ["malicious-activity"],
            "pattern": source_pattern(scanner, seen.rows.iter().map(|r| r.proto.as_str())), "pattern_type": "stix", "pattern_version": "2.1",
            "valid_from": stix_time(first), "valid_until": stix_time(until),
            "confidence": confidence(seen),
            "kill_chain_phases": [{
                "kill_chain_name": "lockheed-martin-cyber-kill-chain",
                "phase_name": "reconnaissance",
            }],
        }),
    )
}

/// One sighting per (scanner, sensor): first/last seen, the number of scan
/// records, and the scan facts in the scanwatch extension. Targets appear
/// only as [`StixOptions::targets`] says.
pub fn sighting(scanner: IpAddr, sensor: &str, seen: &Seen, o: &StixOptions) -> Value {
    let ports = seen.ports();
    let mut facts = json!({
        "extension_type": "property-extension",
        "scan_kinds": seen.kinds().into_iter().collect::<Vec<_>>(),
        "probes": seen.probes(),
        "answered": seen.answered(),
        "port_count": ports.len(),
        "ports": ports.iter().take(MAX_PORTS_LISTED).collect::<Vec<_>>(),
    });
    let targets: Option<Vec<String>> = match &o.targets {
        Targets::Omit => None,
        Targets::Clear => Some(seen.targets().iter().map(|t| t.to_string()).collect()),
        Targets::Pseudonym(k) => {
            let p: BTreeSet<IpAddr> = seen.targets().iter().map(|t| k.anonymize(*t)).collect();
            Some(p.iter().map(|t| t.to_string()).collect())
        }
    };
    if let Some(t) = targets {
        facts["targets"] = json!(t);
        facts["targets_form"] = json!(o.targets.name());
    }
    let (first, last) = (seen.first(), seen.last());
    let mut ext = serde_json::Map::new();
    ext.insert(facts_extension_id(o), facts);
    marked(
        o,
        json!({
            "type": "sighting", "spec_version": "2.1",
            "id": sighting_id(o, scanner, sensor),
            "created": stix_time(first), "modified": stix_time(last),
            "created_by_ref": identity_id(o),
            "description": format!("Port scans by {scanner} seen by sensor {sensor}."),
            "sighting_of_ref": indicator_id(o, scanner),
            "where_sighted_refs": [sensor_identity_id(o, sensor)],
            "first_seen": stix_time(first),
            "last_seen": stix_time(last),
            "count": seen.rows.len(),
            "extensions": ext,
        }),
    )
}

/// A bundle of `objects`; its id is derived from its content, so the same
/// objects give the same bundle.
pub fn bundle(objects: Vec<Value>) -> Value {
    let text = serde_json::to_string(&objects).unwrap_or_default();
    json!({
        "type": "bundle",
        "id": object_id("bundle", &text),
        "objects": objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(
        sensor: &str,
        scanner: &str,
        first: i64,
        last: i64,
        probes: u64,
        answered: u64,
    ) -> Detected {
        Detected {
            sensor: sensor.into(),
            scanner: scanner.parse().unwrap(),
            kind: "vertical".into(),
            proto: "tcp".into(),
            first,
            last,
            probes,
            answered,
            ports: vec![22, 80],
            targets: vec![
                "198.51.100.7".parse().unwrap(),
                "198.51.100.9".parse().unwrap(),
            ],
            direction: Some("inbound".into()),
        }
    }

    #[test]
    fn ids_are_uuid4_shaped_stable_and_per_organisation() {
        let a = StixOptions::default();
        let b = StixOptions {
            identity: "another org".into(),
            ..StixOptions::default()
        };
        let ip: IpAddr = "203.0.113.5".parse().unwrap();
        let id = indicator_id(&a, ip);
        let u = id.strip_prefix("indicator--").unwrap();
        let groups: Vec<&str> = u.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(groups[2].starts_with('4'), "{id}");
        assert!(matches!(&groups[3][..1], "8" | "9" | "a" | "b"), "{id}");
        assert_eq!(id, indicator_id(&a, ip));
        assert_ne!(id, indicator_id(&b, ip));
        assert_ne!(sighting_id(&a, ip, "east"), sighting_id(&a, ip, "west"));
    }

    #[test]
    fn confidence_follows_the_documented_rule() {
        let one = det("east", "203.0.113.5", 0, 1, 10, 0);
        assert_eq!(confidence(&Seen::new(vec![&one])), 50); // 40 + mostly failed
        let busy = det("east", "203.0.113.5", 0, 1, 10, 10);
        assert_eq!(confidence(&Seen::new(vec![&busy])), 20); // 40 - mostly answered
        let half = det("east", "203.0.113.5", 0, 1, 100, 50);
        assert_eq!(confidence(&Seen::new(vec![&half])), 50); // 40 + 100 probes
        let (e, w, n) = (
            det("east", "203.0.113.5", 0, 1, 600, 0),
            det("west", "203.0.113.5", 0, 1, 600, 0),
            det("north", "203.0.113.5", 0, 1, 600, 0),
        );
        let s = det("south", "203.0.113.5", 0, 1, 0, 0);
        assert_eq!(confidence(&Seen::new(vec![&e, &w])), 40 + 15 + 20 + 10);
        assert_eq!(confidence(&Seen::new(vec![&e, &w, &n, &s])), 100);
    }

    #[test]
    fn patterns_name_the_source_and_its_protocols() {
        let ip: IpAddr = "203.0.113.5".parse().unwrap();
        let src = "network-traffic:src_ref.type = 'ipv4-addr' AND network-traffic:src_ref.value = '203.0.113.5'";
        assert_eq!(
            source_pattern(ip, ["udp", "tcp", "tcp"]),
            format!("[{src} AND (network-traffic:protocols[*] = 'tcp' OR network-traffic:protocols[*] = 'udp')]")
        );
        assert_eq!(
            source_pattern(ip, ["icmp"]),
            format!("[{src} AND network-traffic:protocols[*] = 'icmp']")
        );
        assert_eq!(source_pattern(ip, ["tcp", "ip"]), format!("[{src}]"));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(source_pattern(v6, ["icmp6"]).contains("'ipv6-addr'"));
        assert!(source_pattern(v6, ["icmp6"]).contains("'ipv6-icmp'"));
    }

    #[test]
    fn addresses_no_partner_sees_are_never_indicators() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(unshareable(a.parse().unwrap()).is_some(), "{a}");
        }
        for a in [
            "198.18.0.2",
            "203.0.113.5",
            "8.8.8.8",
            "2001:db8::1",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(unshareable(a.parse().unwrap()), None, "{a}");
        }
    }

    #[test]
    fn indicator_times_come_from_the_packets() {
        let day = 86_400_000_000;
        let d = det(
            "east",
            "2001:db8::5",
            1_790_000_000_000_000,
            1_790_000_100_123_456,
            5,
            0,
        );
        let o = StixOptions {
            valid_days: 2,
            tlp: Tlp::Red,
            ..StixOptions::default()
        };
        let ip = d.scanner;
        let v = indicator(ip, &Seen::new(vec![&d]), &o);
        assert_eq!(v["created"], stix_time(d.first));
        assert_eq!(v["modified"], "2026-09-21T14:15:00.123Z");
        assert_eq!(v["valid_from"], v["created"]);
        assert_eq!(v["valid_until"], stix_time(d.last + 2 * day));
        assert_eq!(
            v["pattern"],
            "[network-traffic:src_ref.type = 'ipv6-addr' AND network-traffic:src_ref.value = '2001:db8::5' AND network-traffic:protocols[*] = 'tcp']"
        );
        assert_eq!(v["object_marking_refs"], json!([Tlp::Red.marking_id()]));
        // A sighting that grows keeps its id and gets a newer `modified`.
        let mut later = d.clone();
        later.last += 60_000_000;
        let s1 = sighting(ip, "east", &Seen::new(vec![&d]), &o);
        let s2 = sighting(ip, "east", &Seen::new(vec![&d, &later]), &o);
        assert_eq!(s1["id"], s2["id"]);
        assert_eq!(s1["created"], s2["created"]);
        assert!(s2["modified"].as_str() > s1["modified"].as_str());
        assert_eq!(s2["count"], 2);
    }

    #[test]
    fn sightings_carry_targets_only_when_asked() {
        let d = det("east", "203.0.113.5", 0, 1, 5, 0);
        let ext = |o: &StixOptions| {
            sighting(d.scanner, "east", &Seen::new(vec![&d]), o)["extensions"]
                [facts_extension_id(o)]
            .clone()
        };
        let omit = StixOptions::default();
        assert!(ext(&omit).get("targets").is_none());
        assert_eq!(ext(&omit)["ports"], json!([22, 80]));
        let cp = CryptoPan::new(&[7; 32]);
        let ps = StixOptions {
            targets: Targets::Pseudonym(Box::new(cp.clone())),
            ..StixOptions::default()
        };
        let t = ext(&ps)["targets"].clone();
        let mut want: Vec<String> = d
            .targets
            .iter()
            .map(|a| cp.anonymize(*a).to_string())
            .collect();
        want.sort();
        assert_eq!(t, json!(want));
        assert_eq!(ext(&ps)["targets_form"], "pseudonym");
    }

    #[test]
    fn a_live_detection_converts() {
        let d = scanwatch_model::Detection {
            detection_id: "x".into(),
            ts_first: 5,
            ts_last: 9,
            ts_detected: 7,
            scanner: "203.0.113.5".parse().unwrap(),
            kind: scanwatch_model::ScanKind::Vertical,
            proto: 6,
            detector: "trw".into(),
            dst_count: 1,
            port_count: 3,
            probes: 3,
            answered: 0,
            rejected: 0,
            unanswered: 3,
            ports: vec![1, 2, 3],
            targets: vec!["198.51.100.1".parse().unwrap()],
            open: vec![],
            direction: scanwatch_model::Direction::Inbound,
            technique: scanwatch_model::Technique::Syn,
            tool: "nmap".into(),
            tool_evidence: vec![],
            rate_pps: 0.5,
            order: "unknown".into(),
            port_set: "custom".into(),
            campaign_id: String::new(),
            sources: vec![],
        };
        let x = Detected::from_detection(&d, "east");
        assert_eq!(x.scanner.to_string(), "203.0.113.5");
        assert_eq!(
            (x.proto.as_str(), x.first, x.last, x.probes),
            ("tcp", 5, 9, 3)
        );
        assert_eq!(x.kind, "vertical");
        assert_eq!(x.direction.as_deref(), Some("inbound"));
        assert!(!x.own_scanner());
    }
}
