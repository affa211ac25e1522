//! The detector shards: each runs one [`Detector`] over the attempts of the
//! sources that hash to it, and one [`Distributed`] tracker over the
//! probe-like attempts of the targets that hash to it (released by the same
//! rule, in a second stream). Every worker sends its attempts as sorted runs,
//! each with the worker's watermark; the shard releases attempts only below
//! the lowest watermark of all workers, sorted by (time, content), never by
//! which worker sent them. So the detector sees the same sequence whatever
//! the thread count or reading speed, and reports the same scans.

use crate::counters::{Counters, Counts};
use crate::output::OutMsg;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use hdrhistogram::Histogram;
use scanwatch_detect::{DetectConfig, DetectStats, Detector, Distributed, Phase, ScanEvent};
use scanwatch_model::{Attempt, Micros, Watermark};
use std::time::{Duration, Instant};

/// A worker's attempts for one shard, sorted, and its watermark: no later
/// attempt from that worker will be older.
pub(crate) struct ShardMsg {
    pub worker: usize,
    pub attempts: Vec<Attempt>,
    /// The worker's probe-like attempts whose target hashes to this shard,
    /// sorted: the shard's [`Distributed`] tracker sees them.
    pub by_target: Vec<Attempt>,
    pub watermark: Micros,
    /// Wall time the packets behind them were read (for the latency
    /// histogram); `None` for the final flush.
    pub born: Option<Instant>,
}

/// What a detector shard works with.
pub(crate) struct ShardCtx<'a> {
    /// This shard's index (the writer merges the shards' events).
    pub shard: usize,
    pub rx: Receiver<ShardMsg>,
    /// Emptied attempt vectors go back to the workers.
    pub attempt_recycle: Sender<Vec<Attempt>>,
    /// Number of flow workers whose watermarks are merged.
    pub workers: usize,
    pub detect: DetectConfig,
    pub out: Sender<OutMsg>,
    pub counters: &'a Counters,
}

/// Longest wall time a shard keeps its progress from the writer when it
/// has no event to send (the writer holds other shards' events until every
/// shard is past their time: an alert waits at most this much longer).
const UPTO_EVERY: Duration = Duration::from_millis(20);

/// Largest attempt vector (in attempts) handed back for reuse: a burst's
/// big vector is freed rather than kept.
const RECYCLED_ATTEMPTS: usize = 4096;

