//! The single ordered backlog between the flusher and the exporter thread:
//! spooled payloads (oldest) followed by the in-memory queue (newest).
//!
//! Invariant: every spooled seq is lower than every queued seq. A payload
//! goes to the spool whenever the spool is not empty, the queue is full or
//! the breaker is open — and before it does, the whole queue is moved to the
//! spool, so order never depends on where a payload waited.

use std::collections::VecDeque;

use bytes::Bytes;

use super::spool::{Evicted, Front, Spool, SpoolError};
use super::stats::ExportCounters;
use super::payload::Signal;

/// One payload taken for delivery (it stays in the backlog until acked).
#[derive(Debug, Clone)]
pub struct Pending {
    pub seq: u64,
    pub signal: Signal,
    pub items: u64,
    pub body: Bytes,
}

#[derive(Debug)]
pub struct Backlog {
    queue: VecDeque<Pending>,
    queue_bytes: u64,
    queue_max_bytes: u64,
    spool: Spool,
    next_seq: u64,
    /// Seq being delivered; never evicted by the spool cap.
    pub in_flight: Option<u64>,
}

impl Backlog {
    pub fn new(spool: Spool, queue_max_bytes: u64) -> Backlog {
        let next_seq = spool.last_seq().map_or(1, |s| s + 1);
        Backlog { queue: VecDeque::new(), queue_bytes: 0, queue_max_bytes, spool, next_seq, in_flight: None }
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.spool.is_empty()
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    pub fn push(&mut self, signal: Signal, items: u64, body: Bytes, breaker_open: bool, counters: &ExportCounters) {
        let p = Pending { seq: self.next_seq, signal, items, body };
        self.next_seq += 1;
        let size = p.body.len() as u64;
        let spill = !self.spool.is_empty() || breaker_open || self.queue_bytes + size > self.queue_max_bytes;
        if spill {
            self.spill_queue(counters);
            self.spool_one(&p, counters);
        } else {
            self.queue_bytes += size;
            self.queue.push_back(p);
        }
        self.publish(counters);
    }

    /// Moves every queued payload to the spool, in order.
    pub fn spill_queue(&mut self, counters: &ExportCounters) {
        while let Some(p) = self.queue.pop_front() {
            self.queue_bytes -= p.body.len() as u64;
            self.spool_one(&p, counters);
        }
        self.publish(counters);
    }

    fn spool_one(&mut self, p: &Pending, counters: &ExportCounters) {
        match self.spool.append(p.seq, p.signal, p.items, &p.body, self.in_flight) {
            Ok(Evicted { items, .. }) => ExportCounters::add(&counters.dropped_spool_overflow, items),
            Err(SpoolError::Write { .. } | SpoolError::CreateDir { .. } | SpoolError::ReadDir { .. }) => {
                ExportCounters::add(&counters.dropped_spool_error, p.items)
            }
        }
    }

    /// The oldest payload, read from the spool or the queue. Corrupt spool
    /// files are removed and counted on the way.
    pub fn front(&mut self, counters: &ExportCounters) -> Option<Pending> {
        loop {
            if self.spool.is_empty() {
                return self.queue.front().cloned();
            }
            match self.spool.front() {
                Front::Ready { seq, signal, items, body } => return Some(Pending { seq, signal, items, body }),
                Front::Corrupt { .. } => {
                    ExportCounters::add(&counters.spool_corrupt_files, 1);
                    self.publish(counters);
                }
                Front::Empty => return None,
            }
        }
    }

    /// Removes `seq` once delivered or given up (it may have moved from the
    /// queue to the spool meanwhile, or been evicted).
    pub fn ack(&mut self, seq: u64, counters: &ExportCounters) {
        if self.queue.front().map(|p| p.seq) == Some(seq) {
            if let Some(p) = self.queue.pop_front() {
                self.queue_bytes -= p.body.len() as u64;
            }
        } else {
            self.spool.remove(seq);
        }
        self.publish(counters);
    }

    /// Items still waiting (queue and spool).
    pub fn items(&self) -> u64 {
        self.queue.iter().map(|p| p.items).sum::<u64>() + self.spool.items()
    }

    pub fn publish(&self, c: &ExportCounters) {
        use std::sync::atomic::Ordering::Relaxed;
        c.spooled_bytes.store(self.spool.bytes(), Relaxed);
        c.spooled_payloads.store(self.spool.len() as u64, Relaxed);
        c.queued_bytes.store(self.queue_bytes, Relaxed);
    }
}
