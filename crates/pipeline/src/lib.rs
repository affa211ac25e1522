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
//!   wait; on a live interface the batch is dropped and counted
//!   ([`Counters::queue_drops`]) rather than stalling the kernel ring.
//! * Shutdown (Ctrl-C, SIGTERM, end of input) stops the readers; each stage
//!   drains what it holds and closes its senders, so every flow and scan is
//!   written and every file finished.

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use dashmap::DashMap;
use hdrhistogram::Histogram;
use scanwatch_capture::{LiveStats, Next, PacketSource};
use scanwatch_decode::{decode_into, DecodeError};
use scanwatch_detect::{DetectConfig, DetectStats, Detector, Phase, ScanEvent};
use scanwatch_flow::{FlowConfig, FlowStats, FlowTable, Output};
use scanwatch_model::{bucket, Addr, Attempt, Detection, FlowKey, FlowRecord, Micros, PacketMeta};
use scanwatch_sink::{
    AlertWriter, Batch, DetectionBatchBuilder, FlowBatchBuilder, PartitionedWriter, SinkError,
    SinkOptions, TableBuilder,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How to run.
#[derive(Clone)]
pub struct PipelineConfig {
    /// Flow worker threads.
    pub threads: usize,
    /// Detector shards.
    pub shards: usize,
    /// Packets per batch.
    pub batch: usize,
    /// Batches a channel holds.
    pub queue_depth: usize,
    pub flow: FlowConfig,
    pub detect: DetectConfig,
    /// Output folder; `None` writes no files (eval, plain benchmarks).
    pub out_dir: Option<PathBuf>,
    /// Write flow records (the `flows` table).
    pub write_flows: bool,
    /// Alerts file (`-` is stdout); `None` for none.
    pub alerts: Option<PathBuf>,
    pub sink: SinkOptions,
    /// Keep final detections in memory and return them in the summary.
    pub collect: bool,
    pub shutdown: Arc<AtomicBool>,
    pub rotate: Arc<AtomicBool>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        let threads = thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        PipelineConfig {
            threads,
            shards: (threads / 4).max(1),
            batch: 256,
            queue_depth: 64,
            flow: FlowConfig::default(),
            detect: DetectConfig::default(),
            out_dir: None,
            write_flows: true,
            alerts: None,
            sink: SinkOptions::default(),
            collect: false,
            shutdown: Arc::new(AtomicBool::new(false)),
            rotate: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Live counters, read by the progress and stats printers while running.
#[derive(Default)]
pub struct Counters {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// IPv4/IPv6 packets decoded into a flow.
    pub ip_packets: AtomicU64,
    pub not_ip: AtomicU64,
    pub decode_errors: AtomicU64,
    /// Batches dropped because a worker queue was full (live only).
    pub queue_drops: AtomicU64,
    pub queue_drop_packets: AtomicU64,
    pub flows: AtomicU64,
    /// Packets counted in finished flow records.
    pub flow_packets: AtomicU64,
    pub attempts: AtomicU64,
    pub scans_started: AtomicU64,
    pub detections: AtomicU64,
    pub flows_evicted: AtomicU64,
    pub sources_evicted: AtomicU64,
    /// Bytes of input read and their total (files), for a progress bar.
    pub input_read: AtomicU64,
    pub input_total: AtomicU64,
    /// Newest packet time seen.
    pub clock: AtomicI64,
    pub kernel_received: AtomicU64,
    pub kernel_dropped: AtomicU64,
    pub if_dropped: AtomicU64,
    /// Sources currently scanning, with their detection id (read-mostly,
    /// shared with the stats printer).
    pub active_scans: DashMap<(Addr, u8), String>,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Summary {
    pub packets: u64,
    pub bytes: u64,
    pub ip_packets: u64,
    pub not_ip: u64,
    pub decode_errors: u64,
    pub queue_drops: u64,
    pub queue_drop_packets: u64,
    pub flows: u64,
    pub flow_packets: u64,
    pub attempts: u64,
    pub flow_stats: FlowStats,
    pub detect_stats: DetectStats,
    pub detections: Vec<Detection>,
    pub detection_count: u64,
    pub alerts: u64,
    pub files: Vec<PathBuf>,
    pub seconds: f64,
    pub live: Option<LiveStats>,
    /// Capture-to-detection latency of batches, in microseconds.
    pub latency_us: Option<Histogram<u64>>,
    /// A capture error that ended an input early (a truncated file…);
    /// everything before it was processed and written.
    pub capture_error: Option<String>,
    pub capture_truncated: bool,
    /// Peak bytes of flow-table memory summed over workers.
    pub flow_table_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("{0}")]
    Config(String),
    #[error("a pipeline thread panicked: {0}")]
    Panic(String),
}

struct PacketBatch {
    metas: Vec<PacketMeta>,
    watermark: Micros,
    source: usize,
    born: Instant,
}

enum ShardMsg {
    Attempts {
        worker: usize,
        attempts: Vec<Attempt>,
        watermark: Micros,
        born: Option<Instant>,
    },
}

enum OutMsg {
    /// Flow records of one hour (packet time), built into a batch by the
    /// worker that ended them.
    Flows {
        hour: i64,
        batch: Batch,
    },
    Events(Vec<ScanEvent>),
}

/// Per-hour flow batch builders of one worker: the Arrow work for flows is
/// spread over the workers; the output thread only writes.
struct FlowBatches {
    builders: Vec<(i64, FlowBatchBuilder)>,
    rows: usize,
    /// Wall time of the oldest row not yet handed to the output thread: on a
    /// quiet live link rows must not wait for a full batch (a SIGHUP rotation
    /// or a crash would otherwise find them still in memory).
    oldest: Option<Instant>,
}

/// Longest a finished flow waits on its worker before it goes to the writer.
const FLOW_BATCH_MAX_WAIT: Duration = Duration::from_secs(1);

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
            if let Ok(batch) = b.finish() {
                let _ = out.send(OutMsg::Flows { hour, batch });
            }
            self.builders.swap_remove(i);
        }
    }

    fn flush(&mut self, out: &Sender<OutMsg>) {
        self.oldest = None;
        for (hour, mut b) in self.builders.drain(..) {
            if let Ok(batch) = b.finish() {
                if batch.num_rows() > 0 {
                    let _ = out.send(OutMsg::Flows { hour, batch });
                }
            }
        }
    }
}

