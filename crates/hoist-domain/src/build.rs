//! CI build-complete reports (`POST /v1/builds`): parsed and checked field by field, so
//! every refusal names the field at fault.

use serde_json::Value;

use crate::config::{Config, Repository};
use crate::{CommitSha, ImageRef, Platform, RepoName};

/// A build CI reported, valid against the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildReport {
    pub repository: RepoName,
    pub commit: CommitSha,
    /// `refs/tags/...` or `refs/heads/...`, when CI said which ref it built.
    pub git_ref: Option<String>,
    /// `None` when `image` is an index: each of its platforms counts.
    pub platform: Option<Platform>,
    /// Always by digest.
    pub image: ImageRef,
}

impl BuildReport {
    /// The tag this build was made from, for `refs/tags/*`.
    pub fn tag(&self) -> Option<&str> {
        self.git_ref.as_deref()?.strip_prefix("refs/tags/")
    }

    /// The branch this build was made from, for `refs/heads/*`.
    pub fn branch(&self) -> Option<&str> {
        self.git_ref.as_deref()?.strip_prefix("refs/heads/")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildReportError {
    /// The body is not a JSON object (400).
    #[error("malformed JSON: {0}")]
    Json(String),
    /// A field is missing or wrong (422).
    #[error("{field}: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
    /// The image is in no repository `[[repository]] sources` allows (403): hoist would
    /// read it with its own credential.
    #[error("image: {image} is not in a source this repository allows ({})", allowed.join(", "))]
    SourceNotAllowed { image: String, allowed: Vec<String> },
}

fn field(field: &'static str, message: impl Into<String>) -> BuildReportError {
    BuildReportError::Field {
        field,
        message: message.into(),
    }
}

const FIELDS: &[&str] = &["repository", "commit", "ref", "platform", "image"];

/// The repository a report names, read before anything else so the caller can check the
/// token's scope before judging the rest.
pub fn reported_repository(body: &Value) -> Result<RepoName, BuildReportError> {
    let text = required_str(body, "repository")?;
    text.parse()
        .map_err(|e: crate::RepoNameError| field("repository", e.to_string()))
}

/// Parses the body as JSON (400 on failure).
pub fn parse_json(body: &[u8]) -> Result<Value, BuildReportError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| BuildReportError::Json(e.to_string()))?;
    if !value.is_object() {
        return Err(BuildReportError::Json("expected a JSON object".to_owned()));
    }
    Ok(value)
}

fn required_str<'a>(body: &'a Value, name: &'static str) -> Result<&'a str, BuildReportError> {
    match body.get(name) {
        None | Some(Value::Null) => Err(field(name, "is required")),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(field(name, "must be a string")),
    }
}

fn optional_str<'a>(
    body: &'a Value,
    name: &'static str,
) -> Result<Option<&'a str>, BuildReportError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(field(name, "must be a string")),
    }
}

/// Validates a report against the config: the repository is configured, the commit is 40
/// hex, the image is pinned by digest on a registry hoist has an entry for, and the
/// platform is one the repository publishes (or absent, for an index).
pub fn validate(body: &Value, config: &Config) -> Result<BuildReport, BuildReportError> {
    if let Some(unknown) = body
        .as_object()
        .and_then(|o| o.keys().find(|k| !FIELDS.contains(&k.as_str())))
    {
        return Err(BuildReportError::Field {
            field: "body",
            message: format!("unknown field {unknown:?}; expected {}", FIELDS.join(", ")),
        });
    }
    let repository = reported_repository(body)?;
    let Some(repo) = config.repository(&repository) else {
        return Err(field(
            "repository",
            format!("{repository} is not a configured repository"),
        ));
    };
    let commit: CommitSha = required_str(body, "commit")?
        .parse()
        .map_err(|e: crate::CommitShaError| field("commit", e.to_string()))?;
    let git_ref = optional_str(body, "ref")?;
    if let Some(r) = git_ref {
        let name = r
            .strip_prefix("refs/tags/")
            .or_else(|| r.strip_prefix("refs/heads/"));
        if name.is_none_or(str::is_empty) {
            return Err(field(
                "ref",
                format!("{r:?} must be refs/tags/<name> or refs/heads/<name>"),
            ));
        }
    }
    let image = parse_image(required_str(body, "image")?, config)?;
    if !repo.sources.iter().any(|s| s.matches(&image)) {
        return Err(BuildReportError::SourceNotAllowed {
            image: image.to_string(),
            allowed: repo.sources.iter().map(ToString::to_string).collect(),
        });
    }
    let platform = match optional_str(body, "platform")? {
        Some(p) => Some(parse_platform(p, repo)?),
        None => None,
    };
    Ok(BuildReport {
        repository: repo.github.clone(),
        commit,
        git_ref: git_ref.map(str::to_owned),
        platform,
        image,
    })
}

