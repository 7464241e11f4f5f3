//! The task query API over HTTP, mounted on the admin listener:
//! `GET /api/v1/tasks/{task_id}` and `GET /api/v1/tasks?sort=cost&limit=N`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::task::{EndReason, TaskSummary, TaskTracker};
use crate::units::{NanoUsd, Unpriced};

/// Most tasks one list call returns.
pub const MAX_LIST_LIMIT: usize = 1000;

/// The routes, with the tracker as state.
pub fn router(tracker: Arc<TaskTracker>) -> Router {
    Router::new()
        .route("/api/v1/tasks", get(list_tasks))
        .route("/api/v1/tasks/{task_id}", get(get_task))
        .with_state(tracker)
}

/// A task as the API reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    /// The task id.
    pub task_id: String,
    /// The trace the task was first seen in (lowercase hex).
    pub trace_id: String,
    /// `active` or `ended`.
    pub status: String,
    /// `idle`, `root` or `evicted` once ended.
    pub end_reason: Option<String>,
    /// Exact cost in USD as a decimal string.
    pub cost_usd: String,
    /// The same cost as a number.
    pub cost_usd_value: f64,
    /// The exact cost in nano-USD.
    pub cost_nano_usd: i64,
    /// Tokens by kind.
    pub tokens: TokensView,
    /// LLM calls, priced or not.
    pub llm_calls: u64,
    /// Of them, the calls tollgate could not price: their cost is unknown and not in
    /// `cost_usd` (which is then a lower bound).
    pub unpriced_calls: u64,
    /// Unpriced calls by reason.
    pub unpriced: Unpriced,
    /// Cache reads over all input; null without input.
    pub cache_hit_ratio: Option<f64>,
    /// Spans with error status.
    pub errors: u64,
    /// Spans seen.
    pub spans: u64,
    /// Earliest span start (RFC 3339), null when unknown.
    pub first_seen: Option<String>,
    /// Latest span end (RFC 3339), null when unknown.
    pub last_seen: Option<String>,
    /// `service.name`.
    pub service: String,
    /// The task type (`unknown` when the spans carry none, as in the metric labels).
    pub task_type: String,
}

/// Tokens by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokensView {
    /// All input tokens, cache reads and writes included.
    pub input: u64,
    /// Input tokens not touching a cache.
    pub input_uncached: u64,
    /// Input tokens read from a cache.
    pub cache_read: u64,
    /// Input tokens written to a cache.
    pub cache_write: u64,
    /// Output tokens.
    pub output: u64,
}

impl From<&TaskSummary> for TaskView {
    fn from(s: &TaskSummary) -> Self {
        let t = &s.totals;
        TaskView {
            task_id: s.task_id.to_string(),
            trace_id: hex::encode(s.trace_id),
            status: s.status.as_str().into(),
            end_reason: s.end_reason.map(|r: EndReason| r.as_str().to_string()),
            cost_usd: NanoUsd(t.cost_nano_usd).to_string(),
            cost_usd_value: NanoUsd(t.cost_nano_usd).as_usd_f64(),
            cost_nano_usd: t.cost_nano_usd,
            tokens: TokensView {
                input: t.tokens.input(),
                input_uncached: t.tokens.input_uncached,
                cache_read: t.tokens.cache_read,
                cache_write: t.tokens.cache_write,
                output: t.tokens.output,
            },
            llm_calls: t.llm_calls,
            unpriced_calls: t.unpriced.total(),
            unpriced: t.unpriced,
            cache_hit_ratio: t.tokens.cache_hit_ratio(),
            errors: t.errors,
            spans: t.spans,
            first_seen: rfc3339(t.first_seen_unix_nano),
            last_seen: rfc3339(t.last_seen_unix_nano),
            service: s.service.clone(),
            task_type: super::shown_task_type(&s.task_type),
        }
    }
}

fn rfc3339(unix_nano: u64) -> Option<String> {
    if unix_nano == 0 {
        return None;
    }
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_nano))
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// An API error: a status and a JSON body `{"error": "..."}`.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

async fn get_task(
    State(tracker): State<Arc<TaskTracker>>,
    Path(task_id): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    tracker
        .get(&task_id)
        .map(|s| Json(TaskView::from(&s)))
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("unknown task {task_id}")))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    sort: Option<String>,
    limit: Option<usize>,
}

/// The body of `GET /api/v1/tasks`.
#[derive(Debug, Serialize, Deserialize)]
pub struct TaskList {
    /// Costliest first.
    pub tasks: Vec<TaskView>,
}

async fn list_tasks(
    State(tracker): State<Arc<TaskTracker>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<TaskList>, ApiError> {
    match q.sort.as_deref() {
        None | Some("cost") => {}
        Some(other) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("unsupported sort {other:?}; use sort=cost"),
            ))
        }
    }
    let limit = q.limit.unwrap_or(20).min(MAX_LIST_LIMIT);
    let tasks = tracker
        .top_by_cost(limit)
        .iter()
        .map(TaskView::from)
        .collect();
    Ok(Json(TaskList { tasks }))
}
