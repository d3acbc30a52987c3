use std::collections::HashMap;

use secrecy::ExposeSecret;

use super::*;

const TOKEN: &str = "ci-token-0123456789abcdef";

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn full_env() -> HashMap<String, String> {
    env(&[
        ("HOIST_WEBHOOK_SECRET", "new-secret, old-secret"),
        ("HOIST_CI_TOKEN", TOKEN),
        ("HOIST_API_TOKEN", "api-token-0123456789abcdef"),
        ("GHCR_TOKEN", "ghp_registrysecretvalue"),
    ])
}

const FULL: &str = r#"
[server]
listen = "0.0.0.0:9000"

[database]
url = "sqlite://var/hoist.db"

[github]
webhook_secret_env = "HOIST_WEBHOOK_SECRET"

[[ci_token]]
name = "ci"
token_env = "HOIST_CI_TOKEN"
repositories = ["octo-org/*"]

[[api_token]]
name = "ops"
token_env = "HOIST_API_TOKEN"
role = "admin"

[publish]
workers = 3
wait_timeout = "2h"

[[registry]]
host = "ghcr.io"
username = "octo-bot"
password_env = "GHCR_TOKEN"

[[registry]]
host = "localhost:5000"
anonymous = true
insecure = true

[[repository]]
github = "octo-org/app"
image = "ghcr.io/octo-org/app"
platforms = ["linux/amd64", "linux/arm64"]

[[repository]]
github = "octo-org/tool"
image = "localhost:5000/octo-org/tool"
platforms = ["linux/arm/v7"]
tags = ["type=raw,value=edge"]
flavor = ["latest=false"]
"#;

fn problems(toml: &str, vars: &HashMap<String, String>) -> Vec<String> {
    let file = ConfigFile::parse(toml, "test.toml").expect("parses");
    match file.validate(vars) {
        Ok(_) => Vec::new(),
        Err(Problems(list)) => list.iter().map(ToString::to_string).collect(),
    }
}

fn assert_problem(toml: &str, vars: &HashMap<String, String>, expected: &str) {
    let found = problems(toml, vars);
    assert!(
        found.iter().any(|p| p == expected),
        "expected problem {expected:?}, found {found:#?}"
    );
}

#[test]
fn empty_file_gives_the_documented_defaults() {
    let config = ConfigFile::parse("", "empty")
        .unwrap()
        .validate(&env(&[]))
        .unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.server.request_timeout.as_secs(), 30);
    assert_eq!(config.server.shutdown_timeout.as_secs(), 10);
    assert_eq!(config.database.url, "sqlite://data/hoist.db");
    assert_eq!(config.database.read_connections, 4);
    assert_eq!(config.publish.workers, 2);
    assert_eq!(config.publish.wait_timeout.as_secs(), 6 * 3600);
    assert_eq!(config.publish.lease.as_secs(), 300);
    assert_eq!(config.server.webhook_bodies, 16);
    assert_eq!(config.server.webhook_body_timeout.as_secs(), 10);
    assert_eq!(config.retention.as_secs(), 90 * 86_400);
    assert!(config.github.webhook_secrets.is_empty());
    assert!(config.repositories.is_empty());
}

#[test]
fn retention_and_ingress_bounds_are_checked() {
    assert_problem(
        "[retention]\ndays = 6\n",
        &env(&[]),
        "retention.days: 6 is out of range: 7 to 36500",
    );
    assert_problem(
        "[retention]\ndays = 0\n",
        &env(&[]),
        "retention.days: 0 is out of range: 7 to 36500",
    );
    assert_problem(
        "[server]\nwebhook_bodies = 0\n",
        &env(&[]),
        "server.webhook_bodies: 0 is out of range: 1 to 1024",
    );
    let kept = ConfigFile::parse("[retention]\ndays = 30\n", "t")
        .unwrap()
        .validate(&env(&[]))
        .unwrap();
    assert_eq!(kept.retention.as_secs(), 30 * 86_400);
}

