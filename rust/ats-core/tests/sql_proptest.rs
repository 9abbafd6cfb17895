//! Property tests: literals never leak into `text`; equivalent statements
//! share an `air_id`; structurally different ones do not.

use ats_core::sql::{normalize, Dialect};
use proptest::prelude::*;

/// Templates: `{v}` is a value slot, `{l}` an IN-list of values.
const TEMPLATES: &[&str] = &[
    "SELECT * FROM users WHERE id = {v}",
    "SELECT a, b FROM t1 JOIN t2 ON t1.id = t2.id WHERE t1.x > {v} AND t2.y IN ({l})",
    "INSERT INTO orders (a, b, c) VALUES ({v}, {v}, {v})",
    "UPDATE accounts SET balance = {v}, note = {v} WHERE id = {v}",
    "DELETE FROM sessions WHERE created < {v} OR k = {v}",
    "SELECT count(*) FROM t WHERE a BETWEEN {v} AND {v} ORDER BY b DESC LIMIT {v}",
    "SELECT CASE WHEN x = {v} THEN {v} ELSE {v} END FROM t",
    "SELECT f({v}, col) FROM t WHERE col LIKE {v} AND z NOT IN ({l})",
    "SELECT * FROM t WHERE ({v}) = c AND d <> {v}",
];

fn dialect() -> impl Strategy<Value = Dialect> {
    prop::sample::select(Dialect::ALL.to_vec())
}

/// Distinctive literal content: printable ASCII including quotes,
/// backslashes and comment markers, always with a run of letters.
fn content() -> impl Strategy<Value = String> {
    ("[A-Za-z]{4,10}", r#"[ -~]{0,16}"#).prop_map(|(core, noise)| format!("{core}{noise}"))
}

/// A string literal holding `c`, in a form valid for `d`.
fn string_literal(c: &str, d: Dialect, form: u8) -> String {
    let std_quoted = |c: &str| format!("'{}'", c.replace('\'', "''"));
    let bs_quoted = |c: &str, q: char| {
        let body = c.replace('\\', "\\\\").replace(q, &format!("{q}{q}"));
        format!("{q}{body}{q}")
    };
    match (d, form % 5) {
        (Dialect::Mysql | Dialect::Generic, 0) => bs_quoted(c, '\''),
        (Dialect::Mysql, 1) => bs_quoted(c, '"'),
        (Dialect::Mysql, 2) => format!("_utf8mb4{}", bs_quoted(c, '\'')),
        (Dialect::Postgresql, 1) => format!("E{}", bs_quoted(c, '\'')),
        (Dialect::Postgresql | Dialect::Generic, 2) if !c.contains('$') => format!("$${c}$$"),
        (Dialect::Postgresql, 3) if !c.contains('$') => format!("$tag${c}$tag$"),
        (Dialect::Postgresql | Dialect::Sqlite, 4) => format!("N{}", std_quoted(c)),
        (Dialect::Mysql | Dialect::Generic, _) => bs_quoted(c, '\''),
        _ => std_quoted(c),
    }
}

#[derive(Debug, Clone)]
enum Val {
    Str(String, u8),
    Num(String),
    Date(String),
    Bool(bool),
    Placeholder(u8),
}

fn val() -> impl Strategy<Value = Val> {
    prop_oneof![
        (content(), any::<u8>()).prop_map(|(c, f)| Val::Str(c, f)),
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u32>().prop_map(|n| format!("{n}.{}", n % 997)),
            (1u32..1000, -30i32..30).prop_map(|(m, e)| format!("{m}e{e}")),
            any::<u32>().prop_map(|n| format!("0x{n:X}")),
        ]
        .prop_map(Val::Num),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}".prop_map(Val::Date),
        any::<bool>().prop_map(Val::Bool),
        any::<u8>().prop_map(Val::Placeholder),
    ]
}

fn render(v: &Val, d: Dialect) -> String {
    match v {
        Val::Str(c, f) => string_literal(c, d, *f),
        Val::Num(n) => n.clone(),
        Val::Date(s) => format!("DATE '{s}'"),
        Val::Bool(b) => if *b { "TRUE" } else { "false" }.to_string(),
        Val::Placeholder(k) => {
            let styles: &[&str] = match d {
                Dialect::Postgresql => &["$1", "%s", "%(p)s", ":p"],
                Dialect::Mysql => &["?", "%s", "%(p)s", ":p"],
                Dialect::Sqlite => &["?", "?3", ":p", "@p", "$p"],
                Dialect::Generic => &["?", "$2", ":p", "@p", "%s"],
            };
            styles[*k as usize % styles.len()].to_string()
        }
    }
}

