//! The tag ledger: `tag_events` is append-only (triggers refuse UPDATE, DELETE and
//! TRUNCATE) and `tags` is the current view, written in the same transaction as the event
//! that moved it, so the two always agree.
//!
//! What differs from SQLite: a move is decided under the image's advisory lock
//! ([`crate::lock`], scope "image"), taken first in its transaction, so two replicas never
//! interleave tag writes of one image. Reads order tag names bytewise (`COLLATE "C"`), as
//! SQLite's BINARY collation does, whatever the database's default collation. The JSON
//! pages are rendered with `row_to_json` joined by commas, which writes exactly the text
//! SQLite's `json_object`/`json_group_array` write (no spaces, keys in column order).

use hoist_store::{
    JsonPage, MoveIntent, MoveOutcome, StoreError, TagEventRow, TagHolder, TagMove, TagRow,
};
use sqlx::PgConnection;

use crate::Postgres;

/// A session advisory lock on its own connection; dropping it closes the connection,
/// which ends the session and so releases the lock, even when no task is left to run.
struct SessionLock(Option<PgConnection>);

impl Drop for SessionLock {
    fn drop(&mut self) {
        let Some(conn) = self.0.take() else {
            return;
        };
        // Closing politely tells the server at once; without a runtime, dropping the
        // socket tells it as well, a moment later.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = sqlx::Connection::close(conn).await;
            });
        }
    }
}

#[hoist_store::async_trait]
impl hoist_store::SharedLock for SessionLock {
    /// The session is alive, so its lock is held: a session lock ends only with an unlock
    /// or the session, and this connection is never reconnected behind our back.
    async fn confirm(&mut self) -> Result<(), StoreError> {
        let conn = self
            .0
            .as_mut()
            .ok_or_else(|| StoreError::Corrupt("an image lock used after release".to_owned()))?;
        sqlx::query_scalar!(r#"SELECT 1 AS "alive!""#)
            .fetch_one(conn)
            .await?;
        Ok(())
    }
}

/// Decides and writes one move; the caller holds the image's lock.
async fn apply_move(conn: &mut PgConnection, m: &TagMove<'_>) -> Result<MoveOutcome, StoreError> {
    let current = sqlx::query!(
        r#"SELECT digest, (immutable = 1) AS "immutable!" FROM tags WHERE image = $1 AND tag = $2"#,
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
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           RETURNING id, image, tag, digest, previous_digest, kind, reason, publication_id,
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
         VALUES ($1, $2, $3, $4, $5, $6, $7)
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
        i64::from(immutable)
    )
    .execute(&mut *conn)
    .await?;
    Ok(MoveOutcome::Moved(event))
}

impl Postgres {
    /// Points one tag at a digest, recording the move. Idempotent: the same move again
    /// writes nothing. Decided under the image's lock, so moves of one image by several
    /// replicas happen one after the other.
    pub async fn move_tag(&self, m: &TagMove<'_>) -> Result<MoveOutcome, StoreError> {
        let mut tx = self.writer.begin().await?;
        crate::lock(&mut tx, "image", m.image).await?;
        let outcome = apply_move(&mut tx, m).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Waits until no other worker of any replica decides about `image`'s tags, and holds
    /// that until the lock is dropped: this process's lock first, then a session advisory
    /// lock (scope "tags", apart from the transactions' "image" locks it encloses) on a
    /// connection of its own. That connection is never pooled, so a lock cannot outlive
    /// its holder in a pool: dropping the lock unlocks and closes the connection, and a
    /// holder that dies or is cut off loses the session and the lock with it (TCP
    /// keepalives find a vanished peer). A wait longer than `lock_timeout` is an error
    /// that may pass, and the job is retried.
    pub async fn lock_image(&self, image: &str) -> Result<hoist_store::ImageLock, StoreError> {
        let local = self.images.local(image).await;
        let name = format!("hoist:tags:{}", image.to_ascii_lowercase());
        let mut conn = self.connector.connect().await?;
        sqlx::query!(
            r#"SELECT 1 AS "locked!" FROM (SELECT pg_advisory_lock(hashtextextended($1, 0))) AS l"#,
            name
        )
        .fetch_one(&mut conn)
        .await?;
        Ok(hoist_store::ImageLock::shared(
            local,
            SessionLock(Some(conn)),
        ))
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
               FROM tags WHERE image = $1 AND tag COLLATE "C" > $2
               ORDER BY tag COLLATE "C" LIMIT $3"#,
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
               FROM tags WHERE image = $1 AND digest = $2 ORDER BY tag COLLATE "C""#,
            image,
            digest
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows)
    }

