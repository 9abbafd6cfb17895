//! Execution-plan fingerprints (`plan_hash`, rendered `ph:{:016x}`).
//!
//! Input: PostgreSQL `EXPLAIN (FORMAT JSON)` output (an array of
//! `{"Plan": {...}}`, children under `"Plans"`) or MySQL `EXPLAIN
//! FORMAT=JSON` output (`{"query_block": {...}}`). Anything else that is
//! valid JSON is hashed by the same rules.
//!
//! What is dropped before hashing: everything that varies between runs of
//! the same plan — costs, row estimates and counts, widths, timings, loops,
//! buffer/WAL/IO counters, memory and disk usage, worker counts, planning and
//! execution time, JIT details (see [`is_volatile_key`]). What is hashed:
//! the remaining tree, canonically — object keys sorted bytewise, array order
//! kept, every value tagged with its JSON type. Strings (node types,
//! relation names, filter and join conditions) are hashed through the SQL
//! normaliser's `air_id`, so `(id = 42)` and `(id = 7)` hash alike while
//! `(id = 42)` and `(name = 42)` do not.

use serde_json::Value;
use xxhash_rust::xxh3::Xxh3;

use super::dialect::Dialect;
use super::normalize::normalize;

/// Version of the plan-hash definition (hashed in; bump on any rule change).
pub const PLAN_FINGERPRINT_VERSION: u32 = 1;

/// Why a plan could not be fingerprinted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The input is not valid JSON (message from the parser).
    #[error("plan is not valid JSON: {0}")]
    InvalidJson(String),
}

/// Keys whose values are run- or statistics-dependent.
fn is_volatile_key(k: &str) -> bool {
    const EXACT: &[&str] = &[
        // PostgreSQL
        "Startup Cost",
        "Total Cost",
        "Plan Rows",
        "Plan Width",
        "Planning Time",
        "Execution Time",
        "Planning",
        "Execution",
        "Triggers",
        "JIT",
        "Heap Fetches",
        "Exact Heap Blocks",
        "Lossy Heap Blocks",
        "Sort Space Used",
        "Sort Space Type",
        "Peak Memory Usage",
        "Memory Usage",
        "Disk Usage",
        "Hash Buckets",
        "Original Hash Buckets",
        "Hash Batches",
        "Original Hash Batches",
        "Cache Hits",
        "Cache Misses",
        "Cache Evictions",
        "Cache Overflows",
        "Average Sort Space Used",
        "Peak Sort Space Used",
        "Full-sort Groups",
        "Pre-sorted Groups",
        "Sort Methods Used",
        "Sort Space Memory",
        "Sort Space Disk",
        "Group Count",
        "Conflicting Tuples",
        "Tuples Inserted",
        "Storage",
        "Maximum Storage",
        // MySQL
        "cost_info",
        "rows_examined_per_scan",
        "rows_produced_per_join",
        "filtered",
        "query_cost",
        "read_cost",
        "eval_cost",
        "prefix_cost",
        "sort_cost",
        "data_read_per_join",
        "rows",
        "r_loops",
        "r_rows",
        "r_filtered",
        "r_total_time_ms",
        "r_table_time_ms",
        "r_other_time_ms",
        "r_buffer_size",
        "r_indexes",
        "r_used_priority_queue",
        "r_output_rows",
    ];
    const PREFIX: &[&str] = &[
        "Actual ",
        "Shared ",
        "Local ",
        "Temp ",
        "I/O ",
        "WAL ",
        "Workers",
        "Rows Removed by ",
        "Planned Partitions",
        "Batches",
        "r_",
    ];
    EXACT.contains(&k) || PREFIX.iter().any(|p| k.starts_with(p))
}

fn hash_value(h: &mut Xxh3, v: &Value, dialect: Dialect) {
    match v {
        Value::Null => h.update(b"Z"),
        Value::Bool(b) => h.update(if *b { b"T" } else { b"F" }),
        Value::Number(n) => {
            let s = n.to_string();
            h.update(b"N");
            h.update(&(s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        Value::String(s) => {
            h.update(b"S");
            h.update(&normalize(s, dialect).air_id.to_le_bytes());
        }
        Value::Array(a) => {
            h.update(b"A");
            h.update(&(a.len() as u64).to_le_bytes());
            for x in a {
                hash_value(h, x, dialect);
            }
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().filter(|k| !is_volatile_key(k)).collect();
            keys.sort_unstable();
            h.update(b"O");
            h.update(&(keys.len() as u64).to_le_bytes());
            for k in keys {
                h.update(b"K");
                h.update(&(k.len() as u64).to_le_bytes());
                h.update(k.as_bytes());
                if let Some(x) = m.get(k.as_str()) {
                    hash_value(h, x, dialect);
                }
            }
        }
    }
}

/// Fingerprint an EXPLAIN plan given as JSON text.
pub fn plan_fingerprint(plan_json: &str) -> Result<u64, PlanError> {
    // serde_json bounds nesting (128) itself, so the recursion below is bounded.
    let v: Value =
        serde_json::from_str(plan_json).map_err(|e| PlanError::InvalidJson(e.to_string()))?;
    let dialect = match &v {
        Value::Object(m) if m.contains_key("query_block") => Dialect::Mysql,
        _ => Dialect::Postgresql,
    };
    let mut h = Xxh3::new();
    h.update(b"ats-plan");
    h.update(&PLAN_FINGERPRINT_VERSION.to_le_bytes());
    hash_value(&mut h, &v, dialect);
    Ok(h.digest())
}
