//! kubelet-rs: a Kubernetes node agent. The binary (`src/main.rs`) wires these together;
//! see docs/architecture.md for how data flows between them.

pub mod cm;
pub mod lifecycle;
pub mod node;
pub mod pleg;
pub mod pod;
pub mod prober;
pub mod runonce;
pub mod runtime;
pub mod status;
pub mod volume;
