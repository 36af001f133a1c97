//! How much heap a compiled snapshot holds, against the size of its JSON.
//!
//! A counting global allocator records the bytes and blocks live after
//! `Engine::update_json` minus those live before (the JSON text itself is
//! allocated before the first reading). malloc adds per block at least 8
//! bytes of header and rounds to 16, so the estimate of what the process
//! really holds is also printed. `bench/memory.rb` measures the same thing
//! from outside, as resident memory; this one says where it goes.
//!
//! Run: `cargo bench --locked -p forkflag_core --bench snapshot_size -- PAYLOAD.json...`
//! (`bench/memory.rb` writes its payload to the path it prints; without a
//! path, a small built-in payload is used). Each payload is measured in an
//! engine of its own, one after the other.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use forkflag_core::Engine;

struct Counting;

static BYTES: AtomicI64 = AtomicI64::new(0);
static BLOCKS: AtomicI64 = AtomicI64::new(0);
/// Bytes as malloc holds them: size + 8, rounded up to 16, at least 32.
static HELD: AtomicI64 = AtomicI64::new(0);

fn held(size: usize) -> i64 {
    (((size + 8).div_ceil(16) * 16).max(32)) as i64
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters are atomics that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        BYTES.fetch_add(layout.size() as i64, Relaxed);
        BLOCKS.fetch_add(1, Relaxed);
        HELD.fetch_add(held(layout.size()), Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        BYTES.fetch_sub(layout.size() as i64, Relaxed);
        BLOCKS.fetch_sub(1, Relaxed);
        HELD.fetch_sub(held(layout.size()), Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        BYTES.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        HELD.fetch_add(held(new_size) - held(layout.size()), Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn reading() -> (i64, i64, i64) {
    (
        BYTES.load(Relaxed),
        BLOCKS.load(Relaxed),
        HELD.load(Relaxed),
    )
}

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
    let (bytes0, blocks0, held0) = reading();
    let outcome = engine.update_json(json, None).expect("the payload loads");
    drop(outcome);
    let (bytes1, blocks1, held1) = reading();
    let flags = engine.load().len().max(1) as f64;
    let kib = |b: i64| b as f64 / 1024.0;
    println!(
        "payload {}: {} flags, {:.0} KiB of JSON",
        path,
        flags,
        kib(json.len() as i64)
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