#[test]
fn full_config_resolves_every_section() {
    let config = ConfigFile::parse(FULL, "full")
        .unwrap()
        .validate(&full_env())
        .unwrap();
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(config.publish.workers, 3);
    let secrets: Vec<&str> = config
        .github
        .webhook_secrets
        .iter()
        .map(|s| s.expose_secret())
        .collect();
    assert_eq!(secrets, ["new-secret", "old-secret"]);
    assert_eq!(config.ci_tokens[0].token.expose_secret(), TOKEN);
    assert!(config.ci_tokens[0].allows(&"Octo-Org/anything".parse().unwrap()));
    assert!(!config.ci_tokens[0].allows(&"other/app".parse().unwrap()));
    assert_eq!(config.api_tokens[0].role, Role::Admin);
    let app = config.repository(&"octo-org/app".parse().unwrap()).unwrap();
    assert_eq!(app.platforms.len(), 2);
    assert_eq!(app.tags.len(), 4, "default tags apply");
    assert_eq!(app.flavor, ["latest=auto"]);
    let registry = config.registry_for(&app.image).unwrap();
    assert!(
        matches!(&registry.credentials, Credentials::Basic { username, .. } if username == "octo-bot")
    );
    let tool = config
        .repository(&"octo-org/tool".parse().unwrap())
        .unwrap();
    let registry = config.registry_for(&tool.image).unwrap();
    assert!(matches!(registry.credentials, Credentials::Anonymous));
    assert!(registry.insecure);
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let config = ConfigFile::parse(FULL, "full")
        .unwrap()
        .validate(&full_env())
        .unwrap();
    let debug = format!("{config:?} {config:#?}");
    for secret in full_env().values().flat_map(|v| v.split(", ")) {
        assert!(
            !debug.contains(secret),
            "{secret:?} leaked into Debug output"
        );
    }
    assert!(debug.contains("REDACTED"));
}

#[test]
fn unknown_keys_are_parse_errors_with_a_location() {
    let err =
        ConfigFile::parse("[server]\nlisten = \"x\"\nlistne = \"y\"\n", "cfg.toml").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("cfg.toml: "), "{text}");
    assert!(text.contains("listne"), "{text}");
    assert!(text.contains("line 3"), "{text}");
    assert!(ConfigFile::parse("[[repo]]\n", "cfg.toml").is_err());
}

#[test]
fn every_problem_is_listed_with_its_key_path() {
    let toml = r#"
[server]
listen = "localhost"
request_timeout = "soon"
[database]
url = "postgres://x"
read_connections = 0
[publish]
workers = 0
wait_timeout = "0s"
lease = "1s"
[[repository]]
github = "octo-org/app"
image = "ghcr.io/octo-org/app"
platforms = ["linux/amd65", "linux/arm64"]
"#;
    let found = problems(toml, &env(&[]));
    let expected = [
        "server.listen: \"localhost\" is not an address like 127.0.0.1:8080",
        "server.request_timeout: \"soon\" is not a duration like \"30s\" or \"6h\": unknown time unit \"soon\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)",
        "database.url: \"postgres://x\" names no database: expected postgres://user@host:port/database",
        "database.read_connections: must be between 1 and 64",
        "publish.workers: must be between 1 and 64",
        "publish.wait_timeout: \"0s\" must be longer than zero",
        "publish.lease: must be between 3s and 1h",
        "repository[0].image: no [[registry]] entry for host \"ghcr.io\" (add one; anonymous = true for a registry without auth)",
        "repository[0].platforms[0]: \"linux/amd65\" is not a known architecture (did you mean amd64?)",
    ];
    for e in expected {
        assert!(
            found
                .iter()
                .any(|p| p.starts_with(e.split(": unknown").next().unwrap())),
            "missing {e:?} in {found:#?}"
        );
    }
    assert_eq!(found.len(), expected.len(), "{found:#?}");
}

