//! Exporters: one bounded queue, batcher and retry loop per destination.
//!
//! [`validate`] checks `[[exporters]]` purely (no I/O); [`ValidatedExporters::build`] opens
//! clients and files and starts one worker per exporter. [`Exporters::dispatch`] never waits: it
//! offers a shared batch to each exporter's own queue, and a full queue drops that batch for that
//! exporter only. A destination file (`langfuse.rs`, `tempo.rs`, `honeycomb.rs`) holds only what
//! differs; the HTTP/gRPC clients (`otlp_http.rs`, `otlp_grpc.rs`), batching (`batch.rs`) and
//! retry (`retry.rs`) live once.

mod batch;
mod common;
pub mod config;
pub mod console;
mod disk;
mod file;
pub mod honeycomb;
pub mod langfuse;
pub mod metrics;
pub mod otlp_grpc;
mod otlp_http;
pub mod postgres;
mod queue;
pub mod retry;
pub mod tempo;
mod tls;
mod transport;

use std::any::Any;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use config::{Durability, ExporterConfig, ExporterKind, QueueKind, SpanFilter};

use common::Target;
use metrics::ExporterMetrics;
pub use queue::SyncWait;
use queue::{BatchQueue, ExportQueue, PushError};
use transport::Transport;

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("tollgate/", env!("CARGO_PKG_VERSION"));

/// Why exporters could not be validated or built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// An `[[exporters]]` entry is not valid.
    #[error("exporter {name:?}: {reason}")]
    Invalid {
        /// The exporter's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// TLS setup failed (e.g. an unreadable `ca_file`).
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// A file could not be opened.
    #[error("{0}")]
    Io(String),
}

/// One shared, immutable batch of spans on its way to every exporter.
pub struct ExportBatch {
    /// An encoded `ExportTraceServiceRequest`.
    pub bytes: Bytes,
    /// How many spans it holds.
    pub spans: usize,
    /// The pipeline's memory permit: released when the last exporter is done with the batch.
    guard: Option<Box<dyn Any + Send + Sync>>,
}

impl ExportBatch {
    /// A batch of `spans` spans.
    pub fn new(bytes: Bytes, spans: usize) -> Self {
        Self {
            bytes,
            spans,
            guard: None,
        }
    }

    /// Attaches a guard that is dropped when every exporter has sent or dropped this batch.
    pub fn with_guard(mut self, guard: Box<dyn Any + Send + Sync>) -> Self {
        self.guard = Some(guard);
        self
    }

    /// True when a guard is attached.
    pub fn has_guard(&self) -> bool {
        self.guard.is_some()
    }
}

impl std::fmt::Debug for ExportBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportBatch")
            .field("bytes", &self.bytes.len())
            .field("spans", &self.spans)
            .field("guard", &self.guard.is_some())
            .finish()
    }
}

/// What a dispatch needs before the request may be acknowledged.
#[derive(Debug, Default)]
pub struct Queued {
    /// A disk queue could not take the batch (full, or a write failed): refuse the request
    /// with a retryable answer.
    pub refused: bool,
    /// Disk queues with `durability = "synced"`: their fsyncs to wait for.
    pub syncs: Vec<SyncWait>,
}

impl Queued {
    /// Adds another dispatch's needs.
    pub fn merge(&mut self, other: Queued) {
        self.refused |= other.refused;
        self.syncs.extend(other.syncs);
    }

    /// Waits for every fsync; true when the request may be acknowledged.
    pub async fn wait(self) -> bool {
        if self.refused {
            return false;
        }
        let mut ok = true;
        for s in self.syncs {
            ok &= s.wait().await;
        }
        ok
    }
}

/// One exporter after validation: where and how it sends.
#[derive(Debug, Clone)]
pub struct ValidatedExporter {
    config: ExporterConfig,
    target: Target,
    max_request_bytes: Option<usize>,
}

impl ValidatedExporter {
    /// The exporter's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }
}

/// Every exporter, validated, not yet started.
#[derive(Debug, Clone)]
pub struct ValidatedExporters(Vec<ValidatedExporter>);

/// One problem of one `[[exporters]]` entry, for `check` and the config file's own report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The entry's position in `[[exporters]]` (0-based).
    pub index: usize,
    /// The key at fault, when one is (`api_key`); `None` for the entry as a whole.
    pub key: Option<&'static str>,
    /// What is wrong, starting with the exporter's name.
    pub message: String,
}

