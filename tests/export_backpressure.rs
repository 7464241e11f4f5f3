//! Every backend down: once each exporter's queue is full, receivers refuse new requests with a
//! retryable answer instead of accepting spans nobody could take (issue 7: "clients get retryable
//! refusals instead of the process growing or dropping silently").

mod live_support;

use live_support::{client, free_port, round_request, start_tollgate};

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_dead_backend_with_a_full_queue_gets_retryable_refusals_not_drops() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dead_port = free_port();
    let extra = format!(
        r#"
[[exporters]]
name = "dead-end"
kind = "otlp_http"
endpoint = "http://127.0.0.1:{dead_port}"
timeout = "1s"
concurrency = 1
batch = {{ max_spans = 1, timeout = "10ms" }}
queue = {{ max_batches = 2 }}
retry = {{ initial_interval = "1s", max_interval = "2s", max_elapsed_time = "1h" }}
"#
    );
    let mut tg = start_tollgate(dir.path(), &extra).await;
    let c = client();
    let mut accepted = 0;
    let mut refusal = None;
    for round in 0..40u8 {
        let r = c
            .post(format!("http://{}/v1/traces", tg.http))
            .header("content-type", "application/json")
            .body(round_request(round).to_string())
            .send()
            .await
            .expect("POST /v1/traces");
        if r.status().is_success() {
            accepted += 1;
            continue;
        }
        refusal = Some((
            r.status().as_u16(),
            r.headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap_or("").to_owned()),
        ));
        break;
    }
    let (status, retry_after) = refusal.expect("a request is refused once the queue is full");
    assert_eq!(status, 503, "retryable refusal");
    assert!(
        retry_after.is_some_and(|v| !v.is_empty()),
        "Retry-After set"
    );
    // One in flight (concurrency 1) and two queued: a handful of requests are accepted first.
    assert!(
        (1..=10).contains(&accepted),
        "accepted {accepted} before refusing"
    );

    let text = c
        .get(format!("http://{}/metrics", tg.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metric(&text, "tollgate_receiver_refused_spans_total{reason=\"pipeline_full\",receiver=\"otlp_http\"}") > 0.0,
        "refusal counted"
    );
    assert_eq!(
        metric(
            &text,
            "tollgate_exporter_dropped_spans_total{exporter=\"dead-end\",reason=\"queue_full\"}"
        ),
        0.0,
        "nothing accepted was dropped for a full queue"
    );
    tg.proc.assert_running();
}