#[test]
fn referenced_env_var_must_be_set_and_non_empty() {
    let toml = "[github]\nwebhook_secret_env = \"HOIST_WEBHOOK_SECRET\"\n";
    assert_problem(
        toml,
        &env(&[]),
        "github.webhook_secret_env: environment variable \"HOIST_WEBHOOK_SECRET\" is not set",
    );
    assert_problem(
        toml,
        &env(&[("HOIST_WEBHOOK_SECRET", "")]),
        "github.webhook_secret_env: the secret is empty",
    );
}

#[test]
fn referenced_file_must_exist_and_its_trailing_newline_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    let toml = format!(
        "[[ci_token]]\nname = \"ci\"\ntoken_file = {:?}\nrepositories = [\"o/*\"]\n",
        path.display().to_string()
    );
    let found = problems(&toml, &env(&[]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(&format!(
            "ci_token[0].token_file: cannot read {:?}",
            path.display().to_string()
        )),
        "{found:?}"
    );

    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    let config = ConfigFile::parse(&toml, "t")
        .unwrap()
        .validate(&env(&[]))
        .unwrap();
    assert_eq!(config.ci_tokens[0].token.expose_secret(), TOKEN);
}

#[test]
fn a_secret_needs_exactly_one_source() {
    let both = "[[api_token]]\nname = \"ops\"\ntoken_env = \"A\"\ntoken_file = \"/x\"\n";
    assert_problem(
        both,
        &env(&[]),
        "api_token[0].token_env: set either token_env or token_file, not both",
    );
    let neither = "[[api_token]]\nname = \"ops\"\n";
    assert_problem(
        neither,
        &env(&[]),
        "api_token[0]: token_env or token_file is required",
    );
}

#[test]
fn tokens_must_be_long_unique_and_well_scoped() {
    let short = "[[ci_token]]\nname = \"ci\"\ntoken_env = \"T\"\nrepositories = [\"o/*\"]\n";
    assert_problem(
        short,
        &env(&[("T", "short")]),
        "ci_token[0].token_env: the token is shorter than 16 characters",
    );

    let scoped = "[[ci_token]]\nname = \"ci\"\ntoken_env = \"T\"\nrepositories = []\n[[ci_token]]\nname = \"ci2\"\ntoken_env = \"T2\"\nrepositories = [\"no-slash\"]\n";
    let vars = env(&[("T", TOKEN), ("T2", "another-token-0123456789")]);
    assert_problem(
        scoped,
        &vars,
        "ci_token[0].repositories: must name at least one repository or glob (e.g. \"octo-org/*\")",
    );
    assert_problem(
        scoped,
        &vars,
        "ci_token[1].repositories[0]: \"no-slash\" is not a GitHub repository: expected owner/name",
    );

    let dup = "[[ci_token]]\nname = \"ci\"\ntoken_env = \"T\"\nrepositories = [\"o/*\"]\n[[ci_token]]\nname = \"ci\"\ntoken_env = \"T\"\nrepositories = [\"o/*\"]\n[[api_token]]\nname = \"ops\"\ntoken_env = \"T\"\nrole = \"root\"\n";
    let vars = env(&[("T", TOKEN)]);
    assert_problem(
        dup,
        &vars,
        "ci_token[1].name: \"ci\" is already used by ci_token[0].name",
    );
    assert_problem(
        dup,
        &vars,
        "ci_token[1]: uses the same token as ci_token[0]",
    );
    assert_problem(
        dup,
        &vars,
        "api_token[0].role: \"root\" is not a role: \"read\" or \"admin\"",
    );
}

