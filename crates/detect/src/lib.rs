//! Port-scan detection: connection attempts in, scan events out.
//!
//! A [`Detector`] owns every source address routed to its shard and sees that
//! source's attempts in one deterministic order (the pipeline merges the flow
//! workers' streams by time and content). For each source it keeps the
//! distinct contacts — (target, protocol, port) with last-seen time and
//! outcomes — capped per source, and looks for three shapes in several
//! sliding windows at once, with exact distinct counts:
//!
//! * **horizontal** — one (protocol, port) or ICMP type, many targets;
//! * **vertical** — one target, many ports;
//! * **block** — many targets each probed on many ports;
//!
//! plus the **threshold random walk** (Jung, Paxson, Berger, Balakrishnan
//! 2004) over first contacts to new targets, which flags a source whose first
//! contacts keep failing after about five of them, whatever the window.
//!
//! Busy benign hosts (resolvers, mail relays, pollers; DESIGN §4) are told
//! apart by what they do besides failing: every answered exchange of a
//! conversation counts against the failures (in the windows' failure share
//! and as a TRW step down), a failed contact tried again well after its
//! first probe is a service that is down ([`TRW_REPOLL`]), a TRW shape
//! must hold at least half of the source's failures (not one port among a
//! P2P client's hundreds), and a failure counts toward TRW only once it has
//! settled ([`TRW_SETTLE`]).
//!
//! What a contact weighs depends on how it went: refused or ignored counts 1,
//! answered but dropped without data (a connect scan of an open port, an echo
//! reply) counts [`DetectConfig::answered_weight`], and a conversation counts
//! nothing and also lowers the share of failures that a key needs before it
//! can fire ([`DetectConfig::min_failed_share`]). So a busy client whose
//! connections succeed is never a scanner, while a connect scan that finds
//! every door open still is.
//!
//! Once flagged, a (source, protocol) gets one scan record that grows with
//! every further attempt, and is told as it happens, each [`ScanEvent`]
//! carrying the record as it stands and the attempt behind it
//! ([`Trigger`]). Latency is in packet time (the pipeline adds its own, the
//! watermark's wait for the slowest flow worker):
//!
//! * `start` — at the attempt that flags the source (no delay);
//! * `open_door` — at the first answered probe after the start (same
//!   attempt, no delay), then for each new door (target and port) at most
//!   one per [`OPEN_DOOR_EVERY`] (1 s) per scan: doors found meanwhile are
//!   told together when that second is over (stamped then, at the next
//!   attempt or watermark past it), and any still untold at the end just
//!   before it. `new_open` names the doors new since the last one; the
//!   record's `open` stays the full list;
//! * `kind_change` — at the attempt that changes the kind (the kind is
//!   re-checked whenever a new target, a new port or a new target with
//!   `block_ports` ports appears, at constant cost; wide records stay
//!   block), with `previous_kind`;
//! * `update` — when the record's size (the larger of its target and port
//!   counts) has doubled since the last start or update (at that attempt),
//!   and [`UPDATE_EVERY`] (60 s) after the last start or update if probes
//!   came since (stamped at that minute, told at the next attempt or
//!   watermark past it; a scan that resumes after a quiet minute gets one
//!   stamped at its first new probe);
//! * `end` — [`DetectConfig::scan_idle_secs`] (10 min) after the last probe,
//!   stamped then, or at the end of input; it points at the last attempt.
//!
//! Deferred events are stamped with the time they fell due, so a capture
//! gives the same events whatever the speed or thread count. The record
//! keeps the open doors — every (target, port) that answered.
//!
//! Memory is bounded: at most [`DetectConfig::max_sources`] sources per shard
//! (when full, the quarter with the least failed contacts and the oldest
//! activity is evicted and counted), at most [`DetectConfig::max_contacts`]
//! contacts per source (oldest first out), at most
//! [`DetectConfig::max_contacts_total`] contacts per shard (sources evicted as
//! above until under it), and at most
//! [`DetectConfig::max_scan_targets`] targets and open doors per scan record.
//!
//! A source that reaches [`SKETCH_START`] contacts (a masscan-style random
//! scan never repeats a key, so no shape forms in its exact set) is also
//! counted by fixed-size HyperLogLog sketches of its failed targets, ports
//! and pairs (module `sketch`): a few hashes per attempt, flagged from the
//! estimates at once (see `sketch_verdict`). At most one source per [`SKETCH_CONTACTS`]
//! contacts of the shard's cap holds sketches, [`SKETCH_SOURCE_BYTES`] each.

mod config;
mod contacts;
/// A scan spread over many sources toward one target
/// ([`ScanKind::Distributed`]) is the [`Distributed`] tracker's: it sees the
/// same attempts from their target's side (the pipeline routes them to the
/// target's shard too).
mod distributed;
mod nmap_top;
mod scan;
mod sketch;
mod tool;

pub use config::{
    Cidr, CidrProblem, ConfigError, DetectConfig, Lists, Service, ServiceProblem, Window,
    DEFAULT_HOME_NET,
};
use contacts::{ContactSet, ContactTable};
pub use distributed::{
    Distributed, MAX_CONTACTS_TOTAL, MAX_RECORD_PAIRS, MAX_RECORD_SOURCES, MAX_TARGETS,
    MAX_TARGET_CONTACTS, MIN_SOURCES, MIN_SOURCE_PORTS, SOURCES_LISTED, TARGET_CONTACT_WORST_BYTES,
};
use foldhash::fast::RandomState;
use hashbrown::HashMap;
use scan::Scan;
use scanwatch_model::{
    proto, Addr, Attempt, Detection, Direction, Micros, Outcome, ProbePrint, ScanKind, Technique,
};
pub use sketch::HLL_BYTES;
use sketch::{hash_addr, hash_pair, hash_port, Hll};
pub use tool::Verdict;

/// What happened to a scan record (see the crate docs for when each is
/// told).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Start,
    Update,
    /// New open doors: listed in [`ScanEvent::new_open`].
    OpenDoor,
    /// The kind changed: the old one is [`ScanEvent::previous_kind`].
    KindChange,
    End,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Start => "start",
            Phase::Update => "update",
            Phase::OpenDoor => "open_door",
            Phase::KindChange => "kind_change",
            Phase::End => "end",
        }
    }
}

/// Least packet time between two open_door events of one scan.
pub const OPEN_DOOR_EVERY: Micros = 1_000_000;

/// Packet time between periodic updates of a scan that keeps probing.
pub const UPDATE_EVERY: Micros = 60_000_000;

