//! A capture file mapped into memory instead of read into a buffer.
//!
//! Why: on the bulk reference file the kernel's copy from the page cache
//! into the read buffer was a fifth of all samples and the largest part of
//! the capture thread, which is the serial stage of a file run. Mapped, the
//! decoder reads the packets where the page cache holds them, and a
//! prefetch [`PREFETCH_AHEAD`] bytes ahead of the reader hides the misses
//! that the copy used to take (the hardware prefetcher stops at each page).
//!
//! Bounds:
//! * **Memory.** The pages behind the reader are given back (`MADV_DONTNEED`,
//!   which for a read-only file mapping only drops page-table entries)
//!   every `window` bytes, so at most about a window of each file counts
//!   in the process's resident memory, as a read buffer did.
//! * **A file cut while it is read.** Another process truncating the file
//!   makes the pages past its new end fault with `SIGBUS`, which would kill
//!   the process with nothing flushed. A handler (installed once, on the
//!   first mapping) checks whether the faulting address lies in one of the
//!   mappings registered here; if so it maps a page of zeros over it, marks
//!   that mapping cut and returns, and the reader reports the input as
//!   truncated (with the packets before the cut) instead of handing out
//!   what it read. A fault anywhere else gets the previous action back and
//!   happens again, as if the handler were not there.
//! * **A file still being written** (growing) is mapped again, longer, when
//!   the reader reaches the end of the mapping, as a read would have seen
//!   the new bytes.
//!
//! Only regular, non-empty, uncompressed files are mapped; stdin, pipes,
//! devices and gzip are read into a buffer as before, and so is any file
//! when [`MAX_MAPS`] mappings are live or `mmap` fails.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Once};

/// How far ahead of the reader the next cache line is fetched (one
/// prefetch per record: records of about 100 bytes keep it a page ahead).
/// 4 KiB gave the capture thread's fewest samples on the bulk reference
/// file against 0, 1, 2, 8 and 16 KiB (three rounds each).
pub(super) const PREFETCH_AHEAD: usize = 4096;

/// Mappings live at once (all readers of the process); past this a file
/// is read into a buffer.
pub(super) const MAX_MAPS: usize = 1024;

/// One registered mapping: its address (0 when free, `usize::MAX` while
/// being set up), length, and whether a fault in it was answered with
/// zeros.
struct Slot {
    base: AtomicUsize,
    len: AtomicUsize,
    cut: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    base: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    cut: AtomicBool::new(false),
};

