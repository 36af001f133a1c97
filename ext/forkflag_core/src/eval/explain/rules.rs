//! The strategies' own rules and the variant's choice, explained: what
//! [`Snapshot::kind_matches`] and [`Snapshot::pick_variant`] decide, with
//! what they read.

use serde_json::{json, Map, Value};

use super::read;
use crate::context::{Context, Field};
use crate::eval::constraint::{net_contains, remote_address_matches};
use crate::eval::hashing::{normalized, STRATEGY_SEED, VARIANT_SEED};
use crate::process::random::random_in;
use crate::snapshot::flag::{Stickiness, StrategyKind, VariantSet};
use crate::snapshot::{Snapshot, Variant};

impl Snapshot {
    /// A strategy's own rule ([`Snapshot::kind_matches`]): whether it
    /// matched, what it read, and for a rollout its bucket.
    pub(super) fn explain_kind<C: Context + ?Sized>(
        &self,
        kind: &StrategyKind,
        ctx: &C,
    ) -> (bool, Value, Value) {
        match kind {
            StrategyKind::Default => (true, json!({ "matched": true }), Value::Null),
            StrategyKind::UserWithId(ids) => {
                let ok = ctx.with_field(&Field::UserId, |v| {
                    v.is_some_and(|id| self.arena.contains(*ids, id))
                });
                let kind = json!({
                    "matched": ok,
                    "context_name": "userId",
                    "context_value": read(ctx, &Field::UserId),
                });
                (ok, kind, Value::Null)
            }
            StrategyKind::Rollout {
                percentage,
                stickiness,
                group,
                ..
            } => {
                let group = self.arena.get(*group);
                let (read_from, value, bucket) =
                    self.bucket(*stickiness, ctx, group, 100, STRATEGY_SEED, false);
                let ok = bucket.is_some_and(|b| b <= *percentage);
                let rollout = json!({
                    "stickiness": stickiness.describe(&self.arena),
                    "context_name": read_from,
                    "value": value,
                    "bucket": bucket,
                    "percentage": percentage,
                    "group_id": group,
                });
                (ok, json!({ "matched": ok }), rollout)
            }
            StrategyKind::Random { percentage } => {
                let bucket = random_in(100);
                let ok = bucket <= *percentage;
                let rollout = json!({
                    "stickiness": "random",
                    "context_name": null,
                    "value": null,
                    "bucket": bucket,
                    "percentage": percentage,
                    "group_id": null,
                });
                (ok, json!({ "matched": ok }), rollout)
            }
            StrategyKind::RemoteAddress { nets, texts } => {
                let ip = ctx.remote_ip();
                let nets = nets.of(&self.arena.nets);
                let ok = if texts.is_empty() {
                    ip.is_some_and(|ip| nets.iter().any(|n| net_contains(n, &ip)))
                } else {
                    ctx.with_field(&Field::RemoteAddress, |raw| {
                        remote_address_matches(nets, self.arena.list(*texts), ip, raw)
                    })
                };
                let kind = json!({
                    "matched": ok,
                    "context_name": "remoteAddress",
                    "context_value": read(ctx, &Field::RemoteAddress),
                });
                (ok, kind, Value::Null)
            }
            StrategyKind::Hostname(matches) => {
                (*matches, json!({ "matched": matches }), Value::Null)
            }
            StrategyKind::Custom(strategy) => {
                let ok = ctx.custom_strategy(strategy);
                (ok, json!({ "matched": ok }), Value::Null)
            }
            StrategyKind::Never(_) => (false, json!({ "matched": false }), Value::Null),
        }
    }

    /// The value a stickiness hashes and its bucket (1..=`of`), as the
    /// evaluation finds them: for `default`, userId, else sessionId, else
    /// (for `random_fallback`, as variants and default rollouts do) a
    /// random number; `None` for a named field the context lacks, which a
    /// rollout treats as no match.
    fn bucket<C: Context + ?Sized>(
        &self,
        stickiness: Stickiness,
        ctx: &C,
        group: &str,
        of: u32,
        seed: u32,
        random_fallback: bool,
    ) -> (Value, Value, Option<u32>) {
        let hashed = |field: &Field| {
            ctx.with_field(field, |v| {
                v.map(|id| (json!(id), normalized(group, id, of, seed)))
            })
        };
        let found = match stickiness {
            Stickiness::Default => hashed(&Field::UserId)
                .map(|(v, b)| (json!("userId"), v, b))
                .or_else(|| hashed(&Field::SessionId).map(|(v, b)| (json!("sessionId"), v, b))),
            Stickiness::Random => None,
            Stickiness::Field(i) => {
                let field = &self.arena.fields[i as usize];
                match hashed(field) {
                    Some((v, b)) => Some((json!(field.name()), v, b)),
                    None if random_fallback => None,
                    None => return (json!(field.name()), Value::Null, None),
                }
            }
        };
        match found {
            Some((field, value, bucket)) => (field, value, Some(bucket)),
            None => (json!("random"), Value::Null, Some(random_in(of))),
        }
    }

    /// Chooses a variant as [`Snapshot::pick_variant`] does, recording why.
    pub(super) fn explain_variant<C: Context + ?Sized>(
        &self,
        set: &VariantSet,
        ctx: &C,
    ) -> (Option<&Variant>, Map<String, Value>) {
        let variants = set.variants.of(&self.variants);
        let mut trace = Map::new();
        trace.insert(
            "stickiness".into(),
            json!(set.stickiness.describe(&self.arena)),
        );
        trace.insert(
            "weights".into(),
            Value::Array(
                variants
                    .iter()
                    .map(|v| json!({ "name": v.name(), "weight": v.weight }))
                    .collect(),
            ),
        );
        trace.insert("total_weight".into(), json!(set.total_weight));
        for variant in variants {
            for (field, values) in variant.overrides.of(&self.overrides) {
                let hit = ctx.with_field(field, |v| {
                    v.filter(|v| self.arena.contains(*values, v))
                        .map(str::to_string)
                });
                if let Some(value) = hit {
                    trace.insert(
                        "override".into(),
                        json!({ "variant": variant.name(), "context_name": field.name(), "value": value }),
                    );
                    return (Some(variant), trace);
                }
            }
        }
        trace.insert("override".into(), Value::Null);
        if set.total_weight == 0 {
            trace.insert("note".into(), json!("every weight is 0: no variant"));
            return (None, trace);
        }
        let group = self.arena.get(set.group);
        let (read_from, value, bucket) = self.bucket(
            set.stickiness,
            ctx,
            group,
            set.total_weight,
            VARIANT_SEED,
            true,
        );
        let target = bucket.unwrap_or_else(|| random_in(set.total_weight));
        trace.insert("context_name".into(), read_from);
        trace.insert("value".into(), value);
        trace.insert("bucket".into(), json!(target));
        trace.insert("group_id".into(), json!(group));
        let mut cumulative = 0u32;
        let chosen = variants.iter().find(|v| {
            cumulative = cumulative.saturating_add(v.weight);
            cumulative >= target
        });
        (chosen, trace)
    }
}
