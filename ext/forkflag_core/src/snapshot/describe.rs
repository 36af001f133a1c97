//! A compiled flag described as plain data, for people: the status page,
//! `Client#flag`, and the explanations of [`crate::eval`] (which add to
//! these descriptions what the evaluation read and decided).
//!
//! Descriptions are built from the snapshot itself, not from the payload
//! text (which is not kept): they say what the evaluator uses. Parameters
//! of the built-in strategies are given back in the payload's words from
//! their parsed form (a percentage as its whole number, a date in RFC
//! 3339), string sets sorted, and case-insensitive string operands in the
//! lower case they are compared in. Nothing here is on the evaluation path.

use serde_json::{json, Map, Value};

use super::arena::Arena;
use super::constraint::{Cmp, Constraint, Fragment, Test};
use super::flag::{Dependency, RolloutOrigin, Stickiness, Strategy, StrategyKind, VariantSet};
use super::{Snapshot, Variant};
use crate::time::format_millis;

impl Stickiness {
    /// The stickiness parameter's value (`default`, `random` or a field
    /// name).
    pub(crate) fn describe<'a>(&self, arena: &'a Arena) -> &'a str {
        match self {
            Stickiness::Default => "default",
            Stickiness::Random => "random",
            Stickiness::Field(i) => arena.fields[*i as usize].name(),
        }
    }
}

impl StrategyKind {
    /// The strategy's name in the payload.
    pub(crate) fn name<'a>(&'a self, arena: &'a Arena) -> &'a str {
        match self {
            StrategyKind::Default => "default",
            StrategyKind::UserWithId(_) => "userWithId",
            StrategyKind::Rollout { origin, .. } => match origin {
                RolloutOrigin::Flexible => "flexibleRollout",
                RolloutOrigin::UserId => "gradualRolloutUserId",
                RolloutOrigin::SessionId => "gradualRolloutSessionId",
            },
            StrategyKind::Random { .. } => "gradualRolloutRandom",
            StrategyKind::RemoteAddress { .. } => "remoteAddress",
            StrategyKind::Hostname(_) => "applicationHostname",
            StrategyKind::Custom(strategy) => strategy.name(),
            StrategyKind::Never(name) => arena.get(*name),
        }
    }

    /// The parameters the evaluator uses, by their payload names.
    fn parameters(&self, arena: &Arena) -> Map<String, Value> {
        let mut params = Map::new();
        let mut put = |k: &str, v: String| {
            params.insert(k.to_string(), Value::String(v));
        };
        match self {
            StrategyKind::Default | StrategyKind::Hostname(_) | StrategyKind::Never(_) => {}
            StrategyKind::UserWithId(ids) => put("userIds", arena.set_values(*ids).join(",")),
            StrategyKind::Rollout {
                origin,
                percentage,
                stickiness,
                group,
            } => {
                if *origin == RolloutOrigin::Flexible {
                    put("rollout", percentage.to_string());
                    put("stickiness", stickiness.describe(arena).to_string());
                } else {
                    put("percentage", percentage.to_string());
                }
                put("groupId", arena.get(*group).to_string());
            }
            StrategyKind::Random { percentage } => put("percentage", percentage.to_string()),
            StrategyKind::RemoteAddress { nets, texts } => {
                let nets = nets.of(&arena.nets).iter().map(ToString::to_string);
                let texts = arena.list(*texts).map(str::to_string);
                put("IPs", nets.chain(texts).collect::<Vec<_>>().join(","));
            }
            StrategyKind::Custom(strategy) => {
                for (k, v) in strategy.parameters() {
                    put(k, v.to_string());
                }
            }
        }
        params
    }

    /// What a person may need to know beyond the parameters.
    fn note(&self) -> Option<&'static str> {
        match self {
            StrategyKind::Hostname(true) => Some("this host's name is listed: on for this host"),
            StrategyKind::Hostname(false) => {
                Some("this host's name is not listed: off for this host")
            }
            StrategyKind::Never(_) => Some(
                "never matches: an unknown strategy, or parameters that cannot be read (the \
                 client's log says which)",
            ),
            StrategyKind::Custom(_) => Some("a custom strategy: the application's code decides"),
            _ => None,
        }
    }
}

