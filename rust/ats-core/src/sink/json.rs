//! The one JSON writer every sink shares: string escaping, numbers, ids and
//! attribute objects, appended to a caller-owned `String`.
//!
//! Why hand-rolled instead of `serde_json::Value`: the flusher writes about a
//! million records per second, and building a `Value` tree per record costs an
//! allocation per node. These helpers append straight into a reused buffer, so
//! a record costs no allocation once the buffer has grown.
//!
//! Output rules (both the SQLite `attributes` column and JSONL lines use them):
//! - strings are escaped per RFC 8259: `"` `\` and the control characters
//!   U+0000..U+001F are escaped (`\n`, `\r`, `\t`, `\b`, `\f` by name, the rest as
//!   `\u00XX`); everything else, including non-ASCII and emoji, is copied as UTF-8.
//! - integers are written as JSON integers; floats always look like floats
//!   (`1.0`, `0.25`, `1e300`) so a reader can tell an `F64` from an `I64`;
//!   NaN and ±infinity have no JSON form and are written as `null`.
//! - attribute and label objects keep the producer's order; duplicate keys are
//!   written as given (producers do not emit them; readers such as serde_json
//!   keep the last one).

use std::fmt::Write as _;

use crate::record::{AttrValue, HistogramData, MetricKind, SloClass, Status};

/// Escape class per byte: 0 = copy, b'u' = `\u00XX`, otherwise the letter after `\`.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Append `s` as a quoted, escaped JSON string.
#[inline]
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    write_str_body(out, s);
    out.push('"');
}

/// True when any of the 8 bytes of `w` is a control character, `"` or `\\`.
/// The classic "has a byte less than n / equal to c" word tricks: exact as
/// an any-test (individual flag bits may be off, which is never used).
#[inline]
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q & HIGH;
    let bs = w ^ (ONES * u64::from(b'\\'));
    let backslash = bs.wrapping_sub(ONES) & !bs & HIGH;
    (below_space | quote | backslash) != 0
}

/// Append the escaped contents of `s` without the surrounding quotes.
pub fn write_str_body(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    // Copy unescaped runs in one go; every byte that needs escaping is ASCII,
    // so the run boundaries are always char boundaries and slicing is safe.
    // Clean 8-byte words are skipped whole (most strings need no escaping).
    let mut run_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        while let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if word_needs_escape(u64::from_le_bytes(word)) {
                break;
            }
            i += 8;
        }
        let end = (i + 8).min(bytes.len());
        while i < end {
            let b = bytes[i];
            let class = ESCAPE[b as usize];
            if class != 0 {
                out.push_str(&s[run_start..i]);
                if class == b'u' {
                    push_ascii(
                        out,
                        &[
                            b'\\',
                            b'u',
                            b'0',
                            b'0',
                            HEX_DIGITS[(b >> 4) as usize],
                            HEX_DIGITS[(b & 0xf) as usize],
                        ],
                    );
                } else {
                    push_ascii(out, &[b'\\', class]);
                }
                run_start = i + 1;
            }
            i += 1;
        }
    }
    out.push_str(&s[run_start..]);
}

/// "00" "01" … "99": two digits per division halves the work of printing.
pub(crate) const DEC_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Append an unsigned integer in decimal.
#[inline]
pub fn write_u64(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DEC_PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DEC_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + v as u8;
    }
    push_ascii(out, &buf[i..]);
}

/// Append a signed integer in decimal.
#[inline]
pub fn write_i64(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    write_u64(out, v.unsigned_abs());
}

/// Append a float that reads back as a float: `1.0`, `0.1`, `1e300`;
/// non-finite values become `null`.
#[inline]
pub fn write_f64(out: &mut String, v: f64) {
    if v.is_finite() {
        // `Debug` prints the shortest round-tripping form, keeps a `.0` on
        // integral values and switches to exponent form (`1e16`, `1e-7`) for
        // very large / small magnitudes, all of which are valid JSON numbers.
        // Writing into a String cannot fail.
        let _ = write!(out, "{v:?}");
    } else {
        out.push_str("null");
    }
}

