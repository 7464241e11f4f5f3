//! `[state]`: where the stages' shared state lives.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// `[state]`: the backend of the state store (call claims, task totals, alert markers, firing
/// window alerts, budget totals).
///
/// ```toml
/// [state]
/// backend = "disk"              # "memory" (default: forgotten on restart), "disk" or "redis"
/// path = "/var/lib/tollgate/state"   # disk: default <[storage] dir>/state
/// url = "redis://:${env:REDIS_PASSWORD}@redis:6379/0"   # redis
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
    /// The Redis store's server: `redis://[user:password@]host:port[/db]` (a secret: it may
    /// carry a password).
    #[serde(default)]
    pub url: Option<crate::config::Secret>,
    /// Prefix of every Redis key.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Redis connections kept open.
    #[serde(default = "default_pool")]
    pub pool: usize,
    /// Longest wait for Redis on the span path (per batch); past it the stage carries on
    /// without the answer and counts it.
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub timeout: Duration,
    /// Longest wait to connect to Redis.
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "crate::config::duration::positive"
    )]
    pub connect_timeout: Duration,
    /// Most task and budget updates kept in memory for replay while Redis is unreachable
    /// (about 300 bytes each); past it further updates are lost, counted.
    #[serde(default = "default_replay_max_ops")]
    pub replay_max_ops: usize,
}

fn default_replay_max_ops() -> usize {
    100_000
}

fn default_key_prefix() -> String {
    "tollgate:".into()
}
fn default_pool() -> usize {
    8
}
fn default_timeout() -> Duration {
    Duration::from_millis(200)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(1)
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            backend: Backend::default(),
            path: None,
            maintain_interval: default_maintain_interval(),
            url: None,
            key_prefix: default_key_prefix(),
            pool: default_pool(),
            timeout: default_timeout(),
            connect_timeout: default_connect_timeout(),
            replay_max_ops: default_replay_max_ops(),
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
    /// Redis or Valkey at `url`, shared by every replica (see `state::RedisStore`).
    Redis,
}
