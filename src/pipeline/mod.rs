//! The pipeline between receivers and exporters: admission (memory budget), validation, the
//! processor chain (LLM pricing, task roll-up, alert rules), and fan-out of one shared,
//! immutable batch to every exporter's queue.

mod fanout;
mod ledger;
pub mod memory;
mod metrics;
pub mod process;
pub mod validate;
pub mod variant;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;

pub use fanout::ExportFanout;
pub use memory::{MemoryBudget, MemoryPermit};
pub use metrics::{
    receiver_spans, ReceiverSpans, ACCEPTED_SPANS, LLM_TRACES, LLM_TRACES_EVICTED, REFUSED_SPANS,
};
pub use variant::{Built, SpanFacts, Variant, Wants};

use crate::wire::edit::{rebuild, SpanEdit};
use metrics::METRICS;

/// The receiver a request came through (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with a protobuf body.
    HttpProtobuf,
    /// OTLP/HTTP with a JSON body.
    HttpJson,
}

impl Transport {
    /// The metric label for this transport's receiver.
    pub fn receiver(self) -> &'static str {
        match self {
            Transport::Grpc => "otlp_grpc",
            Transport::HttpProtobuf | Transport::HttpJson => "otlp_http",
        }
    }
}

/// A request accepted by the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accepted {
    /// Spans dropped at ingest (bad ids); 0 when all were accepted.
    pub rejected_spans: i64,
    /// Why spans were rejected; empty when none were.
    pub error_message: String,
}

/// A request the pipeline refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The body is not a valid request (HTTP 400 / gRPC INVALID_ARGUMENT). Not retryable.
    #[error("{0}")]
    Invalid(String),
    /// The pipeline is full (HTTP 503 + Retry-After / gRPC UNAVAILABLE). Retryable.
    #[error("pipeline is full; retry after {retry_after:?}")]
    Full {
        /// How long the client should wait.
        retry_after: Duration,
    },
    /// The service is shutting down (HTTP 503 / gRPC UNAVAILABLE). Retryable elsewhere.
    #[error("tollgate is shutting down")]
    ShuttingDown,
}

/// Where receivers hand requests: the pipeline's entry point.
///
/// `body` is one encoded (decompressed) `ExportTraceServiceRequest`. The call returns once the
/// request has been validated, processed and queued for every exporter, or refused; a request
/// that was accepted is never dropped silently afterwards.
#[async_trait::async_trait]
pub trait TraceSink: Send + Sync + 'static {
    /// Submits one request.
    async fn submit(&self, body: Bytes, transport: Transport) -> Result<Accepted, Refused>;

    /// The memory budget receivers reserve from before they read, inflate or parse a request
    /// (`None`: no budget, e.g. a test sink).
    fn memory(&self) -> Option<MemoryBudget> {
        None
    }
}

/// `[pipeline]`: how much the pipeline may hold.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Total bytes of span data tollgate may hold (being processed or queued for any exporter)
    /// before receivers refuse new data with a retryable answer.
    #[serde(default = "default_memory_limit_mib")]
    pub memory_limit_mib: usize,
    /// On SIGTERM/SIGINT: how long to keep delivering queued spans before giving up (what is
    /// left is counted as dropped with `reason="shutdown"` and logged).
    #[serde(
        default = "default_shutdown_timeout",
        deserialize_with = "crate::config::duration::deserialize"
    )]
    pub shutdown_timeout: Duration,
    /// For `spans = "llm_traces"` exporters: how many traces known to contain an LLM span are
    /// remembered at most (the oldest are forgotten first, counted in
    /// `tollgate_pipeline_llm_traces_evicted_total{reason="capacity"}`).
    #[serde(default = "default_llm_traces_capacity")]
    pub llm_traces_capacity: usize,
    /// For `spans = "llm_traces"` exporters: how long a trace is remembered after its latest
    /// LLM span (e.g. `"10m"`); should exceed the time between a trace's first LLM span and
    /// its last span reaching tollgate.
    #[serde(
        default = "default_llm_traces_ttl",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub llm_traces_ttl: Duration,
}

fn default_llm_traces_capacity() -> usize {
    100_000
}

fn default_llm_traces_ttl() -> Duration {
    Duration::from_secs(600)
}

fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_memory_limit_mib() -> usize {
    512
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            memory_limit_mib: default_memory_limit_mib(),
            shutdown_timeout: default_shutdown_timeout(),
            llm_traces_capacity: default_llm_traces_capacity(),
            llm_traces_ttl: default_llm_traces_ttl(),
        }
    }
}

