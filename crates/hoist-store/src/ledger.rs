//! The tag ledger: `tag_events` is append-only (triggers refuse UPDATE and DELETE) and
//! `tags` is the current view, written in the same transaction as the event that moved it,
//! so the two always agree.
//!
//! Each move is decided and written inside one writer transaction: the previous digest
//! and the immutability check are read there, not before. Decisions for one image that span
//! several moves (a publication's whole tag set) are serialized by the caller.

use serde::Serialize;
use sqlx::SqliteConnection;

use crate::{Sqlite, StoreError};

/// How a move was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveIntent {
    /// A publication writing its tags: creates, or moves a mutable tag.
    Publish,
    /// A floating tag moving back after a release was withdrawn.
    Rollback,
    /// An operator re-pointing a tag, immutable or not.
    Force,
}

/// One tag to point at one digest.
#[derive(Debug, Clone)]
pub struct TagMove<'a> {
    pub image: &'a str,
    pub tag: &'a str,
    pub digest: &'a str,
    /// A full-version tag: once written it may only be re-pointed by force.
    pub immutable: bool,
    pub intent: MoveIntent,
    pub reason: &'a str,
    pub publication_id: Option<i64>,
    pub release_tag: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveOutcome {
    /// The tag already pointed there; nothing was written.
    Unchanged,
    /// An event was appended and the view updated.
    Moved(TagEventRow),
    /// An immutable tag points elsewhere and the move was not forced.
    Refused { current: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = TagEvent)]
pub struct TagEventRow {
    pub id: i64,
    pub image: String,
    pub tag: String,
    pub digest: String,
    pub previous_digest: Option<String>,
    #[schema(schema_with = crate::schema::tag_event_kind)]
    pub kind: String,
    pub reason: String,
    pub publication_id: Option<i64>,
    pub release_tag: Option<String>,
    pub created_at: String,
}

/// A tag's current digest and the publication that wrote it (none for a force or a
/// rollback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagHolder {
    pub digest: String,
    pub publication_id: Option<i64>,
    pub commit: Option<String>,
    pub release_id: Option<i64>,
    /// The branch publication of the holder's commit, if it has one: its place in report
    /// order.
    pub branch_publication_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = Tag)]
pub struct TagRow {
    pub tag: String,
    pub digest: String,
    pub updated_at: String,
    pub publication_id: Option<i64>,
    pub event_id: i64,
}

async fn apply_move(
    conn: &mut SqliteConnection,
    m: &TagMove<'_>,
) -> Result<MoveOutcome, StoreError> {
    let current = sqlx::query!(
        r#"SELECT digest, immutable AS "immutable: bool" FROM tags WHERE image = ? AND tag = ?"#,
        m.image,
        m.tag
    )
    .fetch_optional(&mut *conn)
    .await?;
    // Immutability belongs to the tag once written, whatever computes it later: only an
    // operator's force re-points it, and the tag stays immutable after that.
    let immutable = m.immutable || current.as_ref().is_some_and(|c| c.immutable);
    let kind = match (&current, m.intent) {
        (Some(current), _) if current.digest == m.digest => return Ok(MoveOutcome::Unchanged),
        (Some(current), MoveIntent::Publish | MoveIntent::Rollback) if immutable => {
            return Ok(MoveOutcome::Refused {
                current: current.digest.clone(),
            });
        }
        (None, MoveIntent::Publish | MoveIntent::Rollback) => "create",
        (Some(_), MoveIntent::Publish) => "move",
        (Some(_), MoveIntent::Rollback) => "rollback",
        (_, MoveIntent::Force) => "force",
    };
    let current = current.map(|c| c.digest);
    let event = sqlx::query_as!(
        TagEventRow,
        r#"INSERT INTO tag_events (image, tag, digest, previous_digest, kind, reason, publication_id, release_tag)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
           RETURNING id AS "id!", image, tag, digest, previous_digest, kind, reason, publication_id,
                     release_tag, created_at"#,
        m.image,
        m.tag,
        m.digest,
        current,
        kind,
        m.reason,
        m.publication_id,
        m.release_tag
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO tags (image, tag, digest, event_id, publication_id, updated_at, immutable)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (image, tag) DO UPDATE SET
             digest = excluded.digest, event_id = excluded.event_id,
             publication_id = excluded.publication_id, updated_at = excluded.updated_at,
             immutable = excluded.immutable",
        event.image,
        event.tag,
        event.digest,
        event.id,
        event.publication_id,
        event.created_at,
        immutable
    )
    .execute(&mut *conn)
    .await?;
    Ok(MoveOutcome::Moved(event))
}

