//! Turns a parsed payload into a [`Snapshot`].
//!
//! Everything that can be decided once is decided here: operands are parsed,
//! segments are resolved and shared, dependencies are linked by index, and
//! variant names get counter slots. Problems in the payload never fail the
//! compile; they make the affected strategy or constraint never match and
//! are returned as warnings, each reported once per configuration.

mod constraint;
pub mod model;
mod strategy;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

pub use constraint::REGEX_MEMORY_BUDGET;
use strategy::compile_strategy_kind;
pub use strategy::BUILT_IN_STRATEGIES;

use crate::error::Quoted;
use crate::snapshot::arena::{index, ArenaBuilder, Span, Text};
use crate::snapshot::constraint::Constraint;
use crate::snapshot::flag::{
    Dependency, Flag, Payload, Stickiness, Strategy, StrategyKind, Variant, VariantSet,
};
use crate::snapshot::{Snapshot, Tables};

/// Compiles a payload. Returns the snapshot and the problems not reported
/// before (`previous` carries the ones already reported). A strategy of a
/// name in `custom` that is none of [`BUILT_IN_STRATEGIES`] is compiled as
/// a [`crate::CustomStrategy`]; other unknown names never match.
pub fn compile(
    payload: &model::ClientFeatures,
    etag: Option<&str>,
    fingerprint: u64,
    previous: Option<&Snapshot>,
    custom: &[Arc<str>],
) -> (Snapshot, Vec<String>) {
    let mut b = Builder {
        custom,
        ..Builder::default()
    };

    let mut segments: HashMap<i64, Span> = HashMap::new();
    let mut segment_prints: HashMap<i64, u64> = HashMap::with_capacity(payload.segments.len());
    for segment in &payload.segments {
        let constraints = b.constraints(&segment.constraints, &|p| {
            format!("segment {}: {p}", segment.id)
        });
        segments.insert(segment.id, constraints);
        segment_prints.insert(segment.id, definition_print(segment));
    }

    let mut index_by_name: HashMap<&str, u32> = HashMap::with_capacity(payload.features.len());
    for (i, feature) in payload.features.iter().enumerate() {
        index_by_name.insert(feature.name.as_str(), i as u32);
    }

    b.tables.flags.reserve_exact(payload.features.len());
    for feature in &payload.features {
        let flag = b.flag(feature, &segments, &index_by_name);
        b.tables.flags.push(flag);
        b.tables
            .flag_prints
            .push(flag_print(feature, &segment_prints));
    }
    b.inherit_custom();

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

/// A stable 64-bit fingerprint of a parsed definition (a flag or a
/// segment): SipHash with fixed keys over every field the client reads,
/// so a field the client ignores (a description) is no change.
fn definition_print(definition: &impl Hash) -> u64 {
    #[allow(deprecated)] // SipHasher's keys are fixed: the same print in every process
    let mut h = std::hash::SipHasher::new();
    definition.hash(&mut h);
    h.finish()
}

/// A flag's fingerprint ([`Snapshot::changes_since`]): its own definition
/// and the definitions of the segments its strategies use (a segment that
/// is not in the payload counts as its absence).
fn flag_print(feature: &model::Feature, segment_prints: &HashMap<i64, u64>) -> u64 {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    definition_print(feature).hash(&mut h);
    for strategy in &feature.strategies {
        for id in &strategy.segments {
            segment_prints.get(id).hash(&mut h);
        }
    }
    h.finish()
}

/// A snapshot's vectors and arena while they are filled.
#[derive(Default)]
struct Builder<'c> {
    /// The custom strategies' names.
    custom: &'c [Arc<str>],
    tables: Tables,
    arena: ArenaBuilder,
    problems: BTreeSet<String>,
    /// Payloads by type and value (every variant with the same payload
    /// shares one).
    payloads: HashSet<Arc<Payload>>,
    /// The variant slots of the flag being compiled, by name (a search of
    /// its slots per variant made a flag of n variants take n² steps).
    flag_slots: HashMap<Arc<str>, u32>,
}

impl Builder<'_> {
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
                compile_strategy_kind(raw, name_text, self.custom, &mut self.arena, &mut |p| {
                    problems.push(p)
                });
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
                self.tables.segment_ids.push(*id);
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
            let feature_name = self.arena.text(&d.feature);
            self.tables.dependencies.push(Dependency {
                feature: feature_name,
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
            custom: strategy_list
                .iter()
                .any(|s| matches!(s.kind, StrategyKind::Custom(_))),
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

    /// Marks the flags whose parent asks a custom strategy: evaluating
    /// them evaluates it (one level of dependency is evaluated).
    fn inherit_custom(&mut self) {
        let own: Vec<bool> = self.tables.flags.iter().map(|f| f.custom).collect();
        for flag in &mut self.tables.flags {
            flag.custom |= flag
                .dependencies
                .of(&self.tables.dependencies)
                .iter()
                .any(|d| d.parent.is_some_and(|p| own[p as usize]));
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
                    .map(|p| self.payload(&p.payload_type, &p.value)),
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

    /// A payload shared by every variant with the same type and value.
    fn payload(&mut self, payload_type: &str, value: &str) -> Arc<Payload> {
        let candidate = Payload {
            payload_type: self.arena.shared(payload_type),
            value: self.arena.shared(value),
        };
        if let Some(found) = self.payloads.get(&candidate) {
            return Arc::clone(found);
        }
        let new = Arc::new(candidate);
        self.payloads.insert(Arc::clone(&new));
        new
    }
}
