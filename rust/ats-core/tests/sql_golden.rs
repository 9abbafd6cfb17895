//! Golden vectors pin the normaliser and both fingerprints across processes,
//! platforms and languages (Python tests read the same file).
//!
//! `tests/golden/fingerprints.json`:
//! `{"version": 1, "statements": [{"dialect", "sql", "text", "air_id",
//! "operation", "tables", "summary"}], "plans": [{"plan", "plan_hash"}]}`.
//!
//! Regenerate (only when the algorithm changes, together with a
//! FINGERPRINT_VERSION bump): `ATS_REGEN_GOLDEN=1 cargo test -p ats-core --test sql_golden`.

use ats_core::record::model::{air_id_string, plan_hash_string};
use ats_core::sql::{normalize, plan_fingerprint, Dialect, FINGERPRINT_VERSION};
use serde_json::{json, Value};

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/golden/fingerprints.json"
);

/// Inputs of the golden file (used only to regenerate it).
const STATEMENTS: &[(&str, &str)] = &[
    ("postgresql", "SELECT * FROM users WHERE id = 42"),
    ("postgresql", "select * from users where id = $1"),
    ("postgresql", "SELECT u.id, u.name FROM public.users u JOIN orders o ON o.user_id = u.id WHERE o.total > 100.50"),
    ("postgresql", "SELECT * FROM t WHERE a IN (1, 2, 3) AND b = 'x'"),
    ("postgresql", "SELECT * FROM t WHERE a IN ($1, $2, $3) AND b = $4"),
    ("postgresql", "INSERT INTO films (code, title, did) VALUES ('UA502', 'Bananas', 105), ('T_601', 'Yojimbo', 106)"),
    ("postgresql", "INSERT INTO films (code, title, did) VALUES ($1, $2, $3)"),
    ("postgresql", "UPDATE accounts SET balance = balance - 100 WHERE id = 7 RETURNING balance"),
    ("postgresql", "DELETE FROM sessions WHERE expires_at < now() - INTERVAL '1 day'"),
    ("postgresql", "SELECT E'it\\'s', $$dollar 'quoted'$$, $fn$body$fn$, B'0101', X'1F'"),
    ("postgresql", "SELECT DATE '2024-01-01', TIMESTAMP '2024-01-01 00:00:00', TRUE, FALSE, NULL"),
    ("postgresql", "SELECT a::text, $1::uuid, payload->>'key' FROM events WHERE payload @> '{\"a\": 1}'"),
    ("postgresql", "WITH recent AS (SELECT * FROM events WHERE ts > now() - INTERVAL '1 hour') SELECT count(*) FROM recent"),
    ("postgresql", "SELECT * FROM x WHERE y = ANY(ARRAY[1, 2, 3])"),
    ("postgresql", "SELECT order_date FROM (SELECT * FROM orders o JOIN customers c ON o.customer_id = c.customer_id) sub"),
    ("postgresql", "SELECT -5, a-5, a - -5 FROM t"),
    ("postgresql", "SELECT 1 /* outer /* nested */ still comment */ FROM t -- tail"),
    ("postgresql", "SELECT \"Users\".\"Id\" FROM \"Users\""),
    ("postgresql", "SELECT * FROM t WHERE name = 'unterminated"),
    ("postgresql", "EXPLAIN (FORMAT JSON) SELECT * FROM users WHERE id = 1"),
    ("postgresql", "CREATE INDEX CONCURRENTLY idx_users_email ON users (email)"),
    ("postgresql", "MERGE INTO acct a USING staging s ON a.id = s.id WHEN MATCHED THEN UPDATE SET balance = s.balance"),
    ("postgresql", "BEGIN"),
    ("postgresql", "COMMIT"),
    ("postgresql", "SELECT EXTRACT(YEAR FROM ts) FROM t WHERE a IS DISTINCT FROM b"),
    ("postgresql", "SELECT col1, t2.x3 FROM table3 t2 WHERE c4 = 4"),
    ("mysql", "SELECT * FROM `db`.`users` WHERE email = \"a@b.c\" AND id = 5 # trailing"),
    ("mysql", "SELECT * FROM users WHERE name = 'O\\'Brien' -- comment"),
    ("mysql", "INSERT INTO t (a, b) VALUES (%s, %s), (%s, %s), (%s, %s)"),
    ("mysql", "INSERT INTO t (a, b) VALUES (1, 'x') ON DUPLICATE KEY UPDATE b = VALUES(b)"),
    ("mysql", "REPLACE INTO kv (k, v) VALUES ('a', 0x1F)"),
    ("mysql", "UPDATE orders o JOIN customers c ON o.cid = c.id SET o.status = 'x' WHERE c.id = 3"),
    ("mysql", "SELECT _utf8mb4'abc', b'0101', 0b11, @@version, @var FROM dual"),
    ("mysql", "SELECT NOW() - INTERVAL 7 DAY"),
    ("mysql", "SELECT * FROM t WHERE id IN (%s, %s, %s) LIMIT %s"),
    ("mysql", "DELETE FROM logs WHERE created < '2020-01-01' ORDER BY id LIMIT 1000"),
    ("mysql", "SHOW TABLES"),
    ("mysql", "SELECT a--1 FROM t"),
    ("sqlite", "SELECT * FROM [order items] WHERE [id] = ?1"),
    ("sqlite", "SELECT * FROM t WHERE a = :name AND b = @p AND c = $v AND d = ?"),
    ("sqlite", "INSERT OR REPLACE INTO kv VALUES (?, ?)"),
    ("sqlite", "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB)"),
    ("sqlite", "PRAGMA journal_mode = WAL"),
    ("sqlite", "SELECT * FROM songs, artists WHERE songs.artist_id == artists.id"),
    ("sqlite", "SELECT 'a\\', 'b' FROM t"),
    ("sqlite", "DROP TABLE IF EXISTS a"),
    ("sqlite", "SELECT x'0a0b', 1e10, .5 FROM t"),
    ("sqlite", "SELECT 1 /* unterminated comment 'secret'"),
    ("generic", "SELECT TOP 10 * FROM [dbo].[Users] WHERE [Name] = N'José'"),
    ("generic", "SELECT * FROM #temp WHERE id = @P1"),
    ("generic", "SELECT * FROM users WHERE id = :1 AND name = 'x'"),
    ("generic", "SELECT \"col\" FROM \"tbl\" WHERE x = 'a\\'b'"),
    ("generic", "SELECT $$snowflake body$$"),
    ("generic", "TRUNCATE TABLE staging"),
    ("generic", "SELECT a FROM x UNION ALL SELECT a FROM y"),
    ("generic", "INSERT INTO shipping_details (order_id, address) SELECT order_id, address FROM orders WHERE order_id = ?"),
    ("generic", "SELECT 1; SELECT 2;"),
    ("generic", ""),
    ("generic", "-- just a comment"),
    ("generic", "CALL refresh_stats(1, 'x')"),
];

