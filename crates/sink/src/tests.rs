//! The sink's own tests: Arrow IPC and Parquet parts read back by the
//! arrow-ipc and parquet readers equal, column by column, what the table
//! builders made of the same rows; parts rotate at the hour and the row cap;
//! a part is never under its final name before it is complete (open, after
//! a crash, after a failed finish); alert lines are JSON with Suricata's
//! field names and hand-checked values.

use super::*;
use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMicrosecondType, UInt64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use scanwatch_model::{
    proto, Addr, ConnState, Detection, Direction, FlowKey, FlowRecord, History, ScanKind,
};

/// 2026-11-30T00:00:00Z in µs.
const BASE: Micros = 1_795_996_800_000_000;
const HOUR: Micros = 3_600_000_000;

/// A fresh, empty folder for one test.
fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scanwatch-sink-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn addr(s: &str) -> Addr {
    s.parse().unwrap()
}

/// Flow `i`: v4 and v6, TCP, UDP and ICMP, several states, a history.
fn rec(i: u16, ts: Micros) -> FlowRecord {
    let (orig_h, resp_h) = if i % 3 == 2 {
        (
            addr("2001:db8::1"),
            addr(&format!("2001:db8::{:x}", 0x100 + i)),
        )
    } else {
        (addr("10.0.0.1"), addr(&format!("10.0.1.{i}")))
    };
    let mut history = History::default();
    history.add(b'S', true);
    if i % 2 == 1 {
        history.add(b'H', false);
    }
    let (key, orig_is_a) = FlowKey::new(
        orig_h,
        40_000 + i,
        resp_h,
        20 + i,
        [proto::TCP, proto::UDP, proto::ICMP][usize::from(i % 3)],
    );
    FlowRecord {
        ts,
        last_ts: ts + 1500 * Micros::from(i),
        key,
        orig_is_a,
        orig_pkts: 1 + u64::from(i),
        orig_bytes: 100 * u64::from(i),
        resp_pkts: u64::from(i % 2),
        resp_bytes: 7 * u64::from(i),
        conn_state: [ConnState::S0, ConnState::SF, ConnState::REJ][usize::from(i % 3)],
        history,
        vlan: if i.is_multiple_of(4) { 0 } else { 100 + i },
    }
}

fn det(i: u16, kind: ScanKind, ports: Vec<u16>, targets: usize) -> Detection {
    Detection {
        detection_id: format!("d{i:04}"),
        ts_first: BASE + 1_500_000,
        ts_last: BASE + 9_000_000,
        ts_detected: BASE + 4_000_000,
        scanner: addr("198.18.0.2"),
        kind,
        proto: proto::TCP,
        detector: "window:5m+trw".into(),
        dst_count: targets as u64,
        port_count: ports.len() as u64,
        probes: 50 + u64::from(i),
        answered: 3,
        rejected: 40,
        unanswered: 7 + u64::from(i),
        ports,
        targets: (0..targets)
            .map(|t| addr(&format!("198.19.{}.{}", t / 256, t % 256)))
            .collect(),
        open: vec!["198.19.0.0:22".into(), "198.19.0.1:22".into()],
        direction: Direction::Inbound,
        technique: scanwatch_model::Technique::Syn,
        tool: "nmap".into(),
        tool_evidence: vec!["window=1024".into(), "mss-only options".into()],
        rate_pps: 120.5,
        order: "random".into(),
        port_set: "custom".into(),
        campaign_id: "c0ffee".into(),
        sources: Vec::new(),
    }
}

fn opts(format: Format) -> SinkOptions {
    SinkOptions {
        batch_rows: 3,
        format,
        ..SinkOptions::default()
    }
}

/// Every file under `d`, as paths relative to it, sorted.
fn tree(d: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, v: &mut Vec<String>) {
        for e in fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, v);
            } else {
                v.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut v = Vec::new();
    walk(d, d, &mut v);
    v.sort();
    v
}

