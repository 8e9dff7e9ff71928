//! Container exit notification without CRI events: containerd 1.6 has no
//! GetContainerEvents, so the PLEG would notice a container's exit only at its next
//! periodic relist. Instead, every running container's init process (its host pid, from
//! the verbose ContainerStatus) is watched through a pidfd registered with the tokio
//! reactor; when it becomes readable the process has exited and the PLEG relists at once.
//!
//! Bounded: one fd and one small task per running container, dropped as soon as the
//! PLEG no longer lists it as running. A pid that is already gone (ESRCH), or that no
//! longer belongs to the container, is reported as exited right away. Nothing here is
//! authoritative: the relist decides, and the periodic relist stays the safety net.

use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// Watches running containers' processes; reports the ids of those that exited.
pub struct ExitWatcher {
    /// Container id -> the task waiting on its pidfd (None: reported already, or the
    /// pid could not be watched; either way nothing is held open).
    watched: HashMap<String, Option<AbortHandle>>,
    exited_tx: mpsc::UnboundedSender<String>,
    exited_rx: mpsc::UnboundedReceiver<String>,
    /// pidfd_open is unavailable (kernel before 5.3, seccomp): the watcher does nothing.
    unsupported: bool,
}

impl Default for ExitWatcher {
    fn default() -> Self {
        let (exited_tx, exited_rx) = mpsc::unbounded_channel();
        ExitWatcher {
            watched: HashMap::new(),
            exited_tx,
            exited_rx,
            unsupported: false,
        }
    }
}

impl ExitWatcher {
    /// Whether `id` has a watch (or had one that fired).
    pub fn is_watched(&self, id: &str) -> bool {
        self.watched.contains_key(id)
    }

    /// How many containers have an open pidfd (for tests and logs).
    pub fn open_watches(&self) -> usize {
        self.watched.values().filter(|w| w.is_some()).count()
    }

    /// Start watching container `id`'s init process `pid`. Called once per container,
    /// when it is first seen running.
    pub fn watch(&mut self, id: &str, pid: u32) {
        if self.unsupported || self.watched.contains_key(id) {
            return;
        }
        let handle = match open_pidfd(pid) {
            Ok(fd) if process_belongs_to(pid, id) => self.spawn_wait(id, fd),
            Ok(_) => {
                // The pid was reused by another process: the container's is gone.
                tracing::debug!(container = %id, pid, "container process already replaced");
                let _ = self.exited_tx.send(id.to_string());
                None
            }
            Err(err) if err.raw_os_error() == Some(libc::ESRCH) => {
                let _ = self.exited_tx.send(id.to_string());
                None
            }
            Err(err) => {
                if matches!(
                    err.raw_os_error(),
                    Some(libc::ENOSYS) | Some(libc::EPERM) | Some(libc::EINVAL)
                ) {
                    tracing::info!(error = %err, "pidfd_open is not available; container exits are seen at the periodic relist");
                    self.unsupported = true;
                } else {
                    tracing::debug!(container = %id, pid, error = %err, "cannot watch container process");
                }
                None
            }
        };
        self.watched.insert(id.to_string(), handle);
    }

    fn spawn_wait(&self, id: &str, fd: OwnedFd) -> Option<AbortHandle> {
        // SAFETY: `fd` is an OwnedFd moved into the AsyncFd: it stays open and refers to
        // the same pidfd until the AsyncFd is dropped, and as_raw_fd always returns it.
        let registered = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) };
        let afd = match registered {
            Ok(afd) => afd,
            Err(err) => {
                tracing::debug!(container = %id, error = %err, "cannot register pidfd");
                return None;
            }
        };
        let tx = self.exited_tx.clone();
        let id = id.to_string();
        let task = tokio::spawn(async move {
            // Readable once the process has exited; an error also means "look again".
            let _ = afd.readable().await;
            drop(afd);
            let _ = tx.send(id);
        });
        Some(task.abort_handle())
    }

    /// Drop the watches of containers that are no longer running (closing their fds).
    pub fn retain(&mut self, mut running: impl FnMut(&str) -> bool) {
        self.watched.retain(|id, handle| {
            let keep = running(id);
            if !keep && let Some(h) = handle.take() {
                h.abort();
            }
            keep
        });
    }

    /// The next container whose process exited. Never resolves when none will.
    pub async fn next_exit(&mut self) -> String {
        match self.exited_rx.recv().await {
            Some(id) => {
                // Its fd is closed (the task ended); the entry stays until the relist
                // sees the container stop running, so it is not watched twice.
                if let Some(h) = self.watched.get_mut(&id) {
                    *h = None;
                }
                id
            }
            // Unreachable: the watcher holds a sender itself.
            None => std::future::pending().await,
        }
    }
}

