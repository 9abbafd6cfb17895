//! SQL statement normalisation and fingerprints.
//!
//! [`normalize`] turns a statement into redacted text (every literal becomes
//! `?`), a deterministic fingerprint (`air_id`, see [`fingerprint`] for the
//! exact, versioned definition), the operation name, the collection names and
//! the OpenTelemetry `db.query.summary`. [`StatementCache`] memoises that per
//! (dialect, text). [`plan_fingerprint`] fingerprints EXPLAIN JSON plans.
//!
//! Pipeline: [`lexer`] (byte-level, one pass, dialect-aware) → `normalize`
//! (one pass: emits text and fingerprint keys, collapses lists) with the
//! `summary` extractor fed the same tokens. Every stage is linear in the
//! input and never panics; ambiguous or truncated input is read so that more
//! text, not less, is redacted.

mod cache;
mod dialect;
pub mod interned;
pub mod fingerprint;
mod keywords;
pub mod lexer;
mod normalize;
mod plan;
mod summary;

pub use cache::{CacheStats, StatementCache};
pub use dialect::{Dialect, UnknownDialect};
pub use fingerprint::FINGERPRINT_VERSION;
pub use normalize::{normalize, Normalized};
pub use plan::{plan_fingerprint, PlanError, PLAN_FINGERPRINT_VERSION};
