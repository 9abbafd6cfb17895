//! Codec: exact layout, round trips of every kind (proptest), and a decoder
//! that never panics on junk, truncations or mutations.

use ats_core::record::codec::{self, layout, DecodeError, EncodeError};
use ats_core::record::*;
use proptest::prelude::*;

fn env() -> Envelope {
    Envelope {
        ts_ns: 1_760_623_577_441_000_000,
        tenant: "acme".into(),
        workspace: "prod-eu".into(),
        region: "eu-west-2".into(),
        dialect: "mysql".into(),
        trace_id: 0,
        span_id: 0,
        parent_span_id: 0,
        air_id: Some(0x9f3a),
        plan_hash: Some(0xab12),
    }
}

fn reward() -> RewardRecord {
    RewardRecord {
        envelope: env(),
        class: SloClass::L,
        latency_ms: 12.3,
        cpu_ms: 1.8,
        io_bytes: 4096,
        rows: 42,
        success: true,
        reward: -14.1,
        engine: "8.0.36".into(),
    }
}

fn enc(r: &Record) -> Vec<u8> {
    let mut v = Vec::new();
    let n = codec::encode_record(r, &mut v).expect("encode");
    assert_eq!(n, v.len());
    assert_eq!(n, codec::encoded_len(r));
    v
}

#[test]
fn reward_layout_is_exact_and_compact() {
    let r = Record::Reward(reward());
    let b = enc(&r);
    // Header.
    assert_eq!(&b[..4], &[0xA7, 1, 4, 0b0011_1000]);
    assert_eq!(
        u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize,
        b.len()
    );
    // ts, air, plan.
    assert_eq!(&b[8..16], &1_760_623_577_441_000_000u64.to_le_bytes());
    assert_eq!(&b[16..24], &0x9f3au64.to_le_bytes());
    assert_eq!(&b[24..32], &0xab12u64.to_le_bytes());
    assert_eq!(&b[32..40], &12.3f64.to_le_bytes());
    assert_eq!(&b[40..48], &1.8f64.to_le_bytes());
    assert_eq!(&b[48..56], &(-14.1f64).to_le_bytes());
    assert_eq!(b[56], 0); // class L
    assert_eq!(&b[57..62], b"\x04acme");
    // 57 fixed + 2 (io 4096) + 1 (rows) + 5 string lengths = 65, + 34 string bytes.
    let string_bytes =
        "acme".len() + "prod-eu".len() + "eu-west-2".len() + "mysql".len() + "8.0.36".len();
    assert_eq!(b.len(), 65 + string_bytes);
    assert_eq!(
        b.len() - string_bytes - 5,
        60,
        "non-string bytes of a reward"
    );
    assert_eq!(codec::decode(&b), Ok(r));
}

#[test]
fn span_with_trace_ids_round_trips() {
    let mut e = env();
    e.trace_id = 0x4a1b_0000_0000_0000_0000_0000_0000_0001;
    e.span_id = 0x9f3a;
    e.parent_span_id = 7;
    let attrs = [
        ("db.system", AttrRef::Str("mysql")),
        ("net.peer.port", AttrRef::I64(5432)),
        ("ratio", AttrRef::F64(-0.5)),
        ("cached", AttrRef::Bool(true)),
    ];
    let s = SpanRef {
        envelope: (&e).into(),
        name: "driver.query",
        component: "ats-sqlite3",
        end_ns: e.ts_ns + 1234,
        status: Status::Error,
        attributes: &attrs,
    };
    let mut buf = vec![0u8; codec::encoded_len_span(&s)];
    assert_eq!(codec::encode_span(&s, &mut buf), Ok(buf.len()));
    assert_eq!(buf[3], 0b0001_1111);
    assert_eq!(codec::decode(&buf), Ok(Record::Span(s.to_owned_record())));
    // Too small a buffer is an error, not a panic or a partial write.
    let mut small = vec![0u8; buf.len() - 1];
    assert_eq!(
        codec::encode_span(&s, &mut small),
        Err(EncodeError::BufferTooSmall {
            needed: buf.len(),
            available: buf.len() - 1
        })
    );
    assert!(small.iter().all(|&x| x == 0));
}

