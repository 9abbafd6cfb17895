//! Background flusher: drains the ring in batches and hands them to sinks.
//!
//! (The thread itself lands in a following commit; the sink contract is
//! published first so sinks can be written against it.)

mod sink_trait;

pub use sink_trait::{Collector, Sink, SinkError};
