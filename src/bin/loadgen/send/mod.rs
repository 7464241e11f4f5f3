//! `send`: drive OTLP load at a collector and measure what it accepts.
//!
//! A pool of requests is generated and encoded (and compressed) before the clock starts. Each of
//! `--streams` workers then sends requests back to back (closed loop), or, with `--rate`, at
//! scheduled times shared by all workers (open loop: a request's latency counts from when it was
//! due, so a slow server cannot hide its queueing). Nothing is retried. Only requests that complete
//! inside the measured window (after the warm-up) count towards rates and latency; totals over the
//! whole run are reported too, so a benchmark can compare what was accepted with what arrived.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;
use tollgate::wire::testdata::TraceGen;
use tracing::{info, warn};

use crate::client::{ClientError, Conn, Outcome, Protocol, Target};
use crate::procstat;
use crate::sink::SinkStats;

mod report;
mod worker;

pub use report::*;
use worker::*;
/// `send` options.
#[derive(Debug, Clone, clap::Args)]
pub struct SendArgs {
    /// Where to send: `http://host:port` (gRPC) or `http://host:port[/path]` (HTTP).
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    pub endpoint: String,
    /// OTLP transport.
    #[arg(long, value_enum, default_value_t = Protocol::Grpc)]
    pub protocol: Protocol,
    /// Concurrent requests in flight (one worker each).
    #[arg(long, default_value_t = 16)]
    pub streams: usize,
    /// gRPC connections the streams share (default: one per stream). HTTP uses one per stream.
    #[arg(long)]
    pub connections: Option<usize>,
    /// Spans per request.
    #[arg(long, default_value_t = 500)]
    pub spans: usize,
    /// Distinct pre-generated requests, sent round robin.
    #[arg(long, default_value_t = 64)]
    pub pool: usize,
    /// Seed of the request generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Measured duration, after the warm-up.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Warm-up before measuring.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Send exactly this many requests instead (no warm-up, no duration); the window is the whole run.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Target rate in spans per second (open loop); default: as fast as the server answers.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Gzip request bodies (compressed once, before the run).
    #[arg(long)]
    pub gzip: bool,
    /// The sink's stats URL (`http://host:port/stats`): report what it received during the window.
    #[arg(long)]
    pub sink_stats: Option<String>,
    /// A process (the collector) whose CPU use over the window and peak RSS to report.
    #[arg(long)]
    pub watch_pid: Option<u32>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// How long a connection waits after a retryable refusal (503/429, UNAVAILABLE,
    /// RESOURCE_EXHAUSTED) before it sends again, as OTLP exporters back off. `0s` sends again at
    /// once: a closed loop that then measures how fast refusals can be answered, and starves the
    /// sink that shares the harness core.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    pub refused_backoff: Duration,
}

struct Plan {
    start: Instant,
    warm_end: Instant,
    end: Instant,
    max_requests: Option<u64>,
    /// Time between requests (open loop), in nanoseconds.
    interval_ns: Option<u64>,
}

struct Shared {
    plan: Plan,
    pool: Vec<Bytes>,
    spans: u64,
    next: AtomicU64,
    target: Target,
    refused_backoff: Duration,
}

struct WorkerResult {
    window: Counts,
    total: Counts,
    hist: Histogram<u64>,
    first_error: Option<String>,
}

