//! Parsing `tags` and `flavor` lines into a [`TagPolicy`].
//!
//! Each line is one CSV record of `key=value` fields (a field without `=` is the `value`),
//! keys case-insensitive, values trimmed, a repeated key's last value winning: all as in
//! metadata-action. Unlike the action, which keeps attributes it does not know and ignores
//! them, hoist rejects them: a misspelt `prefx=` should stop a config, not publish
//! unprefixed tags.

use std::collections::BTreeMap;

use regex_lite::Regex;

use super::csv::split_fields;
use super::template::{GlobalExpr, Template, VersionExpr};
use super::{LineRef, TagPolicyError};

/// A repository's parsed tag policy: its tag lines in priority order and its flavor.
#[derive(Debug, Clone)]
pub struct TagPolicy {
    pub(super) lines: Vec<TagLine>,
    pub(super) flavor: Flavor,
}

#[derive(Debug, Clone)]
pub(super) struct TagLine {
    pub(super) line: LineRef,
    pub(super) kind: LineKind,
    pub(super) enable: Template<GlobalExpr>,
    pub(super) priority: i64,
    /// `Some` whenever the line sets `prefix=`, even to nothing: a line's own prefix replaces
    /// the flavor's, so `type=sha` (default `sha-`) never gets the flavor prefix.
    pub(super) prefix: Option<Template<GlobalExpr>>,
    pub(super) suffix: Option<Template<GlobalExpr>>,
}

#[derive(Debug, Clone)]
pub(super) enum LineKind {
    Semver {
        pattern: Template<VersionExpr>,
        /// Empty: the tag name of the ref.
        value: Option<Template<GlobalExpr>>,
        /// `match=`: the version is its first group, when it matches.
        extract: Option<Regex>,
    },
    Match {
        pattern: MatchPattern,
        group: usize,
        value: Option<Template<GlobalExpr>>,
    },
    Edge {
        /// `None`: the repository's default branch.
        branch: Option<String>,
    },
    Ref(RefEvent),
    Raw {
        value: Template<GlobalExpr>,
    },
    Sha {
        long: bool,
    },
    /// Accepted so a workflow's lines paste unchanged, but hoist never handles scheduled
    /// runs, so it never produces a tag.
    Schedule,
}

