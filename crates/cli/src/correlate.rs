//! `scanwatch correlate DIR… [-o OUT]`: campaigns below every sensor's
//! threshold. Reads the `flows` tables of many sensors (the `-w` folders of
//! `scanwatch run`, Arrow IPC or Parquet, `flows/[sensor=NAME/]date=…/hour=…`),
//! turns every flow row back into the connection attempt the detector
//! consumes, merges the attempts of all sensors by packet time, runs the same
//! [`Detector`] (same defaults, same `--config` thresholds) over the union,
//! and writes a `campaigns` table: one row per scan record, with what each
//! sensor saw of it and whether any sensor flagged the scanner alone.
//!
//! **Order.** Attempts are fed in the order the pipeline's detector shards
//! use: sorted by the attempt's content, time first (its outcome time, then
//! source, target, ports, probe time, …, flow id), never by sensor or file.
//! Rows are read one time bucket at a time (an `hour=` partition, or a whole
//! day for a compacted `hour=all` one) from every sensor at once; an attempt
//! is released only when no bucket still unread can hold an earlier one (a
//! row's attempt time is never before its `ts`, and rows sit in the bucket of
//! their `ts`). So rows out of order inside a part, or parts of one hour
//! from several sensors, give the same sequence. Two sensors that saw the
//! same attempt (same content, flow id included) feed it once, and both are
//! credited with it.
//!
//! **What a flow row cannot tell.** The probe's header facts (TTL, window,
//! options: the `tool` is then `unknown`), the exact answer time (taken as
//! the row's last packet, within the attempt timeout), an ICMP error that
//! refused a UDP probe (it lives in its own ICMP flow: the probe counts as
//! unanswered, a failure all the same), FIN against Xmas against Maimon
//! (all are `F` in the history: reported as `fin`), and the protocol number
//! of `unknown_transport` rows (not rebuilt; counted).
//!
//! **Memory.** The detector's own caps (`max_sources`, `max_contacts_total`,
//! `max_scan_targets`; evictions are counted and printed) plus the attempts
//! of one time bucket of all sensors (80 bytes each: an hour's flows,
//! or a day's for compacted days). `--stdin` reads its input a batch at a
//! time and holds all of its attempts (Spark gives each process one
//! partition). Per-sensor facts are found
//! by a second read of the input, for the scanners the first found only.

use crate::config;
use anyhow::{bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch, StructArray};
use arrow_schema::DataType;
use clap::Args;
use scanwatch_detect::{DetectConfig, Detector, ScanEvent};
use scanwatch_model::{
    endpoint_text, proto, Addr, Attempt, Detection, Micros, Outcome, ProbeKind, ProbePrint,
    Technique,
};
use scanwatch_schema::{campaign_batch, CampaignRow, SensorPart};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct CorrelateArgs {
    /// `-w` folders of `scanwatch run` (their `flows/`, and `detections/`
    /// to tell which scanners some sensor flagged alone).
    #[arg(value_name = "DIR", required_unless_present = "stdin")]
    pub dirs: Vec<PathBuf>,
    /// Output folder: the table goes to OUT/campaigns/.
    #[arg(short = 'o', long = "out", default_value = "scanwatch-campaigns")]
    pub out: PathBuf,
    /// Only flows that started at or after this time (UTC:
    /// YYYY-MM-DD[THH[:MM[:SS]]][Z]).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only flows that started before this time (UTC, as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Sensor name of a DIR whose tables have no `sensor=` level (default:
    /// the DIR's own folder name). Repeat for several.
    #[arg(long, value_name = "DIR=NAME")]
    pub sensor_of: Vec<String>,
    /// TOML config file: its `[detect]` thresholds and `[flow]
    /// attempt_timeout_secs` (as `scanwatch run --config`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Table format: arrow (IPC file) or parquet.
    #[arg(long, default_value = "arrow", value_parser = ["arrow", "parquet"])]
    pub format: String,
    /// Read an Arrow IPC stream of flow rows with a `sensor` column on
    /// stdin and write the campaigns as an Arrow IPC stream on stdout.
    #[arg(long)]
    pub stdin: bool,
    /// With --stdin: `-w` folders whose detections tables say which
    /// scanners a sensor flagged alone (without it that column is null).
    #[arg(long, value_name = "DIR", num_args = 1.., requires = "stdin")]
    pub detections: Vec<PathBuf>,
}

/// What became of the rows read.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub files: u64,
    pub rows: u64,
    pub attempts: u64,
    /// Rows whose first packet was no probe (replies, backscatter,
    /// midstream flows, ICMP errors and replies, UDP from a service port).
    pub not_probes: u64,
    /// `unknown_transport` rows: the protocol number is not in the row.
    pub unknown_transport: u64,
    /// Rows outside --since/--until.
    pub outside: u64,
    /// Rows in a partition later than their own time, read after that
    /// time was released to the detector: counted, not fed.
    pub late: u64,
}

/// The attempt timeout and SYN-ACK data wait the flow rows were made with.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub attempt_timeout: Micros,
    pub data_wait: Micros,
}

/// One flow row, as far as rebuilding its attempt goes.
struct Row<'a> {
    ts: Micros,
    duration: f64,
    orig_h: &'a str,
    orig_p: u16,
    resp_h: &'a str,
    resp_p: u16,
    proto: &'a str,
    resp_pkts: u64,
    history: &'a str,
    flow_id: u64,
}

