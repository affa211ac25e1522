//! `scanwatch share DIR… --format stix|csv`: what was seen, in a form other
//! defenders can take in. One STIX 2.1 indicator per scanner address (a
//! pattern on the traffic's source), one sighting per (scanner, sensor)
//! with first/last seen and counts, the kinds of scan and the ports probed
//! (the objects themselves are made in [`crate::stix`]). The scanned side
//! (our own addresses) is left out unless asked for, and then as Crypto-PAn
//! pseudonyms (`--targets pseudonym --key-file FILE`) or in clear
//! (`--targets clear`). Scans by our own hosts (direction `outbound` or
//! `internal`, from the run's `--home-net`) are left out unless
//! `--own-scanners` asks for them: an internal scan is a matter for us, not
//! for other defenders. Scanners no partner can see (loopback, private,
//! link-local) never become STIX indicators.

use crate::cryptopan::CryptoPan;
use crate::stix::{self, Detected, Seen, StixOptions, Targets, Tlp};
use anyhow::{bail, Context, Result};
use arrow_array::{
    cast::AsArray,
    types::{TimestampMicrosecondType, UInt16Type, UInt64Type},
    Array, RecordBatch,
};
use clap::Args;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ShareArgs {
    /// Output folders of `scanwatch run` (Arrow or Parquet, one sensor or
    /// many).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// `stix` (a STIX 2.1 bundle) or `csv` (one line per scanner and sensor).
    #[arg(long, default_value = "stix", value_parser = ["stix", "csv"])]
    pub format: String,
    /// Write here instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The scanned side: `omit` (default), `pseudonym` (Crypto-PAn,
    /// prefix-preserving: two of our addresses in one /24 stay in one /24;
    /// partners with the key get the same pseudonyms), or `clear`.
    #[arg(long, default_value = "omit", value_parser = ["omit", "pseudonym", "clear"])]
    pub targets: String,
    /// The Crypto-PAn key for `--targets pseudonym`: a file of 32 raw bytes
    /// or 64 hex digits (the same key gives the same pseudonyms, so shares
    /// from one organisation can be joined).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Removed: a key on the command line is visible to every user in
    /// /proc. Use --key-file.
    #[arg(long, value_name = "SECRET", hide = true)]
    pub key: Option<String>,
    /// Also share scans whose scanner is one of ours (direction `outbound`
    /// or `internal`); left out by default.
    #[arg(long)]
    pub own_scanners: bool,
    /// Name of the organisation that shares (the STIX identity).
    #[arg(long, default_value = "scanwatch sensor operator")]
    pub identity: String,
    /// TLP 2.0 marking of every STIX object.
    #[arg(long, value_enum, default_value = "amber")]
    pub tlp: Tlp,
    /// Indicators stay valid this many days after the scanner was last seen.
    #[arg(long, value_name = "N", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub valid_days: u32,
    /// Push the bundle to a TAXII 2.1 collection (then the bundle is written
    /// only if `-o` asks for it).
    #[command(flatten)]
    pub taxii: crate::taxii::TaxiiArgs,
    /// The TAXII user (the same as --taxii-user).
    #[arg(
        long = "user",
        value_name = "USER",
        requires = "url",
        conflicts_with = "taxii_user"
    )]
    pub taxii_user_short: Option<String>,
}

impl ShareArgs {
    /// The STIX options these arguments ask for (reads the key file).
    pub fn stix_options(&self) -> Result<StixOptions> {
        if self.key.is_some() {
            bail!("--key is gone (a key on the command line can be read by any user in /proc): put 32 bytes or 64 hex digits in a file readable only by you and give --key-file FILE");
        }
        if self.key_file.is_some() && self.targets != "pseudonym" {
            bail!("--key-file is only used with --targets pseudonym (the targets are left out or in clear otherwise)");
        }
        let targets = match self.targets.as_str() {
            "clear" => Targets::Clear,
            "pseudonym" => {
                let f = self.key_file.as_deref().context(
                    "--targets pseudonym needs --key-file FILE (32 bytes or 64 hex digits)",
                )?;
                Targets::Pseudonym(Box::new(CryptoPan::from_key_file(f)?))
            }
            _ => Targets::Omit,
        };
        Ok(StixOptions {
            identity: self.identity.clone(),
            tlp: self.tlp,
            valid_days: self.valid_days,
            targets,
        })
    }
}

