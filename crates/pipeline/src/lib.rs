//! The threads of scanwatch and what crosses between them. Only this crate
//! knows the order of the stages.
//!
//! ```text
//! capture (1 per input) ──batches of PacketMeta──▶ flow workers (N) ──attempts──▶ detector shards (M)
//!   read + decode, symmetric        by flow hash      one FlowTable each  by source    merge by (time, content)
//!   flow hash, watermark                               no shared state    address      up to the lowest watermark
//!                                                      │ flow records                  │ scan events
//!                                                      ▼                               ▼
//!                                                   output thread: Arrow files, alerts.jsonl
//! ```
//!
//! * Packets travel in batches of [`PipelineConfig::batch`] in vectors that
//!   go back to the capture thread for reuse; nothing is allocated per packet
//!   and no message is sent per packet.
//! * Every batch carries a watermark — the capture's newest packet time — so
//!   workers with no traffic still fire their timers. A worker answers with
//!   its own watermark ([`FlowTable::advance`]); a detector shard releases
//!   attempts only below the lowest watermark of all workers, sorted by time
//!   then content. The detectors therefore see the same sequence whatever
//!   the thread count or reading speed, and report the same scans.
//! * Channels are bounded. Reading a file, a full queue makes the reader
//!   wait; on a live interface it waits at most 20 ms (the kernel ring
//!   holds what arrives), then the batch is dropped and counted
//!   ([`Counts::queue_drops`]).
//! * Shutdown (Ctrl-C, SIGTERM, end of input) stops the readers; each stage
//!   drains what it holds and closes its senders, so every flow and scan is
//!   written and every file finished.

mod capture;
mod clock;
mod config;
mod counters;
mod cputime;
mod output;
mod shard;
mod worker;

pub use clock::{ClockConfig, Outlier, OutlierKind, Pos};
pub use config::{
    default_shards, GivenCaps, MemoryCaps, PipelineConfig, BASE_BYTES, CONTACT_WORST_BYTES,
    FLOW_EXTRA_BYTES, SHARD_BYTES, SLACK_PERCENT, SOURCE_WORST_BYTES, WORKERS_SHARED, WORKER_BYTES,
    WORKER_EXTRA_BYTES,
};
pub use counters::{ActiveScan, Counters, Counts, Summary, OUTLIERS_KEPT};
pub use cputime::{StageCpu, StageTime};
/// The flow tables' settings, part of [`PipelineConfig`].
pub use scanwatch_flow::FlowConfig;

use crate::capture::{capture_loop, CaptureCtx};
use crate::output::{output_loop, OutMsg, OutputCtx};
use crate::shard::{shard_loop, ShardCtx, ShardMsg};
use crate::worker::{worker_loop, PacketBatch, WorkerCtx};
use crossbeam_channel::bounded;
use hdrhistogram::Histogram;
use scanwatch_capture::{InputProblem, LiveStats, PacketSource};
use scanwatch_detect::Detector;
use scanwatch_model::{Attempt, Item};
use scanwatch_sink::{
    AlertWriter, DetectionBatchBuilder, FlowBatchBuilder, PartitionedWriter, SinkError,
};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

/// Packets per batch from a live interface or a pipe (see `run`).
const STREAM_BATCH: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("{0}")]
    Config(String),
    #[error("a pipeline thread panicked: {0}")]
    Panic(String),
}

