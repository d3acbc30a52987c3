-- Publications as a state machine (hoist_domain::state): a publication can end
-- `withdrawn`, remembers the release tag it was last planned under, and jobs name the
-- publication they work on. Tags remember whether they are immutable.

-- SQLite cannot change a CHECK constraint in place: the table is rebuilt as its
-- documentation says (new table, copy, drop, rename). hoist runs migrations with foreign
-- key enforcement off and checks every key afterwards (hoist_store::Store::open), so the
-- steps, tags and ledger rows that name `publications` point at the new table.
CREATE TABLE publications_new (
    id           INTEGER PRIMARY KEY,
    image        TEXT NOT NULL,
    repository   TEXT NOT NULL,
    commit_sha   TEXT NOT NULL CHECK (length(commit_sha) = 40),
    release_id   INTEGER REFERENCES releases (id),
    state        TEXT NOT NULL
                 CHECK (state IN ('waiting', 'running', 'succeeded', 'failed', 'stalled', 'withdrawn')),
    -- The step to run next (or the one that failed).
    step         TEXT CHECK (step IS NULL OR step IN ('wait', 'copy', 'verify', 'index', 'tags')),
    error        TEXT,
    index_digest TEXT,
    -- The release tag this publication's tags were last decided for: a renamed release's
    -- old version is still known, to roll back the floating tags it held.
    version_tag  TEXT,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

INSERT INTO publications_new
    (id, image, repository, commit_sha, release_id, state, step, error, index_digest,
     version_tag, created_at, updated_at)
SELECT p.id, p.image, p.repository, p.commit_sha, p.release_id, p.state, p.step, p.error,
       p.index_digest,
       -- The version its tags were written for: the ledger knows it even for a release
       -- renamed since (the old version followed no rename).
       CASE WHEN p.state = 'succeeded' THEN
           coalesce((SELECT e.release_tag FROM tag_events e
                     WHERE e.publication_id = p.id AND e.release_tag IS NOT NULL
                     ORDER BY e.id DESC LIMIT 1), r.tag_name)
       END,
       p.created_at, p.updated_at
FROM publications p LEFT JOIN releases r ON r.id = p.release_id;

DROP TABLE publications;
ALTER TABLE publications_new RENAME TO publications;

CREATE UNIQUE INDEX publications_identity
    ON publications (image, commit_sha, ifnull(release_id, 0));
CREATE INDEX publications_by_state ON publications (state, image);
CREATE INDEX publications_by_commit ON publications (repository, commit_sha);
CREATE INDEX publications_by_release ON publications (release_id);

-- Jobs name their publication, so one runs at a time per publication and the reconciler
-- finds publications that have none.
ALTER TABLE jobs ADD COLUMN publication_id INTEGER REFERENCES publications (id);
CREATE INDEX jobs_by_publication ON jobs (publication_id, state);

-- The event-keyed kinds are gone: their work is found again by the reconciler, which
-- queues every waiting or running publication that has no live job.
UPDATE jobs SET state = 'failed', last_error = 'superseded by publication jobs (migration 0002)',
    updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
WHERE kind IN ('release', 'builds') AND state IN ('queued', 'running');

-- Immutability is a property of the tag, whatever line computes it later. Tags written
-- for a release under its own version are the pinned ones.
ALTER TABLE tags ADD COLUMN immutable INTEGER NOT NULL DEFAULT 0 CHECK (immutable IN (0, 1));
UPDATE tags SET immutable = 1
WHERE EXISTS (SELECT 1 FROM tag_events e
              WHERE e.id = tags.event_id AND e.release_tag IS NOT NULL
                AND (e.release_tag = tags.tag OR e.release_tag = 'v' || tags.tag));

-- The commits each branch went through, in the order push webhooks named them (a push's
-- commits[] oldest first, then its head). A branch's own tags (`edge`, the branch name)
-- move only to a commit pushed later than the one they hold.
CREATE TABLE branch_commits (
    id         INTEGER PRIMARY KEY,
    repository TEXT NOT NULL,
    branch     TEXT NOT NULL,
    commit_sha TEXT NOT NULL CHECK (length(commit_sha) = 40),
    pushed_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (repository, branch, commit_sha)
) STRICT;

-- Replays and reordering: a delivery's body digest (a captured body replayed under a new
-- delivery id is the same event), and when GitHub last changed each release, so an older
-- event changes nothing.
ALTER TABLE deliveries ADD COLUMN body_sha256 TEXT;
CREATE INDEX deliveries_by_body ON deliveries (source, body_sha256);
ALTER TABLE releases ADD COLUMN changed_at TEXT;
