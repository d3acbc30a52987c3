//! What each job does. A job names a publication or a release; the worker reads what they
//! are *now* and acts on that, so a job that runs late, twice or after a later event does
//! the right thing.

use hoist_domain::RepoName;
use hoist_domain::config::Repository;
use hoist_domain::job::Job;
use hoist_store::Target;

use crate::worker::{JobFailure, Pipeline};

impl Pipeline {
    pub(crate) async fn handle(&self, job: &Job) -> Result<(), JobFailure> {
        match job {
            Job::Publish { publication_id } => self.publish(*publication_id).await,
            Job::Rollback {
                release_id,
                tag,
                commit,
                index,
            } => self
                .roll_back(*release_id, tag, commit, index)
                .await
                .map_err(Into::into),
            Job::ResolveRelease { release_id } => {
                self.resolve_release(*release_id).await.map_err(Into::into)
            }
            Job::ForceTag {
                image,
                tag,
                digest,
                operator,
                reason,
            } => self
                .force_tag(image, tag, digest, operator, reason)
                .await
                .map_err(Into::into),
        }
    }

    pub(crate) fn repository(&self, github: &RepoName) -> Option<&Repository> {
        self.config.repository(github)
    }

    /// Asks GitHub's REST API for the commit of a published release nothing else resolved.
    async fn resolve_release(&self, release_id: i64) -> Result<(), crate::PipelineError> {
        let Some(release) = self.store.release(release_id).await? else {
            return Ok(());
        };
        let (Some(api), Some(repo)) = (
            &self.config.github.api,
            self.repository(&release.repository),
        ) else {
            return Ok(());
        };
        if release.commit.is_some() {
            return Ok(());
        }
        let commit = crate::github::commit_of_tag(
            &self.github,
            api,
            release.repository.as_str(),
            &release.tag,
        )
        .await?;
        self.store
            .resolve_release_from_api(&Target::of(repo), release.id, commit.as_str())
            .await?;
        Ok(())
    }
}
