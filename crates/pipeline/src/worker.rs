//! The flow workers: each owns one [`FlowTable`] (shared-nothing; the
//! capture threads send both directions of a flow to the same worker), feeds
//! it the packets of its batches, fires its timers up to the inputs'
//! watermark, and sends what the table produces onward: connection attempts
//! to the detector shard of their source (and the probe-like ones also to
//! the shard of their target, for distributed scans), flow records, built into Arrow
//! batches here (the Arrow work is spread over the workers), to the output
//! thread.

use crate::counters::{Counters, Counts};
use crate::output::OutMsg;
use crate::shard::ShardMsg;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use scanwatch_flow::{FlowConfig, FlowStats, FlowTable, Output};
use scanwatch_model::{
    bucket, vshard, Addr, Attempt, FlowKey, FlowRecord, Item, Micros, Watermark, VSHARDS,
};
use scanwatch_sink::{FlowBatchBuilder, SinkError, TableBuilder};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Packets (and ICMP errors' notices) for one worker, with the sending
/// input's watermark.
pub(crate) struct PacketBatch {
    pub items: Vec<Item>,
    /// No later packet of this input is older.
    pub watermark: Micros,
    /// Which input sent it.
    pub source: usize,
    /// Wall time its oldest packet was read (for the latency histogram).
    pub born: Instant,
}

/// What a flow worker works with.
pub(crate) struct WorkerCtx<'a> {
    pub id: usize,
    pub rx: Receiver<PacketBatch>,
    /// The tables' settings, with one virtual shard's cap
    /// ([`scanwatch_model::VSHARDS`] tables share the flow cap).
    pub flow: FlowConfig,
    /// One queue per detector shard.
    pub shards: Vec<Sender<ShardMsg>>,
    pub out: Sender<OutMsg>,
    /// Emptied packet vectors go back to the capture threads.
    pub recycle: Sender<Vec<Item>>,
    /// Emptied attempt vectors come back from the shards.
    pub attempt_recycle: Receiver<Vec<Attempt>>,
    /// Number of inputs (capture threads) whose watermarks are merged.
    pub inputs: usize,
    /// Number of flow workers (this one's share of the output buffers).
    pub workers: usize,
    /// A shard's attempts go to it at once when this many wait (see
    /// [`PROGRESS_EVERY`]): a packet batch's share of one shard.
    pub send_at: usize,
    /// Seed of the flow hash that picks a flow's virtual shard and of the
    /// source hash that picks an attempt's shard.
    pub seed: u64,
    /// Build flow records into batches for the output (else only count them).
    pub write_flows: bool,
    pub counters: &'a Counters,
}

/// Rows per flow batch handed to the output thread, all workers together:
/// each worker's batches are this divided by the worker count (at most
/// [`FLOW_BATCH_ROWS_MAX`], at least [`FLOW_BATCH_ROWS_MIN`]), so the
/// memory of the batches being built and queued is the same whatever the
/// worker count, and the memory budget's caps need not depend on it.
pub(crate) const FLOW_BATCH_ROWS_ALL: usize = 16_384;
const FLOW_BATCH_ROWS_MAX: usize = 16_384;
const FLOW_BATCH_ROWS_MIN: usize = 1024;

/// One worker's flow batch rows (see [`FLOW_BATCH_ROWS_ALL`]).
pub(crate) fn flow_batch_rows(workers: usize) -> usize {
    (FLOW_BATCH_ROWS_ALL / workers.max(1)).clamp(FLOW_BATCH_ROWS_MIN, FLOW_BATCH_ROWS_MAX)
}
/// Longest a finished flow waits on its worker before it goes to the writer.
const FLOW_BATCH_MAX_WAIT: Duration = Duration::from_secs(1);

/// Per-hour flow batch builders of one worker.
struct FlowBatches {
    builders: Vec<(i64, FlowBatchBuilder)>,
    /// Rows per batch ([`flow_batch_rows`]).
    rows: usize,
    /// Wall time of the oldest row not yet handed to the output thread: on a
    /// quiet live link rows must not wait for a full batch (a SIGHUP rotation
    /// or a crash would otherwise find them still in memory).
    oldest: Option<Instant>,
}

impl FlowBatches {
    fn flush_if_old(&mut self, out: &Sender<OutMsg>) {
        if self
            .oldest
            .is_some_and(|t| t.elapsed() >= FLOW_BATCH_MAX_WAIT)
        {
            self.flush(out);
        }
    }

