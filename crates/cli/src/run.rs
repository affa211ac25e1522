//! `scanwatch run`: tcpdump's habits (`-i`, `-r`, `-w`, `-s`, `-p`, `-F`,
//! a filter as trailing words), a progress bar on files, periodic stats on
//! live capture, Ctrl-C/SIGTERM to stop cleanly, SIGHUP to start new files.

use crate::config;
use anyhow::{bail, Context, Result};
use clap::Args;
use scanwatch_capture::{CaptureError, FileSource, LiveOptions, LiveSource, PacketSource};
use scanwatch_detect::Window;
use scanwatch_model::{proto, Detection};
use scanwatch_pipeline::{Counters, GivenCaps, PipelineConfig, Summary};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Capture live from this interface (repeatable; `any` for all).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interfaces: Vec<String>,
    /// Read packets from a pcap/pcapng file (gzip allowed), a directory
    /// or `-` for stdin. Repeatable: all inputs are merged by packet time.
    #[arg(short = 'r', long = "read", value_name = "FILE|DIR|-")]
    pub read: Vec<PathBuf>,
    /// Output folder for flows/, detections/ and alerts.jsonl.
    #[arg(
        short = 'w',
        long = "write",
        value_name = "DIR",
        default_value = "scanwatch-out"
    )]
    pub out: PathBuf,
    /// Read the BPF filter from this file.
    #[arg(short = 'F', value_name = "FILE")]
    pub filter_file: Option<PathBuf>,
    /// Snap length for live capture, bytes.
    #[arg(short = 's', long = "snaplen", default_value_t = 262_144)]
    pub snaplen: i32,
    /// Do not put the interface into promiscuous mode.
    #[arg(short = 'p', long = "no-promiscuous-mode")]
    pub no_promisc: bool,
    /// Kernel capture buffer, MiB.
    #[arg(short = 'B', long = "buffer-size", default_value_t = 64)]
    pub buffer_mib: i32,
    /// Flow worker threads (default: the machine's cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Detector shards (default: threads / 4, at least 1).
    #[arg(long)]
    pub shards: Option<usize>,
    /// TOML config file ([flow] and [detect] tables; flags override it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Alerts as JSON lines to this file, or `-` for stdout
    /// (default: DIR/alerts.jsonl).
    #[arg(long, value_name = "FILE|-")]
    pub alerts: Option<PathBuf>,
    /// Do not write the flows table (detections and alerts only).
    #[arg(long)]
    pub no_flows: bool,
    /// Print nothing but errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// On live capture, print counters every SECS seconds (and append them to
    /// DIR/stats.jsonl).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub stats_every: u64,
    /// A detection window, `SECS:HORIZONTAL:VERTICAL` (repeatable; replaces
    /// the defaults 300:20:20, 3600:40:40, 86400:100:100).
    #[arg(long = "window", value_name = "SECS:H:V")]
    pub windows: Vec<String>,
    /// Turn the threshold random walk detector off.
    #[arg(long)]
    pub no_trw: bool,
    /// Never flag these sources (CIDR; repeatable).
    #[arg(long = "allow-scanner", value_name = "CIDR")]
    pub allow_scanners: Vec<String>,
    /// Ignore contacts to these services (`CIDR[:port[/proto]]`; repeatable).
    #[arg(long = "allow-service", value_name = "SPEC")]
    pub allow_services: Vec<String>,
    /// Our own networks (CIDR; repeatable or comma-separated), as
    /// Suricata's HOME_NET: every scan is inbound, outbound, internal or
    /// external from them. Replaces the config file's `[detect] home_net`
    /// and the default (RFC 1918, fc00::/7 and loopback).
    #[arg(long = "home-net", value_name = "CIDR", value_delimiter = ',')]
    pub home_net: Vec<String>,
    /// A scan ends after this many seconds without a probe.
    #[arg(long, value_name = "SECS")]
    pub scan_idle: Option<u64>,
    /// Packets out of order by up to this much packet time are put back in
    /// order; a packet further behind is late (left out, counted and
    /// reported), one further ahead waits for the next packet to confirm
    /// the jump. Default: 300 on live interfaces; on files a day, so that a
    /// file is read as if sorted (at most 65,536 packets are held either
    /// way).
    #[arg(long, value_name = "MS")]
    pub reorder_window: Option<u64>,
    /// Unanswered probes resolve after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub attempt_timeout: Option<f64>,
    /// Most flows tracked at once, all workers together.
    #[arg(long)]
    pub max_flows: Option<usize>,
    /// Most sources tracked per detector shard.
    #[arg(long)]
    pub max_sources: Option<usize>,
    /// Table file format: `arrow` (Arrow IPC files) or `parquet`.
    #[arg(long, value_name = "FORMAT", default_value = "arrow", value_parser = ["arrow", "parquet"])]
    pub format: String,
    /// Sensor name: adds a `sensor=NAME` level to the output layout
    /// (DIR/flows/sensor=NAME/date=…/hour=…), so many sensors' outputs can
    /// share one tree and be read as one Hive-partitioned dataset.
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,
    /// Close an output file and start the next one after this many rows
    /// (files also rotate every hour of packet time and on SIGHUP).
    #[arg(long, value_name = "ROWS", default_value_t = 5_000_000)]
    pub max_part_rows: u64,
    /// Memory for the state tables, MiB: sets the caps on flows, detector
    /// sources and contacts that are not given explicitly (--max-flows,
    /// --max-sources, or the config file). 45% goes to flows, 25% to
    /// sources, 15% to contacts; the rest is left for buffers and output.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub max_memory: u64,
    /// Delete hour partitions of the output once all of the hour is more
    /// than this many days (×24 h) older than the newest packet (packet
    /// time, as the partitions; fractions allowed).
    #[arg(long, value_name = "DAYS")]
    pub retain_days: Option<f64>,
    /// Keep flows and detections under DIR within this many GiB together:
    /// oldest hours go first, flows (down to the newest hour) before
    /// detections.
    #[arg(long, value_name = "GIB")]
    pub retain_gib: Option<f64>,
    /// After the interfaces are open, drop root privileges and run as this
    /// user (and its groups), as tcpdump's `-Z`. The output folder must be
    /// writable by that user.
    #[arg(short = 'Z', long = "user", value_name = "NAME")]
    pub user: Option<String>,
    /// BPF filter expression (as tcpdump's trailing arguments).
    #[arg(trailing_var_arg = true, value_name = "EXPRESSION")]
    pub filter: Vec<String>,
}

