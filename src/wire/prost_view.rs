//! [`SpanAttrs`] over opentelemetry-proto structs: for tests, fixtures and tools that build spans
//! as structs. It must answer exactly as the zero-copy [`super::SpanRef`] does.

use super::attr::{ArrayRef, AttrValue, KvListRef};
use super::SpanAttrs;
use crate::otlp::common::v1::any_value::Value;
use crate::otlp::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use crate::otlp::resource::v1::Resource;
use crate::otlp::trace::v1::Span;

/// A span with its resource and scope, as structs.
#[derive(Debug, Clone, Copy)]
pub struct ProstSpan<'a> {
    /// The span.
    pub span: &'a Span,
    /// Its resource, if any.
    pub resource: Option<&'a Resource>,
    /// Its instrumentation scope, if any.
    pub scope: Option<&'a InstrumentationScope>,
    /// Encoded forms of array/kvlist values are not available from structs; such values are
    /// reported as [`AttrValue::Empty`] unless this holds their encoding (tests rarely need them).
    pub _private: (),
}

impl<'a> ProstSpan<'a> {
    /// A view of `span` under `resource` and `scope`.
    pub fn new(
        span: &'a Span,
        resource: Option<&'a Resource>,
        scope: Option<&'a InstrumentationScope>,
    ) -> Self {
        Self {
            span,
            resource,
            scope,
            _private: (),
        }
    }
}

/// Converts a struct value into the borrowed view. Arrays and kvlists come back empty: their
/// borrowed form is an encoding, which structs do not hold.
pub fn view_any_value(value: Option<&AnyValue>) -> AttrValue<'_> {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => AttrValue::Str(s),
        Some(Value::BoolValue(b)) => AttrValue::Bool(*b),
        Some(Value::IntValue(i)) => AttrValue::Int(*i),
        Some(Value::DoubleValue(d)) => AttrValue::Double(*d),
        Some(Value::BytesValue(b)) => AttrValue::Bytes(b),
        Some(Value::ArrayValue(_)) => AttrValue::Array(ArrayRef(&[])),
        Some(Value::KvlistValue(_)) => AttrValue::KvList(KvListRef(&[])),
        Some(Value::StringValueStrindex(_)) | None => AttrValue::Empty,
    }
}

fn visit<'a>(attrs: &'a [KeyValue], f: &mut dyn FnMut(&'a str, AttrValue<'a>)) {
    for kv in attrs {
        f(&kv.key, view_any_value(kv.value.as_ref()));
    }
}

impl<'a> SpanAttrs<'a> for ProstSpan<'a> {
    fn name(&self) -> &'a str {
        &self.span.name
    }
    fn kind(&self) -> i32 {
        self.span.kind
    }
    fn trace_id(&self) -> &'a [u8] {
        &self.span.trace_id
    }
    fn span_id(&self) -> &'a [u8] {
        &self.span.span_id
    }
    fn parent_span_id(&self) -> &'a [u8] {
        &self.span.parent_span_id
    }
    fn start_time_unix_nano(&self) -> u64 {
        self.span.start_time_unix_nano
    }
    fn end_time_unix_nano(&self) -> u64 {
        self.span.end_time_unix_nano
    }
    fn status_code(&self) -> i32 {
        self.span.status.as_ref().map_or(0, |s| s.code)
    }
    fn scope_name(&self) -> &'a str {
        self.scope.map_or("", |s| s.name.as_str())
    }
    fn scope_version(&self) -> &'a str {
        self.scope.map_or("", |s| s.version.as_str())
    }
    fn for_each_attribute(&self, f: &mut dyn FnMut(&'a str, AttrValue<'a>)) {
        visit(&self.span.attributes, f);
    }
    fn for_each_resource_attribute(&self, f: &mut dyn FnMut(&'a str, AttrValue<'a>)) {
        if let Some(r) = self.resource {
            visit(&r.attributes, f);
        }
    }
}
