//! `tollgate.v1.BudgetService/GetBudget` (`proto/tollgate/v1/budgets.proto`), on the admin
//! listener beside the task gRPC API: the same answer as the HTTP API.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::task_grpc::pb;
use crate::budget::{BudgetStatus, Budgets, StatusError};

pub use pb::budget_service_client::BudgetServiceClient;
pub use pb::budget_service_server::BudgetServiceServer;

/// The `tollgate.v1.BudgetService` implementation.
#[derive(Debug, Clone)]
pub struct BudgetService {
    budgets: Arc<Budgets>,
}

impl BudgetService {
    /// The tonic service.
    pub fn server(budgets: Arc<Budgets>) -> BudgetServiceServer<BudgetService> {
        BudgetServiceServer::new(BudgetService { budgets })
    }
}

impl From<BudgetStatus> for pb::BudgetStatus {
    fn from(s: BudgetStatus) -> Self {
        pb::BudgetStatus {
            budget: s.budget,
            key: s.key.into_iter().collect(),
            spent_usd: s.spent_usd,
            spent_nano_usd: s.spent_nano_usd,
            limit_usd: s.limit_usd,
            limit_nano_usd: s.limit_nano_usd,
            remaining_usd: s.remaining_usd,
            remaining_nano_usd: s.remaining_nano_usd,
            period_start: s.period_start,
            period_end: s.period_end,
            exceeded: s.exceeded,
            period: s.period,
            window: s.window.unwrap_or_default(),
        }
    }
}

#[tonic::async_trait]
impl pb::budget_service_server::BudgetService for BudgetService {
    async fn get_budget(
        &self,
        request: Request<pb::GetBudgetRequest>,
    ) -> Result<Response<pb::BudgetStatus>, Status> {
        let r = request.into_inner();
        let values: Vec<&str> = r.key_values.iter().map(String::as_str).collect();
        match self.budgets.status(&r.budget, &values) {
            Ok(s) => Ok(Response::new(s.into())),
            Err(e @ StatusError::UnknownBudget(_)) => Err(Status::not_found(e.to_string())),
            Err(e) => Err(Status::invalid_argument(e.to_string())),
        }
    }
}
