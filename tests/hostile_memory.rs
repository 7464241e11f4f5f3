//! Memory before admission, against the real binary: concurrent compression bombs, JSON bodies
//! that amplify in the parser, and declared-but-stalled bodies are all reserved in the one memory
//! budget before they are allocated. Clients get 413 (can never fit) or 503 + Retry-After /
//! UNAVAILABLE (not now), the process keeps serving, and its peak RSS (VmHWM) stays within the
//! configured limit plus the fixed overhead stated in README.md.

mod live_support;
mod receiver_support;

use std::io::Write;
use std::net::SocketAddr;

use live_support::*;
use prost::Message;
use receiver_support::{grpc_frame, gzip_bomb, raw_grpc, send, sized};
use tokio::io::AsyncWriteExt;

/// The fixed overhead over `memory_limit_mib` that README.md states for peak RSS.
const OVERHEAD_MIB: u64 = 128;
const LIMIT_MIB: u64 = 64;

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// gzip of `n` repetitions of `unit`, built from one compressed member repeated (gzip members
/// concatenate), so a huge inflated size costs the test little.
fn gzip_repeat(unit: &[u8], member_units: usize, members: usize) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&unit.repeat(member_units)).unwrap();
    enc.finish().unwrap().repeat(members)
}

/// An OTLP/JSON body whose one attribute is an array of `n` ints, wrapped in a gzip stream; the
/// enum name sends it down the fallback parser.
fn amplifying_json(n_per_member: usize, members: usize) -> Vec<u8> {
    let head = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_SERVER","attributes":[{"key":"k","value":{"arrayValue":{"values":["#;
    let tail = br#"1]}}}]}]}]}]}"#;
    let mut out = Vec::new();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(head).unwrap();
    out.extend(enc.finish().unwrap());
    out.extend(gzip_repeat(b"1,", n_per_member, members));
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(tail).unwrap();
    out.extend(enc.finish().unwrap());
    out
}

async fn post(addr: SocketAddr, ct: &str, encoding: Option<&str>, body: Vec<u8>) -> u16 {
    let mut headers = vec![("content-type", ct)];
    if let Some(e) = encoding {
        headers.push(("content-encoding", e));
    }
    send(addr, "POST", "/v1/traces", &headers, sized(body), false)
        .await
        .status
        .as_u16()
}

/// Opens a connection that declares `declared` bytes, sends `sent` of them, and stalls.
async fn stall(addr: SocketAddr, declared: usize, sent: usize) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: {declared}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("head");
    s.write_all(&vec![0x0a; sent]).await.ok();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_bodies_stay_within_the_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let tg = start_tollgate(
        dir.path(),
        &format!("[pipeline]\nmemory_limit_mib = {LIMIT_MIB}\n"),
    )
    .await;
    let http: SocketAddr = tg.http.parse().unwrap();
    let grpc: SocketAddr = tg.grpc.parse().unwrap();
    let baseline = vm_hwm_kib(tg.proc.pid());

    let mut tasks = tokio::task::JoinSet::new();
    // 1: JSON that amplifies (a 31-million-element array in a ~60 KB gzip body) ...
    for _ in 0..3 {
        let body = amplifying_json(1 << 20, 31);
        tasks.spawn(async move {
            (
                "json-31M",
                post(http, "application/json", Some("gzip"), body).await,
            )
        });
    }
    // ... and smaller ones whose parse bound fits the limit once or twice, not eight times.
    for _ in 0..8 {
        let body = amplifying_json(100_000, 1);
        tasks.spawn(async move {
            (
                "json-100k",
                post(http, "application/json", Some("gzip"), body).await,
            )
        });
    }
    // gzip bombs on both receivers.
    for _ in 0..8 {
        let bomb = gzip_bomb(8, 32);
        tasks.spawn(async move {
            (
                "http-bomb",
                post(http, "application/x-protobuf", Some("gzip"), bomb).await,
            )
        });
        let bomb = gzip_bomb(8, 32);
        tasks.spawn(async move {
            let (code, _) = raw_grpc(grpc, grpc_frame(true, &bomb), Some("gzip")).await;
            ("grpc-bomb", 1000 + code as u16)
        });
    }
    let mut outcomes = std::collections::BTreeMap::<(&str, u16), usize>::new();
    while let Some(done) = tasks.join_next().await {
        let (what, status) = done.expect("task");
        *outcomes.entry((what, status)).or_default() += 1;
    }
    eprintln!("outcomes: {outcomes:?}");
    for (what, status) in outcomes.keys() {
        let ok = match *what {
            // 413: the parse could never fit; 503: not now; 400: it is not valid OTLP anyway.
            "json-31M" => [413, 503].contains(status),
            "json-100k" => [400, 413, 503].contains(status),
            "http-bomb" => [413, 503].contains(status),
            // RESOURCE_EXHAUSTED (8) or UNAVAILABLE (14).
            "grpc-bomb" => [1008, 1014].contains(status),
            _ => false,
        };
        assert!(ok, "{what} answered {status}");
    }

    // 10: stalled bodies declaring 19 MiB each: the first few fit the budget, the rest are
    // refused with 503 before a byte of their body is buffered.
    let mut stalled = Vec::new();
    for _ in 0..8 {
        stalled.push(stall(http, 19 << 20, 4 << 20).await);
    }

    // The stalled bodies: send more declarations; once the budget is held, they get 503 at once.
    let refused = {
        let mut s = stall(http, 19 << 20, 0).await;
        let mut buf = vec![0u8; 512];
        let n = tokio::time::timeout(PATIENCE, tokio::io::AsyncReadExt::read(&mut s, &mut buf))
            .await
            .expect("an answer")
            .expect("read");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(
        refused.starts_with("HTTP/1.1 503"),
        "a body that cannot be reserved is refused before it is read: {refused}"
    );
    assert!(
        refused.to_ascii_lowercase().contains("retry-after"),
        "{refused}"
    );

    // Still serving: a small valid request is accepted once the stalled clients let go.
    drop(stalled);
    let ok = wait_for("a valid request to be accepted", async || {
        let req = tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest::default();
        let status = post(http, "application/x-protobuf", None, req.encode_to_vec()).await;
        (status == 200).then_some(status)
    })
    .await;
    assert_eq!(ok, 200);

    let peak = vm_hwm_kib(tg.proc.pid());
    let allowed = (LIMIT_MIB + OVERHEAD_MIB) << 10;
    eprintln!("VmHWM: baseline {baseline} KiB, peak {peak} KiB, allowed {allowed} KiB");
    assert!(
        peak <= allowed,
        "peak RSS {peak} KiB over the limit + overhead ({allowed} KiB); log:\n{}",
        tg.proc.log_tail()
    );
}

