//! Tests of the engine: updates, unknown names, tallies.

use super::*;
use crate::snapshot::tag_for;
use crate::snapshot::ToggleStats;

#[test]
fn names_the_configuration_lacks_are_counted_as_false() {
    let engine = Engine::new();
    let tag = tag_for(0);
    engine.count_unknown(b"later", false, tag);
    engine.count_unknown(b"later", false, tag);
    engine.count_unknown(b"later", true, tag);
    engine.count_unknown(b"\xff", false, tag); // not UTF-8: not counted
    engine.count_unknown(b"other", false, tag_for(1)); // another process's count
    assert_eq!(engine.peek_tally(tag).evaluations(), 3);
    let tally = engine.take_tally(tag);
    let later = ToggleStats {
        yes: 0,
        no: 3,
        variants: [("disabled".to_string(), 1)].into(),
    };
    assert_eq!(tally.toggles.get("later"), Some(&later));
    assert_eq!(tally.toggles.len(), 1);
    assert!(engine.take_tally(tag).is_empty(), "taken once");
}

#[test]
fn an_update_tells_what_it_changed_only_when_someone_listens() {
    let seg = |plans: &str| {
        format!(
            r#"{{"id":7,"constraints":[{{"contextName":"plan","operator":"IN","values":[{plans}]}}]}}"#
        )
    };
    let doc = |features: &str, segment: &str| {
        format!(r#"{{"version":2,"features":[{features}],"segments":[{segment}]}}"#)
    };
    let keep = r#"{"name":"keep","enabled":true,"strategies":[{"name":"default"}]}"#;
    let seg_user =
        r#"{"name":"seg","enabled":true,"strategies":[{"name":"default","segments":[7]}]}"#;
    let off = r#"{"name":"off","enabled":false}"#;
    let on = r#"{"name":"off","enabled":true}"#;
    let gone = r#"{"name":"gone","enabled":true}"#;
    let new = r#"{"name":"new","enabled":true}"#;

    let engine = Engine::new();
    let first = doc(&[keep, seg_user, off, gone].join(","), &seg(r#""pro""#));
    let outcome = engine.update_json(first.as_bytes(), None).unwrap();
    assert_eq!(outcome.changes, None, "nobody listens: nothing compared");

    engine.set_events_wanted(true);
    // The same definitions in another order, with a field the client
    // does not read: a new snapshot, and no change.
    let described = keep.replace(r#""enabled""#, r#""description":"x","enabled""#);
    let reordered = doc(
        &[gone, off, seg_user, &described].join(","),
        &seg(r#""pro""#),
    );
    let outcome = engine.update_json(reordered.as_bytes(), None).unwrap();
    assert!(outcome.changed);
    assert_eq!(outcome.changes, Some(Changes::default()));

    let next = doc(&[keep, seg_user, on, new].join(","), &seg(r#""pro","max""#));
    let outcome = engine.update_json(next.as_bytes(), Some("\"e2\"")).unwrap();
    let changes = outcome.changes.expect("someone listens");
    assert_eq!(changes.added, ["new"]);
    assert_eq!(
        changes.changed,
        ["off", "seg"],
        "a flag and a segment it uses"
    );
    assert_eq!(changes.removed, ["gone"]);

    // The identical text: not even compiled, and no change.
    let outcome = engine.update_json(next.as_bytes(), None).unwrap();
    assert!(!outcome.changed);
    assert_eq!(outcome.changes, Some(Changes::default()));
}

#[test]
fn a_name_the_payload_held_twice_is_told_once() {
    let twice = r#"{"version":2,"features":[{"name":"dup","enabled":false},{"name":"dup","enabled":true}]}"#;
    let engine = Engine::new();
    engine.set_events_wanted(true);
    let outcome = engine.update_json(twice.as_bytes(), None).unwrap();
    assert_eq!(outcome.changes.expect("someone listens").added, ["dup"]);
    let empty = r#"{"version":2,"features":[]}"#;
    let outcome = engine.update_json(empty.as_bytes(), None).unwrap();
    assert_eq!(outcome.changes.expect("someone listens").removed, ["dup"]);
}

#[test]
fn unknown_names_are_bounded() {
    let engine = Engine::new();
    let tag = tag_for(0);
    for i in 0..MAX_UNKNOWN_NAMES + 10 {
        engine.count_unknown(format!("name-{i}").as_bytes(), false, tag);
    }
    engine.count_unknown(b"name-0", false, tag);
    let tally = engine.take_tally(tag);
    assert_eq!(tally.toggles.len(), MAX_UNKNOWN_NAMES);
    assert_eq!(tally.toggles["name-0"].no, 2);
}
