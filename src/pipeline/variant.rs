//! Per-exporter variants of a request: which spans an exporter gets (`spans = "all" | "llm" |
//! "llm_traces"`) and whether it gets the Langfuse extras.
//!
//! A request is scanned once. The processor notes, per span, what the variants need (is it an
//! LLM span, its Langfuse extras) — only when some exporter needs it. The pipeline then builds
//! each *distinct* variant at most once (one [`rebuild`] each: left-out spans become
//! [`SpanEdit::Drop`], extras are appended to the span's [`SpanEdit::Modify`]) and the fan-out
//! hands each to the exporters that want it. Variants that come out byte-identical (a `llm`
//! filter over a request of LLM spans only, say) share one buffer. When every exporter wants
//! every span without extras, none of this runs: the request is rebuilt once, as it always was.
//!
//! `llm_traces` needs memory across requests, because the spans of one trace arrive in several
//! requests (children usually before their parents): [`LlmTraces`] remembers, for a bounded
//! time and number, the traces known to contain an LLM span. A span passes when its trace is
//! known by the time its request is processed (an LLM span in the same request counts). Spans
//! of a trace that passed through before its first LLM span arrived were not sent to these
//! exporters and cannot be recalled.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

pub use crate::export::SpanFilter;

use super::metrics::METRICS;
use crate::wire::edit::{rebuild, SpanEdit};
use crate::wire::{RequestIndex, SpanAttrs, SpanRef};

/// One version of a request, as some exporters want it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Variant {
    /// Which spans it holds.
    pub spans: SpanFilter,
    /// With `langfuse.observation.cost_details` / `usage_details` on LLM calls (Langfuse only).
    pub langfuse: bool,
    /// Not spans but the request's ledger rows, one per LLM call (`postgres` only; `spans` and
    /// `langfuse` are then ignored).
    pub ledger: bool,
}

/// What the processor should note about each span, given the variants configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wants {
    /// Which spans are LLM spans (for `llm` and `llm_traces`).
    pub llm: bool,
    /// The Langfuse extras of each LLM call.
    pub langfuse: bool,
    /// A ledger row per LLM call.
    pub ledger: bool,
}

impl Wants {
    /// What `variants` need.
    pub fn of(variants: &[Variant]) -> Self {
        Self {
            llm: variants
                .iter()
                .any(|v| !v.ledger && v.spans != SpanFilter::All),
            langfuse: variants.iter().any(|v| !v.ledger && v.langfuse),
            ledger: variants.iter().any(|v| v.ledger),
        }
    }
}

/// What the processor learned about the spans of one request, as far as [`Wants`] asked.
/// With nothing wanted it holds nothing and allocates nothing.
#[derive(Debug, Default)]
pub struct SpanFacts {
    wants: Wants,
    llm: Vec<bool>,
    langfuse: Vec<(usize, Vec<u8>)>,
    /// Encoded `LedgerBatch.rows` fields, and how many.
    ledger: (Vec<u8>, usize),
    ledger_keys: std::sync::Arc<[String]>,
}

impl SpanFacts {
    /// Facts for a request of `spans` spans.
    pub fn new(wants: Wants, spans: usize) -> Self {
        Self {
            wants,
            llm: if wants.llm {
                vec![false; spans]
            } else {
                Vec::new()
            },
            langfuse: Vec::new(),
            ledger: (Vec::new(), 0),
            ledger_keys: std::sync::Arc::new([]),
        }
    }

    /// With the key attributes ledger rows carry.
    pub fn with_ledger_keys(mut self, keys: std::sync::Arc<[String]>) -> Self {
        self.ledger_keys = keys;
        self
    }

    /// The key attributes ledger rows carry.
    pub fn ledger_keys(&self) -> &[String] {
        &self.ledger_keys
    }

    /// Notes one ledger row (appends its encoding), when a ledger wants it.
    pub fn add_ledger_row(&mut self, row: &crate::ledger::LedgerRow) {
        if self.wants.ledger {
            row.encode_into_batch(&mut self.ledger.0);
            self.ledger.1 += 1;
        }
    }

    /// The ledger rows noted: an encoded `LedgerBatch` and its row count.
    pub fn ledger_rows(&self) -> (&[u8], usize) {
        (&self.ledger.0, self.ledger.1)
    }

    /// What to note.
    pub fn wants(&self) -> Wants {
        self.wants
    }

    /// Notes that span `span` is an LLM span (any pricing status).
    pub fn mark_llm(&mut self, span: usize) {
        if let Some(b) = self.llm.get_mut(span) {
            *b = true;
        }
    }

    /// True when span `span` was noted as an LLM span.
    pub fn is_llm(&self, span: usize) -> bool {
        self.llm.get(span).copied().unwrap_or(false)
    }

    /// Notes the Langfuse extras of span `span`: complete encoded attribute fields to append.
    pub fn add_langfuse(&mut self, span: usize, fields: Vec<u8>) {
        if self.wants.langfuse && !fields.is_empty() {
            self.langfuse.push((span, fields));
        }
    }