/// A scoped thread with a name (`top -H`, `perf --sort comm` and panics
/// show it). Like `Scope::spawn`, it panics if the OS cannot start a thread.
fn spawn<'scope, 'env, T, F>(
    scope: &'scope thread::Scope<'scope, 'env>,
    name: String,
    f: F,
) -> thread::ScopedJoinHandle<'scope, T>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    match thread::Builder::new().name(name).spawn_scoped(scope, f) {
        Ok(h) => h,
        Err(e) => panic!("cannot start a pipeline thread: {e}"),
    }
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
    let mut flows_w = None;
    let mut dets_w = None;
    if let Some(dir) = &cfg.out_dir {
        if cfg.write_flows {
            flows_w = Some(PartitionedWriter::<FlowBatchBuilder>::new(
                dir.join("flows"),
                cfg.sink.clone(),
            )?);
        }
        dets_w = Some(PartitionedWriter::<DetectionBatchBuilder>::new(
            dir.join("detections"),
            cfg.sink.clone(),
        )?);
    }
    let alerts = match &cfg.alerts {
        Some(p) => Some(AlertWriter::open(p)?),
        None => None,
    };

    let n_sources = sources.len().max(1);
    let live = sources.iter().any(|s| s.is_live());
    let per_worker_flows = (cfg.flow.max_flows / n).max(1024);
    let shard_seed = random_seed();

    // Flow batches are large (16k rows, a few MB each): a short queue keeps
    // what waits for the writer to a few of them per worker.
    let (out_tx, out_rx) = bounded::<OutMsg>(2 * (n + cfg.shards));
    let mut worker_tx = Vec::new();
    let mut worker_rx = Vec::new();
    for _ in 0..n {
        let (t, r) = bounded::<PacketBatch>(cfg.queue_depth);
        worker_tx.push(t);
        worker_rx.push(r);
    }
    let (recycle_tx, recycle_rx) = bounded::<Vec<PacketMeta>>(cfg.queue_depth * n + 16);
    // Attempt vectors go back from the shards to the workers, so a batch's
    // attempts do not cost a fresh allocation (and its regrowth) each time.
    // At most 4nm + 16 of them wait, each of at most RECYCLED_ATTEMPTS.
    let (att_recycle_tx, att_recycle_rx) = bounded::<Vec<Attempt>>(4 * n * m + 16);
    let mut shard_tx = Vec::new();
    let mut shard_rx = Vec::new();
    for _ in 0..m {
        let (t, r) = bounded::<ShardMsg>(cfg.queue_depth * n);
        shard_tx.push(t);
        shard_rx.push(r);
    }

    let capture_error: Arc<Mutex<Option<(String, bool)>>> = Arc::new(Mutex::new(None));
    let live_stats: Arc<Mutex<Option<LiveStats>>> = Arc::new(Mutex::new(None));

    thread::scope(|scope| {
        // Output thread.
        let out_handle = {
            let cfg = &cfg;
            let counters = counters.clone();
            spawn(scope, "sw-output".into(), move || {
                output_loop(out_rx, flows_w, dets_w, alerts, cfg, &counters)
            })
        };

        // Detector shards.
        let mut shard_handles = Vec::new();
        for (s, rx) in shard_rx.into_iter().enumerate() {
            let out = out_tx.clone();
            let dcfg = cfg.detect.clone();
            let counters = counters.clone();
            let att_recycle = att_recycle_tx.clone();
            shard_handles.push(spawn(scope, format!("sw-detect-{s}"), move || {
                shard_loop(s, rx, att_recycle, n, dcfg, out, &counters)
            }));
        }

        // Flow workers.
        let mut worker_handles = Vec::new();
        for (w, rx) in worker_rx.into_iter().enumerate() {
            let shards = shard_tx.clone();
            let out = out_tx.clone();
            let recycle = recycle_tx.clone();
            let att_recycle = att_recycle_rx.clone();
            let fcfg = FlowConfig {
                max_flows: per_worker_flows,
                ..cfg.flow.clone()
            };
            let counters = counters.clone();
            let write_flows = cfg.out_dir.is_some() && cfg.write_flows;
            worker_handles.push(spawn(scope, format!("sw-flow-{w}"), move || {
                worker_loop(
                    w,
                    rx,
                    fcfg,
                    shards,
                    out,
                    recycle,
                    att_recycle,
                    n_sources,
                    shard_seed,
                    write_flows,
                    &counters,
                )
            }));
        }
        drop(shard_tx);
        drop(out_tx);
        drop(recycle_tx);
        drop(att_recycle_tx);

        // Capture threads, one per input.
        let mut cap_handles = Vec::new();
        for (i, src) in sources.into_iter().enumerate() {
            let txs = worker_tx.clone();
            let recycle = recycle_rx.clone();
            let counters = counters.clone();
            let shutdown = cfg.shutdown.clone();
            let err = capture_error.clone();
            let ls = live_stats.clone();
            let batch = cfg.batch;
            cap_handles.push(spawn(scope, format!("sw-capture-{i}"), move || {
                capture_loop(
                    i, src, txs, recycle, batch, shard_seed, &counters, &shutdown, &err, &ls,
                )
            }));
        }
        drop(worker_tx);

        let mut panics = Vec::new();
        for h in cap_handles {
            if h.join().is_err() {
                panics.push("capture".to_string());
            }
        }
        let mut summary = Summary::default();
        for h in worker_handles {
            match h.join() {
                Ok((stats, mem)) => {
                    add_flow_stats(&mut summary.flow_stats, &stats);
                    summary.flow_table_bytes += mem;
                }
                Err(_) => panics.push("flow worker".into()),
            }
        }
        let mut hist: Option<Histogram<u64>> = None;
        for h in shard_handles {
            match h.join() {
                Ok((stats, hh)) => {
                    add_detect_stats(&mut summary.detect_stats, &stats);
                    match hist.as_mut() {
                        Some(x) => {
                            let _ = x.add(&hh);
                        }
                        None => hist = Some(hh),
                    }
                }
                Err(_) => panics.push("detector".into()),
            }
        }
        let out_result = out_handle.join();
        if !panics.is_empty() {
            return Err(PipelineError::Panic(panics.join(", ")));
        }
        let out = match out_result {
            Ok(r) => r?,
            Err(_) => return Err(PipelineError::Panic("output".into())),
        };
        summary.detections = out.detections;
        summary.detection_count = out.detection_count;
        summary.alerts = out.alerts;
        summary.files = out.files;

        summary.latency_us = hist;
        Ok(summary)
    })
    .map(|mut s| {
        s.packets = counters.packets.load(Relaxed);
        s.bytes = counters.bytes.load(Relaxed);
        s.ip_packets = counters.ip_packets.load(Relaxed);
        s.not_ip = counters.not_ip.load(Relaxed);
        s.decode_errors = counters.decode_errors.load(Relaxed);
        s.queue_drops = counters.queue_drops.load(Relaxed);
        s.queue_drop_packets = counters.queue_drop_packets.load(Relaxed);
        s.attempts = s.flow_stats.attempts;
        s.flows = counters.flows.load(Relaxed);
        s.flow_packets = counters.flow_packets.load(Relaxed);
        s.seconds = started.elapsed().as_secs_f64();
        if let Ok(mut g) = capture_error.lock() {
            if let Some((msg, trunc)) = g.take() {
                s.capture_error = Some(msg);
                s.capture_truncated = trunc;
            }
        }
        if live {
            s.live = live_stats.lock().ok().and_then(|g| *g);
        }
        s
    })
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5ca7_7a7c);
    h.finish()
}