/// One part read back whole, by the reader of its format.
fn read_part(path: &Path) -> Vec<RecordBatch> {
    let f = File::open(path).unwrap();
    match path.extension().and_then(|e| e.to_str()) {
        Some("arrow") => arrow_ipc::reader::FileReader::try_new(f, None)
            .unwrap()
            .map(|b| b.unwrap())
            .collect(),
        Some("parquet") => ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap())
            .collect(),
        other => panic!("{}: unexpected extension {other:?}", path.display()),
    }
}

/// `got` (batches read back, in order) holds exactly the rows of `want`,
/// column by column, with the same field names and types.
fn assert_same_rows(got: &[RecordBatch], want: &RecordBatch, ctx: &str) {
    assert!(!got.is_empty(), "{ctx}: no batches");
    let mut at = 0;
    for g in got {
        assert_eq!(g.schema().fields(), want.schema().fields(), "{ctx}");
        assert!(at + g.num_rows() <= want.num_rows(), "{ctx}: too many rows");
        let w = want.slice(at, g.num_rows());
        for (i, f) in want.schema().fields().iter().enumerate() {
            assert_eq!(
                g.column(i).to_data(),
                w.column(i).to_data(),
                "{ctx}: column {} rows {at}..",
                f.name()
            );
        }
        at += g.num_rows();
    }
    assert_eq!(at, want.num_rows(), "{ctx}: rows missing");
}

