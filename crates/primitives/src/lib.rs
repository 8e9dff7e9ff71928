//! The lowest crate of kubelet-rs: values every other crate parses or prints the same way.

pub mod quantity;

pub use quantity::Quantity;