fn add_flow_stats(a: &mut FlowStats, b: &FlowStats) {
    a.packets += b.packets;
    a.flows_created += b.flows_created;
    a.flows_ended += b.flows_ended;
    a.evicted += b.evicted;
    a.attempts += b.attempts;
    a.backscatter += b.backscatter;
    a.icmp_matched += b.icmp_matched;
}

fn add_detect_stats(a: &mut DetectStats, b: &DetectStats) {
    a.attempts += b.attempts;
    a.allowed += b.allowed;
    a.sources += b.sources;
    a.sources_evicted += b.sources_evicted;
    a.contacts_evicted += b.contacts_evicted;
    a.scans_started += b.scans_started;
    a.scans_ended += b.scans_ended;
}

/// The key a packet is sharded by: the flow it belongs to, or for an ICMP
/// error the flow of the packet it quotes.
#[inline]
#[allow(clippy::too_many_arguments)]
fn capture_loop(
    source_id: usize,
    mut src: Box<dyn PacketSource>,
    txs: Vec<Sender<PacketBatch>>,
    recycle: Receiver<Vec<PacketMeta>>,
    batch: usize,
    seed: u64,
    counters: &Counters,
    shutdown: &AtomicBool,
    err: &Mutex<Option<(String, bool)>>,
    live_stats: &Mutex<Option<LiveStats>>,
) {
    let n = txs.len();
    let live = src.is_live();
    let mut bufs: Vec<Vec<PacketMeta>> = (0..n).map(|_| Vec::with_capacity(batch)).collect();
    let mut clock = Micros::MIN;
    let (mut pk, mut by, mut ip, mut nonip, mut bad) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut since_flush = 0usize;
    let flush_every = batch * n;
    let mut last_stats = Instant::now();
    let mut last_flush = Instant::now();
    let mut born = Instant::now();

    let send = |w: usize, metas: Vec<PacketMeta>, wm: Micros, born: Instant| {
        let b = PacketBatch {
            metas,
            watermark: wm,
            source: source_id,
            born,
        };
        if live {
            match txs[w].try_send(b) {
                Ok(()) => {}
                Err(TrySendError::Full(b)) => {
                    counters.queue_drops.fetch_add(1, Relaxed);
                    counters
                        .queue_drop_packets
                        .fetch_add(b.metas.len() as u64, Relaxed);
                }
                Err(TrySendError::Disconnected(_)) => {}
            }
        } else {
            let _ = txs[w].send(b);
        }
    };
    let fresh = |recycle: &Receiver<Vec<PacketMeta>>| -> Vec<PacketMeta> {
        match recycle.try_recv() {
            Ok(mut v) => {
                v.clear();
                v
            }
            Err(_) => Vec::with_capacity(batch),
        }
    };

    // Packets are decoded in place into `staged`, then handed to their
    // workers' batches at each flush point, in order. Dispatching right
    // after decoding would copy each record while its field stores are
    // still in flight (a store-forwarding stall per packet).
    let mut staged: Vec<PacketMeta> = Vec::with_capacity(flush_every);
    let dispatch =
        |staged: &mut Vec<PacketMeta>, bufs: &mut Vec<Vec<PacketMeta>>, born: Instant| {
            for meta in staged.drain(..) {
                // Each packet's own time is the watermark of a batch it fills:
                // the packets after it, to any worker, are no older. (An ICMP
                // error's notice follows it, keyed by the quoted flow.)
                let wm = meta.ts;
                let w = bucket(scanwatch_flow::dispatch_key(&meta).shard_hash(seed), n);
                bufs[w].push(meta);
                if bufs[w].len() >= batch {
                    let full = std::mem::replace(&mut bufs[w], fresh(&recycle));
                    send(w, full, wm, born);
                }
            }
        };

    loop {
        if shutdown.load(Relaxed) {
            break;
        }
        let next = src.next_packet();
        let mut idle = false;
        let mut drained = false;
        match next {
            Ok(Next::Packet(p)) => {
                pk += 1;
                by += u64::from(p.wire_len);
                if staged.is_empty() && bufs.iter().all(|b| b.is_empty()) {
                    born = Instant::now();
                }
                staged.push(PacketMeta::default());
                let last = staged.len() - 1;
                let meta = &mut staged[last];
                match decode_into(p.link_type, p.data, p.ts, p.wire_len, meta) {
                    Ok(quoted) => {
                        // Packet time never goes backwards inside the pipeline.
                        if meta.ts < clock {
                            meta.ts = clock;
                        } else {
                            clock = meta.ts;
                        }
                        ip += 1;
                        if let Some(q) = quoted {
                            // To the quoted flow's worker, uncounted.
                            let note = scanwatch_flow::icmp_notice(meta, &q);
                            staged.push(note);
                        }
                    }
                    Err(e) => {
                        staged.pop();
                        match e {
                            DecodeError::NotIp => nonip += 1,
                            _ => bad += 1,
                        }
                    }
                }
                since_flush += 1;
            }
            Ok(Next::Idle) => idle = true,
            Ok(Next::Again) => drained = true,
            Ok(Next::End) => break,
            Err(e) => {
                if let Ok(mut g) = err.lock() {
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
            dispatch(&mut staged, &mut bufs, born);
            if idle && live {
                // An idle link: packet time moves with the wall clock (live
                // timestamps are the kernel's), less a margin for packets
                // still in the ring.
                let wall = wall_micros() - 200_000;
                if wall > clock && clock != Micros::MIN {
                    clock = wall;
                }
            }
            for (w, b) in bufs.iter_mut().enumerate() {
                let full = std::mem::replace(b, fresh(&recycle));
                send(w, full, clock, born);
            }
            since_flush = 0;
            counters.packets.fetch_add(pk, Relaxed);
            counters.bytes.fetch_add(by, Relaxed);
            counters.ip_packets.fetch_add(ip, Relaxed);
            counters.not_ip.fetch_add(nonip, Relaxed);
            counters.decode_errors.fetch_add(bad, Relaxed);
            (pk, by, ip, nonip, bad) = (0, 0, 0, 0, 0);
            counters.clock.fetch_max(clock, Relaxed);
            if let Some((r, t)) = src.progress() {
                counters.input_read.store(r, Relaxed);
                counters.input_total.store(t, Relaxed);
            }
            if live && last_stats.elapsed() >= Duration::from_millis(500) {
                last_stats = Instant::now();
                publish_live(&mut *src, counters, live_stats);
            }
        }
    }
    // Flush what is left, with a final watermark.
    dispatch(&mut staged, &mut bufs, born);
    for (w, b) in bufs.iter_mut().enumerate() {
        let full = std::mem::take(b);
        send(w, full, clock, born);
    }
    counters.packets.fetch_add(pk, Relaxed);
    counters.bytes.fetch_add(by, Relaxed);
    counters.ip_packets.fetch_add(ip, Relaxed);
    counters.not_ip.fetch_add(nonip, Relaxed);
    counters.decode_errors.fetch_add(bad, Relaxed);
    counters.clock.fetch_max(clock, Relaxed);
    if let Some((r, t)) = src.progress() {
        counters.input_read.store(r, Relaxed);
        counters.input_total.store(t, Relaxed);
    }
    if live {
        publish_live(&mut *src, counters, live_stats);
    }
}

fn publish_live(
    src: &mut dyn PacketSource,
    counters: &Counters,
    live_stats: &Mutex<Option<LiveStats>>,
) {
    if let Some(s) = src.live_stats() {
        counters.kernel_received.store(s.received, Relaxed);
        counters.kernel_dropped.store(s.kernel_dropped, Relaxed);
        counters.if_dropped.store(s.if_dropped, Relaxed);
        if let Ok(mut g) = live_stats.lock() {
            *g = Some(s);
        }
    }
}

fn wall_micros() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as Micros)
        .unwrap_or(0)
}

