//! The exporters' metrics: names as consts, one typed struct, registered once.

use std::sync::LazyLock;
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
    for g in [&f.queue_len, &f.queue_bytes, &f.queue_cap, &f.disk_bytes] {
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

    /// Counts delivered spans and records the success time.
    pub(crate) fn success(&self, spans: usize) {
        self.sent.inc_by(spans as u64);
        *self.last_success.lock() = Some(SystemTime::now());
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
        *self.last_error.lock() = Some((SystemTime::now(), format!("{reason}: {detail}")));
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
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing");
        }
        assert_eq!(sent_spans("metrics_unit"), 2);
        assert_eq!(failed_requests("metrics_unit", "timeout"), 1);
        assert_eq!(filtered_spans("metrics_unit"), 5);
        assert_eq!(dropped_spans("metrics_unit", "queue_full"), 3);
        assert_eq!(
            FAMILIES
                .queue_cap
                .with_label_values(&["metrics_unit"])
                .get(),
            1234
        );
    }
}
