//! GitHub repository names (`owner/name`) and the globs CI tokens are limited by.

use std::fmt;
use std::str::FromStr;

/// A GitHub repository `full_name` such as `octo-org/app`. Compared case-insensitively, as
/// GitHub does.
#[derive(Debug, Clone, Eq)]
pub struct RepoName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoNameError {
    #[error("{0:?} is not a GitHub repository: expected owner/name")]
    Malformed(String),
}

fn valid_owner(owner: &str) -> bool {
    !owner.is_empty()
        && owner.len() <= 39
        && !owner.starts_with('-')
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl RepoName {
    /// `owner/name` as an ECMA regular expression: every string it admits parses (the
    /// parser also takes a name starting with `.`, other than `.` and `..`).
    pub const PATTERN: &'static str =
        "^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$";

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for RepoName {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl std::hash::Hash for RepoName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_ascii_lowercase().hash(state);
    }
}

impl FromStr for RepoName {
    type Err = RepoNameError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match input.split_once('/') {
            Some((owner, name)) if valid_owner(owner) && valid_name(name) => {
                Ok(RepoName(input.to_owned()))
            }
            _ => Err(RepoNameError::Malformed(input.to_owned())),
        }
    }
}

/// Serialized as its text, as the API shows it.
impl serde::Serialize for RepoName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `owner/name` where either side may hold `*` wildcards (`octo-org/*`, `*/app-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPattern {
    owner: String,
    name: String,
}

impl RepoPattern {
    pub fn matches(&self, repo: &RepoName) -> bool {
        let (owner, name) = repo.0.split_once('/').unwrap_or((&repo.0, ""));
        glob_match(&self.owner, owner) && glob_match(&self.name, name)
    }
}

impl FromStr for RepoPattern {
    type Err = RepoNameError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let malformed = || RepoNameError::Malformed(input.to_owned());
        let (owner, name) = input.split_once('/').ok_or_else(malformed)?;
        let literal = |s: &str| s.replace('*', "");
        let owner_ok = owner == "*" || literal(owner).is_empty() || valid_owner(&literal(owner));
        let name_ok = name == "*" || literal(name).is_empty() || valid_name(&literal(name));
        if owner.is_empty() || name.is_empty() || !owner_ok || !name_ok {
            return Err(malformed());
        }
        Ok(RepoPattern {
            owner: owner.to_ascii_lowercase(),
            name: name.to_ascii_lowercase(),
        })
    }
}

impl fmt::Display for RepoPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// Case-insensitive match where `*` stands for any run of characters; `pattern` is
/// lowercase already.
fn glob_match(pattern: &str, text: &str) -> bool {
    glob(pattern, &text.to_ascii_lowercase())
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = parts.collect();
    let Some(last) = parts.pop() else {
        return rest.is_empty();
    };
    for part in parts {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(s: &str) -> RepoName {
        s.parse().unwrap()
    }

    #[test]
    fn repo_names_follow_github_rules() {
        assert!("octo-org/app".parse::<RepoName>().is_ok());
        assert!("Octo/my.app_2".parse::<RepoName>().is_ok());
        for bad in [
            "octo",
            "/app",
            "octo/",
            "-octo/app",
            "octo/a/b",
            "octo/a b",
            "octo/..",
        ] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad}");
        }
        assert_eq!(repo("Octo-Org/App"), repo("octo-org/app"));
    }

    #[test]
    fn patterns_match_with_wildcards_case_insensitively() {
        let p: RepoPattern = "octo-org/*".parse().unwrap();
        assert!(p.matches(&repo("octo-org/app")));
        assert!(p.matches(&repo("Octo-Org/other")));
        assert!(!p.matches(&repo("octo-org2/app")));
        let p: RepoPattern = "*/app-*".parse().unwrap();
        assert!(p.matches(&repo("a/app-web")));
        assert!(!p.matches(&repo("a/web-app")));
        let p: RepoPattern = "octo/app".parse().unwrap();
        assert!(p.matches(&repo("octo/app")));
        assert!(!p.matches(&repo("octo/app2")));
        let p: RepoPattern = "o/a*b*c".parse().unwrap();
        assert!(p.matches(&repo("o/abc")));
        assert!(p.matches(&repo("o/a-b-c")));
        assert!(!p.matches(&repo("o/a-c-b")));
        for bad in ["octo", "octo/", "*", "oc to/*"] {
            assert!(bad.parse::<RepoPattern>().is_err(), "{bad}");
        }
    }
}
