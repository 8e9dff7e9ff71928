//! The file source (`--pod-manifest-path` / `staticPodPath`).
//!
//! The path is a directory, read non-recursively in name order, skipping entries whose
//! name starts with '.', or a single file. Each file holds exactly one Pod. The source
//! lists the path at start, then again on every inotify event (directory watch, or the
//! parent directory of a single file; events are coalesced, see [`coalesce`], so an
//! editor's several writes make one re-list) and every `check_frequency` as a safety
//! net. It sends a complete snapshot after each re-list that changed the pods (and always
//! the first one). A missing path yields an empty snapshot (so the source counts as ready, as
//! upstream) and is retried.
//!
//! # Deliberate difference from upstream: keep the last good pod
//!
//! Upstream drops a pod on its next full re-list when its file stops decoding or
//! validating (while its watch-event path keeps the old pod: the two disagree). Here,
//! **a file that produced a valid pod keeps that pod in the snapshot while its content
//! is broken** (a half-written save, a typo): the error is logged with the file name and
//! the reason, and the pod keeps running. The pod leaves the snapshot only when the file
//! is removed (or renamed to a dotfile), or replaced by a different valid pod. A file
//! that has never been valid in this process produces no pod.
//!
//! Two files defining the same pod full name (namespace/name, after the node-name
//! suffix): the first file by name wins, the other is logged as an error.

mod scan;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::{Pod, SourceError, SourceKind, SourceUpdate, decode, defaults, same_pods};
use scan::{ReadError, Scan, Scanner};
use watch::{Change, DirWatch, Signal, Target};

/// Quiet period before a re-list once every write seen has finished (a file closed,
/// removed or renamed): only enough to take in a burst, such as `cp *.yaml`.
const SETTLED_QUIET: Duration = Duration::from_millis(10);
/// Quiet period while a file seen being written has not been closed yet.
const WRITING_QUIET: Duration = Duration::from_millis(100);
/// Longest wait from the first event to the re-list, however busy the directory.
const MAX_COALESCE: Duration = Duration::from_millis(500);
/// Shortest accepted re-list period (a zero period would spin).
const MIN_CHECK_FREQUENCY: Duration = Duration::from_millis(100);
/// Longest accepted re-list period (keeps timer arithmetic far from overflow).
const MAX_CHECK_FREQUENCY: Duration = Duration::from_secs(365 * 24 * 3600);
const WATCH_RETRY_INITIAL: Duration = Duration::from_secs(1);
const WATCH_RETRY_MAX: Duration = Duration::from_secs(20);

/// Decodes and prepares one manifest's bytes (exactly one Pod). Errors start with
/// `origin` (the file path) and give the reason.
pub fn prepare_manifest(content: &[u8], origin: &str, node_name: &str) -> Result<Pod, SourceError> {
    let pod = decode::decode_pod(content).map_err(|source| SourceError::Decode {
        origin: origin.to_string(),
        source,
    })?;
    defaults::prepare_static_pod(pod, SourceKind::File, origin, node_name).map_err(|source| {
        SourceError::Invalid {
            origin: origin.to_string(),
            source,
        }
    })
}

/// Reads (at most 10 MiB), decodes and prepares one manifest file, as the file source
/// does (for one-off checks of a manifest).
pub fn load_manifest(path: &Path, node_name: &str) -> Result<Pod, SourceError> {
    let content = scan::read_limited(path).map_err(|e| match e {
        ReadError::Gone => SourceError::Read {
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        },
        ReadError::Failed(e) => e,
    })?;
    prepare_manifest(&content, &path.to_string_lossy(), node_name)
}

/// Static pods from a directory of manifests or from one manifest file.
#[derive(Clone, Debug)]
pub struct FileSource {
    path: PathBuf,
    node_name: String,
    check_frequency: Duration,
}

