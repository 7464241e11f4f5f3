//! The status page on the admin listener: `GET /` (HTML) and `GET /api/v1/status` (the same
//! numbers as JSON).
//!
//! The page is rendered on the server with no external assets (inline CSS and SVG), so it works
//! offline, and refreshes itself every 10 seconds. It shows spend in the last hour by model and
//! service with a per-minute chart, the costliest recent tasks with links to their traces, the
//! cache-hit ratio of the last hour (sum of cache reads over sum of input including cache), the
//! firing (window) alerts apart from the recent one-shot span/task alerts, exporter health
//! (queue, batches in flight and retrying, time since the last success, failing after 3 failed
//! attempts in a row) and the receivers' accepted and refused spans. Calls tollgate could not
//! price are shown as unpriced with their reason and count wherever a cost is shown, never as
//! `$0`. Every value that comes from spans or config is HTML-escaped.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::alert::{Alert, AlertEngine, AlertState, Scope};
use crate::export::Exporters;
use crate::pipeline::ReceiverSpans;
use crate::task::{TaskSummary, TaskTracker};
use crate::telemetry::recent::{RecentSpend, Usage};
use crate::units::{NanoUsd, Unpriced};

/// Costliest tasks shown.
pub const TOP_TASKS: usize = 10;
/// Alerts kept for the page at most.
pub const MAX_ALERTS: usize = 50;
/// How long a span or task alert (they never resolve) stays on the page.
const ONE_SHOT_ALERT_MS: u64 = 60 * 60 * 1000;
/// Spend of one model or service in the last hour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpendRow {
    /// The model or service.
    pub name: String,
    /// Exact USD as a decimal string.
    pub cost_usd: String,
    /// Exact nano-USD.
    pub cost_nano_usd: i64,
    /// LLM calls.
    pub llm_calls: u64,
    /// Cache reads over input incl. cache; null without input.
    pub cache_hit_ratio: Option<f64>,
    /// Of the calls, those tollgate could not price (not in `cost_usd`).
    pub unpriced_calls: u64,
    /// Unpriced calls by reason.
    pub unpriced: Unpriced,
}

/// One minute of the chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MinuteRow {
    /// Start of the minute, `HH:MM` UTC.
    pub minute: String,
    /// Exact nano-USD spent in it.
    pub cost_nano_usd: i64,
}

/// A costly task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRow {
    /// The task id.
    pub task_id: String,
    /// `service.name`.
    pub service: String,
    /// The task type.
    pub task_type: String,
    /// `active` or `ended`.
    pub status: String,
    /// Exact USD.
    pub cost_usd: String,
    /// Exact nano-USD.
    pub cost_nano_usd: i64,
    /// LLM calls, priced or not.
    pub llm_calls: u64,
    /// Of them, the calls tollgate could not price (not in `cost_usd`).
    pub unpriced_calls: u64,
    /// Unpriced calls by reason.
    pub unpriced: Unpriced,
    /// The trace, lowercase hex.
    pub trace_id: String,
    /// The link from the `[alerts] trace_url` template, when configured.
    pub trace_url: Option<String>,
}

/// An alert on the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    /// The rule.
    pub rule: String,
    /// Its severity.
    pub severity: String,
    /// `span`, `task` or `window`.
    pub scope: String,
    /// The summary annotation.
    pub summary: String,
    /// When it started firing (RFC 3339).
    pub since: String,
    /// The link to its trace, if any.
    pub trace_url: Option<String>,
}

/// One exporter's health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExporterRow {
    /// The exporter's name.
    pub name: String,
    /// Batches queued.
    pub queue_batches: usize,
    /// Queue capacity in batches.
    pub capacity_batches: usize,
    /// Bytes queued.
    pub queue_bytes: usize,
    /// Queue capacity in bytes.
    pub capacity_bytes: usize,
    /// Queue fill in percent (the fuller of batches and bytes).
    pub fill_percent: f64,
    /// Last successful request (RFC 3339).
    pub last_success: Option<String>,
    /// Last failure (RFC 3339).
    pub last_error_at: Option<String>,
    /// What the last failure was.
    pub last_error: Option<String>,
    /// Seconds since the last successful request; null when none succeeded yet.
    pub seconds_since_last_success: Option<u64>,
    /// Batches taken from the queue and not finished (sending or waiting to retry).
    pub in_flight_batches: usize,
    /// Spans in those batches.
    pub in_flight_spans: usize,
    /// Of those, batches waiting to retry after a failure.
    pub retrying_batches: usize,
    /// Failed attempts since the last success.
    pub consecutive_failures: u64,
    /// True after 3 or more failed attempts in a row, until one succeeds.
    pub failing: bool,
}

