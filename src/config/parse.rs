//! Generic TOML loading: parse with spans, expand `${env:…}` in string values, deserialize while
//! tracking the key path, and turn every failure into an [`Issue`] with a line and column.
//!
//! Expansion happens on the parsed document, not on the text, so comments are never expanded and
//! every line number still points into the file as written.

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::env::{expand, EnvSource};
use super::error::{Issue, IssueKind, Location};

/// Most schema problems reported from one file; a file with more is reported in parts.
const MAX_SCHEMA_ISSUES: usize = 64;

/// Parses `text` into any deserializable type (normally [`crate::app::config::Config`]),
/// expanding `${env:…}` from `env`. On failure returns every problem found: see
/// [`parse_recovering`].
pub fn parse_str<T: DeserializeOwned>(text: &str, env: &dyn EnvSource) -> Result<T, Vec<Issue>> {
    match parse_recovering(text, env) {
        (Some(value), issues) if issues.is_empty() => Ok(value),
        (_, issues) => Err(issues),
    }
}

/// Parses `text` and goes on past each problem: returns every syntax, expansion and schema
/// problem found (serde stops at the first, so each faulty value is left out and the document
/// deserialized again), and, unless the file is not TOML or a problem could not be stepped
/// over, the value deserialized with the faulty values left out (their defaults in their
/// place), so that the caller can still check the rest of it.
///
/// Stepping over a problem: a value of the wrong type or an unknown key is removed (a bad
/// element of an array removes the whole array); a missing key gets a stand-in value. A
/// problem under a value already reported (a missing key after its bad value was removed, a
/// type error in a value whose `${env:…}` failed) is not reported twice.
pub fn parse_recovering<T: DeserializeOwned>(
    text: &str,
    env: &dyn EnvSource,
) -> (Option<T>, Vec<Issue>) {
    let mut root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => return (None, vec![from_toml_error(text, "", IssueKind::Syntax, &e)]),
    };

    let mut walk = Expansion {
        path: String::new(),
        text,
        env,
        issues: Vec::new(),
        expanded: Vec::new(),
    };
    walk.table(root.get_mut());
    // A value whose expansion failed stays as written; problems under it are not repeated.
    let mut reported: Vec<String> = walk.issues.iter().map(|i| i.path.clone()).collect();
    let mut issues = walk.issues;

    for _ in 0..MAX_SCHEMA_ISSUES {
        let error = match deserialize::<T>(&root) {
            Ok(value) => return (Some(value), issues),
            Err(error) => error,
        };
        let path = error_path(&error);
        let missing = missing_field(error.inner().message());
        let at = match missing {
            Some(field) => join(&path, field),
            None => path.clone(),
        };
        if !reported.iter().any(|r| within(&at, r)) {
            issues.push(schema_issue(text, &path, &error, &walk.expanded));
        }
        let stepped_over = match missing {
            Some(field) => stand_in::<T>(&mut root, &path, field),
            None => remove(root.get_mut(), &path),
        };
        match stepped_over {
            Some(done) => reported.push(done),
            None => return (None, issues),
        }
    }
    (None, issues)
}

fn deserialize<T: DeserializeOwned>(
    root: &Spanned<DeTable<'_>>,
) -> Result<T, serde_path_to_error::Error<toml::de::Error>> {
    serde_path_to_error::deserialize(toml::de::Deserializer::from(root.clone()))
}

fn error_path(error: &serde_path_to_error::Error<toml::de::Error>) -> String {
    match error.path().to_string() {
        root if root == "." => String::new(),
        path => path,
    }
}

