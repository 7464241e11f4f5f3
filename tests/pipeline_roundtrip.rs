//! Every span field survives the whole way through tollgate — receiver, pipeline, exporter — for
//! gRPC→gRPC, HTTP protobuf→HTTP JSON, HTTP JSON→gRPC, with gzip and plain, into stand-in backends.

mod common;
mod support;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use support::eventually;
use support::standins::{self, Rules, Standin};
use tokio_util::sync::CancellationToken;
use tollgate::export::config::{Compression, Encoding};
use tollgate::export::{ExporterConfig, ExporterKind, Exporters};
use tollgate::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
use tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tollgate::pipeline::ExportFanout;
use tollgate::pipeline::{NoProcessing, Pipeline, PipelineConfig, TraceSink};
use tollgate::receiver::config::OtlpReceiverConfig;
use tollgate::receiver::grpc::GrpcReceiver;
use tollgate::receiver::http::HttpReceiver;

fn exporter(
    name: &str,
    kind: ExporterKind,
    s: &Standin,
    encoding: Option<Encoding>,
) -> ExporterConfig {
    let mut c = ExporterConfig::new(name, kind);
    c.endpoint = Some(s.url());
    c.encoding = encoding;
    c.compression = Some(Compression::None);
    c.batch.timeout = Duration::from_millis(10);
    c
}

struct Harness {
    grpc_out: Standin,
    json_out: Standin,
    grpc_in: String,
    http_in: String,
    stop: CancellationToken,
}

async fn start() -> Harness {
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    let grpc_out = standins::grpc(Rules::Generic).await;
    let json_out = standins::http(Rules::Generic).await;
    let exporters = Arc::new(
        Exporters::from_configs(&[
            exporter("rt-grpc", ExporterKind::OtlpGrpc, &grpc_out, None),
            exporter(
                "rt-json",
                ExporterKind::OtlpHttp,
                &json_out,
                Some(Encoding::Json),
            ),
        ])
        .unwrap(),
    );
    let pipeline = Arc::new(Pipeline::new(
        &PipelineConfig::default(),
        NoProcessing,
        ExportFanout::new(exporters),
    ));
    let sink: Arc<dyn TraceSink> = pipeline;
    let cfg = OtlpReceiverConfig::default();
    let stop = CancellationToken::new();
    let g = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let h = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_in = format!("http://{}", g.local_addr().unwrap());
    let http_in = format!("http://{}/v1/traces", h.local_addr().unwrap());
    tokio::spawn(GrpcReceiver::new(&cfg, sink.clone()).serve(g, stop.clone()));
    tokio::spawn(HttpReceiver::new(&cfg, sink).serve(h, stop.clone()));
    Harness {
        grpc_out,
        json_out,
        grpc_in,
        http_in,
        stop,
    }
}

/// Waits until both backends hold exactly one more request, and returns the two.
async fn next_pair(
    h: &Harness,
    seen: usize,
) -> (ExportTraceServiceRequest, ExportTraceServiceRequest) {
    eventually("both backends received the request", || {
        h.grpc_out.record.received.lock().len() > seen
            && h.json_out.record.received.lock().len() > seen
    })
    .await;
    let g = h.grpc_out.record.received.lock()[seen].request.clone();
    let j = h.json_out.record.received.lock()[seen].request.clone();
    (g, j)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn every_field_survives_every_path() {
    let h = start().await;
    let http = reqwest::Client::new();
    let mut seen = 0;

    // gRPC in (plain, then gzip) → gRPC out and HTTP JSON out.
    for gz in [false, true] {
        let sent = common::rich_request(2 + gz as u8);
        let mut client = TraceServiceClient::connect(h.grpc_in.clone())
            .await
            .unwrap();
        if gz {
            client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        client.export(sent.clone()).await.expect("accepted");
        let (g, j) = next_pair(&h, seen).await;
        seen += 1;
        assert_eq!(g, sent, "gRPC→gRPC (gzip {gz})");
        assert_eq!(
            g.encode_to_vec(),
            sent.encode_to_vec(),
            "byte-exact (gzip {gz})"
        );
        assert_eq!(j, sent, "gRPC→HTTP JSON (gzip {gz})");
    }

    // HTTP protobuf in (plain, then gzip) → HTTP JSON out and gRPC out.
    for gz in [false, true] {
        let sent = common::rich_request(4 + gz as u8);
        let body = sent.encode_to_vec();
        let mut req = http
            .post(&h.http_in)
            .header("content-type", "application/x-protobuf");
        req = if gz {
            req.header("content-encoding", "gzip").body(gzip(&body))
        } else {
            req.body(body)
        };
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let (g, j) = next_pair(&h, seen).await;
        seen += 1;
        assert_eq!(j, sent, "HTTP protobuf→HTTP JSON (gzip {gz})");
        assert_eq!(
            g.encode_to_vec(),
            sent.encode_to_vec(),
            "HTTP protobuf→gRPC byte-exact"
        );
    }

    // HTTP JSON in (plain, then gzip) → gRPC out and HTTP JSON out.
    for gz in [false, true] {
        let sent = common::rich_request(6 + gz as u8);
        let body = serde_json::to_vec(&sent).unwrap();
        let mut req = http
            .post(&h.http_in)
            .header("content-type", "application/json");
        req = if gz {
            req.header("content-encoding", "gzip").body(gzip(&body))
        } else {
            req.body(body)
        };
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let (g, j) = next_pair(&h, seen).await;
        seen += 1;
        assert_eq!(g, sent, "HTTP JSON→gRPC (gzip {gz})");
        assert_eq!(j, sent, "HTTP JSON→HTTP JSON (gzip {gz})");
    }
    h.stop.cancel();
}
