use secrecy::SecretString;

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/fixtures/github/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn secrets(list: &[&str]) -> Vec<SecretString> {
    list.iter()
        .map(|s| SecretString::from((*s).to_owned()))
        .collect()
}

#[test]
fn a_signature_made_with_any_accepted_secret_verifies() {
    let body = fixture("release.published");
    let header = sign("old", &body);
    assert!(verify_signature(&secrets(&["new", "old"]), Some(header.as_bytes()), &body).is_ok());
    assert!(
        verify_signature(&secrets(&["new"]), Some(header.as_bytes()), &body)
            == Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_signature_over_other_bytes_or_malformed_is_refused() {
    let body = fixture("ping");
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let header = sign("s", &body);
    let s = secrets(&["s"]);
    assert_eq!(
        verify_signature(&s, Some(header.as_bytes()), &tampered),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(&s, None, &body),
        Err(SignatureError::Missing)
    );
    for bad in [
        "sha1=abc",
        "sha256=zz",
        "sha256=",
        &header[..header.len() - 1],
        &header.to_uppercase(),
    ] {
        assert_eq!(
            verify_signature(&s, Some(bad.as_bytes()), &body),
            Err(SignatureError::Malformed),
            "{bad}"
        );
    }
    assert_eq!(
        verify_signature(&[], Some(header.as_bytes()), &body),
        Err(SignatureError::NoSecret)
    );
}

#[test]
fn sign_matches_githubs_documented_example() {
    // From GitHub's "Validating webhook deliveries" documentation.
    assert_eq!(
        sign("It's a Secret to Everybody", b"Hello, World!"),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
}

#[test]
fn release_payloads_parse_for_every_action() {
    for action in [
        "created",
        "deleted",
        "edited",
        "prereleased",
        "published",
        "released",
    ] {
        let WebhookEvent::Release(event) =
            WebhookEvent::parse("release", &fixture(&format!("release.{action}"))).unwrap()
        else {
            panic!("{action}: not a release event");
        };
        assert_eq!(event.action.as_str(), action);
        assert_eq!(event.repository.as_str(), "Codertocat/Hello-World");
        assert_eq!(event.tag_name, "0.0.1");
        assert_eq!(event.release_id, 17372790);
        assert_eq!(event.target_commitish, "master");
        assert_eq!(event.target_commit(), None, "a branch name is not a commit");
        assert_eq!(event.prerelease, action == "prereleased");
    }
}

#[test]
fn push_payloads_give_the_tag_and_its_commit() {
    let WebhookEvent::Push(created) =
        WebhookEvent::parse("push", &fixture("push.tag-created")).unwrap()
    else {
        panic!("not a push");
    };
    assert_eq!(created.tag(), Some("simple-tag"));
    assert_eq!(
        created.head_commit.unwrap().as_str(),
        "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    );
    let WebhookEvent::Push(deleted) =
        WebhookEvent::parse("push", &fixture("push.tag-deleted")).unwrap()
    else {
        panic!("not a push");
    };
    assert!(deleted.deleted && deleted.head_commit.is_none());
    let WebhookEvent::Push(branch) = WebhookEvent::parse("push", &fixture("push.branch")).unwrap()
    else {
        panic!("not a push");
    };
    assert_eq!(branch.tag(), None);
}

#[test]
fn pings_and_other_events_parse() {
    let WebhookEvent::Ping(ping) = WebhookEvent::parse("ping", &fixture("ping")).unwrap() else {
        panic!("not a ping");
    };
    assert_eq!(ping.repository.unwrap().as_str(), "Octocoders/Hello-World");
    let WebhookEvent::Ping(org) =
        WebhookEvent::parse("ping", &fixture("ping.organization")).unwrap()
    else {
        panic!("not a ping");
    };
    assert_eq!(org.repository, None);
    assert_eq!(
        WebhookEvent::parse("issues", &fixture("issues.opened")).unwrap(),
        WebhookEvent::Other("issues".into())
    );
}

#[test]
fn malformed_payloads_say_what_is_wrong() {
    let err = WebhookEvent::parse("release", b"{\"action\": ").unwrap_err();
    assert!(err.to_string().starts_with("malformed JSON: "), "{err}");
    let err = WebhookEvent::parse(
        "release",
        br#"{"action":"published","repository":{"full_name":"a/b"}}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("missing field `release`"), "{err}");
    let err = WebhookEvent::parse("issues", b"not json").unwrap_err();
    assert!(matches!(err, EventError::Json(_)));
    let mut push: serde_json::Value = serde_json::from_slice(&fixture("push.tag-created")).unwrap();
    push["head_commit"]["id"] = "nope".into();
    let err = WebhookEvent::parse("push", push.to_string().as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "head_commit.id: \"nope\" is not a commit: expected 40 hex digits"
    );
}