enum Rebuilt {
    Attempt(Attempt),
    NotProbe,
    UnknownTransport,
}

/// The attempt the pipeline's flow table made of a flow, rebuilt from its
/// row (outcome from the history letters, technique from the originator's
/// first letter; see the module docs for what the row cannot tell).
fn rebuild(r: &Row<'_>, t: Timing) -> Result<Rebuilt> {
    let src: Addr = r
        .orig_h
        .parse()
        .map_err(|_| anyhow::anyhow!("bad address {:?} in id.orig_h", r.orig_h))?;
    let dst: Addr = r
        .resp_h
        .parse()
        .map_err(|_| anyhow::anyhow!("bad address {:?} in id.resp_h", r.resp_h))?;
    let h = r.history.as_bytes();
    let orig = |c: u8| h.contains(&c);
    let resp = |c: u8| h.contains(&c.to_ascii_lowercase());
    // The last packet's time after the probe, within the attempt timeout:
    // the answer (or reject) when it was the flow's last packet.
    let dur = if r.duration.is_finite() && r.duration > 0.0 {
        (r.duration * 1e6).round() as Micros
    } else {
        0
    };
    let answer_at = r.ts + dur.min(t.attempt_timeout);
    let timeout_at = r.ts + t.attempt_timeout;
    let (proto_n, probe, outcome, time, dport, sport, data) = match r.proto {
        "tcp" => {
            let first = h.first().copied();
            let resp_other = h.iter().any(|c| c.is_ascii_lowercase() && *c != b'r');
            if orig(b'S') {
                let (outcome, time, data) = if resp(b'H') {
                    let data = orig(b'D');
                    // SYN and SYN-ACK only: answered, no data within the wait.
                    let bare = h.iter().all(|c| matches!(c, b'S' | b'h'));
                    let time = if bare {
                        r.ts + dur + t.data_wait
                    } else {
                        r.ts + dur.min(t.attempt_timeout + t.data_wait)
                    };
                    (Outcome::Answered, time, data)
                } else if resp(b'R') {
                    (Outcome::Rejected, answer_at, false)
                } else {
                    (Outcome::Unanswered, timeout_at, false)
                };
                (
                    proto::TCP,
                    ProbeKind::Syn,
                    outcome,
                    time,
                    r.resp_p,
                    r.orig_p,
                    data,
                )
            } else {
                // A stealth probe: the first packet's letter (none for NULL).
                let probe = match first {
                    None => ProbeKind::Null,
                    Some(c) if c.is_ascii_lowercase() => ProbeKind::Null,
                    Some(b'F') => ProbeKind::Fin,
                    Some(b'A') => ProbeKind::Ack,
                    // Midstream data, backscatter (SYN-ACK, RST), SYN+FIN.
                    Some(_) => return Ok(Rebuilt::NotProbe),
                };
                if resp_other {
                    // The target talks back normally: a flow that began
                    // before the capture.
                    return Ok(Rebuilt::NotProbe);
                }
                let (outcome, time) = if resp(b'R') {
                    (Outcome::Rejected, answer_at)
                } else {
                    (Outcome::Unanswered, timeout_at)
                };
                (proto::TCP, probe, outcome, time, r.resp_p, r.orig_p, false)
            }
        }
        "udp" => {
            // From a service port to an ephemeral one: a reply.
            if r.orig_p < 1024 && r.resp_p >= 1024 {
                return Ok(Rebuilt::NotProbe);
            }
            let (outcome, time) = if r.resp_pkts > 0 {
                (Outcome::Answered, answer_at)
            } else {
                (Outcome::Unanswered, timeout_at)
            };
            (
                proto::UDP,
                ProbeKind::Udp,
                outcome,
                time,
                r.resp_p,
                r.orig_p,
                false,
            )
        }
        "icmp" => {
            let v6 = !src.is_v4();
            let p = if v6 { proto::ICMP6 } else { proto::ICMP };
            let probe = match (v6, r.orig_p) {
                (false, 8) | (true, 128) => ProbeKind::IcmpEcho,
                (false, 13) => ProbeKind::IcmpTimestamp,
                (false, 17) => ProbeKind::IcmpAddrMask,
                _ => return Ok(Rebuilt::NotProbe),
            };
            let (outcome, time) = if r.resp_pkts > 0 {
                (Outcome::Answered, answer_at)
            } else {
                (Outcome::Unanswered, timeout_at)
            };
            // ICMP: the "port" of a probe is its type.
            (p, probe, outcome, time, r.orig_p, 0, false)
        }
        _ => return Ok(Rebuilt::UnknownTransport),
    };
    Ok(Rebuilt::Attempt(Attempt {
        time,
        src,
        dst,
        proto: proto_n,
        dport,
        sport,
        probe_ts: r.ts,
        probe,
        outcome,
        data,
        flow_id: r.flow_id,
        print: ProbePrint::default(),
        handshake: probe == ProbeKind::Syn && orig(b'A'),
        abortive: probe == ProbeKind::Syn && !orig(b'F') && !orig(b'D'),
    }))
}

