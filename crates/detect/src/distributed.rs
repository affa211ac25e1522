//! Distributed scans: many sources probing many ports of one target, none
//! of them enough alone. The per-source [`Detector`](crate::Detector) cannot
//! see them (each source stays below every threshold), so the pipeline also
//! routes every probe-like attempt to the shard of its **target**, and this
//! tracker, owned by that shard next to its detector, sees every attempt
//! toward one target in the same (time, content) order at any thread count.
//!
//! Per (target, protocol) it keeps the (source, port) contacts inside the
//! longest window, each with its outcomes. A window fires when, among the
//! contacts seen within it:
//!
//! * the distinct failed ports (refused or ignored; answered-and-dropped
//!   counts as [`DetectConfig::answered_weight`] toward a source's size, not
//!   as a failed port) of the sources that each failed on at least
//!   [`MIN_SOURCE_PORTS`] ports reach the window's vertical threshold;
//! * there are at least [`MIN_SOURCES`] such sources;
//! * and no single source reached the vertical threshold of any window
//!   alone (a lone vertical scanner plus noise is the detector's, not a
//!   distributed scan).
//!
//! Benign traffic that looks like many sources failing on one host — clients
//! of a restarted server, peers trying a stale port mapping — fails on the
//! same one or two ports per client, so the per-source minimum and the
//! count of distinct ports keep it quiet.
//!
//! Once flagged, a (target, protocol) gets one record that grows with every
//! further probe-like attempt toward it, from any source, and is told as
//! [`ScanEvent`]s: `start` at the flagging attempt, `update` when the record's
//! size (the larger of its port and source counts) has doubled (at least ten
//! more), and `end` [`DetectConfig::scan_idle_secs`] after its last probe or
//! at the end of input. Its [`Detection`] has kind
//! [`ScanKind::Distributed`], the target as the only target, the busiest
//! source (most distinct ports, ties to the lowest address) as `scanner`,
//! and every source seen in `sources` (the lowest [`SOURCES_LISTED`]).
//!
//! Memory is bounded like the detector's: at most [`MAX_TARGETS`] targets
//! per shard (when full, the quarter with the fewest failed contacts and the
//! oldest activity is evicted), at most [`MAX_TARGET_CONTACTS`] contacts per
//! target (oldest quarter first out) and [`MAX_CONTACTS_TOTAL`] per shard
//! (targets evicted until under it); both shard caps are lowered to the
//! shard's `max_sources` and `max_contacts_total` when those are smaller (a
//! small memory budget), and a record tracks at most
//! [`MAX_RECORD_SOURCES`] sources and [`MAX_RECORD_PAIRS`] (source, port)
//! pairs. Evictions are counted in [`DetectStats`].

use crate::{
    detector_names, window_bit, Cidr, ConfigError, DetectConfig, DetectStats, Lists, Phase,
    ScanEvent, Service, Trigger,
};
use foldhash::fast::RandomState;
use hashbrown::{HashMap, HashSet};
use scanwatch_model::ids::fnv1a64;
use scanwatch_model::{endpoint_text, Addr, Attempt, Detection, Micros, Outcome, ScanKind};

/// Sources, each failing on at least [`MIN_SOURCE_PORTS`] ports, that a
/// distributed scan needs.
pub const MIN_SOURCES: usize = 3;

/// Distinct failed ports of one target a source needs to count toward a
/// distributed scan: a benign client fails on the one or two ports of its
/// service.
pub const MIN_SOURCE_PORTS: u32 = 3;

/// Targets tracked per shard; when full, a quarter is evicted.
pub const MAX_TARGETS: usize = 65_536;

/// Contacts ((source, port) pairs) tracked per target; when full, the
/// oldest quarter is dropped.
pub const MAX_TARGET_CONTACTS: usize = 4096;

/// Contacts tracked per shard, all targets together; when reached, targets
/// are evicted (a quarter at a time) until under it.
pub const MAX_CONTACTS_TOTAL: usize = 1_000_000;

/// Sources a record tracks (counted, with their distinct ports); later ones
/// still add to its counts and ports.
pub const MAX_RECORD_SOURCES: usize = 4096;

/// (source, port) pairs a record tracks for its per-source port counts.
pub const MAX_RECORD_PAIRS: usize = 65_536;

/// Sources listed in a record's `sources` (the lowest addresses).
pub const SOURCES_LISTED: usize = 256;

/// Packet time between two sweeps of contacts older than the longest
/// window (24 h by default: forgetting them a few minutes late costs
/// little, and the caps bound memory meanwhile).
const SWEEP_EVERY: Micros = 300_000_000;

/// Most bytes one contact of this view holds, its tables at 7/16 load
/// (just after they doubled): its entry and control byte in the target's
/// contacts (72 bytes: the first probe's header facts ride with it), and
/// its share of the target's [`Counts`] (a per-port and a per-source entry,
/// when every failed contact has a port and a source of its own). The
/// pipeline's memory budget counts this for each contact of a shard's cap.
pub const TARGET_CONTACT_WORST_BYTES: usize = {
    use std::mem::size_of;
    let bytes = (size_of::<((Addr, u16), Seen)>() + 1)
        + (size_of::<(u16, u32)>() + 1)
        + (size_of::<(Addr, u32)>() + 1);
    (bytes * 16).div_ceil(7)
};

/// Open doors (ports of the target that answered) a record lists.
const MAX_DOORS: usize = 65_536;