impl FileSource {
    /// `path`: a directory or a file; `node_name`: this node (pods are named
    /// `<name>-<node_name>`); `check_frequency`: the periodic re-list.
    pub fn new(path: PathBuf, node_name: String, check_frequency: Duration) -> Self {
        Self {
            path: trim_trailing_separators(path),
            node_name,
            check_frequency: check_frequency.clamp(MIN_CHECK_FREQUENCY, MAX_CHECK_FREQUENCY),
        }
    }

    /// Reads the path once and returns its snapshot (errors are logged; a missing or
    /// unreadable path gives an empty snapshot).
    pub fn read_once(&self) -> SourceUpdate {
        let mut scanner = Scanner::new(self.path.clone(), self.node_name.clone());
        let pods = match scanner.scan() {
            Scan::Pods(pods) => pods,
            Scan::Missing => Vec::new(),
            Scan::Failed(e) => {
                tracing::error!("cannot read the static pod path: {e}");
                Vec::new()
            }
        };
        SourceUpdate {
            source: SourceKind::File,
            pods,
        }
    }

    /// Watches and re-lists until `cancel` fires or the receiver of `tx` is gone.
    pub async fn run(self, tx: mpsc::Sender<SourceUpdate>, cancel: CancellationToken) {
        tracing::debug!(path = %self.path.display(), "file source started");
        let mut runner = Runner {
            path: self.path.clone(),
            node_name: self.node_name.clone(),
            scanner: None,
            watch: None,
            watch_backoff: Backoff::new(WATCH_RETRY_INITIAL, WATCH_RETRY_MAX),
            watch_retry_at: Instant::now(),
            last_sent: None,
        };
        let mut ticker = tokio::time::interval(self.check_frequency);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker.tick().await; // the first tick is immediate; the first scan is below
        loop {
            runner.ensure_watch();
            if let Some(pods) = runner.rescan().await
                && !send(&tx, &cancel, pods).await
            {
                return;
            }
            let retry_at = runner.watch.is_none().then_some(runner.watch_retry_at);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ticker.tick() => {}
                _ = sleep_until_opt(retry_at) => {}
                signal = recv_opt(runner.watch.as_mut().map(|w| &mut w.events)) => {
                    let ended = match (signal, runner.watch.as_mut()) {
                        (Some(first), Some(w)) => {
                            coalesce(&mut w.events, first, &cancel).await
                        }
                        _ => Coalesced::WatchGone,
                    };
                    match ended {
                        Coalesced::Quiet => {}
                        Coalesced::Cancelled => return,
                        // The watcher's callback is gone: rebuild the watch.
                        Coalesced::WatchGone => runner.watch = None,
                    }
                }
            }
        }
    }
}

/// The loop state of [`FileSource::run`].
struct Runner {
    path: PathBuf,
    node_name: String,
    /// Moved into a blocking thread while it reads the disk; `None` only then, or
    /// after that thread panicked (a fresh scanner is made).
    scanner: Option<Scanner>,
    watch: Option<DirWatch>,
    watch_backoff: Backoff,
    watch_retry_at: Instant,
    /// The last snapshot sent (the same `Arc`s the scanner keeps).
    last_sent: Option<Vec<Arc<Pod>>>,
}

impl Runner {
    /// (Re)creates the inotify watch when missing or stale; failures are retried with
    /// a bounded backoff, the periodic re-list covering the gap.
    fn ensure_watch(&mut self) {
        let wanted = Target::for_path(&self.path);
        if let (Some(w), Some(wanted)) = (&self.watch, &wanted)
            && w.is_current(wanted)
        {
            return;
        }
        self.watch = None;
        if Instant::now() < self.watch_retry_at {
            return;
        }
        let result = match &wanted {
            Some(target) => DirWatch::start(target.clone()).map_err(|e| e.to_string()),
            None => Err("no directory to watch".to_string()),
        };
        match result {
            Ok(w) => {
                tracing::debug!(dir = %w.target.dir.display(), "inotify watch established");
                self.watch = Some(w);
                self.watch_backoff.reset();
            }
            Err(e) => {
                let delay = self.watch_backoff.next_delay();
                tracing::warn!(
                    path = %self.path.display(),
                    "cannot watch the static pod path ({e}); retrying in {delay:?}"
                );
                self.watch_retry_at = Instant::now() + delay;
            }
        }
    }