#[derive(Debug, Clone)]
pub(super) struct MatchPattern {
    pub(super) regex: Regex,
    /// JavaScript's `g` flag: `String.match` then returns every whole match instead of
    /// groups, and `group=` indexes that list.
    pub(super) every_match: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RefEvent {
    Branch,
    Tag,
    /// Accepted for pasted workflows; hoist never publishes pull requests.
    PullRequest,
}

#[derive(Debug, Clone)]
pub(super) struct Flavor {
    pub(super) latest: Latest,
    pub(super) prefix: Option<Template<GlobalExpr>>,
    pub(super) prefix_on_latest: bool,
    pub(super) suffix: Option<Template<GlobalExpr>>,
    pub(super) suffix_on_latest: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Latest {
    Auto,
    Always,
    Never,
}

/// metadata-action's tags when the input is empty.
const DEFAULT_TAG_LINES: [&str; 4] = [
    "type=schedule",
    "type=ref,event=branch",
    "type=ref,event=tag",
    "type=ref,event=pr",
];

const COMMON_KEYS: [&str; 4] = ["enable", "priority", "prefix", "suffix"];

impl TagPolicy {
    /// Parses the lines as metadata-action reads its `tags` and `flavor` inputs. No tag
    /// lines means the action's defaults (branch and tag names).
    pub fn parse<T: AsRef<str>, F: AsRef<str>>(
        tags: &[T],
        flavor: &[F],
    ) -> Result<TagPolicy, TagPolicyError> {
        let mut lines = if tags.is_empty() {
            DEFAULT_TAG_LINES
                .iter()
                .enumerate()
                .map(|(index, text)| parse_tag_line(LineRef::Tags(index), text))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            tags.iter()
                .enumerate()
                .map(|(index, text)| parse_tag_line(LineRef::Tags(index), text.as_ref()))
                .collect::<Result<Vec<_>, _>>()?
        };
        // Stable: equal priorities keep the order they were written in.
        lines.sort_by_key(|line| std::cmp::Reverse(line.priority));
        let flavor = parse_flavor(flavor)?;
        Ok(TagPolicy { lines, flavor })
    }
}

fn fields_of(line: LineRef, text: &str) -> Result<Vec<String>, TagPolicyError> {
    if text.trim().is_empty() {
        return Err(TagPolicyError::EmptyLine { line });
    }
    split_fields(text).map_err(|source| TagPolicyError::Csv { line, source })
}

fn parse_tag_line(line: LineRef, text: &str) -> Result<TagLine, TagPolicyError> {
    let mut kind_name = String::from("raw");
    let mut attrs = BTreeMap::new();
    for field in fields_of(line, text)? {
        // Split at the first `=` that has a key before it; a bare field is the value.
        match field.split_once('=').filter(|(key, _)| !key.is_empty()) {
            None => {
                attrs.insert("value".to_owned(), field.trim().to_owned());
            }
            Some((key, value)) => {
                let key = key.trim().to_lowercase();
                if key == "type" {
                    kind_name = value.trim().to_owned();
                } else {
                    attrs.insert(key, value.trim().to_owned());
                }
            }
        }
    }
    let attrs = Attrs { line, attrs };
    // The default priorities are the action's, so pasted lines come out in the same order.
    let (kind_label, kind, default_priority, own_keys): (_, _, _, &[&str]) =
        match kind_name.as_str() {
            "schedule" => ("schedule", LineKind::Schedule, 1000, &["pattern"]),
            "semver" => (
                "semver",
                attrs.semver()?,
                900,
                &["pattern", "value", "match"],
            ),
            "match" => (
                "match",
                attrs.match_kind()?,
                800,
                &["pattern", "group", "value"],
            ),
            "edge" => ("edge", attrs.edge(), 700, &["branch"]),
            "ref" => ("ref", attrs.ref_kind()?, 600, &["event"]),
            "raw" => ("raw", attrs.raw()?, 200, &["value"]),
            "sha" => ("sha", attrs.sha()?, 100, &["format"]),
            "pep440" => {
                return Err(TagPolicyError::UnsupportedType {
                    line,
                    name: kind_name,
                    why: "hoist orders releases by SemVer; use type=semver",
                });
            }
            _ => {
                return Err(TagPolicyError::UnknownType {
                    line,
                    name: kind_name,
                });
            }
        };
    if let Some(key) = attrs
        .attrs
        .keys()
        .find(|key| !COMMON_KEYS.contains(&key.as_str()) && !own_keys.contains(&key.as_str()))
    {
        return Err(TagPolicyError::UnknownAttribute {
            line,
            kind: kind_label,
            key: key.clone(),
        });
    }
    let default_prefix = match kind {
        LineKind::Sha { .. } => Some("sha-"),
        LineKind::Ref(RefEvent::PullRequest) => Some("pr-"),
        _ => None,
    };
    let prefix = match attrs.get("prefix").or(default_prefix) {
        Some(prefix) => Some(attrs.template("prefix", prefix)?),
        None => None,
    };
    let suffix = match attrs.get("suffix") {
        Some(suffix) => Some(attrs.template("suffix", suffix)?),
        None => None,
    };
    let enable = attrs.template("enable", attrs.get("enable").unwrap_or("true"))?;
    if let Some(literal) = enable.as_literal()
        && literal != "true"
        && literal != "false"
    {
        return Err(attrs.invalid("enable", literal, "true, false or an expression"));
    }
    let priority = match attrs.get("priority") {
        None => default_priority,
        Some(text) => text
            .parse()
            .map_err(|_| attrs.invalid("priority", text, "an integer"))?,
    };
    Ok(TagLine {
        line,
        kind,
        enable,
        priority,
        prefix,
        suffix,
    })
}

struct Attrs {
    line: LineRef,
    attrs: BTreeMap<String, String>,
}

impl Attrs {
    fn get(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).map(String::as_str)
    }

