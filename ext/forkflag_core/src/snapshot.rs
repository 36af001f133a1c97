//! The immutable, evaluation-ready form of a flags payload.
//!
//! A [`Snapshot`] is built once per configuration change by
//! [`crate::compile`] and read by every evaluation without locks. Per-flag
//! usage counters live beside the flags in their own array, so counting
//! writes to a few small pages and leaves the (large, read-only) flag data
//! shared between forked processes.

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use crate::constraint::{Constraint, IpNet, StrSet};
use crate::context::Field;
use crate::metrics::FlagCounters;

/// A compiled flags payload.
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) flags: Box<[Flag]>,
    pub(crate) counters: Box<[FlagCounters]>,
    index: HashTable<u32>,
    /// ETag of the response this snapshot came from, if any.
    pub etag: Option<Box<str>>,
    /// Fingerprint of the payload text, to recognise an unchanged refresh.
    pub fingerprint: u64,
    /// Problems already reported for this configuration (kept across
    /// snapshots so each is reported once).
    pub(crate) reported: BTreeSet<String>,
    /// Compiled with this many segments.
    pub(crate) segment_count: usize,
}

/// How to find the value a rollout or variant choice hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stickiness {
    /// userId, else sessionId, else a random number.
    Default,
    /// A random number.
    Random,
    /// One named field; absent means "no match" for rollouts.
    Field(Field),
}

impl Stickiness {
    pub(crate) fn from_param(param: Option<&str>) -> Stickiness {
        match param {
            None | Some("") | Some("default") => Stickiness::Default,
            Some("random") => Stickiness::Random,
            Some(name) => Stickiness::Field(Field::from_name(name)),
        }
    }
}

/// The built-in strategy kinds.
#[derive(Debug)]
pub(crate) enum StrategyKind {
    Default,
    UserWithId(StrSet),
    /// Percentage of a hashed field (gradualRolloutUserId / SessionId, and
    /// flexibleRollout). `group` `None` means the flag's name.
    Rollout {
        percentage: u32,
        stickiness: Stickiness,
        group: Option<Box<str>>,
    },
    /// gradualRolloutRandom.
    Random {
        percentage: u32,
    },
    RemoteAddress {
        nets: Box<[IpNet]>,
        /// Entries that are neither addresses nor ranges, matched as text.
        texts: Box<[Box<str>]>,
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
    pub(crate) constraints: Box<[Constraint]>,
    /// Segments whose constraints must also hold; `None` entries were
    /// referenced but not present in the payload (the strategy never matches).
    pub(crate) segments: Box<[Option<Arc<[Constraint]>>]>,
    pub(crate) variants: Option<Box<VariantSet>>,
}

/// A weighted list of variants and how to pick among them.
#[derive(Debug)]
pub(crate) struct VariantSet {
    pub(crate) variants: Box<[Variant]>,
    pub(crate) total_weight: u32,
    pub(crate) stickiness: Stickiness,
    /// Hash group; `None` means the flag's name.
    pub(crate) group: Option<Box<str>>,
}

/// One variant.
#[derive(Debug)]
pub struct Variant {
    pub(crate) name: Arc<str>,
    pub(crate) weight: u32,
    pub(crate) payload: Option<Arc<Payload>>,
    pub(crate) overrides: Box<[(Field, StrSet)]>,
    /// Index of this variant's usage counter within its flag.
    pub(crate) slot: u16,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// `string`, `json`, `csv`, `number`.
    pub payload_type: Box<str>,
    /// The payload text.
    pub value: Box<str>,
}

/// A dependency on another flag of the same snapshot.
#[derive(Debug)]
pub(crate) struct Dependency {
    /// Index of the parent flag; `None` when the parent is not in the payload.
    pub(crate) parent: Option<u32>,
    pub(crate) expect_enabled: bool,
    pub(crate) variants: Box<[Box<str>]>,
}

/// A compiled flag.
#[derive(Debug)]
pub struct Flag {
    pub(crate) name: Box<str>,
    pub(crate) enabled: bool,
    pub(crate) impression_data: bool,
    pub(crate) strategies: Box<[Strategy]>,
    pub(crate) variants: Option<Box<VariantSet>>,
    pub(crate) dependencies: Box<[Dependency]>,
    /// Names of the counters in this flag's [`FlagCounters::variants`];
    /// slot 0 is the disabled variant.
    pub(crate) variant_slots: Box<[Box<str>]>,
    pub(crate) project: Option<Box<str>>,
    pub(crate) flag_type: Option<Box<str>>,
}

impl Flag {
    /// The flag's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the flag is switched on (before strategies).
    pub fn is_switched_on(&self) -> bool {
        self.enabled
    }

    /// Whether evaluations should emit impression events.
    pub fn impression_data(&self) -> bool {
        self.impression_data
    }

    /// The flag's project, if the payload named one.
    pub fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }

    /// The flag's type (release, experiment, ...), if the payload named one.
    pub fn flag_type(&self) -> Option<&str> {
        self.flag_type.as_deref()
    }
}

/// The hash used for flag lookup.
#[inline]
fn name_hash(name: &[u8]) -> u64 {
    FxBuildHasher.hash_one(name)
}

impl Snapshot {
    pub(crate) fn new(
        flags: Vec<Flag>,
        etag: Option<Box<str>>,
        fingerprint: u64,
        reported: BTreeSet<String>,
        segment_count: usize,
    ) -> Snapshot {
        let mut index = HashTable::with_capacity(flags.len());
        for (i, flag) in flags.iter().enumerate() {
            let hash = name_hash(flag.name.as_bytes());
            // Later duplicates replace earlier ones, as a JSON object would.
            match index.find_entry(hash, |&j: &u32| flags[j as usize].name == flag.name) {
                Ok(mut entry) => *entry.get_mut() = i as u32,
                Err(_) => {
                    index.insert_unique(hash, i as u32, |&j: &u32| {
                        name_hash(flags[j as usize].name.as_bytes())
                    });
                }
            }
        }
        let counters = flags
            .iter()
            .map(|f| FlagCounters::new(f.variant_slots.len()))
            .collect();
        Snapshot {
            flags: flags.into_boxed_slice(),
            counters,
            index,
            etag,
            fingerprint,
            reported,
            segment_count,
        }
    }

    /// An empty snapshot (no flags).
    pub fn empty() -> Snapshot {
        Snapshot::new(Vec::new(), None, 0, BTreeSet::new(), 0)
    }

    /// Looks a flag up by name (bytes, so callers need not validate UTF-8).
    #[inline]
    pub fn index_of(&self, name: &[u8]) -> Option<u32> {
        let hash = name_hash(name);
        self.index
            .find(hash, |&i| self.flags[i as usize].name.as_bytes() == name)
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
            .filter(|(i, f)| self.index_of(f.name.as_bytes()) == Some(*i as u32))
            .map(|(_, f)| f)
    }

    /// Flag names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.flags().map(|f| f.name()).collect();
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
pub(crate) fn remote_address_matches(
    nets: &[IpNet],
    texts: &[Box<str>],
    ip: Option<IpAddr>,
    raw: Option<&str>,
) -> bool {
    if let Some(ip) = ip {
        if nets.iter().any(|n| n.contains(&ip)) {
            return true;
        }
    }
    match raw {
        Some(raw) => texts.iter().any(|t| **t == *raw.trim()),
        None => false,
    }
}
