//! One scan record: a flagged (source, protocol, technique) and everything
//! it probed, with the header facts that say how (module `tool`).
//! Ports are exact (a bitmap); targets, their ports and open doors are exact
//! up to [`DetectConfig::max_scan_targets`], and beyond it the target count
//! comes from a sketch of every target seen (an estimate, ~1.6% error). A
//! wide record (flagged from a source's sketches) counts its targets by the
//! sketch from the start and keeps no per-target table, so its cost per
//! attempt stays flat however many targets it reaches.
//!
//! The record also decides when a scan is worth telling (see the crate
//! docs): the first answered probe and each new door after it, rate-limited
//! ([`OPEN_DOOR_EVERY`]); a change of kind, re-checked whenever a new target,
//! a new port or a new many-port target appears (constant work: the count of
//! many-port targets is kept as it grows); a periodic update
//! ([`UPDATE_EVERY`]) while it grows. Events due at a time are stamped with
//! that time, so the same input gives the same events at any speed.

use crate::sketch::{hash_addr, Hll};
use crate::tool::Tally;
use crate::Cidr;
use crate::{
    detector_names, portless, ContactInfo, DetectConfig, Phase, ScanEvent, Trigger,
    OPEN_DOOR_EVERY, UPDATE_EVERY,
};
use foldhash::fast::RandomState;
use hashbrown::{HashMap, HashSet};
use scanwatch_model::ids::detection_id;
use scanwatch_model::{
    endpoint_text, Addr, Attempt, Detection, Micros, Outcome, ScanKind, Technique,
};
use std::cell::RefCell;
use std::sync::Arc;

/// Targets listed in a record's `targets` column.
const TARGET_SAMPLE: usize = 256;

pub(crate) struct Scan {
    pub scanner: Addr,
    pub proto: u8,
    /// The technique family of its probes (see [`Technique::of_probe`]).
    pub tech: Technique,
    /// Header facts of its probes, for technique and tool.
    tally: Tally,
    /// Its `detection_id`, fixed when it starts (from its first time
    /// then): a probe resolved later may move `first` earlier, but alerts
    /// and rows of one record must keep one id.
    id: String,
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
    /// Targets with at least `block_ports` ports (as `dsts` counts them),
    /// kept as they grow so the kind is re-checked at constant cost.
    many: u64,
    /// The record's newest attempt (an end or periodic update points at it).
    last_trigger: Trigger,
    /// Doors in `open` already told (by the start or an open_door event).
    open_told: usize,
    /// Time of the last open_door event.
    door_at: Option<Micros>,
    /// The attempt of the first door not yet told.
    door_trigger: Option<Trigger>,
    /// Time of the last start or update event.
    update_at: Micros,
    /// Time of the first attempt after it (none yet: nothing new to tell).
    grown_at: Option<Micros>,
    /// When the next deferred event may fall due ([`Scan::next_due`], or
    /// `Micros::MAX`): the one comparison each attempt pays for them.
    due: Micros,
    /// Our networks (the detector's `home_net`), and whether the scanner
    /// and any of the sampled `targets` are in them: the direction, kept as
    /// targets are added rather than checked again at every event.
    home: Arc<[Cidr]>,
    scanner_home: bool,
    targets_home: bool,
    /// What every event repeats, made once and extended as the record
    /// grows (see [`EventCache`]).
    cache: RefCell<EventCache>,
}

/// Doors whose text a record keeps between events (about 80 bytes each):
/// a record with more formats them at each event instead, so the cache
/// adds at most ~80 KiB to any record, whatever a hostile network answers.
const DOOR_TEXTS_KEPT: usize = 1024;

