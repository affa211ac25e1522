//! `scanwatch run`: tcpdump's habits (`-i`, `-r`, `-w`, `-s`, `-p`, `-F`,
//! a filter as trailing words), a progress bar on files, periodic stats
//! (stderr and `stats.jsonl`; live by default, on files when asked),
//! Ctrl-C/SIGTERM to stop cleanly, SIGHUP to start new files and reopen the
//! alerts and stats files (logrotate).

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
    /// Detector shards (default: threads / 4, at least 2).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Capture threads per live interface (default 1). More than one joins
    /// them in a PACKET_FANOUT group (hash mode: both directions of a flow
    /// reach one thread; the kernel reassembles IPv4 fragments first), each
    /// reading, decoding and dispatching its share. Linux only; not for -r.
    #[arg(long, value_name = "N")]
    pub capture_threads: Option<usize>,
    /// TOML config file: [run] (every other option here, named as its
    /// flag), [flow] and [detect]. Flags override it; a list flag replaces
    /// the file's list. See `scanwatch config check|show`.
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
    /// Print counters every SECS seconds of wall time on stderr and append
    /// them to DIR/stats.jsonl, rates since the previous line (default: 10
    /// on live capture, off on files; 0 turns them off).
    #[arg(long, value_name = "SECS")]
    pub stats_every: Option<u64>,
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
    /// Unanswered probes resolve after this many seconds (an answer that
    /// comes later, while the flow lives, still counts: a second attempt of
    /// the contact, answered).
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
    /// Where flow records go: `table` (the flows table, in --format),
    /// `zeek-json` (DIR/conn.log, Zeek's JSON conn.log lines, for log
    /// shippers and Zeek-log tools), or both, comma-separated.
    #[arg(long, value_name = "LIST", default_value = "table", value_delimiter = ',', value_parser = ["table", "zeek-json"])]
    pub flows_format: Vec<String>,
    /// Start new table parts every SECS seconds (wall clock), besides every
    /// hour of packet time, by rows, and on SIGHUP, so the last minutes of
    /// flows are readable. Default: 300 on live interfaces, off on files;
    /// 0 turns it off.
    #[arg(long = "rotate", value_name = "SECS")]
    pub rotate_secs: Option<u64>,
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
    /// Push each new scanner's STIX indicator and sighting to a TAXII 2.1
    /// collection within seconds of its start alert (and new versions as
    /// it grows); queued in --taxii-spool and retried while the server is
    /// away.
    #[command(flatten)]
    pub taxii: crate::taxii::TaxiiArgs,
    /// Where objects wait for the TAXII server (fsync'd; sent first by the
    /// next run). Default: DIR/taxii-spool.
    #[arg(long, value_name = "DIR", requires = "url")]
    pub taxii_spool: Option<PathBuf>,
    /// Name of the organisation that shares (the STIX identity), with
    /// --taxii.
    #[arg(long, value_name = "NAME", default_value = "scanwatch sensor operator")]
    pub taxii_identity: String,
    /// TLP 2.0 marking of the objects pushed with --taxii.
    #[arg(long, value_enum, default_value = "amber")]
    pub taxii_tlp: crate::stix::Tlp,
    /// BPF filter expression (as tcpdump's trailing arguments).
    #[arg(trailing_var_arg = true, value_name = "EXPRESSION")]
    pub filter: Vec<String>,
}