#[derive(Clone, Copy, Debug)]
struct Seen {
    first: Micros,
    last: Micros,
    /// The first probe's header facts, source port and technique family,
    /// for the record's tool attribution.
    print: scanwatch_model::ProbePrint,
    sport: u16,
    tech: scanwatch_model::Technique,
    probes: u32,
    answered: u32,
    rejected: u32,
    unanswered: u32,
}

impl Seen {
    /// Refused or ignored, never answered.
    fn failed(&self) -> bool {
        self.answered == 0
    }
}

struct Target {
    last: Micros,
    /// No contact was last seen before this (a lower bound: the sweep skips
    /// a target whose contacts are all inside the longest window).
    oldest: Micros,
    contacts: HashMap<(Addr, u16), Seen, RandomState>,
    /// Contacts in `contacts` that failed.
    failed: u32,
    /// Attempts since the last evaluation (large targets are evaluated at
    /// every `n/64`-th new failed contact).
    eval_skip: u32,
    /// Made once the target has as many failed contacts as the lowest
    /// vertical threshold (most targets never get there): boxed, so the
    /// table of targets stays small.
    counts: Option<Box<Counts>>,
}

/// A target's failed contacts by port and by source: upper bounds of every
/// window's counts, so a target many sources fail on, but on the same few
/// ports, is never evaluated.
#[derive(Default)]
struct Counts {
    /// Failed contacts per port.
    port_fails: HashMap<u16, u32, RandomState>,
    /// Failed contacts (distinct ports) per source.
    src_fails: HashMap<Addr, u32, RandomState>,
    /// Sources in `src_fails` with at least [`MIN_SOURCE_PORTS`].
    wide_sources: u32,
}

impl Counts {
    fn add(&mut self, src: Addr, port: u16) {
        *self.port_fails.entry(port).or_insert(0) += 1;
        let n = self.src_fails.entry(src).or_insert(0);
        *n += 1;
        if *n == MIN_SOURCE_PORTS {
            self.wide_sources += 1;
        }
    }

    fn remove(&mut self, src: Addr, port: u16) {
        if let Some(n) = self.port_fails.get_mut(&port) {
            *n -= 1;
            if *n == 0 {
                self.port_fails.remove(&port);
            }
        }
        if let Some(n) = self.src_fails.get_mut(&src) {
            if *n == MIN_SOURCE_PORTS {
                self.wide_sources -= 1;
            }
            *n -= 1;
            if *n == 0 {
                self.src_fails.remove(&src);
            }
        }
    }
}

impl Target {
    fn new() -> Target {
        Target {
            last: Micros::MIN,
            oldest: Micros::MAX,
            contacts: HashMap::default(),
            failed: 0,
            eval_skip: 0,
            counts: None,
        }
    }

    /// Counts a contact that has become failed (`up`) or stopped being so;
    /// the [`Counts`] are made once `min` contacts failed (none is needed
    /// before: no window can fire).
    fn count_failed(&mut self, src: Addr, port: u16, up: bool, min: u32) {
        if up {
            self.failed += 1;
            match self.counts.as_mut() {
                Some(c) => c.add(src, port),
                None if self.failed >= min => self.make_counts(),
                None => {}
            }
        } else {
            self.failed = self.failed.saturating_sub(1);
            if let Some(c) = self.counts.as_mut() {
                c.remove(src, port);
            }
        }
    }

    /// The [`Counts`], from the failed contacts held.
    fn make_counts(&mut self) {
        let mut c = Counts::default();
        for (&(src, port), s) in &self.contacts {
            if s.failed() {
                c.add(src, port);
            }
        }
        self.counts = Some(Box::new(c));
    }

    /// Counts everything again from the contacts held (after a trim or a
    /// sweep).
    fn recount(&mut self, min: u32) {
        self.failed = self.contacts.values().filter(|s| s.failed()).count() as u32;
        self.oldest = self
            .contacts
            .values()
            .map(|s| s.last)
            .min()
            .unwrap_or(Micros::MAX);
        if self.failed >= min {
            self.make_counts();
        } else {
            self.counts = None;
        }
    }

    /// Whether some window could fire: enough distinct failed ports and
    /// enough sources with several of them.
    fn may_fire(&self, min: u32) -> bool {
        self.counts.as_ref().is_some_and(|c| {
            c.wide_sources as usize >= MIN_SOURCES && c.port_fails.len() >= min as usize
        })
    }
}

/// A flagged (target, protocol): everything probed toward it.
struct Record {
    target: Addr,
    proto: u8,
    detectors: u8,
    first: Micros,
    last: Micros,
    detected: Micros,
    probes: u64,
    answered: u64,
    rejected: u64,
    unanswered: u64,
    ports: Box<[u64; 1024]>,
    port_count: u32,
    /// Per source: its distinct ports (as `pairs` counts them).
    per_source: HashMap<Addr, u32, RandomState>,
    pairs: HashSet<(Addr, u16), RandomState>,
    open: HashSet<u16, RandomState>,
    next_update: u64,
    last_trigger: Trigger,
    /// Header facts of its probes: technique and tool (module `tool`).
    tally: crate::tool::Tally,
    /// The technique family of its first probe.
    tech: Option<scanwatch_model::Technique>,
    /// Its id, fixed when it starts (a probe resolved later may move
    /// `first` earlier; alerts and rows of one record keep one id).
    id: String,
}

