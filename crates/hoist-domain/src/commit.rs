//! Git commit ids.

use std::fmt;
use std::str::FromStr;

/// A full 40-hex git commit id, kept lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitSha(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a commit: expected 40 hex digits")]
pub struct CommitShaError(pub String);

impl CommitSha {
    /// The strings [`CommitSha::from_str`] accepts, as an ECMA regular expression.
    pub const PATTERN: &'static str = "^[0-9a-fA-F]{40}$";

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first seven digits, as `type=sha` tags and GitHub's UI show them.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }
}

impl FromStr for CommitSha {
    type Err = CommitShaError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.len() == 40 && input.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(CommitSha(input.to_ascii_lowercase()))
        } else {
            Err(CommitShaError(input.to_owned()))
        }
    }
}

/// Serialized as its text, as the API shows it.
impl serde::Serialize for CommitSha {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_forty_hex_digits_kept_lowercase() {
        let sha: CommitSha = "6113728F27AE82C7B1A177C8D03F9E96E0ADF246".parse().unwrap();
        assert_eq!(sha.as_str(), "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
        assert_eq!(sha.short(), "6113728");
        for bad in ["master", "6113728", &"g".repeat(40), &"a".repeat(41)] {
            assert!(bad.parse::<CommitSha>().is_err(), "{bad}");
        }
    }
}