/// A string column of a batch (Utf8 or LargeUtf8, as Spark may send).
enum Strs<'a> {
    Small(&'a arrow_array::StringArray),
    Large(&'a arrow_array::LargeStringArray),
}

impl Strs<'_> {
    fn of<'a>(a: &'a dyn Array, name: &str) -> Result<Strs<'a>> {
        match a.data_type() {
            DataType::Utf8 => Ok(Strs::Small(a.as_string::<i32>())),
            DataType::LargeUtf8 => Ok(Strs::Large(a.as_string::<i64>())),
            t => bail!("column {name}: expected text, found {t}"),
        }
    }
    fn get(&self, i: usize) -> &str {
        match self {
            Strs::Small(a) => a.value(i),
            Strs::Large(a) => a.value(i),
        }
    }
    fn is_null(&self, i: usize) -> bool {
        match self {
            Strs::Small(a) => a.is_null(i),
            Strs::Large(a) => a.is_null(i),
        }
    }
}

fn col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a dyn Array> {
    b.column_by_name(name)
        .map(|c| c.as_ref())
        .with_context(|| format!("no column {name} (not a scanwatch flows table?)"))
}

fn field<'a>(s: &'a StructArray, name: &str) -> Result<&'a dyn Array> {
    s.column_by_name(name)
        .map(|c| c.as_ref())
        .with_context(|| format!("no field id.{name}"))
}

/// An integer column of any width or sign (Spark has no unsigned types:
/// a UInt64 comes back as Int64 with the same bits), as i128 values; nulls
/// are an error.
fn ints(a: &dyn Array, name: &str) -> Result<Vec<i128>> {
    use arrow_array::types::*;
    anyhow::ensure!(a.null_count() == 0, "column {name}: nulls");
    fn v<T: arrow_array::ArrowPrimitiveType>(a: &dyn Array) -> Vec<i128>
    where
        T::Native: Into<i128>,
    {
        a.as_primitive::<T>()
            .values()
            .iter()
            .map(|x| (*x).into())
            .collect()
    }
    Ok(match a.data_type() {
        DataType::UInt8 => v::<UInt8Type>(a),
        DataType::UInt16 => v::<UInt16Type>(a),
        DataType::UInt32 => v::<UInt32Type>(a),
        DataType::UInt64 => v::<UInt64Type>(a),
        DataType::Int8 => v::<Int8Type>(a),
        DataType::Int16 => v::<Int16Type>(a),
        DataType::Int32 => v::<Int32Type>(a),
        // Bits kept: a flow id above 2^63 comes back from Spark negative.
        DataType::Int64 => a
            .as_primitive::<Int64Type>()
            .values()
            .iter()
            .map(|x| i128::from(*x as u64))
            .collect(),
        t => bail!("column {name}: expected integers, found {t}"),
    })
}

/// Rebuilds the attempts of a batch of flow rows. `sensor_of_row` gives the
/// sensor index of each row. Rows outside `[since, until)` are counted only.
fn batch_attempts(
    b: &RecordBatch,
    t: Timing,
    since: Micros,
    until: Micros,
    counts: &mut Counts,
    sensor_of_row: &mut dyn FnMut(usize) -> Result<u32>,
    out: &mut Vec<(Attempt, u32)>,
) -> Result<()> {
    let ts = col(b, "ts")?
        .as_primitive_opt::<TimestampMicrosecondType>()
        .context("column ts: expected timestamp[us]")?;
    let id = col(b, "id")?
        .as_struct_opt()
        .context("column id: expected a struct")?;
    let orig_h = Strs::of(field(id, "orig_h")?, "id.orig_h")?;
    let resp_h = Strs::of(field(id, "resp_h")?, "id.resp_h")?;
    let u16col = |a: &'_ dyn Array, n: &str| -> Result<Vec<u16>> {
        ints(a, n)?
            .into_iter()
            .map(|v| u16::try_from(v).map_err(|_| anyhow::anyhow!("column {n}: {v} is no port")))
            .collect()
    };
    let orig_p = u16col(field(id, "orig_p")?, "id.orig_p")?;
    let resp_p = u16col(field(id, "resp_p")?, "id.resp_p")?;
    let proto_c = Strs::of(col(b, "proto")?, "proto")?;
    let duration = col(b, "duration")?
        .as_primitive_opt::<Float64Type>()
        .context("column duration: expected float64")?;
    let resp_pkts = ints(col(b, "resp_pkts")?, "resp_pkts")?;
    let history = Strs::of(col(b, "history")?, "history")?;
    // Spark has no unsigned types: a flow id comes back as a signed 64-bit
    // integer with the same bits.
    let flow_id = ints(col(b, "flow_id")?, "flow_id")?;
    for i in 0..b.num_rows() {
        counts.rows += 1;
        if ts.is_null(i) || orig_h.is_null(i) || resp_h.is_null(i) || history.is_null(i) {
            bail!("row {i}: null in ts, id or history");
        }
        let row = Row {
            ts: ts.value(i),
            duration: duration.value(i),
            orig_h: orig_h.get(i),
            orig_p: orig_p[i],
            resp_h: resp_h.get(i),
            resp_p: resp_p[i],
            proto: proto_c.get(i),
            resp_pkts: u64::try_from(resp_pkts[i]).unwrap_or(0),
            history: history.get(i),
            flow_id: flow_id[i] as u64,
        };
        if row.ts < since || row.ts >= until {
            counts.outside += 1;
            continue;
        }
        match rebuild(&row, t)? {
            Rebuilt::Attempt(a) => {
                counts.attempts += 1;
                out.push((a, sensor_of_row(i)?));
            }
            Rebuilt::NotProbe => counts.not_probes += 1,
            Rebuilt::UnknownTransport => counts.unknown_transport += 1,
        }
    }
    Ok(())
}