    /// The Langfuse extras noted, by span.
    pub fn langfuse(&self) -> &[(usize, Vec<u8>)] {
        &self.langfuse
    }
}

/// One variant as built.
#[derive(Debug, Clone)]
pub struct Built {
    /// The encoded request.
    pub bytes: Bytes,
    /// How many spans it holds.
    pub spans: usize,
}

/// The variants the exporters want, and how to build them.
#[derive(Debug)]
pub(crate) struct Plan {
    variants: Vec<Variant>,
    wants: Wants,
    traces: Option<LlmTraces>,
    ledger_keys: std::sync::Arc<[String]>,
}

impl Plan {
    /// A plan for `variants` (distinct, as [`super::Fanout::variants`] gives them; an empty
    /// list means one plain variant).
    pub(crate) fn new(mut variants: Vec<Variant>, capacity: usize, ttl: Duration) -> Self {
        if variants.is_empty() {
            variants.push(Variant::default());
        }
        let traces = variants
            .iter()
            .any(|v| !v.ledger && v.spans == SpanFilter::LlmTraces)
            .then(|| LlmTraces::new(capacity, ttl));
        Self {
            wants: Wants::of(&variants),
            variants,
            traces,
            ledger_keys: std::sync::Arc::new([]),
        }
    }

    /// With the key attributes ledger rows carry.
    pub(crate) fn with_ledger_keys(mut self, keys: Vec<String>) -> Self {
        self.ledger_keys = keys.into();
        self
    }

    /// Facts to fill for a request of `spans` spans.
    pub(crate) fn facts(&self, spans: usize) -> SpanFacts {
        let facts = SpanFacts::new(self.wants(), spans);
        if self.wants.ledger {
            facts.with_ledger_keys(self.ledger_keys.clone())
        } else {
            facts
        }
    }

    /// True when the only variant is every span without extras (the fast path).
    pub(crate) fn is_plain(&self) -> bool {
        self.variants == [Variant::default()]
    }

    /// What the processor should note.
    pub(crate) fn wants(&self) -> Wants {
        self.wants
    }

    /// Builds every variant (`None` when it holds no span), each distinct one once. `edits` is
    /// borrowed to build and left as it was.
    pub(crate) fn build(
        &self,
        buf: &Bytes,
        index: &RequestIndex,
        edits: &mut [SpanEdit],
        facts: &SpanFacts,
    ) -> Vec<Option<Built>> {
        let live: Vec<bool> = edits.iter().map(|e| !matches!(e, SpanEdit::Drop)).collect();
        let in_llm_trace = self.traces.as_ref().map(|t| {
            let spans: Vec<Option<(u128, bool)>> = (0..edits.len())
                .map(|i| {
                    live[i].then(|| {
                        let id = trace_key(SpanRef::new(buf, index, i).trace_id());
                        (id, facts.is_llm(i))
                    })
                })
                .collect();
            t.classify(&spans, Instant::now())
        });
        let live_count = live.iter().filter(|l| **l).count();
        let mut memo: Vec<((SpanFilter, bool), Built)> = Vec::new();
        let mut out = Vec::with_capacity(self.variants.len());
        for v in &self.variants {
            if v.ledger {
                let (rows, n) = facts.ledger_rows();
                out.push((n > 0).then(|| Built {
                    bytes: Bytes::copy_from_slice(rows),
                    spans: n,
                }));
                continue;
            }
            let keep = |i: usize| match v.spans {
                SpanFilter::All => true,
                SpanFilter::Llm => facts.is_llm(i),
                SpanFilter::LlmTraces => in_llm_trace.as_ref().is_some_and(|m| m[i]),
            };
            let kept = (0..edits.len()).filter(|&i| live[i] && keep(i)).count();
            if kept == 0 {
                out.push(None);
                continue;
            }
            let extras = v.langfuse
                && facts
                    .langfuse()
                    .iter()
                    .any(|(i, _)| live.get(*i).copied().unwrap_or(false) && keep(*i));
            let key = (
                if kept == live_count {
                    SpanFilter::All
                } else {
                    v.spans
                },
                extras,
            );
            if let Some((_, b)) = memo.iter().find(|(k, _)| *k == key) {
                out.push(Some(b.clone()));
                continue;
            }
            let extra = if extras { facts.langfuse() } else { &[] };
            let bytes = build_one(buf, index, edits, &keep, extra);
            let built = Built { bytes, spans: kept };
            memo.push((key, built.clone()));
            out.push(Some(built));
        }
        out
    }
}

