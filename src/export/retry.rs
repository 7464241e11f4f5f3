//! Which failures are retried, and how long to wait: the OTLP rules as a tested table, and the
//! retry loop every network exporter shares.

use std::time::{Duration, Instant, SystemTime};

use backon::BackoffBuilder;
use tokio::sync::watch;
use tracing::{debug, warn};

use super::config::RetryConfig;
use super::metrics::ExporterMetrics;
use super::transport::{Body, Outcome, Transport};

/// The longest server-requested wait honoured (`Retry-After`, gRPC `RetryInfo`).
pub const MAX_THROTTLE: Duration = Duration::from_secs(600);

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Retry after the usual backoff.
    Retryable,
    /// Retry, waiting at least this long (the server said so).
    Throttled(Duration),
    /// Do not retry: drop the data.
    NonRetryable,
}

/// Classifies an HTTP status per OTLP/HTTP: 429, 502, 503, 504 are retried (honouring
/// `Retry-After`, seconds or HTTP-date, capped at [`MAX_THROTTLE`]); everything else is not.
pub fn classify_http(status: u16, retry_after: Option<&str>) -> RetryDecision {
    classify_http_at(status, retry_after, SystemTime::now())
}

/// [`classify_http`] with an explicit clock, for tests.
pub fn classify_http_at(status: u16, retry_after: Option<&str>, now: SystemTime) -> RetryDecision {
    match status {
        429 | 502 | 503 | 504 => match retry_after.and_then(|v| parse_retry_after(v, now)) {
            Some(d) => RetryDecision::Throttled(d),
            None => RetryDecision::Retryable,
        },
        _ => RetryDecision::NonRetryable,
    }
}

/// Parses a `Retry-After` value: delta-seconds or an HTTP-date; capped at [`MAX_THROTTLE`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let d = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(d.min(MAX_THROTTLE))
}

/// Classifies a gRPC status per OTLP/gRPC. `retry_delay` is `google.rpc.RetryInfo.retry_delay`
/// from `grpc-status-details-bin`, when present. RESOURCE_EXHAUSTED is retried only with it.
pub fn classify_grpc(code: tonic::Code, retry_delay: Option<Duration>) -> RetryDecision {
    use tonic::Code::*;
    let throttled = |d: Option<Duration>| match d {
        Some(d) => RetryDecision::Throttled(d.min(MAX_THROTTLE)),
        None => RetryDecision::Retryable,
    };
    match code {
        Cancelled | DeadlineExceeded | Aborted | OutOfRange | Unavailable | DataLoss => {
            throttled(retry_delay)
        }
        ResourceExhausted if retry_delay.is_some() => throttled(retry_delay),
        _ => RetryDecision::NonRetryable,
    }
}

/// Waits until the shutdown deadline (once one is set); pending forever otherwise.
pub(crate) async fn deadline_reached(mut rx: watch::Receiver<Option<Instant>>) {
    loop {
        let current = *rx.borrow_and_update();
        if let Some(d) = current {
            tokio::time::sleep_until(d.into()).await;
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// How a request ended after all attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Final {
    /// Delivered (possibly with some spans rejected).
    Sent,
    /// Dropped; the reason label was already counted.
    Dropped,
    /// Not sent before the shutdown deadline, and kept in a disk queue (not dropped).
    Kept,
}

/// Everything the retry loop needs besides the transport.
pub(crate) struct RetryCtx<'a> {
    pub name: &'a str,
    pub retry: &'a RetryConfig,
    pub timeout: Duration,
    pub metrics: &'a ExporterMetrics,
    pub shutdown: watch::Receiver<Option<Instant>>,
    /// The data stays in a disk queue when the shutdown deadline passes (not dropped).
    pub persistent: bool,
}

impl RetryCtx<'_> {
    fn shutdown_stop(&self, spans: usize, detail: &str) -> Final {
        if self.persistent {
            return Final::Kept;
        }
        self.metrics
            .drop_spans(self.name, spans, "shutdown", detail)
    }
}

