//! What a publication's index lists, per platform, and the signature and attestation
//! hoist attached to it: recorded by the pipeline as it goes, shown on
//! `GET /v1/publications/{id}`.
//!
//! As on SQLite: the platforms are JSON kept as TEXT (the schema checks it parses), and
//! each write is one statement, so nothing here needs a lock.

use hoist_store::contents::corrupt;
use hoist_store::{PublicationContents, PublishedPlatform, StoreError};

use crate::Postgres;

impl Postgres {
    /// Records the platforms publication `id`'s index lists; a re-run replaces them and
    /// forgets a signature made for other contents.
    pub async fn record_platforms(
        &self,
        id: i64,
        platforms: &[PublishedPlatform],
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(platforms).map_err(corrupt)?;
        sqlx::query!(
            "INSERT INTO publication_contents (publication_id, platforms) VALUES ($1, $2)
             ON CONFLICT (publication_id) DO UPDATE SET
                 signature_digest = CASE WHEN publication_contents.platforms = excluded.platforms
                                         THEN publication_contents.signature_digest END,
                 attestation_digest = CASE WHEN publication_contents.platforms = excluded.platforms
                                           THEN publication_contents.attestation_digest END,
                 platforms = excluded.platforms,
                 updated_at = hoist_now()",
            id,
            json
        )
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Records the signature and attestation manifests hoist attached to publication `id`'s
    /// index.
    pub async fn record_signing(
        &self,
        id: i64,
        signature_digest: &str,
        attestation_digest: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query!(
            "UPDATE publication_contents SET signature_digest = $1, attestation_digest = $2,
                 updated_at = hoist_now()
             WHERE publication_id = $3",
            signature_digest,
            attestation_digest,
            id
        )
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Corrupt(format!(
                "publication {id} was signed before its platforms were recorded"
            )));
        }
        Ok(())
    }

    /// What publication `id`'s index lists; empty before its verify step ran.
    pub async fn publication_contents(&self, id: i64) -> Result<PublicationContents, StoreError> {
        let row = sqlx::query!(
            "SELECT platforms, signature_digest, attestation_digest
             FROM publication_contents WHERE publication_id = $1",
            id
        )
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else {
            return Ok(PublicationContents::default());
        };
        Ok(PublicationContents {
            platforms: serde_json::from_str(&row.platforms).map_err(corrupt)?,
            signature_digest: row.signature_digest,
            attestation_digest: row.attestation_digest,
        })
    }
}
