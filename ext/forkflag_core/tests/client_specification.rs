//! Runs every case of the Unleash client specification against the core.
//!
//! The specification comes from npm (`support/client-specification`, installed
//! by the test command). A missing specification fails the test: no case is
//! ever skipped.

use forkflag_core::{Engine, OwnedContext};
use serde_json::Value;

#[path = "support/specification.rs"]
mod specification;

#[test]
fn every_case_of_the_client_specification_passes() {
    let suites = specification::suites();
    let mut passed = 0;
    let mut failures = Vec::new();
    for (file, suite) in &suites {
        let engine = Engine::new();
        let state = serde_json::to_vec(&suite["state"]).unwrap();
        if let Err(e) = engine.update_json(&state, None) {
            failures.push(format!("{file}: state rejected: {e}"));
            continue;
        }
        let snapshot = engine.snapshot();
        for case in suite["tests"].as_array().into_iter().flatten() {
            let ctx = OwnedContext::from_json(&case["context"]);
            let name = case["toggleName"].as_str().unwrap();
            let expected = case["expectedResult"].as_bool().unwrap();
            let actual = snapshot
                .check(name.as_bytes(), &ctx, 0)
                .is_some_and(|(enabled, _)| enabled);
            let explained = snapshot.explain(name, &ctx);
            if explained.enabled != actual || explained.trace["enabled"] != actual {
                failures.push(format!(
                    "{file}: {}: the explanation says {} ({}), the evaluation {actual}",
                    case["description"], explained.enabled, explained.trace["reason"]
                ));
            }
            if actual == expected {
                passed += 1;
            } else {
                failures.push(format!(
                    "{file}: {}: expected {expected}, got {actual}",
                    case["description"]
                ));
            }
        }
        for case in suite["variantTests"].as_array().into_iter().flatten() {
            let ctx = OwnedContext::from_json(&case["context"]);
            let name = case["toggleName"].as_str().unwrap();
            let expected = &case["expectedResult"];
            let (actual_name, actual_enabled, actual_feature, actual_payload) =
                match snapshot.check_variant(name.as_bytes(), &ctx, 0) {
                    Some((choice, _)) => (
                        choice.name().to_string(),
                        choice.enabled(),
                        choice.feature_enabled,
                        choice.variant.and_then(|v| v.payload()).map(
                            |p| serde_json::json!({"type": &*p.payload_type, "value": &*p.value}),
                        ),
                    ),
                    None => ("disabled".to_string(), false, false, None),
                };
            let explained = snapshot.explain(name, &ctx);
            let explained_answer = (
                explained
                    .variant
                    .map_or("disabled", |v| v.name())
                    .to_string(),
                explained.variant.is_some(),
                explained.enabled,
                explained
                    .variant
                    .and_then(|v| v.payload())
                    .map(|p| serde_json::json!({"type": &*p.payload_type, "value": &*p.value})),
            );
            let answer = (
                actual_name.clone(),
                actual_enabled,
                actual_feature,
                actual_payload.clone(),
            );
            if explained_answer != answer || explained.trace["variant"]["name"] != actual_name {
                failures.push(format!(
                    "{file}: {}: the explanation says {explained_answer:?}, the evaluation {answer:?}",
                    case["description"]
                ));
            }
            let expected_feature = expected
                .get("feature_enabled")
                .or_else(|| expected.get("featureEnabled"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let expected_payload = expected.get("payload").filter(|p| !p.is_null()).cloned();
            let ok = expected["name"] == actual_name
                && expected["enabled"].as_bool() == Some(actual_enabled)
                && expected_feature == actual_feature
                && expected_payload == actual_payload;
            if ok {
                passed += 1;
            } else {
                failures.push(format!(
                    "{file}: {}: expected {expected}, got name={actual_name} enabled={actual_enabled} \
                     feature_enabled={actual_feature} payload={actual_payload:?}",
                    case["description"]
                ));
            }
        }
    }
    println!(
        "client specification: {passed} of {} cases passed in {} files",
        passed + failures.len(),
        suites.len()
    );
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    assert_eq!(passed, 279, "the 6.1.0 specification has 279 cases");
    println!("client specification: every answer's explanation agreed with it");
}