/// Writes 7 flows in hour 0 (batches of 3) and 2 in hour 1 with `push`,
/// plus a batch of 2 more for hour 1 with `push_batch`; checks the two parts
/// against batches built from the same rows by `FlowBatchBuilder`.
fn flows_round_trip(format: Format) {
    let dir = tmp(&format!("flows-{}", format.extension()));
    let mut w: PartitionedWriter<FlowBatchBuilder> =
        PartitionedWriter::new(dir.join("flows"), opts(format)).unwrap();
    let hour0: Vec<FlowRecord> = (0..7).map(|i| rec(i, BASE + Micros::from(i))).collect();
    let hour1: Vec<FlowRecord> = (7..11)
        .map(|i| rec(i, BASE + HOUR + Micros::from(i)))
        .collect();
    for r in &hour0 {
        w.push(r, r.ts).unwrap();
    }
    for r in &hour1[..2] {
        w.push(r, r.ts).unwrap();
    }
    let mut b = FlowBatchBuilder::default();
    for r in &hour1[2..] {
        b.append(r);
    }
    w.push_batch((BASE + HOUR) / HOUR, &b.finish().unwrap())
        .unwrap();
    w.rotate().unwrap();
    assert_eq!(w.rows, 11);
    let ext = format.extension();
    assert_eq!(
        tree(&dir),
        [
            format!("flows/date=2026-11-30/hour=00/part-00000.{ext}"),
            format!("flows/date=2026-11-30/hour=01/part-00000.{ext}"),
        ]
    );
    for (hour, rows) in [(0, &hour0), (1, &hour1)] {
        let path = dir.join(format!(
            "flows/date=2026-11-30/hour=0{hour}/part-00000.{ext}"
        ));
        let mut want = FlowBatchBuilder::default();
        for r in rows.iter() {
            want.append(r);
        }
        let want = want.finish().unwrap();
        let got = read_part(&path);
        assert_same_rows(&got, &want, &path.display().to_string());
        // And by hand, independent of the builder: times, addresses, counts.
        let mut k = 0;
        for g in &got {
            let ts = g["ts"].as_primitive::<TimestampMicrosecondType>();
            let pkts = g["orig_pkts"].as_primitive::<UInt64Type>();
            let id = g["id"].as_struct();
            let orig_h = id.column_by_name("orig_h").unwrap().as_string::<i32>();
            let resp_h = id.column_by_name("resp_h").unwrap().as_string::<i32>();
            let conn_state = g["conn_state"].as_string::<i32>();
            for j in 0..g.num_rows() {
                let r = &rows[k];
                assert_eq!(ts.value(j), r.ts);
                assert_eq!(pkts.value(j), r.orig_pkts);
                assert_eq!(orig_h.value(j), r.orig_h().to_string());
                assert_eq!(resp_h.value(j), r.resp_h().to_string());
                let state = ["S0", "SF", "REJ"][usize::from(r.resp_p() - 20) % 3];
                assert_eq!(conn_state.value(j), state);
                if r.resp_p() == 22 {
                    assert_eq!(resp_h.value(j), "2001:db8::102");
                }
                k += 1;
            }
        }
        assert_eq!(k, rows.len());
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn arrow_flow_parts_round_trip_every_column() {
    flows_round_trip(Format::Arrow);
}

#[test]
fn parquet_flow_parts_round_trip_every_column() {
    flows_round_trip(Format::Parquet);
}

#[test]
fn parquet_parts_carry_the_schema_version_in_file_metadata() {
    let dir = tmp("pq-meta");
    let mut w: PartitionedWriter<FlowBatchBuilder> =
        PartitionedWriter::new(dir.join("flows"), opts(Format::Parquet)).unwrap();
    w.push(&rec(1, BASE), BASE).unwrap();
    w.rotate().unwrap();
    let f = File::open(&w.finished[0]).unwrap();
    let r = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    let kv = r.metadata().file_metadata().key_value_metadata().unwrap();
    let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
    assert_eq!(get("scanwatch.table").as_deref(), Some("flows"));
    assert_eq!(
        get("scanwatch.schema_version"),
        Some(SCHEMA_VERSION.to_string())
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn detection_parts_round_trip_every_column_in_both_formats() {
    for format in [Format::Arrow, Format::Parquet] {
        let dir = tmp(&format!("det-{}", format.extension()));
        let mut w: PartitionedWriter<DetectionBatchBuilder> = PartitionedWriter::new(
            dir.join("detections"),
            SinkOptions {
                format,
                ..SinkOptions::default()
            },
        )
        .unwrap();
        let dets = [
            det(1, ScanKind::Vertical, (1..=500).collect(), 1),
            det(2, ScanKind::Horizontal, vec![22], 40),
            det(3, ScanKind::Block, vec![21, 22, 80], 9),
            det(4, ScanKind::Vertical, vec![], 0),
        ];
        for d in &dets {
            w.push(d, d.ts_detected).unwrap();
        }
        w.rotate().unwrap();
        assert_eq!(w.finished.len(), 1);
        let mut want = DetectionBatchBuilder::default();
        for d in &dets {
            want.append(d);
        }
        let got = read_part(&w.finished[0]);
        assert_same_rows(&got, &want.finish().unwrap(), &format!("{format:?}"));
        let g = &got[0];
        assert_eq!(g.num_rows(), 4, "{format:?}: one batch of 4 rows expected");
        let ports = g["ports"].as_list::<i32>();
        assert_eq!(ports.value(0).len(), 500);
        assert_eq!(ports.value(3).len(), 0);
        assert_eq!(g["scanner"].as_string::<i32>().value(1), "198.18.0.2");
        assert_eq!(g["kind"].as_string::<i32>().value(2), "block");
        let _ = fs::remove_dir_all(&dir);
    }
}

#[test]
fn parts_rotate_at_the_row_cap_with_rising_numbers() {
    let dir = tmp("cap");
    let mut w: PartitionedWriter<FlowBatchBuilder> = PartitionedWriter::new(
        dir.join("flows"),
        SinkOptions {
            max_part_rows: 3,
            ..opts(Format::Arrow)
        },
    )
    .unwrap();
    for i in 0..7 {
        w.push(&rec(i, BASE + Micros::from(i)), BASE + Micros::from(i))
            .unwrap();
    }
    w.rotate().unwrap();
    let rows: Vec<usize> = w
        .finished
        .iter()
        .map(|p| read_part(p).iter().map(|b| b.num_rows()).sum())
        .collect();
    assert_eq!(rows, [3, 3, 1]);
    assert_eq!(
        tree(&dir),
        [
            "flows/date=2026-11-30/hour=00/part-00000.arrow",
            "flows/date=2026-11-30/hour=00/part-00001.arrow",
            "flows/date=2026-11-30/hour=00/part-00002.arrow",
        ]
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn hour_partitions_and_atomic_rename() {
    let dir = tmp("hours");
    let mut w: PartitionedWriter<FlowBatchBuilder> = PartitionedWriter::new(
        dir.join("flows"),
        SinkOptions {
            batch_rows: 2,
            ..SinkOptions::default()
        },
    )
    .unwrap();
    for i in 0..5 {
        w.push(&rec(1, BASE + i), BASE + i).unwrap();
    }
    w.push(&rec(1, BASE + HOUR), BASE + HOUR).unwrap();
    // Open parts (with batches already written to them) have only their
    // `.tmp` name.
    assert_eq!(
        tree(&dir),
        [
            "flows/date=2026-11-30/hour=00/part-00000.arrow.tmp",
            "flows/date=2026-11-30/hour=01/part-00000.arrow.tmp",
        ]
    );
    w.rotate().unwrap();
    assert_eq!(
        tree(&dir),
        [
            "flows/date=2026-11-30/hour=00/part-00000.arrow",
            "flows/date=2026-11-30/hour=01/part-00000.arrow",
        ]
    );
    assert_eq!(w.finished.len(), 2);
    let rows: usize = read_part(&w.finished[0]).iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 5);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_crashed_writer_leaves_no_final_name() {
    // A writer that never finishes (kill -9: no Drop runs) after writing
    // batches: only the `.tmp` exists, never a final name.
    for format in [Format::Arrow, Format::Parquet] {
        let dir = tmp(&format!("crash-{}", format.extension()));
        let mut w: PartitionedWriter<FlowBatchBuilder> =
            PartitionedWriter::new(dir.join("flows"), opts(format)).unwrap();
        for i in 0..10 {
            w.push(&rec(i, BASE), BASE).unwrap();
        }
        std::mem::forget(w);
        let ext = format.extension();
        assert_eq!(
            tree(&dir),
            [format!(
                "flows/date=2026-11-30/hour=00/part-00000.{ext}.tmp"
            )]
        );
        let _ = fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_dropped_writer_finishes_its_parts_completely() {
    let dir = tmp("drop");
    {
        let mut w: PartitionedWriter<FlowBatchBuilder> =
            PartitionedWriter::new(dir.join("flows"), opts(Format::Arrow)).unwrap();
        for i in 0..4 {
            w.push(&rec(i, BASE), BASE).unwrap();
        }
    }
    assert_eq!(
        tree(&dir),
        ["flows/date=2026-11-30/hour=00/part-00000.arrow"]
    );
    let path = dir.join("flows/date=2026-11-30/hour=00/part-00000.arrow");
    let rows: usize = read_part(&path).iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 4);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_part_that_cannot_be_finished_leaves_neither_name() {
    // The final name is taken by a non-empty folder, so the rename fails:
    // the error is reported, the `.tmp` removed, and no file appears under
    // the final name.
    let dir = tmp("failed");
    let mut w: PartitionedWriter<FlowBatchBuilder> =
        PartitionedWriter::new(dir.join("flows"), opts(Format::Arrow)).unwrap();
    for i in 0..4 {
        w.push(&rec(i, BASE), BASE).unwrap();
    }
    let part = dir.join("flows/date=2026-11-30/hour=00/part-00000.arrow");
    fs::create_dir_all(&part).unwrap();
    fs::write(part.join("in-the-way"), b"x").unwrap();
    let e = w.rotate().unwrap_err();
    assert!(
        matches!(&e, SinkError::Io { path, .. } if path == &part),
        "{e}"
    );
    assert!(w.finished.is_empty());
    assert_eq!(
        tree(&dir),
        ["flows/date=2026-11-30/hour=00/part-00000.arrow/in-the-way"]
    );
    assert!(part.is_dir());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn unwritable_root_is_an_error() {
    let e = PartitionedWriter::<FlowBatchBuilder>::new(
        PathBuf::from("/proc/scanwatch-cannot/flows"),
        SinkOptions::default(),
    );
    assert!(matches!(e, Err(SinkError::Io { .. })));
}

#[test]
fn alert_lines_are_eve_alerts_with_the_detection_facts() {
    let dir = tmp("alerts");
    let path = dir.join("sub/alerts.jsonl");
    let sensor = SensorInfo {
        host: Some("sensor-a".into()),
        in_iface: Some("eth1".into()),
    };
    let mut w = AlertWriter::open(&path).unwrap().with_sensor(sensor);
    let horizontal = det(7, ScanKind::Horizontal, vec![445], 40);
    let mut wide = det(8, ScanKind::Vertical, (1..=1500).collect(), 1);
    wide.direction = Direction::Internal;
    let trigger = AlertTrigger {
        dst: addr("198.19.0.5"),
        dport: 445,
        sport: 61_000,
        flow_id: 123_456_789,
    };
    w.write(&AlertEvent {
        trigger: Some(trigger),
        ..AlertEvent::plain("start", BASE + 4_000_000, &horizontal)
    })
    .unwrap();
    w.write(&AlertEvent::plain("end", BASE + 9_000_001, &wide))
        .unwrap();
    w.flush().unwrap();
    assert_eq!(w.written, 2);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let v: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();

    let a = &v[0];
    assert_eq!(a["timestamp"], "2026-11-30T00:00:04.000000+0000");
    assert_eq!(a["event_type"], "alert");
    assert_eq!(a["flow_id"], 123_456_789);
    assert_eq!(a["src_ip"], "198.18.0.2");
    assert_eq!(a["src_port"], 61_000);
    assert_eq!(a["dest_ip"], "198.19.0.5");
    assert_eq!(a["dest_port"], 445);
    assert_eq!(a["proto"], "TCP");
    assert_eq!(a["direction"], "inbound");
    assert_eq!(a["host"], "sensor-a");
    assert_eq!(a["in_iface"], "eth1");
    let sig = &a["alert"];
    assert_eq!(sig["action"], "allowed");
    assert_eq!(
        (sig["gid"].as_u64(), sig["rev"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(sig["signature_id"], 9_101_101);
    assert_eq!(
        sig["signature"],
        "scanwatch inbound TCP horizontal scan started"
    );
    assert_eq!(sig["category"], "Detection of a Network Scan");
    // Inbound, but it found open doors: severity 1.
    assert_eq!(sig["severity"], 1);
    assert_eq!(
        sig["metadata"]["scanwatch_event"],
        serde_json::json!(["start"])
    );
    let s = &sig["context"]["scan"];
    assert_eq!(s["id"], "d0007");
    assert_eq!(s["phase"], "start");
    assert_eq!(s["kind"], "horizontal");
    assert_eq!(s["detector"], "window:5m+trw");
    assert_eq!(s["first_seen"], "2026-11-30T00:00:01.500000+0000");
    assert_eq!(s["last_seen"], "2026-11-30T00:00:09.000000+0000");
    assert_eq!(s["detected"], "2026-11-30T00:00:04.000000+0000");
    assert_eq!(
        (
            s["dst_count"].as_u64(),
            s["probes"].as_u64(),
            s["unanswered"].as_u64(),
            s["open_count"].as_u64()
        ),
        (Some(40), Some(57), Some(14), Some(2))
    );
    assert_eq!(s["ports"], serde_json::json!([445]));
    assert_eq!(s["ports_truncated"], false);
    // Targets: the first LIST_CAP (50) of 40: all, not truncated.
    let targets = s["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 40);
    assert_eq!(targets[39], "198.19.0.39");
    assert_eq!(s["targets_truncated"], false);
    assert_eq!(
        s["open"],
        serde_json::json!(["198.19.0.0:22", "198.19.0.1:22"])
    );

    // No trigger: the first target, no ports; the port list stops at
    // LIST_CAP and says so; an internal scan.
    let b = &v[1];
    assert_eq!(b["timestamp"], "2026-11-30T00:00:09.000001+0000");
    assert!(
        b.get("dest_port").is_none() && b.get("flow_id").is_none(),
        "{b}"
    );
    assert_eq!(b["dest_ip"], "198.19.0.0");
    assert_eq!(b["direction"], "internal");
    assert_eq!(b["alert"]["signature_id"], 9_103_142);
    assert_eq!(
        b["alert"]["signature"],
        "scanwatch internal TCP vertical scan ended"
    );
    let s = &b["alert"]["context"]["scan"];
    assert_eq!(s["phase"], "end");
    let ports = s["ports"].as_array().unwrap();
    assert_eq!((ports.len(), ports[49].as_u64()), (LIST_CAP, Some(50)));
    assert_eq!(s["ports_truncated"], true);
    assert_eq!(s["port_count"], 1500);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn alert_lines_stay_under_the_line_cap_with_the_longest_lists() {
    // IPv6 targets and doors, every port, long lists of new doors: the
    // worst case for a line.
    let v6 = |i: u32| {
        Addr::from(std::net::IpAddr::V6(std::net::Ipv6Addr::new(
            0x2001,
            0xdb8,
            0xffff,
            0xffff,
            0xffff,
            0xffff,
            (i >> 16) as u16,
            i as u16,
        )))
    };
    let mut d = det(9, ScanKind::Block, (1..=65_535).collect(), 0);
    d.scanner = v6(0xffff_ffff);
    d.targets = (0..300).map(v6).collect();
    d.dst_count = 100_000;
    d.open = (0..5000)
        .map(|i| scanwatch_model::endpoint_text(v6(i), Some(65_535)))
        .collect();
    let news = d.open.clone();
    let sensor = SensorInfo {
        host: Some("s".repeat(64)),
        in_iface: Some("i".repeat(64)),
    };
    let mut line = Vec::new();
    let ev = AlertEvent {
        new_open: &news,
        previous_kind: Some(ScanKind::Vertical),
        ..AlertEvent::plain("open_door", BASE, &d)
    };
    crate::eve::write_line(&mut line, &ev, &sensor);
    assert!(line.len() <= MAX_LINE, "{} bytes", line.len());
    let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
    let s = &v["alert"]["context"]["scan"];
    for k in ["ports", "targets", "open", "new_open"] {
        let n = s[k].as_array().unwrap().len();
        assert!((1..=LIST_CAP).contains(&n), "{k}: {n}");
        assert_eq!(s[format!("{k}_truncated")], true, "{k}");
    }
    assert_eq!(s["open_count"], 5000);
}

#[test]
fn signature_ids_are_unique_and_each_has_one_text() {
    let all = all_signatures();
    // Four directions, five protocols: five events of three kinds, and
    // three events (start, update, end) of a distributed scan.
    assert_eq!(all.len(), 4 * 5 * 5 * 3 + 4 * 5 * 3);
    let ids: std::collections::BTreeSet<u32> = all.iter().map(|(i, _)| *i).collect();
    assert_eq!(ids.len(), all.len());
    let texts: std::collections::BTreeSet<&str> = all.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts.len(), all.len());
    // Pinned: published in the README.
    assert_eq!(
        signature_id(Direction::Inbound, proto::TCP, "start", ScanKind::Vertical),
        9_101_102
    );
    assert_eq!(
        signature_id(
            Direction::Internal,
            proto::UDP,
            "open_door",
            ScanKind::Horizontal
        ),
        9_103_231
    );
    assert_eq!(
        signature_id(Direction::External, 47, "kind_change", ScanKind::Block),
        9_104_523
    );
    assert_eq!(
        signature_id(
            Direction::Inbound,
            proto::TCP,
            "start",
            ScanKind::Distributed
        ),
        9_101_104
    );
    assert!(all.contains(&(
        9_101_144,
        "scanwatch inbound TCP distributed scan ended".to_string()
    )));
    assert!(!all.iter().any(|(i, _)| *i == 9_101_124));
}

#[test]
fn reopen_after_a_move_writes_to_a_new_file_and_keeps_the_old_lines() {
    let dir = tmp("reopen");
    let path = dir.join("alerts.jsonl");
    let moved = dir.join("alerts.jsonl.1");
    let mut w = AlertWriter::open(&path).unwrap();
    w.write(&AlertEvent::plain(
        "start",
        BASE + 1_000_000,
        &det(1, ScanKind::Vertical, vec![22], 1),
    ))
    .unwrap();
    w.flush().unwrap();
    // As logrotate does: move the file, then signal.
    fs::rename(&path, &moved).unwrap();
    // Buffered before the reopen: still goes to the old (moved) file.
    w.write(&AlertEvent::plain(
        "update",
        BASE + 2_000_000,
        &det(1, ScanKind::Vertical, vec![22], 1),
    ))
    .unwrap();
    w.reopen().unwrap();
    assert!(path.exists(), "reopen creates the file again");
    w.write(&AlertEvent::plain(
        "end",
        BASE + 3_000_000,
        &det(1, ScanKind::Vertical, vec![22], 1),
    ))
    .unwrap();
    w.flush().unwrap();
    let old = fs::read_to_string(&moved).unwrap();
    let new = fs::read_to_string(&path).unwrap();
    assert_eq!(old.lines().count(), 2, "{old}");
    assert_eq!(new.lines().count(), 1, "{new}");
    assert!(
        old.contains("\"start\"") && old.contains("\"update\"") && !old.contains("\"end\""),
        "{old}"
    );
    assert!(new.contains("\"end\""), "{new}");
    // Reopening a file still in place appends to it.
    w.reopen().unwrap();
    w.write(&AlertEvent::plain(
        "end",
        BASE + 4_000_000,
        &det(2, ScanKind::Vertical, vec![22], 1),
    ))
    .unwrap();
    w.flush().unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 2);
}

#[test]
fn a_cut_last_alert_line_is_moved_aside_never_appended_to() {
    let dir = tmp("cut-tail");
    let path = dir.join("alerts.jsonl");
    fs::create_dir_all(&dir).unwrap();
    // Two whole lines and a third cut by a crash or a full disk.
    fs::write(&path, "{\"a\":1}\n{\"a\":2}\n{\"a\":3, \"cut").unwrap();
    let mut w = AlertWriter::open(&path).unwrap();
    assert_eq!(w.repaired, "{\"a\":3, \"cut".len() as u64);
    w.write(&AlertEvent::plain(
        "start",
        BASE,
        &det(1, ScanKind::Vertical, vec![22], 1),
    ))
    .unwrap();
    w.flush().unwrap();
    let text = fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for l in &lines {
        serde_json::from_str::<serde_json::Value>(l).unwrap();
    }
    let cut = fs::read_to_string(dir.join("alerts.jsonl.cut")).unwrap();
    assert_eq!(cut, "{\"a\":3, \"cut\n");
    // A whole file is left as it is.
    drop(w);
    let w = AlertWriter::open(&path).unwrap();
    assert_eq!(w.repaired, 0);
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_distributed_alert_lists_its_sources_capped_and_has_its_own_signature() {
    let mut d = det(3, ScanKind::Distributed, (1..=60).collect(), 1);
    d.sources = (0..300u32)
        .map(|i| addr(&format!("198.18.{}.{}", i / 256, i % 256)))
        .collect();
    let mut line = Vec::new();
    crate::eve::write_line(
        &mut line,
        &AlertEvent::plain("start", BASE, &d),
        &SensorInfo::default(),
    );
    let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
    let s = &v["alert"]["context"]["scan"];
    assert_eq!(s["kind"], "distributed");
    let listed = s["sources"].as_array().unwrap();
    assert_eq!(listed.len(), LIST_CAP);
    assert_eq!(listed[0], "198.18.0.0");
    assert_eq!(s["sources_truncated"], true);
    assert_eq!(v["alert"]["signature_id"], 9_101_104);
    assert_eq!(
        v["alert"]["signature"],
        "scanwatch inbound TCP distributed scan started"
    );
    // An ordinary scan has an empty list.
    let plain = det(4, ScanKind::Vertical, vec![22], 1);
    crate::eve::write_line(
        &mut line,
        &AlertEvent::plain("start", BASE, &plain),
        &SensorInfo::default(),
    );
    let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(
        v["alert"]["context"]["scan"]["sources"],
        serde_json::json!([])
    );
    assert_eq!(v["alert"]["context"]["scan"]["sources_truncated"], false);
}
