//! How one request's processing goes through the state store: one batch of call claims before
//! pricing, one batch of task roll-up writes after it, one batch of fire-once markers for the
//! task rules that now hold, and one batch recording window alerts that fired or resolved.
//! Each batch is skipped when empty; none is sent per span.
//!
//! A batch the store cannot answer at once (a networked store's pending answer) or fails is
//! counted (`tollgate_state_failed_batches_total{stage}`) and the stage carries on alone: the
//! call is priced, the task view adds the span itself, the task rule fires on the view's own
//! marks. Spans are never held back by state.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::Processing;
use crate::alert::TaskCandidate;
use crate::llm::enrich::Prepared;
use crate::state::{ContributionId, Op, OpResult, StateBatch, StateStore};
use crate::task::{span_delta, LlmUsage, SpanInput};
use crate::wire::edit::SpanEdit;
use crate::wire::{AttrValue, RequestIndex, SpanAttrs, SpanRef};

/// How long a stage waits for a store that answers later before carrying on without it.
const DEADLINE: Duration = Duration::from_millis(200);

/// What the task and alert stages need of one span, kept between the batches.
pub(super) struct Seen<'a> {
    pub(super) i: usize,
    pub(super) task_key: Arc<str>,
    pub(super) task_type: Option<Cow<'a, str>>,
    pub(super) service: Cow<'a, str>,
    pub(super) attrs: Vec<(&'a str, AttrValue<'a>)>,
    pub(super) is_task_root: bool,
    /// Set when the span is a priced (or unpriceable) LLM call, once per call.
    pub(super) llm: Option<LlmUsage>,
    /// The llm stage's edit (LLM spans only).
    pub(super) edit: Option<SpanEdit>,
}

impl<'a> Seen<'a> {
    fn input<'s>(&'s self, span: &SpanRef<'a>) -> SpanInput<'s> {
        SpanInput {
            task_key: &self.task_key,
            trace_id: span.trace_id(),
            span_id: span.span_id(),
            parent_span_id: span.parent_span_id(),
            is_task_root: self.is_task_root,
            service: &self.service,
            task_type: self.task_type.as_deref().unwrap_or(""),
            start_unix_nano: span.start_time_unix_nano(),
            end_unix_nano: span.end_time_unix_nano(),
            error: span.status_code() == 2,
            llm: self.llm,
            attributes: &self.attrs,
        }
    }
}

/// Applies `batch`, answering `None` (counted, logged) when the store failed or could not
/// answer at once; a pending answer still completes in the background.
pub(crate) fn apply_now(
    state: &Arc<dyn StateStore>,
    batch: StateBatch,
    stage: &'static str,
) -> Option<Vec<OpResult>> {
    let n = batch.ops.len();
    match state.apply(batch, Instant::now() + DEADLINE).now() {
        Ok(Ok(results)) if results.len() == n => Some(results),
        Ok(Ok(_)) => {
            let e = crate::state::StateError::Unavailable("wrong number of results".into());
            crate::state::failed_batch(stage, &e);
            None
        }
        Ok(Err(e)) => {
            crate::state::failed_batch(stage, &e);
            None
        }
        Err(pending) => {
            crate::state::failed_batch(stage, &crate::state::StateError::Deadline);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(pending);
            }
            None
        }
    }
}

