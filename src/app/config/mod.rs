//! The configuration root: the whole file as one [`Config`], its cross-section validation and
//! reload. It sits next to the wiring (`app`) because it composes every component's section;
//! the components themselves only use the leaf toolkit in [`crate::config`] (Secret, durations,
//! `${env:…}` expansion, issues with key path and line).
//!
//! Loading is parse → expand → deserialize → [`Config::validate`] (pure, no I/O). Every problem is
//! an [`Issue`] naming the key path (`exporters[1].endpoint`) and its line and column.
//!
//! To add a section: add a field with `#[serde(default)]` to [`Config`]; if it needs checks serde
//! cannot express, give its struct a `fn validate(&self) -> Vec<Issue>` (paths like
//! `pricing.models[2].name`, built with [`Issue::invalid`]) and call it from `validate.rs`. Lines
//! and columns are filled in from the path automatically.

mod validate;
mod watch;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{
    locate_issues, parse_recovering, ConfigError, EnvSource, Issue, LogConfig, ProcessEnv, Result,
};
pub use watch::{watch, ReloadConfig, ReloadMetrics};

/// The default config file path.
pub const DEFAULT_PATH: &str = "./config.toml";

/// The environment variable naming the config file (the `--config` flag wins).
pub const ENV_CONFIG: &str = "TOLLGATE_CONFIG";

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[receivers]`: where OTLP comes in.
    #[serde(default)]
    pub receivers: crate::receiver::ReceiversConfig,
    /// `[admin]`: the admin listener (health, metrics, API).
    #[serde(default)]
    pub admin: crate::admin::AdminConfig,
    /// `[pipeline]`: memory budget and processing.
    #[serde(default)]
    pub pipeline: crate::pipeline::PipelineConfig,
    /// `[[exporters]]`: where spans go.
    #[serde(default)]
    pub exporters: Vec<crate::export::ExporterConfig>,
    /// `[log]`: tollgate's own logs.
    #[serde(default)]
    pub log: LogConfig,
    /// `[reload]`: how the config file is watched for changes.
    #[serde(default)]
    pub reload: ReloadConfig,
    /// `[pricing]`: the price table and how costs are written.
    #[serde(default)]
    pub pricing: crate::llm::PricingConfig,
    /// `[tasks]`: how agent tasks are identified and tracked.
    #[serde(default)]
    pub tasks: crate::task::TasksConfig,
    /// `[alerts]`: alert rules and notifiers.
    #[serde(default)]
    pub alerts: crate::alert::AlertsConfig,
    /// `[metrics]`: labels and cardinality caps of the LLM metrics.
    #[serde(default)]
    pub metrics: crate::telemetry::llm_metrics::MetricsConfig,
    /// `[[budgets]]`: spend limits per key and calendar period.
    #[serde(default)]
    pub budgets: Vec<crate::budget::BudgetConfig>,
    /// `[storage]`: the data directory (disk queue defaults).
    #[serde(default)]
    pub storage: crate::storage::StorageConfig,
    /// `[state]`: where call claims, task totals, alert markers and budget totals live.
    #[serde(default)]
    pub state: crate::state::StateConfig,
}

impl Config {
    /// Reads, parses (expanding `${env:…}` from the process environment) and validates `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_str_with_env(&text, &ProcessEnv).map_err(|e| with_file(e, path))
    }

    /// Parses and validates `text`, expanding `${env:…}` from `env`. Every problem is reported:
    /// after a parse problem the rest of the file is still parsed and validated (a validation
    /// problem at or under a key already reported is left out, as is one about the whole
    /// section when a key in it was reported: it may only follow from the default that replaced
    /// the faulty value).
    pub fn from_str_with_env(text: &str, env: &dyn EnvSource) -> Result<Self> {
        let invalid = |issues| ConfigError::Invalid { file: None, issues };
        let (config, mut issues) = parse_recovering::<Self>(text, env);
        let Some(mut config) = config else {
            issues.sort_by_key(|i| i.location.map_or((usize::MAX, 0), |l| (l.line, l.column)));
            return Err(invalid(issues));
        };
        validate::explain_unknown_exporter_keys(&config, &mut issues);
        config.apply_storage_defaults();
        if let Err(mut found) = config.validate() {
            found.retain(|v| !issues.iter().any(|p| overlaps(&v.path, &p.path)));
            locate_issues(text, &mut found);
            issues.extend(found);
        }
        // In the order of the file (problems without a line last).
        issues.sort_by_key(|i| i.location.map_or((usize::MAX, 0), |l| (l.line, l.column)));
        if issues.is_empty() {
            Ok(config)
        } else {
            Err(invalid(issues))
        }
    }

    /// Gives every disk queue without a `path` its default under `[storage] dir`, and the disk
    /// state store `<dir>/state`.
    pub fn apply_storage_defaults(&mut self) {
        if self.state.backend == crate::state::Backend::Disk && self.state.path.is_none() {
            self.state.path = self.storage.dir.as_ref().map(|d| d.join("state"));
        }
        for e in &mut self.exporters {
            if e.queue.kind == crate::export::config::QueueKind::Disk && e.queue.path.is_none() {
                e.queue.path = self.storage.queue_dir(&e.name);
            }
        }
    }

    /// Checks what serde cannot: addresses parse, names are unique, values are in range.
    /// Pure: touches no files or sockets. Returns every problem found.
    pub fn validate(&self) -> std::result::Result<(), Vec<Issue>> {
        let issues = validate::all(self);
        if issues.is_empty() {
            Ok(())
        } else {
            Err(issues)
        }
    }
}

/// True when one key path is the other or lies under it (`a.b` and `a.b[1].c`).
fn overlaps(a: &str, b: &str) -> bool {
    let under = |path: &str, prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(['.', '[']))
    };
    under(a, b) || under(b, a)
}

/// Records which file the problems of `error` are in.
fn with_file(error: ConfigError, path: &Path) -> ConfigError {
    match error {
        ConfigError::Invalid { issues, .. } => ConfigError::Invalid {
            file: Some(PathBuf::from(path)),
            issues,
        },
        other => other,
    }
}