    /// Re-lists (file I/O on a blocking thread); returns the snapshot to send when it
    /// differs from the last one sent.
    async fn rescan(&mut self) -> Option<Vec<Arc<Pod>>> {
        let mut scanner = self
            .scanner
            .take()
            .unwrap_or_else(|| Scanner::new(self.path.clone(), self.node_name.clone()));
        let outcome = tokio::task::spawn_blocking(move || {
            let scan = scanner.scan();
            (scanner, scan)
        })
        .await;
        let scan = match outcome {
            Ok((scanner, scan)) => {
                self.scanner = Some(scanner);
                scan
            }
            Err(e) => {
                tracing::error!("static pod path scan failed: {e}");
                return None;
            }
        };
        let pods = match scan {
            Scan::Pods(pods) => pods,
            Scan::Missing => Vec::new(),
            Scan::Failed(e) => {
                tracing::error!("cannot read the static pod path: {e}");
                if self.last_sent.is_some() {
                    return None;
                }
                // Never sent anything: report an empty set so the source is ready.
                Vec::new()
            }
        };
        if self
            .last_sent
            .as_ref()
            .is_some_and(|last| same_pods(last, &pods))
        {
            return None;
        }
        self.last_sent = Some(pods.clone());
        Some(pods)
    }
}

/// Sends a snapshot; false when the loop should stop.
async fn send(
    tx: &mpsc::Sender<SourceUpdate>,
    cancel: &CancellationToken,
    pods: Vec<Arc<Pod>>,
) -> bool {
    let update = SourceUpdate {
        source: SourceKind::File,
        pods,
    };
    tokio::select! {
        _ = cancel.cancelled() => false,
        sent = tx.send(update) => sent.is_ok(),
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How waiting for quiet after an event ended.
#[derive(Debug, PartialEq, Eq)]
enum Coalesced {
    Quiet,
    WatchGone,
    Cancelled,
}

/// Takes in the events that follow `first` until the directory is quiet: SETTLED_QUIET
/// after the last event when every file seen being written has been closed (or removed,
/// or renamed), WRITING_QUIET while one is still open, and never longer than
/// MAX_COALESCE in all. A re-list then reads complete files in the common cases (an
/// editor's save, `cp`, `mv` into place), and reacts to a removal within milliseconds.
async fn coalesce(
    events: &mut mpsc::Receiver<Signal>,
    first: Signal,
    cancel: &CancellationToken,
) -> Coalesced {
    let started = Instant::now();
    let latest = started + MAX_COALESCE;
    let mut writing: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    let mut next = Some(first);
    loop {
        if let Some(signal) = next.take() {
            match signal.change {
                Change::InProgress => writing.extend(signal.paths),
                Change::Settled => {
                    for p in &signal.paths {
                        writing.remove(p);
                    }
                }
            }
        }
        let quiet = if writing.is_empty() {
            SETTLED_QUIET
        } else {
            WRITING_QUIET
        };
        let deadline = (Instant::now() + quiet).min(latest);
        tokio::select! {
            _ = cancel.cancelled() => return Coalesced::Cancelled,
            _ = tokio::time::sleep_until(deadline) => return Coalesced::Quiet,
            signal = events.recv() => match signal {
                Some(signal) => next = Some(signal),
                None => return Coalesced::WatchGone,
            },
        }
    }
}

async fn recv_opt<T>(rx: Option<&mut mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Upstream trims trailing separators (`/etc/kubernetes/manifests/` is the directory).
fn trim_trailing_separators(path: PathBuf) -> PathBuf {
    let s = path.to_string_lossy();
    let trimmed = s.trim_end_matches('/');
    if trimmed.is_empty() || trimmed.len() == s.len() {
        path
    } else {
        PathBuf::from(trimmed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(change: Change, path: &str) -> Signal {
        Signal {
            change,
            paths: vec![PathBuf::from(path)],
        }
    }

    /// Feeds `later` (delay from the previous one, signal) while coalescing after `first`;
    /// returns how it ended and the virtual time it took.
    async fn coalesce_with(first: Signal, later: Vec<(u64, Signal)>) -> (Coalesced, Duration) {
        let (tx, mut rx) = mpsc::channel(EVENT_QUEUE_FOR_TESTS);
        let feeder = tokio::spawn(async move {
            for (delay_ms, s) in later {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                if tx.send(s).await.is_err() {
                    return;
                }
            }
            // Keep the sender (a live watch) until the consumer is done.
            tx.closed().await;
        });
        let started = Instant::now();
        let how = coalesce(&mut rx, first, &CancellationToken::new()).await;
        drop(rx);
        feeder.await.unwrap();
        (how, started.elapsed())
    }

    const EVENT_QUEUE_FOR_TESTS: usize = 16;

    #[tokio::test(start_paused = true)]
    async fn a_removal_is_relisted_after_the_short_quiet_period() {
        let (how, took) = coalesce_with(signal(Change::Settled, "/m/a.yaml"), vec![]).await;
        assert_eq!(how, Coalesced::Quiet);
        assert_eq!(took, SETTLED_QUIET);
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_still_being_written_waits_for_its_close() {
        // Created, no close: the long quiet period.
        let (how, took) = coalesce_with(signal(Change::InProgress, "/m/a.yaml"), vec![]).await;
        assert_eq!(how, Coalesced::Quiet);
        assert_eq!(took, WRITING_QUIET);
        // Created, closed 3 ms later: the short one after the close.
        let (_, took) = coalesce_with(
            signal(Change::InProgress, "/m/a.yaml"),
            vec![(3, signal(Change::Settled, "/m/a.yaml"))],
        )
        .await;
        assert_eq!(took, Duration::from_millis(3) + SETTLED_QUIET);
        // Another file's close does not end the wait for the one still open.
        let (_, took) = coalesce_with(
            signal(Change::InProgress, "/m/a.yaml"),
            vec![(3, signal(Change::Settled, "/m/b.yaml"))],
        )
        .await;
        assert_eq!(took, Duration::from_millis(3) + WRITING_QUIET);
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_of_writes_is_relisted_at_the_longest_wait() {
        let later = (0..100)
            .map(|i| (50, signal(Change::InProgress, &format!("/m/{i}.yaml"))))
            .collect();
        let (how, took) = coalesce_with(signal(Change::InProgress, "/m/a.yaml"), later).await;
        assert_eq!(how, Coalesced::Quiet);
        assert_eq!(took, MAX_COALESCE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_whose_callback_is_gone_is_reported() {
        let (tx, mut rx) = mpsc::channel(1);
        drop(tx);
        let how = coalesce(
            &mut rx,
            signal(Change::InProgress, "/m/a.yaml"),
            &CancellationToken::new(),
        )
        .await;
        assert_eq!(how, Coalesced::WatchGone);
    }

    #[test]
    fn trailing_separators_are_trimmed() {
        assert_eq!(
            trim_trailing_separators("/etc/m//".into()),
            PathBuf::from("/etc/m")
        );
        assert_eq!(trim_trailing_separators("/".into()), PathBuf::from("/"));
        assert_eq!(trim_trailing_separators("a".into()), PathBuf::from("a"));
    }

    #[test]
    fn check_frequency_has_a_floor() {
        let s = FileSource::new("/x".into(), "n".into(), Duration::ZERO);
        assert_eq!(s.check_frequency, MIN_CHECK_FREQUENCY);
    }
}