/// The record of a campaign being found, keyed for the second read.
struct Found {
    detection: Detection,
    /// The probe technique family (`connect` is a SYN family).
    family: Technique,
}

fn family(t: Technique) -> Technique {
    if t == Technique::Connect {
        Technique::Syn
    } else {
        t
    }
}

/// Pass 1: the detector over the union, fed sorted chunks.
struct Pass1 {
    det: Detector,
    events: Vec<ScanEvent>,
    /// The last record of every detection id.
    records: BTreeMap<String, Detection>,
    last: Option<Attempt>,
    duplicates: u64,
}

impl Pass1 {
    fn new(cfg: DetectConfig) -> Result<Pass1> {
        Ok(Pass1 {
            det: Detector::new(cfg).map_err(|e| anyhow::anyhow!("bad detector settings: {e}"))?,
            events: Vec::new(),
            records: BTreeMap::new(),
            last: None,
            duplicates: 0,
        })
    }

    /// Attempts sorted by content, all earlier than any attempt to come;
    /// `low`: the time below which nothing more will come.
    fn feed(&mut self, chunk: &[(Attempt, u32)], low: Option<Micros>) {
        for (a, _) in chunk {
            if self.last.as_ref() == Some(a) {
                self.duplicates += 1;
                continue;
            }
            self.last = Some(*a);
            self.det.on_attempt(a, &mut self.events);
        }
        if let Some(low) = low {
            self.det.advance(low, &mut self.events);
        }
        self.take_events();
    }

    fn take_events(&mut self) {
        if self.events.is_empty() {
            return;
        }
        self.det.set_directions(&mut self.events);
        for e in self.events.drain(..) {
            self.records
                .insert(e.detection.detection_id.clone(), e.detection);
        }
    }

    fn finish(mut self) -> (Vec<Found>, scanwatch_detect::DetectStats, u64) {
        self.det.finish(&mut self.events);
        self.take_events();
        let found = self
            .records
            .into_values()
            .map(|d| Found {
                family: family(d.technique),
                detection: d,
            })
            .collect();
        (found, self.det.stats, self.duplicates)
    }
}

/// What one sensor saw of one campaign: contacts, first probe, last
/// outcome, open doors.
type SeenBy = (u64, Micros, Micros, BTreeSet<String>);

/// Attempts with their sensor's index.
type Chunk = [(Attempt, u32)];

/// Pass 2: what each sensor saw of each campaign.
struct Pass2<'a> {
    found: &'a [Found],
    /// (scanner, proto, family) → indices into `found`.
    by_key: HashMap<(Addr, u8, Technique), Vec<usize>>,
    /// (campaign index, sensor index) → facts.
    parts: BTreeMap<(usize, u32), SeenBy>,
    max_open: usize,
}

