//! Image garbage collection (upstream images/image_gc_manager.go): records when each
//! image was first seen and last seen in use, and removes unused images least recently
//! used first.
//!
//! - In use: referenced by any container the runtime holds (running or not, of any
//!   kubelet or none: an image is never taken from under a container), or pinned (the
//!   runtime's `pinned` flag, the runtime's sandbox image, `--pod-infra-container-image`).
//! - Threshold: when the image filesystem is at least `imageGCHighThresholdPercent` full,
//!   free `capacity × (100 − low)/100 − available` bytes, skipping images younger than
//!   `imageMinimumGCAge` (counted from when this kubelet first saw them).
//! - Age: with `imageMaximumGCAge` set, once the kubelet has run that long, images unused
//!   for that long go whatever the disk usage. "Unused since" is the last time the image
//!   was seen in use, or when it was first seen (upstream counts a never-used image as
//!   unused forever, which removes an image pulled a second ago; see docs/housekeeping.md).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageGcPolicy {
    pub high_threshold_percent: i32,
    pub low_threshold_percent: i32,
    pub min_age: Duration,
    /// Zero: no age limit.
    pub max_age: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub first_detected: Instant,
    pub last_used: Option<Instant>,
    pub size: u64,
    pub pinned: bool,
    /// A tag or digest to name the image in logs.
    pub name: String,
}

/// An image chosen for removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub id: String,
    pub size: u64,
    pub name: String,
}

#[derive(Debug, Default)]
pub struct ImageRecords {
    pub records: HashMap<String, Record>,
}

/// Image IDs and references the containers use.
pub fn images_in_use(containers: &[cri::Container]) -> HashSet<String> {
    let mut used = HashSet::new();
    for c in containers {
        if !c.image_ref.is_empty() {
            used.insert(c.image_ref.clone());
        }
        if let Some(spec) = c.image.as_ref()
            && !spec.image.is_empty()
        {
            used.insert(spec.image.clone());
        }
    }
    used
}

fn is_used(image: &cri::Image, used: &HashSet<String>) -> bool {
    used.contains(&image.id)
        || image.repo_tags.iter().any(|t| used.contains(t))
        || image.repo_digests.iter().any(|d| used.contains(d))
}

/// Whether `wanted` (as a pod would write it: "busybox", "registry.k8s.io/pause:3.10")
/// names this image.
pub fn image_matches(image: &cri::Image, wanted: &str) -> bool {
    if wanted.is_empty() {
        return false;
    }
    let normalized = normalize(wanted);
    image.id == wanted
        || image
            .repo_tags
            .iter()
            .chain(image.repo_digests.iter())
            .any(|t| t == wanted || *t == normalized)
}

/// Docker-style normalization: "busybox" -> "docker.io/library/busybox:latest".
pub fn normalize(name: &str) -> String {
    let (repo, rest) = match name.find('@') {
        Some(i) => (&name[..i], &name[i..]),
        None => (name, ""),
    };
    let last = repo.rsplit('/').next().unwrap_or(repo);
    let (repo, tag) = if rest.is_empty() && !last.contains(':') {
        (repo, ":latest")
    } else {
        (repo, "")
    };
    let first = repo.split('/').next().unwrap_or("");
    let has_registry =
        repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_registry {
        repo.to_string()
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    };
    format!("{full}{tag}{rest}")
}

impl ImageRecords {
    /// Update the records from a listing; returns the IDs of images in use now.
    pub fn detect(
        &mut self,
        images: &[cri::Image],
        used: &HashSet<String>,
        pinned_names: &[String],
        now: Instant,
    ) -> HashSet<String> {
        let mut in_use = HashSet::new();
        let mut present = HashSet::new();
        for image in images {
            present.insert(image.id.clone());
            let rec = self
                .records
                .entry(image.id.clone())
                .or_insert_with(|| Record {
                    first_detected: now,
                    last_used: None,
                    size: 0,
                    pinned: false,
                    name: String::new(),
                });
            if is_used(image, used) {
                rec.last_used = Some(now);
                in_use.insert(image.id.clone());
            }
            rec.size = image.size;
            rec.pinned = image.pinned || pinned_names.iter().any(|p| image_matches(image, p));
            rec.name = image
                .repo_tags
                .first()
                .or(image.repo_digests.first())
                .cloned()
                .unwrap_or_else(|| image.id.clone());
        }
        self.records.retain(|id, _| present.contains(id));
        in_use
    }

