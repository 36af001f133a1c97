//! A small, fast random source for random stickiness and random rollout.
//!
//! Each thread keeps its own state, reseeded whenever the process's fork
//! generation changes, so forked children do not replay their parent's
//! sequence.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use super::fork;

thread_local! {
    static STATE: Cell<(u64, u64)> = const { Cell::new((u64::MAX, 0)) };
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let local = 0u8;
    let addr = &local as *const u8 as u64;
    let pid = std::process::id() as u64;
    let mut s = nanos ^ addr.rotate_left(32) ^ pid.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // splitmix64 to spread the bits.
    s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) | 1
}

/// A uniformly distributed number in `1..=max` (`max` > 0).
pub fn random_in(max: u32) -> u32 {
    ((next() >> 32) % u64::from(max)) as u32 + 1
}

/// 32 random bits.
pub fn random_u32() -> u32 {
    (next() >> 32) as u32
}

fn next() -> u64 {
    let generation = fork::generation();
    STATE.with(|cell| {
        let (seen, mut s) = cell.get();
        if seen != generation || s == 0 {
            s = seed();
        }
        // xorshift64*
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        cell.set((generation, s));
        s.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_in_range_and_covers_it() {
        let mut seen = [false; 10];
        for _ in 0..10_000 {
            let n = random_in(10);
            assert!((1..=10).contains(&n));
            seen[(n - 1) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
