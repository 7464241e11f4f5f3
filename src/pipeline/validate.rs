//! Ingest validation: spans with ids a backend would reject are dropped here, before they can
//! make a backend reject a whole batch, and reported to the client as a partial success.

use crate::wire::edit::SpanEdit;
use crate::wire::RequestIndex;

/// Why a span was dropped at ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidId {
    /// The trace id is not 16 bytes, or is all zeros.
    TraceId,
    /// The span id is not 8 bytes, or is all zeros.
    SpanId,
}

/// Checks one span's ids (W3C: 16-byte trace id and 8-byte span id, neither all zeros).
pub fn check_ids(trace_id: &[u8], span_id: &[u8]) -> Result<(), InvalidId> {
    if trace_id.len() != 16 || trace_id.iter().all(|&b| b == 0) {
        return Err(InvalidId::TraceId);
    }
    if span_id.len() != 8 || span_id.iter().all(|&b| b == 0) {
        return Err(InvalidId::SpanId);
    }
    Ok(())
}

/// Marks every span with invalid ids as dropped in `edits` (one entry per span). Returns how many
/// were dropped and a message for `partial_success.error_message`.
pub fn drop_invalid_ids(
    buf: &[u8],
    index: &RequestIndex,
    edits: &mut [SpanEdit],
) -> (usize, Option<String>) {
    let (mut bad_trace, mut bad_span) = (0usize, 0usize);
    for (i, span) in index.spans.iter().enumerate() {
        let tid = &buf[span.trace_id.start as usize..span.trace_id.end as usize];
        let sid = &buf[span.span_id.start as usize..span.span_id.end as usize];
        match check_ids(tid, sid) {
            Ok(()) => {}
            Err(InvalidId::TraceId) => {
                bad_trace += 1;
                edits[i] = SpanEdit::Drop;
            }
            Err(InvalidId::SpanId) => {
                bad_span += 1;
                edits[i] = SpanEdit::Drop;
            }
        }
    }
    let dropped = bad_trace + bad_span;
    if dropped == 0 {
        return (0, None);
    }
    let mut parts = Vec::new();
    if bad_trace > 0 {
        parts.push(format!(
            "{bad_trace} span(s) with a trace id that is not 16 non-zero bytes"
        ));
    }
    if bad_span > 0 {
        parts.push(format!(
            "{bad_span} span(s) with a span id that is not 8 non-zero bytes"
        ));
    }
    (dropped, Some(format!("dropped {}", parts.join(" and "))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(check_ids(&[1; 16], &[1; 8]), Ok(()));
        assert_eq!(check_ids(&[1; 15], &[1; 8]), Err(InvalidId::TraceId));
        assert_eq!(check_ids(&[0; 16], &[1; 8]), Err(InvalidId::TraceId));
        assert_eq!(check_ids(&[1; 16], &[0; 8]), Err(InvalidId::SpanId));
        assert_eq!(check_ids(&[1; 16], &[]), Err(InvalidId::SpanId));
        assert_eq!(check_ids(&[], &[1; 8]), Err(InvalidId::TraceId));
    }
}
