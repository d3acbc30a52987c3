//! Computing the tags of one event, the way metadata-action computes them.
//!
//! Lines are applied in priority order; each enabled line that applies to the ref yields at
//! most one value, wrapped in its prefix and suffix, then sanitized. The first value is the
//! image version; later ones are kept unless already seen. The first line that yields a
//! value also decides whether `latest` is added under `latest=auto` (semver and match lines
//! and `ref,event=tag` say yes, unless the version is a prerelease), and `latest` comes last.

use std::str::FromStr;
use std::time::SystemTime;

use super::TagPolicyError;
use super::floating::Scope;
use super::name::TagName;
use super::policy::{Latest, LineKind, MatchPattern, RefEvent, TagLine, TagPolicy};
use super::template::{GlobalExpr, Template, VersionExpr};
use super::version::Version;
use crate::CommitSha;

/// metadata-action's short commit length (`{{sha}}`, `type=sha`).
const SHORT_SHA_LENGTH: usize = 7;

/// What happened, as far as tags are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventContext {
    pub git_ref: GitRef,
    pub commit: CommitSha,
    pub default_branch: String,
    /// The instant `{{date}}` renders; the caller's clock, so computing stays pure.
    pub time: SystemTime,
}

/// A full git ref, split by namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitRef {
    /// `refs/tags/<name>`
    Tag(String),
    /// `refs/heads/<name>`
    Branch(String),
    /// Any other ref, kept whole (`refs/pull/2/merge`).
    Other(String),
}

impl FromStr for GitRef {
    type Err = std::convert::Infallible;

    fn from_str(full: &str) -> Result<Self, Self::Err> {
        Ok(if let Some(tag) = full.strip_prefix("refs/tags/") {
            GitRef::Tag(tag.to_owned())
        } else if let Some(branch) = full.strip_prefix("refs/heads/") {
            GitRef::Branch(branch.to_owned())
        } else {
            GitRef::Other(full.to_owned())
        })
    }
}

impl GitRef {
    fn tag(&self) -> Option<&str> {
        match self {
            GitRef::Tag(tag) => Some(tag),
            _ => None,
        }
    }

    fn branch(&self) -> Option<&str> {
        match self {
            GitRef::Branch(branch) => Some(branch),
            _ => None,
        }
    }
}

/// The tags of one event, in metadata-action's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputedTags {
    tags: Vec<ComputedTag>,
    version: Option<Version>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputedTag {
    pub name: TagName,
    pub role: TagRole,
}

/// How hoist treats a tag once it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagRole {
    /// Names one version (`{{version}}`, `{{raw}}`, `{{major}}.{{minor}}.{{patch}}`, and
    /// every semver tag of a prerelease): written once, never re-pointed.
    Pinned,
    /// Follows the highest stable version in its scope: `latest`, `{{major}}`,
    /// `{{major}}.{{minor}}`. See [`super::plan_release`].
    Floating(Scope),
    /// Everything else (`sha`, `edge`, `ref`, `raw`, `match`): written as computed.
    Plain,
}

impl ComputedTags {
    pub fn tags(&self) -> &[ComputedTag] {
        &self.tags
    }

    pub fn names(&self) -> impl Iterator<Item = &TagName> {
        self.tags.iter().map(|tag| &tag.name)
    }

    /// The first tag, which metadata-action calls the version (`org.opencontainers.image.version`).
    pub fn image_version(&self) -> Option<&TagName> {
        self.tags.first().map(|tag| &tag.name)
    }

    /// The release version of the event: the first semver line's version, or else the ref's
    /// tag when it is one. Floating tags are scoped by it.
    pub fn release_version(&self) -> Option<&Version> {
        self.version.as_ref()
    }

    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }
}

/// One line's output before it joins the list.
struct Produced {
    text: String,
    role: TagRole,
    /// Whether `latest=auto` adds `latest` when this is the first value.
    wants_latest: bool,
}