/// The attempt behind an event (for an end or a periodic update, the
/// scan's last attempt; for a deferred open_door, the first door's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trigger {
    pub dst: Addr,
    pub dport: u16,
    pub sport: u16,
    /// The probe's flow ([`Attempt::flow_id`]).
    pub flow_id: u64,
    /// When the attempt's outcome was known ([`Attempt::time`]).
    pub time: Micros,
}

impl Trigger {
    pub fn of(a: &Attempt) -> Trigger {
        Trigger {
            dst: a.dst,
            dport: a.dport,
            sport: a.sport,
            flow_id: a.flow_id,
            time: a.time,
        }
    }
}

/// An alert-worthy moment of a scan: the record as it stands then.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanEvent {
    pub phase: Phase,
    pub time: Micros,
    pub detection: Detection,
    /// For [`Phase::OpenDoor`]: the doors (`addr:port`, as in
    /// [`Detection::open`], sorted) answered since the last open_door event.
    /// Empty for the other phases.
    pub new_open: Vec<String>,
    /// For [`Phase::KindChange`]: the kind before.
    pub previous_kind: Option<ScanKind>,
    /// The attempt behind the event.
    pub trigger: Option<Trigger>,
    /// The detection's direction is already set (a scan record keeps its
    /// own as targets are added): [`Detector::set_directions`] leaves it.
    pub direction_set: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetectStats {
    pub attempts: u64,
    /// Attempts ignored because of an allow-list.
    pub allowed: u64,
    pub sources: u64,
    pub sources_evicted: u64,
    pub contacts_evicted: u64,
    pub scans_started: u64,
    pub scans_ended: u64,
    /// Sources that reached [`SKETCH_START`] contacts while every sketch
    /// slot of the shard was taken: a random scan among them is seen only
    /// through its exact set (counted once per source).
    pub sketches_denied: u64,
    /// Probe-like attempts seen from their target's side ([`Distributed`]).
    pub target_attempts: u64,
    /// Targets the distributed tracker evicted to stay under its caps.
    pub targets_evicted: u64,
    /// (source, port) contacts of a target dropped at its cap.
    pub target_contacts_evicted: u64,
    /// Distributed scan records opened and closed.
    pub distributed_started: u64,
    pub distributed_ended: u64,
}

