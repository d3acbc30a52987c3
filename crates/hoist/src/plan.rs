//! `hoist plan`: the tags a release or push would get.
//!
//! Without a config it is a way to try docker/metadata-action lines: the tags, one per
//! line. With `--config` and `--image` it uses that repository's policy and the ledger,
//! and says which existing tags would move (from -> to) and which are held back and why.

use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, anyhow, bail};
use hoist_domain::CommitSha;
use hoist_domain::config::DatabaseKind;
use hoist_domain::tags::{
    ComputedTags, EventContext, GitRef, HoldReason, PublicationPlan, TagPolicy, TagRole, Version,
};
use hoist_store::Store;
use serde_json::{Value, json};

/// What `hoist plan` was asked.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// The git ref of the event: refs/tags/v1.2.3 or refs/heads/main.
    #[arg(long = "ref", value_name = "REF")]
    git_ref: String,
    /// The commit the ref points at (40 hex digits).
    #[arg(long)]
    sha: String,
    /// metadata-action `tags` lines (repeatable); ignored with --image.
    #[arg(long = "tags", value_name = "LINE")]
    tags: Vec<String>,
    /// metadata-action `flavor` lines (repeatable); ignored with --image.
    #[arg(long = "flavor", value_name = "LINE")]
    flavor: Vec<String>,
    /// The GitHub release is marked prerelease: floating tags stay where they are.
    #[arg(long)]
    prerelease: bool,
    /// The repository's default branch, for `{{is_default_branch}}`, `type=edge` and
    /// `latest=auto` on branches.
    #[arg(long, default_value = "main")]
    default_branch: String,
    /// Use the policy of this configured image and the ledger of its tags (needs --config).
    #[arg(long)]
    image: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// One tag and what would happen to it.
struct Planned {
    tag: String,
    role: &'static str,
    held_back: Option<String>,
    current: Option<String>,
}

fn role_name(role: &TagRole) -> &'static str {
    match role {
        TagRole::Pinned => "pinned",
        TagRole::Floating(_) => "floating",
        TagRole::Plain => "plain",
    }
}

/// Decides every computed tag through the pipeline's own plan: written, or held back with
/// the reason.
fn decide(computed: &ComputedTags, live: &[Version], prerelease: bool) -> Vec<Planned> {
    let plan = PublicationPlan::new(computed, live, prerelease);
    computed
        .tags()
        .iter()
        .map(|t| {
            let held = plan
                .held_back
                .iter()
                .find(|h| h.tag == t.name)
                .map(|h| match &h.reason {
                    HoldReason::Prerelease if prerelease => {
                        "the GitHub release is marked prerelease".to_owned()
                    }
                    HoldReason::Prerelease => "the release is a prerelease".to_owned(),
                    HoldReason::NewerInScope { highest } => {
                        format!("{} is published and newer", highest.raw())
                    }
                });
            Planned {
                tag: t.name.as_str().to_owned(),
                role: role_name(&t.role),
                held_back: held,
                current: None,
            }
        })
        .collect()
}

pub fn run(config_path: Option<&Path>, args: &PlanArgs) -> anyhow::Result<String> {
    let commit: CommitSha = args.sha.parse().map_err(|e| anyhow!("--sha: {e}"))?;
    let event = EventContext {
        git_ref: args.git_ref.parse().unwrap_or_else(|never| match never {}),
        commit,
        default_branch: args.default_branch.clone(),
        time: SystemTime::now(),
    };
    if !matches!(event.git_ref, GitRef::Tag(_) | GitRef::Branch(_)) {
        bail!(
            "--ref {:?} must be refs/tags/<name> or refs/heads/<name>",
            args.git_ref
        );
    }
    let planned = match &args.image {
        None => {
            if args.tags.is_empty() {
                bail!("give --tags lines (or --config with --image to use a repository's policy)");
            }
            let policy = TagPolicy::parse(&args.tags, &args.flavor)?;
            decide(&policy.compute(&event)?, &[], args.prerelease)
        }
        Some(image) => {
            // Planning reads; it needs no secret.
            let config = crate::config_load::load_without_secrets(config_path)?;
            let repo = config
                .repositories
                .iter()
                .find(|r| r.image.name().eq_ignore_ascii_case(image))
                .ok_or_else(|| anyhow!("--image {image} is not a configured repository's image"))?;
            let computed = repo.tag_policy.compute(&event)?;
            let image = repo.image.name();
            let url = config.database.url.clone();
            let kind = config.database.kind;
            let (live, current) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async {
                    // Read-only: planning never creates, migrates or writes the database.
                    let store = match kind {
                        DatabaseKind::Sqlite => Store::open_read_only(&url).await?,
                        DatabaseKind::Postgres => {
                            // PostgreSQL's password is the one secret a plan needs.
                            let config = crate::config_load::load(config_path)?;
                            let options = crate::serve::postgres_options(&config);
                            hoist_store_postgres::open_read_only(&options).await?
                        }
                    };
                    let live = store.live_versions(&image, None).await?;
                    let current = store.list_tags(&image, "", 100_000).await?;
                    store.close().await;
                    Ok::<_, anyhow::Error>((live, current))
                })
                .context("reading the ledger")?;
            let published: Vec<Version> = live.iter().filter_map(|v| v.tag.parse().ok()).collect();
            let mut planned = decide(&computed, &published, args.prerelease);
            for p in &mut planned {
                p.current = current
                    .iter()
                    .find(|t| t.tag == p.tag)
                    .map(|t| t.digest.clone());
            }
            planned
        }
    };
    Ok(if args.json {
        render_json(&planned, args.image.is_some())
    } else {
        render_text(&planned, args.image.is_some())
    })
}

fn render_text(planned: &[Planned], with_ledger: bool) -> String {
    let mut out = String::new();
    if !with_ledger {
        for p in planned.iter().filter(|p| p.held_back.is_none()) {
            out.push_str(&p.tag);
            out.push('\n');
        }
        return out;
    }
    let width = planned.iter().map(|p| p.tag.len()).max().unwrap_or(0);
    for p in planned {
        let what = match (&p.held_back, &p.current) {
            (Some(reason), _) => format!("held back: {reason}"),
            (None, Some(current)) => format!("moves from {current} to this release"),
            (None, None) => "new".to_owned(),
        };
        out.push_str(&format!("{:<width$}  {:<8}  {what}\n", p.tag, p.role));
    }
    out
}

fn render_json(planned: &[Planned], with_ledger: bool) -> String {
    let tags: Vec<Value> = planned
        .iter()
        .map(|p| {
            let mut v = json!({
                "tag": p.tag,
                "role": p.role,
                "action": if p.held_back.is_some() { "held_back" } else { "write" },
            });
            if let Some(reason) = &p.held_back {
                v["reason"] = json!(reason);
            }
            if with_ledger {
                v["current"] = json!(p.current);
            }
            v
        })
        .collect();
    format!("{}\n", json!({ "tags": tags }))
}