/// Builds the pipeline configuration from flags and config file.
pub fn pipeline_config(a: &RunArgs) -> Result<PipelineConfig> {
    let file = config::load(a.config.as_deref())?;
    let mut fs = file.flow.clone();
    if let Some(t) = a.attempt_timeout {
        fs.attempt_timeout_secs = t;
    }
    if let Some(m) = a.max_flows {
        fs.max_flows = Some(m);
    }
    let mut detect = file.detect.clone();
    if !a.windows.is_empty() {
        detect.windows = a
            .windows
            .iter()
            .map(|w| parse_window(w))
            .collect::<Result<_>>()?;
    }
    if a.no_trw {
        detect.trw = false;
    }
    detect
        .allow_scanners
        .extend(a.allow_scanners.iter().cloned());
    detect
        .allow_services
        .extend(a.allow_services.iter().cloned());
    if !a.home_net.is_empty() {
        detect.home_net = a.home_net.iter().map(|s| s.trim().to_string()).collect();
    }
    if let Some(s) = a.scan_idle {
        detect.scan_idle_secs = s;
    }
    detect.validate()?;
    let reorder_ms = reorder_window_ms(a);
    anyhow::ensure!(
        reorder_ms <= DAY_MS,
        "--reorder-window is at most a day ({DAY_MS} ms)"
    );
    let mut cfg = PipelineConfig {
        flow: fs.to_config()?,
        detect,
        clock: scanwatch_pipeline::ClockConfig {
            reorder_window: reorder_ms as i64 * 1000,
            ..Default::default()
        },
        ..PipelineConfig::default()
    };
    if let Some(t) = a.threads {
        anyhow::ensure!(
            (1..=256).contains(&t),
            "--threads must be between 1 and 256"
        );
        cfg.threads = t;
        cfg.shards = (t / 4).max(1);
    }
    if let Some(s) = a.shards {
        anyhow::ensure!((1..=64).contains(&s), "--shards must be between 1 and 64");
        cfg.shards = s;
    }
    anyhow::ensure!(
        a.max_memory >= 256,
        "--max-memory must be at least 256 MiB (below that, fixed buffers dominate)"
    );
    // A cap given by a flag wins over the file's; caps given by neither
    // come from the memory budget.
    cfg.apply_caps(
        a.max_memory,
        GivenCaps {
            max_flows: a.max_flows.or(file.caps.max_flows),
            max_sources_per_shard: a.max_sources.or(file.caps.max_sources_per_shard),
            max_contacts_per_shard: file.caps.max_contacts_per_shard,
        },
    );
    Ok(cfg)
}

