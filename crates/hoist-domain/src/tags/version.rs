//! SemVer 2.0.0 versions as git tags spell them (`v1.2.3-rc.1+build.5`) and their precedence.
//!
//! What counts as a version is what docker/metadata-action's `type=semver` accepts (it uses
//! node-semver's strict grammar): an optional lowercase `v`, three numeric parts without
//! leading zeros, an optional prerelease and optional build metadata. Anything else is not a
//! version, and a `type=semver` line simply produces nothing for it.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Largest integer node-semver accepts in a numeric part: JavaScript's `Number.MAX_SAFE_INTEGER`.
/// Above it the action rejects the version, so hoist does too.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// node-semver refuses longer inputs outright.
const MAX_LENGTH: usize = 256;

/// A parsed version. Equality is structural over the numbers, prerelease and build (not the
/// `v` or surrounding spelling); ordering between versions is [`Version::cmp_precedence`],
/// which ignores build metadata as SemVer says.
#[derive(Debug, Clone)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    prerelease: Vec<Identifier>,
    build: Vec<String>,
    raw: String,
}

/// One dot-separated prerelease identifier. Numeric ones sort numerically and before
/// alphanumeric ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identifier {
    Numeric(u64),
    AlphaNumeric(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a SemVer version (expected [v]MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])")]
pub struct VersionError(String);

impl Version {
    pub fn major(&self) -> u64 {
        self.major
    }

    pub fn minor(&self) -> u64 {
        self.minor
    }

    pub fn patch(&self) -> u64 {
        self.patch
    }

    pub fn prerelease(&self) -> &[Identifier] {
        &self.prerelease
    }

    pub fn is_prerelease(&self) -> bool {
        !self.prerelease.is_empty()
    }

    /// The text the version was parsed from, `v` and build metadata included (`{{raw}}`).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// `MAJOR.MINOR.PATCH[-PRERELEASE]` without `v` or build metadata (`{{version}}`).
    pub fn canonical(&self) -> String {
        let mut out = format!("{}.{}.{}", self.major, self.minor, self.patch);
        if !self.prerelease.is_empty() {
            out.push('-');
            out.push_str(&join(self.prerelease.iter().map(ToString::to_string)));
        }
        out
    }

    /// SemVer precedence (spec item 11): build metadata does not count, so `1.0.0+a` and
    /// `1.0.0+b` are `Equal` here while still being different versions.
    pub fn cmp_precedence(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| cmp_prerelease(&self.prerelease, &other.prerelease))
    }
}

fn join(parts: impl Iterator<Item = String>) -> String {
    parts.collect::<Vec<_>>().join(".")
}

fn cmp_prerelease(left: &[Identifier], right: &[Identifier]) -> Ordering {
    match (left.is_empty(), right.is_empty()) {
        (true, true) => Ordering::Equal,
        // A release ranks above any of its prereleases.
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => {
            for (l, r) in left.iter().zip(right) {
                let order = match (l, r) {
                    (Identifier::Numeric(a), Identifier::Numeric(b)) => a.cmp(b),
                    (Identifier::Numeric(_), Identifier::AlphaNumeric(_)) => Ordering::Less,
                    (Identifier::AlphaNumeric(_), Identifier::Numeric(_)) => Ordering::Greater,
                    (Identifier::AlphaNumeric(a), Identifier::AlphaNumeric(b)) => a.cmp(b),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
            left.len().cmp(&right.len())
        }
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        (self.major, self.minor, self.patch) == (other.major, other.minor, other.patch)
            && self.prerelease == other.prerelease
            && self.build == other.build
    }
}

impl Eq for Version {}

impl std::hash::Hash for Version {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (
            self.major,
            self.minor,
            self.patch,
            &self.prerelease,
            &self.build,
        )
            .hash(state);
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identifier::Numeric(n) => write!(f, "{n}"),
            Identifier::AlphaNumeric(s) => f.write_str(s),
        }
    }
}

impl fmt::Display for Version {
    /// Canonical form plus build metadata: `1.2.3-rc.1+build.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())?;
        if !self.build.is_empty() {
            write!(f, "+{}", self.build.join("."))?;
        }
        Ok(())
    }
}

