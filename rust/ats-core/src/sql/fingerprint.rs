//! Fingerprint primitives: per-token keys, the AIR id, and the rolling hash
//! used to spot repeated list elements.
//!
//! Definition of `air_id` (version [`FINGERPRINT_VERSION`]):
//!
//! 1. The normaliser reduces the statement to a token stream (comments and
//!    whitespace gone, IN-lists / VALUES rows collapsed, trailing `;` dropped).
//! 2. Each token gets a 64-bit key `xxh3_64_with_seed(bytes, tag)`:
//!    * every literal and every placeholder: tag [`TAG_PARAM`], no bytes, so
//!      `42`, `'x'`, `?`, `$1`, `%s`, `:name` are one and the same token;
//!    * unquoted words (keywords and identifiers): tag [`TAG_WORD`], bytes
//!      ASCII-lower-cased (SQL folds unquoted names);
//!    * quoted identifiers: tag [`TAG_WORD`], the bytes between the quotes,
//!      case kept (so `"users"` is `users`, and `"Users"` is not);
//!    * operators and punctuation: tag [`TAG_OP`], bytes (`!=` keyed as `<>`).
//!
//!    Because every token is hashed on its own, with its kind as the seed,
//!    no two different streams can produce the same key sequence by
//!    shifting a boundary (`ab c` vs `a bc`).
//! 3. `air_id = xxh3_64(version_le32 ‖ key_0_le64 ‖ key_1_le64 ‖ ...)`.
//!
//! Any change to these rules, to what the normaliser emits, or to the lexer
//! that changes a stream must bump [`FINGERPRINT_VERSION`]; the golden vectors
//! in `tests/golden/fingerprints.json` pin the current definition.

use xxhash_rust::xxh3::{xxh3_64_with_seed, Xxh3};

/// Version of the fingerprint definition (part of every `air_id`).
pub const FINGERPRINT_VERSION: u32 = 1;

pub(crate) const TAG_WORD: u64 = 0x5744; // "WD"
pub(crate) const TAG_PARAM: u64 = 0x5052; // "PR"
pub(crate) const TAG_OP: u64 = 0x4f50; // "OP"

#[inline]
pub(crate) fn param_key() -> u64 {
    xxh3_64_with_seed(b"", TAG_PARAM)
}

#[inline]
pub(crate) fn op_key(op: &str) -> u64 {
    let canon: &[u8] = match op {
        "!=" => b"<>",
        "==" => b"=",
        other => other.as_bytes(),
    };
    xxh3_64_with_seed(canon, TAG_OP)
}

/// Key of an unquoted word: ASCII case folded (non-ASCII kept as written).
#[inline]
pub(crate) fn word_key(word: &str, scratch: &mut Vec<u8>) -> u64 {
    let b = word.as_bytes();
    if !b.iter().any(u8::is_ascii_uppercase) {
        return xxh3_64_with_seed(b, TAG_WORD);
    }
    scratch.clear();
    scratch.extend(b.iter().map(u8::to_ascii_lowercase));
    xxh3_64_with_seed(scratch, TAG_WORD)
}

/// Key of a quoted identifier's content (case kept).
#[inline]
pub(crate) fn quoted_key(content: &str) -> u64 {
    xxh3_64_with_seed(content.as_bytes(), TAG_WORD)
}

/// Final AIR id over a key sequence.
pub(crate) fn air_id<I: IntoIterator<Item = u64>>(keys: I) -> u64 {
    let mut h = Xxh3::new();
    h.update(&FINGERPRINT_VERSION.to_le_bytes());
    // Batch keys to keep per-update overhead low on long statements.
    let mut buf = [0u8; 256];
    let mut n = 0;
    for k in keys {
        buf[n..n + 8].copy_from_slice(&k.to_le_bytes());
        n += 8;
        if n == buf.len() {
            h.update(&buf);
            n = 0;
        }
    }
    h.update(&buf[..n]);
    h.digest()
}

/// Polynomial rolling hash modulo the Mersenne prime 2^61-1, used only to
/// compare list elements in O(1) (never part of the published fingerprint).
pub(crate) const ROLL_MOD: u64 = (1u64 << 61) - 1;
pub(crate) const ROLL_BASE: u64 = 0x0f3a_59c2_b7e4_d1a5 % ROLL_MOD;

#[inline]
pub(crate) fn mulmod(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    let r = (p as u64 & ROLL_MOD) + (p >> 61) as u64;
    let r = (r & ROLL_MOD) + (r >> 61);
    if r >= ROLL_MOD {
        r - ROLL_MOD
    } else {
        r
    }
}

#[inline]
pub(crate) fn roll_push(prefix: u64, key: u64) -> u64 {
    let v = mulmod(prefix, ROLL_BASE) + (key % ROLL_MOD) + 1;
    let v = (v & ROLL_MOD) + (v >> 61);
    if v >= ROLL_MOD {
        v - ROLL_MOD
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulmod_matches_u128_reference() {
        for (a, b) in [
            (0u64, 5u64),
            (ROLL_MOD - 1, ROLL_MOD - 1),
            (123456789, 987654321),
            (1 << 60, 3),
        ] {
            let want = ((a as u128 * b as u128) % ROLL_MOD as u128) as u64;
            assert_eq!(mulmod(a, b), want);
        }
    }

    #[test]
    fn word_key_folds_ascii_case_only() {
        let mut s = Vec::new();
        assert_eq!(word_key("Users", &mut s), word_key("users", &mut s));
        assert_eq!(word_key("users", &mut s), quoted_key("users"));
        assert_ne!(word_key("users", &mut s), quoted_key("Users"));
        assert_ne!(word_key("a", &mut s), op_key("a"));
        assert_eq!(op_key("!="), op_key("<>"));
    }
}
