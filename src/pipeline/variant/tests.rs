use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;

use super::*;
use crate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use crate::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use crate::wire::attr::{push_span_attribute, NewValue};

fn request(traces: &[u8]) -> Bytes {
    let spans = traces
        .iter()
        .enumerate()
        .map(|(i, t)| Span {
            trace_id: vec![*t; 16],
            span_id: vec![i as u8 + 1; 8],
            name: format!("s{i}"),
            ..Default::default()
        })
        .collect();
    Bytes::from(
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec(),
    )
}

fn decoded(b: &Bytes) -> Vec<Span> {
    ExportTraceServiceRequest::decode(b.as_ref())
        .unwrap()
        .resource_spans
        .into_iter()
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .collect()
}

fn names(b: &Bytes) -> Vec<String> {
    decoded(b).into_iter().map(|s| s.name).collect()
}

fn attr(key: &str, value: &str) -> Vec<u8> {
    let mut out = Vec::new();
    push_span_attribute(&mut out, key, NewValue::Str(value));
    out
}

fn v(spans: SpanFilter, langfuse: bool) -> Variant {
    Variant {
        spans,
        langfuse,
        ledger: false,
    }
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn plain_is_the_only_fast_path() {
    assert!(Plan::new(vec![], 10, HOUR).is_plain());
    assert!(Plan::new(vec![Variant::default()], 10, HOUR).is_plain());
    let p = Plan::new(
        vec![Variant::default(), v(SpanFilter::Llm, false)],
        10,
        HOUR,
    );
    assert!(!p.is_plain());
    assert_eq!(
        p.wants(),
        Wants {
            llm: true,
            langfuse: false,
            ledger: false,
        }
    );
    let facts = SpanFacts::new(Wants::default(), 1000);
    assert_eq!(facts.llm.capacity(), 0, "nothing wanted, nothing allocated");
}

#[test]
fn each_variant_gets_its_spans_and_only_langfuse_gets_the_extras() {
    let buf = request(&[1, 1, 2, 3]);
    let index = crate::wire::scan(&buf).unwrap();
    let plan = Plan::new(
        vec![
            Variant::default(),
            v(SpanFilter::Llm, false),
            v(SpanFilter::Llm, true),
            v(SpanFilter::All, true),
        ],
        10,
        HOUR,
    );
    let mut edits = vec![
        SpanEdit::Modify {
            remove: vec![],
            append: attr("tollgate.pricing.status", "priced"),
        },
        SpanEdit::Keep,
        SpanEdit::Drop,
        SpanEdit::Keep,
    ];
    let before = edits.clone();
    let mut facts = SpanFacts::new(plan.wants(), 4);
    facts.mark_llm(0);
    facts.mark_llm(2); // dropped: stays out everywhere
    facts.add_langfuse(0, attr("langfuse.observation.usage_details", "{}"));
    facts.add_langfuse(2, attr("langfuse.observation.usage_details", "{}"));
    let built = plan.build(&buf, &index, &mut edits, &facts);
    assert_eq!(edits, before, "edits are left as they were");
    let b: Vec<&Built> = built.iter().map(|b| b.as_ref().unwrap()).collect();
    assert_eq!(names(&b[0].bytes), ["s0", "s1", "s3"]);
    assert_eq!(b[0].spans, 3);
    assert_eq!(names(&b[1].bytes), ["s0"]);
    assert_eq!(b[1].spans, 1);
    assert_eq!(names(&b[2].bytes), ["s0"]);
    assert_eq!(names(&b[3].bytes), ["s0", "s1", "s3"]);
    let keys = |b: &Bytes, span: usize| -> Vec<String> {
        decoded(b)[span]
            .attributes
            .iter()
            .map(|kv| kv.key.clone())
            .collect()
    };
    assert_eq!(keys(&b[0].bytes, 0), ["tollgate.pricing.status"]);
    assert_eq!(keys(&b[1].bytes, 0), ["tollgate.pricing.status"]);
    assert_eq!(
        keys(&b[2].bytes, 0),
        [
            "tollgate.pricing.status",
            "langfuse.observation.usage_details"
        ]
    );
    assert_eq!(
        keys(&b[3].bytes, 0),
        [
            "tollgate.pricing.status",
            "langfuse.observation.usage_details"
        ]
    );
    assert!(keys(&b[3].bytes, 1).is_empty());
}

#[test]
fn identical_variants_share_one_buffer_and_empty_ones_are_none() {
    let buf = request(&[1, 2]);
    let index = crate::wire::scan(&buf).unwrap();
    let plan = Plan::new(
        vec![
            Variant::default(),
            v(SpanFilter::Llm, false),
            v(SpanFilter::LlmTraces, false),
        ],
        10,
        HOUR,
    );
    let mut edits = vec![SpanEdit::Keep; 2];
    let mut facts = SpanFacts::new(plan.wants(), 2);
    let built = plan.build(&buf, &index, &mut edits, &facts);
    assert!(built[0].is_some());
    assert!(built[1].is_none() && built[2].is_none(), "no LLM span");

    facts.mark_llm(0);
    facts.mark_llm(1);
    let built = plan.build(&buf, &index, &mut edits, &facts);
    let ptrs: Vec<*const u8> = built
        .iter()
        .map(|b| b.as_ref().unwrap().bytes.as_ptr())
        .collect();
    assert!(
        ptrs.iter().all(|p| *p == ptrs[0]),
        "one buffer for all three"
    );
    assert_eq!(super::super::distinct_bytes(&built), buf.len());
}

#[test]
fn llm_traces_passes_later_spans_of_a_known_trace_only() {
    let t = LlmTraces::new(10, HOUR);
    let now = Instant::now();
    // Trace 1's tool span arrives before its LLM span: not known yet.
    assert_eq!(
        t.classify(&[Some((1, false)), Some((2, false))], now),
        [false, false]
    );
    // The LLM span of trace 1 arrives with a sibling: both pass; a dropped span never does.
    assert_eq!(
        t.classify(&[Some((1, false)), Some((1, true)), None], now),
        [true, true, false]
    );
    // A later span of trace 1 passes; trace 2 still does not.
    assert_eq!(
        t.classify(&[Some((1, false)), Some((2, false))], now),
        [true, false]
    );
}

#[test]
fn llm_traces_expire_and_are_bounded_with_evictions_counted() {
    let evicted = |r: &str| METRICS.llm_traces_evicted.with_label_values(&[r]).get();
    let (cap0, exp0) = (evicted("capacity"), evicted("expired"));
    let ttl = Duration::from_secs(60);
    let t = LlmTraces::new(2, ttl);
    let now = Instant::now();
    t.classify(&[Some((1, true)), Some((2, true)), Some((3, true))], now);
    assert_eq!(t.len(), 2);
    assert!(evicted("capacity") > cap0);
    assert_eq!(
        t.classify(&[Some((1, false)), Some((2, false)), Some((3, false))], now),
        [false, true, true],
        "the oldest was forgotten first"
    );
    // Trace 3 is refreshed by a later LLM span; trace 2 is not and expires.
    t.classify(&[Some((3, true))], now + ttl / 2 + Duration::from_secs(1));
    assert_eq!(
        t.classify(
            &[Some((2, false)), Some((3, false))],
            now + ttl + Duration::from_secs(1)
        ),
        [false, true]
    );
    assert!(evicted("expired") > exp0);
    assert_eq!(t.classify(&[Some((3, false))], now + 2 * ttl), [false]);
    assert!(t.is_empty());
}

/// One dispatch: the variants built, the request's span count, the permit's bytes.
type Dispatched = (Vec<Option<Built>>, usize, usize);

/// A fan-out that records what the pipeline hands it.
struct Recorder {
    variants: Vec<Variant>,
    seen: parking_lot::Mutex<Vec<Dispatched>>,
}

impl crate::pipeline::Fanout for Recorder {
    fn variants(&self) -> Vec<Variant> {
        self.variants.clone()
    }
    fn dispatch(
        &self,
        built: &mut [Option<Built>],
        spans: usize,
        permit: crate::pipeline::MemoryPermit,
    ) -> crate::export::Queued {
        let taken = built.iter_mut().map(Option::take).collect();
        self.seen.lock().push((taken, spans, permit.bytes()));
        crate::export::Queued::default()
    }
}

/// Marks every span named `llm*` as an LLM span and gives it Langfuse extras.
struct MarkLlm;

impl crate::pipeline::Processor for MarkLlm {
    fn process(
        &self,
        buf: &Bytes,
        index: &RequestIndex,
        edits: &mut [SpanEdit],
        facts: &mut SpanFacts,
    ) {
        for (i, e) in edits.iter_mut().enumerate() {
            if SpanRef::new(buf, index, i).name().starts_with("llm") {
                *e = SpanEdit::Modify {
                    remove: vec![],
                    append: attr("tollgate.pricing.status", "priced"),
                };
                facts.mark_llm(i);
                facts.add_langfuse(i, attr("langfuse.observation.cost_details", "{}"));
            }
        }
    }
}

fn named(names: &[&str]) -> Bytes {
    let spans = names
        .iter()
        .enumerate()
        .map(|(i, n)| Span {
            trace_id: vec![9; 16],
            span_id: vec![i as u8 + 1; 8],
            name: (*n).into(),
            ..Default::default()
        })
        .collect();
    Bytes::from(
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec(),
    )
}

#[test]
fn without_filters_the_request_is_forwarded_as_it_was_built() {
    let fanout = Recorder {
        variants: vec![Variant::default()],
        seen: Default::default(),
    };
    let p =
        crate::pipeline::Pipeline::new(&Default::default(), crate::pipeline::NoProcessing, fanout);
    let body = named(&["a", "llm-b"]);
    p.handle(body.clone(), crate::pipeline::Transport::Grpc)
        .unwrap();
    let seen = p.fanout().seen.lock();
    let (built, spans, permit) = &seen[0];
    assert_eq!(built.len(), 1);
    let b = built[0].as_ref().unwrap();
    assert_eq!(
        b.bytes.as_ptr(),
        body.as_ptr(),
        "no rebuild: the received bytes go out"
    );
    assert_eq!((b.spans, *spans, *permit), (2, 2, body.len()));
}

#[test]
fn the_permit_covers_every_variant_built() {
    let fanout = Recorder {
        variants: vec![
            Variant::default(),
            v(SpanFilter::Llm, false),
            v(SpanFilter::All, true),
            v(SpanFilter::LlmTraces, true),
        ],
        seen: Default::default(),
    };
    let p = crate::pipeline::Pipeline::new(&Default::default(), MarkLlm, fanout);
    p.handle(
        named(&["a", "llm-b", "c"]),
        crate::pipeline::Transport::Grpc,
    )
    .unwrap();
    let seen = p.fanout().seen.lock();
    let (built, spans, permit) = &seen[0];
    assert_eq!(*spans, 3);
    let b: Vec<&Built> = built.iter().map(|b| b.as_ref().unwrap()).collect();
    assert_eq!(
        b.iter().map(|b| b.spans).collect::<Vec<_>>(),
        [3, 1, 3, 3],
        "llm_traces: the whole trace, the LLM span being in this request"
    );
    // all+langfuse and llm_traces+langfuse hold the same spans with the same extras: one buffer.
    assert_eq!(b[2].bytes.as_ptr(), b[3].bytes.as_ptr());
    assert_eq!(
        *permit,
        b[0].bytes.len() + b[1].bytes.len() + b[2].bytes.len()
    );
    assert!(b[2].bytes.len() > b[0].bytes.len(), "the extras are on it");
}