fn schema_issue(
    text: &str,
    path: &str,
    error: &serde_path_to_error::Error<toml::de::Error>,
    expanded: &[(String, String)],
) -> Issue {
    let mut issue = from_toml_error(text, path, IssueKind::Schema, error.inner());
    // serde quotes a wrongly typed string in its message; show what the file says instead,
    // so a value from the environment (perhaps a secret) is never printed or logged.
    // An enum error quotes it in backticks (`unknown variant `…``); any other mention is
    // replaced too.
    for (expanded, original) in expanded {
        issue.message = issue
            .message
            .replace(&format!("{expanded:?}"), &format!("{original:?}"))
            .replace(&format!("`{expanded}`"), &format!("`{original}`"));
        if !expanded.is_empty() && !original.contains(expanded.as_str()) {
            issue.message = issue.message.replace(expanded.as_str(), original);
        }
    }
    issue
}

/// `field` of serde's "missing field `field`".
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .split('`')
        .next()
        .filter(|f| !f.is_empty())
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// True when `path` is `prefix` or lies under it (`a.b[1].c` is within `a.b` and `a.b[1]`).
fn within(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with(['.', '[']))
}

/// One step of a key path.
enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

fn segments(path: &str) -> Option<Vec<Segment<'_>>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|s| !s.is_empty()) {
        let (key, indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        for index in indices.split(['[', ']']).filter(|s| !s.is_empty()) {
            out.push(Segment::Index(index.parse().ok()?));
        }
    }
    Some(out)
}

/// The table at `path` (the root for an empty path).
fn table_at<'a, 'i>(
    root: &'a mut DeTable<'i>,
    path: &[Segment<'_>],
) -> Option<&'a mut DeTable<'i>> {
    let Some((first, rest)) = path.split_first() else {
        return Some(root);
    };
    let Segment::Key(key) = first else {
        return None;
    };
    let mut value: &'a mut DeValue<'i> = root.get_mut(*key)?.get_mut();
    for segment in rest {
        value = match (segment, value) {
            (Segment::Key(key), DeValue::Table(t)) => t.get_mut(*key)?.get_mut(),
            (Segment::Index(i), DeValue::Array(items)) => items.get_mut(*i)?.get_mut(),
            _ => return None,
        };
    }
    match value {
        DeValue::Table(t) => Some(t),
        _ => None,
    }
}

/// Removes the value at `path`; an array element takes its whole array with it (the indices of
/// later elements must keep pointing into the file). Returns the path removed.
fn remove(root: &mut DeTable<'_>, path: &str) -> Option<String> {
    let segments = segments(path)?;
    let last_key = segments
        .iter()
        .rposition(|s| matches!(s, Segment::Key(_)))?;
    let Segment::Key(key) = segments[last_key] else {
        return None;
    };
    table_at(root, &segments[..last_key])?.remove(key)?;
    let mut removed = String::new();
    for segment in &segments[..=last_key] {
        match segment {
            Segment::Key(k) => removed = join(&removed, k),
            Segment::Index(i) => removed.push_str(&format!("[{i}]")),
        }
    }
    Some(removed)
}

/// Gives the missing key `field` of the table at `path` a value that deserializes, so the rest
/// of the document can be checked. Returns the key's path, or `None` when no stand-in fits.
fn stand_in<T: DeserializeOwned>(
    root: &mut Spanned<DeTable<'_>>,
    path: &str,
    field: &str,
) -> Option<String> {
    let at = join(path, field);
    let segments = segments(path)?;
    let candidates = [
        DeValue::String("".into()),
        DeValue::Integer(Default::default()),
        DeValue::Float(Default::default()),
        DeValue::Boolean(false),
        DeValue::Table(DeTable::new()),
        DeValue::Array(toml::de::DeArray::new()),
    ];
    let key = || Spanned::new(0..0, std::borrow::Cow::Owned(field.to_owned()));
    for candidate in candidates {
        table_at(root.get_mut(), &segments)?.insert(key(), Spanned::new(0..0, candidate));
        let error = match deserialize::<T>(root) {
            Ok(_) => return Some(at),
            Err(error) => error,
        };
        let message = error.inner().message();
        if error_path(&error) != at || message.starts_with("missing field") {
            return Some(at);
        }
        // An enum: the first of the variants it names.
        if let Some(variant) = message
            .split_once("expected one of `")
            .or_else(|| message.split_once("expected `"))
            .and_then(|(_, rest)| rest.split('`').next())
        {
            let value = DeValue::String(variant.to_owned().into());
            table_at(root.get_mut(), &segments)?.insert(key(), Spanned::new(0..0, value));
            return Some(at);
        }
    }
    table_at(root.get_mut(), &segments)?.remove(field);
    None
}

/// Fills in each issue's location from its key path, where the path exists in `text`.
pub fn locate_issues(text: &str, issues: &mut [Issue]) {
    let Ok(root) = DeTable::parse(text) else {
        return;
    };
    for issue in issues.iter_mut().filter(|i| i.location.is_none()) {
        issue.location =
            span_of_path(&root, &issue.path).map(|span| Location::of_offset(text, span.start));
    }
}

fn from_toml_error(text: &str, path: &str, kind: IssueKind, error: &toml::de::Error) -> Issue {
    let location = error
        .span()
        .map(|span| span.start)
        .or_else(|| {
            let root = DeTable::parse(text).ok()?;
            span_of_path(&root, path).map(|span| span.start)
        })
        .map(|offset| Location::of_offset(text, offset));
    Issue {
        kind,
        path: path.to_owned(),
        location,
        message: error.message().trim_end().to_owned(),
    }
}

/// The span of the value at `path` (`a.b[2].c`), or of the deepest prefix that exists.
fn span_of_path(root: &Spanned<DeTable<'_>>, path: &str) -> Option<std::ops::Range<usize>> {
    let mut span = None;
    let mut current: Option<&DeValue<'_>> = None;
    let mut table = Some(root.get_ref());
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        let (key, indices) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if !key.is_empty() {
            let value = table?.get(key)?;
            span = Some(value.span());
            current = Some(value.get_ref());
        }
        for index in indices.split(['[', ']']).filter(|s| !s.is_empty()) {
            let index: usize = index.parse().ok()?;
            let DeValue::Array(array) = current? else {
                return span;
            };
            let Some(item) = array.get(index) else {
                return span;
            };
            span = Some(item.span());
            current = Some(item.get_ref());
        }
        table = match current {
            Some(DeValue::Table(t)) => Some(t),
            _ => None,
        };
    }
    span
}

