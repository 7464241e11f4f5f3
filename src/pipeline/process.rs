//! The processor chain run on every accepted request: LLM recognition and pricing, task
//! roll-ups and alert rules, and the LLM metrics. It reads spans through zero-copy views and
//! produces one edit per span; spans that are not LLM calls and carry nothing new stay untouched.
//!
//! Within a request, non-root spans are processed before root spans, so a task's root span that
//! arrives in the same request as its children already carries their roll-up.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{Processor, SpanFacts};
use crate::alert::{AlertEngine, AlertsConfig};
use crate::llm::enrich::{langfuse_details, prepare, Prepared};
use crate::llm::{Enricher, LlmOutcome, PricingConfig};
use crate::state::StateStore;
use crate::task::{LlmUsage, TaskTracker, TasksConfig};
use crate::telemetry::llm_metrics::{CallObservation, LlmMetrics, TaskObservation};
use crate::telemetry::recent::{self, RecentSpend};
use crate::units::Unpriced;
use crate::wire::attr::{push_span_attribute, NewValue};
use crate::wire::edit::SpanEdit;
use crate::wire::{RequestIndex, SpanAttrs, SpanRef};

mod stages;
use stages::Seen;

/// Everything tollgate does to spans between receiving and exporting them.
pub struct Processing {
    enricher: Enricher,
    engine: Arc<AlertEngine>,
    tasks: TasksConfig,
    metrics: Arc<LlmMetrics>,
    extra_keys: Vec<String>,
    recent: Arc<RecentSpend>,
    budgets: Option<Arc<crate::budget::Budgets>>,
    state: Arc<dyn StateStore>,
    /// How long a call claim lives (`[pricing] dedupe_ttl`).
    claim_ttl_ms: u64,
}

impl std::fmt::Debug for Processing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processing").finish_non_exhaustive()
    }
}

/// Why the processor could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProcessingError {
    /// `[pricing]` is invalid.
    #[error("[pricing]: {0}")]
    Pricing(String),
    /// `[alerts]` is invalid.
    #[error("[alerts]: {0}")]
    Alerts(String),
    /// `[metrics]` is invalid.
    #[error("[metrics]: {0}")]
    Metrics(String),
}

