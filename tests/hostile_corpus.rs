//! The hostile-input corpus (#19): every case in `tests/corpus/hostile.toml` is sent to the real
//! binary and must get its stated status (HTTP status or grpc-status); afterwards the process is
//! still running and serving, and every refusal is counted. Also #19 point 7's timestamps:
//! spans with start 0, end `u64::MAX` or end before start are accepted but kept out of the
//! duration histogram (counted in `tollgate_llm_invalid_timestamps_total{reason}`).

mod live_support;
mod receiver_support;

use std::io::Write;
use std::net::SocketAddr;

use bytes::Bytes;
use live_support::*;
use receiver_support::{grpc_frame, gzip_bomb, raw_grpc, raw_grpc_path, send, sized};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    target: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    content_encoding: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_hex: Option<String>,
    #[serde(default)]
    frame_hex: Option<String>,
    #[serde(default)]
    grpc_encoding: Option<String>,
    #[serde(default)]
    r#gen: Option<String>,
    expect: i64,
    #[serde(default)]
    #[allow(dead_code)]
    why: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Corpus {
    case: Vec<Case>,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn json_request_with(attrs: &str) -> String {
    format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"s","attributes":{attrs}}}]}}]}}]}}"#
    )
}

/// The bodies too large or too binary to keep in the corpus file.
fn generated(name: &str) -> Vec<u8> {
    match name {
        "deep_array" => {
            let mut s = String::from(r#"{"resourceSpans":"#);
            s.push_str(&"[".repeat(100_000));
            s.push_str(&"]".repeat(100_000));
            s.push('}');
            s.into_bytes()
        }
        "deep_anyvalue" => {
            let open = r#"{"arrayValue":{"values":["#;
            let close = "]}}";
            let mut v = open.repeat(10_000);
            v.push_str(r#"{"intValue":"1"}"#);
            v.push_str(&close.repeat(10_000));
            json_request_with(&format!(r#"[{{"key":"k","value":{v}}}]"#)).into_bytes()
        }
        "big_key" => {
            let key = "k".repeat(1 << 20);
            json_request_with(&format!(
                r#"[{{"key":"{key}","value":{{"stringValue":"v"}}}}]"#
            ))
            .into_bytes()
        }
        "many_attrs" => {
            let attrs: Vec<String> = (0..20_000)
                .map(|i| format!(r#"{{"key":"a{i}","value":{{"intValue":"{i}"}}}}"#))
                .collect();
            json_request_with(&format!("[{}]", attrs.join(","))).into_bytes()
        }
        "random_1k" => {
            // A fixed xorshift stream: the same bytes every run.
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            (0..1024)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8 | 0x80
                })
                .collect()
        }
        "gzip_truncated" => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&[b'{'; 4096]).unwrap();
            let full = enc.finish().unwrap();
            full[..full.len() / 2].to_vec()
        }
        "gzip_bomb" => gzip_bomb(8, 16),
        other => panic!("unknown generator {other}"),
    }
}

async fn run_case(http: SocketAddr, grpc: SocketAddr, c: &Case) -> i64 {
    if c.r#gen.as_deref() == Some("over_limit") {
        return declared_over_limit(http).await;
    }
    let body: Vec<u8> = if let Some(g) = &c.r#gen {
        generated(g)
    } else if let Some(h) = &c.body_hex {
        unhex(h)
    } else {
        c.body.clone().unwrap_or_default().into_bytes()
    };
    match c.target.as_str() {
        // "grpc_port": a plain HTTP/2 request (content type as given) to the gRPC port.
        t @ ("http" | "grpc_port") => {
            let (addr, h2c) = if t == "http" {
                (http, false)
            } else {
                (grpc, true)
            };
            let mut headers = Vec::new();
            if let Some(ct) = &c.content_type {
                headers.push(("content-type", ct.as_str()));
            }
            if let Some(e) = &c.content_encoding {
                headers.push(("content-encoding", e.as_str()));
            }
            let answer = send(
                addr,
                c.method.as_deref().unwrap_or("POST"),
                c.path.as_deref().unwrap_or("/v1/traces"),
                &headers,
                sized(body),
                h2c,
            )
            .await;
            i64::from(answer.status.as_u16())
        }
        "grpc" => {
            if let Some(path) = &c.path {
                return i64::from(raw_grpc_path(grpc, path).await.0);
            }
            let frame = match (&c.frame_hex, &c.r#gen) {
                (Some(h), _) => Bytes::from(unhex(h)),
                (None, Some(_)) => grpc_frame(true, &body),
                (None, None) => panic!("{}: no frame", c.name),
            };
            i64::from(raw_grpc(grpc, frame, c.grpc_encoding.as_deref()).await.0)
        }
        other => panic!("{}: unknown target {other}", c.name),
    }
}

