//! The packet clock of one input: small disorder is put back in order, and a
//! packet far outside the stream's time is an outlier that never moves the
//! clock.
//!
//! Packets enter in the order the input gives them and leave sorted by time
//! once they are more than the reorder window older than the newest packet
//! accepted (multi-queue NICs and merged taps are out of order by
//! milliseconds). What has left is promised: the input's watermark is the
//! release point, and a packet that arrives older than it is *late*. The
//! rules, in order:
//!
//! * **out of range** — dated before [`ClockConfig::earliest`] (zero
//!   timestamps, clocks never set) or after [`ClockConfig::latest`]:
//!   an outlier, dropped;
//! * **late** — older than the release point (more than the reorder window
//!   behind the newest packet): an outlier, dropped;
//! * **ahead** — more than the reorder window ahead of the newest packet: a
//!   jump that the input's next packet decides. If that packet follows it in
//!   time (a quiet link, a sensor restarting after hours), the jump is real
//!   and the clock moves; if it falls back to the old time, the lone packet
//!   was an outlier and is dropped. On a live link the wall clock confirms
//!   it too. The last packet of an input has no successor: it is taken if it
//!   is less than [`ClockConfig::last_jump`] ahead, else it is an outlier.
//!
//! Every outlier is counted by kind and the first ones are kept with their
//! input and packet number for the summary; nothing is clamped. A packet's
//! ICMP-error notice shares its fate.

use scanwatch_model::{IcmpNotice, Item, Micros, PacketMeta};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Packet-clock settings (µs of packet time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockConfig {
    /// Disorder up to this much is put back in order; also how far ahead a
    /// packet may jump without confirmation.
    pub reorder_window: Micros,
    /// Earliest plausible packet time (1995-01-01).
    pub earliest: Micros,
    /// Latest plausible packet time (2100-01-01).
    pub latest: Micros,
    /// How far ahead an input's last packet may be and still be taken
    /// without a successor to confirm it.
    pub last_jump: Micros,
    /// Most packets held for reordering per input: a window that would hold
    /// more (a very fast link) releases the oldest early, counted.
    pub max_held: usize,
}

impl Default for ClockConfig {
    fn default() -> Self {
        ClockConfig {
            reorder_window: 300_000,
            earliest: 788_918_400_000_000,
            latest: 4_102_444_800_000_000,
            last_jump: 86_400_000_000,
            max_held: 1 << 16,
        }
    }
}

/// Why a packet was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutlierKind {
    OutOfRange,
    /// Further behind the newest packet than the reorder window.
    Late,
    /// Within the reorder window, but behind packets already released
    /// because the cap on held packets was reached (the input is out of
    /// order by more packets than the cap).
    LateHeld,
    Ahead,
}

impl OutlierKind {
    pub fn name(self) -> &'static str {
        match self {
            OutlierKind::OutOfRange => "out of range",
            OutlierKind::Late => "late",
            OutlierKind::LateHeld => "late (hold cap)",
            OutlierKind::Ahead => "ahead",
        }
    }
}

/// Where a packet came from: its input's index (as its source numbers
/// inputs) and its 1-based number in that input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub input: u32,
    pub packet: u64,
}

/// An outlier as the clock decides it: why, where from, its time.
pub(crate) type Decided = (OutlierKind, Pos, Micros);

/// A packet left out, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outlier {
    pub kind: OutlierKind,
    /// The input, as its source names it.
    pub input: String,
    /// 1-based number of the packet in that input.
    pub packet: u64,
    /// Its own time stamp.
    pub ts: Micros,
    /// The stream's time when it arrived (newest packet accepted).
    pub stream: Micros,
}

/// A packet held until its successor says whether its jump ahead was real.
struct Suspect {
    meta: Item,
    notice: Option<IcmpNotice>,
    packet: Pos,
}

/// A packet that arrived out of order, waiting in the heap by (time,
/// arrival).
struct Stray {
    seq: u64,
    meta: Item,
}

impl PartialEq for Stray {
    fn eq(&self, o: &Self) -> bool {
        (self.meta.ts(), self.seq) == (o.meta.ts(), o.seq)
    }
}
impl Eq for Stray {}
impl PartialOrd for Stray {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Stray {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.meta.ts(), self.seq).cmp(&(o.meta.ts(), o.seq))
    }
}

