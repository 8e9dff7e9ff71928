//! One cgroup manager for both drivers and both cgroup versions, as upstream's: a cgroup
//! is named by its components under the cgroup root (`kubepods`, `burstable`,
//! `pod<uid>`); the cgroupfs driver makes it `/kubepods/burstable/pod<uid>` in every
//! hierarchy, the systemd driver the slice `kubepods-burstable-pod<uid>.slice` (at
//! `/kubepods.slice/kubepods-burstable.slice/...`), started and stopped through systemd.
//! On cgroup v2 the controllers are enabled in every ancestor's `cgroup.subtree_control`
//! first (a fresh v2 cgroup has no control files otherwise), then the values are written.

use std::path::Path;

use super::{CgroupLayout, CgroupMount, systemd};

/// Controllers a v2 cgroup of the kubelet's may need.
const V2_CONTROLLERS: [&str; 5] = ["cpu", "memory", "pids", "hugetlb", "cpuset"];

/// A cgroup by its components under the cgroup root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupName(pub Vec<String>);

impl CgroupName {
    pub fn new<S: Into<String>>(parts: impl IntoIterator<Item = S>) -> Self {
        CgroupName(parts.into_iter().map(Into::into).collect())
    }

    /// The cgroupfs path: `/a/b/c`.
    pub fn cgroupfs(&self) -> String {
        format!("/{}", self.0.join("/"))
    }

    /// The systemd slice unit of the last component: `a-b-c.slice` ('-' within a component
    /// becomes '_', as upstream escapes it); `-.slice` for the root.
    pub fn systemd_unit(&self) -> String {
        if self.0.is_empty() {
            return "-.slice".into();
        }
        let escaped: Vec<String> = self.0.iter().map(|p| p.replace('-', "_")).collect();
        format!("{}.slice", escaped.join("-"))
    }

    /// The systemd cgroup path: `/a.slice/a-b.slice/a-b-c.slice`.
    pub fn systemd_path(&self) -> String {
        let mut path = String::new();
        for n in 1..=self.0.len() {
            path.push('/');
            path.push_str(&CgroupName(self.0[..n].to_vec()).systemd_unit());
        }
        if path.is_empty() { "/".into() } else { path }
    }

    pub fn child(&self, part: &str) -> CgroupName {
        let mut parts = self.0.clone();
        parts.push(part.to_string());
        CgroupName(parts)
    }
}

