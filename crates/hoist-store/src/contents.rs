//! What a publication's index lists, per platform, and the signature and attestation
//! hoist attached to it: recorded by the pipeline as it goes, shown on
//! `GET /v1/publications/{id}`.

use serde::{Deserialize, Serialize};

use crate::{Sqlite, StoreError};

/// One platform of a published index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublishedPlatform {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// The platform manifest's digest, the same in CI's repository and the target.
    pub manifest: String,
    /// The image CI reported for it (a manifest, or the index holding it).
    pub image: String,
    /// The build that reported it.
    pub build_id: i64,
    /// The attestation manifests carried with it (BuildKit provenance, SBOMs).
    pub attestations: Vec<PublishedAttestation>,
}

/// One attestation manifest carried into a published index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublishedAttestation {
    pub digest: String,
    /// The `in-toto.io/predicate-type` of each of its layers.
    pub predicate_types: Vec<String>,
}

/// A publication's index contents and what hoist signed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PublicationContents {
    pub platforms: Vec<PublishedPlatform>,
    /// The cosign signature manifest, tag `sha256-<hex>.sig` (with `[signing]`).
    pub signature_digest: Option<String>,
    /// The publication attestation manifest, tag `sha256-<hex>.att` (with `[signing]`).
    pub attestation_digest: Option<String>,
}

#[doc(hidden)]
pub fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("publication contents: {e}"))
}

impl Sqlite {
    /// Records the platforms publication `id`'s index lists; a re-run replaces them and
    /// forgets a signature made for other contents.
    pub async fn record_platforms(
        &self,
        id: i64,
        platforms: &[PublishedPlatform],
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(platforms).map_err(corrupt)?;
        sqlx::query!(
            "INSERT INTO publication_contents (publication_id, platforms) VALUES (?1, ?2)
             ON CONFLICT (publication_id) DO UPDATE SET
                 signature_digest = CASE WHEN platforms = excluded.platforms
                                         THEN signature_digest END,
                 attestation_digest = CASE WHEN platforms = excluded.platforms
                                           THEN attestation_digest END,
                 platforms = excluded.platforms,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
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
            "UPDATE publication_contents SET signature_digest = ?1, attestation_digest = ?2,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE publication_id = ?3",
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
             FROM publication_contents WHERE publication_id = ?",
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