impl TagPolicy {
    /// The tags metadata-action would produce for this event with these lines, each with
    /// the role hoist gives it.
    pub fn compute(&self, event: &EventContext) -> Result<ComputedTags, TagPolicyError> {
        let mut tags: Vec<ComputedTag> = Vec::new();
        let mut add_latest: Option<bool> = None;
        let mut version: Option<Version> = None;
        for line in &self.lines {
            if !self.enabled(line, event)? {
                continue;
            }
            let Some(produced) = self.produce(line, event, &mut version) else {
                continue;
            };
            let text = TagName::sanitize(&produced.text);
            if text.is_empty() {
                continue;
            }
            let name = text
                .parse::<TagName>()
                .map_err(|source| TagPolicyError::InvalidTag {
                    line: line.line,
                    tag: text.clone(),
                    source,
                })?;
            add_latest.get_or_insert(match self.flavor.latest {
                Latest::Auto => produced.wants_latest,
                Latest::Always => true,
                Latest::Never => false,
            });
            // A tag two lines produce keeps its first place; a pinned line pins it whichever
            // came first, so a plain line can never make a version tag movable.
            match tags.iter_mut().find(|tag| tag.name == name) {
                Some(seen) if produced.role == TagRole::Pinned => seen.role = TagRole::Pinned,
                Some(_) => {}
                None => tags.push(ComputedTag {
                    name,
                    role: produced.role,
                }),
            }
        }
        if version.is_none() {
            version = event.git_ref.tag().and_then(|tag| tag.parse().ok());
        }
        if add_latest == Some(true) {
            self.push_latest(event, version.as_ref(), &mut tags)?;
        }
        Ok(ComputedTags { tags, version })
    }

    fn enabled(&self, line: &TagLine, event: &EventContext) -> Result<bool, TagPolicyError> {
        match global(&line.enable, event).as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(TagPolicyError::EnableNotBoolean {
                line: line.line,
                value: other.to_owned(),
            }),
        }
    }

    /// The line's value for this event, with prefix and suffix, or `None` when the line does
    /// not apply. Records the version of the first semver line that has one.
    fn produce(
        &self,
        line: &TagLine,
        event: &EventContext,
        version: &mut Option<Version>,
    ) -> Option<Produced> {
        let (value, role, wants_latest) = match &line.kind {
            LineKind::Semver {
                pattern,
                value,
                extract,
            } => {
                let (text, parsed, role) =
                    semver_value(pattern, value.as_ref(), extract.as_ref(), event)?;
                let stable = !parsed.is_prerelease();
                version.get_or_insert(parsed);
                (text, role, stable)
            }
            LineKind::Match {
                pattern,
                group,
                value,
            } => {
                let subject = source_text(value.as_ref(), event)?;
                (
                    match_value(pattern, *group, &subject)?,
                    TagRole::Plain,
                    true,
                )
            }
            LineKind::Ref(RefEvent::Branch) => {
                (event.git_ref.branch()?.to_owned(), TagRole::Plain, false)
            }
            LineKind::Ref(RefEvent::Tag) => (event.git_ref.tag()?.to_owned(), TagRole::Plain, true),
            LineKind::Ref(RefEvent::PullRequest) => {
                (pull_request_number(&event.git_ref)?, TagRole::Plain, false)
            }
            LineKind::Edge { branch } => {
                let wanted = branch.as_deref().unwrap_or(&event.default_branch);
                if event.git_ref.branch()? != wanted {
                    return None;
                }
                ("edge".to_owned(), TagRole::Plain, false)
            }
            LineKind::Raw { value } => (global(value, event), TagRole::Plain, false),
            LineKind::Sha { long } => {
                let sha = event.commit.as_str();
                let sha = if *long { sha } else { short_sha(sha) };
                (sha.to_owned(), TagRole::Plain, false)
            }
            LineKind::Schedule => return None,
        };
        Some(Produced {
            text: self.affixed(line, value, event),
            role,
            wants_latest,
        })
    }

    /// A line's own prefix/suffix, else the flavor's.
    fn affixed(&self, line: &TagLine, value: String, event: &EventContext) -> String {
        let prefix = line.prefix.as_ref().or(self.flavor.prefix.as_ref());
        let suffix = line.suffix.as_ref().or(self.flavor.suffix.as_ref());
        let mut out = prefix.map(|p| global(p, event)).unwrap_or_default();
        out.push_str(&value);
        out.push_str(&suffix.map(|s| global(s, event)).unwrap_or_default());
        out
    }

    /// Adds `latest` (with the flavor's prefix/suffix when `onlatest=true`). The action
    /// pastes the flavor prefix here without rendering its expressions and does not check
    /// for a duplicate; hoist renders them as for every other tag, and keeps one `latest`.
    fn push_latest(
        &self,
        event: &EventContext,
        version: Option<&Version>,
        tags: &mut Vec<ComputedTag>,
    ) -> Result<(), TagPolicyError> {
        let flavor = &self.flavor;
        let mut text = String::new();
        if let (true, Some(prefix)) = (flavor.prefix_on_latest, &flavor.prefix) {
            text.push_str(&global(prefix, event));
        }
        text.push_str("latest");
        if let (true, Some(suffix)) = (flavor.suffix_on_latest, &flavor.suffix) {
            text.push_str(&global(suffix, event));
        }
        let text = TagName::sanitize(&text);
        let name = text
            .parse::<TagName>()
            .map_err(|source| TagPolicyError::InvalidLatestTag { tag: text, source })?;
        // Without a version there is nothing to keep `latest` moving forward by.
        let role = match version {
            Some(_) => TagRole::Floating(Scope::everything()),
            None => TagRole::Plain,
        };
        match tags.iter_mut().find(|tag| tag.name == name) {
            Some(existing) => existing.role = role,
            None => tags.push(ComputedTag { name, role }),
        }
        Ok(())
    }
}

