//! Notifiers: each `[[alerts.notify]]` entry gets its own bounded queue and task, so a slow or
//! dead receiver never blocks the pipeline (a full queue drops the alert, counted).

mod alertmanager;
mod retry;
mod webhook;

use std::sync::Arc;

use tokio::sync::mpsc;

pub use retry::{classify, Outcome};
pub use webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER};

use super::metrics::METRICS;
use super::{Alert, ConfigError, NotifyConfig, NotifyKind};

/// Errors of one delivery.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The receiver answered with an error status.
    #[error("receiver answered {status}")]
    Status {
        /// The HTTP status.
        status: u16,
    },
    /// The request failed (connect, timeout, ...).
    #[error("request failed: {0}")]
    Request(#[from] reqwest::Error),
}

#[derive(Debug)]
struct Handle {
    name: String,
    rules: Vec<String>,
    tx: mpsc::Sender<Arc<Alert>>,
}

/// The running notifiers. Dropping it closes their queues; each task delivers what is queued
/// and exits.
#[derive(Debug, Default)]
pub(crate) struct Notifiers {
    handles: Vec<Handle>,
}

/// Checks the notifier configs without touching the network.
pub(crate) fn validate(cfgs: &[NotifyConfig]) -> Result<(), Vec<ConfigError>> {
    let mut errors = Vec::new();
    for (index, c) in cfgs.iter().enumerate() {
        let err = |reason: String| ConfigError::Notify {
            index,
            kind: c.kind.as_str().to_string(),
            reason,
        };
        if c.url.is_empty() {
            errors.push(err("needs at least one url".into()));
        }
        for u in &c.url {
            match reqwest::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "http" | "https") => {}
                Ok(p) => errors.push(err(format!("url {u:?}: unsupported scheme {}", p.scheme()))),
                Err(e) => errors.push(err(format!("url {u:?}: {e}"))),
            }
        }
        if c.secret.is_some() && c.kind != NotifyKind::Webhook {
            errors.push(err("`secret` only applies to kind webhook".into()));
        }
        if c.queue_size == 0 {
            errors.push(err("queue_size must be at least 1".into()));
        }
        if c.max_attempts == 0 {
            errors.push(err("max_attempts must be at least 1".into()));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

impl Notifiers {
    /// Spawns one task per notifier on `rt`.
    pub(crate) fn start(
        cfgs: &[NotifyConfig],
        rt: &tokio::runtime::Handle,
    ) -> Result<Notifiers, Vec<ConfigError>> {
        validate(cfgs)?;
        // reqwest is built without a bundled crypto provider; tollgate uses ring.
        // An error means a provider is already installed, which is fine.
        rustls::crypto::ring::default_provider()
            .install_default()
            .ok();
        let mut handles = Vec::new();
        for (index, c) in cfgs.iter().enumerate() {
            let client = reqwest::Client::builder()
                .timeout(c.timeout)
                .build()
                .map_err(|e| {
                    vec![ConfigError::Notify {
                        index,
                        kind: c.kind.as_str().into(),
                        reason: format!("cannot build HTTP client: {e}"),
                    }]
                })?;
            let (tx, rx) = mpsc::channel(c.queue_size);
            let name = c.display_name();
            match c.kind {
                NotifyKind::Alertmanager => {
                    rt.spawn(alertmanager::run(c.clone(), name.clone(), client, rx));
                }
                NotifyKind::Webhook => {
                    rt.spawn(webhook::run(c.clone(), name.clone(), client, rx));
                }
            }
            handles.push(Handle {
                name,
                rules: c.rules.clone(),
                tx,
            });
        }
        Ok(Notifiers { handles })
    }

    /// Queues the alert for every notifier that wants it; never waits.
    pub(crate) fn dispatch(&self, alert: &Arc<Alert>) {
        for h in &self.handles {
            if !h.rules.is_empty() && !h.rules.iter().any(|r| *r == alert.rule) {
                continue;
            }
            if let Err(e) = h.tx.try_send(alert.clone()) {
                METRICS
                    .notifications
                    .with_label_values(&[h.name.as_str(), "dropped"])
                    .inc();
                let reason = match e {
                    mpsc::error::TrySendError::Full(_) => "queue full",
                    mpsc::error::TrySendError::Closed(_) => "notifier stopped",
                };
                tracing::warn!(notifier = %h.name, rule = %alert.rule, reason, "Alert dropped; the notifier cannot keep up.");
            }
        }
    }
}

/// POSTs `body` to `url`, retrying 5xx and network errors with exponential backoff.
pub(crate) async fn post_with_retry(
    client: &reqwest::Client,
    name: &str,
    url: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
    max_attempts: u32,
) -> Result<(), NotifyError> {
    let mut backoff = std::time::Duration::from_millis(250);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut req = client
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body.clone());
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let err = match req.send().await {
            Ok(resp) => match classify(resp.status().as_u16()) {
                Outcome::Delivered => {
                    METRICS
                        .notifications
                        .with_label_values(&[name, "sent"])
                        .inc();
                    return Ok(());
                }
                Outcome::Retry => NotifyError::Status {
                    status: resp.status().as_u16(),
                },
                Outcome::Reject => {
                    let status = resp.status().as_u16();
                    let text = resp.text().await.unwrap_or_default();
                    METRICS
                        .notifications
                        .with_label_values(&[name, "failed"])
                        .inc();
                    tracing::warn!(notifier = %name, %url, status, body = %text.chars().take(300).collect::<String>(), "Alert rejected by the receiver; not retrying.");
                    return Err(NotifyError::Status { status });
                }
            },
            Err(e) => NotifyError::Request(e),
        };
        if attempt >= max_attempts {
            METRICS
                .notifications
                .with_label_values(&[name, "failed"])
                .inc();
            tracing::warn!(notifier = %name, %url, error = %err, attempt, "Alert delivery failed; giving up.");
            return Err(err);
        }
        tracing::debug!(notifier = %name, %url, error = %err, attempt, "Alert delivery failed; will retry.");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(std::time::Duration::from_secs(30));
    }
}
