//! How a run is set up: thread and queue sizes, each stage's settings, the
//! outputs, and the table caps that fit a memory budget.

use crate::clock::ClockConfig;
use scanwatch_detect::DetectConfig;
use scanwatch_flow::FlowConfig;
use scanwatch_model::VSHARDS;
use scanwatch_sink::{Retention, SensorInfo, SinkOptions};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// How to run.
#[derive(Clone)]
pub struct PipelineConfig {
    /// Flow worker threads.
    pub threads: usize,
    /// Detector shards (see [`default_shards`]).
    pub shards: usize,
    /// Packets per batch. 1024: against 256, a quarter of the channel
    /// operations and thread wake-ups per packet (bulk reference: 9% less
    /// wall on 2 cores); the queues hold the same packets (16 batches).
    pub batch: usize,
    /// Batches a channel holds.
    pub queue_depth: usize,
    pub flow: FlowConfig,
    pub detect: DetectConfig,
    /// Each input's packet clock: reorder window and outlier rules.
    pub clock: ClockConfig,
    /// Output folder; `None` writes no files (eval, plain benchmarks).
    pub out_dir: Option<PathBuf>,
    /// Write flow records (the `flows` table, conn.log, or both).
    pub write_flows: bool,
    /// Flows go to the `flows` table (Arrow or Parquet).
    pub flow_table: bool,
    /// Flows also go to `DIR/conn.log` as Zeek JSON lines.
    pub zeek_conn: bool,
    /// Start new table parts this often (wall clock), besides hourly;
    /// `None`: hourly and by rows only.
    pub rotate_every: Option<Duration>,
    /// Alerts file (`-` is stdout); `None` for none.
    pub alerts: Option<PathBuf>,
    /// The sensor's name and interface, for the alerts' `host`/`in_iface`.
    pub sensor: SensorInfo,
    pub sink: SinkOptions,
    /// Old partitions of `out_dir` to delete while running.
    pub retention: Retention,
    /// Keep final detections in memory and return them in the summary.
    pub collect: bool,
    pub shutdown: Arc<AtomicBool>,
    pub rotate: Arc<AtomicBool>,
    /// Every scan event is also sent here (an unbounded channel, so the
    /// output thread never waits on it), e.g. to push it to a TAXII server.
    pub event_tap: Option<crossbeam_channel::Sender<scanwatch_detect::ScanEvent>>,
}

/// The detector shards for `threads` flow workers unless told: a quarter
/// as many, and at least two. One shard is the serial stage of a flood:
/// each spoofed source is a new detector source, and when a file ends the
/// attempts of every flow still open reach the detector at once, with the
/// workers done and a core idle. Two split that work by source (and the
/// distributed view's by target). On 2 cores, the flood reference file
/// (10 rounds, turning order, 2026-12-01 18:40 UTC): wall 1.525 -> 1.26 s,
/// CPU 2.76 -> 2.36 s; scans and bulk within noise; outputs identical on
/// the corpus, `pcaps/`, the reference files and the flood and scans files
/// at `--max-memory 256`. The caps are per shard, so each holds half. The
/// writer merges the shards' events by packet time (`output::EventMerge`),
/// so the alerts and detections are the same bytes as with one shard.
pub fn default_shards(threads: usize) -> usize {
    (threads / 4).max(2)
}

impl Default for PipelineConfig {
    fn default() -> Self {
        let threads = thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        PipelineConfig {
            threads,
            shards: default_shards(threads),
            batch: 1024,
            queue_depth: 16,
            flow: FlowConfig::default(),
            detect: DetectConfig::default(),
            clock: ClockConfig::default(),
            out_dir: None,
            write_flows: true,
            flow_table: true,
            zeek_conn: false,
            rotate_every: None,
            alerts: None,
            sensor: SensorInfo::default(),
            sink: SinkOptions::default(),
            retention: Retention::default(),
            collect: false,
            shutdown: Arc::new(AtomicBool::new(false)),
            rotate: Arc::new(AtomicBool::new(false)),
            event_tap: None,
        }
    }
}