/// Everything the page shows; also the body of `/api/v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusData {
    /// When this was collected (RFC 3339).
    pub generated_at: String,
    /// Spend in the last hour, exact USD.
    pub spend_last_hour_usd: String,
    /// Spend in the last hour, exact nano-USD.
    pub spend_last_hour_nano_usd: i64,
    /// LLM calls in the last hour.
    pub llm_calls_last_hour: u64,
    /// Cache reads in the last hour.
    pub cache_read_tokens_last_hour: u64,
    /// Input tokens incl. cache in the last hour.
    pub input_tokens_last_hour: u64,
    /// Cache reads over input incl. cache, last hour; null without input.
    pub cache_hit_ratio_last_hour: Option<f64>,
    /// LLM calls in the last hour that tollgate could not price: their cost is unknown and not
    /// in `spend_last_hour_usd`.
    pub unpriced_calls_last_hour: u64,
    /// Those calls by reason.
    pub unpriced_last_hour: Unpriced,
    /// Spend by model, costliest first.
    pub by_model: Vec<SpendRow>,
    /// Spend by service, costliest first.
    pub by_service: Vec<SpendRow>,
    /// Spend per minute, oldest first (60 entries).
    pub per_minute: Vec<MinuteRow>,
    /// The costliest tasks tracked (active and recently ended).
    pub top_tasks: Vec<TaskRow>,
    /// Window alerts firing now, newest first (what `tollgate_alerts_firing` counts).
    pub firing_alerts: Vec<AlertRow>,
    /// Span and task alerts of the last hour, newest first: they fire once and never resolve.
    pub recent_alerts: Vec<AlertRow>,
    /// Exporter health.
    pub exporters: Vec<ExporterRow>,
    /// Receivers' accepted and refused spans.
    pub receivers: Vec<ReceiverSpans>,
    /// The state store: its backend and whether a shared store is reachable.
    pub state: crate::state::StateHealth,
}

/// The sources of the status page. Share it as `Arc<StatusPage>`.
pub struct StatusPage {
    recent: Arc<RecentSpend>,
    tracker: Arc<TaskTracker>,
    engine: Arc<AlertEngine>,
    exporters: Arc<Exporters>,
    alerts: Mutex<Vec<Arc<Alert>>>,
}

impl std::fmt::Debug for StatusPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusPage").finish_non_exhaustive()
    }
}

fn usd(nano: i64) -> String {
    NanoUsd(nano).to_string()
}

fn rfc3339_ms(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn system_time(t: SystemTime) -> String {
    rfc3339_ms(
        t.duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0),
    )
}

fn spend_row(name: &str, u: &Usage) -> SpendRow {
    SpendRow {
        name: name.to_string(),
        cost_usd: usd(u.cost_nano_usd),
        cost_nano_usd: u.cost_nano_usd,
        llm_calls: u.calls,
        cache_hit_ratio: u.cache_hit_ratio(),
        unpriced_calls: u.unpriced.total(),
        unpriced: u.unpriced,
    }
}

/// Fills a `trace_url` template for a task's trace (`{span_id}` and `{rule}` become empty).
pub fn trace_link(template: Option<&str>, trace_id: &str, task_id: &str) -> Option<String> {
    let tpl = template?;
    if tpl.contains("{trace_id}") && trace_id.is_empty() {
        return None;
    }
    Some(
        tpl.replace("{trace_id}", trace_id)
            .replace("{task_id}", task_id)
            .replace("{span_id}", "")
            .replace("{rule}", ""),
    )
}

