//! The committed broken captures of `pcaps/broken/` (made by
//! `scripts/make-broken.py`): each one's exit code, message, and what was
//! kept, as `pcaps/broken/README.md` says.

use std::path::{Path, PathBuf};
use std::process::Command;

fn broken(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../pcaps/broken")
        .join(name)
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                v.extend(walk(&p));
            } else {
                v.push(p);
            }
        }
    }
    v
}

/// Packets, IP packets, undecodable packets and flows from the summary line.
fn summary(stderr: &str) -> Option<[u64; 4]> {
    let line = stderr.lines().find(|l| l.contains(" packets ("))?;
    let num_before = |word: &str| -> Option<u64> {
        let i = line.find(word)?;
        let head = line[..i].trim_end();
        let start = head
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |j| j + 1);
        head[start..].parse().ok()
    };
    Some([
        num_before(" packets (")?,
        num_before(" IP,")?,
        num_before(" undecodable")?,
        num_before(" flows;")?,
    ])
}

struct Case {
    file: &'static str,
    code: i32,
    message: &'static str,
    /// packets, IP, undecodable, flows; None when nothing could be read.
    counts: Option<[u64; 4]>,
}

const CASES: &[Case] = &[
    Case {
        file: "empty.pcap",
        code: 1,
        message: "file is empty",
        counts: None,
    },
    Case {
        file: "short_global_header.pcap",
        code: 1,
        message: "truncated at byte 0 (inside pcap global header)",
        counts: None,
    },
    Case {
        file: "truncated_record.pcap",
        code: 1,
        message: "truncated at byte 234 (inside packet data)",
        counts: Some([3, 3, 0, 2]),
    },
    Case {
        file: "truncated_record_header.pcap",
        code: 1,
        message: "truncated at byte 234 (inside record header)",
        counts: Some([3, 3, 0, 2]),
    },
    Case {
        file: "caplen_over_snaplen.pcap",
        code: 0,
        message: "",
        counts: Some([2, 2, 0, 1]),
    },
    Case {
        file: "caplen_over_256k.pcap",
        code: 1,
        message: "corrupt at byte 164: record claims 300000 captured bytes",
        counts: Some([2, 2, 0, 1]),
    },
    Case {
        file: "wrong_magic.pcap",
        code: 1,
        message: "not a capture file",
        counts: None,
    },
    Case {
        file: "pcapng_bad_block_length.pcapng",
        code: 1,
        message: "invalid pcapng block length 13",
        counts: Some([2, 2, 0, 1]),
    },
    Case {
        file: "pcapng_unknown_block.pcapng",
        code: 0,
        message: "",
        counts: Some([2, 2, 0, 1]),
    },
    Case {
        file: "ipv4_ihl0.pcap",
        code: 0,
        message: "",
        counts: Some([4, 2, 2, 1]),
    },
    Case {
        file: "ipv6_ext_loop.pcap",
        code: 0,
        message: "",
        counts: Some([3, 3, 0, 2]),
    },
    Case {
        file: "icmp_quoting_garbage.pcap",
        code: 0,
        message: "",
        counts: Some([5, 5, 0, 2]),
    },
];

#[test]
fn every_broken_file_behaves_as_documented() {
    let listed: Vec<_> = CASES.iter().map(|c| c.file).collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(broken(""))
        .expect("pcaps/broken exists")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    on_disk.sort();
    let mut want: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(on_disk, want, "every committed broken file has a case");

    for c in CASES {
        let out = std::env::temp_dir().join(format!(
            "scanwatch-broken-{}-{}",
            std::process::id(),
            c.file
        ));
        let _ = std::fs::remove_dir_all(&out);
        let o = Command::new(env!("CARGO_BIN_EXE_scanwatch"))
            .arg("run")
            .arg("-r")
            .arg(broken(c.file))
            .arg("-w")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        let ctx = format!("{}: status {:?}\n{err}", c.file, o.status.code());
        assert!(!err.contains("panicked"), "{ctx}");
        assert_eq!(o.status.code(), Some(c.code), "{ctx}");
        assert!(err.contains(c.message), "{ctx}");
        match c.counts {
            None => {
                // Nothing readable: a single line, nothing written.
                assert_eq!(err.trim().lines().count(), 1, "{ctx}");
                assert!(walk(&out.join("flows")).is_empty(), "{ctx}");
            }
            Some(counts) => {
                assert_eq!(summary(&err), Some(counts), "{ctx}");
                // What was read is written, under final names only.
                let files = walk(&out.join("flows"));
                assert_eq!(files.len(), 1, "{ctx} {files:?}");
                assert!(files[0].extension().is_some_and(|e| e == "arrow"), "{ctx}");
                let bytes = std::fs::read(&files[0]).unwrap();
                assert!(
                    bytes.starts_with(b"ARROW1") && bytes.ends_with(b"ARROW1"),
                    "{ctx}"
                );
            }
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}
