//! Image tag names as the OCI distribution spec allows them.

use std::fmt;
use std::str::FromStr;

/// The OCI distribution spec's limit on a tag's length.
const MAX_TAG_LENGTH: usize = 128;

/// A tag as a registry accepts it: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagNameError {
    #[error("a tag cannot be empty")]
    Empty,
    #[error("a tag is at most 128 characters")]
    TooLong,
    #[error("a tag cannot start with '.' or '-'")]
    BadStart,
    #[error("a tag may only hold letters, digits, '_', '.' and '-'")]
    BadCharacter,
}

impl TagName {
    /// Exactly the strings [`TagName::from_str`] accepts, as an ECMA regular expression.
    pub const PATTERN: &'static str = "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$";

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// metadata-action's sanitization: every run of characters a tag cannot hold becomes one
    /// `-` (`my/feature#1245` -> `my-feature-1245`). The result may still be invalid (empty,
    /// too long, leading `-`); parsing it says so.
    pub(super) fn sanitize(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut in_bad_run = false;
        for c in text.chars() {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                out.push(c);
                in_bad_run = false;
            } else if !in_bad_run {
                out.push('-');
                in_bad_run = true;
            }
        }
        out
    }
}

impl FromStr for TagName {
    type Err = TagNameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let first = text.bytes().next().ok_or(TagNameError::Empty)?;
        if text.len() > MAX_TAG_LENGTH {
            return Err(TagNameError::TooLong);
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(TagNameError::BadCharacter);
        }
        if matches!(first, b'.' | b'-') {
            return Err(TagNameError::BadStart);
        }
        Ok(TagName(text.to_owned()))
    }
}

impl fmt::Display for TagName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for TagName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for TagName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_collapses_runs_of_invalid_characters() {
        assert_eq!(TagName::sanitize("my/feature#1245"), "my-feature-1245");
        assert_eq!(TagName::sanitize("a&#x3D;b"), "a-x3D-b");
        assert_eq!(TagName::sanitize("v1.2.3+build"), "v1.2.3-build");
        assert_eq!(TagName::sanitize("héllo wörld"), "h-llo-w-rld");
    }

    #[test]
    fn only_registry_valid_tags_parse() {
        assert!("v1.2.3".parse::<TagName>().is_ok());
        assert!("_x".parse::<TagName>().is_ok());
        assert_eq!("".parse::<TagName>(), Err(TagNameError::Empty));
        assert_eq!("-x".parse::<TagName>(), Err(TagNameError::BadStart));
        assert_eq!(".x".parse::<TagName>(), Err(TagNameError::BadStart));
        assert_eq!("a/b".parse::<TagName>(), Err(TagNameError::BadCharacter));
        assert_eq!(
            "a".repeat(129).parse::<TagName>(),
            Err(TagNameError::TooLong)
        );
    }
}