#[allow(clippy::too_many_arguments)]
fn worker_loop(
    id: usize,
    rx: Receiver<PacketBatch>,
    cfg: FlowConfig,
    shards: Vec<Sender<ShardMsg>>,
    out: Sender<OutMsg>,
    recycle: Sender<Vec<PacketMeta>>,
    att_recycle: Receiver<Vec<Attempt>>,
    n_sources: usize,
    seed: u64,
    write_flows: bool,
    counters: &Counters,
) -> (FlowStats, u64) {
    let m = shards.len();
    let mut table = FlowTable::new(cfg);
    let mut o = Output::default();
    let mut per_shard: Vec<Vec<Attempt>> = (0..m).map(|_| Vec::new()).collect();
    let mut batches_out = FlowBatches {
        builders: Vec::new(),
        rows: 16_384,
        oldest: None,
    };
    let mut flow_packets = 0u64;
    let mut src_wm = vec![Micros::MIN; n_sources];
    let mut last_ts = Micros::MIN;
    let mut sent_wm = Micros::MIN;
    let mut peak_mem = 0u64;
    let mut batches = 0u64;
    let mut published_evictions = 0u64;

    let flush_attempts = |o: &mut Output,
                          per_shard: &mut Vec<Vec<Attempt>>,
                          wm: Micros,
                          born: Option<Instant>,
                          force: bool,
                          sent_wm: &mut Micros| {
        if o.attempts.is_empty() && !force && wm <= *sent_wm {
            return;
        }
        for a in o.attempts.drain(..) {
            let s = bucket(shard_of(a.src, seed), m);
            per_shard[s].push(a);
        }
        for (s, v) in per_shard.iter_mut().enumerate() {
            // Sorted here, in parallel across workers; the shard only merges.
            // Stable sort: the batch's attempts are a few sorted runs
            // (timer slots, packets), which it merges rather than re-sorts;
            // equal attempts are identical, so the order is the same.
            v.sort();
            let spare = match att_recycle.try_recv() {
                Ok(mut r) => {
                    r.clear();
                    r
                }
                Err(_) => Vec::new(),
            };
            let attempts = std::mem::replace(v, spare);
            let _ = shards[s].send(ShardMsg::Attempts {
                worker: id,
                attempts,
                watermark: wm,
                born,
            });
        }
        *sent_wm = wm;
    };

    for b in rx.iter() {
        batches += 1;
        let mut b = b;
        for meta in b.metas.iter_mut() {
            if meta.ts < last_ts {
                meta.ts = last_ts; // several live inputs interleave
            } else {
                last_ts = meta.ts;
            }
            table.process(meta, &mut o);
        }
        src_wm[b.source] = src_wm[b.source].max(b.watermark);
        let input_wm = src_wm.iter().copied().min().unwrap_or(Micros::MIN);
        let wm = table.advance(input_wm, &mut o);
        let mut metas = b.metas;
        metas.clear();
        let _ = recycle.try_send(metas);
        flush_attempts(
            &mut o,
            &mut per_shard,
            wm,
            Some(b.born),
            false,
            &mut sent_wm,
        );
        if !o.flows.is_empty() {
            counters.flows.fetch_add(o.flows.len() as u64, Relaxed);
            for r in o.flows.drain(..) {
                flow_packets += r.orig_pkts + r.resp_pkts;
                if write_flows {
                    batches_out.add(&r, &out);
                }
            }
        }
        batches_out.flush_if_old(&out);
        // A burst of expiries (a flood's flows timing out together) must not
        // leave its peak allocation behind.
        if o.flows.capacity() > 65_536 {
            o.flows.shrink_to(4096);
        }
        if o.attempts.capacity() > 65_536 {
            o.attempts.shrink_to(4096);
        }
        if batches.is_multiple_of(64) {
            peak_mem = peak_mem.max(table.memory_bytes() as u64);
            // Evictions show in live stats as they happen.
            counters
                .flows_evicted
                .fetch_add(table.stats.evicted - published_evictions, Relaxed);
            published_evictions = table.stats.evicted;
        }
    }
    peak_mem = peak_mem.max(table.memory_bytes() as u64);
    // What is left ends now, a chunk at a time: records go out as they are
    // made; attempts wait (in key order) for the final watermark.
    let mut left_attempts: Vec<Attempt> = Vec::new();
    table.drain_with(&mut o, 16_384, |o| {
        left_attempts.append(&mut o.attempts);
        counters.flows.fetch_add(o.flows.len() as u64, Relaxed);
        for r in o.flows.drain(..) {
            flow_packets += r.orig_pkts + r.resp_pkts;
            if write_flows {
                batches_out.add(&r, &out);
            }
        }
    });
    o.attempts = left_attempts;
    flush_attempts(
        &mut o,
        &mut per_shard,
        Micros::MAX,
        None,
        true,
        &mut sent_wm,
    );
    batches_out.flush(&out);
    counters.flow_packets.fetch_add(flow_packets, Relaxed);
    counters
        .flows_evicted
        .fetch_add(table.stats.evicted - published_evictions, Relaxed);
    counters.attempts.fetch_add(table.stats.attempts, Relaxed);
    (table.stats, peak_mem)
}

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