/// The `value=` when given, else the ref's tag name; semver and match lines only look at
/// tags unless given a value.
fn source_text(value: Option<&Template<GlobalExpr>>, event: &EventContext) -> Option<String> {
    match value {
        Some(value) => Some(global(value, event)),
        None => event.git_ref.tag().map(str::to_owned),
    }
}

/// A semver line's tag text, its version and its role.
fn semver_value(
    pattern: &Template<VersionExpr>,
    value: Option<&Template<GlobalExpr>>,
    extract: Option<&regex_lite::Regex>,
    event: &EventContext,
) -> Option<(String, Version, TagRole)> {
    let mut text = source_text(value, event)?;
    if let Some(regex) = extract {
        // No match keeps the text whole, as the action does (with a warning).
        if let Some(captures) = regex.captures(&text) {
            text = captures.get(1)?.as_str().to_owned();
        }
    }
    let version: Version = text.replace('/', "-").parse().ok()?;
    // Prereleases change too often for anything but their own version: whatever the
    // pattern, they get `{{version}}`, or `{{raw}}` when that is the whole pattern.
    if version.is_prerelease() {
        let text = if pattern.is_only(&VersionExpr::Raw) {
            version.raw().to_owned()
        } else {
            version.canonical()
        };
        return Some((text, version, TagRole::Pinned));
    }
    let text = pattern.render(|part| match part {
        VersionExpr::Version => version.canonical(),
        VersionExpr::Raw => version.raw().to_owned(),
        VersionExpr::Major => version.major().to_string(),
        VersionExpr::Minor => version.minor().to_string(),
        VersionExpr::Patch => version.patch().to_string(),
    });
    let role = semver_role(pattern, &version);
    Some((text, version, role))
}

/// A pattern that spells out the whole version names one release; one that leaves parts
/// out names the highest release among those sharing the parts it keeps.
fn semver_role(pattern: &Template<VersionExpr>, version: &Version) -> TagRole {
    let used: Vec<VersionExpr> = pattern.expressions().copied().collect();
    let uses = |part| used.contains(&part);
    let whole = uses(VersionExpr::Version)
        || uses(VersionExpr::Raw)
        || (uses(VersionExpr::Major) && uses(VersionExpr::Minor) && uses(VersionExpr::Patch));
    if whole {
        return TagRole::Pinned;
    }
    TagRole::Floating(Scope::new(
        uses(VersionExpr::Major).then(|| version.major()),
        uses(VersionExpr::Minor).then(|| version.minor()),
        uses(VersionExpr::Patch).then(|| version.patch()),
    ))
}

fn match_value(pattern: &MatchPattern, group: usize, subject: &str) -> Option<String> {
    if pattern.every_match {
        return pattern
            .regex
            .find_iter(subject)
            .nth(group)
            .map(|found| found.as_str().to_owned());
    }
    let captures = pattern.regex.captures(subject)?;
    captures.get(group).map(|found| found.as_str().to_owned())
}

fn pull_request_number(git_ref: &GitRef) -> Option<String> {
    let GitRef::Other(full) = git_ref else {
        return None;
    };
    let rest = full.strip_prefix("refs/pull/")?;
    Some(rest.strip_suffix("/merge").unwrap_or(rest).to_owned())
}

fn short_sha(sha: &str) -> &str {
    sha.get(..SHORT_SHA_LENGTH).unwrap_or(sha)
}

/// Renders a template of global expressions for this event.
fn global(template: &Template<GlobalExpr>, event: &EventContext) -> String {
    let is_default_branch = event
        .git_ref
        .branch()
        .is_some_and(|branch| !branch.is_empty() && branch == event.default_branch);
    template.render(|expr| match expr {
        GlobalExpr::Branch => event.git_ref.branch().unwrap_or_default().to_owned(),
        GlobalExpr::Tag => event.git_ref.tag().unwrap_or_default().to_owned(),
        GlobalExpr::Sha => short_sha(event.commit.as_str()).to_owned(),
        GlobalExpr::IsDefaultBranch => is_default_branch.to_string(),
        GlobalExpr::IsNotDefaultBranch => (!is_default_branch).to_string(),
        GlobalExpr::Date(format) => format.render(event.time),
    })
}

#[cfg(test)]
mod tests;
