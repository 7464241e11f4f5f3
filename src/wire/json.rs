//! OTLP/JSON ↔ protobuf for the receivers and exporters that speak JSON.
//!
//! [`json_to_protobuf`] is the receivers' path: one streaming pass from JSON to protobuf bytes
//! ([`stream`]), no structs, no tree, nothing allocated per value. Rendering protobuf as JSON
//! (exporters that speak JSON) goes through opentelemetry-proto's structs and serde.
//!
//! [`json_to_protobuf_via_structs`] is the reference the streaming parser is checked against
//! (`wire::fuzz::check_json`, `tests/wire_fuzz.rs`): opentelemetry-proto's serde support first;
//! when that refuses a body, the body is read again as a `serde_json::Value`, normalised to what
//! that support expects, and decoded once more; only if that fails too is the body invalid. Both
//! accept what the OTLP/JSON rules allow but the serde derive alone does not:
//! - `null` for any field (proto3 JSON: the default value);
//! - unknown keys inside `AnyValue` objects;
//! - `KeyValue` without `key`, `arrayValue`/`kvlistValue` without `values`;
//! - enum names (`"SPAN_KIND_SERVER"`, `"STATUS_CODE_ERROR"`) and numeric strings for integer
//!   fields;
//! - trace/span ids of odd hex length. An id of the wrong length is not a JSON error: the
//!   pipeline drops such spans and reports a partial success. An even-length hex id decodes to
//!   bytes of that length; an odd-length one becomes its ASCII characters as bytes (an odd
//!   length, so never a valid 8- or 16-byte id). Non-hex characters are invalid input.
//!
//! The streaming parser accepts a little more than the reference, all of it proto3 JSON: proto
//! field names (`trace_id`), `doubleValue` as `"NaN"`/`"Infinity"`/`"-Infinity"` or a numeric
//! string, URL-safe or unpadded base64, negative numeric strings for enums; and, where the
//! reference refuses a key given twice in one object, it keeps protobuf's merge rules (the last
//! scalar wins, repeated fields add up).

pub mod stream;

use bytes::Bytes;
use prost::Message;
use serde_json::{Map, Value};

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

/// Working memory per structural token, for [`parse_memory_bound`]: `(open brace, open bracket,
/// comma, colon)`. Calibrated against the parser by `tests/json_memory_bound.rs` (a counting
/// allocator over hostile shapes); an object may become the largest OTLP struct (a `Span`) in a
/// doubling `Vec`, and the fallback path holds a `serde_json::Value` tree and the structs at once.
const PER_TOKEN: (usize, usize, usize, usize) =
    (TOKEN_BRACE, TOKEN_BRACKET, TOKEN_COMMA, TOKEN_COLON);
const TOKEN_BRACE: usize = 760;
const TOKEN_BRACKET: usize = 32;
const TOKEN_COMMA: usize = 112;
const TOKEN_COLON: usize = 24;
/// Fixed working memory of one parse (scratch buffers, the error path).
const PARSE_BASE: usize = 16 << 10;

/// The most memory [`json_to_protobuf`] can hold while parsing `json`, output included: what the
/// HTTP receiver reserves from the memory budget before it parses. Counted from the body's
/// structural bytes (one pass, no allocation), so a dense hostile body (`[1,1,1,...]`, `{},{},...`)
/// is charged for the tree it would build. A parser that writes protobuf as it reads (holding no
/// tree) would make this about `json.len()`.
pub fn parse_memory_bound(json: &[u8]) -> usize {
    let (mut braces, mut brackets, mut commas, mut colons) = (0usize, 0usize, 0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => braces += 1,
            b'[' => brackets += 1,
            b',' => commas += 1,
            b':' => colons += 1,
            _ => {}
        }
    }
    let (brace, bracket, comma, colon) = PER_TOKEN;
    json.len()
        .saturating_mul(3)
        .saturating_add(PARSE_BASE)
        .saturating_add(braces.saturating_mul(brace))
        .saturating_add(brackets.saturating_mul(bracket))
        .saturating_add(commas.saturating_mul(comma))
        .saturating_add(colons.saturating_mul(colon))
}

/// Parses an OTLP/JSON `ExportTraceServiceRequest` and returns its protobuf encoding, in one
/// streaming pass (see [`stream`]; the output is at most [`stream::output_bound`] bytes).
pub fn json_to_protobuf(json: &[u8]) -> Result<Bytes, JsonError> {
    stream::convert(json).map(Bytes::from).map_err(|e| {
        // sonic-rs adds lines quoting the input around the error; keep the message and position.
        let message = e.to_string();
        JsonError::Invalid(message.lines().next().unwrap_or_default().to_string())
    })
}

/// The reference conversion through opentelemetry-proto's structs (see the module docs); what
/// [`json_to_protobuf`] is checked against.
pub fn json_to_protobuf_via_structs(json: &[u8]) -> Result<Bytes, JsonError> {
    let req = match serde_json::from_slice::<ExportTraceServiceRequest>(json) {
        Ok(req) => req,
        Err(_) => parse_normalised(json)?,
    };
    Ok(Bytes::from(req.encode_to_vec()))
}

/// Renders an encoded `ExportTraceServiceRequest` as OTLP/JSON.
pub fn protobuf_to_json(pb: &[u8]) -> Result<Vec<u8>, JsonError> {
    let req = ExportTraceServiceRequest::decode(pb)?;
    serde_json::to_vec(&req).map_err(|e| JsonError::Invalid(e.to_string()))
}

