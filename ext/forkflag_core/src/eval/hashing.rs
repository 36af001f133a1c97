//! Stickiness hashing: MurmurHash3 (x86, 32-bit) over `"<group>:<id>"`.
//!
//! The input is fed in pieces so the joined string is never allocated.

/// Seed used by rollout strategies.
pub const STRATEGY_SEED: u32 = 0;
/// Seed used to pick a variant.
pub const VARIANT_SEED: u32 = 86_028_157;

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// Incremental MurmurHash3 x86_32.
struct Murmur3 {
    h: u32,
    tail: [u8; 4],
    tail_len: usize,
    total: usize,
}

impl Murmur3 {
    fn new(seed: u32) -> Self {
        Murmur3 {
            h: seed,
            tail: [0; 4],
            tail_len: 0,
            total: 0,
        }
    }

    #[inline]
    fn mix_block(&mut self, k: u32) {
        let k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        self.h ^= k;
        self.h = self
            .h
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
    }

    fn write(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len();
        if self.tail_len > 0 {
            let take = (4 - self.tail_len).min(bytes.len());
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&bytes[..take]);
            self.tail_len += take;
            bytes = &bytes[take..];
            if self.tail_len < 4 {
                return;
            }
            let k = u32::from_le_bytes(self.tail);
            self.mix_block(k);
            self.tail_len = 0;
        }
        let mut chunks = bytes.chunks_exact(4);
        for chunk in &mut chunks {
            let k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            self.mix_block(k);
        }
        let rest = chunks.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    fn finish(mut self) -> u32 {
        if self.tail_len > 0 {
            let mut k: u32 = 0;
            for i in (0..self.tail_len).rev() {
                k = (k << 8) | u32::from(self.tail[i]);
            }
            let k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
            self.h ^= k;
        }
        // The length is mixed in as a 32-bit value, as the reference does.
        let mut h = self.h ^ (self.total as u32);
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^= h >> 16;
        h
    }
}

/// MurmurHash3 x86_32 of `group + ":" + id`.
pub fn murmur3_joined(group: &str, id: &str, seed: u32) -> u32 {
    let mut m = Murmur3::new(seed);
    m.write(group.as_bytes());
    m.write(b":");
    m.write(id.as_bytes());
    m.finish()
}

/// A number in `1..=modulus` that is stable for a group and id.
///
/// `modulus` must be non-zero.
#[inline]
pub fn normalized(group: &str, id: &str, modulus: u32, seed: u32) -> u32 {
    murmur3_joined(group, id, seed) % modulus + 1
}

/// MurmurHash3 x86_32 of a single byte string (used by tests and tools).
pub fn murmur3(bytes: &[u8], seed: u32) -> u32 {
    let mut m = Murmur3::new(seed);
    m.write(bytes);
    m.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_vectors() {
        // Published MurmurHash3_x86_32 test vectors.
        assert_eq!(murmur3(b"", 0), 0);
        assert_eq!(murmur3(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3(b"", 0xffff_ffff), 0x81f1_6f39);
        assert_eq!(murmur3(b"\xff\xff\xff\xff", 0), 0x7629_3b50);
        assert_eq!(murmur3(b"\x21\x43\x65\x87", 0), 0xf55b_516b);
        assert_eq!(murmur3(b"\x21\x43\x65", 0), 0x7e4a_8634);
        assert_eq!(murmur3(b"\x21\x43", 0), 0xa0f7_b07a);
        assert_eq!(murmur3(b"\x21", 0), 0x7266_1cf4);
        assert_eq!(murmur3(b"Hello, world!", 1234), 0xfaf6_cdb3);
        assert_eq!(
            murmur3(b"The quick brown fox jumps over the lazy dog", 0x9747_b28c),
            0x2fa8_26cd
        );
    }

    #[test]
    fn pieces_hash_like_the_joined_string() {
        for (g, i) in [
            ("", ""),
            ("a", "b"),
            ("flag", "123"),
            ("abc", "defgh"),
            ("ü", "ß✓"),
        ] {
            let joined = format!("{g}:{i}");
            assert_eq!(murmur3_joined(g, i, 7), murmur3(joined.as_bytes(), 7));
        }
    }

    #[test]
    fn normalized_is_in_range() {
        for i in 0..1000 {
            let n = normalized("group", &i.to_string(), 100, STRATEGY_SEED);
            assert!((1..=100).contains(&n));
        }
    }
}
