-- Supply chain: what each publication's index lists per platform (the platform manifest and
-- the BuildKit attestation manifests carried with it), and what hoist signed.

CREATE TABLE publication_contents (
    publication_id     INTEGER PRIMARY KEY REFERENCES publications (id),
    -- JSON array: [{"platform", "manifest", "image", "build_id",
    --               "attestations": [{"digest", "predicate_types": [...]}]}]
    platforms          TEXT NOT NULL CHECK (json_valid(platforms)),
    -- The cosign signature manifest (tag sha256-<hex>.sig) and the publication
    -- attestation manifest (tag sha256-<hex>.att), when [signing] is configured.
    signature_digest   TEXT,
    attestation_digest TEXT,
    updated_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

-- An index reported without a platform is keyed by its digest: one CI job per platform
-- may each report its own index for the same commit (docker/build-push-action's default),
-- and each counts. Before, a second index replaced the first.
DROP INDEX builds_identity;
CREATE UNIQUE INDEX builds_identity ON builds (repository, commit_sha, ifnull(platform, digest));