fn parse_window(s: &str) -> Result<Window> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad =
        || anyhow::anyhow!("--window {s:?}: expected SECS:HORIZONTAL:VERTICAL, e.g. 300:20:20");
    if parts.len() != 3 {
        return Err(bad());
    }
    Ok(Window {
        seconds: parts[0].parse().map_err(|_| bad())?,
        horizontal: parts[1].parse().map_err(|_| bad())?,
        vertical: parts[2].parse().map_err(|_| bad())?,
    })
}

fn bpf_filter(a: &RunArgs) -> Result<Option<String>> {
    if let Some(f) = &a.filter_file {
        let text = std::fs::read_to_string(f).with_context(|| format!("{}", f.display()))?;
        // tcpdump ignores comments in -F files.
        let expr: String = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" ");
        return Ok(Some(expr.trim().to_string()).filter(|s| !s.is_empty()));
    }
    Ok(Some(a.filter.join(" ")).filter(|s| !s.trim().is_empty()))
}

/// Opens the inputs named by `-r` and `-i`.
pub fn open_sources(a: &RunArgs) -> Result<Vec<Box<dyn PacketSource>>> {
    if a.interfaces.is_empty() && a.read.is_empty() {
        bail!("nothing to read: give -r FILE|DIR|- or -i IFACE (see scanwatch run --help)");
    }
    if !a.interfaces.is_empty() && !a.read.is_empty() {
        bail!("-r and -i cannot be mixed in one run");
    }
    let filter = bpf_filter(a)?;
    let mut sources: Vec<Box<dyn PacketSource>> = Vec::new();
    if !a.read.is_empty() {
        sources.push(Box::new(FileSource::open(&a.read, filter.clone())?));
    }
    for iface in &a.interfaces {
        let opts = LiveOptions {
            snaplen: a.snaplen,
            promisc: !a.no_promisc,
            buffer_size: a.buffer_mib.saturating_mul(1 << 20),
            filter: filter.clone(),
            ..LiveOptions::default()
        };
        sources.push(Box::new(LiveSource::open(iface, &opts)?));
    }
    Ok(sources)
}

pub fn main(a: RunArgs) -> Result<ExitCode> {
    let mut cfg = pipeline_config(&a)?;
    let sources = open_sources(&a)?;
    if let Some(user) = &a.user {
        drop_privileges(user)?;
    }
    let live = !a.interfaces.is_empty();
    cfg.out_dir = Some(a.out.clone());
    cfg.write_flows = !a.no_flows;
    cfg.sink.max_part_rows = a.max_part_rows.max(1);
    cfg.retention = retention(&a)?;
    cfg.sink.format = if a.format == "parquet" {
        scanwatch_sink::Format::Parquet
    } else {
        scanwatch_sink::Format::Arrow
    };
    if let Some(name) = &a.sensor {
        anyhow::ensure!(
            !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
            "--sensor {name:?}: use 1-64 letters, digits, '-', '_' or '.'"
        );
        cfg.sink.prefix = vec![format!("sensor={name}")];
    }
    cfg.sensor = scanwatch_sink::SensorInfo {
        host: a.sensor.clone().or_else(host_name),
        in_iface: live.then(|| a.interfaces.join(",")),
    };
    cfg.alerts = Some(
        a.alerts
            .clone()
            .unwrap_or_else(|| a.out.join("alerts.jsonl")),
    );
    cfg.collect = !a.quiet;
    signals(&cfg)?;
    let counters = Arc::new(Counters::default());
    let done = Arc::new(AtomicBool::new(false));
    let reporter = {
        let counters = counters.clone();
        let done = done.clone();
        let show_bar = !a.quiet && !live && std::io::stderr().is_terminal();
        let stats_every = if live && a.stats_every > 0 {
            Some(Duration::from_secs(a.stats_every))
        } else {
            None
        };
        let stats_path = a.out.join("stats.jsonl");
        let quiet = a.quiet;
        std::thread::spawn(move || {
            report_loop(&counters, &done, show_bar, stats_every, &stats_path, quiet)
        })
    };
    let result = scanwatch_pipeline::run(sources, cfg, counters.clone());
    done.store(true, Relaxed);
    reporter.thread().unpark();
    let _ = reporter.join();
    let summary = result?;
    let reorder_ms = reorder_window_ms(&a);
    if !a.quiet {
        // The scan lines go to stdout, unless the alerts do: then stdout
        // carries alerts only. A closed stdout is not an error here.
        let alerts_on_stdout = a.alerts.as_deref() == Some(std::path::Path::new("-"));
        let mut lines: Box<dyn Write> = if alerts_on_stdout {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(std::io::stdout().lock())
        };
        for d in &summary.detections {
            if writeln!(lines, "{}", detection_line(d)).is_err() {
                break;
            }
        }
        drop(lines);
        print_summary(&summary, live);
    }
    if live {
        append_stats(&a.out.join("stats.jsonl"), &counters, "exit");
    }
    if let Some(line) = outlier_line(&summary, reorder_ms) {
        eprintln!("{line}");
    }
    for p in &summary.damaged {
        let kept = match p.error {
            CaptureError::Truncated { .. } => "",
            CaptureError::Corrupt { .. } => "; the packets before it were read",
            _ => "; not read",
        };
        eprintln!("scanwatch: warning: damaged input: {}{kept}", p.error);
    }
    if let Some(e) = &summary.capture_error {
        eprintln!(
            "scanwatch: warning: {e}; everything before that point was processed and written"
        );
        return Ok(ExitCode::from(1));
    }
    if !summary.damaged.is_empty() {
        return Ok(ExitCode::from(1));
    }
    if summary.alerts_closed {
        // As a tool killed by SIGPIPE: the reader of the alerts went away.
        // Every file was finished first.
        return Ok(ExitCode::from(141));
    }
    Ok(ExitCode::SUCCESS)
}

