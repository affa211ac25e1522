//! The packet decoder on arbitrary bytes, for every link type we support,
//! then the flow table on what it decoded: never a panic, never a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scanwatch_decode::{decode, linktype};
use scanwatch_flow::{FlowConfig, FlowTable, Output};

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

fuzz_target!(|data: &[u8]| {
    let Some((&sel, pkt)) = data.split_first() else {
        return;
    };
    let lt = LINKS[usize::from(sel) % LINKS.len()];
    // A small table: the cap and eviction path are exercised too, and each
    // run stays cheap.
    let mut table = FlowTable::new(FlowConfig {
        max_flows: 2,
        ..FlowConfig::default()
    });
    let mut out = Output::default();
    // The same bytes as several packets of one flow-ish stream.
    for i in 0..3i64 {
        if let Ok(meta) = decode(lt, pkt, 1_700_000_000_000_000 + i * 1000, pkt.len() as u32) {
            table.process(&meta, &mut out);
        }
    }
    table.drain(&mut out);
});