/// One input's clock; see the module documentation.
pub(crate) struct InputClock {
    cfg: ClockConfig,
    /// Newest packet time accepted.
    newest: Micros,
    /// The release point: the newest time less the window (or more, after
    /// an overflow). Everything held is at or after it, everything released
    /// before it; a packet that arrives older than it is late. It moves
    /// packet by packet, so what is late depends on the input alone, never
    /// on when the capture thread flushes.
    floor: Micros,
    /// Accepted packets that arrived in time order (the common case), in
    /// arrival order: sorted. An ICMP error's notice comes right after it.
    /// Its first `ready` are released already.
    run: VecDeque<Item>,
    /// Accepted packets that arrived out of order. At equal times a packet
    /// of `run` arrived first (`run` only grows at its back), so it leaves
    /// first.
    strays: BinaryHeap<Reverse<Stray>>,
    seq: u64,
    suspect: Option<Suspect>,
    /// How many packets at the front of `run` are released but still lie
    /// there (they leave after everything in `out`): in the common case a
    /// release is this count moving, and the packets are copied once, from
    /// where they were decoded into their workers' batches.
    ready: usize,
    /// Released packets moved out of `run` (by the rare paths: a reordered
    /// packet, an overflow, the end), in time order, before `run`'s first
    /// `ready`.
    out: Vec<Item>,
    /// An empty packet record, the slots' first content.
    blank: Item,
    /// Packets released before their window was over because more than
    /// `max_held` waited.
    pub overflow: u64,
    /// Packets that arrived out of order and were put back in order.
    pub reordered: u64,
}

impl InputClock {
    pub fn new(cfg: ClockConfig) -> InputClock {
        InputClock {
            cfg,
            newest: Micros::MIN,
            floor: Micros::MIN,
            run: VecDeque::with_capacity(4096),
            strays: BinaryHeap::new(),
            seq: 0,
            suspect: None,
            ready: 0,
            out: Vec::with_capacity(4096),
            blank: Item::Packet(PacketMeta::default()),
            overflow: 0,
            reordered: 0,
        }
    }

    /// Newest packet time accepted (`Micros::MIN` before the first).
    pub fn newest(&self) -> Micros {
        self.newest
    }

    /// No packet released from now on will be older (the watermark).
    pub fn released(&self) -> Micros {
        self.floor
    }

    /// A slot for the next packet, to decode into in place (copying a
    /// record right after its field stores would stall on store
    /// forwarding); then [`InputClock::commit`] or
    /// [`InputClock::discard`].
    #[inline]
    pub fn slot(&mut self) -> &mut PacketMeta {
        // A copy of a blank record kept in memory: a default built here
        // was stored field by field and copied at once, a stall per packet.
        self.run.push_back(self.blank);
        match self.run.back_mut() {
            Some(Item::Packet(m)) => m,
            // Just pushed as a packet.
            _ => unreachable!("the slot just pushed is a packet"),
        }
    }

    /// Drops the slot (the packet did not decode).
    #[inline]
    pub fn discard(&mut self) {
        self.run.pop_back();
    }

    /// Takes the packet decoded into the slot (and the notice of its ICMP
    /// error), from position `packet()` of its input (asked for only when
    /// the packet is not simply in order). Outliers it decides (this
    /// packet, or a held one its time disproved) go to `out` as (kind,
    /// position, time).
    #[inline]
    pub fn commit(
        &mut self,
        notice: Option<IcmpNotice>,
        packet: impl FnOnce() -> Pos,
        out: &mut Vec<Decided>,
    ) {
        let n = self.run.len();
        let Some(ts) = self.run.back().map(Item::ts) else {
            return;
        };
        // The common case: in range, in order, not far ahead, nothing held
        // in doubt. The packet stays where it was decoded.
        if self.suspect.is_none()
            && ts >= self.cfg.earliest
            && ts <= self.cfg.latest
            && ts >= self.floor
            && (n < 2 || self.run[n - 2].ts() <= ts)
            && self.newest != Micros::MIN
            && ts <= self.newest.saturating_add(self.cfg.reorder_window)
        {
            if let Some(x) = notice {
                self.run.push_back(Item::Notice(x));
            }
            self.advance(ts);
            return;
        }
        if let Some(meta) = self.run.pop_back() {
            self.push(meta, notice, packet(), out);
        }
    }

