//! Command-line parsing with Go pflag semantics on top of clap:
//! `--flag=value` and `--flag value`; booleans as `--flag`, `--flag=true` or
//! `--flag=false` (a separate `false` argument is an error, as upstream);
//! `-v=4`, `-v 4`, `-v4`, `--v=4`; the last occurrence of a scalar flag wins;
//! list and map flags accumulate; `_` in flag names is read as `-`
//! (upstream's word-separator normalisation).

pub(crate) mod apply;
pub(crate) mod spec;
pub(crate) mod values;

use std::ffi::OsString;

use clap::builder::ValueParser;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

use spec::{FLAGS, FlagSpec, Support};
use values::FlagValue;

/// The Kubernetes release whose kubelet command line and configuration this
/// crate follows; printed by `--version`.
pub const KUBERNETES_VERSION: &str = "v1.35.0";

/// Builds the clap command accepting every upstream kubelet flag.
pub(crate) fn command() -> Command {
    FLAGS.iter().fold(
        Command::new("kubelet")
            .about(
                "kubelet-rs: the Kubernetes node agent.\n\n\
                 Flags given on the command line override the --config file; \
                 flags marked [deprecated] should be set in that file instead.",
            )
            .disable_version_flag(true)
            .args_override_self(true)
            .max_term_width(100),
        |cmd, spec| cmd.arg(arg_for(spec)),
    )
}

fn arg_for(spec: &FlagSpec) -> Arg {
    let mut help = spec.help.to_string();
    if spec.deprecated.is_some() {
        help.push_str(" [deprecated]");
    }
    if spec.support == Support::NoEffect {
        help.push_str(" [no effect in kubelet-rs]");
    }
    let mut arg = Arg::new(spec.name)
        .long(spec.name)
        .value_name(spec.kind.value_name())
        .value_parser(ValueParser::new(spec.kind.parser()))
        .help(help);
    if spec.name == "v" {
        arg = arg.short('v');
    }
    if spec.kind.is_bool_like() {
        arg.num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true")
            .action(ArgAction::Set)
    } else {
        arg.num_args(1)
            .allow_hyphen_values(true)
            .action(if spec.kind.accumulates() {
                ArgAction::Append
            } else {
                ArgAction::Set
            })
    }
}

/// Rewrites `--some_flag[=v]` to `--some-flag[=v]`; stops at `--`.
fn normalize_args<I, T>(args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut done = false;
    args.into_iter()
        .map(Into::into)
        .map(|arg: OsString| {
            if done {
                return arg;
            }
            let Some(text) = arg.to_str() else {
                return arg;
            };
            if text == "--" {
                done = true;
                return arg;
            }
            match text.strip_prefix("--") {
                Some(body) if body.contains('_') => {
                    let (name, value) = match body.split_once('=') {
                        Some((name, value)) => (name, Some(value)),
                        None => (body, None),
                    };
                    let mut fixed = format!("--{}", name.replace('_', "-"));
                    if let Some(value) = value {
                        fixed.push('=');
                        fixed.push_str(value);
                    }
                    OsString::from(fixed)
                }
                _ => arg,
            }
        })
        .collect()
}

/// Parses the command line (the first item is the program name).
pub(crate) fn parse<I, T>(args: I) -> Result<ArgMatches, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    command().try_get_matches_from(normalize_args(args))
}

/// A flag given on the command line, with its values in order.
pub(crate) struct Given<'a> {
    pub spec: &'static FlagSpec,
    pub values: Vec<&'a FlagValue>,
    /// Position of the first occurrence, to report notices in command-line order.
    pub position: usize,
}

/// The flags explicitly given on the command line, in command-line order.
pub(crate) fn given(matches: &ArgMatches) -> Vec<Given<'_>> {
    let mut given: Vec<Given<'_>> = FLAGS
        .iter()
        .filter(|spec| matches.value_source(spec.name) == Some(ValueSource::CommandLine))
        .map(|spec| Given {
            spec,
            values: matches
                .get_many::<FlagValue>(spec.name)
                .map(Iterator::collect)
                .unwrap_or_default(),
            position: matches
                .indices_of(spec.name)
                .and_then(|mut indices| indices.next())
                .unwrap_or(usize::MAX),
        })
        .collect();
    given.sort_by_key(|g| g.position);
    given
}

