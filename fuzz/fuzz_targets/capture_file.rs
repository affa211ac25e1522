//! The capture-file readers (pcap both byte orders and resolutions, pcapng,
//! gzip) on arbitrary bytes: every packet they hand out is decoded. Never a
//! panic, never a hang, never an allocation driven by a lying length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanwatch_capture::{FileSource, Next, PacketSource};
use scanwatch_decode::decode;

fuzz_target!(|data: &[u8]| {
    let Ok(mut src) = FileSource::from_bytes("fuzz.pcap", data.to_vec()) else {
        return;
    };
    for _ in 0..100_000 {
        match src.next_packet() {
            Ok(Next::Packet(p)) => {
                let _ = decode(p.link_type, p.data, p.ts, p.wire_len);
            }
            Ok(Next::Idle | Next::Again) => {}
            Ok(Next::End) | Err(_) => break,
        }
    }
});
