//! The architecture test: which top-level module of `src/` may import which.
//!
//! It reads every `crate::…` path in `src/` (`use crate::x::…`, `crate::{x::…, y::…}` and inline
//! `crate::x::f()`), maps each file to its top-level module (`src/task/api.rs` → `task`), and
//! checks the resulting graph against [`ALLOWED`]: an import the table does not list fails, any
//! import circle between top-level modules fails, and the table itself may never allow one of
//! the [`FORBIDDEN`] edges (so loosening the table to let one in fails too).
//!
//! The tests at the bottom run the checker on synthetic module trees, to show it fails on each
//! kind of violation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules it may import, from the leaves up. The span's
/// journey reads bottom to top: leaves (vocabulary, wire format, config toolkit), telemetry,
/// the stages (llm → task → alert), export, the pipeline, receivers, the read side, the wiring.
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves: the shared vocabulary of money and usage, the wire format, gRPC status details
    // and the config toolkit (Secret, durations, env expansion, issues).
    ("units", &[]),
    ("grpc_status", &[]),
    ("wire", &[]),
    ("config", &[]),
    // The usage ledger's row record, schema and `tollgate usage` query.
    ("ledger", &["config", "units"]),
    // Where persisted data lives (`[storage] dir` and the paths under it).
    ("storage", &[]),
    // Our own metrics registry and the metric families every component registers.
    ("telemetry", &["config", "units", "wire"]),
    // The state interface (task totals, dedupe, fire-once markers, budgets).
    ("state", &["config", "telemetry", "units"]),
    // The stages.
    ("llm", &["config", "telemetry", "units", "wire", "state"]),
    ("task", &["config", "telemetry", "units", "wire", "state"]),
    (
        "alert",
        &["config", "telemetry", "units", "wire", "task", "state"],
    ),
    // Budgets: totals in the state store, alerts through the alert engine.
    (
        "budget",
        &[
            "alert",
            "config",
            "state",
            "task",
            "telemetry",
            "units",
            "wire",
        ],
    ),
    // Delivery.
    (
        "export",
        &[
            "config",
            "grpc_status",
            "ledger",
            "telemetry",
            "units",
            "wire",
        ],
    ),
    // The processor chain and the fan-out to exporters.
    (
        "pipeline",
        &[
            "alert",
            "budget",
            "config",
            "export",
            "ledger",
            "llm",
            "state",
            "task",
            "telemetry",
            "units",
            "wire",
        ],
    ),
    // Receivers hand requests to the pipeline; they never see exporters.
    (
        "receiver",
        &[
            "config",
            "grpc_status",
            "pipeline",
            "telemetry",
            "units",
            "wire",
        ],
    ),
    // The read side: admin listener, status page, task API. Reads typed snapshots.
    (
        "admin",
        &[
            "alert",
            "budget",
            "config",
            "export",
            "pipeline",
            "state",
            "task",
            "telemetry",
            "units",
            "wire",
        ],
    ),
    // The wiring: the `Config` root, validation, reload, start-up and shutdown.
    (
        "app",
        &[
            "admin",
            "alert",
            "budget",
            "config",
            "export",
            "llm",
            "pipeline",
            "receiver",
            "state",
            "storage",
            "task",
            "telemetry",
            "units",
            "wire",
        ],
    ),
    // The command line (`check`, `price`).
    ("cli", &["app", "config", "ledger", "llm", "units"]),
];

/// Edges no table may allow (the acceptance list of issue #11), whatever else changes.
const FORBIDDEN: &[(&str, &str)] = &[
    ("llm", "receiver"),
    ("llm", "export"),
    ("receiver", "export"),
    ("export", "receiver"),
    ("telemetry", "pipeline"),
    ("telemetry", "task"),
    ("telemetry", "alert"),
    ("telemetry", "export"),
    ("config", "receiver"),
    ("config", "export"),
    ("config", "pipeline"),
    ("config", "llm"),
    ("config", "task"),
    ("config", "alert"),
    ("config", "telemetry"),
    ("config", "admin"),
    ("config", "app"),
    ("config", "state"),
];

/// One import of another top-level module.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: String,
    to: String,
    /// `file:line` of the first occurrence.
    at: String,
}

/// The top-level module of a path relative to `src/` (`task/api.rs` → `task`, `app.rs` →
/// `app`); `None` for the crate root and binaries.
fn top_module(rel: &str) -> Option<String> {
    if rel == "lib.rs" || rel == "main.rs" || rel.starts_with("bin/") {
        return None;
    }
    let first = rel.split('/').next()?;
    Some(first.trim_end_matches(".rs").to_string())
}

