//! The `ats-otlp-exporter` thread: delivers the backlog strictly in order,
//! one request at a time, behind the circuit breaker and the retry policy.
//! The flusher only ever takes the backlog lock for an append, so a slow or
//! dead collector costs it nothing.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::backlog::Backlog;
use super::breaker::{Breaker, Permit};
use super::config::{BreakerConfig, RetryConfig};
use super::retry::backoff;
use super::stats::ExportCounters;
use super::transport::{Outcome, Transport};

pub(crate) struct State {
    pub(crate) backlog: Backlog,
    /// Set by close: deliver until then, then stop.
    pub(crate) closing: Option<Instant>,
    /// The owner has taken the backlog back; the thread must not touch it.
    pub(crate) closed: bool,
    pub(crate) exporter_done: bool,
    pub(crate) last_error: Option<String>,
}

pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Work arrived or closing began (wakes the exporter).
    pub(crate) wake: Condvar,
    /// The exporter finished (wakes `close`).
    pub(crate) done: Condvar,
    pub(crate) counters: ExportCounters,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing under this lock is left half-updated by a panic that matters
        // more than losing telemetry would.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) struct Policy {
    pub(crate) retry: RetryConfig,
    pub(crate) breaker: BreakerConfig,
    pub(crate) timeout: Duration,
}

/// Retry bookkeeping of the payload at the head.
struct Head {
    seq: u64,
    failed_attempts: u32,
    first_failure: Option<Instant>,
    not_before: Option<Instant>,
}

pub(crate) fn run(shared: Arc<Shared>, mut transport: Transport, policy: Policy) {
    let c = &shared.counters;
    let mut breaker = Breaker::new(policy.breaker);
    let mut rng = fastrand::Rng::new();
    let mut head = Head { seq: 0, failed_attempts: 0, first_failure: None, not_before: None };
    // Shutdown is the last chance to deliver: one immediate attempt, whatever the breaker's
    // cool-down or the head's backoff say (a collector that came back during the cool-down would
    // otherwise get nothing, and the rest would wait in the spool for the next process).
    let mut close_attempted = false;
    let finish = |mut st: MutexGuard<'_, State>| {
        st.exporter_done = true;
        drop(st);
        shared.done.notify_all();
    };
    loop {
        let mut st = shared.lock();
        let (pending, closing) = loop {
            if st.closed {
                return;
            }
            let now = Instant::now();
            let closing = st.closing;
            if closing.is_some_and(|d| now >= d) || (closing.is_some() && st.backlog.is_empty()) {
                return finish(st);
            }
            if st.backlog.is_empty() {
                st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let last_chance = closing.is_some() && !close_attempted;
            let gate = match breaker.permit(now) {
                _ if last_chance => None,
                Permit::Wait(d) => {
                    // At shutdown a collector known to be down is not waited for.
                    if closing.is_some() {
                        return finish(st);
                    }
                    Some(d)
                }
                Permit::Go => head.not_before.and_then(|t| t.checked_duration_since(now)).filter(|d| !d.is_zero()),
            };
            c.set_breaker(breaker.state(), breaker.times_opened());
            if let Some(d) = gate {
                let d = closing.map_or(d, |end| d.min(end.saturating_duration_since(now)));
                st = shared.wake.wait_timeout(st, d).unwrap_or_else(|e| e.into_inner()).0;
                continue;
            }
            if let Some(p) = st.backlog.front(c) {
                break (p, closing);
            }
        };
        st.backlog.in_flight = Some(pending.seq);
        drop(st);
        close_attempted |= closing.is_some();

        if head.seq != pending.seq {
            head = Head { seq: pending.seq, failed_attempts: 0, first_failure: None, not_before: None };
        } else if head.failed_attempts > 0 {
            ExportCounters::add(&c.retries, 1);
        }
        let now = Instant::now();
        let timeout = closing.map_or(policy.timeout, |end| policy.timeout.min(end.saturating_duration_since(now)));
        let outcome = transport.send(pending.signal, &pending.body, timeout.max(Duration::from_millis(1)));

        let mut st = shared.lock();
        st.backlog.in_flight = None;
        if st.closed {
            // The owner already kept the backlog (this payload included).
            return;
        }
        let now = Instant::now();
        match outcome {
            Outcome::Delivered { partial } => {
                let rejected = partial.as_ref().map_or(0, |p| p.rejected).min(pending.items);
                c.exported(pending.signal, pending.items - rejected);
                ExportCounters::add(&c.dropped_partial_success, rejected);
                if let Some(p) = partial {
                    st.last_error = Some(format!("partial success: {} rejected: {}", p.rejected, p.error_message));
                }
                breaker.on_success();
                st.backlog.ack(pending.seq, c);
            }
            Outcome::Rejected { reason } => {
                ExportCounters::add(&c.dropped_rejected, pending.items);
                st.last_error = Some(reason);
                // The collector answered: it is up.
                breaker.on_success();
                st.backlog.ack(pending.seq, c);
            }
            Outcome::Retry { after, reason } => {
                ExportCounters::add(&c.failures, 1);
                st.last_error = Some(reason);
                breaker.on_failure(now);
                let first = *head.first_failure.get_or_insert(now);
                let exhausted = policy.retry.max_elapsed.is_some_and(|max| now.duration_since(first) >= max);
                if exhausted {
                    ExportCounters::add(&c.dropped_retry_exhausted, pending.items);
                    st.backlog.ack(pending.seq, c);
                } else {
                    let wait = after.unwrap_or_else(|| backoff(&policy.retry, head.failed_attempts, &mut rng));
                    head.failed_attempts += 1;
                    head.not_before = Some(now + wait);
                }
                if closing.is_some() {
                    // Still down at shutdown: the backlog waits in the spool.
                    c.set_breaker(breaker.state(), breaker.times_opened());
                    return finish(st);
                }
            }
        }
        c.set_breaker(breaker.state(), breaker.times_opened());
    }
}