impl CgroupLayout {
    /// The components of `cgroupRoot`: `/a/b` for cgroupfs; for systemd also a slice path
    /// such as `/a.slice/a-b.slice` (each slice's last component counts).
    pub fn root_name(&self) -> CgroupName {
        CgroupName::new(
            self.root
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| match s.strip_suffix(".slice") {
                    Some(unit) => unit.rsplit('-').next().unwrap_or(unit).to_string(),
                    None => s.to_string(),
                })
                .filter(|s| !s.is_empty()),
        )
    }

    /// The cgroup's path relative to each hierarchy's root, for this driver.
    pub fn cgroup_path(&self, name: &CgroupName) -> String {
        if self.systemd {
            name.systemd_path()
        } else {
            name.cgroupfs()
        }
    }

    /// Whether the host runs the v2 unified hierarchy only.
    pub fn is_v2(&self) -> bool {
        self.host.is_v2()
    }

    /// Create cgroup `name` and write `files` (v1 and v2 names; each hierarchy takes the
    /// ones its controllers have). With systemd the slice is started (or updated) first,
    /// with the unit properties matching the files, so systemd keeps the same values.
    pub fn apply_cgroup(
        &self,
        name: &CgroupName,
        files: &[(String, String)],
    ) -> Result<(), String> {
        let rel = self.cgroup_path(name);
        if self.systemd && !name.0.is_empty() {
            systemd::start_slice(
                &name.systemd_unit(),
                &systemd::SliceProperties::from_files(files),
            )?;
            wait_for_dir(&self.host.mounts, &rel);
        }
        for mount in &self.host.mounts {
            let dir = mount.path.join(rel.trim_start_matches('/'));
            if mount.options.is_none() {
                create_v2(&mount.path, rel.trim_start_matches('/'))?;
            } else {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("creating cgroup {}: {e}", dir.display()))?;
            }
            mount.write(&dir, files)?;
        }
        Ok(())
    }

    /// Remove cgroup `name` and its children: stop the slice (systemd), or rmdir the
    /// directories in every hierarchy, deepest first (cgroupfs; a cgroup still in use
    /// stays and is reported).
    pub fn remove_cgroup(&self, name: &CgroupName) -> Result<(), String> {
        let rel = self.cgroup_path(name);
        if self.systemd {
            // systemd removes the slice's cgroup itself once the stop job has run.
            return systemd::stop_slice(&name.systemd_unit());
        }
        let mut errors = Vec::new();
        for mount in &self.host.mounts {
            let dir = mount.path.join(rel.trim_start_matches('/'));
            if dir.is_dir()
                && let Err(err) = super::remove_tree_of_empty_dirs(&dir)
            {
                errors.push(format!("{}: {err}", dir.display()));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// systemd creates a slice's cgroup when its start job runs: wait for it briefly.
fn wait_for_dir(mounts: &[CgroupMount], rel: &str) {
    let Some(mount) = mounts.first() else {
        return;
    };
    let dir = mount.path.join(rel.trim_start_matches('/'));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !dir.is_dir() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Create `rel` under the v2 hierarchy at `mount`, enabling in each ancestor (the root
/// included) the controllers it has, so the new cgroup gets their files (as runc does).
fn create_v2(mount: &Path, rel: &str) -> Result<(), String> {
    let mut dir = mount.to_path_buf();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        enable_controllers(&dir);
        dir.push(part);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("creating cgroup {}: {e}", dir.display())),
        }
    }
    Ok(())
}

/// Enable in `dir`'s subtree the controllers of [`V2_CONTROLLERS`] that `dir` has and
/// has not enabled yet. One at a time: the kernel refuses a whole line for one
/// controller it cannot enable (e.g. cpuset in a threaded subtree).
fn enable_controllers(dir: &Path) {
    let available = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    for c in V2_CONTROLLERS {
        let has = |list: &str| list.split_whitespace().any(|x| x == c);
        if has(&available)
            && !has(&enabled)
            && let Err(err) = std::fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"))
        {
            tracing::debug!(cgroup = %dir.display(), controller = c, error = %err, "cannot enable controller");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn names_for_both_drivers() {
        let pod = CgroupName::new(["kubepods", "burstable", "pod1234-ab"]);
        assert_eq!(pod.cgroupfs(), "/kubepods/burstable/pod1234-ab");
        assert_eq!(pod.systemd_unit(), "kubepods-burstable-pod1234_ab.slice");
        assert_eq!(
            pod.systemd_path(),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_ab.slice"
        );
        assert_eq!(
            CgroupName::new(["kubepods"]).systemd_path(),
            "/kubepods.slice"
        );
        assert_eq!(CgroupName::new(Vec::<String>::new()).systemd_path(), "/");

        let layout = |root: &str, systemd: bool| CgroupLayout {
            per_qos: true,
            root: root.into(),
            systemd,
            host: Arc::new(Default::default()),
        };
        assert_eq!(layout("/", false).root_name().0, Vec::<String>::new());
        assert_eq!(layout("/a/b", false).root_name().0, ["a", "b"]);
        assert_eq!(layout("/a.slice/a-b.slice", true).root_name().0, ["a", "b"]);
    }

    #[test]
    fn v2_cgroups_get_the_controllers_of_their_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        // Only what is available and not enabled yet is written (one controller: a
        // plain file keeps the last write).
        std::fs::write(root.join("cgroup.subtree_control"), "cpu memory pids\n").unwrap();
        create_v2(root, "kubepods/burstable").unwrap();
        assert!(root.join("kubepods/burstable").is_dir());
        assert_eq!(
            std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap(),
            "+cpuset"
        );
        std::fs::write(
            root.join("cgroup.subtree_control"),
            "cpuset cpu memory pids\n",
        )
        .unwrap();
        create_v2(root, "kubepods/besteffort").unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap(),
            "cpuset cpu memory pids\n",
            "nothing to enable"
        );
    }
}
