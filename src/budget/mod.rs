//! Budgets (`[[budgets]]`): spend per key (user, tenant, task type, …) and calendar period,
//! counted exactly in nano-USD through the [`StateStore`], with alerts when a `warn_at`
//! fraction or the limit is reached and an API an agent can ask before its next call.
//!
//! Per request the pipeline collects one [`Op::AddToBudget`] per priced LLM call and budget
//! whose key the span carries ([`Budgets::collect`]) and applies them as **one** batch
//! ([`Budgets::apply`]). The store's check-and-increment answers the total before and after each
//! add, so exactly one add takes a period's total across a threshold; the alert is then guarded
//! by [`Op::FireOnce`] (one marker per key, period and threshold) and delivered through the
//! alert engine (log, metrics, `WatchAlerts`, Alertmanager, webhooks).
//!
//! A threshold `t` is reached by the add that takes the total from below `t` to `t` or more;
//! a key is `exceeded` once its period's total is at or above `limit_usd`.

mod config;
pub mod http;
mod period;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

pub use config::BudgetConfig;
pub use period::{Period, PeriodBounds};

use crate::alert::AlertEngine;
use crate::state::{BudgetKey, ContributionId, Op, OpResult, StateBatch, StateStore};
use crate::task::Clock;
use crate::units::NanoUsd;
use crate::wire::{AttrValue, SpanAttrs};

pub use period::rfc3339;

/// How long a batch may wait for a networked store before it is counted as failed.
const DEADLINE: Duration = Duration::from_millis(200);

/// Most key values one budget key may hold (bytes, each); longer values are clipped.
const MAX_KEY_BYTES: usize = 256;

/// One compiled budget.
#[derive(Debug)]
pub struct Budget {
    /// Its config, as written.
    pub cfg: BudgetConfig,
    /// The name.
    pub name: Arc<str>,
    /// The key attributes, in order.
    pub keys: Vec<String>,
    /// The period.
    pub period: Period,
    /// The limit.
    pub limit: NanoUsd,
    /// (`warn_at` fraction as written, threshold), ascending.
    pub warn: Vec<(String, NanoUsd)>,
    filters: Vec<(String, crate::alert::Match)>,
}

impl Budget {
    /// Compiles one budget; the error says what is wrong.
    pub fn compile(cfg: &BudgetConfig) -> Result<Budget, String> {
        let c = cfg.check()?;
        let filters = crate::alert::compile_where(&cfg.where_).map_err(|e| e.join("; "))?;
        Ok(Budget {
            cfg: cfg.clone(),
            name: Arc::from(cfg.name.as_str()),
            keys: cfg.key.to_vec(),
            period: c.period,
            limit: c.limit,
            warn: c.warn,
            filters,
        })
    }

    /// The thresholds in ascending order: each `warn_at`, then the limit. The marker of
    /// threshold `i` is `i`; the limit's is `u64::MAX`.
    fn thresholds(&self) -> impl Iterator<Item = (u64, NanoUsd)> + '_ {
        self.warn
            .iter()
            .enumerate()
            .map(|(i, (_, t))| (i as u64, *t))
            .chain(std::iter::once((u64::MAX, self.limit)))
    }

    /// The key values of `span` (span attribute, then resource), or `None` when one is missing
    /// or empty (the span is not counted in this budget).
    pub fn key_values<'a, S: SpanAttrs<'a>>(&self, span: &S) -> Option<Vec<Arc<str>>> {
        self.keys
            .iter()
            .map(|k| {
                let v = span.attribute(k).or_else(|| span.resource_attribute(k))?;
                let text = attr_text(&v)?;
                Some(Arc::from(&*crate::units::clip_key(&text)))
            })
            .collect()
    }

    /// Where a call at `now_ms` counts: the key's period start (0 for a rolling window, whose
    /// one key holds its buckets), the bounds counted now, and when the key may be forgotten.
    fn placement(&self, now_ms: u64) -> (u64, PeriodBounds, u64) {
        let bounds = self.period.bounds(now_ms);
        match self.period.window() {
            Some(w) => (0, bounds, w.counted_until(now_ms)),
            None => (bounds.start_ms, bounds, bounds.end_ms),
        }
    }

    /// True when the span passes the `where` filter.
    pub fn matches<'a, S: SpanAttrs<'a>>(&self, span: &S) -> bool {
        self.filters.iter().all(|(k, m)| {
            span.attribute(k)
                .or_else(|| span.resource_attribute(k))
                .is_some_and(|v| m.matches(&v))
        })
    }
}

fn attr_text(v: &AttrValue<'_>) -> Option<String> {
    let t = match v {
        AttrValue::Str(s) => (*s).to_owned(),
        AttrValue::Int(i) => i.to_string(),
        AttrValue::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!t.is_empty() && t.len() <= MAX_KEY_BYTES * 4096).then_some(t)
}

