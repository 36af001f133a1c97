//! Turns a parsed payload into a [`Snapshot`].
//!
//! Everything that can be decided once is decided here: operands are parsed,
//! segments are resolved and shared, dependencies are linked by index, and
//! variant names get counter slots. Problems in the payload never fail the
//! compile; they make the affected strategy or constraint never match and
//! are returned as warnings, each reported once per configuration.

pub mod model;

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, Hasher};

use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use crate::error::Quoted;
use crate::snapshot::arena::{index, ArenaBuilder, Span, Text};
use crate::snapshot::constraint::{Constraint, IpNet};
use crate::snapshot::{
    host_name, Dependency, Flag, Snapshot, Stickiness, Strategy, StrategyKind, Tables, Variant,
    VariantSet,
};

/// Name of the variant returned when no variant applies.
pub const DISABLED_VARIANT: &str = "disabled";

/// Compiles a payload. Returns the snapshot and the problems not reported
/// before (`previous` carries the ones already reported).
pub fn compile(
    payload: &model::ClientFeatures,
    etag: Option<&str>,
    fingerprint: u64,
    previous: Option<&Snapshot>,
) -> (Snapshot, Vec<String>) {
    let mut b = Builder::default();

    let mut segments: HashMap<i64, Span> = HashMap::new();
    for segment in &payload.segments {
        let constraints = b.constraints(&segment.constraints, &|p| {
            format!("segment {}: {p}", segment.id)
        });
        segments.insert(segment.id, constraints);
    }

    let mut index_by_name: HashMap<&str, u32> = HashMap::with_capacity(payload.features.len());
    for (i, feature) in payload.features.iter().enumerate() {
        index_by_name.insert(feature.name.as_str(), i as u32);
    }

    b.tables.flags.reserve_exact(payload.features.len());
    for feature in &payload.features {
        let flag = b.flag(feature, &segments, &index_by_name);
        b.tables.flags.push(flag);
    }

    // The snapshot keeps this payload's problems only (the ones of payloads
    // before it would pile up, refresh after refresh); one is reported
    // again if it comes back after a payload without it.
    let fresh: Vec<String> = b
        .problems
        .iter()
        .filter(|p| previous.is_none_or(|prev| !prev.reported.contains(*p)))
        .cloned()
        .collect();
    let reported = b.problems;
    let snapshot = Snapshot::new(
        b.tables,
        b.arena.finish(),
        etag.map(Into::into),
        fingerprint,
        reported,
        payload.segments.len(),
    );
    (snapshot, fresh)
}

/// A stable 64-bit fingerprint of payload text.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    let mut h = FxBuildHasher.build_hasher();
    h.write(bytes);
    h.write_usize(bytes.len());
    h.finish()
}

/// A snapshot's vectors and arena while they are filled.
#[derive(Default)]
struct Builder {
    tables: Tables,
    arena: ArenaBuilder,
    problems: BTreeSet<String>,
    /// The variant slots of the flag being compiled, by name (a search of
    /// its slots per variant made a flag of n variants take n² steps).
    flag_slots: HashMap<Arc<str>, u32>,
}

impl Builder {
    /// Compiles constraints into consecutive entries of the constraint
    /// vector; `context` words a problem.
    fn constraints(
        &mut self,
        raw: &[model::Constraint],
        context: &dyn Fn(String) -> String,
    ) -> Span {
        let start = self.tables.constraints.len();
        for c in raw {
            let (constraint, problem) = Constraint::compile(c, &mut self.arena);
            if let Some(p) = problem {
                self.problems.insert(context(format!(
                    "constraint on {}: {p}",
                    Quoted(&c.context_name)
                )));
            }
            self.tables.constraints.push(constraint);
        }
        Span::since(start, self.tables.constraints.len())
    }

