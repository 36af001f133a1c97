//! The files of the Unleash client specification, for the tests that run
//! them (`tests/client_specification.rs`) or mutate their states
//! (`tests/fuzz/corpus.rs`). Included by path, not through
//! `support/mod.rs`, which is the counting allocator.
//!
//! The specification comes from npm (`support/client-specification`,
//! installed by the test command), or from `FORKFLAG_CLIENT_SPEC_DIR`. A
//! missing specification fails the test: no case is ever skipped.

use std::path::PathBuf;

use serde_json::Value;

fn specification_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("FORKFLAG_CLIENT_SPEC_DIR") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "../../support/client-specification/node_modules/@unleash/client-specification/specifications",
    )
}

/// Every file the specification's index lists, in its order: the file's
/// name and its parsed JSON.
pub fn suites() -> Vec<(String, Value)> {
    let dir = specification_dir();
    let index = std::fs::read_to_string(dir.join("index.json")).unwrap_or_else(|e| {
        panic!(
            "cannot read the client specification at {} ({e}); run `npm ci` in support/client-specification",
            dir.display()
        )
    });
    let files: Vec<String> = serde_json::from_str(&index).expect("index.json is a list");
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(dir.join(&file)).expect("spec file readable");
            let suite: Value = serde_json::from_str(&text).expect("spec file is JSON");
            (file, suite)
        })
        .collect()
}