/// Runs one shard until every worker is done; returns its detector's
/// counters and the capture-to-detection latency histogram.
pub(crate) fn shard_loop(ctx: ShardCtx<'_>) -> (DetectStats, Histogram<u64>) {
    // Fixed, valid bounds (1 µs to 60 s, 3 digits): this cannot fail.
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
    let Ok(mut dist) = Distributed::new(ctx.detect.clone()) else {
        return (DetectStats::default(), hist);
    };
    let Ok(mut det) = Detector::new(ctx.detect.clone()) else {
        return (DetectStats::default(), hist);
    };
    let mut workers = Watermark::new(ctx.workers);
    // Sorted runs as the workers sent them, and the attempts released from
    // them at a watermark.
    let mut runs: Vec<Vec<Attempt>> = Vec::new();
    let mut ready: Vec<Attempt> = Vec::new();
    let mut spent: Vec<Vec<Attempt>> = Vec::new();
    // The same, seen from the targets' side.
    let mut target_runs: Vec<Vec<Attempt>> = Vec::new();
    let mut target_ready: Vec<Attempt> = Vec::new();
    let mut released = Micros::MIN;
    let mut upto = Micros::MIN;
    let mut events: Vec<ScanEvent> = Vec::new();
    let mut borns: Vec<Instant> = Vec::new();
    let mut published_evictions = 0u64;
    // How far this shard has gone, told to the writer with its events, and
    // without any at most every UPTO_EVERY: an `upto` alone for every step
    // (a message and a wake-up of the writer each) cost the bulk file a
    // third more context switches per shard.
    let mut told = Instant::now();
    let mut untold = false;
    loop {
        let next = if untold {
            ctx.rx
                .recv_timeout(UPTO_EVERY.saturating_sub(told.elapsed()))
        } else {
            ctx.rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        };
        let mut msg = match next {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => {
                tell(&ctx, &det, upto, Vec::new());
                told = Instant::now();
                untold = false;
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if !msg.attempts.is_empty() {
            runs.push(std::mem::take(&mut msg.attempts));
        }
        if !msg.by_target.is_empty() {
            target_runs.push(std::mem::take(&mut msg.by_target));
        }
        if let Some(b) = msg.born {
            borns.push(b);
        }
        let low = workers.raise(msg.worker, msg.watermark);
        if low > released {
            // Release every attempt below the lowest watermark, in (time,
            // content) order: the same order at any thread count. Each
            // attempt is moved once and sorted once (the runs' released
            // prefixes, already sorted runs, which the sort detects), rather
            // than merged into everything pending at every message.
            release_below(&mut runs, low, &mut ready, &mut spent);
            release_below(&mut target_runs, low, &mut target_ready, &mut spent);
            for v in spent.drain(..) {
                if v.capacity() <= RECYCLED_ATTEMPTS {
                    let _ = ctx.attempt_recycle.try_send(v);
                }
            }
            // By reference, then cleared: moving each attempt out first
            // copied it to the stack, a stall per attempt (7% of a flood's
            // CPU).
            for a in &ready {
                det.on_attempt(a, &mut events);
            }
            ready.clear();
            for a in &target_ready {
                dist.on_attempt(a, &mut events);
            }
            target_ready.clear();
            released = low;
            if low != Micros::MAX {
                det.advance(low, &mut events);
                dist.advance(low, &mut events);
            }
            let now = Instant::now();
            for b in borns.drain(..) {
                let us = now.duration_since(b).as_micros() as u64;
                let _ = hist.record(us.clamp(1, 60_000_000));
            }
            // The writer merges the shards' events by packet time: it
            // hears how far this shard has gone even when it found nothing.
            // Every later event is stamped at or after `low` (a later
            // attempt's time, or a due time or an end not reached by this
            // step's advance). Not so for the last step, when every worker
            // is done: the ends of `finish` are stamped at their scans'
            // last probes, so `upto` waits for the final message.
            if low != Micros::MAX {
                upto = low;
            }
            if events.is_empty() && told.elapsed() < UPTO_EVERY {
                untold = true;
            } else {
                tell(&ctx, &det, upto, std::mem::take(&mut events));
                told = Instant::now();
                untold = false;
            }
        }
        // Evictions show in live stats as they happen, not only at exit.
        publish_evictions(ctx.counters, &det, &mut published_evictions);
    }
    // All workers are done: everything left is released, in order.
    release_below(&mut runs, Micros::MAX, &mut ready, &mut spent);
    release_below(&mut target_runs, Micros::MAX, &mut target_ready, &mut spent);
    for a in &ready {
        det.on_attempt(a, &mut events);
    }
    for a in &target_ready {
        dist.on_attempt(a, &mut events);
    }
    det.finish(&mut events);
    dist.finish(&mut events);
    // Always sent: it tells the writer this shard is done.
    tell(&ctx, &det, Micros::MAX, events);
    publish_evictions(ctx.counters, &det, &mut published_evictions);
    let mut stats = det.stats;
    stats += dist.stats;
    (stats, hist)
}

/// Sends the writer `events` (their starts counted, their directions set)
/// and how far this shard has gone.
fn tell(ctx: &ShardCtx<'_>, det: &Detector, upto: Micros, mut events: Vec<ScanEvent>) {
    let started = events.iter().filter(|e| e.phase == Phase::Start).count() as u64;
    if started > 0 {
        ctx.counters.add(&Counts {
            scans_started: started,
            ..Counts::default()
        });
    }
    det.set_directions(&mut events);
    let _ = ctx.out.send(OutMsg::Events {
        shard: ctx.shard,
        upto,
        events,
    });
}

/// Adds the sources evicted since the last call to the live counters.
fn publish_evictions(counters: &Counters, det: &Detector, published: &mut u64) {
    let now = det.stats.sources_evicted;
    if now > *published {
        counters.add(&Counts {
            sources_evicted: now - *published,
            ..Counts::default()
        });
        *published = now;
    }
}

/// Moves every attempt with a time below `low` (all of them for
/// `Micros::MAX`) out of the sorted `runs` and appends them to `ready`,
/// sorted.
fn release_below(
    runs: &mut Vec<Vec<Attempt>>,
    low: Micros,
    ready: &mut Vec<Attempt>,
    spent: &mut Vec<Vec<Attempt>>,
) {
    let cut_of = |run: &Vec<Attempt>| {
        if low == Micros::MAX {
            run.len()
        } else {
            run.partition_point(|a| a.time < low)
        }
    };
    if runs.len() <= MERGE_HEADS {
        // The usual case (a run per pending message): merged in place,
        // nothing allocated.
        let mut cuts = [0usize; MERGE_HEADS];
        let mut heads: [&[Attempt]; MERGE_HEADS] = [&[]; MERGE_HEADS];
        for (i, run) in runs.iter().enumerate() {
            cuts[i] = cut_of(run);
            heads[i] = &run[..cuts[i]];
        }
        merge_into(&heads[..runs.len()], ready);
        for (run, &c) in runs.iter_mut().zip(&cuts) {
            run.drain(..c);
        }
    } else {
        let from = ready.len();
        for run in runs.iter_mut() {
            let c = cut_of(run);
            ready.extend(run.drain(..c));
        }
        ready[from..].sort();
    }
    // Emptied runs go back to the workers (their capacity reused).
    let mut i = 0;
    while i < runs.len() {
        if runs[i].is_empty() {
            spent.push(runs.swap_remove(i));
        } else {
            i += 1;
        }
    }
}

/// Runs merged with a linear scan of their heads: one comparison per run
/// and one copy per attempt. Above this many a sort of the concatenation
/// merges them instead.
const MERGE_HEADS: usize = 8;

/// Appends the sorted `runs` to `out` in one sorted sequence. Workers send
/// each shard a run per message, and a release takes the released prefix
/// of each run pending: with two workers, usually two or three. Merging
/// them directly moves each attempt once, where extending and sorting
/// moved it into `out`, then through the sort's scratch buffer and back
/// (the release was 2.8% of the scans cut's instructions, two thirds of
/// it in the sort). Attempts that compare equal are identical, so which
/// run gives one first does not matter.
fn merge_into(runs: &[&[Attempt]], out: &mut Vec<Attempt>) {
    let total: usize = runs.iter().map(|r| r.len()).sum();
    out.reserve(total);
    match runs {
        [] => {}
        [one] => out.extend_from_slice(one),
        _ if runs.len() > MERGE_HEADS => {
            let from = out.len();
            for r in runs {
                out.extend_from_slice(r);
            }
            out[from..].sort();
        }
        _ => {
            let mut heads = [0usize; MERGE_HEADS];
            let mut live = runs.iter().filter(|r| !r.is_empty()).count();
            while live > 1 {
                // The run with the smallest head (the first on ties).
                let mut best = usize::MAX;
                for (i, r) in runs.iter().enumerate() {
                    if let Some(a) = r.get(heads[i]) {
                        if best == usize::MAX || *a < runs[best][heads[best]] {
                            best = i;
                        }
                    }
                }
                out.push(runs[best][heads[best]]);
                heads[best] += 1;
                if heads[best] == runs[best].len() {
                    live -= 1;
                }
            }
            // One run left: the rest of it in one copy.
            for (i, r) in runs.iter().enumerate() {
                if heads[i] < r.len() {
                    out.extend_from_slice(&r[heads[i]..]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanwatch_model::{Addr, Outcome, ProbeKind};

    fn attempt(time: Micros, port: u16) -> Attempt {
        Attempt {
            time,
            src: Addr::from_v4([198, 18, 0, 1]),
            dst: Addr::from_v4([198, 19, 0, 1]),
            proto: 6,
            dport: port,
            sport: 40000,
            probe_ts: time,
            probe: ProbeKind::Syn,
            outcome: Outcome::Rejected,
            data: false,
            flow_id: 0,
            print: scanwatch_model::ProbePrint::default(),
            handshake: false,
            abortive: false,
        }
    }

    #[test]
    fn runs_merge_into_one_sorted_sequence_however_many() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for k in [0usize, 1, 2, 3, 5, 8, 9, 20] {
            for _ in 0..20 {
                let runs: Vec<Vec<Attempt>> = (0..k)
                    .map(|_| {
                        let n = (next() % 30) as usize;
                        let mut r: Vec<Attempt> = (0..n)
                            .map(|_| attempt((next() % 50) as i64, (next() % 3) as u16))
                            .collect();
                        r.sort_unstable();
                        r
                    })
                    .collect();
                let slices: Vec<&[Attempt]> = runs.iter().map(|r| &r[..]).collect();
                // Appended after what `out` already holds, which stays.
                let keep = attempt(-1, 9);
                let mut out = vec![keep];
                merge_into(&slices, &mut out);
                let mut want: Vec<Attempt> = runs.concat();
                want.sort();
                assert_eq!(out[0], keep);
                assert_eq!(out[1..], want[..], "{k} runs");
            }
        }
    }

    #[test]
    fn more_runs_than_merge_heads_are_released_sorted() {
        for k in [MERGE_HEADS, MERGE_HEADS + 1, 3 * MERGE_HEADS] {
            let mut runs: Vec<Vec<Attempt>> = (0..k)
                .map(|i| {
                    (0..10)
                        .map(|j| attempt((j * 7 + i) as i64 % 40, i as u16))
                        .collect()
                })
                .map(|mut r: Vec<Attempt>| {
                    r.sort_unstable();
                    r
                })
                .collect();
            let mut want: Vec<Attempt> = runs.concat();
            want.sort();
            let (mut ready, mut spent) = (Vec::new(), Vec::new());
            release_below(&mut runs, 20, &mut ready, &mut spent);
            let below = want.iter().filter(|a| a.time < 20).count();
            assert_eq!(ready[..], want[..below], "{k} runs");
            release_below(&mut runs, Micros::MAX, &mut ready, &mut spent);
            assert_eq!(ready, want, "{k} runs");
            assert!(runs.is_empty() && spent.len() == k);
        }
    }

    #[test]
    fn released_attempts_come_sorted_and_only_below_the_watermark() {
        // Overlapping runs, as workers send them: each sorted, times
        // interleaving; released a watermark at a time.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut runs, mut ready, mut all, mut out) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut spent = Vec::new();
        let mut base = 0i64;
        for _ in 0..500 {
            let n = (next() % 40) as usize;
            let mut run: Vec<Attempt> = (0..n)
                .map(|_| attempt(base + (next() % 1000) as i64, (next() % 5) as u16))
                .collect();
            run.sort_unstable();
            all.extend_from_slice(&run);
            if !run.is_empty() {
                runs.push(run);
            }
            base += (next() % 300) as i64;
            release_below(&mut runs, base, &mut ready, &mut spent);
            assert!(ready.iter().all(|a| a.time < base));
            assert!(runs.iter().flatten().all(|a| a.time >= base));
            assert!(runs.iter().all(|r| !r.is_empty()));
            assert!(spent.iter().all(|r| r.is_empty()));
            out.append(&mut ready);
        }
        release_below(&mut runs, Micros::MAX, &mut ready, &mut spent);
        assert!(runs.is_empty());
        out.append(&mut ready);
        all.sort();
        assert_eq!(out, all);
    }
}