impl Record {
    fn new(target: Addr, proto: u8, detectors: u8, trigger: Trigger) -> Record {
        Record {
            target,
            proto,
            detectors,
            first: trigger.time,
            last: trigger.time,
            detected: trigger.time,
            probes: 0,
            answered: 0,
            rejected: 0,
            unanswered: 0,
            ports: Box::new([0u64; 1024]),
            port_count: 0,
            per_source: HashMap::default(),
            pairs: HashSet::default(),
            open: HashSet::default(),
            next_update: 0,
            last_trigger: trigger,
            tally: crate::tool::Tally::default(),
            tech: None,
            id: String::new(),
        }
    }

    /// Counts a (source, port) contact; true when the record grew (a new
    /// port or a new source).
    fn touch(&mut self, src: Addr, port: u16, first: Micros, last: Micros) -> bool {
        self.first = self.first.min(first);
        self.last = self.last.max(last);
        let (w, b) = (usize::from(port) / 64, port % 64);
        let mut grew = false;
        if self.ports[w] & (1 << b) == 0 {
            self.ports[w] |= 1 << b;
            self.port_count += 1;
            grew = true;
        }
        let known = self.per_source.contains_key(&src);
        if !known && self.per_source.len() >= MAX_RECORD_SOURCES {
            return grew;
        }
        let new_pair = self.pairs.len() < MAX_RECORD_PAIRS && self.pairs.insert((src, port));
        let n = self.per_source.entry(src).or_insert(0);
        *n += u32::from(new_pair);
        grew || !known
    }

    fn add_seen(&mut self, src: Addr, port: u16, s: &Seen) {
        self.touch(src, port, s.first, s.last);
        self.tech.get_or_insert(s.tech);
        self.tally.add_probe(
            self.proto,
            s.tech,
            s.answered > 0,
            (false, false),
            &s.print,
            (s.first, src, port, s.sport),
        );
        self.probes += u64::from(s.probes);
        self.answered += u64::from(s.answered);
        self.rejected += u64::from(s.rejected);
        self.unanswered += u64::from(s.unanswered);
        if s.answered > 0 && self.open.len() < MAX_DOORS {
            self.open.insert(port);
        }
    }

    /// One attempt toward the flagged target; true when the record grew.
    fn add_attempt(&mut self, a: &Attempt) -> bool {
        let grew = self.touch(a.src, a.dport, a.probe_ts, a.time);
        self.tech
            .get_or_insert(scanwatch_model::Technique::of_probe(a.probe, a.proto));
        self.tally.add(a);
        self.probes += 1;
        self.last_trigger = Trigger::of(a);
        match a.outcome {
            Outcome::Answered => {
                self.answered += 1;
                if !a.probe.is_stealth() && self.open.len() < MAX_DOORS {
                    self.open.insert(a.dport);
                }
            }
            Outcome::Rejected => self.rejected += 1,
            Outcome::Unanswered => self.unanswered += 1,
        }
        grew
    }

    fn size(&self) -> u64 {
        u64::from(self.port_count).max(self.per_source.len() as u64)
    }

    /// The busiest source: most distinct ports, ties to the lowest address.
    fn scanner(&self) -> Addr {
        self.per_source
            .iter()
            .max_by(|(a, n), (b, m)| n.cmp(m).then(b.cmp(a)))
            .map_or(self.target, |(a, _)| *a)
    }

    fn event(
        &mut self,
        phase: Phase,
        at: Micros,
        trigger: Trigger,
        cfg: &DetectConfig,
    ) -> ScanEvent {
        if matches!(phase, Phase::Start | Phase::Update) {
            let size = self.size();
            self.next_update = (size * 2).max(size + 10);
        }
        ScanEvent {
            phase,
            time: at,
            detection: self.detection(cfg),
            new_open: Vec::new(),
            previous_kind: None,
            trigger: Some(trigger),
            direction_set: false,
        }
    }

    fn detection(&self, cfg: &DetectConfig) -> Detection {
        let ports = crate::scan::ports_of(&self.ports, self.port_count);
        let mut open: Vec<u16> = self.open.iter().copied().collect();
        open.sort_unstable();
        let portless = crate::portless(self.proto);
        let mut open: Vec<String> = open
            .into_iter()
            .map(|p| endpoint_text(self.target, (!portless).then_some(p)))
            .collect();
        open.dedup();
        let mut sources: Vec<Addr> = self.per_source.keys().copied().collect();
        sources.sort_unstable();
        sources.truncate(SOURCES_LISTED);
        let tech = self.tech.unwrap_or_default();
        let v = self
            .tally
            .verdict(tech, self.proto, crate::tool::port_set(self.proto, &ports));
        let detection_id = if self.id.is_empty() {
            record_id(self.target, self.proto, self.first)
        } else {
            self.id.clone()
        };
        Detection {
            ts_first: self.first,
            ts_last: self.last,
            ts_detected: self.detected,
            scanner: self.scanner(),
            kind: ScanKind::Distributed,
            proto: self.proto,
            detector: detector_names(self.detectors, cfg),
            dst_count: 1,
            port_count: u64::from(self.port_count),
            probes: self.probes,
            answered: self.answered,
            rejected: self.rejected,
            unanswered: self.unanswered,
            ports,
            targets: vec![self.target],
            open,
            direction: Default::default(),
            technique: v.technique,
            tool: v.tool.to_string(),
            tool_evidence: v.evidence,
            rate_pps: v.rate_pps,
            order: v.order.to_string(),
            port_set: v.port_set,
            // The record is the campaign: its sources are in `sources`.
            campaign_id: detection_id.clone(),
            detection_id,
            sources,
        }
    }
}