/// The walk that expands `${env:…}` in every string value of the document.
struct Expansion<'a> {
    /// The key path of the value being visited.
    path: String,
    text: &'a str,
    env: &'a dyn EnvSource,
    issues: Vec<Issue>,
    /// `(expanded, as written)` for every string that changed.
    expanded: Vec<(String, String)>,
}

impl Expansion<'_> {
    fn table(&mut self, table: &mut DeTable<'_>) {
        for (key, value) in table.iter_mut() {
            let len = self.path.len();
            if !self.path.is_empty() {
                self.path.push('.');
            }
            self.path.push_str(key.get_ref());
            self.value(value);
            self.path.truncate(len);
        }
    }

    fn value(&mut self, value: &mut Spanned<DeValue<'_>>) {
        let span = value.span();
        match value.get_mut() {
            DeValue::String(s) => match expand(s, self.env) {
                Ok(None) => {}
                Ok(Some(expanded)) => {
                    let original = std::mem::replace(s, expanded.clone().into());
                    self.expanded.push((expanded, original.into_owned()));
                }
                Err(errors) => {
                    let location = Some(Location::of_offset(self.text, span.start));
                    self.issues.extend(errors.into_iter().map(|e| Issue {
                        kind: IssueKind::Env,
                        path: self.path.clone(),
                        location,
                        message: e.to_string(),
                    }));
                }
            },
            DeValue::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = self.path.len();
                    self.path.push_str(&format!("[{i}]"));
                    self.value(item);
                    self.path.truncate(len);
                }
            }
            DeValue::Table(table) => self.table(table),
            DeValue::Integer(_)
            | DeValue::Float(_)
            | DeValue::Boolean(_)
            | DeValue::Datetime(_) => {}
        }
    }
}

#[cfg(test)]
mod tests;
