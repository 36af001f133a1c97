//! Why a flag answers what it answers: the evaluation of [`super`] done a
//! second way that records each step.
//!
//! A separate path, so the evaluation itself stays as it is: it follows the
//! same rules in the same order (the tests check that it never disagrees
//! with [`Snapshot::is_enabled_at`] and [`Snapshot::variant_at`]), reads the
//! context through the same [`Context`], and counts nothing. It allocates
//! freely: it builds plain data for people.
//!
//! Where the evaluation draws a random number (a random rollout or
//! stickiness, or an absent stickiness field), the explanation draws its
//! own and says so.
//!
//! Here the flag, its dependencies, strategies, constraints and segments;
//! `rules.rs` has each strategy's own rule and the variant's choice.

mod rules;

use serde_json::{json, Map, Value};

use crate::context::{Context, CurrentTime, Field};
use crate::snapshot::arena::Span;
use crate::snapshot::constraint::{Constraint, Test};
use crate::snapshot::flag::Strategy;
use crate::snapshot::{Snapshot, Variant, DISABLED_VARIANT};
use crate::time::{format_millis, now_millis, try_format_millis};

/// Why a flag answered as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The configuration has no flag of that name.
    NotFound,
    /// The flag is switched off.
    Disabled,
    /// A flag it depends on did not answer as required.
    DependencyFailed,
    /// The flag is on and has no strategy: on for everyone.
    NoStrategies,
    /// A strategy matched.
    StrategyMatched,
    /// No strategy matched.
    NoStrategyMatched,
}

impl Reason {
    /// The reason's name (`not_found`, `disabled`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Reason::NotFound => "not_found",
            Reason::Disabled => "disabled",
            Reason::DependencyFailed => "dependency_failed",
            Reason::NoStrategies => "no_strategies",
            Reason::StrategyMatched => "strategy_matched",
            Reason::NoStrategyMatched => "no_strategy_matched",
        }
    }
}

/// The answer and how it was reached.
#[derive(Debug, Clone)]
pub struct Explanation<'s> {
    /// Whether the flag is enabled for the context.
    pub enabled: bool,
    /// The variant chosen; `None` is the disabled variant.
    pub variant: Option<&'s Variant>,
    /// Why.
    pub reason: Reason,
    /// The steps, as plain data (see [`Snapshot::explain`]).
    pub trace: Value,
}

/// A context value as the trace shows it.
fn read<C: Context + ?Sized>(ctx: &C, field: &Field) -> Value {
    ctx.with_field(field, |v| v.map_or(Value::Null, |v| json!(v)))
}

