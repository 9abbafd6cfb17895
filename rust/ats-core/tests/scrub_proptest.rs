//! Property tests for the scrubber:
//! 1. a generated secret of every kind, dropped into ordinary text, never
//!    survives scrubbing;
//! 2. scrubbing is idempotent;
//! 3. scrubbing never panics, whatever the input.

use ats_core::scrub::{default_scrubber, scrub, Kind};
use proptest::prelude::*;

/// Text that must pass through untouched, joined by spaces.
const ORDINARY: &[&str] = &[
    "hello",
    "world",
    "version 1.2.3",
    "2025-10-16",
    "2025-10-16T12:34:56.789Z",
    "id=42",
    "took 1536 ms",
    "SELECT * FROM users WHERE id = $1",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "max_tokens: 1024",
    "Grüße, мир —",
    "🎉",
    "ok;",
    "(done)",
    "x.y.z",
    "GET /api/v1/items?page=2",
    "status=200",
];

fn ordinary() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(ORDINARY), 0..6).prop_map(|v| v.join(" "))
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn luhn_complete(body: &str) -> String {
    // Append the check digit that makes `body` + d Luhn-valid.
    let mut sum = 0u32;
    for (i, c) in body.bytes().rev().enumerate() {
        let d = u32::from(c - b'0');
        sum += if i % 2 == 0 {
            let x = d * 2;
            if x > 9 {
                x - 9
            } else {
                x
            }
        } else {
            d
        };
    }
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// A card number of 15 (Amex) or 16 digits, formatted plainly, with spaces or
/// with dashes.
fn card() -> impl Strategy<Value = (String, String)> {
    (
        prop::sample::select(vec!["4", "51", "55", "2221", "6011", "37"]),
        "[0-9]{14}",
        0..3usize,
    )
        .prop_map(|(prefix, fill, fmt)| {
            let len = if prefix == "37" { 15 } else { 16 };
            let body: String = format!("{prefix}{fill}").chars().take(len - 1).collect();
            let digits = luhn_complete(&body);
            let sep = match fmt {
                0 => return (digits.clone(), digits),
                1 => " ",
                _ => "-",
            };
            let groups: Vec<&str> = if len == 15 {
                vec![&digits[..4], &digits[4..10], &digits[10..]]
            } else {
                vec![&digits[..4], &digits[4..8], &digits[8..12], &digits[12..]]
            };
            (groups.join(sep), digits)
        })
}

/// (text to insert, the part that must not survive)
fn secret() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        card(),
        "AKIA[A-Z0-9]{16}".prop_map(|s| (s.clone(), s)),
        "ghp_[A-Za-z0-9]{36}".prop_map(|s| (s.clone(), s)),
        "glpat-[A-Za-z0-9_-]{20}".prop_map(|s| (s.clone(), s)),
        "xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24}".prop_map(|s| (s.clone(), s)),
        "sk_live_[A-Za-z0-9]{24}".prop_map(|s| (s.clone(), s)),
        "AIza[A-Za-z0-9_-]{35}".prop_map(|s| (s.clone(), s)),
        "sk-proj-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}".prop_map(|s| (s.clone(), s)),
        "sk-ant-api03-[A-Za-z0-9_-]{93}AA".prop_map(|s| (s.clone(), s)),
        "[a-z]{1,10}(\\.[a-z]{1,5})?@[a-z]{2,10}\\.(com|org|io)".prop_map(|s| (s.clone(), s)),
        (1u32..900, 1u32..100, 1u32..10000)
            .prop_filter("valid area", |(a, _, _)| *a != 666)
            .prop_map(|(a, g, s)| {
                let v = format!("{a:03}-{g:02}-{s:04}");
                (v.clone(), v)
            }),
        ("[A-Za-z0-9]{4,12}", "[A-Za-z0-9]{4,30}").prop_map(|(sub, sig)| {
            let jwt = format!(
                "{}.{}.{}",
                b64url(br#"{"alg":"HS256","typ":"JWT"}"#),
                b64url(format!(r#"{{"sub":"{sub}"}}"#).as_bytes()),
                sig
            );
            (jwt.clone(), jwt)
        }),
        "[A-Za-z0-9]{10,24}".prop_map(|pw| (
            format!("postgres://app:{pw}@db.example.com:5432/x"),
            format!(":{pw}@")
        )),
        // At least one letter or digit: punctuation alone is not a password.
        (
            "[A-Za-z0-9!#%^*]{4,12}",
            "[A-Za-z0-9]",
            "[A-Za-z0-9!#%^*]{5,11}"
        )
            .prop_map(|(a, b, c)| {
                let v = format!("{a}{b}{c}");
                (format!("password={v}"), v)
            }),
        "[A-Za-z0-9]{10,24}".prop_map(|v| (format!("{{\"api_key\": \"{v}\"}}"), v)),
        "[A-Za-z0-9._-]{20,40}".prop_map(|v| (format!("Authorization: Bearer {v}"), v)),
        "[A-Za-z0-9+/]{40,64}".prop_map(|body| {
            (
                format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"),
                body,
            )
        }),
        "[a-z]{3,10}"
            .prop_map(|name| (format!("/home/{name}/src/app.py"), format!("/home/{name}"))),
    ]
}

fn assert_idempotent(s: &str) -> Result<(), TestCaseError> {
    let once = scrub(s);
    let twice = scrub(&once);
    prop_assert_eq!(&*twice, &*once, "input {:?}", s);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn inserted_secrets_never_survive(pre in ordinary(), (secret, core) in secret(), post in ordinary()) {
        // ` | ` rather than a bare space: `1024 5149 2225 8918 0000` is
        // ambiguous even to a human (which four groups are the card?).
        let text = format!("{pre} | {secret} | {post}");
        let out = scrub(&text);
        prop_assert!(!out.contains(&core), "{:?} survived in {:?}", core, out);
        // Ordinary text around it is kept.
        prop_assert!(out.starts_with(&pre), "prefix lost: {:?}", out);
        prop_assert!(out.ends_with(&post), "suffix lost: {:?}", out);
        assert_idempotent(&text)?;
    }

    #[test]
    fn ordinary_text_is_untouched(text in ordinary()) {
        let (out, counts) = default_scrubber().scrub_with_counts(&text);
        prop_assert_eq!(&*out, text.as_str());
        prop_assert_eq!(counts.total(), 0);
        prop_assert_eq!(counts.get(Kind::Email), 0);
    }

    #[test]
    fn idempotent_on_secret_rich_text(
        parts in prop::collection::vec(
            prop_oneof![
                secret().prop_map(|(s, _)| s),
                "[ -~]{0,12}",
                prop::sample::select(vec![
                    " ", "=", ":", "\"", "'", "@", ".", "-", "/", "[", "]", "\n", "://", "password", "token=",
                    "Bearer ", "Basic ", " -u ", "/home/", "C:\\Users\\", "eyJ", "0", "4111", "-05-", "AKIA",
                ]).prop_map(str::to_string),
            ],
            0..12,
        )
    ) {
        // No separators: secrets glued to each other and to punctuation.
        assert_idempotent(&parts.concat())?;
    }

    #[test]
    fn idempotent_on_printable_ascii(s in "[ -~\n]{0,300}") {
        assert_idempotent(&s)?;
    }

    #[test]
    fn never_panics_on_any_string(s in any::<String>()) {
        let _ = scrub(&s);
        assert_idempotent(&s)?;
    }

    #[test]
    fn never_panics_on_lossy_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = scrub(&s);
    }
}
