//! [`OtlpSink`]: the flusher-side face of OTLP export.
//!
//! `write_batch` encodes on the flusher thread and appends to the backlog
//! (memory queue, or the spool when the queue is full, the breaker open, or
//! older payloads already wait there); delivery happens on the
//! `ats-otlp-exporter` thread. `flush` does not wait for the collector.
//!
//! Shutdown: `close_by(deadline)` lets the exporter deliver until the
//! deadline (or until the breaker says the collector is down), then keeps
//! whatever is left in the spool directory, where the next process that
//! opens the same directory delivers it first. The payload in flight at the
//! deadline is kept too, so it may arrive twice. Without a spool directory
//! what is left is dropped and counted (`otlp_shutdown`).

use std::fs::File;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::backlog::Backlog;
use super::config::{ConfigError, OtlpConfig};
use super::exporter::{self, Policy, Shared, State};
use super::payload::PayloadEncoder;
use super::spool::{Spool, SpoolError};
use super::stats::{ExportCounters, ExportStats};
use super::transport::Transport;
use crate::flusher::{Sink, SinkError};
use crate::record::Record;

const NAME: &str = "otlp";

#[derive(Debug, thiserror::Error)]
pub enum OtlpOpenError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("cannot start the exporter thread: {0}")]
    Thread(std::io::Error),
}

/// Read-only view of a sink's counters, usable from any thread.
#[derive(Clone)]
pub struct OtlpHandle {
    shared: Arc<Shared>,
}

impl OtlpHandle {
    pub fn stats(&self) -> ExportStats {
        self.shared.counters.snapshot()
    }
    pub fn last_error(&self) -> Option<String> {
        self.shared.lock().last_error.clone()
    }
}

pub struct OtlpSink {
    shared: Arc<Shared>,
    encoder: Box<dyn PayloadEncoder>,
    thread: Option<JoinHandle<()>>,
    close_timeout: Duration,
    has_endpoint: [bool; 3],
    /// Exclusive lock on the spool directory, held for the sink's life.
    _spool_lock: Option<File>,
}

