//! Usage counters tagged with the fork generation that wrote them.
//!
//! Each counter carries the fork generation that wrote it in its top bits.
//! A forked child never has to zero anything: the first count it makes in a
//! counter written by an ancestor replaces the ancestor's number, and a
//! collection ignores counts from other generations. So counts made before a
//! fork stay with the process that made them, and the child starts from zero,
//! at no cost in the fork itself.
//!
//! Here the full-width counter (a 16-bit tag and a 48-bit count), used for
//! names the configuration does not have and for a snapshot's overflow; a
//! snapshot's own counters are in [`super::usage`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub(super) const TAG_SHIFT: u32 = 48;
const COUNT_MASK: u64 = (1 << TAG_SHIFT) - 1;
const TAG_MASK: u64 = !COUNT_MASK;

/// The tag for a fork generation.
#[inline]
pub fn tag_for(generation: u64) -> u64 {
    (generation & 0xffff) << TAG_SHIFT
}

/// A generation-tagged counter.
#[derive(Debug, Default)]
pub(crate) struct Counter(pub(super) AtomicU64);

impl Counter {
    #[inline]
    pub(crate) fn add_one(&self, tag: u64) {
        self.add(1, tag)
    }

    #[inline]
    pub(crate) fn add(&self, n: u64, tag: u64) {
        let mut current = self.0.load(Relaxed);
        loop {
            if current & TAG_MASK == tag {
                self.0.fetch_add(n, Relaxed);
                return;
            }
            // Written by an ancestor process: start this generation at `n`.
            match self
                .0
                .compare_exchange_weak(current, tag | n, Relaxed, Relaxed)
            {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// Takes this generation's count, leaving zero. A counter with nothing
    /// to take (zero, or last written by an ancestor process) is only read:
    /// see [`SmallCounter::take`].
    #[inline]
    pub(crate) fn take(&self, tag: u64) -> u64 {
        let current = self.0.load(Relaxed);
        if current & TAG_MASK != tag || current & COUNT_MASK == 0 {
            return 0;
        }
        let old = self.0.swap(tag, Relaxed);
        if old & TAG_MASK == tag {
            old & COUNT_MASK
        } else {
            0
        }
    }

    /// Reads this generation's count without taking it.
    #[inline]
    pub(crate) fn peek(&self, tag: u64) -> u64 {
        let v = self.0.load(Relaxed);
        if v & TAG_MASK == tag {
            v & COUNT_MASK
        } else {
            0
        }
    }
}

/// Counters of one flag.
#[derive(Debug)]
pub(crate) struct FlagCounters {
    pub(crate) yes: Counter,
    pub(crate) no: Counter,
    pub(crate) variants: Box<[Counter]>,
}

impl FlagCounters {
    pub(crate) fn new(variant_slots: usize) -> FlagCounters {
        FlagCounters {
            yes: Counter::default(),
            no: Counter::default(),
            variants: (0..variant_slots).map(|_| Counter::default()).collect(),
        }
    }

    #[inline]
    pub(crate) fn count(&self, enabled: bool, tag: u64) {
        if enabled {
            self.yes.add_one(tag)
        } else {
            self.no.add_one(tag)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_of_other_generations_are_not_collected() {
        let c = Counter::default();
        let (parent, child) = (tag_for(1), tag_for(2));
        c.add_one(parent);
        c.add_one(parent);
        assert_eq!(c.peek(parent), 2);
        // In the child, the ancestor's counts are invisible...
        assert_eq!(c.peek(child), 0);
        // ...and the first count replaces them.
        c.add_one(child);
        assert_eq!(c.peek(child), 1);
        assert_eq!(c.take(child), 1);
        assert_eq!(c.take(child), 0);
    }
}
