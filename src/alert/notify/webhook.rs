//! Webhook: a JSON POST of each alert event, optionally signed with HMAC-SHA256.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

use super::super::{Alert, NotifyConfig};
use super::post_with_retry;

/// `sha256=<hex HMAC-SHA256 of the body>`, keyed with the configured secret.
pub const SIGNATURE_HEADER: &str = "X-Tollgate-Signature";
/// Seconds since the Unix epoch when the request was made.
pub const TIMESTAMP_HEADER: &str = "X-Tollgate-Timestamp";

/// The signature header's value for `body`.
pub(crate) fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub(super) async fn run(
    cfg: NotifyConfig,
    name: String,
    client: reqwest::Client,
    mut rx: mpsc::Receiver<Arc<Alert>>,
) {
    while let Some(alert) = rx.recv().await {
        let body = match serde_json::to_vec(&*alert) {
            Ok(b) => b,
            Err(error) => {
                tracing::warn!(notifier = %name, %error, "Alert could not be encoded.");
                continue;
            }
        };
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut headers = vec![(TIMESTAMP_HEADER, ts.to_string())];
        if let Some(secret) = cfg.secret.as_ref().filter(|s| !s.is_empty()) {
            headers.push((SIGNATURE_HEADER, sign(secret.expose().as_bytes(), &body)));
        }
        for url in &cfg.url {
            // Failures are logged and counted inside; the next alert goes on.
            post_with_retry(
                &client,
                &name,
                url,
                body.clone(),
                &headers,
                cfg.max_attempts,
            )
            .await
            .ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
