//! The receivers' metrics and refusal logging.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::{IntCounterVec, IntGaugeVec, Opts};

/// `tollgate_receiver_requests_total{receiver,outcome}`.
pub const REQUESTS_TOTAL: &str = "tollgate_receiver_requests_total";
/// `tollgate_receiver_request_bytes_total{receiver}`.
pub const REQUEST_BYTES_TOTAL: &str = "tollgate_receiver_request_bytes_total";

/// Which receiver answered (the `receiver` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP.
    Http,
}

impl Receiver {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Receiver::Grpc => "otlp_grpc",
            Receiver::Http => "otlp_http",
        }
    }
}

/// How a request ended (the `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every span was accepted.
    Accepted,
    /// Accepted with some spans rejected.
    Partial,
    /// The body could not be read as a request.
    Invalid,
    /// Over a size limit.
    TooLarge,
    /// A content type or content encoding the receiver does not speak.
    UnsupportedMediaType,
    /// Not a POST.
    MethodNotAllowed,
    /// A path (HTTP) or method (gRPC) the receiver does not serve.
    UnknownPath,
    /// Missing or wrong bearer token.
    Unauthenticated,
    /// The pipeline refused with "full".
    PipelineFull,
    /// The pipeline refused because tollgate is stopping.
    ShuttingDown,
    /// The body did not arrive within `body_read_timeout`.
    Timeout,
}

