//! Replays the fuzz targets' inputs without libFuzzer: every file kept in
//! `fuzz/regressions/` (inputs that once crashed a target) and the broken
//! captures of `pcaps/broken/`, through the same code the targets run
//! (`fuzz/fuzz_targets/`). A panic here is a regression.

use scanwatch_capture::{FileSource, Next, PacketSource};
use scanwatch_decode::{decode, linktype};
use scanwatch_flow::{FlowConfig, FlowTable, Output};
use std::path::{Path, PathBuf};

const LINKS: [u32; 8] = [
    linktype::ETHERNET,
    linktype::RAW,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL,
    linktype::LINUX_SLL2,
    linktype::NULL,
    linktype::LOOP,
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                        && p.extension().is_none_or(|e| e != "md")
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn decode_target(data: &[u8]) -> usize {
    let Some((&sel, pkt)) = data.split_first() else {
        return 0;
    };
    let lt = LINKS[usize::from(sel) % LINKS.len()];
    let mut table = FlowTable::new(FlowConfig {
        max_flows: 2,
        ..FlowConfig::default()
    });
    let mut out = Output::default();
    for i in 0..3i64 {
        if let Ok(meta) = decode(lt, pkt, 1_700_000_000_000_000 + i * 1000, pkt.len() as u32) {
            table.process(&meta, &mut out);
        }
    }
    table.drain(&mut out);
    out.flows.len()
}

/// Returns (packets handed out, whether reading ended in an error).
fn capture_target(name: &str, data: &[u8]) -> (u64, bool) {
    let Ok(mut src) = FileSource::from_bytes(name, data.to_vec()) else {
        return (0, true);
    };
    let mut n = 0;
    for _ in 0..100_000 {
        match src.next_packet() {
            Ok(Next::Packet(p)) => {
                n += 1;
                let _ = decode(p.link_type, p.data, p.ts, p.wire_len);
            }
            Ok(Next::Idle | Next::Again) => {}
            // A damaged input ends its part of the stream and is reported.
            Ok(Next::End) => return (n, !src.problems().is_empty()),
            Err(_) => return (n, true),
        }
    }
    panic!("{name}: the reader did not end within 100000 steps");
}

#[test]
fn fuzz_regressions_and_broken_files_replay_without_panic() {
    for f in files(&root().join("fuzz/regressions/decode")) {
        decode_target(&std::fs::read(&f).unwrap());
    }
    for f in files(&root().join("fuzz/regressions/capture_file")) {
        capture_target(&f.display().to_string(), &std::fs::read(&f).unwrap());
    }
    // The broken captures through the in-memory reader: same results as
    // from disk (crates/cli/tests/broken.rs checks the command's view).
    let broken = files(&root().join("pcaps/broken"));
    assert!(broken.len() >= 12, "{broken:?}");
    for f in &broken {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let (n, failed) = capture_target(&name, &std::fs::read(f).unwrap());
        let want = match name.as_str() {
            "empty.pcap" | "short_global_header.pcap" | "wrong_magic.pcap" => (0, true),
            "truncated_record.pcap" | "truncated_record_header.pcap" => (3, true),
            "caplen_over_256k.pcap" | "pcapng_bad_block_length.pcapng" => (2, true),
            "caplen_over_snaplen.pcap" | "pcapng_unknown_block.pcapng" => (2, false),
            "ipv4_ihl0.pcap" => (4, false),
            "ipv6_ext_loop.pcap" => (3, false),
            "icmp_quoting_garbage.pcap" => (5, false),
            other => panic!("{other}: no expectation written for this broken file"),
        };
        assert_eq!((n, failed), want, "{name}");
    }
    // The project's own captures (the fuzz seed corpus) read whole.
    for f in files(&root().join("pcaps"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
    {
        let data = std::fs::read(&f).unwrap();
        let (n, failed) = capture_target("own", &data);
        assert!(n > 0 && !failed, "{}", f.display());
    }
}