    fn flag(
        &mut self,
        feature: &model::Feature,
        segments: &HashMap<i64, Span>,
        index_by_name: &HashMap<&str, u32>,
    ) -> Flag {
        let name = feature.name.as_str();
        // Equal strings share one text, so a group equal to the flag's name
        // costs nothing.
        let name_text = self.arena.text(name);
        let slots_start = self.tables.slot_names.len();
        self.flag_slots.clear();

        let mut strategies = Vec::with_capacity(feature.strategies.len());
        for (i, raw) in feature.strategies.iter().enumerate() {
            let context = |p: String| {
                format!(
                    "flag {}, strategy {} ({}): {p}",
                    Quoted(name),
                    i + 1,
                    Quoted(&raw.name)
                )
            };
            let mut problems = Vec::new();
            let kind =
                compile_strategy_kind(raw, name_text, &mut self.arena, &mut |p| problems.push(p));
            self.problems.extend(problems.into_iter().map(&context));
            let constraints = self.constraints(&raw.constraints, &context);
            let segments_start = self.tables.segment_refs.len();
            for id in &raw.segments {
                let found = segments.get(id).copied();
                if found.is_none() {
                    self.problems.insert(context(format!(
                        "segment {id} is not in the payload; this strategy never matches"
                    )));
                }
                self.tables.segment_refs.push(found);
            }
            let strategy_segments = Span::since(segments_start, self.tables.segment_refs.len());
            let variants = if raw.variants.is_empty() {
                None
            } else {
                let stickiness = Stickiness::from_param(
                    raw.parameters.get("stickiness").map(String::as_str),
                    &mut self.arena,
                );
                let group = raw.parameters.get("groupId").map(String::as_str);
                Some(self.variant_set(&raw.variants, stickiness, group, name_text, false))
            };
            strategies.push(Strategy {
                kind,
                constraints,
                segments: strategy_segments,
                variants,
            });
        }
        let strategies_start = self.tables.strategies.len();
        self.tables.strategies.extend(strategies);
        let strategies = Span::since(strategies_start, self.tables.strategies.len());

        let variants = if feature.variants.is_empty() {
            None
        } else {
            let stickiness =
                Stickiness::from_param(feature.variants[0].stickiness.as_deref(), &mut self.arena);
            Some(self.variant_set(&feature.variants, stickiness, None, name_text, true))
        };

        let dependencies_start = self.tables.dependencies.len();
        for d in &feature.dependencies {
            let parent = index_by_name.get(d.feature.as_str()).copied();
            if parent.is_none() {
                self.problems.insert(format!(
                    "flag {} depends on {}, which is not in the payload; it stays off",
                    Quoted(name),
                    Quoted(&d.feature)
                ));
            }
            let variants = self.arena.list(d.variants.iter().map(String::as_str));
            self.tables.dependencies.push(Dependency {
                parent,
                expect_enabled: d.enabled.unwrap_or(true),
                variants,
            });
        }

        let strategy_list = strategies.of(&self.tables.strategies);
        let always_on = feature.enabled
            && feature.dependencies.is_empty()
            && (strategy_list.is_empty()
                || strategy_list.iter().any(|s| {
                    matches!(s.kind, StrategyKind::Default)
                        && s.constraints.is_empty()
                        && s.segments.is_empty()
                }));
        let plain_on = always_on
            && variants.is_none()
            && match strategy_list {
                [] => true,
                [only] => only.variants.is_none(),
                _ => false,
            };
        Flag {
            name: name_text,
            enabled: feature.enabled,
            always_on,
            plain_on,
            impression_data: feature.impression_data,
            strategies,
            variants,
            dependencies: Span::since(dependencies_start, self.tables.dependencies.len()),
            slots: Span::since(slots_start, self.tables.slot_names.len()),
            project: feature
                .project
                .as_deref()
                .map_or(Text::ABSENT, |p| self.arena.text(p)),
            flag_type: feature
                .feature_type
                .as_deref()
                .map_or(Text::ABSENT, |t| self.arena.text(t)),
        }
    }

    /// The counter slot of a variant name within the flag being compiled
    /// (one slot per distinct name).
    fn slot_of(&mut self, variant_name: &str) -> u32 {
        if let Some(&slot) = self.flag_slots.get(variant_name) {
            return slot;
        }
        let shared = self.arena.shared(variant_name);
        self.tables.slot_names.push(Arc::clone(&shared));
        let slot = index(self.tables.slot_names.len() - 1);
        self.flag_slots.insert(shared, slot);
        slot
    }