/// Checks every `[[exporters]]` entry without touching files or sockets; the first problem.
pub fn validate(configs: &[ExporterConfig]) -> Result<ValidatedExporters, ExportError> {
    let mut seen = Seen::default();
    let mut out = Vec::with_capacity(configs.len());
    for cfg in configs {
        match check(cfg, &mut seen) {
            Ok(v) => out.push(v),
            Err(mut problems) => {
                return Err(ExportError::Invalid {
                    name: cfg.name.clone(),
                    reason: problems.swap_remove(0).1,
                })
            }
        }
    }
    Ok(ValidatedExporters(out))
}

/// Every problem of every `[[exporters]]` entry: each stray key of its kind on its own, then
/// the entry's first other problem.
pub fn problems(configs: &[ExporterConfig]) -> Vec<Problem> {
    let mut seen = Seen::default();
    let mut out = Vec::new();
    for (index, cfg) in configs.iter().enumerate() {
        if let Err(problems) = check(cfg, &mut seen) {
            out.extend(problems.into_iter().map(|(key, reason)| Problem {
                index,
                key,
                message: format!("exporter {:?}: {reason}", cfg.name),
            }));
        }
    }
    out
}

/// What must be unique across exporters.
#[derive(Default)]
struct Seen<'a> {
    names: HashSet<&'a str>,
    disk_paths: HashSet<std::path::PathBuf>,
}

type KeyProblems = Vec<(Option<&'static str>, String)>;

fn check<'a>(
    cfg: &'a ExporterConfig,
    seen: &mut Seen<'a>,
) -> Result<ValidatedExporter, KeyProblems> {
    let one = |key: Option<&'static str>, reason: &str| Err(vec![(key, reason.to_owned())]);
    if cfg.name.is_empty() {
        return one(Some("name"), "`name` must not be empty");
    }
    if !seen.names.insert(cfg.name.as_str()) {
        return one(Some("name"), "two exporters have this name");
    }
    let stray = cfg.stray_keys();
    if !stray.is_empty() {
        return Err(stray.into_iter().map(|(k, m)| (Some(k), m)).collect());
    }
    for (key, zero) in [
        ("concurrency", cfg.concurrency == 0),
        (
            "batch",
            cfg.batch.max_spans == 0 || cfg.batch.max_bytes == 0,
        ),
        (
            "queue",
            cfg.queue.max_batches == 0 || cfg.queue.max_bytes == 0,
        ),
    ] {
        if zero {
            return one(
                Some(key),
                "concurrency, batch.max_spans, batch.max_bytes, queue.max_batches and \
                 queue.max_bytes must be > 0",
            );
        }
    }
    if cfg.queue.kind == config::QueueKind::Disk {
        let Some(path) = &cfg.queue.path else {
            return one(
                Some("queue"),
                "queue kind = \"disk\" needs a `path` (or a `[storage] dir` for the default)",
            );
        };
        if !seen.disk_paths.insert(path.clone()) {
            return one(
                Some("queue"),
                "two disk queues have this path; each exporter needs its own",
            );
        }
        if cfg.queue.max_size.as_u64() < (1 << 20) {
            return one(Some("queue"), "queue.max_size must be at least 1 MiB");
        }
    }
    if cfg.timeout.is_zero() {
        return one(Some("timeout"), "timeout must be > 0");
    }
    if cfg.retry.initial_interval.is_zero() || cfg.retry.max_interval < cfg.retry.initial_interval {
        return one(
            Some("retry"),
            "retry needs 0 < initial_interval <= max_interval",
        );
    }
    if cfg.max_request_bytes == Some(0) {
        return one(Some("max_request_bytes"), "max_request_bytes must be > 0");
    }
    let target = target(cfg).map_err(|reason| vec![(None, reason)])?;
    let max_request_bytes = match cfg.kind {
        ExporterKind::Tempo => Some(
            cfg.max_request_bytes
                .unwrap_or(tempo::DEFAULT_MAX_REQUEST_BYTES),
        ),
        _ => cfg.max_request_bytes,
    };
    Ok(ValidatedExporter {
        config: cfg.clone(),
        target,
        max_request_bytes,
    })
}

