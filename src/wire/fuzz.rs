//! The differential check behind the fuzz target and the property tests: on any input, the
//! zero-copy path must agree with prost. Panics on any disagreement.

use bytes::Bytes;
use prost::Message;

use super::attr::{push_span_attribute, NewValue};
use super::edit::{rebuild, SpanEdit};
use super::prost_view::ProstSpan;
use super::{scan, AttrValue, SpanAttrs, SpanRef};
use crate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use crate::otlp::common::v1::any_value::Value;
use crate::otlp::common::v1::{AnyValue, KeyValue};

fn render(v: AttrValue<'_>) -> String {
    match v {
        AttrValue::Str(s) => format!("s:{s}"),
        AttrValue::Bool(b) => format!("b:{b}"),
        AttrValue::Int(i) => format!("i:{i}"),
        AttrValue::Double(d) => format!("d:{:x}", d.to_bits()),
        AttrValue::Bytes(b) => format!("x:{b:?}"),
        AttrValue::Array(_) => "array".into(),
        AttrValue::KvList(_) => "kvlist".into(),
        AttrValue::Empty => "empty".into(),
    }
}

fn describe<'a>(s: &impl SpanAttrs<'a>) -> Vec<String> {
    let mut out = vec![
        s.name().to_string(),
        format!(
            "{} {:?} {:?} {:?}",
            s.kind(),
            s.trace_id(),
            s.span_id(),
            s.parent_span_id()
        ),
        format!(
            "{} {} {}",
            s.start_time_unix_nano(),
            s.end_time_unix_nano(),
            s.status_code()
        ),
        s.scope_name().to_string(),
    ];
    s.for_each_attribute(&mut |k, v| out.push(format!("a {k}={}", render(v))));
    s.for_each_resource_attribute(&mut |k, v| out.push(format!("r {k}={}", render(v))));
    out
}

/// Checks `data` both ways. Returns whether it was a valid request.
pub fn check(data: &[u8]) -> bool {
    let buf = Bytes::copy_from_slice(data);
    let ours = scan(&buf);
    let theirs = ExportTraceServiceRequest::decode(data);
    match (&ours, &theirs) {
        (Ok(_), Ok(_)) | (Err(_), Err(_)) => {}
        _ => panic!(
            "scan and prost disagree: scan={:?} prost={:?}",
            ours.as_ref().map(|i| i.spans.len()),
            theirs.as_ref().map(|r| r.resource_spans.len())
        ),
    }
    let (Ok(index), Ok(req)) = (ours, theirs) else {
        return false;
    };

    // Views agree span by span.
    let mut i = 0;
    for rs in &req.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let want = describe(&ProstSpan::new(
                    span,
                    rs.resource.as_ref(),
                    ss.scope.as_ref(),
                ));
                let got = describe(&SpanRef::new(&buf, &index, i));
                assert_eq!(got, want, "span {i} differs");
                i += 1;
            }
        }
    }
    assert_eq!(i, index.spans.len(), "span count differs");

    // Keep-all is the identity.
    assert_eq!(rebuild(&buf, &index, &[], None), buf);

    // Appending an attribute to every other span and dropping every third gives what prost
    // would produce by editing the structs. (Only comparable when no empty scope/resource exists
    // in the input, since the rewrite leaves out containers it emptied but prost keeps them.)
    let edits: Vec<SpanEdit> = (0..index.spans.len())
        .map(|n| {
            if n % 3 == 2 {
                SpanEdit::Drop
            } else if n % 2 == 0 {
                let mut append = Vec::new();
                push_span_attribute(&mut append, "tollgate.fuzz", NewValue::Int(n as i64));
                SpanEdit::Modify {
                    remove: Vec::new(),
                    append,
                }
            } else {
                SpanEdit::Keep
            }
        })
        .collect();
    let out = rebuild(&buf, &index, &edits, None);
    let got = ExportTraceServiceRequest::decode(out.as_ref()).expect("rewrite decodes");
    assert!(scan(&out).is_ok(), "rewrite scans");
    let mut want = req.clone();
    let mut n = 0;
    for rs in &mut want.resource_spans {
        for ss in &mut rs.scope_spans {
            let had = !ss.spans.is_empty();
            let mut kept = Vec::new();
            for mut span in std::mem::take(&mut ss.spans) {
                if n % 3 != 2 {
                    if n % 2 == 0 {
                        span.attributes.push(KeyValue {
                            key: "tollgate.fuzz".into(),
                            value: Some(AnyValue {
                                value: Some(Value::IntValue(n as i64)),
                            }),
                            ..Default::default()
                        });
                    }
                    kept.push(span);
                }
                n += 1;
            }
            ss.spans = kept;
            if had && ss.spans.is_empty() {
                ss.schema_url = "\u{0}dropped".into();
            }
        }
        let had = !rs.scope_spans.is_empty();
        rs.scope_spans.retain(|ss| ss.schema_url != "\u{0}dropped");
        if had && rs.scope_spans.is_empty() {
            rs.schema_url = "\u{0}dropped".into();
        }
    }
    want.resource_spans
        .retain(|rs| rs.schema_url != "\u{0}dropped");
    // Compared encoded: a NaN double is equal to itself as bytes, not as f64.
    if got.encode_to_vec() != want.encode_to_vec() {
        assert_eq!(got, want, "rewrite differs from the struct edit");
    }
    true
}

