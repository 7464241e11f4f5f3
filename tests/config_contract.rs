//! The configuration examples written in the issues are the contract: each must validate as is.

use std::collections::HashMap;

use tollgate::app::config::Config;

fn env() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("LANGFUSE_PUBLIC_KEY", "pk-lf-test"),
        ("LANGFUSE_SECRET_KEY", "sk-lf-test"),
    ])
}

#[test]
fn the_pipeline_example_validates() {
    let text = r#"
[receivers.otlp]
grpc = "127.0.0.1:4317"
http = "127.0.0.1:4318"

[admin]
listen = "127.0.0.1:9464"

[[exporters]]
name = "langfuse"
kind = "langfuse"
host = "https://cloud.langfuse.com"
public_key = "${env:LANGFUSE_PUBLIC_KEY}"
secret_key = "${env:LANGFUSE_SECRET_KEY}"

[[exporters]]
name = "tempo"
kind = "tempo"
endpoint = "http://tempo:4317"
tenant = "team-a"
"#;
    let config = Config::from_str_with_env(text, &env()).expect("the issue's example is valid");
    assert_eq!(config.exporters.len(), 2);
    // Secrets are expanded but never printed.
    let debug = format!("{config:?}");
    assert!(!debug.contains("sk-lf-test"), "secret leaked: {debug}");
}

#[test]
fn the_pricing_example_validates() {
    let text = r#"
[pricing]
builtin = true

[[pricing.models]]
name = "claude-sonnet-4-6"
provider = "anthropic"
match = ["claude-sonnet-4-6*", "anthropic.claude-sonnet-4-6*", "*.anthropic.claude-sonnet-4-6*"]
input = 3.00
output = 15.00
cache_read = 0.30
cache_write = 3.75
cache_write_1h = 6.00
effective_from = "2026-01-01"

[[pricing.models.tiers]]
above_input_tokens = 200000
input = 6.00
output = 22.50
cache_read = 0.60
cache_write = 7.50
cache_write_1h = 12.00

[[pricing.overrides]]
when = { "service.name" = "checkout-agent" }
discount = 0.22
"#;
    Config::from_str_with_env(text, &env()).expect("the issue's example is valid");
}

#[test]
fn the_alert_rules_example_validates() {
    let text = r#"
[[alerts.rules]]
name = "task_cost_over_budget"
scope = "task"
metric = "cost_usd"
op = ">"
threshold = 0.50
severity = "warning"

[[alerts.rules]]
name = "cache_hit_ratio_low"
scope = "window"
window = "15m"
group_by = ["service.name"]
metric = "cache_hit_ratio"
op = "<"
threshold = 0.70
min_input_tokens = 100000
severity = "warning"

[[alerts.rules]]
name = "slow_llm_call"
scope = "span"
metric = "duration_ms"
op = ">"
threshold = 30000
where = { "gen_ai.provider.name" = "anthropic" }
"#;
    Config::from_str_with_env(text, &env()).expect("the issue's example is valid");
}

#[test]
fn an_unknown_metric_in_a_rule_is_a_config_error_naming_the_rule() {
    let text = "[[alerts.rules]]\nname = \"r1\"\nscope = \"task\"\nmetric = \"vibes\"\nop = \">\"\nthreshold = 1\n";
    let err = Config::from_str_with_env(text, &env()).expect_err("invalid");
    let reasons = err.reasons().join("\n");
    assert!(
        reasons.contains("r1") && reasons.contains("vibes"),
        "{reasons}"
    );
}

#[test]
fn the_budget_example_validates_and_a_bad_budget_names_its_entry() {
    let text = r#"
[[budgets]]
name = "per-user-daily"
key = "user.id"
period = "day"
limit_usd = 1.00
warn_at = [0.8]

[[budgets]]
name = "per-tenant-month"
key = ["tenant.id", "user.id"]
period = "month"
timezone = "Europe/Berlin"
limit_usd = "250.5"
where = { "deployment.environment" = "prod" }
"#;
    let config = Config::from_str_with_env(text, &env()).expect("the issue's example is valid");
    assert_eq!(config.budgets.len(), 2);
    let bad = "[[budgets]]\nname = \"b\"\nkey = \"user.id\"\nperiod = \"fortnight\"\nlimit_usd = 1\nwarn_at = [2]\n";
    let err = Config::from_str_with_env(bad, &env()).expect_err("invalid");
    let reasons = err.reasons().join("\n");
    assert!(
        reasons.contains("budgets[0]")
            && reasons.contains("fortnight")
            && reasons.contains("warn_at"),
        "{reasons}"
    );
}