/// Append `ns / 1e6` (a duration in ms) exactly as [`write_f64`] would
/// write that quotient, without float formatting in the common range.
///
/// For `100 <= ns < 10^15` the quotient has at most 15 significant digits
/// and lies in `[1e-4, 1e9)`, so (f64 keeps 15 decimal digits exactly) the
/// shortest representation is the exact decimal `ns / 10^6` with trailing
/// zeros trimmed, in plain (not exponent) form; elsewhere, fall back.
#[inline]
pub fn write_ms_from_ns(out: &mut String, ns: u64) {
    if !(100..1_000_000_000_000_000).contains(&ns) {
        write_f64(out, ns as f64 / 1e6);
        return;
    }
    write_u64(out, ns / 1_000_000);
    let mut frac = ns % 1_000_000;
    if frac == 0 {
        out.push_str(".0");
        return;
    }
    let mut digits = 6;
    while frac.is_multiple_of(10) {
        frac /= 10;
        digits -= 1;
    }
    let mut buf = [b'0'; 7];
    buf[0] = b'.';
    let mut k = digits;
    while frac > 0 {
        buf[k] = b'0' + (frac % 10) as u8;
        frac /= 10;
        k -= 1;
    }
    push_ascii(out, &buf[..=digits]);
}

#[inline]
pub fn write_bool(out: &mut String, v: bool) {
    out.push_str(if v { "true" } else { "false" });
}

/// Lower-case hex of the low `N` nibbles of `v`, zero-padded, into a fixed
/// buffer (no allocation); `N` is at most 32.
#[inline]
pub fn hex_bytes<const N: usize>(v: u128) -> [u8; N] {
    let mut buf = [b'0'; N];
    let mut x = v;
    for slot in buf.iter_mut().rev() {
        *slot = HEX_DIGITS[(x & 0xf) as usize];
        x >>= 4;
    }
    buf
}

/// 32 hex digits of a trace id, as [`crate::record::trace_id_hex`] renders it.
#[inline]
pub fn trace_id_bytes(id: u128) -> [u8; 32] {
    hex_bytes::<32>(id)
}

/// 16 hex digits of a span id, as [`crate::record::span_id_hex`] renders it.
#[inline]
pub fn span_id_bytes(id: u64) -> [u8; 16] {
    hex_bytes::<16>(u128::from(id))
}

/// Append ASCII bytes produced by the digit / hex helpers in one copy.
#[inline]
pub(crate) fn push_ascii(out: &mut String, bytes: &[u8]) {
    // Callers only pass bytes from the digit / hex tables and literal ASCII,
    // so the UTF-8 check `push_str(from_utf8(..))` would do is pure cost
    // (it measured ~9% of the JSONL sink). Checked in debug builds; a
    // non-ASCII byte is replaced rather than trusted in release builds.
    debug_assert!(bytes.is_ascii());
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8 on their own, so the String
        // stays valid UTF-8.
        unsafe { out.as_mut_vec().extend_from_slice(bytes) }
    } else {
        out.push_str(&String::from_utf8_lossy(bytes));
    }
}

/// Append `"0123…"` (quoted 32-digit hex trace id).
#[inline]
pub fn write_trace_id(out: &mut String, id: u128) {
    out.push('"');
    push_ascii(out, &trace_id_bytes(id));
    out.push('"');
}

/// Append `"0123…"` (quoted 16-digit hex span id).
#[inline]
pub fn write_span_id(out: &mut String, id: u64) {
    out.push('"');
    push_ascii(out, &span_id_bytes(id));
    out.push('"');
}

/// `air:Q-{:016x}`, as [`crate::record::air_id_string`] renders it.
#[inline]
pub fn air_id_bytes(h: u64) -> [u8; 22] {
    let mut buf = [0u8; 22];
    buf[..6].copy_from_slice(b"air:Q-");
    buf[6..].copy_from_slice(&span_id_bytes(h));
    buf
}

/// `ph:{:016x}`, as [`crate::record::plan_hash_string`] renders it.
#[inline]
pub fn plan_hash_bytes(h: u64) -> [u8; 19] {
    let mut buf = [0u8; 19];
    buf[..3].copy_from_slice(b"ph:");
    buf[3..].copy_from_slice(&span_id_bytes(h));
    buf
}

/// Append `"air:Q-{:016x}"`.
#[inline]
pub fn write_air_id(out: &mut String, h: u64) {
    out.push('"');
    push_ascii(out, &air_id_bytes(h));
    out.push('"');
}

/// Append `"ph:{:016x}"`.
#[inline]
pub fn write_plan_hash(out: &mut String, h: u64) {
    out.push('"');
    push_ascii(out, &plan_hash_bytes(h));
    out.push('"');
}

/// Append one typed attribute value.
#[inline]
pub fn write_attr_value(out: &mut String, v: &AttrValue) {
    match v {
        AttrValue::Str(s) => write_str(out, s),
        AttrValue::I64(i) => write_i64(out, *i),
        AttrValue::F64(f) => write_f64(out, *f),
        AttrValue::Bool(b) => write_bool(out, *b),
    }
}

