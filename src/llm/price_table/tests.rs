//! Tests of `price_table`.
use super::compile::parse_date_ns;
use super::*;

#[test]
fn canonical_forms() {
    for (id, want) in [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("anthropic/claude-sonnet-4-6", "claude-sonnet-4-6"),
        ("us.anthropic.claude-sonnet-4-6-v1:0", "claude-sonnet-4-6"),
        (
            "global.anthropic.claude-opus-4-5-20251101-v1:0",
            "claude-opus-4-5",
        ),
        ("claude-sonnet-4-6@20260101", "claude-sonnet-4-6"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("gpt-5.4", "gpt-5.4"),
        ("o4-mini", "o4-mini"),
    ] {
        assert_eq!(canonical_model(id), want, "{id}");
    }
}

#[test]
fn builtin_table_validates_and_resolves_spellings() {
    let t = validate(&PricingConfig::default()).unwrap();
    for (id, want) in [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("Claude-Sonnet-4-6", "claude-sonnet-4-6"),
        (
            "eu.anthropic.claude-haiku-4-5-20251001-v1:0",
            "claude-haiku-4-5",
        ),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai/gpt-5-nano", "gpt-5-nano"),
        ("gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
        ("claude-opus-4-0", "claude-opus-4"),
    ] {
        assert_eq!(
            t.resolve(id, 0).map(|e| e.name.to_string()).as_deref(),
            Some(want),
            "{id}"
        );
    }
    assert_eq!(t.resolve("llama-3-70b", 0), None);
}

fn model(name: &str, patterns: &[&str], input: &str) -> ModelPrice {
    toml::from_str(&format!(
        "name = {name:?}\nmatch = {patterns:?}\ninput = {input:?}\noutput = \"1\""
    ))
    .unwrap()
}

#[test]
fn user_wins_and_exact_beats_patterns() {
    let mut c = PricingConfig::default();
    c.models.push(model("claude-sonnet-4-6", &[], "9"));
    c.models
        .push(model("catch-all", &["claude-*", "regex:^my-.*$"], "7"));
    let t = validate(&c).unwrap();
    let rates = |m: &str| {
        let u = Usage {
            input: 1_000_000,
            ..Usage::default()
        };
        t.price(&PriceRequest {
            model: m,
            usage: &u,
            at_unix_nano: 0,
            batch: false,
            discount: None,
        })
        .map(|q| (q.entry.name.to_string(), q.cost.input))
    };
    assert_eq!(
        rates("claude-sonnet-4-6").unwrap(),
        ("claude-sonnet-4-6".into(), 9_000_000_000)
    );
    // Exact shipped name beats the user's pattern.
    assert_eq!(rates("claude-haiku-4-5").unwrap().0, "claude-haiku-4-5");
    assert_eq!(rates("claude-unknown").unwrap().0, "catch-all");
    assert_eq!(rates("MY-model").unwrap().0, "catch-all");
    assert_eq!(rates("other"), Err(Unpriced::UnknownModel));
}

#[test]
fn effective_dates_pick_the_version_in_force() {
    let mut c = PricingConfig {
        builtin: false,
        ..PricingConfig::default()
    };
    let mut old = model("m", &[], "1");
    old.effective_from = Some("2026-01-01".into());
    let mut new = model("m", &[], "2");
    new.effective_from = Some("2026-06-01".into());
    c.models = vec![new, old];
    let t = validate(&c).unwrap();
    let at = |d: &str| parse_date_ns(d).unwrap() + 1;
    assert_eq!(
        t.resolve("m", at("2026-03-01"))
            .unwrap()
            .effective_from
            .as_deref(),
        Some("2026-01-01")
    );
    assert_eq!(
        t.resolve("m", at("2026-07-01"))
            .unwrap()
            .effective_from
            .as_deref(),
        Some("2026-06-01")
    );
    assert_eq!(
        t.resolve("m", at("2025-01-01"))
            .unwrap()
            .effective_from
            .as_deref(),
        Some("2026-01-01")
    );
}

#[test]
fn validation_collects_every_error() {
    let mut c = PricingConfig::default();
    let mut bad_date = model("a", &["regex:("], "1");
    bad_date.effective_from = Some("yesterday".into());
    c.models = vec![model("", &[], "1"), model("b", &["regex:("], "1"), bad_date];
    c.overrides
        .push(toml::from_str("when = {}\ndiscount = 0.1").unwrap());
    let errs = validate(&c).unwrap_err();
    assert!(errs
        .iter()
        .any(|e| matches!(e, PricingError::EmptyName { .. })));
    assert!(errs
        .iter()
        .any(|e| matches!(e, PricingError::BadPattern { .. })));
    assert!(errs
        .iter()
        .any(|e| matches!(e, PricingError::BadDate { .. })));
    assert!(errs
        .iter()
        .any(|e| matches!(e, PricingError::EmptyOverride { .. })));
    let dup = PricingConfig {
        models: vec![model("x", &[], "1"), model("X", &[], "2")],
        ..PricingConfig::default()
    };
    assert!(matches!(
        validate(&dup).unwrap_err()[0],
        PricingError::Duplicate { .. }
    ));
}
