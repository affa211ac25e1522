//! End-to-end tests of the `scanwatch` binary on real captures: the
//! project's own `pcaps/` and, when it is there, the shared corpus.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
mod common;
use common::*;

fn pcaps() -> PathBuf {
    root().join("pcaps")
}

/// The shared corpus (`../shared/pcaps`, or `$SCANWATCH_SHARED_PCAPS`),
/// present when it holds its `truth.csv`. When it is missing: under
/// `CI=true` the test fails (CI must not pass by checking nothing);
/// elsewhere one line says what `what` was not checked, and None is
/// returned. (`tests/conftest.py` holds the same rule for Python.)
fn shared(what: &str) -> Option<PathBuf> {
    let p = std::env::var_os("SCANWATCH_SHARED_PCAPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/pcaps"));
    if p.join("truth.csv").is_file() {
        return Some(p);
    }
    let msg = format!(
        "shared corpus {} missing (no truth.csv): {what} not checked",
        p.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg} (CI=true: the corpus is required)");
    }
    eprintln!("skipped: {msg}");
    None
}

fn eval_total(dir: &Path) -> (String, [u32; 4]) {
    let o = bin()
        .args(["eval", "--strict", "--json", "--truth"])
        .arg(dir.join("truth.csv"))
        .arg(dir)
        .output()
        .unwrap();
    let out = text(&o);
    let json_line = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string();
    let v: serde_json::Value =
        serde_json::from_str(&json_line).unwrap_or_else(|e| panic!("{e}: {out}"));
    let t = &v["total"];
    let g = |k: &str| t[k].as_u64().unwrap_or(u64::MAX) as u32;
    assert!(o.status.success(), "eval --strict failed:\n{out}");
    (
        out,
        [
            g("scanners"),
            g("found"),
            g("right_kind"),
            g("false_alarms"),
        ],
    )
}

#[test]
fn own_pcaps_every_scanner_found_with_right_kind_no_false_alarm() {
    let (out, [scanners, found, right, fa]) = eval_total(&pcaps());
    assert!(scanners >= 9, "{out}");
    assert_eq!((found, right, fa), (scanners, scanners, 0), "{out}");
}

#[test]
fn shared_corpus_every_scanner_found_with_right_kind_no_false_alarm() {
    let Some(dir) = shared("eval over the shared corpus") else {
        return;
    };
    let (out, [scanners, found, right, fa]) = eval_total(&dir);
    assert_eq!(scanners, 26, "{out}");
    assert_eq!((found, right, fa), (26, 26, 0), "{out}");
}

/// (scanner, kind, proto, dst_count, port_count, probes, answered, rejected,
/// unanswered, open) for each detection, sorted; and the flow rows.
fn detections(file: &Path, threads: u32) -> (Vec<String>, Vec<String>) {
    let out = tmpdir(&format!(
        "det{threads}-{}",
        file.file_name().unwrap().to_string_lossy()
    ));
    let o = bin()
        .args(["run", "-q", "--threads", &threads.to_string(), "-r"])
        .arg(file)
        .arg("-w")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let alerts = std::fs::read_to_string(out.join("alerts.jsonl")).unwrap_or_default();
    (scan_ends(&alerts), flow_rows(&out))
}

/// Every flow record (uid, packets, state, history), sorted: the flows must
/// not depend on the thread count either.
fn flow_rows(out: &Path) -> Vec<String> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::UInt64Type;
    let mut rows = Vec::new();
    for f in walk(&out.join("flows")) {
        let r = arrow_ipc::reader::FileReader::try_new(std::fs::File::open(&f).unwrap(), None)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for b in r {
            let b = b.unwrap();
            let s = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
            let u = |n: &str| {
                b.column_by_name(n)
                    .unwrap()
                    .as_primitive::<UInt64Type>()
                    .clone()
            };
            let (uid, state, hist) = (s("uid"), s("conn_state"), s("history"));
            let (op, rp) = (u("orig_pkts"), u("resp_pkts"));
            for i in 0..b.num_rows() {
                rows.push(format!(
                    "flow {} {} {} {} {}",
                    uid.value(i),
                    op.value(i),
                    rp.value(i),
                    state.value(i),
                    hist.value(i)
                ));
            }
        }
    }
    rows.sort();
    rows
}

#[test]
fn same_detections_and_flows_with_one_and_four_threads() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(pcaps())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    if let Some(s) = shared("1 vs 4 threads on 5 shared captures") {
        for name in [
            "mixed_busy_webserver_plus_vertical_scan.pcap",
            "nmap_syn_block_40hosts_9ports.pcap",
            "hping3_syn_horizontal_p445_randdest.pcap",
            // ICMP port unreachables for UDP probes: the errors' own flows
            // must come out the same whatever worker saw the probe.
            "nmap_udp_vertical_top50.pcap",
            "hping3_udp_horizontal_loopback_p161.pcap",
        ] {
            files.push(s.join(name));
        }
    }
    files.sort();
    assert!(!files.is_empty());
    for f in files {
        let one = detections(&f, 1);
        let four = detections(&f, 4);
        // A scan capture gives detections, a benign one none; both flows.
        let benign = f.to_string_lossy().contains("benign");
        assert_eq!(one.0.is_empty(), benign, "{}: {:?}", f.display(), one.0);
        assert!(!one.1.is_empty(), "{}", f.display());
        assert_eq!(one, four, "{}", f.display());
        // And from run to run.
        assert_eq!(one, detections(&f, 4), "{}", f.display());
    }
}

