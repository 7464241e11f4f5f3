//! Exporters: one bounded queue, batcher and retry loop per destination.

pub mod config;

pub use config::ExporterConfig;
