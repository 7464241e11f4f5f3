//! The task API over gRPC (`proto/tollgate/v1/tasks.proto`): `GetTask` and the `WatchAlerts`
//! stream.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use crate::alert::{Alert, AlertEngine};

use crate::task::{TaskSummary, TaskTracker};
use crate::units::NanoUsd;

/// The generated protobuf and tonic types of package `tollgate.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("tollgate.v1");
}

pub use pb::task_service_client::TaskServiceClient;
pub use pb::task_service_server::TaskServiceServer;

/// The `tollgate.v1.TaskService` implementation.
#[derive(Debug, Clone)]
pub struct TaskService {
    tracker: Arc<TaskTracker>,
    engine: Arc<AlertEngine>,
}

impl TaskService {
    /// The tonic service, ready to add to a `tonic::transport::Server`.
    pub fn server(engine: Arc<AlertEngine>) -> TaskServiceServer<TaskService> {
        TaskServiceServer::new(TaskService {
            tracker: engine.tracker().clone(),
            engine,
        })
    }
}

impl From<&TaskSummary> for pb::Task {
    fn from(s: &TaskSummary) -> Self {
        let t = &s.totals;
        pb::Task {
            task_id: s.task_id.to_string(),
            cost_usd: NanoUsd(t.cost_nano_usd).to_string(),
            cost_usd_value: NanoUsd(t.cost_nano_usd).as_usd_f64(),
            cost_nano_usd: t.cost_nano_usd,
            input_tokens: t.tokens.input(),
            input_uncached_tokens: t.tokens.input_uncached,
            cache_read_tokens: t.tokens.cache_read,
            cache_write_tokens: t.tokens.cache_write,
            output_tokens: t.tokens.output,
            llm_calls: t.llm_calls,
            unpriced_calls: t.unpriced.total(),
            unpriced_by_reason: t
                .unpriced
                .by_reason()
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(r, n)| ((*r).to_string(), *n))
                .collect(),
            cache_hit_ratio: t.tokens.cache_hit_ratio(),
            errors: t.errors,
            spans: t.spans,
            first_seen_unix_nano: t.first_seen_unix_nano,
            last_seen_unix_nano: t.last_seen_unix_nano,
            service: s.service.clone(),
            task_type: super::shown_task_type(&s.task_type),
            status: s.status.as_str().into(),
            trace_id: hex::encode(s.trace_id),
        }
    }
}

impl From<&Alert> for pb::Alert {
    fn from(a: &Alert) -> Self {
        pb::Alert {
            rule: a.rule.clone(),
            state: a.state.as_str().into(),
            severity: a.severity.clone(),
            scope: a.scope.as_str().into(),
            metric: a.metric.as_str().into(),
            op: a.op.as_str().into(),
            value: a.value,
            threshold: a.threshold,
            labels: a.labels.clone().into_iter().collect(),
            annotations: a.annotations.clone().into_iter().collect(),
            task_id: a.task_id.clone().unwrap_or_default(),
            trace_id: a.trace_id.clone().unwrap_or_default(),
            span_id: a.span_id.clone().unwrap_or_default(),
            at_unix_nano: a.at_unix_ms.saturating_mul(1_000_000),
            summary: a.summary().to_string(),
        }
    }
}

type AlertStream = Pin<Box<dyn Stream<Item = Result<pb::Alert, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl pb::task_service_server::TaskService for TaskService {
    async fn get_task(
        &self,
        request: Request<pb::GetTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let id = request.into_inner().task_id;
        self.tracker
            .get(&id)
            .map(|s| Response::new(pb::Task::from(&s)))
            .ok_or_else(|| Status::not_found(format!("unknown task {id}")))
    }

    type WatchAlertsStream = AlertStream;

    async fn watch_alerts(
        &self,
        request: Request<pb::WatchAlertsRequest>,
    ) -> Result<Response<Self::WatchAlertsStream>, Status> {
        let rules = request.into_inner().rules;
        let stream =
            BroadcastStream::new(self.engine.subscribe()).filter_map(move |item| match item {
                Ok(a) if rules.is_empty() || rules.iter().any(|r| *r == a.rule) => {
                    Some(Ok(pb::Alert::from(&*a)))
                }
                Ok(_) => None,
                Err(BroadcastStreamRecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "Alert watcher fell behind; alerts skipped.");
                    None
                }
            });
        Ok(Response::new(Box::pin(stream)))
    }
}