/// Runs the pipeline over `sources` until they end or shutdown is asked.
pub fn run(
    sources: Vec<Box<dyn PacketSource>>,
    cfg: PipelineConfig,
    counters: Arc<Counters>,
) -> Result<Summary, PipelineError> {
    let started = Instant::now();
    let n = cfg.threads.max(1);
    let m = cfg.shards.max(1);
    // Validate detector settings before starting anything.
    Detector::new(cfg.detect.clone()).map_err(|e| PipelineError::Config(e.to_string()))?;

    // Outputs first: a bad folder is an error before any packet is read.
    let mut flows = None;
    let mut detections = None;
    if let Some(dir) = &cfg.out_dir {
        if cfg.write_flows && cfg.flow_table {
            flows = Some(PartitionedWriter::<FlowBatchBuilder>::new(
                dir.join("flows"),
                cfg.sink.clone(),
            )?);
        }
        detections = Some(PartitionedWriter::<DetectionBatchBuilder>::new(
            dir.join("detections"),
            cfg.sink.clone(),
        )?);
    }
    let zeek_conn = match (&cfg.out_dir, cfg.write_flows && cfg.zeek_conn) {
        (Some(dir), true) => Some(scanwatch_sink::ConnLog::open(dir.join("conn.log"))?),
        _ => None,
    };
    let alerts = match &cfg.alerts {
        Some(p) => {
            let w = AlertWriter::open(p)?.with_sensor(cfg.sensor.clone());
            if w.repaired > 0 {
                eprintln!(
                    "scanwatch: warning: {} ended in a cut line ({} bytes, from an earlier crash or full disk): moved to {}.cut, new alerts start on a whole line",
                    p.display(),
                    w.repaired,
                    p.display()
                );
            }
            Some(w)
        }
        None => None,
    };

    let inputs = sources.len().max(1);
    let live = sources.iter().any(|s| s.is_live());
    let seed = partition_seed();
    let counters = &*counters;

    // Flow batches are large (16k rows, a few MB each): a short queue keeps
    // what waits for the writer to a few of them per worker.
    let (out_tx, out_rx) = bounded::<OutMsg>(2 * (n + m));
    // Packet queues shrink as workers are added (16 batches of 1024 packets
    // each up to 2 workers, 4 from 8 on), so that all of them together stay
    // within the memory budget's WORKERS_BYTES up to 16 workers whatever
    // their number.
    //
    // Packets that may trickle (a live interface, a pipe) travel in
    // batches of at most STREAM_BATCH, as many more of them queued: a
    // capture thread flushes every batch per worker, and a slow writer's
    // packets must not wait for a whole large batch to come.
    let stream = live || sources.iter().any(|s| s.is_stream());
    let batch = if stream {
        cfg.batch.min(STREAM_BATCH)
    } else {
        cfg.batch
    };
    let packets = (cfg.queue_depth * cfg.batch).min((32 * 1024 / n).max(4 * 1024));
    let depth = (packets / batch).max(1);
    let (worker_tx, worker_rx): (Vec<_>, Vec<_>) =
        (0..n).map(|_| bounded::<PacketBatch>(depth)).unzip();
    let (recycle_tx, recycle_rx) = bounded::<Vec<Item>>(depth * n + 16);
    // Attempt vectors go back from the shards to the workers, so a batch's
    // attempts do not cost a fresh allocation (and its regrowth) each time.
    // At most 4nm + 16 of them wait, each of at most 4096 attempts.
    let (att_recycle_tx, att_recycle_rx) = bounded::<Vec<Attempt>>(4 * n * m + 16);
    let (shard_tx, shard_rx): (Vec<_>, Vec<_>) =
        (0..m).map(|_| bounded::<ShardMsg>(depth * n)).unzip();

    let capture_error: Mutex<Option<(String, bool)>> = Mutex::new(None);
    let live_stats: Mutex<Option<LiveStats>> = Mutex::new(None);
    let damaged: Mutex<Vec<InputProblem>> = Mutex::new(Vec::new());
    let clocks = cputime::StageClocks::default();

    let joined = thread::scope(|scope| {
        let output = spawn(scope, "sw-output".into(), &clocks.output, {
            let ctx = OutputCtx {
                rx: out_rx,
                flows,
                detections,
                alerts,
                collect: cfg.collect,
                rotate: &cfg.rotate,
                shutdown: &cfg.shutdown,
                counters,
                rotate_every: cfg.rotate_every,
                zeek_conn,
                out_dir: cfg.out_dir.clone(),
                retention: (cfg.retention.is_set())
                    .then(|| cfg.out_dir.clone().map(|d| (d, cfg.retention)))
                    .flatten(),
                event_tap: cfg.event_tap.clone(),
                shards: m,
            };
            move || output_loop(ctx)
        });
        let shards: Vec<_> = shard_rx
            .into_iter()
            .enumerate()
            .map(|(s, rx)| {
                let ctx = ShardCtx {
                    shard: s,
                    rx,
                    attempt_recycle: att_recycle_tx.clone(),
                    workers: n,
                    detect: cfg.detect.clone(),
                    out: out_tx.clone(),
                    counters,
                };
                spawn(scope, format!("sw-detect-{s}"), &clocks.detect, move || {
                    shard_loop(ctx)
                })
            })
            .collect();
        let write_flows = cfg.out_dir.is_some() && cfg.write_flows;
        let workers: Vec<_> = worker_rx
            .into_iter()
            .enumerate()
            .map(|(w, rx)| {
                let ctx = WorkerCtx {
                    id: w,
                    rx,
                    flow: FlowConfig {
                        max_flows: per_vshard_flows(cfg.flow.max_flows),
                        ..cfg.flow.clone()
                    },
                    shards: shard_tx.clone(),
                    out: out_tx.clone(),
                    recycle: recycle_tx.clone(),
                    attempt_recycle: att_recycle_rx.clone(),
                    inputs,
                    workers: n,
                    // A message to a shard holds at most about twice what
                    // one batch's share held when every batch was sent, so
                    // the shards' queues and the vectors they recycle stay
                    // within the budget's worker and shard parts.
                    send_at: (batch / m).max(64),
                    seed,
                    write_flows,
                    counters,
                };
                spawn(scope, format!("sw-flow-{w}"), &clocks.flow, move || {
                    worker_loop(ctx)
                })
            })
            .collect();
        // Only the threads hold senders now: each stage's queues close when
        // the stage before it is done.
        drop((shard_tx, out_tx, recycle_tx, att_recycle_tx));
        let captures: Vec<_> = sources
            .into_iter()
            .enumerate()
            .map(|(i, src)| {
                let ctx = CaptureCtx {
                    source_id: i,
                    workers: worker_tx.clone(),
                    recycle: recycle_rx.clone(),
                    batch,
                    seed,
                    clock: cfg.clock,
                    counters,
                    shutdown: &cfg.shutdown,
                    error: &capture_error,
                    damaged: &damaged,
                    live_stats: &live_stats,
                };
                spawn(
                    scope,
                    format!("sw-capture-{i}"),
                    &clocks.capture,
                    move || capture_loop(ctx, src),
                )
            })
            .collect();
        drop(worker_tx);

        let mut panics = Vec::new();
        for h in captures {
            if h.join().is_err() {
                panics.push("capture");
            }
        }
        let mut summary = Summary::default();
        for h in workers {
            match h.join() {
                Ok((stats, mem)) => {
                    summary.flow_stats += stats;
                    summary.flow_table_bytes += mem;
                }
                Err(_) => panics.push("flow worker"),
            }
        }
        let mut hist: Option<Histogram<u64>> = None;
        for h in shards {
            match h.join() {
                Ok((stats, h)) => {
                    summary.detect_stats += stats;
                    match hist.as_mut() {
                        Some(x) => {
                            let _ = x.add(&h);
                        }
                        None => hist = Some(h),
                    }
                }
                Err(_) => panics.push("detector"),
            }
        }
        let out = output.join();
        if !panics.is_empty() {
            return Err(PipelineError::Panic(panics.join(", ")));
        }
        let out = out.map_err(|_| PipelineError::Panic("output".into()))??;
        summary.detections = out.detections;
        summary.detection_count = out.detection_count;
        summary.alerts = out.alerts;
        summary.files = out.files;
        summary.alerts_closed = out.alerts_closed;
        summary.latency_us = hist;
        Ok(summary)
    });
    let mut s = joined?;
    s.stage_cpu = clocks.get();
    s.unsupported_links = counters
        .unsupported_links
        .lock()
        .map(|v| {
            let mut v = v.clone();
            v.sort_unstable();
            v
        })
        .unwrap_or_default();
    s.counts = counters.counts();
    s.outliers = counters
        .outliers
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default();
    s.seconds = started.elapsed().as_secs_f64();
    if let Some((msg, truncated)) = capture_error.into_inner().ok().flatten() {
        s.capture_error = Some(msg);
        s.capture_truncated = truncated;
    }
    s.damaged = damaged.into_inner().unwrap_or_default();
    if live {
        s.live = live_stats.into_inner().ok().flatten();
    }
    Ok(s)
}

