//! Acceptance: bad token values never panic and are marked and counted; the price table reloads.

mod llm_support;

use llm_support::*;
use proptest::prelude::*;
use tollgate::llm::{Enricher, PricingConfig, PricingStatus};

const USAGE_KEYS: &[&str] = &[
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.cache_write.ephemeral_1h_input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
    "llm.token_count.prompt",
    "llm.token_count.prompt_details.cache_read",
    "ai.usage.inputTokens",
    "ai.usage.inputTokenDetails.noCacheTokens",
    "llm.usage.input_tokens",
    "llm.input_tokens",
    "llm.cost.total",
    "gen_ai.request.model",
    "gen_ai.operation.name",
];

fn any_value() -> impl Strategy<Value = V> {
    prop_oneof![
        any::<i64>().prop_map(V::I),
        (0i64..2_000_000).prop_map(V::I),
        any::<f64>().prop_map(V::D),
        Just(V::D(f64::NAN)),
        Just(V::D(f64::INFINITY)),
        Just(V::I(-1)),
        Just(V::I(1_000_000_001)),
        any::<bool>().prop_map(V::B),
        ".{0,12}".prop_map(V::S),
        "-?[0-9]{1,12}".prop_map(V::S),
        Just(V::S("claude-sonnet-4-6".into())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_attribute_values_never_panic(
        attrs in proptest::collection::vec((0..USAGE_KEYS.len(), any_value()), 0..12),
        name in prop_oneof![Just("chat"), Just("ai.generateText"), Just("x")],
    ) {
        let enricher = Enricher::new(&PricingConfig::default()).unwrap();
        let owned: Vec<(&str, V)> = attrs.iter().map(|(k, v)| (USAGE_KEYS[*k], v.clone())).collect();
        let r = run(&enricher, &request(&[SpanSpec::new(name, &owned)], &[]));
        if let Some(o) = &r.outcomes[0] {
            let status = r.string(0, "tollgate.pricing.status");
            prop_assert_eq!(status.as_deref(), Some(o.status.as_str()));
            if o.status == PricingStatus::Priced {
                prop_assert!(o.total_nanos() >= 0);
            } else {
                prop_assert!(o.cost.is_none());
            }
        }
    }
}

#[test]
fn bad_token_values_are_invalid_usage_and_counted() {
    let enricher = Enricher::new(&PricingConfig::default()).unwrap();
    let bad = [
        s("many"),
        i(-5),
        V::D(f64::NAN),
        V::D(1e12),
        i(5_000_000_000),
        V::D(2.5),
        V::B(true),
    ];
    let before = unpriced("invalid_usage");
    for (n, v) in bad.iter().enumerate() {
        let span = SpanSpec::new(
            "chat",
            &[
                ("gen_ai.request.model", s("claude-sonnet-4-6")),
                ("gen_ai.usage.input_tokens", v.clone()),
                ("gen_ai.usage.output_tokens", i(10)),
            ],
        )
        .id(n as u8 + 1);
        let r = run(&enricher, &request(&[span], &[]));
        assert_eq!(
            r.string(0, "tollgate.pricing.status").as_deref(),
            Some("invalid_usage"),
            "{v:?}"
        );
        assert_eq!(r.double(0, "llm.cost.total"), None);
        assert_eq!(
            r.outcomes[0].as_ref().unwrap().status,
            PricingStatus::InvalidUsage
        );
    }
    assert!(unpriced("invalid_usage") >= before + bad.len() as u64);
}

fn span(trace: u8) -> SpanSpec {
    SpanSpec::new(
        "chat",
        &[
            ("gen_ai.request.model", s("acme-1")),
            ("gen_ai.usage.input_tokens", i(1000)),
            ("gen_ai.usage.output_tokens", i(1000)),
        ],
    )
    .trace(trace)
}

#[test]
fn reload_applies_new_prices_and_keeps_old_on_error() {
    let v1: PricingConfig =
        toml::from_str("[[models]]\nname = \"acme-1\"\ninput = 1\noutput = 2\n").unwrap();
    let enricher = Enricher::new(&v1).unwrap();
    let total = |t: u8| {
        run(&enricher, &request(&[span(t)], &[])).outcomes[0]
            .as_ref()
            .unwrap()
            .total_nanos()
    };
    // 1000 × 1000 + 1000 × 2000.
    assert_eq!(total(1), 3_000_000);

    let v2: PricingConfig =
        toml::from_str("[[models]]\nname = \"acme-1\"\ninput = 2\noutput = 4\n").unwrap();
    enricher.pricer().reload(&v2).unwrap();
    assert_eq!(total(2), 6_000_000);

    let errors_before = tollgate::llm::metrics::metrics()
        .pricing_reloads
        .with_label_values(&["error"])
        .get();
    let broken: PricingConfig = toml::from_str(
        "[[models]]\nname = \"acme-1\"\nmatch = [\"regex:(\"]\ninput = 9\noutput = 9\n",
    )
    .unwrap();
    assert!(enricher.pricer().reload(&broken).is_err());
    assert_eq!(total(3), 6_000_000, "old prices stay");
    let errors_after = tollgate::llm::metrics::metrics()
        .pricing_reloads
        .with_label_values(&["error"])
        .get();
    assert!(errors_after > errors_before);
}
