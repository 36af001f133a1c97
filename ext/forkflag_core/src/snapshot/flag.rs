//! A compiled flag and its parts: strategies, variants and their payloads,
//! dependencies. Their texts and operands are in the snapshot's arena,
//! their lists are spans of the snapshot's flat vectors.

use std::sync::Arc;

use super::arena::{ArenaBuilder, Span, StrSet, Text};
use crate::context::CustomStrategy;

/// Name of the variant returned when no variant applies.
pub const DISABLED_VARIANT: &str = "disabled";

/// How to find the value a rollout or variant choice hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stickiness {
    /// userId, else sessionId, else a random number.
    Default,
    /// A random number.
    Random,
    /// One named field (index in [`super::arena::Arena::fields`]); absent means "no
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
        origin: RolloutOrigin,
        percentage: u32,
        stickiness: Stickiness,
        group: Text,
    },
    /// gradualRolloutRandom.
    Random {
        percentage: u32,
    },
    RemoteAddress {
        /// Networks in [`super::arena::Arena::nets`].
        nets: Span,
        /// Entries that are neither addresses nor ranges, matched as text.
        texts: Span,
    },
    /// applicationHostname, resolved against this host's name when compiled.
    Hostname(bool),
    /// A strategy the application registered (see [`CustomStrategy`]):
    /// the context decides ([`crate::Context::custom_strategy`]).
    Custom(Box<CustomStrategy>),
    /// An unknown strategy or unusable parameters: never matches. Keeps
    /// the strategy's name (for descriptions).
    Never(Text),
}

/// Which strategy of the payload a [`StrategyKind::Rollout`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RolloutOrigin {
    /// flexibleRollout
    Flexible,
    /// gradualRolloutUserId
    UserId,
    /// gradualRolloutSessionId
    SessionId,
}

/// A compiled strategy.
#[derive(Debug)]
pub(crate) struct Strategy {
    pub(crate) kind: StrategyKind,
    /// In [`super::Snapshot::constraints`].
    pub(crate) constraints: Span,
    /// Segments whose constraints must also hold, in
    /// [`super::Snapshot::segment_refs`].
    pub(crate) segments: Span,
    /// Index in [`super::Snapshot::variant_sets`].
    pub(crate) variants: Option<u32>,
}

/// A weighted list of variants and how to pick among them.
#[derive(Debug)]
pub(crate) struct VariantSet {
    /// In [`super::Snapshot::variants`].
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
    /// In [`super::Snapshot::overrides`].
    pub(crate) overrides: Span,
    /// This variant's slot: the index of its usage counter among the
    /// snapshot's variant counters (in [`super::Snapshot::counts`]).
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
    /// The parent's name (for descriptions).
    pub(crate) feature: Text,
    /// Index of the parent flag; `None` when the parent is not in the payload.
    pub(crate) parent: Option<u32>,
    pub(crate) expect_enabled: bool,
    /// Variant names (texts in the arena); empty means any.
    pub(crate) variants: Span,
}

/// A compiled flag. Its name and other texts are in its snapshot's arena:
/// see [`super::Snapshot::flag_name`].
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
    /// Its answer may ask a [`crate::CustomStrategy`]: one of its
    /// strategies is one, or one of its parents'.
    pub(crate) custom: bool,
    /// In [`super::Snapshot::strategies`].
    pub(crate) strategies: Span,
    /// Index in [`super::Snapshot::variant_sets`].
    pub(crate) variants: Option<u32>,
    /// In [`super::Snapshot::dependencies`].
    pub(crate) dependencies: Span,
    /// This flag's variant slots (their counters are in
    /// [`super::Snapshot::counts`]), one per distinct variant name; the disabled
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
