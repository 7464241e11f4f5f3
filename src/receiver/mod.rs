//! OTLP receivers: gRPC (tonic) and HTTP (axum), both handing raw protobuf bytes to the pipeline.

pub mod config;

pub use config::ReceiversConfig;