fn new_hist() -> Histogram<u64> {
    // 1 µs to 10 minutes, 3 significant digits. The bounds are constants, so this cannot fail.
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

/// Runs `send` and prints the report.
pub async fn run(args: SendArgs) -> anyhow::Result<()> {
    let report = measure(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_human(&report);
    }
    Ok(())
}

/// Builds the pool, runs the load and returns the report.
pub async fn measure(args: &SendArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(args.streams > 0, "--streams must be at least 1");
    anyhow::ensure!(args.spans > 0, "--spans must be at least 1");
    let target = Target::new(&args.endpoint, args.protocol, args.gzip)?;
    let mut tracegen = TraceGen::new(args.seed);
    let pool_size = args.pool.max(1);
    let mut raw_bytes = 0usize;
    let pool: Vec<Bytes> = (0..pool_size)
        .map(|_| {
            let req = tracegen.encoded(args.spans);
            let (raw, body) = target.body(&req)?;
            raw_bytes += raw;
            Ok(body)
        })
        .collect::<anyhow::Result<_>>()?;
    let request_bytes = raw_bytes as f64 / pool_size as f64;
    let body_bytes = pool.iter().map(Bytes::len).sum::<usize>() as f64 / pool_size as f64;
    info!(
        request_bytes,
        body_bytes,
        pool = pool_size,
        "Request pool ready."
    );

    let connections = match args.protocol {
        Protocol::Http | Protocol::HttpJson => args.streams,
        Protocol::Grpc => args
            .connections
            .unwrap_or(args.streams)
            .clamp(1, args.streams),
    };
    let mut conns: Vec<Conn> = Vec::with_capacity(args.streams);
    for i in 0..args.streams {
        let conn = match conns.get(i % connections).and_then(Conn::share) {
            Some(shared) if i >= connections => shared,
            _ => Conn::open(&target).await?,
        };
        conns.push(conn);
    }

    let interval_ns = match args.rate {
        Some(rate) if rate > 0.0 => Some(((args.spans as f64 / rate) * 1e9).max(1.0) as u64),
        Some(_) => anyhow::bail!("--rate must be positive"),
        None => None,
    };
    // With a fixed request count the window is the whole run: sample before the first request.
    let before = match args.requests {
        Some(_) => Some((
            sample(args.sink_stats.as_deref(), args.watch_pid).await,
            Instant::now(),
        )),
        None => None,
    };
    let start = Instant::now();
    let far = start + Duration::from_secs(10 * 365 * 24 * 3600);
    let plan = match args.requests {
        Some(n) => Plan {
            start,
            warm_end: start,
            end: far,
            max_requests: Some(n),
            interval_ns,
        },
        None => Plan {
            start,
            warm_end: start + args.warmup,
            end: start + args.warmup + args.duration,
            max_requests: None,
            interval_ns,
        },
    };
    let shared = Arc::new(Shared {
        plan,
        pool,
        spans: args.spans as u64,
        next: AtomicU64::new(0),
        target,
        refused_backoff: args.refused_backoff,
    });

    // Otherwise sample at the window's edges: sink counters and the watched process's CPU time.
    let sampler = match before {
        Some(_) => None,
        None => {
            let shared = shared.clone();
            let sink_url = args.sink_stats.clone();
            let pid = args.watch_pid;
            Some(tokio::spawn(async move {
                tokio::time::sleep_until(shared.plan.warm_end).await;
                let s0 = (sample(sink_url.as_deref(), pid).await, Instant::now());
                tokio::time::sleep_until(shared.plan.end).await;
                let s1 = (sample(sink_url.as_deref(), pid).await, Instant::now());
                (s0, s1)
            }))
        }
    };

    let mut workers = Vec::with_capacity(args.streams);
    for conn in conns {
        workers.push(tokio::spawn(worker(shared.clone(), conn)));
    }
    let edges = match sampler {
        Some(task) => Some(task.await?),
        None => None,
    };

    let mut window = Counts::default();
    let mut total = Counts::default();
    let mut hist = new_hist();
    let mut first_error = None;
    // In-flight requests at the end of the window are allowed to finish (they count in totals).
    for w in workers {
        match tokio::time::timeout(Duration::from_secs(60), w).await {
            Ok(Ok(r)) => {
                window.add(&r.window);
                total.add(&r.total);
                if let Err(error) = hist.add(&r.hist) {
                    warn!(%error, "Cannot merge a worker's latency histogram.");
                }
                if first_error.is_none() {
                    first_error = r.first_error;
                }
            }
            Ok(Err(e)) => warn!(error = %e, "A worker panicked."),
            Err(_) => warn!("A worker did not finish within 60 s of the end; its counts are lost."),
        }
    }
    let ((s0, t0), (s1, t1)) = match (edges, before) {
        (Some(edges), _) => edges,
        (None, Some(before)) => (
            before,
            (
                sample(args.sink_stats.as_deref(), args.watch_pid).await,
                Instant::now(),
            ),
        ),
        (None, None) => unreachable!("either sampled before or at the edges"),
    };
    let window_secs = match args.requests {
        Some(_) => (t1 - shared.plan.start).as_secs_f64(),
        None => args.duration.as_secs_f64(),
    };
    let measured_secs = (t1 - t0).as_secs_f64().max(1e-9);

    let sink = match (s0.sink, s1.sink) {
        (Some(a), Some(b)) => {
            let spans = b.spans.saturating_sub(a.spans);
            Some(SinkWindow {
                spans,
                spans_per_sec: spans as f64 / measured_secs,
                total_spans_at_end: b.spans,
                total_spans_at_start: a.spans,
            })
        }
        _ => None,
    };
    let process = match (args.watch_pid, s0.cpu, s1.cpu) {
        (Some(pid), Some(a), Some(b)) => {
            let cpu = (b - a).max(0.0);
            Some(ProcessWindow {
                pid,
                cpu_percent: 100.0 * cpu / measured_secs,
                cpu_us_per_span: if window.accepted_spans > 0 {
                    cpu * 1e6 / window.accepted_spans as f64
                } else {
                    0.0
                },
                peak_rss_mib: s1.peak_rss_kb.unwrap_or(0) as f64 / 1024.0,
            })
        }
        _ => None,
    };
    let ms = |v: u64| v as f64 / 1000.0;
    let latency = if hist.is_empty() {
        Latency::default()
    } else {
        Latency {
            p50_ms: ms(hist.value_at_quantile(0.50)),
            p90_ms: ms(hist.value_at_quantile(0.90)),
            p99_ms: ms(hist.value_at_quantile(0.99)),
            max_ms: ms(hist.max()),
            mean_ms: hist.mean() / 1000.0,
        }
    };
    Ok(Report {
        protocol: args.protocol,
        endpoint: args.endpoint.clone(),
        streams: args.streams,
        connections,
        spans_per_request: args.spans,
        request_bytes,
        body_bytes,
        gzip: args.gzip,
        rate_target: args.rate,
        warmup_secs: if args.requests.is_some() {
            0.0
        } else {
            args.warmup.as_secs_f64()
        },
        window_secs,
        accepted_spans_per_sec: window.accepted_spans as f64 / window_secs.max(1e-9),
        window,
        latency,
        total,
        sink,
        process,
        first_error,
    })
}
