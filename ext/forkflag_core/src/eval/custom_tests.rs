//! Tests of custom strategies: compiled only for registered names, asked
//! of the context, and combined with constraints, segments and variants as
//! a built-in strategy is.

use std::cell::RefCell;
use std::sync::Arc;

use crate::compile::{self, model, BUILT_IN_STRATEGIES};
use crate::context::{Context, CustomStrategy, Field, OwnedContext};
use crate::snapshot::tag_for;
use crate::Snapshot;

fn compiled(json: &str, custom: &[&str]) -> (Snapshot, Vec<String>) {
    let payload: model::ClientFeatures = serde_json::from_str(json).unwrap();
    let names: Vec<Arc<str>> = custom.iter().map(|&n| n.into()).collect();
    compile::compile(&payload, None, 0, None, &names)
}

/// One call of a custom strategy: its name and parameters.
type Call = (String, Vec<(String, String)>);

/// A context whose custom strategies answer from a list of user ids in
/// the strategy's `users` parameter, recording each call.
struct Recording {
    inner: OwnedContext,
    calls: RefCell<Vec<Call>>,
}

impl Recording {
    fn user(id: &str) -> Recording {
        Recording {
            inner: OwnedContext {
                user_id: Some(id.into()),
                ..Default::default()
            },
            calls: RefCell::new(Vec::new()),
        }
    }
}

impl Context for Recording {
    fn with_field<R>(&self, field: &Field, f: impl FnOnce(Option<&str>) -> R) -> R {
        self.inner.with_field(field, f)
    }

    fn custom_strategy(&self, strategy: &CustomStrategy) -> bool {
        let parameters: Vec<(String, String)> = strategy
            .parameters()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        self.calls
            .borrow_mut()
            .push((strategy.name().to_owned(), parameters));
        let users = strategy
            .parameters()
            .find(|(k, _)| *k == "users")
            .map_or("", |(_, v)| v);
        let user = self.inner.user_id.as_deref().unwrap_or("");
        users.split(',').any(|u| u == user)
    }
}

const TENANT: &str = r#"{"version":2,"features":[
  {"name":"plain","enabled":true,"strategies":[
    {"name":"tenant","parameters":{"users":"1,2","z":"last","a":"first"}}]},
  {"name":"constrained","enabled":true,"strategies":[
    {"name":"tenant","parameters":{"users":"1,2"},
     "constraints":[{"contextName":"userId","operator":"IN","values":["2"]}]}]},
  {"name":"with-variants","enabled":true,"strategies":[
    {"name":"tenant","parameters":{"users":"1"},
     "variants":[{"name":"blue","weight":100,"stickiness":"default"}]},
    {"name":"default"}]},
  {"name":"disabled","enabled":false,"strategies":[
    {"name":"tenant","parameters":{"users":"1,2"}}]}]}"#;

#[test]
fn a_registered_strategy_is_asked_with_its_parameters_and_decides() {
    let (s, warnings) = compiled(TENANT, &["tenant"]);
    assert!(warnings.is_empty(), "{warnings:?}");
    let tag = tag_for(1);
    let one = Recording::user("1");
    assert_eq!(s.check(b"plain", &one, tag).map(|(on, _)| on), Some(true));
    assert_eq!(
        one.calls.borrow()[0],
        (
            "tenant".to_owned(),
            vec![
                ("a".to_owned(), "first".to_owned()),
                ("users".to_owned(), "1,2".to_owned()),
                ("z".to_owned(), "last".to_owned())
            ]
        )
    );
    let three = Recording::user("3");
    assert_eq!(
        s.check(b"plain", &three, tag).map(|(on, _)| on),
        Some(false)
    );
    // A flag switched off never asks.
    let two = Recording::user("2");
    assert_eq!(
        s.check(b"disabled", &two, tag).map(|(on, _)| on),
        Some(false)
    );
    assert!(two.calls.borrow().is_empty());
}