fn pg_plan(total_cost: f64, rows: u64, id: u64, actual: bool) -> String {
    let mut plan = json!({
        "Node Type": "Nested Loop",
        "Parallel Aware": false,
        "Join Type": "Inner",
        "Startup Cost": 0.29,
        "Total Cost": total_cost,
        "Plan Rows": rows,
        "Plan Width": 68,
        "Inner Unique": true,
        "Plans": [
            {"Node Type": "Index Scan", "Parent Relationship": "Outer", "Parallel Aware": false,
             "Scan Direction": "Forward", "Index Name": "users_pkey", "Relation Name": "users",
             "Alias": "u", "Startup Cost": 0.15, "Total Cost": 8.17, "Plan Rows": 1, "Plan Width": 36,
             "Index Cond": format!("(id = {id})")},
            {"Node Type": "Seq Scan", "Parent Relationship": "Inner", "Parallel Aware": false,
             "Relation Name": "orders", "Alias": "o", "Startup Cost": 0.0, "Total Cost": 25.88,
             "Plan Rows": rows, "Plan Width": 32, "Filter": format!("((status)::text = 'paid'::text AND user_id = {id})")}
        ]
    });
    let mut top = json!({"Plan": plan.take(), "Planning Time": 0.12});
    if actual {
        top["Plan"]["Actual Startup Time"] = json!(0.01);
        top["Plan"]["Actual Total Time"] = json!(0.5);
        top["Plan"]["Actual Rows"] = json!(3);
        top["Plan"]["Actual Loops"] = json!(1);
        top["Plan"]["Shared Hit Blocks"] = json!(12);
        top["Execution Time"] = json!(0.7);
        top["Triggers"] = json!([]);
    }
    serde_json::to_string(&json!([top])).expect("json")
}

