//! The capture threads, one per input: read, decode, and dispatch each
//! packet to the flow worker its flow hashes to.
//!
//! Packets are decoded in place into a staging buffer and handed to their
//! workers' batches at each flush point, in order (dispatching right after
//! decoding would copy each record while its field stores are still in
//! flight: a store-forwarding stall per packet). Every batch carries a
//! watermark, the newest packet time sent, so that workers with no traffic
//! still fire their timers. Batch vectors come back from the workers for
//! reuse: nothing is allocated per packet.
//!
//! Reading a file, a full worker queue makes the reader wait. On a live
//! interface the reader waits at most [`LIVE_QUEUE_WAIT`] (20 ms) per batch,
//! while the kernel ring, far larger than the queue, holds what arrives;
//! then the batch is dropped and counted ([`Counts::queue_drops`]), so that
//! a worker that stays behind costs its own batches, not the whole ring.
//! (Dropping at once lost batches to scheduling hiccups with the ring
//! nearly empty: `scripts/live-bench.sh` on a busy 2-core machine.)

use crate::clock::{ClockConfig, Decided, InputClock, Outlier, OutlierKind, Pos};
use crate::counters::{Counters, Counts};
use crate::worker::PacketBatch;
use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};
use scanwatch_capture::{InputProblem, LiveStats, Next, PacketSource};
use scanwatch_decode::{decode_in_place, DecodeError};
use scanwatch_model::{vshard, worker_of, IcmpNotice, Item, Micros};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a live capture thread waits for room in a full worker queue
/// before it drops the batch: the kernel ring holds what arrives meanwhile.
const LIVE_QUEUE_WAIT: Duration = Duration::from_millis(20);

/// What a capture thread works with besides its input.
pub(crate) struct CaptureCtx<'a> {
    /// Index of the input (its slot in the workers' watermarks).
    pub source_id: usize,
    /// One queue per flow worker.
    pub workers: Vec<Sender<PacketBatch>>,
    /// Emptied batch vectors coming back from the workers.
    pub recycle: Receiver<Vec<Item>>,
    /// Packets per batch.
    pub batch: usize,
    /// Seed of the flow hash that picks a packet's worker.
    pub seed: u64,
    /// Reorder window and outlier rules of the input's packet clock.
    pub clock: ClockConfig,
    pub counters: &'a Counters,
    pub shutdown: &'a AtomicBool,
    /// The first capture error of the run, and whether it was a cut file.
    pub error: &'a Mutex<Option<(String, bool)>>,
    /// Inputs found damaged (the source read the others).
    pub damaged: &'a Mutex<Vec<InputProblem>>,
    /// The live inputs' latest kernel counters, summed.
    pub live_stats: &'a Mutex<Option<LiveStats>>,
}

/// The per-worker batches being filled, and how they are sent.
struct Dispatch<'a> {
    ctx: &'a CaptureCtx<'a>,
    live: bool,
    bufs: Vec<Vec<Item>>,
    /// Wall time at which the oldest packet not yet sent was read.
    born: Instant,
}