fn batches(path: &Path) -> Result<Vec<RecordBatch>> {
    let f = File::open(path).with_context(|| format!("{}", path.display()))?;
    let ctx = || format!("{}", path.display());
    if path.extension().is_some_and(|e| e == "parquet") {
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .with_context(ctx)?
            .build()
            .with_context(ctx)?;
        r.collect::<Result<Vec<_>, _>>().with_context(ctx)
    } else {
        let r = arrow_ipc::reader::FileReader::try_new(f, None).with_context(ctx)?;
        r.collect::<Result<Vec<_>, _>>().with_context(ctx)
    }
}

fn sensor_of(path: &Path) -> String {
    path.components()
        .filter_map(|c| c.as_os_str().to_str())
        .find_map(|c| c.strip_prefix("sensor="))
        .unwrap_or("default")
        .to_string()
}

/// What reading the tables found besides the detections.
#[derive(Default)]
struct ReadNotes {
    /// Rows whose scanner is not an address (left out, reported).
    bad_scanner: usize,
    /// Targets that are not addresses (left out of the target lists).
    bad_targets: usize,
}

fn read_rows(dirs: &[PathBuf], notes: &mut ReadNotes) -> Result<Vec<Detected>> {
    let mut rows = Vec::new();
    for d in dirs {
        let root = d.join("detections");
        if !root.is_dir() {
            bail!(
                "{}: no detections/ folder (give the -w folder of scanwatch run)",
                d.display()
            );
        }
        let mut files = Vec::new();
        crate::convert::walk(&root, &mut files)?;
        files.retain(|p| {
            p.extension()
                .is_some_and(|e| e == "arrow" || e == "parquet")
        });
        files.sort();
        for f in files {
            let sensor = sensor_of(&f);
            for b in batches(&f)? {
                let col = |name: &str| {
                    b.column_by_name(name)
                        .with_context(|| format!("{}: no column {name}", f.display()))
                };
                let bad =
                    |name: &str| format!("{}: column {name} has an unexpected type", f.display());
                let s = |name: &str| -> Result<_> {
                    Ok(col(name)?
                        .as_string_opt::<i32>()
                        .with_context(|| bad(name))?
                        .clone())
                };
                let ts = |name: &str| -> Result<_> {
                    Ok(col(name)?
                        .as_primitive_opt::<TimestampMicrosecondType>()
                        .with_context(|| bad(name))?
                        .clone())
                };
                let n = |name: &str| -> Result<_> {
                    Ok(col(name)?
                        .as_primitive_opt::<UInt64Type>()
                        .with_context(|| bad(name))?
                        .clone())
                };
                let list = |name: &str| -> Result<_> {
                    Ok(col(name)?
                        .as_list_opt::<i32>()
                        .with_context(|| bad(name))?
                        .clone())
                };
                let (scanner, kind, proto) = (s("scanner")?, s("kind")?, s("proto")?);
                let (first, last) = (ts("ts_first")?, ts("ts_last")?);
                let (probes, answered) = (n("probes")?, n("answered")?);
                let (ports, targets) = (list("ports")?, list("targets")?);
                let direction = match b.column_by_name("direction") {
                    Some(c) => Some(
                        c.as_string_opt::<i32>()
                            .with_context(|| bad("direction"))?
                            .clone(),
                    ),
                    None => None,
                };
                for i in 0..b.num_rows() {
                    let Ok(ip) = scanner.value(i).parse::<IpAddr>() else {
                        notes.bad_scanner += 1;
                        continue;
                    };
                    let p = ports.value(i);
                    let p = p
                        .as_primitive_opt::<UInt16Type>()
                        .with_context(|| bad("ports"))?;
                    let t = targets.value(i);
                    let t = t.as_string_opt::<i32>().with_context(|| bad("targets"))?;
                    let mut tl = Vec::with_capacity(t.len());
                    for j in 0..t.len() {
                        match t.value(j).parse::<IpAddr>() {
                            Ok(a) => tl.push(a),
                            Err(_) => notes.bad_targets += 1,
                        }
                    }
                    rows.push(Detected {
                        sensor: sensor.clone(),
                        scanner: ip,
                        kind: kind.value(i).to_string(),
                        proto: proto.value(i).to_string(),
                        first: first.value(i),
                        last: last.value(i),
                        probes: probes.value(i),
                        answered: answered.value(i),
                        ports: p.values().to_vec(),
                        targets: tl,
                        direction: direction.as_ref().map(|d| d.value(i).to_string()),
                    });
                }
            }
        }
    }
    Ok(rows)
}

