//! kubelet flags and the KubeletConfiguration file (kubelet.config.k8s.io/v1beta1),
//! drop-in compatible with the upstream kubelet (Kubernetes v1.35).
//!
//! [`load`] turns the command line into [`Settings`], the way upstream does:
//!
//! 1. parse every upstream flag (unknown flags and bad values are errors);
//! 2. start from the `--config` file (plus `--config-dir` drop-ins) with the
//!    file defaults, or, without a config file, from the defaults of the
//!    command-line era (anonymous auth on, `AlwaysAllow`, read-only port 10255);
//! 3. apply the flags given on the command line on top (flags win);
//! 4. validate everything, collecting all errors.
//!
//! INTERFACE CONTRACT (used by the kubelet binary; keep these names and shapes):
//! - `load(args) -> Result<Loaded, ConfigError>`; `ConfigError::Clap(clap::Error)` for
//!   --help/--version/usage errors (the binary calls `.exit()` on it).
//! - `Loaded { settings: Settings, warnings: Vec<String> }` (deprecation notices to print).
//! - `Settings { flags: KubeletFlags, config: KubeletConfiguration, node_name: String }`.

mod defaults;
mod error;
pub mod feature_gates;
pub mod fields;
mod file;
mod flags;
pub mod go_duration;
mod kubelet_flags;
mod node_name;
mod quantity;
mod types;
mod validate;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use error::ConfigError;
pub use flags::KUBERNETES_VERSION;
pub use kubelet_flags::KubeletFlags;
pub use types::*;

use flags::spec::Support;
use flags::values::FlagValue;

/// The kubelet's effective settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Flag-only settings.
    pub flags: KubeletFlags,
    /// The effective configuration (file, defaults and flags combined); what
    /// `/configz` serves as `{"kubeletconfig": ...}`.
    pub config: KubeletConfiguration,
    /// The node's name: `--hostname-override` or the host name, lower-cased.
    pub node_name: String,
}

impl Settings {
    /// Whether to serve the kubelet API: `enableServer`, except in runonce
    /// mode, where (as in the upstream kubelet before runonce was removed)
    /// the static pods are started once and the process exits without
    /// serving anything.
    pub fn serve_kubelet_api(&self) -> bool {
        self.config.enable_server && !self.flags.runonce
    }
}

/// [`load`]'s result: the settings and notices for the operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub settings: Settings,
    /// Deprecation notices (upstream wording) and "accepted but has no
    /// effect" notices, in command-line order; the binary prints them.
    pub warnings: Vec<String>,
}

/// Parses the command line (`args[0]` is the program name), reads the
/// config file(s), applies defaults and flags, and validates the result.
///
/// `--runonce` / `runOnce: true` is accepted although upstream v1.35 rejects
/// it: kubelet-rs runs the static pods once and exits, and does not start the
/// kubelet server in that mode (upstream documented runonce as exclusive with
/// `--enable-server`); see [`Settings::serve_kubelet_api`]. A warning says so.
pub fn load<I, T>(args: I) -> Result<Loaded, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = flags::parse(args)?;
    let given = flags::given(&matches);
    let mut warnings = Vec::new();
    let mut errors = Vec::new();

    if let Some(version) = given.iter().find(|g| g.spec.name == "version")
        && let Some(FlagValue::Str(value)) = version.values.last()
    {
        match value.as_str() {
            "false" => {}
            "true" | "raw" => return Err(ConfigError::Clap(flags::version_error())),
            other => warnings.push(format!(
                "flag --version={other} (overriding the reported version) is accepted but has no effect in kubelet-rs"
            )),
        }
    }

    // Flag-only settings first: they say where the config file is.
    let mut kubelet_flags = KubeletFlags::default();
    let mut scratch = KubeletConfiguration::default();
    for g in &given {
        flags::apply::apply(g.spec.name, &g.values, &mut scratch, &mut kubelet_flags);
    }

    let (mut config, doc) = load_config(&kubelet_flags)?;
    for g in &given {
        flags::apply::apply(g.spec.name, &g.values, &mut config, &mut kubelet_flags);
        if let Some(notice) = g.spec.deprecated {
            warnings.push(format!(
                "Flag --{} has been deprecated, {notice}",
                g.spec.name
            ));
        }
        if g.spec.support == Support::NoEffect {
            warnings.push(format!(
                "flag --{} is accepted but has no effect in kubelet-rs",
                g.spec.name
            ));
        }
    }
    defaults::apply_post_flag_defaults(&mut config);

    if let Some(node_ip) = given.iter().find(|g| g.spec.name == "node-ip")
        && let Some(FlagValue::Str(value)) = node_ip.values.last()
    {
        match validate::parse_node_ips(value) {
            Ok(ips) => kubelet_flags.node_ip = ips,
            Err(e) => errors.push(e),
        }
    }
    kubelet_flags.runonce = config.run_once;
    kubelet_flags.verbosity = u8::try_from(config.logging.verbosity).unwrap_or(u8::MAX);
    if config.run_once {
        warnings.push(
            "runonce mode (--runonce / runOnce) is rejected by upstream kubelet v1.35; kubelet-rs starts the static pods once and exits, and does not serve the kubelet API in this mode".to_string(),
        );
    }

    // Config file fields kubelet-rs does not act on (flags were warned about above).
    let file_defaults = file::decode(&Value::Object(Default::default()), Path::new("<defaults>"))?;
    let (field_warnings, field_errors) = fields::check(doc.as_ref(), &config, &file_defaults);
    warnings.extend(field_warnings);
    errors.extend(field_errors);
    errors.extend(validate::validate_config(&config));
    errors.extend(validate::validate_flags(&kubelet_flags));
    if !errors.is_empty() {
        return Err(ConfigError::Invalid(errors));
    }

    let node_name = node_name::node_name(kubelet_flags.hostname_override.as_deref())
        .map_err(ConfigError::NodeName)?;
    Ok(Loaded {
        settings: Settings {
            flags: kubelet_flags,
            config,
            node_name,
        },
        warnings,
    })
}

/// Builds the configuration before flags: the `--config` file and
/// `--config-dir` drop-ins merged, decoded and defaulted; with the merged document
/// when there was a file.
fn load_config(f: &KubeletFlags) -> Result<(KubeletConfiguration, Option<Value>), ConfigError> {
    let mut doc = Value::Object(Default::default());
    let mut source: PathBuf = PathBuf::from("<defaults>");
    if let Some(path) = &f.config_file {
        doc = file::load_document(path)?;
        source = path.clone();
    }
    if let Some(dir) = &f.config_dir {
        for drop_in in file::drop_in_files(dir)? {
            file::merge_patch(&mut doc, file::load_document(&drop_in)?);
        }
        if f.config_file.is_none() {
            source = dir.clone();
        }
    }
    let mut config = file::decode(&doc, Path::new(&source))?;
    if f.config_file.is_none() {
        defaults::apply_legacy_flag_defaults(&mut config, &doc);
    }
    let from_file = f.config_file.is_some() || f.config_dir.is_some();
    Ok((config, from_file.then_some(doc)))
}