impl<'a> Pass2<'a> {
    fn new(found: &'a [Found], max_open: usize) -> Pass2<'a> {
        let mut by_key: HashMap<_, Vec<usize>> = HashMap::new();
        for (i, f) in found.iter().enumerate() {
            by_key
                .entry((f.detection.scanner, f.detection.proto, f.family))
                .or_default()
                .push(i);
        }
        Pass2 {
            found,
            by_key,
            parts: BTreeMap::new(),
            max_open,
        }
    }

    fn feed(&mut self, chunk: &[(Attempt, u32)]) {
        for (a, sensor) in chunk {
            let key = (a.src, a.proto, Technique::of_probe(a.probe, a.proto));
            let Some(idx) = self.by_key.get(&key) else {
                continue;
            };
            for &i in idx {
                let d = &self.found[i].detection;
                // A contact spans its probe to its outcome, as the
                // detector's records count them.
                if a.time < d.ts_first || a.probe_ts > d.ts_last {
                    continue;
                }
                let e = self.parts.entry((i, *sensor)).or_insert((
                    0,
                    Micros::MAX,
                    Micros::MIN,
                    BTreeSet::new(),
                ));
                e.0 += 1;
                e.1 = e.1.min(a.probe_ts);
                e.2 = e.2.max(a.time);
                if a.outcome == Outcome::Answered
                    && !a.probe.is_stealth()
                    && e.3.len() < self.max_open
                {
                    let portless = a.proto == proto::ICMP || a.proto == proto::ICMP6;
                    e.3.insert(endpoint_text(a.dst, (!portless).then_some(a.dport)));
                }
            }
        }
    }
}

/// Parses a --since/--until time (UTC) into µs since the epoch.
pub fn parse_time(s: &str) -> Result<Micros> {
    let bad = || anyhow::anyhow!("{s:?}: expected YYYY-MM-DD[THH[:MM[:SS]]][Z] (UTC)");
    let s2 = s.trim_end_matches('Z');
    let (date, time) = match s2.split_once(['T', ' ']) {
        Some((d, t)) => (d, t),
        None => (s2, ""),
    };
    let day = scanwatch_sink::retention::parse_date_dir(&format!("date={date}")).ok_or_else(bad)?;
    let mut secs = 0i64;
    if !time.is_empty() {
        let parts: Vec<&str> = time.split(':').collect();
        if parts.len() > 3 {
            return Err(bad());
        }
        for (i, (p, max)) in parts.iter().zip([23i64, 59, 59]).enumerate() {
            let v: i64 = p.parse().map_err(|_| bad())?;
            if !(0..=max).contains(&v) {
                return Err(bad());
            }
            secs += v * [3600, 60, 1][i];
        }
    }
    Ok((day * 86_400 + secs) * 1_000_000)
}

/// One table's part file, with its sensor and the time bucket it holds.
#[derive(Debug, Clone)]
struct Part {
    sensor: u32,
    start: Micros,
    end: Micros,
    path: PathBuf,
}

/// The sensors' table roots of one `-w` folder: (sensor name, root holding
/// `date=` folders).
fn table_roots(dir: &Path, table: &str, default_name: &str) -> Result<Vec<(String, PathBuf)>> {
    let root = dir.join(table);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut sensors = Vec::new();
    let mut dated = false;
    for e in fs::read_dir(&root).with_context(|| format!("{}", root.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        if let Some(s) = name.strip_prefix("sensor=") {
            sensors.push((s.to_string(), e.path()));
        } else if name.starts_with("date=") {
            dated = true;
        }
    }
    if dated {
        sensors.push((default_name.to_string(), root));
    }
    sensors.sort();
    Ok(sensors)
}

/// Every part file under a sensor root, with its time bucket; `skipped`
/// counts entries that are no part of the layout (reported).
fn parts_of(root: &Path, sensor: u32, skipped: &mut Vec<PathBuf>) -> Result<Vec<Part>> {
    let mut out = Vec::new();
    let mut dates: Vec<_> = fs::read_dir(root)?.collect::<std::io::Result<Vec<_>>>()?;
    dates.sort_by_key(|e| e.file_name());
    for d in dates {
        let dname = d.file_name().to_string_lossy().to_string();
        if dname.starts_with('.') || dname.starts_with("sensor=") {
            continue;
        }
        let Some(day) = scanwatch_sink::retention::parse_date_dir(&dname) else {
            skipped.push(d.path());
            continue;
        };
        let day_us = day * 86_400_000_000;
        let mut hours: Vec<_> = fs::read_dir(d.path())?.collect::<std::io::Result<Vec<_>>>()?;
        hours.sort_by_key(|e| e.file_name());
        for h in hours {
            let hname = h.file_name().to_string_lossy().to_string();
            if hname.starts_with('.') {
                continue;
            }
            let (start, end) = match hname.strip_prefix("hour=") {
                Some("all") => (day_us, day_us + 86_400_000_000),
                Some(hh) => match hh.parse::<i64>() {
                    Ok(n) if (0..24).contains(&n) => {
                        (day_us + n * 3_600_000_000, day_us + (n + 1) * 3_600_000_000)
                    }
                    _ => {
                        skipped.push(h.path());
                        continue;
                    }
                },
                None => {
                    skipped.push(h.path());
                    continue;
                }
            };
            let mut files: Vec<_> = fs::read_dir(h.path())?.collect::<std::io::Result<Vec<_>>>()?;
            files.sort_by_key(|e| e.file_name());
            for f in files {
                let fname = f.file_name().to_string_lossy().to_string();
                if fname.starts_with('.') {
                    continue;
                }
                if fname.ends_with(".arrow") && f.path().with_extension("parquet").is_file() {
                    // `scanwatch convert DIR DIR` puts the Parquet copy
                    // beside the Arrow file: the rows once, not twice.
                    skipped.push(f.path());
                } else if fname.ends_with(".arrow") || fname.ends_with(".parquet") {
                    out.push(Part {
                        sensor,
                        start,
                        end,
                        path: f.path(),
                    });
                } else if !fname.ends_with(".tmp") {
                    skipped.push(f.path());
                }
            }
        }
    }
    Ok(out)
}

/// Every batch of an Arrow IPC file or Parquet file, one at a time.
fn read_batches(path: &Path) -> Result<Box<dyn Iterator<Item = Result<RecordBatch>>>> {
    let f = File::open(path).with_context(|| format!("{}", path.display()))?;
    let is_parquet = path.extension().is_some_and(|e| e == "parquet");
    let shown = path.display().to_string();
    Ok(if is_parquet {
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .and_then(|b| b.build())
            .with_context(|| shown.clone())?;
        Box::new(r.map(move |b| b.with_context(|| shown.clone())))
    } else {
        let r = arrow_ipc::reader::FileReader::try_new(std::io::BufReader::new(f), None)
            .with_context(|| shown.clone())?;
        Box::new(r.map(move |b| b.with_context(|| shown.clone())))
    })
}

/// The name a DIR's tables take without a `sensor=` level.
fn default_sensor_name(dir: &Path, sensor_of: &[(PathBuf, String)]) -> String {
    let canon = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let c = canon(dir);
    for (d, n) in sensor_of {
        if canon(d) == c {
            return n.clone();
        }
    }
    c.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "unnamed".to_string())
}

/// (sensor, scanner) pairs of the sensors' own detections tables (any kind
/// but distributed, whose scanner is no single source).
fn flagged(
    dirs: &[PathBuf],
    sensor_of: &[(PathBuf, String)],
    skipped: &mut Vec<PathBuf>,
) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut by_scanner: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for dir in dirs {
        let name = default_sensor_name(dir, sensor_of);
        if !dir.join("detections").is_dir() {
            eprintln!(
                "scanwatch correlate: {}: no detections/ folder: no scanner counts as flagged by its sensors",
                dir.display()
            );
        }
        for (sensor, root) in table_roots(dir, "detections", &name)? {
            for p in parts_of(&root, 0, skipped)? {
                for b in read_batches(&p.path)? {
                    let b = b?;
                    let scanner = Strs::of(col(&b, "scanner")?, "scanner")?;
                    let kind = Strs::of(col(&b, "kind")?, "kind")?;
                    for i in 0..b.num_rows() {
                        if kind.get(i) != "distributed" {
                            by_scanner
                                .entry(scanner.get(i).to_string())
                                .or_default()
                                .insert(sensor.clone());
                        }
                    }
                }
            }
        }
    }
    Ok(by_scanner)
}