#[test]
fn registry_entries_need_usable_credentials() {
    let cases = [
        (
            "host = \"ghcr.io\"",
            "registry[0]: no credentials: set username and password_env or password_file, or anonymous = true",
        ),
        (
            "host = \"ghcr.io\"\nusername = \"u\"",
            "registry[0]: password_env or password_file is required with username",
        ),
        (
            "host = \"ghcr.io\"\npassword_env = \"P\"",
            "registry[0].username: is required with a password",
        ),
        (
            "host = \"ghcr.io\"\nanonymous = true\nusername = \"u\"",
            "registry[0].anonymous: anonymous = true cannot be combined with username or password",
        ),
        (
            "host = \"ghcr io\"\nanonymous = true",
            "registry[0].host: \"ghcr io\" is not a host[:port]",
        ),
        (
            "host = \"ghcr.io\"\nusername = \"u\"\npassword_env = \"MISSING\"",
            "registry[0].password_env: environment variable \"MISSING\" is not set",
        ),
        (
            "host = \"ghcr.io\"\nanonymous = true\ntoken_hosts = [\"https://auth.example/token\"]",
            "registry[0].token_hosts[0]: \"https://auth.example/token\" is not a host[:port] (no scheme, no path)",
        ),
    ];
    for (entry, expected) in cases {
        assert_problem(
            &format!("[[registry]]\n{entry}\n"),
            &env(&[("P", "x")]),
            expected,
        );
    }
    let dup = "[[registry]]\nhost = \"ghcr.io\"\nanonymous = true\n[[registry]]\nhost = \"GHCR.io\"\nanonymous = true\n";
    assert_problem(
        dup,
        &env(&[]),
        "registry[1].host: \"ghcr.io\" is already used by registry[0].host",
    );
}

#[test]
fn token_hosts_default_to_docker_hub_s_token_service_for_docker_hub_only() {
    let resolved = |entry: &str| {
        let file = ConfigFile::parse(&format!("[[registry]]\n{entry}\nanonymous = true\n"), "t")
            .expect("parses");
        file.validate(&env(&[])).expect("valid").registries[0]
            .token_hosts
            .clone()
    };
    assert_eq!(resolved("host = \"docker.io\""), ["auth.docker.io"]);
    assert_eq!(
        resolved("host = \"registry-1.docker.io\""),
        ["auth.docker.io"]
    );
    assert!(resolved("host = \"ghcr.io\"").is_empty());
    assert_eq!(
        resolved("host = \"docker.io\"\ntoken_hosts = [\"auth.example:8443\"]"),
        ["auth.example:8443"]
    );
}

#[test]
fn repositories_are_checked_one_by_one_and_against_each_other() {
    let toml = r#"
[[registry]]
host = "ghcr.io"
anonymous = true
[[repository]]
github = "octo-org/app"
image = "ghcr.io/octo-org/app:latest"
platforms = []
[[repository]]
github = "Octo-Org/App"
image = "ghcr.io/Octo-Org/app"
platforms = ["linux/amd64", "linux/amd64"]
tags = [" "]
[[repository]]
github = "not a repo"
image = "octo-org/app"
platforms = ["linux"]
[[repository]]
github = "octo-org/other"
image = "ghcr.io/octo-org/app"
platforms = ["linux/amd64"]
flavor = [""]
"#;
    let found = problems(toml, &env(&[]));
    let expected = [
        "repository[0].image: \"ghcr.io/octo-org/app:latest\" must name a repository without tag or digest",
        "repository[0].platforms: must list at least one platform, e.g. \"linux/amd64\"",
        "repository[1].image: \"ghcr.io/Octo-Org/app\" has an invalid repository path \"Octo-Org/app\": lowercase letters, digits and . _ - separators between components",
        "repository[1].platforms[1]: \"linux/amd64\" is already used by repository[1].platforms[0]",
        "repository[1].tags[0]: empty line",
        "repository[2].github: \"not a repo\" is not a GitHub repository: expected owner/name",
        "repository[2].image: \"octo-org/app\" has no registry host: write it in full, e.g. ghcr.io/owner/name",
        "repository[2].platforms[0]: \"linux\" is not a platform: expected os/arch or os/arch/variant",
        "repository[3].flavor[0]: empty line",
        "repository[1].github: \"octo-org/app\" is already used by repository[0].github",
        "repository[3].image: \"ghcr.io/octo-org/app\" is already used by repository[0].image",
    ];
    for e in expected {
        assert!(found.iter().any(|p| p == e), "missing {e:?} in {found:#?}");
    }
    assert_eq!(found.len(), expected.len(), "{found:#?}");
}

