//! Encoder: borrowed views in, bytes out, no allocation.
//!
//! Every `encode_*` has an `encoded_len_*` twin computed from the same
//! field list, so a producer can reserve exactly the right number of bytes in
//! the ring and encode in place.

use super::layout::*;
use super::EncodeError;
use crate::record::model::{MetricPoint, Record};
use crate::record::driver::DriverSpanRef;
use crate::record::view::{AttrRef, EnvelopeRef, LogRef, RecordRef, RewardRef, SpanRef};

/// A bounds-checked cursor over the caller's buffer. Callers check the total
/// length first, so the per-write checks never fail; they exist so a length
/// bug turns into a panic-free short record in release builds, never UB.
struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    #[inline]
    fn bytes(&mut self, b: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.pos..self.pos + b.len()) {
            dst.copy_from_slice(b);
        }
        self.pos += b.len();
    }
    #[inline]
    fn u8(&mut self, v: u8) {
        if let Some(b) = self.buf.get_mut(self.pos) {
            *b = v;
        }
        self.pos += 1;
    }
    #[inline]
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    #[inline]
    fn f64(&mut self, v: f64) {
        self.bytes(&v.to_le_bytes());
    }
    #[inline]
    fn varint(&mut self, mut v: u64) {
        // Nearly every length is below 128: one byte, no loop.
        if v < 0x80 {
            self.u8(v as u8);
            return;
        }
        let mut tmp = [0u8; 10];
        let mut n = 0;
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                tmp[n] = byte;
                n += 1;
                break;
            }
            tmp[n] = byte | 0x80;
            n += 1;
        }
        self.bytes(&tmp[..n]);
    }
    #[inline]
    fn str(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.bytes(s.as_bytes());
    }
}

// ---------------------------------------------------------------- envelope

fn envelope_flags(e: &EnvelopeRef<'_>) -> u8 {
    let mut f = 0;
    if e.trace_id != 0 {
        f |= F_TRACE_ID;
    }
    if e.span_id != 0 {
        f |= F_SPAN_ID;
    }
    if e.parent_span_id != 0 {
        f |= F_PARENT_SPAN_ID;
    }
    if e.air_id.is_some() {
        f |= F_AIR_ID;
    }
    if e.plan_hash.is_some() {
        f |= F_PLAN_HASH;
    }
    f
}

fn envelope_fixed_len(flags: u8) -> usize {
    8 + if flags & F_TRACE_ID != 0 { 16 } else { 0 }
        + if flags & F_SPAN_ID != 0 { 8 } else { 0 }
        + if flags & F_PARENT_SPAN_ID != 0 { 8 } else { 0 }
        + if flags & F_AIR_ID != 0 { 8 } else { 0 }
        + if flags & F_PLAN_HASH != 0 { 8 } else { 0 }
}

fn envelope_strings_len(e: &EnvelopeRef<'_>) -> usize {
    str_len(e.tenant) + str_len(e.workspace) + str_len(e.region) + str_len(e.dialect)
}

fn write_envelope_fixed(w: &mut Writer<'_>, e: &EnvelopeRef<'_>) {
    w.u64(e.ts_ns);
    if e.trace_id != 0 {
        w.bytes(&e.trace_id.to_le_bytes());
    }
    if e.span_id != 0 {
        w.u64(e.span_id);
    }
    if e.parent_span_id != 0 {
        w.u64(e.parent_span_id);
    }
    if let Some(a) = e.air_id {
        w.u64(a);
    }
    if let Some(p) = e.plan_hash {
        w.u64(p);
    }
}

fn write_envelope_strings(w: &mut Writer<'_>, e: &EnvelopeRef<'_>) {
    w.str(e.tenant);
    w.str(e.workspace);
    w.str(e.region);
    w.str(e.dialect);
}