/// The options in force: the flags, and for each option not given on the
/// command line the config file's `[run]` value. `m` tells which flags with
/// a default were given; without it, a value equal to the default counts as
/// not given.
pub fn resolve(mut a: RunArgs, m: Option<&clap::ArgMatches>) -> Result<RunArgs> {
    let file = config::load(a.config.as_deref())?.run;
    let dflt = crate::eval::blank_run_args();
    let given = |id: &str, same_as_default: bool| match m {
        Some(m) => m.value_source(id) == Some(clap::parser::ValueSource::CommandLine),
        None => !same_as_default,
    };
    // The file's value of a setting whose flag was not given.
    macro_rules! from_file {
        ($field:ident, $key:ident, $id:literal) => {
            if let Some(v) = file.$key.filter(|_| !given($id, a.$field == dflt.$field)) {
                a.$field = v;
            }
        };
    }
    if a.interfaces.is_empty() && a.read.is_empty() {
        if let Some(v) = file.interfaces {
            a.interfaces = v;
        }
        if let Some(v) = file.read {
            a.read = v;
        }
    }
    if a.filter.is_empty() && a.filter_file.is_none() {
        a.filter_file = file.filter_file;
        if let Some(f) = file.filter {
            a.filter = vec![f];
        }
    }
    from_file!(out, output, "out");
    a.alerts = a.alerts.or(file.alerts);
    a.sensor = a.sensor.or(file.sensor);
    from_file!(format, format, "format");
    a.no_flows = a.no_flows || file.no_flows == Some(true);
    a.quiet = a.quiet || file.quiet == Some(true);
    a.threads = a.threads.or(file.threads);
    a.shards = a.shards.or(file.shards);
    a.capture_threads = a.capture_threads.or(file.capture_threads);
    a.user = a.user.or(file.user);
    a.no_promisc = a.no_promisc || file.promiscuous == Some(false);
    from_file!(snaplen, snaplen, "snaplen");
    from_file!(buffer_mib, buffer_mib, "buffer_mib");
    a.stats_every = a.stats_every.or(file.stats_every);
    a.reorder_window = a.reorder_window.or(file.reorder_window_ms);
    from_file!(max_memory, max_memory_mib, "max_memory");
    from_file!(max_part_rows, max_part_rows, "max_part_rows");
    from_file!(flows_format, flows_format, "flows_format");
    a.rotate_secs = a.rotate_secs.or(file.rotate_secs);
    a.retain_days = a.retain_days.or(file.retain_days);
    a.retain_gib = a.retain_gib.or(file.retain_gib);
    Ok(a)
}

/// Builds the pipeline configuration from flags and config file.
pub fn pipeline_config(a: &RunArgs) -> Result<PipelineConfig> {
    Ok(effective(a)?.0)
}

