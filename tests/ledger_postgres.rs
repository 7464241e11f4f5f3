//! The usage ledger (issue 16) against a real PostgreSQL from Debian, started by each test with
//! `initdb` / `pg_ctl` in a temp dir on a loopback port (password auth, the password reaching
//! tollgate only through `${env:…}`), and the real tollgate binary:
//!
//! - 10 000 calls of 1 000 users: per-user sums in the ledger equal the totals worked out here
//!   from the price table to the nano-dollar, and the Prometheus cost counter's total; unpriced
//!   calls are rows with their reason and no cost; `tollgate usage` prints the same sums;
//! - spans sent twice, then PostgreSQL stopped, spans queued on disk, tollgate `kill -9`ed,
//!   restarted (replaying its disk queue) and every span sent again: the ledger holds each call
//!   once, exactly as before;
//! - PostgreSQL down for 30 s: spans keep reaching the file exporter, ledger rows wait in the
//!   queue and arrive after it is back.

mod live_support;
mod require;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use live_support::{client, free_port, metrics_text, start_tollgate_env, wait_for, Tollgate};
use prost::Message;
use tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tollgate::otlp::common::v1::{any_value, AnyValue, KeyValue};
use tollgate::otlp::resource::v1::Resource;
use tollgate::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};

const PASSWORD_ENV: &str = "TG_LEDGER_TEST_PASSWORD";
const PASSWORD: &str = "ledger-s3cret-pw";

/// `tg-frac` prices (USD per million tokens) chosen so components round: 0.123457 $/M is
/// 123.457 nano-USD per token.
const PRICING: &str = r#"
[pricing]
builtin = false
[[pricing.models]]
name = "tg-frac"
provider = "anthropic"
input = 0.123457
output = 1.0
cache_read = 0.01
cache_write = 0.2
"#;

// ---- PostgreSQL ---------------------------------------------------------------------------

fn pg_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.reverse();
    dirs
}

/// A PostgreSQL cluster of its own, stopped (immediately) when dropped.
struct Pg {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// (uid, gid) to run the server programs as: initdb refuses root.
    user: Option<(u32, u32)>,
    /// More server options (`-c ssl=on …`).
    options: String,
}

fn postgres_user() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&"postgres"))
            .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
    })
}

impl Pg {
    fn start() -> Option<Pg> {
        Self::init().inspect(Pg::up)
    }

    /// A cluster created, not started.
    fn init() -> Option<Pg> {
        let dirs = pg_dirs();
        let install = "apt-get install postgresql";
        let initdb = require::program_in("initdb", &dirs, install)?;
        require::program_in("pg_ctl", &dirs, install)?;
        let bin = initdb.parent().unwrap().to_path_buf();
        let root = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        let user = if root {
            Some(postgres_user().expect("running as root needs the `postgres` user (Debian's postgresql package creates it)"))
        } else {
            None
        };
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, PASSWORD).unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
            std::os::unix::fs::chown(&pw, Some(uid), Some(gid)).unwrap();
        }
        let pg = Pg {
            bin,
            port: free_port(),
            dir,
            user,
            options: String::new(),
        };
        let out = pg
            .cmd("initdb")
            .arg("-D")
            .arg(pg.data())
            .args([
                "-U",
                "tollgate",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pw.display()))
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.user {
            c.uid(uid).gid(gid);
        }
        c.current_dir(self.dir.path());
        c
    }

    /// Starts the server and waits until it accepts connections.
    fn up(&self) {
        let out = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {} -h 127.0.0.1 -k {} -F {}",
                self.port,
                self.dir.path().display(),
                self.options
            ))
            .arg("start")
            .output()
            .expect("pg_ctl start runs");
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    /// Stops the server (`fast`: disconnects clients).
    fn down(&self, mode: &str) {
        let out = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", mode, "stop"])
            .output()
            .expect("pg_ctl stop runs");
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The URL tollgate gets: the password only as `${env:…}`.
    fn url_for_config(&self) -> String {
        format!(
            "postgres://tollgate:${{env:{PASSWORD_ENV}}}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// The test's own connection: over the Unix socket (trusted locally), so it works
    /// whatever the TCP rules are.
    async fn client(&self) -> tokio_postgres::Client {
        let conn = format!(
            "host={} port={} user=tollgate dbname=postgres",
            self.dir.path().display(),
            self.port
        );
        let (client, conn) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
            .await
            .expect("connect to the test PostgreSQL");
        tokio::spawn(conn);
        client
    }

    /// Rows in the ledger (0 before tollgate created it).
    async fn rows(&self) -> i64 {
        let c = self.client().await;
        match c
            .query_one("SELECT count(*) FROM tollgate.usage", &[])
            .await
        {
            Ok(r) => r.get(0),
            Err(_) => 0,
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            if let Err(e) = self
                .cmd("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-w", "-m", "immediate", "stop"])
                .output()
            {
                eprintln!("pg_ctl stop: {e}");
            }
        }
    }
}

// ---- traffic ------------------------------------------------------------------------------

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}
fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}
fn i(v: u64) -> any_value::Value {
    any_value::Value::IntValue(v as i64)
}

