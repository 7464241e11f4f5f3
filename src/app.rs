//! Process wiring: builds every component from the config, runs them, drains on shutdown.

use std::path::PathBuf;

use crate::config::Config;

/// Runs tollgate until SIGTERM/SIGINT, then drains. `config_path` is watched for reloads.
pub async fn run(config: Config, config_path: PathBuf) -> anyhow::Result<()> {
    let _ = (config, config_path);
    anyhow::bail!("not wired yet")
}