fn parse_image(text: &str, config: &Config) -> Result<ImageRef, BuildReportError> {
    let image: ImageRef = text
        .parse()
        .map_err(|e: crate::ImageRefError| field("image", e.to_string()))?;
    if image.digest().is_none() {
        return Err(field(
            "image",
            format!("{text:?} must be pinned by digest (…@sha256:…): a tag could change under us"),
        ));
    }
    if config.registry_for(&image).is_none() {
        return Err(field(
            "image",
            format!(
                "no [[registry]] entry for host {:?}, so hoist cannot read it",
                image.registry()
            ),
        ));
    }
    Ok(image)
}

fn parse_platform(text: &str, repo: &Repository) -> Result<Platform, BuildReportError> {
    let platform: Platform = text
        .parse()
        .map_err(|e: crate::PlatformError| field("platform", e.to_string()))?;
    if !repo.platforms.contains(&platform) {
        let known: Vec<String> = repo.platforms.iter().map(ToString::to_string).collect();
        return Err(field(
            "platform",
            format!(
                "{platform} is not one of {}'s platforms ({})",
                repo.github,
                known.join(", ")
            ),
        ));
    }
    Ok(platform)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::config::ConfigFile;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn config() -> Config {
        let text = r#"
[[registry]]
host = "ghcr.io"
anonymous = true
[[repository]]
github = "octo-org/app"
image = "ghcr.io/octo-org/app"
platforms = ["linux/amd64", "linux/arm64"]
sources = ["ghcr.io/octo-org/ci-*"]
"#;
        ConfigFile::parse(text, "t")
            .unwrap()
            .validate(&HashMap::new())
            .unwrap()
    }

    fn report() -> Value {
        json!({
            "repository": "octo-org/app",
            "commit": "6113728F27AE82C7B1A177C8D03F9E96E0ADF246",
            "ref": "refs/tags/v1.2.3",
            "platform": "linux/arm64",
            "image": format!("ghcr.io/octo-org/ci-staging@{DIGEST}"),
        })
    }

    fn error_for(change: impl FnOnce(&mut Value)) -> String {
        let mut body = report();
        change(&mut body);
        validate(&body, &config()).unwrap_err().to_string()
    }

    #[test]
    fn a_valid_report_is_normalized() {
        let build = validate(&report(), &config()).unwrap();
        assert_eq!(
            build.commit.as_str(),
            "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
        );
        assert_eq!(build.platform.as_ref().unwrap().to_string(), "linux/arm64");
        assert_eq!(build.tag(), Some("v1.2.3"));
        assert_eq!(build.image.digest().unwrap().as_str(), DIGEST);
    }

    #[test]
    fn an_index_report_has_no_platform() {
        let mut body = report();
        body.as_object_mut().unwrap().remove("platform");
        body.as_object_mut().unwrap().remove("ref");
        let build = validate(&body, &config()).unwrap();
        assert_eq!((build.platform, build.git_ref), (None, None));
    }

    #[test]
    fn every_bad_field_is_named() {
        type Change = Box<dyn FnOnce(&mut Value)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|b| b["repository"] = json!("octo-org/other")),
                "repository: octo-org/other is not a configured repository",
            ),
            (
                Box::new(|b| b["repository"] = json!(7)),
                "repository: must be a string",
            ),
            (
                Box::new(|b| {
                    b.as_object_mut().unwrap().remove("commit");
                }),
                "commit: is required",
            ),
            (
                Box::new(|b| b["commit"] = json!("main")),
                "commit: \"main\" is not a commit: expected 40 hex digits",
            ),
            (
                Box::new(|b| b["ref"] = json!("v1.2.3")),
                "ref: \"v1.2.3\" must be refs/tags/<name> or refs/heads/<name>",
            ),
            (
                Box::new(|b| b["platform"] = json!("linux/s390x")),
                "platform: linux/s390x is not one of octo-org/app's platforms (linux/amd64, linux/arm64)",
            ),
            (
                Box::new(|b| b["platform"] = json!("linux/amd65")),
                "platform: \"linux/amd65\" is not a known architecture (did you mean amd64?)",
            ),
            (
                Box::new(|b| b["image"] = json!("ghcr.io/octo-org/app:1.2.3")),
                "image: \"ghcr.io/octo-org/app:1.2.3\" must be pinned by digest (…@sha256:…): a tag could change under us",
            ),
            (
                Box::new(|b| b["image"] = json!(format!("quay.io/x/y@{DIGEST}"))),
                "image: no [[registry]] entry for host \"quay.io\", so hoist cannot read it",
            ),
            (
                Box::new(|b| b["image"] = json!("ghcr.io/x@sha256:12")),
                "image: \"ghcr.io/x@sha256:12\" has an invalid digest: \"sha256:12\" is not a digest: expected sha256:<64 hex> or sha512:<128 hex>",
            ),
            (
                Box::new(|b| b["platfrom"] = json!("linux/amd64")),
                "body: unknown field \"platfrom\"; expected repository, commit, ref, platform, image",
            ),
        ];
        for (change, expected) in cases {
            assert_eq!(error_for(change), expected);
        }
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_malformed() {
        for body in [&b"{"[..], b"[]", b"\"x\"", b""] {
            assert!(
                matches!(parse_json(body), Err(BuildReportError::Json(_))),
                "{body:?}"
            );
        }
    }
}
