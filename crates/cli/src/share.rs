//! `scanwatch share DIR… --format stix|csv`: what was seen, in a form other
//! defenders can take in. One STIX 2.1 indicator per scanner address, one
//! sighting per (scanner, sensor) with first/last seen and counts, the kinds
//! of scan and the ports probed. The scanned side (our own addresses) is left
//! out unless asked for, and then as a keyed prefix-preserving pseudonym
//! (`--targets pseudonym --key SECRET`) or in clear (`--targets clear`).
//! Scans by our own hosts (direction `outbound` or `internal`, from the
//! run's `--home-net`) are left out unless `--own-scanners` asks for them:
//! an internal scan is a matter for us, not for other defenders.

use anyhow::{bail, Context, Result};
use arrow_array::{
    cast::AsArray,
    types::{TimestampMicrosecondType, UInt16Type, UInt64Type},
    Array, RecordBatch,
};
use clap::Args;
use scanwatch_model::ids::stix_id;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ShareArgs {
    /// Output folders of `scanwatch run` (Arrow or Parquet, one sensor or
    /// many).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// `stix` (a STIX 2.1 bundle) or `csv` (one line per scanner and sensor).
    #[arg(long, default_value = "stix", value_parser = ["stix", "csv"])]
    pub format: String,
    /// Write here instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The scanned side: `omit` (default), `pseudonym` (keyed,
    /// prefix-preserving: two of our addresses in one /24 stay in one /24),
    /// or `clear`.
    #[arg(long, default_value = "omit", value_parser = ["omit", "pseudonym", "clear"])]
    pub targets: String,
    /// Secret key for `--targets pseudonym` (the same key gives the same
    /// pseudonyms, so shares from one organisation can be joined).
    #[arg(long, value_name = "SECRET")]
    pub key: Option<String>,
    /// Also share scans whose scanner is one of ours (direction `outbound`
    /// or `internal`); left out by default.
    #[arg(long)]
    pub own_scanners: bool,
    /// Name of the organisation that shares (the STIX identity).
    #[arg(long, default_value = "scanwatch sensor operator")]
    pub identity: String,
    /// Push the bundle to a TAXII 2.1 collection (then the bundle is written
    /// only if `-o` asks for it).
    #[command(flatten)]
    pub taxii: crate::taxii::TaxiiArgs,
    /// The TAXII user (the same as --taxii-user).
    #[arg(
        long = "user",
        value_name = "USER",
        requires = "url",
        conflicts_with = "user"
    )]
    pub taxii_user_short: Option<String>,
}

/// One detection row, as read back from the table.
struct Row {
    sensor: String,
    scanner: String,
    kind: String,
    proto: String,
    first: i64,
    last: i64,
    probes: u64,
    answered: u64,
    ports: Vec<u16>,
    targets: Vec<String>,
    /// `inbound`, `outbound`, `internal`, `external`; `None` in tables
    /// written before the column existed (schema version 1).
    direction: Option<String>,
}

impl Row {
    /// The scanner is one of ours.
    fn own_scanner(&self) -> bool {
        matches!(self.direction.as_deref(), Some("outbound" | "internal"))
    }
}

fn batches(path: &Path) -> Result<Vec<RecordBatch>> {
    let f = File::open(path).with_context(|| format!("{}", path.display()))?;
    let ctx = || format!("{}", path.display());
    if path.extension().is_some_and(|e| e == "parquet") {
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .with_context(ctx)?
            .build()
            .with_context(ctx)?;
        r.collect::<Result<Vec<_>, _>>().with_context(ctx)
    } else {
        let r = arrow_ipc::reader::FileReader::try_new(f, None).with_context(ctx)?;
        r.collect::<Result<Vec<_>, _>>().with_context(ctx)
    }
}

fn sensor_of(path: &Path) -> String {
    path.components()
        .filter_map(|c| c.as_os_str().to_str())
        .find_map(|c| c.strip_prefix("sensor="))
        .unwrap_or("default")
        .to_string()
}

