//! Records: the owned model ([`model`]) and its versioned binary codec.

pub mod model;
pub use model::*;
