//! Background flusher: drains the ring in batches and hands them to sinks.
//!
//! One thread (`ats-flusher`) per [`Flusher`]. It wakes on a timer
//! ([`FlushConfig::interval`]), when producers push the ring past
//! [`FlushConfig::wake_fill_ratio`] (a one-shot unpark armed by the flusher,
//! so producers never block and normally do nothing but one relaxed load),
//! or when an owner asks for [`Flusher::flush`] / [`Flusher::shutdown`].
//!
//! Each cycle polls the [`Collector`]s, decodes what the ring holds into
//! batches of at most `batch_max_records`, calls every [`Sink`] with each
//! batch, flushes the sinks and then publishes how far the ring has been
//! made durable. A sink that errors or panics is counted and its batch is
//! dropped (reason `sink_error`); the flusher itself never dies of it.
//!
//! Waiting owners never wait past their deadline: the thread may be stuck in
//! a slow sink, so deadlines are enforced on the waiting side with a condvar
//! timeout, and an overdue shutdown detaches the thread.
//!
//! After `fork()` the child has no flusher thread and may inherit locks held
//! by it; [`Pipeline`] detects that and leaks the old parts instead of
//! touching them (see [`fork`]).

pub mod fork;
mod pipeline;
mod sink_trait;
mod worker;

pub use pipeline::{CollectorFactory, Pipeline, PipelineConfig, PipelineStats, SinkFactory, StagesFactory};
pub use sink_trait::{Collector, Processor, Sink, SinkError};

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::ring::Ring;

/// The flusher-thread stages around the sinks: collectors add records each
/// cycle, processors transform every batch before the sinks see it.
#[derive(Default)]
pub struct Stages {
    pub collectors: Vec<Box<dyn Collector>>,
    pub processors: Vec<Box<dyn Processor>>,
    /// Records the driver metrics of decoded driver records that left them
    /// pending (the app thread's share of a traced call, moved here).
    pub driver_metrics: Option<Arc<crate::query::DriverMetrics>>,
}

/// Flusher tuning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlushConfig {
    /// Longest time a record waits in the ring when traffic is low.
    pub interval: Duration,
    /// Most records handed to a sink in one `write_batch` call.
    pub batch_max_records: usize,
    /// Wake early when this fraction of the ring is in use (0 < r ≤ 1).
    pub wake_fill_ratio: f32,
}

impl Default for FlushConfig {
    fn default() -> Self {
        FlushConfig {
            interval: Duration::from_millis(200),
            batch_max_records: 8192,
            wake_fill_ratio: 0.5,
        }
    }
}

/// Per-sink counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    pub name: String,
    pub batches: u64,
    pub records_written: u64,
    /// Records in batches the sink failed (error or panic) to write.
    pub records_dropped: u64,
    pub errors: u64,
    pub panics: u64,
    pub last_error: Option<String>,
    /// The sink's own counters ([`Sink::counters`]).
    pub counters: Vec<(&'static str, u64)>,
    /// Records the sink lost after accepting them, by reason ([`Sink::drop_totals`]).
    pub drops: Vec<(&'static str, u64)>,
}

/// Flusher counters, published by the thread after every cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlusherStats {
    pub cycles: u64,
    /// Batches handed to the sinks (each goes to every sink).
    pub batches: u64,
    pub records_decoded: u64,
    /// Ring payloads that did not decode; skipped.
    pub decode_errors: u64,
    pub records_collected: u64,
    pub collector_panics: u64,
    /// Records dropped because a processor panicked on their batch.
    pub processor_dropped: u64,
    pub sinks: Vec<SinkStats>,
}

impl FlusherStats {
    /// Panics caught in sinks and collectors.
    pub fn panics(&self) -> u64 {
        self.collector_panics + self.sinks.iter().map(|s| s.panics).sum::<u64>()
    }
    /// Records dropped with reason `sink_error`, summed over sinks.
    pub fn dropped_sink_error(&self) -> u64 {
        self.sinks.iter().map(|s| s.records_dropped).sum()
    }
}

/// State shared by the owner handle and the thread.
pub(crate) struct Shared {
    pub(crate) ring: Arc<Ring>,
    pub(crate) control: Mutex<Control>,
    /// Signalled whenever `flushed_upto` advances or the thread exits.
    pub(crate) progress: Condvar,
    pub(crate) stats: Mutex<FlusherStats>,
}

