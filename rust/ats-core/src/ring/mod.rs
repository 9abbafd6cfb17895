//! Bounded multi-producer single-consumer byte ring.
//!
//! Producers (application threads) never block, never allocate and never take
//! a lock: a push either lands in the ring or is dropped and counted by
//! [`DropReason`]. The single consumer is the flusher thread.
//!
//! # Design
//!
//! The ring is one allocation of `capacity` bytes (a power of two), made at
//! construction, viewed as 64-bit words. Two monotonically increasing byte
//! positions index it: `head` (next byte to reserve, advanced by producers
//! with a CAS) and `tail` (first byte not yet released by the consumer).
//! Bit 63 of `head` is the *closed* flag, so closing and reserving are
//! ordered by the same atomic: after [`Ring::close`] no reservation can
//! succeed, and everything reserved before it is in `[tail, head)`.
//!
//! A record occupies a *slot*: an 8-byte header word followed by the payload
//! padded to 8 bytes. The header is `len | state << 32`; state 0 means
//! "reserved but not committed yet", 1 a committed record, 2 padding to skip.
//! A slot never wraps: if it does not fit before the end of the buffer, the
//! same reservation also covers the remainder of the buffer, which becomes a
//! padding slot.
//!
//! Producer: CAS-reserve → write payload → store header with `Release`.
//! Consumer: load the header at `tail` with `Acquire`; state 0 means the
//! producer of that slot is still writing (or stalled), so the consumer stops
//! there and resumes from the same place next time — a stalled producer
//! delays, but never corrupts, the records behind it.
//!
//! The invariant that makes this work is that every byte in the free region
//! is zero, so a header position that nobody has committed yet reads as state
//! 0 even if a previous lap left payload bytes there. The consumer restores it
//! by zeroing what it has consumed before releasing it (`tail` store,
//! `Release`), and producers read `tail` with `Acquire` before reserving.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;

use crossbeam_utils::CachePadded;

const CLOSED: u64 = 1 << 63;
const STATE_RECORD: u64 = 1;
const STATE_PAD: u64 = 2;
const MIN_CAPACITY: usize = 4096;
const MAX_CAPACITY: usize = 1 << 40;

/// Why a push did not land in the ring. Labels `ats_dropped_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not enough free bytes right now.
    Full,
    /// Larger than half the ring; could never fit reliably.
    TooLarge,
    /// The ring was closed (shutdown, or abandoned after fork).
    Closed,
}

impl DropReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Full => "ring_full",
            DropReason::TooLarge => "too_large",
            DropReason::Closed => "closed",
        }
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of the ring's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingStats {
    pub capacity_bytes: usize,
    /// Records committed by producers.
    pub pushed: u64,
    /// Records handed to the consumer.
    pub drained: u64,
    pub dropped_full: u64,
    pub dropped_too_large: u64,
    pub dropped_closed: u64,
    /// Reservations whose writer panicked; their slot is skipped.
    pub aborted_writes: u64,
    /// Most bytes ever in use (slot headers and padding included).
    pub high_water_bytes: usize,
    pub len_bytes: usize,
}

impl RingStats {
    pub fn dropped_total(&self) -> u64 {
        self.dropped_full + self.dropped_too_large + self.dropped_closed
    }
}

/// The bounded MPSC byte ring. `Send + Sync`; share it with `Arc`.
pub struct Ring {
    words: Box<[AtomicU64]>,
    cap: u64,
    mask: u64,
    max_record: usize,
    head: CachePadded<AtomicU64>,
    tail: CachePadded<AtomicU64>,
    pushed: CachePadded<AtomicU64>,
    high_water: CachePadded<AtomicU64>,
    dropped_full: AtomicU64,
    dropped_too_large: AtomicU64,
    dropped_closed: AtomicU64,
    aborted: AtomicU64,
    drained: AtomicU64,
    consumer_busy: AtomicBool,
    wake_threshold: AtomicU64,
    wake_armed: AtomicBool,
    waiter: OnceLock<Thread>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("stats", &self.stats())
            .finish()
    }
}

#[inline]
const fn align8(n: usize) -> usize {
    (n + 7) & !7
}

