//! Decoder: bytes in, owned [`Record`] out.
//!
//! Hostile input is the design case (files on disk, a fuzzer): every length
//! is checked against the bytes that remain before anything is allocated, so
//! a record can never make the decoder allocate more than a small multiple of
//! its own size, and no input panics.

use super::layout::*;
use super::DecodeError;
use crate::record::model::*;

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
    fn string(&mut self) -> Result<String, DecodeError> {
        self.str().map(str::to_owned)
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
    if !(KIND_SPAN..=KIND_REWARD).contains(&h[2]) {
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
    let h = decode_header(bytes)?;
    if h.total_len as usize != bytes.len() {
        return Err(if (h.total_len as usize) > bytes.len() {
            DecodeError::Truncated
        } else {
            DecodeError::LengthMismatch {
                header: h.total_len,
                actual: bytes.len(),
            }
        });
    }
    decode_body(h, bytes)
}

/// Decodes the first record of a stream of concatenated records; returns it
/// and the number of bytes it occupied.
pub fn decode_prefix(bytes: &[u8]) -> Result<(Record, usize), DecodeError> {
    let h = decode_header(bytes)?;
    let n = h.total_len as usize;
    let rec = bytes.get(..n).ok_or(DecodeError::Truncated)?;
    Ok((decode_body(h, rec)?, n))
}

fn decode_body(h: Header, rec: &[u8]) -> Result<Record, DecodeError> {
    let mut r = Reader {
        buf: rec,
        pos: HEADER_LEN,
    };
    let mut env = read_envelope_fixed(&mut r, h.flags)?;
    let out = match h.kind {
        KIND_SPAN => {
            let end_ns = r.u64()?;
            let status = match r.u8()? {
                0 => Status::Unset,
                1 => Status::Ok,
                2 => Status::Error,
                v => return Err(DecodeError::InvalidEnum { field: "status", value: v }),
            };
            read_envelope_strings(&mut r, &mut env)?;
            Record::Span(SpanRecord {
                envelope: env,
                name: r.string()?,
                component: r.string()?,
                end_ns,
                status,
                attributes: read_attrs(&mut r)?,
            })
        }
        KIND_LOG => {
            let severity = Severity(r.u8()?);
            read_envelope_strings(&mut r, &mut env)?;
            Record::Log(LogRecord {
                envelope: env,
                event: r.string()?,
                component: r.string()?,
                severity,
                body: r.string()?,
                attributes: read_attrs(&mut r)?,
            })
        }
        KIND_METRIC => Record::Metric(read_metric(&mut r, h.flags, env)?),
        KIND_REWARD => {
            let latency_ms = r.f64()?;
            let cpu_ms = r.f64()?;
            let reward = r.f64()?;
            let class = match r.u8()? {
                0 => SloClass::L,
                1 => SloClass::B,
                2 => SloClass::A,
                3 => SloClass::S,
                v => return Err(DecodeError::InvalidEnum { field: "class", value: v }),
            };
            read_envelope_strings(&mut r, &mut env)?;
            Record::Reward(RewardRecord {
                envelope: env,
                class,
                latency_ms,
                cpu_ms,
                io_bytes: r.varint()?,
                rows: r.varint()?,
                success: h.flags & F_KIND_BIT != 0,
                reward,
                engine: r.string()?,
            })
        }
        k => return Err(DecodeError::UnknownKind { found: k }),
    };
    if r.remaining() != 0 {
        return Err(DecodeError::TrailingBytes { extra: r.remaining() });
    }
    Ok(out)
}

fn read_envelope_fixed(r: &mut Reader<'_>, flags: u8) -> Result<Envelope, DecodeError> {
    let mut e = Envelope {
        ts_ns: r.u64()?,
        ..Envelope::default()
    };
    if flags & F_TRACE_ID != 0 {
        e.trace_id = u128::from_le_bytes(r.array()?);
    }
    if flags & F_SPAN_ID != 0 {
        e.span_id = r.u64()?;
    }
    if flags & F_PARENT_SPAN_ID != 0 {
        e.parent_span_id = r.u64()?;
    }
    if flags & F_AIR_ID != 0 {
        e.air_id = Some(r.u64()?);
    }
    if flags & F_PLAN_HASH != 0 {
        e.plan_hash = Some(r.u64()?);
    }
    Ok(e)
}

fn read_envelope_strings(r: &mut Reader<'_>, e: &mut Envelope) -> Result<(), DecodeError> {
    e.tenant = r.string()?;
    e.workspace = r.string()?;
    e.region = r.string()?;
    e.dialect = r.string()?;
    Ok(())
}

fn read_attrs(r: &mut Reader<'_>) -> Result<Attributes, DecodeError> {
    // Smallest attribute: empty key (1) + tag (1) + bool (1).
    let n = r.count(3)?;
    let mut attrs = Vec::with_capacity(n);
    for _ in 0..n {
        let key = r.string()?;
        let value = match r.u8()? {
            TAG_STR => AttrValue::Str(r.string()?),
            TAG_I64 => AttrValue::I64(i64::from_le_bytes(r.array()?)),
            TAG_F64 => AttrValue::F64(r.f64()?),
            TAG_BOOL => match r.u8()? {
                0 => AttrValue::Bool(false),
                1 => AttrValue::Bool(true),
                v => return Err(DecodeError::InvalidEnum { field: "bool", value: v }),
            },
            t => return Err(DecodeError::InvalidEnum { field: "attribute tag", value: t }),
        };
        attrs.push((key, value));
    }
    Ok(attrs)
}

fn read_metric(r: &mut Reader<'_>, flags: u8, env: Envelope) -> Result<MetricPoint, DecodeError> {
    let mut env = env;
    let start_ns = r.u64()?;
    let value = r.f64()?;
    let kind = match r.u8()? {
        0 => MetricKind::Counter,
        1 => MetricKind::Gauge,
        2 => MetricKind::Histogram,
        v => return Err(DecodeError::InvalidEnum { field: "metric kind", value: v }),
    };
    let hist_fixed = if flags & F_KIND_BIT != 0 {
        Some((r.u64()?, r.f64()?, r.f64()?, r.f64()?))
    } else {
        None
    };
    read_envelope_strings(r, &mut env)?;
    let name = r.string()?;
    let unit = r.string()?;
    let n = r.count(2)?;
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        labels.push((r.string()?, r.string()?));
    }
    let histogram = match hist_fixed {
        None => None,
        Some((count, sum, min, max)) => {
            let nb = r.count(8)?;
            let mut bounds = Vec::with_capacity(nb);
            for _ in 0..nb {
                bounds.push(r.f64()?);
            }
            let nc = r.count(8)?;
            let mut counts = Vec::with_capacity(nc);
            for _ in 0..nc {
                counts.push(r.u64()?);
            }
            Some(HistogramData { count, sum, min, max, bounds, counts })
        }
    };
    Ok(MetricPoint {
        envelope: env,
        name,
        unit,
        kind,
        start_ns,
        labels,
        value,
        histogram,
    })
}