/// Append `{"key":value,…}` for typed attributes (`{}` when empty).
pub fn write_attributes(out: &mut String, attrs: &[(String, AttrValue)]) {
    out.push('{');
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, k);
        out.push(':');
        write_attr_value(out, v);
    }
    out.push('}');
}

/// Append `{"key":"value",…}` for string labels (`{}` when empty).
pub fn write_labels(out: &mut String, labels: &[(String, String)]) {
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, k);
        out.push(':');
        write_str(out, v);
    }
    out.push('}');
}

/// Append `{"count":…,"sum":…,"min":…,"max":…,"bounds":[…],"counts":[…]}`.
pub fn write_histogram(out: &mut String, h: &HistogramData) {
    out.push_str("{\"count\":");
    write_u64(out, h.count);
    out.push_str(",\"sum\":");
    write_f64(out, h.sum);
    out.push_str(",\"min\":");
    write_f64(out, h.min);
    out.push_str(",\"max\":");
    write_f64(out, h.max);
    out.push_str(",\"bounds\":[");
    for (i, b) in h.bounds.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_f64(out, *b);
    }
    out.push_str("],\"counts\":[");
    for (i, c) in h.counts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_u64(out, *c);
    }
    out.push_str("]}");
}

/// Names of enum values, identical in the store's columns and JSONL lines.
pub fn status_str(s: Status) -> &'static str {
    match s {
        Status::Unset => "unset",
        Status::Ok => "ok",
        Status::Error => "error",
    }
}

pub fn metric_kind_str(k: MetricKind) -> &'static str {
    match k {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
        MetricKind::Histogram => "histogram",
    }
}

