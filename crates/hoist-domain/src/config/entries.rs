//! Validating the `[[registry]]` and `[[repository]]` tables, one entry at a time.

use super::file::{RegistryEntry, RepositoryEntry};
use super::resolved::{Credentials, Registry, Repository};
use super::validate::{Collector, SecretSource, check_unique};
use crate::ci::WorkflowPattern;
use crate::image::is_valid_host;
use crate::tags::{TagPolicy, TagPolicyError};
use crate::{ImageRef, Platform, RepoName, SourcePattern};

pub(super) fn registry(
    c: &mut Collector,
    source: &dyn SecretSource,
    i: usize,
    entry: &RegistryEntry,
) -> Option<Registry> {
    let base = format!("registry[{i}]");
    let host_ok = is_valid_host(&entry.host);
    if !host_ok {
        c.push(
            format!("{base}.host"),
            format!("{:?} is not a host[:port]", entry.host),
        );
    }
    let has_password = entry.password_env.is_some() || entry.password_file.is_some();
    let credentials = match (entry.anonymous, &entry.username, has_password) {
        (true, None, false) => Some(Credentials::Anonymous),
        (true, _, _) => {
            c.push(
                format!("{base}.anonymous"),
                "anonymous = true cannot be combined with username or password",
            );
            None
        }
        (false, Some(username), true) => {
            let password = c.secret(
                source,
                &base,
                "password",
                entry.password_env.as_deref(),
                entry.password_file.as_deref(),
            );
            password.map(|password| Credentials::Basic {
                username: username.clone(),
                password,
            })
        }
        (false, Some(_), false) => {
            c.push(
                &base,
                "password_env or password_file is required with username",
            );
            None
        }
        (false, None, true) => {
            c.push(format!("{base}.username"), "is required with a password");
            None
        }
        (false, None, false) => {
            c.push(&base, "no credentials: set username and password_env or password_file, or anonymous = true");
            None
        }
    };
    let concurrency_ok = (1..=64).contains(&entry.concurrency);
    if !concurrency_ok {
        c.push(
            format!("{base}.concurrency"),
            format!("{} is out of range: 1 to 64", entry.concurrency),
        );
    }
    let chunk_ok = entry
        .chunk_size
        .is_none_or(|size| (64 * 1024..=512 * 1024 * 1024).contains(&size));
    if !chunk_ok {
        c.push(
            format!("{base}.chunk_size"),
            "is out of range: 65536 (64 KiB) to 536870912 (512 MiB) bytes",
        );
    }
    let token_hosts = match &entry.token_hosts {
        Some(hosts) => hosts.clone(),
        None => default_token_hosts(&entry.host),
    };
    let mut token_hosts_ok = true;
    for (j, host) in token_hosts.iter().enumerate() {
        if !is_valid_host(host) {
            token_hosts_ok = false;
            c.push(
                format!("{base}.token_hosts[{j}]"),
                format!("{host:?} is not a host[:port] (no scheme, no path)"),
            );
        }
    }
    (host_ok && concurrency_ok && chunk_ok && token_hosts_ok).then_some(())?;
    Some(Registry {
        host: entry.host.clone(),
        credentials: credentials?,
        insecure: entry.insecure,
        concurrency: entry.concurrency,
        chunk_size: entry.chunk_size,
        token_hosts,
    })
}

/// Docker Hub's registry sends clients to its token service on another host.
pub fn default_token_hosts(registry: &str) -> Vec<String> {
    let hub = ["docker.io", "index.docker.io", "registry-1.docker.io"];
    if hub.iter().any(|h| h.eq_ignore_ascii_case(registry)) {
        vec!["auth.docker.io".to_owned()]
    } else {
        Vec::new()
    }
}

