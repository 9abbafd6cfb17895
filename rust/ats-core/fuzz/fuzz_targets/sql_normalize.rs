//! Fuzz the SQL normaliser: arbitrary bytes (lossy UTF-8) in every dialect.
//!
//! Invariants checked (simple and always true by the spec):
//! * no panic;
//! * deterministic: the same input gives the same result twice;
//! * `text` never has leading or trailing spaces; the summary is capped;
//! * a closed single-quoted literal `'xyzw...'` (>= 4 letters, no quote,
//!   backslash or comment/dollar/bracket characters around it) placed after
//!   `= ` at the start of a fresh statement never survives into `text`.
#![no_main]
use ats_core::sql::{normalize, Dialect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    for d in Dialect::ALL {
        let n = normalize(&s, d);
        assert_eq!(n, normalize(&s, d));
        assert!(!n.text.starts_with(' ') && !n.text.ends_with(' '), "{:?}", n.text);
        assert!(n.summary.len() <= 255);
    }
    // Embed a distinctive literal after arbitrary (but comment/quote-free)
    // prefix text and check it is redacted.
    let secret: String = data
        .iter()
        .filter(|b| b.is_ascii_lowercase())
        .map(|&b| (b'a' + (b % 26)) as char)
        .take(12)
        .collect();
    if secret.len() >= 4 {
        let prefix: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '=' | '(' | ')' | ',' | '.' | '<' | '>'))
            .take(64)
            .collect();
        let sql = format!("SELECT {prefix} ; SELECT * FROM t WHERE zz = 'QQ{secret}QQ' AND {prefix}");
        for d in Dialect::ALL {
            let n = normalize(&sql, d);
            assert!(!n.text.contains(&format!("QQ{secret}QQ")), "{d}: {sql:?} -> {:?}", n.text);
        }
    }
});
