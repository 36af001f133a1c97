//! A snapshot's usage counters: 32 bits each (a 16-bit fork tag and a
//! 16-bit count), so a worker that evaluates every flag with `enabled?`
//! writes 8 bytes a flag (yes and no side by side; the disabled-variant
//! counters, which only `variant` writes, are in an array of their own); a
//! counter that reaches half its range moves that half into a full-width
//! overflow counter, mapped only when the first one does.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::counter::TAG_SHIFT;
use super::overflow::Overflow;

/// Width of a snapshot counter's count; the fork tag takes the other 16 bits.
const SMALL_BITS: u32 = 16;
const SMALL_COUNT: u32 = (1 << SMALL_BITS) - 1;
/// A snapshot counter moves this much into its overflow counter each time
/// its count reaches it; the headroom above it is never used up, since a
/// count passes it only by the writers under way at that moment.
const SPILL_AT: u32 = 1 << (SMALL_BITS - 1);

/// The 16-bit tag of a snapshot counter, from a [`tag_for`] tag.
#[inline]
fn short_tag(tag: u64) -> u32 {
    ((tag >> TAG_SHIFT) as u32) << SMALL_BITS
}

/// A generation-tagged 32-bit counter: 16 bits of fork tag, 16 of count.
/// Half its range is moved into the snapshot's [`Overflow`] each time it is
/// reached, so it never wraps and nothing is lost.
#[derive(Debug, Default)]
pub(crate) struct SmallCounter(AtomicU32);

impl SmallCounter {
    #[inline]
    fn add_one(&self, tag: u64, overflow: &Overflow, id: usize) {
        let short = short_tag(tag);
        if self.0.load(Relaxed) & !SMALL_COUNT == short {
            // The tag of a counter changes only in a new process, so it
            // still matches here.
            let old = self.0.fetch_add(1, Relaxed);
            // Every writer that finds the count at or past the mark tries to
            // move it (only one succeeds), so a writer stalled before its
            // move cannot let the count run into the tag.
            if old & SMALL_COUNT >= SPILL_AT - 1 {
                self.spill(short, tag, overflow, id);
            }
        } else {
            self.restart(short);
        }
    }