    /// Unused, unpinned images, least recently used first (ties: first detected first).
    fn eviction_order(&self, in_use: &HashSet<String>) -> Vec<(&String, &Record)> {
        let mut v: Vec<(&String, &Record)> = self
            .records
            .iter()
            .filter(|(id, r)| !in_use.contains(*id) && !r.pinned)
            .collect();
        v.sort_by(|a, b| {
            a.1.last_used
                .cmp(&b.1.last_used)
                .then_with(|| a.1.first_detected.cmp(&b.1.first_detected))
                .then_with(|| a.0.cmp(b.0))
        });
        v
    }

    /// Images unused for longer than `max_age` (once the kubelet ran that long).
    pub fn old_images(
        &self,
        in_use: &HashSet<String>,
        policy: &ImageGcPolicy,
        began: Instant,
        now: Instant,
    ) -> Vec<Removal> {
        if policy.max_age.is_zero() || now.saturating_duration_since(began) <= policy.max_age {
            return Vec::new();
        }
        self.eviction_order(in_use)
            .into_iter()
            .filter(|(_, r)| {
                let since = r.last_used.unwrap_or(r.first_detected);
                now.saturating_duration_since(since) > policy.max_age
            })
            .map(|(id, r)| Removal {
                id: id.clone(),
                size: r.size,
                name: r.name.clone(),
            })
            .collect()
    }

    /// Images to remove to free `bytes` (skipping those younger than `min_age`).
    pub fn to_free(
        &self,
        bytes: i128,
        in_use: &HashSet<String>,
        skip: &HashSet<String>,
        min_age: Duration,
        now: Instant,
    ) -> Vec<Removal> {
        let mut out = Vec::new();
        let mut freed: i128 = 0;
        for (id, r) in self.eviction_order(in_use) {
            if skip.contains(id) || now.saturating_duration_since(r.first_detected) < min_age {
                continue;
            }
            out.push(Removal {
                id: id.clone(),
                size: r.size,
                name: r.name.clone(),
            });
            freed += r.size as i128;
            if freed >= bytes {
                break;
            }
        }
        out
    }
}