/// Call number `n`: its user, tokens and exact cost, worked out from [`PRICING`] with the
/// documented rule (each component rounded half up to whole nano-USD, the total their sum).
#[derive(Debug, Clone)]
struct Call {
    n: u64,
    user: String,
    tenant: String,
    priced: bool,
    uncached: u64,
    cache_read: u64,
    output: u64,
}

impl Call {
    fn new(n: u64, users: u64) -> Call {
        Call {
            n,
            user: format!("user-{:04}", n % users),
            tenant: format!("tenant-{}", n % 7),
            // Every 50th call names a model the table does not have: unpriced.
            priced: n % 50 != 7,
            uncached: 100 + (n * 37) % 5000,
            cache_read: (n * 13) % 300,
            output: 10 + (n * 7) % 900,
        }
    }

    fn cost_nano_usd(&self) -> i64 {
        if !self.priced {
            return 0;
        }
        // $/M × 10⁶ = micro-USD per M tokens = pico-USD per token; /1000 → nano, half up.
        let part = |tokens: u64, micro_per_m: u64| ((tokens * micro_per_m + 500) / 1000) as i64;
        part(self.uncached, 123_457) + part(self.cache_read, 10_000) + part(self.output, 1_000_000)
    }

    fn trace_id(&self) -> Vec<u8> {
        let mut t = [0x5au8; 16];
        t[8..].copy_from_slice(&(self.n + 1).to_be_bytes());
        t.to_vec()
    }

    fn span_id(&self) -> Vec<u8> {
        (self.n + 1).to_be_bytes().to_vec()
    }

    fn span_id_hex(&self) -> String {
        hex::encode(self.span_id())
    }

