//! Evaluation: is a flag on for a context, and which variant applies.
//!
//! Nothing here locks or allocates (the one exception is case-insensitive
//! matching of non-ASCII text). Parents of dependent flags are evaluated
//! without being counted.

mod constraint;
#[cfg(test)]
mod custom_tests;
mod explain;
pub mod hashing;
#[cfg(test)]
mod tests;

use crate::context::{Context, Field};
use crate::process::random::random_in;
use crate::snapshot::flag::{Stickiness, Strategy, StrategyKind, VariantSet};
use crate::snapshot::{Flag, Snapshot, Variant, DISABLED_VARIANT};
use constraint::{net_contains, remote_address_matches};
use hashing::{normalized, STRATEGY_SEED, VARIANT_SEED};

pub use explain::{Explanation, Reason};

/// The result of choosing a variant.
#[derive(Debug, Clone, Copy)]
pub struct VariantChoice<'s> {
    /// The chosen variant; `None` is the disabled variant.
    pub variant: Option<&'s Variant>,
    /// Whether the flag itself was enabled for the context.
    pub feature_enabled: bool,
}

impl VariantChoice<'_> {
    /// The variant's name (`"disabled"` when none applies).
    pub fn name(&self) -> &str {
        self.variant.map_or(DISABLED_VARIANT, |v| v.name())
    }

    /// Whether a real variant was chosen.
    pub fn enabled(&self) -> bool {
        self.variant.is_some()
    }
}

impl Snapshot {
    /// Evaluates a flag by name and counts the answer (unless a read of the
    /// context [failed](Context::failed)). `None` when the snapshot has no
    /// such flag (nothing is counted then).
    #[inline]
    pub fn check<C: Context + ?Sized>(
        &self,
        name: &[u8],
        ctx: &C,
        tag: u64,
    ) -> Option<(bool, &Flag)> {
        let i = self.index_of(name)?;
        Some(self.check_at(i, ctx, tag))
    }

    /// [`Snapshot::check`] for the flag at an index returned by
    /// [`Snapshot::index_of`] on this snapshot.
    #[inline]
    pub fn check_at<C: Context + ?Sized>(&self, i: u32, ctx: &C, tag: u64) -> (bool, &Flag) {
        let enabled = self.is_enabled_at(i, ctx);
        if !ctx.failed() {
            self.counts.count(i, enabled, tag);
        }
        (enabled, &self.flags[i as usize])
    }

    /// Chooses a variant by name and counts it (unless a read of the
    /// context [failed](Context::failed)). `None` when the snapshot has no
    /// such flag.
    #[inline]
    pub fn check_variant<C: Context + ?Sized>(
        &self,
        name: &[u8],
        ctx: &C,
        tag: u64,
    ) -> Option<(VariantChoice<'_>, &Flag)> {
        let i = self.index_of(name)?;
        Some(self.check_variant_at(i, ctx, tag))
    }

    /// [`Snapshot::check_variant`] for the flag at an index returned by
    /// [`Snapshot::index_of`] on this snapshot.
    #[inline]
    pub fn check_variant_at<C: Context + ?Sized>(
        &self,
        i: u32,
        ctx: &C,
        tag: u64,
    ) -> (VariantChoice<'_>, &Flag) {
        let choice = self.variant_at(i, ctx);
        if ctx.failed() {
            return (choice, &self.flags[i as usize]);
        }
        // One counter per call: the variant's slot, which also counts a
        // yes (a variant is chosen only for an enabled feature), or the
        // disabled variant's yes or no (see `SnapshotCounts`).
        match choice.variant {
            Some(v) => {
                debug_assert!(choice.feature_enabled, "a variant of a disabled feature");
                self.counts.count_variant(v.slot, tag)
            }
            None => self.counts.count_disabled(i, choice.feature_enabled, tag),
        }
        (choice, &self.flags[i as usize])
    }

    /// Whether evaluating the flag at `i` may ask a custom strategy of the
    /// context ([`Context::custom_strategy`]), its own or a parent's.
    #[inline]
    pub fn calls_custom(&self, i: u32) -> bool {
        self.flags[i as usize].custom
    }

    /// Whether the flag at `i` is enabled for the context (not counted).
    #[inline]
    pub fn is_enabled_at<C: Context + ?Sized>(&self, i: u32, ctx: &C) -> bool {
        let flag = &self.flags[i as usize];
        flag.always_on || self.is_enabled_by_strategies(flag, ctx)
    }

    /// [`Snapshot::is_enabled_at`] for a flag that is not always on.
    fn is_enabled_by_strategies<C: Context + ?Sized>(&self, flag: &Flag, ctx: &C) -> bool {
        flag.enabled
            && self.dependencies_met(flag, ctx)
            && (flag.strategies.is_empty()
                || flag
                    .strategies
                    .of(&self.strategies)
                    .iter()
                    .any(|s| self.strategy_matches(s, ctx)))
    }

