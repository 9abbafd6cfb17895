//! The body of the `ats-flusher` thread.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Collector, FlushConfig, FlusherStats, Processor, Shared, Sink, Stages};
use crate::query::DriverMetrics;
use crate::record::codec::layout::{F_DRIVER_METRICS_PENDING, KIND_DRIVER};
use crate::record::{codec, Record};

/// Payload bytes taken from the ring per `drain` call; bounds how long the
/// consumer holds released space back from producers.
const DRAIN_CHUNK: usize = 1 << 20;
/// Back-off while a flush or shutdown waits on a producer that reserved a
/// slot but has not committed it yet.
const STALL_BACKOFF: Duration = Duration::from_millis(1);

struct Worker {
    shared: Arc<Shared>,
    sinks: Vec<Box<dyn Sink>>,
    collectors: Vec<Box<dyn Collector>>,
    processors: Vec<Box<dyn Processor>>,
    driver_metrics: Option<Arc<DriverMetrics>>,
    /// Record pool: `batch[..batch_len]` is the current batch; the rest are
    /// decoded-into again so steady-state decoding reuses their allocations.
    batch: Vec<Record>,
    batch_len: usize,
    collected: Vec<Record>,
    batch_max: usize,
    stats: FlusherStats,
    /// Records written since the sinks were last flushed.
    dirty: bool,
    /// Drop totals already handed to the sinks, by reason.
    drops_reported: Vec<(&'static str, u64)>,
}

/// Marks the flusher exited even if something below unwinds, so owners
/// waiting in `flush`/`shutdown` are released instead of timing out.
struct ExitGuard<'a> {
    shared: &'a Shared,
    clean: bool,
}

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        let mut c = self.shared.control();
        c.exited = true;
        c.drained_clean = self.clean;
        drop(c);
        self.shared.progress.notify_all();
    }
}

pub(crate) fn run(
    shared: Arc<Shared>,
    sinks: Vec<Box<dyn Sink>>,
    stages: Stages,
    config: FlushConfig,
) {
    let ring = shared.ring.clone();
    let ratio = if config.wake_fill_ratio.is_finite() {
        f64::from(config.wake_fill_ratio).clamp(0.0, 1.0)
    } else {
        0.5
    };
    let threshold = ((ring.capacity_bytes() as f64 * ratio) as usize).max(1);
    ring.set_waker(threshold, std::thread::current());
    // Here, not on the app thread: a producer writing a never-touched page would take the
    // page fault inside the program's call.
    ring.prefault();
    let interval = config.interval.max(Duration::from_millis(1));
    let batch_max = config.batch_max_records.max(1);

    let mut guard = ExitGuard {
        shared: &shared,
        clean: false,
    };
    let mut w = Worker {
        shared: shared.clone(),
        sinks,
        collectors: stages.collectors,
        processors: stages.processors,
        driver_metrics: stages.driver_metrics,
        batch: Vec::with_capacity(batch_max.min(1 << 16)),
        batch_len: 0,
        collected: Vec::new(),
        batch_max,
        stats: shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
        dirty: false,
        drops_reported: Vec::new(),
    };

    let mut next_tick = Instant::now() + interval;
    let shutdown_deadline = loop {
        let (flush_pending, shutdown) = {
            let c = shared.control();
            (c.flush_requested > c.flushed_upto, c.shutdown_deadline)
        };
        if let Some(d) = shutdown {
            break d;
        }
        let now = Instant::now();
        if !flush_pending && now < next_tick && ring.len_bytes() < threshold {
            // Arm first, then re-check, so a producer crossing the threshold
            // in between either is seen here or unparks us.
            ring.arm_wake();
            if ring.len_bytes() < threshold {
                std::thread::park_timeout(next_tick - now);
            }
            continue;
        }
        if now >= next_tick {
            next_tick = now + interval;
        }
        let before = ring.read_position();
        w.cycle(flush_pending);
        if flush_pending && ring.read_position() == before && ring.len_bytes() > 0 {
            // Blocked on an uncommitted slot: don't spin.
            std::thread::park_timeout(STALL_BACKOFF);
        }
    };

    // Shutdown: the ring is closed, so its write position is final.
    let clean = loop {
        w.cycle(true);
        if ring.read_position() >= ring.write_position() {
            break true;
        }
        if Instant::now() >= shutdown_deadline {
            break false;
        }
        std::thread::sleep(STALL_BACKOFF);
    };
    w.finish_stages();
    w.close_sinks(shutdown_deadline);
    w.refresh_sink_counters();
    w.publish_stats();
    guard.clean = clean;
}

