//! The contract between the flusher and its sinks.
//!
//! The flusher thread decodes records from the ring and hands them to every
//! sink in batches. A sink owns its I/O; it is called from exactly one thread
//! (the flusher), so it needs `Send` but not `Sync`. Errors are returned, not
//! panicked: the flusher counts them per sink and drops the failed batch
//! (reason `sink_error`) without stopping. A panic inside a sink is caught and
//! counted the same way, but a sink must not rely on that.

use crate::record::Record;

/// A destination for decoded record batches (SQLite store, JSONL files, OTLP...).
pub trait Sink: Send {
    /// Stable short name used in stats and error messages, e.g. `sqlite`.
    fn name(&self) -> &str;
    /// Write one batch. The slice is only valid for the duration of the call.
    fn write_batch(&mut self, batch: &[Record]) -> Result<(), SinkError>;
    /// Make everything written so far durable / visible to readers.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Final flush and release of resources; called once at shutdown.
    fn close(&mut self) -> Result<(), SinkError> {
        self.flush()
    }

    /// Adds newly counted drops (`(reason, count)` deltas) to whatever the
    /// sink keeps for `ats trace stats`. Default: nothing to keep.
    fn record_drops(&mut self, _drops: &[(&str, u64)]) -> Result<(), SinkError> {
        Ok(())
    }

    /// Records this sink discarded by design (not failed writes), as a cumulative
    /// `(reason, total)`: the flusher reports the growth with the other drops, so
    /// a store shows them too. Default: the sink never discards.
    fn own_drops(&self) -> Option<(&'static str, u64)> {
        None
    }
}

/// Why a sink call failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{sink}: {message}")]
    Failed { sink: String, message: String },
}

/// A source of records that are produced on the flusher thread itself rather
/// than pushed through the ring (e.g. periodic metric snapshots). Polled once
/// per flush cycle; whatever it appends to `out` is written with that cycle's
/// batches.
pub trait Collector: Send {
    fn collect(&mut self, now_ns: u64, out: &mut Vec<Record>);

    /// Called once at shutdown, after the ring is drained: the last chance
    /// to emit (e.g. a final metric snapshot for a short-lived process).
    fn finish(&mut self, now_ns: u64, out: &mut Vec<Record>) {
        self.collect(now_ns, out);
    }
}

/// A stage between decoding and the sinks, on the flusher thread: it may
/// rewrite records (scrubbing), drop them, or hold them back and release
/// them in a later batch (tail sampling). Every sink sees its output.
pub trait Processor: Send {
    fn name(&self) -> &str;
    fn process(&mut self, batch: &mut Vec<Record>);

    /// Called once at shutdown: release anything still held.
    fn finish(&mut self, _out: &mut Vec<Record>) {}
}