/// Builds a task row.
pub fn task_row(s: &TaskSummary, template: Option<&str>) -> TaskRow {
    let trace_id = hex::encode(s.trace_id);
    TaskRow {
        trace_url: trace_link(template, &trace_id, &s.task_id),
        task_id: s.task_id.to_string(),
        service: s.service.clone(),
        task_type: crate::admin::shown_task_type(&s.task_type),
        status: s.status.as_str().into(),
        cost_usd: usd(s.totals.cost_nano_usd),
        cost_nano_usd: s.totals.cost_nano_usd,
        llm_calls: s.totals.llm_calls,
        unpriced_calls: s.totals.unpriced.total(),
        unpriced: s.totals.unpriced,
        trace_id,
    }
}

/// Builds an alert row.
pub fn alert_row(a: &Alert) -> AlertRow {
    AlertRow {
        rule: a.rule.clone(),
        severity: a.severity.clone(),
        scope: a.scope.as_str().into(),
        summary: a.summary().to_string(),
        since: rfc3339_ms(a.starts_at_unix_ms),
        trace_url: a.generator_url.clone(),
    }
}

/// The fill of a queue in percent: the fuller of batches and bytes.
pub fn fill_percent(len: usize, cap: usize, bytes: usize, cap_bytes: usize) -> f64 {
    let f = |n: usize, c: usize| {
        if c == 0 {
            0.0
        } else {
            n as f64 * 100.0 / c as f64
        }
    };
    f(len, cap).max(f(bytes, cap_bytes))
}

impl StatusPage {
    /// The page over tollgate's running components.
    pub fn new(
        recent: Arc<RecentSpend>,
        tracker: Arc<TaskTracker>,
        engine: Arc<AlertEngine>,
        exporters: Arc<Exporters>,
    ) -> Self {
        Self {
            recent,
            tracker,
            engine,
            exporters,
            alerts: Mutex::new(Vec::new()),
        }
    }