impl Processing {
    /// One batch claiming the call of every span that reports one (trace id + span id): answers
    /// per prepared slot whether the claim was the first (`true` when unknown).
    pub(super) fn claim_calls(
        &self,
        buf: &Bytes,
        index: &RequestIndex,
        prepared: &[Option<Prepared<'_>>],
        slot: &[u32],
        now_ms: u64,
    ) -> Vec<bool> {
        let mut claimed = vec![true; prepared.len()];
        let mut batch = StateBatch::new(now_ms);
        let mut which = Vec::new();
        for (i, &s) in slot.iter().enumerate() {
            let Some(Some(p)) = prepared.get(s as usize) else {
                continue;
            };
            if !p.reports_call() {
                continue;
            }
            let span = SpanRef::new(buf, index, i);
            batch.push(Op::ClaimCall {
                fingerprint: crate::llm::dedupe::claim_key(span.trace_id(), span.span_id()),
                ttl_ms: self.claim_ttl_ms,
            });
            which.push(s as usize);
        }
        if batch.is_empty() {
            return claimed;
        }
        if let Some(results) = apply_now(&self.state, batch, "llm_claim") {
            for (s, r) in which.into_iter().zip(results) {
                if r == OpResult::Claimed(false) {
                    claimed[s] = false;
                }
            }
        }
        claimed
    }

    /// The task and alert stages for every span of the request, in the order they were
    /// priced: one batch of roll-up writes, one of fire-once markers, then each span's rules
    /// and edit, then one batch of window firing records.
    pub(super) fn judge(
        &self,
        buf: &Bytes,
        index: &RequestIndex,
        seen: Vec<Seen<'_>>,
        edits: &mut [SpanEdit],
        now_ms: u64,
    ) {
        if seen.is_empty() {
            return;
        }
        let mut adds = StateBatch::new(now_ms);
        adds.ops.reserve(seen.len());
        for rec in &seen {
            let span = SpanRef::new(buf, index, rec.i);
            adds.push(Op::AddToTask {
                task: rec.task_key.clone(),
                id: ContributionId::new(span.trace_id(), span.span_id()),
                delta: span_delta(&rec.input(&span)),
            });
        }
        let totals = apply_now(&self.state, adds, "task_rollup");

        let mut judged = Vec::with_capacity(seen.len());
        let mut fire = StateBatch::new(now_ms);
        for (k, rec) in seen.iter().enumerate() {
            let span = SpanRef::new(buf, index, rec.i);
            let answered = totals.as_ref().and_then(|r| match r.get(k) {
                Some(OpResult::Task { totals, .. }) => Some(*totals),
                _ => None,
            });
            let (t, candidates) = self
                .engine
                .observe_task(&rec.input(&span), now_ms, answered);
            for c in &candidates {
                fire.push(Op::FireOnce {
                    scope: rec.task_key.clone(),
                    marker: c.marker(),
                    ttl_ms: None,
                });
            }
            judged.push((t, candidates));
        }
        let fired = if fire.is_empty() {
            None
        } else {
            apply_now(&self.state, fire, "alert_fire_once")
        };

        let mut next = 0;
        let mut firing = Vec::new();
        for (rec, (t, candidates)) in seen.into_iter().zip(judged) {
            let span = SpanRef::new(buf, index, rec.i);
            let task_fired: Vec<TaskCandidate> = candidates
                .into_iter()
                .filter(|_| {
                    let answer = fired.as_ref().and_then(|r| r.get(next)).copied();
                    next += 1;
                    answer != Some(OpResult::Fired(false))
                })
                .collect();
            let extra =
                self.engine
                    .judge_span(&rec.input(&span), now_ms, &t, task_fired, &mut firing);
            if let Some(edit) = merge(rec.edit, extra) {
                edits[rec.i] = edit;
            }
        }
        self.engine.record_firing(firing, now_ms);
    }
}

/// The span's edit: the llm stage's (if any) with the task and alert fields appended; `None`
/// leaves the span as it is.
fn merge(priced: Option<SpanEdit>, extra: Vec<u8>) -> Option<SpanEdit> {
    match (priced, extra.is_empty()) {
        (None, true) => None,
        (None, false) => Some(SpanEdit::Modify {
            remove: Vec::new(),
            append: extra,
        }),
        (Some(SpanEdit::Modify { remove, mut append }), _) => {
            append.extend_from_slice(&extra);
            Some(SpanEdit::Modify { remove, append })
        }
        (Some(_), true) => None,
        (Some(_), false) => Some(SpanEdit::Modify {
            remove: Vec::new(),
            append: extra,
        }),
    }
}
