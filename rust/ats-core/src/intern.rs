//! Process-wide numbering of values that many records repeat (normalised
//! statements, the constant strings of a driver record), so a record can
//! carry a 4-byte id instead: the app thread encodes less, the flusher copies
//! less, and both read the same value.
//!
//! Ids are never reused or forgotten (a record in the ring may name one at
//! any time), so a table is bounded: past [`MAX_IDS`] values or its byte
//! budget, [`InternTable::intern`] answers `None` and the caller carries the
//! value inline. Readers (the flusher) take no lock: slots are write-once.
//! Only assigning a new id takes the mutex, once per distinct value.

use std::collections::HashMap;
use std::sync::OnceLock;

use parking_lot::Mutex;

const CHUNK: usize = 256;
const CHUNKS: usize = 64;

/// Values numbered at most per table (chunks of 256 slots, allocated as needed).
pub const MAX_IDS: usize = CHUNKS * CHUNK;

type Chunk<T> = [OnceLock<T>; CHUNK];

pub struct InternTable<T> {
    chunks: [OnceLock<Box<Chunk<T>>>; CHUNKS],
    max_bytes: usize,
    assign: Mutex<Option<Assigned>>,
}

struct Assigned {
    /// Ids by the caller's hash of the value; equal hashes are told apart by `same`.
    by_hash: HashMap<u64, Vec<u32>>,
    count: usize,
    bytes: usize,
}

impl<T> InternTable<T> {
    /// An empty table holding values of about `max_bytes` in all.
    pub const fn new(max_bytes: usize) -> Self {
        InternTable { chunks: [const { OnceLock::new() }; CHUNKS], max_bytes, assign: Mutex::new(None) }
    }

    /// The value numbered `id`, if any.
    pub fn get(&self, id: u32) -> Option<&T> {
        let id = id as usize;
        self.chunks.get(id / CHUNK)?.get()?[id % CHUNK].get()
    }

    /// The id of the value `same` recognises among those hashed `hash`, or a
    /// new id for `make()` (counted as `bytes`); `None` once the table is full.
    pub fn intern(&self, hash: u64, same: impl Fn(&T) -> bool, make: impl FnOnce() -> T, bytes: usize) -> Option<u32> {
        let mut guard = self.assign.lock();
        let assigned = guard.get_or_insert_with(|| Assigned { by_hash: HashMap::new(), count: 0, bytes: 0 });
        let found = assigned.by_hash.get(&hash).and_then(|ids| ids.iter().find(|&&id| self.get(id).is_some_and(&same)));
        if let Some(&id) = found {
            return Some(id);
        }
        let id = assigned.count;
        if id >= MAX_IDS || assigned.bytes + bytes > self.max_bytes {
            return None;
        }
        let chunk = self.chunks[id / CHUNK].get_or_init(|| Box::new([const { OnceLock::new() }; CHUNK]));
        // The slot is filled before the id is handed out, so a reader never sees it empty.
        if chunk[id % CHUNK].set(make()).is_err() {
            return None;
        }
        assigned.count += 1;
        assigned.bytes += bytes;
        let id = id as u32;
        assigned.by_hash.entry(hash).or_default().push(id);
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_an_id_and_a_full_table_says_none() {
        let t: InternTable<String> = InternTable::new(10);
        let a = t.intern(1, |v| v == "abc", || "abc".into(), 3).unwrap();
        assert_eq!(t.intern(1, |v| v == "abc", || unreachable!(), 3), Some(a));
        // a hash collision with another value gets its own id
        let b = t.intern(1, |v| v == "xyz", || "xyz".into(), 3).unwrap();
        assert_ne!(a, b);
        assert_eq!((t.get(a).unwrap().as_str(), t.get(b).unwrap().as_str()), ("abc", "xyz"));
        assert_eq!(t.intern(2, |v| v == "long", || "long".into(), 5), None, "over the byte budget");
        assert!(t.get(u32::MAX).is_none() && t.get(b + 1).is_none());
    }
}
