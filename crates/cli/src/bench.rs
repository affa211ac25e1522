//! `scanwatch bench -r FILE`: measures, in one process on the same file,
//! (a) the plain read — every packet read by the same reader and nothing
//! else — and (b) the full pipeline with every output written, and prints
//! both with their ratio, flows, peak memory and the capture-to-detection
//! latency of batches, and the CPU time of each stage of (b): capture,
//! flow workers, detector shards, output. `--threads-list 1,2,4` repeats
//! (b) per thread count.

use crate::run::{pipeline_config, RunArgs};
use anyhow::{Context, Result};
use clap::Args;
use scanwatch_capture::{FileSource, Next, PacketSource};
use scanwatch_pipeline::{Counters, StageCpu, Summary};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Capture file (or directory of captures, merged by time) to measure on.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub file: PathBuf,
    /// Flow worker threads for the pipeline run (default: the machine's cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run the pipeline once per thread count in this list (e.g. 1,2,4).
    #[arg(long, value_delimiter = ',')]
    pub threads_list: Vec<usize>,
    /// Where the pipeline writes its outputs (default: a temporary folder,
    /// removed afterwards).
    #[arg(short = 'w', long = "write", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// TOML config file, as for `run`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

struct Plain {
    packets: u64,
    bytes: u64,
    seconds: f64,
}