impl PipelineConfig {
    /// Sets the flow and detector caps: each cap given explicitly (a flag or
    /// the config file) is kept as given, every other one is the share of
    /// `budget_mib` that [`MemoryCaps::for_budget`] gives it.
    pub fn apply_caps(&mut self, budget_mib: u64, given: GivenCaps) {
        let fit = MemoryCaps::for_budget(budget_mib, self.shards, self.threads);
        self.flow.max_flows = given.max_flows.unwrap_or(fit.max_flows);
        self.detect.max_sources = given
            .max_sources_per_shard
            .unwrap_or(fit.max_sources_per_shard);
        self.detect.max_contacts_total = given
            .max_contacts_per_shard
            .unwrap_or(fit.max_contacts_per_shard);
    }
}

/// The caps a user set explicitly; `None` is "not given", never a value
/// that happens to equal a default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GivenCaps {
    /// Flows tracked at once, all workers together.
    pub max_flows: Option<usize>,
    /// Sources tracked per detector shard.
    pub max_sources_per_shard: Option<usize>,
    /// Contacts kept per detector shard, all sources together.
    pub max_contacts_per_shard: Option<usize>,
}

/// Table caps that fit a memory budget. The budget is the whole process's
/// peak RSS: first the fixed costs come off it ([`BASE_BYTES`], and
/// [`WORKER_BYTES`] per worker and [`SHARD_BYTES`] per detector shard:
/// buffers, queues and output builders), then [`SLACK_PERCENT`] of what is
/// left for the allocator (freed memory it keeps, tables' neighbours
/// fragmenting it); the rest is shared by the tables, each at its
/// worst-case bytes per entry (a hash table just grown is at 7/16 load:
/// 16/7 of the entry size per entry, plus its control byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryCaps {
    pub max_flows: usize,
    pub max_sources_per_shard: usize,
    pub max_contacts_per_shard: usize,
}

const MIB: usize = 1 << 20;

/// What a run holds whatever its traffic and thread count (measured with
/// every table at its smallest cap under a flood: 52 MiB of heap at one
/// worker, of which the packets held for reordering are 16 MiB, the
/// binary and its libraries ~10 MiB of RSS): the reader's buffers and
/// reorder window (65,536 packets in a ring that doubles: 8 MiB, twice
/// while it grows), the output writers, the alerts.
pub const BASE_BYTES: usize = 40 * MIB;

/// All flow workers together, up to [`WORKERS_SHARED`] of them: their
/// packet queues (16 batches of 1024 64-byte packets, 1 MiB, each up to 2
/// workers; fewer batches with more workers: 4 from 8 on), attempt vectors
/// (~2 MiB under a flood), the flow batches they build (16,384 rows of ~230
/// bytes in all, split between the workers; string columns grown by
/// doubling, two batches at an hour's turn) and their places in the
/// writer's queue. Each worker's share shrinks as workers are added, so
/// this, and so the caps, are the same at any thread count up to
/// [`WORKERS_SHARED`]. Measured under floods on a loaded 2-core machine:
/// peak RSS 30 to 45 MiB higher at 4 workers than at 1 with the same caps
/// (queues fill while threads wait for the CPU); a quiet CI run later
/// peaked at 261 MiB of 256 with `frag-flood` at 4 workers when this was 40
/// MiB, so it is 64 MiB (the same run then peaked at 218 MiB).
pub const WORKER_BYTES: usize = 64 * MIB;

/// Workers that share [`WORKER_BYTES`]; each one beyond costs
/// [`WORKER_EXTRA_BYTES`] more (its smallest queue and batches), which
/// lowers the caps.
pub const WORKERS_SHARED: usize = 16;
/// See [`WORKERS_SHARED`].
pub const WORKER_EXTRA_BYTES: usize = 2 * MIB;

/// Per detector shard: its merge queues (attempts waiting for the lowest
/// watermark), open scan records, its two places in the writer's queue.
pub const SHARD_BYTES: usize = 8 * MIB;

/// Of what is left after the fixed costs, the share kept for the
/// allocator: memory freed by tables that grew (a hash table's old buckets
/// while it doubles, per-source tables that shrank) is not all given back
/// to the system at once.
pub const SLACK_PERCENT: usize = 25;

