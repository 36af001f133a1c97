//! Giving back the heap that loading a payload freed.
//!
//! Reading a payload allocates several times its JSON in short-lived
//! values (the parsed document, the compiler's tables) and keeps only the
//! compiled snapshot: about 5 MiB freed per MiB of JSON. The C library's
//! allocator keeps freed memory for reuse, so it stays resident, and each
//! `fork` copies the page-table entries of every resident page: a forked
//! worker pays for a load's garbage as much as for live data (see
//! docs/PERFORMANCE.md, section 3). After a large load, [`after_update`]
//! drops the payload's bytes and hands the allocator's free pages back to
//! the kernel.

/// JSON size from which a load is followed by [`release_freed`]: below it,
/// what a load frees is small beside the cost of walking the heap.
pub const RELEASE_AFTER_BYTES: usize = 64 * 1024;

/// Returns the allocator's free pages to the kernel (glibc's
/// `malloc_trim(0)`: it walks every arena's free chunks, under each arena's
/// lock in turn). Does nothing with other C libraries.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and is safe to call from any
    // thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What [`after_update`] needs to know of a load's result: whether the
/// payload was read through (parsed and compiled), which is what leaves
/// freed heap behind. The engine's update result implements it.
pub trait Loaded {
    /// Whether the payload was read through (false for a payload identical
    /// to the current one, which is not parsed and frees nothing).
    fn read_through(&self) -> bool;
}

/// Called by whoever loaded `json` into an engine, with the update's
/// result: drops the bytes (when owned), then gives the freed heap back if
/// the payload was large and was read through.
pub fn after_update<B: AsRef<[u8]>>(json: B, result: &impl Loaded) {
    let len = json.as_ref().len();
    drop(json);
    if result.read_through() && len >= RELEASE_AFTER_BYTES {
        release_freed();
    }
}
