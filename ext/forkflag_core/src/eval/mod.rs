//! Evaluation: is a flag on for a context, and which variant applies.
//!
//! Nothing here locks or allocates (the one exception is case-insensitive
//! matching of non-ASCII text). Parents of dependent flags are evaluated
//! without being counted.

pub mod hashing;

use crate::context::{Context, Field};
use crate::eval::hashing::{normalized, STRATEGY_SEED, VARIANT_SEED};
use crate::process::random::random_in;
use crate::snapshot::{
    remote_address_matches, Flag, Snapshot, Stickiness, Strategy, StrategyKind, Variant, VariantSet,
};

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
        self.variant
            .map_or(crate::compile::DISABLED_VARIANT, |v| v.name())
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
                    ip.is_some_and(|ip| nets.iter().any(|n| n.contains(&ip)))
                } else {
                    ctx.with_field(&Field::RemoteAddress, |raw| {
                        remote_address_matches(nets, self.arena.list(*texts), ip, raw)
                    })
                }
            }
            StrategyKind::Hostname(matches) => *matches,
            StrategyKind::Never => false,
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

#[cfg(test)]
mod tests {
    use crate::compile::{self, model};
    use crate::context::OwnedContext;
    use crate::snapshot::counters::{tag_for, Tally};

    fn snapshot(json: &str) -> crate::Snapshot {
        let payload: model::ClientFeatures = serde_json::from_str(json).unwrap();
        compile::compile(&payload, None, 0, None).0
    }

