//! OTLP/JSON ↔ protobuf for the receivers and exporters that speak JSON (the slow path: JSON is
//! decoded into structs; the protobuf path never is).

use bytes::Bytes;
use prost::Message;

use crate::otlp::collector::trace::v1::ExportTraceServiceRequest;

/// Why a JSON body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// Not valid OTLP/JSON.
    #[error("invalid OTLP/JSON: {0}")]
    Invalid(String),
    /// The protobuf to convert was not valid (cannot happen after a scan).
    #[error("invalid protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
}

/// Parses an OTLP/JSON `ExportTraceServiceRequest` and returns its protobuf encoding.
pub fn json_to_protobuf(json: &[u8]) -> Result<Bytes, JsonError> {
    let req: ExportTraceServiceRequest =
        serde_json::from_slice(json).map_err(|e| JsonError::Invalid(e.to_string()))?;
    Ok(Bytes::from(req.encode_to_vec()))
}

/// Renders an encoded `ExportTraceServiceRequest` as OTLP/JSON.
pub fn protobuf_to_json(pb: &[u8]) -> Result<Vec<u8>, JsonError> {
    let req = ExportTraceServiceRequest::decode(pb)?;
    serde_json::to_vec(&req).map_err(|e| JsonError::Invalid(e.to_string()))
}
