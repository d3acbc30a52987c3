//! Property tests: the parsers of outside input never panic, whatever the bytes, and the
//! patterns the OpenAPI document publishes admit only strings the parsers accept.

use proptest::prelude::*;
use proptest::string::string_regex;

use crate::github::WebhookEvent;
use crate::tags::{TagName, TagPolicy, Version};
use crate::{CommitSha, Digest, ImageRef, Platform, RepoName};

/// A generator of the strings an anchored pattern admits.
fn admitted(pattern: &str) -> impl Strategy<Value = String> + use<> {
    let body = pattern.trim_start_matches('^').trim_end_matches('$');
    string_regex(body).unwrap_or_else(|e| panic!("{pattern}: {e}"))
}

/// Text near the grammars: the characters references, platforms and tag lines use, and a
/// few that they must not.
fn near_text() -> impl Strategy<Value = String> {
    string_regex("[a-zA-Z0-9./:@_=,{}\\-+ *#%~\u{0}\u{e9}]{0,80}").expect("a regex")
}

fn payload(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../../tests/fixtures/github/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .expect("a fixture")
}

/// Every scalar of a JSON document, by path, so a test can replace one.
fn scalar_paths(value: &serde_json::Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                at.push(key.clone());
                scalar_paths(child, at, out);
                at.pop();
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                at.push(i.to_string());
                scalar_paths(child, at, out);
                at.pop();
            }
        }
        _ => out.push(at.clone()),
    }
}

fn replace(value: &mut serde_json::Value, path: &[String], with: serde_json::Value) {
    let mut slot = value;
    for key in path {
        slot = match slot {
            serde_json::Value::Array(items) => &mut items[key.parse::<usize>().expect("index")],
            other => &mut other[key.as_str()],
        };
    }
    *slot = with;
}

fn any_json_scalar() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        near_text().prop_map(serde_json::Value::from),
        Just(serde_json::json!({})),
        Just(serde_json::json!([])),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn reference_parsers_never_panic(text in near_text()) {
        let _ = text.parse::<ImageRef>();
        let _ = text.parse::<Digest>();
        let _ = text.parse::<Platform>();
        let _ = text.parse::<RepoName>();
        let _ = text.parse::<CommitSha>();
        let _ = text.parse::<TagName>();
        let _ = text.parse::<Version>();
    }

    #[test]
    fn reference_parsers_never_panic_on_any_unicode(text in "\\PC{0,64}") {
        let _ = text.parse::<ImageRef>();
        let _ = text.parse::<Platform>();
        let _ = text.parse::<Version>();
        let _ = TagPolicy::parse(&[text.as_str()], &[text.as_str()]);
    }

    #[test]
    fn tag_lines_never_panic(
        kind in prop_oneof![Just("semver"), Just("pep440"), Just("match"), Just("edge"),
                            Just("ref"), Just("raw"), Just("sha"), Just("schedule"), Just("x")],
        rest in near_text(),
        flavor in near_text(),
    ) {
        let line = format!("type={kind},{rest}");
        let _ = TagPolicy::parse(&[line.as_str()], &[flavor.as_str()]);
    }

    #[test]
    fn webhook_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for event in ["release", "push", "ping", "issues"] {
            let _ = WebhookEvent::parse(event, &bytes);
        }
    }

    /// A real payload with one scalar replaced by anything: a clear error or an event,
    /// never a panic.
    #[test]
    fn real_payloads_with_one_field_changed_never_panic(
        pick in any::<prop::sample::Index>(),
        with in any_json_scalar(),
        fixture in prop_oneof![Just(("release", "release.published")),
                               Just(("release", "release.edited")),
                               Just(("push", "push.tag-created")),
                               Just(("push", "push.branch")),
                               Just(("ping", "ping"))],
    ) {
        let (event, name) = fixture;
        let mut body = payload(name);
        let mut paths = Vec::new();
        scalar_paths(&body, &mut Vec::new(), &mut paths);
        let path = pick.get(&paths).clone();
        replace(&mut body, &path, with);
        let _ = WebhookEvent::parse(event, body.to_string().as_bytes());
    }

    #[test]
    fn documented_digests_parse(text in admitted(Digest::PATTERN)) {
        prop_assert!(text.parse::<Digest>().is_ok(), "{text}");
    }

    #[test]
    fn documented_commits_parse(text in admitted(CommitSha::PATTERN)) {
        prop_assert!(text.parse::<CommitSha>().is_ok(), "{text}");
    }

    #[test]
    fn documented_repositories_parse(text in admitted(RepoName::PATTERN)) {
        prop_assert!(text.parse::<RepoName>().is_ok(), "{text}");
    }

    #[test]
    fn documented_tags_parse(text in admitted(TagName::PATTERN)) {
        prop_assert!(text.parse::<TagName>().is_ok(), "{text}");
    }

    #[test]
    fn documented_image_names_parse(
        text in admitted(ImageRef::NAME_PATTERN)
            .prop_filter("within the length limit", |t| t.len() <= ImageRef::NAME_MAX)
    ) {
        let image = text.parse::<ImageRef>();
        prop_assert!(image.is_ok(), "{text}: {image:?}");
        let image = image.expect("parsed");
        prop_assert!(image.tag().is_none() && image.digest().is_none());
        prop_assert_eq!(image.name(), text);
    }
}
