//! The `tollgate` binary: `check` exit codes and messages, `--version`, `TOLLGATE_CONFIG`.

use std::path::Path;
use std::process::{Command, Output};

fn tollgate(args: &[&str], config_env: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.args(args)
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("RUST_LOG");
    if let Some(path) = config_env {
        cmd.env("TOLLGATE_CONFIG", path);
    }
    cmd.output().expect("runs the binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const VALID: &str = r#"
[receivers.otlp]
grpc = "127.0.0.1:4317"
http = ""
[[exporters]]
name = "debug"
kind = "console"
"#;

#[test]
fn check_accepts_a_valid_file_and_summarises_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.toml");
    std::fs::write(&path, VALID).unwrap();
    let out = tollgate(&["check", "--config", path.to_str().unwrap()], None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("configuration is valid"), "{stdout}");
    assert!(
        stdout.contains("receivers: OTLP/gRPC on 127.0.0.1:4317"),
        "{stdout}"
    );
    assert!(stdout.contains("exporters: debug (console)"), "{stdout}");
}

#[test]
fn check_refuses_an_invalid_file_with_every_reason_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let bad = "[admin]\nlisten = \"nowhere\"\n[[exporters]]\nname = \"x\"\nkind = \"console\"\n\
               [[exporters]]\nname = \"x\"\nkind = \"console\"\n";
    std::fs::write(&path, bad).unwrap();
    let out = tollgate(&["check", "--config", path.to_str().unwrap()], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let reasons: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(reasons.len(), 2, "{stderr}");
    assert!(
        reasons[0].contains("line 2") && reasons[0].contains("admin.listen"),
        "{stderr}"
    );
    assert!(
        reasons[1].contains("line 7") && reasons[1].contains("exporters[1].name"),
        "{stderr}"
    );
}

#[test]
fn check_reports_unknown_keys_and_missing_env_vars() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[log]\nlevle = \"info\"\n").unwrap();
    let out = tollgate(&["check", "-c", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("line 2, column 1: log.levle: unknown field `levle`"),
        "{}",
        text(&out.stderr)
    );

    std::fs::write(
        &path,
        "[admin]\nlisten = \"${env:TOLLGATE_TEST_UNSET_VAR}\"\n",
    )
    .unwrap();
    let out = tollgate(&["check", "-c", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("TOLLGATE_TEST_UNSET_VAR"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_of_a_missing_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let out = tollgate(&["check", "--config", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read config file"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn config_path_comes_from_tollgate_config_env() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("from-env.toml");
    std::fs::write(&path, VALID).unwrap();
    let out = tollgate(&["check"], Some(&path));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("from-env.toml"));
}

#[test]
fn run_with_an_invalid_config_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "nonsense = 1\n").unwrap();
    let out = tollgate(&["run", "--config", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = tollgate(&["--config", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn version_prints_the_package_version() {
    let out = tollgate(&["--version"], None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("tollgate {}", env!("CARGO_PKG_VERSION"))
    );
}

/// Issue 18 point 8: `price --config` reads only `[pricing]`: exporter secrets that are not set
/// do not stop it, while `check` still refuses the file; a broken `[pricing]` is still refused.
#[test]
fn price_needs_only_the_pricing_section() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    let exporters = "[[exporters]]\nname = \"lf\"\nkind = \"langfuse\"\n\
                     endpoint = \"https://cloud.langfuse.com\"\n\
                     public_key = \"${env:TOLLGATE_TEST_UNSET_PK}\"\n\
                     secret_key = \"${env:TOLLGATE_TEST_UNSET_SK}\"\n";
    let pricing = "[pricing]\nbuiltin = false\n[[pricing.models]]\nname = \"m-1\"\n\
                   provider = \"x\"\ninput = 2.0\noutput = 4.0\n";
    std::fs::write(&path, format!("{pricing}{exporters}")).unwrap();
    let p = path.to_str().unwrap();
    let out = tollgate(&["check", "--config", p], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let out = tollgate(&["price", "m-1", "--input", "1000", "--config", p], None);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("total           $0.002000000"),
        "{}",
        text(&out.stdout)
    );
    // A broken [pricing] is reported.
    std::fs::write(&path, format!("{pricing}inptu = 3\n{exporters}")).unwrap();
    let out = tollgate(&["price", "m-1", "--input", "1000", "--config", p], None);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("pricing.models[0]") && err.contains("inptu"),
        "{err}"
    );
    assert!(err.contains("line 8"), "{err}");
}

#[test]
fn check_warns_about_open_listeners_without_receiver_auth() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("open.toml");
    // Only checked, never bound.
    std::fs::write(
        &path,
        "[receivers.otlp]\ngrpc = \"0.0.0.0:4317\"\nhttp = \"127.0.0.1:4318\"\n",
    )
    .unwrap();
    let out = tollgate(&["check", "--config", path.to_str().unwrap()], None);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning, not an error: {stderr}"
    );
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("receivers.otlp.grpc = \"0.0.0.0:4317\"")
            && warnings[0].contains("authentication is off")
            && warnings[0].contains("bearer_tokens"),
        "{stderr}"
    );

    std::fs::write(
        &path,
        "[receivers.otlp]\ngrpc = \"0.0.0.0:4317\"\nhttp = \"0.0.0.0:4318\"\n\
         [receivers.otlp.auth]\nbearer_tokens = [\"${env:TG_TEST_TOKEN}\"]\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    let out = cmd
        .args(["check", "--config", path.to_str().unwrap()])
        .env("TG_TEST_TOKEN", "s3cret")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("warning:"),
        "auth on: no warning: {stderr}"
    );
}

/// The `error:` lines of a `check` of `text`, which must exit 2.
fn check_errors(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(&path, text).unwrap();
    let out = tollgate(&["check", "--config", path.to_str().unwrap()], None);
    let stderr = text_of(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("error: "))
        .map(|l| {
            l.split_once(": ")
                .map_or(l, |(_file, rest)| rest)
                .to_owned()
        })
        .collect()
}

fn text_of(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// Issue 18 point 3: every parse, type and validation problem of the file is reported, each at
/// its own key's line, with durations explained in words.
#[test]
fn check_reports_every_problem_each_at_its_own_line() {
    let five = r#"[tasks]
idle_timeout = "-5s"

[log]
levle = "info"

[[pricing.models]]
name = "m"
provider = "x"
input = 1.0
output = "five"

[[alerts.rules]]
name = "r"
scope = "task"
metric = "cost_usd"
op = "=>"
threshold = 1.0

[[exporters]]
name = "a"
kind = "console"
timeout = "abc"
"#;
    let errors = check_errors(five);
    assert_eq!(errors.len(), 5, "{errors:#?}");
    let expect = [
        (
            2,
            "tasks.idle_timeout",
            r#""-5s": durations cannot be negative; write e.g. "30s""#,
        ),
        (5, "log.levle", "unknown field `levle`"),
        (11, "pricing.models[0].output", "`five` is not"),
        (17, "alerts.rules[0].op", "unknown operator \"=>\""),
        (
            23,
            "exporters[0].timeout",
            r#""abc" is not a duration: write a number and a unit, e.g. "30s""#,
        ),
    ];
    for (line, path, words) in expect {
        let found = errors.iter().find(|e| e.contains(&format!(" {path}: ")));
        let Some(e) = found else {
            panic!("no error at {path}: {errors:#?}")
        };
        assert!(e.starts_with(&format!("line {line}, ")), "{e}");
        assert!(e.contains(words), "{e}");
        assert!(!e.contains("expected number at"), "{e}");
    }
}

/// Issue 18 point 3: an unset `${env:…}` does not hide the file's other problems, and a value
/// whose variable is missing is not reported a second time.
#[test]
fn check_reports_env_and_schema_problems_together() {
    let errors = check_errors(
        "[admin]\nlisten = \"${env:TOLLGATE_TEST_UNSET_LISTEN}\"\n[tasks]\nmax_active = \"many\"\n",
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("line 2, ") && errors[0].contains("TOLLGATE_TEST_UNSET_LISTEN"),
        "{errors:#?}"
    );
    assert!(
        errors[1].starts_with("line 4, ") && errors[1].contains("tasks.max_active"),
        "{errors:#?}"
    );
}

/// Issue 18 point 3: zero is refused where it makes no sense, at the key's line; where it means
/// "off" (`[reload] poll_interval`) it is taken.
#[test]
fn check_refuses_zero_where_it_makes_no_sense() {
    let errors = check_errors(
        "[tasks]\nidle_timeout = \"0s\"\n[receivers.otlp]\nheader_read_timeout = \"0ms\"\n",
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("line 2, ")
            && errors[0].contains(r#"tasks.idle_timeout: "0s": must be more than zero here"#),
        "{errors:#?}"
    );
    assert!(
        errors[1].starts_with("line 4, ")
            && errors[1].contains("receivers.otlp.header_read_timeout"),
        "{errors:#?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("off.toml");
    std::fs::write(&path, "[reload]\npoll_interval = \"0s\"\n").unwrap();
    let out = tollgate(&["check", "--config", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", text_of(&out));
}

/// Issue 18 points 3 and 10: a rule's problem points at its own key in its own
/// `[[alerts.rules]]` table, not at the first table or `[alerts]`.
#[test]
fn rule_errors_point_at_the_bad_key_of_their_own_rule() {
    let errors = check_errors(
        "[[alerts.rules]]\nname = \"ok\"\nscope = \"task\"\nmetric = \"cost_usd\"\nop = \">\"\n\
         threshold = 1.0\n\n[[alerts.rules]]\nname = \"bad\"\nscope = \"task\"\n\
         metric = \"cost_usd\"\nop = \"=>\"\nthreshold = 1.0\nwindow = \"5m\"\n",
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("line 12, ")
            && errors[0].contains("alerts.rules[1].op: alert rule \"bad\": unknown operator"),
        "{errors:#?}"
    );
    assert!(
        errors[1].starts_with("line 14, ") && errors[1].contains("alerts.rules[1].window"),
        "{errors:#?}"
    );
}

/// Issue 18 point 10: an exporter's problem points at its own `[[exporters]]` table (or key),
/// names the kind as written in the file and names every stray key.
#[test]
fn exporter_errors_point_at_their_own_table_and_name_every_stray_key() {
    let errors = check_errors(
        "[[exporters]]\nname = \"a\"\nkind = \"console\"\n\n\
         [[exporters]]\nname = \"lf\"\nkind = \"langfuse\"\npublic_key = \"pk\"\n\
         secret_key = \"sk\"\napi_key = \"x\"\ntenant = \"t\"\n\n\
         [[exporters]]\nname = \"f\"\nkind = \"file\"\n",
    );
    assert_eq!(errors.len(), 3, "{errors:#?}");
    let api_key = errors.iter().find(|e| e.contains("exporters[1].api_key"));
    let tenant = errors.iter().find(|e| e.contains("exporters[1].tenant"));
    let (Some(api_key), Some(tenant)) = (api_key, tenant) else {
        panic!("{errors:#?}")
    };
    assert!(api_key.starts_with("line 10, "), "{api_key}");
    assert!(tenant.starts_with("line 11, "), "{tenant}");
    assert!(
        api_key.contains("`api_key` is not a key of kind langfuse")
            && api_key.contains("host, public_key, secret_key"),
        "{api_key}"
    );
    assert!(!api_key.contains("Langfuse"), "{api_key}");
    let file = errors.iter().find(|e| e.contains("exporters[2]")).unwrap();
    assert!(
        file.starts_with("line 13, ") && file.contains("file needs a `path`"),
        "{file}"
    );
}

/// Issue 18 point 4: an unknown key in an `[[exporters]]` table lists the keys of that kind
/// only.
#[test]
fn unknown_exporter_key_lists_only_the_keys_of_its_kind() {
    let errors = check_errors(
        "[[exporters]]\nname = \"c\"\nkind = \"otlp_http\"\nendpointt = \"http://x:4318\"\n",
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = &errors[0];
    assert!(
        e.starts_with("line 4, ")
            && e.contains(
                "exporters[0].endpointt: unknown field `endpointt`; kind otlp_http takes"
            )
            && e.contains("`endpoint`")
            && e.contains("`traces_endpoint`"),
        "{e}"
    );
    for other in ["`public_key`", "`tenant`", "`api_key`", "`url`", "`path`"] {
        assert!(!e.contains(other), "{other} is not an otlp_http key: {e}");
    }
}