/// The fallback: normalise a `Value`, then decode it, reporting where decoding failed.
fn parse_normalised(json: &[u8]) -> Result<ExportTraceServiceRequest, JsonError> {
    let mut value: Value =
        serde_json::from_slice(json).map_err(|e| JsonError::Invalid(e.to_string()))?;
    let Value::Object(root) = &mut value else {
        return Err(JsonError::Invalid(
            "the body must be a JSON object".to_string(),
        ));
    };
    request(root)?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        JsonError::Invalid(format!("at {path}: {}", e.into_inner()))
    })
}

type Result<T = (), E = JsonError> = std::result::Result<T, E>;

/// Drops `null` members (proto3 JSON: same as absent) and returns the object.
fn strip_nulls(obj: &mut Map<String, Value>) -> &mut Map<String, Value> {
    obj.retain(|_, v| !v.is_null());
    obj
}

/// Applies `f` to every object in the array under `key`, if any.
fn each(
    obj: &mut Map<String, Value>,
    key: &str,
    mut f: impl FnMut(&mut Map<String, Value>) -> Result,
) -> Result {
    if let Some(Value::Array(items)) = obj.get_mut(key) {
        for item in items {
            if let Value::Object(o) = item {
                f(strip_nulls(o))?;
            }
        }
    }
    Ok(())
}

/// Applies `f` to the object under `key`, if any.
fn child(
    obj: &mut Map<String, Value>,
    key: &str,
    f: impl FnOnce(&mut Map<String, Value>) -> Result,
) -> Result {
    if let Some(Value::Object(o)) = obj.get_mut(key) {
        f(strip_nulls(o))?;
    }
    Ok(())
}

fn request(obj: &mut Map<String, Value>) -> Result {
    strip_nulls(obj);
    each(obj, "resourceSpans", |rs| {
        child(rs, "resource", |r| {
            integers(r, &["droppedAttributesCount"]);
            each(r, "attributes", key_value)
        })?;
        each(rs, "scopeSpans", |ss| {
            child(ss, "scope", |s| {
                integers(s, &["droppedAttributesCount"]);
                each(s, "attributes", key_value)
            })?;
            each(ss, "spans", span)
        })
    })
}

fn span(span: &mut Map<String, Value>) -> Result {
    ids(span, &["traceId", "spanId", "parentSpanId"])?;
    enumeration(span, "kind", SPAN_KINDS);
    integers(
        span,
        &[
            "flags",
            "droppedAttributesCount",
            "droppedEventsCount",
            "droppedLinksCount",
        ],
    );
    each(span, "attributes", key_value)?;
    each(span, "events", |event| {
        integers(event, &["droppedAttributesCount"]);
        each(event, "attributes", key_value)
    })?;
    each(span, "links", |link| {
        ids(link, &["traceId", "spanId"])?;
        integers(link, &["flags", "droppedAttributesCount"]);
        each(link, "attributes", key_value)
    })?;
    child(span, "status", |status| {
        enumeration(status, "code", STATUS_CODES);
        Ok(())
    })
}

const SPAN_KINDS: &[&str] = &[
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];
const STATUS_CODES: &[&str] = &["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];

/// Replaces an enum given by name (or as a numeric string) with its number.
fn enumeration(obj: &mut Map<String, Value>, key: &str, names: &[&str]) {
    if let Some(Value::String(s)) = obj.get(key) {
        let number = names
            .iter()
            .position(|n| n == s)
            .map(|i| i as u64)
            .or_else(|| s.trim().parse::<u64>().ok());
        if let Some(n) = number {
            obj.insert(key.to_string(), Value::from(n));
        }
    }
}

/// Replaces numeric strings with numbers for integer fields the derive reads as numbers only.
fn integers(obj: &mut Map<String, Value>, keys: &[&str]) {
    for key in keys {
        if let Some(Value::String(s)) = obj.get(*key) {
            if let Ok(n) = s.trim().parse::<u64>() {
                obj.insert((*key).to_string(), Value::from(n));
            }
        }
    }
}

/// Makes every id decodable as hex (see the module docs); non-hex characters are an error.
fn ids(obj: &mut Map<String, Value>, keys: &[&str]) -> Result {
    for key in keys {
        let Some(Value::String(s)) = obj.get_mut(*key) else {
            continue;
        };
        if let Some(bad) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(JsonError::Invalid(format!(
                "{key} {s:?} is not a hex string (found {bad:?})"
            )));
        }
        if s.len() % 2 == 1 {
            *s = hex::encode(s.as_bytes());
        }
    }
    Ok(())
}

/// The `AnyValue` members opentelemetry-proto reads; others are ignored per OTLP/JSON.
const ANY_VALUE_KEYS: &[&str] = &[
    "stringValue",
    "boolValue",
    "intValue",
    "doubleValue",
    "arrayValue",
    "kvlistValue",
    "bytesValue",
];

fn key_value(kv: &mut Map<String, Value>) -> Result {
    kv.entry("key").or_insert_with(|| Value::from(""));
    child(kv, "value", any_value)
}

fn any_value(value: &mut Map<String, Value>) -> Result {
    value.retain(|k, _| ANY_VALUE_KEYS.contains(&k.as_str()));
    child(value, "arrayValue", |array| {
        array.retain(|k, _| k == "values");
        array
            .entry("values")
            .or_insert_with(|| Value::Array(Vec::new()));
        each(array, "values", any_value)
    })?;
    child(value, "kvlistValue", |list| {
        list.retain(|k, _| k == "values");
        list.entry("values")
            .or_insert_with(|| Value::Array(Vec::new()));
        each(list, "values", key_value)
    })
}

#[cfg(test)]
mod tests;
