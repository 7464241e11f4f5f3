//! Recognising one model call reported by two spans.

use std::collections::{HashMap, VecDeque};

/// Span and response ids come from clients: a seeded hash of good quality, cheaper than SipHash.
type RandomState = foldhash::quality::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::price_table::canonical_model;
use super::usage::Usage;

/// What identifies a call's report: its normalised usage and (when known) its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// Normalised token counts.
    pub usage: Usage,
    /// Hash of the canonical model id, when the span named one.
    pub model: Option<u64>,
}

impl Fingerprint {
    /// A fingerprint of `usage` reported for `model`.
    pub fn new(usage: Usage, model: Option<&str>) -> Self {
        let model = model.map(|m| {
            let lower = m.trim().to_ascii_lowercase();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            canonical_model(&lower).hash(&mut h);
            h.finish()
        });
        Self { usage, model }
    }

    /// Two reports of the same call: the same normalised counts, and the same model when both
    /// name one.
    ///
    /// The cache-write lifetime split is not compared: only some emitters report it (the
    /// Anthropic SDK span does, a wrapper or instrumentation span around it gives the total).
    pub fn same_call(&self, other: &Fingerprint) -> bool {
        let (a, b) = (&self.usage, &other.usage);
        (
            a.input,
            a.cache_read,
            a.cache_write(),
            a.output,
            a.reasoning,
        ) == (
            b.input,
            b.cache_read,
            b.cache_write(),
            b.output,
            b.reasoning,
        ) && match (self.model, other.model) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
}

/// One LLM-call span as the registry sees it.
#[derive(Debug, Clone, Copy)]
pub struct Sighting<'a> {
    /// The span's trace id.
    pub trace_id: &'a [u8],
    /// The span's id.
    pub span_id: &'a [u8],
    /// Its parent's id (empty for a root).
    pub parent_span_id: &'a [u8],
    /// Span start, nanoseconds since the epoch.
    pub start_unix_nano: u64,
    /// Span end, nanoseconds since the epoch.
    pub end_unix_nano: u64,
    /// The provider's response id, if the span carries one.
    pub response_id: Option<&'a str>,
    /// What it reports.
    pub fingerprint: Fingerprint,
}

/// The registry's verdict on a sighting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The first report of this call: price it.
    First,
    /// Another span already reported this call: do not price it again.
    Duplicate,
}

type SpanKey = (u128, u64);

/// The key a span claims its call under in the shared state (`state::Op::ClaimCall`): the first
/// 128 bits of SHA-256 over the trace id and span id. Stable across restarts and processes (a
/// durable or shared store keeps it), and not open to collisions aimed by clients.
pub fn claim_key(trace_id: &[u8], span_id: &[u8]) -> u128 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"tollgate.call\0");
    h.update([trace_id.len() as u8]);
    h.update(trace_id);
    h.update(span_id);
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    u128::from_be_bytes(out)
}

/// A remembered call span: its key, time window (start, end) and fingerprint.
type Windowed = (SpanKey, (u64, u64), Fingerprint);

/// How many of a trace's latest call spans the sibling rule compares against.
const MAX_SIBLINGS: usize = 256;

fn span_key(trace_id: &[u8], span_id: &[u8]) -> SpanKey {
    let mut t = [0u8; 16];
    let mut s = [0u8; 8];
    let tn = trace_id.len().min(16);
    let sn = span_id.len().min(8);
    t[..tn].copy_from_slice(&trace_id[..tn]);
    s[..sn].copy_from_slice(&span_id[..sn]);
    (u128::from_be_bytes(t), u64::from_be_bytes(s))
}

#[derive(Debug)]
struct Record {
    key: SpanKey,
    parent: Option<SpanKey>,
    response: Option<u64>,
    at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    spans: HashMap<SpanKey, Fingerprint, RandomState>,
    children: HashMap<SpanKey, Vec<(SpanKey, Fingerprint)>, RandomState>,
    responses: HashMap<u64, (SpanKey, Fingerprint), RandomState>,
    /// Per trace: every remembered call span with its time window (the sibling rule).
    traces: HashMap<u128, Vec<Windowed>, RandomState>,
    order: VecDeque<Record>,
}

/// One window inside the other (either way round), both non-empty.
fn nested(a: (u64, u64), b: (u64, u64)) -> bool {
    let inside = |x: (u64, u64), y: (u64, u64)| y.0 <= x.0 && x.1 <= y.1;
    a.0 <= a.1 && b.0 <= b.1 && (inside(a, b) || inside(b, a))
}