    fn require(&self, kind: &'static str, key: &'static str) -> Result<&str, TagPolicyError> {
        self.get(key).ok_or(TagPolicyError::MissingAttribute {
            line: self.line,
            kind,
            key,
        })
    }

    fn invalid(&self, key: &'static str, value: &str, expected: &'static str) -> TagPolicyError {
        TagPolicyError::InvalidValue {
            line: self.line,
            key,
            value: value.to_owned(),
            expected,
        }
    }

    fn template<E: super::template::Vocabulary>(
        &self,
        key: &'static str,
        text: &str,
    ) -> Result<Template<E>, TagPolicyError> {
        Template::parse(text).map_err(|reason| TagPolicyError::Template {
            line: self.line,
            key,
            reason,
        })
    }

    /// An absent or empty `value=` means "the ref's tag name" to semver and match lines.
    fn optional_value(&self) -> Result<Option<Template<GlobalExpr>>, TagPolicyError> {
        match self.get("value") {
            None | Some("") => Ok(None),
            Some(value) => Ok(Some(self.template("value", value)?)),
        }
    }

    fn regex(&self, key: &'static str, source: &str) -> Result<Regex, TagPolicyError> {
        Regex::new(source).map_err(|error| TagPolicyError::Regex {
            line: self.line,
            key,
            reason: error.to_string(),
        })
    }

    fn semver(&self) -> Result<LineKind, TagPolicyError> {
        let pattern = self.template("pattern", self.require("semver", "pattern")?)?;
        let extract = match self.get("match") {
            None | Some("") => None,
            Some(source) => {
                let regex = self.regex("match", source)?;
                // The action takes group 1 of `match=`; without one it has nothing to use.
                if regex.captures_len() < 2 {
                    return Err(TagPolicyError::Regex {
                        line: self.line,
                        key: "match",
                        reason: "it needs a capture group: the version is group 1".to_owned(),
                    });
                }
                Some(regex)
            }
        };
        Ok(LineKind::Semver {
            pattern,
            value: self.optional_value()?,
            extract,
        })
    }

    fn match_kind(&self) -> Result<LineKind, TagPolicyError> {
        let source = self.require("match", "pattern")?;
        let pattern = self.match_pattern(source)?;
        let group_text = self.get("group").unwrap_or("0");
        let group: usize = group_text
            .parse()
            .map_err(|_| self.invalid("group", group_text, "a group number"))?;
        // The action warns and produces nothing for a group the pattern lacks; that line can
        // never do anything, so hoist calls it a config error.
        if !pattern.every_match && group >= pattern.regex.captures_len() {
            return Err(self.invalid("group", group_text, "a group the pattern has"));
        }
        Ok(LineKind::Match {
            pattern,
            group,
            value: self.optional_value()?,
        })
    }

    /// `/body/flags` is a JavaScript regular expression literal; anything else is the body.
    fn match_pattern(&self, source: &str) -> Result<MatchPattern, TagPolicyError> {
        let literal = source
            .strip_prefix('/')
            .and_then(|rest| rest.rsplit_once('/'))
            .filter(|(body, _)| !body.is_empty());
        let Some((body, flags)) = literal else {
            return Ok(MatchPattern {
                regex: self.regex("pattern", source)?,
                every_match: false,
            });
        };
        let mut inline = String::new();
        let mut every_match = false;
        for flag in flags.chars() {
            match flag {
                'i' | 'm' | 's' => inline.push(flag),
                'g' => every_match = true,
                // Unicode mode and match indices change nothing for the ASCII patterns
                // hoist's regex engine runs.
                'u' | 'd' => {}
                _ => {
                    return Err(TagPolicyError::Regex {
                        line: self.line,
                        key: "pattern",
                        reason: format!("flag {flag:?} is not supported (use i, m, s, g or u)"),
                    });
                }
            }
        }
        let source = if inline.is_empty() {
            body.to_owned()
        } else {
            format!("(?{inline}){body}")
        };
        Ok(MatchPattern {
            regex: self.regex("pattern", &source)?,
            every_match,
        })
    }