/// Feeds the attempts of `parts` (all sensors) bucket by bucket, in
/// attempt order, to `f(chunk, low)`.
fn each_sorted_chunk(
    parts: &[Part],
    t: Timing,
    since: Micros,
    until: Micros,
    counts: &mut Counts,
    f: &mut dyn FnMut(&Chunk, Option<Micros>),
) -> Result<()> {
    let mut order: Vec<&Part> = parts.iter().collect();
    order.sort_by(|a, b| (a.start, &a.path).cmp(&(b.start, &b.path)));
    let mut pending: Vec<(Attempt, u32)> = Vec::new();
    let mut released = Micros::MIN;
    let mut i = 0;
    while i < order.len() {
        let start = order[i].start;
        // Every part of this bucket start, from all sensors.
        while i < order.len() && order[i].start == start {
            let p = order[i];
            i += 1;
            if p.end <= since || p.start >= until {
                continue;
            }
            counts.files += 1;
            for b in read_batches(&p.path)? {
                let b = b?;
                let s = p.sensor;
                batch_attempts(&b, t, since, until, counts, &mut |_| Ok(s), &mut pending)
                    .with_context(|| format!("{}", p.path.display()))?;
            }
        }
        // Nothing still unread can hold an attempt before the next bucket.
        let low = order.get(i).map(|p| p.start).unwrap_or(Micros::MAX);
        pending.sort_unstable();
        // A row filed in a later hour than its `ts` (not written by
        // scanwatch) comes after its time was released: counted, not fed.
        let late = pending.partition_point(|(a, _)| a.time < released);
        counts.late += late as u64;
        pending.drain(..late);
        let cut = pending.partition_point(|(a, _)| a.time < low);
        f(&pending[..cut], (low != Micros::MAX).then_some(low));
        pending.drain(..cut);
        released = released.max(low);
    }
    pending.sort_unstable();
    f(&pending, None);
    Ok(())
}

/// The rows of the campaigns table, from what both passes found.
fn rows_of(
    found: &[Found],
    p2: &Pass2<'_>,
    sensors: &[String],
    flagged: Option<&BTreeMap<String, BTreeSet<String>>>,
) -> Vec<CampaignRow> {
    let mut rows: Vec<CampaignRow> = found
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut per_sensor: Vec<SensorPart> = p2
                .parts
                .range((i, 0)..=(i, u32::MAX))
                .map(|(&(_, s), (n, first, last, open))| SensorPart {
                    sensor: sensors[s as usize].clone(),
                    probes: *n,
                    first_seen: *first,
                    last_seen: *last,
                    open: open.iter().cloned().collect(),
                })
                .collect();
            per_sensor.sort_by(|a, b| a.sensor.cmp(&b.sensor));
            let scanner = f.detection.scanner.to_string();
            let flagged_by: Vec<String> = flagged
                .and_then(|m| m.get(&scanner))
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            CampaignRow {
                below_threshold_everywhere: flagged.map(|_| flagged_by.is_empty()),
                flagged_by,
                per_sensor,
                detection: f.detection.clone(),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.detection.ts_first, &a.detection.detection_id)
            .cmp(&(b.detection.ts_first, &b.detection.detection_id))
    });
    rows
}

fn settings(a: &CorrelateArgs) -> Result<(DetectConfig, Timing)> {
    let file = config::load(a.config.as_deref())?;
    let detect = file.detect.clone();
    detect
        .validate()
        .map_err(|e| config::locate(a.config.as_deref(), e.into()))?;
    let flow = file
        .flow
        .to_config()
        .map_err(|e| config::locate(a.config.as_deref(), e))?;
    Ok((
        detect,
        Timing {
            attempt_timeout: flow.attempt_timeout,
            data_wait: flow.data_wait,
        },
    ))
}

fn window(a: &CorrelateArgs) -> Result<(Micros, Micros)> {
    let since = a
        .since
        .as_deref()
        .map(parse_time)
        .transpose()?
        .unwrap_or(Micros::MIN);
    let until = a
        .until
        .as_deref()
        .map(parse_time)
        .transpose()?
        .unwrap_or(Micros::MAX);
    anyhow::ensure!(since < until, "--since must be before --until");
    Ok((since, until))
}

fn sensor_of_args(a: &CorrelateArgs) -> Result<Vec<(PathBuf, String)>> {
    a.sensor_of
        .iter()
        .map(|s| {
            let (d, n) = s
                .rsplit_once('=')
                .with_context(|| format!("--sensor-of {s:?}: expected DIR=NAME"))?;
            anyhow::ensure!(
                config::sensor_name_ok(n),
                "--sensor-of {s:?}: bad sensor name"
            );
            Ok((PathBuf::from(d), n.to_string()))
        })
        .collect()
}