/// Compiles every budget (names unique); every problem as `budgets[i]: …`.
pub fn compile(cfgs: &[BudgetConfig]) -> Result<Vec<Arc<Budget>>, Vec<(usize, String)>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, c) in cfgs.iter().enumerate() {
        if cfgs[..i].iter().any(|o| o.name == c.name) {
            errors.push((i, format!("budget name {:?} is used twice", c.name)));
            continue;
        }
        match Budget::compile(c) {
            Ok(b) => out.push(Arc::new(b)),
            Err(e) => errors.push((i, e)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// One counted call of a request, waiting for the batch's answer.
#[derive(Debug)]
struct Entry {
    budget: Arc<Budget>,
    key: BudgetKey,
    bounds: PeriodBounds,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    index: usize,
}

/// What one request adds to budgets (see [`Budgets::collect`]).
#[derive(Debug, Default)]
pub struct Pending {
    batch: StateBatch,
    entries: Vec<Entry>,
}

impl Pending {
    /// True when the request added nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A budget alert: a threshold reached by a key in a period.
#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    /// The budget.
    pub budget: Arc<str>,
    /// (key attribute, value) pairs.
    pub key: Vec<(String, Arc<str>)>,
    /// The period.
    pub bounds: PeriodBounds,
    /// `Some(fraction as written)` for a `warn_at` threshold, `None` for the limit.
    pub warn_at: Option<String>,
    /// The threshold reached.
    pub threshold: NanoUsd,
    /// The limit.
    pub limit: NanoUsd,
    /// The period's total after the call.
    pub spent: NanoUsd,
    /// The call that reached it.
    pub trace_id: Vec<u8>,
    /// The call that reached it.
    pub span_id: Vec<u8>,
    /// The call's index in its request.
    pub span_index: usize,
    /// The `tollgate.alert` span event for that span (encoded fields; empty without an
    /// alert engine).
    pub event: Vec<u8>,
}

/// What the API answers for one key.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BudgetStatus {
    /// The budget's name.
    pub budget: String,
    /// The key attributes and their values.
    pub key: std::collections::BTreeMap<String, String>,
    /// Spend this period, exact decimal USD.
    pub spent_usd: String,
    /// Spend this period, nano-USD.
    pub spent_nano_usd: i64,
    /// The limit, exact decimal USD.
    pub limit_usd: String,
    /// The limit, nano-USD.
    pub limit_nano_usd: i64,
    /// What is left (zero when exceeded), exact decimal USD.
    pub remaining_usd: String,
    /// What is left, nano-USD.
    pub remaining_nano_usd: i64,
    /// `day`, `week`, `month` or `rolling`.
    pub period: String,
    /// A rolling period's window as configured (e.g. `"24h"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Start of the period (RFC 3339, UTC); for a rolling window, of the oldest bucket counted.
    pub period_start: String,
    /// End of the period, exclusive (RFC 3339, UTC); for a rolling window, of the current bucket.
    pub period_end: String,
    /// True when spend is at or above the limit.
    pub exceeded: bool,
}

/// Why a status could not be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// No budget of that name.
    #[error("no budget named {0:?}")]
    UnknownBudget(String),
    /// The number of key values does not match the budget's key.
    #[error("budget {budget:?} is keyed by {expected} attribute(s) ({keys}), got {got} value(s)")]
    KeyArity {
        /// The budget.
        budget: String,
        /// Its key attributes.
        keys: String,
        /// How many it has.
        expected: usize,
        /// How many were given.
        got: usize,
    },
}

/// The budgets of a running tollgate. Share it as `Arc<Budgets>`.
pub struct Budgets {
    set: ArcSwap<Vec<Arc<Budget>>>,
    store: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    engine: Option<Arc<AlertEngine>>,
    runtime: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budgets")
            .field("budgets", &self.set.load().len())
            .finish_non_exhaustive()
    }
}

impl Budgets {
    /// The budgets of `cfgs`, counted in `store`, periods by `clock`, alerts through `engine`.
    pub fn new(
        cfgs: &[BudgetConfig],
        store: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
        engine: Option<Arc<AlertEngine>>,
    ) -> Result<Self, Vec<(usize, String)>> {
        std::sync::LazyLock::force(&metrics::METRICS);
        Ok(Self {
            set: ArcSwap::from_pointee(compile(cfgs)?),
            store,
            clock,
            engine,
            runtime: tokio::runtime::Handle::try_current().ok(),
        })
    }

    /// Replaces the budgets (totals are kept: they live in the store by name and key).
    pub fn reload(&self, cfgs: &[BudgetConfig]) -> Result<(), Vec<(usize, String)>> {
        self.set.store(Arc::new(compile(cfgs)?));
        Ok(())
    }

