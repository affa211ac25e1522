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
mod correlate;
mod cryptopan;
mod eval;
mod gen;
mod run;
mod share;
mod stix;
mod taxii;
mod taxii_live;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `scanwatch --version`: the crate version, the commit and its date (from
/// build.rs: `git`, or `SCANWATCH_COMMIT` for packagers, else `unknown`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SCANWATCH_BUILD"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "scanwatch",
    version = VERSION,
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
    /// Campaigns across sensors: the detector over the flows of many
    /// sensors together, for scanners below every sensor's threshold.
    Correlate(correlate::CorrelateArgs),
    /// Share what was seen: a STIX 2.1 bundle or CSV of the scanners.
    Share(share::ShareArgs),
    /// Check a config file, or print the configuration in force.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// List every alert signature (gid, signature_id, rev, text) as
    /// tab-separated lines, for a SIEM's lookup table.
    Signatures,
    /// Write the man pages or a shell's completion script (for packagers).
    #[command(hide = true, subcommand)]
    Generate(Generate),
}

#[derive(Subcommand)]
enum Generate {
    /// Man pages: scanwatch.1 and scanwatch-COMMAND.1 for each command.
    Man {
        /// Folder to write them into (created if missing).
        dir: PathBuf,
    },
    /// The completion script of SHELL, named as that shell looks for it
    /// (bash: scanwatch, zsh: _scanwatch, fish: scanwatch.fish).
    Completions {
        shell: clap_complete::Shell,
        /// Folder to write it into (created if missing).
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Report every unknown key and bad value of a config file, with its
    /// line and column (exit 1 when there is any).
    Check {
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
    },
    /// Print the configuration in force (the file given with --config, the
    /// flags of `run`, the defaults and the caps the memory budget gives)
    /// as a config file that `run --config` reads back.
    Show(Box<run::RunArgs>),
}

fn main() -> ExitCode {
    // The matches tell `run` which flags were given (a flag wins over the
    // config file even when it repeats a default).
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let sub = |name: &str| matches.subcommand_matches(name);
    let result = match cli.cmd {
        Cmd::Run(a) => run::main(*a, sub("run")),
        Cmd::Config(ConfigCmd::Check { file }) => config::check_file(&file),
        Cmd::Config(ConfigCmd::Show(a)) => {
            run::show(*a, sub("config").and_then(|m| m.subcommand_matches("show")))
        }
        Cmd::Eval(a) => eval::main(a),
        Cmd::Gen(a) => gen::main(a),
        Cmd::Bench(a) => bench::main(a),
        Cmd::Convert(a) => convert::main(a),
        Cmd::Share(a) => share::main(a),
        Cmd::Correlate(a) => correlate::main(a),
        Cmd::Compact(a) => compact::main(a),
        Cmd::Signatures => signatures(),
        Cmd::Generate(g) => generate(g),
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

/// `scanwatch generate`: the man pages and completions, from the same clap
/// definitions that parse the command line, so they cannot drift from it.
/// Prints each file written.
fn generate(what: Generate) -> anyhow::Result<ExitCode> {
    let mkdir = |dir: &Path| {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
    };
    match what {
        Generate::Man { dir } => {
            mkdir(&dir)?;
            let mut cmd = Cli::command().disable_help_subcommand(true);
            cmd.build();
            let date = env!("SCANWATCH_DATE");
            let mut pages = vec![cmd.clone()];
            pages.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
            for page in pages {
                let man = clap_mangen::Man::new(page)
                    .date(date)
                    .source(format!("scanwatch {}", env!("CARGO_PKG_VERSION")))
                    .manual("scanwatch manual");
                let path = man
                    .generate_to(&dir)
                    .with_context(|| format!("cannot write a man page into {}", dir.display()))?;
                println!("{}", path.display());
            }
        }
        Generate::Completions { shell, dir } => {
            mkdir(&dir)?;
            let mut cmd = Cli::command();
            let path = clap_complete::generate_to(shell, &mut cmd, "scanwatch", &dir)
                .with_context(|| format!("cannot write completions into {}", dir.display()))?;
            println!("{}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The allocator: jemalloc. Per packet nothing is allocated, but per flow,
/// per attempt and per scan event there are small allocations made on one
/// thread and freed on another (a flow row's batch, an event's lists);
/// glibc's malloc spent a quarter of the scan-heavy reference's CPU there
/// (its `malloc_consolidate` and arena locks), jemalloc's thread caches do
/// the same work for 25% less CPU in all (alternating runs in the README).
/// Its peak RSS under the flood shapes is 5-10% above glibc's, inside the
/// budget's allocator slack ([`scanwatch_pipeline::SLACK_PERCENT`]).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts: two arenas, so freed memory is
/// shared by all threads rather than kept per core (the bound glibc had
/// with `M_ARENA_MAX 2`: the threads allocate in batches, so sharing costs
/// little); freed pages are returned to the kernel (`MADV_DONTNEED`) once
/// unused for 10 s, not kept lazily freed. Returning them after 1 s cost 3%
/// more CPU for no lower peak under the flood shapes. `_RJEM_MALLOC_CONF` in
/// the environment still wins.
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"narenas:2,dirty_decay_ms:10000,muzzy_decay_ms:0\0";