/// Parts of a record's events that only grow: its open doors as text, in
/// (address, port) order, and its campaign id for the inputs it was made
/// from. An event between two others used to format every door and hash
/// every target again.
#[derive(Default)]
struct EventCache {
    /// Doors of `open[..doors]`, sorted, with their text.
    doors: usize,
    open: Vec<((Addr, u16), String)>,
    /// The campaign id and what it was made from: (targets sampled, ports,
    /// tool, technique). Targets and ports only grow, so equal counts mean
    /// equal lists.
    campaign: Option<(CampaignInputs, String)>,
    /// The ports, ascending, and the name of their set, for `port_count`
    /// ports (they only grow, so an equal count means the same ports).
    /// Kept for at most [`PORTS_KEPT`] ports (2 KiB); a record with more
    /// walks its bitmap at each event instead.
    ports: Option<(u32, Vec<u16>, String)>,
}

/// Ports whose list a record keeps between events (see [`EventCache`]).
/// Most events (an open door, an update of a horizontal scan, the end)
/// come with the same ports as the event before, and the list is a walk of
/// an 8 KiB bitmap and a count of nmap's top ports.
const PORTS_KEPT: u32 = 1024;

/// What a campaign id is made from, as counts: (targets sampled, ports,
/// tool, technique).
type CampaignInputs = (usize, u32, &'static str, Technique);

impl Scan {
    pub fn new(
        scanner: Addr,
        proto: u8,
        tech: Technique,
        kind: ScanKind,
        detectors: u8,
        trigger: Trigger,
        home: Arc<[Cidr]>,
    ) -> Scan {
        let at = trigger.time;
        let scanner_home = home.iter().any(|c| c.contains(scanner));
        Scan {
            scanner,
            proto,
            tech,
            tally: Tally::default(),
            id: String::new(),
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
            many: 0,
            last_trigger: trigger,
            open_told: 0,
            door_at: None,
            door_trigger: None,
            update_at: at,
            grown_at: None,
            due: Micros::MAX,
            home,
            scanner_home,
            targets_home: false,
            cache: RefCell::new(EventCache::default()),
        }
    }

    /// Adds a target to the sample (the caller checked there is room).
    fn sample_target(&mut self, dst: Addr) {
        self.targets.push(dst);
        if !self.targets_home && self.home.iter().any(|c| c.contains(dst)) {
            self.targets_home = true;
        }
    }

    /// Counts one contact; true when the record's shape grew (a new port,
    /// a new target, or a target reaching `block_ports` ports): only then
    /// can its kind change.
    fn touch(
        &mut self,
        dst: Addr,
        port: u16,
        first: Micros,
        last: Micros,
        cfg: &DetectConfig,
    ) -> bool {
        self.first = self.first.min(first);
        self.last = self.last.max(last);
        let (w, b) = (usize::from(port) / 64, port % 64);
        let mut grew = false;
        if self.ports[w] & (1 << b) == 0 {
            self.ports[w] |= 1 << b;
            self.port_count += 1;
            grew = true;
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
                self.sample_target(dst);
            }
            // A wide record stays block: no shape to re-check.
            return false;
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
                    if *ports == cfg.block_ports {
                        self.many += 1;
                        grew = true;
                    }
                }
                grew
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
                        grew = true;
                    }
                    return grew;
                }
                if self.targets.len() < TARGET_SAMPLE {
                    self.targets.push(dst);
                    if !self.targets_home && self.home.iter().any(|c| c.contains(dst)) {
                        self.targets_home = true;
                    }
                }
                let t = n as u32;
                let new_pair = room && self.pairs.insert(pair(t));
                v.insert((t, u32::from(new_pair)));
                if u32::from(new_pair) >= cfg.block_ports {
                    self.many += 1;
                }
                true
            }
        }
    }

    /// Records an open door; true when it is new.
    fn mark_open(&mut self, dst: Addr, port: u16, cfg: &DetectConfig) -> bool {
        let port = if portless(self.proto) { 0 } else { port };
        if self.open_set.len() < cfg.max_scan_targets && self.open_set.insert((dst, port)) {
            self.open.push((dst, port));
            return true;
        }
        false
    }

    pub fn add_contact(&mut self, dst: Addr, port: u16, c: &ContactInfo, cfg: &DetectConfig) {
        self.touch(dst, port, c.first, c.last, cfg);
        self.tally.add_probe(
            self.proto,
            self.tech,
            c.answered > 0,
            (c.handshake, c.abortive),
            &c.print,
            (c.first, dst, port, c.sport),
        );
        self.probes += u64::from(c.probes);
        self.answered += u64::from(c.answered);
        self.rejected += u64::from(c.rejected);
        self.unanswered += u64::from(c.unanswered);
        if c.answered > 0 {
            self.mark_open(dst, port, cfg);
        }
    }

    /// Marks the doors held so far as told (the start event carries them).
    pub fn started(&mut self) {
        self.open_told = self.open.len();
        self.id = detection_id(self.scanner, self.proto, self.tech, self.first);
    }

    /// Counts one attempt of the flagged source; returns (the shape grew,
    /// a new door opened).
    fn add_attempt(&mut self, a: &Attempt, cfg: &DetectConfig) -> (bool, bool) {
        let grew = self.touch(a.dst, a.dport, a.probe_ts, a.time, cfg);
        self.tally.add(a);
        self.probes += 1;
        self.last_trigger = Trigger::of(a);
        let mut door = false;
        match a.outcome {
            Outcome::Answered => {
                self.answered += 1;
                if !a.probe.is_stealth() {
                    door = self.mark_open(a.dst, a.dport, cfg);
                }
            }
            Outcome::Rejected => self.rejected += 1,
            Outcome::Unanswered => self.unanswered += 1,
        }
        (grew, door)
    }

    /// One attempt of the flagged source, and the events it brings: first
    /// those that fell due before it, then a kind change, an open door and
    /// a doubling update, each when there is one. Constant work unless an
    /// event is made.
    pub fn on_attempt(&mut self, a: &Attempt, cfg: &DetectConfig, out: &mut Vec<ScanEvent>) {
        if a.time >= self.due {
            self.flush_due(a.time, false, cfg, out);
        }
        let (grew, door) = self.add_attempt(a, cfg);
        if self.grown_at.is_none() {
            self.grown_at = Some(a.time);
            self.refresh_due();
        }
        if grew && !self.wide {
            let before = self.kind;
            self.reclassify(cfg);
            if self.kind != before {
                let mut ev = self.event(Phase::KindChange, a.time, Trigger::of(a), cfg);
                ev.previous_kind = Some(before);
                out.push(ev);
            }
        }
        if door {
            let free = self
                .door_at
                .is_none_or(|t| a.time >= t.saturating_add(OPEN_DOOR_EVERY));
            if free {
                out.push(self.open_door_event(a.time, Trigger::of(a), cfg));
            } else if self.door_trigger.is_none() {
                self.door_trigger = Some(Trigger::of(a));
                self.refresh_due();
            }
        }
        if let Some(ev) = self.maybe_update(cfg, a) {
            out.push(ev);
        }
    }

    /// When untold doors fall due: one [`OPEN_DOOR_EVERY`] after the last
    /// open_door event.
    fn door_due(&self) -> Option<Micros> {
        self.door_at
            .filter(|_| self.open.len() > self.open_told)
            .map(|t| t.saturating_add(OPEN_DOOR_EVERY))
    }

    /// When a periodic update falls due: one [`UPDATE_EVERY`] after the
    /// last start or update if attempts came since, or at the first of them
    /// if it came later (a scan resuming after a pause is told at once).
    fn update_due(&self) -> Option<Micros> {
        self.grown_at
            .map(|g| g.max(self.update_at.saturating_add(UPDATE_EVERY)))
    }

    fn refresh_due(&mut self) {
        self.due = match (self.door_due(), self.update_due()) {
            (Some(d), Some(u)) => d.min(u),
            (d, u) => d.or(u).unwrap_or(Micros::MAX),
        };
    }

    /// When the next deferred event falls due (untold doors or a periodic
    /// update), if any.
    pub fn next_due(&self) -> Option<Micros> {
        (self.due != Micros::MAX).then_some(self.due)
    }

    /// Emits the deferred events due at or before `now`, each stamped with
    /// the time it fell due, in time order. With `end`, untold doors are
    /// told now whatever the rate (stamped no later than `now`): the record
    /// is closing.
    pub fn flush_due(
        &mut self,
        now: Micros,
        end: bool,
        cfg: &DetectConfig,
        out: &mut Vec<ScanEvent>,
    ) {
        // At most one of each: after an update the next is a minute later,
        // after a door event no door is untold.
        for _ in 0..2 {
            let update = self.update_due().filter(|&u| u <= now);
            let door = self
                .door_due()
                .filter(|&d| d <= now || end)
                .map(|d| d.min(now));
            match (door, update) {
                (Some(d), u) if u.is_none_or(|u| d <= u) => {
                    let trigger = self.door_trigger.unwrap_or(self.last_trigger);
                    let ev = self.open_door_event(d, trigger, cfg);
                    out.push(ev);
                }
                (_, Some(u)) => {
                    let ev = self.event(Phase::Update, u, self.last_trigger, cfg);
                    out.push(ev);
                }
                _ => return,
            }
        }
    }

    /// An open_door event at `at`: the doors not yet told.
    fn open_door_event(&mut self, at: Micros, trigger: Trigger, cfg: &DetectConfig) -> ScanEvent {
        let mut new: Vec<(Addr, u16)> = self.open[self.open_told..].to_vec();
        new.sort_unstable();
        self.open_told = self.open.len();
        self.door_at = Some(at);
        self.door_trigger = None;
        self.refresh_due();
        let mut ev = self.event(Phase::OpenDoor, at, trigger, cfg);
        ev.new_open = new.into_iter().map(|(a, p)| self.door_text(a, p)).collect();
        ev
    }

    fn door_text(&self, a: Addr, p: u16) -> String {
        endpoint_text(a, if portless(self.proto) { None } else { Some(p) })
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
        let many = self.many;
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
    fn maybe_update(&mut self, cfg: &DetectConfig, a: &Attempt) -> Option<ScanEvent> {
        let size = self.dst_count().max(u64::from(self.port_count));
        if size < self.next_update {
            return None;
        }
        self.reclassify(cfg);
        Some(self.event(Phase::Update, a.time, Trigger::of(a), cfg))
    }

    /// The record as an event; a start or update also sets when the next
    /// doubling and periodic updates fall due.
    pub fn event(
        &mut self,
        phase: Phase,
        at: Micros,
        trigger: Trigger,
        cfg: &DetectConfig,
    ) -> ScanEvent {
        if matches!(phase, Phase::Start | Phase::Update) {
            let size = self.dst_count().max(u64::from(self.port_count));
            self.next_update = (size * 2).max(size + 10);
            self.update_at = at;
            self.grown_at = None;
            self.refresh_due();
        }
        ScanEvent {
            phase,
            time: at,
            detection: self.detection(cfg),
            new_open: Vec::new(),
            previous_kind: None,
            trigger: Some(trigger),
            direction_set: true,
        }
    }

    /// The record's newest attempt.
    pub fn last_trigger(&self) -> Trigger {
        self.last_trigger
    }

    /// The ports, ascending, and the name of their set (see
    /// [`crate::tool::port_set`]).
    fn ports_list(&self) -> (Vec<u16>, String) {
        let mut c = self.cache.borrow_mut();
        if let Some((n, ports, set)) = &c.ports {
            if *n == self.port_count {
                return (ports.clone(), set.clone());
            }
        }
        let ports = ports_of(&self.ports, self.port_count);
        let set = crate::tool::port_set(self.proto, &ports);
        c.ports =
            (self.port_count <= PORTS_KEPT).then(|| (self.port_count, ports.clone(), set.clone()));
        (ports, set)
    }

    /// The open doors as text, sorted by (address, port): the doors added
    /// since the last call are formatted and merged into the cache.
    fn open_texts(&self) -> Vec<String> {
        if self.open.len() > DOOR_TEXTS_KEPT {
            // Beyond the cache's bound: made at each event, as before.
            let mut c = self.cache.borrow_mut();
            c.open = Vec::new();
            c.doors = 0;
            drop(c);
            let mut open = self.open.clone();
            open.sort_unstable();
            return open
                .into_iter()
                .map(|(a, p)| self.door_text(a, p))
                .collect();
        }
        let mut c = self.cache.borrow_mut();
        if c.doors < self.open.len() {
            let mut new: Vec<((Addr, u16), String)> = self.open[c.doors..]
                .iter()
                .map(|&(a, p)| ((a, p), self.door_text(a, p)))
                .collect();
            new.sort_unstable_by_key(|(k, _)| *k);
            let old = std::mem::take(&mut c.open);
            let mut merged = Vec::with_capacity(old.len() + new.len());
            let (mut i, mut j) = (old.into_iter().peekable(), new.into_iter().peekable());
            while let (Some(x), Some(y)) = (i.peek(), j.peek()) {
                if x.0 <= y.0 {
                    merged.extend(i.next());
                } else {
                    merged.extend(j.next());
                }
            }
            merged.extend(i);
            merged.extend(j);
            c.open = merged;
            c.doors = self.open.len();
        }
        c.open.iter().map(|(_, t)| t.clone()).collect()
    }

    /// The campaign id (see [`campaign_id`]), made again only when its
    /// inputs changed.
    fn campaign(&self, v: &crate::tool::Verdict, ports: &[u16]) -> String {
        let key = (self.targets.len(), self.port_count, v.tool, v.technique);
        let mut c = self.cache.borrow_mut();
        match &c.campaign {
            Some((k, id)) if *k == key => id.clone(),
            _ => {
                let id = campaign_id(self.proto, v, &self.targets, ports);
                c.campaign = Some((key, id.clone()));
                id
            }
        }
    }

    pub fn detection(&self, cfg: &DetectConfig) -> Detection {
        let open = self.open_texts();
        let (ports, set) = self.ports_list();
        let v = self.tally.verdict(self.tech, self.proto, set);
        let campaign_id = self.campaign(&v, &ports);
        Detection {
            direction: scanwatch_model::Direction::of(self.scanner_home, self.targets_home),
            detection_id: if self.id.is_empty() {
                detection_id(self.scanner, self.proto, self.tech, self.first)
            } else {
                self.id.clone()
            },
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
            ports,
            targets: self.targets.clone(),
            open,
            technique: v.technique,
            tool: v.tool.to_string(),
            tool_evidence: v.evidence,
            rate_pps: v.rate_pps,
            order: v.order.to_string(),
            port_set: v.port_set,
            campaign_id,
            sources: Vec::new(),
        }
    }
}