const DAY_MS: u64 = 86_400_000;

/// The reorder window in force: as given, else 300 ms live and a day on
/// files (latency matters live; a file is best read as if sorted).
/// `--retain-days` and `--retain-gib`, checked.
fn retention(a: &RunArgs) -> Result<scanwatch_sink::Retention> {
    for (flag, v) in [
        ("--retain-days", a.retain_days),
        ("--retain-gib", a.retain_gib),
    ] {
        anyhow::ensure!(
            v.is_none_or(|v| v.is_finite() && v > 0.0),
            "{flag}: give a number above 0"
        );
    }
    Ok(scanwatch_sink::Retention {
        days: a.retain_days,
        max_bytes: a.retain_gib.map(|g| (g * (1u64 << 30) as f64) as u64),
    })
}

fn reorder_window_ms(a: &RunArgs) -> u64 {
    a.reorder_window
        .unwrap_or(if a.interfaces.is_empty() { DAY_MS } else { 300 })
}

/// One warning line when packets were left out as outliers of the packet
/// clock: how many of each kind, and where the first ones are.
fn outlier_line(s: &Summary, reorder_ms: u64) -> Option<String> {
    let c = &s.counts;
    let total = c.outliers_late + c.outliers_ahead + c.outliers_out_of_range;
    if total == 0 {
        return None;
    }
    let first: Vec<String> = s
        .outliers
        .iter()
        .take(3)
        .map(|o| {
            format!(
                "{} packet {} dated {} ({})",
                o.input,
                o.packet,
                scanwatch_model::eve_timestamp(o.ts),
                o.kind.name()
            )
        })
        .collect();
    Some(format!(
        "scanwatch: warning: {total} packets left out as outside the stream's time ({} late: more than --reorder-window {reorder_ms} ms behind; {} ahead: a lone jump the next packet did not follow; {} out of range: before 1995 or after 2099); first: {}",
        c.outliers_late,
        c.outliers_ahead,
        c.outliers_out_of_range,
        first.join("; ")
    ))
}

/// Becomes `user` for good: its supplementary groups, its group, then its
/// uid (in that order: after setuid we could no longer change groups).
fn drop_privileges(user: &str) -> Result<()> {
    use std::ffi::CString;
    let name = CString::new(user).context("--user: a user name has no NUL byte")?;
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; buf outlives pw's strings.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        bail!("--user {user}: no such user");
    }
    let (uid, gid) = (pw.pw_uid, pw.pw_gid);
    // SAFETY: plain system calls on values we own.
    unsafe {
        if libc::initgroups(name.as_ptr(), gid) != 0 {
            bail!(
                "--user {user}: cannot set its groups: {} (dropping privileges needs root)",
                std::io::Error::last_os_error()
            );
        }
        if libc::setgid(gid) != 0 {
            bail!(
                "--user {user}: setgid failed: {}",
                std::io::Error::last_os_error()
            );
        }
        if libc::setuid(uid) != 0 {
            bail!(
                "--user {user}: setuid failed: {}",
                std::io::Error::last_os_error()
            );
        }
        if uid != 0 && (libc::setuid(0) == 0 || libc::geteuid() == 0) {
            bail!("--user {user}: root privileges could not be given up");
        }
    }
    Ok(())
}

