//! The output thread: writes flow batches and detections into their
//! partitioned Arrow or Parquet files, alerts as JSON lines, and keeps the
//! live view of active scans. It is the only thread that touches a file;
//! parts whose hour of packet time is over are closed, SIGHUP starts new
//! parts, and a write error stops the readers while everything that was
//! already written is finished into valid files.

use crate::counters::{ActiveScan, Counters, Counts};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use scanwatch_detect::{Phase, ScanEvent};
use scanwatch_model::Detection;
use scanwatch_sink::{
    AlertEvent, AlertWriter, Batch, DetectionBatchBuilder, FlowBatchBuilder, PartitionedWriter,
    Retention, SinkError,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// What reaches the output thread.
pub(crate) enum OutMsg {
    /// Flow records of one hour (packet time), built into a batch by the
    /// worker that ended them.
    Flows { hour: i64, batch: Batch },
    /// Scan events (start, update, end) of one detector shard.
    Events(Vec<ScanEvent>),
    /// A worker could not build a flow batch: an output error.
    Failed(SinkError),
}

/// What the output thread works with.
pub(crate) struct OutputCtx<'a> {
    pub rx: Receiver<OutMsg>,
    pub flows: Option<PartitionedWriter<FlowBatchBuilder>>,
    pub detections: Option<PartitionedWriter<DetectionBatchBuilder>>,
    pub alerts: Option<AlertWriter>,
    /// Keep final detections (at most [`COLLECT_MAX`]) for the summary.
    pub collect: bool,
    /// Set on SIGHUP: start new parts.
    pub rotate: &'a AtomicBool,
    /// Set here when output fails, to stop the readers.
    pub shutdown: &'a AtomicBool,
    pub counters: &'a Counters,
    /// The output folder and what of it to keep (see `retention`).
    pub retention: Option<(PathBuf, Retention)>,
}

/// Most detections kept in memory for the summary.
const COLLECT_MAX: usize = 100_000;

/// What the output thread did.
pub(crate) struct OutResult {
    pub detections: Vec<Detection>,
    pub detection_count: u64,
    pub alerts: u64,
    pub files: Vec<PathBuf>,
    /// The alerts' reader went away (a closed pipe): the run was ended
    /// there, cleanly.
    pub alerts_closed: bool,
}

/// Runs until every worker and shard is done; finishes every file, even
/// after an error, and returns the first error.
pub(crate) fn output_loop(mut ctx: OutputCtx<'_>) -> Result<OutResult, SinkError> {
    let mut res = OutResult {
        detections: Vec::new(),
        detection_count: 0,
        alerts: 0,
        files: Vec::new(),
        alerts_closed: false,
    };
    let mut first_err: Option<SinkError> = None;
    let mut last_clock_hour = i64::MIN;
    let mut last_retention = Instant::now();
    loop {
        let msg = match ctx.rx.recv_timeout(Duration::from_millis(200)) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if ctx.rotate.swap(false, Relaxed) && first_err.is_none() {
            if let Err(e) = rotate_all(&mut ctx) {
                first_err = Some(e);
            }
        }
        // Close parts whose hour is over (packet time).
        let clock = ctx.counters.clock.load(Relaxed);
        let hour = clock.div_euclid(3_600_000_000);
        if hour > last_clock_hour && first_err.is_none() {
            last_clock_hour = hour;
            if let Some(w) = ctx.flows.as_mut() {
                if let Err(e) = w.close_before(clock) {
                    first_err = Some(e);
                }
            }
            retain(&ctx, &mut last_retention);
        } else if last_retention.elapsed() >= Duration::from_secs(60) {
            retain(&ctx, &mut last_retention);
        }
        let Some(msg) = msg else { continue };
        if first_err.is_some() {
            // Output is broken: stop the readers, keep draining so every
            // thread can finish, write nothing more.
            ctx.shutdown.store(true, Relaxed);
            continue;
        }
        let written = match msg {
            OutMsg::Flows { hour, batch } => match ctx.flows.as_mut() {
                Some(w) => w.push_batch(hour, &batch),
                None => Ok(()),
            },
            OutMsg::Events(evs) => evs.iter().try_for_each(|e| event(&mut ctx, &mut res, e)),
            OutMsg::Failed(e) => Err(e),
        };
        if let Err(e) = written {
            first_err = Some(e);
        }
        // Alerts leave as soon as nothing else waits, or 100 ms after the
        // oldest was buffered: at once on a live link, in large writes on a
        // replay.
        if let Some(a) = ctx.alerts.as_mut() {
            if first_err.is_none() && a.due(ctx.rx.is_empty(), Duration::from_millis(100)) {
                let flushed = a.flush();
                if let Err(err) = alerts_failed(&mut ctx, &mut res, flushed) {
                    first_err = Some(err);
                }
            }
        }
    }
    if let Some(flushed) = ctx.alerts.as_mut().map(|a| a.flush()) {
        if let Err(e) = alerts_failed(&mut ctx, &mut res, flushed) {
            first_err.get_or_insert(e);
        }
    }
    // Finish every file, even after an error elsewhere: what was written stays.
    if let Err(e) = rotate_all(&mut ctx) {
        first_err.get_or_insert(e);
    }
    retain(&ctx, &mut last_retention);
    if let Some(w) = ctx.flows.as_mut() {
        res.files.append(&mut w.finished);
    }
    if let Some(w) = ctx.detections.as_mut() {
        res.files.append(&mut w.finished);
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(res),
    }
}

