//! Config files, the parts every daemon's config shares: [`Problem`] and the [`Problems`]
//! list a check fills, the [`Check`] trait each config section implements beside its struct,
//! [`ConfigError`], and reading TOML with the key path, line and column of what went wrong.
//!
//! Owns: how a problem is named (a key path such as `uds.dids[1].len` and a message), how a
//! list of them prints, TOML syntax errors with positions. Does not own: any config's shape,
//! defaults or rules (the agent's and the cloud's `config` modules, and each section's own
//! [`Check`] impl beside its type).

use core::fmt;
use std::path::Path;

/// One problem with a config value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path, e.g. `uds.dids[1].len`.
    pub path: String,
    /// What is wrong, e.g. `must be 1..=8 for unsigned_be`.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The problems a check found, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes a problem at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(path, message));
    }

    /// Notes a problem at `parent`'s key `name` (see [`key`]).
    pub fn at(&mut self, parent: &str, name: &str, message: impl Into<String>) {
        self.push(key(parent, name), message);
    }

    /// Runs `section`'s own check with its key path.
    pub fn check<T: Check + ?Sized>(&mut self, path: &str, section: &T) {
        section.check(path, self);
    }

    /// Adds problems found elsewhere.
    pub fn extend(&mut self, more: impl IntoIterator<Item = Problem>) {
        self.0.extend(more);
    }

    /// No problem found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Each problem.
    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter()
    }

    /// The list.
    pub fn into_vec(self) -> Vec<Problem> {
        self.0
    }

    /// `Ok` when empty, else [`ConfigError::Invalid`] naming `file`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with every problem.
    pub fn into_result(self, file: &str) -> Result<(), ConfigError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                file: file.to_owned(),
                problems: self.0,
            })
        }
    }
}

impl From<Problems> for Vec<Problem> {
    fn from(p: Problems) -> Self {
        p.0
    }
}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// A config section that checks its own values, beside its struct.
///
/// `path` is the section's key path in the file (`sync`, `uds.dids[2]`, or empty for the
/// top); a problem's path is built from it with [`key`] and [`index`], so the same section
/// reports correct paths wherever it is used (in the file or arriving by another way, e.g.
/// a maintenance schedule sent by the cloud).
pub trait Check {
    /// Notes every problem with the values into `problems`.
    fn check(&self, path: &str, problems: &mut Problems);

    /// Every problem, as a list (for callers that check one section on its own).
    fn problems(&self, path: &str) -> Vec<Problem> {
        let mut p = Problems::new();
        self.check(path, &mut p);
        p.into_vec()
    }
}

/// `parent.name`, or `name` at the top (`parent` empty).
pub fn key(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

/// `parent[i]`.
pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// Problems (or any listed errors) on one line, each as it displays, joined with `; `: how a
/// list of them reads in one log line or one API error message. ([`ConfigError::Invalid`]
/// lists a file's problems one a line instead.)
pub fn one_line<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let mut out = String::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(&item.to_string());
    }
    out
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not TOML, or TOML of the wrong shape (unknown key, wrong type, missing key).
    #[error("{file}:{line}:{column}: {}{message}", PathPrefix(path))]
    Syntax {
        /// The file.
        file: String,
        /// The key path where it went wrong (`broker.tls.cert`); empty when the text is not
        /// TOML at all or the problem is at the top.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (characters).
        column: usize,
        /// What the TOML reader says.
        message: String,
    },
    /// Well-formed but wrong values; every problem found.
    #[error("{file}: {} problem(s):\n{}", problems.len(), ProblemList(problems))]
    Invalid {
        /// The file.
        file: String,
        /// Each problem with its key path.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems of an [`ConfigError::Invalid`]; empty for the other kinds.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

struct PathPrefix<'a>(&'a str);

impl fmt::Display for PathPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() || self.0 == "." {
            Ok(())
        } else {
            write!(f, "{}: ", self.0)
        }
    }
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// The exit status of a daemon or tool whose config cannot be used (the CLI's documented `2`).
pub const EXIT_CONFIG: u8 = 2;

/// Prints a config error for the person at the terminal — every problem of an invalid file on
/// its own line, prefixed by the file, as compilers do — and gives the exit status to end with.
pub fn report(err: &ConfigError) -> std::process::ExitCode {
    match err {
        ConfigError::Invalid { file, problems } => {
            eprintln!("{file}: {} problem(s):", problems.len());
            for p in problems {
                eprintln!("{file}: {p}");
            }
        }
        other => eprintln!("{other}"),
    }
    std::process::ExitCode::from(EXIT_CONFIG)
}

/// A path written in a config file, resolved against the folder of that file (`config_file`
/// `None`: the current directory), so a config and the files it names can move together.
pub fn resolve_beside(config_file: Option<&Path>, path: &Path) -> std::path::PathBuf {
    config_file
        .and_then(Path::parent)
        .unwrap_or(Path::new(""))
        .join(path)
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Parses TOML text into any config type; `file` names it in errors. Does not check values.
///
/// # Errors
/// [`ConfigError::Syntax`] with the key path, line and column of the problem.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<T, ConfigError> {
    let syntax = |path: String, err: toml::de::Error| {
        let (line, column) = err.span().map_or((1, 1), |s| line_col(text, s.start));
        ConfigError::Syntax {
            file: file.to_owned(),
            path,
            line,
            column,
            message: err.message().trim().to_owned(),
        }
    };
    let de = toml::Deserializer::parse(text).map_err(|e| syntax(String::new(), e))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        syntax(path, e.into_inner())
    })
}

