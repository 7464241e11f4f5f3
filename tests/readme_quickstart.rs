//! The README's Quick start, run as written: tollgate with the repository's `config.toml` (only
//! the listen ports moved to free loopback ports), the README's `curl` body posted to it, and
//! what the README says comes back — the console exporter's line, the task API's answer and the
//! `price` command's output — compared with what the real binary prints.

mod live_support;

use std::path::Path;
use std::process::Command;

use live_support::*;

const README: &str = include_str!("../README.md");

/// The text of the first fenced block after `marker` in the Quick start.
fn block_after(marker: &str) -> &'static str {
    let start = README
        .find("## Quick start")
        .expect("a Quick start section");
    let section = &README[start..];
    let at = section
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} in the Quick start"));
    let rest = &section[at..];
    let open = rest.find("```").expect("a fenced block after the marker");
    let body = &rest[open..];
    let body = &body[body.find('\n').expect("fence line") + 1..];
    &body[..body.find("```").expect("closing fence")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_prints_what_the_readme_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    let (grpc, http, admin) = (free_port(), free_port(), free_port());
    let config = std::fs::read_to_string(root.join("config.toml"))
        .expect("config.toml")
        .replace("127.0.0.1:4317", &format!("127.0.0.1:{grpc}"))
        .replace("127.0.0.1:4318", &format!("127.0.0.1:{http}"))
        .replace("127.0.0.1:9464", &format!("127.0.0.1:{admin}"));
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, config).expect("write config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.arg("--config").arg(&config_path);
    let log = dir.path().join("tollgate.log");
    let mut proc = Proc::spawn("tollgate", cmd, &log);
    let c = client();
    wait_for("tollgate /readyz", async || {
        proc.assert_running();
        c.get(format!("http://127.0.0.1:{admin}/readyz"))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await;

    // The curl of the README: its JSON body, to /v1/traces.
    let curl = block_after("send it one LLM span");
    let body = &curl[curl.find("-d '").expect("curl -d '") + 4..];
    let body = &body[..body.rfind('\'').expect("closing quote")];
    let answer = c
        .post(format!("http://127.0.0.1:{http}/v1/traces"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "{}");

    // The console exporter's line.
    let line = block_after("the `console` exporter prints").trim();
    wait_for("the console line", async || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|l| l.lines().any(|l| l == line))
    })
    .await;

    // The task API's answer: equal to the README's, field by field. `status` / `end_reason`
    // change when the root's grace period passes (the README says so).
    let want: serde_json::Value =
        serde_json::from_str(block_after("The task API answers")).expect("README JSON");
    let id = want["task_id"].as_str().expect("task_id").to_string();
    let mut got = get_json(&format!("http://127.0.0.1:{admin}/api/v1/tasks/{id}"))
        .await
        .expect("the task");
    let mut want = want;
    for v in [&mut got, &mut want] {
        let o = v.as_object_mut().unwrap();
        o.remove("status");
        o.remove("end_reason");
    }
    assert_eq!(got, want, "the README's task API answer is out of date");

    // `price`, as the README runs it: from the repository root (its config.toml).
    let price = block_after("The `price` command prints");
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(root)
        .args([
            "price",
            "claude-sonnet-4-6",
            "--input",
            "1300",
            "--cache-read",
            "800",
            "--output",
            "340",
        ])
        .output()
        .expect("tollgate price");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        price,
        "the README's price output is out of date"
    );
    drop(proc);
}
