//! The ledger: tag moves, immutability, rollbacks, and the view always equal to the events.

use crate::{MoveIntent, MoveOutcome, Store, TagMove};

const IMAGE: &str = "ghcr.io/octo-org/app";

fn digest(n: u32) -> String {
    format!("sha256:{n:064x}")
}

fn publish<'a>(tag: &'a str, digest: &'a str, immutable: bool) -> TagMove<'a> {
    TagMove {
        image: IMAGE,
        tag,
        digest,
        immutable,
        intent: MoveIntent::Publish,
        reason: "release v1.2.3",
        publication_id: None,
        release_tag: Some("v1.2.3"),
    }
}

/// The ledger as the API serves it, decoded.
async fn events(store: &Store, tag: Option<&str>) -> Vec<TagEvent> {
    let page = store
        .list_tag_events_json(IMAGE, tag, 0, 10_000)
        .await
        .unwrap();
    serde_json::from_str(&page.items).unwrap()
}

#[derive(serde::Deserialize)]
struct TagEvent {
    id: i64,
    tag: String,
    digest: String,
    previous_digest: Option<String>,
}

/// The view must be exactly what replaying the events gives.
async fn assert_view_matches_events(store: &Store) {
    let events = events(store, None).await;
    let mut replayed = std::collections::BTreeMap::new();
    for e in &events {
        let before = replayed.insert(e.tag.clone(), (e.digest.clone(), e.id));
        assert_eq!(
            before.map(|b| b.0),
            e.previous_digest,
            "event {} names the digest it replaced",
            e.id
        );
    }
    let view: std::collections::BTreeMap<String, (String, i64)> = store
        .list_tags(IMAGE, "", 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.tag, (t.digest, t.event_id)))
        .collect();
    assert_eq!(view, replayed);
}

pub async fn moves_create_then_move_and_the_same_move_again_writes_nothing(store: &Store) {
    let (a, b) = (digest(1), digest(2));
    let MoveOutcome::Moved(created) = store.move_tag(&publish("latest", &a, false)).await.unwrap()
    else {
        panic!("not moved");
    };
    assert_eq!(
        (created.kind.as_str(), created.previous_digest.as_deref()),
        ("create", None)
    );
    assert_eq!(
        store.move_tag(&publish("latest", &a, false)).await.unwrap(),
        MoveOutcome::Unchanged
    );
    let MoveOutcome::Moved(moved) = store.move_tag(&publish("latest", &b, false)).await.unwrap()
    else {
        panic!("not moved");
    };
    assert_eq!(
        (moved.kind.as_str(), moved.previous_digest.as_deref()),
        ("move", Some(a.as_str()))
    );
    assert_eq!(events(store, Some("latest")).await.len(), 2);
    assert_view_matches_events(store).await;
}

pub async fn an_immutable_tag_is_refused_elsewhere_unless_forced(store: &Store) {
    let (a, b) = (digest(1), digest(2));
    store.move_tag(&publish("1.2.3", &a, true)).await.unwrap();
    assert_eq!(
        store.move_tag(&publish("1.2.3", &b, true)).await.unwrap(),
        MoveOutcome::Refused { current: a.clone() }
    );
    assert_eq!(
        store.move_tag(&publish("1.2.3", &a, true)).await.unwrap(),
        MoveOutcome::Unchanged
    );
    let forced = TagMove {
        intent: MoveIntent::Force,
        reason: "forced by ops",
        ..publish("1.2.3", &b, true)
    };
    let MoveOutcome::Moved(event) = store.move_tag(&forced).await.unwrap() else {
        panic!("not forced");
    };
    assert_eq!(
        (event.kind.as_str(), event.reason.as_str()),
        ("force", "forced by ops")
    );
    assert_eq!(
        store.tags_at_digest(IMAGE, &b).await.unwrap()[0].tag,
        "1.2.3"
    );
    assert!(store.tags_at_digest(IMAGE, &a).await.unwrap().is_empty());
    assert_view_matches_events(store).await;
}

pub async fn rollbacks_are_recorded_as_such(store: &Store) {
    store
        .move_tag(&publish("latest", &digest(1), false))
        .await
        .unwrap();
    store
        .move_tag(&publish("latest", &digest(2), false))
        .await
        .unwrap();
    let first = digest(1);
    let back = TagMove {
        intent: MoveIntent::Rollback,
        reason: "release v2.0.0 deleted",
        ..publish("latest", &first, false)
    };
    let MoveOutcome::Moved(event) = store.move_tag(&back).await.unwrap() else {
        panic!("not rolled back");
    };
    assert_eq!(event.kind, "rollback");
    assert_eq!(event.previous_digest, Some(digest(2)));
}

/// A deterministic random walk of moves over a few tags and digests; after every step the
/// view and the ledger agree.
pub async fn events_and_view_agree_after_every_operation(store: &Store) {
    let tags = ["latest", "1", "1.2", "1.2.3", "edge"];
    let mut state = 7u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    for _ in 0..200 {
        let tag = tags[(next() % 5) as usize];
        let target = digest(next() % 4);
        let intent = match next() % 3 {
            0 => MoveIntent::Publish,
            1 => MoveIntent::Rollback,
            _ => MoveIntent::Force,
        };
        let m = TagMove {
            intent,
            ..publish(tag, &target, tag == "1.2.3")
        };
        store.move_tag(&m).await.unwrap();
        assert_view_matches_events(store).await;
    }
    let counts = store.tag_counts().await.unwrap();
    assert_eq!(counts, [(IMAGE.to_owned(), 5)]);
}

pub async fn immutability_belongs_to_the_tag_whatever_writes_it_next(store: &Store) {
    let (a, b) = (digest(1), digest(2));
    store.move_tag(&publish("1.2.3", &a, true)).await.unwrap();
    // A plain line computing the same name later cannot re-point it, nor can a rollback.
    assert_eq!(
        store.move_tag(&publish("1.2.3", &b, false)).await.unwrap(),
        MoveOutcome::Refused { current: a.clone() }
    );
    let rollback = TagMove {
        intent: MoveIntent::Rollback,
        ..publish("1.2.3", &b, false)
    };
    assert_eq!(
        store.move_tag(&rollback).await.unwrap(),
        MoveOutcome::Refused { current: a.clone() }
    );
    // Forced elsewhere, it stays immutable there.
    let forced = TagMove {
        intent: MoveIntent::Force,
        ..publish("1.2.3", &b, false)
    };
    assert!(matches!(
        store.move_tag(&forced).await.unwrap(),
        MoveOutcome::Moved(_)
    ));
    assert_eq!(
        store.tag_target(IMAGE, "1.2.3").await.unwrap(),
        Some((b.clone(), true))
    );
    assert_eq!(
        store.move_tag(&publish("1.2.3", &a, false)).await.unwrap(),
        MoveOutcome::Refused { current: b }
    );
    assert_view_matches_events(store).await;
}
