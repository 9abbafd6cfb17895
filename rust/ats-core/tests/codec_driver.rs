//! The compact driver record: what the application thread writes per
//! database call, and the full span the flusher decodes it into.

use ats_core::record::codec::{decode, decode_into, encode_driver_to_vec};
use ats_core::record::{AttrValue, DriverOp, DriverSpanRef, EnvelopeRef, Record, StatementRef, Status};
use proptest::prelude::*;

fn call<'a>(statement: Option<StatementRef<'a>>, error_type: Option<&'a str>) -> DriverSpanRef<'a> {
    DriverSpanRef {
        envelope: EnvelopeRef {
            ts_ns: 1_000,
            tenant: "acme",
            workspace: "",
            region: "eu-west-1",
            dialect: "postgresql",
            trace_id: 0x0af7651916cd43dd8448eb211c80319c,
            span_id: 0xb7ad6b7169203331,
            parent_span_id: 7,
            air_id: statement.map(|_| 0x1234_5678_9abc_def0),
            plan_hash: None,
        },
        end_ns: 3_001_000,
        op: DriverOp::Query,
        error_type,
        status_code: error_type.map(|_| "42P01"),
        slo_class: None,
        statement,
        statement_id: None,
        origin_id: None,
        metrics_pending: false,
        component: "ats-psycopg",
        db_namespace: "shop",
        peer_name: "db.internal",
        peer_port: 5432,
        rows: 3,
    }
}

fn s(v: &str) -> AttrValue {
    AttrValue::Str(v.to_owned())
}