#[derive(Debug, Default)]
pub(crate) struct Control {
    /// Highest ring write position an owner asked to have flushed.
    pub(crate) flush_requested: u64,
    /// Ring position up to which records reached the sinks and were flushed.
    pub(crate) flushed_upto: u64,
    /// Set by `shutdown`; the thread drains until this instant at most.
    pub(crate) shutdown_deadline: Option<Instant>,
    pub(crate) exited: bool,
    /// True if the thread drained everything before exiting.
    pub(crate) drained_clean: bool,
}

impl Shared {
    /// Locks ignoring poison: the flusher catches panics around foreign code,
    /// and the data under these locks stays consistent on every path.
    pub(crate) fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Owner handle of a running flusher thread.
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    unpark: std::thread::Thread,
}

impl std::fmt::Debug for Flusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flusher")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Flusher {
    /// Starts the `ats-flusher` thread over `ring`.
    ///
    /// # Panics
    /// If the OS cannot spawn a thread (as `std::thread::spawn` does).
    pub fn start(
        ring: Arc<Ring>,
        sinks: Vec<Box<dyn Sink>>,
        collectors: Vec<Box<dyn Collector>>,
        config: FlushConfig,
    ) -> Flusher {
        Self::start_staged(ring, sinks, Stages { collectors, processors: Vec::new(), driver_metrics: None }, config)
    }

    /// [`start`](Self::start) with processors as well as collectors.
    ///
    /// # Panics
    /// If the OS cannot spawn a thread (as `std::thread::spawn` does).
    pub fn start_staged(ring: Arc<Ring>, sinks: Vec<Box<dyn Sink>>, stages: Stages, config: FlushConfig) -> Flusher {
        let stats = FlusherStats {
            sinks: sinks
                .iter()
                .map(|s| SinkStats {
                    name: s.name().to_owned(),
                    counters: s.counters(),
                    drops: s.drop_totals(),
                    ..SinkStats::default()
                })
                .collect(),
            ..FlusherStats::default()
        };
        let start_pos = ring.read_position();
        let shared = Arc::new(Shared {
            ring,
            control: Mutex::new(Control {
                flush_requested: start_pos,
                flushed_upto: start_pos,
                ..Control::default()
            }),
            progress: Condvar::new(),
            stats: Mutex::new(stats),
        });
        let worker_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("ats-flusher".into())
            .spawn(move || worker::run(worker_shared, sinks, stages, config))
            .expect("spawn ats-flusher thread");
        let unpark = handle.thread().clone();
        Flusher {
            shared,
            thread: Mutex::new(Some(handle)),
            unpark,
        }
    }

    pub fn ring(&self) -> &Arc<Ring> {
        &self.shared.ring
    }

    /// Returns true once everything pushed before this call has reached the
    /// sinks and they flushed; false if `deadline` passes first (never waits
    /// longer), or if the flusher has exited without getting there.
    pub fn flush(&self, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        let target = self.shared.ring.write_position();
        let mut c = self.shared.control();
        if c.flushed_upto >= target {
            return true;
        }
        c.flush_requested = c.flush_requested.max(target);
        self.unpark.unpark();
        loop {
            if c.flushed_upto >= target {
                return true;
            }
            if c.exited {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return false;
            }
            c = self
                .shared
                .progress
                .wait_timeout(c, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Closes the ring, drains it, flushes and closes the sinks and joins the
    /// thread. Returns true if all of that finished within `deadline` with
    /// nothing left in the ring; otherwise the thread is detached (it keeps
    /// draining in the background) and false is returned. Idempotent.
    pub fn shutdown(&self, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        self.shared.ring.close();
        let mut c = self.shared.control();
        if c.shutdown_deadline.is_none() {
            c.shutdown_deadline = Some(until);
        }
        self.unpark.unpark();
        while !c.exited {
            let now = Instant::now();
            if now >= until {
                drop(c);
                // Detach: dropping the JoinHandle leaves the thread running.
                drop(self.thread.lock().unwrap_or_else(|e| e.into_inner()).take());
                return false;
            }
            c = self
                .shared
                .progress
                .wait_timeout(c, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let clean = c.drained_clean;
        drop(c);
        if let Some(h) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            // The thread has signalled `exited`; joining only waits for its
            // last few instructions.
            let _ = h.join();
        }
        clean
    }

    /// True once the thread has exited (after shutdown).
    pub fn is_finished(&self) -> bool {
        self.shared.control().exited
    }

    pub fn stats(&self) -> FlusherStats {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Flusher {
    /// A dropped flusher shuts down with a short deadline so a clean exit
    /// still flushes; use [`fork::abandon`] (which leaks) in a forked child.
    fn drop(&mut self) {
        let running = self.thread.get_mut().map(|t| t.is_some()).unwrap_or(false);
        if running {
            self.shutdown(Duration::from_secs(2));
        }
    }
}
