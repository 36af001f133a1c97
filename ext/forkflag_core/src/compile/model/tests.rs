//! Tests of the payload model: delta events and the problems a parse
//! reports.

use super::*;

fn rejection(json: &str) -> String {
    match Update::parse(json.as_bytes()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted: {json:.100}"),
    }
}

#[test]
fn delta_events_update_replace_and_remove_in_order() {
    let feature = |name: &str, enabled: bool| -> Feature {
        serde_json::from_value(serde_json::json!({"name": name, "enabled": enabled})).unwrap()
    };
    let segment =
        |id: i64| -> Segment { serde_json::from_value(serde_json::json!({"id": id})).unwrap() };
    let mut state = ClientFeatures {
        version: None,
        // A name twice: an update replaces the first, a removal both.
        features: vec![
            feature("a", false),
            feature("b", false),
            feature("a", false),
        ],
        segments: vec![segment(1), segment(2)],
    };
    let mut events = vec![
        DeltaEvent::FeatureUpdated(FeatureUpdated {
            event_id: None,
            feature: feature("b", true),
        }),
        DeltaEvent::FeatureUpdated(FeatureUpdated {
            event_id: None,
            feature: feature("c", true),
        }),
        DeltaEvent::SegmentRemoved(SegmentRemoved {
            event_id: None,
            segment_id: 1,
        }),
        DeltaEvent::SegmentUpdated(SegmentUpdated {
            event_id: None,
            segment: segment(3),
        }),
    ];
    // 50,000 flags added and removed again (a search of the list per
    // event took minutes here).
    for i in 0..50_000 {
        events.push(DeltaEvent::FeatureUpdated(FeatureUpdated {
            event_id: None,
            feature: feature(&format!("n{i}"), true),
        }));
    }
    for i in 0..50_000 {
        events.push(DeltaEvent::FeatureRemoved(FeatureRemoved {
            event_id: None,
            feature_name: format!("n{i}"),
        }));
    }
    state.apply(events);
    let flags: Vec<(&str, bool)> = state
        .features
        .iter()
        .map(|f| (f.name.as_str(), f.enabled))
        .collect();
    assert_eq!(
        flags,
        [("a", false), ("b", true), ("a", false), ("c", true)]
    );
    state.apply(vec![DeltaEvent::FeatureRemoved(FeatureRemoved {
        event_id: None,
        feature_name: "a".into(),
    })]);
    let names: Vec<&str> = state.features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["b", "c"]);
    let ids: Vec<i64> = state.segments.iter().map(|s| s.id).collect();
    assert_eq!(ids, [2, 3]);
}

#[test]
fn a_rejected_delta_event_names_the_field_inside_it() {
    for (json, expected) in [
        (
            r#"{"events":[{"type":"feature-removed","featureName":"a"},
               {"type":"segment-updated","segment":{"id":"x"}}]}"#,
            r#"at events[1].segment.id: invalid type: string "x", expected i64"#,
        ),
        (
            r#"{"events":[{"type":"feature-updated","feature":{"name":"a","enabled":true,
               "strategies":[{"name":"default","constraints":[{"contextName":"a"}]}]}}]}"#,
            "at events[0].feature.strategies[0].constraints[0]: missing field `operator`",
        ),
        (
            r#"{"events":[{"type":"hydration","features":[{"name":"a","enabled":1}]}]}"#,
            "at events[0].features[0].enabled: invalid type: integer `1`, expected a boolean",
        ),
        (
            r#"{"events":[{"type":"feature-updated"}]}"#,
            "at events[0]: missing field `feature`",
        ),
        (
            r#"{"events":[{"eventId":1}]}"#,
            "at events[0]: missing field `type`",
        ),
        (
            r#"{"events":[{"type":7}]}"#,
            "at events[0].type: invalid type: integer `7`, expected a string",
        ),
        (
            r#"{"events":[{"type":"feature-renamed"}]}"#,
            r#"at events[0].type: unknown event type "feature-renamed", expected one of"#,
        ),
        (
            r#"{"events":["hydration"]}"#,
            r#"at events[0]: invalid type: string "hydration", expected a map"#,
        ),
    ] {
        let e = rejection(json);
        assert!(e.contains(expected), "{json}\n{e}\nexpected: {expected}");
    }
}

#[test]
fn a_rejection_quotes_a_huge_value_or_key_in_a_line() {
    let huge = "x".repeat(1 << 20);
    let e = rejection(&format!(
        r#"{{"features":[{{"name":"a","enabled":"{huge}"}}]}}"#
    ));
    assert!(e.len() < 300, "{} bytes: {e:.300}", e.len());
    assert!(
        e.contains("at features[0].enabled: invalid type: string \"xxx"),
        "{e}"
    );
    assert!(
        e.contains("(cut, 1048576 characters), expected a boolean"),
        "{e}"
    );
    let e = rejection(&format!(
        r#"{{"features":[{{"name":"a","enabled":true,"strategies":[{{"name":"default","parameters":{{"{huge}":[]}}}}]}}]}}"#
    ));
    assert!(e.len() < 300, "{} bytes: {e:.300}", e.len());
    assert!(
        e.contains("at features[0].strategies[0].parameters.\"xxx"),
        "{e}"
    );
}