fn read_rows(dirs: &[PathBuf]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for d in dirs {
        let root = d.join("detections");
        if !root.is_dir() {
            bail!(
                "{}: no detections/ folder (give the -w folder of scanwatch run)",
                d.display()
            );
        }
        let mut files = Vec::new();
        crate::convert::walk(&root, &mut files)?;
        files.retain(|p| {
            p.extension()
                .is_some_and(|e| e == "arrow" || e == "parquet")
        });
        files.sort();
        for f in files {
            let sensor = sensor_of(&f);
            for b in batches(&f)? {
                let col = |name: &str| {
                    b.column_by_name(name)
                        .with_context(|| format!("{}: no column {name}", f.display()))
                };
                let s = |name: &str| -> Result<_> { Ok(col(name)?.as_string::<i32>().clone()) };
                let (scanner, kind, proto) = (s("scanner")?, s("kind")?, s("proto")?);
                let first = col("ts_first")?
                    .as_primitive::<TimestampMicrosecondType>()
                    .clone();
                let last = col("ts_last")?
                    .as_primitive::<TimestampMicrosecondType>()
                    .clone();
                let probes = col("probes")?.as_primitive::<UInt64Type>().clone();
                let answered = col("answered")?.as_primitive::<UInt64Type>().clone();
                let ports = col("ports")?.as_list::<i32>().clone();
                let targets = col("targets")?.as_list::<i32>().clone();
                let direction = b
                    .column_by_name("direction")
                    .map(|c| c.as_string::<i32>().clone());
                for i in 0..b.num_rows() {
                    let p = ports.value(i);
                    let t = targets.value(i);
                    let t = t.as_string::<i32>();
                    rows.push(Row {
                        sensor: sensor.clone(),
                        scanner: scanner.value(i).to_string(),
                        kind: kind.value(i).to_string(),
                        proto: proto.value(i).to_string(),
                        first: first.value(i),
                        last: last.value(i),
                        probes: probes.value(i),
                        answered: answered.value(i),
                        ports: p.as_primitive::<UInt16Type>().values().to_vec(),
                        targets: (0..t.len()).map(|j| t.value(j).to_string()).collect(),
                        direction: direction.as_ref().map(|d| d.value(i).to_string()),
                    });
                }
            }
        }
    }
    Ok(rows)
}

