//! The alert engine: judges every span against span, task and window rules, and emits alerts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::state::{Op, StateBatch, StateStore};
use crate::task::{rollup, Clock, SpanInput, TaskTotals, TaskTracker};
use crate::wire::attr::{push_span_event, NewValue};

use super::metrics::METRICS;
use super::notify::{self, Notifiers};
use super::rule::{sanitize_label, AlertRules, Measures, Rule, Scope, Value};
use super::window::{Transition, MAX_GROUPS};
use super::{Alert, AlertState, AlertsConfig, AlertsError, NotifyConfig};

mod build;
/// Name of the span event added to the span that fired an alert.
pub(crate) const ALERT_EVENT: &str = "tollgate.alert";
/// Alerts a slow `WatchAlerts` subscriber may fall behind by before it misses some.
const BROADCAST_CAPACITY: usize = 1024;

/// Where an alert came from: the span that fired it (if any) and its task.
#[derive(Debug, Default, Clone, Copy)]
struct Origin<'a> {
    task_id: Option<&'a str>,
    service: &'a str,
    trace_id: &'a [u8],
    span_id: &'a [u8],
}

/// What happened: fired or resolved, the value, the window group, and when.
#[derive(Debug, Clone, Copy)]
struct Event<'g> {
    state: AlertState,
    value: Value,
    group: &'g [String],
    starts_at: u64,
    now: u64,
}

impl Event<'static> {
    fn firing(value: Value, now: u64) -> Self {
        Event {
            state: AlertState::Firing,
            value,
            group: &[],
            starts_at: now,
            now,
        }
    }
}

/// Judges spans against the rules and delivers alerts. Share it as `Arc<AlertEngine>`.
pub struct AlertEngine {
    tracker: Arc<TaskTracker>,
    clock: Arc<dyn Clock>,
    rules: ArcSwap<AlertRules>,
    trace_url: ArcSwap<Option<String>>,
    broadcast: broadcast::Sender<Arc<Alert>>,
    notifiers: ArcSwap<Notifiers>,
    notify_cfg: Mutex<Vec<NotifyConfig>>,
    runtime: Option<tokio::runtime::Handle>,
    /// Firing window alerts by fingerprint, re-queued to notifiers rebuilt by a reload.
    firing: Mutex<HashMap<u64, Arc<Alert>>>,
    reload_lock: Mutex<()>,
    /// "Alert fired." lines: a few a second, the rest counted.
    log_budget: Mutex<super::log_budget::LogBudget>,
    /// Where window firing is recorded (see [`Self::with_state`]); in memory by default.
    state: Arc<dyn StateStore>,
}

/// A task rule that holds for a task (see [`AlertEngine::observe_task`]); it fires when the
/// state store's [`Op::FireOnce`] for its [`marker`](Self::marker) answers first.
#[derive(Debug, Clone)]
pub struct TaskCandidate {
    rule: Arc<Rule>,
    value: Value,
}

impl TaskCandidate {
    /// The fire-once marker of the rule (stable across restarts: a hash of the rule's name).
    pub fn marker(&self) -> u64 {
        self.rule.id
    }
}

/// The [`Op::SetFiring`] recording a window transition.
fn firing_op(r: &Rule, t: &Transition, now: u64) -> Op {
    let (group, since_ms) = match t {
        Transition::Fire { group, .. } => (group.clone(), Some(now)),
        Transition::Resolve { group, .. } => (group.clone(), None),
    };
    Op::SetFiring {
        rule: r.name.clone(),
        group,
        since_ms,
    }
}

impl std::fmt::Debug for AlertEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertEngine")
            .field("rules", &self.rules.load().names())
            .finish_non_exhaustive()
    }
}