/// Rebuilds `buf` keeping only the spans where `keep` holds, with `extras` appended to their
/// spans; `edits` is restored before returning.
fn build_one(
    buf: &Bytes,
    index: &RequestIndex,
    edits: &mut [SpanEdit],
    keep: &dyn Fn(usize) -> bool,
    extras: &[(usize, Vec<u8>)],
) -> Bytes {
    let mut left_out: Vec<(usize, SpanEdit)> = Vec::new();
    for (i, e) in edits.iter_mut().enumerate() {
        if !matches!(e, SpanEdit::Drop) && !keep(i) {
            left_out.push((i, std::mem::replace(e, SpanEdit::Drop)));
        }
    }
    // (span, its append length before, or None when it was `Keep`).
    let mut grown: Vec<(usize, Option<usize>)> = Vec::with_capacity(extras.len());
    for (i, fields) in extras {
        let Some(e) = edits.get_mut(*i) else { continue };
        match e {
            SpanEdit::Drop => {}
            SpanEdit::Modify { append, .. } => {
                grown.push((*i, Some(append.len())));
                append.extend_from_slice(fields);
            }
            SpanEdit::Keep => {
                grown.push((*i, None));
                *e = SpanEdit::Modify {
                    remove: Vec::new(),
                    append: fields.clone(),
                };
            }
        }
    }
    let out = rebuild(buf, index, edits, None);
    for (i, before) in grown {
        match (before, &mut edits[i]) {
            (Some(len), SpanEdit::Modify { append, .. }) => append.truncate(len),
            (_, e) => *e = SpanEdit::Keep,
        }
    }
    for (i, e) in left_out {
        edits[i] = e;
    }
    out
}

fn trace_key(trace_id: &[u8]) -> u128 {
    let mut t = [0u8; 16];
    let n = trace_id.len().min(16);
    t[..n].copy_from_slice(&trace_id[..n]);
    u128::from_be_bytes(t)
}

/// The traces known to contain an LLM span, for `spans = "llm_traces"`.
///
/// A trace is remembered for `ttl` after its latest LLM span was seen (refreshed at most every
/// `ttl / 2`), and at most `capacity` entries are held: past that the oldest are forgotten first
/// and counted in `tollgate_pipeline_llm_traces_evicted_total{reason="capacity"}` (expiry is
/// counted with `reason="expired"`). A forgotten trace's later spans are left out until another
/// LLM span of it arrives.
#[derive(Debug)]
pub struct LlmTraces {
    inner: Mutex<TracesInner>,
    capacity: usize,
    ttl: Duration,
}

#[derive(Debug, Default)]
struct TracesInner {
    seen: HashMap<u128, Instant>,
    /// Insertions and refreshes, oldest first; an entry whose instant is not the trace's
    /// current one in `seen` is stale and skipped.
    order: VecDeque<(u128, Instant)>,
}

impl LlmTraces {
    /// A set of at most `capacity` traces, each kept for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            inner: Mutex::new(TracesInner::default()),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// Traces remembered.
    pub fn len(&self) -> usize {
        self.inner.lock().seen.len()
    }

    /// True when no trace is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// For one request, `spans[i]` being `Some((trace id, is LLM span))` for a live span: records
    /// the traces of the LLM spans, then says for each span whether its trace is known.
    pub fn classify(&self, spans: &[Option<(u128, bool)>], now: Instant) -> Vec<bool> {
        let mut inner = self.inner.lock();
        let (mut expired, mut evicted) = (0u64, 0u64);
        while let Some(&(id, at)) = inner.order.front() {
            if now.saturating_duration_since(at) < self.ttl {
                break;
            }
            inner.order.pop_front();
            if inner.seen.get(&id) == Some(&at) {
                inner.seen.remove(&id);
                expired += 1;
            }
        }
        for (id, _) in spans.iter().flatten().filter(|(_, llm)| *llm) {
            let id = *id;
            match inner.seen.get_mut(&id) {
                Some(at) if now.saturating_duration_since(*at) < self.ttl / 2 => continue,
                Some(at) => *at = now,
                None => {
                    inner.seen.insert(id, now);
                }
            }
            inner.order.push_back((id, now));
            // At most `capacity` traces; stale refresh records take at most as much again.
            while inner.seen.len() > self.capacity || inner.order.len() > 2 * self.capacity {
                let Some((old, at)) = inner.order.pop_front() else {
                    break;
                };
                if inner.seen.get(&old) == Some(&at) {
                    inner.seen.remove(&old);
                    evicted += 1;
                }
            }
        }
        let out = spans
            .iter()
            .map(|s| s.is_some_and(|(id, _)| inner.seen.contains_key(&id)))
            .collect();
        let len = inner.seen.len();
        drop(inner);
        if expired > 0 {
            METRICS
                .llm_traces_evicted
                .with_label_values(&["expired"])
                .inc_by(expired);
        }
        if evicted > 0 {
            METRICS
                .llm_traces_evicted
                .with_label_values(&["capacity"])
                .inc_by(evicted);
        }
        METRICS
            .llm_traces
            .set(i64::try_from(len).unwrap_or(i64::MAX));
        out
    }
}

#[cfg(test)]
mod tests;
