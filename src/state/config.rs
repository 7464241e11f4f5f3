//! `[state]`: where the stages' shared state lives.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// `[state]`: the backend of the state store (call claims, task totals, alert markers, firing
/// window alerts, budget totals).
///
/// ```toml
/// [state]
/// backend = "disk"              # "memory" (default: forgotten on restart) or "disk"
/// path = "/var/lib/tollgate/state"   # default: <[storage] dir>/state
/// maintain_interval = "5s"      # fsync of the log, snapshots, expiry of idle entries
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Which store.
    #[serde(default)]
    pub backend: Backend,
    /// The disk store's directory (default `<[storage] dir>/state`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// How often housekeeping runs off the span path: the disk log is fsynced, compacted into a
    /// snapshot when large, and idle tasks and expired claims are forgotten.
    #[serde(
        default = "default_maintain_interval",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub maintain_interval: Duration,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            backend: Backend::default(),
            path: None,
            maintain_interval: default_maintain_interval(),
        }
    }
}

fn default_maintain_interval() -> Duration {
    Duration::from_secs(5)
}

/// A state backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// In memory: fast, forgotten on restart.
    #[default]
    Memory,
    /// A snapshot plus an append-only, checksummed op log in `path`: every applied batch is
    /// written (to the OS) before its answer, so it survives `kill -9`; fsynced every
    /// `maintain_interval`.
    Disk,
}
