//! Where tollgate keeps what must survive a restart: `[storage]` and the paths derived from it.

use std::path::PathBuf;

/// `[storage]`: tollgate's data directory.
///
/// ```toml
/// [storage]
/// dir = "/var/lib/tollgate"   # default disk queue paths: <dir>/queues/<exporter name>
/// ```
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// The data directory; nothing is written there unless a feature that persists is enabled.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

impl StorageConfig {
    /// The default directory of exporter `name`'s disk queue, when `dir` is set.
    pub fn queue_dir(&self, name: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("queues").join(name))
    }
}
