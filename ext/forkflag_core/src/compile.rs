//! Turns a parsed payload into a [`Snapshot`].
//!
//! Everything that can be decided once is decided here: operands are parsed,
//! segments are resolved and shared, dependencies are linked by index, and
//! variant names get counter slots. Problems in the payload never fail the
//! compile; they make the affected strategy or constraint never match and
//! are returned as warnings, each reported once per configuration.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use crate::constraint::{Constraint, IpNet, StrSet};
use crate::context::Field;
use crate::model;
use crate::snapshot::{
    host_name, Dependency, Flag, Payload, Snapshot, Stickiness, Strategy, StrategyKind, Variant,
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
    let mut problems = Problems::default();

    let mut segments: HashMap<i64, Arc<[Constraint]>> = HashMap::new();
    for segment in &payload.segments {
        let constraints = compile_constraints(&segment.constraints, &mut |p| {
            problems.add(format!("segment {}: {p}", segment.id))
        });
        segments.insert(segment.id, constraints.into());
    }

    let mut index_by_name: HashMap<&str, u32> = HashMap::with_capacity(payload.features.len());
    for (i, feature) in payload.features.iter().enumerate() {
        index_by_name.insert(feature.name.as_str(), i as u32);
    }

    let flags: Vec<Flag> = payload
        .features
        .iter()
        .map(|feature| compile_flag(feature, &segments, &index_by_name, &mut problems))
        .collect();

    let mut reported = previous.map(|p| p.reported.clone()).unwrap_or_default();
    let fresh: Vec<String> = problems
        .0
        .into_iter()
        .filter(|p| reported.insert(p.clone()))
        .collect();
    let snapshot = Snapshot::new(
        flags,
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

#[derive(Default)]
struct Problems(BTreeSet<String>);

impl Problems {
    fn add(&mut self, problem: String) {
        self.0.insert(problem);
    }
}

fn compile_constraints(
    raw: &[model::Constraint],
    report: &mut dyn FnMut(String),
) -> Vec<Constraint> {
    raw.iter()
        .map(|c| {
            let (constraint, problem) = Constraint::compile(c);
            if let Some(p) = problem {
                report(format!("constraint on {:?}: {p}", c.context_name));
            }
            constraint
        })
        .collect()
}

fn compile_flag(
    feature: &model::Feature,
    segments: &HashMap<i64, Arc<[Constraint]>>,
    index_by_name: &HashMap<&str, u32>,
    problems: &mut Problems,
) -> Flag {
    let name = feature.name.as_str();
    let mut slots: Vec<Box<str>> = vec![DISABLED_VARIANT.into()];
    let mut slot_of = |variant_name: &str| -> u16 {
        match slots.iter().position(|s| &**s == variant_name) {
            Some(i) => i as u16,
            None => {
                slots.push(variant_name.into());
                (slots.len() - 1) as u16
            }
        }
    };

    let strategies: Vec<Strategy> = feature
        .strategies
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let mut report = |p: String| {
                problems.add(format!(
                    "flag {name:?}, strategy {} ({}): {p}",
                    i + 1,
                    raw.name
                ))
            };
            let kind = compile_strategy_kind(raw, &mut report);
            let constraints = compile_constraints(&raw.constraints, &mut report);
            let strategy_segments = raw
                .segments
                .iter()
                .map(|id| {
                    let found = segments.get(id).cloned();
                    if found.is_none() {
                        report(format!(
                            "segment {id} is not in the payload; this strategy never matches"
                        ));
                    }
                    found
                })
                .collect();
            let variants = if raw.variants.is_empty() {
                None
            } else {
                let stickiness =
                    Stickiness::from_param(raw.parameters.get("stickiness").map(String::as_str));
                let group = raw.parameters.get("groupId").map(|g| g.as_str().into());
                compile_variant_set(&raw.variants, stickiness, group, false, &mut slot_of)
            };
            Strategy {
                kind,
                constraints: constraints.into_boxed_slice(),
                segments: strategy_segments,
                variants,
            }
        })
        .collect();

    let variants = if feature.variants.is_empty() {
        None
    } else {
        let stickiness = Stickiness::from_param(feature.variants[0].stickiness.as_deref());
        compile_variant_set(&feature.variants, stickiness, None, true, &mut slot_of)
    };

    let dependencies = feature
        .dependencies
        .iter()
        .map(|d| {
            let parent = index_by_name.get(d.feature.as_str()).copied();
            if parent.is_none() {
                problems.add(format!(
                    "flag {name:?} depends on {:?}, which is not in the payload; it stays off",
                    d.feature
                ));
            }
            Dependency {
                parent,
                expect_enabled: d.enabled.unwrap_or(true),
                variants: d.variants.iter().map(|v| v.as_str().into()).collect(),
            }
        })
        .collect();

    Flag {
        name: name.into(),
        enabled: feature.enabled,
        impression_data: feature.impression_data,
        strategies: strategies.into_boxed_slice(),
        variants,
        dependencies,
        variant_slots: slots.into_boxed_slice(),
        project: feature.project.as_deref().map(Into::into),
        flag_type: feature.feature_type.as_deref().map(Into::into),
    }
}

