//! A protobuf wire-format writer: varints, fixed-width scalars and nested
//! length-delimited messages, written in one pass into a growing buffer.
//!
//! Why reserve-and-backpatch rather than a sizing pass: the length of a
//! nested message is only known once its body is written. [`ProtoWriter::begin`]
//! reserves the number of bytes the caller expects the length varint to need
//! and [`ProtoWriter::end`] writes the real length there. When the guess was
//! wrong the body is moved by the difference, so the output is always the
//! canonical (shortest-varint) encoding that any other protobuf library would
//! produce; a good guess (1 byte for attributes, 2 for a span) makes the move
//! rare and a bad one only costs a `memmove`.
//!
//! Proto3 rules the writers follow: a scalar field equal to its default is not
//! written (the `*_nz` helpers), a `oneof` member or an `optional` field is
//! written whenever it is set, even when zero.

/// Protobuf wire types used by OTLP.
#[derive(Clone, Copy)]
#[repr(u8)]
enum WireType {
    Varint = 0,
    Fixed64 = 1,
    Len = 2,
}

/// A started length-delimited field, closed by [`ProtoWriter::end`].
#[must_use = "a started message must be closed with ProtoWriter::end"]
#[derive(Debug)]
pub struct Mark {
    len_at: usize,
    reserved: usize,
}

/// How many bytes the length varint of a nested message is expected to take.
#[derive(Clone, Copy, Debug)]
pub enum SizeHint {
    /// Under 128 bytes: attributes, status, short strings.
    Small,
    /// Under 16 KiB: a span, a log record, a data point.
    Medium,
    /// Anything: a resource or scope block holding a whole batch.
    Large,
}

impl SizeHint {
    const fn bytes(self) -> usize {
        match self {
            SizeHint::Small => 1,
            SizeHint::Medium => 2,
            SizeHint::Large => 5,
        }
    }
}

