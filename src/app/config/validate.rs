//! Pure checks on a parsed [`Config`]: no files, no sockets, no DNS.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::Config;
use crate::config::Issue;

/// Every problem found in `config`.
pub(super) fn all(config: &Config) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut listens: Vec<(&str, SocketAddr)> = Vec::new();

    let otlp = &config.receivers.otlp;
    for (path, value, optional) in [
        ("receivers.otlp.grpc", otlp.grpc.as_str(), true),
        ("receivers.otlp.http", otlp.http.as_str(), true),
        ("admin.listen", config.admin.listen.as_str(), false),
    ] {
        if optional && value.is_empty() {
            continue;
        }
        match listen_addr(value) {
            Ok(addr) => {
                if let Some((other, _)) = listens.iter().find(|(_, a)| same_port(*a, addr)) {
                    issues.push(Issue::invalid(
                        path,
                        format!("listen address `{value}` is already used by `{other}`"),
                    ));
                }
                listens.push((path, addr));
            }
            Err(message) => issues.push(Issue::invalid(path, message)),
        }
    }

    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, exporter) in config.exporters.iter().enumerate() {
        let path = format!("exporters[{i}].name");
        if exporter.name.trim().is_empty() {
            issues.push(Issue::invalid(path, "exporter name must not be empty"));
        } else if let Some(first) = names.insert(exporter.name.as_str(), i) {
            issues.push(Issue::invalid(
                path,
                format!(
                    "duplicate exporter name `{}` (also used by exporters[{first}])",
                    exporter.name
                ),
            ));
        }
    }

    if config.state.backend == crate::state::Backend::Disk && config.state.path.is_none() {
        issues.push(Issue::invalid(
            "state.backend",
            "backend = \"disk\" needs a `path` under [state] (or a `[storage] dir` for the default <dir>/state)",
        ));
    }
    if config.state.backend == crate::state::Backend::Redis {
        match &config.state.url {
            None => issues.push(Issue::invalid(
                "state.url",
                "backend = \"redis\" needs a `url` under [state], e.g. \"redis://127.0.0.1:6379/0\"",
            )),
            Some(url) => {
                if let Err(e) = redis::Client::open(url.expose()) {
                    // The URL may hold a password: the error names the problem, not the URL.
                    issues.push(Issue::invalid(
                        "state.url",
                        format!("not a Redis URL ({:?})", e.kind()),
                    ));
                }
            }
        }
    }
    if let Err(e) = config.receivers.otlp.validate() {
        issues.push(Issue::invalid("receivers.otlp", e.to_string()));
    }
    // Names are checked above with their key paths; the exporters' own validation (endpoints,
    // keys, TLS) runs once they are unique, so one mistake is not reported twice. Each problem
    // points at its own `[[exporters]]` table, or at the key at fault in it.
    if names.len() == config.exporters.len() {
        for p in crate::export::problems(&config.exporters) {
            let path = match p.key {
                Some(key) => format!("exporters[{}].{key}", p.index),
                None => format!("exporters[{}]", p.index),
            };
            issues.push(Issue::invalid(path, p.message));
        }
    }
    if let Err(errors) = crate::budget::compile(&config.budgets) {
        for (i, e) in errors {
            issues.push(Issue::invalid(format!("budgets[{i}]"), e));
        }
    }
    if let Err(errors) = crate::alert::validate(&config.alerts) {
        for e in errors {
            issues.push(Issue::invalid(e.path(), e.to_string()));
        }
    }
    if let Err(errors) = crate::llm::price_table::validate(&config.pricing) {
        for e in errors {
            issues.push(Issue::invalid("pricing", e.to_string()));
        }
    }
    if let Err(e) = config.metrics.validate() {
        issues.push(Issue::invalid("metrics", e.to_string()));
    }
    issues.extend(config.log.validate());
    issues.extend(config.reload.validate());
    issues
}

/// An unknown key in an `[[exporters]]` table: serde lists the keys of every kind; say which
/// keys this entry's kind takes instead.
pub(super) fn explain_unknown_exporter_keys(config: &Config, issues: &mut [Issue]) {
    for issue in issues.iter_mut() {
        let Some(rest) = issue.path.strip_prefix("exporters[") else {
            continue;
        };
        let Some((index, key)) = rest.split_once("].") else {
            continue;
        };
        let Some(exporter) = index
            .parse()
            .ok()
            .and_then(|i: usize| config.exporters.get(i))
        else {
            continue;
        };
        if key.contains(['.', '[']) || !issue.message.starts_with("unknown field `") {
            continue;
        }
        issue.message = format!(
            "unknown field `{key}`; kind {} takes {}",
            exporter.kind,
            exporter.kind.keys_text()
        );
    }
}

/// Parses `IP:PORT`. Host names are refused: resolving them would be I/O.
fn listen_addr(value: &str) -> Result<SocketAddr, String> {
    value.parse().map_err(|_| {
        format!("`{value}` is not a listen address: expected IP:PORT, like `127.0.0.1:4317` or `[::]:4317`")
    })
}

/// Two listeners collide when they share a port and either is a wildcard or both are the same IP.
fn same_port(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::Config;
    use crate::config::{ConfigError, IssueKind};

    fn issues(text: &str) -> Vec<crate::config::Issue> {
        match Config::from_str_with_env(text, &HashMap::<&str, &str>::new()) {
            Err(ConfigError::Invalid { issues, .. }) => issues,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn the_defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn collects_every_problem_with_paths_and_lines() {
        let text = "[receivers.otlp]\ngrpc = \"localhost:4317\"\nhttp = \"\"\n\
                    [admin]\nlisten = \"0.0.0.0:9464\"\n\
                    [[exporters]]\nname = \"a\"\nkind = \"console\"\n\
                    [[exporters]]\nname = \"a\"\nkind = \"console\"\n";
        let issues = issues(text);
        assert_eq!(issues.len(), 2, "{issues:?}");
        assert!(issues.iter().all(|i| i.kind == IssueKind::Invalid));
        assert_eq!(issues[0].path, "receivers.otlp.grpc");
        assert_eq!(issues[0].location.map(|l| l.line), Some(2));
        assert_eq!(issues[1].path, "exporters[1].name");
        assert!(issues[1].message.contains("duplicate exporter name `a`"));
        assert_eq!(issues[1].location.map(|l| l.line), Some(10));
    }

    #[test]
    fn port_collisions_are_refused() {
        let issues =
            issues("[receivers.otlp]\ngrpc = \"0.0.0.0:9000\"\nhttp = \"127.0.0.1:9000\"\n");
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].path, "receivers.otlp.http");
        // Port 0 (pick any) never collides.
        let text = "[receivers.otlp]\ngrpc = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n";
        Config::from_str_with_env(text, &HashMap::<&str, &str>::new()).unwrap();
    }

    #[test]
    fn empty_exporter_name_is_refused() {
        let issues = issues("[[exporters]]\nname = \" \"\nkind = \"console\"\n");
        assert_eq!(issues[0].path, "exporters[0].name");
    }
}
