//! One home for the kubelet's long-lived background loops (docs/architecture.md,
//! "Supervision").
//!
//! Every loop that must run for the kubelet's whole life (the pod sources and their
//! merge, the PLEG, the pod dispatcher, housekeeping, the node API listeners, the
//! cluster-mode managers) is spawned through a [`Loops`] handle. The [`Supervisor`]
//! watches them: a loop that panics, or returns while the kubelet is not shutting down,
//! is logged naming the loop and ends the kubelet with a non-zero exit code. A kubelet
//! with a dead loop would look alive while e.g. desired pods silently froze; exiting
//! lets systemd restart it, and the restarted kubelet adopts the running pods.
//!
//! Short-lived tasks (one request, one connection) are not supervised; per-pod workers
//! are restarted by the dispatcher with a bounded backoff instead (`pod::dispatcher`).

use std::future::Future;

use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Debug builds only: `KUBELET_RS_TEST_PANIC_LOOP=<loop name>` makes that loop panic
/// when it starts, so tests can check that the kubelet exits. Compiled out of release
/// builds.
#[cfg(debug_assertions)]
pub const TEST_PANIC_ENV: &str = "KUBELET_RS_TEST_PANIC_LOOP";

/// Whether a supervised task may finish on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Runs until shutdown: returning earlier is a failure.
    Loop,
    /// May complete (e.g. retries until something works); only a panic is a failure.
    Finite,
}

struct Entry {
    name: &'static str,
    kind: Kind,
    handle: JoinHandle<()>,
}

/// Why a supervised loop ended the kubelet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The loop panicked; the panic message.
    Panicked { name: &'static str, message: String },
    /// The loop returned while the kubelet was not shutting down.
    Exited { name: &'static str },
    /// The loop was cancelled (aborted) from outside.
    Cancelled { name: &'static str },
}

impl Failure {
    pub fn name(&self) -> &'static str {
        match self {
            Failure::Panicked { name, .. }
            | Failure::Exited { name }
            | Failure::Cancelled { name } => name,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Panicked { name, message } => {
                write!(f, "background loop {name:?} panicked: {message}")
            }
            Failure::Exited { name } => write!(
                f,
                "background loop {name:?} stopped while the kubelet was running"
            ),
            Failure::Cancelled { name } => write!(f, "background loop {name:?} was aborted"),
        }
    }
}

/// Spawns supervised tasks; cheap to clone and pass to every component that starts one.
#[derive(Clone)]
pub struct Loops {
    tx: mpsc::UnboundedSender<Entry>,
}

impl Loops {
    /// Spawn a loop that runs until shutdown; it ending any earlier (a return or a panic)
    /// ends the kubelet.
    pub fn spawn<F>(&self, name: &'static str, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.start(name, Kind::Loop, fut);
    }

    /// Spawn a task that may complete on its own; only a panic ends the kubelet.
    pub fn spawn_finite<F>(&self, name: &'static str, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.start(name, Kind::Finite, fut);
    }

    fn start<F>(&self, name: &'static str, kind: Kind, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        #[cfg(debug_assertions)]
        let fut = {
            let trigger = std::env::var(TEST_PANIC_ENV).is_ok_and(|v| v == name);
            async move {
                if trigger {
                    panic!("{TEST_PANIC_ENV}={name}: test-triggered panic");
                }
                fut.await
            }
        };
        let handle = tokio::spawn(fut);
        // With the supervisor gone (its owner returned) the task still runs, detached.
        let _ = self.tx.send(Entry { name, kind, handle });
    }
}

/// Watches the supervised tasks; see the module docs.
pub struct Supervisor {
    rx: mpsc::UnboundedReceiver<Entry>,
    shutdown: CancellationToken,
}

impl Supervisor {
    /// A supervisor for loops that run until `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken) -> (Supervisor, Loops) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Supervisor { rx, shutdown }, Loops { tx })
    }

    /// Resolves with the first failure of a supervised task (logged as an error naming
    /// the loop). Never resolves while every loop is healthy; loops returning after
    /// shutdown began are not failures.
    pub async fn failure(mut self) -> Failure {
        let mut running = FuturesUnordered::new();
        let mut accepting = true;
        loop {
            tokio::select! {
                entry = self.rx.recv(), if accepting => match entry {
                    Some(Entry { name, kind, handle }) => {
                        running.push(handle.map(move |r| (name, kind, r)));
                    }
                    None => accepting = false,
                },
                Some((name, kind, result)) = running.next(), if !running.is_empty() => {
                    let failure = match result {
                        Ok(()) if kind == Kind::Finite || self.shutdown.is_cancelled() => {
                            tracing::debug!(task = name, "background task finished");
                            continue;
                        }
                        Ok(()) => Failure::Exited { name },
                        Err(err) if err.is_panic() => Failure::Panicked {
                            name,
                            message: panic_message(err.into_panic()),
                        },
                        Err(_) if self.shutdown.is_cancelled() => continue,
                        Err(_) => Failure::Cancelled { name },
                    };
                    tracing::error!(task = name, failure = %failure, "a supervised loop failed; the kubelet exits so that it is restarted (pods keep running)");
                    return failure;
                }
                else => std::future::pending::<()>().await,
            }
        }
    }
}

