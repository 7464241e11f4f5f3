//! Configuration errors: every problem names the key path and, when known, the line and column.

use std::fmt;
use std::path::PathBuf;

/// A 1-based position in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line, starting at 1.
    pub line: usize,
    /// Column in characters, starting at 1.
    pub column: usize,
}

impl Location {
    /// The position of byte `offset` in `text`.
    pub fn of_offset(text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self { line, column }
    }
}

/// What kind of problem an [`Issue`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssueKind {
    /// The file is not valid TOML.
    Syntax,
    /// An `${env:…}` reference could not be expanded.
    Env,
    /// The TOML does not match the schema: an unknown key, a wrong type, a missing key.
    Schema,
    /// The values parse but make no sense together (found by [`super::Config::validate`]).
    Invalid,
}

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// What kind of problem this is.
    pub kind: IssueKind,
    /// The key path, like `exporters[1].endpoint`; empty for the document itself.
    pub path: String,
    /// Where in the file, when known.
    pub location: Option<Location>,
    /// What is wrong, in words.
    pub message: String,
}

impl Issue {
    /// A validation problem at `path` (the location is filled in later from the file, if any).
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: IssueKind::Invalid,
            path: path.into(),
            location: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(Location { line, column }) = self.location {
            write!(f, "line {line}, column {column}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid configuration; holds every problem found.
    #[error("{}", render(file.as_ref(), issues))]
    Invalid {
        /// The file, when loaded from one.
        file: Option<PathBuf>,
        /// Every problem found (at least one).
        issues: Vec<Issue>,
    },
}

impl ConfigError {
    /// The problems found, empty for [`ConfigError::Read`].
    pub fn issues(&self) -> &[Issue] {
        match self {
            Self::Read { .. } => &[],
            Self::Invalid { issues, .. } => issues,
        }
    }

    /// One line per problem, each prefixed with the file name when known.
    pub fn reasons(&self) -> Vec<String> {
        match self {
            Self::Read { .. } => vec![self.to_string()],
            Self::Invalid { file, issues } => issues
                .iter()
                .map(|issue| match file {
                    Some(file) => format!("{}: {issue}", file.display()),
                    None => issue.to_string(),
                })
                .collect(),
        }
    }
}

fn render(file: Option<&PathBuf>, issues: &[Issue]) -> String {
    let mut out = match file {
        Some(file) => format!("invalid configuration in {}", file.display()),
        None => "invalid configuration".to_owned(),
    };
    for issue in issues {
        out.push_str("\n  ");
        out.push_str(&issue.to_string());
    }
    out
}

/// `Result` with [`ConfigError`].
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_one_based_lines_and_char_columns() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(
            Location::of_offset(text, 0),
            Location { line: 1, column: 1 }
        );
        let x = text.find('"').unwrap();
        assert_eq!(
            Location::of_offset(text, x),
            Location { line: 2, column: 6 }
        );
        assert_eq!(Location::of_offset(text, 999).line, 3);
    }

    #[test]
    fn display_lists_every_issue_with_path_and_line() {
        let mut issue = Issue::invalid("exporters[1].name", "duplicate name `x`");
        issue.location = Some(Location { line: 7, column: 8 });
        let err = ConfigError::Invalid {
            file: Some("tollgate.toml".into()),
            issues: vec![issue, Issue::invalid("", "no exporters")],
        };
        assert_eq!(
            err.to_string(),
            "invalid configuration in tollgate.toml\n  \
             line 7, column 8: exporters[1].name: duplicate name `x`\n  no exporters"
        );
        assert_eq!(
            err.reasons()[0],
            "tollgate.toml: line 7, column 8: exporters[1].name: duplicate name `x`"
        );
    }
}
