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
            Ok(_) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
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
fn directory_is_read_in_name_order_skipping_non_captures() {
    let dir = std::env::temp_dir().join(format!("scanwatch-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("b.pcap"), pcap(false, false, 1, &[(2, 0, b"b")])).unwrap();
    std::fs::write(dir.join("a.pcap"), pcap(false, false, 1, &[(1, 0, b"a")])).unwrap();
    std::fs::write(dir.join("notes.txt"), b"not a capture").unwrap();
    let mut src = FileSource::open(std::slice::from_ref(&dir), None).unwrap();
    let mut got = Vec::new();
    while let Ok(Next::Packet(p)) = src.next_packet() {
        got.push(p.data.to_vec());
    }
    assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec()]);
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
