//! Reloading: poll the config file (and listen for SIGHUP), publish each new valid config.
//!
//! The file is polled by path every `[reload] poll_interval`, so editors that write a new file and
//! rename it over the old one are seen like in-place writes. A change is detected from the file's
//! modification time and size, and confirmed by comparing the content (also compared every few
//! polls regardless, for file systems with coarse timestamps). A file that fails to load keeps the
//! current config: the reason is logged once per distinct content.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use prometheus::IntCounterVec;
use serde::Deserialize;
use tokio::sync::watch as tokio_watch;
use tracing::{info, warn};

use super::Config;
use crate::config::Issue;

/// Every this many polls the content is compared even when mtime and size are unchanged.
const FULL_COMPARE_EVERY: u32 = 5;

/// A changed file is read again after this long and applied only once two reads agree, so a
/// write caught half-way (truncated, or partly written) is never loaded.
const SETTLE: Duration = Duration::from_millis(250);

/// At most this many extra reads while a file keeps changing; then the latest read is used.
const SETTLE_READS: u32 = 20;

/// `[reload]`: how the config file is watched.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadConfig {
    /// How often the file is checked for changes, like `"1s"`; `"0s"` turns polling off (SIGHUP
    /// still reloads).
    #[serde(
        default = "default_poll_interval",
        deserialize_with = "crate::config::duration::deserialize"
    )]
    pub poll_interval: Duration,
    /// A reload that removes more than half of the alert rules, price entries (models,
    /// overrides, the built-in table) or exporters is refused (logged at WARN, counted as
    /// `outcome="refused"`): far more often a file cut short than an intent. Set this to `true`
    /// in the new file to apply such a reload anyway.
    #[serde(default)]
    pub allow_removal: bool,
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(1)
}

impl Default for ReloadConfig {
    fn default() -> Self {
        Self {
            poll_interval: default_poll_interval(),
            allow_removal: false,
        }
    }
}

impl ReloadConfig {
    pub(super) fn validate(&self) -> Vec<Issue> {
        if !self.poll_interval.is_zero() && self.poll_interval < Duration::from_millis(10) {
            return vec![Issue::invalid(
                "reload.poll_interval",
                "must be at least 10ms, or 0s to turn polling off",
            )];
        }
        Vec::new()
    }
}

/// Reload counters, registered in [`crate::telemetry::registry`].
#[derive(Debug)]
pub struct ReloadMetrics {
    /// `tollgate_config_reloads_total{outcome="success"|"failure"|"refused"|"missing"}`.
    pub reloads: IntCounterVec,
}

impl ReloadMetrics {
    /// Metric name.
    pub const RELOADS: &'static str = "tollgate_config_reloads_total";

    /// The process-wide instance.
    pub fn get() -> &'static Self {
        static METRICS: LazyLock<ReloadMetrics> = LazyLock::new(|| {
            let reloads = IntCounterVec::new(
                prometheus::Opts::new(
                    ReloadMetrics::RELOADS,
                    "Config reloads by outcome: success; failure (invalid file), refused (it removes most rules, prices or exporters) and missing (the file is gone), all keeping the running config.",
                ),
                &["outcome"],
            )
            .expect("static metric definition is valid");
            // Both outcomes exist from the start: "0 reloads" is an answer, not missing data.
            for outcome in ["success", "failure", "refused", "missing"] {
                reloads.with_label_values(&[outcome]);
            }
            crate::telemetry::registry()
                .register(Box::new(reloads.clone()))
                .expect("metric is registered once");
            ReloadMetrics { reloads }
        });
        &METRICS
    }

    fn success(&self) {
        self.reloads.with_label_values(&["success"]).inc();
    }

    fn failure(&self) {
        self.reloads.with_label_values(&["failure"]).inc();
    }

    fn count(&self, outcome: &str) {
        self.reloads.with_label_values(&[outcome]).inc();
    }
}