fn join<E: std::fmt::Display>(errors: &[E]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Processing {
    /// Builds the chain over an in-memory state store. Must run inside a tokio runtime when
    /// alert notifiers are configured.
    pub fn new(
        pricing: &PricingConfig,
        tasks: &TasksConfig,
        alerts: &AlertsConfig,
        metrics: &crate::telemetry::llm_metrics::MetricsConfig,
        tracker: Arc<TaskTracker>,
    ) -> Result<Self, ProcessingError> {
        let state: Arc<dyn StateStore> = Arc::new(crate::state::MemoryStore::new());
        Self::with_state(pricing, tasks, alerts, metrics, tracker, state)
    }

    /// Builds the chain over `state`: call claims, task totals, fire-once markers and window
    /// firing go through it (restored from it, for a durable store).
    pub fn with_state(
        pricing: &PricingConfig,
        tasks: &TasksConfig,
        alerts: &AlertsConfig,
        metrics: &crate::telemetry::llm_metrics::MetricsConfig,
        tracker: Arc<TaskTracker>,
        state: Arc<dyn StateStore>,
    ) -> Result<Self, ProcessingError> {
        tracker.set_state(state.clone());
        let enricher = Enricher::new(pricing).map_err(|e| ProcessingError::Pricing(join(&e)))?;
        let metrics = Arc::new(
            LlmMetrics::new(metrics).map_err(|e| ProcessingError::Metrics(e.to_string()))?,
        );
        let extra_keys: Vec<String> = metrics.extra_attributes().map(str::to_owned).collect();
        {
            let metrics = metrics.clone();
            let keys = extra_keys.len();
            tracker.on_ended(move |summary| {
                let extra = vec![None; keys];
                metrics.observe_task(&TaskObservation {
                    service: &summary.service,
                    task_type: &summary.task_type,
                    extra: &extra,
                    cost_nano_usd: summary.totals.cost_nano_usd,
                    llm_calls: summary.totals.llm_calls,
                });
            });
        }
        let engine = Arc::new(
            AlertEngine::new(alerts, tracker)
                .map_err(|e| ProcessingError::Alerts(join(&e)))?
                .with_state(state.clone()),
        );
        Ok(Self {
            enricher,
            engine,
            tasks: tasks.clone(),
            metrics,
            extra_keys,
            recent: Arc::new(RecentSpend::default()),
            budgets: None,
            state,
            claim_ttl_ms: pricing.dedupe_ttl.as_millis() as u64,
        })
    }

    /// Counts priced calls in `budgets` (one state batch per request).
    pub fn set_budgets(&mut self, budgets: Arc<crate::budget::Budgets>) {
        self.budgets = Some(budgets);
    }

    /// The state store the stages write through.
    pub fn state(&self) -> &Arc<dyn StateStore> {
        &self.state
    }

    /// The last hour of spend by model and service (the status page).
    pub fn recent(&self) -> &Arc<RecentSpend> {
        &self.recent
    }

    /// The alert engine (task API, alert stream, window ticks).
    pub fn engine(&self) -> &Arc<AlertEngine> {
        &self.engine
    }

    /// Applies a reloaded configuration: new prices and rules for new spans. An invalid section
    /// keeps the old one (the reload machinery has validated the file already, so this is rare).
    pub fn reload(&self, pricing: &PricingConfig, alerts: &AlertsConfig) {
        if let Err(errors) = self.enricher.pricer().reload(pricing) {
            tracing::warn!(errors = %join(&errors), "New price table is invalid; keeping the old one.");
        }
        if let Err(errors) = self.engine.reload(alerts) {
            tracing::warn!(errors = %join(&errors), "New alert rules are invalid; keeping the old ones.");
        }
    }

    /// The llm half of a span: prices it (`claimed`: its call claim was the first in the
    /// state store), records its Langfuse extras, ledger row, call metrics and budget
    /// contribution, and says what the task and alert stages need of it.
    // One more argument than clippy likes: the request's budget batch travels with the span.
    #[allow(clippy::too_many_arguments)]
    fn price_span<'a>(
        &self,
        (i, span): (usize, &SpanRef<'a>),
        prepared: Option<(Prepared<'a>, bool)>,
        facts: &mut SpanFacts,
        rules: &crate::alert::AlertRules,
        now_ms: u64,
        last_task: &mut Option<Arc<str>>,
        budget: &mut crate::budget::Pending,
    ) -> Seen<'a> {
        let enriched = prepared.map(|(p, claimed)| self.enricher.finish_claimed(span, p, claimed));
        let outcome = enriched.as_ref().map(|e| &e.outcome);
        if let Some(o) = outcome {
            facts.mark_llm(i);
            if facts.wants().langfuse {
                if let Some(fields) = self.langfuse_fields(o) {
                    facts.add_langfuse(i, fields);
                }
            }
        }

        let mut hex = [0u8; 32];
        // Names are clipped before the read side keeps them (#19: 1 MiB names stay 256 bytes).
        let task_key = crate::units::clip_key_cow(self.tasks.task_key(span, &mut hex));
        let task_key = match last_task.take() {
            Some(last) if *last == *task_key => last,
            _ => Arc::from(&*task_key),
        };
        *last_task = Some(task_key.clone());
        let task_type = self.tasks.task_type(span).map(crate::units::clip_key_cow);
        let service = crate::units::clip_key(service_name(span));
        let mut attrs = Vec::new();
        rules.extract_attributes(span, &mut attrs);
        let is_task_root = span.parent_span_id().is_empty()
            && self
                .tasks
                .key_attribute
                .as_deref()
                .is_none_or(|key| span.attribute(key).is_some());
        let llm = outcome.filter(|o| o.is_llm_call);
        if let Some(o) = llm {
            let task_type = task_type.as_deref().unwrap_or("");
            self.observe_call(span, o, &service, task_type, now_ms);
            if let Some(b) = &self.budgets {
                // The cost the ledger and the cost counter record: priced calls only.
                let cost = o
                    .cost
                    .filter(|_| o.status == crate::llm::PricingStatus::Priced)
                    .map_or(0, |c| c.total());
                if cost > 0 {
                    b.collect(budget, i, span, crate::units::NanoUsd(cost), now_ms);
                }
            }
            if facts.wants().ledger {
                let ctx = super::ledger::RowContext {
                    task_id: &task_key,
                    service: &service,
                    task_type,
                };
                if let Some(row) = super::ledger::row(span, o, &ctx, facts.ledger_keys()) {
                    facts.add_ledger_row(&row);
                }
            }
        }
        Seen {
            i,
            llm: llm.map(llm_usage),
            task_key,
            task_type,
            service,
            attrs,
            is_task_root,
            edit: enriched.map(|e| e.edit),
        }
    }

    /// `langfuse.observation.usage_details` (a call with valid usage) and `cost_details` (a
    /// priced call whose cost tollgate writes, i.e. not one whose emitter's cost is kept by
    /// `replace_reported_cost = false`), encoded as span attribute fields.
    fn langfuse_fields(&self, o: &LlmOutcome) -> Option<Vec<u8>> {
        let d = langfuse_details(o)?;
        let mut out = Vec::with_capacity(d.usage_details.len() + 256);
        let keeps_reported = o.reported_cost_usd.is_some()
            && !self.enricher.pricer().snapshot().replace_reported_cost;
        if let Some(cost) = d.cost_details.as_deref().filter(|_| !keeps_reported) {
            push_span_attribute(
                &mut out,
                "langfuse.observation.cost_details",
                NewValue::Str(cost),
            );
        }
        push_span_attribute(
            &mut out,
            "langfuse.observation.usage_details",
            NewValue::Str(&d.usage_details),
        );
        Some(out)
    }

    fn observe_call(
        &self,
        span: &SpanRef<'_>,
        o: &LlmOutcome,
        service: &str,
        task_type: &str,
        now_ms: u64,
    ) {
        let extra: Vec<Option<&str>> = self
            .extra_keys
            .iter()
            .map(|k| {
                span.attribute(k)
                    .or_else(|| span.resource_attribute(k))
                    .and_then(|v| v.as_str())
            })
            .collect();
        let usage = o.usage.unwrap_or_default();
        let model = crate::units::clip_key(o.model.as_deref().unwrap_or(""));
        let model = &*model;
        let cost_nano_usd = o.cost.map(|c| c.total());
        self.recent.record(
            now_ms,
            model,
            service,
            &recent::Usage {
                cost_nano_usd: cost_nano_usd.unwrap_or(0),
                calls: 1,
                tokens: usage.tokens(),
                unpriced: unpriced(o),
            },
        );
        self.metrics.observe_call(&CallObservation {
            provider: o.provider.as_deref().unwrap_or(""),
            model,
            service,
            task_type,
            extra: &extra,
            cost_nano_usd,
            tokens: usage.tokens(),
            duration: o.duration_ns.map(Duration::from_nanos),
            time_to_first_token: o.time_to_first_token_ns.map(Duration::from_nanos),
        });
    }
}

fn llm_usage(o: &LlmOutcome) -> LlmUsage {
    let usage = o.usage.unwrap_or_default();
    LlmUsage {
        cost_nano_usd: o.total_nanos(),
        tokens: usage.tokens(),
        unpriced: unpriced(o),
    }
}

/// The call's unpriced reason, when it has no cost (nothing for a priced call).
fn unpriced(o: &LlmOutcome) -> Unpriced {
    Unpriced::one(o.status.as_str()).unwrap_or_default()
}

fn service_name<'a>(span: &SpanRef<'a>) -> &'a str {
    span.resource_attribute("service.name")
        .and_then(|v| v.as_str())
        .unwrap_or("")
}

