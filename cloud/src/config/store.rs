//! `[store]`: which backend keeps the cloud's data — sled in a directory (the default, one
//! machine) or PostgreSQL (shared by instances) — and how to reach it, with its [`Check`].
//!
//! Owns the section's shape and rules, and [`DbUrl`]: a database URL that never shows its
//! password (Debug, Display, errors and `check-config` print it redacted). Does not own
//! connecting ([`crate::store::postgres`]) or what is stored.

use std::fmt;
use std::path::PathBuf;

use rapport_kit::config::{Check, Problems};
use serde::{Deserialize, Serialize};

use super::defaults;

/// Which store the cloud runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// sled in `path`: one process, one machine (the default; the testbed's).
    #[default]
    Sled,
    /// PostgreSQL at `url` (or the URL in `url_env`).
    Postgres,
}

impl Backend {
    /// The spelling in the file.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sled => "sled",
            Self::Postgres => "postgres",
        }
    }
}

/// A PostgreSQL URL (`postgres://user:password@host:port/database?…`). Its password is
/// shown as `***` wherever the URL is printed; [`DbUrl::expose`] gives the real text to the
/// client only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DbUrl(String);

impl DbUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL as given, password included: for the database client, never for a log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password (if any) replaced by `***`; text that does not parse as a
    /// URL is shown as `(unparsable URL)` (it might hold a password anywhere).
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut u) => {
                if u.password().is_some() {
                    let _ = u.set_password(Some("***"));
                }
                // `password=` in the query is also a password.
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k.eq_ignore_ascii_case("password") {
                            "***".to_owned()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                if !pairs.is_empty() {
                    u.query_pairs_mut().clear().extend_pairs(pairs);
                }
                u.to_string()
            }
            Err(_) => "(unparsable URL)".to_owned(),
        }
    }

    /// The host and the database named by the URL, for errors (`"127.0.0.1:5432/rapport"`).
    pub fn target(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(u) => {
                let host = u.host_str().unwrap_or("localhost");
                let port = u.port().unwrap_or(5432);
                let db = u.path().trim_start_matches('/');
                let db = if db.is_empty() { u.username() } else { db };
                format!("host {host}:{port}, database {db:?}")
            }
            Err(_) => "(unparsable URL)".to_owned(),
        }
    }

    /// What is wrong with the URL, if anything: it must parse, use `postgres://` or
    /// `postgresql://`, and name a host.
    pub fn problem(&self) -> Option<String> {
        match url::Url::parse(&self.0) {
            Err(e) => Some(format!("not a URL ({e})")),
            Ok(u) if !matches!(u.scheme(), "postgres" | "postgresql") => Some(format!(
                "{} must start with postgres:// or postgresql://",
                self.redacted()
            )),
            Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                Some(format!("{} names no host", self.redacted()))
            }
            Ok(_) => None,
        }
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbUrl({:?})", self.redacted())
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Default connections in the PostgreSQL pool.
pub const DEFAULT_POOL_SIZE: u32 = 8;
/// Most connections in the pool.
pub const MAX_POOL_SIZE: u32 = 256;
/// Default statement timeout, ms.
pub const DEFAULT_STATEMENT_TIMEOUT_MS: u64 = 30_000;
/// Longest statement timeout accepted, ms (one hour).
pub const MAX_STATEMENT_TIMEOUT_MS: u64 = 3_600_000;

/// Default page cache of the sled store, MiB: what of the store sled keeps in memory. sled's
/// own default is 1 GiB, which a cloud serving a growing fleet fills slowly and keeps: the
/// year-long soak's memory grew by ~13 MiB a month toward it (docs/reliability.md, section 5).
pub const DEFAULT_SLED_CACHE_MB: u32 = 128;
/// The least and most `[store] sled_cache_mb` may be.
pub const SLED_CACHE_MB: core::ops::RangeInclusive<u32> = 8..=65_536;

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Store {
    /// `sled` (default) or `postgres`.
    pub backend: Backend,
    /// The data directory, relative to the config file: sled's store, and the generated
    /// operator token (`<path>/operator-token`) whatever the backend.
    pub path: PathBuf,
    /// PostgreSQL: the URL (`postgres://user@host:5432/rapport`). Prefer `url_env` when it
    /// holds a password.
    pub url: Option<DbUrl>,
    /// PostgreSQL: the environment variable holding the URL.
    pub url_env: Option<String>,
    /// PostgreSQL: connections in the pool.
    pub pool_size: u32,
    /// PostgreSQL: the longest one statement may run, ms (`statement_timeout`).
    pub statement_timeout_ms: u64,
    /// sled: its page cache, MiB — the bound of the store's share of the cloud's memory (a
    /// page not cached is read back from the file).
    pub sled_cache_mb: u32,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            backend: Backend::Sled,
            path: PathBuf::from(defaults::STORE_PATH),
            url: None,
            url_env: None,
            pool_size: DEFAULT_POOL_SIZE,
            statement_timeout_ms: DEFAULT_STATEMENT_TIMEOUT_MS,
            sled_cache_mb: DEFAULT_SLED_CACHE_MB,
        }
    }
}