/// Number of bytes `v` takes as a varint.
#[inline]
pub const fn varint_len(v: u64) -> usize {
    // 1 + floor(bits / 7), with 0 taking one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends protobuf fields to an owned byte buffer.
#[derive(Debug, Default)]
pub struct ProtoWriter {
    buf: Vec<u8>,
}

impl ProtoWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(cap: usize) -> Self {
        Self {
            buf: Vec::with_capacity(cap),
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Drops everything written after `len` (used to undo a started item).
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    #[inline]
    pub fn varint(&mut self, mut v: u64) {
        if v < 0x80 {
            self.buf.push(v as u8);
            return;
        }
        let mut tmp = [0u8; 10];
        let mut n = 0;
        while v >= 0x80 {
            tmp[n] = (v as u8) | 0x80;
            v >>= 7;
            n += 1;
        }
        tmp[n] = v as u8;
        self.buf.extend_from_slice(&tmp[..=n]);
    }

    #[inline]
    fn key(&mut self, field: u32, wt: WireType) {
        self.varint((u64::from(field) << 3) | wt as u64);
    }

    /// A `uint32`/`uint64`/`int32`/enum/`bool` field, written even when zero.
    #[inline]
    pub fn uint64(&mut self, field: u32, v: u64) {
        self.key(field, WireType::Varint);
        self.varint(v);
    }

    /// An `int64` field (two's complement varint: negatives take 10 bytes).
    #[inline]
    pub fn int64(&mut self, field: u32, v: i64) {
        self.uint64(field, v as u64);
    }

    /// A varint field, omitted when zero (proto3 default).
    #[inline]
    pub fn uint64_nz(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.uint64(field, v);
        }
    }

    #[inline]
    pub fn bool(&mut self, field: u32, v: bool) {
        self.uint64(field, u64::from(v));
    }

    /// A `fixed64`/`sfixed64` field, written even when zero.
    #[inline]
    pub fn fixed64(&mut self, field: u32, v: u64) {
        self.key(field, WireType::Fixed64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A `fixed64` field, omitted when zero (proto3 default).
    #[inline]
    pub fn fixed64_nz(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.fixed64(field, v);
        }
    }

    /// A `double` field, written even when zero (oneof / `optional`).
    #[inline]
    pub fn double(&mut self, field: u32, v: f64) {
        self.fixed64(field, v.to_bits());
    }

    /// A `string`/`bytes` field, written even when empty.
    #[inline]
    pub fn bytes(&mut self, field: u32, v: &[u8]) {
        self.key(field, WireType::Len);
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    /// The tag and length of a length-delimited field whose `len` body bytes
    /// the caller writes next (for bodies whose size is known up front).
    #[inline]
    pub fn len_header(&mut self, field: u32, len: usize) {
        self.key(field, WireType::Len);
        self.varint(len as u64);
    }

    /// A `string`/`bytes` field, omitted when empty (proto3 default).
    #[inline]
    pub fn bytes_nz(&mut self, field: u32, v: &[u8]) {
        if !v.is_empty() {
            self.bytes(field, v);
        }
    }

    /// A string field made of `parts` concatenated (no temporary String).
    #[inline]
    pub fn bytes_concat(&mut self, field: u32, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        self.key(field, WireType::Len);
        self.varint(len as u64);
        for p in parts {
            self.buf.extend_from_slice(p);
        }
    }

    /// A packed `repeated fixed64` field (nothing when empty).
    pub fn packed_fixed64(&mut self, field: u32, values: impl ExactSizeIterator<Item = u64>) {
        if values.len() == 0 {
            return;
        }
        self.key(field, WireType::Len);
        self.varint((values.len() * 8) as u64);
        for v in values {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A packed `repeated double` field (nothing when empty).
    pub fn packed_double(&mut self, field: u32, values: &[f64]) {
        self.packed_fixed64(field, values.iter().map(|v| v.to_bits()));
    }

    /// Starts a nested message (or any length-delimited field) in `field`.
    #[inline]
    pub fn begin(&mut self, field: u32, hint: SizeHint) -> Mark {
        self.key(field, WireType::Len);
        let len_at = self.buf.len();
        let reserved = hint.bytes();
        self.buf.resize(len_at + reserved, 0);
        Mark { len_at, reserved }
    }

    /// Closes a nested message: writes its length where `begin` reserved room,
    /// moving the body if the length needs a different number of bytes.
    #[inline]
    pub fn end(&mut self, mark: Mark) {
        let body_at = mark.len_at + mark.reserved;
        let body_len = self.buf.len() - body_at;
        let need = varint_len(body_len as u64);
        if need != mark.reserved {
            let new_body_at = mark.len_at + need;
            if need > mark.reserved {
                self.buf.resize(self.buf.len() + (need - mark.reserved), 0);
            }
            self.buf
                .copy_within(body_at..body_at + body_len, new_body_at);
            self.buf.truncate(new_body_at + body_len);
        }
        let mut v = body_len as u64;
        let slot = &mut self.buf[mark.len_at..mark.len_at + need];
        for (i, b) in slot.iter_mut().enumerate() {
            *b = if i + 1 == need {
                v as u8
            } else {
                (v as u8) | 0x80
            };
            v >>= 7;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_len_matches_encoding() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut w = ProtoWriter::new();
            w.varint(v);
            assert_eq!(w.len(), varint_len(v), "v={v}");
        }
        assert_eq!(varint_len(u64::MAX), 10);
    }

    #[test]
    fn varint_bytes() {
        let mut w = ProtoWriter::new();
        w.varint(300);
        assert_eq!(w.as_bytes(), &[0xac, 0x02]);
    }

    #[test]
    fn scalar_fields_exact_bytes() {
        let mut w = ProtoWriter::new();
        w.uint64(6, 3); // kind = CLIENT
        w.fixed64(7, 1);
        w.bytes(5, b"ab");
        w.int64(3, -1);
        w.uint64_nz(2, 0);
        w.bytes_nz(3, b"");
        w.fixed64_nz(8, 0);
        assert_eq!(
            w.as_bytes(),
            &[
                0x30, 3, // field 6 varint
                0x39, 1, 0, 0, 0, 0, 0, 0, 0, // field 7 fixed64
                0x2a, 2, b'a', b'b', // field 5 len
                0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // int64 -1
            ]
        );
    }

    /// Every guess (too small, exact, too large) ends in the canonical bytes.
    #[test]
    fn nested_lengths_are_canonical_whatever_the_hint() {
        for body_len in [0usize, 1, 127, 128, 300, 20_000] {
            let body = vec![0x5au8; body_len];
            let mut expected = ProtoWriter::new();
            expected.bytes(1, &body);
            for hint in [SizeHint::Small, SizeHint::Medium, SizeHint::Large] {
                let mut w = ProtoWriter::new();
                w.uint64(2, 1);
                let m = w.begin(1, hint);
                w.buf.extend_from_slice(&body);
                w.end(m);
                assert_eq!(
                    &w.as_bytes()[2..],
                    expected.as_bytes(),
                    "len={body_len} hint={hint:?}"
                );
            }
        }
    }

    #[test]
    fn deeply_nested_messages() {
        let mut w = ProtoWriter::new();
        let a = w.begin(1, SizeHint::Large);
        let b = w.begin(2, SizeHint::Small);
        w.bytes(3, &[7u8; 200]);
        w.end(b);
        w.uint64(4, 1);
        w.end(a);
        let mut inner = ProtoWriter::new();
        inner.bytes(3, &[7u8; 200]);
        let mut mid = ProtoWriter::new();
        mid.bytes(2, inner.as_bytes());
        mid.uint64(4, 1);
        let mut outer = ProtoWriter::new();
        outer.bytes(1, mid.as_bytes());
        assert_eq!(w.as_bytes(), outer.as_bytes());
    }

    #[test]
    fn packed_fields() {
        let mut w = ProtoWriter::new();
        w.packed_fixed64(6, [1u64, 2].into_iter());
        w.packed_double(7, &[]);
        assert_eq!(w.as_bytes()[..2], [0x32, 16]);
        assert_eq!(w.len(), 18);
    }
}
