//! One scan record: a flagged (source, protocol) and everything it probed.
//! Ports are exact (a bitmap); targets, their ports and open doors are exact
//! up to [`DetectConfig::max_scan_targets`], and beyond it the target count
//! comes from a sketch of every target seen (an estimate, ~1.6% error). A
//! wide record (flagged from a source's sketches) counts its targets by the
//! sketch from the start and keeps no per-target table, so its cost per
//! attempt stays flat however many targets it reaches.

use crate::sketch::{hash_addr, Hll};
use crate::{detector_names, portless, ContactInfo, DetectConfig, Phase, ScanEvent};
use foldhash::fast::RandomState;
use hashbrown::{HashMap, HashSet};
use scanwatch_model::ids::detection_id;
use scanwatch_model::{endpoint_text, Addr, Attempt, Detection, Micros, Outcome, ScanKind};

/// Targets listed in a record's `targets` column.
const TARGET_SAMPLE: usize = 256;

pub(crate) struct Scan {
    pub scanner: Addr,
    pub proto: u8,
    pub kind: ScanKind,
    pub detectors: u8,
    pub first: Micros,
    pub last: Micros,
    pub detected: Micros,
    probes: u64,
    answered: u64,
    rejected: u64,
    unanswered: u64,
    /// Ports probed, one bit each: exact for any scan.
    ports: Box<[u64; 1024]>,
    port_count: u32,
    /// Per target: its number in order of first contact, and its distinct
    /// ports (exact up to the caps on targets and pairs).
    dsts: HashMap<Addr, (u32, u32), RandomState>,
    /// (target number, port) pairs seen, packed in a u64: a quarter of the
    /// size of (address, port) keys, and cheaper to hash.
    pairs: HashSet<u64, RandomState>,
    /// Every target, once the exact map is full: seeded with its keys,
    /// then fed each further target (its estimate is the target count).
    dst_sketch: Option<Hll>,
    /// The sketch's estimate, kept as it changes.
    dst_est: u64,
    /// Flagged as block by a source's sketches (a random scan over many
    /// hosts and ports): it stays block, and its targets are counted by the
    /// sketch alone (`dst_count` is an estimate, `targets` the first seen).
    pub wide: bool,
    targets: Vec<Addr>,
    open: Vec<(Addr, u16)>,
    open_set: HashSet<(Addr, u16), RandomState>,
    /// The next size (max of target and port counts) that triggers an update.
    next_update: u64,
}

impl Scan {
    pub fn new(
        scanner: Addr,
        proto: u8,
        kind: ScanKind,
        detectors: u8,
        at: Micros,
        _cfg: &DetectConfig,
    ) -> Scan {
        Scan {
            scanner,
            proto,
            kind,
            detectors,
            first: at,
            last: at,
            detected: at,
            probes: 0,
            answered: 0,
            rejected: 0,
            unanswered: 0,
            ports: Box::new([0u64; 1024]),
            port_count: 0,
            dsts: HashMap::default(),
            pairs: HashSet::default(),
            dst_sketch: None,
            dst_est: 0,
            wide: false,
            targets: Vec::new(),
            open: Vec::new(),
            open_set: HashSet::default(),
            next_update: 0,
        }
    }

    fn touch(&mut self, dst: Addr, port: u16, first: Micros, last: Micros, cfg: &DetectConfig) {
        self.first = self.first.min(first);
        self.last = self.last.max(last);
        let (w, b) = (usize::from(port) / 64, port % 64);
        if self.ports[w] & (1 << b) == 0 {
            self.ports[w] |= 1 << b;
            self.port_count += 1;
        }
        // A wide scan (flagged from sketches: random pairs, hardly a repeat)
        // keeps no per-target table: its targets are counted by a sketch
        // from the start, so an attempt costs one hash and one register.
        if self.wide {
            let sketch = self.dst_sketch.get_or_insert_with(Hll::default);
            if sketch.insert(hash_addr(dst)) {
                self.dst_est = sketch.estimate().round() as u64;
            }
            if self.targets.len() < TARGET_SAMPLE && !self.targets.contains(&dst) {
                self.targets.push(dst);
            }
            return;
        }
        // One lookup of the target (this runs for every attempt of a scan).
        let room = self.pairs.len() < cfg.max_scan_targets * 4;
        let n = self.dsts.len();
        let pair = |t: u32| (u64::from(t) << 16) | u64::from(port);
        match self.dsts.entry(dst) {
            hashbrown::hash_map::Entry::Occupied(mut e) => {
                let (t, ports) = e.get_mut();
                if room && self.pairs.insert(pair(*t)) {
                    *ports += 1;
                }
            }
            hashbrown::hash_map::Entry::Vacant(v) => {
                if n >= cfg.max_scan_targets {
                    let sketch = self.dst_sketch.get_or_insert_with(|| {
                        let mut h = Hll::default();
                        for &d in self.dsts.keys() {
                            h.insert(hash_addr(d));
                        }
                        h
                    });
                    if sketch.insert(hash_addr(dst)) || self.dst_est == 0 {
                        self.dst_est = sketch.estimate().round() as u64;
                    }
                    return;
                }
                if self.targets.len() < TARGET_SAMPLE {
                    self.targets.push(dst);
                }
                let t = n as u32;
                let new_pair = room && self.pairs.insert(pair(t));
                v.insert((t, u32::from(new_pair)));
            }
        }
    }