/// A body declared at 21 MiB (over the 20 MiB default) of which nothing is sent: refused from
/// the headers alone.
async fn declared_over_limit(http: SocketAddr) -> i64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(http).await.unwrap();
    s.write_all(
        format!(
            "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
            21 << 20
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(PATIENCE, s.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    head.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_input_gets_its_status_and_the_process_keeps_serving() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/hostile.toml"
    ))
    .expect("corpus");
    let corpus: Corpus = toml::from_str(&text).expect("corpus parses");
    assert!(corpus.case.len() >= 50, "{} cases", corpus.case.len());
    let dir = tempfile::tempdir().unwrap();
    let mut tg = start_tollgate_with(
        dir.path(),
        "max_decompressed_mib = 64\nbody_read_timeout = \"10s\"\n",
        "[pipeline]\nmemory_limit_mib = 256\n",
    )
    .await;
    let http: SocketAddr = tg.http.parse().unwrap();
    let grpc: SocketAddr = tg.grpc.parse().unwrap();

    let mut wrong = Vec::new();
    let mut refused = 0;
    for c in &corpus.case {
        let got = run_case(http, grpc, c).await;
        eprintln!("{:<40} expect {:>3} got {:>3}", c.name, c.expect, got);
        if got != c.expect {
            wrong.push(format!("{}: expected {}, got {got}", c.name, c.expect));
        }
        let ok = if c.target == "http" { 200 } else { 0 };
        refused += usize::from(c.expect != ok);
        tg.proc.assert_running();
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // Still serving, and every refusal was counted.
    let r = post_traces(&tg.http, &plain_request(1)).await;
    assert_eq!(r, serde_json::json!({}));
    let text = metrics_text(&tg.admin).await;
    let counted = metric(&text, "tollgate_receiver_requests_total", &[])
        - metric(
            &text,
            "tollgate_receiver_requests_total",
            &["outcome=\"accepted\""],
        )
        - metric(
            &text,
            "tollgate_receiver_requests_total",
            &["outcome=\"partial\""],
        );
    assert!(
        counted >= refused as f64,
        "{refused} refusals sent, {counted} counted"
    );
}

fn llm_span(span_id: &str, start: &str, end: &str, input: u32) -> String {
    format!(
        r#"{{"traceId":"6b8efff798038103d269b633813fc60c","spanId":"{span_id}","name":"chat","kind":3,
            "startTimeUnixNano":"{start}","endTimeUnixNano":"{end}",
            "attributes":[{{"key":"llm.model","value":{{"stringValue":"tg-time"}}}},
                          {{"key":"llm.input_tokens","value":{{"intValue":"{input}"}}}},
                          {{"key":"llm.output_tokens","value":{{"intValue":"1"}}}}]}}"#
    )
}

#[tokio::test]
async fn broken_timestamps_do_not_poison_the_duration_histogram() {
    let dir = tempfile::tempdir().unwrap();
    let tg = start_tollgate(
        dir.path(),
        "[pricing]\nbuiltin = false\n[[pricing.models]]\nname = \"tg-time\"\nprovider = \"openai\"\ninput = 1.0\noutput = 1.0\n",
    )
    .await;
    let spans = [
        llm_span(
            "0000000000000001",
            "1764000000000000000",
            "1764000002000000000",
            10,
        ), // 2 s
        llm_span("0000000000000002", "0", "18446744073709551615", 20),
        llm_span(
            "0000000000000003",
            "1764000002000000000",
            "1764000001000000000",
            30,
        ),
        llm_span("0000000000000004", "1", "18446744073709551615", 40),
    ];
    let body = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    );
    let r = client()
        .post(format!("http://{}/v1/traces", tg.http))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "accepted: the spans are forwarded unchanged"
    );
    let text = wait_for("the calls to be counted", async || {
        let text = metrics_text(&tg.admin).await;
        (metric(&text, "tollgate_llm_invalid_timestamps_total", &[]) >= 3.0
            && metric(&text, "tollgate_llm_call_duration_seconds_count", &[]) >= 1.0)
            .then_some(text)
    })
    .await;
    eprintln!(
        "{}",
        text.lines()
            .filter(|l| l.contains("llm_call"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let sum = metric(&text, "tollgate_llm_call_duration_seconds_sum", &[]);
    let count = metric(&text, "tollgate_llm_call_duration_seconds_count", &[]);
    assert_eq!(
        count, 1.0,
        "only the call with sane timestamps is observed:\n{text}"
    );
    assert!((sum - 2.0).abs() < 1e-9, "sum {sum}");
    for (reason, n) in [
        ("missing", 1.0),
        ("end_before_start", 1.0),
        ("implausible", 1.0),
    ] {
        assert_eq!(
            metric(
                &text,
                "tollgate_llm_invalid_timestamps_total",
                &[&format!("reason=\"{reason}\"")]
            ),
            n,
            "{reason}"
        );
    }
}