impl Constraint {
    /// The operator's name in the payload.
    pub(crate) fn operator<'a>(&self, arena: &'a Arena) -> &'a str {
        match &self.test {
            Test::In(_) => "IN",
            Test::NotIn(_) => "NOT_IN",
            Test::Fragment { kind, .. } => match kind {
                Fragment::Contains => "STR_CONTAINS",
                Fragment::StartsWith => "STR_STARTS_WITH",
                Fragment::EndsWith => "STR_ENDS_WITH",
            },
            Test::Num(cmp, _) => match cmp {
                Cmp::Eq => "NUM_EQ",
                Cmp::Gt => "NUM_GT",
                Cmp::Gte => "NUM_GTE",
                Cmp::Lt => "NUM_LT",
                Cmp::Lte => "NUM_LTE",
            },
            Test::Date(Cmp::Gt, _) => "DATE_AFTER",
            Test::Date(..) => "DATE_BEFORE",
            Test::Semver(cmp, _) => match cmp {
                Cmp::Eq => "SEMVER_EQ",
                Cmp::Gt => "SEMVER_GT",
                Cmp::Gte => "SEMVER_GTE",
                Cmp::Lt => "SEMVER_LT",
                Cmp::Lte => "SEMVER_LTE",
            },
            Test::Regex(_) => "REGEX",
            Test::Cidr(_) => "IN_CIDR",
            Test::Never(operator) => arena.get(*operator),
        }
    }

    /// The constraint as plain data: `context_name`, `operator`, `values`,
    /// `case_insensitive`, `inverted` (and `unreadable` for one that never
    /// holds because it could not be compiled).
    pub(crate) fn describe(&self, arena: &Arena) -> Map<String, Value> {
        let (values, case_insensitive): (Vec<String>, bool) = match &self.test {
            Test::In(set) | Test::NotIn(set) => (
                arena
                    .set_values(*set)
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
                false,
            ),
            Test::Fragment {
                values,
                ignore_case,
                ..
            } => (
                arena.list(*values).map(str::to_string).collect(),
                *ignore_case,
            ),
            Test::Num(_, n) => (vec![n.to_string()], false),
            Test::Date(_, at) => (vec![format_millis(*at)], false),
            Test::Semver(_, i) => (vec![arena.versions[*i as usize].to_string()], false),
            Test::Regex(i) => {
                let (source, ignore_case) = arena.regex_sources[*i as usize];
                (vec![arena.get(source).to_string()], ignore_case)
            }
            Test::Cidr(nets) => (
                nets.of(&arena.nets)
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                false,
            ),
            Test::Never(_) => (Vec::new(), false),
        };
        let mut map = Map::new();
        map.insert("context_name".into(), json!(self.field.name()));
        map.insert("operator".into(), json!(self.operator(arena)));
        map.insert("values".into(), json!(values));
        map.insert("case_insensitive".into(), json!(case_insensitive));
        map.insert("inverted".into(), json!(self.inverted));
        if matches!(self.test, Test::Never(_)) {
            map.insert("unreadable".into(), json!(true));
        }
        map
    }
}

impl Snapshot {
    /// Every flag described (see [`Snapshot::describe_at`]), sorted by
    /// name.
    pub fn describe_all(&self) -> Value {
        let mut order: Vec<u32> = (0..self.flags.len() as u32)
            .filter(|&i| self.index_of(self.arena.bytes(self.flags[i as usize].name)) == Some(i))
            .collect();
        order.sort_by(|&a, &b| {
            let name = |i: u32| self.arena.get(self.flags[i as usize].name);
            name(a).cmp(name(b))
        });
        Value::Array(order.into_iter().map(|i| self.describe_at(i)).collect())
    }

    /// The flag of this name described, or `None`.
    pub fn describe(&self, name: &[u8]) -> Option<Value> {
        self.index_of(name).map(|i| self.describe_at(i))
    }

    /// The flag at `i` as plain data: `name`, `enabled` (switched on),
    /// `type`, `project`, `impression_data`, `strategies`, `variants` (the
    /// flag's own), `dependencies`, and `summary` (one line per strategy).
    pub fn describe_at(&self, i: u32) -> Value {
        let flag = &self.flags[i as usize];
        let strategies: Vec<Value> = flag
            .strategies
            .of(&self.strategies)
            .iter()
            .enumerate()
            .map(|(k, s)| Value::Object(self.describe_strategy(k, s)))
            .collect();
        let summary: Vec<String> = flag
            .strategies
            .of(&self.strategies)
            .iter()
            .map(|s| self.summary(s))
            .collect();
        json!({
            "name": self.flag_name(flag),
            "enabled": flag.enabled,
            "type": self.flag_type(flag),
            "project": self.flag_project(flag),
            "impression_data": flag.impression_data,
            "strategies": strategies,
            "variants": self.describe_variant_set(flag.variants),
            "dependencies": flag
                .dependencies
                .of(&self.dependencies)
                .iter()
                .map(|d| self.describe_dependency(d))
                .collect::<Vec<_>>(),
            "summary": summary,
        })
    }