#[test]
fn unchecked_secrets_validate_everything_but_the_secrets() {
    let config = ConfigFile::parse(FULL, "full")
        .unwrap()
        .validate(&UncheckedSecrets)
        .unwrap();
    assert_eq!(config.ci_tokens.len(), 1);
    let broken = FULL.replace("linux/arm64", "linux/arm65");
    let err = ConfigFile::parse(&broken, "b")
        .unwrap()
        .validate(&UncheckedSecrets)
        .unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
}

#[test]
fn tokens_are_found_by_value_only() {
    let config = ConfigFile::parse(FULL, "full")
        .unwrap()
        .validate(&full_env())
        .unwrap();
    assert_eq!(config.ci_token(TOKEN).unwrap().name, "ci");
    assert!(config.ci_token("api-token-0123456789abcdef").is_none());
    assert_eq!(
        config.api_token("api-token-0123456789abcdef").unwrap().name,
        "ops"
    );
    assert!(config.api_token(&TOKEN[..TOKEN.len() - 1]).is_none());
    assert!(config.ci_token("").is_none());
}

#[test]
fn tag_and_flavor_lines_are_parsed_and_every_bad_one_named() {
    let toml = r#"
[[registry]]
host = "ghcr.io"
anonymous = true
[[repository]]
github = "o/a"
image = "ghcr.io/o/a"
platforms = ["linux/amd64"]
tags = ["type=semver,pattern={{version}}", "type=semvr,pattern={{version}}", "type=sha,prefx=x-"]
flavor = ["latest=sometimes"]
"#;
    let found = problems(toml, &env(&[]));
    assert_eq!(found.len(), 3, "{found:#?}");
    assert_eq!(found[0], "repository[0].tags[1]: unknown type \"semvr\"");
    assert!(
        found[1].starts_with("repository[0].tags[2]: unknown attribute \"prefx\""),
        "{found:#?}"
    );
    assert!(
        found[2].starts_with("repository[0].flavor[0]: "),
        "{found:#?}"
    );
}

#[test]
fn default_branch_defaults_to_main_and_must_be_a_branch_name() {
    let config = ConfigFile::parse(FULL, "full")
        .unwrap()
        .validate(&full_env())
        .unwrap();
    assert_eq!(config.repositories[0].default_branch, "main");
    let toml = FULL.replacen(
        "platforms = [\"linux/arm/v7\"]",
        "platforms = [\"linux/arm/v7\"]\ndefault_branch = \"refs/heads/main\"",
        1,
    );
    assert_problem(
        &toml,
        &full_env(),
        "repository[1].default_branch: \"refs/heads/main\" is not a branch name like \"main\"",
    );
}

#[test]
fn the_github_api_needs_a_url_and_a_token_together() {
    let both = "[github]\napi_url = \"https://api.github.com/\"\ntoken_env = \"GH\"\n";
    let config = ConfigFile::parse(both, "t")
        .unwrap()
        .validate(&env(&[("GH", "ghp_x")]))
        .unwrap();
    let api = config.github.api.unwrap();
    assert_eq!(api.url, "https://api.github.com");
    assert_problem(
        "[github]\ntoken_env = \"GH\"\n",
        &env(&[("GH", "x")]),
        "github.api_url: is required with token_env or token_file",
    );
    assert_problem(
        "[github]\napi_url = \"https://api.github.com\"\n",
        &env(&[]),
        "github: token_env or token_file is required",
    );
    assert_problem(
        "[github]\napi_url = \"api.github.com\"\ntoken_env = \"GH\"\n",
        &env(&[("GH", "x")]),
        "github.api_url: \"api.github.com\" is not an https URL",
    );
    // The token goes with every request: never over plain http off this machine.
    assert_problem(
        "[github]\napi_url = \"http://github.example/api/v3\"\ntoken_env = \"GH\"\n",
        &env(&[("GH", "x")]),
        "github.api_url: \"http://github.example/api/v3\" must be https: plain http is accepted only on a loopback address",
    );
    assert_problem(
        "[github]\napi_url = \"https://github.example/api?x=1\"\ntoken_env = \"GH\"\n",
        &env(&[("GH", "x")]),
        "github.api_url: \"https://github.example/api?x=1\" is not an https URL without query, fragment or user",
    );
    let local = "[github]\napi_url = \"http://127.0.0.1:9/\"\ntoken_env = \"GH\"\n";
    assert!(problems(local, &env(&[("GH", "x")])).is_empty());
}