/// A scoped thread with a name (`top -H`, `perf --sort comm` and panics
/// show it) that adds its CPU time to its stage's clock as it ends. Like
/// `Scope::spawn`, it panics if the OS cannot start a thread.
fn spawn<'scope, 'env, T, F>(
    scope: &'scope thread::Scope<'scope, 'env>,
    name: String,
    clock: &'scope cputime::StageClock,
    f: F,
) -> thread::ScopedJoinHandle<'scope, T>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    let timed = move || {
        let r = f();
        clock.add_this_thread();
        r
    };
    match thread::Builder::new().name(name).spawn_scoped(scope, timed) {
        Ok(h) => h,
        Err(e) => panic!("cannot start a pipeline thread: {e}"),
    }
}

/// The flow cap of one virtual shard's table: the cap shared equally by the
/// [`scanwatch_model::VSHARDS`] tables (the total never exceeds the cap
/// given; at least 16 each).
pub fn per_vshard_flows(max_flows: usize) -> usize {
    (max_flows / scanwatch_model::VSHARDS).max(16)
}

/// The seed of the hashes that pick a flow's virtual shard (and so its
/// worker) and an attempt's detector shard. Which flows share a shard
/// decides what a full shard evicts, so the seed must be the same from run
/// to run for the outputs under the caps to be; and it must not be known
/// outside, or a sender could aim all its packets at one shard. So it is
/// derived from this machine's `/etc/machine-id` (systemd's random id, made
/// at install, readable only locally), or a fixed value where there is none.
fn partition_seed() -> u64 {
    let id = std::fs::read("/etc/machine-id").unwrap_or_default();
    seed_from(id.trim_ascii())
}

/// FNV-1a over `bytes`, then a 64-bit finalizer (splitmix64's): a fixed
/// function, unlike std's `RandomState`.
fn seed_from(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ 0x5ca7_7a7c;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod seed_tests {
    use super::*;

    #[test]
    fn the_partition_seed_is_the_same_every_run_and_differs_by_machine() {
        assert_eq!(partition_seed(), partition_seed());
        assert_eq!(seed_from(b"abc"), seed_from(b"abc"));
        assert_ne!(
            seed_from(b"0123456789abcdef"),
            seed_from(b"0123456789abcdeg")
        );
    }
}
