//! The overflow of a snapshot's usage counters: full-width counters mapped
//! on the first spill.

use std::sync::atomic::{
    AtomicPtr,
    Ordering::{AcqRel, Acquire},
};

use super::counter::Counter;

/// The full-width counters that a snapshot's small counters
/// ([`super::usage`]) spill into, one per counter of the snapshot. Mapped
/// on the first spill as anonymous memory, so a process holds only the
/// pages of the counters it spilled (none, until a counter passes 32,768
/// counts between two collections).
#[derive(Debug)]
pub(super) struct Overflow {
    counters: AtomicPtr<Counter>,
    len: usize,
}

impl Overflow {
    pub(super) fn new(len: usize) -> Overflow {
        Overflow {
            counters: AtomicPtr::new(std::ptr::null_mut()),
            len,
        }
    }

    fn bytes(&self) -> usize {
        self.len * std::mem::size_of::<Counter>()
    }

    pub(super) fn get(&self) -> Option<&[Counter]> {
        let p = self.counters.load(Acquire);
        // SAFETY: once set, `p` points to `len` zero-initialised counters
        // mapped until this value is dropped.
        (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts(p, self.len) })
    }

    #[cold]
    pub(super) fn add(&self, id: usize, n: u64, tag: u64) {
        let counters = match self.get() {
            Some(counters) => counters,
            None => self.map(),
        };
        counters[id].add(n, tag);
    }

    #[cold]
    fn map(&self) -> &[Counter] {
        // SAFETY: a fresh private anonymous mapping; all zeros is a valid
        // `Counter` (an AtomicU64).
        let fresh = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                self.bytes(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        let fresh = if fresh == libc::MAP_FAILED {
            // No address space left: the allocator's answer to that is the
            // same as for any other allocation.
            let layout = std::alloc::Layout::array::<Counter>(self.len)
                .expect("overflow counters fit the address space");
            std::alloc::handle_alloc_error(layout)
        } else {
            fresh.cast::<Counter>()
        };
        if self
            .counters
            .compare_exchange(std::ptr::null_mut(), fresh, AcqRel, Acquire)
            .is_err()
        {
            // Another thread mapped them first.
            // SAFETY: `fresh` was mapped above, with this length, and never
            // shared.
            unsafe { libc::munmap(fresh.cast(), self.bytes()) };
        }
        self.get().expect("overflow counters are mapped")
    }

    pub(super) fn take(&self, id: usize, tag: u64) -> u64 {
        self.get().map_or(0, |c| c[id].take(tag))
    }

    pub(super) fn peek(&self, id: usize, tag: u64) -> u64 {
        self.get().map_or(0, |c| c[id].peek(tag))
    }
}

impl Drop for Overflow {
    fn drop(&mut self) {
        let p = *self.counters.get_mut();
        if !p.is_null() {
            // SAFETY: mapped by `map` with this length. A forked child
            // unmaps its own copy of the mapping.
            unsafe { libc::munmap(p.cast(), self.bytes()) };
        }
    }
}
