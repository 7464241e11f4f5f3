//! The root span of a task carries the roll-up; the bytes `observe` returns decode (with prost)
//! as span attributes appended to the span.

mod alert_support;

use alert_support::{decode_added, engine, TestSpan};
use prost::Message;
use tollgate::otlp::common::v1::any_value::Value;
use tollgate::otlp::trace::v1::Span;
use tollgate::task::{LlmUsage, Tokens};

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .rev()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

#[tokio::test]
async fn root_span_carries_the_task_roll_up() {
    let (engine, _clock) = engine("");
    for n in 1..=3u8 {
        let mut s = TestSpan::llm("task-r", n, 200_000_000);
        s.llm = Some(LlmUsage {
            cost_nano_usd: 200_000_000,
            tokens: Tokens {
                input_uncached: 600,
                cache_read: 300,
                cache_write: 100,
                output: 50,
            },
            ..Default::default()
        });
        // Children carry nothing.
        assert!(engine.observe(&s.input()).is_empty());
    }
    // The root span as the pipeline would hold it: its own fields, then the appended ones.
    let original = Span {
        name: "agent.run".into(),
        trace_id: alert_support::trace_id("task-r").to_vec(),
        span_id: vec![0xee; 8],
        attributes: vec![tollgate::otlp::common::v1::KeyValue {
            key: "agent.task_type".into(),
            value: Some(tollgate::otlp::common::v1::AnyValue {
                value: Some(Value::StringValue("research".into())),
            }),
            ..Default::default()
        }],
        ..Span::default()
    };
    let mut bytes = original.encode_to_vec();
    bytes.extend(engine.observe(&TestSpan::root("task-r").input()));
    let span = Span::decode(bytes.as_slice()).unwrap();
    assert_eq!(span.name, "agent.run");
    assert_eq!(span.attributes.len(), 6);
    assert_eq!(
        attr(&span, "tollgate.task.cost_usd"),
        Some(&Value::DoubleValue(0.6))
    );
    assert_eq!(
        attr(&span, "tollgate.task.llm_calls"),
        Some(&Value::IntValue(3))
    );
    assert_eq!(
        attr(&span, "tollgate.task.input_tokens"),
        Some(&Value::IntValue(3000))
    );
    assert_eq!(
        attr(&span, "tollgate.task.output_tokens"),
        Some(&Value::IntValue(150))
    );
    assert_eq!(
        attr(&span, "tollgate.task.cache_hit_ratio"),
        Some(&Value::DoubleValue(0.3))
    );
}

#[tokio::test]
async fn a_task_without_input_has_no_cache_ratio_and_the_crossing_span_gets_the_event() {
    let (engine, _clock) = engine(
        r#"
        [[rules]]
        name = "many_calls"
        scope = "task"
        metric = "llm_calls"
        op = ">="
        threshold = 2
        severity = "info"
        "#,
    );
    let mut s = TestSpan::llm("task-e", 1, 5);
    s.llm = Some(LlmUsage {
        cost_nano_usd: 5,
        ..LlmUsage::default()
    });
    assert!(engine.observe(&s.input()).is_empty());
    s.span_id = [2; 8];
    let crossed = decode_added(&engine.observe(&s.input()));
    assert!(crossed.attributes.is_empty());
    let ev = &crossed.events[0];
    assert_eq!(ev.name, "tollgate.alert");
    assert_eq!(ev.time_unix_nano, s.end);
    let get = |k: &str| {
        ev.attributes
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.as_ref()?.value.clone())
    };
    assert_eq!(
        get("tollgate.alert.rule"),
        Some(Value::StringValue("many_calls".into()))
    );
    assert_eq!(get("tollgate.alert.value"), Some(Value::DoubleValue(2.0)));
    assert_eq!(
        get("tollgate.alert.threshold"),
        Some(Value::DoubleValue(2.0))
    );
    assert_eq!(
        get("tollgate.alert.severity"),
        Some(Value::StringValue("info".into()))
    );
    let root = decode_added(&engine.observe(&TestSpan::root("task-e").input()));
    assert!(root.events.is_empty(), "fires once per task");
    assert!(attr(&root, "tollgate.task.cache_hit_ratio").is_none());
    assert_eq!(
        attr(&root, "tollgate.task.llm_calls"),
        Some(&Value::IntValue(2))
    );
}

/// Issue 18: a task with unpriced calls says so on its root (`tollgate.task.unpriced_calls`); a
/// root with no LLM call in its task gets no roll-up at all (no `cost_usd = 0` noise).
#[tokio::test]
async fn unpriced_calls_are_on_the_root_and_plain_roots_get_nothing() {
    let (engine, _clock) = engine("");
    engine.observe(&TestSpan::llm("task-u", 1, 1_000).input());
    let mut s = TestSpan::llm("task-u", 2, 0);
    s.llm = Some(LlmUsage {
        unpriced: tollgate::units::Unpriced::one("unknown_model").unwrap(),
        ..Default::default()
    });
    engine.observe(&s.input());
    let span = decode_added(&engine.observe(&TestSpan::root("task-u").input()));
    assert_eq!(
        attr(&span, "tollgate.task.llm_calls"),
        Some(&Value::IntValue(2))
    );
    assert_eq!(
        attr(&span, "tollgate.task.unpriced_calls"),
        Some(&Value::IntValue(1))
    );

    // A plain trace: its root passes without roll-up attributes.
    let added = engine.observe(&TestSpan::root("task-plain").input());
    assert!(decode_added(&added).attributes.is_empty(), "{added:?}");
    // A fully priced task has no unpriced_calls attribute.
    engine.observe(&TestSpan::llm("task-p", 1, 1_000).input());
    let span = decode_added(&engine.observe(&TestSpan::root("task-p").input()));
    assert_eq!(attr(&span, "tollgate.task.unpriced_calls"), None);
}
