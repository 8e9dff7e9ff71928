//! Pod workers and the sync loop that keeps one worker per pod.

pub mod dispatcher;
pub mod kill;
pub mod worker;
