//! Decoder: bytes in, owned [`Record`] out.
//!
//! Hostile input is the design case (files on disk, a fuzzer): every length
//! is checked against the bytes that remain before anything is allocated, so
//! a record can never make the decoder allocate more than a small multiple of
//! its own size, and no input panics.

use super::layout::*;
use super::DecodeError;
use crate::record::driver::{expand_into, DriverOp, DriverSpanRef, StatementRef};
use crate::record::model::*;
use crate::record::view::EnvelopeRef;
use crate::record::origin::origin;
use crate::sql::interned::interned;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::LengthOverflow)?;
        let s = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    #[inline]
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    #[inline]
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    #[inline]
    fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    /// LEB128; more than 64 bits of payload is `LengthOverflow`.
    fn varint(&mut self) -> Result<u64, DecodeError> {
        // Fast path: a single-byte varint.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            let payload = u64::from(b & 0x7f);
            // The 10th byte may only carry the single top bit.
            if i == 9 && payload > 1 {
                return Err(DecodeError::LengthOverflow);
            }
            v |= payload << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::LengthOverflow)
    }
    /// A collection/string length: must fit in u32 and in what is left.
    fn len(&mut self) -> Result<usize, DecodeError> {
        let v = self.varint()?;
        if v > u64::from(u32::MAX) {
            return Err(DecodeError::LengthOverflow);
        }
        let n = v as usize;
        if n > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }
    /// A count of items each at least `min_item` bytes long.
    fn count(&mut self, min_item: usize) -> Result<usize, DecodeError> {
        let v = self.varint()?;
        if v > u64::from(u32::MAX) {
            return Err(DecodeError::LengthOverflow);
        }
        let n = v as usize;
        if n.saturating_mul(min_item) > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }
    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let n = self.len()?;
        let b = self.take(n)?;
        std::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8)
    }
    /// Reads a string into `dst`, reusing its allocation.
    fn string_into(&mut self, dst: &mut String) -> Result<(), DecodeError> {
        let s = self.str()?;
        dst.clear();
        dst.push_str(s);
        Ok(())
    }
}

/// The fixed 8-byte header of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub kind: u8,
    pub flags: u8,
    /// Total record length including the header.
    pub total_len: u32,
}

/// Parses and validates the header at the start of `bytes` (which may hold
/// more than one record).
pub fn decode_header(bytes: &[u8]) -> Result<Header, DecodeError> {
    let h: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or(DecodeError::Truncated)?;
    if h[0] != MAGIC {
        return Err(DecodeError::BadMagic { found: h[0] });
    }
    if h[1] != VERSION {
        return Err(DecodeError::UnsupportedVersion { found: h[1] });
    }
    if !(KIND_SPAN..=KIND_DRIVER).contains(&h[2]) {
        return Err(DecodeError::UnknownKind { found: h[2] });
    }
    if h[3] & !F_KNOWN != 0 {
        return Err(DecodeError::InvalidFlags { flags: h[3] });
    }
    let total_len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    if (total_len as usize) < HEADER_LEN {
        return Err(DecodeError::LengthMismatch {
            header: total_len,
            actual: bytes.len(),
        });
    }
    Ok(Header {
        version: h[1],
        kind: h[2],
        flags: h[3],
        total_len,
    })
}

/// Decodes exactly one record occupying all of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    let h = check_exact(bytes)?;
    let mut out = empty_record(record_kind(h.kind));
    decode_body_into(h, bytes, &mut out)?;
    Ok(out)
}

/// Like [`decode`], but reuses the string and vector allocations of `out`
/// when it already holds a record of the same kind (the flusher keeps a pool
/// of records, so steady-state decoding allocates nothing). On error `out`
/// holds an unspecified but valid record.
pub fn decode_into(bytes: &[u8], out: &mut Record) -> Result<(), DecodeError> {
    let h = check_exact(bytes)?;
    if kind_of(out) != record_kind(h.kind) {
        *out = empty_record(record_kind(h.kind));
    }
    decode_body_into(h, bytes, out)
}

/// Decodes the first record of a stream of concatenated records; returns it
/// and the number of bytes it occupied.
pub fn decode_prefix(bytes: &[u8]) -> Result<(Record, usize), DecodeError> {
    let h = decode_header(bytes)?;
    let n = h.total_len as usize;
    let rec = bytes.get(..n).ok_or(DecodeError::Truncated)?;
    let mut out = empty_record(record_kind(h.kind));
    decode_body_into(h, rec, &mut out)?;
    Ok((out, n))
}

