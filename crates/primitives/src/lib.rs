//! The lowest crate of kubelet-rs: values every other crate parses or prints the same way.

pub mod duration;
#[cfg(feature = "pod")]
pub mod pod;
pub mod quantity;
pub mod threshold;

pub use quantity::Quantity;
pub use threshold::ThresholdValue;
