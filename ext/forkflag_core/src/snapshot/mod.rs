//! The immutable, evaluation-ready form of a flags payload.
//!
//! A [`Snapshot`] is built once per configuration change by
//! [`crate::compile`] and read by every evaluation without locks. Per-flag
//! usage counters live beside the flags in their own array, so counting
//! writes to a few small pages and leaves the (large, read-only) flag data
//! shared between forked processes.

pub(crate) mod arena;
pub mod constraint;
pub mod counters;

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use crate::context::Field;
use crate::snapshot::arena::{Arena, ArenaBuilder, Span, StrSet, Text};
use crate::snapshot::constraint::{Constraint, IpNet};
use crate::snapshot::counters::SnapshotCounts;

/// A compiled flags payload.
///
/// Flags, strategies, constraints, variants and the rest are each one flat
/// vector per snapshot; a flag or strategy names its part of the next level
/// by a [`Span`], and every string lives in one [`Arena`]. So a snapshot is
/// a few dozen allocations whatever the number of flags.
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) flags: Box<[Flag]>,
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
    pub(crate) slot_names: Vec<Arc<str>>,
    pub(crate) strategies: Vec<Strategy>,
    pub(crate) constraints: Vec<Constraint>,
    pub(crate) segment_refs: Vec<Option<Span>>,
    pub(crate) variant_sets: Vec<VariantSet>,
    pub(crate) variants: Vec<Variant>,
    pub(crate) overrides: Vec<(Field, StrSet)>,
    pub(crate) dependencies: Vec<Dependency>,
}

/// How to find the value a rollout or variant choice hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stickiness {
    /// userId, else sessionId, else a random number.
    Default,
    /// A random number.
    Random,
    /// One named field (index in [`Arena::fields`]); absent means "no
    /// match" for rollouts.
    Field(u32),
}

impl Stickiness {
    pub(crate) fn from_param(param: Option<&str>, arena: &mut ArenaBuilder) -> Stickiness {
        match param {
            None | Some("") | Some("default") => Stickiness::Default,
            Some("random") => Stickiness::Random,
            Some(name) => Stickiness::Field(arena.field_index(name)),
        }
    }
}

/// The built-in strategy kinds.
#[derive(Debug)]
pub(crate) enum StrategyKind {
    Default,
    UserWithId(StrSet),
    /// Percentage of a hashed field (gradualRolloutUserId / SessionId, and
    /// flexibleRollout), hashed with `group` (the flag's name by default).
    Rollout {
        percentage: u32,
        stickiness: Stickiness,
        group: Text,
    },
    /// gradualRolloutRandom.
    Random {
        percentage: u32,
    },
    RemoteAddress {
        /// Networks in [`Arena::nets`].
        nets: Span,
        /// Entries that are neither addresses nor ranges, matched as text.
        texts: Span,
    },
    /// applicationHostname, resolved against this host's name when compiled.
    Hostname(bool),
    /// An unknown strategy or unusable parameters: never matches.
    Never,
}

/// A compiled strategy.
#[derive(Debug)]
pub(crate) struct Strategy {
    pub(crate) kind: StrategyKind,
    /// In [`Snapshot::constraints`].
    pub(crate) constraints: Span,
    /// Segments whose constraints must also hold, in
    /// [`Snapshot::segment_refs`].
    pub(crate) segments: Span,
    /// Index in [`Snapshot::variant_sets`].
    pub(crate) variants: Option<u32>,
}

/// A weighted list of variants and how to pick among them.
#[derive(Debug)]
pub(crate) struct VariantSet {
    /// In [`Snapshot::variants`].
    pub(crate) variants: Span,
    pub(crate) total_weight: u32,
    pub(crate) stickiness: Stickiness,
    /// Hash group (the flag's name by default).
    pub(crate) group: Text,
}

/// One variant.
#[derive(Debug)]
pub struct Variant {
    pub(crate) name: Arc<str>,
    pub(crate) weight: u32,
    pub(crate) payload: Option<Arc<Payload>>,
    /// In [`Snapshot::overrides`].
    pub(crate) overrides: Span,
    /// This variant's slot: the index of its usage counter among the
    /// snapshot's variant counters (in [`Snapshot::counts`]).
    pub(crate) slot: u32,
}

