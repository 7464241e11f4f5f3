//! Batching by concatenation, and splitting by size.
//!
//! An `ExportTraceServiceRequest` is a sequence of `resource_spans` fields, so appending the
//! encodings of two requests gives the encoding of one request holding both.

use bytes::{Bytes, BytesMut};

use super::scan::RequestIndex;

/// Concatenates encoded requests into one encoded request.
pub fn concat(parts: &[Bytes]) -> Bytes {
    match parts {
        [] => Bytes::new(),
        [one] => one.clone(),
        many => {
            let total = many.iter().map(Bytes::len).sum();
            let mut out = BytesMut::with_capacity(total);
            for p in many {
                out.extend_from_slice(p);
            }
            out.freeze()
        }
    }
}

/// Splits a scanned request into requests of at most `max_bytes` each, at `resource_spans`
/// boundaries, and inside a `resource_spans` that is larger on its own at span boundaries (the
/// resource and scope headers are repeated in each part). A single span larger than `max_bytes`
/// is returned alone in its own part: the caller decides what to do with it.
pub fn split(buf: &Bytes, index: &RequestIndex, max_bytes: usize) -> Vec<Bytes> {
    if buf.len() <= max_bytes {
        return vec![buf.clone()];
    }
    let mut parts = Vec::new();
    let mut cur_start: Option<usize> = None;
    let mut cur_end = 0usize;
    for (ri, res) in index.resources.iter().enumerate() {
        let (s, e) = (res.field.start as usize, res.field.end as usize);
        if e - s > max_bytes {
            if let Some(cs) = cur_start.take() {
                parts.push(buf.slice(cs..cur_end));
            }
            split_resource(buf, index, ri, max_bytes, &mut parts);
            continue;
        }
        match cur_start {
            Some(cs) if e - cs <= max_bytes && s == cur_end => cur_end = e,
            Some(cs) => {
                parts.push(buf.slice(cs..cur_end));
                cur_start = Some(s);
                cur_end = e;
            }
            None => {
                cur_start = Some(s);
                cur_end = e;
            }
        }
    }
    if let Some(cs) = cur_start {
        parts.push(buf.slice(cs..cur_end));
    }
    parts
}

/// Splits one oversized `resource_spans` into parts of whole spans, each wrapped in a copy of
/// its resource and scope header.
fn split_resource(
    buf: &Bytes,
    index: &RequestIndex,
    ri: usize,
    max_bytes: usize,
    out: &mut Vec<Bytes>,
) {
    use super::edit::{rebuild, SpanEdit};
    // Group the resource's spans into runs whose total stays under the budget, then build each
    // part by keeping only that run (everything else dropped) from this resource.
    let res = &index.resources[ri];
    let overhead = 64 + header_len(buf, index, ri);
    let spans: Vec<usize> = index
        .spans
        .iter()
        .enumerate()
        .filter(|(_, s)| index.scopes[s.scope as usize].resource as usize == ri)
        .map(|(i, _)| i)
        .collect();
    let mut run: Vec<usize> = Vec::new();
    let mut run_bytes = overhead;
    let mut flush = |run: &mut Vec<usize>| {
        if run.is_empty() {
            return;
        }
        let keep: std::collections::HashSet<usize> = run.iter().copied().collect();
        let edits: Vec<SpanEdit> = (0..index.spans.len())
            .map(|i| {
                if keep.contains(&i) {
                    SpanEdit::Keep
                } else {
                    SpanEdit::Drop
                }
            })
            .collect();
        let only_this = rebuild(buf, index, &edits, Some(ri));
        out.push(only_this);
        run.clear();
    };
    for i in spans {
        let len = (index.spans[i].field.end - index.spans[i].field.start) as usize;
        if !run.is_empty() && run_bytes + len > max_bytes {
            flush(&mut run);
            run_bytes = overhead;
        }
        run.push(i);
        run_bytes += len;
    }
    flush(&mut run);
    let _ = res;
}

/// Bytes of a resource's non-span content (resource, scope headers), an upper bound.
fn header_len(_buf: &Bytes, index: &RequestIndex, ri: usize) -> usize {
    let res = &index.resources[ri];
    let spans: usize = index
        .spans
        .iter()
        .filter(|s| index.scopes[s.scope as usize].resource as usize == ri)
        .map(|s| (s.field.end - s.field.start) as usize)
        .sum();
    (res.field.end - res.field.start) as usize - spans
}
