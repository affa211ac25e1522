//! The config file end to end: `config check` names the key and line of
//! each problem, a file gives the same run as the equivalent flags, flags
//! override the file, and `config show` prints a file that reproduces the
//! run it describes.

use std::path::{Path, PathBuf};
use std::process::Output;
mod common;
use common::*;

fn pcaps() -> PathBuf {
    root().join("pcaps")
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

fn check(file: &Path) -> Output {
    bin().args(["config", "check"]).arg(file).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What a run decided, keyed by path below its output folder (a digest and
/// length of each): the alerts and the detections tables, byte for byte
/// (the flows tables' row order depends on the workers' timing, their
/// content is checked elsewhere).
fn results(out: &Path) -> Vec<(PathBuf, u64, usize)> {
    walk(out)
        .into_iter()
        .filter(|p| {
            p.ends_with("alerts.jsonl") || p.strip_prefix(out).unwrap().starts_with("detections")
        })
        .map(|p| {
            use std::hash::{Hash, Hasher};
            let bytes = std::fs::read(&p).unwrap();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut h);
            (
                p.strip_prefix(out).unwrap().to_path_buf(),
                h.finish(),
                bytes.len(),
            )
        })
        .collect()
}

/// The writer merges the detector shards' events by packet time, so the
/// alert lines and the detections rows come in one order whatever the
/// thread and shard counts and however their work interleaves. Before,
/// the same row set came in an order that changed from run to run (and
/// with the shard count).
#[test]
fn alerts_and_detections_are_the_same_bytes_at_any_thread_and_shard_count() {
    let d = tmpdir("conf-order");
    let o = bin()
        .args(["gen", "--flows", "20000", "--seed", "5", "-o", "mix.pcap"])
        .current_dir(&d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let mut first: Option<Vec<(PathBuf, u64, usize)>> = None;
    for (i, (threads, shards)) in [("1", "1"), ("4", "2"), ("2", "3"), ("4", "2")]
        .into_iter()
        .enumerate()
    {
        let out = format!("out{i}");
        let o = bin()
            .args(["run", "-q", "-r", "mix.pcap", "-w", &out])
            .args(["--threads", threads, "--shards", shards])
            .current_dir(&d)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let alerts = std::fs::read_to_string(d.join(&out).join("alerts.jsonl")).unwrap();
        assert!(alerts.lines().count() >= 40, "{alerts}");
        let got = results(&d.join(&out));
        assert!(got.len() >= 2, "{got:?}");
        match &first {
            None => first = Some(got),
            Some(want) => assert_eq!(&got, want, "--threads {threads} --shards {shards}"),
        }
    }
}

/// masscan's vertical scan finds doors faster than they are told (one
/// open_door event a second at most); the capture goes on for 26 s after
/// its last probe, so each deferred door falls due, and is told, at one
/// second after the previous door event: not at the closing, whatever the
/// thread and shard counts. A worker that told the shards its watermark
/// only now and then once let the last deferred door wait for the closing
/// (stamped at the scan's last probe, 0.18 s early) in some runs.
#[test]
fn a_door_due_before_the_capture_ends_is_told_at_its_due_time() {
    let d = tmpdir("conf-door");
    let cap = pcaps().join("masscan_syn_vertical_1-500.pcap");
    let mut first: Option<Vec<(PathBuf, u64, usize)>> = None;
    for (i, (threads, shards)) in [("1", "1"), ("2", "2"), ("4", "3"), ("2", "2")]
        .into_iter()
        .enumerate()
    {
        let out = d.join(format!("out{i}"));
        let o = bin()
            .args(["run", "-q", "-r"])
            .arg(&cap)
            .arg("-w")
            .arg(&out)
            .args(["--threads", threads, "--shards", shards])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let alerts = std::fs::read_to_string(out.join("alerts.jsonl")).unwrap();
        let doors: Vec<(String, i64)> = alerts
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["alert"]["context"]["scan"]["phase"] == "open_door")
            .map(|v| {
                let ts = v["timestamp"].as_str().unwrap().to_string();
                (ts.clone(), micros_of(&ts))
            })
            .collect();
        assert!(doors.len() >= 3, "{alerts}");
        for w in doors.windows(2) {
            assert!(
                w[1].1 - w[0].1 >= 1_000_000,
                "door events {} and {} less than a second apart (--threads {threads} --shards {shards})",
                w[0].0,
                w[1].0
            );
        }
        let got = results(&out);
        match &first {
            None => first = Some(got),
            Some(want) => assert_eq!(&got, want, "--threads {threads} --shards {shards}"),
        }
    }
}

/// An EVE timestamp (`2026-11-24T22:12:46.599322+0000`) as microseconds
/// since its day's midnight: enough to compare times of one capture.
fn micros_of(ts: &str) -> i64 {
    let t = &ts[11..26];
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
    ((n(0..2) * 60 + n(3..5)) * 60 + n(6..8)) * 1_000_000 + n(9..15)
}

#[test]
fn an_unknown_key_is_named_with_its_line_and_column() {
    let d = tmpdir("conf-unknown");
    let f = write(
        &d,
        "c.toml",
        "[run]\nsensor = \"edge-1\"\n  outptu = \"x\"\n\n[detect]\nblock_hosts = 10\n",
    );
    let o = check(&f);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(
        lines,
        [format!(
            "{}:3:3: run.outptu: unknown field `outptu`",
            f.display()
        )],
        "{}",
        text(&o)
    );
    // `run` refuses the file with the same place.
    let o = bin()
        .args(["run", "-q", "--config"])
        .arg(&f)
        .arg("-r")
        .arg(pcaps())
        .arg("-w")
        .arg(d.join("out"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(":3:3: run.outptu: unknown field"),
        "{}",
        text(&o)
    );
}

#[test]
fn bad_values_are_each_reported_at_their_key_or_element() {
    let d = tmpdir("conf-bad");
    let f = write(
        &d,
        "c.toml",
        r#"[run]
read = ["no/such/capture.pcap"]
format = "csv"

[flow]
udp_idle_secs = "sixty"

[detect]
home_net = [
    "10.0.0.0/8",
    "192.168.0.0/16",
    "10.0.0.300/8",
]
[[detect.windows]]
seconds = 300
horizontal = 20
vertical = 20
[[detect.windows]]
seconds = 3600
horizontal = 0.5
vertical = 40
"#,
    );
    let o = check(&f);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let got: Vec<String> = stdout(&o)
        .lines()
        .map(|l| l.strip_prefix(&format!("{}:", f.display())).unwrap().into())
        .map(|l: String| l.split(": ").take(2).collect::<Vec<_>>().join(": "))
        .collect();
    assert_eq!(
        got,
        [
            "2:9: run.read[0]",
            "3:1: run.format",
            "6:17: flow.udp_idle_secs",
            "12:5: detect.home_net[2]",
            "18:1: detect.windows[1]",
        ],
        "{}",
        text(&o)
    );
    assert!(stdout(&o).contains("bad address in \"10.0.0.300/8\""));

    // `run` names the place of a bad value in the file too, and not for a
    // bad flag.
    let f = write(
        &d,
        "cidr.toml",
        "[detect]\nhome_net = [\"10.0.0.0/8\", \"10.0.0.300/8\"]\n",
    );
    let run = |extra: &[&str]| {
        bin()
            .args(["run", "-q", "--config"])
            .arg(&f)
            .arg("-r")
            .arg(pcaps())
            .arg("-w")
            .arg(d.join("out"))
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!(
            "{}:2:27: detect.home_net[1]: bad address",
            f.display()
        )),
        "{}",
        text(&o)
    );
    let o = run(&["--home-net", "10.0.0.0/8", "--window", "0:5:5"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("seconds must be positive") && !err.contains("cidr.toml"),
        "{}",
        text(&o)
    );
    // The flag replaces the file's bad list: the run goes.
    let o = run(&["--home-net", "10.0.0.0/8"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_good_file_checks_clean_and_a_syntax_error_has_its_line() {
    let d = tmpdir("conf-syntax");
    let good = write(
        &d,
        "good.toml",
        "[run]\nformat = \"parquet\"\n[detect]\nhome_net = [\"10.0.0.0/8\"]\n",
    );
    let o = check(&good);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stdout(&o), "");
    let bad = write(&d, "bad.toml", "[run]\nsensor = \"a\"\nformat = \n");
    let o = check(&bad);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stdout(&o).starts_with(&format!("{}:3:", bad.display())),
        "{}",
        text(&o)
    );
}

/// The interface-free options set in a file give the same detections and
/// alerts, in the same layout, as the same options given as flags.
#[test]
fn a_file_gives_the_same_run_as_the_equivalent_flags() {
    let d = tmpdir("conf-same");
    let (by_file, by_flags) = (d.join("by-file"), d.join("by-flags"));
    let f = write(
        &d,
        "c.toml",
        &format!(
            r#"[run]
read = [{read:?}]
output = {out:?}
sensor = "edge-1"
format = "parquet"
threads = 2
max_memory_mib = 512

[flow]
max_flows = 100000

[detect]
max_sources = 5000
home_net = ["198.19.0.0/16"]
[[detect.windows]]
seconds = 120
horizontal = 10
vertical = 10
[[detect.windows]]
seconds = 3600
horizontal = 30
vertical = 30
"#,
            read = pcaps().display().to_string(),
            out = by_file.display().to_string(),
        ),
    );
    let o = bin()
        .args(["run", "-q", "--config"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = bin()
        .args(["run", "-q", "-r"])
        .arg(pcaps())
        .arg("-w")
        .arg(&by_flags)
        .args([
            "--sensor",
            "edge-1",
            "--format",
            "parquet",
            "--threads",
            "2",
            "--max-memory",
            "512",
            "--max-flows",
            "100000",
            "--max-sources",
            "5000",
            "--home-net",
            "198.19.0.0/16",
            "--window",
            "120:10:10",
            "--window",
            "3600:30:30",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let (a, b) = (results(&by_file), results(&by_flags));
    assert!(
        a.iter()
            .any(|(p, _, _)| p.starts_with("detections/sensor=edge-1")
                && p.extension().is_some_and(|e| e == "parquet")),
        "{a:?}"
    );
    let alerts = std::fs::read_to_string(by_file.join("alerts.jsonl")).unwrap();
    assert!(
        alerts.contains("\"direction\":\"inbound\""),
        "home_net from the file must be used"
    );
    assert_eq!(a, b);
    // And not the defaults: the default windows find other scans.
    let o = bin()
        .args(["run", "-q", "--threads", "2", "-r"])
        .arg(pcaps())
        .arg("-w")
        .arg(d.join("defaults"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(
        std::fs::read_to_string(d.join("defaults/alerts.jsonl")).unwrap(),
        alerts
    );
}

fn show(args: &[&str], cwd: &Path) -> String {
    let o = bin()
        .args(["config", "show"])
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    stdout(&o)
}

#[test]
fn flags_override_the_file_and_list_flags_replace_its_lists() {
    let d = tmpdir("conf-override");
    write(
        &d,
        "c.toml",
        r#"[run]
output = "from-file"
sensor = "file-sensor"
format = "parquet"
max_memory_mib = 2048
snaplen = 1500
flows_format = ["table", "zeek-json"]
rotate_secs = 60
retain_days = 7.0

[flow]
tcp_idle_secs = 100.0

[detect]
allow_scanners = ["10.0.0.5/32", "10.0.0.6/32"]
home_net = ["10.0.0.0/8"]
scan_idle_secs = 60
"#,
    );
    let file_only = show(&["--config", "c.toml", "-r", "."], &d);
    for line in [
        "output = \"from-file\"",
        "sensor = \"file-sensor\"",
        "format = \"parquet\"",
        "max_memory_mib = 2048",
        "snaplen = 1500",
        "flows_format = [\"table\", \"zeek-json\"]",
        "rotate_secs = 60",
        "retain_days = 7.0",
        "tcp_idle_secs = 100.0",
        "allow_scanners = [\"10.0.0.5/32\", \"10.0.0.6/32\"]",
        "scan_idle_secs = 60",
    ] {
        assert!(file_only.lines().any(|l| l == line), "{line}:\n{file_only}");
    }
    // Each flag wins, also one that repeats its default (-w scanwatch-out,
    // --format arrow), and a list flag replaces the file's list.
    let both = show(
        &[
            "--config",
            "c.toml",
            "-r",
            ".",
            "-w",
            "scanwatch-out",
            "--format",
            "arrow",
            "--sensor",
            "flag-sensor",
            "--max-memory",
            "1024",
            "--allow-scanner",
            "192.0.2.1/32",
            "--scan-idle",
            "30",
            "--flows-format",
            "table",
            "--rotate",
            "0",
            "--retain-days",
            "2.5",
        ],
        &d,
    );
    for line in [
        "output = \"scanwatch-out\"",
        "sensor = \"flag-sensor\"",
        "format = \"arrow\"",
        "max_memory_mib = 1024",
        "snaplen = 1500",
        "flows_format = [\"table\"]",
        "rotate_secs = 0",
        "retain_days = 2.5",
        "tcp_idle_secs = 100.0",
        "allow_scanners = [\"192.0.2.1/32\"]",
        "home_net = [\"10.0.0.0/8\"]",
        "scan_idle_secs = 30",
    ] {
        assert!(both.lines().any(|l| l == line), "{line}:\n{both}");
    }
    // A real run writes where the flag says, under the flag's sensor.
    let o = bin()
        .args(["run", "-q", "--threads", "2", "--config", "c.toml", "-r"])
        .arg(pcaps())
        .args(["-w", "scanwatch-out", "--sensor", "flag-sensor"])
        .current_dir(&d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(!d.join("from-file").exists());
    let files = walk(&d.join("scanwatch-out"));
    assert!(
        files.iter().any(|p| p
            .to_string_lossy()
            .contains("detections/sensor=flag-sensor/")
            && p.extension().is_some_and(|e| e == "parquet")),
        "{files:?}"
    );
}

/// `config show` prints the memory-derived caps and a file that `config
/// check` accepts, that shows itself unchanged, and that `run --config`
/// turns into the same run as the flags and file it came from.
#[test]
fn config_show_round_trips() {
    let d = tmpdir("conf-show");
    write(
        &d,
        "c.toml",
        "[run]\nformat = \"parquet\"\nmax_memory_mib = 512\n[detect]\nhome_net = [\"198.18.0.0/15\"]\n",
    );
    let read = pcaps().display().to_string();
    let args = [
        "--config",
        "c.toml",
        "-r",
        read.as_str(),
        "-w",
        "first",
        "--threads",
        "2",
        "--window",
        "120:10:10",
    ];
    let shown = show(&args, &d);
    for key in ["max_flows = ", "max_sources = ", "max_contacts_total = "] {
        assert!(shown.lines().any(|l| l.starts_with(key)), "{key}:\n{shown}");
    }
    let again_file = write(&d, "shown.toml", &shown);
    let o = check(&again_file);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(show(&["--config", "shown.toml"], &d), shown);

    let o = bin()
        .args(["run", "-q"])
        .args(args)
        .current_dir(&d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = bin()
        .args(["run", "-q", "--config", "shown.toml", "-w", "second"])
        .current_dir(&d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let (a, b) = (results(&d.join("first")), results(&d.join("second")));
    assert!(!a.is_empty());
    assert_eq!(a, b);
}
