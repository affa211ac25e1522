//! The output thread: writes flow batches and detections into their
//! partitioned Arrow or Parquet files, alerts as JSON lines, and keeps the
//! live view of active scans. It is the only thread that touches a file;
//! parts whose hour of packet time is over are closed, SIGHUP starts new
//! parts and reopens the alerts file (as `logrotate` expects), and so does
//! the rotation interval (`--rotate`) for the tables alone.
//!
//! A full disk (ENOSPC, EDQUOT) degrades, it does not stop: the parts that
//! could not be written are given up (their rows counted as dropped, their
//! files removed), alerts that could not be written whole are counted, the
//! run goes on capturing and detecting, says so once a minute on stderr,
//! and writes again as soon as there is room. Any other write error stops
//! the readers while everything already written is finished into valid
//! files.

use crate::counters::{ActiveScan, Counters, Counts};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use scanwatch_detect::{Phase, ScanEvent};
use scanwatch_model::{Detection, Micros};
use scanwatch_sink::{
    AlertEvent, AlertTrigger, AlertWriter, Batch, ConnLog, DetectionBatchBuilder, FlowBatchBuilder,
    PartitionedWriter, Retention, SinkError,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// What reaches the output thread.
pub(crate) enum OutMsg {
    /// Flow records of one hour (packet time), built into a batch by the
    /// worker that ended them.
    Flows { hour: i64, batch: Batch },
    /// Scan events (start, update, end) of one detector shard, and how far
    /// that shard has gone: none of its later events is older than `upto`
    /// (`Micros::MAX`: the shard's last message, with the ends of the
    /// scans open when the input ended).
    Events {
        shard: usize,
        upto: Micros,
        events: Vec<ScanEvent>,
    },
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
    /// Set on SIGHUP: start new parts and reopen the alerts file.
    pub rotate: &'a AtomicBool,
    /// Set here when output fails, to stop the readers.
    pub shutdown: &'a AtomicBool,
    pub counters: &'a Counters,
    /// Start new table parts this often (wall clock), besides hourly.
    pub rotate_every: Option<Duration>,
    /// Zeek JSON conn.log lines of every flow, appended here.
    pub zeek_conn: Option<ConnLog>,
    /// The output folder (its free space decides when a full disk is over).
    pub out_dir: Option<PathBuf>,
    /// The output folder and what of it to keep (see `retention`).
    pub retention: Option<(PathBuf, Retention)>,
    /// Every scan event is copied here (unbounded: never waits).
    pub event_tap: Option<crossbeam_channel::Sender<ScanEvent>>,
    /// Detector shards whose events are merged.
    pub shards: usize,
}

/// Rows and alerts lost to a full disk so far, and when it was last said.
#[derive(Default)]
struct DiskFull {
    told: Option<Instant>,
    /// What was already added to the counters.
    published: (u64, u64, u64, u64),
    /// Flow rows (table and conn.log) are dropped without a try, so that
    /// what room is left goes to alerts and detections, until the disk has
    /// [`resume_room`] free again (checked every [`RESUME_CHECK`]).
    paused: bool,
    checked: Option<Instant>,
}

/// How often a paused writer looks at the free space.
const RESUME_CHECK: Duration = Duration::from_secs(5);

/// Free bytes that let flow rows be written again: a tenth of the file
/// system, at least 1 MiB and at most 256 MiB (room for several parts).
fn resume_room(total: u64) -> u64 {
    (total / 10).clamp(1 << 20, 256 << 20)
}

/// Free and total bytes of the file system holding `dir`.
fn disk_space(dir: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let f = st.f_frsize as u64;
    Some((st.f_bavail as u64 * f, st.f_blocks as u64 * f))
}

/// Puts the scan events of every detector shard in one order that depends
/// on nothing but the packets: packet time, then detection id, then phase
/// (start, kind change, open door, update, end). Each shard's events come
/// with how far the shard has gone (none of its later events is older), so
/// an event leaves once every shard has gone past its time. Without it the
/// rows of the detections table and the alert lines came in the order the
/// shards' work happened to interleave, and even one shard's order moved
/// with the points its watermark reached (an end found by a step's advance
/// before or after attempts of the same time): the same row set, in an
/// order that changed from run to run.
pub(crate) struct EventMerge {
    upto: Vec<Micros>,
    held: Vec<ScanEvent>,
    /// The shards' last events (`upto` = `Micros::MAX`): the ends of the
    /// scans still open when the input ended, stamped at their last
    /// probes, so older than what already left. They leave together, in
    /// order, once every shard is done.
    closing: Vec<ScanEvent>,
    /// Everything older than this has left.
    released: Micros,
    /// Events that came after events younger than them had left (a broken
    /// promise of a shard's `upto`; said on stderr at the end).
    pub late: u64,
}

impl EventMerge {
    pub(crate) fn new(shards: usize) -> Self {
        EventMerge {
            upto: vec![Micros::MIN; shards.max(1)],
            held: Vec::new(),
            closing: Vec::new(),
            released: Micros::MIN,
            late: 0,
        }
    }

    /// Takes a shard's events and its new `upto`; appends to `out`, in
    /// order, every event that can leave.
    pub(crate) fn push(
        &mut self,
        shard: usize,
        upto: Micros,
        mut events: Vec<ScanEvent>,
        out: &mut Vec<ScanEvent>,
    ) {
        if upto == Micros::MAX {
            self.closing.append(&mut events);
        } else {
            self.late += events.iter().filter(|e| e.time < self.released).count() as u64;
            if self.held.is_empty() {
                self.held = events;
            } else {
                self.held.append(&mut events);
            }
        }
        if let Some(u) = self.upto.get_mut(shard) {
            *u = (*u).max(upto);
        }
        let low = self.upto.iter().copied().min().unwrap_or(Micros::MAX);
        if low == Micros::MAX {
            self.finish(out);
            return;
        }
        if low <= self.released {
            return;
        }
        self.released = low;
        if self.held.is_empty() {
            return;
        }
        let start = out.len();
        out.extend(self.held.extract_if(.., |e| e.time < low));
        out[start..].sort_by(event_order);
    }

    /// Everything held leaves, in order, then the closing events, in
    /// order (every shard is done, or gone).
    pub(crate) fn finish(&mut self, out: &mut Vec<ScanEvent>) {
        self.released = Micros::MAX;
        for set in [&mut self.held, &mut self.closing] {
            let start = out.len();
            out.append(set);
            out[start..].sort_by(event_order);
        }
    }
}

/// The order events are written in (stable: two events equal here keep
/// the order their shard made them in).
fn event_order(a: &ScanEvent, b: &ScanEvent) -> std::cmp::Ordering {
    let rank = |p: Phase| match p {
        Phase::Start => 0u8,
        Phase::KindChange => 1,
        Phase::OpenDoor => 2,
        Phase::Update => 3,
        Phase::End => 4,
    };
    a.time
        .cmp(&b.time)
        .then_with(|| a.detection.detection_id.cmp(&b.detection.detection_id))
        .then_with(|| rank(a.phase).cmp(&rank(b.phase)))
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
    let mut last_rotation = Instant::now();
    let mut full = DiskFull::default();
    let mut last_retention = Instant::now();
    let mut merge = EventMerge::new(ctx.shards);
    let mut ready: Vec<ScanEvent> = Vec::new();
    loop {
        let msg = match ctx.rx.recv_timeout(Duration::from_millis(200)) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if ctx.rotate.swap(false, Relaxed) && first_err.is_none() {
            // SIGHUP, as logrotate sends it: new parts, and the alerts
            // file (and conn.log) closed and opened again at its path.
            let reopened = ctx.alerts.as_mut().map_or(Ok(()), |a| a.reopen());
            if let Err(e) = alerts_failed(&mut ctx, &mut res, reopened) {
                first_err = Some(e);
            }
            if let Some(Err(e)) = ctx.zeek_conn.as_mut().map(|z| z.reopen()) {
                first_err.get_or_insert(e);
            }
            if let Err(e) = rotate_all(&mut ctx) {
                first_err.get_or_insert(e);
            }
            last_rotation = Instant::now();
        }
        if let Some(every) = ctx.rotate_every {
            if last_rotation.elapsed() >= every && first_err.is_none() {
                last_rotation = Instant::now();
                if let Err(e) = rotate_all(&mut ctx) {
                    first_err = Some(e);
                }
            }
        }
        report_disk_full(&mut ctx, &mut full);
        maybe_resume(&ctx, &mut full);
        ctx.counters.flows_paused.store(full.paused, Relaxed);
        // Close parts whose hour is over (packet time).
        let clock = ctx.counters.clock.load(Relaxed);
        let hour = clock.div_euclid(3_600_000_000);
        if hour > last_clock_hour && first_err.is_none() {
            last_clock_hour = hour;
            if let Some(w) = ctx.flows.as_mut() {
                match w.close_before(clock) {
                    // The part that could not be finished is gone and
                    // counted; the others stay open.
                    Err(e) if e.is_disk_full() => {}
                    Err(e) => first_err = Some(e),
                    Ok(()) => {}
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
            OutMsg::Flows { hour, batch } => flows(&mut ctx, &mut full, hour, &batch),
            OutMsg::Events {
                shard,
                upto,
                events,
            } => {
                merge.push(shard, upto, events, &mut ready);
                let w = ready.iter().try_for_each(|e| event(&mut ctx, &mut res, e));
                ready.clear();
                w
            }
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
    // A shard that stopped without its last word (it cannot wait for
    // anything more): what is held leaves, in order.
    merge.finish(&mut ready);
    if first_err.is_none() {
        if let Err(e) = ready.iter().try_for_each(|e| event(&mut ctx, &mut res, e)) {
            first_err = Some(e);
        }
    }
    if merge.late > 0 {
        eprintln!(
            "scanwatch: {} scan events reached the writer after later ones \
             (their alert and detection rows may be out of packet-time order)",
            merge.late
        );
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
    if let Some(a) = ctx.alerts.as_mut() {
        // Durable at the end, as at each rotation; a full disk was said.
        if let Err(e) = a.sync() {
            if !e.is_disk_full() {
                first_err.get_or_insert(e);
            }
        }
        res.alerts = res.alerts.saturating_sub(a.dropped);
    }
    if let Some(z) = ctx.zeek_conn.as_mut() {
        z.sync();
    }
    full.told = None;
    report_disk_full(&mut ctx, &mut full);
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
/// is returned). A part that cannot be finished on a full disk is given up
/// and its rows counted, not an error.
fn rotate_all(ctx: &mut OutputCtx<'_>) -> Result<(), SinkError> {
    let not_full = |r: Result<(), SinkError>| match r {
        Err(e) if e.is_disk_full() => Ok(()),
        r => r,
    };
    let flows = not_full(ctx.flows.as_mut().map_or(Ok(()), |w| w.rotate()));
    let detections = not_full(ctx.detections.as_mut().map_or(Ok(()), |w| w.rotate()));
    flows.and(detections)
}

/// One flow batch into the flows table and conn.log. A full disk gives up
/// the open flow parts (counted) and is not an error.
fn flows(
    ctx: &mut OutputCtx<'_>,
    full: &mut DiskFull,
    hour: i64,
    batch: &Batch,
) -> Result<(), SinkError> {
    let n = batch.num_rows() as u64;
    if let Some(z) = ctx.zeek_conn.as_mut() {
        if full.paused {
            z.dropped += n;
        } else {
            match z.write(batch) {
                Err(e) if e.is_disk_full() => full.paused = true,
                Err(e) => return Err(e),
                Ok(()) => {}
            }
        }
    }
    let Some(w) = ctx.flows.as_mut() else {
        return Ok(());
    };
    if full.paused {
        w.lost_rows += n;
        return Ok(());
    }
    // Nearly full: finish the open parts while their footers still fit
    // (what they hold stays readable) and pause, rather than fail in the
    // middle of a part and lose all of it.
    let need = batch.get_array_memory_size() as u64 + (1 << 20);
    if let Some((free, _)) = ctx.out_dir.as_deref().and_then(disk_space) {
        if free < need {
            full.paused = true;
            full.checked = Some(Instant::now());
            w.lost_rows += n;
            return match w.rotate() {
                Err(e) if e.is_disk_full() => Ok(()),
                r => r,
            };
        }
    }
    match w.push_batch(hour, batch) {
        Err(e) if e.is_disk_full() => {
            w.abandon_open();
            w.lost_rows += n;
            full.paused = true;
            full.checked = Some(Instant::now());
            Ok(())
        }
        r => r,
    }
}

/// While flow rows are paused, looks at the free space now and then and
/// writes them again once there is room.
fn maybe_resume(ctx: &OutputCtx<'_>, full: &mut DiskFull) {
    if !full.paused || full.checked.is_some_and(|t| t.elapsed() < RESUME_CHECK) {
        return;
    }
    full.checked = Some(Instant::now());
    let Some((free, total)) = ctx.out_dir.as_deref().and_then(disk_space) else {
        return;
    };
    if free >= resume_room(total) {
        full.paused = false;
        eprintln!(
            "scanwatch: the disk has room again ({} MiB free): writing flows again",
            free >> 20
        );
    }
}

/// Adds what a full disk cost since the last call to the counters, and
/// says it on stderr at most once a minute (and once more at the end).
fn report_disk_full(ctx: &mut OutputCtx<'_>, full: &mut DiskFull) {
    let now = (
        ctx.flows.as_ref().map_or(0, |w| w.lost_rows),
        ctx.detections.as_ref().map_or(0, |w| w.lost_rows),
        ctx.alerts.as_ref().map_or(0, |a| a.dropped),
        ctx.zeek_conn.as_ref().map_or(0, |z| z.dropped),
    );
    let was = full.published;
    if now == was {
        return;
    }
    ctx.counters.add(&Counts {
        flow_rows_dropped: now.0 - was.0,
        detections_dropped: now.1 - was.1,
        alerts_dropped: now.2 - was.2,
        zeek_rows_dropped: now.3 - was.3,
        ..Counts::default()
    });
    full.published = now;
    if full
        .told
        .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
    {
        full.told = Some(Instant::now());
        eprintln!(
            "scanwatch: disk full: {} flow rows, {} detections, {} alerts{} not written so far; still capturing and detecting, writing again when there is room",
            now.0,
            now.1,
            now.2,
            if ctx.zeek_conn.is_some() {
                format!(", {} conn.log lines", now.3)
            } else {
                String::new()
            }
        );
    }
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
        // The lines were counted as dropped and the file cut back to its
        // last whole line: go on.
        Err(e) if e.is_disk_full() => Ok(()),
        other => other,
    }
}

/// One scan event: the live view, its alert line, and at its end the
/// detections table.
fn event(ctx: &mut OutputCtx<'_>, res: &mut OutResult, e: &ScanEvent) -> Result<(), SinkError> {
    let d = &e.detection;
    match e.phase {
        Phase::Start | Phase::Update | Phase::OpenDoor | Phase::KindChange => {
            ctx.counters
                .active_scans
                .insert((d.scanner, d.proto), ActiveScan::of(d));
        }
        Phase::End => {
            ctx.counters.active_scans.remove(&(d.scanner, d.proto));
        }
    }
    if let Some(a) = ctx.alerts.as_mut() {
        let written = a.write(&AlertEvent {
            phase: e.phase.name(),
            time: e.time,
            detection: d,
            trigger: e.trigger.map(|t| AlertTrigger {
                dst: t.dst,
                dport: t.dport,
                sport: t.sport,
                flow_id: t.flow_id,
            }),
            previous_kind: e.previous_kind,
            new_open: &e.new_open,
        });
        if written.is_ok() {
            res.alerts += 1;
        }
        alerts_failed(ctx, res, written)?;
    }
    if let Some(tap) = &ctx.event_tap {
        // Unbounded: a send only fails when the receiver is gone (it
        // stopped), and then there is nobody to tell but the receiver.
        if tap.send(e.clone()).is_err() {
            ctx.event_tap = None;
        }
    }
    if e.phase == Phase::End {
        res.detection_count += 1;
        ctx.counters.add(&Counts {
            detections: 1,
            ..Counts::default()
        });
        if let Some(w) = ctx.detections.as_mut() {
            if let Err(e) = w.push(d, d.ts_first) {
                if !e.is_disk_full() {
                    return Err(e);
                }
                w.abandon_open();
            }
        }
        if ctx.collect && res.detections.len() < COLLECT_MAX {
            res.detections.push(d.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanwatch_model::{Addr, Direction, ScanKind, Technique};

    fn ev(phase: Phase, time: Micros, id: &str) -> ScanEvent {
        ScanEvent {
            phase,
            time,
            detection: Detection {
                detection_id: id.into(),
                ts_first: 0,
                ts_last: time,
                ts_detected: 0,
                scanner: Addr::from_v4([198, 18, 0, 2]),
                kind: ScanKind::Vertical,
                proto: 6,
                detector: "window:5m".into(),
                dst_count: 1,
                port_count: 1,
                probes: 1,
                answered: 0,
                rejected: 1,
                unanswered: 0,
                ports: vec![22],
                targets: Vec::new(),
                open: Vec::new(),
                direction: Direction::default(),
                technique: Technique::Syn,
                tool: "unknown".into(),
                tool_evidence: Vec::new(),
                rate_pps: 0.0,
                order: "unknown".into(),
                port_set: "custom".into(),
                campaign_id: String::new(),
                sources: Vec::new(),
            },
            new_open: Vec::new(),
            previous_kind: None,
            trigger: None,
            direction_set: false,
        }
    }

    fn names(v: &[ScanEvent]) -> Vec<String> {
        v.iter()
            .map(|e| format!("{}@{}:{}", e.detection.detection_id, e.time, e.phase.name()))
            .collect()
    }

    /// Two shards' messages, as (shard, upto, events).
    fn messages() -> Vec<(usize, Micros, Vec<ScanEvent>)> {
        vec![
            (
                0,
                20,
                vec![ev(Phase::Start, 10, "b"), ev(Phase::End, 15, "c")],
            ),
            (0, 40, vec![ev(Phase::Update, 30, "b")]),
            (1, 11, vec![ev(Phase::Start, 10, "a")]),
            (
                1,
                30,
                vec![ev(Phase::End, 12, "a"), ev(Phase::OpenDoor, 25, "d")],
            ),
            (1, 50, vec![ev(Phase::Update, 40, "d")]),
            // The last words: the ends of scans open when the input ended,
            // stamped at their last probes.
            (0, Micros::MAX, vec![ev(Phase::End, 30, "b")]),
            (1, Micros::MAX, vec![ev(Phase::End, 40, "d")]),
        ]
    }

    fn run(order: &[usize]) -> (Vec<String>, Vec<usize>) {
        let msgs = messages();
        let mut m = EventMerge::new(2);
        let mut out = Vec::new();
        let mut left_after = Vec::new();
        for &i in order {
            let (shard, upto, events) = msgs[i].clone();
            m.push(shard, upto, events, &mut out);
            left_after.push(out.len());
        }
        assert_eq!(m.late, 0);
        (names(&out), left_after)
    }

    #[test]
    fn the_shards_events_leave_in_one_order_whatever_order_they_come_in() {
        let want = [
            "a@10:start",
            "b@10:start",
            "a@12:end",
            "c@15:end",
            "d@25:open_door",
            "b@30:update",
            "d@40:update",
            // Then the ends at the input's end, in time order.
            "b@30:end",
            "d@40:end",
        ];
        // Each shard's messages keep their order; the shards interleave in
        // every way tried here.
        for order in [
            [0, 1, 2, 3, 4, 5, 6],
            [2, 3, 4, 6, 0, 1, 5],
            [0, 2, 1, 3, 5, 4, 6],
            [2, 0, 3, 1, 4, 5, 6],
        ] {
            let (got, _) = run(&order);
            assert_eq!(got, want, "order {order:?}");
        }
    }

    #[test]
    fn an_event_waits_until_every_shard_has_gone_past_its_time() {
        // Shard 0 alone has spoken: nothing leaves (shard 1 may still
        // have something older).
        let (_, left) = run(&[0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(left[0], 0);
        assert_eq!(left[1], 0);
        // Shard 1 at 11: the two events at 10 leave; the end at 15 waits.
        assert_eq!(left[2], 2);
        // Shard 1 at 30: what is older than 30 leaves (not b's update at 30:
        // shard 1 could still tell something at 30 that goes before it).
        assert_eq!(left[3], 5);
        // Shard 1 at 50, shard 0 at 40: b's update at 30 leaves, d's at 40
        // waits until shard 0 is done; its end at 30 waits for shard 1's.
        assert_eq!(left[4], 6);
        assert_eq!(left[5], 7);
        assert_eq!(left[6], 9);
    }

    #[test]
    fn an_event_older_than_what_already_left_is_counted() {
        let mut m = EventMerge::new(1);
        let mut out = Vec::new();
        m.push(0, 20, vec![ev(Phase::Start, 10, "a")], &mut out);
        m.push(0, 30, vec![ev(Phase::Update, 12, "a")], &mut out);
        assert_eq!(m.late, 1);
        // Still written, not dropped.
        assert_eq!(names(&out), ["a@10:start", "a@12:update"]);
    }
}