    #[test]
    fn variants_of_one_name_share_a_counter_and_disabled_adds_to_the_disabled_count() {
        // Two strategies repeat the variant names; the second flag names a
        // variant "disabled". Each name must come out once, with its total.
        let s = snapshot(
            r#"{"version":2,"features":[
              {"name":"a","enabled":true,"strategies":[
                {"name":"userWithId","parameters":{"userIds":"1"},
                 "variants":[{"name":"x","weight":100,"stickiness":"default"}]},
                {"name":"default",
                 "variants":[{"name":"x","weight":100,"stickiness":"default"}]}]},
              {"name":"b","enabled":true,"strategies":[
                {"name":"userWithId","parameters":{"userIds":"1"},
                 "variants":[{"name":"disabled","weight":100,"stickiness":"default"}]}]},
              {"name":"c","enabled":true,"strategies":[{"name":"default"}]}]}"#,
        );
        let tag = tag_for(1);
        let user = |id: &str| OwnedContext {
            user_id: Some(id.into()),
            ..Default::default()
        };
        for id in ["1", "2", "3"] {
            let (choice, _) = s.check_variant(b"a", &user(id), tag).unwrap();
            assert_eq!(choice.name(), "x");
            s.check_variant(b"b", &user(id), tag).unwrap();
            // An enabled flag without variants: the disabled variant, and
            // each call a yes whether it asked for a variant or not.
            let (choice, _) = s.check_variant(b"c", &user(id), tag).unwrap();
            assert_eq!((choice.name(), choice.feature_enabled), ("disabled", true));
            assert_eq!(s.check(b"c", &user(id), tag).map(|(on, _)| on), Some(true));
        }
        let mut tally = Tally::default();
        tally.drain_from(&s, tag);
        let a = &tally.toggles["a"];
        assert_eq!((a.yes, a.no), (3, 0));
        assert_eq!(
            a.variants.iter().collect::<Vec<_>>(),
            [(&"x".to_string(), &3)]
        );
        let b = &tally.toggles["b"];
        assert_eq!((b.yes, b.no), (1, 2));
        assert_eq!(
            b.variants.iter().collect::<Vec<_>>(),
            [(&"disabled".to_string(), &3)]
        );
        let c = &tally.toggles["c"];
        assert_eq!((c.yes, c.no), (6, 0));
        assert_eq!(
            c.variants.iter().collect::<Vec<_>>(),
            [(&"disabled".to_string(), &3)]
        );
        // Taken: nothing is left for the next collection.
        let mut again = Tally::default();
        again.drain_from(&s, tag);
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn variant_weights_adding_up_past_u32_keep_their_shares() {
        // 2 + 4294967295 does not fit a u32: the second variant must still
        // take all but about one in two billion users.
        let s = snapshot(
            r#"{"version":2,"features":[{"name":"w","enabled":true,"strategies":[
              {"name":"default","parameters":{"stickiness":"userId"},"variants":[
                {"name":"a","weight":2},{"name":"b","weight":4294967295}]}]}]}"#,
        );
        for i in 0..100 {
            let ctx = OwnedContext {
                user_id: Some(i.to_string()),
                ..Default::default()
            };
            let (choice, _) = s.check_variant(b"w", &ctx, 0).unwrap();
            assert_eq!(choice.name(), "b", "user {i}");
        }
    }

    #[test]
    fn equal_strings_and_groups_named_like_the_flag_answer_as_written() {
        // The same IN values in two flags are stored once; a groupId equal
        // to the flag's name is not stored: both must still evaluate alike.
        let s = snapshot(
            r#"{"version":2,"features":[
              {"name":"p","enabled":true,"strategies":[{"name":"flexibleRollout",
                "parameters":{"rollout":"50","stickiness":"userId","groupId":"p"},
                "constraints":[{"contextName":"plan","operator":"IN",
                  "values":["a","b","c","d","e","f","g","h","i","j"]}]}]},
              {"name":"q","enabled":true,"strategies":[{"name":"flexibleRollout",
                "parameters":{"rollout":"50","stickiness":"userId","groupId":"p"},
                "constraints":[{"contextName":"plan","operator":"IN",
                  "values":["j","i","h","g","f","e","d","c","b","a"]}]}]}]}"#,
        );
        let mut on = 0;
        for i in 0..200 {
            let mut ctx = OwnedContext {
                user_id: Some(i.to_string()),
                ..Default::default()
            };
            ctx.properties
                .insert("plan".into(), ["a", "j", "z"][i % 3].into());
            let p = s.check(b"p", &ctx, 0).unwrap().0;
            let q = s.check(b"q", &ctx, 0).unwrap().0;
            assert_eq!(p, q, "user {i}");
            assert!(!p || i % 3 != 2, "plan z is not in the list");
            on += p as u32;
        }
        assert!((40..=100).contains(&on), "about half of 2/3 of 200: {on}");
    }

    #[test]
    fn only_unconditional_flags_skip_their_strategies() {
        // Each flag is marked always on exactly when no context can turn it
        // off; the others answer from their strategies as before.
        let s = snapshot(
            r#"{"version":2,"segments":[{"id":1,"constraints":[
                {"contextName":"plan","operator":"IN","values":["pro"]}]}],
              "features":[
              {"name":"bare","enabled":true,"strategies":[]},
              {"name":"simple","enabled":true,"strategies":[{"name":"default"}]},
              {"name":"default","enabled":true,"strategies":[{"name":"default",
                "variants":[{"name":"v","weight":100,"stickiness":"default"}]}]},
              {"name":"any","enabled":true,"strategies":[
                {"name":"userWithId","parameters":{"userIds":"1"}},{"name":"default"}]},
              {"name":"off","enabled":false,"strategies":[{"name":"default"}]},
              {"name":"constrained","enabled":true,"strategies":[{"name":"default",
                "constraints":[{"contextName":"plan","operator":"IN","values":["pro"]}]}]},
              {"name":"segmented","enabled":true,"strategies":[{"name":"default","segments":[1]}]},
              {"name":"child","enabled":true,"strategies":[{"name":"default"}],
                "dependencies":[{"feature":"off"}]},
              {"name":"rollout","enabled":true,"strategies":[{"name":"flexibleRollout",
                "parameters":{"rollout":"100","stickiness":"default","groupId":"r"}}]}]}"#,
        );
        let always: Vec<&str> = s
            .flags()
            .filter(|f| f.always_on)
            .map(|f| s.flag_name(f))
            .collect();
        assert_eq!(always, ["bare", "simple", "default", "any"]);
        let plain: Vec<&str> = s
            .flags()
            .filter(|f| f.plain_on)
            .map(|f| s.flag_name(f))
            .collect();
        assert_eq!(plain, ["bare", "simple"]);
        let mut pro = OwnedContext::default();
        pro.properties.insert("plan".into(), "pro".into());
        let free = OwnedContext::default();
        for (name, for_pro, for_free) in [
            ("bare", true, true),
            ("simple", true, true),
            ("default", true, true),
            ("any", true, true),
            ("off", false, false),
            ("constrained", true, false),
            ("segmented", true, false),
            ("child", false, false),
            ("rollout", true, true),
        ] {
            assert_eq!(
                s.check(name.as_bytes(), &pro, 0).unwrap().0,
                for_pro,
                "{name}"
            );
            assert_eq!(
                s.check(name.as_bytes(), &free, 0).unwrap().0,
                for_free,
                "{name}"
            );
        }
        for plain in [&b"bare"[..], b"simple"] {
            let (choice, _) = s.check_variant(plain, &free, 0).unwrap();
            assert_eq!((choice.name(), choice.feature_enabled), ("disabled", true));
        }
        let (choice, _) = s.check_variant(b"default", &free, 0).unwrap();
        assert_eq!((choice.name(), choice.feature_enabled), ("v", true));
        let (choice, _) = s.check_variant(b"any", &free, 0).unwrap();
        assert_eq!((choice.name(), choice.feature_enabled), ("disabled", true));
        let (choice, _) = s.check_variant(b"off", &free, 0).unwrap();
        assert_eq!((choice.name(), choice.feature_enabled), ("disabled", false));
    }
}
