//! Replays the fuzz targets' inputs without libFuzzer, through the targets'
//! own bodies (`scanwatch_fuzz_bodies`, the crate `fuzz/fuzz_targets/`
//! wrap): every file kept in `fuzz/regressions/` (inputs that once crashed
//! a target), the broken captures of `pcaps/broken/` against their rows of
//! `pcaps/broken/expect.csv`, and the project's own captures. A panic here
//! is a regression.

use scanwatch_fuzz_bodies::{broken, capture_file, decode, End};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The files of `dir`, sorted, without dot-files and notes (`*.md`).
fn files(dir: &Path) -> Vec<PathBuf> {
    let rd = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                && p.extension().is_none_or(|e| e != "md")
        })
        .collect();
    v.sort();
    v
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn kept_crash_inputs_replay_without_panic() {
    // Each folder exists (with a .keep) even while empty; the loops below
    // run over whatever the fuzzers kept.
    let decode_inputs = files(&root().join("fuzz/regressions/decode"));
    let capture_inputs = files(&root().join("fuzz/regressions/capture_file"));
    for f in &decode_inputs {
        decode(&read(f));
    }
    for f in &capture_inputs {
        let r = capture_file(&f.display().to_string(), &read(f));
        assert_ne!(r.end, End::StepLimit, "{}: {r:?}", f.display());
    }
    eprintln!(
        "replayed {} decode and {} capture_file crash inputs",
        decode_inputs.len(),
        capture_inputs.len()
    );
}

#[test]
fn broken_files_read_as_their_table_rows_say() {
    let cases = broken::cases().unwrap();
    assert!(!cases.is_empty());
    for c in &cases {
        let r = capture_file(&c.file, &read(&c.path()));
        // What the reader hands out is what the command counts; it stops at
        // an error exactly when the command exits 1.
        let packets = c.counts.map_or(0, |n| n.packets);
        assert_eq!(r.packets, packets, "{}: {r:?}", c.file);
        match &r.end {
            End::Error(msg) => {
                assert_eq!(c.exit, 1, "{}: {r:?}", c.file);
                assert!(msg.contains(&c.message), "{}: {msg:?}", c.file);
            }
            End::Clean => assert_eq!(c.exit, 0, "{}: {r:?}", c.file),
            End::StepLimit => panic!("{}: the reader did not end: {r:?}", c.file),
        }
    }
}

#[test]
fn decode_body_makes_flows_from_a_real_packet() {
    // The first packet of an own capture (Ethernet: selector 0) through the
    // decode body: one flow, so the body really decodes and tracks.
    let data = read(&root().join("pcaps/nmap_syn_vertical_1-1000.pcap"));
    let caplen = u32::from_le_bytes(data[32..36].try_into().unwrap()) as usize;
    let mut input = vec![0u8];
    input.extend_from_slice(&data[40..40 + caplen]);
    assert_eq!(decode(&input), 1);
    assert_eq!(decode(&[]), 0);
}

#[test]
fn own_captures_read_whole() {
    let own: Vec<PathBuf> = files(&root().join("pcaps"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    assert!(own.len() >= 9, "{own:?}");
    for f in own {
        let r = capture_file("own", &read(&f));
        assert!(
            r.packets > 0 && r.end == End::Clean,
            "{}: {r:?}",
            f.display()
        );
    }
}
