//! The valid payloads mutations start from: every state of the Unleash
//! client specification (full documents and delta events), the examples'
//! flags, and a few written here for what those lack (dependency cycles and
//! chains, missing segments, feature-level variants with overrides).

use std::path::PathBuf;

use serde_json::{json, Value};

/// A named valid payload.
pub struct Document {
    pub name: String,
    pub value: Value,
}

/// The corpus. A missing specification fails the test, as in
/// tests/client_specification.rs.
pub fn load() -> Vec<Document> {
    let mut docs: Vec<Document> = crate::specification::suites()
        .into_iter()
        .map(|(name, suite)| Document {
            name,
            value: suite["state"].clone(),
        })
        .collect();
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/flags.json");
    let text = std::fs::read_to_string(&examples).expect("examples/flags.json readable");
    docs.push(Document {
        name: "examples/flags.json".into(),
        value: serde_json::from_str(&text).expect("examples/flags.json is JSON"),
    });
    docs.push(Document {
        name: "dependencies and segments".into(),
        value: dependencies_and_segments(),
    });
    docs
}

/// Flags that depend on themselves, on each other, on a chain and on a
/// missing flag; strategies on missing segments; feature variants with
/// overrides and custom stickiness.
fn dependencies_and_segments() -> Value {
    let on = json!([{"name": "default"}]);
    json!({
        "version": 2,
        "segments": [
            {"id": 1, "constraints": [{"contextName": "plan", "operator": "IN", "values": ["pro"]}]},
            {"id": 2, "constraints": []},
        ],
        "features": [
            {"name": "parent", "enabled": true, "strategies": [{"name": "flexibleRollout",
                "parameters": {"rollout": "50", "stickiness": "userId", "groupId": "parent"},
                "variants": [{"name": "a", "weight": 500, "stickiness": "default"},
                             {"name": "b", "weight": 500, "stickiness": "default"}]}]},
            {"name": "self", "enabled": true, "strategies": on,
                "dependencies": [{"feature": "self"}]},
            {"name": "ping", "enabled": true, "strategies": on,
                "dependencies": [{"feature": "pong"}]},
            {"name": "pong", "enabled": true, "strategies": on,
                "dependencies": [{"feature": "ping", "enabled": false}]},
            {"name": "child", "enabled": true, "strategies": on,
                "dependencies": [{"feature": "parent", "variants": ["a"]}]},
            {"name": "grandchild", "enabled": true, "strategies": on,
                "dependencies": [{"feature": "child"}]},
            {"name": "orphan", "enabled": true, "strategies": on,
                "dependencies": [{"feature": "missing"}]},
            {"name": "segmented", "enabled": true, "strategies": [
                {"name": "default", "segments": [1, 2, 3]},
                {"name": "userWithId", "parameters": {"userIds": "1,2, 3"}, "segments": [2]}]},
            {"name": "overridden", "enabled": true, "strategies": on, "variants": [
                {"name": "x", "weight": 1, "stickiness": "plan",
                 "payload": {"type": "json", "value": "{\"a\":1}"},
                 "overrides": [{"contextName": "userId", "values": ["1", "2"]}]},
                {"name": "y", "weight": 0, "stickiness": "plan",
                 "overrides": [{"contextName": "plan", "values": ["pro"]}]}]},
        ]
    })
}
