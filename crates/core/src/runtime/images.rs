//! Image pulls by pull policy, with a per-image backoff so a missing image or a down
//! registry is retried at 10s doubling to 5 min (ErrImagePull, then ImagePullBackOff).

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Container;

use super::backoff::Backoff;
use super::cri::CriClient;
use super::model::now_ns;
use crate::events::EventType;

/// Why a container could not get its image; `reason` is the waiting reason shown in status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageError {
    pub reason: &'static str,
    pub message: String,
}

pub struct ImagePuller {
    cri: CriClient,
    /// Same client with the (longer) pull timeout.
    pull_cri: CriClient,
    backoff: Backoff,
    /// Node-wide: serial/parallel pulls and the registry QPS limit.
    limits: std::sync::Arc<super::pull_limits::PullLimits>,
    /// Images found on the node by [`ImagePuller::find_present`] during this sync pass
    /// (image -> id), taken by the next `ensure` of each.
    present: HashMap<String, String>,
}

/// Upstream default: Always for `:latest` or no tag, else IfNotPresent (digests too).
pub fn pull_policy(container: &Container) -> String {
    if let Some(p) = container
        .image_pull_policy
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        return p.to_string();
    }
    let image = container.image.as_deref().unwrap_or_default();
    let tag_part = image.rsplit('/').next().unwrap_or(image);
    let latest = !image.contains('@')
        && tag_part
            .split_once(':')
            .is_none_or(|(_, tag)| tag == "latest");
    if latest {
        "Always".into()
    } else {
        "IfNotPresent".into()
    }
}

impl ImagePuller {
    pub fn new(
        cri: CriClient,
        pull_cri: CriClient,
        limits: std::sync::Arc<super::pull_limits::PullLimits>,
    ) -> Self {
        ImagePuller {
            cri,
            pull_cri,
            limits,
            backoff: Backoff::containers(),
            present: HashMap::new(),
        }
    }

    /// Which of the images of `containers` whose pull policy lets them come from the node
    /// are there now (image -> id), asked all at once. A worker asks while the sandbox is
    /// being created, so that the check is not one more runtime round trip between the
    /// sandbox and its first container; hand the answer to [`ImagePuller::remember_present`].
    pub async fn find_present(
        cri: &CriClient,
        containers: &[&Container],
    ) -> HashMap<String, String> {
        let mut images: Vec<String> = containers
            .iter()
            .filter(|c| pull_policy(c) != "Always")
            .filter_map(|c| c.image.clone())
            .filter(|i| !i.trim().is_empty() && !i.contains(char::is_whitespace))
            .collect();
        images.sort();
        images.dedup();
        let answers = futures::future::join_all(images.iter().map(|i| cri.image_status(i))).await;
        images
            .into_iter()
            .zip(answers)
            .filter_map(|(image, answer)| match answer {
                Ok(Some(found)) => Some((image, found.id)),
                _ => None,
            })
            .collect()
    }

    /// Use `present` (from [`ImagePuller::find_present`]) in this sync pass.
    pub fn remember_present(&mut self, present: HashMap<String, String>) {
        self.present = present;
    }

    /// Drop what [`ImagePuller::remember_present`] kept: it is only good for one pass.
    pub fn forget_present(&mut self) {
        if !self.present.is_empty() {
            self.present = HashMap::new();
        }
    }

    /// The image reference to create the container from.
    pub async fn ensure(&mut self, container: &Container) -> Result<String, ImageError> {
        self.ensure_with_events(container, &mut |_, _, _| {}).await
    }