impl Ring {
    /// A ring of `capacity_bytes` rounded up to a power of two within
    /// [4 KiB, 1 TiB]. The memory is allocated (zeroed, so untouched pages stay
    /// virtual) once, here.
    pub fn new(capacity_bytes: usize) -> Ring {
        let cap = capacity_bytes
            .clamp(MIN_CAPACITY, MAX_CAPACITY)
            .next_power_of_two();
        Ring {
            words: zeroed_words(cap / 8),
            cap: cap as u64,
            mask: cap as u64 - 1,
            // A slot of at most half the ring always fits in an empty ring,
            // even behind a padding slot.
            max_record: (cap / 2 - 8).min(u32::MAX as usize),
            head: CachePadded::new(AtomicU64::new(0)),
            tail: CachePadded::new(AtomicU64::new(0)),
            pushed: CachePadded::new(AtomicU64::new(0)),
            high_water: CachePadded::new(AtomicU64::new(0)),
            dropped_full: AtomicU64::new(0),
            dropped_too_large: AtomicU64::new(0),
            dropped_closed: AtomicU64::new(0),
            aborted: AtomicU64::new(0),
            drained: AtomicU64::new(0),
            consumer_busy: AtomicBool::new(false),
            wake_threshold: AtomicU64::new(u64::MAX),
            wake_armed: AtomicBool::new(false),
            waiter: OnceLock::new(),
        }
    }

    /// Maps every page of the ring now (an atomic add of zero per page: a
    /// write to the OS, no change to the contents, safe while producers and
    /// the consumer run). Without it the first lap of the ring takes a page
    /// fault every 4 KiB on whichever thread writes there.
    pub fn prefault(&self) {
        const WORDS_PER_PAGE: usize = 4096 / 8;
        for word in self.words.iter().step_by(WORDS_PER_PAGE) {
            word.fetch_add(0, Ordering::Relaxed);
        }
    }

    pub fn capacity_bytes(&self) -> usize {
        self.cap as usize
    }

    /// Largest payload [`push`](Self::push) accepts.
    pub fn max_record_len(&self) -> usize {
        self.max_record
    }

    /// Copies `record` into the ring.
    pub fn push(&self, record: &[u8]) -> Result<(), DropReason> {
        self.push_with(record.len(), |buf| buf.copy_from_slice(record))
    }

