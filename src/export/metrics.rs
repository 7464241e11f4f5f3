//! The exporters' metrics: names as consts, one typed struct, registered once.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};
use tracing::warn;

use super::retry::Final;

/// Spans delivered, per exporter.
pub const SENT_SPANS: &str = "tollgate_exporter_sent_spans_total";
/// Failed attempts that will be retried, per exporter and reason.
pub const FAILED_REQUESTS: &str = "tollgate_exporter_failed_requests_total";
/// Spans given up on, per exporter and reason.
pub const DROPPED_SPANS: &str = "tollgate_exporter_dropped_spans_total";
/// Spans left out for an exporter by its `spans` filter (not lost: it did not want them).
pub const FILTERED_SPANS: &str = "tollgate_exporter_filtered_spans_total";
/// Batches waiting in the exporter's queue.
pub const QUEUE_LENGTH: &str = "tollgate_exporter_queue_length";
/// Bytes waiting in the exporter's queue.
pub const QUEUE_BYTES: &str = "tollgate_exporter_queue_bytes";
/// The exporter's queue capacity in bytes.
pub const QUEUE_CAPACITY_BYTES: &str = "tollgate_exporter_queue_capacity_bytes";
/// Damaged disk queue records skipped, per exporter.
pub const QUEUE_CORRUPT_RECORDS: &str = "tollgate_exporter_queue_corrupt_records_total";
/// Bytes the exporter's disk queue files take.
pub const QUEUE_DISK_BYTES: &str = "tollgate_exporter_queue_disk_bytes";
/// Time per request attempt.
pub const REQUEST_DURATION: &str = "tollgate_exporter_request_duration_seconds";
/// Batches taken from the queue and not yet finished (sending, or waiting to retry).
pub const IN_FLIGHT_BATCHES: &str = "tollgate_exporter_in_flight_batches";
/// Spans in those batches.
pub const IN_FLIGHT_SPANS: &str = "tollgate_exporter_in_flight_spans";
/// Of the in-flight batches, those waiting to retry after a failed attempt.
pub const RETRYING_BATCHES: &str = "tollgate_exporter_retrying_batches";
/// Failed attempts since the last success.
pub const CONSECUTIVE_FAILURES: &str = "tollgate_exporter_consecutive_failures";
/// 1 while the exporter is failing: [`FAILING_AFTER`] attempts in a row failed.
pub const FAILING: &str = "tollgate_exporter_failing";

/// Consecutive failed attempts after which an exporter is flagged as failing.
pub const FAILING_AFTER: u64 = 3;

/// The metric families (registered once in the process registry).
pub(crate) struct Families {
    sent: IntCounterVec,
    failed: IntCounterVec,
    dropped: IntCounterVec,
    filtered: IntCounterVec,
    queue_len: IntGaugeVec,
    queue_bytes: IntGaugeVec,
    queue_cap: IntGaugeVec,
    corrupt: IntCounterVec,
    disk_bytes: IntGaugeVec,
    in_flight_batches: IntGaugeVec,
    in_flight_spans: IntGaugeVec,
    retrying: IntGaugeVec,
    consecutive_failures: IntGaugeVec,
    failing: IntGaugeVec,
    duration: HistogramVec,
}

