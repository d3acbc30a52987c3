-- hoist's first schema. Forward-only: later changes are new files, never edits to this one.
-- Timestamps are UTC RFC 3339 text with milliseconds, written by SQLite itself.

-- Every verified webhook delivery, deduplicated on X-GitHub-Delivery. The answer given is
-- kept, so a redelivery is answered exactly like the first.
CREATE TABLE deliveries (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL CHECK (source IN ('github')),
    delivery_id TEXT NOT NULL,
    event       TEXT NOT NULL,
    action      TEXT,
    repository  TEXT,
    -- 'pong', 'accepted', or 'ignored' (with the reason, e.g. an unconfigured repository).
    outcome     TEXT NOT NULL,
    reason      TEXT,
    status      INTEGER NOT NULL,
    response    TEXT NOT NULL,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (source, delivery_id)
) STRICT;

-- GitHub releases as last reported, and the commit each resolves to.
CREATE TABLE releases (
    id            INTEGER PRIMARY KEY,
    repository    TEXT NOT NULL,
    github_id     INTEGER NOT NULL,
    tag_name      TEXT NOT NULL,
    target_commitish TEXT NOT NULL,
    prerelease    INTEGER NOT NULL CHECK (prerelease IN (0, 1)),
    state         TEXT NOT NULL CHECK (state IN ('draft', 'published', 'unpublished', 'deleted')),
    last_action   TEXT NOT NULL,
    commit_sha    TEXT CHECK (commit_sha IS NULL OR length(commit_sha) = 40),
    -- Which fact resolved the commit: 'build', 'target_commitish', 'push', 'github_api'.
    commit_source TEXT,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (repository, github_id)
) STRICT;

CREATE INDEX releases_by_tag ON releases (repository, tag_name);

-- Git tag -> commit, learned from push webhooks.
CREATE TABLE git_tags (
    repository TEXT NOT NULL,
    tag        TEXT NOT NULL,
    commit_sha TEXT NOT NULL CHECK (length(commit_sha) = 40),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (repository, tag)
) STRICT;

-- One image per (repository, commit, platform), as CI reported it, by digest. A NULL
-- platform is an index whose platforms all count.
CREATE TABLE builds (
    id          INTEGER PRIMARY KEY,
    repository  TEXT NOT NULL,
    commit_sha  TEXT NOT NULL CHECK (length(commit_sha) = 40),
    git_ref     TEXT,
    platform    TEXT,
    image       TEXT NOT NULL,
    digest      TEXT NOT NULL,
    reported_by TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE UNIQUE INDEX builds_identity ON builds (repository, commit_sha, ifnull(platform, ''));
CREATE INDEX builds_by_ref ON builds (repository, git_ref);

-- One publication = (target image, commit, release or none).
CREATE TABLE publications (
    id           INTEGER PRIMARY KEY,
    image        TEXT NOT NULL,
    repository   TEXT NOT NULL,
    commit_sha   TEXT NOT NULL CHECK (length(commit_sha) = 40),
    release_id   INTEGER REFERENCES releases (id),
    state        TEXT NOT NULL
                 CHECK (state IN ('waiting', 'running', 'succeeded', 'failed', 'stalled')),
    step         TEXT,
    error        TEXT,
    index_digest TEXT,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE UNIQUE INDEX publications_identity
    ON publications (image, commit_sha, ifnull(release_id, 0));
CREATE INDEX publications_by_state ON publications (state, image);
CREATE INDEX publications_by_commit ON publications (repository, commit_sha);

CREATE TABLE publication_steps (
    publication_id INTEGER NOT NULL REFERENCES publications (id),
    step           TEXT NOT NULL,
    started_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at    TEXT,
    error          TEXT,
    PRIMARY KEY (publication_id, step)
) STRICT;

-- The durable job queue: claimed by lease, so a crashed worker's job runs again.
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL DEFAULT '{}',
    state       TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    run_after   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    lease_until TEXT,
    last_error  TEXT,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE INDEX jobs_ready ON jobs (state, run_after);

-- The ledger: every tag move, append-only.
CREATE TABLE tag_events (
    id              INTEGER PRIMARY KEY,
    image           TEXT NOT NULL,
    tag             TEXT NOT NULL,
    digest          TEXT NOT NULL,
    previous_digest TEXT,
    kind            TEXT NOT NULL CHECK (kind IN ('create', 'move', 'rollback', 'force')),
    -- Why, for people: "release v1.2.3", "release v2.0.0 deleted", "forced by ops".
    reason          TEXT NOT NULL DEFAULT '',
    publication_id  INTEGER REFERENCES publications (id),
    release_tag     TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE INDEX tag_events_by_tag ON tag_events (image, tag, id);
CREATE INDEX tag_events_by_image ON tag_events (image, id);

CREATE TRIGGER tag_events_no_update BEFORE UPDATE ON tag_events
BEGIN
    SELECT RAISE(ABORT, 'tag_events is append-only');
END;

CREATE TRIGGER tag_events_no_delete BEFORE DELETE ON tag_events
BEGIN
    SELECT RAISE(ABORT, 'tag_events is append-only');
END;

-- Where each tag points now; written in the same transaction as its tag_events row.
CREATE TABLE tags (
    image          TEXT NOT NULL,
    tag            TEXT NOT NULL,
    digest         TEXT NOT NULL,
    event_id       INTEGER NOT NULL REFERENCES tag_events (id),
    publication_id INTEGER REFERENCES publications (id),
    updated_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (image, tag)
) STRICT;

CREATE INDEX tags_by_digest ON tags (image, digest);

-- Written by /readyz to prove the database accepts writes.
CREATE TABLE heartbeat (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    beat_at TEXT NOT NULL
) STRICT;