/// `0|[1-9][0-9]*` within JavaScript's safe integers.
fn numeric_part(text: &str) -> Option<u64> {
    let valid_digits = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !valid_digits {
        return None;
    }
    text.parse::<u64>().ok().filter(|n| *n <= MAX_SAFE_INTEGER)
}

fn prerelease_identifier(text: &str) -> Option<Identifier> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: a number, and SemVer forbids leading zeros there. node-semver keeps
        // numbers above the safe range as text; so does hoist, for the same ordering.
        if text != "0" && text.starts_with('0') {
            return None;
        }
        return Some(match text.parse::<u64>() {
            Ok(n) if n <= MAX_SAFE_INTEGER => Identifier::Numeric(n),
            _ => Identifier::AlphaNumeric(text.to_owned()),
        });
    }
    Some(Identifier::AlphaNumeric(text.to_owned()))
}

fn build_identifier_valid(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = || VersionError(input.to_owned());
        if input.len() > MAX_LENGTH {
            return Err(invalid());
        }
        let text = input.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let (text, build) = match text.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (text, None),
        };
        let (core, prerelease) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (text, None),
        };
        let mut numbers = core.split('.').map(numeric_part);
        let (Some(Some(major)), Some(Some(minor)), Some(Some(patch)), None) = (
            numbers.next(),
            numbers.next(),
            numbers.next(),
            numbers.next(),
        ) else {
            return Err(invalid());
        };
        let prerelease = match prerelease {
            None => Vec::new(),
            Some(pre) => pre
                .split('.')
                .map(prerelease_identifier)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(invalid)?,
        };
        let build = match build {
            None => Vec::new(),
            Some(build) => {
                let parts: Vec<String> = build.split('.').map(str::to_owned).collect();
                if !parts.iter().all(|p| build_identifier_valid(p)) {
                    return Err(invalid());
                }
                parts
            }
        };
        Ok(Version {
            major,
            minor,
            patch,
            prerelease,
            build,
            raw: input.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn accepts_what_node_semver_accepts_strictly() {
        for ok in [
            "1.2.3",
            "v1.2.3",
            "0.0.0",
            "1.2.3-beta.67",
            "v2.0.8-beta.67",
            "1.2.3-0a",
            "1.2.3-x-y.0",
            "1.2.3+build.007",
            "1.2.3-rc.1+b",
            " 1.2.3 ",
        ] {
            assert!(ok.parse::<Version>().is_ok(), "{ok} should parse");
        }
        for bad in [
            "",
            "1.2",
            "1.2.3.4",
            "V1.2.3",
            "=1.2.3",
            "vv1.2.3",
            "01.2.3",
            "1.02.3",
            "1.2.3-01",
            "1.2.3-",
            "1.2.3-a..b",
            "1.2.3+",
            "1.2.3+a_b",
            "1.2.3rc2",
            "release1",
            "p1-v1.0.0",
            "20200110-RC2",
            "9007199254740992.0.0",
        ] {
            assert!(
                bad.parse::<Version>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn canonical_drops_v_and_build_raw_keeps_them() {
        let version = v("v1.2.3-rc.1+build.5");
        assert_eq!(version.canonical(), "1.2.3-rc.1");
        assert_eq!(version.raw(), "v1.2.3-rc.1+build.5");
        assert_eq!(version.to_string(), "1.2.3-rc.1+build.5");
    }

    #[test]
    fn precedence_follows_the_spec_example_chain() {
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
        ];
        for pair in chain.windows(2) {
            assert_eq!(
                v(pair[0]).cmp_precedence(&v(pair[1])),
                Ordering::Less,
                "{} < {}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn build_metadata_does_not_change_precedence_but_does_identity() {
        assert_eq!(v("1.0.0+a").cmp_precedence(&v("1.0.0+b")), Ordering::Equal);
        assert_ne!(v("1.0.0+a"), v("1.0.0+b"));
        assert_eq!(v("v1.0.0"), v("1.0.0"));
    }
}
