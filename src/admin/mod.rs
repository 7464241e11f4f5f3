//! The read side, on its own top floor: the admin listener (`/healthz`, `/readyz`, `/metrics`),
//! the status page, and the task API over HTTP and gRPC (`GetTask`, `WatchAlerts`). It reads
//! typed snapshots from the components (task tracker, alert engine, exporters, recent spend);
//! nothing below imports it.

pub mod budget_grpc;
pub mod server;
pub mod status;
pub mod task_grpc;
pub mod task_http;

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

/// A task type as the read side shows it: `unknown` when the task has none, the same word the
/// metric labels use (`task_type="unknown"`), so the API, the page and `/metrics` agree.
pub(crate) fn shown_task_type(task_type: &str) -> String {
    if task_type.is_empty() {
        crate::telemetry::cardinality::UNKNOWN.to_owned()
    } else {
        task_type.to_owned()
    }
}
