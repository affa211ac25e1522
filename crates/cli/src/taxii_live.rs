//! `scanwatch run --taxii`: each new scanner's indicator and sighting go to
//! a TAXII 2.1 collection within seconds of its start alert.
//!
//! The output thread copies every scan event into an unbounded channel; one
//! thread here (`sw-taxii`) turns them into STIX objects, appends them to
//! the durable spool (fsync'd), and sends what the spool holds. Nothing on
//! the capture path ever waits for the server. When the server is away the
//! objects stay in the spool and are sent again with a capped backoff (1 s
//! doubling to 30 s); at the end of the run the thread tries for up to
//! [`DRAIN`] to empty the spool, and what is left is sent first by the next
//! run with the same spool. A scan that grows (more probes, ports, open
//! doors, a later end) gives a new version of its sighting and indicator (a
//! later `modified`), at most every [`UPDATE_EVERY`] per scanner and at its
//! end; a start is sent at once.

use crate::taxii::{Client, PushError, Spool, TaxiiArgs, Verdict};
use anyhow::Result;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use scanwatch_detect::{Phase, ScanEvent};
use scanwatch_model::{Direction, ScanKind};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Least wall time between two versions of one scanner's objects (its
/// start and its end are sent at once).
pub const UPDATE_EVERY: Duration = Duration::from_secs(10);
/// How long the end of a run waits for the server to take what is queued.
pub const DRAIN: Duration = Duration::from_secs(10);
/// Backoff between tries while the server is away.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Objects per request (the client splits further by the server's limit).
const BATCH: usize = 500;
/// Scanners whose state is kept for later versions; beyond, the one seen
/// longest ago is forgotten (counted): a later scan by it starts counting
/// afresh in a new version of the same sighting.
const MAX_SCANNERS: usize = 100_000;
const MAX_PORTS_LISTED: usize = 1000;

/// What the push thread did, for stats.jsonl and the end of the run.
#[derive(Default)]
pub struct TaxiiStats {
    /// Objects the server acknowledged (added, or already held).
    pub pushed: AtomicU64,
    /// Objects in the spool waiting for the server.
    pub queued: AtomicU64,
    /// Objects the server refused (kept in SPOOL/refused.jsonl).
    pub failed: AtomicU64,
    /// Sends that got no answer or an error answer (each retried).
    pub retries: AtomicU64,
    /// Scanners forgotten at [`MAX_SCANNERS`].
    pub scanners_forgotten: AtomicU64,
    /// Spool lines that could not be read at start (a cut last line).
    pub spool_unreadable: AtomicU64,
}

impl TaxiiStats {
    pub fn json(&self) -> Value {
        json!({
            "pushed": self.pushed.load(Relaxed),
            "queued": self.queued.load(Relaxed),
            "failed": self.failed.load(Relaxed),
            "retries": self.retries.load(Relaxed),
            "scanners_forgotten": self.scanners_forgotten.load(Relaxed),
        })
    }
}

pub struct Pusher {
    handle: JoinHandle<()>,
    pub stats: Arc<TaxiiStats>,
    spool_dir: std::path::PathBuf,
    url: String,
}

/// Where the objects come from: the organisation and this sensor.
#[derive(Clone)]
pub struct Origin {
    pub identity: String,
    pub sensor: String,
}

/// Opens the spool (failing early if it is unusable) and starts the thread.
pub fn start(
    args: &TaxiiArgs,
    spool_dir: &Path,
    origin: Origin,
) -> Result<(Sender<ScanEvent>, Pusher)> {
    let client = Client::new(args)?;
    let spool = Spool::open(spool_dir)?;
    let stats = Arc::new(TaxiiStats::default());
    stats.queued.store(spool.len() as u64, Relaxed);
    stats.spool_unreadable.store(spool.unreadable, Relaxed);
    if spool.unreadable > 0 {
        eprintln!(
            "scanwatch: warning: TAXII spool {}: {} unreadable line(s) left out (a write cut by a crash)",
            spool_dir.display(),
            spool.unreadable
        );
    }
    if spool.len() > 0 {
        eprintln!(
            "scanwatch: TAXII: {} object(s) left in the spool by an earlier run; sending them first",
            spool.len()
        );
    }
    let url = client.describe();
    let (tx, rx) = crossbeam_channel::unbounded();
    let st = stats.clone();
    let handle = std::thread::Builder::new()
        .name("sw-taxii".into())
        .spawn(move || {
            let mut w = Worker {
                client,
                spool,
                stats: st,
                origin,
                scanners: HashMap::new(),
                identities_sent: false,
                backoff: BACKOFF_MIN,
                next_try: Instant::now(),
                told_down: None,
            };
            w.run(rx)
        })?;
    Ok((
        tx,
        Pusher {
            handle,
            stats,
            spool_dir: spool_dir.to_path_buf(),
            url,
        },
    ))
}