/// Fill a template. `vals` is cycled; `list_len` is the IN-list length.
fn fill(t: &str, d: Dialect, vals: &[Val], list_len: usize) -> String {
    let mut out = String::new();
    let mut i = 0;
    let mut rest = t;
    while let Some(p) = rest.find('{') {
        out.push_str(&rest[..p]);
        let slot = &rest[p..p + 3];
        if slot == "{v}" {
            out.push_str(&render(&vals[i % vals.len()], d));
            i += 1;
        } else {
            let items: Vec<String> = (0..list_len.max(1))
                .map(|k| render(&vals[(i + k) % vals.len()], d))
                .collect();
            i += 1;
            out.push_str(&items.join(", "));
        }
        rest = &rest[p + 3..];
    }
    out.push_str(rest);
    out
}

/// Same statement, different layout: case flips on template words, and
/// whitespace replaced by runs / comments.
fn relayout(t: &str, d: Dialect, seed: u64) -> String {
    let mut s = seed | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut out = String::new();
    let mut in_slot = false;
    for ch in t.chars() {
        match ch {
            '{' | '}' => {
                in_slot = ch == '{';
                out.push(ch);
            }
            c if in_slot => out.push(c),
            ' ' => {
                let seps: &[&str] = match d {
                    Dialect::Mysql => &[" ", "  ", "\n\t", " /* c */ ", " -- c\n", " # c\n"],
                    _ => &[" ", "  ", "\n\t", " /* c */ ", " -- c\n"],
                };
                out.push_str(seps[(next() % seps.len() as u64) as usize]);
            }
            c if c.is_ascii_alphabetic() && next() % 2 == 0 => {
                out.push(if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                })
            }
            c => out.push(c),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn literals_never_appear_in_text(
        t in prop::sample::select(TEMPLATES.to_vec()),
        d in dialect(),
        vals in prop::collection::vec(val(), 1..6),
        list_len in 1usize..6,
    ) {
        let sql = fill(t, d, &vals, list_len);
        let n = normalize(&sql, d);
        let skeleton = t.replace("{v}", "").replace("{l}", "");
        for v in &vals {
            let needle = match v {
                Val::Str(c, _) => c.chars().take_while(|c| c.is_ascii_alphabetic()).collect::<String>(),
                Val::Num(s) | Val::Date(s) => s.trim_start_matches('-').to_string(),
                _ => continue,
            };
            if needle.len() >= 4 && !skeleton.to_lowercase().contains(&needle.to_lowercase()) {
                prop_assert!(!n.text.contains(&needle), "{needle:?} leaked: {sql:?} -> {:?}", n.text);
            }
        }
        prop_assert!(!n.text.contains('\''), "quote survived: {:?}", n.text);
    }

    #[test]
    fn equivalent_statements_share_air_id(
        t in prop::sample::select(TEMPLATES.to_vec()),
        d in dialect(),
        a in prop::collection::vec(val(), 1..6),
        b in prop::collection::vec(val(), 1..6),
        la in 1usize..6,
        lb in 1usize..6,
        seed in any::<u64>(),
    ) {
        let base = fill(t, d, &a, la);
        let other = fill(&relayout(t, d, seed), d, &b, lb);
        prop_assert_eq!(normalize(&base, d).air_id, normalize(&other, d).air_id, "{:?} vs {:?}", base, other);
    }

    #[test]
    fn structural_changes_change_air_id(
        d in dialect(),
        vals in prop::collection::vec(val(), 1..4),
        tables in prop::sample::subsequence(vec!["users", "orders", "s.users", "items", "t1"], 2),
        cols in prop::sample::subsequence(vec!["id", "name", "col1", "x", "t.id"], 2),
        ops in prop::sample::subsequence(vec!["=", "<", ">=", "<>", "LIKE"], 2),
        which in 0usize..3,
    ) {
        let mk = |tb: &str, c: &str, op: &str| fill(&format!("SELECT {c} FROM {tb} WHERE {c} {op} {{v}} ORDER BY {c} DESC"), d, &vals, 1);
        let (x, y) = match which {
            0 => (mk(tables[0], "id", "="), mk(tables[1], "id", "=")),
            1 => (mk("t", cols[0], "="), mk("t", cols[1], "=")),
            _ => (mk("t", "id", ops[0]), mk("t", "id", ops[1])),
        };
        prop_assert_ne!(normalize(&x, d).air_id, normalize(&y, d).air_id, "{:?} vs {:?}", x, y);
    }

    #[test]
    fn never_panics_on_arbitrary_text(s in ".{0,200}", d in dialect()) {
        let n = normalize(&s, d);
        prop_assert!(!n.text.starts_with(' ') && !n.text.ends_with(' '));
        prop_assert_eq!(n.air_id, normalize(&s, d).air_id);
    }
}
