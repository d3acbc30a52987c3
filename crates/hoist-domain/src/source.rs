//! Where a repository's CI images may come from (`[[repository]] sources`): exact
//! repositories of a registry, or a `*` glob in the last path segment. hoist copies an image
//! with its own registry credential only from these, so a CI credential cannot make it read
//! any other repository of the registry.

use std::fmt;
use std::str::FromStr;

use crate::ImageRef;

/// `ghcr.io/octo-org/ci` or `ghcr.io/octo-org/ci-*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePattern {
    registry: String,
    /// The path up to its last segment, with the trailing `/` (empty at the top level).
    parent: String,
    /// The last segment: literal text around at most one `*`.
    last: (String, Option<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a source: write registry/repository, with at most one * in the last \
     segment (e.g. ghcr.io/octo-org/ci-*)"
)]
pub struct SourcePatternError(pub String);

impl SourcePattern {
    /// Exactly the repository of `image`.
    pub fn exact(image: &ImageRef) -> SourcePattern {
        let (parent, last) = match image.repository().rsplit_once('/') {
            Some((parent, last)) => (format!("{parent}/"), last),
            None => (String::new(), image.repository()),
        };
        SourcePattern {
            registry: image.registry().to_ascii_lowercase(),
            parent,
            last: (last.to_owned(), None),
        }
    }

    /// The registry host the pattern names.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Whether `image` (any tag or digest) is in one of the repositories this names.
    pub fn matches(&self, image: &ImageRef) -> bool {
        if !image.registry().eq_ignore_ascii_case(&self.registry) {
            return false;
        }
        let Some(last) = image.repository().strip_prefix(&self.parent) else {
            return false;
        };
        if last.contains('/') {
            return false;
        }
        match &self.last {
            (exact, None) => last == exact,
            (before, Some(after)) => {
                last.len() >= before.len() + after.len()
                    && last.starts_with(before.as_str())
                    && last.ends_with(after.as_str())
            }
        }
    }
}

impl FromStr for SourcePattern {
    type Err = SourcePatternError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || SourcePatternError(text.to_owned());
        let (head, last) = text.rsplit_once('/').ok_or_else(bad)?;
        if head.contains('*') || last.matches('*').count() > 1 {
            return Err(bad());
        }
        // Well-formed once the glob stands for a letter, and naming no tag or digest.
        let probe: ImageRef = format!("{head}/{}", last.replace('*', "x"))
            .parse()
            .map_err(|_| bad())?;
        if probe.tag().is_some() || probe.digest().is_some() {
            return Err(bad());
        }
        let mut pattern = SourcePattern::exact(&probe);
        pattern.last = match last.split_once('*') {
            Some((before, after)) => (before.to_owned(), Some(after.to_owned())),
            None => (last.to_owned(), None),
        };
        Ok(pattern)
    }
}

impl fmt::Display for SourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (before, after) = &self.last;
        match after {
            Some(after) => write!(f, "{}/{}{before}*{after}", self.registry, self.parent),
            None => write!(f, "{}/{}{before}", self.registry, self.parent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(text: &str) -> ImageRef {
        text.parse().unwrap()
    }

    #[test]
    fn sources_match_their_repositories_only() {
        let exact: SourcePattern = "ghcr.io/octo-org/ci".parse().unwrap();
        let glob: SourcePattern = "GHCR.io/octo-org/ci-*".parse().unwrap();
        let digest = format!("@sha256:{}", "a".repeat(64));
        for (pattern, text, matches) in [
            (&exact, "ghcr.io/octo-org/ci", true),
            (&exact, "ghcr.io/octo-org/ci:latest", true),
            (&exact, "ghcr.io/octo-org/cix", false),
            (&exact, "ghcr.io/octo-org/ci/sub", false),
            (&exact, "ghcr.io/other/ci", false),
            (&exact, "quay.io/octo-org/ci", false),
            (&glob, "ghcr.io/octo-org/ci-amd64", true),
            (&glob, "ghcr.io/octo-org/ci-x", true),
            (&glob, "ghcr.io/octo-org/ci", false),
            (&glob, "ghcr.io/octo-org/ci-a/b", false),
            (&glob, "ghcr.io/private/ci-amd64", false),
        ] {
            let with_digest = image(&format!("{}{digest}", text.split(':').next().unwrap()));
            assert_eq!(
                pattern.matches(&image(text)),
                matches,
                "{pattern} vs {text}"
            );
            assert_eq!(
                pattern.matches(&with_digest),
                matches,
                "{pattern} vs {text}@…"
            );
        }
        assert_eq!(glob.to_string(), "ghcr.io/octo-org/ci-*");
        let top: SourcePattern = "localhost:5000/app".parse().unwrap();
        assert!(top.matches(&image("localhost:5000/app")));
        assert!(!top.matches(&image("localhost:5000/app2")));
        assert_eq!(
            SourcePattern::exact(&image("ghcr.io/octo-org/app:1")).to_string(),
            "ghcr.io/octo-org/app"
        );
    }

    #[test]
    fn malformed_sources_are_refused() {
        for bad in [
            "octo-org/ci",
            "ghcr.io",
            "ghcr.io/*/ci",
            "ghcr.io/octo-org/c**",
            "ghcr.io/octo-org/ci:latest",
            "ghcr.io/Octo/ci",
            "ghcr.io/octo-org/ci@sha256:00",
        ] {
            assert!(bad.parse::<SourcePattern>().is_err(), "{bad}");
        }
    }
}
