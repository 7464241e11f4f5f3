//! State that survives a `kill -9` (#12 "State that survives restarts"), against the real
//! binary: with `[state] backend = "disk"`, a priced LLM call re-sent after the restart is not
//! priced again, a task straddling the restart keeps its total (the sum of all its calls), and a
//! task rule that fired before the restart does not fire again for that task. The same test
//! with `backend = "memory"` shows each of these failing (what tollgate did before).

mod live_support;

use live_support::*;
use serde_json::{json, Value};

const TRACE: &str = "5eed5eed5eed5eed5eed5eed5eed5eed";
const ROOT: &str = "aaaaaaaaaaaaaaaa";

/// USD per million tokens: input 3, output 15. A task rule at $0.01.
const CONFIG: &str = r#"
[pricing]
builtin = false
[[pricing.models]]
name = "tg-alpha"
provider = "anthropic"
input = 3.0
output = 15.0
cache_read = 0.3
cache_write = 3.75

[tasks]
idle_timeout = "10m"
root_grace = "10m"

[[alerts.rules]]
name = "expensive_task"
scope = "task"
metric = "cost_usd"
op = ">"
threshold = 0.01
severity = "critical"
"#;

/// Call A: 1000 in + 1000 out = $0.018; call B: 1000 in + 2000 out = $0.033. Each alone is
/// over the rule's $0.01.
const A_NANO: i64 = 18_000_000;
const B_NANO: i64 = 33_000_000;

fn attr(key: &str, v: Value) -> Value {
    let v = match v {
        Value::Number(n) => json!({ "intValue": n.to_string() }),
        Value::String(s) => json!({ "stringValue": s }),
        other => other,
    };
    json!({ "key": key, "value": v })
}

fn call(span_id: &str, input: u64, output: u64) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    json!({ "resourceSpans": [{
        "resource": { "attributes": [attr("service.name", json!("agent"))] },
        "scopeSpans": [{ "spans": [{
            "traceId": TRACE, "spanId": span_id, "parentSpanId": ROOT,
            "name": "chat tg-alpha", "kind": 3,
            "startTimeUnixNano": (now - 1_000_000_000).to_string(),
            "endTimeUnixNano": now.to_string(),
            "attributes": [
                attr("gen_ai.operation.name", json!("chat")),
                attr("gen_ai.provider.name", json!("anthropic")),
                attr("gen_ai.request.model", json!("tg-alpha")),
                attr("gen_ai.usage.input_tokens", json!(input)),
                attr("gen_ai.usage.output_tokens", json!(output)),
            ],
        }]}],
    }]})
}

async fn task_cost(tg: &Tollgate) -> i64 {
    wait_for("the task in the task API", async || {
        get_json(&format!("http://{}/api/v1/tasks/{TRACE}", tg.admin)).await
    })
    .await["cost_nano_usd"]
        .as_i64()
        .expect("cost_nano_usd")
}

async fn fired(tg: &Tollgate) -> f64 {
    metric(
        &metrics_text(&tg.admin).await,
        "tollgate_alerts_total",
        &["rule=\"expensive_task\""],
    )
}

/// What the second process saw: the task total after call B, the cost counter and the task
/// total after call A was re-sent, and how often the rule fired.
#[derive(Debug)]
struct After {
    total_after_b: i64,
    cost_usd: f64,
    total_after_resend: i64,
    fired: f64,
}

/// Call A, `kill -9`, restart on the same `[state]`, call B, call A re-sent (a client retry).
async fn across_a_kill(backend: &str) -> After {
    let state_dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[state]\nbackend = \"{backend}\"\npath = \"{}\"\n{CONFIG}",
        state_dir.path().join("state").display()
    );

    let first = tempfile::tempdir().unwrap();
    let mut tg = start_tollgate(first.path(), &extra).await;
    post_traces(&tg.http, &call("a000000000000001", 1000, 1000)).await;
    assert_eq!(task_cost(&tg).await, A_NANO, "{}", tg.proc.log_tail());
    wait_for("the rule fires before the restart", async || {
        (fired(&tg).await == 1.0).then_some(())
    })
    .await;
    tg.proc.child.kill().expect("kill -9"); // SIGKILL: no shutdown path runs
    tg.proc.child.wait().unwrap();

    let second = tempfile::tempdir().unwrap();
    let tg = start_tollgate(second.path(), &extra).await;
    post_traces(&tg.http, &call("b000000000000002", 1000, 2000)).await;
    let total_after_b = task_cost(&tg).await;
    post_traces(&tg.http, &call("a000000000000001", 1000, 1000)).await;
    let text = metrics_text(&tg.admin).await;
    After {
        total_after_b,
        cost_usd: metric(&text, "tollgate_llm_cost_usd_total", &[]),
        total_after_resend: task_cost(&tg).await,
        fired: fired(&tg).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_state_store_survives_kill_9() {
    let a = across_a_kill("disk").await;
    assert_eq!(
        a.total_after_b,
        A_NANO + B_NANO,
        "the task keeps its total: {a:?}"
    );
    assert!(
        (a.cost_usd - B_NANO as f64 / 1e9).abs() < 1e-9,
        "the re-sent call A is not priced again, only B is: {a:?}"
    );
    assert_eq!(a.total_after_resend, A_NANO + B_NANO, "{a:?}");
    assert_eq!(
        a.fired, 0.0,
        "the rule fired before the restart, not again: {a:?}"
    );
}

/// The control: with the memory backend (what tollgate did before `[state]`) each check above
/// fails: the total restarts from zero, the re-sent call is priced again, the rule fires again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_backend_forgets_across_kill_9() {
    let a = across_a_kill("memory").await;
    assert_eq!(a.total_after_b, B_NANO, "{a:?}");
    assert!(
        (a.cost_usd - (A_NANO + B_NANO) as f64 / 1e9).abs() < 1e-9,
        "{a:?}"
    );
    assert_eq!(a.fired, 1.0, "{a:?}");
}
