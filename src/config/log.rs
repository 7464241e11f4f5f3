//! `[log]`: tollgate's own logs, written to stderr as text or JSON lines.

use std::io::IsTerminal;

use serde::Deserialize;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use super::Issue;

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter: a level (`error`, `warn`, `info`, `debug`, `trace`) or directives such as
    /// `"info,tollgate::export=debug"`. A non-empty `RUST_LOG` environment variable overrides it.
    #[serde(default = "default_level")]
    pub level: String,
    /// `text` for people, `json` (one object a line) for log collectors.
    #[serde(default)]
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

fn default_level() -> String {
    "info".into()
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: default_level(),
            format: LogFormat::default(),
        }
    }
}

impl LogConfig {
    /// The filter to use: `rust_log` (the `RUST_LOG` value) when non-empty, else `level`.
    pub fn filter(&self, rust_log: Option<&str>) -> Result<EnvFilter, LogError> {
        let (source, directives) = match rust_log.map(str::trim) {
            Some(env) if !env.is_empty() => ("RUST_LOG", env),
            _ => ("log.level", self.level.as_str()),
        };
        EnvFilter::try_new(directives).map_err(|e| LogError::Filter {
            source_name: source,
            directives: directives.to_owned(),
            reason: e.to_string(),
        })
    }

    pub(crate) fn validate(&self) -> Vec<Issue> {
        match self.filter(None) {
            Ok(_) => Vec::new(),
            Err(e) => vec![Issue::invalid("log.level", e.to_string())],
        }
    }
}

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The level or `RUST_LOG` is not a valid filter.
    #[error("{source_name} `{directives}` is not a valid log filter: {reason}")]
    Filter {
        /// `log.level` or `RUST_LOG`.
        source_name: &'static str,
        /// The filter text.
        directives: String,
        /// What the parser said.
        reason: String,
    },
    /// A global subscriber was already installed.
    #[error("logging is already initialised: {0}")]
    AlreadyInitialised(String),
}

/// Installs the global `tracing` subscriber: stderr, filtered by `RUST_LOG` or `[log] level`.
pub fn init_logging(config: &LogConfig) -> Result<(), LogError> {
    let rust_log = std::env::var(EnvFilter::DEFAULT_ENV).ok();
    let ansi = std::io::stderr().is_terminal();
    let subscriber = subscriber(config, rust_log.as_deref(), ansi, std::io::stderr)?;
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| LogError::AlreadyInitialised(e.to_string()))
}

/// The subscriber [`init_logging`] installs, writing to `writer` (tests pass a buffer).
pub(crate) fn subscriber<W>(
    config: &LogConfig,
    rust_log: Option<&str>,
    ansi: bool,
    writer: W,
) -> Result<Box<dyn tracing::Subscriber + Send + Sync>, LogError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = config.filter(rust_log)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    Ok(match config.format {
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
        LogFormat::Json => Box::new(builder.json().flatten_event(true).finish()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_overrides_level_unless_empty() {
        let config = LogConfig {
            level: "not a [valid filter".into(),
            format: LogFormat::Text,
        };
        assert!(config.filter(Some("debug")).is_ok());
        let err = config.filter(Some("  ")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("log.level `not a [valid filter`"),
            "{err}"
        );
    }

    #[test]
    fn bad_level_is_a_validation_issue() {
        let config = LogConfig {
            level: "loud[".into(),
            ..LogConfig::default()
        };
        assert_eq!(config.validate()[0].path, "log.level");
        assert!(LogConfig::default().validate().is_empty());
    }

    /// A writer that keeps everything written, for reading back in tests.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Buffer {
            self.clone()
        }
    }

    fn capture(config: &LogConfig, rust_log: Option<&str>) -> String {
        let buffer = Buffer::default();
        let subscriber = subscriber(config, rust_log, false, buffer.clone()).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(detail = 1, "Debug detail.");
            tracing::info!(exporter = "tempo", "Export succeeded.");
        });
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn json_format_writes_one_object_per_line_with_flattened_fields() {
        let config = LogConfig {
            format: LogFormat::Json,
            ..LogConfig::default()
        };
        let out = capture(&config, None);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "info filters out debug: {out}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "Export succeeded.");
        assert_eq!(line["exporter"], "tempo");
    }

    #[test]
    fn text_format_and_rust_log_override() {
        let out = capture(&LogConfig::default(), Some("debug"));
        assert!(out.contains("Debug detail."), "{out}");
        assert!(
            out.contains("Export succeeded.") && out.contains("exporter=\"tempo\""),
            "{out}"
        );
        assert!(!out.contains('{'), "text, not JSON: {out}");
    }

    #[test]
    fn format_parses_lowercase_names_only() {
        let c: LogConfig = toml::from_str("format = \"json\"").unwrap();
        assert_eq!(c.format, LogFormat::Json);
        assert!(toml::from_str::<LogConfig>("format = \"yaml\"").is_err());
    }
}
