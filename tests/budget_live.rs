//! Budgets against the real binary (#16): a per-user daily budget of $1.00 with `warn_at = [0.8]`
//! delivers exactly one warning and one limit alert to a webhook and to a real Alertmanager
//! (Debian `prometheus-alertmanager`); with `[state] backend = "disk"` the totals and the
//! "already alerted" markers survive a `kill -9` (no alert again, a retried call not counted
//! twice); a new `limit_usd` is taken on reload without a restart. The same run on the memory
//! backend shows what the disk store prevents: the spend restarts from zero and the alerts
//! fire again.

mod alertmanager_support;
mod live_support;
mod require;

use live_support::*;
use serde_json::{json, Value};

const TRACE: &str = "b0d6e7b0d6e7b0d6e7b0d6e7b0d6e7b0";

/// 100 000 input tokens at $3 per million: $0.30 a call.
const CALL_NANO: i64 = 300_000_000;

fn config(state: &str, state_dir: &std::path::Path, hook: &str, am: &str, limit: &str) -> String {
    format!(
        r#"
[state]
backend = "{state}"
path = "{}"

[pricing]
builtin = false
[[pricing.models]]
name = "tg-alpha"
provider = "anthropic"
input = 3.0
output = 15.0

[[budgets]]
name = "per-user"
key = "user.id"
period = "day"
limit_usd = {limit}
warn_at = [0.8]

[[alerts.notify]]
kind = "webhook"
url = "{hook}"

[[alerts.notify]]
kind = "alertmanager"
url = "{am}"
"#,
        state_dir.join("state").display()
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

/// One $0.30 call of `user`, span number `n`.
fn call(user: &str, n: u8) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    json!({ "resourceSpans": [{
        "resource": { "attributes": [attr("service.name", json!("agent"))] },
        "scopeSpans": [{ "spans": [{
            "traceId": TRACE, "spanId": format!("{n:016x}"), "parentSpanId": "aaaaaaaaaaaaaaaa",
            "name": "chat tg-alpha", "kind": 3,
            "startTimeUnixNano": (now - 1_000_000_000).to_string(),
            "endTimeUnixNano": now.to_string(),
            "attributes": [
                attr("gen_ai.operation.name", json!("chat")),
                attr("gen_ai.provider.name", json!("anthropic")),
                attr("gen_ai.request.model", json!("tg-alpha")),
                attr("gen_ai.usage.input_tokens", json!(100_000)),
                attr("gen_ai.usage.output_tokens", json!(0)),
                attr("user.id", json!(user)),
            ],
        }]}],
    }]})
}

async fn budget(tg: &Tollgate, user: &str) -> Value {
    get_json(&format!(
        "http://{}/api/v1/budgets/per-user/{user}",
        tg.admin
    ))
    .await
    .expect("the budget API answers")
}

/// Waits until `user`'s spend is `nano`.
async fn spent(tg: &Tollgate, user: &str, nano: i64) -> Value {
    wait_for(&format!("{user} has spent {nano} nano-USD"), async || {
        let v = budget(tg, user).await;
        (v["spent_nano_usd"] == nano).then_some(v)
    })
    .await
}

/// What the run saw.
#[derive(Debug)]
struct Seen {
    /// Webhook bodies for alice's first four calls.
    first: Vec<Value>,
    /// Alertmanager's alerts named after the budget after them.
    alertmanager: Vec<Value>,
    /// alice's spend after the restart, before any new call.
    after_restart: i64,
    /// Webhook bodies after the restart, when calls 1..=4 were re-sent and call 5 was sent.
    again: Vec<Value>,
    /// alice's spend after that.
    spent_after: i64,
}

async fn across_a_kill(backend: &str) -> (Seen, Tollgate, tempfile::TempDir) {
    let Some(bin) = alertmanager_support::find_binary() else {
        panic!("unreachable: callers check first");
    };
    let am = alertmanager_support::start_alertmanager(&bin).await;
    let (hook, mut rx) = webhook().await;
    let state = tempfile::tempdir().unwrap();
    let cfg = config(backend, state.path(), &hook, &am.url, "1.00");

    let first_dir = tempfile::tempdir().unwrap();
    let mut tg = start_tollgate(first_dir.path(), &cfg).await;
    for n in 1..=4 {
        post_traces(&tg.http, &call("alice", n)).await;
    }
    post_traces(&tg.http, &call("bob", 9)).await;
    let v = spent(&tg, "alice", 4 * CALL_NANO).await;
    assert_eq!(v["exceeded"], true, "{v}");
    spent(&tg, "bob", CALL_NANO).await;
    let first = hooks(&mut rx, 2).await;
    let alertmanager = wait_for("both alerts in Alertmanager", async || {
        let a = alertmanager_support::query(&am.url, "per-user").await;
        (a.len() >= 2).then_some(a)
    })
    .await;

    tg.proc.child.kill().expect("kill -9");
    tg.proc.child.wait().unwrap();
    let second_dir = tempfile::tempdir().unwrap();
    let tg = start_tollgate(second_dir.path(), &cfg).await;
    let after_restart = budget(&tg, "alice").await["spent_nano_usd"]
        .as_i64()
        .unwrap();
    // A client retrying the four calls, then a fifth call.
    for n in 1..=5 {
        post_traces(&tg.http, &call("alice", n)).await;
    }
    // Disk: calls 1..=4 are replays, call 5 is new; memory: all five are new. $1.50 either way.
    let spent_after = spent(&tg, "alice", 5 * CALL_NANO).await["spent_nano_usd"]
        .as_i64()
        .unwrap();
    let again = hooks(&mut rx, 0).await;
    drop(am);
    (
        Seen {
            first,
            alertmanager,
            after_restart,
            again,
            spent_after,
        },
        tg,
        second_dir,
    )
}

fn labels(v: &Value) -> (&str, &str, &str, &str) {
    let l = &v["labels"];
    (
        l["budget"].as_str().unwrap_or(""),
        l["user_id"].as_str().unwrap_or(""),
        l["threshold"].as_str().unwrap_or(""),
        l["severity"].as_str().unwrap_or(""),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_alerts_reach_the_webhook_and_alertmanager_once_and_survive_kill_9() {
    if alertmanager_support::find_binary().is_none() {
        return;
    }
    let (seen, tg, _dir) = across_a_kill("disk").await;
    // One warning at the third call ($0.90 >= 0.8 x $1.00), one limit alert at the fourth.
    let mut got: Vec<_> = seen.first.iter().map(labels).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("per-user", "alice", "0.8", "warning"),
            ("per-user", "alice", "limit", "critical"),
        ],
        "{:#?}",
        seen.first
    );
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    for v in &seen.first {
        assert_eq!(v["scope"], "budget", "{v}");
        assert_eq!(v["labels"]["period_start"], format!("{today}T00:00:00Z"));
    }
    let warn = seen
        .first
        .iter()
        .find(|v| v["labels"]["threshold"] == "0.8")
        .unwrap();
    assert_eq!(warn["span_id"], format!("{:016x}", 3), "the crossing call");
    let mut am: Vec<_> = seen
        .alertmanager
        .iter()
        .map(|a| {
            (
                a["labels"]["user_id"].as_str().unwrap().to_owned(),
                a["labels"]["threshold"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    am.sort();
    assert_eq!(
        am,
        [
            ("alice".into(), "0.8".into()),
            ("alice".into(), "limit".into())
        ],
        "{:#?}",
        seen.alertmanager
    );

    // After kill -9: the spend is kept, the retried calls are not counted again, no alert again.
    assert_eq!(seen.after_restart, 4 * CALL_NANO, "{seen:?}");
    assert_eq!(seen.spent_after, 5 * CALL_NANO, "{seen:?}");
    assert!(seen.again.is_empty(), "{:#?}", seen.again);

    // Reload with limit_usd = 2.00: taken without a restart.
    let text = std::fs::read_to_string(&tg.config_path).unwrap();
    std::fs::write(
        &tg.config_path,
        text.replace("limit_usd = 1.00", "limit_usd = 2.00"),
    )
    .unwrap();
    let v = wait_for("the new limit", async || {
        let v = budget(&tg, "alice").await;
        (v["limit_nano_usd"] == 2_000_000_000i64).then_some(v)
    })
    .await;
    assert_eq!(v["exceeded"], false, "{v}");
    assert_eq!(v["remaining_usd"], "0.500000000", "{v}");
    assert_eq!(v["spent_nano_usd"], 5 * CALL_NANO, "{v}");
}

/// The control: on the memory backend the restart forgets the spend and the markers, so the
/// retried calls count again and both alerts fire a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_memory_backend_a_kill_9_forgets_budget_spend_and_alerts_again() {
    if alertmanager_support::find_binary().is_none() {
        return;
    }
    let (seen, _tg, _dir) = across_a_kill("memory").await;
    assert_eq!(seen.first.len(), 2, "{:#?}", seen.first);
    assert_eq!(seen.after_restart, 0, "{seen:?}");
    // The retried calls 1..=4 count again, as if new: the warning and the limit fire again.
    assert_eq!(seen.spent_after, 5 * CALL_NANO, "{seen:?}");
    let mut got: Vec<_> = seen.again.iter().map(labels).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("per-user", "alice", "0.8", "warning"),
            ("per-user", "alice", "limit", "critical"),
        ],
        "{:#?}",
        seen.again
    );
}