    fn add(&mut self, r: &FlowRecord, out: &Sender<OutMsg>) {
        if self.oldest.is_none() {
            self.oldest = Some(Instant::now());
        }
        let hour = r.ts.div_euclid(3_600_000_000);
        let i = match self.builders.iter().position(|(h, _)| *h == hour) {
            Some(i) => i,
            None => {
                self.builders
                    .push((hour, FlowBatchBuilder::with_capacity(self.rows)));
                self.builders.len() - 1
            }
        };
        let b = &mut self.builders[i].1;
        b.append(r);
        if b.len() >= self.rows {
            send_batch(out, hour, b);
            self.builders.swap_remove(i);
        }
    }

    fn flush(&mut self, out: &Sender<OutMsg>) {
        self.oldest = None;
        for (hour, mut b) in self.builders.drain(..) {
            if !b.is_empty() {
                send_batch(out, hour, &mut b);
            }
        }
    }
}

/// Finishes a batch and hands it to the output thread; a batch that cannot
/// be built is an output error that stops the run, never a silent loss.
fn send_batch(out: &Sender<OutMsg>, hour: i64, b: &mut FlowBatchBuilder) {
    let msg = match b.finish() {
        Ok(batch) => OutMsg::Flows { hour, batch },
        Err(source) => OutMsg::Failed(SinkError::Arrow {
            path: "flows (a batch of flow records)".into(),
            source,
        }),
    };
    let _ = out.send(msg);
}

/// Attempts sorted into per-shard runs and sent with the worker's watermark.
struct AttemptRouter<'a> {
    ctx: &'a WorkerCtx<'a>,
    per_shard: Vec<Vec<Attempt>>,
    /// Probe-like attempts again, by the shard of their target (its
    /// distributed-scan tracker).
    per_target: Vec<Vec<Attempt>>,
    /// The watermark last sent to each shard.
    sent: Vec<Micros>,
    /// The newest watermark, told or not.
    wm: Micros,
    /// Per shard, when the oldest batch behind an untold watermark was
    /// read (for the shard's latency histogram).
    pending_born: Vec<Option<Instant>>,
    /// When every shard with news was last sent what it had.
    told: Instant,
    /// Scratch of [`sorted_into`]: (time, index) sort keys.
    keys: Vec<(Micros, u32)>,
}

/// A worker sends a shard what it holds for it (attempts, or only a newer
/// watermark) once this much wall time has passed since the last such
/// round, or at once when [`WorkerCtx::send_at`] attempts wait for it, and
/// everything at the end. Every shard waits for the lowest of the workers'
/// watermarks, so this bounds how much longer a shard holds other workers'
/// attempts. Telling each shard after every batch woke both detector
/// threads per batch of the bulk file: twice the context switches of one
/// shard.
const PROGRESS_EVERY: Duration = Duration::from_millis(20);

/// Moves `v`'s attempts into `out` (cleared first) in `Attempt`'s order,
/// leaving `v` empty with its capacity. Sorts 16-byte (time, index) keys,
/// ties broken by the attempts' content, and moves each 80-byte attempt
/// once, where sorting the attempts themselves moves each several times (a
/// flood's timed-out probes come out of the timer wheel far from sorted).
/// Attempts that compare equal are identical in every field, so the
/// result is exactly that of a stable sort.
fn sorted_into(v: &mut Vec<Attempt>, keys: &mut Vec<(Micros, u32)>, out: &mut Vec<Attempt>) {
    out.clear();
    if v.is_sorted() || u32::try_from(v.len()).is_err() {
        v.sort();
        std::mem::swap(v, out);
        return;
    }
    keys.clear();
    keys.extend(v.iter().zip(0u32..).map(|(a, i)| (a.time, i)));
    // Stable: the keys come in a few sorted runs (timer slots, packets),
    // which the sort merges rather than re-sorts.
    keys.sort_by(|x, y| {
        x.0.cmp(&y.0)
            .then_with(|| v[x.1 as usize].cmp(&v[y.1 as usize]))
    });
    out.extend(keys.iter().map(|&(_, i)| v[i as usize]));
    v.clear();
}