impl Worker {
    fn cycle(&mut self, force_flush: bool) {
        self.stats.cycles += 1;
        self.collect();
        let ring = self.shared.ring.clone();
        // Bound the cycle to what is in the ring now, so a producer flood
        // cannot keep us from publishing progress or seeing a shutdown.
        let stop_at = ring.write_position();
        while ring.read_position() < stop_at {
            let room = self.batch_max - self.batch_len;
            let before = ring.read_position();
            let (batch, len, stats) = (&mut self.batch, &mut self.batch_len, &mut self.stats);
            let driver_metrics = self.driver_metrics.as_deref();
            let n = ring.drain_bounded(DRAIN_CHUNK, room, |bytes| {
                let res = match batch.get_mut(*len) {
                    Some(slot) => codec::decode_into(bytes, slot),
                    None => codec::decode(bytes).map(|r| batch.push(r)),
                };
                match res {
                    Ok(()) => {
                        if let (Some(metrics), Record::Span(span)) = (driver_metrics, &batch[*len]) {
                            if bytes[2] == KIND_DRIVER && bytes[3] & F_DRIVER_METRICS_PENDING != 0 {
                                metrics.observe_decoded(span);
                            }
                        }
                        *len += 1;
                        stats.records_decoded += 1;
                    }
                    Err(_) => stats.decode_errors += 1,
                }
            });
            if self.batch_len >= self.batch_max {
                self.write_batch();
            }
            // No record and no padding consumed: the next slot is reserved
            // but not committed yet. Stop; a later cycle resumes there.
            if n == 0 && ring.read_position() == before {
                break;
            }
        }
        if self.batch_len > 0 {
            self.write_batch();
        }
        let pos = ring.read_position();
        if self.dirty || force_flush {
            self.flush_sinks();
        }
        self.refresh_sink_counters();
        // Sinks count their own drops asynchronously (OTLP): hand them on
        // even in a cycle with nothing to flush.
        self.report_drops();
        self.publish_stats();
        let mut c = self.shared.control();
        if pos > c.flushed_upto {
            c.flushed_upto = pos;
        }
        drop(c);
        self.shared.progress.notify_all();
    }

    fn collect(&mut self) {
        self.collect_with(|c, now_ns, out| c.collect(now_ns, out));
    }

    /// Final collection and release of held records, written before the sinks close.
    fn finish_stages(&mut self) {
        self.collect_with(|c, now_ns, out| c.finish(now_ns, out));
        let mut released = Vec::new();
        for p in &mut self.processors {
            if catch_unwind(AssertUnwindSafe(|| p.finish(&mut released))).is_err() {
                self.stats.collector_panics += 1;
            }
        }
        for r in released {
            self.push_to_batch(r);
        }
        if self.batch_len > 0 {
            self.write_batch();
        }
        self.flush_sinks();
    }

    fn push_to_batch(&mut self, r: Record) {
        match self.batch.get_mut(self.batch_len) {
            Some(slot) => *slot = r,
            None => self.batch.push(r),
        }
        self.batch_len += 1;
        if self.batch_len >= self.batch_max {
            self.write_batch();
        }
    }

    fn collect_with(&mut self, call: impl Fn(&mut Box<dyn Collector>, u64, &mut Vec<Record>)) {
        if self.collectors.is_empty() {
            return;
        }
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        for c in &mut self.collectors {
            let out = &mut self.collected;
            if catch_unwind(AssertUnwindSafe(|| call(c, now_ns, out))).is_err() {
                self.stats.collector_panics += 1;
            }
        }
        self.stats.records_collected += self.collected.len() as u64;
        let mut collected = std::mem::take(&mut self.collected);
        for r in collected.drain(..) {
            self.push_to_batch(r);
        }
        self.collected = collected;
    }