impl Variant {
    /// The variant's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The variant's name, shared (cloning it does not allocate).
    pub fn shared_name(&self) -> &Arc<str> {
        &self.name
    }

    /// The variant's payload.
    pub fn payload(&self) -> Option<&Arc<Payload>> {
        self.payload.as_ref()
    }
}

/// A variant payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Payload {
    /// `string`, `json`, `csv`, `number`.
    pub payload_type: Arc<str>,
    /// The payload text.
    pub value: Arc<str>,
}

/// A dependency on another flag of the same snapshot.
#[derive(Debug)]
pub(crate) struct Dependency {
    /// Index of the parent flag; `None` when the parent is not in the payload.
    pub(crate) parent: Option<u32>,
    pub(crate) expect_enabled: bool,
    /// Variant names (texts in the arena); empty means any.
    pub(crate) variants: Span,
}

/// A compiled flag. Its name and other texts are in its snapshot's arena:
/// see [`Snapshot::flag_name`].
#[derive(Debug)]
pub struct Flag {
    pub(crate) name: Text,
    pub(crate) enabled: bool,
    /// On for every context: switched on, no dependencies, and no strategy
    /// or one with neither condition nor segment (the `default` strategy).
    /// Lets evaluation skip the strategies.
    pub(crate) always_on: bool,
    /// Always on, and its variant is always the disabled one: no strategy,
    /// or one, and no variants from it or the flag.
    pub(crate) plain_on: bool,
    pub(crate) impression_data: bool,
    /// In [`Snapshot::strategies`].
    pub(crate) strategies: Span,
    /// Index in [`Snapshot::variant_sets`].
    pub(crate) variants: Option<u32>,
    /// In [`Snapshot::dependencies`].
    pub(crate) dependencies: Span,
    /// This flag's variant slots (their counters are in
    /// [`Snapshot::counts`]), one per distinct variant name; the disabled
    /// variant is counted beside yes and no.
    pub(crate) slots: Span,
    /// [`Text::ABSENT`] when the payload named none.
    pub(crate) project: Text,
    /// [`Text::ABSENT`] when the payload named none.
    pub(crate) flag_type: Text,
}

impl Flag {
    /// Whether the flag is switched on (before strategies).
    pub fn is_switched_on(&self) -> bool {
        self.enabled
    }

    /// Whether evaluations should emit impression events.
    pub fn impression_data(&self) -> bool {
        self.impression_data
    }
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
            slot_names,
            strategies,
            constraints,
            segment_refs,
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
            slot_names: slot_names.into_boxed_slice(),
            index,
            strategies: strategies.into_boxed_slice(),
            constraints: constraints.into_boxed_slice(),
            segment_refs: segment_refs.into_boxed_slice(),
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
}

/// This machine's host name as the applicationHostname strategy sees it
/// ($HOSTNAME, else gethostname(2), lowercased; "undefined" when neither
/// is available), read once per process.
pub fn host_name() -> &'static str {
    use std::sync::OnceLock;
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        if let Ok(h) = std::env::var("HOSTNAME") {
            if !h.is_empty() {
                return h.to_lowercase();
            }
        }
        let mut buf = [0u8; 256];
        // SAFETY: `buf` is a valid, writable buffer of the length passed.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc != 0 {
            return "undefined".into();
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).to_lowercase()
    })
}

/// Whether `ip` (or the raw text) matches one of the remoteAddress entries.
#[inline]
pub(crate) fn remote_address_matches<'a>(
    nets: &[IpNet],
    mut texts: impl Iterator<Item = &'a str>,
    ip: Option<IpAddr>,
    raw: Option<&str>,
) -> bool {
    if let Some(ip) = ip {
        if nets.iter().any(|n| n.contains(&ip)) {
            return true;
        }
    }
    match raw {
        Some(raw) => texts.any(|t| t == raw.trim()),
        None => false,
    }
}