impl Snapshot {
    /// Explains the flag of this name for the context; the answer is the
    /// one [`Snapshot::check`] and [`Snapshot::check_variant`] give (for
    /// a random draw, one they could give), and nothing is counted.
    ///
    /// The trace: `name`, `found`, `enabled`, `reason`, `variant` (`name`,
    /// `enabled`, `feature_enabled`, `payload`), `strategy` (the one that
    /// matched: `index`, `name`, `parameters`, or null), `dependencies`
    /// (each: `feature`, `found`, `expected_enabled`, `expected_variants`,
    /// `enabled`, `variant`, `met`, and `note` when the parent cannot be
    /// used), `strategies` (each described as on the status page, plus
    /// `evaluated`, `matched`, `kind` (what the strategy's own rule read
    /// and decided), `rollout` (stickiness, the value hashed, its bucket
    /// against the percentage), constraints and segments with the context
    /// value each read and its `result`), and `variant_trace` (`source`,
    /// `stickiness`, the value hashed, `bucket` of `total_weight`,
    /// `weights`, or the `override` that matched).
    pub fn explain<C: Context + ?Sized>(&self, name: &str, ctx: &C) -> Explanation<'_> {
        let Some(i) = self.index_of(name.as_bytes()) else {
            return Explanation {
                enabled: false,
                variant: None,
                reason: Reason::NotFound,
                trace: json!({
                    "name": name,
                    "found": false,
                    "enabled": false,
                    "reason": Reason::NotFound.name(),
                    "variant": variant_value(None, false),
                    "strategy": null,
                    "dependencies": [],
                    "strategies": [],
                    "variant_trace": null,
                }),
            };
        };
        self.explain_at(i, ctx)
    }

    /// [`Snapshot::explain`] for the flag at an index of this snapshot.
    pub fn explain_at<C: Context + ?Sized>(&self, i: u32, ctx: &C) -> Explanation<'_> {
        let flag = &self.flags[i as usize];
        let dependencies: Vec<Value> = flag
            .dependencies
            .of(&self.dependencies)
            .iter()
            .map(|dep| {
                let mut d = json!({
                    "feature": self.arena.get(dep.feature),
                    "found": dep.parent.is_some(),
                    "expected_enabled": dep.expect_enabled,
                    "expected_variants": self.arena.list(dep.variants).collect::<Vec<_>>(),
                    "enabled": null,
                    "variant": null,
                    "met": false,
                });
                let Some(p) = dep.parent else {
                    d["note"] = json!("the flag is not in the configuration");
                    return d;
                };
                if !self.flags[p as usize].dependencies.is_empty() {
                    d["note"] =
                        json!("it depends on other flags itself: only one level is allowed");
                    return d;
                }
                // The parent's answer by this same path (the evaluation's
                // own functions are left to the evaluation, as the
                // compiler inlines them there).
                let parent = self.explain_at(p, ctx);
                let enabled = parent.enabled;
                let variant = parent
                    .variant
                    .map_or(DISABLED_VARIANT, |v| v.name())
                    .to_string();
                let met = enabled == dep.expect_enabled
                    && (dep.variants.is_empty()
                        || self.arena.list(dep.variants).any(|v| v == variant));
                d["enabled"] = json!(enabled);
                d["variant"] = json!(variant);
                d["met"] = json!(met);
                d
            })
            .collect();
        let dependencies_met = dependencies.iter().all(|d| d["met"] == json!(true));

        let strategy_list = flag.strategies.of(&self.strategies);
        let mut strategies = Vec::with_capacity(strategy_list.len());
        let mut matched: Option<usize> = None;
        let evaluate = flag.enabled && dependencies_met;
        for (k, s) in strategy_list.iter().enumerate() {
            let mut traced = self.describe_strategy(k, s);
            if evaluate && matched.is_none() {
                let ok = self.explain_strategy(s, ctx, &mut traced);
                traced.insert("evaluated".into(), json!(true));
                traced.insert("matched".into(), json!(ok));
                if ok {
                    matched = Some(k);
                }
            } else {
                traced.insert("evaluated".into(), json!(false));
                traced.insert("matched".into(), Value::Null);
            }
            strategies.push(Value::Object(traced));
        }

        let reason = if !flag.enabled {
            Reason::Disabled
        } else if !dependencies_met {
            Reason::DependencyFailed
        } else if strategy_list.is_empty() {
            Reason::NoStrategies
        } else if matched.is_some() {
            Reason::StrategyMatched
        } else {
            Reason::NoStrategyMatched
        };
        let enabled = matches!(reason, Reason::NoStrategies | Reason::StrategyMatched);

        let (variant, variant_trace) = if !enabled {
            (None, Value::Null)
        } else {
            let (set, source) = match matched {
                Some(k) => match strategy_list[k].variants {
                    Some(set) => (Some(set), "strategy"),
                    None => (flag.variants, "flag"),
                },
                None => (flag.variants, "flag"),
            };
            match set {
                Some(set) => {
                    let (variant, mut trace) =
                        self.explain_variant(&self.variant_sets[set as usize], ctx);
                    trace.insert("source".into(), json!(source));
                    (variant, Value::Object(trace))
                }
                None => (None, Value::Null),
            }
        };

        let strategy = matched.map_or(Value::Null, |k| {
            let s = &strategies[k];
            json!({ "index": k, "name": s["name"], "parameters": s["parameters"] })
        });
        Explanation {
            enabled,
            variant,
            reason,
            trace: json!({
                "name": self.flag_name(flag),
                "found": true,
                "enabled": enabled,
                "reason": reason.name(),
                "variant": variant_value(variant, enabled),
                "strategy": strategy,
                "dependencies": dependencies,
                "strategies": strategies,
                "variant_trace": variant_trace,
            }),
        }
    }

    /// Evaluates a strategy as [`Snapshot::strategy_matches`] does (its
    /// own rule first, so a custom strategy is asked exactly as there),
    /// recording each step into `out`; every constraint and segment is
    /// tested, even after one failed, so each shows its result.
    fn explain_strategy<C: Context + ?Sized>(
        &self,
        s: &Strategy,
        ctx: &C,
        out: &mut Map<String, Value>,
    ) -> bool {
        let (kind_ok, kind, rollout) = self.explain_kind(&s.kind, ctx);
        out.insert("kind".into(), kind);
        out.insert("rollout".into(), rollout);
        let (constraints_ok, constraints) = self.explain_constraints(s.constraints, ctx);
        let mut all = kind_ok && constraints_ok;
        out.insert("constraints".into(), Value::Array(constraints));
        let segments: Vec<Value> = s
            .segments
            .range()
            .map(|k| {
                let id = self.segment_ids[k];
                let Some(span) = self.segment_refs[k] else {
                    all = false;
                    return json!({ "id": id, "found": false, "result": false, "constraints": null });
                };
                let (ok, constraints) = self.explain_constraints(span, ctx);
                all &= ok;
                json!({ "id": id, "found": true, "result": ok, "constraints": constraints })
            })
            .collect();
        out.insert("segments".into(), Value::Array(segments));
        all
    }

    /// A constraint's result ([`Constraint::holds`]) and its description
    /// with the context value it read.
    /// Every constraint of a span explained (none skipped, so each shows
    /// its result), and whether all held.
    fn explain_constraints<C: Context + ?Sized>(&self, span: Span, ctx: &C) -> (bool, Vec<Value>) {
        let mut all = true;
        let traced = span
            .of(&self.constraints)
            .iter()
            .map(|c| {
                let (held, traced) = self.explain_constraint(c, ctx);
                all &= held;
                traced
            })
            .collect();
        (all, traced)
    }

    fn explain_constraint<C: Context + ?Sized>(&self, c: &Constraint, ctx: &C) -> (bool, Value) {
        let held = c.holds(&self.arena, ctx);
        let mut map = c.describe(&self.arena);
        let value = match c.test {
            Test::Date(..) => match ctx.current_time() {
                CurrentTime::Now => json!(format_millis(now_millis())),
                CurrentTime::At(t) => json!(try_format_millis(t)
                    .unwrap_or_else(|| format!("{t} ms from the epoch (beyond RFC 3339)"))),
                CurrentTime::Unreadable => read(ctx, &Field::CurrentTime),
            },
            _ => read(ctx, &c.field),
        };
        map.insert("context_value".into(), value);
        map.insert("result".into(), json!(held));
        (held, Value::Object(map))
    }
}

/// The variant as the trace shows it.
fn variant_value(variant: Option<&Variant>, feature_enabled: bool) -> Value {
    json!({
        "name": variant.map_or(DISABLED_VARIANT, |v| v.name()),
        "enabled": variant.is_some(),
        "feature_enabled": feature_enabled,
        "payload": variant
            .and_then(|v| v.payload())
            .map(|p| json!({ "type": &*p.payload_type, "value": &*p.value })),
    })
}
