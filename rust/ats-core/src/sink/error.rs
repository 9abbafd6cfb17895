//! Typed errors of the sinks. The flusher maps them to its own `SinkError`
//! at integration; a failed batch is counted as dropped, never retried
//! in a way that could duplicate rows.

use std::io;
use std::path::PathBuf;

/// Errors of the embedded SQLite store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create store directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },

    #[error("sqlite error: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// The store was written by a newer ATS; refusing to touch it keeps that
    /// version's data intact.
    #[error("store schema version {found} is newer than this ATS supports ({supported}); upgrade ATS or use another store path")]
    SchemaTooNew { found: u32, supported: u32 },

    /// `meta.schema_version` is missing or not a number: not an ATS store, or damaged.
    #[error("store meta table is invalid: {0}")]
    InvalidMeta(String),

    /// The journal mode could not be switched to WAL (e.g. a read-only or
    /// network filesystem); without WAL a killed writer could block readers.
    #[error("store could not enable WAL journal mode (got {0:?})")]
    NoWal(String),

    #[error("cannot stat store file {path}: {source}")]
    Stat { path: PathBuf, source: io::Error },

    #[error("store is closed")]
    Closed,

    /// `open_readonly` found an older layout; opening the store for writing
    /// (the flusher does) upgrades it.
    #[error("store schema version {found} is older than this ATS reads ({supported}); open it for writing once to upgrade it")]
    SchemaTooOld { found: u32, supported: u32 },

    #[error("store was opened read-only")]
    ReadOnly,

    /// A stored row does not decode (written by something else, or damaged).
    #[error("store row is invalid: {0}")]
    InvalidRow(String),
}

/// Errors of the JSONL file sink.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    #[error("cannot create directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },

    #[error("cannot list directory {path}: {source}")]
    ReadDir { path: PathBuf, source: io::Error },

    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },

    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },

    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },

    #[error("cannot remove {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },

    #[error("invalid JSONL sink configuration: {0}")]
    Config(&'static str),

    #[error("JSONL sink is closed")]
    Closed,
}
