//! Spans as encoded protobuf bytes.
//!
//! tollgate never decodes a request into structs on the hot path. A request arrives as the bytes of
//! an `ExportTraceServiceRequest`; [`scan`] walks them once without allocating per span, checking that
//! they are exactly what prost would accept and recording where each resource, scope and span sits.
//! Processors read spans through [`SpanAttrs`] (a zero-copy view), and the few spans that need new
//! attributes are rewritten by splicing encoded fields onto their end ([`edit`]). Batching is byte
//! concatenation: repeated fields merge, so two encoded requests appended are one request.
//! The measurements behind this design are in `BENCHMARKS.md`.

pub mod attr;
pub mod batch;
pub mod edit;
#[cfg(any(test, feature = "testkit"))]
pub mod fuzz;
pub mod json;
pub mod prost_view;
pub mod scan;
#[cfg(any(test, feature = "testkit"))]
pub mod testdata;
pub mod view;

pub use attr::AttrValue;
pub use scan::{scan, AttrIdx, RequestIndex, ScanError, ValueIdx};
pub use view::SpanRef;

/// A read-only view of one span with its resource and scope, as processors see it; everything it
/// returns borrows from the underlying request for `'a`.
///
/// Implemented by [`SpanRef`] (zero-copy, over the encoded request) and, for tests and tools, by
/// [`prost_view::ProstSpan`] (over opentelemetry-proto structs). Both must answer identically.
pub trait SpanAttrs<'a> {
    /// The span's name.
    fn name(&self) -> &'a str;
    /// The span kind as its protobuf enum value (0 unspecified, 1 internal, 2 server, 3 client, ...).
    fn kind(&self) -> i32;
    /// The trace id as received (16 bytes once validated).
    fn trace_id(&self) -> &'a [u8];
    /// The span id (8 bytes once validated).
    fn span_id(&self) -> &'a [u8];
    /// The parent span id; empty for a root span.
    fn parent_span_id(&self) -> &'a [u8];
    /// Start time, nanoseconds since the Unix epoch.
    fn start_time_unix_nano(&self) -> u64;
    /// End time, nanoseconds since the Unix epoch.
    fn end_time_unix_nano(&self) -> u64;
    /// The status code (0 unset, 1 ok, 2 error).
    fn status_code(&self) -> i32;
    /// The instrumentation scope's name.
    fn scope_name(&self) -> &'a str;
    /// The instrumentation scope's version (empty when absent).
    fn scope_version(&self) -> &'a str {
        ""
    }
    /// Calls `f` for each span attribute, in order. A key may repeat; the last one wins.
    fn for_each_attribute(&self, f: &mut dyn FnMut(&'a str, AttrValue<'a>));
    /// Calls `f` for each resource attribute, in order.
    fn for_each_resource_attribute(&self, f: &mut dyn FnMut(&'a str, AttrValue<'a>));

    /// The value of one span attribute (last occurrence), if present.
    fn attribute(&self, key: &str) -> Option<AttrValue<'a>> {
        let mut found = None;
        self.for_each_attribute(&mut |k, v| {
            if k == key {
                found = Some(v);
            }
        });
        found
    }

    /// One span attribute (last occurrence) with its key as the span spells it, if present.
    fn attribute_entry(&self, key: &str) -> Option<(&'a str, AttrValue<'a>)> {
        let mut found = None;
        self.for_each_attribute(&mut |k, v| {
            if k == key {
                found = Some((k, v));
            }
        });
        found
    }

    /// One resource attribute (last occurrence) with its key, if present.
    fn resource_attribute_entry(&self, key: &str) -> Option<(&'a str, AttrValue<'a>)> {
        let mut found = None;
        self.for_each_resource_attribute(&mut |k, v| {
            if k == key {
                found = Some((k, v));
            }
        });
        found
    }

    /// The value of one resource attribute (last occurrence), if present.
    fn resource_attribute(&self, key: &str) -> Option<AttrValue<'a>> {
        let mut found = None;
        self.for_each_resource_attribute(&mut |k, v| {
            if k == key {
                found = Some(v);
            }
        });
        found
    }
}