impl Store {
    /// The PostgreSQL URL: `url`, or the value of `url_env` read from `env`.
    ///
    /// # Errors
    /// Neither is set, both are, the variable is unset, or the URL is unusable (the message
    /// names the key; the URL in it is redacted).
    pub fn postgres_url(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<DbUrl, (&'static str, String)> {
        let url = match (&self.url, &self.url_env) {
            (Some(_), Some(_)) => return Err(("url", "give url or url_env, not both".into())),
            (None, None) => {
                return Err((
                    "url",
                    "required with backend = \"postgres\" (or url_env naming the variable \
                     that holds it)"
                        .into(),
                ));
            }
            (Some(u), None) => u.clone(),
            (None, Some(var)) => match env(var) {
                Some(v) if !v.trim().is_empty() => DbUrl::new(v.trim()),
                _ => return Err(("url_env", format!("the variable {var:?} is not set"))),
            },
        };
        match url.problem() {
            Some(p) => Err((if self.url.is_some() { "url" } else { "url_env" }, p)),
            None => Ok(url),
        }
    }
}

impl Check for Store {
    fn check(&self, path: &str, problems: &mut Problems) {
        if self.path.as_os_str().is_empty() {
            problems.at(path, "path", "must not be empty");
        }
        if !(1..=MAX_POOL_SIZE).contains(&self.pool_size) {
            problems.at(
                path,
                "pool_size",
                format!("{} is not 1..={MAX_POOL_SIZE}", self.pool_size),
            );
        }
        if !SLED_CACHE_MB.contains(&self.sled_cache_mb) {
            problems.at(
                path,
                "sled_cache_mb",
                format!(
                    "{} is not {}..={}",
                    self.sled_cache_mb,
                    SLED_CACHE_MB.start(),
                    SLED_CACHE_MB.end()
                ),
            );
        }
        if !(1..=MAX_STATEMENT_TIMEOUT_MS).contains(&self.statement_timeout_ms) {
            problems.at(
                path,
                "statement_timeout_ms",
                format!(
                    "{} is not 1..={MAX_STATEMENT_TIMEOUT_MS}",
                    self.statement_timeout_ms
                ),
            );
        }
        match self.backend {
            Backend::Postgres => {
                if let Err((field, message)) = self.postgres_url(&|v| std::env::var(v).ok()) {
                    problems.at(path, field, message);
                }
            }
            Backend::Sled => {
                for (field, set) in [
                    ("url", self.url.is_some()),
                    ("url_env", self.url_env.is_some()),
                ] {
                    if set {
                        problems.at(path, field, "only with backend = \"postgres\"");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn problems(s: &Store) -> Vec<String> {
        s.problems("store")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_password_never_shows() {
        let u = DbUrl::new("postgres://app:s3cret@db.example:6432/rapport?password=other&x=1");
        for text in [format!("{u}"), format!("{u:?}"), u.redacted(), u.target()] {
            assert!(
                !text.contains("s3cret") && !text.contains("other"),
                "{text}"
            );
        }
        assert_eq!(u.target(), "host db.example:6432, database \"rapport\"");
        assert_eq!(
            u.expose(),
            "postgres://app:s3cret@db.example:6432/rapport?password=other&x=1"
        );
        let bad = DbUrl::new("postgres://app:s3cret@[broken");
        assert!(!format!("{bad:?}").contains("s3cret"));
        let problem = DbUrl::new("mysql://app:s3cret@h/db").problem().unwrap();
        assert!(
            problem.contains("postgres://") && !problem.contains("s3cret"),
            "{problem}"
        );
    }

    #[test]
    fn postgres_needs_exactly_one_url() {
        let mut s = Store {
            backend: Backend::Postgres,
            ..Store::default()
        };
        assert!(
            problems(&s)[0].contains("store.url: required"),
            "{:?}",
            problems(&s)
        );
        s.url = Some(DbUrl::new("postgres://postgres@127.0.0.1/rapport"));
        assert!(problems(&s).is_empty(), "{:?}", problems(&s));
        s.url_env = Some("RAPPORT_TEST_NO_SUCH_VAR".into());
        assert!(problems(&s)[0].contains("not both"));
        s.url = None;
        assert!(
            problems(&s)[0].contains("store.url_env: the variable"),
            "{:?}",
            problems(&s)
        );
        let env = |_: &str| Some("postgres://u:pw@h/db".to_owned());
        assert_eq!(
            s.postgres_url(&env).unwrap().expose(),
            "postgres://u:pw@h/db"
        );
    }

    #[test]
    fn limits_and_sled_keys() {
        let s = Store {
            pool_size: 0,
            statement_timeout_ms: 0,
            url: Some(DbUrl::new("postgres://h/db")),
            ..Store::default()
        };
        let p = problems(&s);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("pool_size") && p[1].contains("statement_timeout_ms"));
        assert!(p[2].contains("only with backend"));
    }

    #[test]
    fn the_sled_cache_is_bounded_both_ways() {
        for (mb, ok) in [
            (0, false),
            (7, false),
            (8, true),
            (128, true),
            (65_537, false),
        ] {
            let s = Store {
                sled_cache_mb: mb,
                ..Store::default()
            };
            let p = problems(&s);
            assert_eq!(p.is_empty(), ok, "{mb}: {p:?}");
            if !ok {
                assert!(p[0].contains("store.sled_cache_mb"), "{p:?}");
            }
        }
    }
}