impl Pusher {
    /// Waits for the thread (it ends once the channel's senders are gone
    /// and it has tried to empty the spool), then says what happened.
    pub fn finish(self, quiet: bool) -> Arc<TaxiiStats> {
        let _ = self.handle.join();
        let s = &self.stats;
        let (p, q, f) = (
            s.pushed.load(Relaxed),
            s.queued.load(Relaxed),
            s.failed.load(Relaxed),
        );
        if !quiet || q > 0 || f > 0 {
            eprintln!(
                "scanwatch: TAXII: {p} object(s) pushed to {}, {q} still queued{}, {f} refused{}",
                self.url,
                if q > 0 {
                    format!(
                        " in {} (sent first by the next run with this spool)",
                        self.spool_dir.display()
                    )
                } else {
                    String::new()
                },
                if f > 0 {
                    format!(" (see {})", self.spool_dir.join("refused.jsonl").display())
                } else {
                    String::new()
                }
            );
        }
        self.stats
    }
}

/// What is known of one scanner: each of its scan records as last told.
struct Scanner {
    created_us: i64,
    scans: BTreeMap<String, scanwatch_model::Detection>,
    /// Latest packet time told, for `modified`.
    latest_us: i64,
    /// Last version's `modified` (ms), to keep versions strictly rising.
    last_ms: i64,
    last_sent: Option<Instant>,
    dirty: bool,
}

struct Worker {
    client: Client,
    spool: Spool,
    stats: Arc<TaxiiStats>,
    origin: Origin,
    scanners: HashMap<String, Scanner>,
    identities_sent: bool,
    backoff: Duration,
    next_try: Instant,
    /// When we last said the server is away (said again once a minute).
    told_down: Option<Instant>,
}

fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "ipv6-icmp".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