static SLOTS: [Slot; MAX_MAPS] = [FREE; MAX_MAPS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// The action for SIGBUS before ours, put back for faults not ours.
static mut PREVIOUS: Option<libc::sigaction> = None;

/// A read-only mapping of a whole regular file.
pub(super) struct Map {
    ptr: *mut libc::c_void,
    pub(super) len: usize,
    file: File,
    slot: usize,
    /// Bytes before this were given back (a page boundary).
    released: usize,
    /// Pages are given back every this many bytes.
    pub(super) window: usize,
    /// Bytes counted as read (progress).
    counted: usize,
    read_bytes: Arc<AtomicU64>,
}

// SAFETY: the mapping is read-only, owned by its reader alone and unmapped
// once, on drop; moving the reader to another thread moves it.
unsafe impl Send for Map {}

impl Map {
    /// Maps `f` if it is a regular, non-empty file and a slot is free;
    /// None otherwise (the caller reads it into a buffer).
    pub(super) fn new(f: &File, read_bytes: Arc<AtomicU64>, window: usize) -> Option<Map> {
        let meta = f.metadata().ok()?;
        if !meta.file_type().is_file() || meta.len() == 0 {
            return None;
        }
        let len = usize::try_from(meta.len()).ok()?;
        install();
        if !INSTALLED.load(Ordering::Acquire) {
            return None;
        }
        let file = f.try_clone().ok()?;
        let slot = claim()?;
        let Some(ptr) = map(&file, len) else {
            SLOTS[slot].base.store(0, Ordering::Release);
            return None;
        };
        publish(slot, ptr, len);
        Some(Map {
            ptr,
            len,
            file,
            slot,
            released: 0,
            window: window.max(page()),
            counted: 0,
            read_bytes,
        })
    }

    #[inline(always)]
    pub(super) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self`
        // lives (pages past a cut read as zeros, see the module's note).
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }

    /// Starts fetching the cache line `PREFETCH_AHEAD` bytes after `at`.
    #[inline(always)]
    pub(super) fn prefetch(&self, at: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            let at = (at + PREFETCH_AHEAD).min(self.len - 1);
            // SAFETY: a prefetch of an address inside the mapping (`len`
            // is never 0); it cannot fault.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    (self.ptr as *const i8).add(at),
                );
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = at;
    }

    /// Whether the file was cut under the reader at or before byte
    /// `upto` (exclusive): the last byte is read first, so a cut there
    /// faults now and is seen.
    #[inline(always)]
    pub(super) fn cut_before(&self, upto: usize) -> bool {
        if upto > 0 && upto <= self.len {
            // SAFETY: inside the mapping; volatile so the read happens.
            unsafe { std::ptr::read_volatile((self.ptr as *const u8).add(upto - 1)) };
        }
        SLOTS[self.slot].cut.load(Ordering::Acquire)
    }

    /// Whether a fault in this mapping was answered with zeros.
    pub(super) fn is_cut(&self) -> bool {
        SLOTS[self.slot].cut.load(Ordering::Acquire)
    }

    /// Gives back the whole pages before `upto` and counts them read.
    pub(super) fn release(&mut self, upto: usize) {
        let upto = upto.min(self.len);
        if upto > self.counted {
            self.read_bytes
                .fetch_add((upto - self.counted) as u64, Ordering::Relaxed);
            self.counted = upto;
        }
        let end = upto / page() * page();
        if end > self.released {
            // SAFETY: the range is inside the mapping; DONTNEED on a
            // private read-only file mapping drops page-table entries only
            // (a later read maps the page again from the page cache).
            unsafe {
                libc::madvise(
                    (self.ptr as *mut u8).add(self.released) as *mut libc::c_void,
                    end - self.released,
                    libc::MADV_DONTNEED,
                );
            }
            self.released = end;
        }
    }

    /// Maps the file again if it grew (a capture still being written);
    /// false if it did not, or if it was cut.
    pub(super) fn grow(&mut self) -> io::Result<bool> {
        if self.is_cut() {
            return Ok(false);
        }
        let len = usize::try_from(self.file.metadata()?.len()).unwrap_or(usize::MAX);
        if len <= self.len {
            return Ok(false);
        }
        let Some(ptr) = map(&self.file, len) else {
            return Ok(false);
        };
        // The old mapping leaves the registry before it is unmapped; no
        // slice of it outlives this call (records are offsets).
        SLOTS[self.slot].base.store(usize::MAX, Ordering::Release);
        // SAFETY: the old mapping is ours, mapped with this length.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
        publish(self.slot, ptr, len);
        self.ptr = ptr;
        self.len = len;
        self.released = 0;
        Ok(true)
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        SLOTS[self.slot].base.store(usize::MAX, Ordering::Release);
        // SAFETY: mapped with this length, unmapped only here.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
        SLOTS[self.slot].cut.store(false, Ordering::Relaxed);
        SLOTS[self.slot].base.store(0, Ordering::Release);
    }
}

fn page() -> usize {
    PAGE.load(Ordering::Relaxed)
}

/// A free registry slot, held (`usize::MAX`) until [`publish`].
fn claim() -> Option<usize> {
    (0..MAX_MAPS).find(|&i| {
        SLOTS[i]
            .base
            .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    })
}

fn publish(slot: usize, ptr: *mut libc::c_void, len: usize) {
    let s = &SLOTS[slot];
    s.len.store(len, Ordering::Relaxed);
    s.cut.store(false, Ordering::Relaxed);
    s.base.store(ptr as usize, Ordering::Release);
}

fn map(f: &File, len: usize) -> Option<*mut libc::c_void> {
    use std::os::fd::AsRawFd;
    // SAFETY: a new private read-only mapping of an open file; the kernel
    // picks the address.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            f.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: advice on our own mapping; failure only loses the hint
    // (sequential: larger readahead, pages behind dropped sooner).
    unsafe {
        libc::madvise(ptr, len, libc::MADV_SEQUENTIAL);
    }
    Some(ptr)
}

/// Installs the SIGBUS handler once for the process.
fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if let Ok(p) = usize::try_from(p) {
            if p.is_power_of_two() {
                PAGE.store(p, Ordering::Relaxed);
            }
        }
        // SAFETY: a zeroed sigaction is a valid starting value; the
        // handler below only touches atomics and makes one system call
        // (mmap or sigaction), and PREVIOUS is written here, once, before
        // the handler can run.
        unsafe {
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = on_sigbus as *const () as usize;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut new.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &new, &mut old) == 0 {
                PREVIOUS = Some(old);
                INSTALLED.store(true, Ordering::Release);
            }
        }
    });
}

/// SIGBUS: a page of a registered mapping past the end of its (cut) file
/// becomes a page of zeros and the mapping is marked cut; any other fault
/// gets the previous action back and happens again.
extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    for s in SLOTS.iter() {
        let base = s.base.load(Ordering::Acquire);
        if base == 0 || base == usize::MAX {
            continue;
        }
        let len = s.len.load(Ordering::Relaxed);
        if addr >= base && addr < base + len {
            let at = addr & !(page() - 1);
            // SAFETY: replaces one page inside our own mapping with
            // anonymous zeros (MAP_FIXED over the same range).
            let r = unsafe {
                libc::mmap(
                    at as *mut libc::c_void,
                    page(),
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if r != libc::MAP_FAILED {
                s.cut.store(true, Ordering::Release);
                return;
            }
            break;
        }
    }
    // Not ours (or the page could not be replaced): the previous action,
    // and the fault happens again when this returns.
    // SAFETY: PREVIOUS was set before the handler was installed.
    unsafe {
        let prev = std::ptr::addr_of!(PREVIOUS).read();
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        let act = prev.unwrap_or(dfl);
        libc::sigaction(libc::SIGBUS, &act, std::ptr::null_mut());
    }
}
