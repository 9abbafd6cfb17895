//! Scores the normaliser against third-party test vectors in
//! /work/shared/testdata (see its README). Missing files FAIL the test.
//!
//! Run with `--nocapture` to see the rates and the disagreements.

use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};

use ats_core::sql::lexer::{Lexer, TokenKind};
use ats_core::sql::{normalize, Dialect};
use serde_json::Value;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/testdata/");

fn load(name: &str) -> Value {
    let path = format!("{TESTDATA}{name}");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("test vectors missing: {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: invalid JSON: {e}"))
}

/// (a) libpg_query fingerprint equivalence: pairwise agreement between
/// "same expected fingerprint" and "same air_id".
#[test]
fn pg_fingerprint_equivalence_agreement() {
    let data = load("pg_fingerprint.json");
    let cases = data["cases"].as_array().expect("cases");
    let mut rows = Vec::new();
    for c in cases {
        let q = c["query"].as_str().expect("query");
        let fp = c["fingerprint"].as_str().expect("fingerprint");
        let started = std::time::Instant::now();
        let n = normalize(q, Dialect::Postgresql);
        if q.len() > 1_000_000 {
            eprintln!(
                "large statement: {} bytes normalised in {:?} (debug build) -> {} bytes of text",
                q.len(),
                started.elapsed(),
                n.text.len()
            );
            assert_eq!(n.operation, "INSERT");
            assert_eq!(n.tables, vec!["tbl".to_string()]);
            assert!(n.text.len() < 200, "VALUES rows must collapse: {}", n.text);
        }
        rows.push((q, fp, n.air_id));
    }
    let (mut agree, mut total) = (0usize, 0usize);
    let mut split: Vec<(&str, &str)> = Vec::new(); // libpg same, ATS different
    let mut merged: Vec<(&str, &str)> = Vec::new(); // libpg different, ATS same
    for i in 0..rows.len() {
        for j in i + 1..rows.len() {
            total += 1;
            let want = rows[i].1 == rows[j].1;
            let got = rows[i].2 == rows[j].2;
            if want == got {
                agree += 1;
            } else if want {
                split.push((rows[i].0, rows[j].0));
            } else {
                merged.push((rows[i].0, rows[j].0));
            }
        }
    }
    let rate = agree as f64 / total as f64;
    eprintln!(
        "pg_fingerprint: {} cases, {total} pairs, agreement {agree}/{total} = {:.4}",
        rows.len(),
        rate
    );
    let short = |s: &str| s.chars().take(90).collect::<String>();
    eprintln!(
        "  same for libpg_query, different air_id ({}): ATS keeps what libpg_query ignores",
        split.len()
    );
    let mut by_cat: BTreeMap<&str, usize> = BTreeMap::new();
    for (a, b) in &split {
        let cat = categorize(a, b);
        *by_cat.entry(cat).or_default() += 1;
        eprintln!("    [{cat}] {:?}  |  {:?}", short(a), short(b));
    }
    for (cat, n) in &by_cat {
        eprintln!("    {n:>3} x {cat}");
    }
    eprintln!(
        "  different for libpg_query, same air_id ({}):",
        merged.len()
    );
    for (a, b) in &merged {
        eprintln!("    {:?}  |  {:?}", short(a), short(b));
    }
    assert!(rate >= 0.9900, "agreement fell to {rate}");
    assert!(
        merged.len() <= 1,
        "ATS merges statements libpg_query keeps apart: {merged:?}"
    );
}

/// Which of libpg_query's documented "ignored" rules (see the file's
/// `semantics`) explains a pair it merges and ATS keeps apart. ATS keeps all
/// of these on purpose: they change what the statement does or names.
fn categorize(a: &str, b: &str) -> &'static str {
    let both = format!("{a} {b}");
    if both.contains("INTERVAL (") {
        "constant typmod/cast skipped by libpg_query"
    } else if both.contains("ANY") || (both.contains(" IN (") && both.contains("= $1")) {
        "= / = ANY / IN treated alike by libpg_query"
    } else if both.contains("::") {
        "cast of a constant or parameter skipped by libpg_query"
    } else if both.contains("DEFAULT") {
        "DEFAULT and VALUES row count ignored by libpg_query"
    } else if both.contains("t_2021") {
        "digit runs in table names ignored by libpg_query"
    } else if both.contains("UNLISTEN") {
        "LISTEN/NOTIFY channel names ignored by libpg_query"
    } else if a.contains(" AS ") != b.contains(" AS ") || both.contains("AS a") {
        "aliases ignored by libpg_query"
    } else {
        "list/operand order ignored by libpg_query"
    }
}

fn dialect_for(dbms: &Value) -> Dialect {
    match dbms.as_str() {
        Some("postgresql") => Dialect::Postgresql,
        Some("mysql") => Dialect::Mysql,
        Some("sqlite") => Dialect::Sqlite,
        _ => Dialect::Generic,
    }
}

struct Lexed {
    literals: Vec<String>,
    idents: Vec<String>,
    placeholders: Vec<String>,
}