/// Bytes to free for the threshold policy, if the disk is over the high threshold.
pub fn bytes_to_free(capacity: i128, available: i128, policy: &ImageGcPolicy) -> Option<i128> {
    if capacity <= 0 {
        return None;
    }
    let available = available.min(capacity);
    let usage_percent = 100 - (available * 100 / capacity);
    if usage_percent < i128::from(policy.high_threshold_percent) {
        return None;
    }
    Some(capacity * i128::from(100 - policy.low_threshold_percent) / 100 - available)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, tag: &str, size: u64) -> cri::Image {
        cri::Image {
            id: id.into(),
            repo_tags: vec![tag.into()],
            size,
            ..Default::default()
        }
    }

    fn policy() -> ImageGcPolicy {
        ImageGcPolicy {
            high_threshold_percent: 85,
            low_threshold_percent: 80,
            min_age: Duration::from_secs(120),
            max_age: Duration::ZERO,
        }
    }

    #[test]
    fn threshold_math() {
        assert_eq!(bytes_to_free(1000, 200, &policy()), None); // 80% used
        assert_eq!(bytes_to_free(1000, 150, &policy()), Some(50)); // 85%: down to 80%
        assert_eq!(bytes_to_free(1000, 100, &policy()), Some(100));
        assert_eq!(bytes_to_free(0, 0, &policy()), None);
    }

    #[test]
    fn least_recently_used_first_never_used_in_use_pinned_or_young() {
        let t0 = Instant::now();
        let mut r = ImageRecords::default();
        let images = vec![
            image("sha256:old", "docker.io/library/nginx:1.7.9", 100),
            image("sha256:recent", "docker.io/library/nginx:1.9.1", 100),
            image("sha256:busy", "docker.io/library/busybox:latest", 10),
            image("sha256:pause", "registry.k8s.io/pause:3.10", 1),
        ];
        let used_recent: HashSet<String> = ["docker.io/library/nginx:1.9.1".to_string()].into();
        let pinned = vec!["registry.k8s.io/pause:3.10".to_string()];
        r.detect(&images, &used_recent, &pinned, t0);
        // Later: busybox is in use, nginx:1.9.1 no more.
        let t1 = t0 + Duration::from_secs(300);
        let used_now: HashSet<String> = ["sha256:busy".to_string()].into();
        let in_use = r.detect(&images, &used_now, &pinned, t1);
        assert_eq!(in_use, ["sha256:busy".to_string()].into());
        let plan = r.to_free(150, &in_use, &HashSet::new(), Duration::from_secs(120), t1);
        let ids: Vec<&str> = plan.iter().map(|p| p.id.as_str()).collect();
        // Never used (old) goes before the one used at t0; busybox (in use) and pause
        // (pinned) are never candidates.
        assert_eq!(ids, ["sha256:old", "sha256:recent"]);
        let plan = r.to_free(50, &in_use, &HashSet::new(), Duration::from_secs(120), t1);
        assert_eq!(plan.len(), 1);
        // Too young.
        let plan = r.to_free(50, &in_use, &HashSet::new(), Duration::from_secs(600), t1);
        assert!(plan.is_empty());
        // Removed from the runtime: forgotten.
        r.detect(&images[2..], &used_now, &pinned, t1);
        assert_eq!(r.records.len(), 2);
    }

    #[test]
    fn max_age_waits_for_the_kubelet_and_counts_from_last_use() {
        let t0 = Instant::now();
        let mut r = ImageRecords::default();
        let images = vec![image("sha256:a", "a:1", 1), image("sha256:b", "b:1", 1)];
        r.detect(&images, &["a:1".to_string()].into(), &[], t0);
        let p = ImageGcPolicy {
            max_age: Duration::from_secs(60),
            ..policy()
        };
        let t1 = t0 + Duration::from_secs(30);
        let in_use = r.detect(&images, &HashSet::new(), &[], t1);
        assert!(
            r.old_images(&in_use, &p, t0, t1).is_empty(),
            "kubelet too young"
        );
        let t2 = t0 + Duration::from_secs(61);
        let in_use = r.detect(&images, &HashSet::new(), &[], t2);
        let old: Vec<String> = r
            .old_images(&in_use, &p, t0, t2)
            .into_iter()
            .map(|r| r.id)
            .collect();
        // b was first seen at t0 and never used; a was last used at t0 as well.
        assert_eq!(old.len(), 2);
        let t3 = t2 + Duration::from_secs(1);
        let in_use = r.detect(&images, &["sha256:a".to_string()].into(), &[], t3);
        let old: Vec<String> = r
            .old_images(&in_use, &p, t0, t3)
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(old, ["sha256:b"]);
    }

    #[test]
    fn names_normalize_like_docker() {
        assert_eq!(normalize("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalize("nginx:1.7.9"), "docker.io/library/nginx:1.7.9");
        assert_eq!(
            normalize("registry.k8s.io/pause:3.10"),
            "registry.k8s.io/pause:3.10"
        );
        assert_eq!(normalize("127.0.0.1:5000/x"), "127.0.0.1:5000/x:latest");
        assert_eq!(normalize("me/app"), "docker.io/me/app:latest");
        let img = image("sha256:p", "registry.k8s.io/pause:3.10", 1);
        assert!(image_matches(&img, "registry.k8s.io/pause:3.10"));
        assert!(!image_matches(&img, "busybox"));
    }
}
