//! What `send` reports: counts, latency, the sink's and the collector's process windows, and
//! the human-readable summary.

use super::*;

/// Counts over a set of requests.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    /// Requests answered with success.
    pub requests: u64,
    /// Spans accepted (minus partial-success rejections).
    pub accepted_spans: u64,
    /// Spans the server rejected as a partial success.
    pub rejected_spans: u64,
    /// Requests refused with a retryable answer.
    pub refused_requests: u64,
    /// Spans in refused requests.
    pub refused_spans: u64,
    /// Requests that failed otherwise (transport or non-retryable errors).
    pub errors: u64,
    /// Body bytes sent in accepted requests.
    pub sent_bytes: u64,
}

impl Counts {
    pub(super) fn add(&mut self, o: &Counts) {
        self.requests += o.requests;
        self.accepted_spans += o.accepted_spans;
        self.rejected_spans += o.rejected_spans;
        self.refused_requests += o.refused_requests;
        self.refused_spans += o.refused_spans;
        self.errors += o.errors;
        self.sent_bytes += o.sent_bytes;
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

/// What the sink saw during the window.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SinkWindow {
    /// Spans that arrived during the window.
    pub spans: u64,
    /// `spans` per second.
    pub spans_per_sec: f64,
    /// The sink's span total at the end of the run (before any drain).
    pub total_spans_at_end: u64,
    /// The sink's span total when the run started.
    pub total_spans_at_start: u64,
}

/// What the watched process did during the window.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ProcessWindow {
    /// The process id.
    pub pid: u32,
    /// CPU use over the window, percent of one core.
    pub cpu_percent: f64,
    /// CPU seconds per million accepted spans (µs per span).
    pub cpu_us_per_span: f64,
    /// Peak resident set size (VmHWM) at the end, MiB.
    pub peak_rss_mib: f64,
}

/// The report of one `send` run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Transport.
    pub protocol: Protocol,
    /// Target.
    pub endpoint: String,
    /// Concurrent streams.
    pub streams: usize,
    /// Connections.
    pub connections: usize,
    /// Spans per request.
    pub spans_per_request: usize,
    /// Mean encoded request size, bytes.
    pub request_bytes: f64,
    /// Mean body size on the wire (after compression), bytes.
    pub body_bytes: f64,
    /// Whether bodies were gzipped.
    pub gzip: bool,
    /// Target rate, spans/s, if any.
    pub rate_target: Option<f64>,
    /// Warm-up, seconds.
    pub warmup_secs: f64,
    /// Length of the measured window, seconds.
    pub window_secs: f64,
    /// Counts in the window.
    pub window: Counts,
    /// Accepted spans per second in the window.
    pub accepted_spans_per_sec: f64,
    /// Latency of requests completed in the window (accepted or refused).
    pub latency: Latency,
    /// Counts over the whole run, warm-up and stragglers included.
    pub total: Counts,
    /// What the sink saw, with `--sink-stats`.
    pub sink: Option<SinkWindow>,
    /// What the watched process did, with `--watch-pid`.
    pub process: Option<ProcessWindow>,
    /// The first error seen, if any.
    pub first_error: Option<String>,
}

pub(super) fn print_human(r: &Report) {
    println!(
        "{:?} → {}  streams {} (connections {}), {} spans/request, {:.0} bytes/request ({:.0} bytes/span), body {:.0} bytes{}",
        r.protocol,
        r.endpoint,
        r.streams,
        r.connections,
        r.spans_per_request,
        r.request_bytes,
        r.request_bytes / r.spans_per_request as f64,
        r.body_bytes,
        if r.gzip { " gzip" } else { "" }
    );
    if let Some(rate) = r.rate_target {
        println!("target rate: {rate:.0} spans/s");
    }
    println!(
        "window {:.1} s after {:.1} s warm-up: accepted {:.0} spans/s ({} requests), refused {} requests, rejected {} spans, errors {}",
        r.window_secs,
        r.warmup_secs,
        r.accepted_spans_per_sec,
        r.window.requests,
        r.window.refused_requests,
        r.window.rejected_spans,
        r.window.errors
    );
    let l = &r.latency;
    println!(
        "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  mean {:.2}",
        l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.mean_ms
    );
    println!(
        "whole run: accepted {} spans in {} requests, refused {} requests, errors {}",
        r.total.accepted_spans, r.total.requests, r.total.refused_requests, r.total.errors
    );
    if let Some(s) = &r.sink {
        println!(
            "sink: {:.0} spans/s delivered in the window ({} spans)",
            s.spans_per_sec, s.spans
        );
    }
    if let Some(p) = &r.process {
        println!(
            "process {}: CPU {:.1} % ({:.2} µs/span), peak RSS {:.1} MiB",
            p.pid, p.cpu_percent, p.cpu_us_per_span, p.peak_rss_mib
        );
    }
    if let Some(e) = &r.first_error {
        println!("first error: {e}");
    }
}