/// Removes the partitions retention gives up (packet clock), one line on
/// stderr each; an error is reported and the run goes on.
fn retain(ctx: &OutputCtx<'_>, last: &mut Instant) {
    *last = Instant::now();
    let Some((dir, policy)) = &ctx.retention else {
        return;
    };
    let mut open = ctx.flows.as_ref().map_or(Vec::new(), |w| w.open_hours());
    open.extend(
        ctx.detections
            .as_ref()
            .map_or(Vec::new(), |w| w.open_hours()),
    );
    let clock = ctx.counters.clock.load(Relaxed);
    match scanwatch_sink::retention::enforce(dir, policy, clock, &open) {
        Ok(removed) => {
            for r in &removed {
                eprintln!("scanwatch: {}", r.line(dir));
                ctx.counters.add(&Counts {
                    retention_removed_parts: r.partition.files,
                    retention_removed_bytes: r.partition.bytes,
                    ..Counts::default()
                });
            }
        }
        Err(e) => eprintln!("scanwatch: retention: {e}"),
    }
}

/// Finishes the open parts of both tables (both are tried; the first error
/// is returned).
fn rotate_all(ctx: &mut OutputCtx<'_>) -> Result<(), SinkError> {
    let flows = ctx.flows.as_mut().map_or(Ok(()), |w| w.rotate());
    let detections = ctx.detections.as_mut().map_or(Ok(()), |w| w.rotate());
    flows.and(detections)
}

/// What an alert write returned: a closed pipe (the reader of `--alerts -`
/// went away, as `| head -1` does) ends the run cleanly, with no more
/// alerts but every file finished; any other error is an output error.
fn alerts_failed(
    ctx: &mut OutputCtx<'_>,
    res: &mut OutResult,
    written: Result<(), SinkError>,
) -> Result<(), SinkError> {
    match written {
        Err(SinkError::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ctx.alerts = None;
            res.alerts_closed = true;
            ctx.shutdown.store(true, Relaxed);
            Ok(())
        }
        other => other,
    }
}

/// One scan event: the live view, its alert line, and at its end the
/// detections table.
fn event(ctx: &mut OutputCtx<'_>, res: &mut OutResult, e: &ScanEvent) -> Result<(), SinkError> {
    let d = &e.detection;
    match e.phase {
        Phase::Start | Phase::Update => {
            ctx.counters
                .active_scans
                .insert((d.scanner, d.proto), ActiveScan::of(d));
        }
        Phase::End => {
            ctx.counters.active_scans.remove(&(d.scanner, d.proto));
        }
    }
    if let Some(a) = ctx.alerts.as_mut() {
        let written = a.write(&AlertEvent::plain(e.phase.name(), e.time, d));
        if written.is_ok() {
            res.alerts += 1;
        }
        alerts_failed(ctx, res, written)?;
    }
    if e.phase == Phase::End {
        res.detection_count += 1;
        ctx.counters.add(&Counts {
            detections: 1,
            ..Counts::default()
        });
        if let Some(w) = ctx.detections.as_mut() {
            w.push(d, d.ts_first)?;
        }
        if ctx.collect && res.detections.len() < COLLECT_MAX {
            res.detections.push(d.clone());
        }
    }
    Ok(())
}