    fn mark_open(&mut self, dst: Addr, port: u16, cfg: &DetectConfig) {
        let port = if portless(self.proto) { 0 } else { port };
        if self.open_set.len() < cfg.max_scan_targets && self.open_set.insert((dst, port)) {
            self.open.push((dst, port));
        }
    }

    pub fn add_contact(&mut self, dst: Addr, port: u16, c: &ContactInfo, cfg: &DetectConfig) {
        self.touch(dst, port, c.first, c.last, cfg);
        self.probes += u64::from(c.probes);
        self.answered += u64::from(c.answered);
        self.rejected += u64::from(c.rejected);
        self.unanswered += u64::from(c.unanswered);
        if c.answered > 0 {
            self.mark_open(dst, port, cfg);
        }
    }

    pub fn add_attempt(&mut self, a: &Attempt, cfg: &DetectConfig) {
        self.touch(a.dst, a.dport, a.probe_ts, a.time, cfg);
        self.probes += 1;
        match a.outcome {
            Outcome::Answered => {
                self.answered += 1;
                if !a.probe.is_stealth() {
                    self.mark_open(a.dst, a.dport, cfg);
                }
            }
            Outcome::Rejected => self.rejected += 1,
            Outcome::Unanswered => self.unanswered += 1,
        }
    }

    /// Distinct targets: exact up to the cap, then the sketch's estimate
    /// (never below the exact part).
    fn dst_count(&self) -> u64 {
        (self.dsts.len() as u64).max(self.dst_est)
    }

    /// The kind the record's shape says: enough targets each probed on
    /// many ports is a block scan, and so is the mix of a vertical part and
    /// a sweep (enough other targets to be one on their own); some target
    /// probed on many ports with too few other targets is vertical; the rest
    /// (many targets, few ports each) is horizontal.
    pub fn reclassify(&mut self, cfg: &DetectConfig) {
        let many = self
            .dsts
            .values()
            .filter(|&&(_, n)| n >= cfg.block_ports)
            .count() as u64;
        let sweep_min = cfg
            .windows
            .iter()
            .map(|w| w.horizontal)
            .fold(f64::MAX, f64::min);
        let others = self.dst_count().saturating_sub(many);
        // A vertical part and a sweep of its own from one source (many
        // ports on a host, and many other hosts): many destinations and many
        // ports in all, which is what a block scan is.
        let mixed = many >= 1 && (others as f64) >= sweep_min;
        self.kind = if self.wide || many >= u64::from(cfg.block_hosts) || mixed {
            ScanKind::Block
        } else if many >= 1 {
            ScanKind::Vertical
        } else {
            ScanKind::Horizontal
        };
    }

    /// An update event when the record has doubled since the last one.
    pub fn maybe_update(&mut self, cfg: &DetectConfig, at: Micros) -> Option<ScanEvent> {
        let size = self.dst_count().max(u64::from(self.port_count));
        if size < self.next_update {
            return None;
        }
        self.reclassify(cfg);
        Some(self.event(Phase::Update, at, cfg))
    }

    pub fn event(&mut self, phase: Phase, at: Micros, cfg: &DetectConfig) -> ScanEvent {
        let size = self.dst_count().max(u64::from(self.port_count));
        self.next_update = (size * 2).max(size + 10);
        ScanEvent {
            phase,
            time: at,
            detection: self.detection(cfg),
        }
    }

    fn ports_list(&self) -> Vec<u16> {
        let mut v = Vec::with_capacity(self.port_count as usize);
        for (w, bits) in self.ports.iter().enumerate() {
            let mut b = *bits;
            while b != 0 {
                let i = b.trailing_zeros();
                v.push((w * 64) as u16 + i as u16);
                b &= b - 1;
            }
        }
        v
    }

    pub fn detection(&self, cfg: &DetectConfig) -> Detection {
        let mut open = self.open.clone();
        open.sort_unstable();
        let open = open
            .into_iter()
            .map(|(a, p)| endpoint_text(a, if portless(self.proto) { None } else { Some(p) }))
            .collect();
        Detection {
            direction: Default::default(),
            detection_id: detection_id(self.scanner, self.proto, self.first),
            ts_first: self.first,
            ts_last: self.last,
            ts_detected: self.detected,
            scanner: self.scanner,
            kind: self.kind,
            proto: self.proto,
            detector: detector_names(self.detectors, cfg),
            dst_count: self.dst_count(),
            port_count: u64::from(self.port_count),
            probes: self.probes,
            answered: self.answered,
            rejected: self.rejected,
            unanswered: self.unanswered,
            ports: self.ports_list(),
            targets: self.targets.clone(),
            open,
        }
    }
}