fn check_exact(bytes: &[u8]) -> Result<Header, DecodeError> {
    let h = decode_header(bytes)?;
    let n = h.total_len as usize;
    if n > bytes.len() {
        return Err(DecodeError::Truncated);
    }
    if n < bytes.len() {
        return Err(DecodeError::LengthMismatch {
            header: h.total_len,
            actual: bytes.len(),
        });
    }
    Ok(h)
}

/// The model kind a wire kind decodes to (a driver record is a span).
fn record_kind(wire_kind: u8) -> u8 {
    if wire_kind == KIND_DRIVER {
        KIND_SPAN
    } else {
        wire_kind
    }
}

fn kind_of(r: &Record) -> u8 {
    match r {
        Record::Span(_) => KIND_SPAN,
        Record::Log(_) => KIND_LOG,
        Record::Metric(_) => KIND_METRIC,
        Record::Reward(_) => KIND_REWARD,
    }
}

/// An allocation-free placeholder of the given (validated) kind.
fn empty_record(kind: u8) -> Record {
    match kind {
        KIND_SPAN => Record::Span(SpanRecord {
            envelope: Envelope::default(),
            name: String::new(),
            component: String::new(),
            end_ns: 0,
            status: Status::Unset,
            attributes: Vec::new(),
        }),
        KIND_LOG => Record::Log(LogRecord {
            envelope: Envelope::default(),
            event: String::new(),
            component: String::new(),
            severity: Severity::default(),
            body: String::new(),
            attributes: Vec::new(),
        }),
        KIND_METRIC => Record::Metric(MetricPoint {
            envelope: Envelope::default(),
            name: String::new(),
            unit: String::new(),
            kind: MetricKind::Counter,
            start_ns: 0,
            labels: Vec::new(),
            value: 0.0,
            histogram: None,
        }),
        _ => Record::Reward(RewardRecord {
            envelope: Envelope::default(),
            class: SloClass::L,
            latency_ms: 0.0,
            cpu_ms: 0.0,
            io_bytes: 0,
            rows: 0,
            success: false,
            reward: 0.0,
            engine: String::new(),
        }),
    }
}

fn decode_body_into(h: Header, rec: &[u8], out: &mut Record) -> Result<(), DecodeError> {
    let mut r = Reader {
        buf: rec,
        pos: HEADER_LEN,
    };
    match out {
        Record::Span(s) if h.kind == KIND_DRIVER => read_driver(&mut r, h.flags, s)?,
        Record::Span(s) => {
            read_envelope_fixed(&mut r, h.flags, &mut s.envelope)?;
            s.end_ns = r.u64()?;
            s.status = match r.u8()? {
                0 => Status::Unset,
                1 => Status::Ok,
                2 => Status::Error,
                v => {
                    return Err(DecodeError::InvalidEnum {
                        field: "status",
                        value: v,
                    })
                }
            };
            read_envelope_strings(&mut r, &mut s.envelope)?;
            r.string_into(&mut s.name)?;
            r.string_into(&mut s.component)?;
            read_attrs(&mut r, &mut s.attributes)?;
        }
        Record::Log(l) => {
            read_envelope_fixed(&mut r, h.flags, &mut l.envelope)?;
            l.severity = Severity(r.u8()?);
            read_envelope_strings(&mut r, &mut l.envelope)?;
            r.string_into(&mut l.event)?;
            r.string_into(&mut l.component)?;
            r.string_into(&mut l.body)?;
            read_attrs(&mut r, &mut l.attributes)?;
        }
        Record::Metric(m) => read_metric(&mut r, h.flags, m)?,
        Record::Reward(x) => {
            read_envelope_fixed(&mut r, h.flags, &mut x.envelope)?;
            x.latency_ms = r.f64()?;
            x.cpu_ms = r.f64()?;
            x.reward = r.f64()?;
            x.class = match r.u8()? {
                0 => SloClass::L,
                1 => SloClass::B,
                2 => SloClass::A,
                3 => SloClass::S,
                v => {
                    return Err(DecodeError::InvalidEnum {
                        field: "class",
                        value: v,
                    })
                }
            };
            read_envelope_strings(&mut r, &mut x.envelope)?;
            x.io_bytes = r.varint()?;
            x.rows = r.varint()?;
            x.success = h.flags & F_KIND_BIT != 0;
            r.string_into(&mut x.engine)?;
        }
    }
    if r.remaining() != 0 {
        return Err(DecodeError::TrailingBytes {
            extra: r.remaining(),
        });
    }
    Ok(())
}