/// Largest attempt vector (in attempts) handed back for reuse: a burst's
/// big vector is freed rather than kept.
const RECYCLED_ATTEMPTS: usize = 4096;

fn shard_loop(
    _id: usize,
    rx: Receiver<ShardMsg>,
    attempt_recycle: Sender<Vec<Attempt>>,
    workers: usize,
    cfg: DetectConfig,
    out: Sender<OutMsg>,
    counters: &Counters,
) -> (DetectStats, Histogram<u64>) {
    // Fixed, valid bounds (1 µs to 60 s, 3 digits): this cannot fail.
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
    let Ok(mut det) = Detector::new(cfg) else {
        return (DetectStats::default(), hist);
    };
    let mut wms = vec![Micros::MIN; workers];
    // Sorted runs as the workers sent them, and the attempts released from
    // them at a watermark.
    let mut runs: Vec<Vec<Attempt>> = Vec::new();
    let mut ready: Vec<Attempt> = Vec::new();
    let mut spent: Vec<Vec<Attempt>> = Vec::new();
    let mut released = Micros::MIN;
    let mut events: Vec<ScanEvent> = Vec::new();
    let mut borns: Vec<Instant> = Vec::new();
    let mut published_evictions = 0u64;
    for msg in rx.iter() {
        let ShardMsg::Attempts {
            worker,
            mut attempts,
            watermark,
            born,
        } = msg;
        if !attempts.is_empty() {
            runs.push(std::mem::take(&mut attempts));
        }
        if let Some(b) = born {
            borns.push(b);
        }
        wms[worker] = wms[worker].max(watermark);
        let low = wms.iter().copied().min().unwrap_or(Micros::MIN);
        if low > released {
            // Release every attempt below the lowest watermark, in (time,
            // content) order: the same order at any thread count. Each
            // attempt is moved once and sorted once (the runs' released
            // prefixes, already sorted runs, which the sort detects), rather
            // than merged into everything pending at every message.
            release_below(&mut runs, low, &mut ready, &mut spent);
            for v in spent.drain(..) {
                if v.capacity() <= RECYCLED_ATTEMPTS {
                    let _ = attempt_recycle.try_send(v);
                }
            }
            for a in ready.drain(..) {
                det.on_attempt(&a, &mut events);
            }
            released = low;
            if low != Micros::MAX {
                det.advance(low, &mut events);
            }
            let now = Instant::now();
            for b in borns.drain(..) {
                let us = now.duration_since(b).as_micros() as u64;
                let _ = hist.record(us.clamp(1, 60_000_000));
            }
        }
        // Evictions show in live stats as they happen, not only at exit.
        if det.stats.sources_evicted > published_evictions {
            counters
                .sources_evicted
                .fetch_add(det.stats.sources_evicted - published_evictions, Relaxed);
            published_evictions = det.stats.sources_evicted;
        }
        if !events.is_empty() {
            counters.scans_started.fetch_add(
                events.iter().filter(|e| e.phase == Phase::Start).count() as u64,
                Relaxed,
            );
            let _ = out.send(OutMsg::Events(std::mem::take(&mut events)));
        }
    }
    // All workers are done: everything left is released, in order.
    release_below(&mut runs, Micros::MAX, &mut ready, &mut spent);
    for a in ready.drain(..) {
        det.on_attempt(&a, &mut events);
    }
    det.finish(&mut events);
    if !events.is_empty() {
        let _ = out.send(OutMsg::Events(events));
    }
    counters.sources_evicted.fetch_add(
        det.stats
            .sources_evicted
            .saturating_sub(published_evictions),
        Relaxed,
    );
    (det.stats, hist)
}

