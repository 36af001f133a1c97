//! How much heap a compiled snapshot holds, against the size of its JSON.
//!
//! A counting global allocator (the tests' own, `tests/support/mod.rs`)
//! records the bytes and blocks live after `Engine::update_json` minus those
//! live before (the JSON text itself is allocated before the first reading). malloc adds per block at least 8
//! bytes of header and rounds to 16, so the estimate of what the process
//! really holds is also printed. `bench/memory.rb` measures the same thing
//! from outside, as resident memory; this one says where it goes.
//!
//! Run: `cargo bench --locked -p forkflag_core --bench snapshot_size -- PAYLOAD.json...`
//! (`bench/memory.rb` writes its payload to the path it prints; without a
//! path, a small built-in payload is used). Each payload is measured in an
//! engine of its own, one after the other.

use forkflag_core::Engine;

/// The counting allocator of the tests; the measuring thread is the only
/// one that allocates during a measurement.
#[path = "../tests/support/mod.rs"]
mod support;

const BUILT_IN: &str = r#"{"version":2,"features":[
  {"name":"default","enabled":true,"strategies":[{"name":"default"}]},
  {"name":"rollout","enabled":true,"strategies":[{"name":"flexibleRollout",
    "parameters":{"rollout":"50","stickiness":"userId","groupId":"rollout"}}]}]}"#;

fn main() {
    let paths: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if paths.is_empty() {
        measure("(built in)", BUILT_IN.as_bytes());
    }
    for path in &paths {
        let json = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
        measure(path, &json);
    }
}

fn measure(path: &str, json: &[u8]) {
    let engine = Engine::new();
    let (bytes0, blocks0, held0) = support::live();
    let outcome = engine.update_json(json, None).expect("the payload loads");
    drop(outcome);
    let (bytes1, blocks1, held1) = support::live();
    let flags = engine.load().len().max(1) as f64;
    let kib = |b: isize| b as f64 / 1024.0;
    println!(
        "payload {}: {} flags, {:.0} KiB of JSON",
        path,
        flags,
        kib(json.len() as isize)
    );
    println!(
        "compiled snapshot: {:.0} KiB requested in {} blocks ({:.0} B/flag, {:.3} blocks/flag), \
         ~{:.0} KiB as malloc holds it",
        kib(bytes1 - bytes0),
        blocks1 - blocks0,
        (bytes1 - bytes0) as f64 / flags,
        (blocks1 - blocks0) as f64 / flags,
        kib(held1 - held0)
    );
    println!(
        "snapshot / JSON: {:.2}x requested, {:.2}x held (goal: at most 2x)",
        (bytes1 - bytes0) as f64 / json.len() as f64,
        (held1 - held0) as f64 / json.len() as f64
    );
}