/// The text of a panic payload (`panic!` with a literal or a format string).
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_string(),
            Err(_) => "(a non-string panic payload)".to_string(),
        },
    }
}

/// Lock a mutex whose holder may have panicked. A poisoned lock means a task panicked
/// mid-update and the data may be inconsistent: this panics in turn (naming the lock),
/// so the owning loop fails and the supervisor ends the kubelet, instead of going on
/// with half-updated state.
pub fn lock<'a, T>(mutex: &'a std::sync::Mutex<T>, what: &str) -> std::sync::MutexGuard<'a, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(_) => panic!("the {what} lock is poisoned: a task panicked while holding it"),
    }
}

/// [`lock`] for reading an `RwLock`.
pub fn read<'a, T>(
    lock: &'a std::sync::RwLock<T>,
    what: &str,
) -> std::sync::RwLockReadGuard<'a, T> {
    match lock.read() {
        Ok(guard) => guard,
        Err(_) => panic!("the {what} lock is poisoned: a task panicked while holding it"),
    }
}

/// [`lock`] for writing an `RwLock`.
pub fn write<'a, T>(
    lock: &'a std::sync::RwLock<T>,
    what: &str,
) -> std::sync::RwLockWriteGuard<'a, T> {
    match lock.write() {
        Ok(guard) => guard,
        Err(_) => panic!("the {what} lock is poisoned: a task panicked while holding it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn within<T>(f: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(5), f)
            .await
            .expect("supervisor did not answer within 5s")
    }

    #[tokio::test]
    async fn a_panicking_loop_is_reported_by_name() {
        let shutdown = CancellationToken::new();
        let (sup, loops) = Supervisor::new(shutdown.clone());
        let quiet = shutdown.clone();
        loops.spawn("quiet", async move { quiet.cancelled().await });
        loops.spawn("merge", async { panic!("boom {}", 42) });
        let failure = within(sup.failure()).await;
        assert_eq!(
            failure,
            Failure::Panicked {
                name: "merge",
                message: "boom 42".into()
            }
        );
    }

    #[tokio::test]
    async fn a_loop_returning_early_is_a_failure() {
        let shutdown = CancellationToken::new();
        let (sup, loops) = Supervisor::new(shutdown.clone());
        loops.spawn("pleg", async {});
        assert_eq!(
            within(sup.failure()).await,
            Failure::Exited { name: "pleg" }
        );
    }

    #[tokio::test]
    async fn finite_tasks_may_finish_but_not_panic() {
        let shutdown = CancellationToken::new();
        let (sup, loops) = Supervisor::new(shutdown.clone());
        loops.spawn_finite("probe", async {});
        loops.spawn_finite("enforce", async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            panic!("static message");
        });
        assert_eq!(
            within(sup.failure()).await,
            Failure::Panicked {
                name: "enforce",
                message: "static message".into()
            }
        );
    }

    #[tokio::test]
    async fn loops_ending_at_shutdown_are_not_failures() {
        let shutdown = CancellationToken::new();
        let (sup, loops) = Supervisor::new(shutdown.clone());
        for name in ["a", "b"] {
            let s = shutdown.clone();
            loops.spawn(name, async move { s.cancelled().await });
        }
        shutdown.cancel();
        let waited = tokio::time::timeout(Duration::from_millis(200), sup.failure()).await;
        assert!(waited.is_err(), "no failure expected, got {waited:?}");
    }

    #[tokio::test]
    async fn loops_spawned_later_are_supervised_too() {
        let shutdown = CancellationToken::new();
        let (sup, loops) = Supervisor::new(shutdown.clone());
        let later = loops.clone();
        drop(loops);
        let watcher = tokio::spawn(sup.failure());
        tokio::time::sleep(Duration::from_millis(20)).await;
        later.spawn("lease", async {});
        let failure = within(watcher).await.expect("supervisor task");
        assert_eq!(failure.name(), "lease");
    }

    #[test]
    fn a_poisoned_lock_panics_naming_it() {
        let m = std::sync::Arc::new(std::sync::Mutex::new(0));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("poison it");
        })
        .join();
        let caught = std::panic::catch_unwind(|| {
            let _g = lock(&m, "status store");
        })
        .expect_err("must panic");
        assert!(panic_message(caught).contains("status store lock is poisoned"));
    }
}