#[test]
fn a_query_decodes_to_the_full_driver_span() {
    let stmt = StatementRef { text: "SELECT name FROM users WHERE id = ?", operation: "SELECT", table: "users", summary: "SELECT users" };
    let mut buf = Vec::new();
    let n = encode_driver_to_vec(&call(Some(stmt), None), &mut buf).unwrap();
    assert_eq!(n, buf.len());
    let Record::Span(span) = decode(&buf).unwrap() else { panic!("not a span") };
    assert_eq!(span.name, "driver.query");
    assert_eq!(span.component, "ats-psycopg");
    assert_eq!(span.status, Status::Ok);
    assert_eq!((span.envelope.ts_ns, span.end_ns), (1_000, 3_001_000));
    assert_eq!(span.envelope.trace_id, 0x0af7651916cd43dd8448eb211c80319c);
    assert_eq!((span.envelope.span_id, span.envelope.parent_span_id), (0xb7ad6b7169203331, 7));
    assert_eq!(span.envelope.air_id, Some(0x1234_5678_9abc_def0));
    assert_eq!((span.envelope.tenant.as_str(), span.envelope.region.as_str()), ("acme", "eu-west-1"));
    assert_eq!(span.envelope.dialect, "postgresql");
    let expected: Vec<(String, AttrValue)> = [
        ("sqlx.tenant", s("acme")),
        ("db.system", s("postgresql")),
        ("db.system.name", s("postgresql")),
        ("db.statement", s("SELECT name FROM users WHERE id = ?")),
        ("db.query.text", s("SELECT name FROM users WHERE id = ?")),
        ("db.operation", s("SELECT")),
        ("db.operation.name", s("SELECT")),
        ("db.collection.name", s("users")),
        ("db.query.summary", s("SELECT users")),
        ("db.namespace", s("shop")),
        ("net.peer.name", s("db.internal")),
        ("server.address", s("db.internal")),
        ("net.peer.port", AttrValue::I64(5432)),
        ("server.port", AttrValue::I64(5432)),
        ("db.response.returned_rows", AttrValue::I64(3)),
        ("db.sqlx.air_id", s("air:Q-123456789abcdef0")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(span.attributes, expected);
}

#[test]
fn a_failed_handshake_has_error_status_and_class_and_no_statement() {
    let mut d = call(None, Some("OperationalError"));
    d.op = DriverOp::Handshake;
    d.rows = -1;
    d.peer_port = 0;
    let mut buf = Vec::new();
    encode_driver_to_vec(&d, &mut buf).unwrap();
    let Record::Span(span) = decode(&buf).unwrap() else { panic!("not a span") };
    assert_eq!(span.name, "driver.handshake");
    assert_eq!(span.status, Status::Error);
    assert_eq!(span.envelope.air_id, None);
    let keys: Vec<&str> = span.attributes.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["sqlx.tenant", "db.system", "db.system.name", "db.namespace", "net.peer.name", "server.address", "error.type", "db.response.status_code"]
    );
    assert_eq!(span.attributes[6].1, s("OperationalError"));
    assert_eq!(span.attributes[7].1, s("42P01"));
}

#[test]
fn decoding_into_a_used_span_leaves_nothing_of_the_previous_one() {
    let stmt = StatementRef { text: "SELECT 1", operation: "SELECT", table: "", summary: "SELECT" };
    let (mut big, mut small) = (Vec::new(), Vec::new());
    encode_driver_to_vec(&call(Some(stmt), Some("DataError")), &mut big).unwrap();
    let mut d = call(None, None);
    d.op = DriverOp::Close;
    d.peer_name = "";
    d.db_namespace = "";
    d.peer_port = 0;
    d.rows = -1;
    d.envelope.tenant = "";
    encode_driver_to_vec(&d, &mut small).unwrap();
    let mut slot = decode(&big).unwrap();
    decode_into(&small, &mut slot).unwrap();
    assert_eq!(slot, decode(&small).unwrap());
    let Record::Span(span) = slot else { panic!("not a span") };
    assert_eq!(span.attributes.len(), 2, "{:?}", span.attributes);
}

#[test]
fn every_truncation_and_a_bad_op_are_errors() {
    let stmt = StatementRef { text: "SELECT ?", operation: "SELECT", table: "t", summary: "SELECT t" };
    let mut buf = Vec::new();
    encode_driver_to_vec(&call(Some(stmt), Some("E")), &mut buf).unwrap();
    for cut in 0..buf.len() {
        assert!(decode(&buf[..cut]).is_err(), "prefix of {cut} bytes decoded");
    }
    let op_at = 8 + 8 + 16 + 8 + 8 + 8 + 8; // header, ts, trace, span, parent, air, end_ns
    let mut bad = buf.clone();
    bad[op_at] = 9;
    assert!(decode(&bad).is_err());
}

proptest! {
    #[test]
    fn any_driver_call_round_trips(
        text in ".{0,200}", op_name in "[A-Z]{0,8}", table in "[a-z_]{0,12}", summary in ".{0,40}",
        err in proptest::option::of("[A-Za-z]{1,20}"), component in ".{0,20}", ns in ".{0,20}",
        peer in ".{0,30}", port in any::<u16>(), rows in any::<i64>(), op in 0u8..4,
        trace in any::<u128>(), span in any::<u64>(), parent in any::<u64>(), with_stmt in any::<bool>(),
        ts in any::<u64>(), end in any::<u64>(),
    ) {
        let stmt = StatementRef { text: &text, operation: &op_name, table: &table, summary: &summary };
        let mut d = call(with_stmt.then_some(stmt), err.as_deref());
        d.op = DriverOp::from_code(op).unwrap();
        (d.component, d.db_namespace, d.peer_name, d.peer_port, d.rows) = (&component, &ns, &peer, port, rows);
        (d.envelope.trace_id, d.envelope.span_id, d.envelope.parent_span_id) = (trace, span, parent);
        (d.envelope.ts_ns, d.end_ns) = (ts, end);
        let mut buf = Vec::new();
        encode_driver_to_vec(&d, &mut buf).unwrap();
        let Record::Span(out) = decode(&buf).unwrap() else { panic!("not a span") };
        prop_assert_eq!(out.name.as_str(), d.op.event_name());
        prop_assert_eq!(&out.component, &component);
        prop_assert_eq!((out.envelope.trace_id, out.envelope.span_id, out.envelope.parent_span_id), (trace, span, parent));
        prop_assert_eq!((out.envelope.ts_ns, out.end_ns), (ts, end));
        prop_assert_eq!(out.status, if err.is_some() { Status::Error } else { Status::Ok });
        let get = |k: &str| out.attributes.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        prop_assert_eq!(get("db.statement"), with_stmt.then(|| s(&text)));
        prop_assert_eq!(get("error.type"), err.as_deref().map(s));
        prop_assert_eq!(get("db.response.status_code"), err.as_ref().map(|_| s("42P01")));
        prop_assert_eq!(get("db.response.returned_rows"), (rows >= 0).then_some(AttrValue::I64(rows)));
        prop_assert_eq!(get("server.port"), (port != 0).then_some(AttrValue::I64(i64::from(port))));
    }
}

#[test]
fn an_slo_class_becomes_the_sqlx_class_attribute_after_the_status_code() {
    let stmt = StatementRef { text: "DROP TABLE t", operation: "DROP", table: "t", summary: "DROP t" };
    let mut d = call(Some(stmt), Some("UndefinedTable"));
    d.slo_class = Some("S");
    let mut buf = Vec::new();
    encode_driver_to_vec(&d, &mut buf).unwrap();
    let Record::Span(span) = decode(&buf).unwrap() else { panic!("not a span") };
    let tail: Vec<(String, AttrValue)> = span.attributes[span.attributes.len() - 3..].to_vec();
    assert_eq!(
        tail,
        vec![
            ("db.response.status_code".to_owned(), s("42P01")),
            ("sqlx.class".to_owned(), s("S")),
            ("db.sqlx.air_id".to_owned(), s("air:Q-123456789abcdef0")),
        ]
    );
}

#[test]
fn an_interned_statement_travels_as_its_id_and_decodes_to_the_same_span() {
    use ats_core::record::codec::DecodeError;
    use ats_core::record::origin::intern_origin;
    use ats_core::sql::{interned, normalize, Dialect};
    use std::sync::Arc;

    let normalized = Arc::new(normalize("SELECT name FROM interned_users WHERE id = 42", Dialect::Postgresql));
    let id = interned::intern(&normalized).unwrap();
    let stmt = StatementRef {
        text: &normalized.text,
        operation: &normalized.operation,
        table: &normalized.tables[0],
        summary: &normalized.summary,
    };
    let (mut inline, mut by_id) = (Vec::new(), Vec::new());
    encode_driver_to_vec(&call(Some(stmt), None), &mut inline).unwrap();
    let mut d = call(Some(stmt), None);
    d.statement_id = Some(id);
    encode_driver_to_vec(&d, &mut by_id).unwrap();
    let inline_len = stmt.text.len() + stmt.operation.len() + stmt.table.len() + stmt.summary.len() + 4;
    assert_eq!(by_id.len(), inline.len() - inline_len + 4, "four length-prefixed strings became four bytes");
    assert_eq!(decode(&by_id).unwrap(), decode(&inline).unwrap());

    // An id this process never assigned is a decode error, not a wrong statement.
    let mut unknown = by_id.clone();
    let at = unknown.len() - 4 - "shop".len() - 1 - "db.internal".len() - 1;
    unknown[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(decode(&unknown), Err(DecodeError::UnknownStatement { id: u32::MAX }));

    // The five constant strings by their origin id: the same span again.
    let e = &d.envelope;
    d.origin_id = Some(intern_origin(e.tenant, e.workspace, e.region, e.dialect, d.component, d.db_namespace).unwrap());
    let mut with_origin = Vec::new();
    encode_driver_to_vec(&d, &mut with_origin).unwrap();
    let strings = [e.tenant, e.workspace, e.region, e.dialect, d.component, d.db_namespace]
        .iter()
        .map(|s| s.len() + 1)
        .sum::<usize>();
    assert_eq!(with_origin.len(), by_id.len() - strings + 4);
    assert_eq!(decode(&with_origin).unwrap(), decode(&inline).unwrap());
}