impl AttemptRouter<'_> {
    /// Takes the table's attempts and watermark `wm`, and sends each shard
    /// what it holds for it once [`WorkerCtx::send_at`] attempts wait for
    /// it or [`PROGRESS_EVERY`] has passed since the last round, or with
    /// `force` (the end: every shard hears everything).
    fn flush(&mut self, o: &mut Output, wm: Micros, born: Option<Instant>, force: bool) {
        self.wm = self.wm.max(wm);
        let m = self.per_shard.len();
        // Read where they lie, then cleared (moving each out first is a
        // stall per attempt: see the capture's dispatch).
        for a in &o.attempts {
            if a.is_probe_like() {
                let t = bucket(shard_of(a.dst, self.ctx.seed), m);
                self.per_target[t].push(*a);
            }
            let s = bucket(shard_of(a.src, self.ctx.seed), m);
            self.per_shard[s].push(*a);
        }
        o.attempts.clear();
        let all = force || (self.untold() && self.told.elapsed() >= PROGRESS_EVERY);
        if all {
            self.told = Instant::now();
        }
        let wm = self.wm;
        for (s, (v, t)) in self
            .per_shard
            .iter_mut()
            .zip(self.per_target.iter_mut())
            .enumerate()
        {
            // The oldest batch behind what this shard has not heard.
            let born = self.pending_born[s].or(born);
            let held = v.len() + t.len();
            let news = held > 0 || wm > self.sent[s];
            if !(all && news) && held < self.ctx.send_at {
                // Not enough for this shard yet: its attempts and watermark
                // wait (see PROGRESS_EVERY).
                self.pending_born[s] = if news { born } else { None };
                continue;
            }
            self.pending_born[s] = None;
            // Sorted here, in parallel across workers; the shard only merges.
            // Each run is sorted into a spare vector (a recycled one), and
            // the router keeps its own for the next batch.
            let spare = || match self.ctx.attempt_recycle.try_recv() {
                Ok(mut r) => {
                    r.clear();
                    r
                }
                Err(_) => Vec::new(),
            };
            let mut attempts = spare();
            sorted_into(v, &mut self.keys, &mut attempts);
            // Most batches have no failed attempt: no vector taken then.
            let by_target = if t.is_empty() {
                Vec::new()
            } else {
                let mut by_target = spare();
                sorted_into(t, &mut self.keys, &mut by_target);
                by_target
            };
            let _ = self.ctx.shards[s].send(ShardMsg {
                worker: self.ctx.id,
                attempts,
                by_target,
                watermark: wm,
                born,
            });
            self.sent[s] = wm;
        }
    }

    /// Some shard has not heard the newest watermark, or has attempts
    /// waiting for it.
    fn untold(&self) -> bool {
        self.sent.iter().any(|&s| s < self.wm)
            || self.per_shard.iter().any(|v| !v.is_empty())
            || self.per_target.iter().any(|v| !v.is_empty())
    }

    /// How long the worker may wait for its next batch before what a
    /// shard has not heard is due; `None` when every shard has heard all.
    fn wait(&self) -> Option<Duration> {
        self.untold()
            .then(|| PROGRESS_EVERY.saturating_sub(self.told.elapsed()))
    }
}

/// The flow tables of the virtual shards a worker owns, each made at its
/// shard's first packet. A shard's table sees the packets of its flows in
/// time order whatever the worker count, and evicts by its own cap, so its
/// output is the same with 1 worker or 64.
struct Tables {
    cfg: FlowConfig,
    seed: u64,
    shards: Vec<Option<FlowTable>>,
}

impl Tables {
    fn new(cfg: FlowConfig, seed: u64) -> Tables {
        Tables {
            cfg,
            seed,
            shards: (0..VSHARDS).map(|_| None).collect(),
        }
    }

    #[inline]
    fn handle(&mut self, item: &Item, out: &mut Output) {
        let v = vshard(item.key().shard_hash(self.seed));
        let cfg = &self.cfg;
        self.shards[v]
            .get_or_insert_with(|| FlowTable::new(cfg.clone()))
            .handle(item, out);
    }

    fn live(&mut self) -> impl Iterator<Item = &mut FlowTable> {
        self.shards.iter_mut().flatten()
    }

    /// Every table's timers up to `low`; the lowest of their watermarks,
    /// which with no table yet is what a table would say
    /// ([`FlowTable::watermark_for`]). Reporting `low` itself there made
    /// the shards' last step before the end the rounded or the exact end
    /// of the input depending on which worker sent its final message last,
    /// and an event due in between was told at its due time or at the
    /// closing, from run to run.
    fn advance(&mut self, low: Micros, out: &mut Output) -> Micros {
        self.live().fold(FlowTable::watermark_for(low), |wm, t| {
            wm.min(t.advance(low, out))
        })
    }