fn compile_variant_set(
    raw: &[model::Variant],
    stickiness: Stickiness,
    group: Option<Box<str>>,
    with_overrides: bool,
    slot_of: &mut dyn FnMut(&str) -> u16,
) -> Option<Box<VariantSet>> {
    let variants: Box<[Variant]> = raw
        .iter()
        .map(|v| Variant {
            name: Arc::from(v.name.as_str()),
            weight: v.weight,
            payload: v.payload.as_ref().map(|p| {
                Arc::new(Payload {
                    payload_type: p.payload_type.as_str().into(),
                    value: p.value.as_str().into(),
                })
            }),
            overrides: if with_overrides {
                v.overrides
                    .iter()
                    .map(|o| {
                        (
                            Field::from_name(&o.context_name),
                            StrSet::new(o.values.iter().cloned()),
                        )
                    })
                    .collect()
            } else {
                Box::default()
            },
            slot: slot_of(&v.name),
        })
        .collect();
    let total_weight = variants.iter().map(|v| v.weight).sum();
    Some(Box::new(VariantSet {
        variants,
        total_weight,
        stickiness,
        group,
    }))
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
                    "parameter {key:?} is {text:?}, outside 0..100; using {}",
                    p.clamp(0.0, 100.0)
                ));
            }
            Some(p.clamp(0.0, 100.0).floor() as u32)
        }
        _ => {
            report(format!(
                "parameter {key:?} must be a number from 0 to 100, got {text:?}; this strategy never matches"
            ));
            None
        }
    }
}

fn comma_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim)
}

fn compile_strategy_kind(raw: &model::Strategy, report: &mut dyn FnMut(String)) -> StrategyKind {
    let param = |key: &str| raw.parameters.get(key).map(String::as_str);
    match raw.name.as_str() {
        "default" => StrategyKind::Default,
        "userWithId" => match param("userIds") {
            Some(ids) => StrategyKind::UserWithId(StrSet::new(comma_list(ids).map(String::from))),
            None => {
                report("parameter \"userIds\" is missing; this strategy never matches".into());
                StrategyKind::Never
            }
        },
        "gradualRolloutUserId" | "gradualRolloutSessionId" => {
            let field = if raw.name == "gradualRolloutUserId" {
                Field::UserId
            } else {
                Field::SessionId
            };
            let pct = percentage(raw, "percentage", report);
            match (pct, param("groupId")) {
                (Some(percentage), Some(group)) => StrategyKind::Rollout {
                    percentage,
                    stickiness: Stickiness::Field(field),
                    group: Some(group.into()),
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
                stickiness: Stickiness::from_param(param("stickiness")),
                group: param("groupId").map(Into::into),
            },
            None => StrategyKind::Never,
        },
        "remoteAddress" => match param("IPs") {
            Some(ips) => {
                let mut nets = Vec::new();
                let mut texts = Vec::new();
                for entry in comma_list(ips).filter(|e| !e.is_empty()) {
                    match IpNet::parse(entry) {
                        Some(net) => nets.push(net),
                        None => texts.push(entry.into()),
                    }
                }
                StrategyKind::RemoteAddress {
                    nets: nets.into_boxed_slice(),
                    texts: texts.into_boxed_slice(),
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
                "unknown strategy {other:?}; it never matches (forkflag has no custom strategies)"
            ));
            StrategyKind::Never
        }
    }
}
