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