impl std::ops::AddAssign for DetectStats {
    /// Sums another detector's counters into these (the pipeline's total).
    fn add_assign(&mut self, o: DetectStats) {
        let DetectStats {
            attempts,
            allowed,
            sources,
            sources_evicted,
            contacts_evicted,
            scans_started,
            scans_ended,
            sketches_denied,
            target_attempts,
            targets_evicted,
            target_contacts_evicted,
            distributed_started,
            distributed_ended,
        } = o;
        self.attempts += attempts;
        self.allowed += allowed;
        self.sources += sources;
        self.sources_evicted += sources_evicted;
        self.contacts_evicted += contacts_evicted;
        self.scans_started += scans_started;
        self.scans_ended += scans_ended;
        self.sketches_denied += sketches_denied;
        self.target_attempts += target_attempts;
        self.targets_evicted += targets_evicted;
        self.target_contacts_evicted += target_contacts_evicted;
        self.distributed_started += distributed_started;
        self.distributed_ended += distributed_ended;
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
struct Contact {
    dst: Addr,
    proto: u8,
    /// The probes' technique family (a SYN family may be a connect scan).
    tech: Technique,
    port: u16,
}

#[derive(Clone, Copy, Debug)]
struct ContactInfo {
    first: Micros,
    last: Micros,
    probes: u32,
    answered: u32,
    rejected: u32,
    unanswered: u32,
    success: bool,
    /// Some answered SYN of it had its handshake completed, and closed by
    /// the originator's reset.
    handshake: bool,
    abortive: bool,
    /// The first probe's header facts and source port, for the record's
    /// tool attribution if the source is flagged.
    print: ProbePrint,
    sport: u16,
}

impl ContactInfo {
    /// A contact of the probe of `a`, before `a` is counted.
    fn new(a: &Attempt) -> ContactInfo {
        ContactInfo {
            first: a.probe_ts,
            last: a.time,
            probes: 0,
            answered: 0,
            rejected: 0,
            unanswered: 0,
            success: false,
            handshake: false,
            abortive: false,
            print: a.print,
            sport: a.sport,
        }
    }

    /// Counts attempt `a` of this contact.
    fn count(&mut self, a: &Attempt) {
        self.last = self.last.max(a.time);
        self.probes += 1;
        match a.outcome {
            Outcome::Answered => self.answered += 1,
            Outcome::Rejected => self.rejected += 1,
            Outcome::Unanswered => self.unanswered += 1,
        }
        self.success |= a.is_success();
        self.handshake |= a.handshake;
        self.abortive |= a.abortive;
    }

    fn weight(&self, answered_weight: f64) -> f64 {
        if self.success {
            0.0
        } else if self.answered > 0 {
            answered_weight
        } else {
            1.0
        }
    }

    fn failed(&self) -> bool {
        !self.success && self.answered == 0
    }
}

/// A source as the source table holds it: what eviction ranks it by
/// (`last`, `score`) beside its key, the rest boxed. The table's entries are
/// 48 bytes, so ranking a full table streams a fifth of what it did with
/// the whole source inline (232 bytes an entry), and a removal moves a
/// pointer; under a flood of spoofed sources the ranking was a tenth of the
/// run. The rest is reached through `Deref`.
///
/// A source made by one attempt and not changed since (most sources of a
/// flood of spoofed addresses) is *light*: its rest holds that one contact
/// inline and owns no allocation, which the entry knows without reading
/// it. Eviction then forgets it without touching its rest, and keeps the
/// rest's memory for the next new source (see [`Detector`]'s
/// `spare_rests`): a flood's new source and its eviction each cost a miss
/// on memory no other source shares.
struct Source {
    last: Micros,
    /// Sum of contact weights: how suspicious the source looks (eviction
    /// keeps the highest).
    score: f64,
    /// One contact inline, nothing allocated inside `rest` (cleared by any
    /// change through `DerefMut`).
    light: bool,
    rest: Box<SourceRest>,
}

impl std::ops::Deref for Source {
    type Target = SourceRest;
    fn deref(&self) -> &SourceRest {
        &self.rest
    }
}

impl std::ops::DerefMut for Source {
    fn deref_mut(&mut self) -> &mut SourceRest {
        self.light = false;
        &mut self.rest
    }
}

#[derive(Default)]
struct SourceRest {
    /// Its contacts: the first inline, a table from the second on.
    contacts: ContactSet,
    /// Contacts per target, to tell a first contact (TRW) from a repeat.
    /// Made at the source's second count: until then `one_dst` holds the
    /// only target, counted once (most sources of a flood or a wide scan
    /// seen from its targets' side have one contact, and the table's first
    /// allocation was a quarter of such a source's cost).
    per_dst: HashMap<Addr, u32, RandomState>,
    /// The one target counted while `per_dst` is not made yet.
    one_dst: Option<Addr>,
    /// Targets in `per_dst` with at least `block_ports` contacts: an upper
    /// bound on a block's hosts, so `evaluate` skips the block count (a
    /// sort of every contact) while it is below `block_hosts`, as it stays
    /// for a random scan that hardly repeats a target.
    many_port_dsts: u32,
    trw_llr: f64,
    trw_hit: bool,
    /// Attempts since the last evaluation (see `on_attempt`).
    eval_skip: u32,
    /// Distinct counts beyond the exact set: made when the set first
    /// overflows, if the shard has room for one more.
    sketch: Option<Box<Sketches>>,
    /// Counted in `sketches_denied` (once).
    sketch_denied: bool,
}

impl SourceRest {
    /// Counts one more contact to `dst`.
    fn count_dst(&mut self, dst: Addr, block_ports: u32) {
        let n = if self.one_dst.is_none() && self.per_dst.is_empty() {
            self.one_dst = Some(dst);
            1
        } else {
            let n = self.dsts_mut().entry(dst).or_insert(0);
            *n += 1;
            *n
        };
        if n == block_ports {
            self.many_port_dsts += 1;
        }
    }

    /// Whether `dst` has been counted.
    fn has_dst(&self, dst: Addr) -> bool {
        self.one_dst == Some(dst) || self.per_dst.contains_key(&dst)
    }

    /// The counts per target as a table (made from `one_dst` if need be).
    fn dsts_mut(&mut self) -> &mut HashMap<Addr, u32, RandomState> {
        if let Some(d) = self.one_dst.take() {
            self.per_dst.insert(d, 1);
        }
        &mut self.per_dst
    }

    /// Counts the contacts per target again, from the contacts held.
    fn recount_dsts(&mut self, block_ports: u32) {
        self.per_dst.clear();
        self.one_dst = None;
        self.many_port_dsts = 0;
        let dsts: Vec<Addr> = self.contacts.keys().map(|c| c.dst).collect();
        for d in dsts {
            self.count_dst(d, block_ports);
        }
    }
}

/// Capacity of a contact table kept for reuse ([`Detector`]'s
/// `spare_contacts`): the smallest a table with entries has.
const SPARE_TABLE_CAPACITY: usize = 3;

/// Most protocols sketched per source (the first ones seen failing).
pub const SKETCH_PROTOS: usize = 2;

/// The sketches' budget: a shard has at most
/// `max_contacts_total / SKETCH_CONTACTS` sources with sketches (at least
/// one, first come; a slot frees when its sketches age out of the longest
/// window or its source is flagged), so sketches cost at most
/// [`SKETCH_BYTES_PER_CONTACT`] per contact of the shard's cap.
pub const SKETCH_CONTACTS: usize = 4096;

/// Exact contacts at which a source also starts to be counted by sketches
/// (or at `max_contacts`, if lower): a random scan over many hosts and
/// ports has no shape the exact windows can see, so it is flagged from its
/// sketches, at about this many attempts, however wide it is. Before that
/// every attempt of such a source goes through the exact set and its
/// evaluation, the costly path; after it, through its scan record.
pub const SKETCH_START: usize = 256;

/// Bytes of one source's sketches at most: [`SKETCH_PROTOS`] sets of three
/// sketches, plus their header.
pub const SKETCH_SOURCE_BYTES: usize = SKETCH_PROTOS * (3 * HLL_BYTES + 64) + 64;

/// The sketches' share of a contact's worst-case bytes (rounded up).
pub const SKETCH_BYTES_PER_CONTACT: usize = SKETCH_SOURCE_BYTES.div_ceil(SKETCH_CONTACTS);

/// A source needs at least this share of failed attempts since its
/// sketches began to be flagged from them: beyond the exact set a shape is
/// only counts, so the bar is higher than `min_failed_share` (a P2P client
/// with thousands of peers on random ports, many of them answering, must not
/// look like a random scan).
pub const SKETCH_MIN_FAILED_SHARE: f64 = 0.9;

/// A source's sketches: failed contacts since `since` (the oldest last-seen
/// time of what they hold), per protocol.
struct Sketches {
    since: Micros,
    sets: Vec<ProtoSketch>,
}

/// Failed contacts of one protocol: distinct targets, ports and (target,
/// port) pairs, with their current estimates, and how many attempts failed.
struct ProtoSketch {
    proto: u8,
    tech: Technique,
    dsts: Hll,
    ports: Hll,
    pairs: Hll,
    est_dsts: f64,
    est_ports: f64,
    est_pairs: f64,
    failed: u64,
    attempts: u64,
}

impl ProtoSketch {
    fn new(proto: u8, tech: Technique) -> ProtoSketch {
        ProtoSketch {
            proto,
            tech,
            dsts: Hll::default(),
            ports: Hll::default(),
            pairs: Hll::default(),
            est_dsts: 0.0,
            est_ports: 0.0,
            est_pairs: 0.0,
            failed: 0,
            attempts: 0,
        }
    }

    /// Counts one attempt (or one contact, when seeding); a failed one goes
    /// into the sketches. A few hashes and register writes.
    #[inline]
    fn add(&mut self, dst: Addr, port: u16, failed: bool) {
        self.attempts += 1;
        if !failed {
            return;
        }
        self.failed += 1;
        let ha = hash_addr(dst);
        if self.dsts.insert(ha) {
            self.est_dsts = self.dsts.estimate();
        }
        if self.ports.insert(hash_port(port)) {
            self.est_ports = self.ports.estimate();
        }
        if self.pairs.insert(hash_pair(ha, port)) {
            self.est_pairs = self.pairs.estimate();
        }
    }
}

impl Sketches {
    /// Sketches seeded with a source's exact contacts (the ones about to be
    /// trimmed among them), for up to [`SKETCH_PROTOS`] protocols.
    fn seeded(src: &Source) -> Sketches {
        let mut s = Sketches {
            since: Micros::MAX,
            sets: Vec::with_capacity(SKETCH_PROTOS),
        };
        let mut since = Micros::MAX;
        let mut contacts: Vec<(&Contact, &ContactInfo)> = src.contacts.iter().collect();
        contacts.sort_unstable_by_key(|(c, i)| (i.first, **c));
        for (c, info) in contacts {
            if let Some(set) = s.set_mut(c.proto, c.tech) {
                since = since.min(info.last);
                set.add(c.dst, c.port, info.failed());
            }
        }
        s.since = if since == Micros::MAX {
            src.last
        } else {
            since
        };
        s
    }

    /// The set of `proto` and `tech`, made if there is room.
    fn set_mut(&mut self, proto: u8, tech: Technique) -> Option<&mut ProtoSketch> {
        let i = match self
            .sets
            .iter()
            .position(|s| (s.proto, s.tech) == (proto, tech))
        {
            Some(i) => i,
            None if self.sets.len() < SKETCH_PROTOS => {
                self.sets.push(ProtoSketch::new(proto, tech));
                self.sets.len() - 1
            }
            None => return None,
        };
        self.sets.get_mut(i)
    }
}

/// How long a failed contact waits before it counts toward a TRW shape:
/// longer than the period of the pollers that busy hosts run (a monitoring
/// round a minute, NTP's 64 s), so a service polled again in that time is
/// known for what it is first. Scans the windows see are not delayed.
pub const TRW_SETTLE: Micros = 90_000_000;

/// A failed contact probed again at least this long after its first probe
/// (beyond a scanner's retransmissions) is a polled service, part of no
/// shape (windows or TRW).
pub const TRW_REPOLL: Micros = 20_000_000;

/// Detectors that can fire, as bits in a scan's `detectors`: TRW is bit 0,
/// window `i` (in config order) is bit `i + 1`.
pub(crate) const DET_TRW: u8 = 1;

/// Most detection windows a [`DetectConfig`] may have: one detector bit each
/// beside TRW's, in a `u8` ([`DetectConfig::validate`] rejects more).
pub const MAX_WINDOWS: usize = u8::BITS as usize - 1;

/// The detector bit of window `i`. `validate` keeps `i < MAX_WINDOWS`; the
/// clamp only keeps the shift in range for a config that skipped it.
fn window_bit(i: usize) -> u8 {
    2u8 << i.min(MAX_WINDOWS - 1)
}

/// The threshold random walk's constants: its bounds (the walk is floored
/// at `ln_eta0`, flags at `ln_eta1`) and its steps for a failed and an
/// answered first contact.
#[derive(Clone, Copy)]
struct Trw {
    ln_eta1: f64,
    ln_eta0: f64,
    fail: f64,
    ok: f64,
}

impl Trw {
    /// The walk after attempt `a` from `llr`.
    fn step(self, llr: f64, a: &Attempt) -> f64 {
        let ok = a.outcome == Outcome::Answered && !a.probe.is_stealth();
        (llr + if ok { self.ok } else { self.fail }).max(self.ln_eta0)
    }
}

/// A scan record's key: the source, the protocol and the technique family
/// of its probes ([`Technique::of_probe`]).
type ScanKey = (Addr, u8, Technique);

pub struct Detector {
    cfg: DetectConfig,
    allow_scanners: Vec<Cidr>,
    /// Our own networks: a scan's direction.
    home_net: std::sync::Arc<[Cidr]>,
    allow_services: Vec<Service>,
    sources: HashMap<Addr, Source, RandomState>,
    /// Contact tables of evicted sources, emptied, for new sources to take
    /// instead of allocating: under a flood of spoofed sources each new
    /// source's table was an allocation, freed again by the next eviction.
    /// Only tables of the smallest allocation, at most a quarter of
    /// `max_sources` (what one eviction frees): live and spare tables
    /// together never outnumber the sources the cap allows.
    spare_contacts: Vec<ContactTable>,
    /// The rests of evicted light sources, their content forgotten (it owns
    /// nothing), for new sources to be written into: never read, so
    /// evicting a light source and making a new one touch no memory but the
    /// new one's. Rests live and spare together never outnumber the sources
    /// the cap allows.
    spare_rests: Vec<SpareRest>,
    /// Contacts held by all sources (kept in step with every insert and
    /// removal; recounted at each sweep).
    contacts_total: usize,
    /// Sources holding sketches, at most `max_sketch_sources`.
    sketch_sources: usize,
    max_sketch_sources: usize,
    scans: HashMap<ScanKey, Scan, RandomState>,
    now: Micros,
    /// The next point of packet time at which a sweep is due (see
    /// [`Detector::sweep_if_due`]).
    next_sweep: Micros,
    /// No contact, source or sketch time is older than the lesser of these
    /// two: the oldest one the last sweep kept, and the oldest attempt
    /// since. A sweep whose horizon is not past it has nothing to do (a
    /// capture shorter than the longest window, a day by default).
    oldest_kept: Micros,
    oldest_since_sweep: Micros,
    trw: Trw,
    pub stats: DetectStats,
}

/// How often, in packet time, sources are swept (see
/// [`Detector::sweep_if_due`]).
const SWEEP_EVERY: Micros = 60_000_000;

/// The point of packet time (the multiple of `every` at or below `t`) that
/// a sweep at `t` is for, if `t` has reached `*next`; `*next` moves to the
/// point after it. Both detectors sweep on these points, so what they
/// forget is a function of packet time alone.
pub(crate) fn sweep_point(t: Micros, every: Micros, next: &mut Micros) -> Option<Micros> {
    if t < *next {
        return None;
    }
    let point = t - t.rem_euclid(every);
    *next = point.saturating_add(every);
    Some(point)
}

impl Detector {
    pub fn new(cfg: DetectConfig) -> Result<Detector, ConfigError> {
        let Lists {
            allow_scanners,
            allow_services,
            home_net,
        } = cfg.validate()?;
        let trw = Trw {
            ln_eta1: (cfg.trw_beta / cfg.trw_alpha).ln(),
            ln_eta0: ((1.0 - cfg.trw_beta) / (1.0 - cfg.trw_alpha)).ln(),
            fail: ((1.0 - cfg.trw_theta1) / (1.0 - cfg.trw_theta0)).ln(),
            ok: (cfg.trw_theta1 / cfg.trw_theta0).ln(),
        };
        Ok(Detector {
            allow_scanners,
            allow_services,
            home_net: home_net.into(),
            sources: HashMap::default(),
            spare_contacts: Vec::new(),
            spare_rests: Vec::new(),
            contacts_total: 0,
            sketch_sources: 0,
            max_sketch_sources: (cfg.max_contacts_total / SKETCH_CONTACTS).max(1),
            scans: HashMap::default(),
            now: Micros::MIN,
            next_sweep: Micros::MIN,
            oldest_kept: Micros::MAX,
            oldest_since_sweep: Micros::MAX,
            trw,
            stats: DetectStats::default(),
            cfg,
        })
    }

    pub fn config(&self) -> &DetectConfig {
        &self.cfg
    }

    /// Contacts currently held, all sources together.
    pub fn contacts_held(&self) -> usize {
        self.contacts_total
    }

    /// Sources and scans currently held.
    pub fn sizes(&self) -> (usize, usize) {
        (self.sources.len(), self.scans.len())
    }

    /// Feeds one attempt; attempts must come in `(time, content)` order.
    pub fn on_attempt(&mut self, a: &Attempt, out: &mut Vec<ScanEvent>) {
        self.sweep_if_due(a.time);
        self.stats.attempts += 1;
        if a.time > self.now {
            self.now = a.time;
        }
        self.oldest_since_sweep = self.oldest_since_sweep.min(a.time);
        if self.allow_scanners.iter().any(|c| c.contains(a.src))
            || self
                .allow_services
                .iter()
                .any(|s| s.matches(a.dst, a.dport, a.proto))
        {
            self.stats.allowed += 1;
            return;
        }
        let idle = self.cfg.scan_idle();
        let tech = Technique::of_probe(a.probe, a.proto);
        // A flagged source (most attempts in a scan-heavy capture): one
        // lookup of its record.
        let key = (a.src, a.proto, tech);
        if let Some(scan) = self.scans.get_mut(&key) {
            if scan.last + idle > a.time {
                scan.on_attempt(a, &self.cfg, out);
                if let Some(s) = self.sources.get_mut(&a.src) {
                    s.last = s.last.max(a.time);
                }
                return;
            }
            // Quiet long enough: that scan ended before this attempt.
            self.end_scan(key, idle, out);
        }
        // Lengths first: the lookup is paid only when full.
        if self.sources.len() >= self.cfg.max_sources && !self.sources.contains_key(&a.src) {
            self.evict_sources();
        }
        while self.contacts_total >= self.cfg.max_contacts_total && !self.sources.is_empty() {
            self.evict_sources();
        }
        let cfg = &self.cfg;
        let key = Contact {
            dst: a.dst,
            proto: a.proto,
            tech,
            port: a.dport,
        };
        let src = match self.sources.entry(a.src) {
            hashbrown::hash_map::Entry::Occupied(e) => e.into_mut(),
            hashbrown::hash_map::Entry::Vacant(v) => {
                self.stats.sources += 1;
                if cfg.max_contacts < 2 {
                    // The general path below (a one-contact cap trims at
                    // once).
                    v.insert(Source {
                        last: Micros::MIN,
                        score: 0.0,
                        light: false,
                        rest: Box::default(),
                    })
                } else {
                    // A new source: made whole in one go, written and
                    // never read back (see `Source`).
                    let src = v.insert(new_source(a, key, cfg, self.trw, &mut self.spare_rests));
                    self.contacts_total += 1;
                    // One contact: no sketch (it starts at two or more), no
                    // evaluation skipped; `evaluate` reads the score first.
                    if !a.is_probe_like() {
                        return;
                    }
                    if let Some((kind, detectors)) = Self::evaluate(cfg, self.now, src, a) {
                        self.start_scan(a, kind, detectors, false, out);
                    }
                    return;
                }
            }
        };
        src.last = src.last.max(a.time);
        let first_to_dst = !src.has_dst(a.dst);
        if src.contacts.len() >= cfg.max_contacts && !src.contacts.contains_key(&key) {
            let dropped =
                trim_contacts(src, cfg.max_contacts, cfg.answered_weight, cfg.block_ports);
            self.stats.contacts_evicted += dropped;
            self.contacts_total -= dropped as usize;
        }
        // One lookup of the contact, new or not.
        let (info, is_new) = src
            .contacts
            .get_or_insert_with(key, &mut self.spare_contacts, || ContactInfo::new(a));
        self.contacts_total += usize::from(is_new);
        let w_before = if is_new {
            0.0
        } else {
            info.weight(cfg.answered_weight)
        };
        info.count(a);
        let w_after = info.weight(cfg.answered_weight);
        src.score += w_after - w_before;
        if is_new {
            src.count_dst(a.dst, cfg.block_ports);
        }
        // TRW on first contacts to a new target. The walk has a floor at the
        // benign bound, so a host with a record of successes needs a longer
        // run of failures than a newcomer. A conversation with a target
        // already known (a repeated contact that carried data: a resolver's
        // next query to a server, a mail relay's next message) is benign
        // evidence too and steps the walk down like an answered first
        // contact; failures count only on first contacts, as before, so a
        // source keeps its walk up only while its new targets fail faster
        // than its known ones answer.
        let conversation = !first_to_dst && a.is_success();
        if cfg.trw && (first_to_dst || conversation) {
            src.trw_llr = self.trw.step(src.trw_llr, a);
            if src.trw_llr >= self.trw.ln_eta1 {
                src.trw_hit = true;
            }
        }
        if let Some(set) = src.sketch.as_mut().and_then(|s| s.set_mut(a.proto, tech)) {
            set.add(
                a.dst,
                a.dport,
                a.outcome != Outcome::Answered && !a.is_success(),
            );
        } else if src.sketch.is_none()
            && src.contacts.len() >= SKETCH_START.min(cfg.max_contacts)
            && self.sketch_sources >= self.max_sketch_sources
        {
            if !src.sketch_denied {
                src.sketch_denied = true;
                self.stats.sketches_denied += 1;
            }
        } else if src.sketch.is_none() && src.contacts.len() >= SKETCH_START.min(cfg.max_contacts) {
            // From now on the source is also counted by sketches, seeded
            // with what it holds (this attempt included), before any
            // overflow of the exact set trims it.
            src.sketch = Some(Box::new(Sketches::seeded(src)));
            self.sketch_sources += 1;
        }
        if !a.is_probe_like() {
            return;
        }
        // Beyond the exact set the sketches answer at once (a few float
        // comparisons), so the widest scans are flagged as soon as they
        // overflow it.
        let wide = src
            .sketch
            .as_deref()
            .and_then(|s| sketch_verdict(s, a.proto, tech, self.now, cfg));
        // Evaluating looks at every contact of the source: past 256 of them,
        // look again only after every n/64-th new attempt, so a source with
        // thousands of contacts costs O(64) per attempt, not O(n) (and is
        // flagged at most ~1.6% later).
        let n = src.contacts.len();
        if n > 256 {
            let step = (n / 64) as u32;
            if src.eval_skip < step {
                src.eval_skip += 1;
                if let Some((kind, detectors)) = wide {
                    self.start_scan(a, kind, detectors, true, out);
                }
                return;
            }
            src.eval_skip = 0;
        }
        if let Some((kind, detectors)) = Self::evaluate(cfg, self.now, src, a) {
            self.start_scan(a, kind, detectors, false, out);
        } else if let Some((kind, detectors)) = wide {
            self.start_scan(a, kind, detectors, true, out);
        }
    }

    /// Whether `a` is in the home network.
    pub fn is_home(&self, a: Addr) -> bool {
        self.home_net.iter().any(|c| c.contains(a))
    }

    /// Sets the direction of each event's detection: the scanner's side,
    /// and whether any of its (sampled) targets is ours. A scanner of ours
    /// that also probes outside is internal: the more urgent reading.
    pub fn set_directions(&self, events: &mut [ScanEvent]) {
        for e in events.iter_mut().filter(|e| !e.direction_set) {
            let d = &mut e.detection;
            let ours = d.targets.iter().any(|t| self.is_home(*t));
            d.direction = Direction::of(self.is_home(d.scanner), ours);
        }
    }

    /// Checks the windows and TRW for the source and protocol of `a`.
    fn evaluate(
        cfg: &DetectConfig,
        now: Micros,
        src: &Source,
        a: &Attempt,
    ) -> Option<(ScanKind, u8)> {
        let min_needed = cfg
            .windows
            .iter()
            .map(|w| w.horizontal.min(w.vertical))
            .fold(f64::MAX, f64::min)
            .min(f64::from(cfg.trw_min_targets))
            .min(f64::from(cfg.block_hosts));
        if src.score < min_needed * cfg.answered_weight.min(1.0) {
            return None;
        }
        let nw = cfg.windows.len();
        // One pass over the contacts gathers every window's counts.
        let mut h_score = vec![0.0f64; nw];
        let mut h_n = vec![0u32; nw];
        let mut h_ok = vec![0u32; nw];
        let mut h_ex = vec![0u32; nw];
        let mut v_score = vec![0.0f64; nw];
        let mut v_n = vec![0u32; nw];
        let mut v_ok = vec![0u32; nw];
        let mut v_ex = vec![0u32; nw];
        let mut trw_dsts = 0u32;
        let mut trw_ports = 0u32;
        // TRW's shapes against the conversations on the same port or
        // target, and against all the failed contacts of the protocol.
        let (mut trw_dsts_ex, mut trw_ports_ex, mut trw_failed) = (0u32, 0u32, 0u32);
        let mut block_pairs: Vec<Vec<Addr>> = vec![Vec::new(); nw];
        let block_possible = cfg.block_ports == 0 || src.many_port_dsts >= cfg.block_hosts;
        let tech = Technique::of_probe(a.probe, a.proto);
        for (c, info) in src.contacts.iter() {
            if c.proto != a.proto || c.tech != tech {
                continue;
            }
            // A contact that failed and was tried again well after its
            // first probe (beyond a scanner's retransmissions) is a service
            // the source keeps using — polled, or linked to again — that is
            // down: an outage, not a probe. It counts for no shape.
            if !info.success && info.probes > 1 && info.last - info.first >= TRW_REPOLL {
                continue;
            }
            let w = info.weight(cfg.answered_weight);
            let same_port = c.port == a.dport;
            let same_dst = c.dst == a.dst;
            // A conversation counts once per exchange that was answered (a
            // resolver's tenth query to a server is ten), so a source that
            // keeps talking to the services it knows outweighs its failures.
            let ex = if info.success {
                info.answered.max(1)
            } else {
                0
            };
            if info.failed() {
                // A failed contact makes TRW's shape once it has settled, so
                // a service polled and failing (a health check, an NTP
                // server, a monitored device that is down) is known for what
                // it is (above) before it can count.
                if info.first <= now - TRW_SETTLE {
                    trw_dsts += u32::from(same_port);
                    trw_ports += u32::from(same_dst);
                }
                trw_failed += 1;
            }
            if same_port {
                trw_dsts_ex += ex;
            }
            if same_dst {
                trw_ports_ex += ex;
            }
            for (i, win) in cfg.windows.iter().enumerate() {
                if info.last < now - win.seconds as i64 * 1_000_000 {
                    continue;
                }
                if same_port {
                    h_score[i] += w;
                    h_n[i] += 1;
                    h_ok[i] += u32::from(info.success);
                    h_ex[i] += ex;
                }
                if same_dst {
                    v_score[i] += w;
                    v_n[i] += 1;
                    v_ok[i] += u32::from(info.success);
                    v_ex[i] += ex;
                }
                if block_possible && w > 0.0 {
                    block_pairs[i].push(c.dst);
                }
            }
        }
        // The failures' share among the failed contacts and the exchanges
        // of the conversations: with one exchange per conversation, the
        // share of failed contacts.
        let share_of = |failed: u32, ex: u32| {
            failed > 0 && f64::from(failed) >= cfg.min_failed_share * f64::from(failed + ex)
        };
        let share_ok = |n: u32, ok: u32, ex: u32| n > 0 && share_of(n - ok, ex);
        let mut detectors = 0u8;
        let mut kind = None;
        for (i, win) in cfg.windows.iter().enumerate() {
            let bit = window_bit(i);
            let block_needed = (cfg.block_hosts * cfg.block_ports) as usize;
            if block_pairs[i].len() >= block_needed {
                let hosts = hosts_with_many_ports(&mut block_pairs[i], cfg.block_ports);
                if hosts >= cfg.block_hosts {
                    detectors |= bit;
                    kind = Some(ScanKind::Block);
                }
            }
            if v_score[i] >= win.vertical && share_ok(v_n[i], v_ok[i], v_ex[i]) {
                detectors |= bit;
                kind.get_or_insert(ScanKind::Vertical);
            }
            if h_score[i] >= win.horizontal && share_ok(h_n[i], h_ok[i], h_ex[i]) {
                detectors |= bit;
                kind.get_or_insert(ScanKind::Horizontal);
            }
        }
        if cfg.trw && src.trw_hit {
            // A shape is a scan's only if it holds at least half of the
            // source's failed contacts (a P2P client's failures spread over
            // as many ports as peers) and its failures are not outweighed by
            // conversations on the same port or target.
            let min = cfg.trw_min_targets;
            let shape = |n: u32, ex: u32| n >= min && 2 * n >= trw_failed && share_of(n, ex);
            let (h, v) = (shape(trw_dsts, trw_dsts_ex), shape(trw_ports, trw_ports_ex));
            if h || v {
                detectors |= DET_TRW;
                kind.get_or_insert(if v && (!h || trw_ports >= trw_dsts) {
                    ScanKind::Vertical
                } else {
                    ScanKind::Horizontal
                });
            }
        }
        kind.map(|k| (k, detectors))
    }

    /// Opens the scan record of `a`'s source and protocol; `sketched` when
    /// the source's sketches flagged it (a block verdict then stays block).
    fn start_scan(
        &mut self,
        a: &Attempt,
        kind: ScanKind,
        detectors: u8,
        sketched: bool,
        out: &mut Vec<ScanEvent>,
    ) {
        let horizon = self.now - self.cfg.longest_window();
        let Some(src) = self.sources.get_mut(&a.src) else {
            return;
        };
        let tech = Technique::of_probe(a.probe, a.proto);
        let mut scan = Scan::new(
            a.src,
            a.proto,
            tech,
            kind,
            detectors,
            Trigger::of(a),
            self.home_net.clone(),
        );
        scan.wide = sketched && kind == ScanKind::Block;
        // The record starts with everything the source did on this protocol
        // within the longest window; those contacts move into it.
        let mut moved: Vec<(Contact, ContactInfo)> = src
            .contacts
            .iter()
            .filter(|(c, i)| c.proto == a.proto && c.tech == tech && i.last >= horizon)
            .map(|(c, i)| (*c, *i))
            .collect();
        moved.sort_by_key(|(c, i)| (i.first, *c));
        for (c, info) in &moved {
            scan.add_contact(c.dst, c.port, info, &self.cfg);
            if src.contacts.remove(c).is_some() {
                self.contacts_total -= 1;
            }
            src.score -= info.weight(self.cfg.answered_weight);
            if let Some(n) = src.dsts_mut().get_mut(&c.dst) {
                let was = *n;
                *n = n.saturating_sub(1);
                if was == self.cfg.block_ports {
                    src.many_port_dsts -= 1;
                }
            }
        }
        // The record takes over this protocol: its sketches go.
        if let Some(sk) = src.sketch.as_mut() {
            sk.sets.retain(|s| (s.proto, s.tech) != (a.proto, tech));
            if sk.sets.is_empty() {
                src.sketch = None;
                self.sketch_sources -= 1;
            }
        }
        scan.reclassify(&self.cfg);
        if kind == ScanKind::Block {
            scan.kind = ScanKind::Block;
        }
        self.stats.scans_started += 1;
        scan.started();
        out.push(scan.event(Phase::Start, a.time, Trigger::of(a), &self.cfg));
        self.scans.insert((a.src, a.proto, tech), scan);
    }

    /// Moves packet time to `now`: tells the deferred events now due
    /// (untold doors, periodic updates), ends scans that have gone quiet
    /// and, once a minute of packet time, forgets sources idle longer than
    /// the longest window.
    pub fn advance(&mut self, now: Micros, out: &mut Vec<ScanEvent>) {
        if now > self.now {
            self.now = now;
        }
        let idle = self.cfg.scan_idle();
        let mut due: Vec<ScanKey> = self
            .scans
            .iter()
            .filter(|(_, s)| {
                s.last + idle <= self.now || s.next_due().is_some_and(|t| t <= self.now)
            })
            .map(|(k, _)| *k)
            .collect();
        due.sort_unstable();
        for k in due {
            let Some(s) = self.scans.get_mut(&k) else {
                continue;
            };
            s.flush_due(self.now, false, &self.cfg, out);
            if s.last + idle <= self.now {
                self.end_scan(k, idle, out);
            }
        }
        self.sweep_if_due(self.now);
    }

    /// Sweeps at fixed points of packet time (every minute on the minute),
    /// once `t` has reached the next one: attempts come in time order and
    /// this runs before the first attempt at or past a point (or at the
    /// watermark that passes it), so what a sweep forgets, and so every
    /// later verdict, depends on packet time alone. Sweeping at whatever
    /// watermark came first made the answer depend on how the workers'
    /// watermarks stepped, that is on the thread count.
    fn sweep_if_due(&mut self, t: Micros) {
        let Some(point) = sweep_point(t, SWEEP_EVERY, &mut self.next_sweep) else {
            return;
        };
        let horizon = point.saturating_sub(self.cfg.longest_window());
        let oldest = self.oldest_kept.min(self.oldest_since_sweep);
        self.oldest_since_sweep = Micros::MAX;
        if oldest >= horizon {
            // Nothing can be older than the horizon: every source,
            // contact and sketch stays, and the counts kept in step
            // stand.
            self.oldest_kept = oldest;
        } else {
            self.sweep_sources(horizon);
        }
    }

    /// Forgets sources idle since before `horizon` and their contacts and
    /// sketches older than it; recounts what stays.
    fn sweep_sources(&mut self, horizon: Micros) {
        let aw = self.cfg.answered_weight;
        let block_ports = self.cfg.block_ports;
        let mut total = 0usize;
        let mut sketches = 0usize;
        let mut kept = Micros::MAX;
        self.sources.retain(|_, s| {
            if s.last < horizon {
                return false;
            }
            // A light source whose contact stays stays light.
            if s.light {
                let t = s.rest.contacts.values().map(|i| i.last).min();
                if let Some(t) = t.filter(|&t| t >= horizon) {
                    total += s.rest.contacts.len();
                    kept = kept.min(t);
                    return true;
                }
            }
            // Sketches older than the longest window are dropped (made
            // again, from the exact set, at its next overflow).
            if s.sketch.as_ref().is_some_and(|k| k.since < horizon) {
                s.sketch = None;
            }
            if let Some(k) = &s.sketch {
                kept = kept.min(k.since);
            }
            sketches += usize::from(s.sketch.is_some());
            let before = s.contacts.len();
            s.contacts.retain(|_, i| i.last >= horizon);
            if s.contacts.len() != before {
                s.score = s.contacts.values().map(|i| i.weight(aw)).sum();
                s.recount_dsts(block_ports);
            }
            kept = kept.min(s.last);
            for i in s.rest.contacts.values() {
                kept = kept.min(i.last);
            }
            total += s.contacts.len();
            true
        });
        self.contacts_total = total;
        self.sketch_sources = sketches;
        self.oldest_kept = kept;
    }

    /// Ends every open scan (end of input, shutdown).
    pub fn finish(&mut self, out: &mut Vec<ScanEvent>) {
        let mut keys: Vec<ScanKey> = self.scans.keys().copied().collect();
        keys.sort_unstable();
        for k in keys {
            self.end_scan(k, 0, out);
        }
    }

    /// Closes a scan record; its end event is stamped `after` its last probe
    /// (untold doors are told just before it).
    fn end_scan(&mut self, key: ScanKey, after: Micros, out: &mut Vec<ScanEvent>) {
        if let Some(mut s) = self.scans.remove(&key) {
            self.stats.scans_ended += 1;
            let at = s.last + after;
            s.flush_due(at, true, &self.cfg, out);
            s.reclassify(&self.cfg);
            let last = s.last_trigger();
            out.push(s.event(Phase::End, at, last, &self.cfg));
        }
    }

    /// Evicts the least suspicious quarter of the sources: fewest failed
    /// contacts first, then the longest idle. Sources with an open scan
    /// record keep it (the record lives apart).
    fn evict_sources(&mut self) {
        let n = self.sources.len();
        let k = (n / 4).max(1);
        let mut ranked: Vec<(u64, Micros, Addr)> = self
            .sources
            .iter()
            .map(|(a, s)| ((s.score * 16.0) as u64, s.last, *a))
            .collect();
        ranked.select_nth_unstable(k - 1);
        for (_, _, a) in &ranked[..k] {
            if let Some(s) = self.sources.remove(a) {
                if s.light {
                    // One contact, no sketch, no table: nothing to read.
                    self.contacts_total -= 1;
                    if self.sources.len() + self.spare_rests.len() < self.cfg.max_sources {
                        self.spare_rests.push(forget_rest(s.rest));
                    }
                    continue;
                }
                self.contacts_total -= s.contacts.len();
                self.sketch_sources -= usize::from(s.sketch.is_some());
                if self.spare_contacts.len() < self.cfg.max_sources / 4 {
                    if let Some(t) = s.rest.contacts.into_spare(SPARE_TABLE_CAPACITY) {
                        self.spare_contacts.push(t);
                    }
                }
            }
        }
        self.stats.sources_evicted += k as u64;
    }
}

/// What a source's sketches say about `proto` at `now`: the kind and the
/// windows that fire. A window counts only if everything the sketches hold
/// is inside it (they began within it); within it, many failed targets and
/// many failed ports (each over the window's threshold and the block
/// minimums, with enough distinct pairs) is a block scan, many targets on
/// few ports horizontal, many ports on few targets vertical.
fn sketch_verdict(
    sk: &Sketches,
    proto: u8,
    tech: Technique,
    now: Micros,
    cfg: &DetectConfig,
) -> Option<(ScanKind, u8)> {
    let set = sk
        .sets
        .iter()
        .find(|s| (s.proto, s.tech) == (proto, tech))?;
    if set.failed == 0 || (set.failed as f64) < SKETCH_MIN_FAILED_SHARE * set.attempts as f64 {
        return None;
    }
    let (d, p) = (set.est_dsts, set.est_ports);
    let pairs_needed = f64::from(cfg.block_hosts) * f64::from(cfg.block_ports);
    let mut kind = None;
    let mut bits = 0u8;
    for (i, w) in cfg.windows.iter().enumerate() {
        if now.saturating_sub(sk.since) > w.seconds as i64 * 1_000_000 {
            continue;
        }
        let k = if d >= w.horizontal.max(f64::from(cfg.block_hosts))
            && p >= w.vertical.max(f64::from(cfg.block_ports))
            && set.est_pairs >= pairs_needed
        {
            ScanKind::Block
        } else if d >= w.horizontal && p < w.vertical {
            ScanKind::Horizontal
        } else if p >= w.vertical && d < w.horizontal {
            ScanKind::Vertical
        } else {
            continue;
        };
        bits |= window_bit(i);
        kind.get_or_insert(k);
    }
    kind.map(|k| (k, bits))
}

/// A source made by its first attempt `a` (contact `key`): what the
/// general path of [`Detector::on_attempt`] makes of a new source, built in
/// one go, in a spare rest if there is one.
fn new_source(
    a: &Attempt,
    key: Contact,
    cfg: &DetectConfig,
    trw: Trw,
    spare: &mut Vec<SpareRest>,
) -> Source {
    let mut info = ContactInfo::new(a);
    info.count(a);
    let (trw_llr, trw_hit) = if cfg.trw {
        // A first contact to a new target: TRW's first step.
        let llr = trw.step(0.0, a);
        (llr, llr >= trw.ln_eta1)
    } else {
        (0.0, false)
    };
    let score = info.weight(cfg.answered_weight);
    let rest = SourceRest {
        contacts: ContactSet::one(key, info),
        per_dst: HashMap::default(),
        one_dst: Some(a.dst),
        many_port_dsts: u32::from(cfg.block_ports == 1),
        trw_llr,
        trw_hit,
        eval_skip: 0,
        sketch: None,
        sketch_denied: false,
    };
    let rest = match spare.pop() {
        Some(b) => Box::write(b, rest),
        None => Box::new(rest),
    };
    Source {
        last: a.time,
        score,
        light: true,
        rest,
    }
}

/// An evicted light source's rest, kept as memory for a new one. Boxed in
/// its vector on purpose: the allocation itself moves from the evicted
/// source to the new one, unread.
#[allow(clippy::vec_box)]
type SpareRest = Box<std::mem::MaybeUninit<SourceRest>>;

/// A light source's rest as spare memory: its content is forgotten, not
/// dropped, which leaks nothing (a light rest owns no allocation).
fn forget_rest(rest: Box<SourceRest>) -> SpareRest {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, so the allocation is the
    // same; the value is never read or dropped again.
    unsafe { Box::from_raw(Box::into_raw(rest).cast::<std::mem::MaybeUninit<SourceRest>>()) }
}

/// Keeps the newest three quarters of a source's contacts; returns how many
/// were dropped.
fn trim_contacts(src: &mut Source, cap: usize, aw: f64, block_ports: u32) -> u64 {
    let mut lasts: Vec<Micros> = src.contacts.values().map(|i| i.last).collect();
    let drop = (cap / 4).max(1).min(lasts.len());
    lasts.select_nth_unstable(drop - 1);
    let cut = lasts[drop - 1];
    let before = src.contacts.len();
    let mut dropped = 0usize;
    src.contacts.retain(|_, i| {
        if i.last <= cut && dropped < drop {
            dropped += 1;
            false
        } else {
            true
        }
    });
    src.score = src.contacts.values().map(|i| i.weight(aw)).sum();
    src.recount_dsts(block_ports);
    (before - src.contacts.len()) as u64
}

/// How many targets appear at least `min_ports` times in `dsts` (one entry
/// per distinct (target, port) contact).
fn hosts_with_many_ports(dsts: &mut [Addr], min_ports: u32) -> u32 {
    dsts.sort_unstable();
    let mut hosts = 0;
    let mut run = 0u32;
    for i in 0..dsts.len() {
        run = if i > 0 && dsts[i] == dsts[i - 1] {
            run + 1
        } else {
            1
        };
        if run == min_ports {
            hosts += 1;
        }
    }
    hosts
}

/// The detector names a scan record carries, from its bits.
pub fn detector_names(bits: u8, cfg: &DetectConfig) -> String {
    let mut names = Vec::new();
    if bits & DET_TRW != 0 {
        names.push("trw".to_string());
    }
    for (i, w) in cfg.windows.iter().enumerate() {
        if bits & window_bit(i) != 0 {
            names.push(format!("window:{}", human_secs(w.seconds)));
        }
    }
    names.join("+")
}

fn human_secs(s: u64) -> String {
    if s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// Whether a protocol's "port" is an ICMP type (open doors are then bare
/// addresses).
pub(crate) fn portless(p: u8) -> bool {
    p == proto::ICMP || p == proto::ICMP6
}

#[cfg(test)]
mod tests;