    /// A resource with one LLM span; `user.id` sits on the span for most calls and on the
    /// resource for every 10th (both are looked up).
    fn resource_spans(&self) -> ResourceSpans {
        let on_resource = self.n % 10 == 0;
        let mut res = vec![kv("service.name", s("billing-agent"))];
        let mut attrs = vec![
            kv("gen_ai.provider.name", s("anthropic")),
            kv(
                "gen_ai.request.model",
                s(if self.priced { "tg-frac" } else { "tg-nowhere" }),
            ),
            kv(
                "gen_ai.usage.input_tokens",
                i(self.uncached + self.cache_read),
            ),
            kv("gen_ai.usage.cache_read.input_tokens", i(self.cache_read)),
            kv("gen_ai.usage.output_tokens", i(self.output)),
            kv("tenant.id", s(&self.tenant)),
        ];
        if on_resource {
            res.push(kv("user.id", s(&self.user)));
        } else {
            attrs.push(kv("user.id", s(&self.user)));
        }
        let start = 1_764_000_000_000_000_000u64 + self.n * 1_000_000;
        ResourceSpans {
            resource: Some(Resource {
                attributes: res,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: self.trace_id(),
                    span_id: self.span_id(),
                    name: "chat tg-frac".into(),
                    kind: 3,
                    start_time_unix_nano: start,
                    end_time_unix_nano: start + 800_000_000,
                    attributes: attrs,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }
}

fn calls(range: std::ops::Range<u64>, users: u64) -> Vec<Call> {
    range.map(|n| Call::new(n, users)).collect()
}

/// Sends `calls` in requests of `per` spans; every request must be accepted.
async fn send(tg: &Tollgate, calls: &[Call], per: usize) {
    let c = client();
    for chunk in calls.chunks(per) {
        let body = ExportTraceServiceRequest {
            resource_spans: chunk.iter().map(Call::resource_spans).collect(),
        }
        .encode_to_vec();
        let r = c
            .post(format!("http://{}/v1/traces", tg.http))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await
            .expect("POST /v1/traces");
        assert!(r.status().is_success(), "refused: {}", r.status());
    }
}

fn exporter_config(pg: &Pg, queue: &str, extra: &str) -> String {
    format!(
        r#"{PRICING}
[[exporters]]
name = "ledger"
kind = "postgres"
url = "{url}"
attributes = ["tenant.id"]
batch = {{ max_spans = 2000, timeout = "50ms" }}
queue = {queue}
retry = {{ initial_interval = "100ms", max_interval = "1s", max_elapsed_time = "10m" }}
{extra}
"#,
        url = pg.url_for_config()
    )
}

async fn start(dir: &Path, config: &str) -> Tollgate {
    // The password reaches tollgate only through its environment.
    start_tollgate_env(dir, &[(PASSWORD_ENV, PASSWORD)], "", config).await
}

fn metric_sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn wait_rows(pg: &Pg, want: i64) {
    wait_for(&format!("{want} ledger rows"), async || {
        (pg.rows().await >= want).then_some(())
    })
    .await;
}

/// (span id hex → cost or NULL, status) of every row.
async fn ledger(pg: &Pg) -> BTreeMap<String, (Option<i64>, String)> {
    pg.client()
        .await
        .query(
            "SELECT span_id, cost_total_nano_usd, status FROM tollgate.usage",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect()
}

fn expected_ledger(calls: &[Call]) -> BTreeMap<String, (Option<i64>, String)> {
    calls
        .iter()
        .map(|c| {
            let v = if c.priced {
                (Some(c.cost_nano_usd()), "priced".to_string())
            } else {
                (None, "unknown_model".to_string())
            };
            (c.span_id_hex(), v)
        })
        .collect()
}

// ---- tests --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_calls_of_a_thousand_users_sum_exactly_in_the_ledger() {
    let Some(pg) = Pg::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A budget per user over the current month (the wall clock's: calls are counted when they
    // arrive); its limit is never reached here.
    let budget = "[[budgets]]\nname = \"per-user\"\nkey = \"user.id\"\nperiod = \"month\"\nlimit_usd = 1000\n";
    let tg = start(
        dir.path(),
        &exporter_config(&pg, "{ max_batches = 4096 }", budget),
    )
    .await;
    let all = calls(0..10_000, 1_000);
    send(&tg, &all, 500).await;
    wait_rows(&pg, 10_000).await;

    let mut want: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for c in &all {
        let e = want.entry(c.user.clone()).or_default();
        e.0 += c.cost_nano_usd();
        e.1 += 1;
    }
    assert_eq!(want.len(), 1_000);
    let total: i64 = want.values().map(|(c, _)| c).sum();

    let db = pg.client().await;
    let got: BTreeMap<String, (i64, i64)> = db
        .query(
            "SELECT user_id, coalesce(sum(cost_total_nano_usd), 0)::int8, count(*) FROM tollgate.usage GROUP BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, String>(0), (r.get(1), r.get(2))))
        .collect();
    assert_eq!(got, want, "per-user sums in the ledger");
    // The budget API answers the same per-user sums, exactly.
    let http = client();
    let mut api_total = 0i64;
    for (user, (cost, _)) in &want {
        let v = http
            .get(format!(
                "http://{}/api/v1/budgets/per-user/{user}",
                tg.admin
            ))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&v).unwrap();
        assert_eq!(v["spent_nano_usd"], *cost, "budget API for {user}: {v}");
        assert_eq!(v["exceeded"], false);
        api_total += v["spent_nano_usd"].as_i64().unwrap();
    }
    assert_eq!(api_total, total, "budget API total = ledger total");
    // And the gRPC method beside the task API, on the same admin port.
    let mut grpc =
        tollgate::admin::budget_grpc::BudgetServiceClient::connect(format!("http://{}", tg.admin))
            .await
            .unwrap();
    for (user, (cost, _)) in want.iter().take(20) {
        let s = grpc
            .get_budget(tollgate::admin::task_grpc::pb::GetBudgetRequest {
                budget: "per-user".into(),
                key_values: vec![user.clone()],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(s.spent_nano_usd, *cost, "gRPC budget for {user}");
    }
    assert_eq!(
        ledger(&pg).await,
        expected_ledger(&all),
        "every row's cost and status"
    );

    // Unpriced calls: a row with the reason, tokens, and no cost.
    let r = db
        .query_one(
            "SELECT count(*), count(cost_input_nano_usd), min(input_uncached_tokens) FROM tollgate.usage WHERE status = 'unknown_model'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 200);
    assert_eq!(r.get::<_, i64>(1), 0, "unpriced rows carry no cost");
    assert!(r.get::<_, Option<i64>>(2).is_some(), "but their tokens");
    // Components add up to the total; key attributes and task columns are filled.
    let r = db
        .query_one(
            "SELECT count(*) FROM tollgate.usage WHERE status = 'priced' AND cost_total_nano_usd <> \
             cost_input_nano_usd + cost_cache_read_nano_usd + cost_cache_write_5m_nano_usd + cost_cache_write_1h_nano_usd + cost_output_nano_usd",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 0);
    let r = db
        .query_one(
            "SELECT attributes->>'tenant.id', service, task_id, price_entry, model, batch FROM tollgate.usage WHERE span_id = $1",
            &[&all[3].span_id_hex()],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, String>(0), all[3].tenant);
    assert_eq!(r.get::<_, String>(1), "billing-agent");
    assert_eq!(r.get::<_, String>(2), hex::encode(all[3].trace_id()));
    assert_eq!(r.get::<_, String>(3), "tg-frac");
    assert!(!r.get::<_, bool>(5));

    // The views and the migrations table.
    let r = db
        .query_one(
            "SELECT sum(cost_nano_usd)::int8, sum(calls)::int8 FROM tollgate.spend_by_user_day",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1)), (total, 10_000));
    let r = db
        .query_one(
            "SELECT sum(cost_nano_usd)::int8 FROM tollgate.spend_by_model WHERE model = 'tg-frac'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), total);
    let r = db
        .query_one("SELECT sum(cost_nano_usd)::int8, sum(unpriced_calls)::int8 FROM tollgate.spend_by_task_type_month", &[])
        .await
        .unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1)), (total, 200));
    let versions: Vec<i32> = db
        .query(
            "SELECT version FROM tollgate.schema_migrations ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2]);

    // The Prometheus counter (a float of USD) has the same total, to the nano-dollar.
    let prom = metric_sum(
        &metrics_text(&tg.admin).await,
        "tollgate_llm_cost_usd_total{",
    );
    assert_eq!(
        (prom * 1e9).round() as i64,
        total,
        "Prometheus total {prom}"
    );

    // `tollgate usage` prints the same per-user sums (CSV) and total (JSON).
    let usage = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .arg("usage")
            .arg("--config")
            .arg(&tg.config_path)
            .args([
                "--from",
                "2025-11-01",
                "--to",
                "2025-11-30",
                "--by",
                "user.id",
                "--format",
                format,
            ])
            .env(PASSWORD_ENV, PASSWORD)
            .output()
            .expect("tollgate usage runs");
        assert!(
            out.status.success(),
            "usage: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let csv = usage("csv");
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("user.id,calls,unpriced_calls,"));
    let printed: BTreeMap<String, (i64, i64)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].to_string(),
                (f[8].parse().unwrap(), f[1].parse().unwrap()),
            )
        })
        .collect();
    assert_eq!(printed, want, "tollgate usage --format csv");
    let json: serde_json::Value = serde_json::from_str(&usage("json")).unwrap();
    assert_eq!(json["total"]["cost_nano_usd"], total.to_string());
    assert_eq!(json["lines"].as_array().unwrap().len(), 1_000);
    // Outside the period: nothing.
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["usage", "--config"])
        .arg(&tg.config_path)
        .args([
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-31",
            "--format",
            "json",
        ])
        .env(PASSWORD_ENV, PASSWORD)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["lines"].as_array().unwrap().len(), 0);

    // The README's SQL for the common questions runs against this schema.
    let readme = include_str!("../README.md");
    let start = readme
        .find("The common questions in SQL:")
        .expect("README has the ledger SQL");
    let block = &readme[start..];
    let block = &block[block.find("```sql").unwrap() + 6..];
    let block = &block[..block.find("```").unwrap()];
    db.simple_query(block)
        .await
        .expect("the README's ledger SQL runs");

    let log = std::fs::read_to_string(dir.path().join("tollgate.log")).unwrap();
    assert!(!log.contains(PASSWORD), "the password must never be logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_and_a_replay_after_kill_9_never_bill_twice() {
    let Some(pg) = Pg::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let queue = format!(
        "{{ kind = \"disk\", path = \"{}\", max_size = \"64MiB\" }}",
        dir.path().join("ledger-queue").display()
    );
    let config = exporter_config(&pg, &queue, "");
    let first = calls(0..1_000, 100);
    let second = calls(1_000..1_500, 100);

    let mut tg = start(dir.path(), &config).await;
    // A client retry: the same spans twice.
    send(&tg, &first, 250).await;
    send(&tg, &first, 250).await;
    wait_rows(&pg, 1_000).await;
    let before = ledger(&pg).await;
    assert_eq!(before, expected_ledger(&first));

    // PostgreSQL goes away; the next calls are acknowledged once on the disk queue; tollgate
    // is killed with them still queued.
    pg.down("fast");
    send(&tg, &second, 250).await;
    tg.proc.child.kill().expect("kill -9");
    tg.proc.child.wait().unwrap();
    pg.up();

    // After the restart the disk queue replays the calls acknowledged before the kill (nothing
    // is resent yet)...
    let tg = start(dir.path(), &config).await;
    wait_rows(&pg, 1_500).await;
    assert_eq!(pg.rows().await, 1_500);
    // ...then the client sends everything again.
    send(&tg, &first, 250).await;
    send(&tg, &second, 250).await;
    // Let every resend reach the ledger: the duplicates it skipped show in the counter.
    wait_for("the resent rows skipped as duplicates", async || {
        (metric_sum(
            &metrics_text(&tg.admin).await,
            "tollgate_ledger_duplicate_rows_total{",
        ) >= 1_500.0)
            .then_some(())
    })
    .await;
    let after = ledger(&pg).await;
    let both: Vec<Call> = first.iter().chain(&second).cloned().collect();
    assert_eq!(after.len(), 1_500, "each call once");
    assert_eq!(after, expected_ledger(&both));
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v), "rows before the crash are unchanged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_for_30_s_spans_keep_flowing_and_rows_arrive_after() {
    let Some(pg) = Pg::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spans.jsonl");
    let extra = format!(
        "[[exporters]]\nname = \"file\"\nkind = \"file\"\npath = \"{}\"\nbatch = {{ timeout = \"20ms\" }}\n",
        file.display()
    );
    let tg = start(
        dir.path(),
        &exporter_config(&pg, "{ max_batches = 4096 }", &extra),
    )
    .await;
    let spans_in_file = || {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|j| {
                j["resourceSpans"].as_array().map_or(0, |rs| {
                    rs.iter()
                        .map(|r| r["scopeSpans"][0]["spans"].as_array().map_or(0, Vec::len))
                        .sum::<usize>()
                })
            })
            .sum::<usize>()
    };
    let before = calls(0..200, 50);
    send(&tg, &before, 100).await;
    wait_rows(&pg, 200).await;

    pg.down("fast");
    let down_at = std::time::Instant::now();
    let during = calls(200..500, 50);
    for chunk in during.chunks(30) {
        send(&tg, chunk, 30).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // While it is down: the file exporter has every span, the ledger failed and keeps them.
    wait_for("500 spans in the file", async || {
        (spans_in_file() >= 500).then_some(())
    })
    .await;
    assert_eq!(spans_in_file(), 500);
    let m = metrics_text(&tg.admin).await;
    assert!(
        metric_sum(
            &m,
            "tollgate_exporter_failed_requests_total{exporter=\"ledger\""
        ) > 0.0,
        "the ledger's attempts failed while PostgreSQL was down"
    );
    assert_eq!(
        metric_sum(
            &m,
            "tollgate_exporter_dropped_spans_total{exporter=\"ledger\""
        ),
        0.0
    );
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(down_at.elapsed())).await;

    pg.up();
    wait_rows(&pg, 500).await;
    let all: Vec<Call> = before.iter().chain(&during).cloned().collect();
    assert_eq!(ledger(&pg).await, expected_ledger(&all));
    let m = metrics_text(&tg.admin).await;
    assert_eq!(
        metric_sum(
            &m,
            "tollgate_exporter_dropped_spans_total{exporter=\"ledger\""
        ),
        0.0
    );
}

