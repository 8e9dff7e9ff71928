//! One listing of the manifest path, turned into a snapshot, with per-file memory of the
//! last good pod (see the policy in [`super`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::MAX_MANIFEST_BYTES;
use crate::seen::FirstSeen;
use crate::{Pod, SourceError, pod_full_name, pod_uid};

/// The result of one scan.
#[derive(Debug)]
pub(crate) enum Scan {
    /// The path exists and was read: the pods of the snapshot.
    Pods(Vec<Arc<Pod>>),
    /// The path does not exist (an empty snapshot, as upstream).
    Missing,
    /// The path could not be listed at all; nothing is known.
    Failed(SourceError),
}

/// What we remember of one manifest file.
struct FileState {
    /// The bytes last read, to skip files that did not change.
    content: Vec<u8>,
    /// The pod of the last content that decoded and validated. Shared with the
    /// snapshots sent and with the merged view: this is the pod's only copy.
    last_good: Option<Arc<Pod>>,
}

/// Reads the manifest path and keeps the state needed between scans.
pub(crate) struct Scanner {
    path: PathBuf,
    node_name: String,
    files: BTreeMap<PathBuf, FileState>,
    seen: FirstSeen,
    /// The last problem reported per path, so a problem is logged once, not every scan.
    problems: BTreeMap<PathBuf, String>,
}

impl Scanner {
    pub(crate) fn new(path: PathBuf, node_name: String) -> Self {
        Self {
            path,
            node_name,
            files: BTreeMap::new(),
            seen: FirstSeen::new(),
            problems: BTreeMap::new(),
        }
    }

    /// Lists the path (a directory, non-recursively, or one file) and returns the
    /// snapshot. Problems with single files are logged and do not fail the scan.
    pub(crate) fn scan(&mut self) -> Scan {
        let meta = match fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.files.clear();
                self.seen.retain(&BTreeSet::new());
                let path = self.path.clone();
                self.report_info(&path, "manifest path does not exist");
                return Scan::Missing;
            }
            Err(source) => {
                return Scan::Failed(SourceError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let path = self.path.clone();
        self.forget_problem(&path);
        let (present, listed) = if meta.is_dir() {
            match self.list_dir() {
                Ok(found) => found,
                Err(source) => return Scan::Failed(SourceError::Read { path, source }),
            }
        } else if meta.is_file() {
            (vec![path.clone()], BTreeSet::from([path]))
        } else {
            return Scan::Failed(SourceError::Read {
                path,
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "path is not a directory or a regular file",
                ),
            });
        };
        let keep: BTreeSet<&PathBuf> = present.iter().collect();
        self.files.retain(|p, _| keep.contains(p));
        self.problems
            .retain(|p, _| listed.contains(p) || *p == self.path);
        for file in &present {
            self.process_file(file);
        }
        Scan::Pods(self.snapshot())
    }

