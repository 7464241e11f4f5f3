//! Alertmanager API v2: `POST /api/v2/alerts` to every replica. Firing window alerts are re-sent
//! every `resend_interval` with `endsAt` 4 minutes ahead; resolved ones are sent with
//! `endsAt` = the resolve time, and repeated a few times so every replica hears it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::mpsc;

use super::super::rule::Scope;
use super::super::{Alert, AlertState, NotifyConfig};
use super::post_with_retry;

/// How far ahead `endsAt` of a firing window alert is set on each re-send.
const FIRING_ENDS_AHEAD: Duration = Duration::from_secs(240);
/// How many re-sends a resolved alert gets.
const RESOLVED_RESENDS: u32 = 3;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert<'a> {
    labels: &'a std::collections::BTreeMap<String, String>,
    annotations: &'a std::collections::BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    generator_url: Option<&'a str>,
}

fn rfc3339(unix_ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn postable(alert: &Alert, ends_at_ms: u64) -> PostableAlert<'_> {
    PostableAlert {
        labels: &alert.labels,
        annotations: &alert.annotations,
        starts_at: rfc3339(alert.starts_at_unix_ms),
        ends_at: rfc3339(ends_at_ms),
        generator_url: alert
            .generator_url
            .as_deref()
            .filter(|u| reqwest::Url::parse(u).is_ok()),
    }
}

/// The API endpoint for a configured base URL.
pub(crate) fn endpoint(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/api/v2/alerts") {
        base.to_string()
    } else {
        format!("{base}/api/v2/alerts")
    }
}

pub(super) async fn run(
    cfg: NotifyConfig,
    name: String,
    client: reqwest::Client,
    mut rx: mpsc::Receiver<Arc<Alert>>,
) {
    let urls: Vec<String> = cfg.url.iter().map(|u| endpoint(u)).collect();
    let mut firing: HashMap<u64, Arc<Alert>> = HashMap::new();
    let mut resolved: HashMap<u64, (Arc<Alert>, u32)> = HashMap::new();
    let mut resend = tokio::time::interval(cfg.resend_interval);
    resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    resend.tick().await;
    loop {
        let body = tokio::select! {
            msg = rx.recv() => {
                let Some(alert) = msg else { return };
                let now = now_ms();
                let ends = match (alert.state, alert.scope) {
                    (AlertState::Resolved, _) => {
                        firing.remove(&alert.fingerprint());
                        resolved.insert(alert.fingerprint(), (alert.clone(), RESOLVED_RESENDS));
                        alert.at_unix_ms
                    }
                    (AlertState::Firing, Scope::Window) => {
                        resolved.remove(&alert.fingerprint());
                        firing.insert(alert.fingerprint(), alert.clone());
                        now + FIRING_ENDS_AHEAD.as_millis() as u64
                    }
                    (AlertState::Firing, _) => {
                        alert.at_unix_ms.max(now) + cfg.event_ttl.as_millis() as u64
                    }
                };
                serde_json::to_vec(&[postable(&alert, ends)])
            }
            _ = resend.tick() => {
                if firing.is_empty() && resolved.is_empty() {
                    continue;
                }
                let ahead = now_ms() + FIRING_ENDS_AHEAD.as_millis() as u64;
                let mut batch: Vec<PostableAlert<'_>> =
                    firing.values().map(|a| postable(a, ahead)).collect();
                batch.extend(resolved.values().map(|(a, _)| postable(a, a.at_unix_ms)));
                let body = serde_json::to_vec(&batch);
                drop(batch);
                resolved.retain(|_, (_, left)| {
                    *left -= 1;
                    *left > 0
                });
                body
            }
        };
        let body = match body {
            Ok(b) => b,
            Err(error) => {
                tracing::warn!(notifier = %name, %error, "Alert could not be encoded.");
                continue;
            }
        };
        let sends = urls
            .iter()
            .map(|url| post_with_retry(&client, &name, url, body.clone(), &[], cfg.max_attempts));
        futures::future::join_all(sends).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_appends_the_api_path_once() {
        assert_eq!(endpoint("http://am:9093"), "http://am:9093/api/v2/alerts");
        assert_eq!(endpoint("http://am:9093/"), "http://am:9093/api/v2/alerts");
        assert_eq!(
            endpoint("http://am:9093/api/v2/alerts"),
            "http://am:9093/api/v2/alerts"
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
