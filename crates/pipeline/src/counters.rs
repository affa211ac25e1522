//! What a run counts: the live counters every thread adds to and the
//! progress and stats printers read, and the [`Summary`] a run returns.
//!
//! The additive counters are declared once (the `counters!` list below),
//! which gives both the shared atomics ([`Counters`]) and a plain copy
//! ([`Counts`]): a thread tallies into its own `Counts` and adds it to the
//! shared counters at its flush points, and the summary is a snapshot.

use crate::clock::Outlier;
use dashmap::DashMap;
use hdrhistogram::Histogram;
use scanwatch_capture::{InputProblem, LiveStats};
use scanwatch_detect::DetectStats;
use scanwatch_flow::FlowStats;
use scanwatch_model::{Addr, Detection, Direction, Micros, ScanKind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// Live counters, added to by the pipeline's threads and read by the
        /// progress and stats printers while running.
        #[derive(Default)]
        pub struct Counters {
            $($(#[$doc])* pub $name: AtomicU64,)*
            /// Bytes of input read and their total (files), for a progress bar.
            pub input_read: AtomicU64,
            pub input_total: AtomicU64,
            /// Newest packet time seen.
            pub clock: AtomicI64,
            /// Link types met that scanwatch does not decode, with their
            /// packets (a few at most: a capture has one per interface).
            pub unsupported_links: Mutex<Vec<(u32, u64)>>,
            /// Flows in the flow tables now, all workers together (a gauge:
            /// each worker adds the change of its table's size).
            pub flows_active: AtomicI64,
            /// Flow rows are paused by a full disk (dropped and counted)
            /// until it has room again.
            pub flows_paused: std::sync::atomic::AtomicBool,
            /// The kernel's own counters of a live capture (gauges), summed
            /// over the interfaces (each one's latest, in `live_inputs`).
            pub kernel_received: AtomicU64,
            pub kernel_dropped: AtomicU64,
            pub if_dropped: AtomicU64,
            /// Each live input's latest kernel counters, by input number.
            pub live_inputs: Mutex<Vec<LiveStats>>,
            /// Scans in progress (started, not yet ended), by (scanner,
            /// protocol): the live view the stats printer reads while the
            /// output thread keeps it current. See [`ActiveScan`].
            pub active_scans: DashMap<(Addr, u8), ActiveScan>,
            /// The first outliers of the packet clock, with their input and
            /// packet number (at most [`OUTLIERS_KEPT`]).
            pub outliers: Mutex<Vec<Outlier>>,
        }

        /// The additive counters' values: one thread's tally, or a snapshot.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct Counts {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl Counters {
            /// Adds a thread's tally (skipping zeros: most flush points
            /// touch a few counters).
            pub fn add(&self, c: &Counts) {
                $(if c.$name != 0 {
                    self.$name.fetch_add(c.$name, Relaxed);
                })*
            }

            /// The additive counters now.
            pub fn counts(&self) -> Counts {
                Counts { $($name: self.$name.load(Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Packets read.
    packets,
    /// Bytes of those packets, as on the wire.
    bytes,
    /// IPv4/IPv6 packets decoded into a flow.
    ip_packets,
    not_ip,
    decode_errors,
    /// Of those, packets of a link type scanwatch does not decode.
    unsupported_link,
    /// Batches dropped because a worker queue was full (live only).
    queue_drops,
    queue_drop_packets,
    /// Flow records ended.
    flows,
    /// Packets counted in finished flow records.
    flow_packets,
    attempts,
    scans_started,
    detections,
    flows_evicted,
    sources_evicted,
    /// Packets left out as outliers of the packet clock (see `clock`):
    /// dated before 1995 or after 2099,
    outliers_out_of_range,
    /// further behind their input's newest packet than the reorder window,
    outliers_late,
    /// within the window but behind packets the cap on held packets had
    /// already released,
    outliers_late_held,
    /// far ahead of their input with nothing to confirm the jump.
    outliers_ahead,
    /// Flow rows, detections, alert lines and Zeek conn lines that could
    /// not be written because the disk was full (the run went on).
    flow_rows_dropped,
    detections_dropped,
    alerts_dropped,
    zeek_rows_dropped,
    /// Packets that arrived out of order and were put back in order.
    reordered,
    /// Packets released before their reorder window was over, because the
    /// window held too many.
    reorder_overflow,
    /// Output files removed by retention (`--retain-days`/`--retain-gib`).
    retention_removed_parts,
    retention_removed_bytes,
}

/// A scan in progress as the stats read it: what it is so far, updated at
/// its start and each update alert, removed at its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveScan {
    pub detection_id: String,
    pub kind: ScanKind,
    /// Inbound, outbound, internal or external: the stats group by it.
    pub direction: Direction,
    pub first: Micros,
    pub last: Micros,
    pub targets: u64,
    pub ports: u64,
    pub probes: u64,
    /// Open doors found so far.
    pub open: u64,
}

impl ActiveScan {
    pub fn of(d: &Detection) -> ActiveScan {
        ActiveScan {
            detection_id: d.detection_id.clone(),
            kind: d.kind,
            direction: d.direction,
            first: d.ts_first,
            last: d.ts_last,
            targets: d.dst_count,
            ports: d.port_count,
            probes: d.probes,
            open: d.open.len() as u64,
        }
    }
}

/// Outliers kept with their details; the rest are counted only.
pub const OUTLIERS_KEPT: usize = 32;

impl Counters {
    /// Keeps the details of the first outliers.
    pub(crate) fn note_outliers(&self, it: impl Iterator<Item = Outlier>) {
        if let Ok(mut v) = self.outliers.lock() {
            let room = OUTLIERS_KEPT.saturating_sub(v.len());
            v.extend(it.take(room));
        }
    }

    /// Publishes an input's progress (bytes read of the total).
    pub(crate) fn progress(&self, p: Option<(u64, u64)>) {
        if let Some((read, total)) = p {
            self.input_read.store(read, Relaxed);
            self.input_total.store(total, Relaxed);
        }
    }

    /// Publishes live input `input`'s kernel counters and returns the sums
    /// over every live input (each interface's counters are its own: with
    /// `-i` twice, both count).
    pub(crate) fn live(&self, input: usize, s: &LiveStats) -> LiveStats {
        let Ok(mut v) = self.live_inputs.lock() else {
            return *s;
        };
        if v.len() <= input {
            v.resize(input + 1, LiveStats::default());
        }
        v[input] = *s;
        let sum = v.iter().fold(LiveStats::default(), |a, b| LiveStats {
            received: a.received + b.received,
            kernel_dropped: a.kernel_dropped + b.kernel_dropped,
            if_dropped: a.if_dropped + b.if_dropped,
            skipped_at_start: a.skipped_at_start + b.skipped_at_start,
        });
        self.kernel_received.store(sum.received, Relaxed);
        self.kernel_dropped.store(sum.kernel_dropped, Relaxed);
        self.if_dropped.store(sum.if_dropped, Relaxed);
        sum
    }
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Summary {
    /// The counters at the end of the run.
    pub counts: Counts,
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
    /// Inputs that could not be read whole (cut, corrupt, not a capture),
    /// each named once; the other inputs were read.
    pub damaged: Vec<InputProblem>,
    /// Peak bytes of flow-table memory summed over workers.
    pub flow_table_bytes: u64,
    /// The first outliers of the packet clock (all are counted in
    /// `counts`).
    pub outliers: Vec<Outlier>,
    /// The reader of the alerts went away (a closed pipe): the run ended
    /// there, cleanly.
    pub alerts_closed: bool,
    /// CPU time per stage (each thread's own clock as it ended).
    pub stage_cpu: crate::StageCpu,
    /// Link types some packets had that scanwatch does not decode, with
    /// their packets (together `counts.unsupported_link`).
    pub unsupported_links: Vec<(u32, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_counters_are_summed_over_interfaces_and_replaced_per_interface() {
        let c = Counters::default();
        let s = |r, k, i| LiveStats {
            received: r,
            kernel_dropped: k,
            if_dropped: i,
            skipped_at_start: 0,
        };
        c.live(1, &s(10, 1, 0));
        let sum = c.live(0, &s(5, 0, 2));
        assert_eq!(sum, s(15, 1, 2));
        // A newer reading of input 1 replaces its older one.
        let sum = c.live(1, &s(12, 3, 0));
        assert_eq!(sum, s(17, 3, 2));
        assert_eq!(
            (
                c.kernel_received.load(Relaxed),
                c.kernel_dropped.load(Relaxed),
                c.if_dropped.load(Relaxed)
            ),
            (17, 3, 2)
        );
    }

    #[test]
    fn tallies_add_up_and_the_snapshot_shows_them() {
        let c = Counters::default();
        let t = Counts {
            packets: 3,
            bytes: 180,
            ip_packets: 2,
            not_ip: 1,
            ..Counts::default()
        };
        c.add(&t);
        c.add(&t);
        c.add(&Counts {
            flows: 4,
            ..Counts::default()
        });
        let s = c.counts();
        assert_eq!(
            (
                s.packets,
                s.bytes,
                s.ip_packets,
                s.not_ip,
                s.flows,
                s.attempts
            ),
            (6, 360, 4, 2, 4, 0)
        );
    }
}