/// Lex with the ATS lexer. Booleans and typed-literal type names
/// (`INTERVAL '1 day'`) count as part of a literal, as in ATS's spec.
fn lex(s: &str, d: Dialect) -> Lexed {
    let lx = Lexer::new(s, d);
    let view = lx.clone();
    let toks: Vec<_> = lx.collect();
    let mut out = Lexed {
        literals: Vec::new(),
        idents: Vec::new(),
        placeholders: Vec::new(),
    };
    for (i, t) in toks.iter().enumerate() {
        let text = view.text(t).to_string();
        let lower = text.to_lowercase();
        let next_is_string = toks.get(i + 1).is_some_and(|n| n.kind == TokenKind::String);
        match t.kind {
            TokenKind::String | TokenKind::Number => out.literals.push(text),
            TokenKind::Word if lower == "true" || lower == "false" => {}
            TokenKind::Word
                if next_is_string
                    && ["date", "time", "timestamp", "timestamptz", "interval"]
                        .contains(&lower.as_str()) => {}
            TokenKind::Word => out.idents.push(lower),
            TokenKind::QuotedIdent => {
                let inner = text
                    .get(1..text.len().saturating_sub(1))
                    .unwrap_or("")
                    .to_lowercase();
                out.idents.push(inner)
            }
            TokenKind::Placeholder => out.placeholders.push(text),
            _ => {}
        }
    }
    out
}

fn count(v: &[String], x: &str) -> usize {
    v.iter().filter(|y| *y == x).count()
}

/// (b) Datadog obfuscation vectors: literal-removal agreement per dbms.
#[test]
fn dd_obfuscation_literal_removal_agreement() {
    let data = load("dd_sql_obfuscation.json");
    let cases = data["cases"].as_array().expect("cases");
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut panics = 0;
    for c in cases {
        let query = c["query"].as_str().expect("query");
        let expected = c["expected"].as_str().expect("expected");
        let dbms = c["dbms"].as_str().unwrap_or("null").to_string();
        let d = dialect_for(&c["dbms"]);
        let res = catch_unwind(AssertUnwindSafe(|| normalize(query, d)));
        let entry = per.entry(dbms.clone()).or_default();
        entry.1 += 1;
        let Ok(n) = res else {
            panics += 1;
            failures
                .entry(dbms)
                .or_default()
                .push(format!("PANIC on {query:?}"));
            continue;
        };
        let q = lex(query, d);
        let e = lex(expected, d);
        let a = lex(&n.text, d);
        let mut problems = Vec::new();
        // Literals the reference removed: fewer occurrences in `expected`
        // than in `query` (by token for numbers, by raw text for strings).
        let mut seen = HashMap::new();
        for lit in &q.literals {
            if seen.insert(lit.clone(), ()).is_some() {
                continue;
            }
            let in_q = count(&q.literals, lit);
            let in_e = if lit.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
                count(&e.literals, lit)
            } else {
                expected.matches(lit.as_str()).count()
            };
            if in_e < in_q
                && (count(&a.literals, lit) > 0 || n.text.contains(lit.as_str()) && lit.len() > 2)
            {
                problems.push(format!("literal {lit:?} survived"));
            }
        }
        // Identifiers the reference kept must survive in ATS text.
        for id in &q.idents {
            if e.idents.contains(id) && !a.idents.contains(id) {
                problems.push(format!("identifier {id:?} lost"));
            }
        }
        // Placeholders the reference kept verbatim must survive too. (ATS
        // collapses `IN ($1, $2)` to `IN ($1)`; where the reference keeps the
        // whole list that is counted as a disagreement.)
        for p in &q.placeholders {
            if e.placeholders.contains(p) && !a.placeholders.contains(p) {
                problems.push(format!("placeholder {p:?} lost"));
            }
        }
        if problems.is_empty() {
            entry.0 += 1;
        } else {
            failures.entry(dbms).or_default().push(format!(
                "{:?}\n        ATS: {:?}\n        ref: {:?}\n        {}",
                query,
                n.text,
                expected,
                problems.join("; ")
            ));
        }
    }
    let floors: HashMap<&str, f64> = [
        ("null", 0.99),
        ("postgresql", 0.99),
        ("mysql", 0.99),
        ("mssql", 0.99),
        ("oracle", 0.99),
        ("snowflake", 0.99),
    ]
    .into_iter()
    .collect();
    let mut all = (0, 0);
    for (dbms, (ok, n)) in &per {
        all.0 += ok;
        all.1 += n;
        eprintln!(
            "dd_sql_obfuscation dbms={dbms:<10} agree {ok}/{n} = {:.4}",
            *ok as f64 / *n as f64
        );
        for f in failures.get(dbms).map(Vec::as_slice).unwrap_or(&[]) {
            eprintln!("    {f}");
        }
    }
    eprintln!(
        "dd_sql_obfuscation overall agree {}/{} = {:.4}",
        all.0,
        all.1,
        all.0 as f64 / all.1 as f64
    );
    assert_eq!(panics, 0);
    for (dbms, (ok, n)) in &per {
        let floor = floors.get(dbms.as_str()).copied().unwrap_or(0.9);
        let rate = *ok as f64 / *n as f64;
        assert!(rate >= floor, "{dbms}: {rate} < floor {floor}");
    }
}