/// A distributed record's id: from its target, protocol and first probe
/// (apart from the per-source ids, which hash the scanner).
fn record_id(target: Addr, proto: u8, first: Micros) -> String {
    let h = fnv1a64(&[b"distributed", &target.0, &[proto], &first.to_le_bytes()]);
    format!("{h:016x}")
}

/// The distributed-scan tracker of one detector shard (see the module
/// docs). Attempts must come in `(time, content)` order.
pub struct Distributed {
    cfg: DetectConfig,
    allow_scanners: Vec<Cidr>,
    allow_services: Vec<Service>,
    targets: HashMap<(Addr, u8), Target, RandomState>,
    contacts_total: usize,
    records: HashMap<(Addr, u8), Record, RandomState>,
    now: Micros,
    /// The next point of packet time at which a sweep is due.
    next_sweep: Micros,
    max_targets: usize,
    max_contacts_total: usize,
    /// Failed ports the lowest vertical threshold needs (rounded up): a
    /// target with fewer failed contacts is not evaluated.
    min_ports: u32,
    /// Its counters: `target_attempts`, `targets_evicted`,
    /// `target_contacts_evicted`, `distributed_started` and
    /// `distributed_ended` (the rest stay zero).
    pub stats: DetectStats,
}

impl Distributed {
    pub fn new(cfg: DetectConfig) -> Result<Distributed, ConfigError> {
        let Lists {
            allow_scanners,
            allow_services,
            ..
        } = cfg.validate()?;
        let min_ports = cfg
            .windows
            .iter()
            .map(|w| w.vertical)
            .fold(f64::MAX, f64::min)
            .ceil()
            .clamp(1.0, f64::from(u32::MAX)) as u32;
        let (max_targets, max_contacts_total) = (
            // Within the shard's budget as the per-source view is: no more
            // contacts than its `max_contacts_total`, no more targets than
            // its `max_sources` (the memory budget sizes both).
            MAX_TARGETS.min(cfg.max_sources).max(1),
            MAX_CONTACTS_TOTAL.min(cfg.max_contacts_total).max(16),
        );
        Ok(Distributed {
            min_ports,
            cfg,
            allow_scanners,
            allow_services,
            targets: HashMap::default(),
            contacts_total: 0,
            records: HashMap::default(),
            now: Micros::MIN,
            next_sweep: Micros::MIN,
            max_targets,
            max_contacts_total,
            stats: DetectStats::default(),
        })
    }

    /// Targets tracked and records open.
    pub fn sizes(&self) -> (usize, usize) {
        (self.targets.len(), self.records.len())
    }

    /// Contacts held, all targets together.
    pub fn contacts_held(&self) -> usize {
        self.contacts_total
    }

    /// Feeds one attempt seen from its target's side; only probe-like ones
    /// count (a conversation is no probe).
    pub fn on_attempt(&mut self, a: &Attempt, out: &mut Vec<ScanEvent>) {
        self.sweep_if_due(a.time);
        if !a.is_probe_like() {
            return;
        }
        self.stats.target_attempts += 1;
        if a.time > self.now {
            self.now = a.time;
        }
        if self.allow_scanners.iter().any(|c| c.contains(a.src))
            || self
                .allow_services
                .iter()
                .any(|s| s.matches(a.dst, a.dport, a.proto))
        {
            return;
        }
        let key = (a.dst, a.proto);
        let idle = self.cfg.scan_idle();
        if let Some(r) = self.records.get_mut(&key) {
            if r.last + idle > a.time {
                if r.add_attempt(a) && r.size() >= r.next_update {
                    out.push(r.event(Phase::Update, a.time, Trigger::of(a), &self.cfg));
                }
                return;
            }
            self.end_record(key, idle, out);
        }
        // Lengths first: the lookup is paid only when full.
        if self.targets.len() >= self.max_targets && !self.targets.contains_key(&key) {
            self.evict_targets();
        }
        while self.contacts_total >= self.max_contacts_total && !self.targets.is_empty() {
            self.evict_targets();
        }
        let t = self.targets.entry(key).or_insert_with(Target::new);
        t.last = t.last.max(a.time);
        t.oldest = t.oldest.min(a.time);
        let ck = (a.src, a.dport);
        if t.contacts.len() >= MAX_TARGET_CONTACTS && !t.contacts.contains_key(&ck) {
            let dropped = trim_contacts(t, self.min_ports);
            self.stats.target_contacts_evicted += dropped as u64;
            self.contacts_total -= dropped;
        }
        let mut was_failed = false;
        let seen = match t.contacts.entry(ck) {
            hashbrown::hash_map::Entry::Occupied(e) => {
                was_failed = e.get().failed();
                e.into_mut()
            }
            hashbrown::hash_map::Entry::Vacant(v) => {
                self.contacts_total += 1;
                v.insert(Seen {
                    first: a.probe_ts,
                    last: a.time,
                    print: a.print,
                    sport: a.sport,
                    tech: scanwatch_model::Technique::of_probe(a.probe, a.proto),
                    probes: 0,
                    answered: 0,
                    rejected: 0,
                    unanswered: 0,
                })
            }
        };
        seen.last = seen.last.max(a.time);
        seen.probes += 1;
        match a.outcome {
            Outcome::Answered => seen.answered += 1,
            Outcome::Rejected => seen.rejected += 1,
            Outcome::Unanswered => seen.unanswered += 1,
        }
        let failed = seen.failed();
        if was_failed != failed {
            t.count_failed(a.src, a.dport, failed, self.min_ports);
        }
        // Only a new failed contact can make the target fire.
        if was_failed || !failed {
            return;
        }
        if !t.may_fire(self.min_ports) {
            return;
        }
        let n = t.contacts.len();
        if n > 256 {
            let step = (n / 64) as u32;
            if t.eval_skip < step {
                t.eval_skip += 1;
                return;
            }
            t.eval_skip = 0;
        }
        if let Some(bits) = self.evaluate(key) {
            self.start_record(key, a, bits, out);
        }
    }

