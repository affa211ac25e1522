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

use crate::stix::{self, Detected, Seen, StixOptions};
use crate::taxii::{Client, PushError, Spool, Verdict};
use anyhow::Result;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use scanwatch_detect::{Phase, ScanEvent};
use scanwatch_model::ScanKind;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
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

/// Where the objects come from: the organisation (and the marking) and
/// this sensor.
#[derive(Clone)]
pub struct Origin {
    pub stix: StixOptions,
    pub sensor: String,
}

/// Opens the spool (failing early if it is unusable) and starts the thread.
pub fn start(
    client: Client,
    spool_dir: &Path,
    origin: Origin,
) -> Result<(Sender<ScanEvent>, Pusher)> {
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
    scanner: std::net::IpAddr,
    scans: BTreeMap<String, Detected>,
    /// Latest packet time told (for forgetting the oldest).
    latest_us: i64,
    /// The versions last queued: (modified in µs, the object) of the
    /// indicator and of the sighting.
    sent: [Option<(i64, Value)>; 2],
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
        let det = Detected::from_detection(d, &self.origin.sensor);
        // Scans by our own hosts are ours to handle, not to share; nor are
        // addresses no partner can see (private, loopback, …); a
        // distributed record is about a target, not a scanner.
        if det.own_scanner()
            || stix::unshareable(det.scanner).is_some()
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
            scanner: det.scanner,
            scans: BTreeMap::new(),
            latest_us: e.time,
            sent: [None, None],
            last_sent: None,
            dirty: false,
        });
        s.scans.insert(d.detection_id.clone(), det);
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

    /// The marking, the organisation, the extension definition and this
    /// sensor: fixed versions, the same every run.
    fn identities(&self) -> Vec<Value> {
        let mut v = stix::common_objects(&self.origin.stix);
        v.push(stix::sensor_identity(
            &self.origin.stix,
            &self.origin.sensor,
        ));
        v
    }

    /// The scanner's indicator and this sensor's sighting of it, as they
    /// stand now: the versions that differ from the ones last queued, each
    /// with a `modified` later than the last (the last probe's packet
    /// time, or 1 ms after the previous version when that is not later).
    fn objects_of(&mut self, key: &str) -> Option<Vec<Value>> {
        let o = &self.origin.stix;
        let sensor = self.origin.sensor.as_str();
        let s = self.scanners.get_mut(key)?;
        let seen = Seen::new(s.scans.values().collect());
        let built = [
            stix::indicator(s.scanner, &seen, o),
            stix::sighting(s.scanner, sensor, &seen, o),
        ];
        let last = seen.last();
        let mut out = Vec::new();
        for (slot, mut obj) in s.sent.iter_mut().zip(built) {
            let mut modified = last;
            if let Some((prev_us, prev)) = slot.as_ref() {
                if *prev == obj {
                    continue;
                }
                if modified <= *prev_us {
                    modified = prev_us.saturating_add(1000);
                    obj["modified"] = json!(stix::stix_time(modified));
                }
            }
            *slot = Some((modified, obj.clone()));
            out.push(obj);
        }
        Some(out)
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
                self.next_try = if verdicts.contains(&Verdict::Pending) {
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
