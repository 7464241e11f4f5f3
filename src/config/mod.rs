//! The config toolkit, a leaf every component may import: [`Secret`], human durations
//! ([`duration`]), `${env:VAR}` expansion ([`expand`]), problems with key path and line
//! ([`Issue`]), generic TOML loading ([`parse_str`]) and the `[log]` section.
//!
//! Each component owns the struct of its own section (`receiver::ReceiversConfig`,
//! `export::ExporterConfig`, …); the whole file ([`crate::app::config::Config`]), its
//! cross-section validation and reload live next to the wiring in `app`.

pub mod duration;
mod env;
mod error;
mod log;
mod parse;
mod secret;

pub use env::{expand, EnvSource, ExpandError, ProcessEnv};
pub use error::{ConfigError, Issue, IssueKind, Location, Result};
pub use log::{init_logging, LogConfig, LogError, LogFormat};
pub use parse::{locate_issues, parse_recovering, parse_str};
pub use secret::Secret;
