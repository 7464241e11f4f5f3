//! `GET /api/v1/tasks/{id}` reports the exact running cost mid-task, the gRPC `GetTask` agrees,
//! unknown tasks are 404 / NOT_FOUND, the list is costliest first, and `WatchAlerts` streams.

mod alert_support;

use std::time::Duration;

use alert_support::{engine, TestSpan};
use tokio_stream::wrappers::TcpListenerStream;
use tollgate::admin::task_grpc::pb::{GetTaskRequest, WatchAlertsRequest};
use tollgate::admin::task_grpc::{TaskService, TaskServiceClient};
use tollgate::admin::task_http::{TaskList, TaskView};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_and_grpc_report_the_exact_running_cost() {
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    let (engine, clock) = engine(
        r#"
        [[rules]]
        name = "over_a_dollar"
        scope = "task"
        metric = "cost_usd"
        op = ">"
        threshold = 1.0
        "#,
    );

    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_addr = http.local_addr().unwrap();
    let router = tollgate::admin::task_http::router(engine.tracker().clone());
    tokio::spawn(async move { axum::serve(http, router).await.unwrap() });

    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = grpc.local_addr().unwrap();
    let svc = TaskService::server(engine.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(TcpListenerStream::new(grpc))
            .await
            .unwrap()
    });

    // Mid-task: two calls of $0.333333333 and one of $0.000000001 — not a float-friendly sum.
    for (n, cost) in [(1u8, 333_333_333i64), (2, 333_333_333), (3, 1)] {
        engine.observe(&TestSpan::llm("task-mid", n, cost).input());
    }
    // Issue 18 point 2: a call of an unknown model is counted as unpriced, not as $0.
    let mut unknown = TestSpan::llm("task-mid", 4, 0);
    unknown.llm = Some(tollgate::task::LlmUsage {
        unpriced: tollgate::units::Unpriced::one("unknown_model").unwrap(),
        ..Default::default()
    });
    engine.observe(&unknown.input());
    engine.observe(&TestSpan::llm("task-small", 1, 50_000_000).input());

    let client = reqwest::Client::new();
    let base = format!("http://{http_addr}");
    let resp = client
        .get(format!("{base}/api/v1/tasks/task-mid"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let view: TaskView = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(view.cost_usd, "0.666666667");
    assert_eq!(view.cost_nano_usd, 666_666_667);
    assert!((view.cost_usd_value - 0.666666667).abs() < 1e-12);
    assert_eq!(view.llm_calls, 4);
    assert_eq!(view.unpriced_calls, 1);
    assert_eq!(view.unpriced.unknown_model, 1);
    assert_eq!(view.tokens.input, 3000);
    assert_eq!(view.tokens.output, 300);
    assert_eq!(view.cache_hit_ratio, Some(0.0));
    assert_eq!(view.status, "active");
    assert_eq!(view.service, "agent-svc");
    assert_eq!(view.task_type, "research");
    assert!(view
        .first_seen
        .as_deref()
        .unwrap()
        .starts_with("2025-11-24T"));

    let mut grpc_client = TaskServiceClient::connect(format!("http://{grpc_addr}"))
        .await
        .unwrap();
    let task = grpc_client
        .get_task(GetTaskRequest {
            task_id: "task-mid".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(task.cost_usd, view.cost_usd);
    assert_eq!(task.cost_nano_usd, view.cost_nano_usd);
    assert_eq!(task.llm_calls, view.llm_calls);
    assert_eq!(task.unpriced_calls, 1);
    assert_eq!(
        task.unpriced_by_reason,
        [("unknown_model".to_string(), 1)].into()
    );
    assert_eq!(task.input_tokens, view.tokens.input);
    assert_eq!(task.status, "active");

    // Unknown: 404 with a JSON error, NOT_FOUND over gRPC.
    let resp = client
        .get(format!("{base}/api/v1/tasks/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert!(body["error"].as_str().unwrap().contains("nope"));
    let status = grpc_client
        .get_task(GetTaskRequest {
            task_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);

    // The list: costliest first, limited.
    let list: TaskList = serde_json::from_slice(
        &client
            .get(format!("{base}/api/v1/tasks?sort=cost&limit=1"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(list.tasks.len(), 1);
    assert_eq!(list.tasks[0].task_id, "task-mid");
    let bad = client
        .get(format!("{base}/api/v1/tasks?sort=name"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // WatchAlerts streams the alert the next span fires.
    let mut stream = grpc_client
        .watch_alerts(WatchAlertsRequest { rules: vec![] })
        .await
        .unwrap()
        .into_inner();
    engine.observe(&TestSpan::llm("task-mid", 4, 400_000_000).input());
    let alert = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("an alert arrives")
        .unwrap()
        .unwrap();
    assert_eq!(alert.rule, "over_a_dollar");
    assert_eq!(alert.state, "firing");
    assert_eq!(alert.task_id, "task-mid");
    assert_eq!(alert.labels["task_id"], "task-mid");

    // Ended tasks stay queryable.
    engine.observe(&TestSpan::root("task-mid").input());
    clock.advance_ms(6_000);
    engine.tracker().sweep();
    let ended: TaskView = serde_json::from_slice(
        &client
            .get(format!("{base}/api/v1/tasks/task-mid"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(ended.status, "ended");
    assert_eq!(ended.end_reason.as_deref(), Some("root"));
    assert_eq!(ended.cost_usd, "1.066666667");
}
