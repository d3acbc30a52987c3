//! The `hoist` binary: command-line parsing, logging set-up, and the commands.

mod backup;
mod config_load;
mod copy;
mod healthcheck;
mod logging;
mod plan;
mod serve;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("HOIST_GIT_SHA"),
    ", built ",
    env!("HOIST_BUILD_TIME"),
    ")"
);

/// Publishes container images to OCI registries from GitHub releases and CI builds.
#[derive(Debug, Parser)]
#[command(name = "hoist", version = VERSION)]
struct Cli {
    /// Configuration file (TOML). Without one, built-in defaults apply: listen on
    /// 127.0.0.1:8080, database sqlite://data/hoist.db.
    #[arg(long, short = 'c', env = "HOIST_CONFIG", global = true)]
    config: Option<PathBuf>,

    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, env = "HOIST_LOG_FORMAT", default_value = "text", global = true)]
    log_format: logging::Format,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: the HTTP API on `server.listen`, until SIGTERM or SIGINT.
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Write a consistent copy of the database to PATH, safe while hoist runs.
    ///
    /// Refuses to overwrite an existing file; checks the copy's integrity. To restore: stop
    /// hoist, replace the database file with the copy (delete its old -wal and -shm files),
    /// start hoist.
    Backup {
        /// The new file to write; it must not exist.
        path: PathBuf,
    },
    /// Copy a SQLite database (hoist stopped) into the configured PostgreSQL database, which
    /// must be new and empty: every row with its id, the ledger included, in one
    /// transaction. Moving off SQLite: docs/deploy.md.
    ImportSqlite {
        /// The SQLite database, sqlite://path/to/hoist.db or a path.
        source: String,
    },
    /// Work with the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the tags a release or push would get, from metadata-action lines or from a
    /// configured repository's policy and ledger.
    Plan(plan::PlanArgs),
    /// Exit 0 when the running daemon answers /readyz with 200 (for container HEALTHCHECKs).
    Healthcheck {
        /// Readiness URL; by default derived from the config's `server.listen`.
        #[arg(long, env = "HOIST_HEALTHCHECK_URL")]
        url: Option<String>,
        /// Seconds to wait for an answer.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
    /// Copy an image, or an index with all its platforms, from one registry to another
    /// (like `skopeo copy --all`). Credentials come from the config's [[registry]] entries
    /// unless given here.
    Copy {
        /// Source: host[:port]/path:tag or host[:port]/path@sha256:...
        source: String,
        /// Target: host[:port]/path[:tag]; without a tag, the source's tag is used.
        target: String,
        /// Source registry credentials, USER:PASS.
        #[arg(long = "src-creds", env = "HOIST_SRC_CREDS", hide_env_values = true)]
        src_creds: Option<String>,
        /// Target registry credentials, USER:PASS.
        #[arg(long = "dest-creds", env = "HOIST_DEST_CREDS", hide_env_values = true)]
        dest_creds: Option<String>,
        /// Use plain http for this registry host (repeatable; local registries only).
        #[arg(long = "insecure-registry", value_name = "HOST")]
        insecure_registry: Vec<String>,
        /// Let REGISTRY's credentials go to the token service on HOST[:PORT], off the
        /// registry's own origin (repeatable; as `token_hosts` of a [[registry]] entry).
        #[arg(long = "token-host", value_name = "REGISTRY=HOST")]
        token_host: Vec<String>,
    },
    /// Check hoist's signature and publication attestation of an image (the index a tag or
    /// digest names) and print where it came from: release, commit, platforms, CI runs.
    /// Exit 1, saying why, when either is missing or does not verify with the key.
    Verify {
        /// host[:port]/path[:tag|@sha256:...]; without either, the tag `latest`.
        image: String,
        /// The public key(s), PEM, as `GET /v1/signing/keys` serves them.
        #[arg(long, value_name = "PUB.pem")]
        key: PathBuf,
        /// Registry credentials, USER:PASS (else the config's [[registry]] entry, else
        /// anonymous).
        #[arg(long, env = "HOIST_CREDS", hide_env_values = true)]
        creds: Option<String>,
        /// Use plain http for this registry host (repeatable; local registries only).
        #[arg(long = "insecure-registry", value_name = "HOST")]
        insecure_registry: Vec<String>,
        /// Also require the image to be what hoist published for this release tag (e.g.
        /// v1.2.3): a tag pointed at another signed index is refused.
        #[arg(long, value_name = "TAG")]
        release: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file and the secrets it names; list every problem.
    Check {
        /// File to check; defaults to --config / HOIST_CONFIG.
        path: Option<PathBuf>,
        /// Check everything but the secrets: do not read the environment variables and
        /// files the config names (for checking a config where they are not available).
        #[arg(long)]
        no_secrets: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config(ConfigCommand::Check { path, no_secrets }) => {
            config_load::check(path.as_deref().or(cli.config.as_deref()), no_secrets)
        }
        Command::Healthcheck { url, timeout } => {
            healthcheck::run(cli.config.as_deref(), url.as_deref(), timeout)
        }
        Command::Plan(args) => match plan::run(cli.config.as_deref(), &args) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hoist plan: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Serve => {
            logging::init(cli.log_format);
            run_async(serve::serve(cli.config))
        }
        Command::Copy {
            source,
            target,
            src_creds,
            dest_creds,
            insecure_registry,
            token_host,
        } => {
            logging::init(cli.log_format);
            let args = copy::CopyArgs {
                source,
                target,
                source_credentials: src_creds,
                target_credentials: dest_creds,
                insecure_registries: insecure_registry,
                token_hosts: token_host,
            };
            run_async(copy::run(cli.config.as_deref(), args))
        }
        Command::Verify {
            image,
            key,
            creds,
            insecure_registry,
            release,
        } => {
            logging::init(cli.log_format);
            let args = verify::VerifyArgs {
                image,
                key,
                credentials: creds,
                insecure_registries: insecure_registry,
                release,
            };
            // The verdict is the output: one line on stdout, or the reason on stderr.
            match block_on(verify::run(cli.config.as_deref(), args)) {
                Some(Ok(line)) => {
                    #[expect(clippy::print_stdout, reason = "the command's output")]
                    {
                        println!("{line}");
                    }
                    ExitCode::SUCCESS
                }
                Some(Err(e)) => {
                    eprintln!("hoist verify: {e:#}");
                    ExitCode::FAILURE
                }
                None => ExitCode::FAILURE,
            }
        }
        Command::Backup { path } => {
            logging::init(cli.log_format);
            run_async(backup::backup(cli.config, &path))
        }
        Command::Migrate => {
            logging::init(cli.log_format);
            run_async(serve::migrate(cli.config))
        }
        Command::ImportSqlite { source } => {
            logging::init(cli.log_format);
            run_async(serve::import_sqlite(cli.config, &source))
        }
    }
}

/// Runs `task` to its end on a new runtime; `None` (said on stderr) when none starts.
fn block_on<T>(task: impl Future<Output = anyhow::Result<T>>) -> Option<anyhow::Result<T>> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime.block_on(task)),
        Err(e) => {
            eprintln!("hoist: cannot start the async runtime: {e}");
            None
        }
    }
}

fn run_async(task: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let Some(outcome) = block_on(task) else {
        return ExitCode::FAILURE;
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The one place a fatal error is logged, with its whole chain.
            tracing::error!(error = format!("{e:#}"), "hoist stopped");
            ExitCode::FAILURE
        }
    }
}
