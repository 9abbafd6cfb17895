//! Scrubs every free-text value on its way to the sinks.
//!
//! String attribute values, log bodies and error messages may carry PII or
//! secrets the instrumented program never meant to export. The scrubber's
//! clean fast path returns the input unchanged, so clean text costs one scan.
//!
//! Most attribute values repeat from record to record (the statement of a
//! hot query, `sqlite`, the table name): values found clean are remembered
//! (bounded), and a remembered value skips the scan. The scrubber is a pure
//! function of the text, so a value clean once is clean every time.

use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use crate::flusher::Processor;
use crate::record::{AttrValue, Attributes, Record};
use crate::scrub::Scrubber;

/// Values remembered as clean, at most this many (then the memory starts over)...
const CLEAN_MAX_ENTRIES: usize = 4096;
/// ...each at most this long (long texts rarely repeat exactly).
const CLEAN_MAX_LEN: usize = 4096;

pub struct Redactor {
    scrubber: Arc<Scrubber>,
    clean: HashSet<Box<str>, WordHash>,
}

/// A word-at-a-time multiplicative hash with a per-process random seed: SipHash
/// cost more than the scans it saved. Values come from the program, so the
/// seed keeps collisions from being chosen in advance; the worst a collision
/// can do is slow this memory down, and it is bounded.
#[derive(Clone, Copy)]
struct WordHash(u64);

impl WordHash {
    fn new() -> Self {
        WordHash(std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1)
    }
}

impl BuildHasher for WordHash {
    type Hasher = WordHasher;
    fn build_hasher(&self) -> WordHasher {
        WordHasher(self.0)
    }
}

struct WordHasher(u64);

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        let h = self.0;
        (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (h >> 32)
    }
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(tail) ^ (bytes.len() as u64)).wrapping_mul(K);
    }
}

impl Redactor {
    pub fn new(scrubber: Arc<Scrubber>) -> Self {
        Self { scrubber, clean: HashSet::with_hasher(WordHash::new()) }
    }

    fn scrub_in_place(&mut self, text: &mut String) {
        if self.clean.contains(text.as_str()) {
            return;
        }
        match self.scrubber.scrub(text) {
            Cow::Owned(clean) => *text = clean,
            Cow::Borrowed(_) if text.len() <= CLEAN_MAX_LEN => {
                if self.clean.len() >= CLEAN_MAX_ENTRIES {
                    self.clean.clear();
                }
                self.clean.insert(text.as_str().into());
            }
            Cow::Borrowed(_) => {}
        }
    }

    fn scrub_attributes(&mut self, attributes: &mut Attributes) {
        for (_, value) in attributes.iter_mut() {
            if let AttrValue::Str(text) = value {
                self.scrub_in_place(text);
            }
        }
    }
}

impl Processor for Redactor {
    fn name(&self) -> &str {
        "redact"
    }

    fn process(&mut self, batch: &mut Vec<Record>) {
        for record in batch.iter_mut() {
            match record {
                Record::Span(span) => self.scrub_attributes(&mut span.attributes),
                Record::Log(log) => {
                    self.scrub_in_place(&mut log.body);
                    self.scrub_attributes(&mut log.attributes);
                }
                // Metric labels and reward fields are bounded identifiers, not free text.
                Record::Metric(_) | Record::Reward(_) => {}
            }
        }
    }
}