#[test]
fn decode_errors_are_typed() {
    let good = enc(&Record::Reward(reward()));
    assert_eq!(codec::decode(&[]), Err(DecodeError::Truncated));
    assert_eq!(codec::decode(&good[..7]), Err(DecodeError::Truncated));
    assert_eq!(
        codec::decode(&good[..good.len() - 1]),
        Err(DecodeError::Truncated)
    );

    let mut b = good.clone();
    b[0] = 0x00;
    assert_eq!(codec::decode(&b), Err(DecodeError::BadMagic { found: 0 }));
    let mut b = good.clone();
    b[1] = 2;
    assert_eq!(
        codec::decode(&b),
        Err(DecodeError::UnsupportedVersion { found: 2 })
    );
    let mut b = good.clone();
    b[2] = 9;
    assert_eq!(
        codec::decode(&b),
        Err(DecodeError::UnknownKind { found: 9 })
    );
    let mut b = good.clone();
    b[3] |= 0x80;
    assert_eq!(
        codec::decode(&b),
        Err(DecodeError::InvalidFlags { flags: 0xB8 })
    );
    let mut b = good.clone();
    b[56] = 4;
    assert_eq!(
        codec::decode(&b),
        Err(DecodeError::InvalidEnum {
            field: "class",
            value: 4
        })
    );
    let mut b = good.clone();
    b[58] = 0xff; // inside "acme"
    assert_eq!(codec::decode(&b), Err(DecodeError::InvalidUtf8));
    let mut b = good.clone();
    b.push(0);
    assert_eq!(
        codec::decode(&b),
        Err(DecodeError::LengthMismatch {
            header: good.len() as u32,
            actual: good.len() + 1
        })
    );
    // Header and body agree on a longer length, but the body ends early.
    let mut b = good.clone();
    b.push(0);
    let n = b.len() as u32;
    b[4..8].copy_from_slice(&n.to_le_bytes());
    assert_eq!(
        codec::decode(&b),
        Err(DecodeError::TrailingBytes { extra: 1 })
    );
    // A string length far beyond the input.
    let mut b = good[..57].to_vec();
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let n = b.len() as u32;
    b[4..8].copy_from_slice(&n.to_le_bytes());
    assert_eq!(codec::decode(&b), Err(DecodeError::Truncated));
    // A length that does not fit in u32.
    let mut b = good[..57].to_vec();
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x7f]);
    let n = b.len() as u32;
    b[4..8].copy_from_slice(&n.to_le_bytes());
    assert_eq!(codec::decode(&b), Err(DecodeError::LengthOverflow));
}

#[test]
fn stream_of_records_decodes_with_prefix() {
    let a = Record::Reward(reward());
    let mut r2 = reward();
    r2.success = false;
    r2.class = SloClass::S;
    let b = Record::Reward(r2);
    let mut buf = enc(&a);
    buf.extend(enc(&b));
    let (ra, na) = codec::decode_prefix(&buf).unwrap();
    let (rb, nb) = codec::decode_prefix(&buf[na..]).unwrap();
    assert_eq!((ra, rb), (a, b));
    assert_eq!(na + nb, buf.len());
}

#[test]
fn huge_attribute_count_does_not_allocate_or_panic() {
    // A span header claiming 2^32-1 attributes in a tiny record.
    let s = SpanRecord {
        envelope: Envelope::default(),
        name: String::new(),
        component: String::new(),
        end_ns: 0,
        status: Status::Unset,
        attributes: vec![],
    };
    let mut b = enc(&Record::Span(s));
    b.pop(); // attr count 0
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let n = b.len() as u32;
    b[4..8].copy_from_slice(&n.to_le_bytes());
    assert_eq!(codec::decode(&b), Err(DecodeError::Truncated));
}

