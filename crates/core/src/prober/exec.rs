//! Exec probes: the command runs in the container through CRI ExecSync with the probe's
//! timeout. Exit code 0 is success; a timeout (containerd answers DEADLINE_EXCEEDED) is a
//! failure; a runtime error is a probe error whose result is thrown away.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ExecAction};

use super::{Outcome, ProbeError, Target, limit_output};
use crate::runtime::cri::{CriClient, CriError};
use crate::runtime::envvars;

pub struct ExecProbe {
    container_id: String,
    command: Vec<String>,
    timeout: Duration,
}

/// `$(VAR)` expansion with only the container's literal env values, as upstream
/// (ExpandContainerCommandOnlyStatic): probes do not see downward-API values.
pub fn expand_static(command: &[String], container: &Container) -> Vec<String> {
    let env = container.env.as_deref().unwrap_or_default();
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|e| e.name == name && e.value_from.is_none())
            .map(|e| e.value.clone().unwrap_or_default())
    };
    command
        .iter()
        .map(|s| envvars::expand(s, &lookup))
        .collect()
}

impl ExecProbe {
    pub fn new(action: &ExecAction, target: &Target, timeout: Duration) -> ExecProbe {
        let command = action.command.as_deref().unwrap_or_default();
        ExecProbe {
            container_id: target.container_id.clone(),
            command: expand_static(command, &target.container),
            timeout,
        }
    }

    pub async fn run(&self, cri: &CriClient) -> Result<Outcome, ProbeError> {
        let secs = self.timeout.as_secs().max(1) as i64;
        match cri
            .exec_sync(&self.container_id, self.command.clone(), secs)
            .await
        {
            Ok(resp) => {
                let mut out = resp.stdout;
                out.extend_from_slice(&resp.stderr);
                let out = limit_output(String::from_utf8_lossy(&out).into_owned());
                Ok(if resp.exit_code == 0 {
                    Outcome::Success(out)
                } else {
                    Outcome::Failure(out)
                })
            }
            Err(err) if is_timeout(&err) => Ok(Outcome::Failure(format!(
                "command {:?} timed out",
                self.command.join(" ")
            ))),
            Err(err) => Err(ProbeError(err.to_string())),
        }
    }
}

fn is_timeout(err: &CriError) -> bool {
    matches!(err, CriError::Timeout { .. }) || err.code() == Some(tonic::Code::DeadlineExceeded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector};

    #[test]
    fn only_static_env_is_expanded() {
        let c = Container {
            name: "c".into(),
            env: Some(vec![
                EnvVar {
                    name: "A".into(),
                    value: Some("alpha".into()),
                    value_from: None,
                },
                EnvVar {
                    name: "NODE".into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "spec.nodeName".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                },
            ]),
            ..Default::default()
        };
        let cmd = vec!["echo".into(), "$(A)-$(NODE)-$$(A)".into()];
        assert_eq!(
            expand_static(&cmd, &c),
            vec!["echo".to_string(), "alpha-$(NODE)-$(A)".to_string()]
        );
    }
}