    fn write_batch(&mut self) {
        if !self.processors.is_empty() {
            self.run_processors();
        }
        if self.batch_len == 0 {
            return;
        }
        self.stats.batches += 1;
        let n = self.batch_len as u64;
        for (sink, st) in self.sinks.iter_mut().zip(self.stats.sinks.iter_mut()) {
            let batch = &self.batch[..self.batch_len];
            match catch_unwind(AssertUnwindSafe(|| sink.write_batch(batch))) {
                Ok(Ok(())) => {
                    st.batches += 1;
                    st.records_written += n;
                }
                Ok(Err(e)) => {
                    st.errors += 1;
                    st.records_dropped += n;
                    st.last_error = Some(e.to_string());
                }
                Err(p) => {
                    st.panics += 1;
                    st.records_dropped += n;
                    st.last_error = Some(format!("panic: {}", panic_message(&*p)));
                }
            }
        }
        self.batch_len = 0;
        self.dirty = true;
    }

    /// Processors may add, remove or hold records, so they see exactly the
    /// current batch (the pool's spare records are given up).
    fn run_processors(&mut self) {
        self.batch.truncate(self.batch_len);
        for p in &mut self.processors {
            let batch = &mut self.batch;
            if catch_unwind(AssertUnwindSafe(|| p.process(batch))).is_err() {
                // A processor that panicked may have left the batch half
                // rewritten (e.g. half scrubbed): drop it rather than risk a leak.
                self.stats.collector_panics += 1;
                self.stats.processor_dropped += self.batch.len() as u64;
                self.batch.clear();
            }
        }
        self.batch_len = self.batch.len();
    }

    fn flush_sinks(&mut self) {
        self.report_drops();
        self.for_each_sink(|s| s.flush());
        self.dirty = false;
    }

    /// Hands the drops counted since the last report to the sinks, so a
    /// store shows them (`ats trace stats`) after the process is gone.
    fn report_drops(&mut self) {
        let ring = self.shared.ring.stats();
        let mut now: Vec<(&'static str, u64)> = vec![
            ("ring_full", ring.dropped_full),
            ("too_large", ring.dropped_too_large),
            ("closed", ring.dropped_closed),
            ("sink_error", self.stats.dropped_sink_error()),
            ("decode_error", self.stats.decode_errors),
            ("processor_panic", self.stats.processor_dropped),
        ];
        for st in &self.stats.sinks {
            for &(reason, n) in &st.drops {
                match now.iter_mut().find(|(r, _)| *r == reason) {
                    Some(e) => e.1 += n,
                    None => now.push((reason, n)),
                }
            }
        }
        let mut deltas: Vec<(&str, u64)> = Vec::new();
        for (reason, total) in now {
            let reported = match self.drops_reported.iter_mut().find(|(r, _)| *r == reason) {
                Some(e) => &mut e.1,
                None => {
                    self.drops_reported.push((reason, 0));
                    &mut self.drops_reported.last_mut().expect("just pushed").1
                }
            };
            if total > *reported {
                deltas.push((reason, total - *reported));
                *reported = total;
            }
        }
        if !deltas.is_empty() {
            self.for_each_sink(|s| s.record_drops(&deltas));
        }
    }

    /// Copies each sink's own counters and drop totals into the stats.
    fn refresh_sink_counters(&mut self) {
        for (sink, st) in self.sinks.iter().zip(self.stats.sinks.iter_mut()) {
            if let Ok((counters, drops)) = catch_unwind(AssertUnwindSafe(|| (sink.counters(), sink.drop_totals()))) {
                st.counters = counters;
                st.drops = drops;
            }
        }
    }

    fn close_sinks(&mut self, deadline: Instant) {
        self.for_each_sink(|s| s.close_by(deadline));
    }

    fn for_each_sink(&mut self, mut f: impl FnMut(&mut dyn Sink) -> Result<(), super::SinkError>) {
        for (sink, st) in self.sinks.iter_mut().zip(self.stats.sinks.iter_mut()) {
            match catch_unwind(AssertUnwindSafe(|| f(sink.as_mut()))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    st.errors += 1;
                    st.last_error = Some(e.to_string());
                }
                Err(p) => {
                    st.panics += 1;
                    st.last_error = Some(format!("panic: {}", panic_message(&*p)));
                }
            }
        }
    }

    fn publish_stats(&self) {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone_from(&self.stats);
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = p.downcast_ref::<&str>() {
        s
    } else if let Some(s) = p.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}