#[test]
fn sources_default_to_the_image_and_each_must_be_a_readable_repository() {
    let base = r#"
[[registry]]
host = "ghcr.io"
anonymous = true
[[repository]]
github = "octo-org/app"
image = "ghcr.io/octo-org/app"
platforms = ["linux/amd64"]
"#;
    let config = ConfigFile::parse(base, "t")
        .unwrap()
        .validate(&env(&[]))
        .unwrap();
    let sources: Vec<String> = config.repositories[0]
        .sources
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(sources, ["ghcr.io/octo-org/app"]);

    let with = format!(
        "{base}sources = [\"ghcr.io/octo-org/ci-*\", \"ghcr.io/*/ci\", \"quay.io/octo-org/ci\"]\n"
    );
    let found = problems(&with, &env(&[]));
    assert_eq!(
        found,
        [
            "repository[0].sources[1]: \"ghcr.io/*/ci\" is not a source: write registry/repository, \
             with at most one * in the last segment (e.g. ghcr.io/octo-org/ci-*)",
            "repository[0].sources[2]: no [[registry]] entry for host \"quay.io\", so hoist cannot read it",
        ]
    );
}

#[test]
fn a_repository_s_own_webhook_secret_is_read_and_checked_like_the_global_one() {
    let base = r#"
[[registry]]
host = "ghcr.io"
anonymous = true
[[repository]]
github = "octo-org/app"
image = "ghcr.io/octo-org/app"
platforms = ["linux/amd64"]
webhook_secret_env = "APP_WEBHOOK_SECRET"
"#;
    let config = ConfigFile::parse(base, "t")
        .unwrap()
        .validate(&env(&[("APP_WEBHOOK_SECRET", "new, old")]))
        .unwrap();
    let secrets: Vec<&str> = config.repositories[0]
        .webhook_secrets
        .iter()
        .map(|s| s.expose_secret())
        .collect();
    assert_eq!(secrets, ["new", "old"], "a comma list rotates");
    let found = problems(base, &env(&[]));
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("repository[0].webhook_secret_env: ")),
        "{found:#?}"
    );
    assert_problem(
        base,
        &env(&[("APP_WEBHOOK_SECRET", " , ")]),
        "repository[0].webhook_secret_env: holds no secret, only commas or blanks",
    );
    let shared = format!("[github]\nwebhook_secret_env = \"GLOBAL\"\n{base}");
    assert_problem(
        &shared,
        &env(&[("GLOBAL", "one, two"), ("APP_WEBHOOK_SECRET", "two")]),
        "repository[0].webhook_secret_env: is also a webhook secret of github; a repository's secret must be its own",
    );
    let both = format!("{base}webhook_secret_file = \"/run/secrets/app\"\n");
    assert_problem(
        &both,
        &env(&[("APP_WEBHOOK_SECRET", "x")]),
        "repository[0].webhook_secret_env: set either webhook_secret_env or webhook_secret_file, not both",
    );
}