    /// True when no budget is configured.
    pub fn is_empty(&self) -> bool {
        self.set.load().is_empty()
    }

    /// The clock periods are measured with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Adds a priced call (`cost`) of `span` (number `index` of its request) to every budget it
    /// counts in.
    pub fn collect<'a, S: SpanAttrs<'a>>(
        &self,
        pending: &mut Pending,
        index: usize,
        span: &S,
        cost: NanoUsd,
        now_ms: u64,
    ) {
        pending.batch.now_ms = now_ms;
        let (trace_id, span_id) = (span.trace_id(), span.span_id());
        for b in self.set.load().iter() {
            if !b.matches(span) {
                continue;
            }
            let Some(values) = b.key_values(span) else {
                continue;
            };
            let (period_start_ms, bounds, expires_ms) = b.placement(now_ms);
            let key = BudgetKey {
                budget: b.name.clone(),
                key_values: values,
                period_start_ms,
            };
            pending.batch.push(Op::AddToBudget {
                key: key.clone(),
                id: ContributionId::new(trace_id, span_id),
                cost,
                limit: Some(b.limit),
                expires_ms: Some(expires_ms),
                window: b.period.window(),
            });
            pending.entries.push(Entry {
                budget: b.clone(),
                key,
                bounds,
                trace_id: trace_id.to_vec(),
                span_id: span_id.to_vec(),
                index,
            });
        }
    }

    /// Applies a request's adds as one batch; alerts for thresholds reached are delivered when
    /// the store answers (at once for the in-memory store). Returns the crossings delivered
    /// synchronously (for tests and span events); later ones are delivered in the background.
    pub fn apply(self: &Arc<Self>, pending: Pending) -> Vec<Crossing> {
        if pending.is_empty() {
            return Vec::new();
        }
        let Pending { batch, entries } = pending;
        let now = batch.now_ms;
        match self.store.apply(batch, Instant::now() + DEADLINE).now() {
            Ok(result) => self.answered(entries, result, now),
            Err(later) => {
                let this = self.clone();
                match &self.runtime {
                    Some(rt) => {
                        rt.spawn(async move {
                            let result = later.await;
                            this.answered(entries, result, now);
                        });
                    }
                    None => {
                        metrics::failed("no_runtime", entries.len());
                    }
                }
                Vec::new()
            }
        }
    }

    fn answered(
        &self,
        entries: Vec<Entry>,
        result: Result<Vec<OpResult>, crate::state::StateError>,
        now: u64,
    ) -> Vec<Crossing> {
        let results = match result {
            Ok(r) => r,
            Err(e) => {
                metrics::failed(
                    match e {
                        crate::state::StateError::Deadline => "deadline",
                        crate::state::StateError::Unavailable(_) => "unavailable",
                    },
                    entries.len(),
                );
                tracing::warn!(error = %e, calls = entries.len(), "Budget totals not updated: the state store failed; these calls are not counted in their budgets.");
                return Vec::new();
            }
        };
        let mut crossings = Vec::new();
        for (entry, r) in entries.into_iter().zip(results) {
            let OpResult::Budget {
                before,
                after,
                replayed: false,
                ..
            } = r
            else {
                continue;
            };
            let b = &entry.budget;
            // Adds replayed after a state outage may have crossed a threshold no live call
            // saw: this call then checks the level (the fire-once marker keeps it once).
            let recheck = self.store.recheck_budget(&entry.key);
            for (marker, t) in b.thresholds() {
                if (before < t || recheck) && after >= t {
                    crossings.push((
                        marker,
                        b.period.window(),
                        Crossing {
                            budget: b.name.clone(),
                            key: b
                                .keys
                                .iter()
                                .cloned()
                                .zip(entry.key.key_values.iter().cloned())
                                .collect(),
                            bounds: entry.bounds,
                            warn_at: (marker != u64::MAX)
                                .then(|| b.warn[marker as usize].0.clone()),
                            threshold: t,
                            limit: b.limit,
                            spent: after,
                            trace_id: entry.trace_id.clone(),
                            span_id: entry.span_id.clone(),
                            span_index: entry.index,
                            event: Vec::new(),
                        },
                    ));
                }
            }
        }
        if crossings.is_empty() {
            return Vec::new();
        }
        // Once per key, period and threshold, whatever replays or other collectors do; a
        // rolling window's threshold at most once per window length.
        let mut once = StateBatch::new(now);
        for (marker, window, c) in &crossings {
            let mut scope = format!("budget\u{0}{}", c.budget);
            for (_, v) in &c.key {
                scope.push('\u{0}');
                scope.push_str(v);
            }
            let ttl_ms = match window {
                Some(w) => {
                    scope.push_str("\u{0}rolling");
                    w.buckets.saturating_mul(w.bucket_ms)
                }
                None => {
                    scope.push_str(&format!("\u{0}{}", c.bounds.start_ms));
                    c.bounds.end_ms.saturating_sub(now) + 86_400_000
                }
            };
            once.push(Op::FireOnce {
                scope: Arc::from(scope),
                marker: *marker,
                ttl_ms: Some(ttl_ms),
            });
        }
        let fired = match self.store.apply(once, Instant::now() + DEADLINE).now() {
            Ok(Ok(r)) => r,
            // A networked store: deliver without the guard rather than lose the alert.
            Ok(Err(_)) | Err(_) => vec![OpResult::Fired(true); crossings.len()],
        };
        let mut out = Vec::new();
        for ((_, _, mut c), f) in crossings.into_iter().zip(fired) {
            if f != OpResult::Fired(true) {
                continue;
            }
            metrics::crossed(&c);
            if let Some(engine) = &self.engine {
                let period_start = rfc3339(c.bounds.start_ms);
                let a = crate::alert::BudgetAlert {
                    budget: &c.budget,
                    key: &c.key,
                    period_start: &period_start,
                    warn_at: c.warn_at.as_deref(),
                    threshold: c.threshold,
                    limit: c.limit,
                    spent: c.spent,
                    trace_id: &c.trace_id,
                    span_id: &c.span_id,
                };
                c.event = engine.budget_alert(&a, now);
            }
            out.push(c);
        }
        out
    }