/// A campaign id: 16 hex digits over what a campaign's sources share and a
/// lone scanner's records do not — the tool, the technique, the protocol, the targets (the sample, sorted) and the ports.
/// nmap's decoys (`-D`) send the same probes from every address, so their
/// records end with one id; a lone scanner's id is its own. Made from the
/// record alone, so it is the same at any thread count and in any order.
fn campaign_id(proto: u8, v: &crate::tool::Verdict, targets: &[Addr], ports: &[u16]) -> String {
    let mut t: Vec<Addr> = targets.to_vec();
    t.sort_unstable();
    let addrs: Vec<u8> = t.iter().flat_map(|a| a.0).collect();
    let port_bytes: Vec<u8> = ports.iter().flat_map(|p| p.to_le_bytes()).collect();
    let h = scanwatch_model::ids::fnv1a64(&[
        b"campaign",
        v.tool.as_bytes(),
        v.technique.name().as_bytes(),
        &[proto],
        &addrs,
        &port_bytes,
    ]);
    format!("{h:016x}")
}

/// The ports set in a port bitmap (one bit per port), ascending; `count`
/// is how many there are.
pub(crate) fn ports_of(bits: &[u64; 1024], count: u32) -> Vec<u16> {
    let mut v = Vec::with_capacity(count as usize);
    for (w, word) in bits.iter().enumerate() {
        let mut b = *word;
        while b != 0 {
            v.push((w * 64) as u16 + b.trailing_zeros() as u16);
            b &= b - 1;
        }
    }
    v
}
