//! A counting global allocator for the test and benchmark binaries that
//! measure the heap (`benches/snapshot_size.rs` includes this file too).
//!
//! It wraps the system allocator and keeps, per thread: the number of
//! allocations, the bytes and blocks live (allocated minus freed by that
//! thread), the bytes as malloc holds them, and the highest number of live
//! bytes reached since the last [`start_peak`]. Per thread, so tests running
//! side by side in one binary do not see each other's memory. A realloc
//! counts its new block before its old one is freed, as the allocator may
//! hold both at once.
//!
//! A measured section can be given a hard ceiling ([`arm_ceiling`]): an
//! allocation that takes the thread's growth past it calls the thread's
//! handler (which may write out the input being tried) and aborts, so a
//! runaway is reported instead of taking the machine's memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static BLOCKS: Cell<isize> = const { Cell::new(0) };
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    /// Live bytes at which the ceiling is crossed (`isize::MAX`: none).
    static CEILING: Cell<isize> = const { Cell::new(isize::MAX) };
    static ON_CEILING: Cell<Option<fn(usize)>> = const { Cell::new(None) };
}

/// Bytes as malloc holds a block of `size`: size + 8, rounded up to 16,
/// at least 32.
#[inline]
fn held(size: usize) -> isize {
    ((size + 8).div_ceil(16) * 16).max(32) as isize
}

#[inline]
fn grow(bytes: usize) {
    HELD.with(|h| h.set(h.get() + held(bytes)));
    let live = LIVE.with(|l| {
        let v = l.get() + bytes as isize;
        l.set(v);
        v
    });
    PEAK.with(|p| {
        if live > p.get() {
            p.set(live)
        }
    });
    if live > CEILING.with(Cell::get) {
        crossed_ceiling(live);
    }
}

#[inline]
fn shrink(bytes: usize) {
    HELD.with(|h| h.set(h.get() - held(bytes)));
    LIVE.with(|l| l.set(l.get() - bytes as isize));
}

#[cold]
fn crossed_ceiling(live: isize) {
    // Disarmed first: the handler may allocate.
    let ceiling = CEILING.with(|c| c.replace(isize::MAX));
    let growth = (live - ceiling) as usize;
    if let Some(handler) = ON_CEILING.with(Cell::take) {
        handler(growth);
    }
    // Straight to stderr: the test harness's capture of `eprintln!` is
    // lost when the process aborts.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        b"the heap grew past the armed ceiling; aborting\n",
    );
    std::process::abort();
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// bookkeeping uses const-initialised thread-local Cells, which never
// allocate, and the ceiling handler runs only after it is disarmed (so an
// allocation it makes is counted but does not re-enter it).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        BLOCKS.with(|b| b.set(b.get() + 1));
        grow(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        BLOCKS.with(|b| b.set(b.get() + 1));
        grow(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        BLOCKS.with(|b| b.set(b.get() - 1));
        shrink(layout.size());
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        grow(new_size);
        let new = System.realloc(ptr, layout, new_size);
        if new.is_null() {
            shrink(new_size);
        } else {
            shrink(layout.size());
        }
        new
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (and reallocations) this thread has made.
#[allow(dead_code)]
pub fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// What this thread holds now: live bytes, live blocks, and the bytes as
/// malloc holds them (with its per-block header and rounding).
#[allow(dead_code)]
pub fn live() -> (isize, isize, isize) {
    (
        LIVE.with(Cell::get),
        BLOCKS.with(Cell::get),
        HELD.with(Cell::get),
    )
}

/// Starts a peak measurement on this thread; returns its baseline.
#[allow(dead_code)]
pub fn start_peak() -> isize {
    let live = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(live));
    live
}

/// The most the thread's live bytes grew above `baseline` (from
/// [`start_peak`]) since that call.
#[allow(dead_code)]
pub fn peak_growth(baseline: isize) -> usize {
    PEAK.with(Cell::get).saturating_sub(baseline).max(0) as usize
}

/// Arms a ceiling on this thread: when its live bytes grow more than
/// `bytes` above what they are now, `handler` is called with the growth and
/// the process aborts.
#[allow(dead_code)]
pub fn arm_ceiling(bytes: usize, handler: fn(usize)) {
    let live = LIVE.with(Cell::get);
    ON_CEILING.with(|h| h.set(Some(handler)));
    CEILING.with(|c| c.set(live.saturating_add(bytes as isize)));
}

/// Removes this thread's ceiling.
#[allow(dead_code)]
pub fn disarm_ceiling() {
    CEILING.with(|c| c.set(isize::MAX));
    ON_CEILING.with(|h| h.set(None));
}