    /// How many tags each image has, for the images that have any, by image name (the
    /// order SQLite's grouping gives).
    pub async fn tag_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT image, count(*) AS "tags!" FROM tags
               GROUP BY image ORDER BY image COLLATE "C""#
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(|r| (r.image, r.tags)).collect())
    }

    /// Where one tag of `image` points now and which publication put it there.
    pub async fn tag_holder(
        &self,
        image: &str,
        tag: &str,
    ) -> Result<Option<TagHolder>, StoreError> {
        let row = sqlx::query_as!(
            TagHolder,
            r#"SELECT t.digest, t.publication_id, p.commit_sha AS "commit?",
                      p.release_id AS "release_id?",
                      (SELECT b.id FROM publications b
                       WHERE b.image = t.image AND b.commit_sha = p.commit_sha
                         AND b.release_id IS NULL) AS "branch_publication_id?"
               FROM tags t LEFT JOIN publications p ON p.id = t.publication_id
               WHERE t.image = $1 AND t.tag = $2"#,
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
            r#"SELECT t.tag FROM tags t JOIN publications p ON p.id = t.publication_id
               WHERE t.image = $1 AND p.commit_sha = $2 AND p.release_id IS NULL
                 AND t.digest <> $3
               ORDER BY t.tag COLLATE "C""#,
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
            r#"SELECT digest, (immutable = 1) AS "immutable!" FROM tags WHERE image = $1 AND tag = $2"#,
            image,
            tag
        )
        .fetch_optional(&self.writer)
        .await?;
        Ok(row.map(|r| (r.digest, r.immutable)))
    }

    /// [`Postgres::list_tags`], rendered as JSON: the same text as SQLite's.
    pub async fn list_tags_json(
        &self,
        image: &str,
        after: &str,
        limit: i64,
    ) -> Result<JsonPage, StoreError> {
        let row = sqlx::query!(
            r#"SELECT coalesce('[' || string_agg(row_to_json(t)::text, ',' ORDER BY t.tag COLLATE "C")
                               || ']', '[]') AS "items!",
                      count(*) AS "count!", max(t.tag COLLATE "C") AS "last"
               FROM (SELECT tag, digest, updated_at, publication_id, event_id
                     FROM tags WHERE image = $1 AND tag COLLATE "C" > $2
                     ORDER BY tag COLLATE "C" LIMIT $3) AS t"#,
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

    /// The ledger of `image` (or of one of its tags) after event `after`, oldest first,
    /// rendered as JSON: the same text as SQLite's.
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
                    r#"SELECT coalesce('[' || string_agg(row_to_json(e)::text, ',' ORDER BY e.id)
                                       || ']', '[]') AS "items!",
                              count(*) AS "count!", max(e.id)::text AS "last"
                       FROM (SELECT id, image, tag, digest, previous_digest, kind, reason,
                                    publication_id, release_tag, created_at
                             FROM tag_events WHERE image = $1 AND tag = $2 AND id > $3
                             ORDER BY id LIMIT $4) AS e"#,
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
                    r#"SELECT coalesce('[' || string_agg(row_to_json(e)::text, ',' ORDER BY e.id)
                                       || ']', '[]') AS "items!",
                              count(*) AS "count!", max(e.id)::text AS "last"
                       FROM (SELECT id, image, tag, digest, previous_digest, kind, reason,
                                    publication_id, release_tag, created_at
                             FROM tag_events WHERE image = $1 AND id > $2
                             ORDER BY id LIMIT $3) AS e"#,
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