/// Where processed requests go: the exporters' fan-out. Must not block.
pub trait Fanout: Send + Sync + 'static {
    /// The distinct versions of a request the exporters want (see [`variant`]); asked once,
    /// when the pipeline is built. The default is one: every span, no extras.
    fn variants(&self) -> Vec<Variant> {
        vec![Variant::default()]
    }

    /// The key attributes ledger rows carry (for a [`Variant::ledger`]); asked once.
    fn ledger_keys(&self) -> Vec<String> {
        Vec::new()
    }

    /// Hands one processed request to the exporters. `built[i]` is the request built for
    /// `variants()[i]` (encoded, valid), or `None` when that variant holds no span; the fan-out
    /// takes what it sends. `spans` is the number of spans in the request as accepted (so an
    /// exporter's filter left out `spans - built.spans`). `permit` holds the bytes of every
    /// variant in the memory budget until every exporter is done with them. The answer says
    /// what the request must wait for (disk queue fsyncs) or that it must be refused.
    fn dispatch(
        &self,
        built: &mut [Option<Built>],
        spans: usize,
        permit: MemoryPermit,
    ) -> crate::export::Queued;

    /// False when no exporter could queue a request of `bytes` now (every queue is full): the
    /// pipeline then refuses it with a retryable answer instead of accepting data it would drop.
    fn has_room(&self, _bytes: usize) -> bool {
        true
    }
}

/// A per-request processor: sees every span (via the scanned index) and decides its edit.
pub trait Processor: Send + Sync + 'static {
    /// Fills `edits` (one per span, pre-set to `Keep`, or `Drop` for invalid spans that must be
    /// left alone), and in `facts` what [`SpanFacts::wants`] asks about each span.
    fn process(
        &self,
        buf: &Bytes,
        index: &crate::wire::RequestIndex,
        edits: &mut [SpanEdit],
        facts: &mut SpanFacts,
    );
}

/// The pipeline: validation, processing, admission and fan-out.
pub struct Pipeline<F: Fanout, P: Processor> {
    budget: MemoryBudget,
    fanout: F,
    processor: P,
    plan: variant::Plan,
    draining: AtomicBool,
    retry_after: Duration,
    started: std::time::Instant,
    /// Second (since `started`) of the last "full" warning; `u64::MAX` before the first.
    last_full_log: std::sync::atomic::AtomicU64,
}

impl<F: Fanout, P: Processor> Pipeline<F, P> {
    /// A pipeline with the given budget, processor and fan-out.
    pub fn new(config: &PipelineConfig, processor: P, fanout: F) -> Self {
        let budget = MemoryBudget::with_gauge(
            config.memory_limit_mib.saturating_mul(1 << 20),
            METRICS.memory_bytes.clone(),
        );
        METRICS.memory_limit_bytes.set(budget.limit() as i64);
        let plan = variant::Plan::new(
            fanout.variants(),
            config.llm_traces_capacity,
            config.llm_traces_ttl,
        )
        .with_ledger_keys(fanout.ledger_keys());
        Self {
            budget,
            fanout,
            processor,
            plan,
            draining: AtomicBool::new(false),
            retry_after: Duration::from_secs(1),
            started: std::time::Instant::now(),
            last_full_log: std::sync::atomic::AtomicU64::new(u64::MAX),
        }
    }

    /// Stops accepting: every later submit is refused with [`Refused::ShuttingDown`].
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// The memory budget (for health and the status page).
    pub fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    /// The fan-out.
    pub fn fanout(&self) -> &F {
        &self.fanout
    }

    /// The processor.
    pub fn processor(&self) -> &P {
        &self.processor
    }

    /// Validates, processes and dispatches one request synchronously. Unlike `submit`, does not
    /// wait for `durability = "synced"` disk queues to fsync it.
    pub fn handle(&self, body: Bytes, transport: Transport) -> Result<Accepted, Refused> {
        self.handle_queued(body, transport).map(|(a, _)| a)
    }

