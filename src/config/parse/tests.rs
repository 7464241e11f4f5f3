//! Tests of `parse`.

use std::collections::HashMap;

use serde::Deserialize;

use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    #[serde(default)]
    name: String,
    #[serde(default)]
    items: Vec<Item>,
    #[serde(default)]
    nested: Nested,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    id: String,
    #[serde(default)]
    #[allow(dead_code)]
    port: u16,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Nested {
    #[serde(default)]
    tags: Vec<String>,
}

fn parse(text: &str) -> Result<Doc, Vec<Issue>> {
    let env = HashMap::from([("USER_NAME", "ada")]);
    parse_str(text, &env)
}

#[test]
fn expands_strings_in_tables_arrays_and_inline_tables() {
    let doc = parse(
        "name = \"hi ${env:USER_NAME}\"\n\
         items = [{ id = \"${env:USER_NAME}\" }]\n\
         [nested]\ntags = [\"${env:NOPE:-x}\", \"$${env:USER_NAME}\"]\n",
    )
    .unwrap();
    assert_eq!(doc.name, "hi ada");
    assert_eq!(doc.items[0].id, "ada");
    assert_eq!(doc.nested.tags, ["x", "${env:USER_NAME}"]);
}

#[test]
fn comments_are_not_expanded() {
    let doc =
        parse("# set ${env:MISSING_IN_COMMENT}\nname = \"a\" # ${env:ALSO_MISSING}\n").unwrap();
    assert_eq!(doc.name, "a");
}

#[test]
fn unknown_key_in_array_of_tables_names_path_and_line() {
    let text = "name = \"a\"\n\n[[items]]\nid = \"1\"\n\n[[items]]\nid = \"2\"\nprot = 1\n";
    let issues = parse(text).unwrap_err();
    assert_eq!(issues.len(), 1);
    let issue = &issues[0];
    assert_eq!(issue.kind, IssueKind::Schema);
    assert_eq!(issue.path, "items[1].prot");
    assert_eq!(issue.location.map(|l| l.line), Some(8), "{issue}");
    assert!(issue.message.contains("unknown field `prot`"), "{issue}");
}

#[test]
fn wrong_type_names_path_and_line_even_after_expansion() {
    let text = "name = \"${env:USER_NAME}\"\n[[items]]\nid = \"${env:USER_NAME}\"\nport = \"80\"\n";
    let issue = &parse(text).unwrap_err()[0];
    assert_eq!(issue.path, "items[0].port");
    assert_eq!(
        issue.location,
        Some(Location { line: 4, column: 8 }),
        "{issue}"
    );
    assert!(issue.message.contains("invalid type"), "{issue}");
}

#[test]
fn missing_required_key_points_at_its_table() {
    let issue = &parse("name = \"a\"\n[[items]]\nport = 1\n").unwrap_err()[0];
    assert_eq!(issue.path, "items[0]");
    assert!(issue.message.contains("missing field `id`"), "{issue}");
    assert!(issue.location.is_some(), "{issue}");
}

#[test]
fn every_missing_variable_is_reported_with_its_line() {
    let text = "name = \"${env:A_MISSING}\"\n[nested]\ntags = [\"ok\", \"${env:B_MISSING}\"]\n";
    let issues = parse(text).unwrap_err();
    assert_eq!(issues.len(), 2);
    assert_eq!(issues[0].kind, IssueKind::Env);
    assert!(issues[0].message.contains("A_MISSING"));
    assert_eq!(issues[0].location.map(|l| l.line), Some(1));
    assert_eq!(issues[1].path, "nested.tags[1]");
    assert!(issues[1].message.contains("B_MISSING"));
    assert_eq!(issues[1].location.map(|l| l.line), Some(3));
}

#[test]
fn type_errors_show_the_reference_not_the_environment_value() {
    let env = HashMap::from([("PORT_SECRET", "sk-not-a-port")]);
    let text = "[[items]]\nid = \"a\"\nport = \"${env:PORT_SECRET}\"\n";
    let issue = &parse_str::<Doc>(text, &env).unwrap_err()[0];
    assert!(!issue.message.contains("sk-not-a-port"), "{issue}");
    assert!(issue.message.contains("${env:PORT_SECRET}"), "{issue}");
    assert_eq!(issue.location.map(|l| l.line), Some(3));
}

#[test]
fn enum_errors_show_the_reference_not_the_environment_value() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    #[serde(rename_all = "lowercase")]
    enum Compression {
        Gzip,
        None,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct WithEnum {
        compression: Compression,
    }
    let env = HashMap::from([("TOKEN", "sk-live-secret")]);
    let issue = &parse_str::<WithEnum>("compression = \"${env:TOKEN}\"\n", &env).unwrap_err()[0];
    assert!(!issue.message.contains("sk-live-secret"), "{issue}");
    assert!(issue.message.contains("${env:TOKEN}"), "{issue}");
}

#[test]
fn every_schema_problem_is_reported_once_each_at_its_line() {
    // A missing key (stood in for), an unknown key, a wrong type, and a value of the wrong
    // type that is also required: its removal must not add a "missing field" report.
    let text = "name = 5\n[[items]]\nport = 1\n[[items]]\nid = \"b\"\nprot = 2\n\
                [[items]]\nid = 3\n[nested]\ntags = \"x\"\n";
    let issues = parse(text).unwrap_err();
    let mut found: Vec<_> = issues
        .iter()
        .map(|i| (i.path.as_str(), i.location.map(|l| l.line)))
        .collect();
    found.sort_by_key(|(_, line)| *line);
    assert_eq!(
        found,
        [
            ("name", Some(1)),
            ("items[0]", Some(2)),
            ("items[1].prot", Some(6)),
            ("items[2].id", Some(8)),
            ("nested.tags", Some(10)),
        ],
        "{issues:#?}"
    );
}

#[test]
fn syntax_errors_have_a_line() {
    let issue = &parse("name = \"a\"\nitems = [\n").unwrap_err()[0];
    assert_eq!(issue.kind, IssueKind::Syntax);
    assert!(issue.location.is_some_and(|l| l.line >= 2), "{issue}");
}

#[test]
fn locate_issues_finds_paths_in_the_file() {
    let text = "name = \"a\"\n[[items]]\nid = \"1\"\n[[items]]\nid = \"2\"\n";
    let mut issues = vec![
        Issue::invalid("items[1].id", "dup"),
        Issue::invalid("nowhere.x", "n"),
    ];
    locate_issues(text, &mut issues);
    assert_eq!(issues[0].location.map(|l| l.line), Some(5));
    assert_eq!(issues[1].location, None);
}
