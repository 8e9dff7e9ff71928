//! kubelet-rs: a Kubernetes node agent. The binary (`src/main.rs`) wires these together;
//! see docs/architecture.md for how data flows between them.

pub mod cm;
pub mod events;
pub mod eviction;
pub mod gc;
pub mod lifecycle;
pub mod logs;
pub mod node;
pub mod objects;
pub mod pleg;
pub mod pod;
pub mod prober;
pub mod runonce;
pub mod runtime;
pub mod shutdown;
pub mod status;
pub mod supervisor;
pub mod volume;
