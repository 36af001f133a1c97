//! Evaluating a flag takes no heap allocation on the common path.
//!
//! A counting global allocator (tests/support) wraps the system allocator;
//! after a warm-up (the first snapshot load on a thread registers it with
//! arc-swap), loading the snapshot and evaluating default, rollout,
//! constrained and variant flags must allocate nothing.

use forkflag_core::{Context, Engine, Field};

mod support;
use support::allocations;

/// A context that borrows its fields, as the Ruby binding's Hash view does.
struct Borrowed<'a> {
    user_id: Option<&'a str>,
    plan: Option<&'a str>,
}

impl Context for Borrowed<'_> {
    fn with_field<R>(&self, field: &Field, f: impl FnOnce(Option<&str>) -> R) -> R {
        match field {
            Field::UserId => f(self.user_id),
            Field::Property(name) if &**name == "plan" => f(self.plan),
            _ => f(None),
        }
    }
}

const PAYLOAD: &str = r#"{"version":2,"features":[
  {"name":"default","enabled":true,"strategies":[{"name":"default"}]},
  {"name":"rollout","enabled":true,"strategies":[{"name":"flexibleRollout",
    "parameters":{"rollout":"50","stickiness":"userId","groupId":"rollout"}}]},
  {"name":"constrained","enabled":true,"strategies":[{"name":"flexibleRollout",
    "parameters":{"rollout":"100","stickiness":"default","groupId":"c"},
    "constraints":[{"contextName":"plan","operator":"IN","values":["pro","team"]},
                   {"contextName":"userId","operator":"STR_STARTS_WITH","values":["1"],"caseInsensitive":true},
                   {"contextName":"plan","operator":"NOT_IN","values":["free"]}]}]},
  {"name":"variants","enabled":true,"strategies":[{"name":"default"}],
   "variants":[{"name":"a","weight":50,"stickiness":"default"},{"name":"b","weight":50,"stickiness":"default"}]}
]}"#;

#[test]
fn evaluation_allocates_nothing() {
    let engine = Engine::new();
    engine.update_json(PAYLOAD.as_bytes(), None).unwrap();
    let ids: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let names: [&[u8]; 4] = [b"default", b"rollout", b"constrained", b"missing"];

    let run = |count: &mut u64| {
        for id in &ids {
            let ctx = Borrowed {
                user_id: Some(id),
                plan: Some("pro"),
            };
            let snapshot = engine.load();
            for name in names {
                if let Some((true, _)) = snapshot.check(name, &ctx, 0) {
                    *count += 1;
                }
            }
            if let Some((choice, _)) = snapshot.check_variant(b"variants", &ctx, 0) {
                *count += u64::from(choice.enabled());
            }
        }
    };

    let mut warm = 0;
    run(&mut warm);
    let before = allocations();
    let mut enabled = 0;
    run(&mut enabled);
    let during = allocations() - before;
    println!("5000 evaluations: {enabled} answered true or chose a variant, {during} allocations");
    assert!(enabled > 2000, "the flags were exercised ({enabled})");
    assert_eq!(during, 0, "evaluation must not allocate");
}