impl AlertEngine {
    /// Compiles the rules and starts the notifiers (on the current tokio runtime, which must
    /// exist when notifiers are configured). The tracker's clock is the engine's clock.
    pub fn new(cfg: &AlertsConfig, tracker: Arc<TaskTracker>) -> Result<Self, Vec<AlertsError>> {
        let rules = AlertRules::compile(&cfg.rules, None);
        let notify_check = notify::validate(&cfg.notify);
        let runtime = tokio::runtime::Handle::try_current().ok();
        let mut errors = Vec::new();
        if let Err(e) = &rules {
            errors.extend(e.iter().cloned());
        }
        if let Err(e) = notify_check {
            errors.extend(e);
        }
        if !cfg.notify.is_empty() && runtime.is_none() {
            errors.push(AlertsError::Alerts(
                "notifiers need a running tokio runtime".into(),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let notifiers = match &runtime {
            Some(rt) => Notifiers::start(&cfg.notify, rt)?,
            None => Notifiers::default(),
        };
        std::sync::LazyLock::force(&METRICS);
        Ok(AlertEngine {
            clock: tracker.clock().clone(),
            tracker,
            rules: ArcSwap::from_pointee(rules.unwrap_or_default()),
            trace_url: ArcSwap::from_pointee(cfg.trace_url.clone()),
            broadcast: broadcast::channel(BROADCAST_CAPACITY).0,
            notifiers: ArcSwap::from_pointee(notifiers),
            notify_cfg: Mutex::new(cfg.notify.clone()),
            runtime,
            firing: Mutex::new(HashMap::new()),
            log_budget: Mutex::default(),
            reload_lock: Mutex::new(()),
            state: Arc::new(crate::state::MemoryStore::new()),
        })
    }

    /// The task tracker spans are added to.
    pub fn tracker(&self) -> &Arc<TaskTracker> {
        &self.tracker
    }

    /// The current rules (e.g. for [`AlertRules::referenced_keys`]).
    pub fn rules(&self) -> Arc<AlertRules> {
        self.rules.load_full()
    }

    /// The configured `trace_url` template (as last loaded), if any.
    pub fn trace_url(&self) -> Option<String> {
        self.trace_url.load().as_ref().clone()
    }

    /// A stream of every alert from now on (firing and resolved).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Alert>> {
        self.broadcast.subscribe()
    }

    /// Adds a span to its task and judges it. Returns the encoded fields to append to the span:
    /// the task roll-up when `span.is_task_root`, and a `tollgate.alert` event per alert this
    /// span fired. Never waits on a notifier.
    pub fn observe(&self, span: &SpanInput<'_>) -> Vec<u8> {
        self.observe_at(span, self.clock.now_ms())
    }

    /// [`Self::observe`] at a given time of the engine's clock, deciding alone (the task view's
    /// own totals and fire-once marks; window firing recorded in the engine's state store).
    pub fn observe_at(&self, span: &SpanInput<'_>, now: u64) -> Vec<u8> {
        let (totals, fired) = self.observe_task(span, now, None);
        let mut firing = Vec::new();
        let out = self.judge_span(span, now, &totals, fired, &mut firing);
        self.record_firing(firing, now);
        out
    }

    /// The task half of judging a span: updates the task view (with the totals the state store
    /// answered, or adding the span itself when `None`), and says which task rules now hold
    /// that have not fired for the task in this process. Each candidate is marked fired here
    /// at once (so a concurrent request does not pick it too); it fires for real when the
    /// store's [`Op::FireOnce`] for [`TaskCandidate::marker`] agrees, see [`Self::judge_span`].
    pub fn observe_task(
        &self,
        span: &SpanInput<'_>,
        now: u64,
        totals: Option<TaskTotals>,
    ) -> (TaskTotals, Vec<TaskCandidate>) {
        let rules = self.rules.load();
        self.tracker.observe_with(span, now, totals, |entry| {
            let totals = entry.totals();
            let m = Measures::of_task(&totals);
            let mut fired = Vec::new();
            for r in rules.rules.iter().filter(|r| r.scope == Scope::Task) {
                if entry.is_marked(r.id) || !r.matches(span) {
                    continue;
                }
                if let Some(v) = r.value(&m).filter(|v| r.holds(*v)) {
                    entry.mark(r.id);
                    fired.push(TaskCandidate {
                        rule: r.clone(),
                        value: v,
                    });
                }
            }
            (totals, fired)
        })
    }

    /// The rest of judging a span: fires the task rules in `task_fired` (the candidates the
    /// store let fire), judges span and window rules, and returns the encoded fields to append
    /// to the span (the roll-up from `totals` on a task root, a `tollgate.alert` event per
    /// alert fired). Window alerts that fire or resolve add an [`Op::SetFiring`] to `firing`.
    pub fn judge_span(
        &self,
        span: &SpanInput<'_>,
        now: u64,
        totals: &TaskTotals,
        task_fired: Vec<TaskCandidate>,
        firing: &mut Vec<Op>,
    ) -> Vec<u8> {
        let rules = self.rules.load();
        let origin = Origin {
            task_id: Some(crate::task::clip(span.task_key)),
            service: crate::task::clip(span.service),
            trace_id: span.trace_id,
            span_id: span.span_id,
        };
        let mut alerts = Vec::new();
        for c in task_fired {
            alerts.push(self.build(&c.rule, &Event::firing(c.value, now), &origin));
        }
        let span_measures = Measures::of_span(span);
        for r in rules.rules.iter() {
            match r.scope {
                Scope::Task | Scope::Budget => {}
                Scope::Span => {
                    if !r.matches(span) {
                        continue;
                    }
                    if let Some(v) = r.value(&span_measures).filter(|v| r.holds(*v)) {
                        alerts.push(self.build(r, &Event::firing(v, now), &origin));
                    }
                }
                Scope::Window => {
                    if !r.matches(span) {
                        continue;
                    }
                    let Some(window) = &r.window else { continue };
                    let transition = {
                        let mut w = window.lock();
                        let t = w.add(r, span, now, &span_measures);
                        if w.overflowed {
                            w.overflowed = false;
                            tracing::warn!(rule = %r.name, max_groups = MAX_GROUPS, "Window rule has too many groups; new groups are not judged.");
                        }
                        t
                    };
                    if let Some(t) = transition {
                        firing.push(firing_op(r, &t, now));
                        alerts.push(self.window_alert(r, t, Some(&origin), now));
                    }
                }
            }
        }
        let mut out = Vec::new();
        if span.is_task_root {
            rollup::encode(totals, &mut out);
        }
        let event_time = if span.end_unix_nano > 0 {
            span.end_unix_nano
        } else {
            now.saturating_mul(1_000_000)
        };
        for a in alerts.iter().filter(|a| a.state == AlertState::Firing) {
            push_span_event(
                &mut out,
                event_time,
                ALERT_EVENT,
                &[
                    ("tollgate.alert.rule", NewValue::Str(&a.rule)),
                    ("tollgate.alert.metric", NewValue::Str(a.metric.as_str())),
                    ("tollgate.alert.value", NewValue::Double(a.value)),
                    ("tollgate.alert.threshold", NewValue::Double(a.threshold)),
                    ("tollgate.alert.op", NewValue::Str(a.op.as_str())),
                    ("tollgate.alert.severity", NewValue::Str(&a.severity)),
                ],
            );
        }
        for a in alerts {
            self.emit(a);
        }
        out
    }

    /// Advances every window to now: fires windows whose condition now holds for `for`, resolves
    /// windows whose condition stopped holding (also when traffic stopped), forgets idle groups.
    pub fn tick(&self) {
        let now = self.clock.now_ms();
        let rules = self.rules.load();
        let mut firing = Vec::new();
        for r in rules.rules.iter() {
            let Some(window) = &r.window else { continue };
            let transitions = window.lock().tick(r, now);
            for t in transitions {
                firing.push(firing_op(r, &t, now));
                let a = self.window_alert(r, t, None, now);
                self.emit(a);
            }
        }
        self.record_firing(firing, now);
    }

    /// Records window alerts that fired or resolved ([`Op::SetFiring`]) in the state store, as
    /// one batch.
    pub fn record_firing(&self, firing: Vec<Op>, now: u64) {
        if firing.is_empty() {
            return;
        }
        let batch = StateBatch {
            now_ms: now,
            ops: firing,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        match self.state.apply(batch, deadline).now() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => crate::state::failed_batch("alert_firing", &e),
            Err(pending) => {
                if let Some(rt) = &self.runtime {
                    rt.spawn(async move {
                        if let Err(e) = pending.await {
                            crate::state::failed_batch("alert_firing", &e);
                        }
                    });
                }
            }
        }
    }

    /// Uses `state` for window firing from now on, and restores the window alerts it records as
    /// firing (e.g. before a restart): each is firing again for its group (counted in the
    /// firing gauge, not notified again), so it resolves when its condition no longer holds.
    /// Records of rules that no longer exist (or are no window rules) are resolved in `state`.
    pub fn with_state(mut self, state: Arc<dyn StateStore>) -> Self {
        self.state = state;
        let rules = self.rules.load_full();
        let mut stale = Vec::new();
        let mut restored = 0usize;
        for f in self.state.firing() {
            let window = rules
                .rules
                .iter()
                .find(|r| *r.name == *f.rule)
                .and_then(|r| r.window.as_ref().map(|w| (r, w)));
            match window {
                Some((r, w)) => {
                    w.lock()
                        .restore_firing(&f.group, f.since_ms, self.clock.now_ms());
                    METRICS.firing.with_label_values(&[r.name.as_ref()]).inc();
                    restored += 1;
                }
                None => stale.push(Op::SetFiring {
                    rule: f.rule,
                    group: f.group,
                    since_ms: None,
                }),
            }
        }
        if restored > 0 {
            tracing::info!(
                restored,
                "Restored window alerts that were firing before the restart."
            );
        }
        let now = self.clock.now_ms();
        self.record_firing(stale, now);
        self
    }

    /// Runs [`tick`](Self::tick) every second until `cancel` fires.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = every.tick() => self.tick(),
            }
        }
    }

    /// Replaces the rules, the trace link template and (when they changed) the notifiers. On
    /// any error nothing changes. Rules whose config is unchanged keep their window state;
    /// firing alerts of removed or changed window rules are resolved.
    pub fn reload(&self, cfg: &AlertsConfig) -> Result<(), Vec<AlertsError>> {
        let _guard = self.reload_lock.lock();
        let old = self.rules.load_full();
        let mut errors = Vec::new();
        let new = match AlertRules::compile(&cfg.rules, Some(&old)) {
            Ok(r) => Some(r),
            Err(e) => {
                errors.extend(e);
                None
            }
        };
        let notify_changed = *self.notify_cfg.lock() != cfg.notify;
        if notify_changed {
            if let Err(e) = notify::validate(&cfg.notify) {
                errors.extend(e);
            }
            if !cfg.notify.is_empty() && self.runtime.is_none() {
                errors.push(AlertsError::Alerts(
                    "notifiers need a running tokio runtime".into(),
                ));
            }
        }
        let Some(new) = new.filter(|_| errors.is_empty()) else {
            tracing::warn!(
                errors = errors.len(),
                "Alert config reload failed; keeping the old rules."
            );
            return Err(errors);
        };
        if notify_changed {
            let notifiers = match &self.runtime {
                Some(rt) => Notifiers::start(&cfg.notify, rt)?,
                None => Notifiers::default(),
            };
            for a in self.firing.lock().values() {
                notifiers.dispatch(a);
            }
            self.notifiers.store(Arc::new(notifiers));
            *self.notify_cfg.lock() = cfg.notify.clone();
        }
        self.trace_url.store(Arc::new(cfg.trace_url.clone()));
        let removed: Vec<Arc<Rule>> = old
            .rules
            .iter()
            .filter(|o| !new.rules.iter().any(|n| Arc::ptr_eq(o, n)))
            .cloned()
            .collect();
        self.rules.store(Arc::new(new));
        let now = self.clock.now_ms();
        for r in removed {
            let Some(window) = &r.window else { continue };
            let transitions = window.lock().drain_firing();
            let mut firing = Vec::new();
            for t in transitions {
                firing.push(firing_op(&r, &t, now));
                let a = self.window_alert(&r, t, None, now);
                self.emit(a);
            }
            self.record_firing(firing, now);
        }
        tracing::info!(rules = self.rules.load().len(), "Alert rules reloaded.");
        Ok(())
    }
}