/// STIX's millisecond UTC time; outside chrono's range, the nearest instant
/// it can represent (`civil_clamped`).
pub(crate) fn stix_time(us: i64) -> String {
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

fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    use sha1::{Digest, Sha1};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner = Sha1::new()
        .chain_update(k.map(|b| b ^ 0x36))
        .chain_update(msg)
        .finalize();
    Sha1::new()
        .chain_update(k.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Keyed prefix-preserving pseudonym (the Crypto-PAn construction with
/// HMAC-SHA1 as the pseudo-random function): output bit i is input bit i
/// XOR a keyed function of the input's first i bits, so two addresses that
/// share a k-bit prefix get pseudonyms that share a k-bit prefix, and
/// nothing more can be learnt without the key.
pub fn pseudonym(key: &[u8], addr: IpAddr) -> IpAddr {
    let bytes: Vec<u8> = match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let nbits = bytes.len() * 8;
    let mut out = bytes.clone();
    let mut prefix = vec![0u8; bytes.len()];
    for i in 0..nbits {
        let mut msg = Vec::with_capacity(bytes.len() + 2);
        msg.extend_from_slice(&(i as u16).to_be_bytes());
        msg.extend_from_slice(&prefix);
        let flip = hmac_sha1(key, &msg)[0] >> 7;
        let (byte, bit) = (i / 8, 7 - (i % 8));
        let orig = (bytes[byte] >> bit) & 1;
        prefix[byte] |= orig << bit;
        out[byte] ^= flip << bit;
    }
    match addr {
        IpAddr::V4(_) => IpAddr::from(<[u8; 4]>::try_from(&out[..]).unwrap_or([0; 4])),
        IpAddr::V6(_) => IpAddr::from(<[u8; 16]>::try_from(&out[..]).unwrap_or([0; 16])),
    }
}

/// What one sighting carries: a scanner seen by one sensor.
struct Seen<'a> {
    rows: Vec<&'a Row>,
}

impl Seen<'_> {
    fn first(&self) -> i64 {
        self.rows.iter().map(|r| r.first).min().unwrap_or(0)
    }
    fn last(&self) -> i64 {
        self.rows.iter().map(|r| r.last).max().unwrap_or(0)
    }
    fn kinds(&self) -> BTreeSet<String> {
        self.rows
            .iter()
            .map(|r| format!("{} {}", r.kind, r.proto))
            .collect()
    }
    fn ports(&self) -> BTreeSet<u16> {
        self.rows
            .iter()
            .flat_map(|r| r.ports.iter().copied())
            .collect()
    }
    fn probes(&self) -> u64 {
        self.rows.iter().map(|r| r.probes).sum()
    }
    fn answered(&self) -> u64 {
        self.rows.iter().map(|r| r.answered).sum()
    }
}

fn target_list(a: &ShareArgs, seen: &Seen) -> Result<Option<Vec<String>>> {
    let all: BTreeSet<&String> = seen.rows.iter().flat_map(|r| r.targets.iter()).collect();
    match a.targets.as_str() {
        "clear" => Ok(Some(all.into_iter().cloned().collect())),
        "pseudonym" => {
            let key = a
                .key
                .as_deref()
                .filter(|k| !k.is_empty())
                .context("--targets pseudonym needs --key SECRET")?;
            let mut v: Vec<String> = all
                .into_iter()
                .filter_map(|t| t.parse::<IpAddr>().ok())
                .map(|ip| pseudonym(key.as_bytes(), ip).to_string())
                .collect();
            v.sort();
            v.dedup();
            Ok(Some(v))
        }
        _ => Ok(None),
    }
}

const MAX_PORTS_LISTED: usize = 1000;

pub fn main(mut a: ShareArgs) -> Result<ExitCode> {
    if let Some(u) = a.taxii_user_short.take() {
        a.taxii.user = Some(u);
    }
    if a.taxii.url.is_some() {
        anyhow::ensure!(a.format == "stix", "--taxii pushes STIX: use --format stix");
        // Settings (and the password file) checked before any work.
        crate::taxii::Client::new(&a.taxii)?;
    }
    let mut rows = read_rows(&a.dirs)?;
    let before = rows.len();
    if !a.own_scanners {
        rows.retain(|r| !r.own_scanner());
    }
    let own_left_out = before - rows.len();
    // scanner -> sensor -> rows
    let mut by: BTreeMap<&str, BTreeMap<&str, Seen>> = BTreeMap::new();
    for r in &rows {
        by.entry(&r.scanner)
            .or_default()
            .entry(&r.sensor)
            .or_insert_with(|| Seen { rows: Vec::new() })
            .rows
            .push(r);
    }
    let text = if a.format == "csv" {
        let mut s = String::from(
            "scanner,sensor,kinds,first_seen,last_seen,scans,probes,answered,port_count,ports,targets\n",
        );
        for (scanner, sensors) in &by {
            for (sensor, seen) in sensors {
                let ports = seen.ports();
                let ports_txt: Vec<String> = ports
                    .iter()
                    .take(MAX_PORTS_LISTED)
                    .map(|p| p.to_string())
                    .collect();
                let targets = target_list(&a, seen)?
                    .map(|t| t.join(" "))
                    .unwrap_or_default();
                let kinds: Vec<String> = seen.kinds().into_iter().collect();
                s.push_str(&format!(
                    "{scanner},{sensor},{},{},{},{},{},{},{},{},{}\n",
                    kinds.join(" "),
                    stix_time(seen.first()),
                    stix_time(seen.last()),
                    seen.rows.len(),
                    seen.probes(),
                    seen.answered(),
                    ports.len(),
                    ports_txt.join(" "),
                    targets
                ));
            }
        }
        s
    } else {
        let now = stix_time(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or(0),
        );
        let org = stix_id("identity", &a.identity);
        let mut objects: Vec<Value> = vec![json!({
            "type": "identity", "spec_version": "2.1", "id": org,
            "created": now, "modified": now,
            "name": a.identity, "identity_class": "organization",
        })];
        let mut sensor_ids: BTreeMap<&str, String> = BTreeMap::new();
        for sensors in by.values() {
            for sensor in sensors.keys() {
                sensor_ids.entry(sensor).or_insert_with(|| {
                    let id = stix_id("identity", &format!("{}/{sensor}", a.identity));
                    objects.push(json!({
                        "type": "identity", "spec_version": "2.1", "id": id,
                        "created": now, "modified": now, "created_by_ref": org,
                        "name": format!("sensor {sensor}"), "identity_class": "system",
                    }));
                    id
                });
            }
        }
        for (scanner, sensors) in &by {
            let pattern = match scanner.parse::<IpAddr>() {
                Ok(IpAddr::V6(_)) => format!("[ipv6-addr:value = '{scanner}']"),
                _ => format!("[ipv4-addr:value = '{scanner}']"),
            };
            let all = Seen {
                rows: sensors
                    .values()
                    .flat_map(|s| s.rows.iter().copied())
                    .collect(),
            };
            let kinds: Vec<String> = all.kinds().into_iter().collect();
            let ports: Vec<u16> = all.ports().into_iter().take(MAX_PORTS_LISTED).collect();
            let ind = stix_id("indicator", scanner);
            objects.push(json!({
                "type": "indicator", "spec_version": "2.1", "id": ind,
                "created": now, "modified": now, "created_by_ref": org,
                "name": format!("Port scanner {scanner}"),
                "description": format!(
                    "{scanner} scanned: {} ({} probes, {} answered) between {} and {}, seen by {} sensor(s).",
                    kinds.join(", "), all.probes(), all.answered(),
                    stix_time(all.first()), stix_time(all.last()), sensors.len()
                ),
                "indicator_types": ["anomalous-activity"],
                "pattern": pattern, "pattern_type": "stix",
                "valid_from": stix_time(all.first()),
                "x_scanwatch_scan_kinds": kinds,
                "x_scanwatch_ports": ports,
            }));
            for (sensor, seen) in sensors {
                let mut s = json!({
                    "type": "sighting", "spec_version": "2.1",
                    "id": stix_id("sighting", &format!("{scanner}@{sensor}")),
                    "created": now, "modified": now, "created_by_ref": org,
                    "sighting_of_ref": ind,
                    "where_sighted_refs": [sensor_ids[sensor]],
                    "first_seen": stix_time(seen.first()),
                    "last_seen": stix_time(seen.last()),
                    "count": seen.rows.len(),
                    "x_scanwatch_scan_kinds": seen.kinds().into_iter().collect::<Vec<_>>(),
                    "x_scanwatch_probes": seen.probes(),
                    "x_scanwatch_answered": seen.answered(),
                    "x_scanwatch_ports": seen.ports().into_iter().take(MAX_PORTS_LISTED).collect::<Vec<_>>(),
                });
                if let Some(t) = target_list(&a, seen)? {
                    s["x_scanwatch_targets"] = json!(t);
                    s["x_scanwatch_targets_form"] = json!(a.targets);
                }
                objects.push(s);
            }
        }
        let bundle = json!({
            "type": "bundle",
            "id": stix_id("bundle", &format!("{}:{now}", a.identity)),
            "objects": objects,
        });
        serde_json::to_string_pretty(&bundle)? + "\n"
    };
    match &a.out {
        Some(p) => fs::write(p, &text).with_context(|| format!("{}", p.display()))?,
        None if a.taxii.url.is_some() => {}
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    eprintln!(
        "scanwatch share: {} scanners, {} detections from {} folder(s); {} scans by our own hosts left out{}",
        by.len(),
        rows.len(),
        a.dirs.len(),
        own_left_out,
        if own_left_out > 0 {
            " (--own-scanners to share them)"
        } else {
            ""
        }
    );
    if a.taxii.url.is_some() {
        let bundle: Value = serde_json::from_str(&text).context("the bundle just built")?;
        if !crate::taxii::share_push(&a.taxii, &bundle)? {
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_preserve_prefixes_and_depend_on_the_key() {
        let k = b"secret";
        let p = |s: &str| pseudonym(k, s.parse().unwrap());
        let (a, b, c) = (p("198.51.100.7"), p("198.51.100.200"), p("198.51.7.7"));
        let v4 = |x: IpAddr| match x {
            IpAddr::V4(v) => u32::from(v),
            IpAddr::V6(_) => panic!("v4 in, v4 out"),
        };
        // Same /24 in, same /24 out; same /16 in, same /16 out.
        assert_eq!(v4(a) >> 8, v4(b) >> 8);
        assert_eq!(v4(a) >> 16, v4(c) >> 16);
        assert_ne!(v4(a) >> 8, v4(c) >> 8);
        assert_ne!(a, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!(a, p("198.51.100.7"), "deterministic");
        assert_ne!(a, pseudonym(b"other", "198.51.100.7".parse().unwrap()));
        let v6 = pseudonym(k, "2001:db8::1".parse().unwrap());
        assert!(v6.is_ipv6());
    }

    #[test]
    fn hmac_matches_rfc2202() {
        // RFC 2202 test case 2.
        let mac = hmac_sha1(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    }
}
