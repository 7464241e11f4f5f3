//! Reload through the running binary: a changed config file changes prices for new spans without
//! a restart, and a broken file keeps the old prices (and is counted).

mod live_support;

use live_support::{client, get_json, post_traces, start_tollgate, wait_for};
use serde_json::{json, Value};

fn config(input_price: &str) -> String {
    format!(
        "[reload]\npoll_interval = \"100ms\"\n[pricing]\nbuiltin = false\n\
         [[pricing.models]]\nname = \"tg-reload\"\nprovider = \"anthropic\"\n\
         input = {input_price}\noutput = 0.0\n"
    )
}

/// One LLM call of 1,000,000 uncached input tokens in its own trace (= task).
fn call(trace: u8) -> Value {
    let trace_id = format!("{trace:02x}").repeat(16);
    json!({"resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "reload-test"}}]},
    "scopeSpans": [{"spans": [{
        "traceId": trace_id, "spanId": "0102030405060708", "name": "chat tg-reload", "kind": 3,
        "startTimeUnixNano": "1780000000000000000", "endTimeUnixNano": "1780000001000000000",
        "attributes": [
            {"key": "llm.model", "value": {"stringValue": "tg-reload"}},
            {"key": "llm.input_tokens", "value": {"intValue": "1000000"}},
            {"key": "llm.output_tokens", "value": {"intValue": "0"}}
        ]}]}]}]})
}

async fn cost_of(admin: &str, trace: u8) -> Option<String> {
    let id = format!("{trace:02x}").repeat(16);
    let task = get_json(&format!("http://{admin}/api/v1/tasks/{id}")).await?;
    task["cost_usd"].as_str().map(str::to_owned)
}

async fn reload_failures(admin: &str) -> f64 {
    let text = client()
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("tollgate_config_reloads_total{outcome=\"failure\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn new_prices_apply_and_a_broken_file_keeps_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut tg = start_tollgate(dir.path(), &config("1.5")).await;

    post_traces(&tg.http, &call(1)).await;
    let first = wait_for("the first task", async || cost_of(&tg.admin, 1).await).await;
    assert_eq!(first, "1.5");

    // Change the price in place; the running process picks it up for new spans.
    let text = std::fs::read_to_string(&tg.config_path).unwrap();
    std::fs::write(&tg.config_path, text.replace("input = 1.5", "input = 2.25")).unwrap();
    let mut trace = 2u8;
    let reloaded = wait_for("new prices for new spans", async || {
        trace += 1;
        post_traces(&tg.http, &call(trace)).await;
        let cost = wait_for("the task", async || cost_of(&tg.admin, trace).await).await;
        (cost == "2.25").then_some(trace)
    })
    .await;
    assert!(reloaded > 2);
    // The earlier task keeps the price it was charged.
    assert_eq!(cost_of(&tg.admin, 1).await.as_deref(), Some("1.5"));

    // A broken file: the failure is counted, and the old prices stay.
    let before = reload_failures(&tg.admin).await;
    let text = std::fs::read_to_string(&tg.config_path).unwrap();
    std::fs::write(
        &tg.config_path,
        text.replace("input = 2.25", "input = \"lots\""),
    )
    .unwrap();
    wait_for("the failed reload to be counted", async || {
        (reload_failures(&tg.admin).await > before).then_some(())
    })
    .await;
    post_traces(&tg.http, &call(200)).await;
    let kept = wait_for("the task after a broken reload", async || {
        cost_of(&tg.admin, 200).await
    })
    .await;
    assert_eq!(kept, "2.25");
    tg.proc.assert_running();
}