/// A bounded memory of recent LLM-call spans, so that one model call reported by two spans is
/// priced once.
///
/// **The rule.** Two LLM-call spans report the same call when their normalised token counts are
/// equal (and their models are equal, when both name one) and they are linked:
/// - one is the other's parent (same trace) — e.g. an app's wrapper span around the Anthropic
///   SDK's own span, or an OpenInference span around it; chains of three or more link through
///   each middle span; or
/// - they sit in one trace and one's time window lies inside the other's — e.g. a LangChain
///   `ChatAnthropic` span (OpenInference) and the Anthropic SDK's own span, which LangChain
///   parents to the task span rather than to the LangChain span; or
/// - they carry the same provider response id (`gen_ai.response.id`, `llm.response.id`,
///   `ai.response.id`, or one found in OpenInference's `output.value` JSON), even in different
///   traces — e.g. an OpenLLMetry span and the SDK's span, which sit in separate root traces.
///
/// **Whichever of the two spans reaches tollgate first is priced**; every later report of the
/// same call gets `tollgate.pricing.status = aggregate` and no cost, and is not counted as a call.
/// The same span id arriving twice (a client retry) is also priced only the first time. Within
/// one request, spans are considered in the order they appear.
///
/// **Bounds.** At most `capacity` calls are remembered, each for at most `ttl`; the oldest are
/// forgotten first. A second report arriving after its first was forgotten is priced again, so
/// `ttl` should exceed the longest delay between a call's spans reaching tollgate (exporters
/// batch for seconds; the default is 10 minutes).
#[derive(Debug)]
pub struct CallRegistry {
    inner: Mutex<Inner>,
    capacity: usize,
    ttl: Duration,
    hasher: RandomState,
}

