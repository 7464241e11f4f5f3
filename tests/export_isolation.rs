//! One slow or dead backend never delays another; full queues drop for that exporter only;
//! drain delivers what is pending.

mod support;

use std::time::{Duration, Instant};

use support::standins::{self, Reply, Rules, Standin};
use support::{batch, eventually};
use tollgate::export::metrics::{dropped_spans, sent_spans};
use tollgate::export::{ExporterConfig, ExporterKind, Exporters};

fn cfg(name: &str, kind: ExporterKind, s: &Standin) -> ExporterConfig {
    let mut c = ExporterConfig::new(name, kind);
    c.endpoint = Some(s.url());
    c.insecure = true;
    c.batch.timeout = Duration::from_millis(10);
    c.retry.initial_interval = Duration::from_millis(20);
    c.retry.max_interval = Duration::from_millis(100);
    c
}

#[tokio::test]
async fn a_hanging_backend_does_not_delay_another() {
    let hang = standins::grpc(Rules::Generic).await;
    hang.push(std::iter::repeat_n(Reply::Hang, 100));
    let good = standins::http(Rules::Generic).await;
    let mut h = cfg("i_hang", ExporterKind::OtlpGrpc, &hang);
    h.timeout = Duration::from_secs(3600);
    h.concurrency = 1;
    h.batch.max_spans = 1;
    let ex =
        Exporters::from_configs(&[h, cfg("i_good", ExporterKind::OtlpHttp, &good)]).expect("valid");
    for i in 0..20 {
        ex.dispatch(batch("svc", &format!("n{i}"), 1, 1));
    }
    let rec = good.record.clone();
    eventually("the healthy exporter got everything", || rec.spans() == 20).await;
    assert_eq!(hang.record.spans(), 0);
    eventually("the healthy exporter saw its answers", || {
        ex.health()[1].last_success.is_some()
    })
    .await;
    let health = ex.health();
    assert_eq!(health[0].name, "i_hang");
    assert!(
        health[0].queue_batches > 0,
        "the hanging exporter's queue holds the rest"
    );
    assert!(health[0].last_success.is_none());
    assert_eq!(health[1].queue_batches, 0);
    ex.drain(Instant::now() + Duration::from_millis(300)).await;
    assert_eq!(dropped_spans("i_hang", "shutdown"), 20);
}

#[tokio::test]
async fn a_full_queue_drops_for_that_exporter_only() {
    let hang = standins::http(Rules::Generic).await;
    hang.push(std::iter::repeat_n(Reply::Hang, 100));
    let good = standins::http(Rules::Generic).await;
    let mut h = cfg("q_small", ExporterKind::OtlpHttp, &hang);
    h.timeout = Duration::from_secs(3600);
    h.concurrency = 1;
    h.batch.max_spans = 1;
    h.queue.max_batches = 2;
    let mut g = cfg("q_big", ExporterKind::OtlpHttp, &good);
    g.queue.max_batches = 1000;
    let ex = Exporters::from_configs(&[h, g]).expect("valid");
    // The first batch goes in flight and hangs; wait for it so the queue state is known.
    ex.dispatch(batch("svc", "first", 1, 1));
    let hr = hang.record.clone();
    eventually("first request in flight", || hr.attempts() == 1).await;
    for i in 0..10 {
        ex.dispatch(batch("svc", &format!("n{i}"), 1, 1));
    }
    // The queue holds two; the worker may also hold one more while it waits for a request slot
    // (whether it took it before or after the ten dispatches), so 7 or 8 are dropped.
    eventually("drops counted", || {
        dropped_spans("q_small", "queue_full") >= 7
    })
    .await;
    let gr = good.record.clone();
    eventually("the other exporter got all", || gr.spans() == 11).await;
    assert_eq!(dropped_spans("q_big", "queue_full"), 0);
    let small = &ex.health()[0];
    let dropped = dropped_spans("q_small", "queue_full");
    assert!((7..=8).contains(&dropped), "{dropped}");
    assert!(small.queue_batches <= 2);
    assert_eq!(small.capacity_batches, 2);
    ex.drain(Instant::now() + Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_full_byte_capacity_drops_too() {
    let hang = standins::http(Rules::Generic).await;
    hang.push(std::iter::repeat_n(Reply::Hang, 100));
    let mut h = cfg("q_bytes", ExporterKind::OtlpHttp, &hang);
    h.timeout = Duration::from_secs(3600);
    h.concurrency = 1;
    h.batch.max_spans = 1;
    h.queue.max_bytes = 1000;
    let ex = Exporters::from_configs(&[h]).expect("valid");
    let big = batch("svc", "big", 1, 2000);
    ex.dispatch(big);
    eventually("dropped", || dropped_spans("q_bytes", "queue_full") == 1).await;
    ex.drain(Instant::now() + Duration::from_millis(100)).await;
}

#[tokio::test]
async fn drain_delivers_pending_batches() {
    let s = standins::http(Rules::Generic).await;
    let mut c = cfg("d_pending", ExporterKind::OtlpHttp, &s);
    // A long flush interval: without drain nothing would be sent for an hour.
    c.batch.timeout = Duration::from_secs(3600);
    let ex = Exporters::from_configs(&[c]).expect("valid");
    for i in 0..5 {
        ex.dispatch(batch("svc", &format!("p{i}"), 3, 1));
    }
    ex.drain(Instant::now() + Duration::from_secs(20)).await;
    assert_eq!(s.record.spans(), 15);
    assert_eq!(sent_spans("d_pending"), 15);
    // After drain, new batches are refused and counted.
    ex.dispatch(batch("svc", "late", 2, 1));
    assert_eq!(dropped_spans("d_pending", "shutdown"), 2);
}

#[tokio::test]
async fn drain_retries_until_the_deadline() {
    let s = standins::http(Rules::Generic).await;
    s.push([Reply::Http(503), Reply::Http(503)]);
    let c = cfg("d_retry", ExporterKind::OtlpHttp, &s);
    let ex = Exporters::from_configs(&[c]).expect("valid");
    ex.dispatch(batch("svc", "x", 3, 1));
    ex.drain(Instant::now() + Duration::from_secs(20)).await;
    assert_eq!(s.record.spans(), 3);
    assert_eq!(s.record.attempts(), 3);
}

#[tokio::test]
async fn dropping_without_drain_stops_and_counts() {
    let hang = standins::http(Rules::Generic).await;
    hang.push(std::iter::repeat_n(Reply::Hang, 100));
    let mut h = cfg("d_dropped", ExporterKind::OtlpHttp, &hang);
    h.timeout = Duration::from_secs(3600);
    let ex = Exporters::from_configs(&[h]).expect("valid");
    ex.dispatch(batch("svc", "x", 4, 1));
    let hr = hang.record.clone();
    eventually("in flight", || hr.attempts() == 1).await;
    drop(ex);
    eventually("counted", || dropped_spans("d_dropped", "shutdown") == 4).await;
}
