//! `[[exporters]]` configuration.

use serde::Deserialize;

/// One `[[exporters]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExporterConfig {
    /// A unique name (a metric label).
    pub name: String,
    /// `otlp_grpc`, `otlp_http`, `langfuse`, `tempo`, `honeycomb`, `file` or `console`.
    pub kind: String,
}