/// The pipeline configuration, and the flow settings it was made from
/// (flags over file over defaults).
pub fn effective(a: &RunArgs) -> Result<(PipelineConfig, config::FlowSettings)> {
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
    if !a.allow_scanners.is_empty() {
        detect.allow_scanners = a.allow_scanners.clone();
    }
    if !a.allow_services.is_empty() {
        detect.allow_services = a.allow_services.clone();
    }
    if !a.home_net.is_empty() {
        detect.home_net = a.home_net.iter().map(|s| s.trim().to_string()).collect();
    }
    if let Some(s) = a.scan_idle {
        detect.scan_idle_secs = s;
    }
    detect
        .validate()
        .map_err(|e| config::locate(a.config.as_deref(), e.into()))?;
    let reorder_ms = reorder_window_ms(a);
    anyhow::ensure!(
        reorder_ms <= DAY_MS,
        "--reorder-window is at most a day ({DAY_MS} ms)"
    );
    let mut cfg = PipelineConfig {
        flow: fs
            .to_config()
            .map_err(|e| config::locate(a.config.as_deref(), e))?,
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
        cfg.shards = scanwatch_pipeline::default_shards(t);
    }
    if let Some(s) = a.shards {
        anyhow::ensure!((1..=64).contains(&s), "--shards must be between 1 and 64");
        cfg.shards = s;
    }
    anyhow::ensure!(
        a.max_memory >= 256,
        "--max-memory must be at least 256 MiB (below that, fixed buffers dominate)"
    );
    let least = scanwatch_pipeline::MemoryCaps::min_budget_mib(cfg.shards, cfg.threads);
    anyhow::ensure!(
        a.max_memory >= least,
        "--max-memory {} is too small for {} flow workers and {} detector shards: their buffers and queues alone take {} MiB; give at least {least} MiB, or fewer --threads",
        a.max_memory,
        cfg.threads,
        cfg.shards,
        scanwatch_pipeline::MemoryCaps::fixed_bytes(cfg.shards, cfg.threads) >> 20
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
    Ok((cfg, fs))
}

/// `scanwatch config show`: the configuration in force (file, flags,
/// defaults, and the caps the memory budget gives) as a config file.
pub fn show(a: RunArgs, m: Option<&clap::ArgMatches>) -> Result<ExitCode> {
    let a = resolve(a, m)?;
    check_sensor(&a)?;
    retention(&a)?;
    let (cfg, mut flow) = effective(&a)?;
    flow.max_flows = Some(cfg.flow.max_flows);
    let (filter, filter_file) = match &a.filter_file {
        Some(f) => (None, Some(f.clone())),
        None => (bpf_filter(&a)?, None),
    };
    let run = config::RunSettings {
        interfaces: (!a.interfaces.is_empty()).then(|| a.interfaces.clone()),
        read: (!a.read.is_empty()).then(|| a.read.clone()),
        filter,
        filter_file,
        output: Some(a.out.clone()),
        alerts: a.alerts.clone(),
        sensor: a.sensor.clone(),
        format: Some(a.format.clone()),
        no_flows: Some(a.no_flows),
        quiet: Some(a.quiet),
        threads: Some(cfg.threads),
        shards: Some(cfg.shards),
        capture_threads: (!a.interfaces.is_empty()).then(|| a.capture_threads.unwrap_or(1)),
        user: a.user.clone(),
        promiscuous: Some(!a.no_promisc),
        snaplen: Some(a.snaplen),
        buffer_mib: Some(a.buffer_mib),
        stats_every: Some(stats_every(&a, !a.interfaces.is_empty()).map_or(0, |d| d.as_secs())),
        reorder_window_ms: Some(reorder_window_ms(&a)),
        max_memory_mib: Some(a.max_memory),
        max_part_rows: Some(a.max_part_rows),
        flows_format: Some(a.flows_format.clone()),
        rotate_secs: Some(
            a.rotate_secs
                .unwrap_or(if a.interfaces.is_empty() { 0 } else { 300 }),
        ),
        retain_days: a.retain_days,
        retain_gib: a.retain_gib,
    };
    let file = config::FileConfig {
        run,
        flow,
        detect: cfg.detect,
        caps: GivenCaps::default(),
    };
    let text = toml::to_string(&file).context("config show")?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn check_sensor(a: &RunArgs) -> Result<()> {
    if let Some(name) = &a.sensor {
        anyhow::ensure!(
            config::sensor_name_ok(name),
            "--sensor {name:?}: use 1-64 letters, digits, '-', '_' or '.'"
        );
    }
    Ok(())
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
    let capture_threads = a.capture_threads.unwrap_or(1);
    if !a.read.is_empty() && a.capture_threads.is_some_and(|n| n != 1) {
        bail!("--capture-threads is for live interfaces (-i): a file is read by one thread (use --threads for the flow workers)");
    }
    anyhow::ensure!(
        (1..=scanwatch_capture::MAX_CAPTURE_THREADS).contains(&capture_threads),
        "--capture-threads must be between 1 and {}",
        scanwatch_capture::MAX_CAPTURE_THREADS
    );
    let filter = bpf_filter(a)?;
    let mut sources: Vec<Box<dyn PacketSource>> = Vec::new();
    if !a.read.is_empty() {
        sources.push(Box::new(FileSource::open(&a.read, filter.clone())?));
    }
    for (k, iface) in a.interfaces.iter().enumerate() {
        let opts = LiveOptions {
            snaplen: a.snaplen,
            promisc: !a.no_promisc,
            buffer_size: a.buffer_mib.saturating_mul(1 << 20),
            filter: filter.clone(),
            ..LiveOptions::default()
        };
        // One fanout group per interface, its id from the pid.
        let group = std::process::id().wrapping_add(k as u32 * 7919);
        for s in LiveSource::open_fanout(iface, &opts, capture_threads, group)? {
            sources.push(Box::new(s));
        }
    }
    Ok(sources)
}

pub fn main(a: RunArgs, m: Option<&clap::ArgMatches>) -> Result<ExitCode> {
    let a = resolve(a, m)?;
    check_sensor(&a)?;
    let mut cfg = pipeline_config(&a)?;
    // The TAXII settings and password file are read before privileges are
    // dropped (the file may be root's only); the spool is opened after, so
    // that the user we become owns what it creates.
    let taxii_client = match &a.taxii.url {
        Some(_) => Some(crate::taxii::Client::new(&a.taxii)?),
        None => None,
    };
    let sources = open_sources(&a)?;
    if let Some(user) = &a.user {
        drop_privileges(user)?;
    }
    let live = !a.interfaces.is_empty();
    cfg.out_dir = Some(a.out.clone());
    cfg.write_flows = !a.no_flows;
    cfg.flow_table = a.flows_format.iter().any(|f| f == "table");
    cfg.zeek_conn = a.flows_format.iter().any(|f| f == "zeek-json");
    let rotate = a.rotate_secs.unwrap_or(if live { 300 } else { 0 });
    cfg.rotate_every = (rotate > 0).then(|| std::time::Duration::from_secs(rotate));
    cfg.sink.max_part_rows = a.max_part_rows.max(1);
    cfg.retention = retention(&a)?;
    cfg.sink.format = if a.format == "parquet" {
        scanwatch_sink::Format::Parquet
    } else {
        scanwatch_sink::Format::Arrow
    };
    if let Some(name) = &a.sensor {
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
    // The TAXII push.
    let pusher = match taxii_client {
        Some(client) => {
            let spool = a
                .taxii_spool
                .clone()
                .unwrap_or_else(|| a.out.join("taxii-spool"));
            let origin = crate::taxii_live::Origin {
                stix: crate::stix::StixOptions {
                    identity: a.taxii_identity.clone(),
                    tlp: a.taxii_tlp,
                    ..Default::default()
                },
                sensor: a
                    .sensor
                    .clone()
                    .or_else(host_name)
                    .unwrap_or_else(|| "default".into()),
            };
            let (tx, p) = crate::taxii_live::start(client, &spool, origin)?;
            cfg.event_tap = Some(tx);
            Some(p)
        }
        None => None,
    };
    signals(&cfg)?;
    let counters = Arc::new(Counters::default());
    let done = Arc::new(AtomicBool::new(false));
    let reporter = {
        let counters = counters.clone();
        let done = done.clone();
        let show_bar = !a.quiet && !live && std::io::stderr().is_terminal();
        let stats = stats_every(&a, live).map(|every| Stats {
            every,
            path: a.out.join("stats.jsonl"),
            quiet: a.quiet,
            live,
            last: Mark::now(&counters),
            taxii: pusher.as_ref().map(|p| p.stats.clone()),
        });
        std::thread::spawn(move || report_loop(&counters, &done, show_bar, stats))
    };
    let result = scanwatch_pipeline::run(sources, cfg, counters.clone());
    // The pipeline is done and its event channel closed: the push thread
    // tries for a bounded time to empty its spool, then says what is left.
    let taxii_left = pusher.map(|p| p.finish(a.quiet));
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
        print_summary(&summary, live, a.max_memory);
        if a.capture_threads.is_some_and(|n| n > 1) {
            // How the kernel spread the packets over the capture threads.
            if let Ok(v) = counters.live_inputs.lock() {
                let each: Vec<String> = v.iter().map(|s| s.received.to_string()).collect();
                eprintln!(
                    "scanwatch: kernel received per capture thread: {}",
                    each.join(", ")
                );
            }
        }
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
    if taxii_left.is_some_and(|t| t.failed.load(Relaxed) > 0) {
        // Objects the server refused: said above, kept in refused.jsonl.
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
    let total = c.outliers_late + c.outliers_late_held + c.outliers_ahead + c.outliers_out_of_range;
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
        "scanwatch: warning: {total} packets left out as outside the stream's time ({} late: more than --reorder-window {reorder_ms} ms behind; {} late behind the hold cap: out of order by more than the {} packets held, sort the capture first (reordercap); {} ahead: a lone jump the next packet did not follow; {} out of range: before 1995 or after 2099); first: {}",
        c.outliers_late,
        c.outliers_late_held,
        scanwatch_pipeline::ClockConfig::default().max_held,
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

/// The stats interval in force: `--stats-every` as given (0: none), else
/// 10 s on live capture and none on files.
fn stats_every(a: &RunArgs, live: bool) -> Option<Duration> {
    match a.stats_every {
        Some(0) => None,
        Some(s) => Some(Duration::from_secs(s)),
        None if live => Some(Duration::from_secs(10)),
        None => None,
    }
}

/// The periodic stats: where they go, and the counters at the previous
/// line (rates are per interval, not since the start).
struct Stats {
    every: Duration,
    path: PathBuf,
    quiet: bool,
    /// Live capture: the line names the kernel's counters too.
    live: bool,
    last: Mark,
    taxii: Option<Arc<crate::taxii_live::TaxiiStats>>,
}

/// The counters a rate is taken over, and when they were read.
#[derive(Clone, Copy)]
struct Mark {
    at: Instant,
    packets: u64,
    bytes: u64,
    flows_ended: u64,
}

impl Mark {
    fn now(c: &Counters) -> Mark {
        Mark {
            at: Instant::now(),
            packets: c.packets.load(Relaxed),
            bytes: c.bytes.load(Relaxed),
            flows_ended: c.flows.load(Relaxed),
        }
    }
}

fn report_loop(c: &Counters, done: &AtomicBool, bar: bool, mut stats: Option<Stats>) {
    let start = Instant::now();
    let mut drew = false;
    while !done.load(Relaxed) {
        // Woken early by unpark() at the end, so the run does not wait out
        // the rest of a tick.
        std::thread::park_timeout(Duration::from_millis(200));
        if done.load(Relaxed) {
            break;
        }
        if let Some(st) = stats.as_mut() {
            if st.last.at.elapsed() >= st.every {
                let (mut record, line) = stats_record(c, &mut st.last, "periodic", st.live);
                if let Some(t) = &st.taxii {
                    record["taxii"] = t.json();
                }
                if !st.quiet {
                    if drew {
                        // The stats line replaces the bar, drawn again below.
                        eprint!("\r{}\r", " ".repeat(90));
                    }
                    eprintln!("{line}");
                }
                append_stats(&st.path, &record);
            }
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
    }
    if drew {
        eprint!("\r{}\r", " ".repeat(90));
    }
    // The last record: the run's final counters (the interval since the
    // previous record), to the file only: the summary says the same.
    if let Some(st) = stats.as_mut() {
        let (mut record, _) = stats_record(c, &mut st.last, "exit", st.live);
        if let Some(t) = &st.taxii {
            record["taxii"] = t.json();
        }
        append_stats(&st.path, &record);
    }
}

/// What the scans in progress are grouped by in the stats.
/// Scans in progress are grouped by direction (inbound, outbound,
/// internal, external) in the stats.
const SCAN_GROUP: &str = "direction";

fn scan_group(a: &scanwatch_pipeline::ActiveScan) -> &'static str {
    a.direction.name()
}

fn wall_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// One stats record (for `stats.jsonl`) and its line for a person (for
/// stderr), with rates since `last`, which becomes now.
fn stats_record(
    c: &Counters,
    last: &mut Mark,
    kind: &str,
    live: bool,
) -> (serde_json::Value, String) {
    let now = Mark::now(c);
    let secs = now.at.duration_since(last.at).as_secs_f64();
    let packets = now.packets.saturating_sub(last.packets);
    let bytes = now.bytes.saturating_sub(last.bytes);
    let flows_ended = now.flows_ended.saturating_sub(last.flows_ended);
    let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let (pps, bps) = (per_sec(packets), per_sec(bytes));
    *last = now;

    let clock = c.clock.load(Relaxed);
    let packet_time = (clock > 0).then(|| scanwatch_model::eve_timestamp(clock));
    let wall = scanwatch_model::eve_timestamp(wall_micros());
    let mut groups = std::collections::BTreeMap::<&str, u64>::new();
    for e in c.active_scans.iter() {
        *groups.entry(scan_group(e.value())).or_default() += 1;
    }
    let active_scans = c.active_scans.len();
    let flows_active = c.flows_active.load(Relaxed).max(0);
    let (k_recv, k_drop, if_drop) = (
        c.kernel_received.load(Relaxed),
        c.kernel_dropped.load(Relaxed),
        c.if_dropped.load(Relaxed),
    );
    let queue_drops = c.queue_drop_packets.load(Relaxed);
    // Fanout members' packets from before their group was complete.
    let skipped_at_start: u64 = c
        .live_inputs
        .lock()
        .map(|v| v.iter().map(|s| s.skipped_at_start).sum())
        .unwrap_or(0);
    let (flows_evicted, sources_evicted) = (
        c.flows_evicted.load(Relaxed),
        c.sources_evicted.load(Relaxed),
    );
    let outliers = (
        c.outliers_late.load(Relaxed),
        c.outliers_ahead.load(Relaxed),
        c.outliers_out_of_range.load(Relaxed),
        c.outliers_late_held.load(Relaxed),
    );
    let detections = c.detections.load(Relaxed);

    let record = serde_json::json!({
        "timestamp": wall,
        "packet_time": packet_time,
        "event_type": "stats",
        "kind": kind,
        "interval": {
            "secs": (secs * 1000.0).round() / 1000.0,
            "packets": packets,
            "bytes": bytes,
            "packets_per_sec": pps.round() as u64,
            "bytes_per_sec": bps.round() as u64,
            "flows_ended": flows_ended,
        },
        "received": now.packets,
        "received_bytes": now.bytes,
        "kernel_received": k_recv,
        "kernel_dropped": k_drop,
        "if_dropped": if_drop,
        "queue_drops": queue_drops,
        "skipped_at_start": skipped_at_start,
        "flows_active": flows_active,
        "flows_ended": now.flows_ended,
        "flows_evicted": flows_evicted,
        "sources_evicted": sources_evicted,
        "retention_removed": {
            "parts": c.retention_removed_parts.load(Relaxed),
            "bytes": c.retention_removed_bytes.load(Relaxed),
        },
        "flows_paused": c.flows_paused.load(Relaxed),
        "disk_full_dropped": {
            "flow_rows": c.flow_rows_dropped.load(Relaxed),
            "detections": c.detections_dropped.load(Relaxed),
            "alerts": c.alerts_dropped.load(Relaxed),
            "conn_log_lines": c.zeek_rows_dropped.load(Relaxed),
        },
        "outliers": {
            "late": outliers.0,
            "late_held": outliers.3,
            "ahead": outliers.1,
            "out_of_range": outliers.2,
            "first": c.outliers.lock().map(|v| v.iter().take(8).map(|o| serde_json::json!({
                "kind": o.kind.name(),
                "input": o.input,
                "packet": o.packet,
                "ts": scanwatch_model::eve_timestamp(o.ts),
            })).collect::<Vec<_>>()).unwrap_or_default(),
        },
        "reordered": c.reordered.load(Relaxed),
        "reorder_overflow": c.reorder_overflow.load(Relaxed),
        "active_scans": active_scans,
        "active_scans_by_direction": groups,
        "active": active_scans_top(c, 20),
        "detections": detections,
    });

    let by = if groups.is_empty() {
        String::new()
    } else {
        let g: Vec<String> = groups.iter().map(|(k, n)| format!("{k} {n}")).collect();
        format!(" (by {SCAN_GROUP}: {})", g.join(", "))
    };
    let outlier_total = outliers.0 + outliers.1 + outliers.2 + outliers.3;
    let outlier_part = if outlier_total > 0 {
        format!("; {outlier_total} outliers left out")
    } else {
        String::new()
    };
    // A file loses no packet: its line leaves the kernel's counters out.
    let dropped = if live {
        format!(
            "dropped: kernel {k_drop}, interface {if_drop}, queue {queue_drops} (of {} received, kernel {k_recv})",
            now.packets
        )
    } else {
        format!("{} packets read", now.packets)
    };
    let line = format!(
        "scanwatch: stats {} (packet time {}): {:.0} packets/s, {:.2} Mbit/s over {:.1} s ({} packets); {} flows active, {} ended; {}; evicted: {} flows, {} sources; {} scans in progress{}; {} detections{}",
        &wall[..19],
        packet_time.as_deref().map_or("none", |t| &t[..19]),
        pps,
        bps * 8.0 / 1e6,
        secs,
        packets,
        flows_active,
        now.flows_ended,
        dropped,
        flows_evicted,
        sources_evicted,
        active_scans,
        by,
        detections,
        outlier_part,
    );
    (record, line)
}

/// Appends one record to `stats.jsonl`. The file is opened for each record
/// (appending, created if missing), so a file moved away by logrotate is
/// followed by a new one at the next record, with or without SIGHUP.
fn append_stats(path: &std::path::Path, record: &serde_json::Value) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        // One write per record: a reader never sees half a line.
        let _ = f.write_all(format!("{record}\n").as_bytes());
    }
}

/// The largest scans in progress (by probes), at most `most`, as the stats
/// line lists them.
fn active_scans_top(c: &Counters, most: usize) -> serde_json::Value {
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
                "direction": a.direction.name(),
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
        "{} {} {} scan: {} targets, {} ports [{}], {} probes ({} answered, {} rejected, {} unanswered) by {}; {} ({})",
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
        open,
        d.direction.name()
    )
}

/// This process's peak resident memory so far, MiB: the kernel's
/// high-water mark of its memory since it started (`VmHWM`). Not
/// `getrusage`'s `ru_maxrss`, which keeps the peak of the process that
/// forked it (a big parent's RSS before the exec).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn print_summary(s: &Summary, live: bool, budget_mib: u64) {
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
    if !s.unsupported_links.is_empty() {
        let each: Vec<String> = s
            .unsupported_links
            .iter()
            .map(|(lt, n)| format!("{n} packets of link type {lt}"))
            .collect();
        eprintln!(
            "scanwatch: warning: {} (DLT/LINKTYPE numbers) that scanwatch does not decode, counted as undecodable: it reads Ethernet (with VLAN/QinQ/MPLS), Linux cooked (SLL, SLL2), raw IP and BSD loopback",
            each.join(", ")
        );
    }
    let f = &s.flow_stats;
    if f.late_answers + f.reordered_syns > 0 {
        eprintln!(
            "scanwatch: {} answers came after their probe's attempt timeout (each counted as a second attempt, answered); {} came ahead of their probe in the merged stream (taken as its answer)",
            f.late_answers, f.reordered_syns
        );
    }
    let d = &s.detect_stats;
    if s.flow_stats.evicted > 0
        || d.sources_evicted > 0
        || d.contacts_evicted > 0
        || d.targets_evicted > 0
        || d.target_contacts_evicted > 0
    {
        eprintln!(
            "scanwatch: caps reached: {} flows and {} sources evicted, {} contacts dropped, {} targets and {} target contacts evicted (raise --max-memory, or --max-flows / --max-sources)",
            s.flow_stats.evicted,
            d.sources_evicted,
            d.contacts_evicted,
            d.targets_evicted,
            d.target_contacts_evicted
        );
    }
    if let Some(peak) = peak_rss_mib() {
        eprintln!(
            "scanwatch: peak memory {peak:.0} MiB of the {budget_mib} MiB budget (--max-memory)"
        );
    }
    let lost = c.flow_rows_dropped + c.detections_dropped + c.alerts_dropped + c.zeek_rows_dropped;
    if lost > 0 {
        eprintln!(
            "scanwatch: disk full during the run: {} flow rows, {} detections, {} alerts, {} conn.log lines could not be written (everything else was)",
            c.flow_rows_dropped, c.detections_dropped, c.alerts_dropped, c.zeek_rows_dropped
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
            if l.skipped_at_start > 0 {
                eprintln!(
                    "scanwatch: {} packets stamped before all capture threads had joined their fanout group were left out (the start of the capture, not a loss)",
                    l.skipped_at_start
                );
            }
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