impl Sqlite {
    /// Points one tag at a digest, recording the move. Idempotent: the same move again
    /// writes nothing.
    pub async fn move_tag(&self, m: &TagMove<'_>) -> Result<MoveOutcome, StoreError> {
        let mut tx = self.writer.begin().await?;
        let outcome = apply_move(&mut tx, m).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Waits for `image`'s tag decisions to be this caller's: one process writes a SQLite
    /// database, so its own lock is all there is.
    pub async fn lock_image(&self, image: &str) -> Result<crate::ImageLock, StoreError> {
        Ok(crate::ImageLock::local(self.images.local(image).await))
    }

    /// Where each tag of `image` points now, by tag name, after tag `after`.
    pub async fn list_tags(
        &self,
        image: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<TagRow>, StoreError> {
        let rows = sqlx::query_as!(
            TagRow,
            r#"SELECT tag, digest, updated_at, publication_id, event_id
               FROM tags WHERE image = ?1 AND tag > ?2 ORDER BY tag LIMIT ?3"#,
            image,
            after,
            limit
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows)
    }

    /// The tags of `image` that point at `digest`.
    pub async fn tags_at_digest(
        &self,
        image: &str,
        digest: &str,
    ) -> Result<Vec<TagRow>, StoreError> {
        let rows = sqlx::query_as!(
            TagRow,
            r#"SELECT tag, digest, updated_at, publication_id, event_id
               FROM tags WHERE image = ? AND digest = ? ORDER BY tag"#,
            image,
            digest
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows)
    }

    /// How many tags each image has, for the images that have any.
    pub async fn tag_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows =
            sqlx::query!(r#"SELECT image, count(*) AS "tags!: i64" FROM tags GROUP BY image"#)
                .fetch_all(&self.reader)
                .await?;
        Ok(rows.into_iter().map(|r| (r.image, r.tags)).collect())
    }
}

impl Sqlite {
    /// Where one tag of `image` points now and which publication put it there.
    pub async fn tag_holder(
        &self,
        image: &str,
        tag: &str,
    ) -> Result<Option<TagHolder>, StoreError> {
        let row = sqlx::query_as!(
            TagHolder,
            r#"SELECT t.digest, t.publication_id, p.commit_sha AS "commit?", p.release_id,
                      (SELECT b.id FROM publications b
                       WHERE b.image = t.image AND b.commit_sha = p.commit_sha
                         AND b.release_id IS NULL) AS "branch_publication_id?: i64"
               FROM tags t LEFT JOIN publications p ON p.id = t.publication_id
               WHERE t.image = ? AND t.tag = ?"#,
            image,
            tag
        )
        .fetch_optional(&self.writer)
        .await?;
        Ok(row)
    }

    /// The tags of `image` a branch publication of `commit` wrote that do not point at
    /// `index`: once a release publishes the commit, they move to its index.
    pub async fn branch_tags_of_commit(
        &self,
        image: &str,
        commit: &str,
        index: &str,
    ) -> Result<Vec<String>, StoreError> {
        let tags = sqlx::query_scalar!(
            "SELECT t.tag FROM tags t JOIN publications p ON p.id = t.publication_id
             WHERE t.image = ? AND p.commit_sha = ? AND p.release_id IS NULL AND t.digest <> ?
             ORDER BY t.tag",
            image,
            commit,
            index
        )
        .fetch_all(&self.writer)
        .await?;
        Ok(tags)
    }

    /// Where one tag of `image` points now, and whether it is immutable.
    pub async fn tag_target(
        &self,
        image: &str,
        tag: &str,
    ) -> Result<Option<(String, bool)>, StoreError> {
        let row = sqlx::query!(
            r#"SELECT digest, immutable AS "immutable: bool" FROM tags WHERE image = ? AND tag = ?"#,
            image,
            tag
        )
        .fetch_optional(&self.writer)
        .await?;
        Ok(row.map(|r| (r.digest, r.immutable)))
    }
}

/// A page rendered by SQLite as a JSON array, with what the caller needs for the cursor.
/// The REST endpoints pass the array through as is: one row crosses from SQLite instead of
/// one per item, and nothing is decoded and encoded again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPage {
    /// A JSON array of the items, in order.
    pub items: String,
    pub count: i64,
    /// The cursor of the last item (its id, or its tag name), when there is one.
    pub last: Option<String>,
}

impl Sqlite {
    /// [`Sqlite::list_tags`], rendered as JSON.
    pub async fn list_tags_json(
        &self,
        image: &str,
        after: &str,
        limit: i64,
    ) -> Result<JsonPage, StoreError> {
        let row = sqlx::query!(
            r#"SELECT json_group_array(json_object(
                        'tag', tag, 'digest', digest, 'updated_at', updated_at,
                        'publication_id', publication_id, 'event_id', event_id)) AS "items!: String",
                      count(*) AS "count!: i64", max(tag) AS "last: String"
               FROM (SELECT * FROM tags WHERE image = ?1 AND tag > ?2 ORDER BY tag LIMIT ?3)"#,
            image,
            after,
            limit
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(JsonPage {
            items: row.items,
            count: row.count,
            last: row.last,
        })
    }