impl Dispatch<'_> {
    fn send(&self, w: usize, items: Vec<Item>, watermark: Micros) {
        let b = PacketBatch {
            items,
            watermark,
            source: self.ctx.source_id,
            born: self.born,
        };
        if self.live {
            match self.ctx.workers[w].try_send(b) {
                Ok(()) => {}
                Err(TrySendError::Full(b)) => {
                    // A worker that is late by a scheduling hiccup: wait a
                    // little (the kernel ring, far larger than this queue,
                    // keeps filling meanwhile), then drop and count.
                    if let Err(SendTimeoutError::Timeout(b)) =
                        self.ctx.workers[w].send_timeout(b, LIVE_QUEUE_WAIT)
                    {
                        self.ctx.counters.add(&Counts {
                            queue_drops: 1,
                            queue_drop_packets: b.items.len() as u64,
                            ..Counts::default()
                        });
                    }
                }
                Err(TrySendError::Disconnected(_)) => {}
            }
        } else {
            let _ = self.ctx.workers[w].send(b);
        }
    }

    /// An empty batch vector: one that came back from a worker, or new.
    fn fresh(&self) -> Vec<Item> {
        match self.ctx.recycle.try_recv() {
            Ok(mut v) => {
                v.clear();
                v
            }
            Err(_) => Vec::with_capacity(self.ctx.batch),
        }
    }

    /// Moves released packets into their workers' batches, sending each
    /// batch that fills. Each item's key is read
    /// where it lies and the item copied once into its batch: moving it out
    /// first (a by-value iterator) stored it to the stack in wide words and
    /// read the key back in narrow ones, a store-forwarding stall per
    /// packet that was a third of this function's time.
    fn dispatch(&mut self, released: &[Item]) {
        let n = self.bufs.len();
        for item in released.iter() {
            // Each packet's own time is the watermark of a batch it fills:
            // packets are released in time order, so the ones after it, to
            // any worker, are no older. (An ICMP error's notice follows it,
            // keyed by the quoted flow.) The key is the decoder's.
            let wm = item.ts();
            let w = worker_of(vshard(item.key().shard_hash(self.ctx.seed)), n);
            self.bufs[w].push(*item);
            if self.bufs[w].len() >= self.ctx.batch {
                let next = self.fresh();
                let full = std::mem::replace(&mut self.bufs[w], next);
                self.send(w, full, wm);
            }
        }
    }

    /// Sends every worker its batch, full or not (empty ones too: they
    /// carry the watermark).
    fn send_all(&mut self, watermark: Micros, last: bool) {
        for w in 0..self.bufs.len() {
            let next = if last { Vec::new() } else { self.fresh() };
            let full = std::mem::replace(&mut self.bufs[w], next);
            self.send(w, full, watermark);
        }
    }
}

