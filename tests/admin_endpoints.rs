//! The admin listener on a real socket: health, readiness flips, metrics format, merged routes.

use std::time::Duration;

use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tollgate::admin::server::{AdminServer, Readiness, METRICS_CONTENT_TYPE};

const GIVE_UP: Duration = Duration::from_secs(30);

async fn get_text(client: &reqwest::Client, url: String) -> (u16, Option<String>, String) {
    let resp = tokio::time::timeout(GIVE_UP, client.get(url).send())
        .await
        .expect("no hang")
        .expect("request");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    (status, content_type, resp.text().await.unwrap())
}

#[tokio::test]
async fn admin_endpoints_report_health_readiness_and_metrics() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let readiness = Readiness::new();
    let token = CancellationToken::new();
    let extra = axum::Router::new().route("/api/v1/ping", get(|| async { "pong" }));
    let server = AdminServer::new(readiness.clone()).merge(extra);
    let serving = tokio::spawn(server.serve(listener, token.clone()));
    // reqwest is built without a bundled TLS provider; plain HTTP still needs one installed.
    let _already_installed = rustls::crypto::ring::default_provider()
        .install_default()
        .is_err();
    let client = reqwest::Client::new();

    let (status, _, body) = get_text(&client, format!("{base}/healthz")).await;
    assert_eq!((status, body.trim()), (200, "ok"));

    let (status, _, body) = get_text(&client, format!("{base}/readyz")).await;
    assert_eq!(status, 503);
    assert!(body.contains("starting"), "{body}");

    readiness.mark_ready();
    let (status, _, body) = get_text(&client, format!("{base}/readyz")).await;
    assert_eq!((status, body.trim()), (200, "ready"));

    readiness.mark_draining();
    let (status, _, body) = get_text(&client, format!("{base}/readyz")).await;
    assert_eq!(status, 503);
    assert!(body.contains("draining"), "{body}");
    let (status, _, _) = get_text(&client, format!("{base}/healthz")).await;
    assert_eq!(status, 200, "still alive while draining");

    let (status, content_type, body) = get_text(&client, format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some(METRICS_CONTENT_TYPE));
    assert_eq!(
        METRICS_CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let version_line = format!(
        "tollgate_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(body.contains(&version_line), "{body}");
    assert!(body.lines().any(|l| l == "tollgate_up 1"), "{body}");
    assert!(body.contains("# TYPE tollgate_up gauge"), "{body}");

    let (status, _, body) = get_text(&client, format!("{base}/api/v1/ping")).await;
    assert_eq!((status, body.as_str()), (200, "pong"));

    token.cancel();
    tokio::time::timeout(GIVE_UP, serving)
        .await
        .expect("stops after cancel")
        .unwrap()
        .unwrap();
}
