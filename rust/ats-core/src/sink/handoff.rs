//! A hand-off sink: keeps decoded batches in a bounded queue for a consumer
//! on another thread (the Python drain thread that calls `ats_process_batch`).
//!
//! The flusher never waits for the consumer: a batch that does not fit in the
//! queue (bounded in records) is dropped whole and counted, reason
//! `handoff_full`. Until a consumer [attaches](HandoffQueue::attach) the sink
//! keeps nothing, so a process without a batch consumer pays no copy.
//!
//! Fork: the queue's lock may be held by a thread that does not exist in a
//! forked child, so a child never touches the inherited queue. The pipeline's
//! sink factory builds a fresh queue per process and publishes it in a
//! [`HandoffSlot`]; superseded queues are leaked, like the pipeline's own
//! incarnations.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::flusher::{Sink, SinkError};
use crate::record::Record;

/// Drop reason reported for batches that found the queue full.
pub const HANDOFF_FULL: &str = "handoff_full";

#[derive(Default)]
struct State {
    batches: VecDeque<Vec<Record>>,
    queued_records: usize,
    closed: bool,
}

/// The queue between the hand-off sink (producer, flusher thread) and one consumer.
pub struct HandoffQueue {
    state: Mutex<State>,
    ready: Condvar,
    max_records: usize,
    attached: AtomicBool,
    dropped: AtomicU64,
    accepted: AtomicU64,
}

/// Counters of one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HandoffStats {
    /// Records queued for the consumer since the queue was built.
    pub accepted: u64,
    /// Records dropped because the queue was full (reason `handoff_full`).
    pub dropped_full: u64,
    /// Records waiting for the consumer now.
    pub queued: u64,
}

/// What [`HandoffQueue::pop`] found.
#[derive(Debug, PartialEq)]
pub enum Popped {
    Batch(Vec<Record>),
    /// Nothing arrived within the timeout.
    Empty,
    /// The sink was closed and everything queued has been taken.
    Closed,
}

impl HandoffQueue {
    /// A queue holding at most `max_records` records (at least one batch is
    /// always accepted into an empty queue, however large).
    pub fn new(max_records: usize) -> Arc<Self> {
        Arc::new(HandoffQueue {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            max_records,
            attached: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
        })
    }

    /// From now on batches are kept for a consumer.
    pub fn attach(&self) {
        self.attached.store(true, Ordering::Release);
    }

    pub fn is_attached(&self) -> bool {
        self.attached.load(Ordering::Acquire)
    }

    /// Queues a copy of `batch`, or drops and counts it when it does not fit.
    pub fn offer(&self, batch: &[Record]) {
        if batch.is_empty() || !self.is_attached() {
            return;
        }
        let n = batch.len();
        let mut st = self.state.lock();
        if st.closed || (st.queued_records > 0 && st.queued_records + n > self.max_records) {
            drop(st);
            self.dropped.fetch_add(n as u64, Ordering::Relaxed);
            return;
        }
        st.batches.push_back(batch.to_vec());
        st.queued_records += n;
        drop(st);
        self.accepted.fetch_add(n as u64, Ordering::Relaxed);
        self.ready.notify_one();
    }

    /// Takes the oldest batch, waiting at most `timeout` for one.
    pub fn pop(&self, timeout: Duration) -> Popped {
        let deadline = Instant::now().checked_add(timeout);
        let mut st = self.state.lock();
        loop {
            if let Some(batch) = st.batches.pop_front() {
                st.queued_records -= batch.len();
                return Popped::Batch(batch);
            }
            if st.closed {
                return Popped::Closed;
            }
            match deadline {
                Some(d) => {
                    if self.ready.wait_until(&mut st, d).timed_out() && st.batches.is_empty() {
                        return if st.closed { Popped::Closed } else { Popped::Empty };
                    }
                }
                None => self.ready.wait(&mut st),
            }
        }
    }

    /// No more batches will come; a waiting consumer wakes up.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_all();
    }

    pub fn stats(&self) -> HandoffStats {
        let queued = self.state.lock().queued_records as u64;
        HandoffStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            dropped_full: self.dropped.load(Ordering::Relaxed),
            queued,
        }
    }
}

/// The flusher's side of a [`HandoffQueue`].
pub struct HandoffSink {
    queue: Arc<HandoffQueue>,
}

impl HandoffSink {
    pub fn new(queue: Arc<HandoffQueue>) -> Self {
        HandoffSink { queue }
    }
}

impl Sink for HandoffSink {
    fn name(&self) -> &str {
        "handoff"
    }

    fn write_batch(&mut self, batch: &[Record]) -> Result<(), SinkError> {
        // A full queue is not a sink error: the drop is counted under its own reason.
        self.queue.offer(batch);
        Ok(())
    }

    fn close(&mut self) -> Result<(), SinkError> {
        self.queue.close();
        Ok(())
    }

    fn drop_totals(&self) -> Vec<(&'static str, u64)> {
        vec![(HANDOFF_FULL, self.queue.dropped.load(Ordering::Relaxed))]
    }
}