fn target(cfg: &ExporterConfig) -> common::ConfigResult<Target> {
    use config::Encoding;
    use otlp_http::ResponseKind;
    let network_only = |what: &str| -> common::ConfigResult<()> {
        if cfg.endpoint.is_some()
            || !cfg.headers.is_empty()
            || cfg.ca_file.is_some()
            || cfg.insecure
        {
            return Err(format!(
                "{what} takes no endpoint, headers, ca_file or insecure"
            ));
        }
        Ok(())
    };
    match cfg.kind {
        ExporterKind::OtlpGrpc => {
            let ep = cfg
                .endpoint
                .clone()
                .ok_or("otlp_grpc needs an `endpoint`")?;
            Ok(Target::Grpc(common::grpc_spec(cfg, ep)?))
        }
        ExporterKind::OtlpHttp => {
            let url = match (&cfg.traces_endpoint, &cfg.endpoint) {
                (Some(t), _) => t.clone(),
                (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
                (None, None) => {
                    return Err("otlp_http needs `endpoint` or `traces_endpoint`".into())
                }
            };
            let enc = cfg.encoding.unwrap_or(Encoding::Protobuf);
            Ok(Target::Http(common::http_spec(
                cfg,
                url,
                enc,
                ResponseKind::Otlp,
            )?))
        }
        ExporterKind::Langfuse => Ok(Target::Http(langfuse::spec(cfg)?)),
        ExporterKind::Tempo => tempo::target(cfg),
        ExporterKind::Honeycomb => honeycomb::target(cfg),
        ExporterKind::File => {
            network_only("file")?;
            let path = cfg.path.clone().ok_or("file needs a `path`")?;
            Ok(Target::File(path))
        }
        ExporterKind::Console => {
            network_only("console")?;
            Ok(Target::Console)
        }
        ExporterKind::Postgres => {
            if cfg.endpoint.is_some() || !cfg.headers.is_empty() || cfg.insecure {
                return Err(
                    "postgres takes no endpoint, headers or insecure (the `url` says where; \
                     sslmode=disable turns TLS off)"
                        .into(),
                );
            }
            if cfg.spans != SpanFilter::All {
                return Err(
                    "postgres takes no `spans` filter: it gets one row per LLM call".into(),
                );
            }
            if cfg.compression.is_some() || cfg.max_request_bytes.is_some() {
                return Err("postgres takes no compression or max_request_bytes".into());
            }
            Ok(Target::Postgres(ledger_target(cfg)?))
        }
    }
}

/// Where a `postgres` exporter's ledger is (also read by `tollgate usage`), checked.
pub fn ledger_target(cfg: &ExporterConfig) -> Result<crate::ledger::LedgerTarget, String> {
    let target = crate::ledger::LedgerTarget {
        url: cfg.url.clone().ok_or("postgres needs a `url`")?,
        schema: cfg
            .schema
            .clone()
            .unwrap_or_else(|| crate::ledger::DEFAULT_SCHEMA.into()),
        user_attribute: cfg
            .user_attribute
            .clone()
            .unwrap_or_else(|| crate::ledger::DEFAULT_USER_ATTRIBUTE.into()),
        attributes: cfg.attributes.clone().unwrap_or_default(),
        ca_file: cfg.ca_file.clone(),
    };
    target.check()?;
    Ok(target)
}

impl ValidatedExporters {
    /// The validated exporters.
    pub fn iter(&self) -> impl Iterator<Item = &ValidatedExporter> {
        self.0.iter()
    }

    /// Opens clients and files and starts one worker per exporter. Must run inside a tokio runtime.
    pub fn build(self) -> Result<Exporters, ExportError> {
        let (shutdown_tx, shutdown_rx) = watch::channel(None);
        let mut transports: Vec<Arc<dyn Transport>> = Vec::with_capacity(self.0.len());
        // Build every transport first so a failure starts nothing.
        for v in &self.0 {
            let t: Arc<dyn Transport> = match &v.target {
                Target::Grpc(s) => Arc::new(otlp_grpc::GrpcTransport::build(s.clone())?),
                Target::Http(s) => Arc::new(otlp_http::HttpTransport::build(s.clone())?),
                Target::File(p) => Arc::new(file::FileTransport::build(p)?),
                Target::Console => Arc::new(console::ConsoleTransport),
                Target::Postgres(t) => Arc::new(postgres::PostgresTransport::build(
                    &v.config.name,
                    t,
                    v.config.concurrency,
                )?),
            };
            transports.push(t);
        }
        let mut ledger_keys: std::collections::HashMap<String, Vec<String>> = self
            .0
            .iter()
            .filter_map(|v| match &v.target {
                Target::Postgres(t) => Some((v.config.name.clone(), t.keys())),
                _ => None,
            })
            .collect();
        let mut exporters = Vec::with_capacity(self.0.len());
        // Open every disk queue before starting anything, so a locked or unwritable directory
        // starts nothing.
        for (v, transport) in self.0.into_iter().zip(transports) {
            let cfg = v.config;
            let (queue, metrics) = open_queue(&cfg)?;
            let shared = Arc::new(batch::Shared {
                name: cfg.name.clone(),
                queue: queue.clone(),
                transport,
                metrics: metrics.clone(),
                batch: cfg.batch.clone(),
                retry: cfg.retry.clone(),
                timeout: cfg.timeout,
                max_request_bytes: v.max_request_bytes,
                shutdown: shutdown_rx.clone(),
            });
            let tracker = TaskTracker::new();
            let worker = tokio::spawn(batch::run(shared, cfg.concurrency, tracker.clone()));
            info!(exporter = %cfg.name, kind = ?cfg.kind, "Exporter started.");
            let scratch = cfg
                .concurrency
                .saturating_mul(cfg.batch.max_bytes)
                .saturating_mul(2);
            exporters.push(Handle {
                scratch,
                ledger_keys: ledger_keys.remove(&cfg.name),
                spans: cfg.spans,
                kind: cfg.kind,
                name: cfg.name,
                queue,
                metrics,
                worker: parking_lot::Mutex::new(Some(worker)),
                tracker,
            });
        }
        Ok(Exporters {
            exporters,
            shutdown_tx,
        })
    }
}

/// The exporter's queue and metrics, as configured (a disk queue is opened here).
fn open_queue(
    cfg: &ExporterConfig,
) -> Result<(Arc<ExportQueue>, Arc<ExporterMetrics>), ExportError> {
    let q = &cfg.queue;
    match (q.kind, &q.path) {
        (config::QueueKind::Disk, Some(path)) => {
            let max_size = q.max_size.as_u64();
            let metrics = Arc::new(ExporterMetrics::new(
                &cfg.name,
                usize::try_from(max_size).unwrap_or(usize::MAX),
            ));
            let opts = disk::DiskOptions {
                dir: path.clone(),
                max_size,
                durability: q.durability,
                sync_max_delay: q.sync_max_delay,
            };
            let queue = disk::DiskQueue::open(&cfg.name, opts, metrics.disk_metrics())
                .map_err(|e| ExportError::Io(format!("exporter {:?}: {e}", cfg.name)))?;
            Ok((Arc::new(ExportQueue::Disk(queue)), metrics))
        }
        _ => Ok((
            Arc::new(ExportQueue::Memory(BatchQueue::new(
                q.max_bytes,
                q.max_batches,
            ))),
            Arc::new(ExporterMetrics::new(&cfg.name, q.max_bytes)),
        )),
    }
}

struct Handle {
    /// `postgres`: the key attributes its rows carry.
    ledger_keys: Option<Vec<String>>,
    name: String,
    kind: ExporterKind,
    spans: SpanFilter,
    queue: Arc<ExportQueue>,
    metrics: Arc<ExporterMetrics>,
    worker: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
    tracker: TaskTracker,
    /// Working memory of its requests in flight (see [`Exporters::scratch_bytes`]).
    scratch: usize,
}

/// A snapshot of one exporter's state, for `/readyz` and the status page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExporterHealth {
    /// The exporter's name.
    pub name: String,
    /// Batches waiting.
    pub queue_batches: usize,
    /// Bytes waiting.
    pub queue_bytes: usize,
    /// Queue capacity in batches.
    pub capacity_batches: usize,
    /// Queue capacity in bytes.
    pub capacity_bytes: usize,
    /// When a request last succeeded.
    pub last_success: Option<SystemTime>,
    /// When the last failure happened, and what it was.
    pub last_error: Option<(SystemTime, String)>,
    /// Batches taken from the queue and not finished (sending or waiting to retry).
    pub in_flight_batches: usize,
    /// Spans in them.
    pub in_flight_spans: usize,
    /// Of those, batches waiting to retry.
    pub retrying_batches: usize,
    /// Failed attempts since the last success.
    pub consecutive_failures: u64,
    /// [`metrics::FAILING_AFTER`] or more attempts in a row failed.
    pub failing: bool,
}

