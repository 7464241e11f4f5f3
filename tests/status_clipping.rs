//! #19 point 4 against the real binary: spans with 1 MiB model and service names (and task
//! types) leave the status page, the status JSON, the task APIs and /metrics small — every name
//! the read side keeps is clipped to 256 bytes (distinct names stay distinct).

mod live_support;

use live_support::*;
use serde_json::json;

const MIB: usize = 1 << 20;

fn call(n: u8) -> serde_json::Value {
    // Distinct 1 MiB names per request (the last byte differs).
    let model = format!("{}{n}", "m".repeat(MIB));
    let service = format!("{}{n}", "s".repeat(MIB));
    let task_type = format!("{}{n}", "t".repeat(MIB));
    json!({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": service}},
            {"key": "agent.task_type", "value": {"stringValue": task_type}}]},
        "scopeSpans": [{"spans": [{
            "traceId": format!("{:02x}", n + 1).repeat(16), "spanId": "0102030405060708",
            "name": "chat", "kind": 3,
            "startTimeUnixNano": "1780000000000000000", "endTimeUnixNano": "1780000001000000000",
            "attributes": [
                {"key": "llm.model", "value": {"stringValue": model}},
                {"key": "llm.input_tokens", "value": {"intValue": "100"}},
                {"key": "llm.output_tokens", "value": {"intValue": "10"}}]}]}]}]})
}

async fn size_of(url: &str) -> usize {
    let r = client().get(url).send().await.expect("GET");
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.bytes().await.expect("body").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_and_apis_stay_small_with_1_mib_names() {
    let dir = tempfile::tempdir().unwrap();
    let tg = start_tollgate(dir.path(), "").await;
    let calls = 20u8;
    for n in 0..calls {
        let r = post_traces(&tg.http, &call(n)).await;
        assert_eq!(r, json!({}), "accepted");
    }
    // Every call is on the read side before the sizes are taken.
    let tasks = wait_for("the tasks", async || {
        let v = get_json(&format!("http://{}/api/v1/tasks", tg.admin)).await?;
        let n = v["tasks"].as_array().map_or(0, Vec::len);
        (n >= usize::from(calls)).then_some(v)
    })
    .await;
    let one = &tasks["tasks"][0];
    for key in ["service", "task_type"] {
        let s = one[key].as_str().unwrap_or_default();
        assert!(
            s.len() <= 256 && s.contains('…'),
            "{key} is clipped: {} bytes",
            s.len()
        );
    }
    let services: std::collections::BTreeSet<&str> = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["service"].as_str())
        .collect();
    assert_eq!(
        services.len(),
        usize::from(calls),
        "clipped names stay distinct"
    );

    // 20 calls × 3 MiB of names went in; what comes out stays small.
    let limit = 256 << 10;
    for path in [
        "/".to_string(),
        "/api/v1/status".to_string(),
        "/api/v1/tasks".to_string(),
        format!("/api/v1/tasks/{}", "01".repeat(16)),
    ] {
        let n = size_of(&format!("http://{}{path}", tg.admin)).await;
        eprintln!("GET {path}: {n} bytes");
        assert!(n < limit, "GET {path} is {n} bytes");
    }
    let metrics = size_of(&format!("http://{}/metrics", tg.admin)).await;
    eprintln!("GET /metrics: {metrics} bytes");
    assert!(metrics < 1 << 20, "GET /metrics is {metrics} bytes");
}
