//! Records: the owned model ([`model`]), borrowed views for zero-copy
//! encoding ([`view`]) and the versioned binary codec ([`codec`]).

pub mod codec;
pub mod driver;
pub mod model;
pub mod origin;
pub mod view;

pub use codec::{decode, DecodeError, EncodeError};
pub use model::*;
pub use driver::{DriverOp, DriverSpanRef, StatementRef};
pub use view::{AttrRef, EnvelopeRef, LogRef, RecordRef, RewardRef, SpanRef};
