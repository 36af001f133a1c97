//! forkflag's evaluator against the official Unleash engine (`unleash-yggdrasil`).
//!
//! Both engines load the same client-features bytes and answer `is_enabled`
//! and `get_variant` for the same contexts, for six flag shapes. For every
//! shape and operation the two are timed in alternating batches (the order
//! flips each round, so drift and other load on the machine hit both alike);
//! each batch gives one ns/evaluation figure per engine and the printed
//! figures are medians over the rounds. The ratio is yggdrasil's median over
//! forkflag's, so a ratio above 1 means forkflag is faster.
//!
//! Each engine is measured twice, so that like is compared with like:
//!
//! - evaluation alone: forkflag loads the live snapshot, looks the flag up and
//!   evaluates (`Snapshot::is_enabled_at` / `variant_at`); yggdrasil answers
//!   `is_enabled` / `get_variant`, which do not count;
//! - evaluation and counting, as each is used per call: forkflag's
//!   `Snapshot::check` / `check_variant` (what the Ruby binding calls), and
//!   yggdrasil's answer plus the `count_toggle` (and `count_variant`) an SDK
//!   built on it calls after every evaluation.
//!
//! The goal (forkflag at least 2x faster on every shape) must hold in both.
//!
//! Run: `cargo bench --locked -p forkflag_core --bench engine_vs_yggdrasil`
//! (or `rake bench:core`). `FORKFLAG_BENCH_ROUNDS` and `FORKFLAG_BENCH_BATCH_MS`
//! change the number of rounds and the length of each batch.
//! `FORKFLAG_BENCH_PROFILE=forkflag` (or `yggdrasil`) instead runs only that
//! engine on the selected shapes for a few seconds, for `perf record`.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use forkflag_core::process::fork;
use forkflag_core::snapshot::tag_for;
use forkflag_core::{Engine, OwnedContext};
use serde_json::{json, Value};
use unleash_yggdrasil::{ClientFeatures, Context as OfficialContext, EngineState, UpdateMessage};

/// The goal: forkflag at least this many times faster on every shape.
const GOAL_RATIO: f64 = 2.0;
/// Distinct contexts each batch cycles through.
const CONTEXTS: usize = 256;

/// The six shapes: (label, flag name).
const SHAPES: [(&str, &str); 6] = [
    ("default strategy", "default"),
    ("userWithId, 100 ids", "user-with-id"),
    ("flexibleRollout 50% userId", "rollout"),
    ("3 constraints (SEMVER, IN 1000)", "constrained"),
    ("4 weighted variants", "variants"),
    ("dependent flag", "dependent"),
];

/// The shapes whose label or flag name contains `filter` (all without one).
fn selected(filter: Option<&str>) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
    SHAPES
        .into_iter()
        .filter(move |(label, name)| filter.is_none_or(|f| name.contains(f) || label.contains(f)))
}

fn payload() -> Value {
    let user_ids: Vec<String> = (0..100).map(|i| format!("user-{}", i * 3)).collect();
    let in_list: Vec<String> = (0..1000).map(|i| format!("user-{}", i * 2)).collect();
    let variant = |name: &str, weight: u32| {
        json!({"name": name, "weight": weight, "weightType": "variable", "stickiness": "default",
               "payload": {"type": "string", "value": format!("{name}-payload")}})
    };
    json!({
        "version": 2,
        "features": [
            {"name": "default", "enabled": true, "strategies": [{"name": "default"}]},
            {"name": "user-with-id", "enabled": true,
             "strategies": [{"name": "userWithId", "parameters": {"userIds": user_ids.join(",")}}]},
            {"name": "rollout", "enabled": true,
             "strategies": [{"name": "flexibleRollout",
                             "parameters": {"rollout": "50", "stickiness": "userId", "groupId": "rollout"}}]},
            {"name": "constrained", "enabled": true,
             "strategies": [{"name": "default", "constraints": [
                 {"contextName": "version", "operator": "SEMVER_GTE", "value": "1.5.0"},
                 {"contextName": "userId", "operator": "IN", "values": in_list},
                 {"contextName": "email", "operator": "STR_ENDS_WITH", "values": ["@example.com"]}
             ]}]},
            {"name": "variants", "enabled": true,
             "strategies": [{"name": "default", "variants": [
                 variant("red", 100), variant("green", 200), variant("blue", 300), variant("black", 400)
             ]}]},
            {"name": "parent", "enabled": true,
             "strategies": [{"name": "flexibleRollout",
                             "parameters": {"rollout": "50", "stickiness": "default", "groupId": "parent"}}]},
            {"name": "dependent", "enabled": true, "strategies": [{"name": "default"}],
             "dependencies": [{"feature": "parent", "enabled": true}]}
        ]
    })
}