impl Worker {
    fn run(&mut self, rx: Receiver<ScanEvent>) {
        let mut open = true;
        while open {
            let now = Instant::now();
            let wait = if self.spool.len() > 0 {
                self.next_try.saturating_duration_since(now)
            } else {
                Duration::from_secs(1)
            }
            .min(Duration::from_secs(1));
            match rx.recv_timeout(wait) {
                Ok(e) => {
                    self.event(e);
                    // Take what else waits, bounded, so a burst is one send.
                    for _ in 0..10_000 {
                        match rx.try_recv() {
                            Ok(e) => self.event(e),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
            self.queue_due(!open);
            if Instant::now() >= self.next_try {
                self.send_some();
            }
        }
        // The run is over: try to empty the spool for a bounded time.
        let deadline = Instant::now() + DRAIN;
        while self.spool.len() > 0 && Instant::now() < deadline {
            if Instant::now() >= self.next_try {
                if !self.send_some() {
                    // Do not wait out a long backoff at the end.
                    self.next_try = Instant::now() + BACKOFF_MIN;
                }
            } else {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        self.stats.queued.store(self.spool.len() as u64, Relaxed);
    }

    fn event(&mut self, e: ScanEvent) {
        let d = &e.detection;
        // Scans by our own hosts are ours to handle, not to share; a
        // distributed record is about a target, not a scanner.
        if matches!(d.direction, Direction::Outbound | Direction::Internal)
            || d.kind == ScanKind::Distributed
        {
            return;
        }
        let key = d.scanner.to_string();
        if !self.scanners.contains_key(&key) && self.scanners.len() >= MAX_SCANNERS {
            if let Some(old) = self
                .scanners
                .iter()
                .filter(|(_, s)| !s.dirty)
                .min_by_key(|(_, s)| s.latest_us)
                .map(|(k, _)| k.clone())
            {
                self.scanners.remove(&old);
                self.stats.scanners_forgotten.fetch_add(1, Relaxed);
            }
        }
        let s = self.scanners.entry(key).or_insert_with(|| Scanner {
            created_us: d.ts_detected.min(e.time),
            scans: BTreeMap::new(),
            latest_us: e.time,
            last_ms: i64::MIN,
            last_sent: None,
            dirty: false,
        });
        s.scans.insert(d.detection_id.clone(), d.clone());
        s.latest_us = s.latest_us.max(e.time).max(d.ts_last);
        s.dirty = true;
        if matches!(e.phase, Phase::Start | Phase::End) {
            // Sent at once.
            s.last_sent = None;
        }
    }

    /// Builds and spools the versions that are due (all of them at the end).
    fn queue_due(&mut self, all: bool) {
        let now = Instant::now();
        let mut objects = Vec::new();
        if !self.identities_sent && self.scanners.values().any(|s| s.dirty) {
            objects.extend(self.identities());
            self.identities_sent = true;
        }
        let due: Vec<String> = self
            .scanners
            .iter()
            .filter(|(_, s)| {
                s.dirty && (all || s.last_sent.is_none_or(|t| now - t >= UPDATE_EVERY))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            if let Some(o) = self.objects_of(&k) {
                objects.extend(o);
            }
            if let Some(s) = self.scanners.get_mut(&k) {
                s.dirty = false;
                s.last_sent = Some(now);
            }
        }
        if objects.is_empty() {
            return;
        }
        match self.spool.queue(objects) {
            Ok(_) => {
                self.stats.queued.store(self.spool.len() as u64, Relaxed);
                // Something new: send it now rather than after a backoff
                // meant for a server that is away? Only if it was not away.
                if self.told_down.is_none() {
                    self.next_try = Instant::now();
                }
            }
            Err(e) => {
                eprintln!("scanwatch: error: TAXII spool: {e:#}; these objects are not queued");
                self.stats.failed.fetch_add(1, Relaxed);
            }
        }
    }

    fn org_id(&self) -> String {
        scanwatch_model::ids::stix_id("identity", &self.origin.identity)
    }

    fn sensor_id(&self) -> String {
        scanwatch_model::ids::stix_id(
            "identity",
            &format!("{}/{}", self.origin.identity, self.origin.sensor),
        )
    }

    /// The organisation and the sensor: same content every run, so a
    /// fixed version.
    fn identities(&self) -> Vec<Value> {
        let t = "2016-01-01T00:00:00.000Z";
        vec![
            json!({
                "type": "identity", "spec_version": "2.1", "id": self.org_id(),
                "created": t, "modified": t,
                "name": self.origin.identity, "identity_class": "organization",
            }),
            json!({
                "type": "identity", "spec_version": "2.1", "id": self.sensor_id(),
                "created": t, "modified": t, "created_by_ref": self.org_id(),
                "name": format!("sensor {}", self.origin.sensor), "identity_class": "system",
            }),
        ]
    }

    /// The scanner's indicator and this sensor's sighting of it, as they
    /// stand now (a new version).
    fn objects_of(&mut self, key: &str) -> Option<Vec<Value>> {
        let org = self.org_id();
        let sensor = self.sensor_id();
        let sensor_name = self.origin.sensor.clone();
        let s = self.scanners.get_mut(key)?;
        // Versions: packet time, strictly rising per scanner.
        let ms = (s.latest_us / 1000).max(s.last_ms.saturating_add(1));
        s.last_ms = ms;
        let created = crate::share::stix_time(s.created_us);
        let modified = crate::share::stix_time(ms.saturating_mul(1000).max(s.created_us));
        let first = s.scans.values().map(|d| d.ts_first).min().unwrap_or(0);
        let last = s.scans.values().map(|d| d.ts_last).max().unwrap_or(0);
        let probes: u64 = s.scans.values().map(|d| d.probes).sum();
        let answered: u64 = s.scans.values().map(|d| d.answered).sum();
        let kinds: BTreeSet<String> = s
            .scans
            .values()
            .map(|d| format!("{} {}", d.kind.name(), proto_name(d.proto)))
            .collect();
        let kinds: Vec<String> = kinds.into_iter().collect();
        let ports: BTreeSet<u16> = s
            .scans
            .values()
            .flat_map(|d| d.ports.iter().copied())
            .collect();
        let ports: Vec<u16> = ports.into_iter().take(MAX_PORTS_LISTED).collect();
        let pattern = if key.contains(':') {
            format!("[network-traffic:src_ref.type = 'ipv6-addr' AND network-traffic:src_ref.value = '{key}']")
        } else {
            format!("[network-traffic:src_ref.type = 'ipv4-addr' AND network-traffic:src_ref.value = '{key}']")
        };
        let ind = scanwatch_model::ids::stix_id("indicator", key);
        let indicator = json!({
            "type": "indicator", "spec_version": "2.1", "id": ind,
            "created": created, "modified": modified, "created_by_ref": org,
            "name": format!("Port scanner {key}"),
            "description": format!(
                "{key} scanned: {} ({probes} probes, {answered} answered) between {} and {}.",
                kinds.join(", "), crate::share::stix_time(first), crate::share::stix_time(last)
            ),
            "indicator_types": ["anomalous-activity"],
            "pattern": pattern, "pattern_type": "stix",
            "valid_from": crate::share::stix_time(first),
            "x_scanwatch_scan_kinds": kinds,
            "x_scanwatch_ports": ports,
        });
        let sighting = json!({
            "type": "sighting", "spec_version": "2.1",
            "id": scanwatch_model::ids::stix_id("sighting", &format!("{key}@{sensor_name}")),
            "created": created, "modified": modified, "created_by_ref": org,
            "sighting_of_ref": ind,
            "where_sighted_refs": [sensor],
            "first_seen": crate::share::stix_time(first),
            "last_seen": crate::share::stix_time(last.max(first)),
            "count": s.scans.len(),
            "x_scanwatch_probes": probes,
            "x_scanwatch_answered": answered,
        });
        Some(vec![indicator, sighting])
    }

    /// One send of the oldest queued objects; true if the server answered.
    fn send_some(&mut self) -> bool {
        if self.spool.len() == 0 {
            return true;
        }
        let batch = self.spool.next_batch(BATCH);
        match self.client.push(&batch) {
            Ok(verdicts) => {
                let mut delivered = 0;
                for (o, v) in batch.iter().zip(&verdicts) {
                    match v {
                        Verdict::Delivered => delivered += 1,
                        Verdict::Rejected(m) => {
                            self.stats.failed.fetch_add(1, Relaxed);
                            eprintln!(
                                "scanwatch: TAXII: {} refused by the server: {m}",
                                o["id"].as_str().unwrap_or("?")
                            );
                        }
                        Verdict::Pending => {}
                    }
                }
                self.stats.pushed.fetch_add(delivered, Relaxed);
                if let Err(e) = self.spool.settle(&batch, &verdicts) {
                    eprintln!("scanwatch: error: TAXII spool: {e:#}");
                }
                self.stats.queued.store(self.spool.len() as u64, Relaxed);
                if self.told_down.take().is_some() {
                    eprintln!(
                        "scanwatch: TAXII: server answers again; {} object(s) still queued",
                        self.spool.len()
                    );
                }
                self.backoff = BACKOFF_MIN;
                self.next_try = if verdicts.iter().any(|v| *v == Verdict::Pending) {
                    // The server is still working on some: ask again later.
                    Instant::now() + BACKOFF_MIN
                } else {
                    Instant::now()
                };
                true
            }
            Err(e) => {
                self.stats.retries.fetch_add(1, Relaxed);
                let kind = match e {
                    PushError::Retry(_) => "server unreachable or busy",
                    PushError::Refused(_) => {
                        "server refuses (check --taxii, --collection, user and password)"
                    }
                };
                if self
                    .told_down
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
                {
                    eprintln!(
                        "scanwatch: TAXII: {kind}: {e}; {} object(s) queued in {}, retrying (every {} s at most)",
                        self.spool.len(),
                        self.spool.dir().display(),
                        BACKOFF_MAX.as_secs()
                    );
                    self.told_down = Some(Instant::now());
                }
                self.next_try = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                false
            }
        }
    }
}