    /// Regular files of the directory, by name, without dotfiles; other entries are
    /// reported and skipped. Also returns every entry looked at.
    fn list_dir(&mut self) -> io::Result<(Vec<PathBuf>, BTreeSet<PathBuf>)> {
        let mut entries: Vec<PathBuf> = fs::read_dir(&self.path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
            })
            .collect();
        entries.sort();
        let listed: BTreeSet<PathBuf> = entries.iter().cloned().collect();
        let mut files = Vec::with_capacity(entries.len());
        for entry in entries {
            match fs::metadata(&entry) {
                Ok(m) if m.is_file() => files.push(entry),
                Ok(m) if m.is_dir() => {
                    self.report_info(&entry, "not recursing into a directory");
                }
                Ok(_) => self.report_error(&entry, "not a regular file, skipped"),
                // Vanished since the listing, or a dangling symlink.
                Err(e) => self.report_error(&entry, &format!("cannot stat: {e}")),
            }
        }
        Ok((files, listed))
    }

    /// Re-reads one file and updates its state; never fails.
    fn process_file(&mut self, file: &Path) {
        let content = match read_limited(file) {
            Ok(content) => content,
            Err(ReadError::Gone) => {
                self.files.remove(file);
                return;
            }
            Err(ReadError::Failed(e)) => {
                self.report_error(file, &e.to_string());
                return;
            }
        };
        if self.files.get(file).is_some_and(|s| s.content == content) {
            return;
        }
        let origin = file.to_string_lossy();
        let result = super::prepare_manifest(&content, &origin, &self.node_name);
        let state = self
            .files
            .entry(file.to_path_buf())
            .or_insert_with(|| FileState {
                content: Vec::new(),
                last_good: None,
            });
        state.content = content;
        // Kept for the life of the file: no spare capacity from reading it.
        state.content.shrink_to_fit();
        match result {
            Ok(mut pod) => {
                self.seen.stamp(&mut pod);
                state.last_good = Some(Arc::new(pod));
                self.forget_problem(file);
            }
            Err(e) => {
                let kept = state.last_good.is_some();
                let message = if kept {
                    format!("{e} (keeping the last valid version of this file)")
                } else {
                    e.to_string()
                };
                self.report_error(file, &message);
            }
        }
    }

    /// The last good pods by file name; of pods sharing a full name, the first file wins.
    fn snapshot(&mut self) -> Vec<Arc<Pod>> {
        let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut pods = Vec::new();
        let mut duplicates = Vec::new();
        for (file, state) in &self.files {
            let Some(pod) = &state.last_good else {
                continue;
            };
            let full_name = pod_full_name(pod);
            if let Some(first) = names.get(&full_name) {
                duplicates.push((file.clone(), full_name, first.clone()));
                continue;
            }
            names.insert(full_name, file.clone());
            pods.push(Arc::clone(pod));
        }
        for (file, full_name, first) in duplicates {
            self.report_error(
                &file,
                &format!(
                    "pod {full_name} is already defined by {}; ignoring this file",
                    first.display()
                ),
            );
        }
        let uids: BTreeSet<String> = self
            .files
            .values()
            .filter_map(|s| s.last_good.as_ref().map(|p| pod_uid(p).to_string()))
            .collect();
        self.seen.retain(&uids);
        pods
    }

    fn report_error(&mut self, path: &Path, message: &str) {
        if self.remember_problem(path, message) {
            tracing::error!(file = %path.display(), "static pod manifest rejected: {message}");
        }
    }

    fn report_info(&mut self, path: &Path, message: &str) {
        if self.remember_problem(path, message) {
            tracing::info!(path = %path.display(), "{message}");
        }
    }

    /// Records `message` for `path`; true when it is new (so it should be logged).
    fn remember_problem(&mut self, path: &Path, message: &str) -> bool {
        let previous = self
            .problems
            .insert(path.to_path_buf(), message.to_string());
        previous.as_deref() != Some(message)
    }

    fn forget_problem(&mut self, path: &Path) {
        self.problems.remove(path);
    }
}

pub(crate) enum ReadError {
    /// The file disappeared: its pod leaves the snapshot.
    Gone,
    Failed(SourceError),
}

/// Reads at most [`MAX_MANIFEST_BYTES`] (upstream's limit), refusing larger files.
pub(crate) fn read_limited(file: &Path) -> Result<Vec<u8>, ReadError> {
    let failed = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            ReadError::Gone
        } else {
            ReadError::Failed(SourceError::Read {
                path: file.to_path_buf(),
                source,
            })
        }
    };
    let f = fs::File::open(file).map_err(failed)?;
    let mut content = Vec::new();
    f.take(MAX_MANIFEST_BYTES as u64 + 1)
        .read_to_end(&mut content)
        .map_err(failed)?;
    if content.len() > MAX_MANIFEST_BYTES {
        return Err(ReadError::Failed(SourceError::TooLarge {
            origin: file.to_string_lossy().into_owned(),
            limit: MAX_MANIFEST_BYTES,
        }));
    }
    Ok(content)
}
