//! Thread-safe LRU cache of normalised statements, keyed by (dialect, text).
//!
//! Applications repeat a small set of statement texts, so the hot path is a
//! hash lookup plus an `Arc` clone. Bounded both by entry count and by an
//! approximate byte total (statement text + normalised result), so one huge
//! statement cannot pin unbounded memory; an entry larger than the byte
//! budget is returned but not cached.
//!
//! Layout: a slab of entries linked into a recency list, and a map from the
//! 64-bit xxh3 of (dialect, text) to the slab index. A lookup compares the
//! stored text too, so a hash collision is a miss, never a wrong answer.
//! Normalisation runs outside the lock.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use parking_lot::Mutex;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::dialect::Dialect;
use super::normalize::{normalize, Normalized};

/// Counters and current occupancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub entries: usize,
    pub bytes: usize,
}

/// Keys are already xxh3 outputs; hashing them again would be wasted work.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

const NIL: usize = usize::MAX;

struct Entry {
    hash: u64,
    dialect: Dialect,
    sql: Box<str>,
    value: Arc<Normalized>,
    bytes: usize,
    prev: usize,
    next: usize,
}

struct Inner {
    map: HashMap<u64, usize, BuildHasherDefault<IdentityHasher>>,
    slab: Vec<Option<Entry>>,
    free: Vec<usize>,
    head: usize, // most recently used
    tail: usize, // least recently used
    stats: CacheStats,
}

impl Inner {
    fn unlink(&mut self, i: usize) {
        let (prev, next) = match self.slab.get(i).and_then(Option::as_ref) {
            Some(e) => (e.prev, e.next),
            None => return,
        };
        if prev != NIL {
            if let Some(Some(p)) = self.slab.get_mut(prev) {
                p.next = next;
            }
        } else {
            self.head = next;
        }
        if next != NIL {
            if let Some(Some(n)) = self.slab.get_mut(next) {
                n.prev = prev;
            }
        } else {
            self.tail = prev;
        }
    }

    fn push_front(&mut self, i: usize) {
        let old = self.head;
        if let Some(Some(e)) = self.slab.get_mut(i) {
            e.prev = NIL;
            e.next = old;
        }
        if old != NIL {
            if let Some(Some(o)) = self.slab.get_mut(old) {
                o.prev = i;
            }
        } else {
            self.tail = i;
        }
        self.head = i;
    }

    fn evict_lru(&mut self) -> bool {
        let t = self.tail;
        if t == NIL {
            return false;
        }
        self.unlink(t);
        if let Some(e) = self.slab.get_mut(t).and_then(Option::take) {
            self.map.remove(&e.hash);
            self.stats.bytes -= e.bytes;
            self.stats.entries -= 1;
            self.stats.evictions += 1;
        }
        self.free.push(t);
        true
    }
}

/// LRU statement cache; all methods take `&self`.
pub struct StatementCache {
    max_entries: usize,
    max_bytes: usize,
    inner: Mutex<Inner>,
}

fn key_hash(sql: &str, dialect: Dialect) -> u64 {
    xxh3_64_with_seed(sql.as_bytes(), dialect as u64 + 1)
}

