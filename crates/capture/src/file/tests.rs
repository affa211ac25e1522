//! Reader tests over capture files built byte by byte.

use super::*;
use std::io::Write;

fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scanwatch-capture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn pcap(swapped: bool, nanos: bool, link: u32, recs: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let w32 = |v: u32| {
        if swapped {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let w16 = |v: u16| {
        if swapped {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut out = Vec::new();
    out.extend(w32(if nanos { PCAP_MAGIC_NS } else { PCAP_MAGIC_US }));
    out.extend(w16(2));
    out.extend(w16(4));
    out.extend(w32(0));
    out.extend(w32(0));
    out.extend(w32(65535));
    out.extend(w32(link));
    for (sec, frac, data) in recs {
        out.extend(w32(*sec));
        out.extend(w32(*frac));
        out.extend(w32(data.len() as u32));
        out.extend(w32(data.len() as u32 + 10));
        out.extend_from_slice(data);
    }
    out
}

fn block(ty: u32, body: &[u8]) -> Vec<u8> {
    let len = 12 + body.len().div_ceil(4) * 4;
    let mut out = Vec::new();
    out.extend(ty.to_le_bytes());
    out.extend((len as u32).to_le_bytes());
    out.extend_from_slice(body);
    out.resize(len - 4, 0);
    out.extend((len as u32).to_le_bytes());
    out
}

fn shb() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(PCAPNG_BOM.to_le_bytes());
    b.extend(1u16.to_le_bytes());
    b.extend(0u16.to_le_bytes());
    b.extend((-1i64).to_le_bytes());
    block(PCAPNG_SHB, &b)
}

fn idb(link: u16, tsresol: Option<u8>) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(link.to_le_bytes());
    b.extend(0u16.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    if let Some(r) = tsresol {
        b.extend(9u16.to_le_bytes());
        b.extend(1u16.to_le_bytes());
        b.extend([r, 0, 0, 0]);
        b.extend([0u8; 4]);
    }
    block(1, &b)
}

fn epb(iface: u32, ts: u64, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(iface.to_le_bytes());
    b.extend(((ts >> 32) as u32).to_le_bytes());
    b.extend((ts as u32).to_le_bytes());
    b.extend((data.len() as u32).to_le_bytes());
    b.extend((data.len() as u32).to_le_bytes());
    b.extend_from_slice(data);
    block(6, &b)
}

type Packets = Vec<(Micros, u32, Vec<u8>)>;

fn read_all(p: &Path) -> (Packets, Option<CaptureError>) {
    let mut src = match FileSource::open(&[p.to_path_buf()], None) {
        Ok(s) => s,
        Err(e) => return (vec![], Some(e)),
    };
    let mut out = Vec::new();
    loop {
        match src.next_packet() {
            Ok(Next::Packet(r)) => out.push((r.ts, r.link_type, r.data.to_vec())),
            Ok(_) => return (out, src.problems().into_iter().next().map(|p| p.error)),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// Every packet of a source (time, bytes) and the names of its damaged
/// inputs.
fn drain(mut src: FileSource) -> (Vec<(Micros, Vec<u8>)>, Vec<String>) {
    let mut out = Vec::new();
    loop {
        match src.next_packet() {
            Ok(Next::Packet(r)) => out.push((r.ts, r.data.to_vec())),
            Ok(_) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let bad = src
        .problems()
        .iter()
        .map(|p| p.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    (out, bad)
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scanwatch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn pcap_both_byte_orders_and_resolutions() {
    for swapped in [false, true] {
        for nanos in [false, true] {
            let frac = if nanos { 123_456_789 } else { 123_456 };
            let f = pcap(swapped, nanos, 1, &[(10, frac, b"abcd"), (11, 0, b"ef")]);
            let p = tmp(&format!("o{swapped}{nanos}.pcap"), &f);
            let (pk, err) = read_all(&p);
            assert!(err.is_none(), "{err:?}");
            assert_eq!(pk.len(), 2);
            assert_eq!(pk[0].0, 10_123_456);
            assert_eq!(pk[0].2, b"abcd");
            assert_eq!(pk[1].0, 11_000_000);
        }
    }
}

#[test]
fn pcapng_two_interfaces_two_link_types_and_resolutions() {
    let mut f = shb();
    f.extend(idb(1, None));
    f.extend(idb(101, Some(9)));
    f.extend(block(0x0000_0bad, &[1, 2, 3, 4])); // custom block: skipped
    f.extend(epb(0, 5_000_001, b"eth"));
    f.extend(epb(1, 7_000_000_002_000, b"raw"));
    let p = tmp("multi.pcapng", &f);
    let (pk, err) = read_all(&p);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(pk.len(), 2);
    assert_eq!((pk[0].0, pk[0].1), (5_000_001, 1));
    assert_eq!((pk[1].0, pk[1].1), (7_000_000_002, 101));
}

#[test]
fn gzip_is_detected_by_magic() {
    let f = pcap(false, false, 1, &[(1, 2, b"xyz")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&f).unwrap();
    let p = tmp("z.pcap.whatever", &gz.finish().unwrap());
    let (pk, err) = read_all(&p);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(pk[0].2, b"xyz");
}

#[test]
fn truncated_record_keeps_what_came_before() {
    let mut f = pcap(false, false, 1, &[(1, 0, b"one"), (2, 0, b"twotwo")]);
    f.truncate(f.len() - 3);
    let p = tmp("cut.pcap", &f);
    let (pk, err) = read_all(&p);
    assert_eq!(pk.len(), 1);
    let e = err.unwrap();
    assert!(e.is_truncation(), "{e}");
    assert!(e.to_string().contains("1 packets before the cut"), "{e}");
}

#[test]
fn broken_files_give_clear_errors() {
    let (_, e) = read_all(&tmp("empty.pcap", b""));
    assert!(matches!(e, Some(CaptureError::Empty { .. })), "{e:?}");
    let (_, e) = read_all(&tmp("hdr.pcap", &pcap(false, false, 1, &[])[..10]));
    assert!(matches!(e, Some(CaptureError::Truncated { .. })), "{e:?}");
    let (_, e) = read_all(&tmp("magic.pcap", b"hello world, not a pcap"));
    assert!(matches!(e, Some(CaptureError::NotACapture { .. })), "{e:?}");
    // caplen over 256 KiB
    let mut big = pcap(false, false, 1, &[(1, 0, b"x")]);
    let at = 24 + 8;
    big[at..at + 4].copy_from_slice(&(300_000u32).to_le_bytes());
    let (_, e) = read_all(&tmp("big.pcap", &big));
    assert!(matches!(e, Some(CaptureError::Corrupt { .. })), "{e:?}");
    // pcapng block with a bad length
    let mut ng = shb();
    ng.extend(idb(1, None));
    let mut bad = epb(0, 1, b"abcd");
    bad[4..8].copy_from_slice(&7u32.to_le_bytes());
    ng.extend(bad);
    let (_, e) = read_all(&tmp("badlen.pcapng", &ng));
    assert!(matches!(e, Some(CaptureError::Corrupt { .. })), "{e:?}");
    // a packet for an interface never declared
    let mut ng = shb();
    ng.extend(epb(3, 1, b"abcd"));
    let (_, e) = read_all(&tmp("noif.pcapng", &ng));
    assert!(matches!(e, Some(CaptureError::Corrupt { .. })), "{e:?}");
    // missing file
    let (_, e) = read_all(Path::new("/nonexistent/x.pcap"));
    assert!(matches!(e, Some(CaptureError::Io { .. })), "{e:?}");
}

#[test]
fn directory_is_ordered_by_first_timestamp_and_notes_are_skipped_quietly() {
    let dir = fresh_dir("dir");
    // Name order is the reverse of time order.
    std::fs::write(dir.join("a.pcap"), pcap(false, false, 1, &[(2, 0, b"b")])).unwrap();
    std::fs::write(dir.join("b.pcap"), pcap(false, false, 1, &[(1, 0, b"a")])).unwrap();
    std::fs::write(dir.join("notes.txt"), b"not a capture").unwrap();
    std::fs::write(dir.join(".hidden"), b"not a capture").unwrap();
    let src = FileSource::open(std::slice::from_ref(&dir), None).unwrap();
    let (got, bad) = drain(src);
    let data: Vec<_> = got.into_iter().map(|p| p.1).collect();
    assert_eq!(data, vec![b"a".to_vec(), b"b".to_vec()]);
    assert!(bad.is_empty(), "{bad:?}");
}

#[test]
fn inputs_are_merged_by_time_whatever_their_order() {
    let dir = fresh_dir("merge");
    // Two halves of one stream, interleaved, with a tie at t=3 (the file
    // with the earlier first packet wins it) and a pcapng half.
    let a = pcap(
        false,
        false,
        1,
        &[(1, 0, b"a1"), (3, 0, b"a3"), (5, 0, b"a5")],
    );
    let mut b = shb();
    b.extend(idb(1, None));
    for (t, d) in [(2u64, &b"b2"[..]), (3, b"b3"), (4, b"b4"), (9, b"b9")] {
        b.extend(epb(0, t * 1_000_000, d));
    }
    let (pa, pb) = (dir.join("z.pcap"), dir.join("y.pcapng"));
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pb, b).unwrap();
    let want: Vec<&[u8]> = vec![b"a1", b"b2", b"a3", b"b3", b"b4", b"a5", b"b9"];
    for order in [[&pa, &pb], [&pb, &pa]] {
        let list: Vec<PathBuf> = order.iter().map(|p| p.to_path_buf()).collect();
        let (got, bad) = drain(FileSource::open(&list, None).unwrap());
        let data: Vec<_> = got.iter().map(|p| p.1.as_slice()).collect();
        assert_eq!(data, want);
        assert!(got.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(bad.is_empty());
    }
}

#[test]
fn a_damaged_member_is_reported_and_the_rest_is_read() {
    let dir = fresh_dir("damaged");
    std::fs::write(dir.join("1.pcap"), pcap(false, false, 1, &[(1, 0, b"one")])).unwrap();
    let mut cut = pcap(false, false, 1, &[(2, 0, b"two"), (4, 0, b"four")]);
    cut.truncate(cut.len() - 2);
    std::fs::write(dir.join("2.pcap"), cut).unwrap();
    std::fs::write(
        dir.join("3.pcap"),
        pcap(false, false, 1, &[(3, 0, b"three")]),
    )
    .unwrap();
    std::fs::write(dir.join("4.bin"), b"\x13\x37random bytes, not a capture").unwrap();
    std::fs::write(dir.join("5.pcap"), b"").unwrap();
    std::fs::write(
        dir.join("6.pcap"),
        pcap(false, false, 1, &[(5, 0, b"five")]),
    )
    .unwrap();
    let (got, mut bad) = drain(FileSource::open(std::slice::from_ref(&dir), None).unwrap());
    let data: Vec<_> = got.into_iter().map(|p| p.1).collect();
    let want: Vec<&[u8]> = vec![b"one", b"two", b"three", b"five"];
    assert_eq!(data, want);
    bad.sort();
    assert_eq!(bad, ["2.pcap", "4.bin", "5.pcap"]);
}

#[test]
fn more_overlapping_inputs_than_the_cap_is_a_clear_error() {
    let dir = fresh_dir("cap");
    let mut files = Vec::new();
    for i in 0..4u32 {
        let p = dir.join(format!("{i}.pcap"));
        // Every file spans t=1..10: all four overlap.
        std::fs::write(
            &p,
            pcap(false, false, 1, &[(1 + i, 0, b"x"), (10, i, b"y")]),
        )
        .unwrap();
        files.push(p);
    }
    let mut src = FileSource::open_with_cap(&files, None, 3).unwrap();
    let e = loop {
        match src.next_packet() {
            Ok(Next::Packet(_)) => {}
            Ok(_) => panic!("no error"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(e, CaptureError::TooManyOpen { count: 4, cap: 3 }),
        "{e}"
    );
    // Files that follow one another never count together.
    let mut seq = Vec::new();
    for i in 0..4u32 {
        let p = dir.join(format!("s{i}.pcap"));
        std::fs::write(
            &p,
            pcap(false, false, 1, &[(10 * i, 0, b"x"), (10 * i + 5, 0, b"y")]),
        )
        .unwrap();
        seq.push(p);
    }
    let (got, bad) = drain(FileSource::open_with_cap(&seq, None, 1).unwrap());
    assert_eq!((got.len(), bad.len()), (8, 0));
}

#[test]
fn bpf_filter_applies_to_files() {
    // Two raw-IP packets: one UDP to port 53, one TCP.
    let udp = etherparse_like_udp();
    let mut tcp = udp.clone();
    tcp[9] = 6;
    let f = pcap(false, false, 101, &[(1, 0, &udp), (2, 0, &tcp)]);
    let p = tmp("filt.pcap", &f);
    let mut src = FileSource::open(&[p], Some("udp".into())).unwrap();
    let mut n = 0;
    loop {
        match src.next_packet() {
            Ok(Next::Packet(_)) => n += 1,
            Ok(_) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((n, src.filtered), (1, 1));
}

fn etherparse_like_udp() -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    p.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 8, 0, 0]);
    p
}

/// Records of 120 bytes, each starting with its index and filled with a
/// non-zero byte of it, so that a zeroed or misplaced packet shows.
fn numbered(from: u32, n: u32) -> Vec<(u32, u32, Vec<u8>)> {
    (from..from + n)
        .map(|i| {
            let mut d = vec![(i % 251 + 1) as u8; 120];
            d[..4].copy_from_slice(&i.to_le_bytes());
            (1_700_000_000 + i / 1000, i % 1000, d)
        })
        .collect()
}

fn check_numbered(packets: &[(Micros, Vec<u8>)]) {
    for (k, (_, d)) in packets.iter().enumerate() {
        let i = u32::from_le_bytes(d[..4].try_into().unwrap());
        assert_eq!(i as usize, k, "packet {k} out of place");
        assert!(
            d[4..].iter().all(|&b| b == (i % 251 + 1) as u8),
            "packet {k} damaged"
        );
    }
}

/// Another process cuts the file under the reader (at a page boundary, or
/// inside a page and a record).
fn cut_while_read(cut: u64) {
    let recs = numbered(0, 30_000);
    let refs: Vec<(u32, u32, &[u8])> = recs.iter().map(|(s, f, d)| (*s, *f, &d[..])).collect();
    let p = tmp(
        &format!("cut-while-read-{cut}.pcap"),
        &pcap(false, false, 1, &refs),
    );
    let mut src = FileSource::open(std::slice::from_ref(&p), None).unwrap();
    let mut got: Vec<(Micros, Vec<u8>)> = Vec::new();
    for _ in 0..1000 {
        match src.next_packet().unwrap() {
            Next::Packet(r) => got.push((r.ts, r.data.to_vec())),
            _ => panic!("ended early"),
        }
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let err = loop {
        match src.next_packet() {
            Ok(Next::Packet(r)) => got.push((r.ts, r.data.to_vec())),
            Ok(_) => match src.problems().into_iter().next() {
                Some(problem) => break problem.error,
                None => panic!("the cut was not reported"),
            },
            Err(e) => break e,
        }
    };
    assert!(err.is_truncation(), "{err}");
    // Every whole record before the cut, none after, none damaged.
    let whole = (cut as usize - 24) / (16 + 120);
    assert_eq!(got.len(), whole);
    check_numbered(&got);
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn a_file_cut_while_it_is_read_is_reported_with_what_came_before_it() {
    cut_while_read(1 << 20);
    cut_while_read((1 << 20) + 100);
}

#[test]
fn a_file_that_grows_while_it_is_read_is_read_to_its_new_end() {
    let first = numbered(0, 5_000);
    let refs: Vec<(u32, u32, &[u8])> = first.iter().map(|(s, f, d)| (*s, *f, &d[..])).collect();
    let p = tmp("grows-while-read.pcap", &pcap(false, false, 1, &refs));
    let mut src = FileSource::open(std::slice::from_ref(&p), None).unwrap();
    let mut got: Vec<(Micros, Vec<u8>)> = Vec::new();
    for _ in 0..4_000 {
        match src.next_packet().unwrap() {
            Next::Packet(r) => got.push((r.ts, r.data.to_vec())),
            _ => panic!("ended early"),
        }
    }
    // A writer appends records (the header is not repeated).
    let more = numbered(5_000, 3_000);
    let refs: Vec<(u32, u32, &[u8])> = more.iter().map(|(s, f, d)| (*s, *f, &d[..])).collect();
    let tail = pcap(false, false, 1, &refs)[24..].to_vec();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&p)
        .unwrap()
        .write_all(&tail)
        .unwrap();
    while let Next::Packet(r) = src.next_packet().unwrap() {
        got.push((r.ts, r.data.to_vec()));
    }
    assert_eq!(got.len(), 8_000);
    check_numbered(&got);
    std::fs::remove_file(&p).unwrap();
}
