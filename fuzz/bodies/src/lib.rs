//! What the fuzz targets run, as plain functions: [`decode`] (the packet
//! decoder, then a small flow table, on one input) and [`capture_file`]
//! (the capture-file readers on a whole input, each packet decoded). The
//! targets in `fuzz/fuzz_targets/` wrap these in `fuzz_target!`, and
//! `crates/pipeline/tests/fuzz_regressions.rs` replays the kept crash
//! inputs and the broken captures through the very same functions, so the
//! replay cannot drift from what was fuzzed.
//!
//! [`broken`] reads `pcaps/broken/expect.csv`, the one table of what
//! scanwatch does with each broken capture, for every test that checks them.

pub mod broken;

use scanwatch_capture::{FileSource, Next, PacketSource};
use scanwatch_decode::linktype;
use scanwatch_flow::{FlowConfig, FlowTable, Output};

/// The link types the decode target chooses from with its first byte.
pub const LINKS: [u32; 8] = [
    linktype::ETHERNET,
    linktype::RAW,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL,
    linktype::LINUX_SLL2,
    linktype::NULL,
    linktype::LOOP,
];

/// Most reader steps [`capture_file`] takes on one input.
pub const MAX_STEPS: usize = 100_000;

/// The decode target: the first byte selects the link type ([`LINKS`]), the
/// rest is one packet, decoded three times as packets of one stream into a
/// two-flow table (so the cap and eviction paths run too), then drained.
/// Returns the flow records written.
pub fn decode(data: &[u8]) -> usize {
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
        if let Ok(meta) = scanwatch_decode::decode(lt, pkt, 1_700_000_000_000_000 + i * 1000) {
            table.process(&meta, &mut out);
        }
    }
    table.drain(&mut out);
    out.flows.len()
}

/// How reading one input ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The reader reached the end of the input.
    Clean,
    /// The reader (or opening the input) failed, with this message.
    Error(String),
    /// [`MAX_STEPS`] steps went by without an end: a hang.
    StepLimit,
}

/// What [`capture_file`] saw: packets handed out, and how reading ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    pub packets: u64,
    pub end: End,
}

/// The capture_file target: `data` as a whole capture file named `name`
/// (pcap in both byte orders and resolutions, pcapng, gzip), read through
/// the in-memory reader for at most [`MAX_STEPS`] steps, every packet it
/// hands out decoded.
pub fn capture_file(name: &str, data: &[u8]) -> Replay {
    let mut src = match FileSource::from_bytes(name, data.to_vec()) {
        Ok(s) => s,
        Err(e) => {
            return Replay {
                packets: 0,
                end: End::Error(e.to_string()),
            }
        }
    };
    let mut packets = 0;
    for _ in 0..MAX_STEPS {
        match src.next_packet() {
            Ok(Next::Packet(p)) => {
                packets += 1;
                let _ = scanwatch_decode::decode(p.link_type, p.data, p.ts);
            }
            Ok(Next::Idle | Next::Again) => {}
            Ok(Next::End) => {
                // A damaged input ends its part of the stream and is
                // reported as a problem rather than an error.
                let end = match src.problems().into_iter().next() {
                    Some(p) => End::Error(p.error.to_string()),
                    None => End::Clean,
                };
                return Replay { packets, end };
            }
            Err(e) => {
                return Replay {
                    packets,
                    end: End::Error(e.to_string()),
                }
            }
        }
    }
    Replay {
        packets,
        end: End::StepLimit,
    }
}
