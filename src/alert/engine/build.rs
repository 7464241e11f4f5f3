//! Building alerts (span, task, window and budget alerts: labels, annotations, the span event)
//! and emitting them to the log, metrics, `WatchAlerts` and the notifiers.

use super::*;

impl AlertEngine {
    pub(super) fn window_alert(
        &self,
        r: &Rule,
        t: Transition,
        origin: Option<&Origin<'_>>,
        now: u64,
    ) -> Alert {
        let (state, group, value, since) = match t {
            Transition::Fire { group, value } => (AlertState::Firing, group, value, now),
            Transition::Resolve {
                group,
                value,
                since_ms,
            } => (AlertState::Resolved, group, value, since_ms),
        };
        let service = r
            .group_by
            .iter()
            .position(|k| k == "service.name")
            .and_then(|i| group.get(i))
            .map_or("", String::as_str);
        let o = Origin {
            task_id: None,
            service,
            trace_id: origin.map_or(&[][..], |o| o.trace_id),
            span_id: origin.map_or(&[][..], |o| o.span_id),
        };
        let event = Event {
            state,
            value,
            group: &group,
            starts_at: since,
            now,
        };
        self.build(r, &event, &o)
    }

    pub(super) fn build(&self, r: &Rule, ev: &Event<'_>, o: &Origin<'_>) -> Alert {
        let Event {
            state,
            value,
            group,
            starts_at,
            now,
        } = *ev;
        let mut labels = BTreeMap::new();
        for (k, v) in &r.cfg.labels {
            labels.insert(sanitize_label(k), v.clone());
        }
        for (k, v) in r.group_by.iter().zip(group) {
            if !v.is_empty() {
                labels.insert(sanitize_label(k), v.clone());
            }
        }
        labels.insert("alertname".into(), r.name.to_string());
        labels.insert("severity".into(), r.severity.to_string());
        if !o.service.is_empty() {
            labels.insert("service".into(), o.service.to_string());
        }
        if let Some(task) = o.task_id {
            labels.insert("task_id".into(), task.to_string());
        }
        let value_text = value.text();
        let threshold_text = Value::Num(r.cfg.threshold).text();
        let metric = r.metric.as_str();
        let op = r.op.as_str();
        let whom = match (o.task_id, r.scope) {
            (Some(t), Scope::Task) => format!("task {t}"),
            (Some(t), _) => format!("a span of task {t}"),
            (None, _) if group.iter().any(|g| !g.is_empty()) => {
                let parts: Vec<String> = r
                    .group_by
                    .iter()
                    .zip(group)
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!(
                    "window {} over {}",
                    r.cfg.window.as_deref().unwrap_or(""),
                    parts.join(", ")
                )
            }
            (None, _) => format!("window {}", r.cfg.window.as_deref().unwrap_or("")),
        };
        let mut annotations = r.cfg.annotations.clone();
        annotations.insert(
            "summary".into(),
            format!("{metric} is {value_text} (threshold {op} {threshold_text}) for {whom}"),
        );
        annotations.insert(
            "description".into(),
            r.cfg.description.clone().unwrap_or_else(|| {
                let svc = if o.service.is_empty() {
                    String::new()
                } else {
                    format!(" in service {}", o.service)
                };
                format!(
                    "Rule {} ({} scope): {metric} {value_text} {op} {threshold_text} for {whom}{svc}.",
                    r.name,
                    r.scope.as_str()
                )
            }),
        );
        let trace_hex = (!o.trace_id.is_empty()).then(|| hex::encode(o.trace_id));
        let span_hex = (!o.span_id.is_empty()).then(|| hex::encode(o.span_id));
        let link = self.trace_url.load().as_ref().as_ref().and_then(|tpl| {
            if tpl.contains("{trace_id}") && trace_hex.is_none() {
                return None;
            }
            Some(
                tpl.replace("{trace_id}", trace_hex.as_deref().unwrap_or(""))
                    .replace("{span_id}", span_hex.as_deref().unwrap_or(""))
                    .replace("{task_id}", o.task_id.unwrap_or(""))
                    .replace("{rule}", &r.name),
            )
        });
        if let Some(l) = &link {
            annotations.insert("trace_url".into(), l.clone());
        }
        Alert {
            rule: r.name.to_string(),
            state,
            scope: r.scope,
            metric: r.metric,
            op: r.op,
            severity: r.severity.to_string(),
            value: value.as_f64(),
            value_text,
            threshold: r.cfg.threshold,
            labels,
            annotations,
            task_id: o.task_id.map(str::to_string),
            trace_id: trace_hex,
            span_id: span_hex,
            starts_at_unix_ms: starts_at,
            at_unix_ms: now,
            generator_url: link,
        }
    }

