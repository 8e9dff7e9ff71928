//! Checks of the host's cgroups made once at start, before the container manager, as
//! upstream makes them: the cgroup version against `failCgroupV1`, and the cgroup driver
//! the runtime itself uses (CRI `RuntimeConfig`), which wins over `cgroupDriver`.

use std::future::Future;
use std::time::Duration;

use k8s_cri::v1 as cri;

use crate::runtime::cri::CriError;

/// Upstream's reason for refusing a cgroup v1 host (configuration validation, v1.35+).
pub const CGROUP_V1_REFUSED: &str = "kubelet is configured to not run on a host using cgroup v1. cgroup v1 support is unsupported and will be removed in a future release";

/// `failCgroupV1: true` (the default) refuses a host without the unified v2 hierarchy, with
/// upstream's message; `false` starts with upstream's maintenance-mode warning.
pub fn check_cgroup_version(is_v2: bool, fail_cgroup_v1: bool) -> Result<(), String> {
    match (is_v2, fail_cgroup_v1) {
        (true, _) => Ok(()),
        (false, true) => Err(format!(
            "failed to validate kubelet configuration, error: {CGROUP_V1_REFUSED} \
             (set failCgroupV1: false or --fail-cgroupv1=false to run on it anyway)"
        )),
        (false, false) => {
            tracing::warn!("cgroup v1 support is in maintenance mode, please migrate to cgroup v2");
            Ok(())
        }
    }
}

/// Where the kernel lists the active swap areas.
pub const PROC_SWAPS: &str = "/proc/swaps";

/// `failSwapOn: true` (the default) refuses a host with swap on, as upstream's container
/// manager: swap is on when `/proc/swaps` has a line beyond its header. `swaps` is the
/// file's text, `None` when it does not exist (no swap support: taken as off).
pub fn check_swap(swaps: Option<&str>, fail_swap_on: bool) -> Result<(), String> {
    if !fail_swap_on {
        return Ok(());
    }
    let Some(text) = swaps else {
        tracing::info!(
            path = PROC_SWAPS,
            "file does not exist, assuming that swap is disabled"
        );
        return Ok(());
    };
    let lines: Vec<&str> = text.trim().split('\n').collect();
    if lines.len() > 1 {
        // Upstream prints the lines as a Go slice: [line line ...].
        return Err(format!(
            "running with swap on is not supported, please disable swap! or set --fail-swap-on flag to false. {PROC_SWAPS} contained: [{}]",
            lines.join(" ")
        ));
    }
    Ok(())
}

/// Read `/proc/swaps` for [`check_swap`]: `None` if it does not exist; other read
/// errors fail the start, as upstream.
pub fn read_proc_swaps() -> Result<Option<String>, String> {
    match std::fs::read_to_string(PROC_SWAPS) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {PROC_SWAPS}: {e}")),
    }
}

/// How many times the runtime is asked, and the pause after a failed answer (upstream:
/// three tries, two seconds apart, for a runtime that is still starting).
pub const RUNTIME_CONFIG_ATTEMPTS: u32 = 3;
pub const RUNTIME_CONFIG_RETRY: Duration = Duration::from_secs(2);

/// The cgroup driver to use: the one the runtime reports, else `configured`.
///
/// As upstream: a runtime without `RuntimeConfig` (containerd before 2.0 answers
/// `Unimplemented`) or without a Linux section leaves the configured driver; an unknown
/// driver value refuses the start. Difference: when the runtime does not answer at all
/// after the retries, upstream refuses to start; kubelet-rs, which waits for a runtime
/// that is down, keeps the configured driver and says so.
pub async fn cgroup_driver<F, Fut>(
    mut ask: F,
    configured: &str,
    retry: Duration,
) -> Result<String, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<cri::RuntimeConfigResponse, CriError>>,
{
    let mut last_error = None;
    for attempt in 1..=RUNTIME_CONFIG_ATTEMPTS {
        match ask().await {
            Ok(answer) => return driver_of(&answer, configured),
            Err(err) if err.code() == Some(tonic::Code::Unimplemented) => {
                tracing::info!(
                    cgroup_driver = configured,
                    "CRI implementation should be updated to support RuntimeConfig; falling back to using cgroupDriver from kubelet config"
                );
                return Ok(configured.to_string());
            }
            Err(err) => {
                tracing::debug!(attempt, error = %err, "CRI RuntimeConfig failed");
                last_error = Some(err);
                if attempt < RUNTIME_CONFIG_ATTEMPTS {
                    tokio::time::sleep(retry).await;
                }
            }
        }
    }
    tracing::warn!(
        error = %last_error.map(|e| e.to_string()).unwrap_or_default(),
        cgroup_driver = configured,
        "cannot learn the container runtime's cgroup driver (CRI RuntimeConfig); using cgroupDriver from the configuration"
    );
    Ok(configured.to_string())
}