fn one_line_error(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "{}", text(o));
    assert_eq!(err.trim().lines().count(), 1, "{}", text(o));
    assert!(!err.contains("panicked"), "{}", text(o));
    err
}

#[test]
fn bad_inputs_give_one_clear_line() {
    let d = tmpdir("bad");
    let o = bin()
        .args(["run", "-r", "/nonexistent/x.pcap", "-w"])
        .arg(&d)
        .output()
        .unwrap();
    assert!(one_line_error(&o).contains("No such file"));

    let junk = d.join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").unwrap();
    let o = bin()
        .arg("run")
        .arg("-r")
        .arg(&junk)
        .arg("-w")
        .arg(&d)
        .output()
        .unwrap();
    assert!(one_line_error(&o).contains("not a capture file"));

    let empty = d.join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let o = bin()
        .arg("run")
        .arg("-r")
        .arg(&empty)
        .arg("-w")
        .arg(&d)
        .output()
        .unwrap();
    assert!(one_line_error(&o).contains("empty"));

    let src = pcaps().join("nmap_syn_vertical_1-1000.pcap");
    let o = bin()
        .arg("run")
        .arg("-r")
        .arg(&src)
        .args(["-w", "/proc/cannot-write-here"])
        .output()
        .unwrap();
    assert!(one_line_error(&o).contains("/proc/cannot-write-here"));

    let o = bin()
        .args(["run", "-i", "nosuchif0", "-w"])
        .arg(&d)
        .output()
        .unwrap();
    let e = one_line_error(&o);
    assert!(e.contains("nosuchif0"), "{e}");
}

#[test]
fn capture_threads_are_refused_on_files_and_out_of_range() {
    let d = tmpdir("capture-threads");
    let src = pcaps().join("nmap_syn_vertical_1-1000.pcap");
    let o = bin()
        .arg("run")
        .arg("-r")
        .arg(&src)
        .args(["--capture-threads", "2", "-w"])
        .arg(&d)
        .output()
        .unwrap();
    let e = one_line_error(&o);
    assert!(
        e.contains("--capture-threads is for live interfaces"),
        "{e}"
    );
    // No output was started for a refused run.
    assert!(!d.join("flows").exists());
    let o = bin()
        .args(["run", "-i", "lo", "--capture-threads", "0", "-w"])
        .arg(&d)
        .output()
        .unwrap();
    let e = one_line_error(&o);
    assert!(e.contains("between 1 and 64"), "{e}");
}

#[test]
fn truncated_file_keeps_what_came_before_and_exits_non_zero() {
    let d = tmpdir("trunc");
    let src = std::fs::read(pcaps().join("nmap_syn_vertical_1-1000.pcap")).unwrap();
    let cut = d.join("cut.pcap");
    std::fs::write(&cut, &src[..src.len() * 2 / 3 + 7]).unwrap();
    let out = d.join("out");
    let o = bin()
        .arg("run")
        .arg("-r")
        .arg(&cut)
        .arg("-w")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(err.contains("truncated at byte"), "{err}");
    // The scan before the cut was still found and written.
    let alerts = std::fs::read_to_string(out.join("alerts.jsonl")).unwrap();
    assert!(alerts.contains("\"kind\":\"vertical\""), "{alerts}");
    let parts: Vec<_> = walk(&out.join("flows"));
    assert!(!parts.is_empty());
    assert!(
        parts
            .iter()
            .all(|p| p.extension().is_some_and(|e| e == "arrow")),
        "{parts:?}"
    );
}

#[test]
fn directory_input_and_gzip_and_filter() {
    let d = tmpdir("dir");
    let src = pcaps().join("nmap_syn_vertical_1-1000.pcap");
    // gzip the file with flate2-compatible gzip from the system if present,
    // otherwise skip only this part.
    let gz = d.join("in/a.pcap.gz");
    std::fs::create_dir_all(d.join("in")).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -c '{}' > '{}'", src.display(), gz.display()))
        .status()
        .unwrap();
    assert!(status.success());
    let o = bin()
        .arg("run")
        .arg("-r")
        .arg(d.join("in"))
        .arg("-w")
        .arg(d.join("out"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("198.18.0.2 vertical tcp"),
        "{}",
        text(&o)
    );
    // A BPF filter that removes the scanner's packets removes the detection.
    let o = bin()
        .arg("run")
        .arg("-r")
        .arg(&src)
        .arg("-w")
        .arg(d.join("out2"))
        .args(["not", "host", "198.18.0.2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("198.18.0.2"),
        "{}",
        text(&o)
    );
}

#[test]
fn unmatched_icmp_errors_make_the_same_flows_with_one_and_four_threads() {
    // Only the ICMP port unreachables of a UDP sweep (the probes filtered
    // out): no error matches a flow, each is counted in its own ICMP flow,
    // on the worker of that flow's key, so the records cannot depend on
    // which worker would have held the quoted probe.
    let f = pcaps().join("hping3_udp_horizontal_p161.pcap");
    let run = |threads: u32| {
        let out = tmpdir(&format!("icmp{threads}"));
        let o = bin()
            .args(["run", "-q", "--threads", &threads.to_string(), "-r"])
            .arg(&f)
            .arg("-w")
            .arg(&out)
            .arg("icmp")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        flow_rows(&out)
    };
    let one = run(1);
    assert!(!one.is_empty());
    assert_eq!(one, run(4));
}