impl StatementCache {
    /// A cache holding at most `max_entries` statements and about `max_bytes`
    /// bytes (statement text + normalised result). Zero disables caching.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        StatementCache {
            max_entries,
            max_bytes,
            inner: Mutex::new(Inner {
                map: HashMap::default(),
                slab: Vec::new(),
                free: Vec::new(),
                head: NIL,
                tail: NIL,
                stats: CacheStats::default(),
            }),
        }
    }

    /// The normalised statement, from the cache or computed (and cached).
    pub fn get_or_normalize(&self, sql: &str, dialect: Dialect) -> Arc<Normalized> {
        let h = key_hash(sql, dialect);
        {
            let mut g = self.inner.lock();
            if let Some(&i) = g.map.get(&h) {
                let hit = match g.slab.get(i).and_then(Option::as_ref) {
                    Some(e) if e.dialect == dialect && &*e.sql == sql => Some(e.value.clone()),
                    _ => None,
                };
                if let Some(v) = hit {
                    g.stats.hits += 1;
                    if g.head != i {
                        g.unlink(i);
                        g.push_front(i);
                    }
                    return v;
                }
            }
            g.stats.misses += 1;
        }

        let value = Arc::new(normalize(sql, dialect));
        let bytes = sql.len() + value.approx_bytes() + std::mem::size_of::<Entry>() + 16;
        if self.max_entries == 0 || bytes > self.max_bytes {
            return value;
        }

        let mut g = self.inner.lock();
        if let Some(&i) = g.map.get(&h) {
            // Another thread inserted meanwhile, or a hash collision: keep the
            // resident entry (a collision simply stays uncached).
            if let Some(e) = g.slab.get(i).and_then(Option::as_ref) {
                if e.dialect == dialect && &*e.sql == sql {
                    return e.value.clone();
                }
            }
            return value;
        }
        while g.stats.entries >= self.max_entries || g.stats.bytes + bytes > self.max_bytes {
            if !g.evict_lru() {
                break;
            }
        }
        let entry = Entry {
            hash: h,
            dialect,
            sql: sql.into(),
            value: value.clone(),
            bytes,
            prev: NIL,
            next: NIL,
        };
        let i = match g.free.pop() {
            Some(i) => {
                g.slab[i] = Some(entry);
                i
            }
            None => {
                g.slab.push(Some(entry));
                g.slab.len() - 1
            }
        };
        g.map.insert(h, i);
        g.push_front(i);
        g.stats.entries += 1;
        g.stats.bytes += bytes;
        value
    }

    /// Snapshot of the counters.
    pub fn stats(&self) -> CacheStats {
        self.inner.lock().stats
    }
}

impl std::fmt::Debug for StatementCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatementCache")
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_misses_and_lru_eviction_by_count() {
        let c = StatementCache::new(2, 1 << 20);
        let a = c.get_or_normalize("SELECT 1", Dialect::Sqlite);
        let a2 = c.get_or_normalize("SELECT 1", Dialect::Sqlite);
        assert!(Arc::ptr_eq(&a, &a2));
        // Same text, other dialect: separate entry.
        c.get_or_normalize("SELECT 1", Dialect::Mysql);
        // Touch sqlite entry so the mysql one is LRU.
        c.get_or_normalize("SELECT 1", Dialect::Sqlite);
        c.get_or_normalize("SELECT 2", Dialect::Sqlite);
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.evictions, s.entries), (2, 3, 1, 2));
        let again = c.get_or_normalize("SELECT 1", Dialect::Sqlite);
        assert!(Arc::ptr_eq(&a, &again), "MRU entry must survive eviction");
        assert_eq!(c.stats().hits, 3);
        c.get_or_normalize("SELECT 1", Dialect::Mysql);
        assert_eq!(c.stats().misses, 4, "LRU entry was evicted");
    }

    #[test]
    fn bounded_by_bytes() {
        let c = StatementCache::new(1000, 4096);
        for i in 0..100 {
            c.get_or_normalize(
                &format!("SELECT {i} FROM t WHERE x = 'some padding text here'"),
                Dialect::Generic,
            );
            assert!(c.stats().bytes <= 4096);
        }
        let s = c.stats();
        assert!(s.entries < 100 && s.entries > 0, "{s:?}");
        assert_eq!(s.evictions as usize + s.entries, 100);
        // Too big for the whole budget: returned, not cached.
        let big = "SELECT ".to_string() + &"x, ".repeat(3000) + "y";
        let r = c.get_or_normalize(&big, Dialect::Generic);
        assert_eq!(r.operation, "SELECT");
        assert!(c.stats().bytes <= 4096);
    }

    #[test]
    fn zero_capacity_never_caches() {
        let c = StatementCache::new(0, 0);
        c.get_or_normalize("SELECT 1", Dialect::Generic);
        c.get_or_normalize("SELECT 1", Dialect::Generic);
        assert_eq!(
            c.stats(),
            CacheStats {
                hits: 0,
                misses: 2,
                evictions: 0,
                entries: 0,
                bytes: 0
            }
        );
    }

    #[test]
    fn concurrent_use_is_consistent() {
        let c = Arc::new(StatementCache::new(64, 1 << 20));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        let n = c.get_or_normalize(
                            &format!("SELECT * FROM t{} WHERE id = {}", (i + t) % 100, i),
                            Dialect::Postgresql,
                        );
                        assert!(n.text.starts_with("SELECT * FROM t"));
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().expect("thread");
        }
        let s = c.stats();
        assert_eq!(s.hits + s.misses, 2000);
        assert!(s.entries <= 64);
    }
}
