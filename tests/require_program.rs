//! The "require a real program" helper: fails under CI, skips loudly (and is listed) locally.

mod require;

use require::*;

#[test]
fn ci_fails_and_local_skips_when_a_program_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join(SKIP_LIST);
    assert!(ci_value(Some("true")));
    assert!(ci_value(Some("1")));
    assert!(!ci_value(Some("false")));
    assert!(!ci_value(Some("")));
    assert!(!ci_value(None));
    let missing = "tollgate-no-such-program-7f3a";
    assert_eq!(find_on_path(missing), None);
    assert!(find_on_path("sh").is_some());
    // Locally: skipped (None) and listed.
    assert_eq!(decide(missing, None, "nothing", false, &list), None);
    let written = std::fs::read_to_string(&list).expect("the skip list was written");
    assert!(written.contains(missing), "{written}");
    // Under CI: the test fails.
    let ci = {
        let list = list.clone();
        std::thread::spawn(move || decide(missing, None, "nothing", true, &list)).join()
    };
    let message = ci.expect_err("a missing program fails under CI");
    let message = message
        .downcast_ref::<String>()
        .expect("a panic message")
        .clone();
    assert!(message.contains("CI=true"), "{message}");
    // Found: returned in both modes.
    let sh = find_on_path("sh");
    assert_eq!(decide("sh", sh.clone(), "", true, &list), sh);
}