pub(crate) static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    let l = &["exporter"];
    let lr = &["exporter", "reason"];
    let f = Families {
        sent: IntCounterVec::new(Opts::new(SENT_SPANS, "Spans delivered to the backend."), l)
            .expect("valid metric"),
        failed: IntCounterVec::new(
            Opts::new(
                FAILED_REQUESTS,
                "Export attempts that failed and will be retried.",
            ),
            lr,
        )
        .expect("valid metric"),
        dropped: IntCounterVec::new(
            Opts::new(DROPPED_SPANS, "Spans an exporter gave up on."),
            lr,
        )
        .expect("valid metric"),
        filtered: IntCounterVec::new(
            Opts::new(
                FILTERED_SPANS,
                "Spans not sent to an exporter because its `spans` filter leaves them out.",
            ),
            l,
        )
        .expect("valid metric"),
        queue_len: IntGaugeVec::new(
            Opts::new(QUEUE_LENGTH, "Batches waiting in the exporter's queue."),
            l,
        )
        .expect("valid metric"),
        queue_bytes: IntGaugeVec::new(
            Opts::new(QUEUE_BYTES, "Bytes waiting in the exporter's queue."),
            l,
        )
        .expect("valid metric"),
        queue_cap: IntGaugeVec::new(
            Opts::new(
                QUEUE_CAPACITY_BYTES,
                "The exporter's queue capacity in bytes.",
            ),
            l,
        )
        .expect("valid metric"),
        corrupt: IntCounterVec::new(
            Opts::new(
                QUEUE_CORRUPT_RECORDS,
                "Damaged disk queue records (torn writes, flipped bits) skipped; each is logged with its file and offset.",
            ),
            l,
        )
        .expect("valid metric"),
        disk_bytes: IntGaugeVec::new(
            Opts::new(QUEUE_DISK_BYTES, "Bytes the exporter's disk queue files take."),
            l,
        )
        .expect("valid metric"),
        in_flight_batches: IntGaugeVec::new(
            Opts::new(
                IN_FLIGHT_BATCHES,
                "Batches taken from the queue and not finished yet (sending or waiting to retry).",
            ),
            l,
        )
        .expect("valid metric"),
        in_flight_spans: IntGaugeVec::new(
            Opts::new(IN_FLIGHT_SPANS, "Spans in the in-flight batches."),
            l,
        )
        .expect("valid metric"),
        retrying: IntGaugeVec::new(
            Opts::new(
                RETRYING_BATCHES,
                "In-flight batches waiting to retry after a failed attempt.",
            ),
            l,
        )
        .expect("valid metric"),
        consecutive_failures: IntGaugeVec::new(
            Opts::new(
                CONSECUTIVE_FAILURES,
                "Failed export attempts since the last successful one.",
            ),
            l,
        )
        .expect("valid metric"),
        failing: IntGaugeVec::new(
            Opts::new(
                FAILING,
                "1 while the exporter is failing (3 or more attempts in a row failed).",
            ),
            l,
        )
        .expect("valid metric"),
        duration: HistogramVec::new(
            HistogramOpts::new(REQUEST_DURATION, "Duration of one export request attempt.")
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
            l,
        )
        .expect("valid metric"),
    };
    let r = crate::telemetry::registry();
    for c in [&f.sent, &f.failed, &f.dropped, &f.filtered, &f.corrupt] {
        r.register(Box::new(c.clone())).expect("registered once");
    }
    for g in [
        &f.queue_len,
        &f.queue_bytes,
        &f.queue_cap,
        &f.disk_bytes,
        &f.in_flight_batches,
        &f.in_flight_spans,
        &f.retrying,
        &f.consecutive_failures,
        &f.failing,
    ] {
        r.register(Box::new(g.clone())).expect("registered once");
    }
    r.register(Box::new(f.duration.clone()))
        .expect("registered once");
    f
});

/// One exporter's handles into the families, plus its health state.
pub(crate) struct ExporterMetrics {
    exporter: String,
    sent: IntCounter,
    filtered: IntCounter,
    pub(crate) queue_len: IntGauge,
    pub(crate) queue_bytes: IntGauge,
    pub(crate) request_duration: Histogram,
    pub(crate) in_flight_batches: IntGauge,
    pub(crate) in_flight_spans: IntGauge,
    pub(crate) retrying: IntGauge,
    pub(crate) consecutive_failures: IntGauge,
    failing: IntGauge,
    pub(crate) last_success: Mutex<Option<SystemTime>>,
    pub(crate) last_error: Mutex<Option<(SystemTime, String)>>,
    /// When a `queue_full` drop was last logged, and how many went unlogged since.
    queue_full_log: Mutex<(Option<Instant>, u64)>,
}

/// `queue_full` drops are logged at most this often per exporter (they come in floods).
const QUEUE_FULL_LOG_INTERVAL: Duration = Duration::from_secs(1);