fn signals(cfg: &PipelineConfig) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::flag;
    for sig in [SIGINT, SIGTERM] {
        // A second signal while shutting down exits at once.
        flag::register_conditional_shutdown(sig, 130, cfg.shutdown.clone())?;
        flag::register(sig, cfg.shutdown.clone())?;
    }
    flag::register(SIGHUP, cfg.rotate.clone())?;
    Ok(())
}

fn report_loop(
    c: &Counters,
    done: &AtomicBool,
    bar: bool,
    stats_every: Option<Duration>,
    stats_path: &std::path::Path,
    quiet: bool,
) {
    let start = Instant::now();
    let mut last_stats = Instant::now();
    let mut drew = false;
    while !done.load(Relaxed) {
        // Woken early by unpark() at the end, so the run does not wait out
        // the rest of a tick.
        std::thread::park_timeout(Duration::from_millis(200));
        if done.load(Relaxed) {
            break;
        }
        if bar {
            let (r, t) = (c.input_read.load(Relaxed), c.input_total.load(Relaxed));
            let pk = c.packets.load(Relaxed);
            let secs = start.elapsed().as_secs_f64().max(1e-6);
            let pct = if t > 0 {
                (r as f64 / t as f64 * 100.0).min(100.0)
            } else {
                0.0
            };
            let width = 30usize;
            let filled = (pct / 100.0 * width as f64) as usize;
            eprint!(
                "\r[{}{}] {:5.1}%  {} packets  {:.0} pkt/s  {} scans ",
                "#".repeat(filled),
                "-".repeat(width - filled),
                pct,
                pk,
                pk as f64 / secs,
                c.scans_started.load(Relaxed)
            );
            let _ = std::io::stderr().flush();
            drew = true;
        }
        if let Some(every) = stats_every {
            if last_stats.elapsed() >= every {
                last_stats = Instant::now();
                if !quiet {
                    eprintln!("{}", stats_line(c));
                }
                append_stats(stats_path, c, "periodic");
            }
        }
    }
    if drew {
        eprint!("\r{}\r", " ".repeat(90));
    }
}

fn stats_line(c: &Counters) -> String {
    format!(
        "scanwatch: received {} (kernel {}), dropped by kernel {}, by interface {}, by us {} packets; {} flows, {} active scans, {} detections",
        c.packets.load(Relaxed),
        c.kernel_received.load(Relaxed),
        c.kernel_dropped.load(Relaxed),
        c.if_dropped.load(Relaxed),
        c.queue_drop_packets.load(Relaxed),
        c.flows.load(Relaxed),
        c.active_scans.len(),
        c.detections.load(Relaxed),
    )
}

