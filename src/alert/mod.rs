//! Alert rules over spans, tasks and rolling windows, and the notifiers that deliver alerts.
//!
//! [`AlertEngine::observe`] is called by the pipeline for every span: it adds the span to its
//! task ([`crate::task::TaskTracker`]), judges span, task and window rules, and returns the bytes
//! to append to the span (the task roll-up on a root span, a `tollgate.alert` event on the span
//! that fired). Alerts fan out to a broadcast channel (the gRPC `WatchAlerts` stream), a
//! structured log line, metrics, and each `[[alerts.notify]]` notifier's own bounded queue, so a
//! dead receiver never blocks the pipeline. Rules reload without restart
//! ([`AlertEngine::reload`]).
//!
//! Wiring (inside a tokio runtime):
//! ```text
//! let tracker = Arc::new(TaskTracker::new(&cfg.tasks, Arc::new(SystemClock)));
//! tracker.on_ended(|s| { /* observe cost / llm_calls histograms */ });
//! let engine = Arc::new(AlertEngine::new(&cfg.alerts, tracker.clone())?);
//! tokio::spawn(tracker.clone().run_sweeper(cancel.clone()));   // ends tasks
//! tokio::spawn(engine.clone().run(cancel.clone()));            // window ticks
//! admin_router.merge(admin::task_http::router(tracker.clone()));      // HTTP API
//! grpc.add_service(admin::task_grpc::TaskService::server(engine.clone()));
//! // per span: rules.extract_attributes(&span, &mut attrs); fill SpanInput;
//! //           let extra = engine.observe(&input); append `extra` to the span's bytes.
//! ```

mod config;
mod engine;
mod event;
mod log_budget;
mod measure;
mod metrics;
pub mod notify;
mod rule;
mod window;

pub use config::{AlertsConfig, NotifyConfig, NotifyKind, RuleConfig};
pub use engine::{AlertEngine, TaskCandidate};
pub use event::{Alert, AlertState, BudgetAlert};
pub(crate) use rule::{compile_where, Match};
pub use rule::{AlertRules, Metric, Op, Scope};

/// A configuration error, naming the rule or notifier at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlertsError {
    /// A rule is invalid.
    #[error("alert rule {rule:?}: {reason}")]
    Rule {
        /// Its position in `[[alerts.rules]]` (0-based).
        index: usize,
        /// The key at fault, when one is.
        key: Option<&'static str>,
        /// The rule's name.
        rule: String,
        /// What is wrong.
        reason: String,
    },
    /// A notifier is invalid.
    #[error("alert notifier #{index} ({kind}): {reason}")]
    Notify {
        /// Its position in `[[alerts.notify]]` (0-based).
        index: usize,
        /// Its kind.
        kind: String,
        /// What is wrong.
        reason: String,
    },
    /// A setting of `[alerts]` itself is invalid.
    #[error("[alerts]: {0}")]
    Alerts(String),
}

impl AlertsError {
    /// The key path of what is at fault, like `alerts.rules[2].op` or `alerts.notify[0]`.
    pub fn path(&self) -> String {
        match self {
            AlertsError::Rule { index, key, .. } => match key {
                Some(key) => format!("alerts.rules[{index}].{key}"),
                None => format!("alerts.rules[{index}]"),
            },
            AlertsError::Notify { index, .. } => format!("alerts.notify[{index}]"),
            AlertsError::Alerts(_) => "alerts".into(),
        }
    }
}

/// Checks `[alerts]` purely (no I/O, no runtime): every rule compiles and every notifier is valid.
pub fn validate(cfg: &AlertsConfig) -> Result<(), Vec<AlertsError>> {
    let mut errors = Vec::new();
    if let Err(e) = AlertRules::compile(&cfg.rules, None) {
        errors.extend(e);
    }
    if let Err(e) = notify::validate(&cfg.notify) {
        errors.extend(e);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
