//! Tests of evaluation: answers, variants and what is counted.

use crate::compile::{self, model};
use crate::context::OwnedContext;
use crate::snapshot::tag_for;
use crate::snapshot::Tally;

fn snapshot(json: &str) -> crate::Snapshot {
    let payload: model::ClientFeatures = serde_json::from_str(json).unwrap();
    compile::compile(&payload, None, 0, None, &[]).0
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