#[test]
fn ten_megabytes_of_junk_is_an_error() {
    let junk = vec![0xA7u8; 10 << 20];
    assert!(codec::decode(&junk).is_err());
    let mut hdr = vec![layout::MAGIC, layout::VERSION, layout::KIND_LOG, 0];
    hdr.extend_from_slice(&(10u32 << 20).to_le_bytes());
    let mut big = hdr.clone();
    big.resize(10 << 20, 0x80);
    assert!(codec::decode(&big).is_err());
}

// ------------------------------------------------------------ strategies

fn s() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z._-]{0,12}",
        1 => any::<String>(),
        1 => proptest::collection::vec(any::<char>(), 0..200).prop_map(|v| v.into_iter().collect()),
    ]
}

// Finite floats, so PartialEq round trips are exact (NaN != NaN); NaN and
// signed zero are covered byte-wise in `nan_payloads_survive`.
fn f() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("not nan", |x| !x.is_nan()),
        Just(0.0),
        Just(-0.0)
    ]
}

fn envelope() -> BoxedStrategy<Envelope> {
    (
        any::<u64>(),
        (s(), s(), s(), s()),
        prop_oneof![Just(0u128), any::<u128>()],
        prop_oneof![Just(0u64), any::<u64>()],
        prop_oneof![Just(0u64), any::<u64>()],
        any::<Option<u64>>(),
        any::<Option<u64>>(),
    )
        .prop_map(
            |(
                ts_ns,
                (tenant, workspace, region, dialect),
                trace_id,
                span_id,
                parent_span_id,
                air_id,
                plan_hash,
            )| Envelope {
                ts_ns,
                tenant,
                workspace,
                region,
                dialect,
                trace_id,
                span_id,
                parent_span_id,
                air_id,
                plan_hash,
            },
        )
        .boxed()
}

fn attrs() -> impl Strategy<Value = Attributes> {
    proptest::collection::vec(
        (
            s(),
            prop_oneof![
                s().prop_map(AttrValue::Str),
                any::<i64>().prop_map(AttrValue::I64),
                f().prop_map(AttrValue::F64),
                any::<bool>().prop_map(AttrValue::Bool),
            ],
        ),
        0..10,
    )
}