/// The error whose `exit()` prints `Kubernetes <version>` and exits 0.
pub(crate) fn version_error() -> clap::Error {
    match Command::new("Kubernetes")
        .version(KUBERNETES_VERSION)
        .disable_help_flag(true)
        .try_get_matches_from(["Kubernetes", "--version"])
    {
        Err(error) => error,
        Ok(_) => clap::Error::new(clap::error::ErrorKind::DisplayVersion),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn values_of(args: &[&str], name: &str) -> Vec<FlagValue> {
        let matches = parse(std::iter::once("kubelet").chain(args.iter().copied())).unwrap();
        given(&matches)
            .into_iter()
            .find(|g| g.spec.name == name)
            .map(|g| g.values.into_iter().cloned().collect())
            .unwrap_or_default()
    }

    fn error_of(args: &[&str]) -> clap::Error {
        match parse(std::iter::once("kubelet").chain(args.iter().copied())) {
            Err(e) => e,
            Ok(_) => panic!("expected {args:?} to fail"),
        }
    }

    #[test]
    fn the_command_is_well_formed() {
        command().debug_assert();
    }

    #[test]
    fn both_value_syntaxes_work() {
        assert_eq!(
            values_of(&["--max-pods=20"], "max-pods"),
            [FlagValue::Int(20)]
        );
        assert_eq!(
            values_of(&["--max-pods", "20"], "max-pods"),
            [FlagValue::Int(20)]
        );
        assert_eq!(
            values_of(&["--oom-score-adj", "-999"], "oom-score-adj"),
            [FlagValue::Int(-999)]
        );
    }

    #[test]
    fn booleans_follow_pflag() {
        assert_eq!(
            values_of(&["--fail-swap-on"], "fail-swap-on"),
            [FlagValue::Bool(true)]
        );
        assert_eq!(
            values_of(&["--fail-swap-on=false"], "fail-swap-on"),
            [FlagValue::Bool(false)]
        );
        assert_eq!(
            values_of(&["--fail-swap-on=0"], "fail-swap-on"),
            [FlagValue::Bool(false)]
        );
        let err = error_of(&["--fail-swap-on", "false"]);
        assert_eq!(err.kind(), ErrorKind::UnknownArgument);
        assert!(err.to_string().contains("'false'"));
        let err = error_of(&["--fail-swap-on=maybe"]);
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
        assert!(err.to_string().contains("--fail-swap-on"));
    }

    #[test]
    fn verbosity_forms() {
        for args in [
            &["-v=4"][..],
            &["-v", "4"],
            &["-v4"],
            &["--v=4"],
            &["--v", "4"],
        ] {
            assert_eq!(values_of(args, "v"), [FlagValue::Int(4)], "{args:?}");
        }
    }

    #[test]
    fn last_scalar_wins_and_lists_accumulate() {
        assert_eq!(
            values_of(&["--port=1", "--port=2"], "port"),
            [FlagValue::Int(2)]
        );
        assert_eq!(
            values_of(
                &[
                    "--manifest-url-header=a:b",
                    "--manifest-url-header",
                    "c:d,e:f"
                ],
                "manifest-url-header"
            ),
            [
                FlagValue::Multimap(vec![("a".into(), "b".into())]),
                FlagValue::Multimap(vec![("c".into(), "d".into()), ("e".into(), "f".into())]),
            ]
        );
    }

    #[test]
    fn unknown_flags_and_bad_values_are_named() {
        let err = error_of(&["--no-such-flag"]);
        assert_eq!(err.kind(), ErrorKind::UnknownArgument);
        assert!(err.to_string().contains("--no-such-flag"));
        let err = error_of(&["--file-check-frequency=abc"]);
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
        let text = err.to_string();
        assert!(text.contains("--file-check-frequency"), "{text}");
        assert!(text.contains("time: invalid duration \"abc\""), "{text}");
        let err = error_of(&["--port=99999999999"]);
        assert!(err.to_string().contains("out of range"));
        let err = error_of(&["--address=localhost"]);
        assert!(err.to_string().contains("not a valid IP address"));
    }

    #[test]
    fn positional_arguments_are_rejected() {
        assert_eq!(error_of(&["run"]).kind(), ErrorKind::UnknownArgument);
    }

    #[test]
    fn underscores_in_names_are_normalized() {
        assert_eq!(
            values_of(&["--pod_manifest_path=/etc/k_8s"], "pod-manifest-path"),
            [FlagValue::Str("/etc/k_8s".into())]
        );
    }

    #[test]
    fn help_and_version_are_clap_display_errors() {
        assert_eq!(error_of(&["--help"]).kind(), ErrorKind::DisplayHelp);
        assert_eq!(error_of(&["-h"]).kind(), ErrorKind::DisplayHelp);
        let version = version_error();
        assert_eq!(version.kind(), ErrorKind::DisplayVersion);
        assert_eq!(
            version.to_string(),
            format!("Kubernetes {KUBERNETES_VERSION}\n")
        );
    }

    #[test]
    fn given_is_in_command_line_order() {
        let matches = parse([
            "kubelet",
            "--sync-frequency=1s",
            "--address=::",
            "--sync-frequency=2s",
        ])
        .unwrap();
        let names: Vec<_> = given(&matches).iter().map(|g| g.spec.name).collect();
        assert_eq!(names, ["address", "sync-frequency"]);
    }
}