/// The running exporters.
pub struct Exporters {
    exporters: Vec<Handle>,
    shutdown_tx: watch::Sender<Option<Instant>>,
}

impl std::fmt::Debug for Exporters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.exporters.iter().map(|h| &h.name))
            .finish()
    }
}

impl Drop for Exporters {
    /// Without a [`Exporters::drain`], stops the workers at once: whatever is still queued or
    /// in flight is dropped and counted as `reason="shutdown"`.
    fn drop(&mut self) {
        if self.shutdown_tx.borrow().is_none() {
            self.shutdown_tx.send_replace(Some(Instant::now()));
        }
        for h in &self.exporters {
            h.queue.close();
        }
    }
}

impl Exporters {
    /// Validates and builds in one step.
    pub fn from_configs(configs: &[ExporterConfig]) -> Result<Self, ExportError> {
        validate(configs)?.build()
    }

    /// Bytes the exporters may hold beyond the batches' own (budgeted) bytes while sending:
    /// per exporter, `concurrency` requests of up to `batch.max_bytes` joined into one body plus
    /// its encoded (compressed) copy, or read back from a disk queue. Kept out of the memory
    /// budget for the whole run, so an outage with every request in flight and retrying still
    /// stays within `memory_limit_mib`.
    pub fn scratch_bytes(&self) -> usize {
        self.exporters
            .iter()
            .fold(0usize, |sum, h| sum.saturating_add(h.scratch))
    }