impl Drop for ExitWatcher {
    fn drop(&mut self) {
        for h in self.watched.values().flatten() {
            h.abort();
        }
    }
}

/// `pidfd_open(pid, 0)`: an fd that becomes readable when the process exits.
fn open_pidfd(pid: u32) -> std::io::Result<OwnedFd> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    if pid <= 0 {
        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is
    // passed. The flag PIDFD_NONBLOCK is not needed: the fd is only polled, never read.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Whether `pid` is (still) in the cgroup of container `id`: runtimes name container
/// cgroups after the id (cgroupfs `<parent>/<id>`, systemd `cri-containerd-<id>.scope`).
/// An unreadable file gives the benefit of the doubt.
fn process_belongs_to(pid: u32, id: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
        Ok(text) => cgroup_names_container(&text, id),
        Err(err) => err.kind() != std::io::ErrorKind::NotFound,
    }
}

fn cgroup_names_container(proc_cgroup: &str, id: &str) -> bool {
    !id.is_empty() && proc_cgroup.lines().any(|l| l.contains(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cgroup_line(pid: u32) -> String {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        text.lines().next().unwrap().to_string()
    }

    #[test]
    fn cgroup_lines_name_the_container() {
        let v1 = "12:memory:/kubepods/besteffort/podx/abc123\n4:cpu,cpuacct:/kubepods/besteffort/podx/abc123\n";
        assert!(cgroup_names_container(v1, "abc123"));
        let systemd = "0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-abc123.scope\n";
        assert!(cgroup_names_container(systemd, "abc123"));
        assert!(!cgroup_names_container(v1, "def456"));
        assert!(!cgroup_names_container(v1, ""));
    }

    #[tokio::test]
    async fn an_exiting_process_is_reported_and_its_fd_released() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let mut w = ExitWatcher::default();
        // Our own child is in no container's cgroup: use a line of its cgroup file as
        // the "container id" so the ownership check passes.
        let id = cgroup_line(pid);
        w.watch(&id, pid);
        assert_eq!(w.open_watches(), 1, "a live process holds a watch");
        let reaped = std::thread::spawn(move || child.wait());
        let got = tokio::time::timeout(Duration::from_secs(5), w.next_exit())
            .await
            .expect("exit reported within 5 s");
        assert_eq!(got, id);
        assert_eq!(w.open_watches(), 0);
        assert!(w.is_watched(&id), "not watched twice while still listed");
        w.retain(|_| false);
        assert!(!w.is_watched(&id));
        reaped.join().unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_gone_process_is_reported_at_once() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let mut w = ExitWatcher::default();
        w.watch("c1", pid);
        let got = tokio::time::timeout(Duration::from_secs(1), w.next_exit())
            .await
            .expect("reported at once");
        assert_eq!(got, "c1");
        assert_eq!(w.open_watches(), 0);
    }

    #[tokio::test]
    async fn retain_closes_watches_of_containers_gone_from_the_list() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let id = cgroup_line(pid);
        let mut w = ExitWatcher::default();
        w.watch(&id, pid);
        assert_eq!(w.open_watches(), 1);
        w.retain(|_| false);
        assert_eq!(w.open_watches(), 0);
        assert!(!w.is_watched(&id));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
