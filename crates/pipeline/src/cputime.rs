//! CPU time per pipeline stage: each thread reads its own CPU clock
//! (`CLOCK_THREAD_CPUTIME_ID`, user and system time of that thread alone)
//! as it ends and adds it to its stage. `scanwatch bench` prints the result,
//! which says which stage a bigger machine would wait on: the flow workers
//! and detector shards divide their work among more threads, a file's
//! reader and the writer do not (one per input, one per run).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A stage's threads, as they end (shared by the stage's threads).
#[derive(Default)]
pub(crate) struct StageClock {
    threads: AtomicU64,
    total_ns: AtomicU64,
    max_ns: AtomicU64,
    /// Threads whose clock could not be read (counted, not guessed).
    unread: AtomicU64,
}

impl StageClock {
    /// Adds the calling thread's CPU time so far (call it last thing).
    pub fn add_this_thread(&self) {
        self.threads.fetch_add(1, Relaxed);
        match thread_cpu_ns() {
            Some(ns) => {
                self.total_ns.fetch_add(ns, Relaxed);
                self.max_ns.fetch_max(ns, Relaxed);
            }
            None => {
                self.unread.fetch_add(1, Relaxed);
            }
        }
    }

    fn get(&self) -> StageTime {
        StageTime {
            threads: self.threads.load(Relaxed),
            seconds: self.total_ns.load(Relaxed) as f64 / 1e9,
            busiest_seconds: self.max_ns.load(Relaxed) as f64 / 1e9,
            unread: self.unread.load(Relaxed),
        }
    }
}

/// The four stages' clocks of one run.
#[derive(Default)]
pub(crate) struct StageClocks {
    pub capture: StageClock,
    pub flow: StageClock,
    pub detect: StageClock,
    pub output: StageClock,
}

impl StageClocks {
    pub fn get(&self) -> StageCpu {
        StageCpu {
            capture: self.capture.get(),
            flow: self.flow.get(),
            detect: self.detect.get(),
            output: self.output.get(),
        }
    }
}

/// CPU time of one stage's threads over a run.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct StageTime {
    /// Threads of the stage that ended normally (a thread that panicked is
    /// not in it; the run then fails anyway).
    pub threads: u64,
    /// Their CPU time together (user and system), seconds.
    pub seconds: f64,
    /// The busiest one's.
    pub busiest_seconds: f64,
    /// Threads whose CPU clock could not be read (not in the times).
    pub unread: u64,
}

/// CPU time per stage: capture (reading, decoding, dispatching), flow
/// workers, detector shards, output (tables, alerts).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct StageCpu {
    pub capture: StageTime,
    pub flow: StageTime,
    pub detect: StageTime,
    pub output: StageTime,
}

impl StageCpu {
    /// All stages together, seconds.
    pub fn total_seconds(&self) -> f64 {
        self.capture.seconds + self.flow.seconds + self.detect.seconds + self.output.seconds
    }

    /// Stages by name, in pipeline order.
    pub fn stages(&self) -> [(&'static str, StageTime); 4] {
        [
            ("capture", self.capture),
            ("flow", self.flow),
            ("detect", self.detect),
            ("output", self.output),
        ]
    }
}

/// The calling thread's CPU time, nanoseconds.
fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    let s = u64::try_from(ts.tv_sec).ok()?;
    let ns = u64::try_from(ts.tv_nsec).ok()?;
    Some(s.saturating_mul(1_000_000_000).saturating_add(ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Burns CPU on this thread until its own clock has advanced `ns`
    /// (bounded: at most 10 s of wall time).
    fn spin(ns: u64) -> u64 {
        let start = thread_cpu_ns().unwrap_or(0);
        let wall = std::time::Instant::now();
        let mut x = 0u64;
        while thread_cpu_ns().unwrap_or(u64::MAX) < start + ns
            && wall.elapsed() < std::time::Duration::from_secs(10)
        {
            for i in 0..1000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
        x
    }

    #[test]
    fn a_stage_sums_its_threads_and_keeps_the_busiest() {
        let clock = StageClock::default();
        std::thread::scope(|s| {
            for ms in [20u64, 60] {
                let c = &clock;
                s.spawn(move || {
                    spin(ms * 1_000_000);
                    c.add_this_thread();
                });
            }
        });
        let t = clock.get();
        assert_eq!(t.threads, 2);
        assert_eq!(t.unread, 0);
        // Each thread counted its own time only: at least what it burnt,
        // and the busiest is the 60 ms one, not the sum.
        assert!(t.seconds >= 0.080, "{t:?}");
        assert!(t.busiest_seconds >= 0.060, "{t:?}");
        assert!(t.busiest_seconds < t.seconds, "{t:?}");
    }

    #[test]
    fn an_idle_thread_counts_almost_nothing() {
        let clock = StageClock::default();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(100));
                clock.add_this_thread();
            });
        });
        let t = clock.get();
        assert_eq!(t.threads, 1);
        // Sleeping is not CPU time: far below the 100 ms of wall time.
        assert!(t.seconds < 0.05, "{t:?}");
    }
}
