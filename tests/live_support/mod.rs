//! Helpers for tests that run the real `tollgate` binary (and real Prometheus / Chromium):
//! free loopback ports, child processes killed by PID on drop, and OTLP/JSON LLM traffic with
//! known exact costs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Generous bound for anything to come up; only there so a broken run does not hang forever.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// A loopback port nothing listens on right now (bound to :0 and released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A child process killed (by its PID) and reaped when dropped, also when a test panics.
pub struct Proc {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &'static str, mut cmd: Command, log: &Path) -> Proc {
        let out = std::fs::File::create(log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        eprintln!("started {name} (pid {}), log {}", child.id(), log.display());
        Proc {
            name,
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        text.get(start..).unwrap_or("").to_string()
    }

    /// Panics with the log if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early ({status}):\n{}",
                self.name,
                self.log_tail()
            );
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if let Err(e) = self.child.kill() {
                eprintln!("cannot kill {} (pid {}): {e}", self.name, self.child.id());
            }
        }
        if let Err(e) = self.child.wait() {
            eprintln!("cannot reap {} (pid {}): {e}", self.name, self.child.id());
        }
        eprintln!("stopped {} (pid {})", self.name, self.child.id());
    }
}

/// Polls `f` every 250 ms until it returns `Some`, or panics after [`PATIENCE`].
pub async fn wait_for<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// GETs a loopback URL and parses the JSON body; `None` on any failure.
pub async fn get_json(url: &str) -> Option<Value> {
    let r = client().get(url).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    serde_json::from_slice(&r.bytes().await.ok()?).ok()
}