    /// The status of one key now (the API).
    pub fn status(&self, budget: &str, values: &[&str]) -> Result<BudgetStatus, StatusError> {
        let set = self.set.load();
        let b = set
            .iter()
            .find(|b| &*b.name == budget)
            .ok_or_else(|| StatusError::UnknownBudget(budget.to_owned()))?;
        if values.len() != b.keys.len() {
            return Err(StatusError::KeyArity {
                budget: budget.to_owned(),
                keys: b.keys.join(", "),
                expected: b.keys.len(),
                got: values.len(),
            });
        }
        let now = self.clock.now_ms();
        let (period_start_ms, bounds, _) = b.placement(now);
        let key = BudgetKey {
            budget: b.name.clone(),
            key_values: values
                .iter()
                .map(|v| Arc::from(&*crate::units::clip_key(v)))
                .collect(),
            period_start_ms,
        };
        let spent = self.store.budget_total(&key, now);
        let remaining = NanoUsd((b.limit.0 - spent.0).max(0));
        Ok(BudgetStatus {
            budget: budget.to_owned(),
            key: b
                .keys
                .iter()
                .cloned()
                .zip(values.iter().map(|v| (*v).to_owned()))
                .collect(),
            spent_usd: spent.fixed9().to_string(),
            spent_nano_usd: spent.0,
            limit_usd: b.limit.fixed9().to_string(),
            limit_nano_usd: b.limit.0,
            remaining_usd: remaining.fixed9().to_string(),
            remaining_nano_usd: remaining.0,
            period: b.period.name().to_owned(),
            window: b.cfg.window.clone(),
            period_start: period::rfc3339(bounds.start_ms),
            period_end: period::rfc3339(bounds.end_ms),
            exceeded: spent >= b.limit,
        })
    }
}

mod metrics {
    use std::sync::LazyLock;

    use prometheus::{IntCounterVec, Opts};

    use super::Crossing;

    pub(super) struct Metrics {
        pub(super) alerts: IntCounterVec,
        pub(super) failed: IntCounterVec,
    }

    pub(super) static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
        let m = Metrics {
            alerts: IntCounterVec::new(
                Opts::new(
                    "tollgate_budget_alerts_total",
                    "Budget thresholds reached (once per key, period and threshold), by budget and threshold kind (warn, limit).",
                ),
                &["budget", "threshold"],
            )
            .expect("valid metric"),
            failed: IntCounterVec::new(
                Opts::new(
                    "tollgate_budget_uncounted_calls_total",
                    "Priced calls not added to their budgets because the state store failed, by reason.",
                ),
                &["reason"],
            )
            .expect("valid metric"),
        };
        let r = crate::telemetry::registry();
        for c in [
            Box::new(m.alerts.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.failed.clone()),
        ] {
            if let Err(error) = r.register(c) {
                tracing::warn!(%error, "Budget metric registration failed.");
            }
        }
        m
    });

    pub(super) fn crossed(c: &Crossing) {
        let kind = if c.warn_at.is_some() { "warn" } else { "limit" };
        METRICS.alerts.with_label_values(&[&*c.budget, kind]).inc();
    }

    pub(super) fn failed(reason: &str, calls: usize) {
        METRICS
            .failed
            .with_label_values(&[reason])
            .inc_by(calls as u64);
    }
}

#[cfg(test)]
mod tests;
