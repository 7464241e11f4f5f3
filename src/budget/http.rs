//! `GET /api/v1/budgets/{budget}/{key…}` on the admin listener: a key's spend this period, its
//! limit, what remains, the period and whether it is exceeded. A budget keyed by several
//! attributes takes their values as path segments, in the budget's key order.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::{Budgets, StatusError};

/// The route, with the budgets as state.
pub fn router(budgets: Arc<Budgets>) -> Router {
    Router::new()
        .route("/api/v1/budgets/{budget}/{*key}", get(get_budget))
        .with_state(budgets)
}

async fn get_budget(
    State(budgets): State<Arc<Budgets>>,
    Path((budget, key)): Path<(String, String)>,
) -> Response {
    let values: Vec<&str> = key.split('/').collect();
    match budgets.status(&budget, &values) {
        Ok(s) => Json(s).into_response(),
        Err(e) => {
            let code = match e {
                StatusError::UnknownBudget(_) => StatusCode::NOT_FOUND,
                StatusError::KeyArity { .. } => StatusCode::BAD_REQUEST,
            };
            (code, Json(serde_json::json!({ "error": e.to_string() }))).into_response()
        }
    }
}