    /// Reserves `len` bytes and lets `write` fill them in place (encode
    /// straight into the ring). `write` gets exactly `len` bytes, all zero.
    /// If `write` panics the slot is turned into padding (counted as
    /// `aborted_writes`) and the panic continues.
    pub fn push_with(&self, len: usize, write: impl FnOnce(&mut [u8])) -> Result<(), DropReason> {
        if len > self.max_record {
            self.dropped_too_large.fetch_add(1, Ordering::Relaxed);
            return Err(DropReason::TooLarge);
        }
        let slot = 8 + align8(len) as u64;
        let mut h = self.head.load(Ordering::Relaxed);
        let (start, need, used) = loop {
            if h & CLOSED != 0 {
                self.dropped_closed.fetch_add(1, Ordering::Relaxed);
                return Err(DropReason::Closed);
            }
            let t = self.tail.load(Ordering::Acquire);
            let to_end = self.cap - (h & self.mask);
            let need = if slot <= to_end { slot } else { to_end + slot };
            // `t` may be newer than a stale `h`; the CAS below then fails.
            let used = h.saturating_sub(t);
            if used + need > self.cap {
                // Re-check: a stale `h` must not report Full spuriously.
                let h2 = self.head.load(Ordering::Relaxed);
                if h2 != h {
                    h = h2;
                    continue;
                }
                self.dropped_full.fetch_add(1, Ordering::Relaxed);
                return Err(DropReason::Full);
            }
            match self
                .head
                .compare_exchange_weak(h, h + need, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break (h, need, used + need),
                Err(actual) => {
                    h = actual;
                    std::hint::spin_loop();
                }
            }
        };

        let mut idx = (start & self.mask) as usize;
        if need != slot {
            // Pad to the end of the buffer; the record starts at offset 0.
            let pad = (self.cap as usize) - idx;
            self.header(idx)
                .store(pad as u64 | STATE_PAD << 32, Ordering::Release);
            idx = 0;
        }

        // Commit as padding if `write` unwinds, so the consumer is not wedged.
        struct Abort<'r> {
            ring: &'r Ring,
            idx: usize,
            slot: u64,
            armed: Cell<bool>,
        }
        impl Drop for Abort<'_> {
            fn drop(&mut self) {
                if self.armed.get() {
                    self.ring.aborted.fetch_add(1, Ordering::Relaxed);
                    self.ring
                        .header(self.idx)
                        .store(self.slot | STATE_PAD << 32, Ordering::Release);
                }
            }
        }
        let guard = Abort {
            ring: self,
            idx,
            slot,
            armed: Cell::new(true),
        };
        // SAFETY: [idx + 8, idx + 8 + len) lies inside the buffer (slots never
        // wrap) and inside our reservation, which no other producer can
        // reserve and the consumer does not read before the header commit.
        let payload = unsafe { std::slice::from_raw_parts_mut(self.base().add(idx + 8), len) };
        write(payload);
        guard.armed.set(false);
        self.header(idx)
            .store(len as u64 | STATE_RECORD << 32, Ordering::Release);

        self.pushed.fetch_add(1, Ordering::Relaxed);
        if used > self.high_water.load(Ordering::Relaxed) {
            self.high_water.fetch_max(used, Ordering::Relaxed);
        }
        if used >= self.wake_threshold.load(Ordering::Relaxed)
            && self.wake_armed.load(Ordering::Relaxed)
            && self.wake_armed.swap(false, Ordering::AcqRel)
        {
            if let Some(t) = self.waiter.get() {
                t.unpark();
            }
        }
        Ok(())
    }

    /// Drains committed records in order, handing each payload to `f`, until
    /// `max_bytes` of payload have been handed over, the ring is empty, or an
    /// uncommitted slot is reached. Returns the number of records drained.
    ///
    /// Single consumer: a concurrent second call returns 0 immediately.
    pub fn drain(&self, max_bytes: usize, f: impl FnMut(&[u8])) -> usize {
        self.drain_bounded(max_bytes, usize::MAX, f)
    }

    /// [`drain`](Self::drain) that also stops after `max_records` records.
    pub fn drain_bounded(
        &self,
        max_bytes: usize,
        max_records: usize,
        mut f: impl FnMut(&[u8]),
    ) -> usize {
        if self.consumer_busy.swap(true, Ordering::Acquire) {
            return 0;
        }
        // Releases (zeroes and publishes) consumed bytes, also on unwind, so
        // a panicking `f` neither wedges the ring nor replays a record.
        struct Release<'r> {
            ring: &'r Ring,
            released: u64,
            pos: u64,
            records: u64,
        }
        impl Release<'_> {
            fn release(&mut self) {
                if self.pos != self.released {
                    self.ring.zero(self.released, self.pos);
                    self.ring.tail.store(self.pos, Ordering::Release);
                    self.released = self.pos;
                }
            }
        }
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.release();
                self.ring.drained.fetch_add(self.records, Ordering::Relaxed);
                self.ring.consumer_busy.store(false, Ordering::Release);
            }
        }
        let tail = self.tail.load(Ordering::Relaxed);
        let mut g = Release {
            ring: self,
            released: tail,
            pos: tail,
            records: 0,
        };
        // Give space back to producers during long drains.
        let release_every = self.cap / 8;
        let mut bytes = 0usize;
        while bytes < max_bytes && (g.records as usize) < max_records {
            let idx = (g.pos & self.mask) as usize;
            let hdr = self.header(idx).load(Ordering::Acquire);
            let len = (hdr & 0xffff_ffff) as usize;
            match hdr >> 32 {
                STATE_RECORD => {
                    g.pos += 8 + align8(len) as u64;
                    g.records += 1;
                    bytes += len;
                    // SAFETY: the Acquire load of a committed header makes the
                    // producer's payload writes visible; the slot stays ours
                    // until `release` publishes a tail beyond it.
                    let payload =
                        unsafe { std::slice::from_raw_parts(self.base().add(idx + 8), len) };
                    f(payload);
                }
                STATE_PAD => g.pos += len as u64,
                _ => break, // uncommitted (or empty): resume here next time
            }
            if g.pos - g.released >= release_every {
                g.release();
            }
        }
        g.records as usize
    }

    /// Bytes reserved and not yet released by the consumer.
    pub fn len_bytes(&self) -> usize {
        let h = self.head.load(Ordering::Acquire) & !CLOSED;
        h.saturating_sub(self.tail.load(Ordering::Acquire)) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len_bytes() == 0
    }

    /// Makes every later push fail with [`DropReason::Closed`]. Records
    /// already reserved can still be committed and drained.
    pub fn close(&self) {
        self.head.fetch_or(CLOSED, Ordering::AcqRel);
    }

    pub fn is_closed(&self) -> bool {
        self.head.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Byte position up to which space has been reserved. Everything pushed
    /// before this call lies below it; a consumer that has released up to it
    /// has handed over all those records (see [`read_position`](Self::read_position)).
    pub fn write_position(&self) -> u64 {
        self.head.load(Ordering::Acquire) & !CLOSED
    }

    /// Byte position up to which the consumer has drained and released.
    pub fn read_position(&self) -> u64 {
        self.tail.load(Ordering::Acquire)
    }

    /// Registers the consumer thread to unpark when a push leaves at least
    /// `threshold_bytes` in use while the wake is armed. The thread can be
    /// registered once per ring (a ring has one consumer for its life).
    pub fn set_waker(&self, threshold_bytes: usize, consumer: Thread) {
        let _ = self.waiter.set(consumer);
        self.wake_threshold
            .store(threshold_bytes as u64, Ordering::Relaxed);
    }

    /// Arms the one-shot wake; the consumer calls this before it parks, then
    /// re-checks [`len_bytes`](Self::len_bytes) so a crossing cannot be missed.
    pub fn arm_wake(&self) {
        self.wake_armed.store(true, Ordering::Release);
    }

    pub fn wake_threshold(&self) -> usize {
        self.wake_threshold
            .load(Ordering::Relaxed)
            .min(usize::MAX as u64) as usize
    }

    pub fn stats(&self) -> RingStats {
        RingStats {
            capacity_bytes: self.cap as usize,
            pushed: self.pushed.load(Ordering::Relaxed),
            drained: self.drained.load(Ordering::Relaxed),
            dropped_full: self.dropped_full.load(Ordering::Relaxed),
            dropped_too_large: self.dropped_too_large.load(Ordering::Relaxed),
            dropped_closed: self.dropped_closed.load(Ordering::Relaxed),
            aborted_writes: self.aborted.load(Ordering::Relaxed),
            high_water_bytes: self.high_water.load(Ordering::Relaxed) as usize,
            len_bytes: self.len_bytes(),
        }
    }

    #[inline]
    fn base(&self) -> *mut u8 {
        // AtomicU64 is an UnsafeCell, so writing through this pointer is
        // permitted; exclusivity comes from the reservation protocol.
        self.words.as_ptr() as *mut u8
    }

    #[inline]
    fn header(&self, byte_idx: usize) -> &AtomicU64 {
        &self.words[byte_idx / 8]
    }

    /// Zeroes the bytes of positions `[from, to)`, at most one lap.
    fn zero(&self, from: u64, to: u64) {
        let start = (from & self.mask) as usize;
        let len = (to - from) as usize;
        let first = len.min(self.cap as usize - start);
        // SAFETY: [from, to) has been consumed and not yet released, so no
        // producer or reader touches it; both pieces are inside the buffer.
        unsafe {
            std::ptr::write_bytes(self.base().add(start), 0, first);
            std::ptr::write_bytes(self.base(), 0, len - first);
        }
    }
}