fn driver_of(answer: &cri::RuntimeConfigResponse, configured: &str) -> Result<String, String> {
    // An absent Linux section says nothing: its zero value would read as systemd.
    let Some(linux) = &answer.linux else {
        return Ok(configured.to_string());
    };
    let driver = match cri::CgroupDriver::try_from(linux.cgroup_driver) {
        Ok(cri::CgroupDriver::Systemd) => "systemd",
        Ok(cri::CgroupDriver::Cgroupfs) => "cgroupfs",
        Err(_) => {
            return Err(format!(
                "runtime returned an unknown cgroup driver {}",
                linux.cgroup_driver
            ));
        }
    };
    if driver != configured {
        tracing::info!(
            cgroup_driver = driver,
            configured,
            "Using cgroup driver setting received from the CRI runtime (it differs from cgroupDriver)"
        );
    } else {
        tracing::info!(
            cgroup_driver = driver,
            "Using cgroup driver setting received from the CRI runtime"
        );
    }
    Ok(driver.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn status(code: tonic::Code) -> CriError {
        CriError::Status {
            op: "RuntimeConfig",
            code,
            message: "test".into(),
        }
    }

    fn reports(driver: i32) -> cri::RuntimeConfigResponse {
        cri::RuntimeConfigResponse {
            linux: Some(cri::LinuxRuntimeConfiguration {
                cgroup_driver: driver,
            }),
        }
    }

    /// Runs the resolution against scripted answers; returns the result and how many
    /// times the runtime was asked.
    async fn resolve(
        answers: Vec<Result<cri::RuntimeConfigResponse, CriError>>,
        configured: &str,
    ) -> (Result<String, String>, usize) {
        let answers = RefCell::new(answers.into_iter());
        let asked = RefCell::new(0);
        let result = cgroup_driver(
            || {
                *asked.borrow_mut() += 1;
                let next = answers.borrow_mut().next().expect("asked too often");
                async move { next }
            },
            configured,
            Duration::ZERO,
        )
        .await;
        (result, asked.into_inner())
    }

    #[tokio::test]
    async fn the_runtime_driver_wins_over_the_configured_one() {
        let systemd = cri::CgroupDriver::Systemd as i32;
        let cgroupfs = cri::CgroupDriver::Cgroupfs as i32;
        assert_eq!(
            resolve(vec![Ok(reports(systemd))], "cgroupfs").await,
            (Ok("systemd".into()), 1)
        );
        assert_eq!(
            resolve(vec![Ok(reports(cgroupfs))], "systemd").await,
            (Ok("cgroupfs".into()), 1)
        );
    }

    #[tokio::test]
    async fn unimplemented_or_silent_runtimes_keep_the_configured_driver() {
        assert_eq!(
            resolve(vec![Err(status(tonic::Code::Unimplemented))], "systemd").await,
            (Ok("systemd".into()), 1)
        );
        let no_linux = cri::RuntimeConfigResponse { linux: None };
        assert_eq!(
            resolve(vec![Ok(no_linux)], "cgroupfs").await,
            (Ok("cgroupfs".into()), 1)
        );
    }

    #[tokio::test]
    async fn transient_errors_are_retried_then_the_configured_driver_is_kept() {
        let systemd = cri::CgroupDriver::Systemd as i32;
        assert_eq!(
            resolve(
                vec![Err(status(tonic::Code::Unavailable)), Ok(reports(systemd))],
                "cgroupfs"
            )
            .await,
            (Ok("systemd".into()), 2)
        );
        let down = (0..RUNTIME_CONFIG_ATTEMPTS)
            .map(|_| Err(status(tonic::Code::Unavailable)))
            .collect();
        assert_eq!(
            resolve(down, "cgroupfs").await,
            (Ok("cgroupfs".into()), RUNTIME_CONFIG_ATTEMPTS as usize)
        );
    }

    #[tokio::test]
    async fn an_unknown_driver_refuses_the_start() {
        let (result, _) = resolve(vec![Ok(reports(7))], "cgroupfs").await;
        assert_eq!(
            result,
            Err("runtime returned an unknown cgroup driver 7".to_string())
        );
    }

    #[test]
    fn cgroup_v1_is_refused_by_default_with_upstreams_reason() {
        assert_eq!(check_cgroup_version(true, true), Ok(()));
        assert_eq!(check_cgroup_version(false, false), Ok(()));
        let err = check_cgroup_version(false, true).unwrap_err();
        assert!(err.contains(CGROUP_V1_REFUSED), "{err}");
        assert!(err.contains("failCgroupV1: false"), "{err}");
    }

    const SWAPS_HEADER: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

    #[test]
    fn swap_on_refuses_the_start_unless_fail_swap_on_is_false() {
        let on = format!("{SWAPS_HEADER}/dev/dm-1   partition\t16760828\t0\t-2\n");
        let err = check_swap(Some(&on), true).expect_err("swap is on");
        assert!(
            err.starts_with("running with swap on is not supported, please disable swap! or set --fail-swap-on flag to false. /proc/swaps contained: ["),
            "{err}"
        );
        assert!(err.contains("--fail-swap-on flag to false"), "{err}");
        assert!(err.contains("/dev/dm-1"), "names the swap area: {err}");
        assert_eq!(check_swap(Some(&on), false), Ok(()));
    }

    #[test]
    fn no_swap_areas_or_no_swaps_file_is_swap_off() {
        assert_eq!(check_swap(Some(SWAPS_HEADER), true), Ok(()));
        assert_eq!(check_swap(Some(""), true), Ok(()));
        assert_eq!(check_swap(None, true), Ok(()));
    }
}
