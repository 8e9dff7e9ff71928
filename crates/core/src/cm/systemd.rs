//! The systemd cgroup driver's side of cgroup management: slices are transient units
//! started, changed and stopped through systemd's D-Bus API (as upstream's cgroup manager
//! does through libcontainer), so systemd owns them and never undoes what was set.

use std::sync::Mutex;

use zbus::blocking::Connection;
use zbus::zvariant::Value;

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// Unit resource properties of a slice, from the cgroup files it should have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SliceProperties {
    pub cpu_weight: Option<u64>,
    /// CPUQuotaPerSecUSec; u64::MAX = no quota.
    pub cpu_quota_per_sec_us: Option<u64>,
    pub cpu_period_us: Option<u64>,
    /// MemoryMax; u64::MAX = infinity.
    pub memory_max: Option<u64>,
    /// MemoryMin (MemoryQoS).
    pub memory_min: Option<u64>,
    /// TasksMax; u64::MAX = infinity.
    pub tasks_max: Option<u64>,
}

fn max_or(value: &str) -> Option<u64> {
    if value == "max" {
        Some(u64::MAX)
    } else {
        value.parse().ok()
    }
}

impl SliceProperties {
    /// The properties matching the v2 files among `files` (`cpu.weight`, `cpu.max`,
    /// `memory.max`, `pids.max`); v1-only files have no say.
    pub fn from_files(files: &[(String, String)]) -> Self {
        let mut p = SliceProperties::default();
        for (file, value) in files {
            match file.as_str() {
                "cpu.weight" => p.cpu_weight = value.parse().ok(),
                "cpu.max" => {
                    let mut parts = value.split_whitespace();
                    let quota = parts.next().and_then(max_or);
                    let period = parts.next().and_then(|v| v.parse::<u64>().ok());
                    if let (Some(quota), Some(period)) = (quota, period)
                        && period > 0
                    {
                        p.cpu_period_us = Some(period);
                        p.cpu_quota_per_sec_us = Some(if quota == u64::MAX {
                            u64::MAX
                        } else {
                            // systemd keeps the quota per second in whole percents of a
                            // CPU: round up to 10 ms, as runc does, so the children's
                            // quota fits.
                            let per_sec = quota.saturating_mul(1_000_000) / period;
                            per_sec.div_ceil(10_000) * 10_000
                        });
                    }
                }
                "memory.max" => p.memory_max = max_or(value),
                "memory.min" => p.memory_min = value.parse().ok(),
                "pids.max" => p.tasks_max = max_or(value),
                _ => {}
            }
        }
        p
    }

    fn values(&self) -> Vec<(&'static str, Value<'static>)> {
        let mut out: Vec<(&'static str, Value<'static>)> = Vec::new();
        let mut push = |name: &'static str, v: Option<u64>| {
            if let Some(v) = v {
                out.push((name, Value::U64(v)));
            }
        };
        push("CPUWeight", self.cpu_weight);
        push("CPUQuotaPerSecUSec", self.cpu_quota_per_sec_us);
        push("CPUQuotaPeriodUSec", self.cpu_period_us);
        push("MemoryMax", self.memory_max);
        push("MemoryMin", self.memory_min);
        push("TasksMax", self.tasks_max);
        out
    }
}

static CONNECTION: Mutex<Option<Connection>> = Mutex::new(None);

fn call<B>(method: &str, body: &B) -> Result<(), zbus::Error>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    let mut guard = crate::supervisor::lock(&CONNECTION, "systemd D-Bus connection");
    if guard.is_none() {
        *guard = Some(Connection::system()?);
    }
    let conn = guard.as_ref().expect("connected above");
    match conn.call_method(Some(DEST), PATH, Some(MANAGER), method, body) {
        Ok(_) => Ok(()),
        Err(err @ zbus::Error::MethodError(..)) => Err(err),
        Err(err) => {
            // The bus connection itself failed: connect again next time.
            *guard = None;
            Err(err)
        }
    }
}

fn is_error(err: &zbus::Error, name: &str) -> bool {
    matches!(err, zbus::Error::MethodError(n, _, _) if n.as_str() == name)
}

/// Start transient slice `unit` with `props`, or, when it exists already (started before,
/// or made implicitly by systemd as the parent of another unit), set `props` on it.
pub fn start_slice(unit: &str, props: &SliceProperties) -> Result<(), String> {
    let mut values = vec![
        (
            "Description",
            Value::from(format!("kubelet-rs slice {unit}")),
        ),
        ("DefaultDependencies", Value::from(false)),
        ("MemoryAccounting", Value::from(true)),
        ("CPUAccounting", Value::from(true)),
        ("IOAccounting", Value::from(true)),
        ("TasksAccounting", Value::from(true)),
    ];
    let resources = props.values();
    values.extend(resources.iter().cloned());
    let aux: Vec<(&str, Vec<(&str, Value)>)> = Vec::new();
    match call("StartTransientUnit", &(unit, "replace", &values, &aux)) {
        Ok(()) => Ok(()),
        Err(err) if is_error(&err, "org.freedesktop.systemd1.UnitExists") => {
            if resources.is_empty() {
                return Ok(());
            }
            call("SetUnitProperties", &(unit, true, &resources))
                .map_err(|e| format!("setting properties of systemd unit {unit}: {e}"))
        }
        Err(err) => Err(format!("starting systemd unit {unit}: {err}")),
    }
}

/// Stop slice `unit` (systemd then removes its cgroup); a unit that does not exist is
/// fine.
pub fn stop_slice(unit: &str) -> Result<(), String> {
    match call("StopUnit", &(unit, "replace")) {
        Ok(()) => {}
        Err(err) if is_error(&err, "org.freedesktop.systemd1.NoSuchUnit") => {}
        Err(err) => return Err(format!("stopping systemd unit {unit}: {err}")),
    }
    // A failed unit would stay loaded: forget it (errors mean nothing to reset).
    let _ = call("ResetFailedUnit", &(unit,));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn properties_follow_the_v2_files() {
        let p = SliceProperties::from_files(&files(&[
            ("cpu.shares", "204"),
            ("cpu.weight", "9"),
            ("cpu.max", "20000 100000"),
            ("memory.max", "67108864"),
            ("memory.min", "33554432"),
            ("pids.max", "max"),
        ]));
        assert_eq!(
            p,
            SliceProperties {
                cpu_weight: Some(9),
                cpu_quota_per_sec_us: Some(200_000),
                cpu_period_us: Some(100_000),
                memory_max: Some(64 << 20),
                memory_min: Some(32 << 20),
                tasks_max: Some(u64::MAX),
            }
        );
        // 150m over 50 ms: 7500 µs per period = 150 ms per second; 15 µs rounds up to 10 ms.
        let p = SliceProperties::from_files(&files(&[("cpu.max", "7500 50000")]));
        assert_eq!(p.cpu_quota_per_sec_us, Some(150_000));
        let p = SliceProperties::from_files(&files(&[("cpu.max", "1001 100000")]));
        assert_eq!(p.cpu_quota_per_sec_us, Some(20_000));
        let p = SliceProperties::from_files(&files(&[("cpu.max", "max 100000")]));
        assert_eq!(p.cpu_quota_per_sec_us, Some(u64::MAX));
        assert!(
            SliceProperties::from_files(&files(&[("cpu.shares", "2")]))
                .values()
                .is_empty()
        );
    }
}