/// Watches `path` and returns a receiver that always holds the latest valid config, starting
/// with `initial`. Polls every `initial.reload.poll_interval` and reloads on SIGHUP. The
/// background task stops when every receiver is dropped. Must be called inside a tokio runtime.
pub fn watch(
    path: impl Into<PathBuf>,
    initial: impl Into<Arc<Config>>,
) -> tokio_watch::Receiver<Arc<Config>> {
    let path = path.into();
    let initial = initial.into();
    let interval = initial.reload.poll_interval;
    let (tx, rx) = tokio_watch::channel(initial);
    let _ = ReloadMetrics::get();
    let mut hangups = hangup_stream();
    let mut seen = Fingerprint::read(&path);
    tokio::spawn(async move {
        let mut ticker = (!interval.is_zero()).then(|| {
            let mut t = tokio::time::interval(interval);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        let mut polls: u32 = 0;
        let mut missing = false;
        loop {
            let forced = tokio::select! {
                () = tx.closed() => return,
                () = next_tick(ticker.as_mut()) => false,
                () = next_hangup(hangups.as_mut()) => true,
            };
            polls = polls.wrapping_add(1);
            let full_compare = polls % FULL_COMPARE_EVERY == 0;
            if forced {
                info!(path = %path.display(), "Received SIGHUP; reloading the configuration.");
            } else if !seen.may_have_changed(&path, full_compare) {
                continue;
            }
            let Some(mut now) = Fingerprint::read(&path) else {
                // Missing: maybe for a moment (an editor between delete and create), maybe for
                // good. The running config stays; said once per disappearance, and on SIGHUP.
                if forced || !missing {
                    tokio::time::sleep(SETTLE).await;
                    if Fingerprint::read(&path).is_none() {
                        missing = true;
                        ReloadMetrics::get().count("missing");
                        warn!(path = %path.display(), "The config file is missing or unreadable; keeping the running configuration.");
                    }
                }
                continue;
            };
            if missing {
                missing = false;
                info!(path = %path.display(), "The config file is back.");
            }
            if !forced && now.content == seen.as_ref().map_or(&[][..], |s| &s.content[..]) {
                seen = Some(now);
                continue;
            }
            let mut vanished = false;
            for _ in 0..SETTLE_READS {
                tokio::time::sleep(SETTLE).await;
                match Fingerprint::read(&path) {
                    Some(again) if again.content == now.content => break,
                    Some(again) => now = again,
                    None => {
                        vanished = true;
                        break;
                    }
                }
            }
            if vanished {
                continue;
            }
            apply(&path, &now.content, &tx);
            seen = Some(now);
        }
    });
    rx
}

fn apply(path: &Path, content: &[u8], tx: &tokio_watch::Sender<Arc<Config>>) {
    let loaded = std::str::from_utf8(content)
        .map_err(|e| format!("the file is not UTF-8: {e}"))
        .and_then(|text| {
            // An empty file would load as all defaults (every user price and rule gone): far
            // more likely an accident than an intent while running.
            if text.trim().is_empty() {
                return Err("the file is empty".to_owned());
            }
            Config::from_str_with_env(text, &crate::config::ProcessEnv)
                .map_err(|e| e.reasons().join("; "))
        })
        .map_err(Refusal::Invalid);
    let loaded = loaded.and_then(|config| match removal(&tx.borrow(), &config) {
        Some(what) if !config.reload.allow_removal => Err(Refusal::Removal(what)),
        _ => Ok(config),
    });
    let loaded = loaded.map_err(|e| match e {
        Refusal::Removal(what) => {
            ReloadMetrics::get().count("refused");
            warn!(
                path = %path.display(),
                removed = %what,
                "Config reload refused: it removes most of {what}; keeping the current configuration. A file cut short? If intended, set [reload] allow_removal = true in the new file."
            );
            None
        }
        Refusal::Invalid(error) => Some(error),
    });
    match loaded {
        Err(None) => {}
        Ok(config) => {
            tx.send_replace(Arc::new(config));
            ReloadMetrics::get().success();
            info!(path = %path.display(), "Reloaded the configuration.");
        }
        Err(Some(error)) => {
            ReloadMetrics::get().failure();
            warn!(path = %path.display(), %error, "Config reload failed; keeping the current configuration.");
        }
    }
}

enum Refusal {
    Invalid(String),
    Removal(String),
}

/// Entries in the built-in price table (0 when it does not load).
fn builtin_entries() -> usize {
    static N: LazyLock<usize> =
        LazyLock::new(|| crate::llm::price_table::builtin_models().map_or(0, |m| m.len()));
    *N
}

fn price_entries(c: &Config) -> usize {
    c.pricing.models.len()
        + c.pricing.overrides.len()
        + if c.pricing.builtin {
            builtin_entries()
        } else {
            0
        }
}

/// What `new` removes most of (more than half, of at least 2) compared with `old`, e.g.
/// `"alert rules (8 -> 0)"`; `None` when nothing shrinks that much.
fn removal(old: &Config, new: &Config) -> Option<String> {
    let shrunk: Vec<String> = [
        (
            "alert rules",
            old.alerts.rules.len(),
            new.alerts.rules.len(),
        ),
        ("price entries", price_entries(old), price_entries(new)),
        ("exporters", old.exporters.len(), new.exporters.len()),
    ]
    .into_iter()
    .filter(|(_, before, after)| *before >= 2 && after * 2 < *before)
    .map(|(what, before, after)| format!("{what} ({before} -> {after})"))
    .collect();
    (!shrunk.is_empty()).then(|| shrunk.join(", "))
}

/// What the file looked like at the last poll.
struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
    content: Vec<u8>,
}

impl Fingerprint {
    fn read(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        let content = std::fs::read(path).ok()?;
        Some(Self {
            modified: meta.modified().ok(),
            len: meta.len(),
            content,
        })
    }
}

trait MaybeChanged {
    fn may_have_changed(&self, path: &Path, full_compare: bool) -> bool;
}

impl MaybeChanged for Option<Fingerprint> {
    /// Cheap check: metadata only, unless `full_compare`.
    fn may_have_changed(&self, path: &Path, full_compare: bool) -> bool {
        let Some(seen) = self else { return true };
        if full_compare {
            return true;
        }
        match std::fs::metadata(path) {
            Ok(meta) => meta.len() != seen.len || meta.modified().ok() != seen.modified,
            Err(_) => false,
        }
    }
}

async fn next_tick(ticker: Option<&mut tokio::time::Interval>) {
    match ticker {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(unix)]
type Hangups = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Hangups = ();

#[cfg(unix)]
fn hangup_stream() -> Option<Hangups> {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(error) => {
            warn!(%error, "Cannot listen for SIGHUP; config reloads rely on polling only.");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_stream() -> Option<Hangups> {
    None
}

async fn next_hangup(hangups: Option<&mut Hangups>) {
    #[cfg(unix)]
    if let Some(s) = hangups {
        if s.recv().await.is_some() {
            return;
        }
    }
    #[cfg(not(unix))]
    let _ = hangups;
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(price: &str) -> String {
        format!(
            "[reload]\npoll_interval = \"10ms\"\n[pricing]\nbuiltin = false\n\
             [[pricing.models]]\nname = \"m\"\nprovider = \"openai\"\ninput = {price}\noutput = 0.0\n"
        )
    }

    /// The test model's input price (micro-USD per million tokens, as parsed).
    fn price(c: &Config) -> Option<u64> {
        c.pricing.models.first().map(|m| m.input.0)
    }

    fn count(outcome: &str) -> u64 {
        ReloadMetrics::get()
            .reloads
            .with_label_values(&[outcome])
            .get()
    }

    const TWO: Option<u64> = Some(2_000_000);

    // One test: the reload counters are process-wide.
    #[tokio::test]
    async fn half_written_and_empty_files_are_never_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tollgate.toml");
        std::fs::write(&path, cfg("1.0")).unwrap();
        let initial = Config::from_str_with_env(&cfg("1.0"), &crate::config::ProcessEnv).unwrap();
        let mut rx = watch(&path, initial);
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        {
            let seen = seen.clone();
            let mut rx = rx.clone();
            tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    let p = price(&rx.borrow_and_update());
                    seen.lock().push(p);
                }
            });
        }

        // A slow in-place save: first a part of the new file (valid TOML on its own, without
        // the price entry), the rest a moment later. The poll sees the part, but it changes
        // within the settle time, so only the finished file is applied. (The margin for a stalled
        // test thread is the settle time, 250 ms, minus the 20 ms between the writes.)
        let (ok, failed) = (count("success"), count("failure"));
        let full = cfg("2.0");
        let part = &full[..full.find("[[pricing.models]]").unwrap()];
        std::fs::write(&path, part).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        std::fs::write(&path, &full).unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while price(&rx.borrow_and_update()) != TWO {
                rx.changed().await.unwrap();
            }
        })
        .await
        .expect("the new file is loaded");
        assert_eq!(
            *seen.lock(),
            vec![TWO],
            "only the finished file was applied"
        );
        assert_eq!((count("success") - ok, count("failure") - failed), (1, 0));

        // A file left empty is refused and counted; the current config stays.
        std::fs::write(&path, "  \n").unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while count("failure") == failed {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the empty file is refused");
        assert_eq!(price(&rx.borrow()), TWO);
        assert_eq!(*seen.lock(), vec![TWO]);
    }
}
