//! Tests of the compiler: slots, problems and how they are worded.

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
    let (snapshot, _) = compile(&payload, None, 0, None, &[]);
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
    let (mut snapshot, warnings) = compile(&payload(0), None, 0, None, &[]);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    for i in 1..1000 {
        let (next, warnings) = compile(&payload(i), None, i as u64, Some(&snapshot), &[]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains(&format!("flag-{i}")), "{warnings:?}");
        snapshot = next;
    }
    assert_eq!(snapshot.reported.len(), 2, "problems kept");
    let (_, warnings) = compile(&payload(0), None, 0, Some(&snapshot), &[]);
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
    let (_, warnings) = compile(&payload, None, 0, None, &[]);
    assert_eq!(warnings.len(), 9, "{warnings:.300?}");
    for w in &warnings {
        assert!(w.len() < 600, "{} bytes: {w:.600}", w.len());
        assert!(w.contains("(cut, 1048576 characters)"), "{w}");
    }
}