    /// Checks every window for the target `key`; the windows that fire, as
    /// detector bits.
    fn evaluate(&self, key: (Addr, u8)) -> Option<u8> {
        let t = self.targets.get(&key)?;
        let aw = self.cfg.answered_weight;
        // Every contact, by source: (source, port, last, failed).
        let mut all: Vec<(Addr, u16, Micros, bool)> = t
            .contacts
            .iter()
            .map(|(&(s, p), i)| (s, p, i.last, i.failed()))
            .collect();
        all.sort_unstable_by_key(|&(s, p, _, _)| (s, p));
        let mut bits = 0u8;
        let mut ports: Vec<u16> = Vec::new();
        for (i, w) in self.cfg.windows.iter().enumerate() {
            let since = self.now - w.seconds as i64 * 1_000_000;
            ports.clear();
            let mut sources = 0usize;
            let mut alone = false;
            let mut k = 0;
            while k < all.len() {
                let src = all[k].0;
                let start = ports.len();
                let (mut nfailed, mut score) = (0u32, 0.0f64);
                while k < all.len() && all[k].0 == src {
                    let (_, p, last, failed) = all[k];
                    if last >= since {
                        if failed {
                            nfailed += 1;
                            score += 1.0;
                            ports.push(p);
                        } else {
                            score += aw;
                        }
                    }
                    k += 1;
                }
                if score >= w.vertical {
                    alone = true;
                    break;
                }
                if nfailed >= MIN_SOURCE_PORTS {
                    sources += 1;
                } else {
                    ports.truncate(start);
                }
            }
            if alone {
                // A source that is a vertical scanner on its own in any
                // window is the detector's: the rest is noise beside it.
                return None;
            }
            if sources < MIN_SOURCES || (ports.len() as f64) < w.vertical {
                continue;
            }
            ports.sort_unstable();
            ports.dedup();
            if ports.len() as f64 >= w.vertical {
                bits |= window_bit(i);
            }
        }
        (bits != 0).then_some(bits)
    }

    /// Opens the record of `key` with the target's contacts within the
    /// longest window (they move into it).
    fn start_record(&mut self, key: (Addr, u8), a: &Attempt, bits: u8, out: &mut Vec<ScanEvent>) {
        let horizon = self.now - self.cfg.longest_window();
        let Some(t) = self.targets.remove(&key) else {
            return;
        };
        self.contacts_total -= t.contacts.len();
        let mut moved: Vec<((Addr, u16), Seen)> = t
            .contacts
            .into_iter()
            .filter(|(_, s)| s.last >= horizon)
            .collect();
        moved.sort_unstable_by_key(|&(c, s)| (s.first, c));
        let mut r = Record::new(key.0, key.1, bits, Trigger::of(a));
        for ((src, port), s) in &moved {
            r.add_seen(*src, *port, s);
        }
        r.id = record_id(r.target, r.proto, r.first);
        r.last_trigger = Trigger::of(a);
        self.stats.distributed_started += 1;
        out.push(r.event(Phase::Start, a.time, Trigger::of(a), &self.cfg));
        self.records.insert(key, r);
    }

    /// Moves packet time to `now`: ends records quiet for `scan_idle` and,
    /// every [`SWEEP_EVERY`] of packet time, forgets contacts older than
    /// the longest window.
    pub fn advance(&mut self, now: Micros, out: &mut Vec<ScanEvent>) {
        if now > self.now {
            self.now = now;
        }
        let idle = self.cfg.scan_idle();
        let mut due: Vec<(Addr, u8)> = self
            .records
            .iter()
            .filter(|(_, r)| r.last + idle <= self.now)
            .map(|(k, _)| *k)
            .collect();
        due.sort_unstable();
        for k in due {
            self.end_record(k, idle, out);
        }
        self.sweep_if_due(self.now);
    }

    /// Forgets contacts older than the longest window, at fixed points of
    /// packet time (every [`SWEEP_EVERY`] on the multiple), once `t` has
    /// reached the next one: before the first attempt at or past a point,
    /// or at the watermark that passes it, so what is forgotten depends on
    /// packet time alone, not on how the workers' watermarks stepped.
    fn sweep_if_due(&mut self, t: Micros) {
        let Some(point) = crate::sweep_point(t, SWEEP_EVERY, &mut self.next_sweep) else {
            return;
        };
        let horizon = point.saturating_sub(self.cfg.longest_window());
        let mut total = 0usize;
        let min_ports = self.min_ports;
        self.targets.retain(|_, t| {
            if t.last < horizon {
                return false;
            }
            if t.oldest >= horizon {
                total += t.contacts.len();
                return true;
            }
            let before = t.contacts.len();
            t.contacts.retain(|_, s| s.last >= horizon);
            if t.contacts.len() != before {
                t.recount(min_ports);
            } else {
                t.oldest = t
                    .contacts
                    .values()
                    .map(|s| s.last)
                    .min()
                    .unwrap_or(Micros::MAX);
            }
            total += t.contacts.len();
            !t.contacts.is_empty()
        });
        self.contacts_total = total;
    }