fn mysql_plan(id: u64, cost: &str, access: &str) -> String {
    serde_json::to_string(&json!({"query_block": {
        "select_id": 1,
        "cost_info": {"query_cost": cost},
        "table": {
            "table_name": "users", "access_type": access, "possible_keys": ["PRIMARY"], "key": "PRIMARY",
            "used_key_parts": ["id"], "key_length": "4", "ref": ["const"],
            "rows_examined_per_scan": 1, "rows_produced_per_join": 1, "filtered": "100.00",
            "cost_info": {"read_cost": "0.00", "eval_cost": "0.10", "prefix_cost": cost, "data_read_per_join": "1K"},
            "used_columns": ["id", "email"],
            "attached_condition": format!("(`db`.`users`.`id` = {id})")
        }
    }}))
    .expect("json")
}

fn plans() -> Vec<String> {
    vec![
        pg_plan(34.1, 6, 42, false),
        pg_plan(99.9, 600, 7, true),
        pg_plan(34.1, 6, 42, false).replace("Seq Scan", "Bitmap Heap Scan"),
        mysql_plan(42, "1.00", "const"),
        mysql_plan(7, "2.50", "const"),
        mysql_plan(42, "1.00", "ref"),
    ]
}

fn statement_entry(dialect: &str, sql: &str) -> Value {
    let d: Dialect = dialect.parse().expect("dialect");
    let n = normalize(sql, d);
    json!({
        "dialect": dialect,
        "sql": sql,
        "text": n.text,
        "air_id": air_id_string(n.air_id),
        "operation": n.operation,
        "tables": n.tables,
        "summary": n.summary,
    })
}

fn plan_entry(plan: &str) -> Value {
    json!({"plan": plan, "plan_hash": plan_hash_string(plan_fingerprint(plan).expect("plan"))})
}

#[test]
fn golden_vectors_match() {
    if std::env::var_os("ATS_REGEN_GOLDEN").is_some() {
        let doc = json!({
            "version": FINGERPRINT_VERSION,
            "statements": STATEMENTS.iter().map(|(d, s)| statement_entry(d, s)).collect::<Vec<_>>(),
            "plans": plans().iter().map(|p| plan_entry(p)).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&doc).expect("json") + "\n";
        std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"))
            .expect("mkdir");
        std::fs::write(GOLDEN, text).expect("write golden");
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(GOLDEN).expect("golden file"))
        .expect("golden json");
    assert_eq!(
        doc["version"],
        json!(FINGERPRINT_VERSION),
        "bump the golden file together with FINGERPRINT_VERSION"
    );
    let stmts = doc["statements"].as_array().expect("statements");
    assert!(stmts.len() >= 60, "{} statements", stmts.len());
    let mut bad = Vec::new();
    for s in stmts {
        let got = statement_entry(
            s["dialect"].as_str().expect("dialect"),
            s["sql"].as_str().expect("sql"),
        );
        if &got != s {
            bad.push(format!("want {s}\n got  {got}"));
        }
    }
    let plans = doc["plans"].as_array().expect("plans");
    assert!(plans.len() >= 4);
    for p in plans {
        let got = plan_entry(p["plan"].as_str().expect("plan"));
        if &got != p {
            bad.push(format!(
                "plan want {}\n got {}",
                p["plan_hash"], got["plan_hash"]
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} golden mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn plan_hash_ignores_costs_timings_and_constants() {
    let h = |p: &str| plan_fingerprint(p).expect("plan");
    let ps = plans();
    assert_eq!(
        h(&ps[0]),
        h(&ps[1]),
        "costs, rows, timings, buffers and constants must not matter"
    );
    assert_ne!(h(&ps[0]), h(&ps[2]), "a different node type must matter");
    assert_eq!(
        h(&ps[3]),
        h(&ps[4]),
        "MySQL cost_info, rows and constants must not matter"
    );
    assert_ne!(h(&ps[3]), h(&ps[5]), "a different access type must matter");
    assert_ne!(h(&ps[0]), h(&ps[3]));
    // Key order does not matter; array order does.
    assert_eq!(h(r#"{"a": 1, "b": [1, 2]}"#), h(r#"{"b": [1, 2], "a": 1}"#));
    assert_ne!(h(r#"{"b": [1, 2]}"#), h(r#"{"b": [2, 1]}"#));
    assert_ne!(
        h(r#"[{"Plan": {"Filter": "(a = 1)"}}]"#),
        h(r#"[{"Plan": {"Filter": "(b = 1)"}}]"#)
    );
    assert!(matches!(
        plan_fingerprint("{not json"),
        Err(ats_core::sql::PlanError::InvalidJson(_))
    ));
    assert!(matches!(
        plan_fingerprint(""),
        Err(ats_core::sql::PlanError::InvalidJson(_))
    ));
    assert!(
        plan_fingerprint(&"[".repeat(100_000)).is_err(),
        "deep nesting is rejected, not a stack overflow"
    );
}
