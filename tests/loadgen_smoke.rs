//! `tollgate-loadgen send` into `tollgate-loadgen sink`: the sink counts exactly what was sent,
//! over gRPC and HTTP, plain and gzip; refusals are reported as refusals; SIGTERM prints totals.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tollgate-loadgen");

/// A running sink; killed on drop.
struct Sink {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
    addrs: Value,
}

impl Sink {
    fn start(extra: &[&str]) -> Sink {
        let mut child = Command::new(BIN)
            .args(["--threads", "1", "sink"])
            .args([
                "--grpc",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--stats",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sink starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line).expect("first line");
        let addrs: Value = serde_json::from_str(&line).expect("addresses as JSON");
        Sink {
            child,
            stdout,
            addrs,
        }
    }

    fn addr(&self, name: &str) -> String {
        self.addrs[name].as_str().expect("address").to_string()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn send(args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(["--threads", "2", "send", "--json", "--pool", "4"])
        .args(args)
        .output()
        .expect("send runs");
    assert!(
        out.status.success(),
        "send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

#[test]
fn sink_counts_exactly_what_send_sent() {
    let sink = Sink::start(&["--verify"]);
    let stats = format!("http://{}/stats", sink.addr("stats"));
    let grpc = format!("http://{}", sink.addr("grpc"));
    let http = format!("http://{}", sink.addr("http"));
    let cases: [(&str, &str, bool); 6] = [
        ("grpc", grpc.as_str(), false),
        ("grpc", grpc.as_str(), true),
        ("http", http.as_str(), false),
        ("http", http.as_str(), true),
        ("http-json", http.as_str(), false),
        ("http-json", http.as_str(), true),
    ];
    for (protocol, endpoint, gzip) in cases {
        let mut args = vec![
            "--protocol",
            protocol,
            "--endpoint",
            endpoint,
            "--requests",
            "7",
            "--spans",
            "123",
            "--streams",
            "3",
            "--sink-stats",
            &stats,
        ];
        if gzip {
            args.push("--gzip");
        }
        let report = send(&args);
        let case = format!("{protocol} gzip={gzip}");
        assert_eq!(report["total"]["requests"], 7, "{case}");
        assert_eq!(report["total"]["accepted_spans"], 7 * 123, "{case}");
        assert_eq!(
            report["total"]["errors"], 0,
            "{case}: {}",
            report["first_error"]
        );
        assert_eq!(report["sink"]["spans"], 7 * 123, "{case}");
        if gzip {
            let body = report["body_bytes"].as_f64().expect("body bytes");
            let raw = report["request_bytes"].as_f64().expect("request bytes");
            assert!(body * 3.0 < raw, "{case}: gzip body {body} vs {raw}");
        }
    }
    // The sink's own totals agree, and nothing failed verification.
    let out = Command::new(BIN)
        .args([
            "send",
            "--json",
            "--pool",
            "1",
            "--spans",
            "1",
            "--requests",
            "0",
            "--endpoint",
            &grpc,
            "--sink-stats",
            &stats,
        ])
        .output()
        .expect("send runs");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["sink"]["total_spans_at_end"], 6 * 7 * 123);
}

#[test]
fn refused_requests_are_counted_as_refused_not_accepted() {
    let sink = Sink::start(&["--refuse-every", "2"]);
    let stats = format!("http://{}/stats", sink.addr("stats"));
    for (protocol, name) in [("grpc", "grpc"), ("http", "http"), ("http-json", "http")] {
        let endpoint = format!("http://{}", sink.addr(name));
        let before: Value = send(&[
            "--requests",
            "0",
            "--endpoint",
            &endpoint,
            "--sink-stats",
            &stats,
        ]);
        let report = send(&[
            "--protocol",
            protocol,
            "--endpoint",
            &endpoint,
            "--requests",
            "10",
            "--spans",
            "50",
            "--streams",
            "1",
            "--sink-stats",
            &stats,
        ]);
        assert_eq!(report["total"]["requests"], 5, "{protocol}");
        assert_eq!(report["total"]["refused_requests"], 5, "{protocol}");
        assert_eq!(report["total"]["refused_spans"], 250, "{protocol}");
        assert_eq!(report["total"]["accepted_spans"], 250, "{protocol}");
        assert_eq!(report["total"]["errors"], 0, "{protocol}");
        assert_eq!(report["sink"]["spans"], 250, "{protocol}");
        assert!(before["sink"].is_object());
    }
}

#[test]
fn sink_prints_its_totals_on_sigterm() {
    let mut sink = Sink::start(&[]);
    let endpoint = format!("http://{}", sink.addr("grpc"));
    let report = send(&["--endpoint", &endpoint, "--requests", "3", "--spans", "40"]);
    assert_eq!(report["total"]["accepted_spans"], 120);
    let status = Command::new("kill")
        .args(["-TERM", &sink.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let mut rest = String::new();
    use std::io::Read;
    sink.stdout
        .read_to_string(&mut rest)
        .expect("read until the sink exits");
    let totals: Value = serde_json::from_str(rest.trim()).expect("totals as JSON");
    assert_eq!(totals["spans"], 120);
    assert_eq!(totals["requests"], 3);
    assert_eq!(totals["errors"], 0);
}

#[test]
fn rate_paces_requests_on_a_schedule() {
    let sink = Sink::start(&[]);
    let endpoint = format!("http://{}", sink.addr("grpc"));
    // 5 000 spans/s of 100-span requests: one request due every 20 ms, so at most 25 are due
    // within the 0.5 s run, however fast the sink answers.
    let report = send(&[
        "--endpoint",
        &endpoint,
        "--spans",
        "100",
        "--rate",
        "5000",
        "--duration",
        "500ms",
        "--warmup",
        "0s",
        "--streams",
        "4",
    ]);
    let requests = report["total"]["requests"].as_u64().expect("count");
    assert!((1..=25).contains(&requests), "{requests} requests");
    assert_eq!(report["total"]["errors"], 0);
    assert_eq!(report["rate_target"], 5000.0);
}
