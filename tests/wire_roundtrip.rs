//! The zero-copy wire layer against prost: views agree, rewrites are byte-exact where untouched.

mod common;

use bytes::Bytes;
use prost::Message;
use tollgate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tollgate::otlp::common::v1::any_value::Value;
use tollgate::wire::attr::{push_span_attribute, push_span_event, NewValue};
use tollgate::wire::batch::{concat, split};
use tollgate::wire::edit::{rebuild, SpanEdit};
use tollgate::wire::prost_view::ProstSpan;
use tollgate::wire::{scan, AttrValue, SpanAttrs, SpanRef};

fn encoded(req: &ExportTraceServiceRequest) -> Bytes {
    Bytes::from(req.encode_to_vec())
}

#[test]
fn views_agree_with_prost_for_every_span() {
    let req = common::rich_request(3);
    let buf = encoded(&req);
    let index = scan(&buf).expect("valid");
    assert_eq!(index.resources.len(), 2);
    assert_eq!(index.scopes.len(), 3);
    assert_eq!(index.spans.len(), 9);
    let mut i = 0;
    for rs in &req.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let want = ProstSpan::new(span, rs.resource.as_ref(), ss.scope.as_ref());
                let got = SpanRef::new(&buf, &index, i);
                assert_eq!(got.name(), want.name());
                assert_eq!(got.kind(), want.kind());
                assert_eq!(got.trace_id(), want.trace_id());
                assert_eq!(got.span_id(), want.span_id());
                assert_eq!(got.parent_span_id(), want.parent_span_id());
                assert_eq!(got.start_time_unix_nano(), want.start_time_unix_nano());
                assert_eq!(got.end_time_unix_nano(), want.end_time_unix_nano());
                assert_eq!(got.status_code(), want.status_code());
                assert_eq!(got.scope_name(), want.scope_name());
                let mut a = Vec::new();
                got.for_each_attribute(&mut |k, v| a.push((k.to_string(), scalar(v))));
                let mut b = Vec::new();
                want.for_each_attribute(&mut |k, v| b.push((k.to_string(), scalar(v))));
                assert_eq!(a, b);
                let mut ra = Vec::new();
                got.for_each_resource_attribute(&mut |k, v| ra.push((k.to_string(), scalar(v))));
                let mut rb = Vec::new();
                want.for_each_resource_attribute(&mut |k, v| rb.push((k.to_string(), scalar(v))));
                assert_eq!(ra, rb);
                i += 1;
            }
        }
    }
    // Nested values read back through the zero-copy view.
    let span = SpanRef::new(&buf, &index, 0);
    match span.attribute("arr") {
        Some(AttrValue::Array(arr)) => {
            let mut items = Vec::new();
            arr.for_each(|v| items.push(scalar(v)));
            assert_eq!(
                items,
                vec!["s:a".to_string(), "i:-5".into(), "empty".into()]
            );
        }
        other => panic!("expected array, got {other:?}"),
    }
    match span.attribute("map") {
        Some(AttrValue::KvList(m)) => {
            let mut items = Vec::new();
            m.for_each(|k, v| items.push(format!("{k}={}", scalar(v))));
            assert_eq!(items, vec!["inner=s:x".to_string(), "n=i:1".into()]);
        }
        other => panic!("expected kvlist, got {other:?}"),
    }
}

/// A comparable rendering of scalar values (nested ones are compared elsewhere).
fn scalar(v: AttrValue<'_>) -> String {
    match v {
        AttrValue::Str(s) => format!("s:{s}"),
        AttrValue::Bool(b) => format!("b:{b}"),
        AttrValue::Int(i) => format!("i:{i}"),
        AttrValue::Double(d) => format!("d:{d}"),
        AttrValue::Bytes(b) => format!("x:{b:?}"),
        AttrValue::Array(_) => "array".into(),
        AttrValue::KvList(_) => "kvlist".into(),
        AttrValue::Empty => "empty".into(),
    }
}

#[test]
fn keep_all_is_byte_identical() {
    let buf = encoded(&common::rich_request(2));
    let index = scan(&buf).unwrap();
    let out = rebuild(&buf, &index, &[], None);
    assert_eq!(out, buf);
    let all_keep = vec![SpanEdit::Keep; index.spans.len()];
    assert_eq!(rebuild(&buf, &index, &all_keep, None), buf);
}

