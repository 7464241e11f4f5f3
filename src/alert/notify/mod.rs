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
use super::{Alert, AlertsError, NotifyConfig, NotifyKind};

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
pub(crate) fn validate(cfgs: &[NotifyConfig]) -> Result<(), Vec<AlertsError>> {
    let mut errors = Vec::new();
    for (index, c) in cfgs.iter().enumerate() {
        let err = |reason: String| AlertsError::Notify {
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
    ) -> Result<Notifiers, Vec<AlertsError>> {
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
                    vec![AlertsError::Notify {
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

/// `scheme://host[:port]/…`: a URL with its path, query and user info left out (the parts a
/// webhook's secret lives in), for logs.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if u.path() == "/" && u.query().is_none() {
                ""
            } else {
                "/…"
            };
            format!(
                "{}://{}{port}{rest}",
                u.scheme(),
                u.host_str().unwrap_or("")
            )
        }
        Err(_) => "(unparsable URL)".into(),
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
    // For Slack-style webhooks the URL is the credential: logs name only its origin.
    let url_shown = redact_url(url);
    let url_shown = url_shown.as_str();
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
                    tracing::warn!(notifier = %name, url = %url_shown, status, body = %text.chars().take(300).collect::<String>(), "Alert rejected by the receiver; not retrying.");
                    return Err(NotifyError::Status { status });
                }
            },
            // reqwest puts the URL in its error text; for a Slack-style webhook that is the secret.
            Err(e) => NotifyError::Request(e.without_url()),
        };
        if attempt >= max_attempts {
            METRICS
                .notifications
                .with_label_values(&[name, "failed"])
                .inc();
            tracing::warn!(notifier = %name, url = %url_shown, error = %err, attempt, "Alert delivery failed; giving up.");
            return Err(err);
        }
        tracing::debug!(notifier = %name, url = %url_shown, error = %err, attempt, "Alert delivery failed; will retry.");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(std::time::Duration::from_secs(30));
    }
}

#[cfg(test)]
mod redact_tests {
    use super::redact_url;

    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn failed_deliveries_never_log_the_webhook_path() {
        // A loopback port nothing listens on: every attempt fails with a connect error.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/services/T000/B000/XXXXSECRET");
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        rustls::crypto::ring::default_provider()
            .install_default()
            .ok();
        let client = reqwest::Client::new();
        let result = super::post_with_retry(&client, "slack", &url, b"{}".to_vec(), &[], 2).await;
        let err = result.expect_err("nothing listens");
        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(logs.contains("Alert delivery failed"), "{logs}");
        assert!(!logs.contains("XXXXSECRET"), "{logs}");
        assert!(!err.to_string().contains("XXXXSECRET"), "{err}");
    }

    #[test]
    fn webhook_secrets_are_left_out() {
        let shown =
            redact_url("https://user:pw@hooks.slack.com/services/T000/B000/XXXXSECRET?token=abc");
        assert_eq!(shown, "https://hooks.slack.com/…");
        assert!(!shown.contains("SECRET") && !shown.contains("pw") && !shown.contains("abc"));
        assert_eq!(
            redact_url("http://127.0.0.1:9093/"),
            "http://127.0.0.1:9093"
        );
        assert_eq!(redact_url("not a url"), "(unparsable URL)");
    }
}