/// #19 point 5: every backend down (connection refused, retried for ever) while clients keep
/// sending: batches queued, in flight and retrying, with their encoder output, stay within the
/// limit plus the stated overhead, and the clients are told to retry (503) once it is full.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_with_clients_still_sending_stays_within_the_limit() {
    use receiver_support::sample_request;
    let dir = tempfile::tempdir().unwrap();
    let (dead_http, dead_grpc) = (free_port(), free_port());
    let extra = format!(
        r#"
[pipeline]
memory_limit_mib = {LIMIT_MIB}

[[exporters]]
name = "down-http"
kind = "otlp_http"
endpoint = "http://127.0.0.1:{dead_http}"
compression = "gzip"
concurrency = 4
retry = {{ initial_interval = "50ms", max_interval = "200ms", max_elapsed_time = "1h" }}

[[exporters]]
name = "down-grpc"
kind = "otlp_grpc"
endpoint = "http://127.0.0.1:{dead_grpc}"
compression = "zstd"
concurrency = 4
retry = {{ initial_interval = "50ms", max_interval = "200ms", max_elapsed_time = "1h" }}
"#
    );
    let tg = start_tollgate(dir.path(), &extra).await;
    let http: SocketAddr = tg.http.parse().unwrap();
    // ~1 MiB requests of 64 spans, 8 clients, until the budget is full for a while.
    let body = sample_request(64, 16 << 10).encode_to_vec();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let body = body.clone();
        tasks.spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..40 {
                statuses.push(post(http, "application/x-protobuf", None, body.clone()).await);
            }
            statuses
        });
    }
    let mut outcomes = std::collections::BTreeMap::<u16, usize>::new();
    while let Some(done) = tasks.join_next().await {
        for s in done.expect("client") {
            *outcomes.entry(s).or_default() += 1;
        }
    }
    eprintln!("outcomes: {outcomes:?}");
    assert!(
        outcomes.keys().all(|s| [200, 503].contains(s)),
        "{outcomes:?}"
    );
    assert!(
        outcomes.get(&503).copied().unwrap_or(0) > 0,
        "the budget filled: {outcomes:?}"
    );
    let peak = vm_hwm_kib(tg.proc.pid());
    let allowed = (LIMIT_MIB + OVERHEAD_MIB) << 10;
    eprintln!("outage VmHWM: peak {peak} KiB, allowed {allowed} KiB");
    assert!(
        peak <= allowed,
        "peak RSS {peak} KiB over the limit + overhead ({allowed} KiB); log:\n{}",
        tg.proc.log_tail()
    );
}
