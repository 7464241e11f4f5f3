//! tollgate's own telemetry: the Prometheus registry every component registers its metrics in,
//! and the admin HTTP listener.

pub mod admin;
pub mod cardinality;
pub mod llm_metrics;
pub mod recent;
pub mod status;

use std::sync::LazyLock;

static REGISTRY: LazyLock<prometheus::Registry> = LazyLock::new(prometheus::Registry::new);

/// The process-wide registry served on `/metrics`. Components register their typed metric structs
/// here once (in a `LazyLock`), so each module owns its metric definitions.
pub fn registry() -> &'static prometheus::Registry {
    &REGISTRY
}

/// `[admin]`: the admin HTTP listener.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Listen address for `/healthz`, `/readyz`, `/metrics`, `/api/v1/…` and the status page.
    #[serde(default = "default_admin_listen")]
    pub listen: String,
}

fn default_admin_listen() -> String {
    "127.0.0.1:9464".into()
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: default_admin_listen(),
        }
    }
}