/// The differential check of the OTLP/JSON path: on any input, the streaming parser
/// ([`json_to_protobuf`](super::json::json_to_protobuf)) must agree with the reference
/// conversion through opentelemetry-proto's structs
/// ([`json_to_protobuf_via_structs`](super::json::json_to_protobuf_via_structs)). Panics on any
/// disagreement:
/// - what the reference accepts, the parser accepts, and both decode (prost) to equal requests;
/// - what only the parser accepts (its documented proto3 JSON extras) is syntactically valid
///   JSON, and its output is a valid request;
/// - every output passes the protobuf differential [`check`] (scan ⇔ prost, views, rewrites) and
///   stays within [`output_bound`](super::json::stream::output_bound).
///
/// Returns whether the parser accepted the input.
pub fn check_json(data: &[u8]) -> bool {
    use super::json::{json_to_protobuf, json_to_protobuf_via_structs, stream::output_bound};
    let ours = json_to_protobuf(data);
    // The reference knows only the lowerCamelCase names; give it those.
    let theirs = json_to_protobuf_via_structs(&camel_case_keys(data));
    match (&ours, &theirs) {
        (Ok(pb), Ok(reference)) => {
            let got = ExportTraceServiceRequest::decode(pb.as_ref())
                .expect("the parser's output decodes");
            let want = ExportTraceServiceRequest::decode(reference.as_ref())
                .expect("the reference's output decodes");
            if got.encode_to_vec() != want.encode_to_vec() {
                let a = format!("{got:?}");
                let b = format!("{want:?}");
                let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
                let from = at.saturating_sub(200);
                panic!(
                    "parser and reference disagree on {:?}\nparser:    …{}\nreference: …{}",
                    lossy(data),
                    &a[from..(at + 200).min(a.len())],
                    &b[from..(at + 200).min(b.len())]
                );
            }
        }
        // serde's derive also reads a struct from an array of its fields in order; OTLP/JSON
        // has no such form, so the parser refuses it.
        (Err(e), Ok(_))
            if e.to_string()
                .contains("invalid type: sequence, expected an OTLP/JSON") => {}
        // JSON text is UTF-8 (RFC 8259 §8.1). serde_json skips the strings of fields it ignores
        // without checking them, so the reference accepts invalid UTF-8 there; the parser
        // refuses any body that is not UTF-8.
        (Err(_), Ok(_)) if std::str::from_utf8(data).is_err() => {}
        (Err(e), Ok(_)) => panic!(
            "the parser refuses ({e}) what the reference accepts: {:?}",
            lossy(data)
        ),
        (Ok(pb), Err(_)) => {
            assert!(
                serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok(),
                "the parser accepts invalid JSON: {:?}",
                lossy(data)
            );
            // sonic-rs allows deeper nesting than serde_json; past prost's recursion limit the
            // output is refused by the scan like any other request prost cannot decode.
            if ExportTraceServiceRequest::decode(pb.as_ref()).is_err() {
                assert!(scan(pb).is_err(), "prost refuses what the scan accepts");
                return true;
            }
        }
        (Err(_), Err(_)) => {}
    }
    let Ok(pb) = ours else {
        return false;
    };
    assert!(
        pb.len() <= output_bound(data.len()),
        "{} bytes of JSON became {} bytes of protobuf, over the bound {}",
        data.len(),
        pb.len(),
        output_bound(data.len())
    );
    assert!(check(&pb), "the parser's output does not scan");
    true
}

/// Field names the streaming parser also accepts in their proto spelling, with their JSON ones.
const PROTO_NAMES: &[(&str, &str)] = &[
    ("resource_spans", "resourceSpans"),
    ("scope_spans", "scopeSpans"),
    ("schema_url", "schemaUrl"),
    ("dropped_attributes_count", "droppedAttributesCount"),
    ("entity_refs", "entityRefs"),
    ("id_keys", "idKeys"),
    ("description_keys", "descriptionKeys"),
    ("trace_id", "traceId"),
    ("span_id", "spanId"),
    ("trace_state", "traceState"),
    ("parent_span_id", "parentSpanId"),
    ("start_time_unix_nano", "startTimeUnixNano"),
    ("end_time_unix_nano", "endTimeUnixNano"),
    ("dropped_events_count", "droppedEventsCount"),
    ("dropped_links_count", "droppedLinksCount"),
    ("time_unix_nano", "timeUnixNano"),
    ("key_strindex", "keyStrindex"),
    ("string_value", "stringValue"),
    ("bool_value", "boolValue"),
    ("int_value", "intValue"),
    ("double_value", "doubleValue"),
    ("array_value", "arrayValue"),
    ("kvlist_value", "kvlistValue"),
    ("bytes_value", "bytesValue"),
];

/// `data` with every `"proto_name":` key spelled `"jsonName":`.
fn camel_case_keys(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut out = std::borrow::Cow::Borrowed(data);
    for (proto, json) in PROTO_NAMES {
        let needle = format!("\"{proto}\"");
        let Some(_) = find(&out, needle.as_bytes()) else {
            continue;
        };
        let mut next = Vec::with_capacity(out.len());
        let mut rest: &[u8] = &out;
        while let Some(at) = find(rest, needle.as_bytes()) {
            let after = &rest[at + needle.len()..];
            let is_key = after
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|&b| b == b':');
            next.extend_from_slice(&rest[..at]);
            if is_key {
                next.extend_from_slice(format!("\"{json}\"").as_bytes());
            } else {
                next.extend_from_slice(needle.as_bytes());
            }
            rest = after;
        }
        next.extend_from_slice(rest);
        out = std::borrow::Cow::Owned(next);
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn lossy(data: &[u8]) -> String {
    let s = String::from_utf8_lossy(data);
    s.chars().take(400).collect()
}