    /// A strategy as plain data: `index`, `name`, `parameters`,
    /// `constraints`, `segments` (`id`, and `constraints` or null when the
    /// payload lacks the segment), `variants`, and `note` when there is
    /// something to add.
    pub(crate) fn describe_strategy(&self, index: usize, s: &Strategy) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("index".into(), json!(index));
        map.insert("name".into(), json!(s.kind.name(&self.arena)));
        map.insert(
            "parameters".into(),
            Value::Object(s.kind.parameters(&self.arena)),
        );
        map.insert(
            "constraints".into(),
            Value::Array(
                s.constraints
                    .of(&self.constraints)
                    .iter()
                    .map(|c| Value::Object(c.describe(&self.arena)))
                    .collect(),
            ),
        );
        let segments: Vec<Value> = s
            .segments
            .range()
            .map(|k| {
                let constraints = self.segment_refs[k].map(|span| {
                    span.of(&self.constraints)
                        .iter()
                        .map(|c| Value::Object(c.describe(&self.arena)))
                        .collect::<Vec<_>>()
                });
                json!({ "id": self.segment_ids[k], "constraints": constraints })
            })
            .collect();
        map.insert("segments".into(), Value::Array(segments));
        map.insert("variants".into(), self.describe_variant_set(s.variants));
        if let Some(note) = s.kind.note() {
            map.insert("note".into(), json!(note));
        }
        map
    }

    fn describe_variant_set(&self, set: Option<u32>) -> Value {
        let Some(set) = set else {
            return json!([]);
        };
        let set = &self.variant_sets[set as usize];
        Value::Array(
            set.variants
                .of(&self.variants)
                .iter()
                .map(|v| self.describe_variant(set, v))
                .collect(),
        )
    }

    fn describe_variant(&self, set: &VariantSet, v: &Variant) -> Value {
        json!({
            "name": v.name(),
            "weight": v.weight,
            "stickiness": set.stickiness.describe(&self.arena),
            "payload": v.payload().map(|p| json!({ "type": &*p.payload_type, "value": &*p.value })),
            "overrides": v
                .overrides
                .of(&self.overrides)
                .iter()
                .map(|(field, values)| {
                    json!({ "context_name": field.name(), "values": self.arena.set_values(*values) })
                })
                .collect::<Vec<_>>(),
        })
    }

    fn describe_dependency(&self, d: &Dependency) -> Value {
        json!({
            "feature": self.arena.get(d.feature),
            "enabled": d.expect_enabled,
            "variants": self.arena.list(d.variants).collect::<Vec<_>>(),
            "found": d.parent.is_some(),
        })
    }

    /// One line for a strategy: its name and parameters, and how many
    /// constraints, segments and variants it has.
    fn summary(&self, s: &Strategy) -> String {
        let params = s.kind.parameters(&self.arena);
        let mut line = s.kind.name(&self.arena).to_string();
        if !params.is_empty() {
            let shown: Vec<String> = params
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            line.push_str(&format!(" ({})", shown.join(", ")));
        }
        let count = |n: usize, one: &str, many: &str| match n {
            0 => None,
            1 => Some(format!("1 {one}")),
            n => Some(format!("{n} {many}")),
        };
        let variants = s
            .variants
            .map_or(0, |v| self.variant_sets[v as usize].variants.range().len());
        let parts: Vec<String> = [
            count(s.constraints.range().len(), "constraint", "constraints"),
            count(s.segments.range().len(), "segment", "segments"),
            count(variants, "variant", "variants"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !parts.is_empty() {
            line.push_str(&format!(", {}", parts.join(", ")));
        }
        if let StrategyKind::Hostname(matches) = s.kind {
            line.push_str(if matches {
                ": on for this host"
            } else {
                ": off for this host"
            });
        }
        line
    }
}

#[cfg(test)]
#[path = "describe_tests.rs"]
mod tests;
