//! `scanwatch correlate` on captures the project makes (`scanwatch gen
//! --split 5`): one scanner probing five sensors' shares of a network, each
//! below its own threshold, is one campaign across the five; benign
//! traffic split the same way is none (and the scan gen hides in a busy
//! host's traffic, split too, is found again).

mod common;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};
use common::{bin, text, tmpdir, walk};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const SCANNER: &str = "198.51.100.77";

/// `scanwatch gen --split 5` into `dir`: the five captures.
fn gen(dir: &Path, args: &[&str]) -> Vec<PathBuf> {
    let o = bin()
        .args(["gen", "--split", "5", "--seed", "3"])
        .args(args)
        .arg("-o")
        .arg(dir.join("c.pcap"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    (0..5).map(|k| dir.join(format!("c.s{k}.pcap"))).collect()
}

/// `scanwatch run` of each sensor's capture into `dir/sK`; `sensor_level`
/// adds `--sensor sK` (else the folder's name is the sensor's). Returns the
/// folders and each run's count of scans.
fn run_sensors(dir: &Path, pcaps: &[PathBuf], sensor_level: bool) -> (Vec<PathBuf>, Vec<u64>) {
    let mut outs = Vec::new();
    let mut scans = Vec::new();
    for (k, p) in pcaps.iter().enumerate() {
        let w = dir.join(format!("s{k}"));
        let mut c = bin();
        c.arg("run").arg("-r").arg(p).arg("-w").arg(&w);
        if sensor_level {
            c.args(["--sensor", &format!("s{k}")]);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        let n = err
            .split(" scans detected")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no scan count in {err}"));
        scans.push(n);
        outs.push(w);
    }
    (outs, scans)
}

fn correlate(dirs: &[PathBuf], out: &Path, extra: &[&str]) -> RecordBatch {
    let o = bin()
        .arg("correlate")
        .args(dirs)
        .arg("-o")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let files = walk(&out.join("campaigns"));
    assert_eq!(files.len(), 1, "{files:?}");
    let f = std::fs::File::open(&files[0]).unwrap();
    let (schema, batches): (_, Vec<RecordBatch>) =
        if files[0].extension().is_some_and(|e| e == "parquet") {
            let b =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
            (
                b.schema().clone(),
                b.build().unwrap().map(|b| b.unwrap()).collect(),
            )
        } else {
            let r = arrow_ipc::reader::FileReader::try_new(f, None).unwrap();
            (r.schema(), r.map(|b| b.unwrap()).collect())
        };
    assert_eq!(schema.metadata()["scanwatch.table"], "campaigns");
    assert_eq!(schema.metadata()["scanwatch.schema_version"], "1");
    arrow_select::concat::concat_batches(&schema, &batches).unwrap()
}

fn strs(b: &RecordBatch, name: &str, row: usize) -> String {
    b.column_by_name(name)
        .unwrap()
        .as_string::<i32>()
        .value(row)
        .to_string()
}

fn list_strs(a: &dyn Array) -> Vec<String> {
    let a = a.as_string::<i32>();
    (0..a.len()).map(|i| a.value(i).to_string()).collect()
}

/// The flows of a `-w` folder toward `host`: (originator, port, history).
fn answered_in(out: &Path, host: &str) -> Vec<(String, u16, String)> {
    let mut v = Vec::new();
    for f in walk(&out.join("flows")) {
        let r =
            arrow_ipc::reader::FileReader::try_new(std::fs::File::open(&f).unwrap(), None).unwrap();
        for b in r {
            let b = b.unwrap();
            let id = b.column_by_name("id").unwrap().as_struct();
            let orig = id.column_by_name("orig_h").unwrap().as_string::<i32>();
            let resp = id.column_by_name("resp_h").unwrap().as_string::<i32>();
            let port = id
                .column_by_name("resp_p")
                .unwrap()
                .as_primitive::<arrow_array::types::UInt16Type>();
            let hist = b.column_by_name("history").unwrap().as_string::<i32>();
            for i in 0..b.num_rows() {
                if resp.value(i) == host {
                    v.push((
                        orig.value(i).to_string(),
                        port.value(i),
                        hist.value(i).to_string(),
                    ));
                }
            }
        }
    }
    v
}

#[test]
fn one_scanner_below_every_threshold_is_one_campaign_over_five_sensors() {
    let dir = tmpdir("correlate-campaign");
    let pcaps = gen(&dir, &["--profile", "campaign", "--flows", "2000"]);
    let (outs, scans) = run_sensors(&dir, &pcaps, true);
    // No sensor flags anything alone.
    assert_eq!(scans, vec![0; 5]);
    for fmt in ["arrow", "parquet"] {
        let b = correlate(&outs, &dir.join(format!("corr-{fmt}")), &["--format", fmt]);
        assert_eq!(b.num_rows(), 1, "exactly one campaign");
        assert_eq!(strs(&b, "scanner", 0), SCANNER);
        assert_eq!(strs(&b, "kind", 0), "horizontal");
        assert_eq!(strs(&b, "proto", 0), "tcp");
        assert_eq!(strs(&b, "technique", 0), "syn");
        let col = |n: &str| b.column_by_name(n).unwrap().clone();
        let sensors = list_strs(&col("sensors").as_list::<i32>().value(0));
        assert_eq!(sensors, ["s0", "s1", "s2", "s3", "s4"]);
        let flagged = col("flagged_by").as_list::<i32>().value(0);
        assert_eq!(flagged.len(), 0);
        assert!(col("below_threshold_everywhere").as_boolean().value(0));
        // 25 probes, 5 per sensor; one open door (port 22) per sensor,
        // each a host gen's rule opens (last octet not a multiple of 3),
        // together the record's open doors.
        assert_eq!(col("probes").as_primitive::<Int64Type>().value(0), 25);
        let all_open: BTreeSet<String> = list_strs(&col("open").as_list::<i32>().value(0))
            .into_iter()
            .collect();
        assert_eq!(all_open.len(), 5);
        let per = col("per_sensor").as_list::<i32>().value(0);
        let per = per.as_struct();
        assert_eq!(per.len(), 5);
        let probes = per
            .column_by_name("probes")
            .unwrap()
            .as_primitive::<Int64Type>();
        let opens = per.column_by_name("open").unwrap().as_list::<i32>();
        let mut union = BTreeSet::new();
        for (k, out) in outs.iter().enumerate() {
            assert_eq!(probes.value(k), 5, "sensor {k}");
            let o = list_strs(&opens.value(k));
            assert_eq!(o.len(), 1, "sensor {k}: {o:?}");
            let host = o[0].strip_suffix(":22").unwrap();
            let last: u8 = host.rsplit('.').next().unwrap().parse().unwrap();
            assert_ne!(last % 3, 0, "{host}");
            // The door is in that sensor's own flows: the scanner's SYN
            // answered by a SYN-ACK.
            assert_eq!(
                answered_in(out, host),
                vec![(SCANNER.to_string(), 22, "Sh".to_string())],
                "sensor {k}"
            );
            assert!(union.insert(o[0].clone()));
        }
        assert_eq!(union, all_open);
        let first = per
            .column_by_name("first_seen")
            .unwrap()
            .as_primitive::<arrow_array::types::TimestampMicrosecondType>();
        let last = per
            .column_by_name("last_seen")
            .unwrap()
            .as_primitive::<arrow_array::types::TimestampMicrosecondType>();
        let t0 = col("first_seen")
            .as_primitive::<arrow_array::types::TimestampMicrosecondType>()
            .value(0);
        let t1 = col("last_seen")
            .as_primitive::<arrow_array::types::TimestampMicrosecondType>()
            .value(0);
        for k in 0..5 {
            assert!(t0 <= first.value(k) && first.value(k) < last.value(k) && last.value(k) <= t1);
        }
    }
    // Without a sensor level, the folders' names are the sensors' names;
    // --sensor-of renames one.
    let plain = tmpdir("correlate-plain");
    let (outs, _) = run_sensors(&plain, &pcaps, false);
    let rename = format!("{}=edge", outs[4].display());
    let b = correlate(&outs, &plain.join("corr"), &["--sensor-of", &rename]);
    assert_eq!(b.num_rows(), 1);
    let sensors = list_strs(
        &b.column_by_name("sensors")
            .unwrap()
            .as_list::<i32>()
            .value(0),
    );
    assert_eq!(sensors, ["edge", "s0", "s1", "s2", "s3"]);
    // `scanwatch convert DIR DIR` puts Parquet copies beside the Arrow
    // parts: each row still counts once.
    let o = bin()
        .arg("convert")
        .arg(&outs[0])
        .arg(&outs[0])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let b = correlate(&outs, &plain.join("both"), &[]);
    let per = b
        .column_by_name("per_sensor")
        .unwrap()
        .as_list::<i32>()
        .value(0);
    let probes = per
        .as_struct()
        .column_by_name("probes")
        .unwrap()
        .as_primitive::<Int64Type>()
        .clone();
    assert_eq!(probes.values().to_vec(), vec![5; 5]);
    // A compacted day (`hour=all`, rows sorted by source) is one day-long
    // bucket: the same campaign.
    let o = bin().arg("compact").arg(&outs[1]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(walk(&outs[1].join("flows"))
        .iter()
        .all(|p| p.to_string_lossy().contains("hour=all")));
    let c = correlate(&outs, &plain.join("compacted"), &[]);
    assert_eq!(facts(&c, "campaign"), facts(&b, "campaign"));
    // Rows filed an hour later than their time (hand-moved: scanwatch files
    // a row in the hour of its `ts`) come after that hour was released:
    // counted as late, never fed out of order.
    let hours: Vec<PathBuf> = walk(&outs[2].join("flows"));
    let moved_rows: usize = hours
        .iter()
        .map(|f| {
            arrow_ipc::reader::FileReader::try_new(std::fs::File::open(f).unwrap(), None)
                .unwrap()
                .map(|b| b.unwrap().num_rows())
                .sum::<usize>()
        })
        .sum();
    let hour_dir = hours[0].parent().unwrap();
    assert!(hour_dir.ends_with("hour=14"), "{hour_dir:?}");
    std::fs::rename(hour_dir, hour_dir.with_file_name("hour=15")).unwrap();
    let o = bin()
        .arg("correlate")
        .args(&outs)
        .arg("-o")
        .arg(plain.join("late"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!(" {moved_rows} late ")), "{err}");
    std::fs::rename(hour_dir.with_file_name("hour=15"), hour_dir).unwrap();
    // --until before the scan: nothing.
    let b = correlate(
        &outs,
        &plain.join("early"),
        &["--until", "2026-09-21T14:00"],
    );
    assert_eq!(b.num_rows(), 0);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&plain);
}

#[test]
fn a_scan_each_sensor_flags_is_not_below_threshold() {
    let dir = tmpdir("correlate-loud");
    let pcaps = gen(
        &dir,
        &[
            "--profile",
            "campaign",
            "--flows",
            "500",
            "--campaign-per-sensor",
            "60",
        ],
    );
    let (outs, scans) = run_sensors(&dir, &pcaps, true);
    assert_eq!(scans, vec![1; 5]);
    let b = correlate(&outs, &dir.join("corr"), &[]);
    assert_eq!(b.num_rows(), 1);
    let flagged = list_strs(
        &b.column_by_name("flagged_by")
            .unwrap()
            .as_list::<i32>()
            .value(0),
    );
    assert_eq!(flagged, ["s0", "s1", "s2", "s3", "s4"]);
    assert!(!b
        .column_by_name("below_threshold_everywhere")
        .unwrap()
        .as_boolean()
        .value(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn benign_traffic_split_over_five_sensors_is_no_campaign() {
    let dir = tmpdir("correlate-benign");
    for (profile, extra) in [
        ("benign", &["--flows", "5000"][..]),
        (
            "resolver",
            &["--hidden-scan", "false", "--fail-share", "0.4"][..],
        ),
        (
            "nat-gateway",
            &["--hidden-scan", "false", "--fail-share", "0.4"][..],
        ),
        (
            "monitoring-poller",
            &["--hidden-scan", "false", "--fail-share", "0.4"][..],
        ),
        (
            "mta",
            &["--hidden-scan", "false", "--fail-share", "0.4"][..],
        ),
        (
            "health-check",
            &["--hidden-scan", "false", "--fail-share", "0.4"][..],
        ),
        (
            "link-checker",
            &["--hidden-scan", "false", "--fail-share", "0.4"][..],
        ),
    ] {
        let d = dir.join(profile);
        std::fs::create_dir_all(&d).unwrap();
        let mut args = vec!["--profile", profile];
        args.extend_from_slice(extra);
        let pcaps = gen(&d, &args);
        let (outs, _) = run_sensors(&d, &pcaps, true);
        let b = correlate(&outs, &d.join("corr"), &[]);
        let who: Vec<String> = (0..b.num_rows()).map(|i| strs(&b, "scanner", i)).collect();
        assert_eq!(b.num_rows(), 0, "{profile}: false campaigns {who:?}");
        if profile == "benign" {
            continue;
        }
        // The control: the same host with gen's hidden scan mixed in, split
        // the same way. No sensor flags it alone; the union finds it, and
        // only it.
        let d = dir.join(format!("{profile}-hidden"));
        std::fs::create_dir_all(&d).unwrap();
        let pcaps = gen(&d, &["--profile", profile, "--fail-share", "0.4"]);
        let truth = std::fs::read_to_string(d.join("c.pcap.truth.csv")).unwrap();
        let hidden = truth
            .lines()
            .skip(2)
            .map(|l| l.split(',').nth(1).unwrap().to_string())
            .collect::<Vec<_>>();
        assert_eq!(hidden.len(), 1, "{truth}");
        let (outs, scans) = run_sensors(&d, &pcaps, true);
        assert_eq!(scans, vec![0; 5], "{profile}");
        let b = correlate(&outs, &d.join("corr"), &[]);
        let who: Vec<String> = (0..b.num_rows()).map(|i| strs(&b, "scanner", i)).collect();
        assert_eq!(who, hidden, "{profile}");
        assert!(b
            .column_by_name("below_threshold_everywhere")
            .unwrap()
            .as_boolean()
            .value(0));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// (scanner, kind, proto, technique, detection id, probes, answered, open
/// doors) of every row of a detections or campaigns table.
type Facts = BTreeSet<(
    String,
    String,
    String,
    String,
    String,
    u64,
    u64,
    Vec<String>,
)>;

fn facts(b: &RecordBatch, id: &str) -> Facts {
    let n = |c: &str, i: usize| -> u64 {
        let a = b.column_by_name(c).unwrap();
        match a.data_type() {
            arrow_schema::DataType::UInt64 => {
                a.as_primitive::<arrow_array::types::UInt64Type>().value(i)
            }
            _ => a.as_primitive::<Int64Type>().value(i) as u64,
        }
    };
    (0..b.num_rows())
        .map(|i| {
            (
                strs(b, "scanner", i),
                strs(b, "kind", i),
                strs(b, "proto", i),
                strs(b, "technique", i),
                strs(b, id, i),
                n("probes", i),
                n("answered", i),
                list_strs(&b.column_by_name("open").unwrap().as_list::<i32>().value(i)),
            )
        })
        .collect()
}

#[test]
fn one_sensors_flows_give_back_that_sensors_detections() {
    // The attempts rebuilt from flow rows are the pipeline's own: over one
    // sensor's flows, correlate finds the scans `run` found, with the same
    // kind, technique, id, probes, answers and open doors (gen's mixed
    // profile: SYN, FIN, connect, UDP and ICMP scans of every kind).
    let dir = tmpdir("correlate-self");
    let pcap = dir.join("m.pcap");
    let o = bin()
        .args([
            "gen",
            "--profile",
            "mixed",
            "--flows",
            "3000",
            "--seed",
            "6",
            "-o",
        ])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let w = dir.join("one");
    let o = bin()
        .arg("run")
        .arg("-r")
        .arg(&pcap)
        .arg("-w")
        .arg(&w)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let mut det = Vec::new();
    for f in walk(&w.join("detections")) {
        let r =
            arrow_ipc::reader::FileReader::try_new(std::fs::File::open(&f).unwrap(), None).unwrap();
        det.extend(r.map(|b| b.unwrap()));
    }
    let det = arrow_select::concat::concat_batches(&det[0].schema(), &det).unwrap();
    let want = facts(&det, "detection_id");
    assert_eq!(want.len(), 8, "{want:?}");
    let b = correlate(&[w], &dir.join("corr"), &[]);
    assert_eq!(facts(&b, "campaign"), want);
    // Every campaign here is one the sensor flagged itself.
    let below = b
        .column_by_name("below_threshold_everywhere")
        .unwrap()
        .as_boolean();
    assert!((0..b.num_rows()).all(|i| !below.value(i)));
    let _ = std::fs::remove_dir_all(&dir);
}
