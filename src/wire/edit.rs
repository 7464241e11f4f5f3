//! Rewriting a scanned request: dropping spans, removing attributes and appending fields to the
//! spans that need them, without decoding anything else.
//!
//! Appending a field to the end of a message body is valid protobuf (fields may come in any
//! order; repeated fields accumulate), so enriching a span is: copy its body, leave out the
//! removed attribute fields, append the new encoded fields, and fix the length prefixes of the
//! span and of its enclosing `ScopeSpans` and `ResourceSpans`. Everything untouched is copied as is.

use std::ops::Range;

use bytes::Bytes;

use super::attr::{put_varint, varint_len};
use super::scan::RequestIndex;

/// What to do with one span.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum SpanEdit {
    /// Copy unchanged.
    #[default]
    Keep,
    /// Leave out of the output.
    Drop,
    /// Rewrite: leave out the byte ranges in `remove` (absolute offsets of whole fields inside the
    /// span body, e.g. from [`super::SpanRef::for_each_attribute_field`]), then append `append`
    /// (complete encoded fields, e.g. from [`super::attr::push_span_attribute`]).
    Modify {
        /// Absolute ranges of fields to remove, within the span body, sorted, not overlapping.
        remove: Vec<Range<u32>>,
        /// Encoded fields to append.
        append: Vec<u8>,
    },
}

const TAG_RESOURCE_SPANS: u8 = 0x0a; // field 1, LEN
const TAG_SCOPE_SPANS: u8 = 0x12; // field 2, LEN (in ResourceSpans)
const TAG_SPAN: u8 = 0x12; // field 2, LEN (in ScopeSpans)

/// True when applying `edits` would change nothing.
pub fn is_noop(edits: &[SpanEdit]) -> bool {
    edits.iter().all(|e| matches!(e, SpanEdit::Keep))
}

/// Applies one edit per span (`edits[i]` for `index.spans[i]`; missing entries mean keep) and
/// returns the new request. With `only_resource`, the output holds just that `resource_spans`.
/// A scope left with no spans is left out, and so is a resource left with no scopes.
pub fn rebuild(
    buf: &Bytes,
    index: &RequestIndex,
    edits: &[SpanEdit],
    only_resource: Option<usize>,
) -> Bytes {
    if only_resource.is_none() && is_noop(edits) {
        return buf.clone();
    }
    let edit = |i: usize| edits.get(i).unwrap_or(&SpanEdit::Keep);

    // Pass 1: new body lengths, bottom up. `None` means the element disappears.
    let mut span_len: Vec<Option<usize>> = Vec::with_capacity(index.spans.len());
    for (i, s) in index.spans.iter().enumerate() {
        let body = (s.body.end - s.body.start) as usize;
        span_len.push(match edit(i) {
            SpanEdit::Keep => Some(body),
            SpanEdit::Drop => None,
            SpanEdit::Modify { remove, append } => {
                let removed: usize = remove.iter().map(|r| (r.end - r.start) as usize).sum();
                Some(body - removed + append.len())
            }
        });
    }
    let field_len = |body: usize| 1 + varint_len(body as u64) + body;

    // Per scope: new body length, or None when all its spans were dropped.
    let mut scope_len: Vec<Option<usize>> = Vec::with_capacity(index.scopes.len());
    let mut spans_of_scope: Vec<Range<usize>> = Vec::with_capacity(index.scopes.len());
    {
        let mut i = 0;
        for (si, sc) in index.scopes.iter().enumerate() {
            let first = i;
            while i < index.spans.len() && index.spans[i].scope as usize == si {
                i += 1;
            }
            spans_of_scope.push(first..i);
            let had = i > first;
            let mut len = (sc.body.end - sc.body.start) as usize;
            let mut kept = 0;
            for (s, new_len) in index.spans[first..i].iter().zip(&span_len[first..i]) {
                len -= (s.field.end - s.field.start) as usize;
                if let Some(l) = *new_len {
                    len += field_len(l);
                    kept += 1;
                }
            }
            scope_len.push(if had && kept == 0 { None } else { Some(len) });
        }
    }
    let mut res_len: Vec<Option<usize>> = Vec::with_capacity(index.resources.len());
    let mut scopes_of_res: Vec<Range<usize>> = Vec::with_capacity(index.resources.len());
    {
        let mut i = 0;
        for (ri, res) in index.resources.iter().enumerate() {
            let first = i;
            while i < index.scopes.len() && index.scopes[i].resource as usize == ri {
                i += 1;
            }
            scopes_of_res.push(first..i);
            let had = i > first;
            let mut len = (res.body.end - res.body.start) as usize;
            let mut kept = 0;
            for (sc, new_len) in index.scopes[first..i].iter().zip(&scope_len[first..i]) {
                len -= (sc.field.end - sc.field.start) as usize;
                if let Some(l) = *new_len {
                    len += field_len(l);
                    kept += 1;
                }
            }
            res_len.push(if had && kept == 0 { None } else { Some(len) });
        }
    }

    // Pass 2: write.
    let mut out = Vec::with_capacity(buf.len() + 256);
    let mut pos = 0usize; // next unwritten byte of `buf` at the top level
    for (ri, res) in index.resources.iter().enumerate() {
        if let Some(only) = only_resource {
            if ri != only {
                continue;
            }
        } else {
            // Bytes between resources (unknown top-level fields) are kept.
            out.extend_from_slice(&buf[pos..res.field.start as usize]);
        }
        pos = res.field.end as usize;
        let Some(rlen) = res_len[ri] else { continue };
        out.push(TAG_RESOURCE_SPANS);
        put_varint(&mut out, rlen as u64);
        let mut rpos = res.body.start as usize;
        for si in scopes_of_res[ri].clone() {
            let sc = &index.scopes[si];
            out.extend_from_slice(&buf[rpos..sc.field.start as usize]);
            rpos = sc.field.end as usize;
            let Some(slen) = scope_len[si] else { continue };
            out.push(TAG_SCOPE_SPANS);
            put_varint(&mut out, slen as u64);
            let mut spos = sc.body.start as usize;
            for i in spans_of_scope[si].clone() {
                let s = &index.spans[i];
                out.extend_from_slice(&buf[spos..s.field.start as usize]);
                spos = s.field.end as usize;
                match edit(i) {
                    SpanEdit::Keep => {
                        out.extend_from_slice(&buf[s.field.start as usize..s.field.end as usize])
                    }
                    SpanEdit::Drop => {}
                    SpanEdit::Modify { remove, append } => {
                        out.push(TAG_SPAN);
                        put_varint(&mut out, span_len[i].unwrap_or(0) as u64);
                        let mut bpos = s.body.start as usize;
                        for r in remove {
                            out.extend_from_slice(&buf[bpos..r.start as usize]);
                            bpos = r.end as usize;
                        }
                        out.extend_from_slice(&buf[bpos..s.body.end as usize]);
                        out.extend_from_slice(append);
                    }
                }
            }
            out.extend_from_slice(&buf[spos..sc.body.end as usize]);
        }
        out.extend_from_slice(&buf[rpos..res.body.end as usize]);
    }
    if only_resource.is_none() {
        out.extend_from_slice(&buf[pos..]);
    }
    Bytes::from(out)
}