pub(super) fn repository(
    c: &mut Collector,
    i: usize,
    entry: &RepositoryEntry,
    registries: &[RegistryEntry],
) -> Option<Repository> {
    let base = format!("repository[{i}]");
    let github: Option<RepoName> = c.check(&format!("{base}.github"), entry.github.parse());
    let image: Option<ImageRef> = c.check(&format!("{base}.image"), entry.image.parse());
    let image = image.and_then(|image| {
        if image.tag().is_some() || image.digest().is_some() {
            c.push(
                format!("{base}.image"),
                format!("{:?} must name a repository without tag or digest", entry.image),
            );
            return None;
        }
        if !registries.iter().any(|r| r.host.eq_ignore_ascii_case(image.registry())) {
            c.push(
                format!("{base}.image"),
                format!(
                    "no [[registry]] entry for host {:?} (add one; anonymous = true for a registry without auth)",
                    image.registry()
                ),
            );
            return None;
        }
        Some(image)
    });
    if entry.platforms.is_empty() {
        c.push(
            format!("{base}.platforms"),
            "must list at least one platform, e.g. \"linux/amd64\"",
        );
    }
    let platforms: Vec<Option<Platform>> = entry
        .platforms
        .iter()
        .enumerate()
        .map(|(j, p)| c.check(&format!("{base}.platforms[{j}]"), p.parse()))
        .collect();
    let platforms = platforms.into_iter().collect::<Option<Vec<Platform>>>();
    if let Some(platforms) = &platforms {
        let names = platforms.iter().map(ToString::to_string);
        check_unique(c, &format!("{base}.platforms"), "", names);
    }
    if entry.default_branch.trim().is_empty() || entry.default_branch.starts_with("refs/") {
        c.push(
            format!("{base}.default_branch"),
            format!(
                "{:?} is not a branch name like \"main\"",
                entry.default_branch
            ),
        );
    }
    let mut sources = Vec::new();
    for (j, text) in entry.sources.iter().enumerate() {
        let key = format!("{base}.sources[{j}]");
        let Some(source) = c.check::<SourcePattern, _>(&key, text.parse()) else {
            continue;
        };
        if !registries
            .iter()
            .any(|r| r.host.eq_ignore_ascii_case(source.registry()))
        {
            c.push(
                key,
                format!(
                    "no [[registry]] entry for host {:?}, so hoist cannot read it",
                    source.registry()
                ),
            );
            continue;
        }
        sources.push(source);
    }
    // Each line on its own, so every bad line is reported, not only the first.
    let no_lines: &[&str] = &[];
    for (j, line) in entry.tags.iter().enumerate() {
        if let Err(e) = TagPolicy::parse(std::slice::from_ref(line), no_lines) {
            c.push(format!("{base}.tags[{j}]"), strip_line(&e, "tags[0]: "));
        }
    }
    for (j, line) in entry.flavor.iter().enumerate() {
        if let Err(e) = TagPolicy::parse(no_lines, std::slice::from_ref(line)) {
            c.push(format!("{base}.flavor[{j}]"), strip_line(&e, "flavor[0]: "));
        }
    }
    // Lines that are fine alone can still clash together (e.g. two `latest=` flavors).
    let tag_policy = match TagPolicy::parse(&entry.tags, &entry.flavor) {
        Ok(policy) => Some(policy),
        Err(e) => {
            if !c.has_problem_under(&format!("{base}.tags"))
                && !c.has_problem_under(&format!("{base}.flavor"))
            {
                let message = e.to_string();
                let (line, rest) = message.split_once(": ").unwrap_or(("tags", &message));
                c.push(format!("{base}.{line}"), rest);
            }
            None
        }
    };
    let mut ci_workflows = Vec::new();
    for (j, text) in entry.ci_workflows.iter().enumerate() {
        if let Some(pattern) =
            c.check::<WorkflowPattern, _>(&format!("{base}.ci_workflows[{j}]"), text.parse())
        {
            ci_workflows.push(pattern);
        }
    }
    let image = image?;
    if entry.sources.is_empty() {
        sources.push(SourcePattern::exact(&image));
    }
    Some(Repository {
        github: github?,
        image,
        sources,
        webhook_secrets: Vec::new(),
        ci_workflows,
        platforms: platforms?,
        tags: entry.tags.clone(),
        flavor: entry.flavor.clone(),
        default_branch: entry.default_branch.clone(),
        tag_policy: tag_policy?,
    })
}

/// The message of an error about a single line parsed alone, without its `tags[0]: `.
fn strip_line(error: &TagPolicyError, prefix: &str) -> String {
    let message = error.to_string();
    message
        .strip_prefix(prefix)
        .map(str::to_owned)
        .unwrap_or(message)
}