/// A zeroed word buffer from the zeroing allocator, so a large ring costs no
/// page faults until it is used.
fn zeroed_words(n: usize) -> Box<[AtomicU64]> {
    if std::mem::align_of::<u64>() == std::mem::align_of::<AtomicU64>() {
        let words: Box<[u64]> = vec![0u64; n].into_boxed_slice();
        // SAFETY: AtomicU64 has the same size and bit validity as u64, and
        // (checked above) the same alignment on this target.
        unsafe { Box::from_raw(Box::into_raw(words) as *mut [AtomicU64]) }
    } else {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain_all(r: &Ring) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        r.drain(usize::MAX, |b| out.push(b.to_vec()));
        out
    }

    #[test]
    fn capacity_rounds_and_limits() {
        let r = Ring::new(5000);
        assert_eq!(r.capacity_bytes(), 8192);
        assert_eq!(r.max_record_len(), 4096 - 8);
        assert_eq!(Ring::new(0).capacity_bytes(), 4096);
        assert_eq!(r.push(&vec![1; 4089]), Err(DropReason::TooLarge));
        assert_eq!(r.push(&vec![1; 4088]), Ok(()));
        assert_eq!(r.stats().dropped_too_large, 1);
    }

    #[test]
    fn push_drain_in_order_and_exact_accounting() {
        let r = Ring::new(4096);
        r.push(b"a").unwrap();
        r.push(b"").unwrap();
        r.push(b"hello world").unwrap();
        assert_eq!(r.len_bytes(), 16 + 8 + 24);
        assert_eq!(
            drain_all(&r),
            vec![b"a".to_vec(), vec![], b"hello world".to_vec()]
        );
        assert!(r.is_empty());
        let s = r.stats();
        assert_eq!((s.pushed, s.drained, s.high_water_bytes), (3, 3, 48));
    }

    #[test]
    fn full_then_space_returns_after_drain_and_wraps_with_padding() {
        let r = Ring::new(4096);
        let rec = [7u8; 1000]; // slot 1008
        for _ in 0..4 {
            r.push(&rec).unwrap();
        }
        assert_eq!(r.push(&rec), Err(DropReason::Full));
        assert_eq!(r.push(&[1u8; 56]), Ok(())); // 4032 + 64 = 4096 exactly
        assert_eq!(r.push(b""), Err(DropReason::Full));
        assert_eq!(r.drain(1, |_| {}), 1); // max_bytes stops after one record
                                           // 1008 bytes free at the front; a 1000-byte slot at position 4096 fits.
        assert_eq!(r.push(&rec), Ok(()));
        assert_eq!(drain_all(&r).len(), 5);
        // Now tail = head = 5104 (idx 1008). Records above half the ring are
        // TooLarge: behind padding they might never fit even in an empty ring.
        assert_eq!(r.push(&[9u8; 3500]), Err(DropReason::TooLarge));
        assert_eq!(r.push(&[9u8; 2000]), Ok(())); // idx 1008..3016
        assert_eq!(drain_all(&r), vec![vec![9u8; 2000]]);
        // 1080 bytes to the end; a 1512-byte slot pads them and wraps to 0.
        assert_eq!(r.push(&[8u8; 1500]), Ok(()));
        assert_eq!(r.len_bytes(), 1080 + 1512);
        assert_eq!(r.stats().high_water_bytes, 4096);
        assert_eq!(drain_all(&r), vec![vec![8u8; 1500]]);
        assert_eq!(r.read_position(), 4096 * 2 + 1512);
        let s = r.stats();
        assert_eq!((s.pushed, s.drained, s.dropped_full), (8, 8, 2));
        assert!(r.is_empty());
    }

    #[test]
    fn stalled_producer_blocks_consumer_without_corruption() {
        let r = std::sync::Arc::new(Ring::new(4096));
        r.push(b"first").unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let r2 = r.clone();
        let h = std::thread::spawn(move || {
            r2.push_with(3, |b| {
                started_tx.send(()).unwrap();
                rx.recv().unwrap();
                b.copy_from_slice(b"mid");
            })
        });
        started_rx.recv().unwrap();
        r.push(b"third").unwrap();
        assert_eq!(drain_all(&r), vec![b"first".to_vec()]);
        assert_eq!(drain_all(&r), Vec::<Vec<u8>>::new());
        tx.send(()).unwrap();
        h.join().unwrap().unwrap();
        assert_eq!(drain_all(&r), vec![b"mid".to_vec(), b"third".to_vec()]);
    }

    #[test]
    fn panicking_writer_leaves_a_skipped_slot() {
        let r = Ring::new(4096);
        r.push(b"a").unwrap();
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = r.push_with(4, |_| panic!("writer"));
        }));
        assert!(res.is_err());
        r.push(b"b").unwrap();
        assert_eq!(drain_all(&r), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(r.stats().aborted_writes, 1);
        assert_eq!(r.stats().pushed, 2);
    }

    #[test]
    fn panicking_consumer_does_not_replay_or_wedge() {
        let r = Ring::new(4096);
        for b in [b"1", b"2", b"3"] {
            r.push(b).unwrap();
        }
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            r.drain(usize::MAX, |b| {
                if b == b"2" {
                    panic!("sink");
                }
            });
        }));
        assert!(res.is_err());
        assert_eq!(drain_all(&r), vec![b"3".to_vec()]);
    }

    #[test]
    fn close_rejects_and_keeps_reserved() {
        let r = Ring::new(4096);
        r.push(b"x").unwrap();
        r.close();
        assert!(r.is_closed());
        assert_eq!(r.push(b"y"), Err(DropReason::Closed));
        assert_eq!(drain_all(&r), vec![b"x".to_vec()]);
        assert_eq!(r.write_position(), r.read_position());
        assert_eq!(r.stats().dropped_closed, 1);
        assert_eq!(DropReason::Full.as_str(), "ring_full");
        assert_eq!(DropReason::TooLarge.to_string(), "too_large");
        assert_eq!(DropReason::Closed.as_str(), "closed");
    }

    #[test]
    fn waker_fires_once_per_arming_when_crossing() {
        let r = Ring::new(4096);
        r.set_waker(64, std::thread::current());
        r.push(&[0; 40]).unwrap(); // 48 used: below
        assert!(!r.wake_armed.load(Ordering::Relaxed));
        r.arm_wake();
        r.push(&[0; 8]).unwrap(); // 64 used: crosses, disarms, unparks
        assert!(!r.wake_armed.load(Ordering::Relaxed));
        // The unpark token was delivered: this returns immediately.
        std::thread::park_timeout(std::time::Duration::from_secs(5));
    }
}
