//! The alert engine's metrics.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, IntGaugeVec, Opts};

/// Alerts fired, by rule and severity.
pub(crate) const ALERTS_TOTAL: &str = "tollgate_alerts_total";
/// Window alerts currently firing, by rule.
pub(crate) const ALERTS_FIRING: &str = "tollgate_alerts_firing";
/// Alert deliveries by notifier and outcome (`sent`, `failed`, `dropped`).
pub(crate) const ALERT_NOTIFICATIONS_TOTAL: &str = "tollgate_alert_notifications_total";

pub(crate) struct AlertMetrics {
    pub(crate) alerts: IntCounterVec,
    pub(crate) firing: IntGaugeVec,
    pub(crate) notifications: IntCounterVec,
}

pub(crate) static METRICS: LazyLock<AlertMetrics> = LazyLock::new(|| {
    let m = AlertMetrics {
        alerts: IntCounterVec::new(
            Opts::new(ALERTS_TOTAL, "Alerts fired, by rule and severity."),
            &["rule", "severity"],
        )
        .expect("valid metric"),
        firing: IntGaugeVec::new(
            Opts::new(ALERTS_FIRING, "Window alerts currently firing, by rule."),
            &["rule"],
        )
        .expect("valid metric"),
        notifications: IntCounterVec::new(
            Opts::new(
                ALERT_NOTIFICATIONS_TOTAL,
                "Alert deliveries by notifier and outcome.",
            ),
            &["notifier", "outcome"],
        )
        .expect("valid metric"),
    };
    let r = crate::telemetry::registry();
    for c in [
        Box::new(m.alerts.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(m.firing.clone()),
        Box::new(m.notifications.clone()),
    ] {
        if let Err(error) = r.register(c) {
            tracing::warn!(%error, "Alert metric registration failed.");
        }
    }
    m
});