    fn edge(&self) -> LineKind {
        LineKind::Edge {
            branch: self
                .get("branch")
                .filter(|b| !b.is_empty())
                .map(str::to_owned),
        }
    }

    fn ref_kind(&self) -> Result<LineKind, TagPolicyError> {
        let event = self.require("ref", "event")?;
        match event {
            "branch" => Ok(LineKind::Ref(RefEvent::Branch)),
            "tag" => Ok(LineKind::Ref(RefEvent::Tag)),
            "pr" => Ok(LineKind::Ref(RefEvent::PullRequest)),
            other => Err(self.invalid("event", other, "branch, tag or pr")),
        }
    }

    fn raw(&self) -> Result<LineKind, TagPolicyError> {
        let value = self.template("value", self.require("raw", "value")?)?;
        Ok(LineKind::Raw { value })
    }

    fn sha(&self) -> Result<LineKind, TagPolicyError> {
        match self.get("format").unwrap_or("short") {
            "short" => Ok(LineKind::Sha { long: false }),
            "long" => Ok(LineKind::Sha { long: true }),
            other => Err(self.invalid("format", other, "short or long")),
        }
    }
}

fn parse_flavor<F: AsRef<str>>(lines: &[F]) -> Result<Flavor, TagPolicyError> {
    let mut flavor = Flavor {
        latest: Latest::Auto,
        prefix: None,
        prefix_on_latest: false,
        suffix: None,
        suffix_on_latest: false,
    };
    for (index, text) in lines.iter().enumerate() {
        let line = LineRef::Flavor(index);
        let attrs = Attrs {
            line,
            attrs: BTreeMap::new(),
        };
        // `onlatest=` applies to the prefix or suffix given just before it on its line.
        let mut last_affix: Option<&'static str> = None;
        for field in fields_of(line, text.as_ref())? {
            let Some((key, value)) = field.split_once('=') else {
                return Err(TagPolicyError::FlavorWithoutValue { line, field });
            };
            let (key, value) = (key.trim().to_lowercase(), value.trim());
            match key.as_str() {
                "latest" => {
                    flavor.latest = match value {
                        "auto" => Latest::Auto,
                        "true" => Latest::Always,
                        "false" => Latest::Never,
                        other => return Err(attrs.invalid("latest", other, "auto, true or false")),
                    };
                }
                "prefix" => {
                    flavor.prefix = non_empty_template(&attrs, "prefix", value)?;
                    last_affix = Some("prefix");
                }
                "suffix" => {
                    flavor.suffix = non_empty_template(&attrs, "suffix", value)?;
                    last_affix = Some("suffix");
                }
                "onlatest" => {
                    let on_latest = match value {
                        "true" => true,
                        "false" => false,
                        other => return Err(attrs.invalid("onlatest", other, "true or false")),
                    };
                    match last_affix {
                        Some("prefix") => flavor.prefix_on_latest = on_latest,
                        Some(_) => flavor.suffix_on_latest = on_latest,
                        None => return Err(TagPolicyError::OnLatestWithoutTarget { line }),
                    }
                }
                _ => return Err(TagPolicyError::UnknownFlavor { line, key }),
            }
        }
    }
    Ok(flavor)
}

/// The action only applies a flavor prefix or suffix that is not empty.
fn non_empty_template(
    attrs: &Attrs,
    key: &'static str,
    value: &str,
) -> Result<Option<Template<GlobalExpr>>, TagPolicyError> {
    if value.is_empty() {
        Ok(None)
    } else {
        attrs.template(key, value).map(Some)
    }
}

#[cfg(test)]
mod tests;