    /// [`Pipeline::handle`], also answering what to wait for before acknowledging.
    fn handle_queued(
        &self,
        body: Bytes,
        transport: Transport,
    ) -> Result<(Accepted, crate::export::Queued), Refused> {
        let receiver = transport.receiver();
        let index = crate::wire::scan(&body).map_err(|e| Refused::Invalid(e.to_string()))?;
        let total = index.spans.len();
        if self.draining.load(Ordering::SeqCst) {
            refused(receiver, "shutting_down", total);
            return Err(Refused::ShuttingDown);
        }
        if !self.fanout.has_room(body.len()) {
            refused(receiver, "pipeline_full", total);
            self.warn_full(
                receiver,
                total,
                "Every exporter queue is full; refusing request with a retryable answer.",
            );
            return Err(Refused::Full {
                retry_after: self.retry_after,
            });
        }
        let Some(mut permit) = self.budget.try_acquire(body.len()) else {
            refused(receiver, "pipeline_full", total);
            self.warn_full(
                receiver,
                total,
                "Pipeline memory limit reached; refusing request with a retryable answer.",
            );
            return Err(Refused::Full {
                retry_after: self.retry_after,
            });
        };

        let mut edits = vec![SpanEdit::Keep; total];
        let (rejected, message) = validate::drop_invalid_ids(&body, &index, &mut edits);
        if rejected > 0 {
            refused(receiver, "invalid_id", rejected);
            tracing::warn!(
                receiver,
                rejected,
                reason = message.as_deref().unwrap_or(""),
                "Dropped spans with invalid ids."
            );
        }
        let mut facts = self.plan.facts(total);
        self.processor
            .process(&body, &index, &mut edits, &mut facts);
        let kept = total - rejected;
        let mut queued = crate::export::Queued::default();
        if kept > 0 {
            if self.plan.is_plain() {
                let out = rebuild(&body, &index, &edits, None);
                permit.resize(out.len());
                let mut built = [Some(Built {
                    bytes: out,
                    spans: kept,
                })];
                queued = self.fanout.dispatch(&mut built, kept, permit);
            } else {
                let mut built = self.plan.build(&body, &index, &mut edits, &facts);
                permit.resize(distinct_bytes(&built));
                queued = self.fanout.dispatch(&mut built, kept, permit);
            }
        }
        if queued.refused {
            refused(receiver, "queue_full", kept);
            self.warn_full(
                receiver,
                kept,
                "A disk queue cannot take the request (max_size reached or the disk is full); refusing it with a retryable answer.",
            );
            return Err(Refused::Full {
                retry_after: self.retry_after,
            });
        }
        METRICS
            .accepted_spans
            .with_label_values(&[receiver])
            .inc_by(kept as u64);
        Ok((
            Accepted {
                rejected_spans: rejected as i64,
                error_message: message.unwrap_or_default(),
            },
            queued,
        ))
    }
}

impl<F: Fanout, P: Processor> Pipeline<F, P> {
    /// Logs a refusal for lack of room, at most once a second (they come in floods; every one is
    /// counted in `tollgate_receiver_refused_spans_total{reason="pipeline_full"}`).
    fn warn_full(&self, receiver: &str, spans: usize, message: &'static str) {
        let now = self.started.elapsed().as_secs();
        let last = self.last_full_log.load(Ordering::Relaxed);
        if (now > last || last == u64::MAX)
            && self
                .last_full_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                receiver,
                spans,
                used = self.budget.used(),
                limit = self.budget.limit(),
                "{message}"
            );
        }
    }
}

/// Bytes held by the built variants, counting a buffer shared by two variants once.
fn distinct_bytes(built: &[Option<Built>]) -> usize {
    let mut seen: Vec<*const u8> = Vec::with_capacity(built.len());
    let mut total = 0;
    for b in built.iter().flatten() {
        let ptr = b.bytes.as_ptr();
        if !seen.contains(&ptr) {
            seen.push(ptr);
            total += b.bytes.len();
        }
    }
    total
}

fn refused(receiver: &str, reason: &str, spans: usize) {
    METRICS
        .refused_spans
        .with_label_values(&[receiver, reason])
        .inc_by(spans as u64);
}

#[async_trait::async_trait]
impl<F: Fanout, P: Processor> TraceSink for Pipeline<F, P> {
    async fn submit(&self, body: Bytes, transport: Transport) -> Result<Accepted, Refused> {
        let (accepted, queued) = self.handle_queued(body, transport)?;
        if queued.syncs.is_empty() || queued.wait().await {
            return Ok(accepted);
        }
        // The fsync failed: the client must not count on it (it was logged by the queue).
        refused(transport.receiver(), "storage_error", 0);
        Err(Refused::Full {
            retry_after: self.retry_after,
        })
    }

    fn memory(&self) -> Option<MemoryBudget> {
        Some(self.budget.clone())
    }
}

/// A processor that changes nothing (passthrough).
#[derive(Debug, Default)]
pub struct NoProcessing;

impl Processor for NoProcessing {
    fn process(
        &self,
        _: &Bytes,
        _: &crate::wire::RequestIndex,
        _: &mut [SpanEdit],
        _: &mut SpanFacts,
    ) {
    }
}