    /// [`InputClock::commit`] for a packet held elsewhere.
    pub fn push(
        &mut self,
        meta: Item,
        notice: Option<IcmpNotice>,
        packet: Pos,
        out: &mut Vec<Decided>,
    ) {
        let ts = meta.ts();
        if ts < self.cfg.earliest || ts > self.cfg.latest {
            out.push((OutlierKind::OutOfRange, packet, ts));
            return;
        }
        if let Some(s) = self.suspect.take() {
            if ts >= s.meta.ts().saturating_sub(self.cfg.reorder_window) {
                // It follows the jump: the jump was real.
                self.accept(s.meta, s.notice);
            } else {
                out.push((OutlierKind::Ahead, s.packet, s.meta.ts()));
            }
        }
        if ts < self.floor {
            // Behind the window, or only behind what the hold cap let go.
            let kind = if ts >= self.newest.saturating_sub(self.cfg.reorder_window) {
                OutlierKind::LateHeld
            } else {
                OutlierKind::Late
            };
            out.push((kind, packet, ts));
            return;
        }
        // An input's first packet is held like a jump: nothing vouches for
        // its time until the next packet does (a lone absurd first time
        // would otherwise set the clock, and everything after it would be
        // late).
        if self.newest == Micros::MIN || ts > self.newest.saturating_add(self.cfg.reorder_window) {
            self.suspect = Some(Suspect {
                meta,
                notice,
                packet,
            });
            return;
        }
        self.accept(meta, notice);
    }

    fn accept(&mut self, meta: Item, notice: Option<IcmpNotice>) {
        let ts = meta.ts();
        if self.run.back().is_none_or(|b| b.ts() <= ts) {
            self.run.push_back(meta);
            if let Some(n) = notice {
                self.run.push_back(Item::Notice(n));
            }
        } else {
            self.reordered += 1;
            self.seq += 1;
            self.strays.push(Reverse(Stray {
                seq: self.seq,
                meta,
            }));
            if let Some(n) = notice {
                self.seq += 1;
                self.strays.push(Reverse(Stray {
                    seq: self.seq,
                    meta: Item::Notice(n),
                }));
            }
        }
        self.advance(ts);
    }

    /// A packet at `ts` was accepted: the newest time and the release point
    /// move on, and what falls below the release point leaves.
    #[inline]
    fn advance(&mut self, ts: Micros) {
        self.newest = self.newest.max(ts);
        self.floor = self
            .floor
            .max(self.newest.saturating_sub(self.cfg.reorder_window));
        self.release_below_floor();
        // Too many waiting: the oldest leave early and the release point
        // follows them (the window shrinks for a moment; counted). On files
        // (a window of a day) this is every packet's path once the first
        // `max_held` are in: with nothing out of order the oldest are
        // simply counted released where they lie.
        let held = self.run.len() - self.ready + self.strays.len();
        if held > self.cfg.max_held {
            if self.strays.is_empty() {
                let k = held - self.cfg.max_held;
                self.ready += k;
                self.overflow += k as u64;
                if let Some(m) = self.run.get(self.ready - 1) {
                    self.floor = self.floor.max(m.ts());
                }
                return;
            }
            self.spill();
        }
        while self.run.len() + self.strays.len() > self.cfg.max_held {
            match self.pop_oldest() {
                Some(m) => {
                    self.floor = self.floor.max(m.ts());
                    self.overflow += 1;
                    self.out.push(m);
                }
                None => break,
            }
        }
    }

    /// The oldest held packet: the earlier of the run's front and the
    /// heap's top (the run's at equal times).
    #[inline]
    fn oldest_ts(&self) -> Option<Micros> {
        match (self.run.front(), self.strays.peek()) {
            (Some(r), Some(Reverse(s))) => Some(r.ts().min(s.meta.ts())),
            (Some(r), None) => Some(r.ts()),
            (None, Some(Reverse(s))) => Some(s.meta.ts()),
            (None, None) => None,
        }
    }