impl ExporterMetrics {
    pub(crate) fn new(exporter: &str, capacity_bytes: usize) -> Self {
        let f = &*FAMILIES;
        f.queue_cap
            .with_label_values(&[exporter])
            .set(i64::try_from(capacity_bytes).unwrap_or(i64::MAX));
        Self {
            exporter: exporter.to_owned(),
            sent: f.sent.with_label_values(&[exporter]),
            filtered: f.filtered.with_label_values(&[exporter]),
            queue_len: f.queue_len.with_label_values(&[exporter]),
            queue_bytes: f.queue_bytes.with_label_values(&[exporter]),
            request_duration: f.duration.with_label_values(&[exporter]),
            in_flight_batches: f.in_flight_batches.with_label_values(&[exporter]),
            in_flight_spans: f.in_flight_spans.with_label_values(&[exporter]),
            retrying: f.retrying.with_label_values(&[exporter]),
            consecutive_failures: f.consecutive_failures.with_label_values(&[exporter]),
            failing: f.failing.with_label_values(&[exporter]),
            last_success: Mutex::new(None),
            last_error: Mutex::new(None),
            queue_full_log: Mutex::new((None, 0)),
        }
    }

    /// The handles a disk queue keeps.
    pub(crate) fn disk_metrics(&self) -> super::disk::DiskMetrics {
        let f = &*FAMILIES;
        super::disk::DiskMetrics {
            corrupt: f.corrupt.with_label_values(&[self.exporter.as_str()]),
            disk_bytes: f.disk_bytes.with_label_values(&[self.exporter.as_str()]),
        }
    }

    /// Counts delivered spans and records the success time; the exporter is no longer failing.
    pub(crate) fn success(&self, spans: usize) {
        self.sent.inc_by(spans as u64);
        *self.last_success.lock() = Some(SystemTime::now());
        self.consecutive_failures.set(0);
        self.failing.set(0);
    }

    /// Counts a failed attempt (retryable or not) towards [`FAILING_AFTER`].
    pub(crate) fn attempt_failed(&self) {
        self.consecutive_failures.inc();
        if self.consecutive_failures.get() >= FAILING_AFTER as i64 {
            self.failing.set(1);
        }
    }

    /// True once [`FAILING_AFTER`] attempts in a row failed, until one succeeds.
    pub(crate) fn is_failing(&self) -> bool {
        self.failing.get() != 0
    }

    /// Marks a request of `spans` spans as taken from the queue (waiting for a send slot,
    /// sending, or waiting to retry) until the guard is dropped.
    pub(crate) fn in_flight(self: &Arc<Self>, spans: usize) -> InFlight {
        let spans = i64::try_from(spans).unwrap_or(i64::MAX);
        self.in_flight_batches.inc();
        self.in_flight_spans.add(spans);
        InFlight {
            metrics: self.clone(),
            spans,
        }
    }

    /// Marks a batch as waiting to retry until the guard is dropped.
    pub(crate) fn retrying(&self) -> Retrying<'_> {
        self.retrying.inc();
        Retrying { metrics: self }
    }

    /// Counts spans the exporter's `spans` filter left out.
    pub(crate) fn filtered(&self, spans: usize) {
        self.filtered.inc_by(spans as u64);
    }

    /// Counts a failed attempt that will be retried.
    pub(crate) fn failed_request(&self, reason: &'static str, detail: &str) {
        FAMILIES
            .failed
            .with_label_values(&[self.exporter.as_str(), reason])
            .inc();
        self.attempt_failed();
        *self.last_error.lock() = Some((SystemTime::now(), format!("{reason}: {detail}")));
    }

    /// Spans dropped so far with `reason`.
    pub(crate) fn dropped(&self, reason: &str) -> u64 {
        FAMILIES
            .dropped
            .with_label_values(&[self.exporter.as_str(), reason])
            .get()
    }

    /// Counts and logs spans given up on.
    pub(crate) fn drop_spans(
        &self,
        name: &str,
        spans: usize,
        reason: &'static str,
        detail: &str,
    ) -> Final {
        FAMILIES
            .dropped
            .with_label_values(&[self.exporter.as_str(), reason])
            .inc_by(spans as u64);
        if reason != "partial_success" {
            *self.last_error.lock() = Some((SystemTime::now(), format!("{reason}: {detail}")));
        }
        if reason == "queue_full" {
            let mut log = self.queue_full_log.lock();
            let now = Instant::now();
            if log
                .0
                .is_some_and(|at| now.duration_since(at) < QUEUE_FULL_LOG_INTERVAL)
            {
                log.1 += 1;
                return Final::Dropped;
            }
            let suppressed = std::mem::take(&mut log.1);
            log.0 = Some(now);
            drop(log);
            warn!(exporter = %name, spans, suppressed, "Queue full; batch dropped for this exporter.");
            return Final::Dropped;
        }
        warn!(exporter = %name, spans, reason, error = %detail, "Spans dropped.");
        Final::Dropped
    }
}

