//! Sinks: where the flusher thread writes decoded record batches.
//!
//! - [`SqliteStore`] — the default, an embedded SQLite store (`./.ats/ats.db`)
//!   that the `ats trace …` commands read ([`sqlite_store`], [`store_schema`]).
//! - [`JsonlSink`] — one ATS-envelope JSON object per line, rotated daily by
//!   the record's UTC date, with per-file and per-directory size caps ([`jsonl`]).
//! - [`HandoffSink`] — a bounded queue of batches for a consumer thread (the
//!   Python `ats_process_batch` drain); drops `handoff_full` ([`handoff`]).
//!
//! Both expose the same inherent methods — `name`, `write_batch`, `flush`,
//! `close` — which the flusher's `Sink` trait wraps. Both render JSON through
//! the single writer in [`json`] and dates through [`civil_time`], so an id,
//! a float or an escaped string looks the same in every sink.

pub mod civil_time;
pub mod error;
pub mod handoff;
pub mod json;
pub mod jsonl;
pub mod sqlite_store;
pub mod store_query;
pub mod store_schema;

pub use error::{JsonlError, StoreError};
pub use handoff::{HandoffQueue, HandoffSink, HandoffSlot, HandoffStats, Popped, HANDOFF_FULL};
pub use jsonl::{read_jsonl_lenient, JsonlConfig, JsonlSink, JsonlStats, LenientRead};
pub use sqlite_store::{
    parse_air_id, parse_attributes, parse_plan_hash, parse_span_id, parse_trace_id, PruneCounts,
    PruneCutoffs, SqliteStore, StoreOptions, StoreStats, TraceSummary, DEFAULT_STORE_PATH,
};
pub mod open;
pub use open::{open_sinks, open_sinks_with, EncoderFactory, OpenError, RetentionDays, SinkSpec};
