//! The immutable, evaluation-ready form of a flags payload.
//!
//! A [`Snapshot`] is built once per configuration change by
//! [`crate::compile`] and read by every evaluation without locks. Per-flag
//! usage counters live beside the flags in their own array, so counting
//! writes to a few small pages and leaves the (large, read-only) flag data
//! shared between forked processes.
//!
//! Here the snapshot itself and its lookup by name; `flag.rs` has the
//! flag's parts (strategies, variants, payloads, dependencies),
//! `constraint.rs` the compiled constraint, `arena.rs` the strings and
//! parsed operands; `counter.rs`, `usage.rs` and `overflow.rs` the
//! fork-tagged usage counters, `tally.rs` the counts collected from them.

pub(crate) mod arena;
pub(crate) mod constraint;
pub(crate) mod counter;
mod describe;
pub(crate) mod flag;
mod overflow;
mod tally;
mod usage;

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use crate::context::Field;
use arena::{Arena, Span, StrSet};
use constraint::Constraint;
pub use counter::tag_for;
use flag::{Dependency, Strategy, VariantSet};
pub use flag::{Flag, Payload, Variant, DISABLED_VARIANT};
pub use tally::{Tally, ToggleStats};
use usage::SnapshotCounts;

/// A compiled flags payload.
///
/// Flags, strategies, constraints, variants and the rest are each one flat
/// vector per snapshot; a flag or strategy names its part of the next level
/// by a [`Span`], and every string lives in one [`Arena`]. So a snapshot is
/// a few dozen allocations whatever the number of flags.
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) flags: Box<[Flag]>,
    /// Each flag's fingerprint, in flag order: its definition and the
    /// segments it uses (8 bytes a flag, never read by evaluation).
    flag_prints: Box<[u64]>,
    /// Usage counters: yes / no / disabled variant per flag, in flag order,
    /// and one per variant slot (a flag's are at [`Flag::slots`]).
    pub(crate) counts: SnapshotCounts,
    /// The variant name each variant slot counts.
    pub(crate) slot_names: Box<[Arc<str>]>,
    index: HashTable<u32>,
    pub(crate) strategies: Box<[Strategy]>,
    pub(crate) constraints: Box<[Constraint]>,
    /// Segments used by strategies: the segment's constraints, `None` when
    /// the segment is not in the payload (the strategy never matches).
    pub(crate) segment_refs: Box<[Option<Span>]>,
    /// The id of each segment in [`Snapshot::segment_refs`] (for
    /// descriptions).
    pub(crate) segment_ids: Box<[i64]>,
    pub(crate) variant_sets: Box<[VariantSet]>,
    pub(crate) variants: Box<[Variant]>,
    pub(crate) overrides: Box<[(Field, StrSet)]>,
    pub(crate) dependencies: Box<[Dependency]>,
    pub(crate) arena: Arena,
    /// ETag of the response this snapshot came from, if any.
    pub etag: Option<Box<str>>,
    /// Fingerprint of the payload text, to recognise an unchanged refresh.
    pub fingerprint: u64,
    /// The problems of this snapshot's payload, all of them reported (the
    /// next compile reports only the ones not here).
    pub(crate) reported: BTreeSet<String>,
    /// Compiled with this many segments.
    pub(crate) segment_count: usize,
}

/// The flat vectors of a snapshot, as [`crate::compile`] builds them.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    pub(crate) flags: Vec<Flag>,
    /// One fingerprint per flag, in flag order (see
    /// [`Snapshot::changes_since`]).
    pub(crate) flag_prints: Vec<u64>,
    pub(crate) slot_names: Vec<Arc<str>>,
    pub(crate) strategies: Vec<Strategy>,
    pub(crate) constraints: Vec<Constraint>,
    pub(crate) segment_refs: Vec<Option<Span>>,
    pub(crate) segment_ids: Vec<i64>,
    pub(crate) variant_sets: Vec<VariantSet>,
    pub(crate) variants: Vec<Variant>,
    pub(crate) overrides: Vec<(Field, StrSet)>,
    pub(crate) dependencies: Vec<Dependency>,
}

/// The hash used for flag lookup.
#[inline]
fn name_hash(name: &[u8]) -> u64 {
    FxBuildHasher.hash_one(name)
}

