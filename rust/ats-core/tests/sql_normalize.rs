//! Exact-output tests for the SQL normaliser (text, operation, tables,
//! summary) and fingerprint equivalences.

use ats_core::sql::{normalize, Dialect, Dialect::*};

fn text(sql: &str, d: Dialect) -> String {
    normalize(sql, d).text
}

fn check(cases: &[(Dialect, &str, &str)]) {
    let mut bad = Vec::new();
    for (d, sql, want) in cases {
        let got = text(sql, *d);
        if got != *want {
            bad.push(format!(
                "[{d}] {sql:?}\n    want {want:?}\n    got  {got:?}"
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn string_literals_every_form() {
    check(&[
        (Postgresql, "SELECT 'abc'", "SELECT ?"),
        (Postgresql, "SELECT 'it''s'", "SELECT ?"),
        (Postgresql, r"SELECT 'a\' , 'b'", "SELECT ? , ?"),
        (Postgresql, r"SELECT E'a\'b', e'x'", "SELECT ?, ?"),
        (
            Postgresql,
            "SELECT N'abc', X'ff', B'0101', U&'d\\0061t'",
            "SELECT ?, ?, ?, ?",
        ),
        (
            Postgresql,
            "SELECT $$it's$$, $fn$ body $$ x $fn$",
            "SELECT ?, ?",
        ),
        (Generic, "SELECT $$a$$ FROM t", "SELECT ? FROM t"),
        (Mysql, r"SELECT 'a\'b', 'c''d'", "SELECT ?, ?"),
        (
            Mysql,
            r#"SELECT "abc", "a\"b" FROM t"#,
            "SELECT ?, ? FROM t",
        ),
        (
            Mysql,
            "SELECT _utf8mb4'abc', x'ff', b'01', N'n'",
            "SELECT ?, ?, ?, ?",
        ),
        (Sqlite, r"SELECT 'a\', 'b'", "SELECT ?, ?"),
        (Sqlite, "SELECT X'0A0B'", "SELECT ?"),
        (Generic, r"SELECT 'a\'b' FROM t", "SELECT ? FROM t"),
    ]);
}

#[test]
fn double_quotes_are_identifiers_except_in_mysql() {
    check(&[
        (
            Postgresql,
            r#"SELECT "Col" FROM "My Table""#,
            r#"SELECT "Col" FROM "My Table""#,
        ),
        (Sqlite, r#"SELECT "a""b" FROM t"#, r#"SELECT "a""b" FROM t"#),
        (Generic, r#"SELECT "x" FROM t"#, r#"SELECT "x" FROM t"#),
        (Mysql, r#"SELECT "x" FROM `t`"#, "SELECT ? FROM `t`"),
        (
            Mysql,
            "SELECT `a``b` FROM `db`.`t`",
            "SELECT `a``b` FROM `db`.`t`",
        ),
        (Sqlite, "SELECT [col 1] FROM [t]", "SELECT [col 1] FROM [t]"),
        (
            Generic,
            "SELECT * FROM [dbo].[Users] WHERE [id] = 5",
            "SELECT * FROM [dbo].[Users] WHERE [id] = ?",
        ),
        // In PostgreSQL `[` is a subscript; values inside are literals.
        (
            Postgresql,
            "SELECT a[1], ARRAY['x','y']",
            "SELECT a[?], ARRAY[?]",
        ),
        // A bracket holding a string is never an identifier.
        (Generic, "SELECT ['secret'] FROM t", "SELECT [?] FROM t"),
    ]);
}

#[test]
fn numbers_and_signs() {
    check(&[
        (
            Postgresql,
            "SELECT 1, 1.5, .5, 1e10, 1.5E-3, 0x1F, 1_000",
            "SELECT ?, ?, ?, ?, ?, ?, ?",
        ),
        (Mysql, "SELECT 0b101, 0xFF", "SELECT ?, ?"),
        (
            Postgresql,
            "SELECT * FROM t WHERE a = -5 AND b=-5 AND c = - 5",
            "SELECT * FROM t WHERE a = ? AND b=? AND c = ?",
        ),
        (Postgresql, "SELECT -1, +2, (-3)", "SELECT ?, ?, (?)"),
        (
            Postgresql,
            "SELECT a-5, a - 5, a -5, (a)-5, f(x)-1",
            "SELECT a-?, a - ?, a -?, (a)-?, f(x)-?",
        ),
        (
            Postgresql,
            "SELECT x FROM t LIMIT 10 OFFSET 20",
            "SELECT x FROM t LIMIT ? OFFSET ?",
        ),
        (Postgresql, "SELECT 1-1", "SELECT ?-?"),
    ]);
}

#[test]
fn identifiers_with_digits_are_never_numbers() {
    check(&[
        (
            Postgresql,
            "SELECT col1, t2.x3 FROM table3 WHERE c4 = 4",
            "SELECT col1, t2.x3 FROM table3 WHERE c4 = ?",
        ),
        (
            Mysql,
            "SELECT 1abc FROM t_2024_01",
            "SELECT 1abc FROM t_2024_01",
        ),
        (Sqlite, "SELECT a1+1 FROM t1", "SELECT a1+? FROM t1"),
    ]);
}

#[test]
fn typed_literals_booleans_null() {
    check(&[
        (
            Postgresql,
            "SELECT DATE '2024-01-01', TIMESTAMP '2024-01-01 10:00', time '10:00', INTERVAL '1 day'",
            "SELECT ?, ?, ?, ?",
        ),
        (Mysql, "SELECT NOW() - INTERVAL 1 DAY", "SELECT NOW() - INTERVAL ? DAY"),
        (Postgresql, "SELECT * FROM t WHERE a = TRUE AND b = false", "SELECT * FROM t WHERE a = ? AND b = ?"),
        (Postgresql, "SELECT * FROM t WHERE a IS NULL AND b IS NOT null", "SELECT * FROM t WHERE a IS NULL AND b IS NOT NULL"),
        (Postgresql, "UPDATE t SET a = NULL", "UPDATE t SET a = NULL"),
        // A column named like a type is still a column.
        (Postgresql, "SELECT date, time FROM t", "SELECT date, time FROM t"),
    ]);
}

#[test]
fn placeholders_kept_verbatim() {
    check(&[
        (
            Sqlite,
            "SELECT * FROM t WHERE a = ? AND b = ?2 AND c = :name AND d = @p AND e = $v",
            "SELECT * FROM t WHERE a = ? AND b = ?2 AND c = :name AND d = @p AND e = $v",
        ),
        (
            Postgresql,
            "SELECT * FROM t WHERE a = $1 AND b = %s AND c = %(name)s",
            "SELECT * FROM t WHERE a = $1 AND b = %s AND c = %(name)s",
        ),
        (
            Mysql,
            "SELECT * FROM t WHERE a = %s AND b = ?",
            "SELECT * FROM t WHERE a = %s AND b = ?",
        ),
        (
            Generic,
            "SELECT * FROM t WHERE a = :1 AND b = @P1",
            "SELECT * FROM t WHERE a = :1 AND b = @P1",
        ),
        (
            Postgresql,
            "SELECT a::text, $1::uuid, b ->> 'k', c ? 'x', d ?| e FROM t",
            "SELECT a::text, $1::uuid, b ->> ?, c ? ?, d ?| e FROM t",
        ),
        (Mysql, "SELECT @@version, @x", "SELECT @@version, @x"),
        (Postgresql, "SELECT a % b, 10 % 3", "SELECT a % b, ? % ?"),
    ]);
}

#[test]
fn comments_removed() {
    check(&[
        (
            Postgresql,
            "SELECT a -- trailing 'secret'\nFROM t",
            "SELECT a FROM t",
        ),
        (Postgresql, "SELECT /* c 'x' */ a FROM t", "SELECT a FROM t"),
        (Postgresql, "SELECT a/**/FROM t", "SELECT a FROM t"),
        (
            Postgresql,
            "SELECT 1 /* outer /* inner */ still 'secret' */ FROM t",
            "SELECT ? FROM t",
        ),
        (Sqlite, "SELECT 1 /* a /* b */ FROM t", "SELECT ? FROM t"),
        (
            Mysql,
            "SELECT a # hash comment 'x'\nFROM t",
            "SELECT a FROM t",
        ),
        (Mysql, "SELECT a FROM t -- dash comment", "SELECT a FROM t"),
        (Mysql, "SELECT a--1 FROM t", "SELECT a-? FROM t"),
        (
            Postgresql,
            "SELECT a FROM t WHERE b # c = 1",
            "SELECT a FROM t WHERE b # c = ?",
        ),
        (
            Mysql,
            "/*+ MAX_EXECUTION_TIME(1000) */ SELECT 1",
            "SELECT ?",
        ),
    ]);
}

#[test]
fn unterminated_input_redacts_to_the_end() {
    check(&[
        (
            Postgresql,
            "SELECT * FROM t WHERE a = 'secret AND b = 2",
            "SELECT * FROM t WHERE a = ?",
        ),
        (
            Mysql,
            r"SELECT * FROM t WHERE a = 'it\'s secret",
            "SELECT * FROM t WHERE a = ?",
        ),
        (
            Mysql,
            r#"SELECT * FROM t WHERE a = "secret"#,
            "SELECT * FROM t WHERE a = ?",
        ),
        (Postgresql, "SELECT $$secret body", "SELECT ?"),
        (Postgresql, "SELECT $tag$secret $$ body", "SELECT ?"),
        (Postgresql, r#"SELECT "unterminated ident 'x'"#, "SELECT ?"),
        (Mysql, "SELECT `unterminated", "SELECT ?"),
        (Postgresql, "SELECT 1 /* never closed 'secret'", "SELECT ?"),
        (Postgresql, "SELECT E'abc\\", "SELECT ?"),
    ]);
}

#[test]
fn in_lists_and_values_collapse() {
    check(&[
        (
            Postgresql,
            "SELECT * FROM t WHERE id IN (1, 2, 3)",
            "SELECT * FROM t WHERE id IN (?)",
        ),
        (
            Postgresql,
            "SELECT * FROM t WHERE id IN ($1, $2, $3)",
            "SELECT * FROM t WHERE id IN ($1)",
        ),
        (
            Mysql,
            "SELECT * FROM t WHERE id IN (%s,%s,%s)",
            "SELECT * FROM t WHERE id IN (%s)",
        ),
        (
            Postgresql,
            "SELECT * FROM t WHERE id NOT IN ('a', 'b')",
            "SELECT * FROM t WHERE id NOT IN (?)",
        ),
        (
            Postgresql,
            "SELECT * FROM t WHERE id IN (1)",
            "SELECT * FROM t WHERE id IN (?)",
        ),
        (
            Postgresql,
            "SELECT * FROM t WHERE (a, b) IN ((1, 2), (3, 4))",
            "SELECT * FROM t WHERE (a, b) IN ((?, ?))",
        ),
        (
            Postgresql,
            "SELECT * FROM t WHERE id IN (a, b, 1, 2)",
            "SELECT * FROM t WHERE id IN (a, b, ?)",
        ),
        (
            Postgresql,
            "SELECT * FROM t WHERE id IN (SELECT id FROM u)",
            "SELECT * FROM t WHERE id IN (SELECT id FROM u)",
        ),
        (
            Postgresql,
            "SELECT * FROM t WHERE id IN ($1::uuid, $2::uuid)",
            "SELECT * FROM t WHERE id IN ($1::uuid)",
        ),
        (
            Postgresql,
            "SELECT * FROM t WHERE id = ANY(ARRAY[1, 2, 3])",
            "SELECT * FROM t WHERE id = ANY(ARRAY[?])",
        ),
        (
            Mysql,
            "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')",
            "INSERT INTO t (a, b) VALUES (?, ?)",
        ),
        (
            Mysql,
            "INSERT INTO t (a, b) VALUES (%s, %s), (%s, %s)",
            "INSERT INTO t (a, b) VALUES (%s, %s)",
        ),
        (
            Postgresql,
            "INSERT INTO t VALUES (1, 2), (3, DEFAULT), (4, 5)",
            "INSERT INTO t VALUES (?, ?), (?, DEFAULT), (?, ?)",
        ),
        (
            Mysql,
            "INSERT INTO t (a) VALUES (1), (2) ON DUPLICATE KEY UPDATE a = VALUES(a)",
            "INSERT INTO t (a) VALUES (?) ON DUPLICATE KEY UPDATE a = VALUES(a)",
        ),
        (
            Sqlite,
            "INSERT INTO t VALUES (?, ?), (?, ?), (?, ?)",
            "INSERT INTO t VALUES (?, ?)",
        ),
    ]);
}

#[test]
fn whitespace_keywords_and_semicolons() {
    check(&[
        (
            Postgresql,
            "  select\n\ta ,b\r\nfrom   t ;  ",
            "SELECT a ,b FROM t",
        ),
        (Postgresql, "SELECT 1;;", "SELECT ?"),
        (Postgresql, "SELECT 1; SELECT 2;", "SELECT ?; SELECT ?"),
        (
            Postgresql,
            "Select Name From Users Where Id = 1",
            "SELECT Name FROM Users WHERE Id = ?",
        ),
        (Postgresql, "", ""),
        (Postgresql, "   ", ""),
        (Postgresql, "-- only a comment", ""),
        (Generic, "SELECT a\0b, c\u{1}d", "SELECT a b, c d"),
    ]);
}

fn meta(d: Dialect, sql: &str) -> (String, Vec<String>, String) {
    let n = normalize(sql, d);
    (n.operation, n.tables, n.summary)
}

#[test]
fn operation_tables_summary() {
    let cases: &[(Dialect, &str, &str, &[&str], &str)] = &[
        (
            Postgresql,
            "SELECT * FROM users u JOIN orders o ON o.uid = u.id",
            "SELECT",
            &["users", "orders"],
            "SELECT users orders",
        ),
        (
            Postgresql,
            "select * from public.users, \"Sales\".\"Orders\"",
            "SELECT",
            &["public.users", "Sales.Orders"],
            "SELECT public.users Sales.Orders",
        ),
        (
            Mysql,
            "SELECT * FROM `db`.`t1` LEFT JOIN t2 USING (id)",
            "SELECT",
            &["db.t1", "t2"],
            "SELECT db.t1 t2",
        ),
        (
            Postgresql,
            "INSERT INTO shipping_details (order_id) SELECT order_id FROM orders",
            "INSERT",
            &["shipping_details", "orders"],
            "INSERT shipping_details SELECT orders",
        ),
        (
            Postgresql,
            "SELECT order_date FROM (SELECT * FROM orders o JOIN customers c ON o.cid = c.id)",
            "SELECT",
            &["orders", "customers"],
            "SELECT SELECT orders customers",
        ),
        (
            Postgresql,
            "UPDATE users SET a = 1 WHERE id IN (SELECT uid FROM banned)",
            "UPDATE",
            &["users", "banned"],
            "UPDATE users SELECT banned",
        ),
        (
            Postgresql,
            "DELETE FROM sessions WHERE id = $1",
            "DELETE",
            &["sessions"],
            "DELETE sessions",
        ),
        (
            Postgresql,
            "DELETE FROM users u USING orders o, items i WHERE u.id = o.uid",
            "DELETE",
            &["users", "orders", "items"],
            "DELETE users orders items",
        ),
        (
            Postgresql,
            "WITH recent AS (SELECT * FROM events) SELECT * FROM recent JOIN users ON true",
            "SELECT",
            &["events", "users"],
            "SELECT events SELECT users",
        ),
        (
            Postgresql,
            "WITH d AS (DELETE FROM old RETURNING *) INSERT INTO archive SELECT * FROM d",
            "INSERT",
            &["old", "archive"],
            "DELETE old INSERT archive SELECT",
        ),
        (
            Postgresql,
            "SELECT EXTRACT(YEAR FROM ts), SUBSTRING(s FROM 2) FROM t WHERE a IS DISTINCT FROM b",
            "SELECT",
            &["t"],
            "SELECT t",
        ),
        (
            Postgresql,
            "SELECT * FROM generate_series(1, 10) g, t",
            "SELECT",
            &["t"],
            "SELECT t",
        ),
        (
            Postgresql,
            "SELECT * FROM users FOR UPDATE",
            "SELECT",
            &["users"],
            "SELECT users",
        ),
        (
            Sqlite,
            "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB)",
            "CREATE",
            &["kv"],
            "CREATE kv",
        ),
        (
            Postgresql,
            "CREATE UNIQUE INDEX idx ON users (email)",
            "CREATE",
            &["users"],
            "CREATE users",
        ),
        (
            Postgresql,
            "DROP TABLE IF EXISTS a, b CASCADE",
            "DROP",
            &["a", "b"],
            "DROP a b",
        ),
        (
            Postgresql,
            "ALTER TABLE ONLY users ADD COLUMN x int",
            "ALTER",
            &["users"],
            "ALTER users",
        ),
        (
            Postgresql,
            "TRUNCATE TABLE logs",
            "TRUNCATE",
            &["logs"],
            "TRUNCATE logs",
        ),
        (
            Sqlite,
            "INSERT OR REPLACE INTO kv VALUES (?, ?)",
            "INSERT",
            &["kv"],
            "INSERT kv",
        ),
        (
            Mysql,
            "REPLACE INTO kv (k) VALUES (1)",
            "REPLACE",
            &["kv"],
            "REPLACE kv",
        ),
        (
            Postgresql,
            "MERGE INTO acct a USING staging s ON a.id = s.id WHEN MATCHED THEN UPDATE SET x = 1",
            "MERGE",
            &["acct", "staging"],
            "MERGE acct staging",
        ),
        (
            Postgresql,
            "COPY vistest FROM stdin CSV",
            "COPY",
            &["vistest"],
            "COPY vistest",
        ),
        (
            Postgresql,
            "EXPLAIN ANALYZE SELECT a FROM b",
            "EXPLAIN",
            &["b"],
            "EXPLAIN SELECT b",
        ),
        (Postgresql, "BEGIN", "BEGIN", &[], "BEGIN"),
        (Sqlite, "PRAGMA journal_mode = WAL", "PRAGMA", &[], "PRAGMA"),
        (
            Postgresql,
            "SELECT 1; DELETE FROM t",
            "SELECT",
            &["t"],
            "SELECT DELETE t",
        ),
        (
            Postgresql,
            "(SELECT a FROM x) UNION (SELECT a FROM y)",
            "SELECT",
            &["x", "y"],
            "SELECT x SELECT y",
        ),
        (
            Postgresql,
            "SELECT * FROM a JOIN a ON true",
            "SELECT",
            &["a"],
            "SELECT a",
        ),
        (Postgresql, "", "", &[], ""),
        (Postgresql, "foo bar", "", &[], ""),
        (
            Generic,
            "SELECT * FROM #tmp",
            "SELECT",
            &["#tmp"],
            "SELECT #tmp",
        ),
    ];
    let mut bad = Vec::new();
    for (d, sql, op, tables, summary) in cases {
        let got = meta(*d, sql);
        let want = (
            op.to_string(),
            tables.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            summary.to_string(),
        );
        if got != want {
            bad.push(format!(
                "[{d}] {sql:?}\n    want {want:?}\n    got  {got:?}"
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn summary_is_capped_at_255_bytes() {
    let sql = (0..100)
        .map(|i| format!("SELECT * FROM table_number_{i}"))
        .collect::<Vec<_>>()
        .join("; ");
    let n = normalize(&sql, Postgresql);
    assert!(n.summary.len() <= 255, "{}", n.summary.len());
    assert!(n
        .summary
        .starts_with("SELECT table_number_0 SELECT table_number_1"));
    assert!(!n.summary.ends_with(' '));
    assert_eq!(n.tables.len(), 64, "tables are capped");
}

fn air(d: Dialect, sql: &str) -> u64 {
    normalize(sql, d).air_id
}

#[test]
fn air_id_equivalences() {
    let same: &[(&str, &str)] = &[
        (
            "SELECT * FROM t WHERE a = 1",
            "select  *  from t where a = 'x' -- c",
        ),
        (
            "SELECT * FROM t WHERE a = ?",
            "SELECT * FROM t WHERE a = $1",
        ),
        (
            "SELECT * FROM t WHERE a = %s",
            "SELECT * FROM t WHERE a = :a",
        ),
        (
            "SELECT * FROM t WHERE a IN (1, 2, 3)",
            "SELECT * FROM t WHERE a IN ($1)",
        ),
        (
            "INSERT INTO t VALUES (1, 2), (3, 4)",
            "INSERT INTO t VALUES (?, ?)",
        ),
        ("SELECT Name FROM Users", "select name from users"),
        (
            "SELECT \"users\".id FROM users",
            "SELECT users.id FROM USERS",
        ),
        (
            "SELECT * FROM t WHERE a = -5",
            "SELECT * FROM t WHERE a = 5",
        ),
        (
            "SELECT * FROM t WHERE a != 1",
            "SELECT * FROM t WHERE a <> 1",
        ),
        ("SELECT 1;", "SELECT 1"),
        ("SELECT DATE '2024-01-01'", "SELECT ?"),
    ];
    for (a, b) in same {
        assert_eq!(air(Postgresql, a), air(Postgresql, b), "{a:?} vs {b:?}");
    }
    let different: &[(&str, &str)] = &[
        ("SELECT a FROM t", "SELECT b FROM t"),
        ("SELECT a FROM t", "SELECT a FROM u"),
        ("SELECT a FROM s.t", "SELECT a FROM t"),
        ("SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE a < 1"),
        (
            "SELECT * FROM t ORDER BY a ASC",
            "SELECT * FROM t ORDER BY a DESC",
        ),
        (
            "SELECT * FROM t WHERE a = 1 AND b = 2",
            "SELECT * FROM t WHERE a = 1 OR b = 2",
        ),
        ("SELECT \"Users\".id FROM t", "SELECT users.id FROM t"),
        ("SELECT a - 1 FROM t", "SELECT a FROM t"),
        ("SELECT ab FROM t", "SELECT a b FROM t"),
        (
            "SELECT * FROM t WHERE a IN (1)",
            "SELECT * FROM t WHERE a = 1",
        ),
        (
            "SELECT * FROM t WHERE a IS NULL",
            "SELECT * FROM t WHERE a IS ?",
        ),
        ("SELECT 1", "SELECT 1; SELECT 1"),
    ];
    for (a, b) in different {
        assert_ne!(air(Postgresql, a), air(Postgresql, b), "{a:?} vs {b:?}");
    }
}

#[test]
fn robustness_large_and_hostile_inputs() {
    // 10 MB statement: linear, and fast enough even in a debug build.
    let big = format!(
        "SELECT * FROM t WHERE a IN ({})",
        vec!["12345"; 1_700_000].join(", ")
    );
    assert!(big.len() > 10_000_000);
    let started = std::time::Instant::now();
    let n = normalize(&big, Postgresql);
    let took = started.elapsed();
    assert_eq!(n.text, "SELECT * FROM t WHERE a IN (?)");
    assert!(took.as_secs_f64() < 10.0, "10 MB took {took:?}");

    let deep = "(".repeat(100_000) + &")".repeat(100_000);
    assert_eq!(normalize(&deep, Postgresql).text.len(), 200_000);
    let junk: String = (0u8..=255)
        .map(|b| b as char)
        .cycle()
        .take(100_000)
        .collect();
    for d in Dialect::ALL {
        let _ = normalize(&junk, d);
        let _ = normalize("\u{FFFD}'\u{FFFD}", d);
        let _ = normalize("$", d);
        let _ = normalize("'", d);
        let _ = normalize("[", d);
        let _ = normalize("%(", d);
        let _ = normalize("-", d);
    }
}
