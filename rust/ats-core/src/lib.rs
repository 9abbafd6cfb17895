//! `ats-core`: the hot path of ATS, with no Python in it.
//!
//! Data flows one way: a statement is normalised and fingerprinted ([`sql`]),
//! free text is scrubbed ([`scrub`]), a sampler decides ([`sampling`]), metrics
//! are aggregated ([`metrics`]), the record is encoded ([`record`]) into a
//! bounded ring ([`ring`]) that a background [`flusher`] drains into [`sink`]s;
//! [`otlp`] encodes record batches as OpenTelemetry (OTLP) requests.

pub mod clock;
pub mod export;
pub mod flusher;
pub mod ids;
pub mod intern;
pub mod metrics;
pub mod otlp;
pub mod query;
pub mod record;
pub mod ring;
pub mod sampling;
pub mod scrub;
pub mod sink;
pub mod sql;
pub mod stage;