fn summary(
    from: &str,
    c: &Counts,
    dups: u64,
    stats: &scanwatch_detect::DetectStats,
    rows: &[CampaignRow],
) -> String {
    let below = rows
        .iter()
        .filter(|r| r.below_threshold_everywhere == Some(true))
        .count();
    format!(
        "scanwatch correlate: {} rows from {from}: {} attempts ({} seen by two sensors, fed once), \
{} not probes, {} unknown_transport not rebuilt, {} outside --since/--until, \
{} late (in a later hour's partition than their time, not fed); \
{} campaigns ({} below every sensor's threshold); detector: {} sources, {} evicted, {} contacts evicted",
        c.rows,
        c.attempts,
        dups,
        c.not_probes,
        c.unknown_transport,
        c.outside,
        c.late,
        rows.len(),
        below,
        stats.sources,
        stats.sources_evicted,
        stats.contacts_evicted,
    )
}

pub fn main(a: CorrelateArgs) -> Result<ExitCode> {
    let (cfg, timing) = settings(&a)?;
    let (since, until) = window(&a)?;
    let sensor_of = sensor_of_args(&a)?;
    let max_open = cfg.max_scan_targets;
    if a.stdin {
        anyhow::ensure!(
            a.dirs.is_empty(),
            "--stdin reads no DIR (the sensors' folders go after --detections)"
        );
        return stdin_mode(&a, cfg, timing, since, until, &sensor_of);
    }
    let mut sensors: Vec<String> = Vec::new();
    let mut parts = Vec::new();
    let mut skipped = Vec::new();
    for dir in &a.dirs {
        anyhow::ensure!(
            dir.join("flows").is_dir(),
            "{}: no flows/ folder (give the -w folder of scanwatch run; written with --no-flows?)",
            dir.display()
        );
        let name = default_sensor_name(dir, &sensor_of);
        for (sensor, root) in table_roots(dir, "flows", &name)? {
            let idx = match sensors.iter().position(|s| *s == sensor) {
                Some(i) => i,
                None => {
                    sensors.push(sensor);
                    sensors.len() - 1
                }
            } as u32;
            parts.extend(parts_of(&root, idx, &mut skipped)?);
        }
    }
    anyhow::ensure!(!parts.is_empty(), "no flow files under the given folders");
    let mut counts = Counts::default();
    let mut p1 = Pass1::new(cfg.clone())?;
    each_sorted_chunk(&parts, timing, since, until, &mut counts, &mut |c, low| {
        p1.feed(c, low)
    })?;
    let (found, stats, dups) = p1.finish();
    let mut p2 = Pass2::new(&found, max_open);
    if !found.is_empty() {
        let mut again = Counts::default();
        each_sorted_chunk(&parts, timing, since, until, &mut again, &mut |c, _| {
            p2.feed(c)
        })?;
    }
    let flagged = flagged(&a.dirs, &sensor_of, &mut skipped)?;
    let rows = rows_of(&found, &p2, &sensors, Some(&flagged));
    for s in &skipped {
        eprintln!(
            "scanwatch correlate: {}: skipped (not part of the table layout, or an Arrow part with its Parquet copy beside it)",
            s.display()
        );
    }
    let batch = campaign_batch(&rows).context("building the campaigns table")?;
    let dir = a.out.join("campaigns");
    fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    let path = dir.join(format!("part-00000.{}", a.format));
    write_table(&path, &batch, &a.format)?;
    eprintln!(
        "{} -> {}",
        summary(
            &format!("{} files", counts.files),
            &counts,
            dups,
            &stats,
            &rows
        ),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes one batch as an Arrow IPC or Parquet file, under a `.tmp` name
/// renamed once complete.
fn write_table(path: &Path, batch: &RecordBatch, format: &str) -> Result<()> {
    let tmp = path.with_extension(format!("{format}.tmp"));
    let f = File::create(&tmp).with_context(|| format!("{}", tmp.display()))?;
    if format == "parquet" {
        let props = scanwatch_sink::parquet_properties(&batch.schema());
        let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), Some(props))?;
        w.write(batch)?;
        w.close()?;
    } else {
        let mut w = arrow_ipc::writer::FileWriter::try_new(f, &batch.schema())?;
        w.write(batch)?;
        w.finish()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("{}", path.display()))?;
    Ok(())
}