#[test]
fn oidc_is_on_with_an_audience_and_its_issuer_must_be_https_off_loopback() {
    let on = |extra: &str| {
        ConfigFile::parse(
            &format!("[github]\noidc_audience = \"hoist\"\n{extra}"),
            "t",
        )
        .unwrap()
        .validate(&env(&[]))
    };
    let oidc = on("").unwrap().github.oidc.unwrap();
    assert_eq!(oidc.issuer, GITHUB_ACTIONS_ISSUER);
    assert_eq!(oidc.audience, "hoist");
    let local = on("oidc_issuer = \"http://127.0.0.1:4567/\"\n").unwrap();
    assert_eq!(local.github.oidc.unwrap().issuer, "http://127.0.0.1:4567");
    on("oidc_issuer = \"http://[::1]:4567\"\n").unwrap();
    on("oidc_issuer = \"http://localhost:4567/issuer\"\n").unwrap();
    assert!(
        ConfigFile::parse("", "t")
            .unwrap()
            .validate(&env(&[]))
            .unwrap()
            .github
            .oidc
            .is_none(),
        "off by default"
    );
    let empty = &env(&[]);
    assert_problem(
        "[github]\noidc_audience = \"hoist\"\noidc_issuer = \"http://issuer.example\"\n",
        empty,
        "github.oidc_issuer: \"http://issuer.example\" must be https: plain http is accepted only on a loopback address",
    );
    assert_problem(
        "[github]\noidc_audience = \"hoist\"\noidc_issuer = \"token.actions.githubusercontent.com\"\n",
        empty,
        "github.oidc_issuer: \"token.actions.githubusercontent.com\" is not an https URL",
    );
    assert_problem(
        "[github]\noidc_audience = \"hoist\"\noidc_issuer = \"https://user@issuer.example\"\n",
        empty,
        "github.oidc_issuer: \"https://user@issuer.example\" is not an https URL without query, fragment or user",
    );
    assert_problem(
        "[github]\noidc_audience = \" \"\n",
        empty,
        "github.oidc_audience: \" \" is not an audience: write the aud your workflows request, e.g. \"hoist\"",
    );
    assert_problem(
        "[github]\noidc_issuer = \"https://issuer.example\"\n",
        empty,
        "github.oidc_issuer: has no effect without oidc_audience, which turns OIDC on",
    );
    let bad_workflow = FULL.replace(
        "github = \"octo-org/app\"",
        "github = \"octo-org/app\"\nci_workflows = [\"octo-org/app/.github/workflows/release.yml@*\", \"release.yml\"]",
    );
    let found = problems(&bad_workflow, &full_env());
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0]
            .starts_with("repository[0].ci_workflows[1]: \"release.yml\" is not a workflow glob"),
        "{found:#?}"
    );
}

