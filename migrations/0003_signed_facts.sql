-- Facts and claims (DESIGN.md, "Trust model"). A report's ref is a claim under a static CI
-- token and a fact GitHub signed under a GitHub Actions OIDC token, whose run the build
-- keeps (JSON: run_id, run_attempt, workflow_ref, job_workflow_ref, actor, event_name,
-- runner_environment).
ALTER TABLE builds ADD COLUMN ref_source TEXT NOT NULL DEFAULT 'claim'
    CHECK (ref_source IN ('claim', 'oidc'));
ALTER TABLE builds ADD COLUMN ci_identity TEXT;

-- Where each tag points and which signed fact said so: its push webhook, or an OIDC-signed
-- report of a run for the tag. A deleted tag keeps its row with no commit, so a late or
-- re-run OIDC report of the old tag does not bring the old commit back; only a push does.
CREATE TABLE git_tags_signed (
    repository TEXT NOT NULL,
    tag        TEXT NOT NULL,
    commit_sha TEXT CHECK (commit_sha IS NULL OR length(commit_sha) = 40),
    source     TEXT NOT NULL DEFAULT 'push' CHECK (source IN ('push', 'oidc')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (repository, tag)
) STRICT;
INSERT INTO git_tags_signed (repository, tag, commit_sha, updated_at)
    SELECT repository, tag, commit_sha, updated_at FROM git_tags;
DROP TABLE git_tags;
ALTER TABLE git_tags_signed RENAME TO git_tags;

-- Commits confirmed on a branch by something other than a push webhook (an OIDC-signed
-- report of a run on the branch, or GitHub's API). They say the commit is on the branch,
-- not where: push order stays in branch_commits alone.
CREATE TABLE branch_confirmations (
    repository TEXT NOT NULL,
    branch     TEXT NOT NULL,
    commit_sha TEXT NOT NULL CHECK (length(commit_sha) = 40),
    source     TEXT NOT NULL CHECK (source IN ('oidc', 'github_api')),
    confirmed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (repository, branch, commit_sha)
) STRICT;

-- A CI claim that a signed fact contradicts: builds claimed for the release's tag on
-- another commit. Shown by GET /v1/releases; those builds are not used.
ALTER TABLE releases ADD COLUMN claim_conflict TEXT;

-- Releases a CI claim resolved before claims stopped deciding, and that have not been
-- published yet, are resolved again from the signed facts hoist holds: target_commitish
-- when it is a commit, else the tag's push; else they wait for one like any other.
UPDATE releases SET
    commit_sha = CASE
        WHEN length(target_commitish) = 40 AND lower(target_commitish) NOT GLOB '*[^0-9a-f]*'
            THEN lower(target_commitish)
        ELSE (SELECT t.commit_sha FROM git_tags t
              WHERE t.repository = releases.repository AND t.tag = releases.tag_name)
    END,
    commit_source = CASE
        WHEN length(target_commitish) = 40 AND lower(target_commitish) NOT GLOB '*[^0-9a-f]*'
            THEN 'target_commitish'
        WHEN (SELECT t.commit_sha FROM git_tags t
              WHERE t.repository = releases.repository AND t.tag = releases.tag_name) IS NOT NULL
            THEN 'push'
    END
    WHERE commit_source = 'build'
      AND NOT EXISTS (SELECT 1 FROM publications p
                      WHERE p.release_id = releases.id AND p.state IN ('running', 'succeeded'));