#[test]
fn modify_appends_and_removes_only_where_asked() {
    let req = common::rich_request(2);
    let buf = encoded(&req);
    let index = scan(&buf).unwrap();
    let mut edits = vec![SpanEdit::Keep; index.spans.len()];

    // Span 1: append two attributes and an event, remove its "ratio" attribute.
    let span = SpanRef::new(&buf, &index, 1);
    let mut remove = Vec::new();
    span.for_each_attribute_field(&mut |k, _, range| {
        if k == "ratio" {
            remove.push(range);
        }
    });
    assert_eq!(remove.len(), 1);
    let mut append = Vec::new();
    push_span_attribute(&mut append, "llm.cost.total", NewValue::Double(0.0123));
    push_span_attribute(
        &mut append,
        "tollgate.pricing.status",
        NewValue::Str("priced"),
    );
    push_span_event(
        &mut append,
        42,
        "tollgate.alert",
        &[
            ("rule", NewValue::Str("r")),
            ("value", NewValue::Double(0.6)),
        ],
    );
    edits[1] = SpanEdit::Modify { remove, append };
    // Span 4 (second resource's scope? no: first resource, second scope): dropped.
    edits[3] = SpanEdit::Drop;

    let out = rebuild(&buf, &index, &edits, None);
    let got = ExportTraceServiceRequest::decode(out.as_ref()).expect("output decodes");

    let mut want = req.clone();
    {
        let span = &mut want.resource_spans[0].scope_spans[0].spans[1];
        span.attributes.retain(|kv| kv.key != "ratio");
        span.attributes
            .push(common::kv("llm.cost.total", Value::DoubleValue(0.0123)));
        span.attributes
            .push(common::kv("tollgate.pricing.status", common::s("priced")));
        span.events.push(tollgate::otlp::trace::v1::span::Event {
            time_unix_nano: 42,
            name: "tollgate.alert".into(),
            attributes: vec![
                common::kv("rule", common::s("r")),
                common::kv("value", Value::DoubleValue(0.6)),
            ],
            dropped_attributes_count: 0,
        });
        want.resource_spans[0].scope_spans[1].spans.remove(1);
    }
    assert_eq!(got, want);
    // And the output is itself valid for the scanner, with the expected number of spans.
    assert_eq!(scan(&out).unwrap().spans.len(), index.spans.len() - 1);
}

#[test]
fn dropping_every_span_of_a_scope_or_resource_removes_it() {
    let req = common::rich_request(1);
    let buf = encoded(&req);
    let index = scan(&buf).unwrap();
    // Spans: [r0s0, r0s1, r1s0]. Drop the second resource's only span.
    let edits = vec![SpanEdit::Keep, SpanEdit::Drop, SpanEdit::Drop];
    let out = rebuild(&buf, &index, &edits, None);
    let got = ExportTraceServiceRequest::decode(out.as_ref()).unwrap();
    assert_eq!(got.resource_spans.len(), 1);
    assert_eq!(got.resource_spans[0].scope_spans.len(), 1);
    assert_eq!(
        got.resource_spans[0].scope_spans[0].spans,
        req.resource_spans[0].scope_spans[0].spans
    );
    // Everything dropped: an empty request.
    let out = rebuild(
        &buf,
        &index,
        &[SpanEdit::Drop, SpanEdit::Drop, SpanEdit::Drop],
        None,
    );
    assert!(out.is_empty());
}

#[test]
fn concatenation_is_batching() {
    let a = common::rich_request(1);
    let b = common::rich_request(2);
    let joined = concat(&[encoded(&a), encoded(&b)]);
    let got = ExportTraceServiceRequest::decode(joined.as_ref()).unwrap();
    let mut want = a.clone();
    want.resource_spans.extend(b.resource_spans);
    assert_eq!(got, want);
}

#[test]
fn split_keeps_every_span_once_and_respects_the_limit() {
    let req = common::rich_request(40); // 120 spans, ~40 KB
    let buf = encoded(&req);
    let index = scan(&buf).unwrap();
    for max in [buf.len(), 20_000, 5_000, 1_500] {
        let parts = split(&buf, &index, max);
        let mut names = Vec::new();
        for p in &parts {
            assert!(p.len() <= max, "part of {} bytes over {max}", p.len());
            let decoded = ExportTraceServiceRequest::decode(p.as_ref()).unwrap();
            for rs in decoded.resource_spans {
                for ss in rs.scope_spans {
                    names.extend(ss.spans.into_iter().map(|s| s.name));
                }
            }
        }
        let mut want: Vec<String> = req
            .resource_spans
            .iter()
            .flat_map(|r| r.scope_spans.iter())
            .flat_map(|s| s.spans.iter().map(|s| s.name.clone()))
            .collect();
        names.sort();
        want.sort();
        assert_eq!(names, want, "max {max}");
    }
}

#[test]
fn unknown_fields_survive_byte_exact() {
    // Unknown fields at the top level, in a resource span, and inside a span are kept as is.
    let req = common::rich_request(1);
    let mut raw = req.encode_to_vec();
    // Append an unknown top-level field 15 (varint 7) — prost skips it, we must keep it.
    raw.extend_from_slice(&[0x78, 0x07]);
    let buf = Bytes::from(raw);
    let index = scan(&buf).unwrap();
    let out = rebuild(&buf, &index, &[SpanEdit::Drop], None);
    assert_eq!(&out[out.len() - 2..], &[0x78, 0x07]);
    assert!(ExportTraceServiceRequest::decode(out.as_ref()).is_ok());
}
