//! An inotify watch (via `notify`) on the manifest directory, reduced to a
//! "something may have changed" signal.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Which directory to watch, and which entry of it matters (`None`: every entry but
/// dotfiles).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) dir: PathBuf,
    pub(crate) only: Option<OsString>,
}

impl Target {
    /// The manifest directory itself, or the parent of a manifest file (or of a path
    /// that does not exist yet, to notice its creation).
    pub(crate) fn for_path(path: &Path) -> Option<Self> {
        if path.is_dir() {
            return Some(Target {
                dir: path.to_path_buf(),
                only: None,
            });
        }
        let name = path.file_name()?.to_os_string();
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Some(Target {
            dir: parent,
            only: Some(name),
        })
    }

    /// True when an event concerns this target.
    fn matches(&self, event: &Event) -> bool {
        // Opens and reads (including the source's own re-list) change nothing; reacting to
        // them made every re-list trigger the next one. A finished write still counts.
        if let notify::EventKind::Access(kind) = event.kind
            && !matches!(
                kind,
                notify::event::AccessKind::Close(notify::event::AccessMode::Write)
            )
        {
            return false;
        }
        event.paths.iter().any(|p| {
            if p == &self.dir {
                return true;
            }
            let Some(name) = p.file_name() else {
                return true;
            };
            match &self.only {
                Some(only) => name == only,
                None => !name.to_string_lossy().starts_with('.'),
            }
        }) || event.paths.is_empty()
    }
}

/// (device, inode) of a directory, to notice it being replaced or removed.
pub(crate) fn identity(dir: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
}

/// What an inotify event says about the files it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// A write may still be going on (a file created, data written): wait for quiet.
    InProgress,
    /// The change is complete (a file closed after writing, removed or renamed, or the
    /// watch lost events): re-list almost at once.
    Settled,
}

impl Change {
    fn of(event: &Event) -> Self {
        use notify::EventKind;
        use notify::event::{CreateKind, ModifyKind};
        match event.kind {
            EventKind::Create(CreateKind::Folder) => Change::Settled,
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_)) => Change::InProgress,
            EventKind::Modify(ModifyKind::Any) | EventKind::Any | EventKind::Other => {
                Change::InProgress
            }
            EventKind::Access(_) | EventKind::Remove(_) | EventKind::Modify(_) => Change::Settled,
        }
    }
}

/// One relevant event: what kind of change, to which paths.
#[derive(Clone, Debug)]
pub(crate) struct Signal {
    pub(crate) change: Change,
    pub(crate) paths: Vec<PathBuf>,
}

/// A live watch; dropping it stops the watch.
pub(crate) struct DirWatch {
    pub(crate) target: Target,
    pub(crate) identity: Option<(u64, u64)>,
    pub(crate) events: mpsc::Receiver<Signal>,
    _watcher: RecommendedWatcher,
}

/// Signals queued between two re-lists before further ones are dropped.
const EVENT_QUEUE: usize = 64;

impl DirWatch {
    /// Starts watching `target.dir` (non-recursively).
    pub(crate) fn start(target: Target) -> notify::Result<Self> {
        // The consumer re-lists everything anyway: when the queue is full a signal is
        // dropped, which at worst waits the longer quiet period.
        let (tx, events) = mpsc::channel(EVENT_QUEUE);
        let filter = target.clone();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<Event>| {
            let signal = match res {
                Ok(event) => filter.matches(&event).then(|| Signal {
                    change: Change::of(&event),
                    paths: event.paths,
                }),
                // An error (e.g. queue overflow) may hide changes: re-list.
                Err(_) => Some(Signal {
                    change: Change::Settled,
                    paths: Vec::new(),
                }),
            };
            if let Some(signal) = signal {
                let _ = tx.try_send(signal);
            }
        })?;
        watcher.watch(&target.dir, RecursiveMode::NonRecursive)?;
        Ok(Self {
            identity: identity(&target.dir),
            target,
            events,
            _watcher: watcher,
        })
    }

    /// True while the watch still covers what `wanted` asks for.
    pub(crate) fn is_current(&self, wanted: &Target) -> bool {
        self.target == *wanted
            && self.identity.is_some()
            && identity(&self.target.dir) == self.identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::EventKind;

    fn event(paths: &[&str]) -> Event {
        let mut e = Event::new(EventKind::Any);
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        e
    }

    #[test]
    fn directory_target_ignores_dotfiles() {
        let t = Target {
            dir: "/m".into(),
            only: None,
        };
        assert!(t.matches(&event(&["/m/pod.yaml"])));
        assert!(!t.matches(&event(&["/m/.pod.yaml.swp"])));
        assert!(t.matches(&event(&["/m"])));
        assert!(t.matches(&event(&["/m/.tmp", "/m/pod.yaml"])));
    }

    #[test]
    fn file_target_only_sees_its_file() {
        let t = Target {
            dir: "/m".into(),
            only: Some("pod.yaml".into()),
        };
        assert!(t.matches(&event(&["/m/pod.yaml"])));
        assert!(!t.matches(&event(&["/m/other.yaml"])));
    }

    #[test]
    fn finished_writes_and_removals_are_settled_creations_are_not() {
        use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, ModifyKind};
        use notify::event::{RemoveKind, RenameMode};
        let of = |kind| Change::of(&Event::new(kind));
        assert_eq!(of(EventKind::Create(CreateKind::File)), Change::InProgress);
        assert_eq!(
            of(EventKind::Modify(ModifyKind::Data(DataChange::Any))),
            Change::InProgress
        );
        assert_eq!(
            of(EventKind::Access(AccessKind::Close(AccessMode::Write))),
            Change::Settled
        );
        assert_eq!(of(EventKind::Remove(RemoveKind::File)), Change::Settled);
        assert_eq!(
            of(EventKind::Modify(ModifyKind::Name(RenameMode::To))),
            Change::Settled
        );
        assert_eq!(of(EventKind::Any), Change::InProgress);
    }

    #[test]
    fn targets_for_paths() {
        let dir = tempfile::tempdir().unwrap();
        let t = Target::for_path(dir.path()).unwrap();
        assert_eq!(t.only, None);
        let file = dir.path().join("x.yaml");
        let t = Target::for_path(&file).unwrap();
        assert_eq!(t.dir, dir.path());
        assert_eq!(t.only.as_deref(), Some(std::ffi::OsStr::new("x.yaml")));
    }
}