impl Snapshot {
    pub(crate) fn new(
        tables: Tables,
        arena: Arena,
        etag: Option<Box<str>>,
        fingerprint: u64,
        reported: BTreeSet<String>,
        segment_count: usize,
    ) -> Snapshot {
        let Tables {
            flags,
            flag_prints,
            slot_names,
            strategies,
            constraints,
            segment_refs,
            segment_ids,
            variant_sets,
            variants,
            overrides,
            dependencies,
        } = tables;
        let mut index = HashTable::with_capacity(flags.len());
        let name = |j: u32| arena.get(flags[j as usize].name);
        for (i, flag) in flags.iter().enumerate() {
            let flag_name = arena.get(flag.name);
            let hash = name_hash(flag_name.as_bytes());
            // Later duplicates replace earlier ones, as a JSON object would.
            match index.find_entry(hash, |&j: &u32| name(j) == flag_name) {
                Ok(mut entry) => *entry.get_mut() = i as u32,
                Err(_) => {
                    index.insert_unique(hash, i as u32, |&j: &u32| name_hash(name(j).as_bytes()));
                }
            }
        }
        Snapshot {
            counts: SnapshotCounts::new(flags.len(), slot_names.len()),
            flags: flags.into_boxed_slice(),
            flag_prints: flag_prints.into_boxed_slice(),
            slot_names: slot_names.into_boxed_slice(),
            index,
            strategies: strategies.into_boxed_slice(),
            constraints: constraints.into_boxed_slice(),
            segment_refs: segment_refs.into_boxed_slice(),
            segment_ids: segment_ids.into_boxed_slice(),
            variant_sets: variant_sets.into_boxed_slice(),
            variants: variants.into_boxed_slice(),
            overrides: overrides.into_boxed_slice(),
            dependencies: dependencies.into_boxed_slice(),
            arena,
            etag,
            fingerprint,
            reported,
            segment_count,
        }
    }

    /// An empty snapshot (no flags).
    pub fn empty() -> Snapshot {
        Snapshot::new(
            Tables::default(),
            Arena::default(),
            None,
            0,
            BTreeSet::new(),
            0,
        )
    }

    /// Looks a flag up by name (bytes, so callers need not validate UTF-8).
    #[inline]
    pub fn index_of(&self, name: &[u8]) -> Option<u32> {
        let hash = name_hash(name);
        self.index
            .find(hash, |&i| {
                self.arena.bytes(self.flags[i as usize].name) == name
            })
            .copied()
    }

    /// Looks a flag up by name.
    #[inline]
    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.index_of(name.as_bytes())
            .map(|i| &self.flags[i as usize])
    }

    /// The flag at an index returned by [`Snapshot::index_of`].
    #[inline]
    pub fn flag_at(&self, index: u32) -> &Flag {
        &self.flags[index as usize]
    }

    /// A flag's name (`flag` must be one of this snapshot's).
    pub fn flag_name(&self, flag: &Flag) -> &str {
        self.arena.get_checked(flag.name).unwrap_or("")
    }

    /// A flag's project, if the payload named one.
    pub fn flag_project(&self, flag: &Flag) -> Option<&str> {
        self.arena.get_checked(flag.project)
    }

    /// A flag's type (release, experiment, ...), if the payload named one.
    pub fn flag_type(&self, flag: &Flag) -> Option<&str> {
        self.arena.get_checked(flag.flag_type)
    }

    /// Number of flags.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there are no flags.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The flags, in payload order (a later duplicate name shadows an earlier).
    pub fn flags(&self) -> impl Iterator<Item = &Flag> {
        self.flags
            .iter()
            .enumerate()
            .filter(|(i, f)| self.index_of(self.arena.get(f.name).as_bytes()) == Some(*i as u32))
            .map(|(_, f)| f)
    }

    /// Flag names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.flags().map(|f| self.flag_name(f)).collect();
        names.sort_unstable();
        names
    }

    /// Number of segments in the payload.
    pub fn segment_count(&self) -> usize {
        self.segment_count
    }

    /// Whether a flag asks for impression events.
    pub fn has_impression_flags(&self) -> bool {
        self.flags.iter().any(|f| f.impression_data)
    }

    /// The flags added, changed and removed since `previous`: a flag is
    /// changed when its definition or a segment it uses differs (compared
    /// by fingerprint; nothing else is read). Walks both snapshots' flags
    /// once: for events, never for evaluation.
    pub fn changes_since(&self, previous: &Snapshot) -> Changes {
        let mut changes = Changes::default();
        for (i, flag) in self.flags.iter().enumerate() {
            let name = self.arena.get(flag.name);
            if self.index_of(name.as_bytes()) != Some(i as u32) {
                continue; // shadowed by a later flag of the same name
            }
            match previous.index_of(name.as_bytes()) {
                None => changes.added.push(name.to_owned()),
                Some(j) if previous.flag_prints[j as usize] != self.flag_prints[i] => {
                    changes.changed.push(name.to_owned())
                }
                Some(_) => {}
            }
        }
        for name in previous.names() {
            if self.index_of(name.as_bytes()).is_none() {
                changes.removed.push(name.to_owned());
            }
        }
        // A name the payload held twice is listed once (names are sorted).
        changes.removed.dedup();
        changes.added.sort_unstable();
        changes.changed.sort_unstable();
        changes
    }
}

/// What a new configuration changed, flag names sorted
/// ([`Snapshot::changes_since`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Flags the previous configuration did not have.
    pub added: Vec<String>,
    /// Flags whose definition, or a segment they use, differs.
    pub changed: Vec<String>,
    /// Flags the new configuration does not have.
    pub removed: Vec<String>,
}