fn read_envelope_fixed(r: &mut Reader<'_>, flags: u8, e: &mut Envelope) -> Result<(), DecodeError> {
    e.ts_ns = r.u64()?;
    e.trace_id = if flags & F_TRACE_ID != 0 {
        u128::from_le_bytes(r.array()?)
    } else {
        0
    };
    e.span_id = if flags & F_SPAN_ID != 0 { r.u64()? } else { 0 };
    e.parent_span_id = if flags & F_PARENT_SPAN_ID != 0 {
        r.u64()?
    } else {
        0
    };
    e.air_id = if flags & F_AIR_ID != 0 {
        Some(r.u64()?)
    } else {
        None
    };
    e.plan_hash = if flags & F_PLAN_HASH != 0 {
        Some(r.u64()?)
    } else {
        None
    };
    Ok(())
}

fn read_driver(r: &mut Reader<'_>, flags: u8, s: &mut SpanRecord) -> Result<(), DecodeError> {
    if flags & F_PLAN_HASH != 0 {
        return Err(DecodeError::InvalidFlags { flags });
    }
    read_envelope_fixed(r, flags, &mut s.envelope)?;
    let end_ns = r.u64()?;
    let op = r.u8()?;
    let op = DriverOp::from_code(op).ok_or(DecodeError::InvalidEnum { field: "op", value: op })?;
    let presence = r.u8()?;
    let known = DRIVER_HAS_ERROR
        | DRIVER_HAS_STATEMENT
        | DRIVER_HAS_STATUS_CODE
        | DRIVER_HAS_SLO_CLASS
        | DRIVER_HAS_STATEMENT_ID
        | DRIVER_HAS_ORIGIN_ID;
    if presence & !known != 0 || presence & (DRIVER_HAS_STATEMENT | DRIVER_HAS_STATEMENT_ID) == DRIVER_HAS_STATEMENT_ID {
        return Err(DecodeError::InvalidEnum { field: "presence", value: presence });
    }
    let peer_port = u16::from_le_bytes(r.array()?);
    let rows = i64::from_le_bytes(r.array()?);
    let mut origin_id = None;
    let mut known_origin = None;
    let (tenant, workspace, region, dialect, component) = if presence & DRIVER_HAS_ORIGIN_ID != 0 {
        let id = u32::from_le_bytes(r.array()?);
        origin_id = Some(id);
        let o = origin(id).ok_or(DecodeError::UnknownOrigin { id })?;
        known_origin = Some(o);
        (o.tenant.as_str(), o.workspace.as_str(), o.region.as_str(), o.dialect.as_str(), o.component.as_str())
    } else {
        (r.str()?, r.str()?, r.str()?, r.str()?, r.str()?)
    };
    let error_type = if presence & DRIVER_HAS_ERROR != 0 { Some(r.str()?) } else { None };
    let status_code = if presence & DRIVER_HAS_STATUS_CODE != 0 { Some(r.str()?) } else { None };
    let slo_class = if presence & DRIVER_HAS_SLO_CLASS != 0 { Some(r.str()?) } else { None };
    let mut statement_id = None;
    let statement = if presence & DRIVER_HAS_STATEMENT_ID != 0 {
        let id = u32::from_le_bytes(r.array()?);
        statement_id = Some(id);
        let s = interned(id).ok_or(DecodeError::UnknownStatement { id })?;
        Some(StatementRef {
            text: &s.text,
            operation: &s.operation,
            table: s.tables.first().map_or("", String::as_str),
            summary: &s.summary,
        })
    } else if presence & DRIVER_HAS_STATEMENT != 0 {
        Some(StatementRef { text: r.str()?, operation: r.str()?, table: r.str()?, summary: r.str()? })
    } else {
        None
    };
    let db_namespace = match known_origin {
        Some(o) => o.db_namespace.as_str(),
        None => r.str()?,
    };
    let peer_name = r.str()?;
    for (dst, src) in [
        (&mut s.envelope.tenant, tenant),
        (&mut s.envelope.workspace, workspace),
        (&mut s.envelope.region, region),
        (&mut s.envelope.dialect, dialect),
    ] {
        dst.clear();
        dst.push_str(src);
    }
    let e = &s.envelope;
    let envelope = EnvelopeRef {
        ts_ns: e.ts_ns,
        tenant,
        workspace,
        region,
        dialect,
        trace_id: e.trace_id,
        span_id: e.span_id,
        parent_span_id: e.parent_span_id,
        air_id: e.air_id,
        plan_hash: None,
    };
    let d = DriverSpanRef {
        envelope, end_ns, op, error_type, status_code, slo_class, statement, statement_id, origin_id, component,
        db_namespace, peer_name, peer_port, rows, metrics_pending: flags & F_DRIVER_METRICS_PENDING != 0,
    };
    expand_into(&d, s);
    Ok(())
}