/// Reads a config file: (its name for errors, its text).
///
/// # Errors
/// [`ConfigError::Read`] naming the file.
pub fn read_text(path: &Path) -> Result<(String, String), ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: file.clone(),
        source,
    })?;
    Ok((file, text))
}

/// Reads and parses a TOML file. Does not check values.
///
/// # Errors
/// [`ConfigError::Read`] or [`ConfigError::Syntax`].
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let (file, text) = read_text(path)?;
    parse_toml(&file, &text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        broker: Broker,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Broker {
        port: u16,
        #[serde(default)]
        day: Option<rapport_shared::CivilDate>,
    }

    impl Check for Broker {
        fn check(&self, path: &str, problems: &mut Problems) {
            if self.port < 1024 {
                problems.at(path, "port", format!("{} is a privileged port", self.port));
            }
        }
    }

    #[test]
    fn problems_read_on_one_line() {
        let problems = [Problem::new("a.b", "bad"), Problem::new("c[1]", "worse")];
        assert_eq!(one_line(&problems), "a.b: bad; c[1]: worse");
        assert_eq!(one_line(Vec::<Problem>::new()), "");
        assert_eq!(one_line(["x"]), "x");
    }

    #[test]
    fn line_col_counts_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        // 'é' is two bytes, one column.
        assert_eq!(line_col(text, 9), (2, 3));
        assert_eq!(line_col(text, 999), (3, 1));
    }

    #[test]
    fn syntax_errors_name_file_path_line_and_column() {
        let err = parse_toml::<File>("c.toml", "[broker]\nport = \"x\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("c.toml:2:8: broker.port: "), "{text}");
        let err = parse_toml::<File>("c.toml", "[broker\n").unwrap_err();
        assert!(err.to_string().starts_with("c.toml:1:"), "{err}");
        assert!(!err.to_string().contains(": .:"), "{err}");
        let err = parse_toml::<File>("c.toml", "[broker]\nport = 1\nportt = 2\n").unwrap_err();
        assert!(err.to_string().contains("portt"), "{err}");
    }

    #[test]
    fn dates_read_as_text_or_bare_toml_dates() {
        let f: File = parse_toml("c", "[broker]\nport = 1\nday = 2025-03-14\n").unwrap();
        assert_eq!(f.broker.day.unwrap().to_string(), "2025-03-14");
        let f: File = parse_toml("c", "[broker]\nport = 1\nday = \"2025-03-14\"\n").unwrap();
        assert_eq!(f.broker.day.unwrap().to_string(), "2025-03-14");
        let err =
            parse_toml::<File>("c", "[broker]\nport = 1\nday = 2025-03-14T10:00:00\n").unwrap_err();
        assert!(err.to_string().contains("broker.day"), "{err}");
        // TOML refuses an impossible bare date itself; a quoted one is ours to refuse.
        let err = parse_toml::<File>("c", "[broker]\nport = 1\nday = 2025-02-30\n").unwrap_err();
        assert!(err.to_string().starts_with("c:3:"), "{err}");
        let err =
            parse_toml::<File>("c", "[broker]\nport = 1\nday = \"2025-02-30\"\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("broker.day: \"2025-02-30\": day 30"),
            "{err}"
        );
    }

    #[test]
    fn sections_check_themselves_with_their_path() {
        let f: File = parse_toml("c", "[broker]\nport = 80\n").unwrap();
        let mut p = Problems::new();
        p.check("broker", &f.broker);
        p.check("", &f.broker);
        let list: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert_eq!(
            list,
            [
                "broker.port: 80 is a privileged port",
                "port: 80 is a privileged port"
            ]
        );
        let err = p.into_result("c.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.toml: 2 problem(s):\n  broker.port: 80 is a privileged port\n  port: 80 is a privileged port"
        );
        assert_eq!(err.problems().len(), 2);
        assert!(Problems::new().into_result("c").is_ok());
        assert_eq!(index("uds.dids", 2), "uds.dids[2]");
    }

    #[test]
    fn paths_resolve_beside_their_config() {
        let c = Path::new("/etc/rapport/agent.toml");
        assert_eq!(
            resolve_beside(Some(c), Path::new("line.dbc")),
            Path::new("/etc/rapport/line.dbc")
        );
        assert_eq!(
            resolve_beside(Some(c), Path::new("/abs/x")),
            Path::new("/abs/x")
        );
        assert_eq!(resolve_beside(None, Path::new("x")), Path::new("x"));
    }

    #[test]
    fn unreadable_files_are_named() {
        let err = read_toml::<File>(Path::new("/nonexistent/c.toml")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/c.toml: cannot read"),
            "{err}"
        );
    }
}