impl OtlpSink {
    /// Validates `config`, opens the spool (taking over what a previous
    /// process left) and starts the exporter thread.
    pub fn open(config: &OtlpConfig, encoder: Box<dyn PayloadEncoder>) -> Result<OtlpSink, OtlpOpenError> {
        let transport = Transport::new(config)?;
        let counters = ExportCounters::default();
        let (spool, lock) = match &config.spool_dir {
            Some(dir) => match lock_dir(dir)? {
                Some(lock) => {
                    let (spool, corrupt, evicted) = Spool::open(dir, config.spool_max_bytes)?;
                    ExportCounters::add(&counters.spool_corrupt_files, corrupt);
                    ExportCounters::add(&counters.dropped_spool_overflow, evicted.items);
                    (spool, Some(lock))
                }
                // Another live process (e.g. the parent of a forked child)
                // owns the directory: this one spools in memory rather than
                // interleave files with it.
                None => (Spool::in_memory(config.spool_max_bytes), None),
            },
            None => (Spool::in_memory(config.spool_max_bytes), None),
        };
        let backlog = Backlog::new(spool, config.queue_max_bytes);
        backlog.publish(&counters);
        let has_endpoint = [0, 1, 2].map(|i| transport.has_endpoint(super::Signal::ALL[i]));
        let shared = Arc::new(Shared {
            state: Mutex::new(State { backlog, closing: None, closed: false, exporter_done: false, last_error: None }),
            wake: Condvar::new(),
            done: Condvar::new(),
            counters,
        });
        let policy = Policy { retry: config.retry, breaker: config.breaker, timeout: config.timeout };
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("ats-otlp-exporter".into())
            .spawn(move || {
                let shared = worker.clone();
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exporter::run(worker, transport, policy))).is_err() {
                    // Export stops; the backlog is still kept at close.
                    let mut st = shared.lock();
                    st.last_error = Some("exporter thread panicked".into());
                    st.exporter_done = true;
                    drop(st);
                    shared.done.notify_all();
                }
            })
            .map_err(OtlpOpenError::Thread)?;
        Ok(OtlpSink {
            shared,
            encoder,
            thread: Some(thread),
            close_timeout: config.close_timeout,
            has_endpoint,
            _spool_lock: lock,
        })
    }

    pub fn handle(&self) -> OtlpHandle {
        OtlpHandle { shared: self.shared.clone() }
    }

    pub fn stats(&self) -> ExportStats {
        self.shared.counters.snapshot()
    }

    /// Encodes and enqueues; never waits for the collector.
    pub fn write_batch(&mut self, batch: &[Record]) -> Result<(), SinkError> {
        let payloads = self.encoder.encode(batch);
        let c = &self.shared.counters;
        let mut st = self.shared.lock();
        if st.closed || st.closing.is_some() {
            return Err(SinkError::Failed { sink: NAME.into(), message: "closed".into() });
        }
        for p in payloads {
            if !self.has_endpoint[p.signal.index()] || p.items == 0 {
                continue;
            }
            st.backlog.push(p.signal, p.items as u64, Bytes::from(p.body), c.breaker_is_open(), c);
        }
        drop(st);
        self.shared.wake.notify_all();
        Ok(())
    }

    /// Delivers until `deadline` at the latest (and at most the configured
    /// close timeout), then keeps what is left in the spool. Idempotent.
    /// Delivers until `deadline` (the caller's: the program's shutdown
    /// deadline), then leaves the rest in the spool. `close_timeout` only
    /// applies to [`Sink::close`], where no deadline is given: capping a
    /// caller's deadline with it would drop a long backlog the user gave time for.
    pub fn close_by(&mut self, deadline: Instant) -> Result<(), SinkError> {
        let c = &self.shared.counters;
        let mut st = self.shared.lock();
        if st.closed {
            return Ok(());
        }
        st.closing = Some(st.closing.map_or(deadline, |d| d.min(deadline)));
        self.shared.wake.notify_all();
        while !st.exporter_done {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st = self.shared.done.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        st.closed = true;
        let left = st.backlog.items();
        if st.backlog.spool().is_on_disk() {
            st.backlog.spill_queue(c);
        } else {
            ExportCounters::add(&c.dropped_shutdown, left);
        }
        let done = st.exporter_done;
        drop(st);
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            // A thread still in a request is left to finish on its own; it
            // will see `closed` and touch nothing.
            if done {
                let _ = t.join();
            }
        }
        Ok(())
    }
}

impl Sink for OtlpSink {
    fn name(&self) -> &str {
        NAME
    }
    fn write_batch(&mut self, batch: &[Record]) -> Result<(), SinkError> {
        OtlpSink::write_batch(self, batch)
    }
    fn close(&mut self) -> Result<(), SinkError> {
        self.close_by(Instant::now() + self.close_timeout)
    }
    fn close_by(&mut self, deadline: Instant) -> Result<(), SinkError> {
        // The flusher's own deadline: finish a little before it, so the
        // flusher still closes the other sinks and exits in time.
        let left = deadline.saturating_duration_since(Instant::now());
        let margin = (left / 10).max(Duration::from_millis(20));
        OtlpSink::close_by(self, Instant::now() + left.saturating_sub(margin))
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        self.shared.counters.snapshot().counters()
    }
    fn drop_totals(&self) -> Vec<(&'static str, u64)> {
        self.shared.counters.snapshot().drops().to_vec()
    }
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.close_by(Instant::now() + self.close_timeout);
        }
    }
}

/// Takes an exclusive, non-blocking `flock` on `<dir>/.lock`. `Ok(None)` if
/// another process holds it.
fn lock_dir(dir: &std::path::Path) -> Result<Option<File>, SpoolError> {
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(dir).map_err(|source| SpoolError::CreateDir { path: dir.to_owned(), source })?;
    let path = dir.join(".lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| SpoolError::Write { path, source })?;
    // SAFETY: flock on a valid open descriptor; no memory is passed.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    Ok((rc == 0).then_some(f))
}