/// The delays between attempts of one batch: exponential (×1.5 from `initial_interval` up to
/// `max_interval`) with jitter. The jitter's generator is seeded anew for every batch from a
/// process-wide generator seeded from the OS (backon's `std` feature; without it every batch of
/// every replica would wait the same instants and hit a recovering backend together).
pub(crate) fn backoff(retry: &RetryConfig) -> impl Iterator<Item = Duration> + use<> {
    backon::ExponentialBuilder::default()
        .with_min_delay(retry.initial_interval)
        .with_max_delay(retry.max_interval)
        .with_factor(1.5)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Sends one request, retrying retryable failures with exponential backoff and jitter until
/// `max_elapsed_time` or the shutdown deadline, and counts the result.
pub(crate) async fn send_with_retry(
    transport: &dyn Transport,
    body: Body,
    spans: usize,
    ctx: &RetryCtx<'_>,
) -> Final {
    let started = Instant::now();
    let mut backoff = backoff(ctx.retry);
    loop {
        let attempt = async {
            let timer = ctx.metrics.request_duration.start_timer();
            let r = match tokio::time::timeout(ctx.timeout, transport.send(body.clone())).await {
                Ok(o) => o,
                Err(_) => Outcome::Retry {
                    delay: None,
                    reason: "timeout",
                    detail: format!("no answer within {:?}", ctx.timeout),
                },
            };
            timer.observe_duration();
            r
        };
        let outcome = tokio::select! {
            o = attempt => o,
            () = deadline_reached(ctx.shutdown.clone()) => {
                return ctx.shutdown_stop(spans, "shutdown deadline passed");
            }
        };
        match outcome {
            Outcome::Success => {
                ctx.metrics.success(spans);
                return Final::Sent;
            }
            Outcome::Partial { rejected, message } => {
                let rejected = usize::try_from(rejected).unwrap_or(0).min(spans);
                ctx.metrics.success(spans - rejected);
                if rejected > 0 {
                    ctx.metrics
                        .drop_spans(ctx.name, rejected, "partial_success", &message);
                } else {
                    debug!(exporter = %ctx.name, %message, "Backend sent a warning with a successful export.");
                }
                return Final::Sent;
            }
            Outcome::Drop { reason, detail } => {
                ctx.metrics.attempt_failed();
                return ctx.metrics.drop_spans(ctx.name, spans, reason, &detail);
            }
            Outcome::Retry {
                delay,
                reason,
                detail,
            } => {
                ctx.metrics.failed_request(reason, &detail);
                // The server's own delay wins (OTLP: wait at least that long); otherwise backoff.
                let next = backoff.next().unwrap_or(ctx.retry.max_interval);
                let wait = delay.unwrap_or(next);
                if started.elapsed() + wait > ctx.retry.max_elapsed_time {
                    return ctx
                        .metrics
                        .drop_spans(ctx.name, spans, "retries_exhausted", &detail);
                }
                warn!(exporter = %ctx.name, error = %detail, ?wait, "Export failed; will retry.");
                // Counted as waiting to retry until this arm ends.
                let _waiting = ctx.metrics.retrying();
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = deadline_reached(ctx.shutdown.clone()) => {
                        return ctx.shutdown_stop(spans, &detail);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;
    use RetryDecision::*;

    /// Issue 18 point 9: two batches do not retry at the same instants.
    #[test]
    fn two_retry_schedules_differ() {
        let retry = RetryConfig::default();
        let a: Vec<Duration> = backoff(&retry).take(6).collect();
        let b: Vec<Duration> = backoff(&retry).take(6).collect();
        assert_ne!(a, b, "jitter must be seeded per batch");
        // Jitter only adds to the exponential step.
        assert!(a.iter().all(|d| *d >= retry.initial_interval), "{a:?}");
    }

    #[test]
    fn http_table() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        let cases: &[(u16, Option<&str>, RetryDecision)] = &[
            (429, Some("3"), Throttled(Duration::from_secs(3))),
            (429, None, Retryable),
            (503, Some("1"), Throttled(Duration::from_secs(1))),
            (503, Some(&date), Throttled(Duration::from_secs(7))),
            (503, Some(&past), Throttled(Duration::ZERO)),
            (503, Some("99999"), Throttled(MAX_THROTTLE)),
            (503, Some("soon"), Retryable),
            (502, None, Retryable),
            (504, None, Retryable),
            (400, None, NonRetryable),
            (400, Some("3"), NonRetryable),
            (401, None, NonRetryable),
            (403, None, NonRetryable),
            (404, None, NonRetryable),
            (413, None, NonRetryable),
            (415, None, NonRetryable),
            (500, None, NonRetryable),
        ];
        for (status, ra, want) in cases {
            assert_eq!(
                classify_http_at(*status, *ra, now),
                *want,
                "{status} {ra:?}"
            );
        }
    }

    #[test]
    fn grpc_table() {
        let d = Some(Duration::from_secs(5));
        let cases: &[(Code, Option<Duration>, RetryDecision)] = &[
            (Code::Cancelled, None, Retryable),
            (Code::DeadlineExceeded, None, Retryable),
            (Code::Aborted, None, Retryable),
            (Code::OutOfRange, None, Retryable),
            (Code::Unavailable, None, Retryable),
            (Code::Unavailable, d, Throttled(Duration::from_secs(5))),
            (Code::DataLoss, None, Retryable),
            (Code::ResourceExhausted, None, NonRetryable),
            (
                Code::ResourceExhausted,
                d,
                Throttled(Duration::from_secs(5)),
            ),
            (Code::InvalidArgument, None, NonRetryable),
            (Code::InvalidArgument, d, NonRetryable),
            (Code::Unauthenticated, None, NonRetryable),
            (Code::PermissionDenied, None, NonRetryable),
            (Code::Unimplemented, None, NonRetryable),
            (Code::Internal, None, NonRetryable),
            (Code::Unknown, None, NonRetryable),
            (Code::NotFound, None, NonRetryable),
            (Code::FailedPrecondition, None, NonRetryable),
        ];
        for (code, delay, want) in cases {
            assert_eq!(classify_grpc(*code, *delay), *want, "{code:?} {delay:?}");
        }
    }
}
