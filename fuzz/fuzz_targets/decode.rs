//! The packet decoder on arbitrary bytes, for every link type we support,
//! then the flow table on what it decoded: never a panic, never a hang.
//! The body is `scanwatch_fuzz_bodies::decode` (fuzz/bodies), which the
//! replay test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    scanwatch_fuzz_bodies::decode(data);
});