    /// Written by an ancestor process: starts this generation at one.
    #[cold]
    #[inline(never)]
    fn restart(&self, short: u32) {
        let mut current = self.0.load(Relaxed);
        loop {
            if current & !SMALL_COUNT == short {
                // Another thread of this process restarted it first.
                self.0.fetch_add(1, Relaxed);
                return;
            }
            match self
                .0
                .compare_exchange_weak(current, short | 1, Relaxed, Relaxed)
            {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// Moves `SPILL_AT` counts into the overflow counter, unless a
    /// collection took them first.
    #[cold]
    #[inline(never)]
    fn spill(&self, short: u32, tag: u64, overflow: &Overflow, id: usize) {
        let mut current = self.0.load(Relaxed);
        while current & !SMALL_COUNT == short && current & SMALL_COUNT >= SPILL_AT {
            match self
                .0
                .compare_exchange_weak(current, current - SPILL_AT, Relaxed, Relaxed)
            {
                Ok(_) => {
                    overflow.add(id, u64::from(SPILL_AT), tag);
                    return;
                }
                Err(seen) => current = seen,
            }
        }
    }

    /// Takes this generation's count, leaving zero. A counter with nothing
    /// to take (zero, or last written by an ancestor process) is only read,
    /// not written: a collection in a forked child then copies only the
    /// counter pages the child itself wrote, not every page it shares with
    /// its parent. A count added between the read and now stays for the
    /// next collection.
    fn take(&self, tag: u64) -> u64 {
        let short = short_tag(tag);
        let current = self.0.load(Relaxed);
        if current & !SMALL_COUNT != short || current & SMALL_COUNT == 0 {
            return 0;
        }
        let old = self.0.swap(short, Relaxed);
        if old & !SMALL_COUNT == short {
            u64::from(old & SMALL_COUNT)
        } else {
            0
        }
    }

    fn peek(&self, tag: u64) -> u64 {
        let v = self.0.load(Relaxed);
        if v & !SMALL_COUNT == short_tag(tag) {
            u64::from(v & SMALL_COUNT)
        } else {
            0
        }
    }
}

/// The yes and no counters of one flag of a snapshot, side by side: 8
/// bytes a flag, all that a process which only calls `enabled?` writes. The
/// disabled-variant counters are in an array of their own
/// ([`SnapshotCounts::disabled`]), the other variants' in
/// [`SnapshotCounts::variants`].
#[derive(Debug, Default)]
pub(crate) struct FlagCounts {
    yes: SmallCounter,
    no: SmallCounter,
}

/// The usage counters of a snapshot: four per flag, one per variant slot,
/// and their overflow. An evaluation writes one counter: `enabled?` a yes
/// or a no of [`SnapshotCounts::flags`]; `variant` the slot of the variant
/// it chose (which is also a yes: a variant is chosen only for an enabled
/// feature), or the disabled variant's yes or no of
/// [`SnapshotCounts::disabled`] (also a yes or a no of the flag). The
/// collection adds them up. Ids in the overflow: flag `i` has `4i` to
/// `4i + 3`; slot `s` has `4n + s`.
#[derive(Debug)]
pub(crate) struct SnapshotCounts {
    flags: Box<[FlagCounts]>,
    /// Per flag: the disabled variant answered (by `variant` only), with
    /// the feature enabled (yes) or not (no).
    disabled: Box<[FlagCounts]>,
    variants: Box<[SmallCounter]>,
    overflow: Overflow,
}

impl SnapshotCounts {
    pub(crate) fn new(flags: usize, slots: usize) -> SnapshotCounts {
        SnapshotCounts {
            flags: (0..flags).map(|_| FlagCounts::default()).collect(),
            disabled: (0..flags).map(|_| FlagCounts::default()).collect(),
            variants: (0..slots).map(|_| SmallCounter::default()).collect(),
            overflow: Overflow::new(4 * flags + slots),
        }
    }

    /// Counts an answer of flag `i`.
    #[inline]
    pub(crate) fn count(&self, i: u32, enabled: bool, tag: u64) {
        let i = i as usize;
        let counts = &self.flags[i];
        if enabled {
            counts.yes.add_one(tag, &self.overflow, 4 * i)
        } else {
            counts.no.add_one(tag, &self.overflow, 4 * i + 1)
        }
    }

    /// Counts flag `i` answering its disabled variant, the feature enabled
    /// or not (a yes or a no of the flag as well).
    #[inline]
    pub(crate) fn count_disabled(&self, i: u32, enabled: bool, tag: u64) {
        let i = i as usize;
        let counts = &self.disabled[i];
        if enabled {
            counts.yes.add_one(tag, &self.overflow, 4 * i + 2)
        } else {
            counts.no.add_one(tag, &self.overflow, 4 * i + 3)
        }
    }

    /// Counts variant slot `slot` being chosen (a yes of its flag as well,
    /// added by the collection).
    #[inline]
    pub(crate) fn count_variant(&self, slot: u32, tag: u64) {
        let slot = slot as usize;
        self.variants[slot].add_one(tag, &self.overflow, 4 * self.flags.len() + slot)
    }

    /// Flag `i`'s yes, no and disabled-variant counts, taken or read; the
    /// yes leave out the flag's variant slots (see [`SnapshotCounts`]).
    pub(super) fn flag(&self, i: usize, tag: u64, take: bool) -> [u64; 3] {
        let counts = &self.flags[i];
        let disabled = &self.disabled[i];
        let yes = self.read(&counts.yes, 4 * i, tag, take);
        let no = self.read(&counts.no, 4 * i + 1, tag, take);
        let disabled_yes = self.read(&disabled.yes, 4 * i + 2, tag, take);
        let disabled_no = self.read(&disabled.no, 4 * i + 3, tag, take);
        [
            yes + disabled_yes,
            no + disabled_no,
            disabled_yes + disabled_no,
        ]
    }

    /// Variant slot `slot`'s count, taken or read.
    pub(super) fn variant(&self, slot: usize, tag: u64, take: bool) -> u64 {
        self.read(&self.variants[slot], 4 * self.flags.len() + slot, tag, take)
    }

    fn read(&self, counter: &SmallCounter, id: usize, tag: u64, take: bool) -> u64 {
        if take {
            counter.take(tag) + self.overflow.take(id, tag)
        } else {
            counter.peek(tag) + self.overflow.peek(id, tag)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::counter::tag_for;

    /// Counts flag 0 enabled 40,000 times (past its small counter, into the
    /// overflow) under a parent's tag; returns the parent's tag and its
    /// child's.
    fn counted_by_a_parent(counts: &SnapshotCounts) -> (u64, u64) {
        let parent = tag_for(1);
        for _ in 0..40_000 {
            counts.count(0, true, parent);
        }
        (parent, tag_for(2))
    }

    #[test]
    fn snapshot_counters_spill_past_their_width_and_lose_nothing() {
        let counts = SnapshotCounts::new(2, 1);
        let tag = tag_for(3);
        for _ in 0..200_000 {
            counts.count(1, true, tag);
            counts.count_variant(0, tag);
            counts.count_disabled(0, true, tag);
        }
        counts.count(1, false, tag);
        counts.count_disabled(0, false, tag);
        assert!(counts.overflow.get().is_some(), "the overflow was mapped");
        assert_eq!(counts.flag(1, tag, false), [200_000, 1, 0]);
        assert_eq!(counts.flag(0, tag, false), [200_000, 1, 200_001]);
        assert_eq!(counts.variant(0, tag, false), 200_000);
        assert_eq!(counts.flag(1, tag, true), [200_000, 1, 0]);
        assert_eq!(counts.variant(0, tag, true), 200_000);
        assert_eq!(counts.flag(1, tag, false), [0, 0, 0]);
        assert_eq!(counts.variant(0, tag, false), 0);
    }

    #[test]
    fn snapshot_counts_of_an_ancestor_are_not_collected() {
        let counts = SnapshotCounts::new(1, 0);
        let (parent, child) = counted_by_a_parent(&counts);
        assert_eq!(counts.flag(0, parent, false), [40_000, 0, 0]);
        // Neither the small counter nor its overflow shows in the child...
        assert_eq!(counts.flag(0, child, false), [0, 0, 0]);
        // ...and the child's first count replaces the ancestor's.
        counts.count(0, true, child);
        assert_eq!(counts.flag(0, child, true), [1, 0, 0]);
    }

    #[test]
    fn taking_leaves_counters_with_nothing_to_take_unwritten() {
        // A forked child collects: counters it never wrote (an ancestor's,
        // or zero) must keep their bits, so their pages stay shared.
        let counts = SnapshotCounts::new(3, 1);
        let (parent, child) = counted_by_a_parent(&counts);
        counts.count(1, false, parent);
        counts.count_variant(0, parent);
        let words = |c: &SnapshotCounts| -> Vec<u64> {
            let small = (0..c.flags.len()).flat_map(|i| {
                [
                    &c.flags[i].yes,
                    &c.flags[i].no,
                    &c.disabled[i].yes,
                    &c.disabled[i].no,
                ]
            });
            let small = small
                .chain(c.variants.iter())
                .map(|s| u64::from(s.0.load(Relaxed)));
            let big = c.overflow.get().unwrap().iter().map(|o| o.0.load(Relaxed));
            small.chain(big).collect()
        };
        let before = words(&counts);
        counts.count(2, true, child);
        for i in 0..3 {
            let expected = if i == 2 { [1, 0, 0] } else { [0, 0, 0] };
            assert_eq!(counts.flag(i, child, true), expected);
        }
        assert_eq!(counts.variant(0, child, true), 0);
        let after = words(&counts);
        let changed: Vec<usize> = (0..before.len())
            .filter(|&i| before[i] != after[i])
            .collect();
        // Only flag 2's yes counter: written by the count, then taken.
        assert_eq!(changed, [8]);
        assert_eq!(after[8], u64::from(short_tag(child)));
        // The parent's counts are still there for the parent's collection.
        assert_eq!(counts.flag(0, parent, true), [40_000, 0, 0]);
        assert_eq!(counts.flag(1, parent, true), [0, 1, 0]);
    }

    #[test]
    fn counts_taken_while_threads_count_add_up() {
        const THREADS: u64 = 4;
        const EACH: u64 = 150_000;
        let counts = std::sync::Arc::new(SnapshotCounts::new(1, 1));
        let tag = tag_for(5);
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let collector = {
            let (counts, done) = (counts.clone(), done.clone());
            std::thread::spawn(move || {
                let mut taken = [0u64; 2];
                while !done.load(Relaxed) {
                    taken[0] += counts.flag(0, tag, true)[0];
                    taken[1] += counts.variant(0, tag, true);
                }
                taken
            })
        };
        let writers: Vec<_> = (0..THREADS)
            .map(|_| {
                let counts = counts.clone();
                std::thread::spawn(move || {
                    for _ in 0..EACH {
                        counts.count(0, true, tag);
                        counts.count_variant(0, tag);
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Relaxed);
        let mut taken = collector.join().unwrap();
        taken[0] += counts.flag(0, tag, true)[0];
        taken[1] += counts.variant(0, tag, true);
        assert_eq!(taken, [THREADS * EACH; 2]);
    }
}
