//! Tests of descriptions: names, parameters, sets, duplicates.

use serde_json::json;

use crate::compile::{self, model};

fn snapshot(json: &str) -> crate::Snapshot {
    let payload: model::ClientFeatures = serde_json::from_str(json).unwrap();
    compile::compile(&payload, None, 0, None, &[]).0
}

#[test]
fn each_built_in_strategy_is_named_with_its_parameters() {
    let s = snapshot(
        r#"{"version":2,"features":[{"name":"f","enabled":true,"strategies":[
          {"name":"default"},
          {"name":"userWithId","parameters":{"userIds":"b, a"}},
          {"name":"gradualRolloutUserId","parameters":{"percentage":"30","groupId":"g"}},
          {"name":"gradualRolloutSessionId","parameters":{"percentage":"40","groupId":"h"}},
          {"name":"gradualRolloutRandom","parameters":{"percentage":"50"}},
          {"name":"flexibleRollout","parameters":{"rollout":"60.5","stickiness":"tenant"}},
          {"name":"remoteAddress","parameters":{"IPs":"10.0.0.0/8, localhost"}},
          {"name":"applicationHostname","parameters":{"hostNames":"no-such-host-here"}},
          {"name":"userWithId"},
          {"name":"mystery","parameters":{"a":"1"}}]}]}"#,
    );
    let d = s.describe(b"f").unwrap();
    let got: Vec<_> = d["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].clone(), s["parameters"].clone()))
        .collect();
    let want = [
        ("default", json!({})),
        ("userWithId", json!({"userIds": "a,b"})),
        (
            "gradualRolloutUserId",
            json!({"percentage": "30", "groupId": "g"}),
        ),
        (
            "gradualRolloutSessionId",
            json!({"percentage": "40", "groupId": "h"}),
        ),
        ("gradualRolloutRandom", json!({"percentage": "50"})),
        (
            "flexibleRollout",
            json!({"rollout": "60", "stickiness": "tenant", "groupId": "f"}),
        ),
        ("remoteAddress", json!({"IPs": "10.0.0.0/8,localhost"})),
        ("applicationHostname", json!({})),
        ("userWithId", json!({})),
        ("mystery", json!({})),
    ];
    let want: Vec<_> = want.into_iter().map(|(n, p)| (json!(n), p)).collect();
    assert_eq!(got, want);
    assert_eq!(
        d["summary"][7],
        json!("applicationHostname: off for this host")
    );
    assert!(d["strategies"][8]["note"]
        .as_str()
        .unwrap()
        .contains("never matches"));
}

#[test]
fn later_duplicates_are_described_once_and_hashed_sets_in_full() {
    let values: Vec<String> = (0..20).map(|i| format!("v{i:02}")).collect();
    let s = snapshot(
        &json!({"version": 2, "features": [
            {"name": "b", "enabled": false, "strategies": []},
            {"name": "a", "enabled": true, "strategies": [{"name": "default", "constraints": [
                {"contextName": "x", "operator": "IN", "values": values}]}]},
            {"name": "b", "enabled": true, "strategies": []}]})
        .to_string(),
    );
    let all = s.describe_all();
    let names: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].clone())
        .collect();
    assert_eq!(names, [json!("a"), json!("b")]);
    assert_eq!(
        all[1]["enabled"],
        json!(true),
        "the later b, as lookup finds it"
    );
    assert_eq!(
        all[0]["strategies"][0]["constraints"][0]["values"],
        json!(values)
    );
}
