//! Reload watching: a changed file is published, a broken one keeps the old config and is counted.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch::Receiver;
use tollgate::app::config::{watch, Config, ReloadMetrics};

/// Only to avoid hanging forever; no test depends on how fast a reload happens.
const GIVE_UP: Duration = Duration::from_secs(30);

fn config_text(admin: &str, poll: &str) -> String {
    format!(
        "[admin]\nlisten = \"{admin}\"\n[reload]\npoll_interval = \"{poll}\"\n\
         [[exporters]]\nname = \"console\"\nkind = \"console\"\n"
    )
}

fn reloads(outcome: &str) -> u64 {
    ReloadMetrics::get()
        .reloads
        .with_label_values(&[outcome])
        .get()
}

async fn wait_for_admin(rx: &mut Receiver<Arc<Config>>, listen: &str) {
    tokio::time::timeout(GIVE_UP, async {
        while rx.borrow_and_update().admin.listen != listen {
            rx.changed().await.expect("watcher alive");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("config never switched to admin.listen = {listen}"));
}

async fn wait_for_counter(outcome: &str, above: u64) {
    tokio::time::timeout(GIVE_UP, async {
        while reloads(outcome) <= above {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{outcome} counter never moved"));
}

/// Writes a new file beside `path` and renames it over, as many editors do.
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn reload_applies_valid_changes_and_keeps_old_config_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config_text("127.0.0.1:9001", "20ms")).unwrap();
    let initial = Config::load(&path).unwrap();
    let mut rx = watch(&path, initial);
    assert_eq!(rx.borrow_and_update().admin.listen, "127.0.0.1:9001");

    // An in-place write is picked up.
    let successes = reloads("success");
    std::fs::write(&path, config_text("127.0.0.1:9002", "20ms")).unwrap();
    wait_for_admin(&mut rx, "127.0.0.1:9002").await;
    assert!(reloads("success") > successes);

    // A broken file is refused, counted, and the old config stays.
    let failures = reloads("failure");
    let broken = config_text("127.0.0.1:9003", "20ms") + "surprise = true\n";
    std::fs::write(&path, broken).unwrap();
    wait_for_counter("failure", failures).await;
    assert_eq!(rx.borrow().admin.listen, "127.0.0.1:9002");

    // An editor-style replace (write elsewhere, rename over) is picked up too.
    replace_file(&path, &config_text("127.0.0.1:9004", "20ms"));
    wait_for_admin(&mut rx, "127.0.0.1:9004").await;
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_even_with_polling_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config_text("127.0.0.1:9101", "0s")).unwrap();
    let mut rx = watch(&path, Config::load(&path).unwrap());
    std::fs::write(&path, config_text("127.0.0.1:9102", "0s")).unwrap();

    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for_admin(&mut rx, "127.0.0.1:9102").await;
}