impl Processor for Processing {
    fn process(
        &self,
        buf: &Bytes,
        index: &RequestIndex,
        edits: &mut [SpanEdit],
        facts: &mut SpanFacts,
    ) {
        // Children first, roots last: a root carries the roll-up of children in the same request.
        // Within each, reports that know the cache-write split first: of several spans reporting
        // one call, the first checked in is priced. Only LLM spans hold a `Prepared`.
        let n = edits.len();
        let mut prepared: Vec<Option<Prepared<'_>>> = Vec::new();
        let mut slot: Vec<u32> = vec![u32::MAX; n];
        // 0: child knowing the split, 1: other child, 2: root knowing the split, 3: other root,
        // 4: dropped.
        let mut class: Vec<u8> = vec![4; n];
        for (i, edit) in edits.iter().enumerate() {
            if matches!(edit, SpanEdit::Drop) {
                continue;
            }
            let span = SpanRef::new(buf, index, i);
            let p = prepare(&span);
            let knows = p.as_ref().is_some_and(Prepared::knows_write_split);
            class[i] = if span.parent_span_id().is_empty() {
                2
            } else {
                0
            } + u8::from(!knows);
            if p.is_some() {
                slot[i] = prepared.len() as u32;
                prepared.push(p);
            }
        }
        let now_ms = self.engine.tracker().clock().now_ms();
        let mut budget = crate::budget::Pending::default();
        // The llm stage: one batch of call claims (a span priced before, e.g. before a restart,
        // is not priced again), then pricing in the order above.
        let claimed = self.claim_calls(buf, index, &prepared, &slot, now_ms);
        let rules = self.engine.rules();
        let mut seen = Vec::new();
        let mut last_task = None;
        for c in 0..4 {
            for i in 0..n {
                if class[i] != c {
                    continue;
                }
                let span = SpanRef::new(buf, index, i);
                let s = slot[i] as usize;
                let p = prepared.get_mut(s).and_then(Option::take);
                let p = p.map(|p| (p, claimed.get(s).copied().unwrap_or(true)));
                let rec = self.price_span(
                    (i, &span),
                    p,
                    facts,
                    &rules,
                    now_ms,
                    &mut last_task,
                    &mut budget,
                );
                seen.push(rec);
            }
        }
        self.judge(buf, index, seen, edits, now_ms);
        // One budget batch for the whole request; a threshold reached adds its alert event to
        // the call that reached it.
        if let Some(b) = &self.budgets {
            for c in b.apply(budget) {
                if c.event.is_empty() {
                    continue;
                }
                match &mut edits[c.span_index] {
                    SpanEdit::Modify { append, .. } => append.extend_from_slice(&c.event),
                    SpanEdit::Drop => {}
                    e @ SpanEdit::Keep => {
                        *e = SpanEdit::Modify {
                            remove: Vec::new(),
                            append: c.event,
                        }
                    }
                }
            }
        }
    }
}