/// One context in both engines' forms.
struct Pair {
    ours: OwnedContext,
    theirs: OfficialContext,
}

fn contexts() -> Vec<Pair> {
    (0..CONTEXTS)
        .map(|i| {
            let user_id = format!("user-{}", (i * 7) % 1400);
            let version = format!("{}.{}.0", 1 + i % 3, i % 10);
            let email = if i % 5 == 0 {
                format!("u{i}@other.org")
            } else {
                format!("u{i}@example.com")
            };
            let properties: HashMap<String, String> =
                [("version".to_owned(), version), ("email".to_owned(), email)].into();
            let mut ours = OwnedContext {
                user_id: Some(user_id.clone()),
                session_id: Some(format!("s-{i}")),
                environment: Some("production".into()),
                app_name: Some("web".into()),
                ..OwnedContext::default()
            };
            ours.properties = properties.clone().into_iter().collect();
            let theirs = OfficialContext {
                user_id: Some(user_id),
                session_id: Some(format!("s-{i}")),
                environment: Some("production".into()),
                app_name: Some("web".into()),
                current_time: None,
                remote_address: None,
                properties: Some(properties),
            };
            Pair { ours, theirs }
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Enabled,
    Variant,
}

/// What is timed: one evaluation of `name` for each context, `reps` times.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Subject {
    Forkflag,
    Official,
    ForkflagCounted,
    OfficialCounted,
}

const SUBJECTS: [Subject; 4] = [
    Subject::Forkflag,
    Subject::Official,
    Subject::ForkflagCounted,
    Subject::OfficialCounted,
];

fn run(
    subject: Subject,
    op: Op,
    name: &str,
    ours: &Engine,
    theirs: &EngineState,
    ctxs: &[Pair],
    reps: u64,
) -> Duration {
    let tag = tag_for(fork::generation());
    let bytes = name.as_bytes();
    let start = Instant::now();
    for _ in 0..reps {
        for c in ctxs {
            match (subject, op) {
                (Subject::Forkflag, Op::Enabled) => {
                    let snapshot = ours.load();
                    black_box(
                        snapshot
                            .index_of(bytes)
                            .map(|i| snapshot.is_enabled_at(i, black_box(&c.ours))),
                    );
                }
                (Subject::Forkflag, Op::Variant) => {
                    let snapshot = ours.load();
                    black_box(snapshot.index_of(bytes).map(|i| {
                        let v = snapshot.variant_at(i, black_box(&c.ours));
                        (v.name().len(), v.feature_enabled)
                    }));
                }
                (Subject::ForkflagCounted, Op::Enabled) => {
                    let snapshot = ours.load();
                    black_box(
                        snapshot
                            .check(bytes, black_box(&c.ours), tag)
                            .map(|(e, _)| e),
                    );
                }
                (Subject::ForkflagCounted, Op::Variant) => {
                    let snapshot = ours.load();
                    black_box(
                        snapshot
                            .check_variant(bytes, black_box(&c.ours), tag)
                            .map(|(v, _)| (v.name().len(), v.feature_enabled)),
                    );
                }
                (Subject::Official, Op::Enabled) => {
                    black_box(theirs.is_enabled(name, black_box(&c.theirs), &None));
                }
                (Subject::Official, Op::Variant) => {
                    black_box(theirs.get_variant(name, black_box(&c.theirs), &None));
                }
                (Subject::OfficialCounted, Op::Enabled) => {
                    let enabled = theirs.is_enabled(name, black_box(&c.theirs), &None);
                    theirs.count_toggle(name, enabled);
                    black_box(enabled);
                }
                (Subject::OfficialCounted, Op::Variant) => {
                    let v = theirs.get_variant(name, black_box(&c.theirs), &None);
                    theirs.count_toggle(name, v.feature_enabled);
                    theirs.count_variant(name, &v.name);
                    black_box(v);
                }
            }
        }
    }
    start.elapsed()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Checks that both engines give the same answers, so the timings compare
/// equal work.
fn check_agreement(ours: &Engine, theirs: &EngineState, ctxs: &[Pair]) {
    let snapshot = ours.snapshot();
    for (_, name) in SHAPES {
        let mut on = 0;
        for c in ctxs {
            let a = snapshot.check(name.as_bytes(), &c.ours, 0).map(|(e, _)| e);
            let b = theirs.is_enabled(name, &c.theirs, &None);
            assert_eq!(
                a,
                Some(b),
                "engines disagree on enabled({name}) for {:?}",
                c.ours
            );
            on += usize::from(b);
            let a = snapshot
                .check_variant(name.as_bytes(), &c.ours, 0)
                .map(|(v, _)| v.name().to_owned());
            let b = theirs.get_variant(name, &c.theirs, &None);
            assert_eq!(
                a.as_deref(),
                Some(b.name.as_str()),
                "engines disagree on variant({name})"
            );
        }
        println!(
            "  {name:<14} enabled for {on}/{} contexts in both engines",
            ctxs.len()
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects shapes by name.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let rounds = env_number("FORKFLAG_BENCH_ROUNDS", 61).max(3) as usize;
    let batch = Duration::from_millis(env_number("FORKFLAG_BENCH_BATCH_MS", 2).max(1));

    let bytes = serde_json::to_vec(&payload()).expect("payload serializes");
    let ours = Engine::new();
    ours.update_json(&bytes, None)
        .expect("forkflag loads the payload");
    let theirs = EngineState::default();
    let features: ClientFeatures =
        serde_json::from_slice(&bytes).expect("yggdrasil reads the payload");
    let warnings = theirs.take_state(UpdateMessage::FullResponse(features));
    assert!(
        warnings.as_ref().is_none_or(|w| w.is_empty()),
        "yggdrasil warned: {warnings:?}"
    );
    let ctxs = contexts();

    if let Ok(which) = std::env::var("FORKFLAG_BENCH_PROFILE") {
        let subject = if which == "yggdrasil" {
            Subject::Official
        } else {
            Subject::Forkflag
        };
        for (label, name) in selected(filter.as_deref()) {
            for op in [Op::Enabled, Op::Variant] {
                let t = run(subject, op, name, &ours, &theirs, &ctxs, 100_000);
                let ns = t.as_nanos() as f64 / (100_000.0 * ctxs.len() as f64);
                println!(
                    "{which} {label} {}: {ns:.1} ns",
                    if op == Op::Enabled {
                        "enabled"
                    } else {
                        "variant"
                    }
                );
            }
        }
        return;
    }
    println!(
        "forkflag_core vs unleash-yggdrasil 0.21.7: {} contexts, {rounds} rounds of ~{} ms \
         batches per engine, order rotated every round",
        ctxs.len(),
        batch.as_millis()
    );
    check_agreement(&ours, &theirs, &ctxs);
    println!();
    println!(
        "{:<32} {:<7} | {:>8} {:>8} {:>6} {:>11} | {:>8} {:>8} {:>6} | goal",
        "shape", "op", "ff ns", "ygg ns", "ratio", "ratio p10-90", "ff+cnt", "ygg+cnt", "ratio"
    );

    let mut missed = 0;
    for (label, name) in selected(filter.as_deref()) {
        for op in [Op::Enabled, Op::Variant] {
            // Calibrate: repetitions so that each batch lasts about `batch`.
            let mut reps = [1u64; 4];
            for (i, &s) in SUBJECTS.iter().enumerate() {
                run(s, op, name, &ours, &theirs, &ctxs, 3); // warm up
                let one = run(s, op, name, &ours, &theirs, &ctxs, 5).as_secs_f64() / 5.0;
                reps[i] = ((batch.as_secs_f64() / one.max(1e-9)) as u64).max(1);
            }
            let mut ns: [Vec<f64>; 4] = Default::default();
            let mut ratios = Vec::new();
            let mut ratios_counted = Vec::new();
            for round in 0..rounds {
                let mut this = [0f64; 4];
                for k in 0..4 {
                    let i = (k + round) % 4;
                    let t = run(SUBJECTS[i], op, name, &ours, &theirs, &ctxs, reps[i]);
                    this[i] = t.as_nanos() as f64 / (reps[i] as f64 * ctxs.len() as f64);
                }
                ratios.push(this[1] / this[0]);
                ratios_counted.push(this[3] / this[2]);
                for (all, one) in ns.iter_mut().zip(this) {
                    all.push(one);
                }
            }
            let m: Vec<f64> = ns.iter_mut().map(|v| median(v)).collect();
            let ratio = median(&mut ratios);
            let counted = median(&mut ratios_counted);
            let p = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
            let met = ratio >= GOAL_RATIO && counted >= GOAL_RATIO;
            missed += usize::from(!met);
            println!(
                "{:<32} {:<7} | {:>8.1} {:>8.1} {:>5.2}x {:>5.2}-{:<5.2} | {:>8.1} {:>8.1} {:>5.2}x | {}",
                label,
                if op == Op::Enabled { "enabled" } else { "variant" },
                m[0],
                m[1],
                ratio,
                p(&ratios, 0.1),
                p(&ratios, 0.9),
                m[2],
                m[3],
                counted,
                if met { "met" } else { "MISSED" }
            );
        }
    }
    println!();
    println!(
        "ratio = median over rounds of (yggdrasil ns / forkflag ns) for evaluation alone; \
         the second ratio for evaluation and counting"
    );
    println!(
        "goal: forkflag at least {GOAL_RATIO}x faster on every shape and operation: {}",
        if missed == 0 {
            "met".to_owned()
        } else {
            format!("MISSED on {missed} of 12")
        }
    );
}