    /// Ends every open record (end of input, shutdown).
    pub fn finish(&mut self, out: &mut Vec<ScanEvent>) {
        let mut keys: Vec<(Addr, u8)> = self.records.keys().copied().collect();
        keys.sort_unstable();
        for k in keys {
            self.end_record(k, 0, out);
        }
    }

    fn end_record(&mut self, key: (Addr, u8), after: Micros, out: &mut Vec<ScanEvent>) {
        if let Some(mut r) = self.records.remove(&key) {
            self.stats.distributed_ended += 1;
            let at = r.last + after;
            let last = r.last_trigger;
            out.push(r.event(Phase::End, at, last, &self.cfg));
        }
    }

    /// Evicts the least suspicious quarter of the targets: fewest failed
    /// contacts first, then the longest idle, then the lowest key.
    fn evict_targets(&mut self) {
        let n = self.targets.len();
        let k = (n / 4).max(1);
        let mut ranked: Vec<(u32, Micros, (Addr, u8))> = self
            .targets
            .iter()
            .map(|(key, t)| (t.failed, t.last, *key))
            .collect();
        ranked.select_nth_unstable(k - 1);
        for (_, _, key) in &ranked[..k] {
            if let Some(t) = self.targets.remove(key) {
                self.contacts_total -= t.contacts.len();
            }
        }
        self.stats.targets_evicted += k as u64;
    }
}

