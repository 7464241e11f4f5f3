//! Loading the config file: key paths and lines in errors, `${env:…}` expansion, secrets.

use std::collections::HashMap;

use serde::Deserialize;
use tollgate::app::config::Config;
use tollgate::config::{parse_str, ConfigError, IssueKind, Secret};

fn env(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
    pairs.iter().copied().collect()
}

fn issues_of(text: &str, vars: &[(&'static str, &'static str)]) -> Vec<tollgate::config::Issue> {
    match Config::from_str_with_env(text, &env(vars)) {
        Err(ConfigError::Invalid { issues, .. }) => issues,
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

const TWO_EXPORTERS: &str = r#"# tollgate
[receivers.otlp]
grpc = "127.0.0.1:4317"

[[exporters]]
name = "first"
kind = "console"

[[exporters]]
name = "second"
kind = "console"
endpont = "http://localhost:4318"
"#;

#[test]
fn unknown_key_names_the_key_path_and_line() {
    let issues = issues_of(TWO_EXPORTERS, &[]);
    assert_eq!(issues.len(), 1, "{issues:?}");
    let issue = &issues[0];
    assert_eq!(issue.kind, IssueKind::Schema);
    assert_eq!(issue.path, "exporters[1].endpont");
    let location = issue.location.expect("has a location");
    assert_eq!(location.line, 12);
    assert_eq!(location.column, 1);
    let text = issue.to_string();
    assert!(text.contains("line 12"), "{text}");
    assert!(text.contains("exporters[1].endpont"), "{text}");
    assert!(text.contains("unknown field `endpont`"), "{text}");
}

#[test]
fn unknown_top_level_section_is_an_error() {
    let issues = issues_of("[recievers.otlp]\ngrpc = \"127.0.0.1:4317\"\n", &[]);
    assert_eq!(issues[0].path, "recievers");
    assert_eq!(issues[0].location.map(|l| l.line), Some(1));
}

#[test]
fn wrong_type_names_the_key_and_line() {
    let text = "[pipeline]\n\nmemory_limit_mib = \"lots\"\n";
    let issue = &issues_of(text, &[])[0];
    assert_eq!(issue.kind, IssueKind::Schema);
    assert_eq!(issue.path, "pipeline.memory_limit_mib");
    assert_eq!(issue.location.map(|l| l.line), Some(3));
    assert!(issue.message.contains("invalid type"), "{issue}");
}

#[test]
fn env_references_expand_in_values_and_defaults_apply() {
    let text = r#"
[receivers.otlp]
grpc = "${env:GRPC_ADDR}"
http = "${env:HTTP_ADDR:-127.0.0.1:14318}"
[log]
level = "${env:LEVEL:-warn}"
"#;
    let config = Config::from_str_with_env(
        text,
        &env(&[("GRPC_ADDR", "127.0.0.1:24317"), ("LEVEL", "")]),
    )
    .unwrap();
    assert_eq!(config.receivers.otlp.grpc, "127.0.0.1:24317");
    assert_eq!(config.receivers.otlp.http, "127.0.0.1:14318");
    assert_eq!(
        config.log.level, "warn",
        "an empty variable takes the default"
    );
}

#[test]
fn missing_env_var_names_the_variable_and_where_it_was_used() {
    let text = "[admin]\n# ${env:IN_A_COMMENT} is ignored\nlisten = \"${env:ADMIN_ADDR}\"\n";
    let issues = issues_of(text, &[]);
    assert_eq!(issues.len(), 1, "{issues:?}");
    let issue = &issues[0];
    assert_eq!(issue.kind, IssueKind::Env);
    assert_eq!(issue.path, "admin.listen");
    assert_eq!(issue.location.map(|l| l.line), Some(3));
    assert!(issue.message.contains("ADMIN_ADDR"), "{issue}");
}

#[test]
fn escaped_reference_stays_literal() {
    let text = "[log]\nlevel = \"$${env:NOT_EXPANDED}\"\n";
    let issues = issues_of(text, &[]);
    // The literal `${env:NOT_EXPANDED}` is kept, and then refused as a log filter: proof that it
    // was neither expanded nor reported as a missing variable.
    assert_eq!(issues[0].kind, IssueKind::Invalid);
    assert!(
        issues[0].message.contains("${env:NOT_EXPANDED}"),
        "{}",
        issues[0]
    );
}

#[test]
fn validation_collects_several_errors() {
    let text = r#"
[admin]
listen = "not-an-address"
[[exporters]]
name = "a"
kind = "console"
[[exporters]]
name = "a"
kind = "console"
"#;
    let issues = issues_of(text, &[]);
    assert_eq!(issues.len(), 2, "{issues:?}");
    assert_eq!(issues[0].path, "admin.listen");
    assert_eq!(issues[0].location.map(|l| l.line), Some(3));
    assert_eq!(issues[1].path, "exporters[1].name");
    assert_eq!(issues[1].location.map(|l| l.line), Some(8));
}

#[test]
fn load_names_the_file_in_every_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, TWO_EXPORTERS).unwrap();
    let err = Config::load(&path).unwrap_err();
    let reasons = err.reasons();
    assert_eq!(reasons.len(), 1);
    assert!(
        reasons[0].starts_with(&format!("{}: line 12", path.display())),
        "{reasons:?}"
    );

    let missing = Config::load(dir.path().join("absent.toml")).unwrap_err();
    assert!(matches!(missing, ConfigError::Read { .. }), "{missing:?}");
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WithSecrets {
    token: Secret,
    backends: Vec<Backend>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Backend {
    name: String,
    headers: HashMap<String, Secret>,
}

#[test]
fn expanded_secrets_never_appear_in_debug_output() {
    let text = r#"
token = "${env:TOKEN}"
[[backends]]
name = "langfuse"
headers = { authorization = "Basic ${env:TOKEN}" }
"#;
    let vars = env(&[("TOKEN", "sk-lf-very-secret")]);
    let parsed: WithSecrets = parse_str(text, &vars).unwrap();
    let debug = format!("{parsed:?} {parsed:#?}");
    assert!(!debug.contains("very-secret"), "{debug}");
    assert!(debug.contains("REDACTED"));
    assert_eq!(parsed.token.expose(), "sk-lf-very-secret");
    assert_eq!(parsed.backends[0].name, "langfuse");
    assert_eq!(
        parsed.backends[0].headers["authorization"].expose(),
        "Basic sk-lf-very-secret"
    );
}

/// Answers every secret-looking variable (`*KEY*`, `*SECRET*`, `*TOKEN*`, `*PASSWORD*`) with a
/// probe value and leaves the rest unset, so defaults apply.
struct SecretProbeEnv;

const PROBE: &str = "probe-secret-value";

impl tollgate::config::EnvSource for SecretProbeEnv {
    fn get(&self, name: &str) -> Option<String> {
        let upper = name.to_ascii_uppercase();
        ["KEY", "SECRET", "TOKEN", "PASSWORD"]
            .iter()
            .any(|word| upper.contains(word))
            .then(|| PROBE.to_owned())
    }
}

#[test]
fn whole_config_debug_never_contains_an_env_secret() {
    // Whatever secret references the repository config holds (exporter API keys, headers), their
    // values must only ever land in `Secret` fields.
    let path = repo_config_path();
    if !path.exists() {
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let config =
        Config::from_str_with_env(&text, &SecretProbeEnv).unwrap_or_else(|e| panic!("{e}"));
    let debug = format!("{config:?} {config:#?}");
    assert!(!debug.contains(PROBE), "{debug}");
}

fn repo_config_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml")
}

#[test]
fn the_repository_config_toml_is_valid() {
    let path = repo_config_path();
    if !path.exists() {
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let config = Config::from_str_with_env(&text, &env(&[])).unwrap_or_else(|e| panic!("{e}"));
    // Loopback binds only by default.
    for addr in [
        &config.receivers.otlp.grpc,
        &config.receivers.otlp.http,
        &config.admin.listen,
    ] {
        assert!(
            addr.is_empty() || addr.starts_with("127.0.0.1:") || addr.starts_with("[::1]:"),
            "{addr}"
        );
    }
}

#[test]
fn a_disk_state_store_needs_a_path_or_a_storage_dir() {
    let issues = issues_of("[state]\nbackend = \"disk\"\n", &[]);
    assert!(
        issues
            .iter()
            .any(|i| i.path == "state.backend" && i.message.contains("needs a `path`")),
        "{issues:?}"
    );
    let config = Config::from_str_with_env(
        "[storage]\ndir = \"/var/lib/tg\"\n[state]\nbackend = \"disk\"\n",
        &env(&[]),
    )
    .expect("valid with [storage] dir");
    assert_eq!(
        config.state.path.as_deref(),
        Some(std::path::Path::new("/var/lib/tg/state"))
    );
    assert!(issues_of("[state]\nbackend = \"redis\"\n", &[])
        .iter()
        .any(|i| i.path.starts_with("state")));
}