/// Moves every attempt with a time below `low` (all of them for
/// `Micros::MAX`) out of the sorted `runs` into `ready`, sorted.
fn release_below(
    runs: &mut Vec<Vec<Attempt>>,
    low: Micros,
    ready: &mut Vec<Attempt>,
    spent: &mut Vec<Vec<Attempt>>,
) {
    for run in runs.iter_mut() {
        let cut = if low == Micros::MAX {
            run.len()
        } else {
            run.partition_point(|a| a.time < low)
        };
        ready.extend(run.drain(..cut));
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
    // The released prefixes are sorted runs: the stable sort merges them
    // (attempts that compare equal are identical, so the runs' order, which
    // swap_remove changes, does not matter).
    ready.sort();
}

struct OutResult {
    detections: Vec<Detection>,
    detection_count: u64,
    alerts: u64,
    files: Vec<PathBuf>,
}

fn output_loop(
    rx: Receiver<OutMsg>,
    mut flows_w: Option<PartitionedWriter<FlowBatchBuilder>>,
    mut dets_w: Option<PartitionedWriter<DetectionBatchBuilder>>,
    mut alerts: Option<AlertWriter>,
    cfg: &PipelineConfig,
    counters: &Counters,
) -> Result<OutResult, SinkError> {
    let mut res = OutResult {
        detections: Vec::new(),
        detection_count: 0,
        alerts: 0,
        files: Vec::new(),
    };
    let mut first_err: Option<SinkError> = None;
    let mut last_clock_hour = i64::MIN;
    loop {
        let msg = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if cfg.rotate.swap(false, Relaxed) && first_err.is_none() {
            if let Some(w) = flows_w.as_mut() {
                if let Err(e) = w.rotate() {
                    first_err = Some(e);
                }
            }
            if let Some(w) = dets_w.as_mut() {
                if let Err(e) = w.rotate() {
                    first_err.get_or_insert(e);
                }
            }
        }
        // Close parts whose hour is over (packet time).
        let clock = counters.clock.load(Relaxed);
        let hour = clock.div_euclid(3_600_000_000);
        if hour > last_clock_hour && first_err.is_none() {
            last_clock_hour = hour;
            if let Some(w) = flows_w.as_mut() {
                if let Err(e) = w.close_before(clock) {
                    first_err = Some(e);
                }
            }
        }
        let Some(msg) = msg else { continue };
        if first_err.is_some() {
            // Output is broken: stop the readers, keep draining so every
            // thread can finish, write nothing more.
            cfg.shutdown.store(true, Relaxed);
            continue;
        }
        match msg {
            OutMsg::Flows { hour, batch } => {
                if let Some(w) = flows_w.as_mut() {
                    if let Err(e) = w.push_batch(hour, &batch) {
                        first_err = Some(e);
                    }
                }
            }
            OutMsg::Events(evs) => {
                for e in &evs {
                    match e.phase {
                        Phase::Start => {
                            counters.active_scans.insert(
                                (e.detection.scanner, e.detection.proto),
                                e.detection.detection_id.clone(),
                            );
                        }
                        Phase::End => {
                            counters
                                .active_scans
                                .remove(&(e.detection.scanner, e.detection.proto));
                        }
                        Phase::Update => {}
                    }
                    if let Some(a) = alerts.as_mut() {
                        match a.write(e.phase.name(), e.time, &e.detection) {
                            Ok(()) => res.alerts += 1,
                            Err(err) => {
                                first_err = Some(err);
                                break;
                            }
                        }
                    }
                    if e.phase == Phase::End {
                        res.detection_count += 1;
                        counters.detections.fetch_add(1, Relaxed);
                        if let Some(w) = dets_w.as_mut() {
                            if let Err(err) = w.push(&e.detection, e.detection.ts_first) {
                                first_err = Some(err);
                                break;
                            }
                        }
                        if cfg.collect && res.detections.len() < 100_000 {
                            res.detections.push(e.detection.clone());
                        }
                    }
                }
            }
        }
        // Alerts leave as soon as nothing else waits, or 100 ms after the
        // oldest was buffered: at once on a live link, in large writes on a
        // replay.
        if let Some(a) = alerts.as_mut() {
            if first_err.is_none() && a.due(rx.is_empty(), Duration::from_millis(100)) {
                if let Err(err) = a.flush() {
                    first_err = Some(err);
                }
            }
        }
    }
    if let Some(Err(e)) = alerts.as_mut().map(|a| a.flush()) {
        first_err.get_or_insert(e);
    }
    // Finish every file, even after an error elsewhere: what was written stays.
    for w in [
        flows_w.as_mut().map(|w| w.rotate()),
        dets_w.as_mut().map(|w| w.rotate()),
    ]
    .into_iter()
    .flatten()
    {
        if let Err(e) = w {
            first_err.get_or_insert(e);
        }
    }
    if let Some(w) = flows_w.as_mut() {
        res.files.append(&mut w.finished);
    }
    if let Some(w) = dets_w.as_mut() {
        res.files.append(&mut w.finished);
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(res),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanwatch_model::{Outcome, ProbeKind};

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