fn attrs_len(attrs: &[(&str, AttrRef<'_>)]) -> usize {
    let mut n = varint_len(attrs.len() as u64);
    for (k, v) in attrs {
        n += str_len(k) + 1;
        n += match v {
            AttrRef::Str(s) => str_len(s),
            AttrRef::I64(_) | AttrRef::F64(_) => 8,
            AttrRef::Bool(_) => 1,
        };
    }
    n
}

fn write_attrs(w: &mut Writer<'_>, attrs: &[(&str, AttrRef<'_>)]) {
    w.varint(attrs.len() as u64);
    for (k, v) in attrs {
        w.str(k);
        match *v {
            AttrRef::Str(s) => {
                w.u8(TAG_STR);
                w.str(s);
            }
            AttrRef::I64(i) => {
                w.u8(TAG_I64);
                w.bytes(&i.to_le_bytes());
            }
            AttrRef::F64(f) => {
                w.u8(TAG_F64);
                w.f64(f);
            }
            AttrRef::Bool(b) => {
                w.u8(TAG_BOOL);
                w.u8(b as u8);
            }
        }
    }
}

/// Checks sizes, writes the header and hands the cursor to `body`.
fn encode_with(
    kind: u8,
    flags: u8,
    len: usize,
    out: &mut [u8],
    body: impl FnOnce(&mut Writer<'_>),
) -> Result<usize, EncodeError> {
    if len > MAX_RECORD_LEN {
        return Err(EncodeError::TooLarge { len });
    }
    let Some(out) = out.get_mut(..len) else {
        return Err(EncodeError::BufferTooSmall {
            needed: len,
            available: out.len(),
        });
    };
    let mut w = Writer { buf: out, pos: 0 };
    w.bytes(&[MAGIC, VERSION, kind, flags]);
    w.bytes(&(len as u32).to_le_bytes());
    body(&mut w);
    debug_assert_eq!(w.pos, len, "encoded_len disagrees with the encoder");
    Ok(len)
}

fn encode_vec(
    len: usize,
    out: &mut Vec<u8>,
    f: impl FnOnce(&mut [u8]) -> Result<usize, EncodeError>,
) -> Result<usize, EncodeError> {
    if len > MAX_RECORD_LEN {
        return Err(EncodeError::TooLarge { len });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let res = f(&mut out[start..]);
    if res.is_err() {
        out.truncate(start);
    }
    res
}

// ---------------------------------------------------------------- span

/// Exact encoded size of a span.
pub fn encoded_len_span(s: &SpanRef<'_>) -> usize {
    HEADER_LEN
        + envelope_fixed_len(envelope_flags(&s.envelope))
        + 8 // end_ns
        + 1 // status
        + envelope_strings_len(&s.envelope)
        + str_len(s.name)
        + str_len(s.component)
        + attrs_len(s.attributes)
}

/// Encodes `s` into the front of `out`; returns the bytes written.
pub fn encode_span(s: &SpanRef<'_>, out: &mut [u8]) -> Result<usize, EncodeError> {
    encode_span_sized(s, encoded_len_span(s), out)
}

/// `encode_span` with the length already computed (the hot path computes it once).
fn encode_span_sized(s: &SpanRef<'_>, len: usize, out: &mut [u8]) -> Result<usize, EncodeError> {
    let flags = envelope_flags(&s.envelope);
    encode_with(KIND_SPAN, flags, len, out, |w| {
        write_envelope_fixed(w, &s.envelope);
        w.u64(s.end_ns);
        w.u8(s.status as u8);
        write_envelope_strings(w, &s.envelope);
        w.str(s.name);
        w.str(s.component);
        write_attrs(w, s.attributes);
    })
}

/// Appends the encoding of `s` to `out`.
pub fn encode_span_to_vec(s: &SpanRef<'_>, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
    let len = encoded_len_span(s);
    encode_vec(len, out, |b| encode_span_sized(s, len, b))
}

// ---------------------------------------------------------------- log

/// Exact encoded size of a log record.
pub fn encoded_len_log(l: &LogRef<'_>) -> usize {
    HEADER_LEN
        + envelope_fixed_len(envelope_flags(&l.envelope))
        + 1 // severity
        + envelope_strings_len(&l.envelope)
        + str_len(l.event)
        + str_len(l.component)
        + str_len(l.body)
        + attrs_len(l.attributes)
}

/// Encodes `l` into the front of `out`; returns the bytes written.
pub fn encode_log(l: &LogRef<'_>, out: &mut [u8]) -> Result<usize, EncodeError> {
    let flags = envelope_flags(&l.envelope);
    encode_with(KIND_LOG, flags, encoded_len_log(l), out, |w| {
        write_envelope_fixed(w, &l.envelope);
        w.u8(l.severity.0);
        write_envelope_strings(w, &l.envelope);
        w.str(l.event);
        w.str(l.component);
        w.str(l.body);
        write_attrs(w, l.attributes);
    })
}

/// Appends the encoding of `l` to `out`.
pub fn encode_log_to_vec(l: &LogRef<'_>, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
    encode_vec(encoded_len_log(l), out, |b| encode_log(l, b))
}

// ---------------------------------------------------------------- metric

fn metric_flags(m: &MetricPoint) -> u8 {
    let mut f = envelope_flags(&(&m.envelope).into());
    if m.histogram.is_some() {
        f |= F_KIND_BIT;
    }
    f
}

/// Exact encoded size of a metric point.
pub fn encoded_len_metric(m: &MetricPoint) -> usize {
    let env: EnvelopeRef<'_> = (&m.envelope).into();
    let mut n = HEADER_LEN
        + envelope_fixed_len(metric_flags(m))
        + 8 // start_ns
        + 8 // value
        + 1 // kind
        + envelope_strings_len(&env)
        + str_len(&m.name)
        + str_len(&m.unit)
        + varint_len(m.labels.len() as u64);
    for (k, v) in &m.labels {
        n += str_len(k) + str_len(v);
    }
    if let Some(h) = &m.histogram {
        n += 32 // count, sum, min, max
            + varint_len(h.bounds.len() as u64)
            + 8 * h.bounds.len()
            + varint_len(h.counts.len() as u64)
            + 8 * h.counts.len();
    }
    n
}

/// Encodes `m` into the front of `out`; returns the bytes written.
pub fn encode_metric(m: &MetricPoint, out: &mut [u8]) -> Result<usize, EncodeError> {
    let env: EnvelopeRef<'_> = (&m.envelope).into();
    encode_with(
        KIND_METRIC,
        metric_flags(m),
        encoded_len_metric(m),
        out,
        |w| {
            write_envelope_fixed(w, &env);
            w.u64(m.start_ns);
            w.f64(m.value);
            w.u8(m.kind as u8);
            if let Some(h) = &m.histogram {
                w.u64(h.count);
                w.f64(h.sum);
                w.f64(h.min);
                w.f64(h.max);
            }
            write_envelope_strings(w, &env);
            w.str(&m.name);
            w.str(&m.unit);
            w.varint(m.labels.len() as u64);
            for (k, v) in &m.labels {
                w.str(k);
                w.str(v);
            }
            if let Some(h) = &m.histogram {
                w.varint(h.bounds.len() as u64);
                for b in &h.bounds {
                    w.f64(*b);
                }
                w.varint(h.counts.len() as u64);
                for c in &h.counts {
                    w.u64(*c);
                }
            }
        },
    )
}

/// Appends the encoding of `m` to `out`.
pub fn encode_metric_to_vec(m: &MetricPoint, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
    encode_vec(encoded_len_metric(m), out, |b| encode_metric(m, b))
}

// ---------------------------------------------------------------- reward

fn reward_flags(r: &RewardRef<'_>) -> u8 {
    envelope_flags(&r.envelope) | if r.success { F_KIND_BIT } else { 0 }
}

/// Exact encoded size of a reward record: 57 fixed bytes with `air_id` and
/// `plan_hash` set and no trace ids, plus two varints and five strings.
pub fn encoded_len_reward(r: &RewardRef<'_>) -> usize {
    HEADER_LEN
        + envelope_fixed_len(reward_flags(r))
        + 24 // latency_ms, cpu_ms, reward
        + 1 // class
        + envelope_strings_len(&r.envelope)
        + varint_len(r.io_bytes)
        + varint_len(r.rows)
        + str_len(r.engine)
}

/// Encodes `r` into the front of `out`; returns the bytes written.
pub fn encode_reward(r: &RewardRef<'_>, out: &mut [u8]) -> Result<usize, EncodeError> {
    encode_with(
        KIND_REWARD,
        reward_flags(r),
        encoded_len_reward(r),
        out,
        |w| {
            write_envelope_fixed(w, &r.envelope);
            w.f64(r.latency_ms);
            w.f64(r.cpu_ms);
            w.f64(r.reward);
            w.u8(r.class as u8);
            write_envelope_strings(w, &r.envelope);
            w.varint(r.io_bytes);
            w.varint(r.rows);
            w.str(r.engine);
        },
    )
}

/// Appends the encoding of `r` to `out`.
pub fn encode_reward_to_vec(r: &RewardRef<'_>, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
    encode_vec(encoded_len_reward(r), out, |b| encode_reward(r, b))
}

// ---------------------------------------------------------------- any kind

/// Exact encoded size of any borrowed record.
pub fn encoded_len_ref(r: &RecordRef<'_>) -> usize {
    match r {
        RecordRef::Span(s) => encoded_len_span(s),
        RecordRef::Log(l) => encoded_len_log(l),
        RecordRef::Metric(m) => encoded_len_metric(m),
        RecordRef::Reward(x) => encoded_len_reward(x),
    }
}

/// Encodes any borrowed record into the front of `out`.
pub fn encode_ref(r: &RecordRef<'_>, out: &mut [u8]) -> Result<usize, EncodeError> {
    match r {
        RecordRef::Span(s) => encode_span(s, out),
        RecordRef::Log(l) => encode_log(l, out),
        RecordRef::Metric(m) => encode_metric(m, out),
        RecordRef::Reward(x) => encode_reward(x, out),
    }
}

/// Exact encoded size of an owned record.
pub fn encoded_len(r: &Record) -> usize {
    with_ref(r, |v| encoded_len_ref(&v))
}

/// Appends the encoding of an owned record to `out` (flusher-side and test
/// path; it builds a small vector of attribute views, so it allocates).
pub fn encode_record(r: &Record, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
    with_ref(r, |v| {
        encode_vec(encoded_len_ref(&v), out, |b| encode_ref(&v, b))
    })
}

/// Calls `f` with a borrowed view of `r`.
pub fn with_ref<T>(r: &Record, f: impl FnOnce(RecordRef<'_>) -> T) -> T {
    match r {
        Record::Span(s) => {
            let attrs: Vec<(&str, AttrRef<'_>)> = s
                .attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.into()))
                .collect();
            f(RecordRef::Span(SpanRef {
                envelope: (&s.envelope).into(),
                name: &s.name,
                component: &s.component,
                end_ns: s.end_ns,
                status: s.status,
                attributes: &attrs,
            }))
        }
        Record::Log(l) => {
            let attrs: Vec<(&str, AttrRef<'_>)> = l
                .attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.into()))
                .collect();
            f(RecordRef::Log(LogRef {
                envelope: (&l.envelope).into(),
                event: &l.event,
                component: &l.component,
                severity: l.severity,
                body: &l.body,
                attributes: &attrs,
            }))
        }
        Record::Metric(m) => f(RecordRef::Metric(m)),
        Record::Reward(x) => f(RecordRef::Reward(x.into())),
    }
}

// ---------------------------------------------------------------- driver

fn driver_presence(d: &DriverSpanRef<'_>) -> u8 {
    let mut presence = 0;
    if d.error_type.is_some() {
        presence |= DRIVER_HAS_ERROR;
    }
    if d.statement.is_some() {
        presence |= DRIVER_HAS_STATEMENT;
        if d.statement_id.is_some() {
            presence |= DRIVER_HAS_STATEMENT_ID;
        }
    }
    if d.status_code.is_some() {
        presence |= DRIVER_HAS_STATUS_CODE;
    }
    if d.slo_class.is_some() {
        presence |= DRIVER_HAS_SLO_CLASS;
    }
    if d.origin_id.is_some() {
        presence |= DRIVER_HAS_ORIGIN_ID;
    }
    presence
}

/// Exact encoded size of a compact driver record.
pub fn encoded_len_driver(d: &DriverSpanRef<'_>) -> usize {
    let e = &d.envelope;
    let statement = match (&d.statement, d.statement_id) {
        (Some(_), Some(_)) => 4,
        (Some(s), None) => str_len(s.text) + str_len(s.operation) + str_len(s.table) + str_len(s.summary),
        (None, _) => 0,
    };
    HEADER_LEN
        + envelope_fixed_len(envelope_flags(e))
        + 8 // end_ns
        + 2 // op, presence
        + 2 // peer_port
        + 8 // rows
        + if d.origin_id.is_some() { 4 } else { envelope_strings_len(e) + str_len(d.component) }
        + [d.error_type, d.status_code, d.slo_class].into_iter().flatten().map(str_len).sum::<usize>()
        + statement
        + if d.origin_id.is_some() { 0 } else { str_len(d.db_namespace) }
        + str_len(d.peer_name)
}

/// Encodes the compact driver record of `d` into the front of `out` (sized with
/// [`encoded_len_driver`], e.g. a ring slot); returns the bytes written.
pub fn encode_driver(d: &DriverSpanRef<'_>, out: &mut [u8]) -> Result<usize, EncodeError> {
    encode_driver_sized(d, encoded_len_driver(d), out)
}

/// [`encode_driver`] with `len` = [`encoded_len_driver`]`(d)` already known.
pub fn encode_driver_sized(d: &DriverSpanRef<'_>, len: usize, out: &mut [u8]) -> Result<usize, EncodeError> {
    let e = &d.envelope;
    let flags = envelope_flags(e) | if d.metrics_pending { F_DRIVER_METRICS_PENDING } else { 0 };
    encode_with(KIND_DRIVER, flags, len, out, |w| {
        write_envelope_fixed(w, e);
        w.u64(d.end_ns);
        w.bytes(&[d.op as u8, driver_presence(d)]);
        w.bytes(&d.peer_port.to_le_bytes());
        w.bytes(&d.rows.to_le_bytes());
        match d.origin_id {
            Some(id) => w.bytes(&id.to_le_bytes()),
            None => {
                for s in [e.tenant, e.workspace, e.region, e.dialect, d.component] {
                    w.str(s);
                }
            }
        }
        for text in [d.error_type, d.status_code, d.slo_class].into_iter().flatten() {
            w.str(text);
        }
        match (&d.statement, d.statement_id) {
            (Some(_), Some(id)) => w.bytes(&id.to_le_bytes()),
            (Some(s), None) => {
                for part in [s.text, s.operation, s.table, s.summary] {
                    w.str(part);
                }
            }
            (None, _) => {}
        }
        if d.origin_id.is_none() {
            w.str(d.db_namespace);
        }
        w.str(d.peer_name);
    })
}

/// Appends the compact driver record of `d` to `out`.
pub fn encode_driver_to_vec(d: &DriverSpanRef<'_>, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
    encode_vec(encoded_len_driver(d), out, |b| encode_driver(d, b))
}
