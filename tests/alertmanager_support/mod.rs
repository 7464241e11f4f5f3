//! A real Alertmanager (Debian `prometheus-alertmanager`) for the tests, started on a loopback
//! port, and its v2 alerts API.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::require;

const BINARY: &str = "prometheus-alertmanager";

/// A running Alertmanager, stopped when dropped.
pub struct Alertmanager {
    child: Child,
    /// Its base URL.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        // Stop exactly the process this test started.
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary, or `None` (skipped loudly; under CI=true the test fails).
pub fn find_binary() -> Option<String> {
    require::program(BINARY, "apt-get install prometheus-alertmanager")
        .map(|p| p.display().to_string())
}

/// Starts Alertmanager on a loopback port with a null receiver and waits until it is ready.
pub async fn start_alertmanager(bin: &str) -> Alertmanager {
    // reqwest is built without a default TLS provider.
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("am.yml");
    std::fs::write(
        &cfg,
        "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n",
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("alertmanager starts");
    let am = Alertmanager {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{}/-/ready", am.url)).send().await {
            if r.status().is_success() {
                return am;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("alertmanager did not become ready");
}

/// The alerts named `alertname` Alertmanager holds now.
pub async fn query(url: &str, alertname: &str) -> Vec<serde_json::Value> {
    let target = reqwest::Url::parse_with_params(
        &format!("{url}/api/v2/alerts"),
        &[("filter", format!("alertname=\"{alertname}\""))],
    )
    .unwrap();
    let resp = reqwest::Client::new().get(target).send().await.unwrap();
    assert!(resp.status().is_success());
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}