/// Reads `src` to its end (or shutdown), feeding the flow workers.
pub(crate) fn capture_loop(ctx: CaptureCtx<'_>, mut src: Box<dyn PacketSource>) {
    let n = ctx.workers.len();
    let live = src.is_live();
    let flush_every = ctx.batch * n;
    let mut d = Dispatch {
        ctx: &ctx,
        live,
        bufs: (0..n).map(|_| Vec::with_capacity(ctx.batch)).collect(),
        born: Instant::now(),
    };
    // Packets are decoded in place into the clock's reorder buffer and
    // leave it in time order at each flush point.
    let mut clock = InputClock::new(ctx.clock);
    let mut outliers: Vec<Decided> = Vec::new();
    let mut read = 0u64;
    let mut tally = Counts::default();
    let mut since_flush = 0usize;
    let mut last_stats = Instant::now();
    let mut last_flush = Instant::now();

    loop {
        if ctx.shutdown.load(Relaxed) {
            break;
        }
        let mut idle = false;
        let mut drained = false;
        match src.next_packet() {
            Ok(Next::Packet(p)) => {
                read += 1;
                tally.packets += 1;
                tally.bytes += u64::from(p.wire_len);
                if since_flush == 0 && d.bufs.iter().all(|b| b.is_empty()) {
                    d.born = Instant::now();
                }
                let meta = clock.slot();
                let mut quoted = None;
                match decode_in_place(p.link_type, p.data, p.ts, meta, &mut quoted) {
                    Ok(()) => {
                        tally.ip_packets += 1;
                        // To the quoted flow's worker, uncounted.
                        let notice = quoted.map(|q| IcmpNotice::new(meta, &q));
                        let pos = || match src.position() {
                            Some((input, packet)) => Pos { input, packet },
                            None => Pos {
                                input: 0,
                                packet: read,
                            },
                        };
                        clock.commit(notice, pos, &mut outliers);
                    }
                    Err(e) => {
                        clock.discard();
                        match e {
                            DecodeError::NotIp => tally.not_ip += 1,
                            DecodeError::UnsupportedLinkType(lt) => {
                                tally.decode_errors += 1;
                                tally.unsupported_link += 1;
                                // Rare (a whole capture at most): the lock is
                                // taken only on this path.
                                if let Ok(mut v) = ctx.counters.unsupported_links.lock() {
                                    match v.iter_mut().find(|(t, _)| *t == lt) {
                                        Some((_, n)) => *n += 1,
                                        None => v.push((lt, 1)),
                                    }
                                }
                            }
                            _ => tally.decode_errors += 1,
                        }
                    }
                }
                since_flush += 1;
            }
            Ok(Next::Idle) => idle = true,
            Ok(Next::Again) => drained = true,
            Ok(Next::End) => break,
            Err(e) => {
                if let Ok(mut g) = ctx.error.lock() {
                    g.get_or_insert((e.to_string(), e.is_truncation()));
                }
                break;
            }
        }
        // Live traffic may trickle: flush at least every 50 ms of wall time
        // so that a slow scan is seen within the same second.
        let stale = live
            && since_flush > 0
            && (drained || since_flush.is_multiple_of(16))
            && last_flush.elapsed() >= Duration::from_millis(50);
        if since_flush >= flush_every || idle || stale {
            last_flush = Instant::now();
            if idle && live {
                // An idle link: packet time moves with the wall clock (live
                // timestamps are the kernel's), less a margin for packets
                // still in the ring.
                clock.idle(wall_micros() - 200_000);
            }
            clock.drain_released(|s| d.dispatch(s));
            d.send_all(clock.released(), false);
            since_flush = 0;
            publish(&ctx, &mut tally, &mut clock, &mut outliers, &*src);
            if live && last_stats.elapsed() >= Duration::from_millis(500) {
                last_stats = Instant::now();
                publish_live(&ctx, &mut *src);
            }
        }
    }
    // Release what is left, with a final watermark.
    clock.finish(&mut outliers);
    clock.drain_released(|s| d.dispatch(s));
    d.send_all(clock.released(), true);
    publish(&ctx, &mut tally, &mut clock, &mut outliers, &*src);
    if live {
        publish_live(&ctx, &mut *src);
    }
    if let Ok(mut g) = ctx.damaged.lock() {
        g.extend(src.problems());
    }
}

/// Adds the thread's tally and outliers to the shared counters and
/// publishes its clock and progress.
fn publish(
    ctx: &CaptureCtx<'_>,
    tally: &mut Counts,
    clock: &mut InputClock,
    outliers: &mut Vec<Decided>,
    src: &dyn PacketSource,
) {
    for &(kind, _, _) in outliers.iter() {
        match kind {
            OutlierKind::OutOfRange => tally.outliers_out_of_range += 1,
            OutlierKind::Late => tally.outliers_late += 1,
            OutlierKind::LateHeld => tally.outliers_late_held += 1,
            OutlierKind::Ahead => tally.outliers_ahead += 1,
        }
    }
    tally.reordered += std::mem::take(&mut clock.reordered);
    tally.reorder_overflow += std::mem::take(&mut clock.overflow);
    ctx.counters.add(tally);
    *tally = Counts::default();
    if !outliers.is_empty() {
        let stream = clock.newest();
        ctx.counters
            .note_outliers(outliers.drain(..).map(|(kind, pos, ts)| Outlier {
                kind,
                input: src.input_name(pos.input),
                packet: pos.packet,
                ts,
                stream,
            }));
    }
    ctx.counters.clock.fetch_max(clock.newest(), Relaxed);
    ctx.counters.progress(src.progress());
}

fn publish_live(ctx: &CaptureCtx<'_>, src: &mut dyn PacketSource) {
    if let Some(s) = src.live_stats() {
        let sum = ctx.counters.live(ctx.source_id, &s);
        if let Ok(mut g) = ctx.live_stats.lock() {
            *g = Some(sum);
        }
    }
}

fn wall_micros() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as Micros)
        .unwrap_or(0)
}
