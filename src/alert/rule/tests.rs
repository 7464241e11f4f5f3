use super::*;

fn rule(toml_src: &str) -> Result<Rule, Vec<AlertsError>> {
    let cfg: RuleConfig = toml::from_str(toml_src).unwrap();
    Rule::compile(0, &cfg)
}

fn reasons(r: Result<Rule, Vec<AlertsError>>) -> String {
    r.err()
        .unwrap()
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn config_errors_name_the_rule() {
    let e = reasons(rule(
        "name='r1'\nscope='task'\nmetric='bogus'\nop='>'\nthreshold=1.0",
    ));
    assert!(e.contains("\"r1\"") && e.contains("unknown metric"), "{e}");
    let e = reasons(rule(
        "name='r2'\nscope='task'\nmetric='cost_usd'\nop='=>'\nthreshold=1.0",
    ));
    assert!(e.contains("\"r2\"") && e.contains("operator"), "{e}");
    let e = reasons(rule(
        "name='r3'\nscope='window'\nwindow='fifteen'\nmetric='cost_usd'\nop='>'\nthreshold=1.0",
    ));
    assert!(
        e.contains("\"r3\"") && e.contains(r#"`window`: "fifteen" is not a duration"#),
        "{e}"
    );
    let e = reasons(rule(
        "name='r4'\nscope='task'\nmetric='duration_ms'\nop='>'\nthreshold=1.0",
    ));
    assert!(e.contains("not valid for scope task"), "{e}");
    let e = reasons(rule(
        "name='r5'\nscope='span'\nmetric='p95_duration_ms'\nop='>'\nthreshold=1.0",
    ));
    assert!(e.contains("not valid for scope span"), "{e}");
    let e = reasons(rule(
        "name='r6'\nscope='forever'\nmetric='cost_usd'\nop='>'\nthreshold=1.0",
    ));
    assert!(e.contains("unknown scope"), "{e}");
    let e = reasons(rule(
        "name='r7'\nscope='window'\nwindow='1m'\nfor='a while'\nmetric='cost_usd'\nop='>'\nthreshold=1.0",
    ));
    assert!(e.contains("`for`"), "{e}");
}

#[test]
fn group_keys_split_back_into_their_values() {
    for values in [
        vec![],
        vec![""],
        vec!["svc", ""],
        vec!["a:1", "2:b", "é:ü", "12"],
        vec!["", "", "x"],
    ] {
        let mut key = String::new();
        for v in &values {
            super::push_part(&mut key, v);
        }
        assert_eq!(super::split_group_key(&key), values, "{key}");
    }
    // Distinct values never share a key.
    let mut a = String::new();
    let mut b = String::new();
    for v in ["a:", "b"] {
        super::push_part(&mut a, v);
    }
    for v in ["a", ":b"] {
        super::push_part(&mut b, v);
    }
    assert_ne!(a, b);
}

#[test]
fn referenced_attributes_come_from_the_span_then_the_resource() {
    use crate::otlp::common::v1::{any_value, AnyValue, KeyValue};
    use crate::otlp::resource::v1::Resource;
    use crate::otlp::trace::v1::Span;
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    let cfgs: Vec<RuleConfig> = vec![
        toml::from_str("name='a'\nscope='span'\nmetric='llm_calls'\nop='>'\nthreshold=0.0\nwhere={ env = 'prod' }").unwrap(),
        toml::from_str("name='b'\nscope='window'\nwindow='1m'\ngroup_by=['service.name']\nmetric='llm_calls'\nop='>'\nthreshold=0.0").unwrap(),
    ];
    let rules = AlertRules::compile(&cfgs, None).unwrap();
    let span = Span {
        attributes: vec![kv("env", "prod"), kv("other", "x")],
        ..Default::default()
    };
    let resource = Resource {
        attributes: vec![kv("env", "dev"), kv("service.name", "svc")],
        ..Default::default()
    };
    let view = crate::wire::prost_view::ProstSpan::new(&span, Some(&resource), None);
    let mut out = Vec::new();
    rules.extract_attributes(&view, &mut out);
    assert_eq!(
        out,
        vec![
            ("env", AttrValue::Str("prod")),
            ("service.name", AttrValue::Str("svc"))
        ]
    );
}

#[test]
fn ops_compare() {
    assert!(Op::parse(">").unwrap().holds(2, 1));
    assert!(Op::parse(">=").unwrap().holds(1, 1));
    assert!(Op::parse("<").unwrap().holds(0.4, 0.7));
    assert!(Op::parse("<=").unwrap().holds(0.7, 0.7));
    assert!(Op::parse("==").unwrap().holds(3, 3));
    assert!(Op::parse("!=").unwrap().holds(3, 4));
    assert!(Op::parse("~").is_none());
}

#[test]
fn cost_compares_exactly_in_nano_usd() {
    let r = rule("name='c'\nscope='task'\nmetric='cost_usd'\nop='>'\nthreshold=0.5").unwrap();
    let at = |n| {
        r.holds(
            r.value(&Measures {
                cost_nano_usd: n,
                ..Measures::default()
            })
            .unwrap(),
        )
    };
    assert!(!at(500_000_000));
    assert!(at(500_000_001));
    assert_eq!(Value::Nano(600_000_000).text(), "0.6");
}

#[test]
fn where_filters_and_min_input_tokens() {
    let r = rule(
        "name='w'\nscope='span'\nmetric='duration_ms'\nop='>'\nthreshold=1.0\nmin_input_tokens=10\nwhere={ 'gen_ai.provider.name' = 'anthropic', 'retries' = 2 }",
    )
    .unwrap();
    let attrs = [
        ("gen_ai.provider.name", AttrValue::Str("anthropic")),
        ("retries", AttrValue::Int(2)),
    ];
    let mut span = SpanInput {
        attributes: &attrs,
        ..SpanInput::default()
    };
    assert!(r.matches(&span));
    let other = [("gen_ai.provider.name", AttrValue::Str("openai"))];
    span.attributes = &other;
    assert!(!r.matches(&span));
    assert_eq!(r.value(&Measures::default()), None);
    assert_eq!(sanitize_label("service.name"), "service_name");
    assert_eq!(sanitize_label("9x"), "_9x");
}

#[test]
fn a_rules_marker_id_is_the_same_in_every_build() {
    // The first 8 bytes of SHA-256("expensive_task"), big-endian: a disk state store written by
    // one build must find the fire-once markers of the same rule after an upgrade.
    let r = rule(
        "name = \"expensive_task\"\nscope = \"task\"\nmetric = \"cost_usd\"\nop = \">\"\nthreshold = 0.5\n",
    )
    .unwrap();
    assert_eq!(r.id, 1_506_095_739_621_376_993);
}
