//! Scrubber throughput: the clean fast path, a short dirty string, and a
//! 64 KiB application log with a realistic sprinkling of secrets.

use std::hint::black_box;

use ats_core::scrub::default_scrubber;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn pad_to(mut s: String, len: usize) -> String {
    const FILL: &str = " the request completed normally and the cache was warm";
    while s.len() < len {
        s.push_str(FILL);
    }
    s.truncate(len);
    s
}

/// A 64 KiB log: timestamps, SQL, URLs, ids; one line in twenty carries PII or
/// a credential.
fn log_text(len: usize) -> String {
    let clean = [
        "2025-10-16T12:34:56.789Z INFO  http GET /api/v1/items?page=2&limit=50 200 12.3ms req=123e4567-e89b-12d3-a456-426614174000\n",
        "2025-10-16T12:34:56.790Z DEBUG db SELECT id, name FROM users WHERE id = $1 AND created_at > '2025-01-01' LIMIT 10 (1.2ms)\n",
        "2025-10-16T12:34:56.791Z INFO  worker job=reindex shard=7 docs=10432 took=1536ms version=1.2.3 commit=3f786850e387550fdab836ed7e6dc881de23001b\n",
        "2025-10-16T12:34:56.792Z WARN  llm model=gpt-4o max_tokens=1024 prompt_tokens=512 completion_tokens=87 latency=2.1s\n",
    ];
    let dirty = [
        "2025-10-16T12:34:56.793Z ERROR auth login failed for alice@example.com password=hunter2 from /home/alice/app\n",
        "2025-10-16T12:34:56.794Z DEBUG http Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlMTIz\n",
        "2025-10-16T12:34:56.795Z INFO  db connect postgres://app:s3cr3t@db.internal:5432/prod token=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\n",
    ];
    let mut s = String::with_capacity(len + 256);
    let mut i = 0usize;
    while s.len() < len {
        if i % 20 == 19 {
            s.push_str(dirty[(i / 20) % dirty.len()]);
        } else {
            s.push_str(clean[i % clean.len()]);
        }
        i += 1;
    }
    s.truncate(len);
    s
}

fn bench(c: &mut Criterion) {
    let scrubber = default_scrubber();
    let clean = pad_to(
        "GET /api/v1/items?page=2 took 12.3ms version 1.2.3 on 2025-10-16".to_string(),
        200,
    );
    let dirty = pad_to(
        "user bob@example.com used token 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 and".to_string(),
        200,
    );
    let log = log_text(64 * 1024);
    assert!(matches!(
        scrubber.scrub(&clean),
        std::borrow::Cow::Borrowed(_)
    ));
    assert_ne!(scrubber.scrub(&dirty), dirty.as_str());

    let mut g = c.benchmark_group("scrub");
    for (name, text) in [
        ("clean_200B", &clean),
        ("email_token_200B", &dirty),
        ("log_64KiB", &log),
    ] {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| scrubber.scrub(black_box(text.as_str())))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