/// The code of a line without its `//` comment (doc comments included). String literals
/// holding `//` are rare enough in this crate to ignore.
fn code_of(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The top-level names a line reaches through `crate::`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        // `$crate::` or `tollgate_crate::` are not ours.
        let before = rest[..i].chars().next_back();
        let after = &rest[i + "crate::".len()..];
        rest = after;
        if before.is_some_and(|c| is_ident(c) || c == '$') {
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            // `crate::{a::X, b::{Y, Z}}`: the first name of every item at depth 1.
            let mut depth = 1;
            let mut item_start = true;
            let mut name = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if depth == 1 && item_start && is_ident(c) => name.push(c),
                    _ if depth == 1 && item_start && !name.is_empty() => {
                        out.push(std::mem::take(&mut name));
                        item_start = false;
                    }
                    _ => {}
                }
            }
            if !name.is_empty() {
                out.push(name);
            }
        } else {
            let name: String = after.chars().take_while(|&c| is_ident(c)).collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// Every import between different top-level modules in `files` (path relative to `src/`,
/// content), keeping the first place each edge occurs. Names that are not top-level modules
/// of the tree (`crate::otlp`, a re-export of the generated protobuf types) are ignored.
fn edges(files: &[(String, String)]) -> Vec<Edge> {
    let modules: BTreeSet<String> = files.iter().filter_map(|(p, _)| top_module(p)).collect();
    let mut found: BTreeMap<(String, String), String> = BTreeMap::new();
    for (path, text) in files {
        let Some(from) = top_module(path) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            for to in crate_paths(code_of(line)) {
                if to != from && modules.contains(&to) {
                    found
                        .entry((from.clone(), to))
                        .or_insert_with(|| format!("src/{path}:{}", n + 1));
                }
            }
        }
    }
    found
        .into_iter()
        .map(|((from, to), at)| Edge { from, to, at })
        .collect()
}

/// The import circles of a graph (each once, as the path of module names around it).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Tarjan's strongly connected components; any component of two or more is a circle.
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    scc.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.out.sort();
    walk.out
}