/// Runs `openssl` with `args` in `dir`.
fn openssl(openssl: &Path, dir: &Path, args: &[&str]) {
    let out = Command::new(openssl)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_speaks_tls_to_a_server_that_refuses_plain_text() {
    let Some(openssl_bin) = require::program("openssl", "apt-get install openssl") else {
        return;
    };
    let Some(mut pg) = Pg::init() else { return };
    // A CA and a server certificate for 127.0.0.1, made here.
    let certs = tempfile::tempdir().unwrap();
    let c = certs.path();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=tollgate test CA",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(&openssl_bin, c, &ca);
    let mut csr = vec!["req", "-subj", "/CN=127.0.0.1"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(&openssl_bin, c, &csr);
    std::fs::write(
        c.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &openssl_bin,
        c,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.crt",
        ],
    );
    // The server's key and certificate, readable by the server only.
    for f in ["server.key", "server.crt"] {
        let to = pg.dir.path().join(f);
        std::fs::copy(c.join(f), &to).unwrap();
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        if let Some((uid, gid)) = pg.user {
            std::os::unix::fs::chown(&to, Some(uid), Some(gid)).unwrap();
        }
    }
    // TCP connections must use TLS.
    std::fs::write(
        pg.data().join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 0.0.0.0/0 reject\n",
    )
    .unwrap();
    pg.options = format!(
        "-c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key",
        pg.dir.path().display()
    );
    pg.up();

    let dir = tempfile::tempdir().unwrap();
    let config = exporter_config(&pg, "{ max_batches = 64 }", "")
        .replace("/postgres\"", "/postgres?sslmode=require\"")
        .replace(
            "attributes = [\"tenant.id\"]",
            &format!(
                "attributes = [\"tenant.id\"]\nca_file = \"{}\"",
                c.join("ca.pem").display()
            ),
        );
    assert!(
        config.contains("sslmode=require") && config.contains("ca_file"),
        "{config}"
    );
    let tg = start(dir.path(), &config).await;
    let some = calls(0..100, 10);
    send(&tg, &some, 50).await;
    let deadline = std::time::Instant::now() + live_support::PATIENCE;
    while pg.rows().await < 100 {
        assert!(
            std::time::Instant::now() < deadline,
            "no rows over TLS; tollgate's log:\n{}",
            tg.proc.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(ledger(&pg).await, expected_ledger(&some));
    let r = pg
        .client()
        .await
        .query_one("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE s.ssl AND a.client_addr IS NOT NULL", &[])
        .await
        .unwrap();
    assert!(r.get::<_, i64>(0) >= 1, "tollgate's connection uses TLS");
    // `tollgate usage` connects the same way.
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["usage", "--config"])
        .arg(&tg.config_path)
        .args([
            "--from",
            "2025-11-01",
            "--to",
            "2025-11-30",
            "--format",
            "json",
        ])
        .env(PASSWORD_ENV, PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "usage: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let total: i64 = some.iter().map(Call::cost_nano_usd).sum();
    assert_eq!(json["total"]["cost_nano_usd"], total.to_string());
}