fn read_envelope_strings(r: &mut Reader<'_>, e: &mut Envelope) -> Result<(), DecodeError> {
    r.string_into(&mut e.tenant)?;
    r.string_into(&mut e.workspace)?;
    r.string_into(&mut e.region)?;
    r.string_into(&mut e.dialect)?;
    Ok(())
}

fn read_attrs(r: &mut Reader<'_>, attrs: &mut Attributes) -> Result<(), DecodeError> {
    // Smallest attribute: empty key (1) + tag (1) + bool (1).
    let n = r.count(3)?;
    attrs.truncate(n);
    attrs.reserve(n - attrs.len());
    for i in 0..n {
        if i == attrs.len() {
            attrs.push((String::new(), AttrValue::Bool(false)));
        }
        let (key, value) = &mut attrs[i];
        r.string_into(key)?;
        match r.u8()? {
            TAG_STR => {
                if let AttrValue::Str(s) = value {
                    r.string_into(s)?;
                } else {
                    *value = AttrValue::Str(r.str()?.to_owned());
                }
            }
            TAG_I64 => *value = AttrValue::I64(i64::from_le_bytes(r.array()?)),
            TAG_F64 => *value = AttrValue::F64(r.f64()?),
            TAG_BOOL => {
                *value = match r.u8()? {
                    0 => AttrValue::Bool(false),
                    1 => AttrValue::Bool(true),
                    v => {
                        return Err(DecodeError::InvalidEnum {
                            field: "bool",
                            value: v,
                        })
                    }
                }
            }
            t => {
                return Err(DecodeError::InvalidEnum {
                    field: "attribute tag",
                    value: t,
                })
            }
        }
    }
    Ok(())
}

fn read_metric(r: &mut Reader<'_>, flags: u8, m: &mut MetricPoint) -> Result<(), DecodeError> {
    read_envelope_fixed(r, flags, &mut m.envelope)?;
    m.start_ns = r.u64()?;
    m.value = r.f64()?;
    m.kind = match r.u8()? {
        0 => MetricKind::Counter,
        1 => MetricKind::Gauge,
        2 => MetricKind::Histogram,
        v => {
            return Err(DecodeError::InvalidEnum {
                field: "metric kind",
                value: v,
            })
        }
    };
    let hist_fixed = if flags & F_KIND_BIT != 0 {
        Some((r.u64()?, r.f64()?, r.f64()?, r.f64()?))
    } else {
        None
    };
    read_envelope_strings(r, &mut m.envelope)?;
    r.string_into(&mut m.name)?;
    r.string_into(&mut m.unit)?;
    let n = r.count(2)?;
    m.labels.truncate(n);
    for i in 0..n {
        if i == m.labels.len() {
            m.labels.push((String::new(), String::new()));
        }
        let (k, v) = &mut m.labels[i];
        r.string_into(k)?;
        r.string_into(v)?;
    }
    m.histogram = match hist_fixed {
        None => None,
        Some((count, sum, min, max)) => {
            let mut h = m.histogram.take().unwrap_or_default();
            h.count = count;
            h.sum = sum;
            h.min = min;
            h.max = max;
            let nb = r.count(8)?;
            h.bounds.clear();
            h.bounds.reserve(nb);
            for _ in 0..nb {
                h.bounds.push(r.f64()?);
            }
            let nc = r.count(8)?;
            h.counts.clear();
            h.counts.reserve(nc);
            for _ in 0..nc {
                h.counts.push(r.u64()?);
            }
            Some(h)
        }
    };
    Ok(())
}