#[test]
fn a_postgres_database_takes_its_password_from_env_or_file_never_from_the_url() {
    let pg = |extra: &str| {
        format!("[database]\nurl = \"postgres://hoist@db:5432/hoist?sslmode=verify-full\"\n{extra}")
    };
    let config = ConfigFile::parse(
        &pg("password_env = \"PGPASS\"\nmax_connections = 20"),
        "pg.toml",
    )
    .expect("parse")
    .validate(&env(&[("PGPASS", "s3cret\n")]))
    .expect("valid");
    assert_eq!(config.database.kind, DatabaseKind::Postgres);
    assert_eq!(config.database.max_connections, 20);
    let password = config.database.password.as_ref().expect("password");
    assert_eq!(password.expose_secret(), "s3cret");
    assert!(
        !format!("{config:?}").contains("s3cret"),
        "the password stays out of Debug"
    );

    let open = ConfigFile::parse(&pg(""), "pg.toml")
        .expect("parse")
        .validate(&env(&[]))
        .expect("valid");
    assert!(
        open.database.password.is_none(),
        "trust or certificate auth: no password"
    );
    let sqlite = ConfigFile::parse("", "empty")
        .expect("parse")
        .validate(&env(&[]))
        .expect("valid");
    assert_eq!(sqlite.database.kind, DatabaseKind::Sqlite);

    for (toml, expected) in [
        (
            "[database]\nurl = \"postgres://hoist:hunter2@db/hoist\"".to_owned(),
            "database.url: \"postgres://hoist:***@db/hoist\" holds a password: give it with database.password_env or password_file",
        ),
        (
            "[database]\nurl = \"postgres://hoist@db/hoist?password=hunter2\"".to_owned(),
            "database.url: \"postgres://hoist@db/hoist?password=***\" holds a password: give it with database.password_env or password_file",
        ),
        // The driver decodes the query: an escaped key is the same key.
        (
            "[database]\nurl = \"postgres://hoist@db/hoist?pass%77ord=hunter2\"".to_owned(),
            "database.url: \"postgres://hoist@db/hoist?pass%77ord=***\" holds a password: give it with database.password_env or password_file",
        ),
        // A query before the path is still the query, and the database is not in it.
        (
            "[database]\nurl = \"postgres://hoist@db?password=hunter2&x=/hoist\"".to_owned(),
            "database.url: \"postgres://hoist@db?password=***&x=/hoist\" holds a password: give it with database.password_env or password_file",
        ),
        (
            "[database]\nurl = \"postgres://hoist@db?dbname=hoist\"".to_owned(),
            "database.url: \"postgres://hoist@db?dbname=hoist\" names no database: expected postgres://user@host:port/database",
        ),
        // What the URL itself says cannot be said again, differently, in the query.
        (
            "[database]\nurl = \"postgres://hoist@db/hoist?host=elsewhere\"".to_owned(),
            "database.url: \"postgres://hoist@db/hoist?host=elsewhere\" has \"host\" in its query: only sslmode, sslrootcert, sslcert and sslkey (lower case, as the driver reads them) are taken there; host, port, user and database belong in the URL itself",
        ),
        (
            "[database]\nurl = \"postgres://hoist@db/hoist?options=-c%20default_transaction_read_only%3Don\"".to_owned(),
            "database.url: \"postgres://hoist@db/hoist?options=-c%20default_transaction_read_only%3Don\" has \"options\" in its query: only sslmode, sslrootcert, sslcert and sslkey (lower case, as the driver reads them) are taken there; host, port, user and database belong in the URL itself",
        ),
        (
            "[database]\nurl = \"postgres://hoist:hunt/er2@db/hoist\"".to_owned(),
            "database.url: \"postgres://hoist:***@db/hoist\" holds a password: give it with database.password_env or password_file",
        ),
        (
            "[database]\nurl = \"postgres://hoist@db/hoist?SSLMODE=verify-full\"".to_owned(),
            "database.url: \"postgres://hoist@db/hoist?SSLMODE=verify-full\" has \"SSLMODE\" in its query: only sslmode, sslrootcert, sslcert and sslkey (lower case, as the driver reads them) are taken there; host, port, user and database belong in the URL itself",
        ),
        // The driver takes the last of a repeated key, a reader of the config the first.
        (
            "[database]\nurl = \"postgres://hoist@db/hoist?sslmode=verify-full&sslmode=disable\"".to_owned(),
            "database.url: \"postgres://hoist@db/hoist?sslmode=verify-full&sslmode=disable\" has \"sslmode\" twice in its query: say it once",
        ),
        (
            "[database]\nurl = \"mysql://root:hunter2@db/hoist\"".to_owned(),
            "database.url: \"mysql://root:***@db/hoist\" is neither sqlite://path/to/file.db nor postgres://user@host:port/database",
        ),
        (
            "[database]\nurl = \"postgres://hoist@db/hoist?sslmode=on\"".to_owned(),
            "database.url: \"postgres://hoist@db/hoist?sslmode=on\" has sslmode=\"on\": expected one of disable, allow, prefer, require, verify-ca, verify-full",
        ),
        (
            "[database]\nurl = \"postgres:///hoist\"".to_owned(),
            "database.url: \"postgres:///hoist\" names no host: expected postgres://user@host:port/database",
        ),
        (
            "[database]\nurl = \"mysql://db/hoist\"".to_owned(),
            "database.url: \"mysql://db/hoist\" is neither sqlite://path/to/file.db nor postgres://user@host:port/database",
        ),
        (
            "[database]\npassword_env = \"PGPASS\"".to_owned(),
            "database: password_env and password_file are for PostgreSQL; SQLite has no password",
        ),
        (
            pg("password_env = \"MISSING\""),
            "database.password_env: environment variable \"MISSING\" is not set",
        ),
        (
            pg("max_connections = 1"),
            "database.max_connections: must be between 2 and 500",
        ),
    ] {
        assert_problem(&toml, &env(&[]), expected);
        let shown = problems(&toml, &env(&[]));
        assert!(
            !shown.iter().any(|p| p.contains("hunter2")),
            "a problem shows the password: {shown:#?}"
        );
    }
}
