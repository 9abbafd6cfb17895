//! Wire constants of format version 1 and the LEB128 varint helpers shared by
//! the encoder and the decoder. See the table in the [parent module](super).

/// First byte of every record; catches reading at a wrong offset or a file
/// that is not an ATS record stream.
pub const MAGIC: u8 = 0xA7;
/// Format version written by this encoder and the newest this decoder reads.
pub const VERSION: u8 = 1;
/// magic, version, kind, flags, total_len:u32.
pub const HEADER_LEN: usize = 8;
/// Largest encodable record; the header stores the total length as a u32.
pub const MAX_RECORD_LEN: usize = u32::MAX as usize;

/// Record kinds (byte 2).
pub const KIND_SPAN: u8 = 1;
pub const KIND_LOG: u8 = 2;
pub const KIND_METRIC: u8 = 3;
pub const KIND_REWARD: u8 = 4;
/// A `driver.*` span in compact form: the facts of the call, expanded into a
/// full span (attributes) when decoded; see [`crate::record::driver`].
pub const KIND_DRIVER: u8 = 5;

/// Presence bits of a driver record.
pub const DRIVER_HAS_ERROR: u8 = 1 << 0;
pub const DRIVER_HAS_STATEMENT: u8 = 1 << 1;
pub const DRIVER_HAS_STATUS_CODE: u8 = 1 << 2;
/// The statement's SLO class (`sqlx.class`, seed 001 §7) follows.
pub const DRIVER_HAS_SLO_CLASS: u8 = 1 << 3;
/// The statement is named by its id in [`crate::sql::interned`] (4 bytes)
/// instead of carried inline; set together with `DRIVER_HAS_STATEMENT`.
pub const DRIVER_HAS_STATEMENT_ID: u8 = 1 << 4;
/// Tenant, workspace, region, dialect, component and database namespace are
/// named by their id in [`crate::record::origin`] (4 bytes) instead of carried
/// as six strings.
pub const DRIVER_HAS_ORIGIN_ID: u8 = 1 << 5;

/// Flag bits (byte 3): which optional fixed-width envelope fields follow.
/// Zero ids are omitted, which keeps untraced records (e.g. rewards) small.
pub const F_TRACE_ID: u8 = 1 << 0;
pub const F_SPAN_ID: u8 = 1 << 1;
pub const F_PARENT_SPAN_ID: u8 = 1 << 2;
pub const F_AIR_ID: u8 = 1 << 3;
pub const F_PLAN_HASH: u8 = 1 << 4;
/// Kind-specific bit: metric = histogram present; reward = success; driver =
/// the call's driver metrics are still to be recorded, by whoever decodes it
/// (the flusher: [`F_DRIVER_METRICS_PENDING`]).
pub const F_KIND_BIT: u8 = 1 << 5;
/// A driver record whose call the app thread left out of the driver metrics:
/// the flusher records it when it decodes the record (header byte 3).
pub const F_DRIVER_METRICS_PENDING: u8 = F_KIND_BIT;
/// Bits a version-1 reader understands; anything else is rejected rather
/// than silently misread.
pub const F_KNOWN: u8 = 0b0011_1111;

/// Attribute type tags.
pub const TAG_STR: u8 = 1;
pub const TAG_I64: u8 = 2;
pub const TAG_F64: u8 = 3;
pub const TAG_BOOL: u8 = 4;

/// Bytes a LEB128 encoding of `v` takes (1..=10).
#[inline]
pub const fn varint_len(v: u64) -> usize {
    // 7 payload bits per byte; `| 1` makes zero take one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Bytes a length-prefixed string takes.
#[inline]
pub const fn str_len(s: &str) -> usize {
    varint_len(s.len() as u64) + s.len()
}