pub fn slo_class_str(c: SloClass) -> &'static str {
    match c {
        SloClass::L => "L",
        SloClass::B => "B",
        SloClass::A => "A",
        SloClass::S => "S",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{air_id_string, plan_hash_string, span_id_hex, trace_id_hex};

    fn s(f: impl FnOnce(&mut String)) -> String {
        let mut out = String::new();
        f(&mut out);
        out
    }

    #[test]
    fn escapes_exactly() {
        assert_eq!(s(|o| write_str(o, "plain")), r#""plain""#);
        assert_eq!(s(|o| write_str(o, "")), r#""""#);
        assert_eq!(
            s(|o| write_str(o, "a\"b\\c\nd\re\tf\u{8}g\u{c}h\u{0}i\u{1f}j")),
            r#""a\"b\\c\nd\re\tf\bg\fh\u0000i\u001fj""#
        );
        // DEL, non-ASCII and astral characters are copied as UTF-8.
        assert_eq!(s(|o| write_str(o, "\u{7f}é😀/")), "\"\u{7f}é😀/\"");
    }

    #[test]
    fn escaped_strings_round_trip_through_serde_json() {
        let nasty = [
            "\"quoted\"",
            "back\\slash",
            "line\nbreak",
            "nul\u{0}byte",
            "all controls \u{1}\u{2}\u{3}\u{1b}\u{1f}",
            "emoji 😀👩‍👩‍👧 and CJK 漢字",
            "\u{2028}\u{2029}",
            "",
        ];
        for n in nasty {
            let json = s(|o| write_str(o, n));
            let back: String = serde_json::from_str(&json).expect("valid JSON string");
            assert_eq!(back, n);
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(s(|o| write_u64(o, 0)), "0");
        for v in [1u64, 9, 10, 99, 100, 101, 999, 1000, 12345, 1_000_000_007] {
            assert_eq!(s(|o| write_u64(o, v)), v.to_string());
        }
        assert_eq!(s(|o| write_u64(o, u64::MAX)), "18446744073709551615");
        assert_eq!(s(|o| write_i64(o, i64::MIN)), "-9223372036854775808");
        assert_eq!(s(|o| write_i64(o, -42)), "-42");
        assert_eq!(s(|o| write_f64(o, 1.0)), "1.0");
        assert_eq!(s(|o| write_f64(o, 0.1)), "0.1");
        assert_eq!(s(|o| write_f64(o, -0.0)), "-0.0");
        assert_eq!(s(|o| write_f64(o, 1e300)), "1e300");
        assert_eq!(s(|o| write_f64(o, f64::NAN)), "null");
        assert_eq!(s(|o| write_f64(o, f64::NEG_INFINITY)), "null");
        for v in [1e-7, 1e16, 123456.789, f64::MAX, f64::MIN_POSITIVE] {
            let out = s(|o| write_f64(o, v));
            let back: serde_json::Value = serde_json::from_str(&out).expect("valid number");
            assert!(back.is_f64(), "{out} must parse as a float");
            assert_eq!(out.parse::<f64>().ok(), Some(v));
        }
    }

    #[test]
    fn ids_match_model_helpers() {
        for v in [0u64, 1, 0xdead_beef, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(
                s(|o| write_span_id(o, v)),
                format!("\"{}\"", span_id_hex(v))
            );
            assert_eq!(
                s(|o| write_air_id(o, v)),
                format!("\"{}\"", air_id_string(v))
            );
            assert_eq!(
                s(|o| write_plan_hash(o, v)),
                format!("\"{}\"", plan_hash_string(v))
            );
        }
        for v in [
            0u128,
            1,
            u128::MAX,
            0x4a1b_0000_0000_0000_0000_0000_0000_9f3a,
        ] {
            assert_eq!(
                s(|o| write_trace_id(o, v)),
                format!("\"{}\"", trace_id_hex(v))
            );
        }
    }

    #[test]
    fn attribute_objects_keep_types() {
        let attrs = vec![
            ("db.system".to_string(), AttrValue::Str("sqlite".into())),
            ("net.peer.port".to_string(), AttrValue::I64(5432)),
            ("ratio".to_string(), AttrValue::F64(2.0)),
            ("ok".to_string(), AttrValue::Bool(true)),
            ("k\"ey".to_string(), AttrValue::Str("v\n".into())),
        ];
        let out = s(|o| write_attributes(o, &attrs));
        assert_eq!(
            out,
            r#"{"db.system":"sqlite","net.peer.port":5432,"ratio":2.0,"ok":true,"k\"ey":"v\n"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&out).expect("valid");
        assert!(v["net.peer.port"].is_i64());
        assert!(v["ratio"].is_f64());
        assert_eq!(s(|o| write_attributes(o, &[])), "{}");
        assert_eq!(s(|o| write_labels(o, &[])), "{}");
        assert_eq!(
            s(|o| write_labels(
                o,
                &[("op".into(), "query".into()), ("a".into(), "b".into())]
            )),
            r#"{"op":"query","a":"b"}"#
        );
    }

    #[test]
    fn histogram_object() {
        let h = HistogramData {
            count: 3,
            sum: 6.5,
            min: 0.5,
            max: 4.0,
            bounds: vec![1.0, 5.0],
            counts: vec![1, 2, 0],
        };
        assert_eq!(
            s(|o| write_histogram(o, &h)),
            r#"{"count":3,"sum":6.5,"min":0.5,"max":4.0,"bounds":[1.0,5.0],"counts":[1,2,0]}"#
        );
        assert_eq!(
            s(|o| write_histogram(o, &HistogramData::default())),
            r#"{"count":0,"sum":0.0,"min":0.0,"max":0.0,"bounds":[],"counts":[]}"#
        );
    }

    proptest::proptest! {
        #[test]
        fn any_string_round_trips(text in "\\PC*|[\\x00-\\x7f]*") {
            let json = s(|o| write_str(o, &text));
            let back: String = serde_json::from_str(&json).expect("valid JSON string");
            proptest::prop_assert_eq!(&back, &text);
            // Same escaping rules as serde_json (named short escapes,
            // `\u00XX` for other controls, nothing else escaped).
            proptest::prop_assert_eq!(json, serde_json::to_string(&text).expect("serde"));
        }

        #[test]
        fn escape_heavy_strings_match_serde(text in "[a\"\\\\\x00-\x1f\x7fé😀]{0,40}") {
            let json = s(|o| write_str(o, &text));
            proptest::prop_assert_eq!(json, serde_json::to_string(&text).expect("serde"));
        }

        #[test]
        fn millis_from_ns_matches_float_division(ns in 0u64..2_000_000_000_000_000) {
            proptest::prop_assert_eq!(
                s(|o| write_ms_from_ns(o, ns)),
                s(|o| write_f64(o, ns as f64 / 1e6))
            );
        }

        #[test]
        fn any_integer_matches_std(v in proptest::num::i64::ANY, u in proptest::num::u64::ANY) {
            proptest::prop_assert_eq!(s(|o| write_i64(o, v)), v.to_string());
            proptest::prop_assert_eq!(s(|o| write_u64(o, u)), u.to_string());
        }

        #[test]
        fn any_finite_float_reads_back_exactly(v in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
            let out = s(|o| write_f64(o, v));
            let back: serde_json::Value = serde_json::from_str(&out).expect("valid number");
            proptest::prop_assert!(back.is_f64());
            // Exactness via std's correctly rounded parser (serde_json's
            // default parser may be off by one ulp without `float_roundtrip`).
            proptest::prop_assert_eq!(out.parse::<f64>().ok(), Some(v));
        }
    }
}