    #[inline]
    fn pop_oldest(&mut self) -> Option<Item> {
        let from_run = match (self.run.front(), self.strays.peek()) {
            (Some(r), Some(Reverse(s))) => r.ts() <= s.meta.ts(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        if from_run {
            self.run.pop_front()
        } else {
            self.strays.pop().map(|Reverse(s)| s.meta)
        }
    }

    /// Moves the released packets still in `run` to `out`, so that `run`'s
    /// front is the oldest held packet again (for the rare paths).
    fn spill(&mut self) {
        if self.ready > 0 {
            self.out.extend(self.run.drain(..self.ready));
            self.ready = 0;
        }
    }

    /// Hands the released packets, in time order, to `f` (in up to three
    /// slices) and forgets them.
    pub fn drain_released(&mut self, mut f: impl FnMut(&[Item])) {
        if !self.out.is_empty() {
            f(&self.out);
            self.out.clear();
        }
        if self.ready > 0 {
            let (a, b) = self.run.as_slices();
            let k = self.ready.min(a.len());
            f(&a[..k]);
            if self.ready > k {
                f(&b[..self.ready - k]);
            }
            self.run.drain(..self.ready);
            self.ready = 0;
        }
    }

    #[inline]
    fn release_below_floor(&mut self) {
        if self.strays.is_empty() {
            // Only the run: a front-to-back scan that only counts.
            while self
                .run
                .get(self.ready)
                .is_some_and(|m| m.ts() < self.floor)
            {
                self.ready += 1;
            }
            return;
        }
        self.spill();
        while self.oldest_ts().is_some_and(|t| t < self.floor) {
            if let Some(m) = self.pop_oldest() {
                self.out.push(m);
            }
        }
    }

    /// A live input is idle at wall time `wall` (µs): packet time moves on
    /// with the wall clock, which also confirms a held jump it has reached.
    pub fn idle(&mut self, wall: Micros) {
        if self.suspect.as_ref().is_some_and(|s| wall >= s.meta.ts()) {
            if let Some(s) = self.suspect.take() {
                self.accept(s.meta, s.notice);
            }
        }
        if self.newest == Micros::MIN {
            return;
        }
        if wall > self.newest {
            self.advance(wall);
        }
    }

    /// The input has ended: a held jump is decided as the last packet's,
    /// and everything held is released.
    pub fn finish(&mut self, outliers: &mut Vec<Decided>) {
        if let Some(s) = self.suspect.take() {
            // An input of one packet (in range): nothing says it is wrong.
            if self.newest == Micros::MIN
                || s.meta.ts().saturating_sub(self.newest) <= self.cfg.last_jump
            {
                self.accept(s.meta, s.notice);
            } else {
                outliers.push((OutlierKind::Ahead, s.packet, s.meta.ts()));
            }
        }
        self.spill();
        while let Some(m) = self.pop_oldest() {
            self.out.push(m);
        }
        self.floor = self.floor.max(self.newest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanwatch_model::{Addr, FlowKey};

    const T0: Micros = 1_767_225_600_000_000; // 2026-01-01

    fn pos(packet: u64) -> Pos {
        Pos { input: 0, packet }
    }

    /// A packet at `ts` to `port`.
    fn pkt(ts: Micros, port: u16) -> PacketMeta {
        let mut m = PacketMeta {
            ts,
            ..PacketMeta::default()
        };
        m.set_tuple(Addr::default(), 0, Addr::default(), port, 0);
        m
    }

    fn at(ts: Micros, port: u16) -> Item {
        Item::Packet(pkt(ts, port))
    }

    /// A notice at `ts`, about a flow to `port`.
    fn notice(ts: Micros, port: u16) -> IcmpNotice {
        IcmpNotice {
            ts,
            key: FlowKey::new(Addr::default(), 0, Addr::default(), port, 0).0,
            from_a: true,
            ..IcmpNotice::default()
        }
    }

    /// The port a packet or notice is for.
    fn port(i: &Item) -> u16 {
        match i {
            Item::Packet(m) => m.dport(),
            Item::Notice(n) => n.key.pb,
        }
    }

    /// Feeds `times` (µs after T0) as packets 1.., releasing after each;
    /// returns the released (time, packet number) and the outliers.
    type Released = Vec<(Micros, u16)>;
    type Outliers = Vec<(OutlierKind, u64)>;

    fn run(cfg: ClockConfig, times: &[Micros]) -> (Released, Outliers) {
        let mut c = InputClock::new(cfg);
        let (mut out, mut bad) = (Vec::new(), Vec::new());
        for (i, t) in times.iter().enumerate() {
            c.push(at(T0 + t, i as u16 + 1), None, pos(i as u64 + 1), &mut bad);
            c.drain_released(|s| out.extend_from_slice(s));
            assert!(out.iter().all(|m| m.ts() < c.released()));
        }
        c.finish(&mut bad);
        c.drain_released(|s| out.extend_from_slice(s));
        (
            out.iter().map(|m| (m.ts() - T0, port(m))).collect(),
            bad.iter().map(|(k, p, _)| (*k, p.packet)).collect(),
        )
    }

    #[test]
    fn small_disorder_comes_out_sorted_and_nothing_is_lost() {
        let ms = 1000;
        let times = [
            0,
            5 * ms,
            3 * ms,
            4 * ms,
            10 * ms,
            9 * ms,
            200 * ms,
            150 * ms,
            400 * ms,
        ];
        let (out, bad) = run(ClockConfig::default(), &times);
        assert!(bad.is_empty(), "{bad:?}");
        let mut want: Vec<(Micros, u16)> = times
            .iter()
            .enumerate()
            .map(|(i, t)| (*t, i as u16 + 1))
            .collect();
        want.sort();
        assert_eq!(out, want);
    }

    #[test]
    fn equal_times_keep_their_input_order() {
        let (out, _) = run(ClockConfig::default(), &[10, 10, 5, 10]);
        assert_eq!(out, vec![(5, 3), (10, 1), (10, 2), (10, 4)]);
    }

    #[test]
    fn a_lone_packet_a_year_ahead_is_an_outlier_and_moves_nothing() {
        let year = 365 * 86_400_000_000;
        let times = [0, 1000, year, 2000, 3000];
        let (out, bad) = run(ClockConfig::default(), &times);
        assert_eq!(bad, vec![(OutlierKind::Ahead, 3)]);
        assert_eq!(out, vec![(0, 1), (1000, 2), (2000, 4), (3000, 5)]);
    }

    #[test]
    fn a_real_gap_moves_the_clock() {
        let hours = 5 * 3_600_000_000;
        let times = [0, 1000, hours, hours + 1000, hours + 2000];
        let (out, bad) = run(ClockConfig::default(), &times);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(out.len(), 5);
        assert_eq!(out[2], (hours, 3));
    }

    #[test]
    fn zero_and_absurd_times_are_out_of_range() {
        let mut c = InputClock::new(ClockConfig::default());
        let mut bad = Vec::new();
        c.push(at(T0, 1), None, pos(1), &mut bad);
        c.push(at(0, 2), None, pos(2), &mut bad);
        c.push(at(i64::MAX, 3), None, pos(3), &mut bad);
        c.push(at(T0 + 10, 4), None, pos(4), &mut bad);
        let kinds: Vec<_> = bad.iter().map(|(k, p, _)| (*k, p.packet)).collect();
        assert_eq!(
            kinds,
            vec![(OutlierKind::OutOfRange, 2), (OutlierKind::OutOfRange, 3)]
        );
        assert_eq!(c.newest(), T0 + 10);
    }

    #[test]
    fn a_packet_behind_the_release_point_is_late() {
        let s = 1_000_000;
        // 2 s, then one from 1 s earlier (beyond the 300 ms window).
        let (out, bad) = run(
            ClockConfig::default(),
            &[0, 100, 2 * s, 2 * s + 10, s, 3 * s],
        );
        assert_eq!(bad, vec![(OutlierKind::Late, 5)]);
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn the_last_packet_after_a_gap_is_taken_unless_absurdly_far() {
        let (out, bad) = run(ClockConfig::default(), &[0, 1000, 120_000_000]);
        assert!(bad.is_empty());
        assert_eq!(out.last(), Some(&(120_000_000, 3)));
        let year = 365 * 86_400_000_000;
        let (out, bad) = run(ClockConfig::default(), &[0, 1000, year]);
        assert_eq!(bad, vec![(OutlierKind::Ahead, 3)]);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn a_lone_absurd_first_time_is_the_outlier_not_everything_after_it() {
        let year = 365 * 86_400_000_000;
        // The first packet a year ahead of the rest (in range): it alone
        // is left out, and the capture's packets all come through.
        let times = [year, 0, 1000, 2000, 3000];
        let (out, bad) = run(ClockConfig::default(), &times);
        assert_eq!(bad, vec![(OutlierKind::Ahead, 1)]);
        assert_eq!(out, vec![(0, 2), (1000, 3), (2000, 4), (3000, 5)]);
        // A first packet the next one follows is simply the first.
        let (out, bad) = run(ClockConfig::default(), &[0, 1000]);
        assert!(bad.is_empty());
        assert_eq!(out, vec![(0, 1), (1000, 2)]);
        // An input of one packet keeps it.
        let (out, bad) = run(ClockConfig::default(), &[7]);
        assert!(bad.is_empty());
        assert_eq!(out, vec![(7, 1)]);
    }

    #[test]
    fn a_packet_behind_only_what_the_hold_cap_let_go_says_so() {
        let cfg = ClockConfig {
            max_held: 4,
            ..ClockConfig::default()
        };
        // Ten packets in order, then one 5 µs behind the newest: well
        // inside the day's window, but behind what the cap of 4 released.
        let mut times: Vec<Micros> = (0..10).collect();
        times.push(4);
        // And one a day and more behind: late by the window.
        times.push(-86_400_000_001);
        let mut c = InputClock::new(cfg);
        let (mut out, mut bad) = (Vec::new(), Vec::new());
        for (i, t) in times.iter().enumerate() {
            c.push(at(T0 + t, 0), None, pos(i as u64 + 1), &mut bad);
            c.drain_released(|s| out.extend_from_slice(s));
        }
        c.finish(&mut bad);
        c.drain_released(|s| out.extend_from_slice(s));
        let bad: Vec<_> = bad.iter().map(|(k, p, _)| (*k, p.packet)).collect();
        assert_eq!(
            bad,
            vec![(OutlierKind::LateHeld, 11), (OutlierKind::Late, 12)]
        );
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn a_full_window_releases_early_and_counts_it() {
        let cfg = ClockConfig {
            max_held: 4,
            ..ClockConfig::default()
        };
        let mut c = InputClock::new(cfg);
        let (mut out, mut bad) = (Vec::new(), Vec::new());
        for i in 0..10 {
            c.push(at(T0 + i, 0), None, pos(i as u64 + 1), &mut bad);
            c.drain_released(|s| out.extend_from_slice(s));
        }
        assert!(c.overflow > 0);
        assert!(out.windows(2).all(|w| w[0].ts() <= w[1].ts()));
        c.finish(&mut bad);
        c.drain_released(|s| out.extend_from_slice(s));
        assert_eq!(out.len(), 10);
        assert!(bad.is_empty());
    }

    #[test]
    fn decoding_in_place_gives_what_pushing_gives() {
        let year = 365 * 86_400_000_000;
        let times: Vec<Micros> = vec![
            0,
            10,
            5,
            400_000,
            300_000,
            year,
            500_000,
            3_000_000_000,
            3_000_000_100,
            1,
            3_000_000_050,
        ];
        let (mut a, mut b) = (
            InputClock::new(ClockConfig::default()),
            InputClock::new(ClockConfig::default()),
        );
        let (mut oa, mut ob, mut ba, mut bb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, t) in times.iter().enumerate() {
            *a.slot() = pkt(T0 + t, i as u16);
            a.commit(None, || pos(i as u64), &mut ba);
            b.push(at(T0 + t, i as u16), None, pos(i as u64), &mut bb);
            a.drain_released(|s| oa.extend_from_slice(s));
            b.drain_released(|s| ob.extend_from_slice(s));
        }
        a.finish(&mut ba);
        a.drain_released(|s| oa.extend_from_slice(s));
        b.finish(&mut bb);
        b.drain_released(|s| ob.extend_from_slice(s));
        assert_eq!(oa, ob);
        assert_eq!(ba, bb);
        assert!(!ba.is_empty());
    }

    #[test]
    fn what_is_late_does_not_depend_on_when_packets_are_released() {
        // A reversed, gappy input with a small cap: release after every
        // packet, every 7, or only at the end; the same packets leave, in
        // the same order, and the same ones are outliers.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut times = Vec::new();
        for i in 0..3000i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let jitter = (x % 200_000) as i64;
            let base = match i {
                _ if i % 500 >= 250 && i % 500 < 260 => i * 2000 - 1_000_000,
                _ if i % 700 == 3 => i * 2000 + 1_000_000_000,
                _ => i * 2000,
            };
            times.push(base + jitter);
        }
        let cfg = ClockConfig {
            max_held: 64,
            ..ClockConfig::default()
        };
        let outcome = |every: usize| {
            let mut c = InputClock::new(cfg);
            let (mut out, mut bad) = (Vec::new(), Vec::new());
            for (i, t) in times.iter().enumerate() {
                *c.slot() = pkt(T0 + t, (i % 60_000) as u16);
                c.commit(None, || pos(i as u64), &mut bad);
                if every > 0 && i % every == 0 {
                    c.drain_released(|s| out.extend_from_slice(s));
                }
            }
            c.finish(&mut bad);
            c.drain_released(|s| out.extend_from_slice(s));
            (out, bad, c.overflow)
        };
        let a = outcome(1);
        assert!(
            !a.1.is_empty() && a.2 > 0,
            "the input exercises both rules: {} outliers, {} overflow",
            a.1.len(),
            a.2
        );
        assert!(a.0.windows(2).all(|w| w[0].ts() <= w[1].ts()));
        assert_eq!(a, outcome(7));
        assert_eq!(a, outcome(0));
    }

    #[test]
    fn over_the_cap_the_oldest_leave_in_order_whether_or_not_a_packet_is_out_of_order() {
        // A file's case: a window of a day, a cap of 8. Packets 0..40 every
        // 10 µs, except that packet 20 comes after 21 (a stray while
        // packets wait in the run: the other path) and 30 after 33.
        let cfg = ClockConfig {
            max_held: 8,
            ..ClockConfig::default()
        };
        let mut order: Vec<u16> = (0..40).collect();
        order.swap(20, 21);
        order[30..34].rotate_left(1);
        let mut c = InputClock::new(cfg);
        let (mut out, mut bad) = (Vec::new(), Vec::new());
        for (i, &p) in order.iter().enumerate() {
            *c.slot() = pkt(T0 + 10 * Micros::from(p), p);
            c.commit(None, || pos(i as u64 + 1), &mut bad);
            // Once 8 wait, each packet releases the oldest one and the
            // release point is that one's time.
            if i >= 8 {
                let mut sorted: Vec<u16> = order[..=i].to_vec();
                sorted.sort_unstable();
                let last_out = sorted[i - 8];
                assert_eq!(c.released(), T0 + 10 * Micros::from(last_out), "after {i}");
            }
            if i % 5 == 4 {
                c.drain_released(|s| out.extend_from_slice(s));
            }
        }
        assert_eq!(c.overflow, 32);
        assert_eq!(c.reordered, 2);
        c.finish(&mut bad);
        c.drain_released(|s| out.extend_from_slice(s));
        assert!(bad.is_empty());
        assert_eq!(
            out.iter().map(port).collect::<Vec<_>>(),
            (0..40).collect::<Vec<u16>>()
        );
    }

    #[test]
    fn a_notice_stays_right_after_its_error() {
        let mut c = InputClock::new(ClockConfig::default());
        let (mut out, mut bad) = (Vec::new(), Vec::new());
        c.push(at(T0 + 50, 1), None, pos(1), &mut bad);
        c.push(at(T0 + 10, 2), Some(notice(T0 + 10, 99)), pos(2), &mut bad);
        c.finish(&mut bad);
        c.drain_released(|s| out.extend_from_slice(s));
        let ports: Vec<u16> = out.iter().map(port).collect();
        assert_eq!(ports, vec![2, 99, 1]);
    }

    #[test]
    fn live_idle_time_confirms_a_jump_it_has_reached() {
        let mut c = InputClock::new(ClockConfig::default());
        let (mut out, mut bad) = (Vec::new(), Vec::new());
        c.push(at(T0, 1), None, pos(1), &mut bad);
        c.push(at(T0 + 5_000_000, 2), None, pos(2), &mut bad);
        c.idle(T0 + 4_000_000);
        c.drain_released(|s| out.extend_from_slice(s));
        assert_eq!(out.len(), 1);
        c.idle(T0 + 6_000_000);
        c.drain_released(|s| out.extend_from_slice(s));
        assert_eq!(out.len(), 2);
        assert!(bad.is_empty());
    }
}