/// Drops the oldest quarter of a target's contacts (by last-seen time, then
/// key, so the choice never depends on the hash order); returns how many.
fn trim_contacts(t: &mut Target, min_ports: u32) -> usize {
    let mut order: Vec<(Micros, (Addr, u16))> =
        t.contacts.iter().map(|(c, s)| (s.last, *c)).collect();
    let drop = (MAX_TARGET_CONTACTS / 4).max(1).min(order.len());
    if drop == 0 {
        return 0;
    }
    order.select_nth_unstable(drop - 1);
    // The counts lose what is dropped, rather than being made again from
    // the three quarters kept: under a flood of spoofed sources toward one
    // target the trim comes every 1,024 contacts, and rebuilding the
    // per-port and per-source tables each time was a tenth of the
    // detector thread.
    for (_, c) in &order[..drop] {
        if let Some(s) = t.contacts.remove(c) {
            if s.failed() {
                t.failed -= 1;
                if let Some(k) = t.counts.as_mut() {
                    k.remove(c.0, c.1);
                }
            }
        }
    }
    t.oldest = order[drop..]
        .iter()
        .map(|&(last, _)| last)
        .min()
        .unwrap_or(Micros::MAX);
    if t.failed < min_ports {
        t.counts = None;
    }
    drop
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanwatch_model::{proto, ProbeKind};

    const SEC: Micros = 1_000_000;

    fn addr(s: &str) -> Addr {
        s.parse().unwrap()
    }

    #[test]
    fn a_contact_costs_what_the_budget_counts() {
        // 72-byte entries (key, times, counts, header facts); with the
        // per-port (8) and per-source (20) counts and a control byte each,
        // 103 bytes at 7/16 load.
        assert_eq!(std::mem::size_of::<((Addr, u16), Seen)>(), 72);
        assert_eq!(TARGET_CONTACT_WORST_BYTES, 236);
    }

    fn att(t: Micros, src: Addr, dst: Addr, port: u16, outcome: Outcome) -> Attempt {
        Attempt {
            time: t,
            src,
            dst,
            proto: proto::TCP,
            dport: port,
            sport: 40000,
            probe_ts: t,
            probe: ProbeKind::Syn,
            outcome,
            data: false,
            flow_id: t as u64,
            print: scanwatch_model::ProbePrint::default(),
            handshake: false,
            abortive: false,
        }
    }

    fn run(mut atts: Vec<Attempt>) -> (Vec<ScanEvent>, Distributed) {
        atts.sort();
        let mut d = Distributed::new(DetectConfig::default()).unwrap();
        let mut ev = Vec::new();
        for a in &atts {
            d.on_attempt(a, &mut ev);
            d.advance(a.time, &mut ev);
        }
        d.finish(&mut ev);
        (ev, d)
    }

    /// Five sources each probing 12 of ports 1-60 of one target, one a
    /// quarter second, interleaved.
    fn split_range(outcome_of: impl Fn(u16) -> Outcome) -> Vec<Attempt> {
        let target = addr("198.19.1.10");
        let mut v = Vec::new();
        for port in 1..=60u16 {
            let s = (port - 1) / 12;
            let src = Addr::from_v4([198, 18, 0, 31 + s as u8]);
            let t = i64::from(port) * SEC / 4;
            v.push(att(t, src, target, port, outcome_of(port)));
        }
        v
    }

    #[test]
    fn a_split_range_scan_is_one_distributed_record_with_every_source() {
        let (ev, d) = run(split_range(|p| {
            if p == 22 || p == 53 {
                Outcome::Answered
            } else {
                Outcome::Rejected
            }
        }));
        let starts: Vec<_> = ev.iter().filter(|e| e.phase == Phase::Start).collect();
        assert_eq!(starts.len(), 1, "{ev:#?}");
        let end = ev.last().unwrap();
        assert_eq!(end.phase, Phase::End);
        let det = &end.detection;
        assert_eq!(det.kind, ScanKind::Distributed);
        assert_eq!(det.targets, vec![addr("198.19.1.10")]);
        assert_eq!(
            det.sources,
            (31..=35)
                .map(|i| Addr::from_v4([198, 18, 0, i]))
                .collect::<Vec<_>>()
        );
        assert_eq!(det.ports, (1..=60).collect::<Vec<u16>>());
        assert_eq!(det.probes, 60);
        assert_eq!(det.answered, 2);
        assert_eq!(det.rejected, 58);
        assert_eq!(det.open, vec!["198.19.1.10:22", "198.19.1.10:53"]);
        // All five have 12 ports: the lowest address is the scanner.
        assert_eq!(det.scanner, addr("198.18.0.31"));
        assert_eq!(det.detector, "window:5m");
        assert_eq!(d.stats.distributed_started, 1);
        assert_eq!(d.stats.distributed_ended, 1);
        // Flagged once 20 failed ports from three sources were seen: at the
        // third source's first ports (an answered port does not count).
        let start = starts[0];
        assert!(start.detection.port_count >= 20);
        assert_eq!(start.detection.sources.len(), 3);
    }

    #[test]
    fn the_busiest_source_is_the_scanner() {
        let mut v = split_range(|_| Outcome::Unanswered);
        let target = addr("198.19.1.10");
        let busy = addr("198.18.0.99");
        for p in 100..115u16 {
            v.push(att(
                20 * SEC + i64::from(p),
                busy,
                target,
                p,
                Outcome::Unanswered,
            ));
        }
        let (ev, _) = run(v);
        let end = ev.iter().find(|e| e.phase == Phase::End).unwrap();
        assert_eq!(end.detection.scanner, busy);
        assert_eq!(end.detection.sources.len(), 6);
        assert_eq!(end.detection.port_count, 75);
    }

    #[test]
    fn a_lone_vertical_scanner_with_noise_is_not_distributed() {
        let target = addr("198.19.1.10");
        let mut v = Vec::new();
        for p in 1..=30u16 {
            v.push(att(
                i64::from(p) * SEC,
                addr("198.18.0.1"),
                target,
                p,
                Outcome::Rejected,
            ));
        }
        // Three others on a few ports each, once it has 25 ports alone.
        for (i, s) in ["198.18.0.2", "198.18.0.3", "198.18.0.4"]
            .iter()
            .enumerate()
        {
            for p in 0..4u16 {
                let port = 1000 + i as u16 * 10 + p;
                v.push(att(
                    25 * SEC + i64::from(port) * SEC / 1000,
                    addr(s),
                    target,
                    port,
                    Outcome::Rejected,
                ));
            }
        }
        let (ev, _) = run(v);
        assert!(ev.is_empty(), "{ev:#?}");
    }

    #[test]
    fn clients_of_a_server_with_closed_ports_are_not_distributed() {
        // 50 clients, each trying 2-3 of the server's closed ports once
        // (a restarted server: 8080, 8443, 9000), and talking on 443.
        let server = addr("198.19.1.10");
        let closed = [8080u16, 8443, 9000];
        let mut v = Vec::new();
        for c in 0..50u32 {
            let client = Addr::from_v4([198, 18, 1, c as u8 + 1]);
            let t0 = i64::from(c) * 3 * SEC;
            for k in 0..(2 + c as usize % 2) {
                v.push(att(
                    t0 + k as i64,
                    client,
                    server,
                    closed[(c as usize + k) % 3],
                    Outcome::Rejected,
                ));
            }
            let mut ok = att(t0 + 10, client, server, 443, Outcome::Answered);
            ok.data = true;
            v.push(ok);
        }
        let (ev, d) = run(v);
        assert!(ev.is_empty(), "{ev:#?}");
        // The conversations are no probes: only the failures were counted.
        assert_eq!(d.stats.target_attempts, 125);
    }

    #[test]
    fn peers_each_failing_on_one_random_port_are_not_distributed() {
        // A NAT gateway's stale mappings: 200 peers each try one (different)
        // high port, twice.
        let gw = addr("198.19.1.10");
        let mut v = Vec::new();
        for c in 0..200u32 {
            let peer = Addr::from_v4([198, 18, (c / 200) as u8 + 2, (c % 200) as u8 + 1]);
            let port = 40_000 + (c * 37 % 20_000) as u16;
            for k in 0..2 {
                v.push(att(
                    i64::from(c) * SEC + k * 3 * SEC,
                    peer,
                    gw,
                    port,
                    Outcome::Unanswered,
                ));
            }
        }
        let (ev, _) = run(v);
        assert!(ev.is_empty(), "{ev:#?}");
    }

    #[test]
    fn the_record_ends_after_scan_idle_and_a_new_campaign_is_a_new_record() {
        let mut v = split_range(|_| Outcome::Rejected);
        let later: Vec<Attempt> = split_range(|_| Outcome::Rejected)
            .into_iter()
            .map(|mut a| {
                a.time += 3600 * SEC;
                a.probe_ts = a.time;
                a
            })
            .collect();
        v.extend(later);
        let (ev, d) = run(v);
        let phases: Vec<Phase> = ev.iter().map(|e| e.phase).collect();
        assert_eq!(phases.iter().filter(|p| **p == Phase::Start).count(), 2);
        assert_eq!(phases.iter().filter(|p| **p == Phase::End).count(), 2);
        let first_end = ev.iter().find(|e| e.phase == Phase::End).unwrap();
        assert_eq!(first_end.time, 15 * SEC + 600 * SEC);
        let ids: std::collections::HashSet<&str> = ev
            .iter()
            .map(|e| e.detection.detection_id.as_str())
            .collect();
        assert_eq!(ids.len(), 2);
        assert_eq!(d.sizes().1, 0);
    }

    #[test]
    fn the_record_tells_an_update_when_it_doubles() {
        // 5 sources x 12 ports, then 5 more sources x 12 more ports.
        let mut v = split_range(|_| Outcome::Rejected);
        let target = addr("198.19.1.10");
        for port in 61..=180u16 {
            let src = Addr::from_v4([198, 18, 0, 40 + ((port - 61) / 12) as u8]);
            v.push(att(
                i64::from(port) * SEC / 4,
                src,
                target,
                port,
                Outcome::Rejected,
            ));
        }
        let (ev, _) = run(v);
        let updates = ev.iter().filter(|e| e.phase == Phase::Update).count();
        assert!(
            updates >= 2,
            "{:?}",
            ev.iter().map(|e| e.phase).collect::<Vec<_>>()
        );
        let end = ev.last().unwrap();
        assert_eq!(end.detection.sources.len(), 15);
        assert_eq!(end.detection.port_count, 180);
    }

    #[test]
    fn caps_evict_targets_and_contacts_and_count_it() {
        let mut d = Distributed::new(DetectConfig::default()).unwrap();
        d.max_targets = 100;
        let mut ev = Vec::new();
        let src = addr("198.18.0.1");
        for i in 0..1000u32 {
            let dst = Addr::from_v4([198, 19, (i / 250) as u8, (i % 250) as u8]);
            d.on_attempt(
                &att(i64::from(i), src, dst, 80, Outcome::Unanswered),
                &mut ev,
            );
        }
        assert!(d.sizes().0 <= 100);
        assert!(d.stats.targets_evicted >= 900);
        let target = addr("198.19.9.9");
        for p in 0..(MAX_TARGET_CONTACTS as u32 + 10) {
            let s = Addr::from_v4([198, 18, 2, (p % 2) as u8 + 1]);
            d.on_attempt(
                &att(2000 + i64::from(p), s, target, p as u16, Outcome::Rejected),
                &mut ev,
            );
        }
        assert!(d.stats.target_contacts_evicted >= (MAX_TARGET_CONTACTS / 4) as u64);
        assert!(d.contacts_held() <= 100 + MAX_TARGET_CONTACTS);
        // Two sources only, each alone a vertical scanner: never distributed.
        assert!(ev.is_empty());
    }

    /// A target's failed contacts, oldest time and counts (sorted).
    type Counted = (
        u32,
        Micros,
        Option<(Vec<(u16, u32)>, Vec<(Addr, u32)>, u32)>,
    );

    /// What a target's counts say after its trims, against the same counts
    /// made again from the contacts it kept.
    fn counts_of(t: &Target) -> Counted {
        let counts = t.counts.as_ref().map(|c| {
            let mut p: Vec<(u16, u32)> = c.port_fails.iter().map(|(&k, &v)| (k, v)).collect();
            let mut s: Vec<(Addr, u32)> = c.src_fails.iter().map(|(&k, &v)| (k, v)).collect();
            p.sort_unstable();
            s.sort_unstable();
            (p, s, c.wide_sources)
        });
        (t.failed, t.oldest, counts)
    }

    #[test]
    fn a_trimmed_target_counts_what_it_kept() {
        // Many sources toward one target, a few ports each, some answered
        // and some answered later (a failed contact that stops being one):
        // three trims of the oldest quarter.
        let mut d = Distributed::new(DetectConfig::default()).unwrap();
        let mut ev = Vec::new();
        let target = addr("198.19.9.9");
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let key = (target, proto::TCP);
        let mut trims = 0;
        for i in 0..(MAX_TARGET_CONTACTS as i64 * 2) {
            let r = next();
            // Every fourth attempt is a lone vertical scanner's (a new port
            // each time), which keeps the target from firing: its contacts
            // stay in the target to be trimmed.
            let (src, port) = if i % 4 == 0 {
                (addr("198.18.99.99"), (i / 4) as u16)
            } else {
                (
                    Addr::from_v4([198, 18, (r % 7) as u8, (r >> 8) as u8 % 200]),
                    (r >> 16) as u16 % 300,
                )
            };
            let outcome = match r >> 40 & 7 {
                0 => Outcome::Answered,
                1 | 2 => Outcome::Unanswered,
                _ => Outcome::Rejected,
            };
            let before = d.stats.target_contacts_evicted;
            d.on_attempt(&att(1000 * i, src, target, port, outcome), &mut ev);
            if d.stats.target_contacts_evicted != before {
                trims += 1;
                let t = d.targets.get_mut(&key).expect("the target");
                let kept = counts_of(t);
                t.recount(d.min_ports);
                assert_eq!(kept, counts_of(t), "after trim {trims}");
            }
        }
        assert!(trims >= 3, "{trims} trims");
    }
}