    /// Each exporter's kind and `spans` filter, in config order (the `exporter` positions taken
    /// by [`Exporters::dispatch_to`] and [`Exporters::count_filtered`]).
    pub fn routes(&self) -> impl Iterator<Item = (ExporterKind, SpanFilter)> + '_ {
        self.exporters.iter().map(|h| (h.kind, h.spans))
    }

    /// The key attributes ledger rows must carry: every `postgres` exporter's `user_attribute`
    /// and `attributes`, each once (empty without a ledger exporter).
    pub fn ledger_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for k in self
            .exporters
            .iter()
            .filter_map(|h| h.ledger_keys.as_ref())
            .flatten()
        {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        keys
    }

    /// Offers a batch to every exporter's queue without waiting. A full (or closed) memory queue
    /// drops it for that exporter only, counted as `reason="queue_full"` (or `"shutdown"`); a
    /// disk queue that cannot take it makes the answer [`Queued::refused`].
    pub fn dispatch(&self, batch: Arc<ExportBatch>) -> Queued {
        let all: Vec<usize> = (0..self.exporters.len()).collect();
        self.dispatch_to(&all, batch)
    }

    /// [`Exporters::dispatch`] to the exporters at positions `exporters` only. Disk queues are
    /// written first: when one refuses, the memory queues are not offered the batch (the client
    /// is told to retry; the disk queues that did take it may then hold it twice).
    pub fn dispatch_to(&self, exporters: &[usize], batch: Arc<ExportBatch>) -> Queued {
        let mut queued = Queued::default();
        if batch.bytes.is_empty() || batch.spans == 0 {
            return queued;
        }
        let targets = || exporters.iter().filter_map(|&i| self.exporters.get(i));
        for h in targets().filter(|h| h.queue.is_disk()) {
            if !Self::push(h, batch.clone(), &mut queued) {
                queued.refused = true;
                return queued;
            }
        }
        for h in targets().filter(|h| !h.queue.is_disk()) {
            Self::push(h, batch.clone(), &mut queued);
        }
        queued
    }

    /// True when the request of `bytes` could be taken now: every disk queue has room for it
    /// (a request is acknowledged only once it is in each of them), and at least one queue
    /// would take it (or there are no exporters). A memory queue alone that is full never
    /// blocks the others: a request accepted then is delivered somewhere.
    pub fn has_room(&self, bytes: usize) -> bool {
        let disk_ok = self
            .exporters
            .iter()
            .filter(|h| h.queue.is_disk())
            .all(|h| h.queue.has_room(bytes));
        disk_ok
            && (self.exporters.is_empty() || self.exporters.iter().any(|h| h.queue.has_room(bytes)))
    }

    /// Counts `spans` spans left out by the `spans` filter of the exporters at `exporters`.
    pub fn count_filtered(&self, exporters: &[usize], spans: usize) {
        if spans == 0 {
            return;
        }
        for h in exporters.iter().filter_map(|&i| self.exporters.get(i)) {
            h.metrics.filtered(spans);
        }
    }

    /// Queues `batch` for `h`; false when a disk queue refused it (not counted as dropped: the
    /// request is refused).
    fn push(h: &Handle, batch: Arc<ExportBatch>, queued: &mut Queued) -> bool {
        let spans = batch.spans;
        match h.queue.try_push(batch) {
            Ok(p) => {
                h.metrics
                    .queue_len
                    .set(i64::try_from(p.batches).unwrap_or(i64::MAX));
                h.metrics
                    .queue_bytes
                    .set(i64::try_from(p.bytes).unwrap_or(i64::MAX));
                queued.syncs.extend(p.wait);
                true
            }
            Err(_) if h.queue.is_disk() => false,
            Err(PushError::Full) => {
                h.metrics
                    .drop_spans(&h.name, spans, "queue_full", "the exporter's queue is full");
                true
            }
            Err(PushError::Closed | PushError::Io) => {
                h.metrics
                    .drop_spans(&h.name, spans, "shutdown", "the exporter is shutting down");
                true
            }
        }
    }

    /// Flushes everything queued and in flight, retrying until `deadline`; what is still unsent
    /// then is dropped and counted as `reason="shutdown"`. Logs one line with the sum of the
    /// spans dropped that way (per exporter) and returns it.
    pub async fn drain(&self, deadline: Instant) -> u64 {
        let before: Vec<u64> = self
            .exporters
            .iter()
            .map(|h| h.metrics.dropped("shutdown"))
            .collect();
        self.shutdown_tx.send_replace(Some(deadline));
        for h in &self.exporters {
            h.queue.close();
        }
        for h in &self.exporters {
            let worker = h.worker.lock().take();
            if let Some(w) = worker {
                if let Err(e) = w.await {
                    warn!(exporter = %h.name, error = %e, "Exporter worker failed.");
                }
            }
            h.tracker.close();
            h.tracker.wait().await;
            h.queue.finish();
            info!(exporter = %h.name, "Exporter drained.");
        }
        let lost: Vec<(String, u64)> = self
            .exporters
            .iter()
            .zip(before)
            .map(|(h, b)| {
                (
                    h.name.clone(),
                    h.metrics.dropped("shutdown").saturating_sub(b),
                )
            })
            .collect();
        let total: u64 = lost.iter().map(|(_, n)| n).sum();
        let per_exporter = lost
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| format!("{name}={n}"))
            .collect::<Vec<_>>()
            .join(",");
        if total > 0 {
            warn!(
                spans_not_delivered = total,
                per_exporter = %per_exporter,
                "Shutdown: spans not delivered before the deadline (counted in tollgate_exporter_dropped_spans_total{{reason=\"shutdown\"}})."
            );
        } else {
            info!(
                spans_not_delivered = 0,
                "Shutdown: every queued span was delivered (or kept in a disk queue)."
            );
        }
        total
    }

    /// A health snapshot per exporter.
    pub fn health(&self) -> Vec<ExporterHealth> {
        self.exporters
            .iter()
            .map(|h| {
                let (queue_batches, queue_bytes) = h.queue.len();
                let (capacity_batches, capacity_bytes) = h.queue.capacity();
                ExporterHealth {
                    name: h.name.clone(),
                    queue_batches,
                    queue_bytes,
                    capacity_batches,
                    capacity_bytes,
                    last_success: *h.metrics.last_success.lock(),
                    last_error: h.metrics.last_error.lock().clone(),
                    in_flight_batches: gauge(&h.metrics.in_flight_batches),
                    in_flight_spans: gauge(&h.metrics.in_flight_spans),
                    retrying_batches: gauge(&h.metrics.retrying),
                    consecutive_failures: gauge(&h.metrics.consecutive_failures) as u64,
                    failing: h.metrics.is_failing(),
                }
            })
            .collect()
    }
}

fn gauge(g: &prometheus::IntGauge) -> usize {
    usize::try_from(g.get()).unwrap_or(0)
}