impl CallRegistry {
    /// A registry remembering at most `capacity` calls for at most `ttl` each.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            ttl,
            hasher: RandomState::default(),
        }
    }

    /// Number of calls remembered.
    pub fn len(&self) -> usize {
        self.inner.lock().order.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records a sighting and says whether it is the first report of its call.
    pub fn check_in(&self, s: &Sighting<'_>) -> Verdict {
        self.check_in_at(s, Instant::now())
    }

    /// [`Self::check_in`] at a given instant (for tests).
    pub fn check_in_at(&self, s: &Sighting<'_>, now: Instant) -> Verdict {
        let key = span_key(s.trace_id, s.span_id);
        let parent = (!s.parent_span_id.is_empty()).then(|| span_key(s.trace_id, s.parent_span_id));
        let response = s.response_id.map(|r| self.hasher.hash_one(r));
        let fp = s.fingerprint;
        let window = (s.start_unix_nano, s.end_unix_nano);
        let mut inner = self.inner.lock();
        self.evict(&mut inner, now);
        if inner.spans.contains_key(&key) {
            return Verdict::Duplicate;
        }
        let dup = response
            .and_then(|r| inner.responses.get(&r))
            .is_some_and(|(_, f)| f.same_call(&fp))
            || parent
                .and_then(|p| inner.spans.get(&p))
                .is_some_and(|f| f.same_call(&fp))
            || inner
                .children
                .get(&key)
                .is_some_and(|c| c.iter().any(|(_, f)| f.same_call(&fp)))
            || inner.traces.get(&key.0).is_some_and(|spans| {
                spans
                    .iter()
                    .any(|(_, w, f)| nested(*w, window) && f.same_call(&fp))
            });
        inner.spans.insert(key, fp);
        if let Some(p) = parent {
            inner.children.entry(p).or_default().push((key, fp));
        }
        if let Some(r) = response {
            inner.responses.entry(r).or_insert((key, fp));
        }
        let in_trace = inner.traces.entry(key.0).or_default();
        // The sibling rule looks back over a trace's latest calls only, so a trace of thousands
        // of calls costs a bounded scan per span.
        if in_trace.len() >= MAX_SIBLINGS {
            in_trace.remove(0);
        }
        in_trace.push((key, window, fp));
        inner.order.push_back(Record {
            key,
            parent,
            response,
            at: now,
        });
        if dup {
            Verdict::Duplicate
        } else {
            Verdict::First
        }
    }

    fn evict(&self, inner: &mut Inner, now: Instant) {
        while let Some(front) = inner.order.front() {
            let expired = now.saturating_duration_since(front.at) > self.ttl;
            if !expired && inner.order.len() < self.capacity {
                break;
            }
            let Some(r) = inner.order.pop_front() else {
                break;
            };
            inner.spans.remove(&r.key);
            if let Some(list) = inner.traces.get_mut(&r.key.0) {
                list.retain(|(k, _, _)| *k != r.key);
                if list.is_empty() {
                    inner.traces.remove(&r.key.0);
                }
            }
            if let Some(p) = r.parent {
                if let Some(list) = inner.children.get_mut(&p) {
                    list.retain(|(k, _)| *k != r.key);
                    if list.is_empty() {
                        inner.children.remove(&p);
                    }
                }
            }
            if let Some(h) = r.response {
                if inner.responses.get(&h).is_some_and(|(k, _)| *k == r.key) {
                    inner.responses.remove(&h);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: [u8; 16] = [1; 16];

    fn fp(input: u64) -> Fingerprint {
        Fingerprint::new(
            Usage {
                input,
                output: 5,
                ..Usage::default()
            },
            Some("claude-sonnet-4-6"),
        )
    }

    fn s<'a>(span: &'a [u8], parent: &'a [u8], f: Fingerprint) -> Sighting<'a> {
        Sighting {
            trace_id: &T,
            span_id: span,
            parent_span_id: parent,
            start_unix_nano: 100,
            end_unix_nano: 200,
            response_id: None,
            fingerprint: f,
        }
    }

    #[test]
    fn parent_then_child_and_child_then_parent() {
        let r = CallRegistry::new(100, Duration::from_secs(60));
        assert_eq!(r.check_in(&s(&[1; 8], &[], fp(10))), Verdict::First);
        assert_eq!(r.check_in(&s(&[2; 8], &[1; 8], fp(10))), Verdict::Duplicate);
        // A different call under the same parent is its own call.
        assert_eq!(r.check_in(&s(&[3; 8], &[1; 8], fp(11))), Verdict::First);

        let r = CallRegistry::new(100, Duration::from_secs(60));
        assert_eq!(r.check_in(&s(&[2; 8], &[1; 8], fp(10))), Verdict::First);
        assert_eq!(r.check_in(&s(&[1; 8], &[], fp(10))), Verdict::Duplicate);
        // The same span again (a retry) is not priced twice.
        assert_eq!(r.check_in(&s(&[2; 8], &[1; 8], fp(10))), Verdict::Duplicate);
    }

    #[test]
    fn model_must_agree_when_both_known() {
        let r = CallRegistry::new(100, Duration::from_secs(60));
        let other = Fingerprint::new(fp(10).usage, Some("gpt-4o"));
        let dated = Fingerprint::new(fp(10).usage, Some("claude-sonnet-4-6-20260101"));
        let unknown = Fingerprint::new(fp(10).usage, None);
        assert_eq!(r.check_in(&s(&[1; 8], &[], fp(10))), Verdict::First);
        assert_eq!(r.check_in(&s(&[2; 8], &[1; 8], other)), Verdict::First);
        assert_eq!(r.check_in(&s(&[3; 8], &[1; 8], dated)), Verdict::Duplicate);
        assert_eq!(
            r.check_in(&s(&[4; 8], &[1; 8], unknown)),
            Verdict::Duplicate
        );
    }

    #[test]
    fn nested_windows_in_one_trace_link_cousins_with_equal_usage() {
        let r = CallRegistry::new(100, Duration::from_secs(60));
        let mut framework = s(&[1; 8], &[9; 8], fp(10));
        (framework.start_unix_nano, framework.end_unix_nano) = (100, 500);
        let mut sdk = s(&[2; 8], &[8; 8], fp(10));
        (sdk.start_unix_nano, sdk.end_unix_nano) = (150, 450);
        assert_eq!(r.check_in(&sdk), Verdict::First);
        assert_eq!(r.check_in(&framework), Verdict::Duplicate);
        // Equal usage, but one after the other: two calls.
        let mut later = s(&[3; 8], &[8; 8], fp(10));
        (later.start_unix_nano, later.end_unix_nano) = (600, 700);
        assert_eq!(r.check_in(&later), Verdict::First);
        // Nested, but another trace: not linked without a response id.
        let mut elsewhere = s(&[4; 8], &[8; 8], fp(10));
        elsewhere.trace_id = &[5; 16];
        assert_eq!(r.check_in(&elsewhere), Verdict::First);
        // Nested in the same trace with other usage: its own call.
        let mut other = s(&[5; 8], &[8; 8], fp(11));
        (other.start_unix_nano, other.end_unix_nano) = (200, 300);
        assert_eq!(r.check_in(&other), Verdict::First);
    }

    #[test]
    fn response_id_links_traces() {
        let r = CallRegistry::new(100, Duration::from_secs(60));
        let mut a = s(&[1; 8], &[], fp(10));
        a.response_id = Some("msg_01");
        let mut b = a;
        b.trace_id = &[9; 16];
        assert_eq!(r.check_in(&a), Verdict::First);
        assert_eq!(r.check_in(&b), Verdict::Duplicate);
    }

    #[test]
    fn bounded_by_capacity_and_ttl() {
        let r = CallRegistry::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..10u8 {
            r.check_in_at(&s(&[i; 8], &[], fp(u64::from(i))), t0);
        }
        assert!(r.len() <= 2);
        // Forgotten after the ttl: the child is priced again.
        let r = CallRegistry::new(100, Duration::from_secs(60));
        r.check_in_at(&s(&[1; 8], &[], fp(10)), t0);
        let later = t0 + Duration::from_secs(61);
        assert_eq!(
            r.check_in_at(&s(&[2; 8], &[1; 8], fp(10)), later),
            Verdict::First
        );
        assert_eq!(r.len(), 1);
    }
}