fn plain_read(file: &PathBuf) -> Result<Plain> {
    let mut src = FileSource::open(std::slice::from_ref(file), None)?;
    let t = Instant::now();
    let (mut packets, mut bytes, mut touch) = (0u64, 0u64, 0u64);
    loop {
        match src.next_packet()? {
            Next::Packet(p) => {
                packets += 1;
                bytes += u64::from(p.wire_len);
                // Touch the bytes a decoder would, so the read is not free.
                touch = touch.wrapping_add(u64::from(p.data.get(12).copied().unwrap_or(0)));
            }
            Next::Idle | Next::Again => {}
            Next::End => break,
        }
    }
    std::hint::black_box(touch);
    Ok(Plain {
        packets,
        bytes,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// Reads `path` once, a MiB at a time, to bring it into the page cache (a
/// directory: each file in it).
fn warm_cache(path: &std::path::Path) -> std::io::Result<()> {
    use std::io::Read;
    if path.is_dir() {
        for e in std::fs::read_dir(path)? {
            let p = e?.path();
            if p.is_file() {
                warm_cache(&p)?;
            }
        }
        return Ok(());
    }
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf)? > 0 {}
    Ok(())
}

/// Peak resident memory of this process (VmHWM), bytes.
pub fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn pipeline(a: &BenchArgs, threads: Option<usize>, out: &PathBuf) -> Result<Summary> {
    let run_args = RunArgs {
        threads,
        config: a.config.clone(),
        ..crate::eval::blank_run_args()
    };
    let mut cfg = pipeline_config(&run_args)?;
    let _ = std::fs::remove_dir_all(out);
    cfg.out_dir = Some(out.clone());
    cfg.alerts = Some(out.join("alerts.jsonl"));
    let src: Box<dyn PacketSource> =
        Box::new(FileSource::open(std::slice::from_ref(&a.file), None)?);
    Ok(scanwatch_pipeline::run(
        vec![src],
        cfg,
        Arc::new(Counters::default()),
    )?)
}

/// A run's CPU time per stage, as JSON: each stage's threads, their CPU
/// seconds together and the busiest one's.
fn cpu_json(c: &StageCpu) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (name, t) in c.stages() {
        m.insert(
            name.into(),
            serde_json::json!({
                "threads": t.threads,
                "seconds": t.seconds,
                "busiest_seconds": t.busiest_seconds,
                "unread": t.unread,
            }),
        );
    }
    m.insert("total".into(), serde_json::json!(c.total_seconds()));
    serde_json::Value::Object(m)
}

/// `capture 0.42 s (1 thread), flow 1.39 s (2 threads, busiest 0.71 s), …;
/// total 3.02 s in 1.65 s: 1.83 cores busy`. The stages that do not divide
/// over more threads (one capture thread per input, one output thread)
/// are what a bigger machine still waits on.
fn cpu_line(c: &StageCpu, wall: f64) -> String {
    let mut parts = Vec::new();
    for (name, t) in c.stages() {
        let mut p = format!("{name} {:.2} s ({} thread", t.seconds, t.threads);
        if t.threads != 1 {
            p.push('s');
        }
        if t.threads > 1 {
            p.push_str(&format!(", busiest {:.2} s", t.busiest_seconds));
        }
        if t.unread > 0 {
            p.push_str(&format!(", {} unreadable", t.unread));
        }
        p.push(')');
        parts.push(p);
    }
    format!(
        "{}; total {:.2} s in {:.2} s: {:.2} cores busy",
        parts.join(", "),
        c.total_seconds(),
        wall,
        c.total_seconds() / wall.max(1e-9)
    )
}

pub fn main(a: BenchArgs) -> Result<ExitCode> {
    let tmp = a.out.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("scanwatch-bench-{}", std::process::id()))
    });
    // Warm the page cache so both runs read from memory: streamed through
    // one buffer, so that the peak memory reported is the pipeline's, not
    // the file's size.
    warm_cache(&a.file).with_context(|| format!("{}", a.file.display()))?;
    let plain = plain_read(&a.file)?;
    let counts: Vec<Option<usize>> = if a.threads_list.is_empty() {
        vec![a.threads]
    } else {
        a.threads_list.iter().map(|t| Some(*t)).collect()
    };
    let mut runs = Vec::new();
    for t in counts {
        let s = pipeline(&a, t, &tmp)?;
        runs.push((t, s));
    }
    if a.out.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let peak = peak_rss();
    let pps = |p: u64, s: f64| p as f64 / s.max(1e-9);
    let gbps = |b: u64, s: f64| b as f64 * 8.0 / s.max(1e-9) / 1e9;
    let default_threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut rows = Vec::new();
    for (t, s) in &runs {
        let lat = s.latency_us.as_ref();
        let q = |x: f64| lat.map(|h| h.value_at_quantile(x)).unwrap_or(0);
        rows.push(serde_json::json!({
            "threads": t.unwrap_or(default_threads),
            "packets": s.counts.packets,
            "bytes": s.counts.bytes,
            "seconds": s.seconds,
            "packets_per_sec": pps(s.counts.packets, s.seconds),
            "gbit_per_sec": gbps(s.counts.bytes, s.seconds),
            "ratio_to_plain_read": pps(s.counts.packets, s.seconds) / pps(plain.packets, plain.seconds),
            "flows": s.counts.flows,
            "flow_evictions": s.flow_stats.evicted,
            "detections": s.detection_count,
            "flow_table_bytes_peak": s.flow_table_bytes,
            "latency_us": {"p50": q(0.5), "p99": q(0.99), "p999": q(0.999), "max": lat.map(|h| h.max()).unwrap_or(0)},
            "cpu_seconds": cpu_json(&s.stage_cpu),
        }));
    }
    let report = serde_json::json!({
        "file": a.file.display().to_string(),
        "plain_read": {
            "packets": plain.packets,
            "bytes": plain.bytes,
            "seconds": plain.seconds,
            "packets_per_sec": pps(plain.packets, plain.seconds),
            "gbit_per_sec": gbps(plain.bytes, plain.seconds),
        },
        "pipeline": rows,
        "peak_rss_bytes": peak,
    });
    if a.json {
        println!("{report}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("file            {}", a.file.display());
    println!(
        "plain read      {} packets, {:.1} MB, {:.3} s: {:.0} packets/s, {:.2} Gbit/s",
        plain.packets,
        plain.bytes as f64 / 1e6,
        plain.seconds,
        pps(plain.packets, plain.seconds),
        gbps(plain.bytes, plain.seconds)
    );
    for r in &rows {
        println!(
            "pipeline x{:<2}    {} packets, {:.3} s: {:.0} packets/s, {:.2} Gbit/s, {:.2}x the plain read; {} flows, {} detections; batch latency p50 {} us, p99 {} us, p99.9 {} us, max {} us",
            r["threads"], r["packets"], r["seconds"].as_f64().unwrap_or(0.0),
            r["packets_per_sec"].as_f64().unwrap_or(0.0), r["gbit_per_sec"].as_f64().unwrap_or(0.0),
            r["ratio_to_plain_read"].as_f64().unwrap_or(0.0), r["flows"], r["detections"],
            r["latency_us"]["p50"], r["latency_us"]["p99"], r["latency_us"]["p999"], r["latency_us"]["max"],
        );
    }
    for (t, s) in &runs {
        println!(
            "  cpu x{:<2}       {}",
            t.unwrap_or(default_threads),
            cpu_line(&s.stage_cpu, s.seconds)
        );
    }
    println!("peak memory     {:.1} MB (VmHWM)", peak as f64 / 1e6);
    Ok(ExitCode::SUCCESS)
}