pub fn main(mut a: ShareArgs) -> Result<ExitCode> {
    if let Some(u) = a.taxii_user_short.take() {
        a.taxii.user = Some(u);
    }
    if a.taxii.url.is_some() {
        anyhow::ensure!(a.format == "stix", "--taxii pushes STIX: use --format stix");
        // Settings (and the password file) checked before any work.
        crate::taxii::Client::new(&a.taxii)?;
    }
    let opts = a.stix_options()?;
    let mut notes = ReadNotes::default();
    let mut rows = read_rows(&a.dirs, &mut notes)?;
    let before = rows.len();
    if !a.own_scanners {
        rows.retain(|r| !r.own_scanner());
    }
    let own_left_out = before - rows.len();
    // Addresses no partner can see: never indicators (STIX only; the CSV
    // is a table for ourselves and follows --own-scanners alone).
    let mut unseen: BTreeMap<&'static str, BTreeSet<IpAddr>> = BTreeMap::new();
    if a.format == "stix" {
        rows.retain(|r| match stix::unshareable(r.scanner) {
            Some(why) => {
                unseen.entry(why).or_default().insert(r.scanner);
                false
            }
            None => true,
        });
    }
    // scanner -> sensor -> rows
    let mut by: BTreeMap<IpAddr, BTreeMap<&str, Seen>> = BTreeMap::new();
    for r in &rows {
        by.entry(r.scanner)
            .or_default()
            .entry(&r.sensor)
            .or_default()
            .rows
            .push(r);
    }
    let text = if a.format == "csv" {
        let mut s = String::from(
            "scanner,sensor,kinds,first_seen,last_seen,scans,probes,answered,port_count,ports,targets\n",
        );
        for (scanner, sensors) in &by {
            for (sensor, seen) in sensors {
                let ports = seen.ports();
                let ports_txt: Vec<String> = ports
                    .iter()
                    .take(stix::MAX_PORTS_LISTED)
                    .map(|p| p.to_string())
                    .collect();
                let targets: Vec<String> = match &opts.targets {
                    Targets::Omit => Vec::new(),
                    Targets::Clear => seen.targets().iter().map(|t| t.to_string()).collect(),
                    Targets::Pseudonym(k) => {
                        let p: BTreeSet<IpAddr> =
                            seen.targets().iter().map(|t| k.anonymize(*t)).collect();
                        p.iter().map(|t| t.to_string()).collect()
                    }
                };
                let kinds: Vec<String> = seen.kinds().into_iter().collect();
                s.push_str(&format!(
                    "{scanner},{sensor},{},{},{},{},{},{},{},{},{}\n",
                    kinds.join(" "),
                    stix::stix_time(seen.first()),
                    stix::stix_time(seen.last()),
                    seen.rows.len(),
                    seen.probes(),
                    seen.answered(),
                    ports.len(),
                    ports_txt.join(" "),
                    targets.join(" ")
                ));
            }
        }
        s
    } else {
        let mut objects = stix::common_objects(&opts);
        let sensors: BTreeSet<&str> = rows.iter().map(|r| r.sensor.as_str()).collect();
        objects.extend(sensors.iter().map(|s| stix::sensor_identity(&opts, s)));
        for (scanner, per_sensor) in &by {
            let all = Seen::new(
                per_sensor
                    .values()
                    .flat_map(|s| s.rows.iter().copied())
                    .collect(),
            );
            objects.push(stix::indicator(*scanner, &all, &opts));
            for (sensor, seen) in per_sensor {
                objects.push(stix::sighting(*scanner, sensor, seen, &opts));
            }
        }
        serde_json::to_string_pretty(&stix::bundle(objects))? + "\n"
    };
    match &a.out {
        Some(p) => fs::write(p, &text).with_context(|| format!("{}", p.display()))?,
        None if a.taxii.url.is_some() => {}
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    let mut extra = String::new();
    for (why, set) in &unseen {
        extra.push_str(&format!("; {} {why} scanner(s) never shared", set.len()));
    }
    if notes.bad_scanner > 0 {
        extra.push_str(&format!(
            "; {} detection(s) with a scanner that is not an address left out",
            notes.bad_scanner
        ));
    }
    if notes.bad_targets > 0 {
        extra.push_str(&format!(
            "; {} target(s) that are not addresses left out",
            notes.bad_targets
        ));
    }
    eprintln!(
        "scanwatch share: {} scanners, {} detections from {} folder(s); {} scans by our own hosts left out{}{extra}",
        by.len(),
        rows.len(),
        a.dirs.len(),
        own_left_out,
        if own_left_out > 0 {
            " (--own-scanners to share them)"
        } else {
            ""
        }
    );
    if a.taxii.url.is_some() {
        let bundle: serde_json::Value =
            serde_json::from_str(&text).context("the bundle just built")?;
        if !crate::taxii::share_push(&a.taxii, &bundle)? {
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}