    /// [`Sqlite::list_tag_events`], rendered as JSON.
    pub async fn list_tag_events_json(
        &self,
        image: &str,
        tag: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<JsonPage, StoreError> {
        // Two statements, so each uses its own index: (image, tag, id) or (image, id).
        let (items, count, last) = match tag {
            Some(tag) => {
                let row = sqlx::query!(
                    r#"SELECT json_group_array(json_object(
                                'id', id, 'image', image, 'tag', tag, 'digest', digest,
                                'previous_digest', previous_digest, 'kind', kind, 'reason', reason,
                                'publication_id', publication_id, 'release_tag', release_tag,
                                'created_at', created_at)) AS "items!: String",
                              count(*) AS "count!: i64", CAST(max(id) AS TEXT) AS "last: String"
                       FROM (SELECT * FROM tag_events WHERE image = ?1 AND tag = ?2 AND id > ?3
                             ORDER BY id LIMIT ?4)"#,
                    image,
                    tag,
                    after,
                    limit
                )
                .fetch_one(&self.reader)
                .await?;
                (row.items, row.count, row.last)
            }
            None => {
                let row = sqlx::query!(
                    r#"SELECT json_group_array(json_object(
                                'id', id, 'image', image, 'tag', tag, 'digest', digest,
                                'previous_digest', previous_digest, 'kind', kind, 'reason', reason,
                                'publication_id', publication_id, 'release_tag', release_tag,
                                'created_at', created_at)) AS "items!: String",
                              count(*) AS "count!: i64", CAST(max(id) AS TEXT) AS "last: String"
                       FROM (SELECT * FROM tag_events WHERE image = ?1 AND id > ?2 ORDER BY id LIMIT ?3)"#,
                    image,
                    after,
                    limit
                )
                .fetch_one(&self.reader)
                .await?;
                (row.items, row.count, row.last)
            }
        };
        Ok(JsonPage { items, count, last })
    }
}
