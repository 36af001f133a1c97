//! Usage counters and the metrics bucket sent to the server.
//!
//! Each counter carries the fork generation that wrote it in its top bits.
//! A forked child never has to zero anything: the first count it makes in a
//! counter written by an ancestor replaces the ancestor's number, and a
//! collection ignores counts from other generations. So counts made before a
//! fork stay with the process that made them, and the child starts from zero,
//! at no cost in the fork itself.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use crate::snapshot::Snapshot;

const TAG_SHIFT: u32 = 48;
const COUNT_MASK: u64 = (1 << TAG_SHIFT) - 1;
const TAG_MASK: u64 = !COUNT_MASK;

/// The tag for a fork generation.
#[inline]
pub fn tag_for(generation: u64) -> u64 {
    (generation & 0xffff) << TAG_SHIFT
}

/// A generation-tagged counter.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub(crate) fn add_one(&self, tag: u64) {
        let mut current = self.0.load(Relaxed);
        loop {
            if current & TAG_MASK == tag {
                self.0.fetch_add(1, Relaxed);
                return;
            }
            // Written by an ancestor process: start this generation at one.
            match self
                .0
                .compare_exchange_weak(current, tag | 1, Relaxed, Relaxed)
            {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// Takes this generation's count, leaving zero.
    #[inline]
    pub(crate) fn take(&self, tag: u64) -> u64 {
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

/// Counters of one flag of a snapshot: yes, no and the disabled variant.
/// The counters of its other variants are in the snapshot's
/// `variant_counters`, so this array stays 24 bytes a flag.
#[derive(Debug, Default)]
pub(crate) struct FlagCounts {
    pub(crate) yes: Counter,
    pub(crate) no: Counter,
    pub(crate) disabled: Counter,
}

impl FlagCounts {
    #[inline]
    pub(crate) fn count(&self, enabled: bool, tag: u64) {
        if enabled {
            self.yes.add_one(tag)
        } else {
            self.no.add_one(tag)
        }
    }
}

/// Usage of one flag over a bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ToggleStats {
    /// Evaluations that answered true.
    pub yes: u64,
    /// Evaluations that answered false.
    pub no: u64,
    /// Variant name → times chosen.
    pub variants: BTreeMap<String, u64>,
}

impl ToggleStats {
    fn is_empty(&self) -> bool {
        self.yes == 0 && self.no == 0 && self.variants.values().all(|&n| n == 0)
    }

    fn merge(&mut self, other: &ToggleStats) {
        self.yes += other.yes;
        self.no += other.no;
        for (name, n) in &other.variants {
            *self.variants.entry(name.clone()).or_default() += n;
        }
    }
}

/// Counts per flag, not yet sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Flag name → usage.
    pub toggles: BTreeMap<String, ToggleStats>,
}

impl Tally {
    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.toggles.is_empty()
    }

    /// Adds another tally into this one.
    pub fn merge(&mut self, other: &Tally) {
        for (name, stats) in &other.toggles {
            self.toggles.entry(name.clone()).or_default().merge(stats);
        }
    }

    /// Total yes + no over all flags.
    pub fn evaluations(&self) -> u64 {
        self.toggles.values().map(|s| s.yes + s.no).sum()
    }

    /// Takes (or, with `take` false, reads) this generation's counts of a
    /// name the configuration did not have when it was evaluated; its one
    /// variant slot is the disabled variant.
    pub(crate) fn add_unknown(
        &mut self,
        name: &str,
        counters: &FlagCounters,
        tag: u64,
        take: bool,
    ) {
        let read = |c: &Counter| if take { c.take(tag) } else { c.peek(tag) };
        let mut stats = ToggleStats {
            yes: read(&counters.yes),
            no: read(&counters.no),
            variants: BTreeMap::new(),
        };
        if let Some(n) = counters.variants.first().map(read).filter(|&n| n > 0) {
            stats
                .variants
                .insert(crate::compile::DISABLED_VARIANT.to_string(), n);
        }
        if !stats.is_empty() {
            self.toggles
                .entry(name.to_string())
                .or_default()
                .merge(&stats);
        }
    }

    /// Takes this generation's counts out of a snapshot.
    pub fn drain_from(&mut self, snapshot: &Snapshot, tag: u64) {
        self.collect_from(snapshot, |c| c.take(tag));
    }

    /// Reads this generation's counts in a snapshot without taking them.
    pub fn peek_from(&mut self, snapshot: &Snapshot, tag: u64) {
        self.collect_from(snapshot, |c| c.peek(tag));
    }

    fn collect_from(&mut self, snapshot: &Snapshot, read: impl Fn(&Counter) -> u64) {
        for (flag, counts) in snapshot.flags.iter().zip(snapshot.counters.iter()) {
            let mut stats = ToggleStats {
                yes: read(&counts.yes),
                no: read(&counts.no),
                variants: BTreeMap::new(),
            };
            let disabled = read(&counts.disabled);
            if disabled > 0 {
                stats
                    .variants
                    .insert(crate::compile::DISABLED_VARIANT.to_string(), disabled);
            }
            for slot in flag.slots.range() {
                let n = read(&snapshot.variant_counters[slot]);
                if n > 0 {
                    // A variant named "disabled" adds to the disabled count.
                    *stats
                        .variants
                        .entry(snapshot.slot_names[slot].to_string())
                        .or_default() += n;
                }
            }
            if !stats.is_empty() {
                self.toggles
                    .entry(snapshot.flag_name(flag).to_string())
                    .or_default()
                    .merge(&stats);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_of_other_generations_are_not_collected() {
        let c = Counter::default();
        let parent = tag_for(1);
        let child = tag_for(2);
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
