//! The capture-file readers (pcap both byte orders and resolutions, pcapng,
//! gzip) on arbitrary bytes: every packet they hand out is decoded. Never a
//! panic, never a hang, never an allocation driven by a lying length. The
//! body is `scanwatch_fuzz_bodies::capture_file` (fuzz/bodies), which the
//! replay test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    scanwatch_fuzz_bodies::capture_file("fuzz.pcap", data);
});