/// A request taken from the queue: counted in the in-flight gauges until dropped, however its
/// send ends.
pub(crate) struct InFlight {
    metrics: Arc<ExporterMetrics>,
    spans: i64,
}

impl InFlight {
    /// Another batch of `spans` joined the request.
    pub(crate) fn add(&mut self, spans: usize) {
        let spans = i64::try_from(spans).unwrap_or(i64::MAX);
        self.spans = self.spans.saturating_add(spans);
        self.metrics.in_flight_spans.add(spans);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.in_flight_batches.dec();
        self.metrics.in_flight_spans.sub(self.spans);
    }
}

/// A batch waiting to retry: counted in the retrying gauge until dropped.
pub(crate) struct Retrying<'a> {
    metrics: &'a ExporterMetrics,
}

impl Drop for Retrying<'_> {
    fn drop(&mut self) {
        self.metrics.retrying.dec();
    }
}

/// Reads `tollgate_exporter_dropped_spans_total{exporter,reason}` (for tests and the status page).
pub fn dropped_spans(exporter: &str, reason: &str) -> u64 {
    FAMILIES
        .dropped
        .with_label_values(&[exporter, reason])
        .get()
}

/// Reads `tollgate_exporter_sent_spans_total{exporter}`.
pub fn sent_spans(exporter: &str) -> u64 {
    FAMILIES.sent.with_label_values(&[exporter]).get()
}

/// Reads `tollgate_exporter_filtered_spans_total{exporter}`.
pub fn filtered_spans(exporter: &str) -> u64 {
    FAMILIES.filtered.with_label_values(&[exporter]).get()
}

/// Reads `tollgate_exporter_failed_requests_total{exporter,reason}`.
pub fn failed_requests(exporter: &str, reason: &str) -> u64 {
    FAMILIES.failed.with_label_values(&[exporter, reason]).get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_registered_under_their_names() {
        let m = ExporterMetrics::new("metrics_unit", 1234);
        m.success(2);
        m.filtered(5);
        m.failed_request("timeout", "x");
        m.drop_spans("metrics_unit", 3, "queue_full", "full");
        m.request_duration.observe(0.1);
        let names: Vec<String> = crate::telemetry::registry()
            .gather()
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        for n in [
            SENT_SPANS,
            FAILED_REQUESTS,
            DROPPED_SPANS,
            FILTERED_SPANS,
            QUEUE_LENGTH,
            QUEUE_BYTES,
            QUEUE_CAPACITY_BYTES,
            REQUEST_DURATION,
            IN_FLIGHT_BATCHES,
            IN_FLIGHT_SPANS,
            RETRYING_BATCHES,
            CONSECUTIVE_FAILURES,
            FAILING,
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing");
        }
        assert_eq!(sent_spans("metrics_unit"), 2);
        assert_eq!(failed_requests("metrics_unit", "timeout"), 1);
        assert_eq!(filtered_spans("metrics_unit"), 5);
        assert_eq!(dropped_spans("metrics_unit", "queue_full"), 3);
        // Failing after FAILING_AFTER attempts in a row; a success clears it.
        let m = Arc::new(ExporterMetrics::new("metrics_failing", 1));
        for i in 1..=FAILING_AFTER {
            assert!(!m.is_failing());
            m.attempt_failed();
            assert_eq!(m.consecutive_failures.get(), i as i64);
        }
        assert!(m.is_failing());
        m.success(1);
        assert!(!m.is_failing());
        assert_eq!(m.consecutive_failures.get(), 0);
        // In-flight gauges follow the guard.
        {
            let mut g = m.in_flight(20);
            g.add(8);
            let _r = m.retrying();
            assert_eq!(
                (
                    m.in_flight_batches.get(),
                    m.in_flight_spans.get(),
                    m.retrying.get()
                ),
                (1, 28, 1)
            );
        }
        assert_eq!(
            (
                m.in_flight_batches.get(),
                m.in_flight_spans.get(),
                m.retrying.get()
            ),
            (0, 0, 0)
        );
        assert_eq!(
            FAMILIES
                .queue_cap
                .with_label_values(&["metrics_unit"])
                .get(),
            1234
        );
    }
}