fn append_stats(path: &std::path::Path, c: &Counters, kind: &str) {
    let line = serde_json::json!({
        "timestamp": scanwatch_model::eve_timestamp(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or(0)
        ),
        "event_type": "stats",
        "kind": kind,
        "received": c.packets.load(Relaxed),
        "kernel_received": c.kernel_received.load(Relaxed),
        "kernel_dropped": c.kernel_dropped.load(Relaxed),
        "if_dropped": c.if_dropped.load(Relaxed),
        "queue_drops": c.queue_drop_packets.load(Relaxed),
        "flows": c.flows.load(Relaxed),
        "flows_evicted": c.flows_evicted.load(Relaxed),
        "sources_evicted": c.sources_evicted.load(Relaxed),
        "outliers": {
            "late": c.outliers_late.load(Relaxed),
            "ahead": c.outliers_ahead.load(Relaxed),
            "out_of_range": c.outliers_out_of_range.load(Relaxed),
            "first": c.outliers.lock().map(|v| v.iter().take(8).map(|o| serde_json::json!({
                "kind": o.kind.name(),
                "input": o.input,
                "packet": o.packet,
                "ts": scanwatch_model::eve_timestamp(o.ts),
            })).collect::<Vec<_>>()).unwrap_or_default(),
        },
        "reordered": c.reordered.load(Relaxed),
        "reorder_overflow": c.reorder_overflow.load(Relaxed),
        "active_scans": c.active_scans.len(),
        "active": active_scans(c, 20),
        "detections": c.detections.load(Relaxed),
    });
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// The largest scans in progress (by probes), at most `most`, as the stats
/// line lists them.
fn active_scans(c: &Counters, most: usize) -> serde_json::Value {
    let mut v: Vec<_> = c
        .active_scans
        .iter()
        .map(|e| (e.key().0, e.key().1, e.value().clone()))
        .collect();
    v.sort_by(|a, b| b.2.probes.cmp(&a.2.probes).then(a.0.cmp(&b.0)));
    v.truncate(most);
    v.into_iter()
        .map(|(scanner, p, a)| {
            serde_json::json!({
                "scanner": scanner.to_string(),
                "proto": proto::name(p),
                "kind": a.kind.name(),
                "detection_id": a.detection_id,
                "first": scanwatch_model::eve_timestamp(a.first),
                "last": scanwatch_model::eve_timestamp(a.last),
                "targets": a.targets,
                "ports": a.ports,
                "probes": a.probes,
                "open": a.open,
            })
        })
        .collect()
}

/// One line per detection, as a defender wants to read it.
pub fn detection_line(d: &Detection) -> String {
    let ports = if d.ports.len() <= 8 {
        d.ports
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(",")
    } else {
        format!(
            "{}..{} ({} ports)",
            d.ports[0],
            d.ports[d.ports.len() - 1],
            d.ports.len()
        )
    };
    let open = if d.open.is_empty() {
        "every door locked".to_string()
    } else if d.open.len() <= 6 {
        format!("OPEN: {}", d.open.join(" "))
    } else {
        format!(
            "OPEN: {} ... ({} open)",
            d.open[..6].join(" "),
            d.open.len()
        )
    };
    format!(
        "{} {} {} scan: {} targets, {} ports [{}], {} probes ({} answered, {} rejected, {} unanswered) by {}; {}",
        d.scanner,
        d.kind.name(),
        proto::name(d.proto),
        d.dst_count,
        d.port_count,
        ports,
        d.probes,
        d.answered,
        d.rejected,
        d.unanswered,
        d.detector,
        open
    )
}

fn print_summary(s: &Summary, live: bool) {
    let c = &s.counts;
    let rate = c.packets as f64 / s.seconds.max(1e-9);
    eprintln!(
        "scanwatch: {} packets ({} IP, {} not IP, {} undecodable), {:.1} MB in {:.2} s ({:.0} packets/s); {} flows; {} scans detected; {} alerts",
        c.packets,
        c.ip_packets,
        c.not_ip,
        c.decode_errors,
        c.bytes as f64 / 1e6,
        s.seconds,
        rate,
        c.flows.max(s.flow_stats.flows_ended),
        s.detection_count,
        s.alerts,
    );
    if s.flow_stats.evicted > 0 || s.detect_stats.sources_evicted > 0 {
        eprintln!(
            "scanwatch: caps reached: {} flows and {} sources evicted (raise --max-memory, or --max-flows / --max-sources)",
            s.flow_stats.evicted, s.detect_stats.sources_evicted
        );
    }
    if s.detect_stats.sketches_denied > 0 {
        eprintln!(
            "scanwatch: caps reached: {} busy sources got no sketch slot, so a random scan among them is seen only through its exact contacts (raise --max-memory)",
            s.detect_stats.sketches_denied
        );
    }
    if !s.damaged.is_empty() {
        let names: Vec<String> = s
            .damaged
            .iter()
            .map(|p| p.path.display().to_string())
            .collect();
        eprintln!(
            "scanwatch: {} damaged input(s), everything else was read: {}",
            names.len(),
            names.join(", ")
        );
    }
    if live {
        if let Some(l) = s.live {
            eprintln!(
                "scanwatch: kernel received {}, dropped {}, interface dropped {}; our queue dropped {} packets",
                l.received, l.kernel_dropped, l.if_dropped, c.queue_drop_packets
            );
        }
    }
}

/// The machine's host name, for the alerts' `host` when no `--sensor` is
/// given (as Suricata's `sensor-name` defaults to it).
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let name = name.trim();
    (!name.is_empty() && name.len() <= 255).then(|| name.to_string())
}