/// The hand-off queue of the current process, replaced in a forked child.
pub struct HandoffSlot {
    /// From `Arc::into_raw`; never released, so a clone taken from it stays valid.
    current: AtomicPtr<HandoffQueue>,
    pid: AtomicU64,
    max_records: usize,
}

impl HandoffSlot {
    pub fn new(max_records: usize) -> Arc<Self> {
        Arc::new(HandoffSlot {
            current: AtomicPtr::new(Arc::into_raw(HandoffQueue::new(max_records)).cast_mut()),
            pid: AtomicU64::new(u64::from(std::process::id())),
            max_records,
        })
    }

    /// The queue of this process.
    pub fn queue(&self) -> Arc<HandoffQueue> {
        let ptr = self.current.load(Ordering::Acquire);
        // SAFETY: `ptr` came from Arc::into_raw and the slot's own reference is
        // never released (superseded queues are leaked), so the count is > 0.
        unsafe {
            Arc::increment_strong_count(ptr);
            Arc::from_raw(ptr)
        }
    }

    /// A sink over this process's queue. In a process other than the one that
    /// built the current queue (a forked child) a fresh queue replaces it,
    /// attached if the old one was.
    pub fn sink(&self) -> HandoffSink {
        let pid = u64::from(std::process::id());
        if self.pid.load(Ordering::Acquire) != pid {
            let attached = self.queue().is_attached();
            let fresh = HandoffQueue::new(self.max_records);
            if attached {
                fresh.attach();
            }
            // The old queue is leaked on purpose: its lock may be held by a
            // thread that does not exist in this process.
            self.current.store(Arc::into_raw(fresh).cast_mut(), Ordering::Release);
            self.pid.store(pid, Ordering::Release);
        }
        HandoffSink::new(self.queue())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Envelope, LogRecord, Severity};

    fn log(i: u64) -> Record {
        Record::Log(LogRecord {
            envelope: Envelope { ts_ns: i, ..Envelope::default() },
            event: format!("app.e{i}"),
            component: "t".into(),
            severity: Severity::INFO,
            body: String::new(),
            attributes: Vec::new(),
        })
    }

    #[test]
    fn keeps_nothing_until_attached() {
        let q = HandoffQueue::new(10);
        q.offer(&[log(1)]);
        assert_eq!(q.stats(), HandoffStats::default());
        assert_eq!(q.pop(Duration::ZERO), Popped::Empty);
    }

    #[test]
    fn batches_come_out_in_order_and_whole() {
        let q = HandoffQueue::new(10);
        q.attach();
        let mut sink = HandoffSink::new(q.clone());
        sink.write_batch(&[log(1), log(2)]).unwrap();
        sink.write_batch(&[log(3)]).unwrap();
        assert_eq!(q.stats(), HandoffStats { accepted: 3, dropped_full: 0, queued: 3 });
        assert_eq!(q.pop(Duration::ZERO), Popped::Batch(vec![log(1), log(2)]));
        assert_eq!(q.pop(Duration::ZERO), Popped::Batch(vec![log(3)]));
        assert_eq!(q.pop(Duration::from_millis(5)), Popped::Empty);
        sink.close().unwrap();
        assert_eq!(q.pop(Duration::from_secs(60)), Popped::Closed);
    }

    #[test]
    fn a_full_queue_drops_whole_batches_and_counts_them() {
        let q = HandoffQueue::new(3);
        q.attach();
        q.offer(&[log(1), log(2)]);
        q.offer(&[log(3), log(4)]); // 4 > 3: dropped
        q.offer(&[log(5)]); // fits exactly
        q.offer(&[log(6)]);
        assert_eq!(q.stats(), HandoffStats { accepted: 3, dropped_full: 3, queued: 3 });
        // An oversized batch still passes through an empty queue.
        let big = HandoffQueue::new(1);
        big.attach();
        big.offer(&[log(1), log(2)]);
        assert_eq!(big.stats().accepted, 2);
    }

    #[test]
    fn closing_drains_what_is_left_then_reports_closed() {
        let q = HandoffQueue::new(10);
        q.attach();
        q.offer(&[log(1)]);
        q.close();
        q.offer(&[log(2)]);
        assert_eq!(q.stats().dropped_full, 1);
        assert_eq!(q.pop(Duration::ZERO), Popped::Batch(vec![log(1)]));
        assert_eq!(q.pop(Duration::ZERO), Popped::Closed);
    }

    #[test]
    fn a_waiting_consumer_wakes_on_a_batch() {
        let q = HandoffQueue::new(10);
        q.attach();
        let consumer = {
            let q = q.clone();
            std::thread::spawn(move || q.pop(Duration::from_secs(30)))
        };
        std::thread::sleep(Duration::from_millis(20));
        q.offer(&[log(7)]);
        assert_eq!(consumer.join().unwrap(), Popped::Batch(vec![log(7)]));
    }

    #[test]
    fn the_slot_reuses_the_queue_in_the_same_process() {
        let slot = HandoffSlot::new(4);
        slot.queue().attach();
        let mut sink = slot.sink();
        sink.write_batch(&[log(1)]).unwrap();
        assert_eq!(slot.queue().pop(Duration::ZERO), Popped::Batch(vec![log(1)]));
    }
}
