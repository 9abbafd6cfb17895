//! Label sets: canonical form, allocation-free hashing and comparison.
//!
//! A label set is a set of `key=value` pairs; order does not matter and a
//! repeated key keeps its last value. Stored sets are canonical (sorted by
//! key, keys unique). Incoming `&[(&str, &str)]` slices are looked up without
//! allocating: the hash is order-independent (a wrapping sum of per-pair
//! hashes) and equality is checked by binary search into the stored set.
//! Only a slice that repeats a key is canonicalised into a temporary vector.
//!
//! Keys and values longer than [`MAX_LABEL_LEN`] bytes are clipped (at a char
//! boundary) before anything else, so a caller cannot pin megabytes per
//! series; sets with more than [`MAX_LABELS`] pairs are not tracked (the
//! registry sends them to the overflow series).

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Longest key or value kept, in bytes.
pub const MAX_LABEL_LEN: usize = 256;
/// Most pairs per label set.
pub const MAX_LABELS: usize = 32;

/// Stored canonical label set.
pub type OwnedLabels = Box<[(Box<str>, Box<str>)]>;

/// `s` cut to at most [`MAX_LABEL_LEN`] bytes on a char boundary.
#[inline]
pub fn clip(s: &str) -> &str {
    if s.len() <= MAX_LABEL_LEN {
        return s;
    }
    let mut end = MAX_LABEL_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[inline]
fn pair_hash(k: &str, v: &str) -> u64 {
    let h = xxh3_64_with_seed(clip(v).as_bytes(), xxh3_64(clip(k).as_bytes()));
    // Spread before summing so that sums of similar hashes do not collide.
    (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// Order-independent hash of a label set with unique keys.
#[inline]
pub fn hash_labels(labels: &[(&str, &str)]) -> u64 {
    labels.iter().fold(labels.len() as u64, |acc, (k, v)| {
        acc.wrapping_add(pair_hash(k, v))
    })
}

/// Whether some key occurs twice (after clipping). Quadratic, for the short
/// slices labels are; callers bound the length by [`MAX_LABELS`].
#[inline]
pub fn has_duplicate_keys(labels: &[(&str, &str)]) -> bool {
    labels
        .iter()
        .enumerate()
        .any(|(i, (k, _))| labels[i + 1..].iter().any(|(k2, _)| clip(k) == clip(k2)))
}

/// Canonical borrowed form: clipped, sorted by key, last value per key.
pub fn canonical<'a>(labels: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(labels.len());
    // Reverse + stable sort + dedup keeps the last occurrence of each key.
    for &(k, v) in labels.iter().rev() {
        out.push((clip(k), clip(v)));
    }
    out.sort_by(|a, b| a.0.cmp(b.0));
    out.dedup_by(|later, earlier| later.0 == earlier.0);
    out
}

/// Owned canonical copy of a slice whose keys are unique.
pub fn to_owned_canonical(labels: &[(&str, &str)]) -> OwnedLabels {
    let mut v: Vec<(Box<str>, Box<str>)> = labels
        .iter()
        .map(|(k, v)| (clip(k).into(), clip(v).into()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_boxed_slice()
}

/// Set equality of a stored canonical set and a slice with unique keys.
#[inline]
pub fn equals(stored: &[(Box<str>, Box<str>)], labels: &[(&str, &str)]) -> bool {
    stored.len() == labels.len()
        && labels.iter().all(|(k, v)| {
            let (k, v) = (clip(k), clip(v));
            stored
                .binary_search_by(|(sk, _)| (**sk).cmp(k))
                .is_ok_and(|i| &*stored[i].1 == v)
        })
}

/// Borrowed view of a stored set, for lookups by an existing set.
pub fn borrow(stored: &[(Box<str>, Box<str>)]) -> Vec<(&str, &str)> {
    stored.iter().map(|(k, v)| (&**k, &**v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_independent_and_last_value_wins() {
        let a = [("a", "1"), ("b", "2")];
        let b = [("b", "2"), ("a", "1")];
        assert_eq!(hash_labels(&a), hash_labels(&b));
        assert_ne!(hash_labels(&a), hash_labels(&[("a", "2"), ("b", "1")]));
        assert!(has_duplicate_keys(&[("a", "1"), ("a", "2")]));
        assert!(!has_duplicate_keys(&a));
        assert_eq!(
            canonical(&[("b", "x"), ("a", "1"), ("b", "y")]),
            vec![("a", "1"), ("b", "y")]
        );
        let stored = to_owned_canonical(&b);
        assert!(equals(&stored, &a));
        assert!(!equals(&stored, &[("a", "1")]));
        assert!(!equals(&stored, &[("a", "1"), ("b", "3")]));
    }

    #[test]
    fn clip_respects_char_boundaries() {
        let s = "é".repeat(200); // 400 bytes
        let c = clip(&s);
        assert_eq!(c.len(), 256);
        assert!(c.chars().all(|ch| ch == 'é'));
        let s = format!("a{}", "é".repeat(200)); // boundary falls mid-char
        assert_eq!(clip(&s).len(), 255);
    }
}
