//! The few response fields the exporter acts on, decoded by hand:
//! `Export*ServiceResponse.partial_success` (protobuf or JSON) and, for gRPC,
//! `google.rpc.Status.details[RetryInfo]` from `grpc-status-details-bin`.

use std::time::Duration;

/// `partial_success` of an export response: items the collector refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialSuccess {
    pub rejected: u64,
    pub error_message: String,
}

/// Decodes `Export{Trace,Metrics,Logs}ServiceResponse` protobuf. All three
/// put `partial_success` at field 1 with `rejected_*` (int64) at 1 and
/// `error_message` at 2. Undecodable bytes read as "no partial success".
pub fn partial_success_protobuf(body: &[u8]) -> Option<PartialSuccess> {
    let inner = fields(body).find(|f| f.number == 1)?.bytes?;
    let mut ps = PartialSuccess::default();
    for f in fields(inner) {
        match (f.number, f.varint, f.bytes) {
            (1, Some(v), _) => ps.rejected = v,
            (2, _, Some(b)) => ps.error_message = String::from_utf8_lossy(b).into_owned(),
            _ => {}
        }
    }
    Some(ps)
}

/// Decodes the OTLP/JSON response (`partialSuccess.rejectedSpans` etc.;
/// int64 may be a string or a number).
pub fn partial_success_json(body: &[u8]) -> Option<PartialSuccess> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let ps = v.get("partialSuccess")?;
    let rejected = ["rejectedSpans", "rejectedDataPoints", "rejectedLogRecords"]
        .iter()
        .find_map(|k| ps.get(*k))
        .and_then(|r| r.as_u64().or_else(|| r.as_str().and_then(|s| s.parse().ok())))
        .unwrap_or(0);
    let error_message = ps.get("errorMessage").and_then(|m| m.as_str()).unwrap_or_default().to_owned();
    Some(PartialSuccess { rejected, error_message })
}

/// `google.rpc.RetryInfo.retry_delay` inside a base64 `grpc-status-details-bin`.
pub fn grpc_retry_delay(details_b64: &str) -> Option<Duration> {
    const RETRY_INFO: &[u8] = b"type.googleapis.com/google.rpc.RetryInfo";
    let status = crate::scrub::b64_decode(details_b64)?;
    // Status.details (field 3) are `Any { type_url = 1; value = 2 }`.
    for any in fields(&status).filter(|f| f.number == 3).filter_map(|f| f.bytes) {
        let mut type_url = None;
        let mut value = None;
        for f in fields(any) {
            match f.number {
                1 => type_url = f.bytes,
                2 => value = f.bytes,
                _ => {}
            }
        }
        if type_url != Some(RETRY_INFO) {
            continue;
        }
        // RetryInfo { Duration retry_delay = 1 }, Duration { seconds = 1; nanos = 2 }.
        let delay = value.and_then(|v| fields(v).find(|f| f.number == 1)).and_then(|f| f.bytes);
        let (mut secs, mut nanos) = (0u64, 0u64);
        for f in fields(delay.unwrap_or_default()) {
            match (f.number, f.varint) {
                (1, Some(v)) => secs = v,
                (2, Some(v)) => nanos = v,
                _ => {}
            }
        }
        return Some(Duration::from_secs(secs) + Duration::from_nanos(nanos.min(999_999_999)));
    }
    None
}

/// One protobuf field: its number and its varint or length-delimited value.
struct Field<'a> {
    number: u64,
    varint: Option<u64>,
    bytes: Option<&'a [u8]>,
}

/// Iterates the top-level fields of a message; stops at the first malformed one.
fn fields(mut buf: &[u8]) -> impl Iterator<Item = Field<'_>> {
    std::iter::from_fn(move || {
        let key = varint(&mut buf)?;
        let number = key >> 3;
        let field = match key & 7 {
            0 => Field { number, varint: Some(varint(&mut buf)?), bytes: None },
            1 => Field { number, varint: None, bytes: Some(take(&mut buf, 8)?) },
            2 => {
                let len = usize::try_from(varint(&mut buf)?).ok()?;
                Field { number, varint: None, bytes: Some(take(&mut buf, len)?) }
            }
            5 => Field { number, varint: None, bytes: Some(take(&mut buf, 4)?) },
            _ => return None,
        };
        Some(field)
    })
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Some(head)
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Test-side protobuf writer for the few shapes above.
    pub(crate) fn pb_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    pub(crate) fn pb_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
        pb_varint(out, field << 3 | 2);
        pb_varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }
    pub(crate) fn pb_uint(out: &mut Vec<u8>, field: u64, v: u64) {
        pb_varint(out, field << 3);
        pb_varint(out, v);
    }
    /// `Export*ServiceResponse { partial_success { rejected = n, error_message = msg } }`.
    pub(crate) fn partial_success_response(rejected: u64, msg: &str) -> Vec<u8> {
        let mut inner = Vec::new();
        pb_uint(&mut inner, 1, rejected);
        pb_bytes(&mut inner, 2, msg.as_bytes());
        let mut out = Vec::new();
        pb_bytes(&mut out, 1, &inner);
        out
    }
    pub(crate) fn base64_encode(b: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for chunk in b.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &x)| acc | u32::from(x) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        s
    }

    #[test]
    fn protobuf_partial_success() {
        let body = partial_success_response(3, "bad spans");
        assert_eq!(
            partial_success_protobuf(&body),
            Some(PartialSuccess { rejected: 3, error_message: "bad spans".into() })
        );
        assert_eq!(partial_success_protobuf(&[]), None);
        assert_eq!(partial_success_protobuf(&[0x0a, 0x05, 1]), None); // truncated
    }

    #[test]
    fn json_partial_success() {
        let b = br#"{"partialSuccess":{"rejectedDataPoints":"12","errorMessage":"dup"}}"#;
        assert_eq!(partial_success_json(b), Some(PartialSuccess { rejected: 12, error_message: "dup".into() }));
        assert_eq!(partial_success_json(br#"{"partialSuccess":{"rejectedSpans":2}}"#).unwrap().rejected, 2);
        assert_eq!(partial_success_json(b"{}"), None);
    }

    #[test]
    fn retry_info_from_status_details() {
        let mut dur = Vec::new();
        pb_uint(&mut dur, 1, 2);
        pb_uint(&mut dur, 2, 500_000_000);
        let mut retry = Vec::new();
        pb_bytes(&mut retry, 1, &dur);
        let mut any = Vec::new();
        pb_bytes(&mut any, 1, b"type.googleapis.com/google.rpc.RetryInfo");
        pb_bytes(&mut any, 2, &retry);
        let mut status = Vec::new();
        pb_uint(&mut status, 1, 8);
        pb_bytes(&mut status, 3, &any);
        let b64 = base64_encode(&status);
        assert_eq!(grpc_retry_delay(b64.trim_end_matches('=')), Some(Duration::from_millis(2500)));
        assert_eq!(grpc_retry_delay(&b64), Some(Duration::from_millis(2500)));
        let mut no_retry = Vec::new();
        pb_uint(&mut no_retry, 1, 8);
        assert_eq!(grpc_retry_delay(&base64_encode(&no_retry)), None);
        assert_eq!(grpc_retry_delay("!!"), None);
    }
}
