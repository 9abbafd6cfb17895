//! Sink throughput: writes small spans in batches (default 4,096) to the SQLite
//! store and to JSONL files and prints records/s (only `write_batch` /
//! `flush` / `close` are timed, not building the records).
//!
//! `cargo run -p ats-core --release --example store_throughput [-- RECORDS [MODE [BATCH]]]`
//! (default 1,000,000 records, mode `all`, batches of 4,096). Modes: `all`,
//! `build` (record building only), `store` (every store variant), `store:N`
//! (variant N), `store-full` (the default store only), `encode` (JSONL
//! encoding without I/O), `jsonl`. Files go to a temporary directory.
//!
//! `JSONL_BUFFER_KIB=N` overrides the JSONL sink's write buffer size.
//!
//! Wall-clock rates on a shared machine are noisy; each line also prints the
//! process CPU time, which includes building the records (see `build`).

use std::time::{Duration, Instant};

use ats_core::record::{AttrValue, Envelope, Record, SpanRecord, Status};
use ats_core::sink::{JsonlConfig, JsonlSink, SqliteStore, StoreOptions};

const BASE_NS: u64 = 1_760_623_265_345_000_000; // 2025-10-16T14:01:05.345Z

/// A small `driver.query` span: envelope, air id and two attributes.
fn span(i: u64) -> Record {
    // ~8 spans per trace; trace ids are scattered like real random ids.
    let trace = u128::from((i / 8).wrapping_mul(0x9e37_79b9_7f4a_7c15)) << 64 | u128::from(i / 8);
    Record::Span(SpanRecord {
        envelope: Envelope {
            ts_ns: BASE_NS + i * 1_000,
            tenant: "acme".into(),
            workspace: "prod-eu".into(),
            region: "eu-west-2".into(),
            dialect: "sqlite".into(),
            trace_id: trace,
            span_id: i.wrapping_mul(0xff51_afd7_ed55_8ccd) | 1,
            parent_span_id: if i.is_multiple_of(8) {
                0
            } else {
                (i - 1).wrapping_mul(0xff51_afd7_ed55_8ccd) | 1
            },
            air_id: Some(0x9f3a_0000_0000_0000 | (i % 64)),
            plan_hash: None,
        },
        name: "driver.query".into(),
        component: "ats-sqlite3".into(),
        end_ns: BASE_NS + i * 1_000 + 250_000,
        status: Status::Ok,
        attributes: vec![
            ("db.operation".into(), AttrValue::Str("SELECT".into())),
            ("db.rows".into(), AttrValue::I64((i % 100) as i64)),
        ],
    })
}

/// Re-id the reusable batch for records `first..first+BATCH` (not timed).
fn fill(batch: &mut Vec<Record>, first: u64, n: u64) {
    batch.clear();
    batch.extend((first..first + n).map(span));
}

fn run(
    total: u64,
    batch_len: usize,
    mut write: impl FnMut(&[Record]),
    finish: impl FnOnce(),
) -> Duration {
    let mut batch = Vec::with_capacity(batch_len);
    let mut timed = Duration::ZERO;
    let mut written = 0;
    while written < total {
        let n = (total - written).min(batch_len as u64) as usize;
        fill(&mut batch, written, n as u64);
        let t = Instant::now();
        write(&batch[..n]);
        timed += t.elapsed();
        written += n as u64;
    }
    let t = Instant::now();
    finish();
    timed + t.elapsed()
}

/// CPU seconds (user + system) this process has used so far. The machine
/// is shared, so wall-clock rates are noisy; CPU time shows the work.
fn cpu_secs() -> f64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes the struct we pass.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) } == 0;
    if !ok {
        return 0.0;
    }
    // SAFETY: initialised by the successful call above (and zeroed before).
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn report(what: &str, total: u64, d: Duration, cpu: f64, bytes: u64) {
    println!(
        "{what:<30} {total} records in {:.3} s = {:>9.0} records/s  (CPU {:.2} s incl. building records; {:.1} MiB on disk)",
        d.as_secs_f64(),
        total as f64 / d.as_secs_f64(),
        cpu,
        bytes as f64 / (1 << 20) as f64
    );
}