    /// Compiles a variant list; returns its index in the variant sets.
    fn variant_set(
        &mut self,
        raw: &[model::Variant],
        stickiness: Stickiness,
        group: Option<&str>,
        flag_name: Text,
        with_overrides: bool,
    ) -> u32 {
        let mut variants = Vec::with_capacity(raw.len());
        for v in raw {
            let overrides_start = self.tables.overrides.len();
            if with_overrides {
                for o in &v.overrides {
                    let field = self.arena.field(&o.context_name);
                    let values = self.arena.set(o.values.iter().map(String::as_str));
                    self.tables.overrides.push((field, values));
                }
            }
            variants.push(Variant {
                name: self.arena.shared(&v.name),
                weight: v.weight,
                payload: v
                    .payload
                    .as_ref()
                    .map(|p| self.arena.payload(&p.payload_type, &p.value)),
                overrides: Span::since(overrides_start, self.tables.overrides.len()),
                slot: self.slot_of(&v.name),
            });
        }
        // Weights are u32 on the wire; a sum past u32 saturates, so each
        // variant keeps its share (a wrapped sum would give the first
        // variant everything, and panic in a debug build).
        let total_weight = variants
            .iter()
            .map(|v| v.weight)
            .fold(0, u32::saturating_add);
        let start = self.tables.variants.len();
        self.tables.variants.extend(variants);
        self.tables.variant_sets.push(VariantSet {
            variants: Span::since(start, self.tables.variants.len()),
            total_weight,
            stickiness,
            group: group.map_or(flag_name, |g| self.arena.text(g)),
        });
        (self.tables.variant_sets.len() - 1) as u32
    }
}

/// Reads a percentage parameter (0..=100; fractions round down).
fn percentage(raw: &model::Strategy, key: &str, report: &mut dyn FnMut(String)) -> Option<u32> {
    let Some(text) = raw.parameters.get(key) else {
        report(format!(
            "parameter {key:?} is missing; this strategy never matches"
        ));
        return None;
    };
    match text.trim().parse::<f64>() {
        Ok(p) if p.is_finite() => {
            if !(0.0..=100.0).contains(&p) {
                report(format!(
                    "parameter {key:?} is {}, outside 0..100; using {}",
                    Quoted(text),
                    p.clamp(0.0, 100.0)
                ));
            }
            Some(p.clamp(0.0, 100.0).floor() as u32)
        }
        _ => {
            report(format!(
                "parameter {key:?} must be a number from 0 to 100, got {}; this strategy never matches",
                Quoted(text)
            ));
            None
        }
    }
}

fn comma_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim)
}

