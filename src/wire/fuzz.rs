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
    assert_eq!(got, want, "rewrite differs from the struct edit");
    true
}