/// Every violation of `allowed`/`forbidden` by `files`, as lines to print; empty when clean.
fn check(
    files: &[(String, String)],
    allowed: &[(&str, &[&str])],
    forbidden: &[(&str, &str)],
) -> Vec<String> {
    let mut problems = Vec::new();
    let table: BTreeMap<&str, BTreeSet<&str>> = allowed
        .iter()
        .map(|(m, deps)| (*m, deps.iter().copied().collect()))
        .collect();
    // The table itself: no forbidden edge, no circle.
    for (from, to) in forbidden {
        if table.get(from).is_some_and(|d| d.contains(to)) {
            problems.push(format!(
                "the table allows the forbidden import {from} → {to}"
            ));
        }
    }
    let table_graph: BTreeMap<String, BTreeSet<String>> = table
        .iter()
        .map(|(m, d)| (m.to_string(), d.iter().map(|s| s.to_string()).collect()))
        .collect();
    for c in circles(&table_graph) {
        problems.push(format!(
            "the table allows an import circle: {}",
            c.join(" ↔ ")
        ));
    }
    // The code.
    let found = edges(files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in &found {
        graph
            .entry(e.from.clone())
            .or_default()
            .insert(e.to.clone());
        if forbidden.contains(&(e.from.as_str(), e.to.as_str())) {
            problems.push(format!(
                "forbidden import {} → {} at {}",
                e.from, e.to, e.at
            ));
        } else if !table.contains_key(e.from.as_str()) {
            problems.push(format!(
                "module {} is not in the table (imports {} at {})",
                e.from, e.to, e.at
            ));
        } else if !table[e.from.as_str()].contains(e.to.as_str()) {
            problems.push(format!(
                "import {} → {} at {} is not allowed by the table",
                e.from, e.to, e.at
            ));
        }
    }
    for c in circles(&graph) {
        let members: BTreeSet<&str> = c.iter().map(String::as_str).collect();
        let places: Vec<&str> = found
            .iter()
            .filter(|e| members.contains(e.from.as_str()) && members.contains(e.to.as_str()))
            .map(|e| e.at.as_str())
            .collect();
        problems.push(format!(
            "import circle between top-level modules {} (edges at {})",
            c.join(" ↔ "),
            places.join(", ")
        ));
    }
    problems
}

fn read_tree(root: &Path) -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p
                    .strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&p).expect("read source");
                out.push((rel, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn src_follows_the_module_table() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = read_tree(&src);
    assert!(
        files.len() > 50,
        "read {} files from {}",
        files.len(),
        src.display()
    );
    let problems = check(&files, ALLOWED, FORBIDDEN);
    assert!(
        problems.is_empty(),
        "architecture violations:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_top_level_module_is_in_the_table() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules: BTreeSet<String> = read_tree(&src)
        .iter()
        .filter_map(|(p, _)| top_module(p))
        .collect();
    let table: BTreeSet<String> = ALLOWED.iter().map(|(m, _)| m.to_string()).collect();
    let missing: Vec<&String> = modules.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "modules missing from ALLOWED: {missing:?}"
    );
}

// === The checker on synthetic trees ===

fn tree(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

const SMALL: &[(&str, &[&str])] = &[
    ("config", &[]),
    ("telemetry", &["config"]),
    ("llm", &["config", "telemetry"]),
    ("export", &["config"]),
    ("receiver", &["config"]),
];

#[test]
fn checker_reads_use_grouped_and_inline_paths() {
    let files = tree(&[
        ("llm/mod.rs", "use crate::config::Secret;\n"),
        (
            "llm/price.rs",
            "use crate::{telemetry::registry, config::{duration, Secret}};\n",
        ),
        (
            "export/mod.rs",
            "fn f() { crate::config::duration::parse(\"1s\"); }\n",
        ),
        (
            "config/mod.rs",
            "//! See crate::llm for prices.\nuse crate::otlp::X;\n",
        ),
        (
            "receiver/mod.rs",
            "macro_rules! m { () => { $crate::llm::x() } }\n",
        ),
        ("telemetry/mod.rs", ""),
    ]);
    let got: Vec<(String, String)> = edges(&files).into_iter().map(|e| (e.from, e.to)).collect();
    let want = [
        ("export", "config"),
        ("llm", "config"),
        ("llm", "telemetry"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(
        got, want,
        "comments, $crate and non-module names are not imports"
    );
    assert!(check(&files, SMALL, FORBIDDEN).is_empty());
}

#[test]
fn checker_fails_on_a_forbidden_import() {
    let files = tree(&[
        ("llm/mod.rs", "use crate::config::Secret;\n"),
        ("llm/enrich.rs", "use crate::export::Exporters;\n"),
        ("export/mod.rs", "use crate::config::Secret;\n"),
        ("config/mod.rs", ""),
    ]);
    let problems = check(&files, SMALL, FORBIDDEN);
    assert_eq!(
        problems,
        vec!["forbidden import llm → export at src/llm/enrich.rs:1".to_string()]
    );
}

#[test]
fn checker_fails_on_an_import_the_table_does_not_list() {
    let files = tree(&[
        ("export/mod.rs", "use crate::telemetry::registry;\n"),
        ("telemetry/mod.rs", ""),
        ("config/mod.rs", ""),
    ]);
    let problems = check(&files, SMALL, FORBIDDEN);
    assert_eq!(
        problems,
        vec![
            "import export → telemetry at src/export/mod.rs:1 is not allowed by the table"
                .to_string()
        ]
    );
}

#[test]
fn checker_fails_on_an_import_circle() {
    // config → telemetry is forbidden; with a table that allows both ways the circle is
    // reported twice: in the table and in the code.
    const LOOSE: &[(&str, &[&str])] = &[("a", &["b"]), ("b", &["c"]), ("c", &["a"])];
    let files = tree(&[
        ("a.rs", "use crate::b::X;\n"),
        ("b/mod.rs", "use crate::c::Y;\n"),
        ("c/deep/x.rs", "\n\nfn f() { crate::a::g() }\n"),
    ]);
    let problems = check(&files, LOOSE, &[]);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert_eq!(problems[0], "the table allows an import circle: a ↔ b ↔ c");
    assert_eq!(
        problems[1],
        "import circle between top-level modules a ↔ b ↔ c (edges at src/a.rs:1, \
         src/b/mod.rs:1, src/c/deep/x.rs:3)"
    );
}

#[test]
fn checker_fails_when_the_table_allows_a_forbidden_edge() {
    const BAD: &[(&str, &[&str])] = &[("config", &["task"]), ("task", &[])];
    let problems = check(&tree(&[("config/mod.rs", "")]), BAD, FORBIDDEN);
    assert_eq!(
        problems,
        vec!["the table allows the forbidden import config → task".to_string()]
    );
}

#[test]
fn the_real_table_is_clean() {
    // The table itself: no circle, no forbidden edge, every listed dependency is a module.
    let problems = check(&[], ALLOWED, FORBIDDEN);
    assert!(problems.is_empty(), "{problems:#?}");
    let names: BTreeSet<&str> = ALLOWED.iter().map(|(m, _)| *m).collect();
    for (m, deps) in ALLOWED {
        for d in *deps {
            assert!(names.contains(d), "{m} lists unknown module {d}");
        }
    }
}