    /// Delivers a budget alert (a `warn_at` fraction or the limit reached by a key in a period,
    /// `[[budgets]]`) like any alert: log, metrics, `WatchAlerts`, notifiers. Returns
    /// the `tollgate.alert` span event for the call that reached it.
    pub fn budget_alert(&self, c: &crate::alert::BudgetAlert<'_>, now: u64) -> Vec<u8> {
        let period_start = c.period_start.to_owned();
        let (severity, threshold, what) = match c.warn_at {
            Some(f) => ("warning", f.to_owned(), format!("{f} of its limit")),
            None => ("critical", "limit".to_owned(), "its limit".to_owned()),
        };
        let mut labels = BTreeMap::new();
        for (k, v) in c.key {
            labels.insert(sanitize_label(k), v.to_string());
        }
        labels.insert("alertname".into(), c.budget.to_string());
        labels.insert("budget".into(), c.budget.to_string());
        labels.insert("period_start".into(), period_start.clone());
        labels.insert("severity".into(), severity.into());
        labels.insert("threshold".into(), threshold);
        let whom: Vec<String> = c.key.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let whom = whom.join(", ");
        let mut annotations = BTreeMap::new();
        annotations.insert(
            "summary".into(),
            format!(
                "budget {} for {whom} reached {what}: {} of {} USD since {period_start}",
                c.budget, c.spent, c.limit
            ),
        );
        annotations.insert(
            "description".into(),
            format!(
                "Budget {}: {whom} spent {} USD this period (from {period_start}); threshold {} USD, limit {} USD.",
                c.budget, c.spent, c.threshold, c.limit
            ),
        );
        let alert = Alert {
            rule: c.budget.to_string(),
            state: AlertState::Firing,
            scope: Scope::Budget,
            metric: crate::alert::Metric::CostUsd,
            op: crate::alert::Op::Ge,
            severity: severity.into(),
            value: c.spent.as_usd_f64(),
            value_text: c.spent.to_string(),
            threshold: c.threshold.as_usd_f64(),
            labels,
            annotations,
            task_id: None,
            trace_id: (!c.trace_id.is_empty()).then(|| hex::encode(c.trace_id)),
            span_id: (!c.span_id.is_empty()).then(|| hex::encode(c.span_id)),
            starts_at_unix_ms: now,
            at_unix_ms: now,
            generator_url: None,
        };
        let mut event = Vec::new();
        push_span_event(
            &mut event,
            now.saturating_mul(1_000_000),
            ALERT_EVENT,
            &[
                ("tollgate.alert.rule", NewValue::Str(&alert.rule)),
                (
                    "tollgate.alert.metric",
                    NewValue::Str(alert.metric.as_str()),
                ),
                ("tollgate.alert.value", NewValue::Double(alert.value)),
                (
                    "tollgate.alert.threshold",
                    NewValue::Double(alert.threshold),
                ),
                ("tollgate.alert.op", NewValue::Str(alert.op.as_str())),
                ("tollgate.alert.severity", NewValue::Str(&alert.severity)),
            ],
        );
        self.emit(alert);
        event
    }

    pub(super) fn emit(&self, alert: Alert) {
        let alert = Arc::new(alert);
        match alert.state {
            AlertState::Firing => {
                METRICS
                    .alerts
                    .with_label_values(&[alert.rule.as_str(), alert.severity.as_str()])
                    .inc();
                if alert.scope == Scope::Window {
                    METRICS
                        .firing
                        .with_label_values(&[alert.rule.as_str()])
                        .inc();
                    self.firing
                        .lock()
                        .insert(alert.fingerprint(), alert.clone());
                }
                let line = self.log_budget.lock().admit(alert.at_unix_ms);
                if let crate::alert::log_budget::LogLine::Log { left_out } = line {
                    if left_out > 0 {
                        tracing::warn!(
                            left_out,
                            "More alerts fired than are logged (a few a second); each is counted in tollgate_alerts_total and delivered."
                        );
                    }
                    tracing::warn!(
                        rule = %alert.rule,
                        severity = %alert.severity,
                        scope = alert.scope.as_str(),
                        metric = alert.metric.as_str(),
                        value = %alert.value_text,
                        threshold = alert.threshold,
                        task_id = alert.task_id.as_deref().unwrap_or(""),
                        trace_id = alert.trace_id.as_deref().unwrap_or(""),
                        summary = %alert.summary(),
                        "Alert fired."
                    );
                }
            }
            AlertState::Resolved => {
                METRICS
                    .firing
                    .with_label_values(&[alert.rule.as_str()])
                    .dec();
                self.firing.lock().remove(&alert.fingerprint());
                tracing::info!(
                    rule = %alert.rule,
                    severity = %alert.severity,
                    metric = alert.metric.as_str(),
                    value = %alert.value_text,
                    threshold = alert.threshold,
                    "Alert resolved."
                );
            }
        }
        // No subscriber is fine.
        self.broadcast.send(alert.clone()).ok();
        self.notifiers.load().dispatch(&alert);
    }
}