    /// [`ensure`](Self::ensure), reporting what happens as upstream's image events
    /// (`emit(type, reason, message)`: Pulling, Pulled, Failed, BackOff ...).
    pub async fn ensure_with_events(
        &mut self,
        container: &Container,
        emit: &mut (dyn FnMut(EventType, &'static str, String) + Send),
    ) -> Result<String, ImageError> {
        let result = self.ensure_inner(container, emit).await;
        if let Err(err) = &result {
            let image = container.image.clone().unwrap_or_default();
            match err.reason {
                "ImagePullBackOff" => emit(
                    EventType::Normal,
                    "BackOff",
                    format!("Back-off pulling image {image:?}"),
                ),
                "ErrImageNeverPull" => {
                    emit(EventType::Warning, "ErrImageNeverPull", err.message.clone())
                }
                "InvalidImageName" => {
                    emit(EventType::Warning, "InspectFailed", err.message.clone())
                }
                _ => emit(EventType::Warning, "Failed", err.message.clone()),
            }
            emit(
                EventType::Warning,
                "Failed",
                format!("Error: {}", err.reason),
            );
        }
        result
    }

    async fn ensure_inner(
        &mut self,
        container: &Container,
        emit: &mut (dyn FnMut(EventType, &'static str, String) + Send),
    ) -> Result<String, ImageError> {
        let image = container.image.clone().unwrap_or_default();
        if image.trim().is_empty() || image.contains(char::is_whitespace) {
            return Err(ImageError {
                reason: "InvalidImageName",
                message: format!(
                    "Failed to apply default image tag {image:?}: invalid reference format"
                ),
            });
        }
        let policy = pull_policy(container);
        if policy != "Always" {
            let known = self.present.remove(&image).map(|id| Ok(Some(id)));
            let status = match known {
                Some(found) => found,
                None => self
                    .cri
                    .image_status(&image)
                    .await
                    .map(|found| found.map(|f| f.id)),
            };
            match status {
                Ok(Some(id)) => {
                    emit(
                        EventType::Normal,
                        "Pulled",
                        format!("Container image {image:?} already present on machine"),
                    );
                    return Ok(id);
                }
                Ok(None) if policy == "Never" => {
                    return Err(ImageError {
                        reason: "ErrImageNeverPull",
                        message: format!(
                            "Container image {image:?} is not present with pull policy of Never"
                        ),
                    });
                }
                Ok(None) => {}
                Err(err) => {
                    return Err(ImageError {
                        reason: "ErrImagePull",
                        message: err.message(),
                    });
                }
            }
        }
        let now = now_ns();
        if self.in_window(&image, now) {
            return Err(ImageError {
                reason: "ImagePullBackOff",
                message: format!("Back-off pulling image {image:?}"),
            });
        }
        tracing::info!(image = %image, "pulling image");
        emit(
            EventType::Normal,
            "Pulling",
            format!("Pulling image {image:?}"),
        );
        let queued = std::time::Instant::now();
        // One pull at a time (serializeImagePulls) or at most maxParallelImagePulls.
        let _slot = self.limits.slot().await;
        let started = std::time::Instant::now();
        // (the error for the log, the message for the status)
        let pulled = if self.limits.try_accept() {
            self.pull_cri
                .pull_image(&image, None)
                .await
                .map_err(|e| (e.to_string(), e.message()))
        } else {
            let m = super::pull_limits::PULL_QPS_EXCEEDED.to_string();
            Err((m.clone(), m))
        };
        match pulled {
            Ok(image_ref) => {
                tracing::info!(image = %image, image_ref = %image_ref, elapsed_ms = started.elapsed().as_millis() as u64, "pulled image");
                let took = started.elapsed().as_secs_f64();
                let with_wait = queued.elapsed().as_secs_f64();
                emit(
                    EventType::Normal,
                    "Pulled",
                    format!(
                        "Successfully pulled image {image:?} in {took:.3}s ({with_wait:.3}s including waiting)"
                    ),
                );
                Ok(image_ref)
            }
            Err((err, message)) => {
                self.backoff.next(&image, now_ns());
                tracing::warn!(image = %image, error = %err, "failed to pull image");
                Err(ImageError {
                    reason: "ErrImagePull",
                    message: format!("failed to pull image {image:?}: {message}"),
                })
            }
        }
    }

    /// True while the last failed pull of `image` is within its backoff window.
    fn in_window(&self, image: &str, now: i64) -> bool {
        // The backoff entry is updated at each failed pull, so the window starts there.
        self.backoff
            .last_update(image)
            .is_some_and(|last| self.backoff.in_backoff_since(image, last, now).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(image: &str, policy: Option<&str>) -> Container {
        Container {
            name: "c".into(),
            image: Some(image.into()),
            image_pull_policy: policy.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn default_pull_policy() {
        assert_eq!(pull_policy(&c("busybox", None)), "Always");
        assert_eq!(pull_policy(&c("busybox:latest", None)), "Always");
        assert_eq!(pull_policy(&c("nginx:1.7.9", None)), "IfNotPresent");
        assert_eq!(pull_policy(&c("localhost:5000/busybox", None)), "Always");
        assert_eq!(
            pull_policy(&c("localhost:5000/busybox:1", None)),
            "IfNotPresent"
        );
        assert_eq!(pull_policy(&c("busybox@sha256:abc", None)), "IfNotPresent");
        assert_eq!(pull_policy(&c("busybox", Some("Never"))), "Never");
    }
}