/// Bytes per tracked flow besides its slab entry (which holds its timer
/// links) and index bucket: its record and attempt on their way out.
pub const FLOW_EXTRA_BYTES: usize = 64;
/// A detector source: its entry in the source table (48 bytes: the key,
/// the ranking fields, whether it is light and a pointer to the rest, a
/// 200-byte allocation that holds its first contact inline; an evicted
/// light source's rest is kept for the next new source instead, never more
/// rests than the cap has sources) and the smallest allocations of its two
/// per-source tables, made at its second contact and second target
/// (measured before the first contact moved inline: ~890 B per source on
/// the flood; a source whose table is made but holds one contact again,
/// after a sweep, is ~100 B more, within the contacts' share); plus a
/// target of the distributed-scan view (its entry and smallest contact
/// table, 512 B), which has at most as many targets as a shard has sources.
pub const SOURCE_WORST_BYTES: usize = 960 + 512;
/// Each further contact: its entry (72 bytes since issue 16: the first
/// probe's header facts and source port ride with it, for tool attribution)
/// and its per-target count, at 7/16 load (211 bytes), plus its share of the sketches of sources that outgrow their
/// exact set (a shard has at most one such source per
/// `scanwatch_detect::SKETCH_CONTACTS` contacts of its cap, each with
/// `SKETCH_SOURCE_BYTES` of sketches: 7 bytes a contact); plus the same
/// contact in the distributed-scan view, which holds at most as many
/// contacts as the source view (`TARGET_CONTACT_WORST_BYTES`: its 72-byte
/// entry and its per-port and per-source counts, at 7/16 load, 236 bytes;
/// this was 96 until the entry's size was measured: the entry had grown
/// from 40 bytes with the header facts of issue 16, and the counts were
/// left out).
pub const CONTACT_WORST_BYTES: usize =
    211 + scanwatch_detect::SKETCH_BYTES_PER_CONTACT + scanwatch_detect::TARGET_CONTACT_WORST_BYTES;

impl MemoryCaps {
    /// The fixed costs of a run with `workers` flow workers and `shards`
    /// detector shards, before any table.
    pub fn fixed_bytes(shards: usize, workers: usize) -> usize {
        BASE_BYTES
            + WORKER_BYTES
            + workers.saturating_sub(WORKERS_SHARED) * WORKER_EXTRA_BYTES
            + shards.max(1) * SHARD_BYTES
    }

    /// The smallest budget, in MiB, that leaves the tables at least a
    /// quarter of it after the fixed costs of `workers` and `shards`.
    pub fn min_budget_mib(shards: usize, workers: usize) -> u64 {
        (Self::fixed_bytes(shards, workers) * 4 / 3).div_ceil(MIB) as u64
    }

