//! How a run is set up: thread and queue sizes, each stage's settings, the
//! outputs, and the table caps that fit a memory budget.

use crate::clock::ClockConfig;
use scanwatch_detect::DetectConfig;
use scanwatch_flow::FlowConfig;
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
    /// Detector shards.
    pub shards: usize,
    /// Packets per batch.
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

/// Table caps that fit a memory budget, from each table's worst-case bytes
/// per entry (a hash table just grown is at 7/16 load: 16/7 of the entry
/// size per entry, plus its control byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryCaps {
    pub max_flows: usize,
    pub max_sources_per_shard: usize,
    pub max_contacts_per_shard: usize,
}

/// Bytes per tracked flow besides its slab entry (which holds its timer
/// links) and index bucket: its record and attempt on their way out.
pub const FLOW_EXTRA_BYTES: usize = 64;
/// A detector source with its first contact: its entry in the source table
/// and the smallest allocations of its two per-source tables (measured:
/// ~890 B per source on the flood).
pub const SOURCE_WORST_BYTES: usize = 960;
/// Each further contact: its entry (72 bytes since issue 16: the first
/// probe's header facts and source port ride with it, for tool attribution)
/// and its per-target count, at 7/16 load (211 bytes), plus its share of the sketches of sources that outgrow their
/// exact set (a shard has at most one such source per
/// `scanwatch_detect::SKETCH_CONTACTS` contacts of its cap, each with
/// `SKETCH_SOURCE_BYTES` of sketches: 7 bytes a contact).
pub const CONTACT_WORST_BYTES: usize = 211 + scanwatch_detect::SKETCH_BYTES_PER_CONTACT;

impl MemoryCaps {
    /// 45% of the budget goes to flows, 25% to detector sources, 15% to
    /// their contacts; the rest is left for buffers and output.
    pub fn for_budget(mib: u64, shards: usize, workers: usize) -> MemoryCaps {
        let bytes = mib.saturating_mul(1 << 20) as usize;
        let shards = shards.max(1);
        let workers = workers.max(1);
        // Per worker: its slab and index plus the extras of each flow in it,
        // within its share of 45% of the budget.
        let per_worker = bytes / 100 * 45 / workers;
        let cap = scanwatch_flow::FlowTable::cap_for_bytes(per_worker, FLOW_EXTRA_BYTES);
        MemoryCaps {
            max_flows: (cap * workers).max(1024),
            max_sources_per_shard: (bytes / 4 / SOURCE_WORST_BYTES / shards).max(1024),
            max_contacts_per_shard: (bytes / 100 * 15 / CONTACT_WORST_BYTES / shards).max(4096),
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
                let per_worker = caps.max_flows / workers;
                let share = (mib << 20) as usize / 100 * 45 / workers;
                let used = scanwatch_flow::FlowTable::table_bytes(per_worker)
                    + per_worker * FLOW_EXTRA_BYTES;
                assert!(used <= share, "{mib} MiB x{workers}: {used} > {share}");
                // 120-byte entries, ~11 bytes of index, 64 in flight: most
                // of the share holds flows.
                assert!(
                    per_worker as f64 * 196.0 >= share as f64 * 0.9,
                    "{mib} MiB x{workers}: only {per_worker} flows per worker"
                );
            }
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