    /// `GET /` and `GET /api/v1/status`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/", get(page))
            .route("/api/v1/status", get(json))
            .with_state(self)
    }

    /// Follows the alert engine until `cancel` fires, keeping the firing alerts for the page.
    pub async fn follow_alerts(self: Arc<Self>, cancel: CancellationToken) {
        let mut rx = self.engine.subscribe();
        loop {
            let next = tokio::select! {
                () = cancel.cancelled() => return,
                next = rx.recv() => next,
            };
            match next {
                Ok(alert) => self.note_alert(alert),
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "The status page missed some alerts.");
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Records one alert event: firing adds (or replaces) it, resolved removes it.
    pub fn note_alert(&self, alert: Arc<Alert>) {
        let fingerprint = alert.fingerprint();
        let mut alerts = self.alerts.lock();
        alerts.retain(|a| a.fingerprint() != fingerprint);
        if alert.state == AlertState::Firing {
            alerts.push(alert);
        }
        let excess = alerts.len().saturating_sub(MAX_ALERTS);
        alerts.drain(..excess);
    }

    /// (window alerts firing now, span and task alerts of the last hour), newest first.
    fn alerts(&self, now_ms: u64) -> (Vec<AlertRow>, Vec<AlertRow>) {
        let mut alerts = self.alerts.lock();
        alerts.retain(|a| {
            a.scope == Scope::Window || now_ms.saturating_sub(a.at_unix_ms) < ONE_SHOT_ALERT_MS
        });
        let (firing, recent): (Vec<&Arc<Alert>>, Vec<&Arc<Alert>>) =
            alerts.iter().rev().partition(|a| a.scope == Scope::Window);
        (
            firing.into_iter().map(|a| alert_row(a)).collect(),
            recent.into_iter().map(|a| alert_row(a)).collect(),
        )
    }

    /// Collects the numbers now.
    pub fn collect(&self) -> StatusData {
        let now_ms = self.tracker.clock().now_ms();
        let (firing_alerts, recent_alerts) = self.alerts(now_ms);
        let snap = self.recent.snapshot(now_ms);
        let template = self.engine.trace_url();
        let top_tasks = self
            .tracker
            .top_by_cost(TOP_TASKS)
            .iter()
            .map(|s| task_row(s, template.as_deref()))
            .collect();
        let now = SystemTime::now();
        let exporters = self
            .exporters
            .health()
            .into_iter()
            .map(|h| ExporterRow {
                seconds_since_last_success: h
                    .last_success
                    .map(|t| now.duration_since(t).map_or(0, |d| d.as_secs())),
                in_flight_batches: h.in_flight_batches,
                in_flight_spans: h.in_flight_spans,
                retrying_batches: h.retrying_batches,
                consecutive_failures: h.consecutive_failures,
                failing: h.failing,
                fill_percent: fill_percent(
                    h.queue_batches,
                    h.capacity_batches,
                    h.queue_bytes,
                    h.capacity_bytes,
                ),
                name: h.name,
                queue_batches: h.queue_batches,
                capacity_batches: h.capacity_batches,
                queue_bytes: h.queue_bytes,
                capacity_bytes: h.capacity_bytes,
                last_success: h.last_success.map(system_time),
                last_error_at: h.last_error.as_ref().map(|(t, _)| system_time(*t)),
                last_error: h.last_error.map(|(_, e)| e),
            })
            .collect();
        StatusData {
            generated_at: rfc3339_ms(now_ms),
            spend_last_hour_usd: usd(snap.total.cost_nano_usd),
            spend_last_hour_nano_usd: snap.total.cost_nano_usd,
            llm_calls_last_hour: snap.total.calls,
            cache_read_tokens_last_hour: snap.total.tokens.cache_read,
            input_tokens_last_hour: snap.total.tokens.input(),
            cache_hit_ratio_last_hour: snap.total.cache_hit_ratio(),
            unpriced_calls_last_hour: snap.total.unpriced.total(),
            unpriced_last_hour: snap.total.unpriced,
            by_model: snap.by_model.iter().map(|(n, u)| spend_row(n, u)).collect(),
            by_service: snap
                .by_service
                .iter()
                .map(|(n, u)| spend_row(n, u))
                .collect(),
            per_minute: snap
                .per_minute
                .iter()
                .map(|(ms, cost)| MinuteRow {
                    minute: rfc3339_ms(*ms).get(11..16).unwrap_or("").to_string(),
                    cost_nano_usd: *cost,
                })
                .collect(),
            top_tasks,
            firing_alerts,
            recent_alerts,
            exporters,
            receivers: crate::pipeline::receiver_spans(),
            state: crate::state::health(),
        }
    }
}

async fn page(State(status): State<Arc<StatusPage>>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        render(&status.collect()),
    )
}

async fn json(State(status): State<Arc<StatusPage>>) -> Json<StatusData> {
    Json(status.collect())
}

/// A ratio as a percentage with one decimal, or an em dash.
pub fn percent(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "—".to_string(), |r| format!("{:.1}%", r * 100.0))
}

fn minute_chart(out: &mut String, minutes: &[MinuteRow]) {
    let (w, h, left, bottom) = (1100.0_f64, 160.0_f64, 70.0_f64, 20.0_f64);
    let max = minutes
        .iter()
        .map(|m| m.cost_nano_usd)
        .max()
        .unwrap_or(0)
        .max(1);
    let n = minutes.len().max(1) as f64;
    let bar = (w - left) / n;
    out.push_str(&format!(
        r#"<svg role="img" aria-label="Spend per minute, last hour" viewBox="0 0 {w} {h}" width="100%" height="{h}">"#
    ));
    out.push_str(&format!(
        r#"<text x="0" y="12">{}</text><text x="0" y="{}">$0</text>"#,
        text(&format!("${}", usd(max))),
        h - bottom
    ));
    for (i, m) in minutes.iter().enumerate() {
        let bh = (m.cost_nano_usd.max(0) as f64 / max as f64) * (h - bottom - 16.0);
        let x = left + i as f64 * bar;
        out.push_str(&format!(
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#3a6ea5"><title>{} UTC: ${}</title></rect>"##,
            h - bottom - bh,
            (bar - 1.0).max(1.0),
            text(&m.minute),
            usd(m.cost_nano_usd)
        ));
        if i % 10 == 0 || i + 1 == minutes.len() {
            out.push_str(&format!(
                r#"<text x="{x:.1}" y="{}">{}</text>"#,
                h - 4.0,
                text(&m.minute)
            ));
        }
    }
    out.push_str("</svg>");
}

