//! A fleet (#15): three real tollgate replicas on one real `redis-server` (`[state] backend =
//! "redis"`), one task's LLM spans sent round-robin across them as a load balancer would.
//! Exactly one Alertmanager alert for the task; the task API on every replica answers the
//! exact total; a call reported on two replicas is priced once, so the cost counters summed
//! over the replicas equal the sum of the calls; a replica killed mid-task does not stop the
//! others from finishing it exactly. The control runs the same traffic on the memory backend:
//! each replica knows only its share and nobody alerts.

mod alertmanager_support;
mod live_support;
mod redis_support;
mod require;

use std::time::Duration;

use live_support::*;
use serde_json::{json, Value};

const TRACE: &str = "f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1";

/// 50 000 input tokens at $3 per million: $0.15 a call; six calls: $0.90 > the rule's $0.50.
const CALL_NANO: i64 = 150_000_000;
const CALLS: u8 = 6;

fn config(state: &str, am: &str) -> String {
    format!(
        r#"
{state}

[pricing]
builtin = false
[[pricing.models]]
name = "tg-alpha"
provider = "anthropic"
input = 3.0
output = 15.0

[[alerts.rules]]
name = "fleet_task_cost"
scope = "task"
metric = "cost_usd"
op = ">"
threshold = 0.50
severity = "warning"

[[alerts.notify]]
kind = "alertmanager"
url = "{am}"
"#
    )
}

fn attr(key: &str, v: Value) -> Value {
    let v = match v {
        Value::Number(n) => json!({ "intValue": n.to_string() }),
        Value::String(s) => json!({ "stringValue": s }),
        other => other,
    };
    json!({ "key": key, "value": v })
}

fn call(n: u8) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    json!({ "resourceSpans": [{
        "resource": { "attributes": [attr("service.name", json!("agent"))] },
        "scopeSpans": [{ "spans": [{
            "traceId": TRACE, "spanId": format!("{:016x}", u64::from(n) + 1),
            "parentSpanId": "aaaaaaaaaaaaaaaa",
            "name": "chat tg-alpha", "kind": 3,
            "startTimeUnixNano": (now - 1_000_000_000).to_string(),
            "endTimeUnixNano": now.to_string(),
            "attributes": [
                attr("gen_ai.operation.name", json!("chat")),
                attr("gen_ai.provider.name", json!("anthropic")),
                attr("gen_ai.request.model", json!("tg-alpha")),
                attr("gen_ai.usage.input_tokens", json!(50_000)),
                attr("gen_ai.usage.output_tokens", json!(0)),
            ],
        }]}],
    }]})
}

async fn task_cost(tg: &Tollgate) -> Option<i64> {
    get_json(&format!("http://{}/api/v1/tasks/{TRACE}", tg.admin))
        .await
        .and_then(|v| v["cost_nano_usd"].as_i64())
}

async fn cost_counter(tg: &Tollgate) -> f64 {
    metric(
        &metrics_text(&tg.admin).await,
        "tollgate_llm_cost_usd_total",
        &[],
    )
}

/// What the fleet saw.
#[derive(Debug)]
struct Seen {
    /// The task API's cost on each replica still running, at the end.
    task_costs: Vec<Option<i64>>,
    /// The cost counters summed over every replica (the killed one's last scrape included).
    counters_usd: f64,
    /// Alertmanager's alerts for the rule.
    alerts: usize,
}

/// `priced`: the calls replicas 0 and 1 price (replica 1's copy of call 0 is a duplicate on a
/// shared store, a new call on the memory backend).
async fn run_fleet(state: &str, priced: [i64; 2]) -> Seen {
    let Some(bin) = alertmanager_support::find_binary() else {
        panic!("callers check first");
    };
    let am = alertmanager_support::start_alertmanager(&bin).await;
    let cfg = config(state, &am.url);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut fleet = Vec::new();
    for d in &dirs {
        fleet.push(start_tollgate(d.path(), &cfg).await);
    }
    // Round-robin: call n to replica n % 3; call 0 also reaches replica 1 (the SDK's span on
    // one replica, a client retry on another).
    for n in 0..3 {
        post_traces(&fleet[usize::from(n) % 3].http, &call(n)).await;
    }
    post_traces(&fleet[1].http, &call(0)).await;
    // Replica 2 dies mid-task (kill -9); the others get the rest.
    let killed_counter = {
        let tg = &fleet[2];
        wait_for("replica 2 counted its call", async || {
            (cost_counter(tg).await > 0.0).then_some(())
        })
        .await;
        cost_counter(tg).await
    };
    let mut dead = fleet.remove(2);
    dead.proc.child.kill().expect("kill -9");
    dead.proc.child.wait().unwrap();
    for n in 3..CALLS {
        post_traces(&fleet[usize::from(n + 1) % 2].http, &call(n)).await;
    }
    // Each replica has counted what it received (replica 0: calls 0, 3, 5; replica 1: calls
    // 1, 0 again, 4) once its counter shows its priced calls.
    let mut counters = killed_counter;
    for (tg, calls) in fleet.iter().zip(priced) {
        let want = (calls * CALL_NANO) as f64 / 1e9;
        let c = wait_for("the replica's calls are counted", async || {
            let c = cost_counter(tg).await;
            (c >= want - 1e-9).then_some(c)
        })
        .await;
        counters += c;
    }
    let mut task_costs = Vec::new();
    for tg in &fleet {
        task_costs.push(task_cost(tg).await);
    }
    // Give a (wrong) second alert time to arrive before counting.
    let mut alerts = 0;
    for _ in 0..30 {
        alerts = alertmanager_support::query(&am.url, "fleet_task_cost")
            .await
            .len();
        if alerts > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    if alerts > 0 {
        alerts = alertmanager_support::query(&am.url, "fleet_task_cost")
            .await
            .len();
    }
    Seen {
        task_costs,
        counters_usd: counters,
        alerts,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_redis_answer_as_one_process_would() {
    if alertmanager_support::find_binary().is_none() {
        return;
    }
    let Some(bin) = redis_support::find_binary() else {
        return;
    };
    let redis = redis_support::start(&bin);
    let seen = run_fleet(
        &format!(
            "[state]\nbackend = \"redis\"\nurl = \"{}\"\nkey_prefix = \"fleet-test:\"",
            redis.url()
        ),
        [3, 2],
    )
    .await;
    let total = i64::from(CALLS) * CALL_NANO;
    assert_eq!(
        seen.task_costs,
        vec![Some(total), Some(total)],
        "every replica answers the fleet's exact total: {seen:?}"
    );
    assert!(
        (seen.counters_usd - total as f64 / 1e9).abs() < 1e-9,
        "the duplicate is priced once across replicas: {seen:?}"
    );
    assert_eq!(seen.alerts, 1, "exactly one alert for the task: {seen:?}");
}

/// The control: the memory backend on the same traffic. No replica sees the whole task (each
/// answers its own share), the call reported on two replicas is priced twice, and no replica's
/// share crosses the rule, so nobody alerts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_the_memory_backend_each_see_only_their_share() {
    if alertmanager_support::find_binary().is_none() {
        return;
    }
    let seen = run_fleet("[state]\nbackend = \"memory\"", [3, 3]).await;
    let total = i64::from(CALLS) * CALL_NANO;
    assert!(
        seen.task_costs.iter().all(|c| c.is_some_and(|c| c < total)),
        "{seen:?}"
    );
    assert!(
        (seen.counters_usd - (total + CALL_NANO) as f64 / 1e9).abs() < 1e-9,
        "{seen:?}"
    );
    assert_eq!(seen.alerts, 0, "{seen:?}");
}
