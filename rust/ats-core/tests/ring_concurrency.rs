//! Ring under real contention: producers that are told "Ok" lose nothing,
//! every drop is counted, nothing is duplicated or torn, per-producer order
//! holds.

use ats_core::ring::{DropReason, Ring};
use proptest::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Payload: producer id (1), sequence (8), then `len` bytes derived from both.
fn make(producer: u8, seq: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(9 + len);
    v.push(producer);
    v.extend_from_slice(&seq.to_le_bytes());
    v.extend((0..len).map(|i| (i as u64 ^ seq ^ (u64::from(producer) * 31)) as u8));
    v
}

struct Outcome {
    ok: Vec<u64>,
    full: u64,
    attempted: u64,
}

fn run(capacity: usize, producers: u8, per_producer: u64, max_len: usize) {
    let ring = Arc::new(Ring::new(capacity));
    let done = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for p in 0..producers {
        let ring = ring.clone();
        handles.push(std::thread::spawn(move || {
            let mut out = Outcome {
                ok: Vec::new(),
                full: 0,
                attempted: 0,
            };
            for seq in 0..per_producer {
                let len = (seq as usize * 7 + p as usize * 13) % (max_len + 1);
                out.attempted += 1;
                let rec = make(p, seq, len);
                // Alternate the copying and the in-place API.
                let res = if seq % 2 == 0 {
                    ring.push(&rec)
                } else {
                    ring.push_with(rec.len(), |b| b.copy_from_slice(&rec))
                };
                match res {
                    Ok(()) => out.ok.push(seq),
                    Err(DropReason::Full) => out.full += 1,
                    Err(e) => panic!("unexpected drop {e}"),
                }
            }
            out
        }));
    }
    let consumer = {
        let ring = ring.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut got: Vec<Vec<u64>> = vec![Vec::new(); producers as usize];
            let mut check = |b: &[u8]| {
                let p = b[0];
                let seq = u64::from_le_bytes(b[1..9].try_into().unwrap());
                let len = b.len() - 9;
                assert_eq!(b, make(p, seq, len).as_slice(), "torn record");
                got[p as usize].push(seq);
            };
            loop {
                let finished = done.load(Ordering::Acquire);
                // Small batches so draining interleaves with producers.
                let n = ring.drain(512, &mut check);
                if n == 0 {
                    if finished && ring.is_empty() {
                        break;
                    }
                    std::thread::yield_now();
                }
            }
            got
        })
    };
    let outcomes: Vec<Outcome> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    done.store(true, Ordering::Release);
    let got = consumer.join().unwrap();

    let stats = ring.stats();
    let attempted: u64 = outcomes.iter().map(|o| o.attempted).sum();
    let ok: u64 = outcomes.iter().map(|o| o.ok.len() as u64).sum();
    let full: u64 = outcomes.iter().map(|o| o.full).sum();
    assert_eq!(attempted, u64::from(producers) * per_producer);
    assert_eq!(ok + full, attempted);
    assert_eq!(stats.pushed, ok);
    assert_eq!(stats.drained, ok);
    assert_eq!(stats.dropped_full, full);
    assert_eq!(stats.pushed + stats.dropped_total(), attempted);
    for (p, o) in outcomes.iter().enumerate() {
        // Exactly the Ok'd sequence numbers, once each, in push order.
        assert_eq!(got[p], o.ok, "producer {p}");
    }
    assert!(ring.is_empty());
    assert!(stats.high_water_bytes <= ring.capacity_bytes());
}

#[test]
fn four_producers_small_ring_with_drops() {
    run(4096, 4, 20_000, 200);
}

#[test]
fn four_producers_roomy_ring() {
    run(1 << 20, 4, 20_000, 64);
}

#[test]
fn close_under_contention_accounts_every_attempt() {
    let ring = Arc::new(Ring::new(1 << 16));
    let handles: Vec<_> = (0..4u8)
        .map(|p| {
            let ring = ring.clone();
            std::thread::spawn(move || {
                let (mut ok, mut dropped) = (0u64, 0u64);
                for seq in 0..50_000u64 {
                    match ring.push(&make(p, seq, 16)) {
                        Ok(()) => ok += 1,
                        Err(_) => dropped += 1,
                    }
                }
                (ok, dropped)
            })
        })
        .collect();
    let mut drained = 0u64;
    for _ in 0..50 {
        drained += ring.drain(usize::MAX, |_| {}) as u64;
    }
    ring.close();
    let totals: Vec<(u64, u64)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // After close and all producers returned, everything reserved is committed.
    drained += ring.drain(usize::MAX, |_| {}) as u64;
    let ok: u64 = totals.iter().map(|t| t.0).sum();
    let dropped: u64 = totals.iter().map(|t| t.1).sum();
    let s = ring.stats();
    assert_eq!(ok + dropped, 200_000);
    assert_eq!(drained, ok);
    assert_eq!(s.pushed, ok);
    assert_eq!(s.dropped_total(), dropped);
    assert!(ring.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn lose_nothing_but_what_was_dropped(cap_log in 12u32..16, producers in 1u8..5, n in 100u64..3000, max_len in 0usize..600) {
        run(1 << cap_log, producers, n, max_len);
    }
}