const STYLE: &str = "
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:16px;color:#1d2430;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0 0 8px}
.muted{color:#667}.grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:14px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:12px 14px;margin-bottom:14px;overflow-wrap:break-word}
.long{overflow-wrap:anywhere;min-width:12em}
.kpis{display:flex;gap:14px;flex-wrap:wrap;margin-bottom:14px}.kpi{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px 14px;min-width:170px;max-width:320px}
.kpi b{display:block;font-size:24px}table{border-collapse:collapse;width:100%;table-layout:auto}
th,td{text-align:left;vertical-align:top;padding:4px 8px;border-bottom:1px solid #eceff2}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.bad{color:#b00020}.ok{color:#1b7f3b}.warn{color:#9a5b00}
small{display:block;font-size:12px}svg text{font:11px system-ui,sans-serif;fill:#445}code{font-size:13px}
";

/// `1 batch`, `2 batches`.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A byte count in binary units: `0 B`, `512 B`, `1.5 KiB`, `64 MiB`.
pub fn bytes(n: usize) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A duration in seconds as a person reads it: `12 s`, `4 min 5 s`, `3 h 2 min`, `2 d 1 h`.
pub fn ago(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// A cost cell: `$x`; for calls tollgate could not price, `unpriced` (when none was priced) or
/// `$x` plus the unpriced count, each with the reasons — never `$0` for an unknown cost.
pub fn cost_html(cost_usd: &str, calls: u64, unpriced: &Unpriced) -> String {
    let n = unpriced.total();
    if n == 0 {
        return format!("${}", text(cost_usd));
    }
    let why = text(&unpriced.describe()).into_owned();
    if n >= calls {
        format!(
            r#"<span class="warn unpriced" title="{why}">unpriced</span><small class="warn">{why}</small>"#
        )
    } else {
        format!(
            r#"${}<small class="warn unpriced">+ {why}</small>"#,
            text(cost_usd)
        )
    }
}

fn spend_bars(out: &mut String, title: &str, rows: &[SpendRow]) {
    out.push_str(&format!("<section><h2>{}</h2>", text(title)));
    if rows.is_empty() {
        out.push_str(r#"<p class="muted">No LLM calls in the last hour.</p></section>"#);
        return;
    }
    let max = rows
        .iter()
        .map(|r| r.cost_nano_usd)
        .max()
        .unwrap_or(0)
        .max(1);
    out.push_str(r#"<table><tr><th>Name</th><th></th><th class="n">USD</th><th class="n">Calls</th><th class="n">Cache hit</th></tr>"#);
    for r in rows {
        let width = (r.cost_nano_usd.max(0) as f64 / max as f64) * 120.0;
        out.push_str(&format!(
            r##"<tr><td>{}</td><td><svg width="120" height="12" aria-hidden="true"><rect width="{width:.1}" height="12" fill="#3a6ea5"/></svg></td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"##,
            text(&r.name),
            cost_html(&r.cost_usd, r.llm_calls, &r.unpriced),
            r.llm_calls,
            percent(r.cache_hit_ratio)
        ));
    }
    out.push_str("</table></section>");
}

fn alert_table(o: &mut String, title: &str, id: &str, alerts: &[AlertRow], empty: &str) {
    o.push_str(&format!(
        r#"<section id="{id}"><h2>{} ({})</h2>"#,
        text(title),
        alerts.len()
    ));
    if alerts.is_empty() {
        o.push_str(&format!(r#"<p class="ok">{}</p></section>"#, text(empty)));
        return;
    }
    o.push_str("<table><tr><th>Rule</th><th>Severity</th><th>Since</th><th>Summary</th></tr>");
    for a in alerts {
        let summary = match &a.trace_url {
            Some(url) => format!(r#"<a href="{}">{}</a>"#, attr(url), text(&a.summary)),
            None => text(&a.summary).into_owned(),
        };
        o.push_str(&format!(
            r#"<tr><td class="bad">{}</td><td>{}</td><td>{}</td><td class="long">{summary}</td></tr>"#,
            text(&a.rule),
            text(&a.severity),
            text(&a.since)
        ));
    }
    o.push_str("</table></section>");
}

fn exporter_rows(o: &mut String, exporters: &[ExporterRow]) {
    o.push_str(r#"<table><tr><th>Exporter</th><th>State</th><th class="n">Queue</th><th class="n">In flight</th><th>Last success</th><th>Last error</th></tr>"#);
    for e in exporters {
        let state = if e.failing {
            format!(
                r#"<span class="bad">failing</span><small>{} failed attempts in a row</small>"#,
                e.consecutive_failures
            )
        } else if e.consecutive_failures > 0 {
            format!(
                r#"<span class="warn">retrying</span><small>{} failed attempt(s)</small>"#,
                e.consecutive_failures
            )
        } else {
            r#"<span class="ok">ok</span>"#.to_string()
        };
        let in_flight = if e.in_flight_batches == 0 {
            "0".to_string()
        } else {
            let retrying = if e.retrying_batches > 0 {
                format!(
                    r#"<small class="warn">{} waiting to retry</small>"#,
                    e.retrying_batches
                )
            } else {
                String::new()
            };
            format!(
                "{} · {} spans{retrying}",
                plural(e.in_flight_batches, "batch", "batches"),
                e.in_flight_spans
            )
        };
        let success = match (&e.last_success, e.seconds_since_last_success) {
            (Some(at), Some(secs)) => {
                format!(r#"<span title="{}">{} ago</span>"#, attr(at), ago(secs))
            }
            _ => r#"<span class="muted">never</span>"#.to_string(),
        };
        let error = match (&e.last_error_at, &e.last_error) {
            (Some(at), Some(what)) => {
                format!(
                    r#"<span class="bad">{}</span><small class="muted">{}</small>"#,
                    text(what),
                    text(at)
                )
            }
            _ => "—".into(),
        };
        o.push_str(&format!(
            r#"<tr><td>{}</td><td>{state}</td><td class="n">{:.1}%<small>{} / {} batches</small><small>{} / {}</small></td><td class="n">{in_flight}</td><td>{success}</td><td class="long">{error}</td></tr>"#,
            text(&e.name),
            e.fill_percent,
            e.queue_batches,
            e.capacity_batches,
            bytes(e.queue_bytes),
            bytes(e.capacity_bytes),
        ));
    }
    o.push_str("</table>");
}

/// Renders the page.
pub fn render(d: &StatusData) -> String {
    let mut o = String::with_capacity(16 * 1024);
    o.push_str(r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="10"><meta name="viewport" content="width=device-width,initial-scale=1"><title>tollgate status</title><style>"#);
    o.push_str(STYLE);
    o.push_str(&format!(
        r#"</style></head><body><h1>tollgate</h1><p class="muted">What tollgate sees right now · {} · refreshes every 10 s · <a href="/api/v1/status">JSON</a> · <a href="/metrics">metrics</a></p>"#,
        text(&d.generated_at)
    ));

    let unpriced = if d.unpriced_calls_last_hour > 0 {
        format!(
            r#"<small id="spend-unpriced" class="warn">not included: {}</small>"#,
            text(&d.unpriced_last_hour.describe())
        )
    } else {
        String::new()
    };
    let firing = d.firing_alerts.len();
    o.push_str(&format!(
        r#"<div class="kpis"><div class="kpi">Spend, last hour<b id="spend-total">${}</b>{unpriced}</div><div class="kpi">LLM calls, last hour<b id="calls-total">{}</b></div><div class="kpi">Cache-hit ratio, last hour<b id="cache-hit">{}</b><span class="muted">{} of {} input tokens</span></div><div class="kpi">Firing alerts<b id="alerts-count" class="{}">{}</b></div><div class="kpi">Alerts fired, last hour<b id="recent-alerts-count">{}</b><span class="muted">span and task rules</span></div></div>"#,
        text(&d.spend_last_hour_usd),
        d.llm_calls_last_hour,
        percent(d.cache_hit_ratio_last_hour),
        d.cache_read_tokens_last_hour,
        d.input_tokens_last_hour,
        if firing > 0 { "bad" } else { "ok" },
        firing,
        d.recent_alerts.len(),
    ));

    o.push_str("<section><h2>Spend per minute, last hour (UTC)</h2>");
    minute_chart(&mut o, &d.per_minute);
    o.push_str("</section><div class=\"grid\">");
    spend_bars(&mut o, "Spend by model, last hour", &d.by_model);
    spend_bars(&mut o, "Spend by service, last hour", &d.by_service);
    o.push_str("</div>");

    o.push_str("<section><h2>Costliest recent tasks</h2>");
    if d.top_tasks.is_empty() {
        o.push_str(r#"<p class="muted">No tasks tracked.</p>"#);
    } else {
        o.push_str(r#"<table><tr><th>Task</th><th>Service</th><th>Type</th><th>Status</th><th class="n">USD</th><th class="n">LLM calls</th><th>Trace</th></tr>"#);
        for t in &d.top_tasks {
            let trace = match &t.trace_url {
                Some(url) => format!(r#"<a href="{}">{}</a>"#, attr(url), text(&t.trace_id)),
                None => format!("<code>{}</code>", text(&t.trace_id)),
            };
            o.push_str(&format!(
                r#"<tr><td class="long">{}</td><td>{}</td><td>{}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="long">{trace}</td></tr>"#,
                text(&t.task_id),
                text(&t.service),
                text(&t.task_type),
                text(&t.status),
                cost_html(&t.cost_usd, t.llm_calls, &t.unpriced),
                t.llm_calls
            ));
        }
        o.push_str("</table>");
    }
    o.push_str("</section>");

    alert_table(
        &mut o,
        "Firing alerts (window rules)",
        "firing-alerts",
        &d.firing_alerts,
        "None.",
    );
    alert_table(
        &mut o,
        "Recent alerts, last hour (span and task rules fire once)",
        "recent-alerts",
        &d.recent_alerts,
        "None in the last hour.",
    );

    o.push_str("<section><h2>Exporters</h2>");
    if d.exporters.is_empty() {
        o.push_str(r#"<p class="muted">No exporters configured.</p>"#);
    } else {
        exporter_rows(&mut o, &d.exporters);
    }
    o.push_str("</section><section><h2>Receivers</h2>");
    if d.receivers.is_empty() {
        o.push_str(r#"<p class="muted">No spans received yet.</p>"#);
    } else {
        o.push_str(r#"<table><tr><th>Receiver</th><th class="n">Accepted spans</th><th class="n">Refused spans</th></tr>"#);
        for r in &d.receivers {
            o.push_str(&format!(
                r#"<tr><td>{}</td><td class="n">{}</td><td class="n{}">{}</td></tr>"#,
                text(&r.receiver),
                r.accepted_spans,
                if r.refused_spans > 0 { " bad" } else { "" },
                r.refused_spans
            ));
        }
        o.push_str("</table>");
    }
    o.push_str("</section>");
    state_section(&mut o, &d.state);
    o.push_str("</body></html>\n");
    o
}

fn state_section(o: &mut String, s: &crate::state::StateHealth) {
    o.push_str(r#"<section id="state"><h2>State store</h2><table><tr><th>Backend</th><th>State</th><th class="n">Kept for replay</th><th class="n">Replayed</th><th class="n">Lost</th></tr>"#);
    let state = if s.degraded {
        let since = s.degraded_since_ms.map(rfc3339_ms).unwrap_or_default();
        format!(
            r#"<span class="bad">degraded</span><small>unreachable since {}; spans flow, updates kept for replay</small>"#,
            text(&since)
        )
    } else {
        "ok".to_owned()
    };
    o.push_str(&format!(
        r#"<tr><td>{}</td><td>{state}</td><td class="n">{}</td><td class="n">{}</td><td class="n{}">{}</td></tr></table></section>"#,
        text(s.backend),
        s.backlog_ops,
        s.replayed_ops,
        if s.lost_ops > 0 { " bad" } else { "" },
        s.lost_ops
    ));
}

#[cfg(test)]
mod tests;
