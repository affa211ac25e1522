//! The widest scans: `scanwatch gen --profile wide` writes one source sending
//! 200,000 SYNs to random (address, port) pairs over a /16, far more distinct
//! contacts than a source keeps exactly. `scanwatch run` must flag it as a
//! block scan early, with the open doors it found listed exactly (counted
//! here from the capture's own SYN-ACKs), and `eval --strict` against gen's
//! truth must pass.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scanwatch"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scanwatch-wide-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const SCANNER: [u8; 4] = [203, 0, 113, 99];

/// Every (address, port) that sent the scanner a SYN-ACK,
/// read straight from the classic pcap (Ethernet, IPv4, TCP): the open doors
/// as the wire has them, independent of scanwatch.
fn syn_acks_to_scanner(path: &Path) -> BTreeSet<(u32, u16)> {
    let data = std::fs::read(path).unwrap();
    assert_eq!(
        &data[0..4],
        &0xA1B2_C3D4u32.to_le_bytes(),
        "gen writes LE µs pcap"
    );
    let mut open = BTreeSet::new();
    let mut off = 24usize;
    while off + 16 <= data.len() {
        let caplen = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
        let p = &data[off + 16..off + 16 + caplen];
        off += 16 + caplen;
        // Ethernet II, IPv4, TCP.
        if p.len() < 14 + 20 + 20 || p[12..14] != [0x08, 0x00] || p[14 + 9] != 6 {
            continue;
        }
        let ip = &p[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        if ip[16..20] != SCANNER {
            continue;
        }
        let tcp = &ip[ihl..];
        let flags = tcp[13];
        if flags & 0x12 == 0x12 {
            let src = u32::from_be_bytes(ip[12..16].try_into().unwrap());
            open.insert((src, u16::from_be_bytes([tcp[0], tcp[1]])));
        }
    }
    assert_eq!(off, data.len(), "ends inside a record");
    open
}

#[test]
fn wide_random_scan_is_flagged_as_block_with_its_open_doors() {
    let d = tmp("run");
    let pcap = d.join("wide.pcap");
    let o = bin()
        .args([
            "gen",
            "--profile",
            "wide",
            "--flows",
            "20000",
            "--seed",
            "3",
            "-o",
        ])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let truth = pcap.with_extension("pcap.truth.csv");
    let t = std::fs::read_to_string(&truth).unwrap();
    assert!(
        t.contains("wide.pcap,203.0.113.99,block,tcp,192.168.0.0/16,1-65535,synthetic"),
        "{t}"
    );
    let open = syn_acks_to_scanner(&pcap);
    assert!(open.len() >= 20, "a few open doors: {}", open.len());

    let out = d.join("out");
    let o = bin()
        .args(["run", "-q", "-r"])
        .arg(&pcap)
        .arg("-w")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let alerts = std::fs::read_to_string(out.join("alerts.jsonl")).unwrap();
    let scans: Vec<serde_json::Value> = alerts
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["src_ip"] == "203.0.113.99")
        .map(|v| v["alert"]["context"]["scan"].clone())
        .collect();
    assert!(!scans.is_empty(), "the wide scan is not flagged:\n{alerts}");
    assert!(scans.iter().all(|s| s["kind"] == "block"), "{scans:?}");
    let start = scans.iter().find(|s| s["phase"] == "start").unwrap();
    // Flagged from its sketches once it holds 256 contacts (SKETCH_START),
    // within its first thousand probes of 200,000.
    assert!(start["probes"].as_u64().unwrap() <= 1000, "{start}");
    let end: Vec<_> = scans.iter().filter(|s| s["phase"] == "end").collect();
    assert_eq!(end.len(), 1, "one record: {scans:?}");
    let end = end[0];
    // Distinct targets and ports of 200,000 random pairs over a /16: about
    // 62,400 of each; the counts are exact or estimates within a few %.
    for k in ["dst_count", "port_count"] {
        let n = end[k].as_u64().unwrap();
        assert!((58_000..=66_000).contains(&n), "{k} = {n}");
    }
    assert!(end["probes"].as_u64().unwrap() >= 199_900, "{end}");
    let listed: BTreeSet<(u32, u16)> = end["open"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let (a, p) = e.as_str().unwrap().rsplit_once(':').unwrap();
            let a: std::net::Ipv4Addr = a.parse().unwrap();
            (u32::from(a), p.parse().unwrap())
        })
        .collect();
    assert_eq!(listed, open, "open doors, exactly");

    let o = bin()
        .args(["eval", "--strict", "--truth"])
        .arg(&truth)
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&d);
}