impl Outcome {
    const ALL: [Outcome; 11] = [
        Outcome::Accepted,
        Outcome::Partial,
        Outcome::Invalid,
        Outcome::TooLarge,
        Outcome::UnsupportedMediaType,
        Outcome::MethodNotAllowed,
        Outcome::UnknownPath,
        Outcome::Unauthenticated,
        Outcome::PipelineFull,
        Outcome::ShuttingDown,
        Outcome::Timeout,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Partial => "partial",
            Outcome::Invalid => "invalid",
            Outcome::TooLarge => "too_large",
            Outcome::UnsupportedMediaType => "unsupported_media_type",
            Outcome::MethodNotAllowed => "method_not_allowed",
            Outcome::UnknownPath => "unknown_path",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::PipelineFull => "pipeline_full",
            Outcome::ShuttingDown => "shutting_down",
            Outcome::Timeout => "timeout",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

/// The receivers' metric family, registered in [`crate::telemetry::registry`] on first use.
#[derive(Debug)]
pub struct ReceiverMetrics {
    /// Requests by receiver and outcome.
    pub requests: IntCounterVec,
    /// Request body bytes as received (compressed if sent compressed), by receiver.
    pub request_bytes: IntCounterVec,
    /// Open connections, by receiver.
    pub connections: IntGaugeVec,
    /// Connections refused over `max_connections`, by receiver.
    pub connections_refused: IntCounterVec,
    /// Connections tollgate closed, by receiver and reason (`idle`, `handshake_timeout`,
    /// `shutdown_deadline`).
    pub connections_closed: IntCounterVec,
}

/// The one instance.
pub static METRICS: LazyLock<ReceiverMetrics> = LazyLock::new(|| {
    let requests = IntCounterVec::new(
        Opts::new(
            REQUESTS_TOTAL,
            "OTLP export requests received, by receiver and outcome.",
        ),
        &["receiver", "outcome"],
    )
    .expect("valid metric definition");
    let request_bytes = IntCounterVec::new(
        Opts::new(
            REQUEST_BYTES_TOTAL,
            "OTLP request body bytes received as sent on the wire, by receiver.",
        ),
        &["receiver"],
    )
    .expect("valid metric definition");
    let connections = IntGaugeVec::new(
        Opts::new(
            "tollgate_receiver_connections",
            "Open connections to the OTLP receivers, by receiver.",
        ),
        &["receiver"],
    )
    .expect("valid metric definition");
    let connections_refused = IntCounterVec::new(
        Opts::new(
            "tollgate_receiver_connections_refused_total",
            "Connections answered 503 / UNAVAILABLE and closed because max_connections were open, by receiver.",
        ),
        &["receiver"],
    )
    .expect("valid metric definition");
    let connections_closed = IntCounterVec::new(
        Opts::new(
            "tollgate_receiver_connections_closed_total",
            "Connections tollgate closed on its own, by receiver and reason (idle, handshake_timeout, shutdown_deadline).",
        ),
        &["receiver", "reason"],
    )
    .expect("valid metric definition");
    let registry = crate::telemetry::registry();
    for c in [
        &requests,
        &request_bytes,
        &connections_refused,
        &connections_closed,
    ] {
        if let Err(error) = registry.register(Box::new(c.clone())) {
            tracing::error!(%error, "Could not register a receiver metric.");
        }
    }
    if let Err(error) = registry.register(Box::new(connections.clone())) {
        tracing::error!(%error, "Could not register a receiver metric.");
    }
    ReceiverMetrics {
        requests,
        request_bytes,
        connections,
        connections_refused,
        connections_closed,
    }
});

/// Counts one request's outcome.
pub fn count(receiver: Receiver, outcome: Outcome) {
    METRICS
        .requests
        .with_label_values(&[receiver.label(), outcome.label()])
        .inc();
}

/// Counts request body bytes received.
pub fn count_bytes(receiver: Receiver, bytes: usize) {
    METRICS
        .request_bytes
        .with_label_values(&[receiver.label()])
        .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
}

/// Per (receiver, outcome): the second a refusal was last logged, and refusals not logged since.
struct LogSlot {
    last_second: AtomicU64,
    suppressed: AtomicU64,
}

const SLOTS: usize = 2 * Outcome::ALL.len();

static LOG_SLOTS: [LogSlot; SLOTS] = [const {
    LogSlot {
        last_second: AtomicU64::new(0),
        suppressed: AtomicU64::new(0),
    }
}; SLOTS];

/// Counts a refusal and logs it at warn, at most once per second per receiver and outcome; the
/// log line says how many similar refusals were not logged in between.
pub fn refuse(receiver: Receiver, outcome: Outcome, reason: &str) {
    count(receiver, outcome);
    let slot = &LOG_SLOTS[outcome.index() * 2 + usize::from(receiver == Receiver::Http)];
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let last = slot.last_second.load(Ordering::Relaxed);
    if last == now
        || slot
            .last_second
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        slot.suppressed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let suppressed = slot.suppressed.swap(0, Ordering::Relaxed);
    tracing::warn!(
        receiver = receiver.label(),
        outcome = outcome.label(),
        reason,
        suppressed,
        "Refused an OTLP request."
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parking_lot::Mutex;

    use super::*;

    fn value(receiver: Receiver, outcome: Outcome) -> u64 {
        METRICS
            .requests
            .with_label_values(&[receiver.label(), outcome.label()])
            .get()
    }

    #[test]
    fn refusals_are_counted_even_when_not_logged() {
        let before = value(Receiver::Grpc, Outcome::MethodNotAllowed);
        for _ in 0..5 {
            refuse(Receiver::Grpc, Outcome::MethodNotAllowed, "test");
        }
        assert_eq!(value(Receiver::Grpc, Outcome::MethodNotAllowed) - before, 5);
    }

    #[test]
    fn metrics_are_in_the_registry() {
        count(Receiver::Http, Outcome::Accepted);
        count_bytes(Receiver::Http, 10);
        let names: Vec<String> = crate::telemetry::registry()
            .gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        assert!(names.iter().any(|n| n == REQUESTS_TOTAL));
        assert!(names.iter().any(|n| n == REQUEST_BYTES_TOTAL));
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn refusals_are_logged_with_a_rate_limit() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..50 {
                refuse(
                    Receiver::Http,
                    Outcome::ShuttingDown,
                    "tollgate is shutting down",
                );
            }
        });
        let text = String::from_utf8(captured.0.lock().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // One line per second at most: the 50 calls straddle at most one second boundary.
        assert!((1..=2).contains(&lines.len()), "{text}");
        assert!(lines[0].contains("WARN"), "{text}");
        assert!(lines[0].contains("Refused an OTLP request."), "{text}");
        assert!(lines[0].contains("outcome=\"shutting_down\""), "{text}");
        assert!(lines[0].contains("receiver=\"otlp_http\""), "{text}");
    }

    #[test]
    fn labels_are_distinct() {
        let mut labels: Vec<_> = Outcome::ALL.iter().map(|o| o.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Outcome::ALL.len());
    }
}