/// Compiles a strategy's kind and parameters (`flag_name` is the default
/// group).
fn compile_strategy_kind(
    raw: &model::Strategy,
    flag_name: Text,
    arena: &mut ArenaBuilder,
    report: &mut dyn FnMut(String),
) -> StrategyKind {
    let param = |key: &str| raw.parameters.get(key).map(String::as_str);
    match raw.name.as_str() {
        "default" => StrategyKind::Default,
        "userWithId" => match param("userIds") {
            Some(ids) => StrategyKind::UserWithId(arena.set(comma_list(ids))),
            None => {
                report("parameter \"userIds\" is missing; this strategy never matches".into());
                StrategyKind::Never
            }
        },
        "gradualRolloutUserId" | "gradualRolloutSessionId" => {
            let field = arena.field_index(if raw.name == "gradualRolloutUserId" {
                "userId"
            } else {
                "sessionId"
            });
            let pct = percentage(raw, "percentage", report);
            match (pct, param("groupId")) {
                (Some(percentage), Some(group)) => StrategyKind::Rollout {
                    percentage,
                    stickiness: Stickiness::Field(field),
                    group: arena.text(group),
                },
                (Some(_), None) => {
                    report("parameter \"groupId\" is missing; this strategy never matches".into());
                    StrategyKind::Never
                }
                _ => StrategyKind::Never,
            }
        }
        "gradualRolloutRandom" => match percentage(raw, "percentage", report) {
            Some(percentage) => StrategyKind::Random { percentage },
            None => StrategyKind::Never,
        },
        "flexibleRollout" => match percentage(raw, "rollout", report) {
            Some(percentage) => StrategyKind::Rollout {
                percentage,
                stickiness: Stickiness::from_param(param("stickiness"), arena),
                group: param("groupId").map_or(flag_name, |g| arena.text(g)),
            },
            None => StrategyKind::Never,
        },
        "remoteAddress" => match param("IPs") {
            Some(ips) => {
                let nets_start = arena.nets.len();
                let mut texts = Vec::new();
                for entry in comma_list(ips).filter(|e| !e.is_empty()) {
                    match IpNet::parse(entry) {
                        Some(net) => arena.nets.push(net),
                        None => texts.push(entry),
                    }
                }
                StrategyKind::RemoteAddress {
                    nets: Span::since(nets_start, arena.nets.len()),
                    texts: arena.list(texts),
                }
            }
            None => {
                report("parameter \"IPs\" is missing; this strategy never matches".into());
                StrategyKind::Never
            }
        },
        "applicationHostname" => {
            let host = host_name();
            let names = param("hostNames").unwrap_or("");
            StrategyKind::Hostname(comma_list(names).any(|n| n.to_lowercase() == host))
        }
        other => {
            report(format!(
                "unknown strategy {}; it never matches (forkflag has no custom strategies)",
                Quoted(other)
            ));
            StrategyKind::Never
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_of_one_name_share_a_slot_however_many_there_are() {
        // 100,000 variants over 50,000 names in one strategy, and the
        // flag's own variants again: one slot per name, in first-seen order
        // (a search of the slots per variant took minutes here).
        let names: Vec<String> = (0..100_000).map(|i| format!("v{}", i % 50_000)).collect();
        let variants: Vec<serde_json::Value> = names
            .iter()
            .map(|n| serde_json::json!({"name": n, "weight": 1}))
            .collect();
        let payload: model::ClientFeatures = serde_json::from_value(serde_json::json!({
            "features": [
                {"name": "other", "enabled": true, "variants": [{"name": "v1", "weight": 1}]},
                {"name": "f", "enabled": true, "variants": variants,
                 "strategies": [{"name": "default", "variants": variants}]}]
        }))
        .unwrap();
        let (snapshot, _) = compile(&payload, None, 0, None);
        let flag = snapshot.flag("f").unwrap();
        let slots = flag.slots.of(&snapshot.slot_names);
        assert_eq!(slots.len(), 50_000);
        assert!(slots
            .iter()
            .zip(&names)
            .all(|(slot, name)| **slot == **name));
        let strategy = &flag.strategies.of(&snapshot.strategies)[0];
        let set = &snapshot.variant_sets[strategy.variants.unwrap() as usize];
        for (i, v) in set.variants.of(&snapshot.variants).iter().enumerate() {
            assert_eq!(
                v.slot,
                flag.slots.range().start as u32 + (i % 50_000) as u32
            );
        }
        let other = snapshot.flag("other").unwrap();
        assert_eq!(other.slots.of(&snapshot.slot_names).len(), 1);
    }

    #[test]
    fn each_problem_is_reported_once_and_only_the_current_ones_are_kept() {
        // A thousand refreshes, each with a problem of its own and one
        // they share: the shared one is reported once, each other one
        // once, and the snapshot keeps only the current payload's.
        let payload = |i: usize| -> model::ClientFeatures {
            serde_json::from_value(serde_json::json!({"features": [
                {"name": format!("flag-{i}"), "enabled": true,
                 "strategies": [{"name": "custom"}]},
                {"name": "shared", "enabled": true, "strategies": [{"name": "custom"}]}]}))
            .unwrap()
        };
        let (mut snapshot, warnings) = compile(&payload(0), None, 0, None);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        for i in 1..1000 {
            let (next, warnings) = compile(&payload(i), None, i as u64, Some(&snapshot));
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(warnings[0].contains(&format!("flag-{i}")), "{warnings:?}");
            snapshot = next;
        }
        assert_eq!(snapshot.reported.len(), 2, "problems kept");
        let (_, warnings) = compile(&payload(0), None, 0, Some(&snapshot));
        assert_eq!(warnings.len(), 1, "flag-0's problem is back: {warnings:?}");
    }

    #[test]
    fn warnings_quote_a_huge_name_or_operand_in_a_line() {
        // A flag with a name of a megabyte and problems in every
        // constraint: each warning names the flag, and must stay a line
        // rather than repeat the megabyte.
        let huge = "n".repeat(1 << 20);
        let bad = |op: &str, value: &str| {
            serde_json::json!({"contextName": huge, "operator": op, "value": value,
                               "values": [value, value]})
        };
        let payload: model::ClientFeatures = serde_json::from_value(serde_json::json!({
            "features": [{"name": huge, "enabled": true, "strategies": [{
                "name": huge,
                "parameters": {"rollout": huge},
                "constraints": [bad("NUM_EQ", &huge), bad("DATE_AFTER", &huge),
                                bad("SEMVER_EQ", &huge), bad("REGEX", &format!("({huge}")),
                                bad("IN_CIDR", &huge), bad(&huge, "x")],
                "segments": [1]}],
                "dependencies": [{"feature": huge.clone() + "x"}]}]
        }))
        .unwrap();
        let (_, warnings) = compile(&payload, None, 0, None);
        assert_eq!(warnings.len(), 9, "{warnings:.300?}");
        for w in &warnings {
            assert!(w.len() < 600, "{} bytes: {w:.600}", w.len());
            assert!(w.contains("(cut, 1048576 characters)"), "{w}");
        }
    }
}
