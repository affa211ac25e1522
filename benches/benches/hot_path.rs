//! Element throughput of each stage of the hot path. Run:
//!
//!     cargo bench -p scanwatch-benches
//!
//! Figures are per element (packet, attempt, row); compare them with one
//! another and across commits on the same machine, not with a timer.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use scanwatch_benches::{attempts, own_frames, scan_attempts, syn_flows};
use scanwatch_decode::decode;
use scanwatch_detect::{DetectConfig, Detector};
use scanwatch_flow::{FlowConfig, FlowTable, Output};
use scanwatch_schema::{FlowBatchBuilder, TableBuilder};

fn bench_decode(c: &mut Criterion) {
    let frames = own_frames();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("own_pcaps", |b| {
        b.iter(|| {
            let mut ok = 0u32;
            for f in &frames {
                ok += u32::from(decode(f.link_type, &f.data, f.ts).is_ok());
            }
            black_box(ok)
        })
    });
    g.finish();
}

fn bench_flow_table(c: &mut Criterion) {
    // Few flows: the real captures' packets (scans and benign sessions).
    let mut metas: Vec<_> = own_frames()
        .iter()
        .filter_map(|f| decode(f.link_type, &f.data, f.ts).ok())
        .collect();
    metas.sort_by_key(|m| m.ts);
    let mut g = c.benchmark_group("flow_table");
    g.throughput(Throughput::Elements(metas.len() as u64));
    g.bench_function("own_pcaps", |b| {
        b.iter_batched(
            || (FlowTable::new(FlowConfig::default()), Output::default()),
            |(mut t, mut o)| {
                for m in &metas {
                    t.process(m, &mut o);
                }
                t.advance(i64::MAX / 2, &mut o);
                black_box((o.flows.len(), o.attempts.len()))
            },
            BatchSize::LargeInput,
        )
    });
    // Over a million concurrent flows: the table outgrows the caches.
    let syns = syn_flows(1_200_000);
    g.throughput(Throughput::Elements(syns.len() as u64));
    g.sample_size(10);
    g.bench_function("1.2M_new_flows", |b| {
        b.iter_batched(
            || {
                (
                    FlowTable::new(FlowConfig {
                        max_flows: 2_000_000,
                        ..FlowConfig::default()
                    }),
                    Output::default(),
                )
            },
            |(mut t, mut o)| {
                for m in &syns {
                    t.process(m, &mut o);
                }
                black_box(t.len())
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn bench_detector(c: &mut Criterion) {
    let atts = attempts(200_000);
    let mut g = c.benchmark_group("detector");
    g.throughput(Throughput::Elements(atts.len() as u64));
    g.bench_function("busy_mix_with_scanners", |b| {
        b.iter_batched(
            || Detector::new(DetectConfig::default()).expect("default config is valid"),
            |mut d| {
                let mut ev = Vec::new();
                for a in &atts {
                    d.on_attempt(a, &mut ev);
                }
                d.finish(&mut ev);
                black_box(ev.len())
            },
            BatchSize::LargeInput,
        )
    });
    // One scanner, 200,000 attempts: within the exact set (1,000 contacts)
    // and a masscan-style random scan of a /16 on all ports (every contact
    // new): the cost per attempt must not grow with the scan.
    for (name, wide) in [("small_scan", false), ("wide_random_scan", true)] {
        let atts = scan_attempts(200_000, wide);
        g.throughput(Throughput::Elements(atts.len() as u64));
        g.bench_function(name, |b| {
            b.iter_batched(
                || Detector::new(DetectConfig::default()).expect("default config is valid"),
                |mut d| {
                    let mut ev = Vec::new();
                    for a in &atts {
                        d.on_attempt(a, &mut ev);
                    }
                    d.finish(&mut ev);
                    black_box(ev.len())
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn bench_arrow(c: &mut Criterion) {
    // Real flow records: the flows of the own captures, repeated to 64k rows.
    let mut metas: Vec<_> = own_frames()
        .iter()
        .filter_map(|f| decode(f.link_type, &f.data, f.ts).ok())
        .collect();
    metas.sort_by_key(|m| m.ts);
    let mut t = FlowTable::new(FlowConfig::default());
    let mut o = Output::default();
    for m in &metas {
        t.process(m, &mut o);
    }
    t.drain(&mut o);
    let base = o.flows;
    let rows: Vec<_> = base.iter().cycle().take(65_536).cloned().collect();
    let mut g = c.benchmark_group("arrow");
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("flow_batch_64k_rows", |b| {
        b.iter(|| {
            // As the pipeline does: a builder sized for its batch, each time.
            let mut builder = FlowBatchBuilder::with_capacity(rows.len());
            for r in &rows {
                builder.append(r);
            }
            black_box(builder.finish().map(|b| b.num_rows()).unwrap_or(0))
        })
    });
    g.finish();
}

fn bench_one_probe_flow(c: &mut Criterion) {
    // The whole cost of a one-probe flow, as a spoofed SYN flood or a wide
    // scan makes them: the packet creates a flow, its timer ends it, the
    // record becomes an Arrow row (uid, Community ID, address text) and the
    // unanswered probe an attempt the detector counts for a new source.
    let syns = syn_flows(200_000);
    let mut g = c.benchmark_group("one_probe_flow");
    g.throughput(Throughput::Elements(syns.len() as u64));
    g.sample_size(10);
    g.bench_function("packet_to_row_and_attempt", |b| {
        b.iter_batched(
            || {
                (
                    FlowTable::new(FlowConfig::default()),
                    Output::default(),
                    Detector::new(DetectConfig::default()).expect("default config is valid"),
                )
            },
            |(mut t, mut o, mut d)| {
                for m in &syns {
                    t.process(m, &mut o);
                }
                t.advance(i64::MAX / 2, &mut o);
                let mut builder = FlowBatchBuilder::with_capacity(o.flows.len());
                for r in &o.flows {
                    builder.append(r);
                }
                let rows = builder.finish().map(|b| b.num_rows()).unwrap_or(0);
                o.attempts.sort();
                let mut ev = Vec::new();
                for a in &o.attempts {
                    d.on_attempt(a, &mut ev);
                }
                d.finish(&mut ev);
                black_box((rows, ev.len()))
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_one_probe_flow,
    bench_decode,
    bench_flow_table,
    bench_detector,
    bench_arrow
);
criterion_main!(benches);