    /// The variant of the flag at `i` for the context (not counted).
    #[inline]
    pub fn variant_at<C: Context + ?Sized>(&self, i: u32, ctx: &C) -> VariantChoice<'_> {
        let flag = &self.flags[i as usize];
        if flag.plain_on {
            return VariantChoice {
                variant: None,
                feature_enabled: true,
            };
        }
        self.variant_by_strategies(flag, ctx)
    }

    /// [`Snapshot::variant_at`] for a flag that is not plainly on.
    fn variant_by_strategies<C: Context + ?Sized>(
        &self,
        flag: &Flag,
        ctx: &C,
    ) -> VariantChoice<'_> {
        let off = VariantChoice {
            variant: None,
            feature_enabled: false,
        };
        if !flag.always_on && (!flag.enabled || !self.dependencies_met(flag, ctx)) {
            return off;
        }
        let set = if flag.strategies.is_empty() {
            flag.variants
        } else {
            let strategies = flag.strategies.of(&self.strategies);
            // A lone strategy of an always-on flag is one that always matches.
            let matched = if flag.always_on && strategies.len() == 1 {
                strategies.first()
            } else {
                strategies.iter().find(|s| self.strategy_matches(s, ctx))
            };
            match matched {
                Some(strategy) => strategy.variants.or(flag.variants),
                None => return off,
            }
        };
        VariantChoice {
            variant: set.and_then(|set| self.pick_variant(&self.variant_sets[set as usize], ctx)),
            feature_enabled: true,
        }
    }

    #[inline]
    fn dependencies_met<C: Context + ?Sized>(&self, flag: &Flag, ctx: &C) -> bool {
        flag.dependencies.is_empty()
            || flag.dependencies.of(&self.dependencies).iter().all(|dep| {
                let Some(p) = dep.parent else {
                    return false;
                };
                let parent = &self.flags[p as usize];
                // Only one level of dependency is allowed; deeper chains
                // and cycles leave the child off.
                if !parent.dependencies.is_empty() {
                    return false;
                }
                if self.is_enabled_at(p, ctx) != dep.expect_enabled {
                    return false;
                }
                dep.variants.is_empty() || {
                    let choice = self.variant_at(p, ctx);
                    let name = choice.name();
                    self.arena.list(dep.variants).any(|v| v == name)
                }
            })
    }

    #[inline]
    fn strategy_matches<C: Context + ?Sized>(&self, strategy: &Strategy, ctx: &C) -> bool {
        self.kind_matches(&strategy.kind, ctx)
            && (strategy.constraints.is_empty()
                || strategy
                    .constraints
                    .of(&self.constraints)
                    .iter()
                    .all(|c| c.holds(&self.arena, ctx)))
            && (strategy.segments.is_empty()
                || strategy
                    .segments
                    .of(&self.segment_refs)
                    .iter()
                    .all(|segment| match segment {
                        Some(constraints) => constraints
                            .of(&self.constraints)
                            .iter()
                            .all(|c| c.holds(&self.arena, ctx)),
                        None => false,
                    }))
    }

    #[inline]
    fn kind_matches<C: Context + ?Sized>(&self, kind: &StrategyKind, ctx: &C) -> bool {
        match kind {
            StrategyKind::Default => true,
            StrategyKind::UserWithId(ids) => ctx.with_field(&Field::UserId, |v| {
                v.is_some_and(|id| self.arena.contains(*ids, id))
            }),
            StrategyKind::Rollout {
                percentage,
                stickiness,
                group,
                ..
            } => {
                let group = self.arena.get(*group);
                let hashed = |id: &str| normalized(group, id, 100, STRATEGY_SEED);
                let point = match stickiness {
                    Stickiness::Default => ctx
                        .with_field(&Field::UserId, |v| v.map(hashed))
                        .or_else(|| ctx.with_field(&Field::SessionId, |v| v.map(hashed)))
                        .unwrap_or_else(|| random_in(100)),
                    Stickiness::Random => random_in(100),
                    Stickiness::Field(field) => match ctx
                        .with_field(&self.arena.fields[*field as usize], |v| v.map(hashed))
                    {
                        Some(p) => p,
                        None => return false,
                    },
                };
                point <= *percentage
            }
            StrategyKind::Random { percentage } => random_in(100) <= *percentage,
            StrategyKind::RemoteAddress { nets, texts } => {
                let ip = ctx.remote_ip();
                let nets = nets.of(&self.arena.nets);
                if texts.is_empty() {
                    ip.is_some_and(|ip| nets.iter().any(|n| net_contains(n, &ip)))
                } else {
                    ctx.with_field(&Field::RemoteAddress, |raw| {
                        remote_address_matches(nets, self.arena.list(*texts), ip, raw)
                    })
                }
            }
            StrategyKind::Hostname(matches) => *matches,
            StrategyKind::Custom(strategy) => ctx.custom_strategy(strategy),
            StrategyKind::Never(_) => false,
        }
    }

    fn pick_variant<C: Context + ?Sized>(&self, set: &VariantSet, ctx: &C) -> Option<&Variant> {
        let variants = set.variants.of(&self.variants);
        for variant in variants {
            for (field, values) in variant.overrides.of(&self.overrides) {
                if ctx.with_field(field, |v| {
                    v.is_some_and(|v| self.arena.contains(*values, v))
                }) {
                    return Some(variant);
                }
            }
        }
        if set.total_weight == 0 {
            return None;
        }
        let group = self.arena.get(set.group);
        let total = set.total_weight;
        let hashed = |id: &str| normalized(group, id, total, VARIANT_SEED);
        let target = match set.stickiness {
            Stickiness::Default => ctx
                .with_field(&Field::UserId, |v| v.map(hashed))
                .or_else(|| ctx.with_field(&Field::SessionId, |v| v.map(hashed))),
            Stickiness::Random => None,
            Stickiness::Field(field) => {
                ctx.with_field(&self.arena.fields[field as usize], |v| v.map(hashed))
            }
        }
        .unwrap_or_else(|| random_in(total));
        let mut cumulative = 0u32;
        variants.iter().find(|v| {
            cumulative = cumulative.saturating_add(v.weight);
            cumulative >= target
        })
    }
}