    fn len(&self) -> usize {
        self.shards.iter().flatten().map(|t| t.len()).sum()
    }

    fn memory_bytes(&self) -> usize {
        self.shards.iter().flatten().map(|t| t.memory_bytes()).sum()
    }

    fn stats(&self) -> FlowStats {
        let mut s = FlowStats::default();
        for t in self.shards.iter().flatten() {
            s += t.stats;
        }
        s
    }
}

/// Runs one flow worker until its queue closes; returns its tables'
/// counters and peak memory.
pub(crate) fn worker_loop(ctx: WorkerCtx<'_>) -> (FlowStats, u64) {
    let mut table = Tables::new(ctx.flow.clone(), ctx.seed);
    let mut o = Output::default();
    let mut router = AttemptRouter {
        ctx: &ctx,
        per_shard: (0..ctx.shards.len()).map(|_| Vec::new()).collect(),
        per_target: (0..ctx.shards.len()).map(|_| Vec::new()).collect(),
        sent: vec![Micros::MIN; ctx.shards.len()],
        wm: Micros::MIN,
        pending_born: vec![None; ctx.shards.len()],
        told: Instant::now(),
        keys: Vec::new(),
    };
    let rows = flow_batch_rows(ctx.workers);
    let mut batches_out = FlowBatches {
        builders: Vec::new(),
        rows,
        oldest: None,
    };
    let mut flow_packets = 0u64;
    let mut inputs = Watermark::new(ctx.inputs);
    let mut merge = InputMerge::new(ctx.inputs);
    let mut peak_mem = 0u64;
    let mut batches = 0u64;
    let mut published_evictions = 0u64;
    // This table's part of the shared `flows_active` gauge.
    let mut published_active = 0i64;
    let publish_active = |published: &mut i64, now: usize| {
        let now = now as i64;
        if now != *published {
            ctx.counters
                .flows_active
                .fetch_add(now - *published, Relaxed);
            *published = now;
        }
    };

    // Records of ended flows: counted, and batched for the writer.
    let mut take_flows = |o: &mut Output, batches_out: &mut FlowBatches| {
        if o.flows.is_empty() {
            return;
        }
        ctx.counters.add(&Counts {
            flows: o.flows.len() as u64,
            ..Counts::default()
        });
        for r in &o.flows {
            flow_packets += r.orig_pkts + r.resp_pkts;
            if ctx.write_flows {
                batches_out.add(r, &ctx.out);
            }
        }
        o.flows.clear();
    };

    loop {
        // With something untold, wait no longer than it may stay so: a
        // quiet interface's shards still hear how far packet time went.
        let b = match router.wait() {
            Some(d) => match ctx.rx.recv_timeout(d) {
                Ok(b) => b,
                Err(RecvTimeoutError::Timeout) => {
                    router.flush(&mut o, Micros::MIN, None, false);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match ctx.rx.recv() {
                Ok(b) => b,
                Err(_) => break,
            },
        };
        batches += 1;
        let low = inputs.raise(b.source, b.watermark);
        if ctx.inputs == 1 {
            // One input: its packets arrive in time order.
            for item in &b.items {
                table.handle(item, &mut o);
            }
        } else {
            merge.push(b.source, &b.items);
            merge.release(low, |item| table.handle(item, &mut o));
        }
        let wm = table.advance(low, &mut o);
        let mut items = b.items;
        items.clear();
        let _ = ctx.recycle.try_send(items);
        router.flush(&mut o, wm, Some(b.born), false);
        take_flows(&mut o, &mut batches_out);
        publish_active(&mut published_active, table.len());
        batches_out.flush_if_old(&ctx.out);
        // A burst of expiries (a flood's flows timing out together) must not
        // leave its peak allocation behind.
        // Kept small: it is per worker, so a larger keep would make the
        // memory outside the caps grow with the worker count.
        if o.flows.capacity() > 8192 {
            o.flows.shrink_to(2048);
        }
        if o.attempts.capacity() > 8192 {
            o.attempts.shrink_to(2048);
        }
        if batches.is_multiple_of(64) {
            peak_mem = peak_mem.max(table.memory_bytes() as u64);
            // Evictions show in live stats as they happen.
            ctx.counters.add(&Counts {
                flows_evicted: table.stats().evicted - published_evictions,
                ..Counts::default()
            });
            published_evictions = table.stats().evicted;
        }
    }
    // The shards hear this worker's last watermark (and what it holds)
    // before the final one: what fell due by then is told at its due time,
    // as when each batch's watermark went out, and not at the closing.
    router.flush(&mut o, Micros::MIN, None, true);
    merge.release(Micros::MAX, |item| table.handle(item, &mut o));
    peak_mem = peak_mem.max(table.memory_bytes() as u64);
    // What is left ends now, a chunk at a time: records go out as they are
    // made; attempts wait (in key order) for the final watermark.
    let mut left_attempts: Vec<Attempt> = Vec::new();
    for t in table.live() {
        t.drain_with(&mut o, rows, |o| {
            left_attempts.append(&mut o.attempts);
            take_flows(o, &mut batches_out);
        });
    }
    o.attempts = left_attempts;
    publish_active(&mut published_active, 0);
    router.flush(&mut o, Micros::MAX, None, true);
    batches_out.flush(&ctx.out);
    let stats = table.stats();
    ctx.counters.add(&Counts {
        flow_packets,
        flows_evicted: stats.evicted - published_evictions,
        attempts: stats.attempts,
        ..Counts::default()
    });
    (stats, peak_mem)
}

/// The packets of several inputs (live interfaces), each in time order,
/// merged into one time order up to their common watermark; ties go to the
/// lower input number, so the order never depends on arrival.
struct InputMerge {
    queues: Vec<VecDeque<Item>>,
}

impl InputMerge {
    fn new(inputs: usize) -> InputMerge {
        InputMerge {
            queues: (0..inputs.max(1)).map(|_| VecDeque::new()).collect(),
        }
    }

    fn push(&mut self, input: usize, items: &[Item]) {
        if let Some(q) = self.queues.get_mut(input) {
            q.extend(items.iter().copied());
        }
    }

    /// Hands every queued packet older than `low` to `f`, in time order.
    fn release(&mut self, low: Micros, mut f: impl FnMut(&Item)) {
        loop {
            let mut best: Option<(usize, Micros)> = None;
            for (i, q) in self.queues.iter().enumerate() {
                if let Some(m) = q.front() {
                    let ts = m.ts();
                    if (ts < low || low == Micros::MAX) && best.is_none_or(|(_, t)| ts < t) {
                        best = Some((i, ts));
                    }
                }
            }
            let Some((i, _)) = best else { return };
            if let Some(m) = self.queues[i].pop_front() {
                f(&m);
            }
        }
    }
}

/// The hash that picks an attempt's detector shard: its source address (or
/// its target's, for the distributed-scan view).
#[inline]
fn shard_of(a: Addr, seed: u64) -> u64 {
    FlowKey {
        a,
        b: a,
        pa: 0,
        pb: 0,
        proto: 0,
    }
    .shard_hash(seed ^ 0xd1b5_4a32_d192_ed03)
}

#[cfg(test)]
mod tests {
    use super::sorted_into;
    use scanwatch_model::{Addr, Attempt, Outcome, ProbeKind, ProbePrint};

    #[test]
    fn sorted_into_orders_as_a_sort_does() {
        // Timer-slot-like runs with many equal times (ties broken by
        // content) and exact duplicates, against `sort()`.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut keys, mut out) = (Vec::new(), Vec::new());
        for round in 0..200 {
            let n = (next() % 300) as usize;
            let mut v: Vec<Attempt> = (0..n)
                .map(|_| {
                    let r = next();
                    Attempt {
                        time: (r % 50) as i64,
                        src: Addr::from_v4([10, 0, (r >> 8) as u8 % 3, (r >> 16) as u8 % 4]),
                        dst: Addr::from_v4([192, 0, 2, (r >> 24) as u8 % 5]),
                        proto: 6,
                        dport: (r >> 32) as u16 % 7,
                        sport: 40000,
                        probe_ts: (r % 50) as i64 - 3,
                        probe: ProbeKind::Syn,
                        outcome: if r >> 40 & 1 == 0 {
                            Outcome::Unanswered
                        } else {
                            Outcome::Rejected
                        },
                        data: false,
                        flow_id: (r >> 44) % 3,
                        print: ProbePrint::default(),
                        handshake: false,
                        abortive: false,
                    }
                })
                .collect();
            if round % 4 == 0 {
                v.sort(); // the already-sorted path
            }
            let mut want = v.clone();
            want.sort();
            sorted_into(&mut v, &mut keys, &mut out);
            assert!(v.is_empty());
            assert_eq!(out, want);
        }
    }
}