/// An HTTP client for loopback.
pub fn client() -> reqwest::Client {
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Addresses of a running tollgate.
pub struct Tollgate {
    pub proc: Proc,
    pub grpc: String,
    pub http: String,
    pub admin: String,
    pub config_path: PathBuf,
}

/// Starts the real binary with `extra` appended to a config binding loopback ports, and waits
/// for `/readyz`.
pub async fn start_tollgate(dir: &Path, extra: &str) -> Tollgate {
    start_tollgate_with(dir, "", extra).await
}

/// As [`start_tollgate`], with `receiver_keys` written into `[receivers.otlp]`.
pub async fn start_tollgate_with(dir: &Path, receiver_keys: &str, extra: &str) -> Tollgate {
    start_tollgate_env(dir, &[], receiver_keys, extra).await
}

/// As [`start_tollgate_with`], with `env` set in the child's environment only (secrets a
/// config reads through `${env:…}`; the test process's own environment is not touched).
pub async fn start_tollgate_env(
    dir: &Path,
    env: &[(&str, &str)],
    receiver_keys: &str,
    extra: &str,
) -> Tollgate {
    let (grpc, http, admin) = (free_port(), free_port(), free_port());
    let config = format!(
        "[receivers.otlp]\ngrpc = \"127.0.0.1:{grpc}\"\nhttp = \"127.0.0.1:{http}\"\n{receiver_keys}\n\
         [admin]\nlisten = \"127.0.0.1:{admin}\"\n{extra}"
    );
    let config_path = dir.join("tollgate.toml");
    std::fs::write(&config_path, config).expect("write config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.arg("--config").arg(&config_path);
    cmd.envs(env.iter().copied());
    let mut proc = Proc::spawn("tollgate", cmd, &dir.join("tollgate.log"));
    let admin = format!("127.0.0.1:{admin}");
    let c = client();
    wait_for("tollgate /readyz", async || {
        proc.assert_running();
        c.get(format!("http://{admin}/readyz"))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await;
    Tollgate {
        proc,
        grpc: format!("127.0.0.1:{grpc}"),
        http: format!("127.0.0.1:{http}"),
        admin,
        config_path,
    }
}

/// Pricing for the test models (USD per million tokens) and the rules the traffic trips.
pub const PRICING_AND_RULES: &str = r#"
[pricing]
builtin = false
[[pricing.models]]
name = "tg-alpha"
provider = "anthropic"
input = 3.0
output = 15.0
cache_read = 0.3
cache_write = 3.75
[[pricing.models]]
name = "tg-beta"
provider = "openai"
input = 2.0
output = 8.0
cache_read = 0.5
cache_write = 2.5

[tasks]
root_grace = "1s"
idle_timeout = "5s"
sweep_interval = "200ms"

[alerts]
trace_url = "http://traces.example/trace/{trace_id}"
[[alerts.rules]]
name = "expensive_task"
scope = "task"
metric = "cost_usd"
op = ">"
threshold = 0.005
severity = "critical"
[[alerts.rules]]
name = "calls_seen"
scope = "window"
window = "5m"
group_by = ["service.name"]
metric = "llm_calls"
op = ">="
threshold = 1
"#;

/// One LLM call of the test traffic.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub service: &'static str,
    pub provider: &'static str,
    pub model: &'static str,
    /// Input tokens including cache reads and writes (as GenAI conventions report them).
    pub input: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub output: u64,
    /// Exact cost in nano-USD from the prices above (0 when unpriced).
    pub cost_nano_usd: i64,
}

impl Call {
    pub fn input_uncached(&self) -> u64 {
        self.input - self.cache_read - self.cache_write
    }
}

/// The calls sent in each round. Costs are worked out by hand from the prices above
/// ($X per million tokens = X * 1000 nano-USD per token).
pub const CALLS: [Call; 4] = [
    // 1200*3000 + 800*300 + 100*3750 + 340*15000 = 3,600,000 + 240,000 + 375,000 + 5,100,000
    Call {
        service: "planner",
        provider: "anthropic",
        model: "tg-alpha",
        input: 2100,
        cache_read: 800,
        cache_write: 100,
        output: 340,
        cost_nano_usd: 9_315_000,
    },
    // 400*2000 + 600*500 + 200*8000 = 800,000 + 300,000 + 1,600,000
    Call {
        service: "writer",
        provider: "openai",
        model: "tg-beta",
        input: 1000,
        cache_read: 600,
        cache_write: 0,
        output: 200,
        cost_nano_usd: 2_700_000,
    },
    // 500*3000 + 50*15000 = 1,500,000 + 750,000
    Call {
        service: "writer",
        provider: "anthropic",
        model: "tg-alpha",
        input: 500,
        cache_read: 0,
        cache_write: 0,
        output: 50,
        cost_nano_usd: 2_250_000,
    },
    // No price for this model: counted as a call with tokens, unpriced, no cost.
    Call {
        service: "planner",
        provider: "anthropic",
        model: "tg-unpriced",
        input: 10,
        cache_read: 0,
        cache_write: 0,
        output: 10,
        cost_nano_usd: 0,
    },
];

fn kv(key: &str, value: Value) -> Value {
    let v = match value {
        Value::Number(n) => json!({ "intValue": n.to_string() }),
        Value::String(s) => json!({ "stringValue": s }),
        other => other,
    };
    json!({ "key": key, "value": v })
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The trace id of service `service`'s task in round `round` (lowercase hex).
pub fn trace_id(round: u8, service: &str) -> String {
    let tag: u8 = if service == "planner" { 0xa0 } else { 0xb0 };
    format!("{:02x}", tag + round).repeat(16)
}

/// One OTLP/JSON request per round: per service a task (root span with `agent.task_type`) whose
/// children are that service's [`CALLS`], each a streamed call with a time to first chunk.
pub fn round_request(round: u8) -> Value {
    let end = now_ns();
    let start = end - 1_500_000_000;
    let mut resource_spans = Vec::new();
    for service in ["planner", "writer"] {
        let trace = trace_id(round, service);
        let root = format!("{:02x}", round + 1).repeat(8);
        let mut spans = vec![json!({
            "traceId": trace, "spanId": root, "name": "agent.run", "kind": 1,
            "startTimeUnixNano": start.to_string(), "endTimeUnixNano": end.to_string(),
            "attributes": [kv("agent.task_type", json!("research"))],
        })];
        for (i, c) in CALLS
            .iter()
            .enumerate()
            .filter(|(_, c)| c.service == service)
        {
            spans.push(json!({
                "traceId": trace, "spanId": format!("{:02x}", 0x40 + i).repeat(8),
                "parentSpanId": root, "name": format!("chat {}", c.model), "kind": 3,
                "startTimeUnixNano": start.to_string(), "endTimeUnixNano": end.to_string(),
                "attributes": [
                    kv("gen_ai.operation.name", json!("chat")),
                    kv("gen_ai.provider.name", json!(c.provider)),
                    kv("gen_ai.request.model", json!(c.model)),
                    kv("agent.task_type", json!("research")),
                    kv("gen_ai.usage.input_tokens", json!(c.input)),
                    kv("gen_ai.usage.cache_read.input_tokens", json!(c.cache_read)),
                    kv("gen_ai.usage.cache_write.input_tokens", json!(c.cache_write)),
                    kv("gen_ai.usage.output_tokens", json!(c.output)),
                    // A streamed call: first chunk after 0.25 s of the 1.5 s span (feeds the
                    // time-to-first-token and output tokens/s histograms).
                    kv(
                        "gen_ai.response.time_to_first_chunk",
                        json!({ "doubleValue": 0.25 }),
                    ),
                ],
            }));
        }
        resource_spans.push(json!({
            "resource": { "attributes": [kv("service.name", json!(service))] },
            "scopeSpans": [{ "scope": { "name": "tollgate-test" }, "spans": spans }],
        }));
    }
    json!({ "resourceSpans": resource_spans })
}

/// A request whose one span has a 2-byte span id: refused (`invalid_id`), the rest accepted.
pub fn bad_span_request() -> Value {
    let t = now_ns().to_string();
    json!({ "resourceSpans": [{
        "resource": { "attributes": [kv("service.name", json!("planner"))] },
        "scopeSpans": [{ "spans": [
            { "traceId": "ee".repeat(16), "spanId": "abcd", "name": "bad-id",
              "startTimeUnixNano": t, "endTimeUnixNano": t },
            { "traceId": "ee".repeat(16), "spanId": "ef".repeat(8), "name": "fine",
              "startTimeUnixNano": t, "endTimeUnixNano": t },
        ]}],
    }]})
}

/// POSTs OTLP/JSON to tollgate's HTTP receiver and returns the response body.
pub async fn post_traces(http: &str, body: &Value) -> Value {
    let r = client()
        .post(format!("http://{http}/v1/traces"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST /v1/traces");
    assert!(r.status().is_success(), "POST /v1/traces: {}", r.status());
    serde_json::from_slice(&r.bytes().await.expect("body")).expect("JSON answer")
}

/// Expected sums over `rounds` rounds of [`CALLS`].
pub struct Expected {
    pub cost_nano_usd: i64,
    pub input_uncached: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub output: u64,
    pub calls: u64,
}

pub fn expected(rounds: u64) -> Expected {
    let sum = |f: fn(&Call) -> u64| CALLS.iter().map(f).sum::<u64>() * rounds;
    Expected {
        cost_nano_usd: CALLS.iter().map(|c| c.cost_nano_usd).sum::<i64>() * rounds as i64,
        input_uncached: sum(Call::input_uncached),
        cache_read: sum(|c| c.cache_read),
        cache_write: sum(|c| c.cache_write),
        output: sum(|c| c.output),
        calls: CALLS.len() as u64 * rounds,
    }
}

/// A request with one plain (non-LLM) root span in its own trace `n`.
pub fn plain_request(n: u8) -> Value {
    let t = now_ns().to_string();
    json!({ "resourceSpans": [{
        "resource": { "attributes": [kv("service.name", json!("planner"))] },
        "scopeSpans": [{ "spans": [
            { "traceId": format!("{:02x}", 0xc0 + n).repeat(16), "spanId": "cd".repeat(8),
              "name": "plain", "startTimeUnixNano": t, "endTimeUnixNano": t },
        ]}],
    }]})
}

/// tollgate's `/metrics` text from its admin listener `admin` (`host:port`).
pub async fn metrics_text(admin: &str) -> String {
    client()
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text")
}

/// The sum of the samples of metric `name` (exactly that name) whose labels include every one of
/// `labels` (`k="v"`).
pub fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A webhook receiver: every body it was sent.
pub async fn webhook() -> (String, mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = mpsc::unbounded_channel::<Value>();
    async fn hook(
        axum::extract::State(tx): axum::extract::State<mpsc::UnboundedSender<Value>>,
        body: axum::body::Bytes,
    ) {
        tx.send(serde_json::from_slice(&body).expect("JSON body"))
            .ok();
    }
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), rx)
}

/// Waits for `n` webhook bodies, then for a (wrong) further one for a moment, and returns all.
pub async fn hooks(rx: &mut mpsc::UnboundedReceiver<Value>, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some(v)) => got.push(v),
            _ => break,
        }
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    while let Ok(v) = rx.try_recv() {
        got.push(v);
    }
    got
}