    /// Of the tables' part (the budget less the fixed costs and the
    /// allocator's slack), 50% goes to flows, 25% to detector sources, 25%
    /// to their contacts. The flow cap is the same for every worker count:
    /// it is [`scanwatch_model::VSHARDS`] times the cap of one virtual
    /// shard's table.
    pub fn for_budget(mib: u64, shards: usize, workers: usize) -> MemoryCaps {
        let bytes = (mib.saturating_mul(1 << 20)) as usize;
        let shards = shards.max(1);
        let tables =
            bytes.saturating_sub(Self::fixed_bytes(shards, workers)) / 100 * (100 - SLACK_PERCENT);
        // Per virtual shard (whatever the worker count): its slab and index
        // plus the extras of each flow in it, within its share.
        let per_shard = tables / 2 / VSHARDS;
        let cap = scanwatch_flow::FlowTable::cap_for_bytes(per_shard, FLOW_EXTRA_BYTES);
        MemoryCaps {
            max_flows: (cap * VSHARDS).max(1024),
            max_sources_per_shard: (tables / 4 / SOURCE_WORST_BYTES / shards).max(1024),
            max_contacts_per_shard: (tables / 4 / CONTACT_WORST_BYTES / shards).max(4096),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_caps_fill_their_share_of_the_budget_and_no_more() {
        for mib in [256u64, 512, 1024, 2048] {
            for workers in [1usize, 2, 4] {
                let caps = MemoryCaps::for_budget(mib, 1, workers);
                let per_shard = caps.max_flows / VSHARDS;
                assert_eq!(crate::per_vshard_flows(caps.max_flows), per_shard);
                let tables = ((mib << 20) as usize - MemoryCaps::fixed_bytes(1, workers)) / 100
                    * (100 - SLACK_PERCENT);
                let share = tables / 2 / VSHARDS;
                let used = scanwatch_flow::FlowTable::table_bytes(per_shard)
                    + per_shard * FLOW_EXTRA_BYTES;
                assert!(used <= share, "{mib} MiB x{workers}: {used} > {share}");
                // 120-byte entries, 11 to 22 bytes of index (its buckets
                // are a power of two), 64 in flight: most of the share
                // holds flows.
                assert!(
                    per_shard as f64 * 206.0 >= share as f64 * 0.8,
                    "{mib} MiB x{workers}: only {per_shard} flows per virtual shard"
                );
            }
        }
    }

    #[test]
    fn every_part_of_the_budget_adds_up_to_no_more_than_it() {
        for mib in [256u64, 512, 1024, 2048] {
            for (shards, workers) in [(1usize, 1usize), (1, 2), (1, 4), (2, 8)] {
                let c = MemoryCaps::for_budget(mib, shards, workers);
                let per_shard = c.max_flows / VSHARDS;
                let flows = VSHARDS
                    * (scanwatch_flow::FlowTable::table_bytes(per_shard)
                        + per_shard * FLOW_EXTRA_BYTES);
                let detect = shards
                    * (c.max_sources_per_shard * SOURCE_WORST_BYTES
                        + c.max_contacts_per_shard * CONTACT_WORST_BYTES);
                let total = MemoryCaps::fixed_bytes(shards, workers) + flows + detect;
                let budget = (mib << 20) as usize;
                assert!(
                    total <= budget,
                    "{mib} MiB {shards}x{workers}: {total} > {budget}"
                );
                // What is left is the allocator's slack and rounding.
                let slack =
                    (budget - MemoryCaps::fixed_bytes(shards, workers)) / 100 * SLACK_PERCENT;
                assert!(
                    total + slack >= budget / 100 * 95,
                    "{mib} MiB {shards}x{workers}: only {total} used"
                );
            }
        }
        assert!(MemoryCaps::min_budget_mib(1, 4) <= 256);
        assert!(MemoryCaps::min_budget_mib(16, 64) > 256);
    }

    #[test]
    fn the_caps_do_not_depend_on_the_worker_count_up_to_16() {
        for mib in [256u64, 1024] {
            let one = MemoryCaps::for_budget(mib, 1, 1);
            for workers in 2..=WORKERS_SHARED {
                assert_eq!(MemoryCaps::for_budget(mib, 1, workers), one);
            }
            assert_ne!(MemoryCaps::for_budget(mib, 1, 64), one);
        }
    }

    #[test]
    fn a_given_cap_is_kept_even_when_it_equals_a_default() {
        let mut cfg = PipelineConfig {
            threads: 2,
            shards: 1,
            ..PipelineConfig::default()
        };
        // The README's own example: 2,000,000 flows, which is also the
        // config file's default value.
        let given = GivenCaps {
            max_flows: Some(2_000_000),
            max_sources_per_shard: Some(DetectConfig::default().max_sources),
            max_contacts_per_shard: None,
        };
        cfg.apply_caps(256, given);
        assert_eq!(cfg.flow.max_flows, 2_000_000);
        assert_eq!(cfg.detect.max_sources, DetectConfig::default().max_sources);
        let fit = MemoryCaps::for_budget(256, 1, 2);
        assert_eq!(cfg.detect.max_contacts_total, fit.max_contacts_per_shard);
        assert_ne!(
            fit.max_flows, 2_000_000,
            "the budget alone gives another cap"
        );
    }

    #[test]
    fn caps_not_given_follow_the_budget() {
        let mut cfg = PipelineConfig {
            threads: 4,
            shards: 2,
            ..PipelineConfig::default()
        };
        cfg.apply_caps(512, GivenCaps::default());
        let fit = MemoryCaps::for_budget(512, 2, 4);
        assert_eq!(cfg.flow.max_flows, fit.max_flows);
        assert_eq!(cfg.detect.max_sources, fit.max_sources_per_shard);
        assert_eq!(cfg.detect.max_contacts_total, fit.max_contacts_per_shard);
    }
}
