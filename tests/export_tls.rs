//! TLS: an otlp_grpc exporter trusts a private CA through `ca_file` and delivers over https.
//! The certificates are made with the `openssl` CLI at test time.

mod require;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tollgate::export::{ExporterConfig, ExporterKind, Exporters};
use tollgate::otlp::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use tollgate::otlp::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};

struct Sink(tokio::sync::mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        r: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.send(r.into_inner()).ok();
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        ok.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// A CA, and a localhost server certificate signed by it.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=tollgate test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        dir,
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
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

#[tokio::test]
async fn grpc_over_tls_with_a_private_ca() {
    if require::program("openssl", "apt-get install openssl").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let read = |f: &str| std::fs::read(dir.path().join(f)).unwrap();
    let identity = tonic::transport::Identity::from_pem(read("server.pem"), read("server.key"));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let server = tonic::transport::Server::builder()
        .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
        .unwrap()
        .add_service(
            TraceServiceServer::new(Sink(tx))
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
        );
    tokio::spawn(async move { server.serve_with_incoming(incoming).await.ok() });

    let mut c = ExporterConfig::new("tls_grpc", ExporterKind::OtlpGrpc);
    c.endpoint = Some(format!("https://localhost:{}", addr.port()));
    c.ca_file = Some(dir.path().join("ca.pem"));
    c.batch.timeout = Duration::from_millis(10);
    let ex = Exporters::from_configs(&[c]).unwrap();
    ex.dispatch(support::batch("svc", "tls", 3, 1));
    let got = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("delivered")
        .unwrap();
    assert_eq!(support::span_names(&got), ["tls-0", "tls-1", "tls-2"]);
    ex.drain(Instant::now() + Duration::from_secs(5)).await;

    // The HTTP client trusts the same CA: the gRPC server answers an OTLP/HTTP POST with an
    // empty 200 (unknown route), which is enough to show the TLS handshake succeeded.
    let mut c = ExporterConfig::new("tls_http", ExporterKind::OtlpHttp);
    c.endpoint = Some(format!("https://localhost:{}", addr.port()));
    c.ca_file = Some(dir.path().join("ca.pem"));
    c.batch.timeout = Duration::from_millis(10);
    let ex = Exporters::from_configs(&[c]).unwrap();
    ex.dispatch(support::batch("svc", "tls-http", 2, 1));
    ex.drain(Instant::now() + Duration::from_secs(10)).await;
    assert_eq!(tollgate::export::metrics::sent_spans("tls_http"), 2);

    // Without the CA the server is not trusted: nothing is delivered, failures are counted.
    let mut c = ExporterConfig::new("tls_grpc_untrusted", ExporterKind::OtlpGrpc);
    c.endpoint = Some(format!("https://localhost:{}", addr.port()));
    c.batch.timeout = Duration::from_millis(10);
    c.retry.initial_interval = Duration::from_millis(20);
    let ex = Exporters::from_configs(&[c]).unwrap();
    ex.dispatch(support::batch("svc", "untrusted", 1, 1));
    support::eventually("a failed attempt", || {
        tollgate::export::metrics::failed_requests("tls_grpc_untrusted", "connection") >= 1
    })
    .await;
    ex.drain(Instant::now()).await;
    assert!(rx.try_recv().is_err());
}
