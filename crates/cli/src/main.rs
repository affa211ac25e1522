//! `scanwatch`: finds port scans in live traffic and capture files.
//!
//! The binary turns flags and the config file into a pipeline configuration,
//! installs signal handlers, prints progress and the summary, and turns every
//! error into one line on stderr and a non-zero exit. Everything else lives in
//! the library crates.

mod bench;
mod compact;
mod config;
mod convert;
mod eval;
mod gen;
mod run;
mod share;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "scanwatch",
    version,
    about = "Find port scans in live traffic and capture files, and write flows and detections as Arrow",
    long_about = "scanwatch reads packets from interfaces or pcap/pcapng files, tracks every flow, \
decides for every connection attempt whether it was answered, rejected or ignored, flags \
horizontal, vertical and block port scans, and writes flows and detections as Apache Arrow \
files plus JSON-lines alerts."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Capture or read packets, track flows, detect scans, write results.
    Run(Box<run::RunArgs>),
    /// Score detections against a truth file (the format of truth.csv).
    Eval(eval::EvalArgs),
    /// Write a synthetic capture (benign mix, scans, floods) and its truth file.
    Gen(gen::GenArgs),
    /// Measure throughput on a file: plain read against the full pipeline.
    Bench(bench::BenchArgs),
    /// Turn an output tree of Arrow IPC files into the same tree of Parquet files.
    Convert(convert::ConvertArgs),
    /// Merge a closed day's hourly parts into few sorted Parquet files, atomically.
    Compact(compact::CompactArgs),
    /// Share what was seen: a STIX 2.1 bundle or CSV of the scanners.
    Share(share::ShareArgs),
    /// List every alert signature (gid, signature_id, rev, text) as
    /// tab-separated lines, for a SIEM's lookup table.
    Signatures,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run(a) => run::main(*a),
        Cmd::Eval(a) => eval::main(a),
        Cmd::Gen(a) => gen::main(a),
        Cmd::Bench(a) => bench::main(a),
        Cmd::Convert(a) => convert::main(a),
        Cmd::Share(a) => share::main(a),
        Cmd::Compact(a) => compact::main(a),
        Cmd::Signatures => signatures(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("scanwatch: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `scanwatch signatures`: one line per signature id. A reader that goes
/// away (`| head`) ends it quietly, with status 141 as other tools.
fn signatures() -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let mut text = String::from("gid\tsignature_id\trev\tsignature\n");
    for (id, sig) in scanwatch_sink::all_signatures() {
        let (gid, rev) = (scanwatch_sink::GID, scanwatch_sink::REV);
        text.push_str(&format!("{gid}\t{id}\t{rev}\t{sig}\n"));
    }
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::from(141)),
        r => r.map(|()| ExitCode::SUCCESS).map_err(Into::into),
    }
}
