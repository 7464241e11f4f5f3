//! The configuration: one TOML file, `${env:VAR}` expansion, strict validation, reload.
//!
//! Each component owns the struct of its own section (`receiver::ReceiversConfig`,
//! `export::ExporterConfig`, …); this module composes them into [`Config`] and loads the file.

mod secret;

pub use secret::Secret;

use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[receivers]`: where OTLP comes in.
    #[serde(default)]
    pub receivers: crate::receiver::ReceiversConfig,
    /// `[admin]`: the admin listener (health, metrics, API).
    #[serde(default)]
    pub admin: crate::telemetry::AdminConfig,
    /// `[pipeline]`: memory budget and processing.
    #[serde(default)]
    pub pipeline: crate::pipeline::PipelineConfig,
    /// `[[exporters]]`: where spans go.
    #[serde(default)]
    pub exporters: Vec<crate::export::ExporterConfig>,
}