fn main() {
    let total: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    // all | store | store-full | jsonl
    let which = std::env::args().nth(2).unwrap_or_else(|| "all".into());
    let batch_len: usize = std::env::args()
        .nth(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or(4096)
        .max(1);
    let dir = tempfile::tempdir().expect("temp dir");

    // The default configuration first; then variants that show what each
    // part costs (commit per batch, secondary indexes dropped).
    let per_batch = StoreOptions {
        group_max_records: 1,
        ..StoreOptions::default()
    };
    let grouped = StoreOptions::default();
    let big = StoreOptions {
        group_max_records: 262_144,
        ..StoreOptions::default()
    };
    let variants: &[(&str, StoreOptions, &str)] = &[
        ("sqlite store (default)", grouped, ""),
        ("sqlite, commit per batch", per_batch, ""),
        ("sqlite, groups of 262,144", big, ""),
        (
            "sqlite, with spans_start_ns index",
            grouped,
            "CREATE INDEX spans_start_ns ON spans(start_ns);",
        ),
        (
            "sqlite, no spans_name index",
            grouped,
            "DROP INDEX spans_name;",
        ),
        (
            "sqlite, no auto-checkpoint",
            grouped,
            "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = -1;",
        ),
        (
            "sqlite, no spans_air_id index",
            grouped,
            "DROP INDEX spans_air_id;",
        ),
        (
            "sqlite, 2 MiB page cache",
            grouped,
            "PRAGMA cache_size = -2048;",
        ),
        (
            "sqlite, 8 MiB page cache",
            grouped,
            "PRAGMA cache_size = -8192;",
        ),
        (
            "sqlite, no secondary index",
            grouped,
            "DROP INDEX spans_trace_key; DROP INDEX spans_name; \
             DROP INDEX spans_air_id; DROP INDEX traces_start_ns;",
        ),
    ];
    let n_variants = match which.as_str() {
        "all" | "store" => variants.len(),
        "store-full" => 1,
        _ => 0,
    };
    // `store:N` runs only variant N.
    let only: Option<usize> = which.strip_prefix("store:").and_then(|n| n.parse().ok());
    for (i, (what, opts, ddl)) in variants.iter().enumerate() {
        if only.map_or(i >= n_variants, |o| o != i) {
            continue;
        }
        let mut store = SqliteStore::open_with(dir.path().join(format!("ats{i}.db")), *opts)
            .expect("open store");
        store
            .connection()
            .expect("conn")
            .execute_batch(ddl)
            .expect("ddl");
        let store_cell = std::cell::RefCell::new(&mut store);
        let cpu0 = cpu_secs();
        let d = run(
            total,
            batch_len,
            |b| store_cell.borrow_mut().write_batch(b).expect("store write"),
            || store_cell.borrow_mut().flush().expect("flush"),
        );
        let stats = store.stats().expect("stats");
        assert_eq!(stats.spans, total);
        report(what, total, d, cpu_secs() - cpu0, stats.bytes);
        store.close().expect("close");
    }

    if matches!(which.as_str(), "all" | "jsonl" | "encode") {
        // The JSONL sink's own CPU work: encoding lines into a 1 MiB buffer (the sink default),
        // without the write(2) copy into the page cache.
        let mut out = String::with_capacity(2 << 20);
        let mut ts = ats_core::sink::civil_time::TimestampWriter::new();
        let mut bytes = 0u64;
        let cpu0 = cpu_secs();
        let d = run(
            total,
            batch_len,
            |b| {
                for rec in b {
                    ats_core::sink::jsonl::encode_record_with(&mut out, rec, &mut ts);
                }
                if out.len() >= 1 << 20 {
                    bytes += out.len() as u64;
                    out.clear();
                }
            },
            || {},
        );
        report(
            "jsonl encode only (no I/O)",
            total,
            d,
            cpu_secs() - cpu0,
            bytes + out.len() as u64,
        );
    }
    if !matches!(which.as_str(), "all" | "jsonl") {
        return;
    }
    let mut cfg = JsonlConfig::new(dir.path().join("jsonl"));
    if let Some(kib) = std::env::var("JSONL_BUFFER_KIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        cfg.buffer_bytes = kib.max(1) << 10;
    }
    let mut sink = JsonlSink::open(cfg).expect("open jsonl");
    let sink_cell = std::cell::RefCell::new(&mut sink);
    let close_time = std::cell::Cell::new(Duration::ZERO);
    let cpu0 = cpu_secs();
    let d = run(
        total,
        batch_len,
        |b| sink_cell.borrow_mut().write_batch(b).expect("jsonl write"),
        || {
            let t = Instant::now();
            sink_cell.borrow_mut().close().expect("close");
            close_time.set(t.elapsed());
        },
    );
    let st = sink.stats();
    assert_eq!(st.lines_written, total);
    report("jsonl", total, d, cpu_secs() - cpu0, st.bytes_written);
    // The final fsync of the whole run is part of the timing above; the
    // flusher's steady state has no fsync (see the sink's durability docs).
    println!(
        "{:<30} of which close (flush + fsync of {:.0} MiB): {:.3} s; without it {:>9.0} records/s",
        "",
        st.bytes_written as f64 / (1 << 20) as f64,
        close_time.get().as_secs_f64(),
        total as f64 / (d - close_time.get()).as_secs_f64()
    );
}
