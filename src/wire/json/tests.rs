use prost::Message;
use serde_json::json;

use super::*;
use crate::otlp::common::v1::any_value::Value as V;
use crate::otlp::trace::v1::Span;

fn parse(v: serde_json::Value) -> Result<ExportTraceServiceRequest, JsonError> {
    let pb = json_to_protobuf(v.to_string().as_bytes())?;
    Ok(ExportTraceServiceRequest::decode(pb).unwrap())
}

fn one_span(span: serde_json::Value) -> serde_json::Value {
    json!({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
}

fn first_span(req: &ExportTraceServiceRequest) -> &Span {
    &req.resource_spans[0].scope_spans[0].spans[0]
}

const TRACE: &str = "5b8efff798038103d269b633813fc60c";
const SPAN: &str = "eee19b7ec3c1b174";

#[test]
fn empty_object_is_an_empty_request() {
    assert_eq!(json_to_protobuf(b"{}").unwrap(), Bytes::new());
}

#[test]
fn ids_are_case_insensitive_hex() {
    let req = parse(one_span(json!({
        "traceId": TRACE.to_uppercase(), "spanId": "EeE19b7ec3C1B174", "parentSpanId": SPAN
    })))
    .unwrap();
    let span = first_span(&req);
    assert_eq!(span.trace_id, hex::decode(TRACE).unwrap());
    assert_eq!(span.span_id, hex::decode(SPAN).unwrap());
    assert_eq!(span.parent_span_id, hex::decode(SPAN).unwrap());
}

#[test]
fn wrong_length_ids_survive_for_the_pipeline_to_drop() {
    // Even length: bytes of that length.
    let req = parse(one_span(json!({"traceId": "abcd", "spanId": SPAN}))).unwrap();
    assert_eq!(first_span(&req).trace_id, vec![0xab, 0xcd]);
    // Odd length: the characters themselves, an odd (never valid) length.
    let odd = &TRACE[..31];
    let req = parse(one_span(json!({"traceId": odd, "spanId": "abc"}))).unwrap();
    assert_eq!(first_span(&req).trace_id, odd.as_bytes());
    assert_eq!(first_span(&req).span_id, b"abc");
    assert_eq!(first_span(&req).trace_id.len(), 31);
    // In links too.
    let req = parse(one_span(
        json!({"links": [{"traceId": "a", "spanId": SPAN}]}),
    ))
    .unwrap();
    assert_eq!(first_span(&req).links[0].trace_id, b"a");
}

#[test]
fn non_hex_ids_are_invalid() {
    let err = parse(one_span(
        json!({"traceId": "zz8efff798038103d269b633813fc60c"}),
    ))
    .unwrap_err();
    assert!(err.to_string().contains("traceId"), "{err}");
    let err = parse(one_span(json!({"spanId": "eee19b7ec3c1b17g"}))).unwrap_err();
    assert!(err.to_string().contains("spanId"), "{err}");
}

#[test]
fn int64_as_string_or_number() {
    let req = parse(one_span(json!({
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": 1700000000000000001u64,
        "attributes": [
            {"key": "a", "value": {"intValue": "42"}},
            {"key": "b", "value": {"intValue": -7}}
        ],
        "events": [{"timeUnixNano": "5", "name": "e"}],
        "droppedAttributesCount": "3"
    })))
    .unwrap();
    let span = first_span(&req);
    assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(span.end_time_unix_nano, 1_700_000_000_000_000_001);
    assert_eq!(
        span.attributes[0].value.as_ref().unwrap().value,
        Some(V::IntValue(42))
    );
    assert_eq!(
        span.attributes[1].value.as_ref().unwrap().value,
        Some(V::IntValue(-7))
    );
    assert_eq!(span.events[0].time_unix_nano, 5);
    assert_eq!(span.dropped_attributes_count, 3);
}

#[test]
fn enums_as_integers_or_names() {
    let req = parse(one_span(
        json!({"kind": 3, "status": {"code": 2, "message": "x"}}),
    ))
    .unwrap();
    assert_eq!(first_span(&req).kind, 3);
    assert_eq!(first_span(&req).status.as_ref().unwrap().code, 2);
    let req = parse(one_span(
        json!({"kind": "SPAN_KIND_SERVER", "status": {"code": "STATUS_CODE_ERROR"}}),
    ))
    .unwrap();
    assert_eq!(first_span(&req).kind, 2);
    assert_eq!(first_span(&req).status.as_ref().unwrap().code, 2);
}

#[test]
fn unknown_fields_are_ignored_at_every_level() {
    let req = parse(json!({
        "x": 1,
        "resourceSpans": [{
            "x": {"y": [1, 2]},
            "resource": {"x": 1, "attributes": [{"key": "service.name", "x": 1, "value": {"stringValue": "svc", "x": 2}}]},
            "scopeSpans": [{
                "x": 1,
                "scope": {"name": "lib", "x": "y"},
                "spans": [{
                    "x": 1,
                    "traceId": TRACE, "spanId": SPAN, "name": "op",
                    "attributes": [{"key": "arr", "value": {"arrayValue": {"x": 1, "values": [{"boolValue": true, "x": 1}]}}},
                                   {"key": "kv", "value": {"kvlistValue": {"x": 1, "values": [{"key": "k", "value": {"doubleValue": 1.5}}]}}}],
                    "events": [{"name": "e", "x": 1}],
                    "links": [{"traceId": TRACE, "spanId": SPAN, "x": 1}],
                    "status": {"code": 1, "x": 1}
                }]
            }]
        }]
    }))
    .unwrap();
    let rs = &req.resource_spans[0];
    assert_eq!(
        rs.resource.as_ref().unwrap().attributes[0]
            .value
            .as_ref()
            .unwrap()
            .value,
        Some(V::StringValue("svc".into()))
    );
    let span = first_span(&req);
    assert_eq!(span.name, "op");
    assert_eq!(span.events[0].name, "e");
    assert_eq!(span.links.len(), 1);
    assert_eq!(span.status.as_ref().unwrap().code, 1);
    let Some(V::ArrayValue(arr)) = &span.attributes[0].value.as_ref().unwrap().value else {
        panic!("array expected");
    };
    assert_eq!(arr.values[0].value, Some(V::BoolValue(true)));
    let Some(V::KvlistValue(kv)) = &span.attributes[1].value.as_ref().unwrap().value else {
        panic!("kvlist expected");
    };
    assert_eq!(
        kv.values[0].value.as_ref().unwrap().value,
        Some(V::DoubleValue(1.5))
    );
}

#[test]
fn nulls_and_missing_members_are_defaults() {
    let req = parse(one_span(json!({
        "name": null, "traceId": TRACE, "status": null,
        "attributes": [{"value": {"arrayValue": {}}}, {"key": "k", "value": null}]
    })))
    .unwrap();
    let span = first_span(&req);
    assert_eq!(span.name, "");
    assert_eq!(span.attributes[0].key, "");
    assert_eq!(span.attributes[1].value, None);
}

#[test]
fn bytes_values_are_base64() {
    let req = parse(one_span(json!({
        "attributes": [{"key": "b", "value": {"bytesValue": "AQID"}}]
    })))
    .unwrap();
    assert_eq!(
        first_span(&req).attributes[0].value.as_ref().unwrap().value,
        Some(V::BytesValue(vec![1, 2, 3]))
    );
    assert!(parse(one_span(
        json!({"attributes": [{"key": "b", "value": {"bytesValue": "!!"}}]})
    ))
    .is_err());
}

#[test]
fn syntax_and_type_errors_are_precise() {
    let err = json_to_protobuf(b"{\"resourceSpans\": [").unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    let err = json_to_protobuf(b"[1]").unwrap_err();
    assert!(err.to_string().contains("object"), "{err}");
    let err = parse(one_span(json!({"startTimeUnixNano": "soon"}))).unwrap_err();
    assert!(err.to_string().contains("startTimeUnixNano"), "{err}");
}

#[test]
fn protobuf_round_trips_through_json() {
    let req = parse(one_span(json!({
        "traceId": TRACE, "spanId": SPAN, "name": "op", "kind": 3,
        "startTimeUnixNano": "1", "endTimeUnixNano": "2",
        "attributes": [{"key": "n", "value": {"intValue": "9"}}]
    })))
    .unwrap();
    let pb = req.encode_to_vec();
    let json = protobuf_to_json(&pb).unwrap();
    assert_eq!(json_to_protobuf(&json).unwrap(), pb);
}