fn stdin_mode(
    a: &CorrelateArgs,
    cfg: DetectConfig,
    timing: Timing,
    since: Micros,
    until: Micros,
    sensor_of: &[(PathBuf, String)],
) -> Result<ExitCode> {
    let max_open = cfg.max_scan_targets;
    // Read a batch at a time: only the attempts are held.
    let mut input = std::io::BufReader::with_capacity(1 << 20, std::io::stdin().lock());
    let empty = input.fill_buf()?.is_empty();
    let mut counts = Counts::default();
    let mut sensors: Vec<String> = Vec::new();
    let mut attempts: Vec<(Attempt, u32)> = Vec::new();
    if !empty {
        let reader = arrow_ipc::reader::StreamReader::try_new(input, None)
            .context("stdin: not an Arrow IPC stream")?;
        for b in reader {
            let b = b.context("stdin")?;
            let sensor_col = Strs::of(col(&b, "sensor")?, "sensor")?;
            let mut sensor_of_row = |i: usize| -> Result<u32> {
                anyhow::ensure!(!sensor_col.is_null(i), "row {i}: null sensor");
                let s = sensor_col.get(i);
                Ok(match sensors.iter().position(|x| x == s) {
                    Some(k) => k as u32,
                    None => {
                        sensors.push(s.to_string());
                        (sensors.len() - 1) as u32
                    }
                })
            };
            batch_attempts(
                &b,
                timing,
                since,
                until,
                &mut counts,
                &mut sensor_of_row,
                &mut attempts,
            )?;
        }
    }
    attempts.sort_unstable();
    let mut p1 = Pass1::new(cfg)?;
    p1.feed(&attempts, None);
    let (found, stats, dups) = p1.finish();
    let mut p2 = Pass2::new(&found, max_open);
    p2.feed(&attempts);
    let mut skipped = Vec::new();
    let flagged = if a.detections.is_empty() {
        None
    } else {
        Some(flagged(&a.detections, sensor_of, &mut skipped)?)
    };
    let rows = rows_of(&found, &p2, &sensors, flagged.as_ref());
    let batch = campaign_batch(&rows).context("building the campaigns table")?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    {
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &batch.schema())?;
        w.write(&batch)?;
        w.finish()?;
    }
    out.flush()?;
    eprintln!("{}", summary("stdin", &counts, dups, &stats, &rows));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(proto: &'a str, history: &'a str, resp_pkts: u64, dur: f64) -> Row<'a> {
        Row {
            ts: 1_000_000,
            duration: dur,
            orig_h: "198.51.100.7",
            orig_p: 40000,
            resp_h: "172.21.7.3",
            resp_p: 22,
            proto,
            resp_pkts,
            history,
            flow_id: 9,
        }
    }

    const T: Timing = Timing {
        attempt_timeout: 5_000_000,
        data_wait: 5_000_000,
    };

    fn att(r: Row<'_>) -> Option<Attempt> {
        match rebuild(&r, T).unwrap() {
            Rebuilt::Attempt(a) => Some(a),
            _ => None,
        }
    }

    #[test]
    fn tcp_rows_become_the_attempts_the_flow_table_makes() {
        let a = att(row("tcp", "S", 0, 0.0)).unwrap();
        assert_eq!(
            (a.probe, a.outcome, a.time),
            (ProbeKind::Syn, Outcome::Unanswered, 6_000_000)
        );
        let a = att(row("tcp", "Sr", 1, 0.001)).unwrap();
        assert_eq!((a.outcome, a.time), (Outcome::Rejected, 1_001_000));
        // Open door, no RST from the scanner: answered at the end of the wait.
        let a = att(row("tcp", "Sh", 1, 0.001)).unwrap();
        assert_eq!(
            (a.outcome, a.time, a.data),
            (Outcome::Answered, 6_001_000, false)
        );
        assert!(a.abortive && !a.handshake);
        let a = att(row("tcp", "ShADadFf", 5, 1.0)).unwrap();
        assert!(a.data && a.is_success() && a.handshake && !a.abortive);
        assert_eq!(att(row("tcp", "F", 0, 0.0)).unwrap().probe, ProbeKind::Fin);
        assert_eq!(att(row("tcp", "r", 1, 0.0)).unwrap().probe, ProbeKind::Null);
        assert_eq!(
            att(row("tcp", "Ar", 1, 0.0)).unwrap().outcome,
            Outcome::Rejected
        );
        // Backscatter and midstream flows are no probes.
        assert!(att(row("tcp", "H", 0, 0.0)).is_none());
        assert!(att(row("tcp", "R", 0, 0.0)).is_none());
        assert!(att(row("tcp", "Dd", 2, 0.0)).is_none());
        assert!(att(row("tcp", "Ad", 2, 0.0)).is_none());
    }

    #[test]
    fn udp_icmp_and_unknown_rows() {
        let a = att(row("udp", "D", 0, 0.0)).unwrap();
        assert_eq!((a.probe, a.outcome), (ProbeKind::Udp, Outcome::Unanswered));
        let mut r = row("udp", "Dd", 1, 0.01);
        r.orig_p = 53;
        r.resp_p = 40000;
        assert!(att(r).is_none());
        let mut r = row("icmp", "", 1, 0.01);
        r.orig_p = 8;
        r.resp_p = 0;
        let a = att(r).unwrap();
        assert_eq!(
            (a.probe, a.dport, a.outcome),
            (ProbeKind::IcmpEcho, 8, Outcome::Answered)
        );
        let mut r = row("icmp", "", 0, 0.0);
        r.orig_p = 3;
        assert!(att(r).is_none());
        assert!(matches!(
            rebuild(&row("unknown_transport", "", 0, 0.0), T).unwrap(),
            Rebuilt::UnknownTransport
        ));
        assert!(rebuild(
            &Row {
                orig_h: "x",
                ..row("tcp", "S", 0, 0.0)
            },
            T
        )
        .is_err());
    }

    #[test]
    fn an_attempt_held_is_80_bytes() {
        // The memory bound the docs and README give per flow row held.
        assert_eq!(std::mem::size_of::<(Attempt, u32)>(), 80);
    }

    #[test]
    fn times_parse_as_utc() {
        assert_eq!(parse_time("1970-01-02").unwrap(), 86_400_000_000);
        assert_eq!(parse_time("1970-01-01T01:02:03Z").unwrap(), 3_723_000_000);
        assert!(parse_time("1970-13-01").is_err());
        assert!(parse_time("1970-01-01T25").is_err());
    }
}
