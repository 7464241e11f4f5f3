//! Reload guard against the real binary (#19 point 8): a reload that removes most alert rules or
//! prices (a file cut short but still valid TOML) is refused, logged at WARN and counted, unless
//! the new file says `[reload] allow_removal = true`; a deleted config file keeps the running
//! config, logged and counted.

mod live_support;

use live_support::{client, get_json, post_traces, start_tollgate, wait_for};
use serde_json::{json, Value};

fn config(rules: usize, models: usize, extra: &str) -> String {
    let mut text =
        format!("[reload]\npoll_interval = \"100ms\"\n{extra}\n[pricing]\nbuiltin = false\n");
    for m in 0..models {
        text.push_str(&format!(
            "[[pricing.models]]\nname = \"tg-guard-{m}\"\nprovider = \"anthropic\"\ninput = 1.5\noutput = 0.0\n"
        ));
    }
    for r in 0..rules {
        text.push_str(&format!(
            "[[alerts.rules]]\nname = \"rule_{r}\"\nscope = \"task\"\nmetric = \"cost_usd\"\nop = \">\"\nthreshold = {r}.5\n"
        ));
    }
    text
}

fn call(trace: u8) -> Value {
    let trace_id = format!("{trace:02x}").repeat(16);
    json!({"resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "guard-test"}}]},
    "scopeSpans": [{"spans": [{
        "traceId": trace_id, "spanId": "0102030405060708", "name": "chat", "kind": 3,
        "startTimeUnixNano": "1780000000000000000", "endTimeUnixNano": "1780000001000000000",
        "attributes": [
            {"key": "llm.model", "value": {"stringValue": "tg-guard-3"}},
            {"key": "llm.input_tokens", "value": {"intValue": "1000000"}},
            {"key": "llm.output_tokens", "value": {"intValue": "0"}}
        ]}]}]}]})
}

async fn cost_of(admin: &str, trace: u8) -> Option<String> {
    let id = format!("{trace:02x}").repeat(16);
    let task = get_json(&format!("http://{admin}/api/v1/tasks/{id}")).await?;
    task["cost_usd"].as_str().map(str::to_owned)
}

async fn reloads(admin: &str, outcome: &str) -> f64 {
    let text = client()
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| {
            l.starts_with(&format!(
                "tollgate_config_reloads_total{{outcome=\"{outcome}\"}}"
            ))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_reload_that_removes_most_rules_or_prices_is_refused_and_a_missing_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut tg = start_tollgate(dir.path(), &config(6, 6, "")).await;
    let head = std::fs::read_to_string(&tg.config_path)
        .unwrap()
        .split("[reload]")
        .next()
        .unwrap()
        .to_owned();

    // Cut short: still valid TOML, but 1 rule and 1 price entry left.
    assert_eq!(reloads(&tg.admin, "refused").await, 0.0);
    std::fs::write(&tg.config_path, format!("{head}{}", config(1, 1, ""))).unwrap();
    wait_for("the refused reload to be counted", async || {
        (reloads(&tg.admin, "refused").await >= 1.0).then_some(())
    })
    .await;
    let log = std::fs::read_to_string(&tg.proc.log).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("Config reload refused"))
        .unwrap_or_else(|| panic!("no refusal line:\n{log}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("alert rules (6 -> 1)") && line.contains("price entries (6 -> 1)"),
        "{line}"
    );
    assert_eq!(reloads(&tg.admin, "success").await, 0.0, "nothing applied");
    // The running prices stay: tg-guard-3 is still priced.
    post_traces(&tg.http, &call(1)).await;
    let cost = wait_for("the task", async || cost_of(&tg.admin, 1).await).await;
    assert_eq!(cost, "1.5");

    // With the explicit marker the same removal applies.
    std::fs::write(
        &tg.config_path,
        format!("{head}{}", config(1, 1, "allow_removal = true")),
    )
    .unwrap();
    wait_for("the marked reload to apply", async || {
        (reloads(&tg.admin, "success").await >= 1.0).then_some(())
    })
    .await;
    post_traces(&tg.http, &call(2)).await;
    let status = wait_for("the task", async || {
        let id = "02".repeat(16);
        let task = get_json(&format!("http://{}/api/v1/tasks/{id}", tg.admin)).await?;
        Some(task["unpriced_calls"].as_u64().unwrap_or(0))
    })
    .await;
    assert_eq!(status, 1, "tg-guard-3 is gone after the marked reload");

    // Deleted: the running config stays, said at WARN and counted.
    std::fs::remove_file(&tg.config_path).unwrap();
    wait_for("the missing file to be counted", async || {
        (reloads(&tg.admin, "missing").await >= 1.0).then_some(())
    })
    .await;
    let log = std::fs::read_to_string(&tg.proc.log).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("config file is missing")),
        "{log}"
    );
    tg.proc.assert_running();
}
