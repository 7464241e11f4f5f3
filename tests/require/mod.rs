//! "This test needs a real program": the one helper every test that runs a real component
//! (Prometheus, Alertmanager, Chromium, redis-server, PostgreSQL, ...) calls first.
//!
//! ```ignore
//! mod require;
//! let Some(prometheus) = require::program("prometheus", "apt-get install prometheus") else {
//!     return;
//! };
//! ```
//!
//! - Under CI (`CI` set to anything but `""`, `0` or `false`) a missing program **fails** the
//!   test: a missing install step in `scripts/install-test-deps.sh` must never show green.
//! - Locally the test is skipped loudly: a `SKIPPED` line on stderr (cargo shows it only for
//!   failures) and a line in `target/tmp/skipped-real-components.txt`, which
//!   `scripts/test.sh` prints at the end of the run.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where skipped tests are listed (under cargo's target directory).
pub const SKIP_LIST: &str = "skipped-real-components.txt";

/// The path of `name` on `PATH`, or `None` when the test must be skipped (locally only; under CI
/// this panics). `install` says how to get it (e.g. `apt-get install prometheus`).
pub fn program(name: &str, install: &str) -> Option<PathBuf> {
    program_in(name, &[], install)
}

/// [`program`], also looking in `dirs` after `PATH` (PostgreSQL's server programs live in
/// `/usr/lib/postgresql/<version>/bin` on Debian, not on `PATH`).
pub fn program_in(name: &str, dirs: &[PathBuf], install: &str) -> Option<PathBuf> {
    let list = std::env::var_os("TOLLGATE_SKIP_LIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join(SKIP_LIST));
    let found =
        find_on_path(name).or_else(|| dirs.iter().map(|d| d.join(name)).find(|p| is_executable(p)));
    decide(name, found, install, in_ci(), &list)
}

/// Runs the test `test` of the current test binary again with an empty `PATH` (so `program` is
/// missing): under `CI=true` it must fail naming `program`; without CI it must pass, say
/// `SKIPPED` and list itself. Shows that the test really requires its program.
pub fn assert_missing_program_fails_under_ci(test: &str, program: &str) {
    let exe = std::env::current_exe().expect("the test binary");
    let empty = tempfile::tempdir().expect("temp dir");
    let list = empty.path().join(SKIP_LIST);
    let run = |ci: Option<&str>| {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["--exact", test, "--nocapture", "--test-threads", "1"])
            .env("PATH", empty.path())
            .env("TOLLGATE_SKIP_LIST", &list)
            .env("RUST_BACKTRACE", "0")
            .env_remove("CI");
        if let Some(ci) = ci {
            cmd.env("CI", ci);
        }
        let out = cmd.output().expect("the test binary runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = run(Some("true"));
    assert!(
        !ok,
        "{test} passed under CI=true without {program}:\n{text}"
    );
    assert!(
        text.contains(&format!("{program} is not installed")),
        "{text}"
    );
    assert!(text.contains("1 failed"), "{text}");
    let (ok, text) = run(None);
    assert!(ok, "{test} failed locally without {program}:\n{text}");
    assert!(text.contains("SKIPPED"), "{text}");
    let listed = std::fs::read_to_string(&list).unwrap_or_default();
    assert!(
        listed.contains(test) && listed.contains(program),
        "{listed}"
    );
}

/// Whether this is a CI run (`CI=true`, as CI services set it).
pub fn in_ci() -> bool {
    ci_value(std::env::var("CI").ok().as_deref())
}

/// Whether a `CI` value means CI.
pub fn ci_value(value: Option<&str>) -> bool {
    value.is_some_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// The first executable `name` on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What [`program`] does once it has looked: pass `found` on, fail (CI) or skip and list.
pub fn decide(
    name: &str,
    found: Option<PathBuf>,
    install: &str,
    ci: bool,
    list: &Path,
) -> Option<PathBuf> {
    if found.is_some() {
        return found;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("(unnamed test)")
        .to_string();
    if ci {
        panic!(
            "{name} is not installed, and under CI=true a test that needs a real program fails \
             instead of skipping ({test}). scripts/install-test-deps.sh must install it ({install})."
        );
    }
    let line = format!(
        "SKIPPED {test}: `{name}` is not installed ({install}; bash scripts/install-test-deps.sh \
         installs it). Under CI=true this fails."
    );
    eprintln!("\n*** {line} ***\n");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(list)
    {
        if let Err(error) = writeln!(file, "{line}") {
            eprintln!("could not list the skip in {}: {error}", list.display());
        }
    }
    None
}
