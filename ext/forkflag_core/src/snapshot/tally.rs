//! The counts collected from snapshots, per flag: the metrics bucket's
//! toggles.

use std::collections::BTreeMap;

use serde::Serialize;

use super::counter::{Counter, FlagCounters};
use super::{Snapshot, DISABLED_VARIANT};

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

    /// The counts as JSON: `{name: {yes, no, variants: {name: n}}}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.toggles).unwrap_or_else(|_| "{}".into())
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
            stats.variants.insert(DISABLED_VARIANT.to_string(), n);
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
        self.collect_from(snapshot, tag, true);
    }

    /// Reads this generation's counts in a snapshot without taking them.
    pub fn peek_from(&mut self, snapshot: &Snapshot, tag: u64) {
        self.collect_from(snapshot, tag, false);
    }

    fn collect_from(&mut self, snapshot: &Snapshot, tag: u64, take: bool) {
        let counts = &snapshot.counts;
        for (i, flag) in snapshot.flags.iter().enumerate() {
            let [yes, no, disabled] = counts.flag(i, tag, take);
            let mut stats = ToggleStats {
                yes,
                no,
                variants: BTreeMap::new(),
            };
            if disabled > 0 {
                stats
                    .variants
                    .insert(DISABLED_VARIANT.to_string(), disabled);
            }
            for slot in flag.slots.range() {
                let n = counts.variant(slot, tag, take);
                // A variant chosen is a yes of its flag.
                stats.yes += n;
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