fn record() -> BoxedStrategy<Record> {
    let status = prop_oneof![Just(Status::Unset), Just(Status::Ok), Just(Status::Error)];
    let span = (envelope(), s(), s(), any::<u64>(), status, attrs()).prop_map(
        |(envelope, name, component, end_ns, status, attributes)| {
            Record::Span(SpanRecord {
                envelope,
                name,
                component,
                end_ns,
                status,
                attributes,
            })
        },
    );
    let log = (envelope(), s(), s(), any::<u8>(), s(), attrs()).prop_map(
        |(envelope, event, component, sev, body, attributes)| {
            Record::Log(LogRecord {
                envelope,
                event,
                component,
                severity: Severity(sev),
                body,
                attributes,
            })
        },
    );
    let kind = prop_oneof![
        Just(MetricKind::Counter),
        Just(MetricKind::Gauge),
        Just(MetricKind::Histogram)
    ];
    let hist = proptest::option::of(
        (
            any::<u64>(),
            f(),
            f(),
            f(),
            proptest::collection::vec(f(), 0..8),
            proptest::collection::vec(any::<u64>(), 0..9),
        )
            .prop_map(|(count, sum, min, max, bounds, counts)| HistogramData {
                count,
                sum,
                min,
                max,
                bounds,
                counts,
            }),
    );
    let metric = (
        envelope(),
        (s(), s()),
        kind,
        any::<u64>(),
        proptest::collection::vec((s(), s()), 0..5),
        f(),
        hist,
    )
        .prop_map(
            |(envelope, (name, unit), kind, start_ns, labels, value, histogram)| {
                Record::Metric(MetricPoint {
                    envelope,
                    name,
                    unit,
                    kind,
                    start_ns,
                    labels,
                    value,
                    histogram,
                })
            },
        );
    let class = prop_oneof![
        Just(SloClass::L),
        Just(SloClass::B),
        Just(SloClass::A),
        Just(SloClass::S)
    ];
    let reward = (
        envelope(),
        class,
        f(),
        f(),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
        f(),
        s(),
    )
        .prop_map(
            |(envelope, class, latency_ms, cpu_ms, io_bytes, rows, success, reward, engine)| {
                Record::Reward(RewardRecord {
                    envelope,
                    class,
                    latency_ms,
                    cpu_ms,
                    io_bytes,
                    rows,
                    success,
                    reward,
                    engine,
                })
            },
        );
    // Boxed: the nested tuple strategies are large enough to overflow a
    // debug-build test thread's stack when two are generated at once.
    prop_oneof![span.boxed(), log.boxed(), metric.boxed(), reward.boxed()].boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_every_kind(r in record()) {
        let b = enc(&r);
        prop_assert_eq!(codec::decode(&b), Ok(r.clone()));
        let (r2, n) = codec::decode_prefix(&b).unwrap();
        prop_assert_eq!(r2, r);
        prop_assert_eq!(n, b.len());
    }

    #[test]
    fn decode_into_reuses_any_previous_record(a in record(), b in record()) {
        let mut slot = a;
        codec::decode_into(&enc(&b), &mut slot).unwrap();
        prop_assert_eq!(slot, b);
    }

    #[test]
    fn truncations_never_decode_or_panic(r in record(), cut in any::<prop::sample::Index>()) {
        let b = enc(&r);
        let at = cut.index(b.len());
        prop_assert!(codec::decode(&b[..at]).is_err());
    }

    #[test]
    fn mutations_never_panic(r in record(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut b = enc(&r);
        for (i, x) in flips {
            let i = i.index(b.len());
            b[i] ^= x | 1;
        }
        if let Ok(d) = codec::decode(&b) {
            // Whatever decodes must re-encode to a record that decodes the same.
            let b2 = enc(&d);
            let d2 = codec::decode(&b2).unwrap();
            prop_assert_eq!(enc(&d2), b2);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = codec::decode(&b);
        let _ = codec::decode_prefix(&b);
    }

    #[test]
    fn arbitrary_bytes_after_valid_header(kind in 1u8..=4, flags in 0u8..64, body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut b = vec![layout::MAGIC, layout::VERSION, kind, flags, 0, 0, 0, 0];
        b.extend(body);
        let n = b.len() as u32;
        b[4..8].copy_from_slice(&n.to_le_bytes());
        let _ = codec::decode(&b);
    }
}

#[test]
fn nan_payloads_survive() {
    let mut r = reward();
    r.latency_ms = f64::from_bits(0x7ff8_0000_dead_beef);
    r.cpu_ms = -0.0;
    let b = enc(&Record::Reward(r));
    let Record::Reward(d) = codec::decode(&b).unwrap() else {
        panic!("kind")
    };
    assert_eq!(d.latency_ms.to_bits(), 0x7ff8_0000_dead_beef);
    assert_eq!(d.cpu_ms.to_bits(), (-0.0f64).to_bits());
}

/// Seeds the `record_decode` fuzz corpus with valid encodings of every kind:
/// `ATS_FUZZ_CORPUS=fuzz/corpus/record_decode cargo test --test codec_roundtrip -- --ignored`.
#[test]
#[ignore]
fn write_fuzz_corpus() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let Ok(dir) = std::env::var("ATS_FUZZ_CORPUS") else {
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    let mut runner = TestRunner::deterministic();
    for i in 0..64 {
        let r = record().new_tree(&mut runner).unwrap().current();
        std::fs::write(format!("{dir}/seed-{i:02}"), enc(&r)).unwrap();
    }
    std::fs::write(format!("{dir}/reward"), enc(&Record::Reward(reward()))).unwrap();
}