#[test]
fn constraints_and_variants_apply_to_a_custom_strategy() {
    let (s, _) = compiled(TENANT, &["tenant"]);
    let tag = tag_for(1);
    // The strategy matches users 1 and 2; the constraint only 2.
    assert_eq!(
        s.check(b"constrained", &Recording::user("1"), tag)
            .map(|(on, _)| on),
        Some(false)
    );
    assert_eq!(
        s.check(b"constrained", &Recording::user("2"), tag)
            .map(|(on, _)| on),
        Some(true)
    );
    // The custom strategy's variants for user 1; the default strategy
    // (no variants) for anyone else.
    let (choice, _) = s
        .check_variant(b"with-variants", &Recording::user("1"), tag)
        .unwrap();
    assert_eq!((choice.name(), choice.feature_enabled), ("blue", true));
    let (choice, _) = s
        .check_variant(b"with-variants", &Recording::user("5"), tag)
        .unwrap();
    assert_eq!((choice.name(), choice.feature_enabled), ("disabled", true));
}

#[test]
fn an_unregistered_strategy_never_matches_and_is_reported() {
    let (s, warnings) = compiled(TENANT, &["other"]);
    let one = Recording::user("1");
    assert_eq!(
        s.check(b"plain", &one, tag_for(1)).map(|(on, _)| on),
        Some(false)
    );
    assert!(one.calls.borrow().is_empty());
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("unknown strategy \"tenant\"") && w.contains("strategies:")),
        "{warnings:?}"
    );
}

#[test]
fn a_context_without_custom_strategies_matches_none() {
    let (s, _) = compiled(TENANT, &["tenant"]);
    let ctx = OwnedContext {
        user_id: Some("1".into()),
        ..Default::default()
    };
    assert_eq!(
        s.check(b"plain", &ctx, tag_for(1)).map(|(on, _)| on),
        Some(false)
    );
}

#[test]
fn a_built_in_name_is_never_compiled_as_custom() {
    for name in BUILT_IN_STRATEGIES {
        let json = format!(
            r#"{{"version":2,"features":[{{"name":"f","enabled":true,"strategies":[
              {{"name":"{name}","parameters":{{"users":"1","userIds":"1","percentage":"100",
                "rollout":"100","groupId":"g","IPs":"","hostNames":""}}}}]}}]}}"#
        );
        let (s, _) = compiled(&json, BUILT_IN_STRATEGIES);
        let one = Recording::user("1");
        s.check(b"f", &one, tag_for(1));
        assert!(
            one.calls.borrow().is_empty(),
            "{name} was asked as a custom strategy"
        );
    }
}

#[test]
fn flags_that_ask_a_custom_strategy_are_marked_with_their_children() {
    let json = r#"{"version":2,"features":[
      {"name":"child","enabled":true,"strategies":[{"name":"default"}],
       "dependencies":[{"feature":"parent"}]},
      {"name":"parent","enabled":true,"strategies":[{"name":"tenant","parameters":{"users":"1"}}]},
      {"name":"plain","enabled":true,"strategies":[{"name":"default"}]},
      {"name":"unregistered","enabled":true,"strategies":[{"name":"other"}]}]}"#;
    let (s, _) = compiled(json, &["tenant"]);
    let marked: Vec<bool> = ["child", "parent", "plain", "unregistered"]
        .iter()
        .map(|name| s.calls_custom(s.index_of(name.as_bytes()).unwrap()))
        .collect();
    assert_eq!(marked, [true, true, false, false]);
    // The child asks its parent's strategy.
    let tag = tag_for(1);
    assert_eq!(
        s.check(b"child", &Recording::user("1"), tag)
            .map(|(on, _)| on),
        Some(true)
    );
    assert_eq!(
        s.check(b"child", &Recording::user("2"), tag)
            .map(|(on, _)| on),
        Some(false)
    );
}
