//! A throwaway PostgreSQL cluster for tests and benches.
//!
//! [`Cluster::start`] runs `initdb` into a temporary directory and starts a server on a free
//! loopback port with durability off (`fsync`, `synchronous_commit`, `full_page_writes`), so
//! tests are fast and leave nothing behind ([`Cluster::start_durable`] keeps PostgreSQL's
//! defaults, for benches). Every test gets its own empty database from
//! [`Cluster::create_database`]; [`Cluster::shared`] is the one cluster of a test process.
//!
//! PostgreSQL must be installed (`apt-get install postgresql-15`): `initdb` and `pg_ctl` are
//! looked up on `PATH`, then in `/usr/lib/postgresql/15/bin`. There is no silent skip: a
//! missing PostgreSQL is an error. The server refuses to run as root, so a root process (a
//! container, CI) runs `initdb` and `pg_ctl` as the `postgres` user through `runuser`.
//!
//! Clean-up: dropping a [`Cluster`] stops its server and removes its directory. A static
//! is never dropped, and a test process may be killed, so every cluster also has a detached
//! watchdog shell that stops the server and removes the directory once the test process is
//! gone (it checks every second, and ends by itself when the directory is removed).
//!
//! Only compiled for tests and the `test-support` feature. Blocking (std::process).

use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// What to do when PostgreSQL is missing.
const INSTALL: &str = "install PostgreSQL 15: apt-get install postgresql-15";
/// Where Debian and Ubuntu install PostgreSQL 15's server programs (not on `PATH`).
const DEBIAN_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The superuser role initdb creates, and the system user the server runs as under root.
const SUPERUSER: &str = "postgres";
/// How many free ports to try when another process takes the one picked.
const START_ATTEMPTS: usize = 5;
/// Lines of the server log quoted in errors.
const LOG_TAIL_LINES: usize = 30;

/// A running PostgreSQL server in a temporary directory, reachable on 127.0.0.1 as the
/// `postgres` superuser with no password (`trust`). Dropping it stops the server and removes
/// the directory.
#[derive(Debug)]
pub struct Cluster {
    /// Holds the data directory (`data/`), the server log and the Unix socket.
    dir: tempfile::TempDir,
    /// The directory of `initdb` and `pg_ctl`; `psql` and `createdb` are taken from it too.
    bin: PathBuf,
    port: u16,
    /// The current process is root: server programs run as `postgres` via `runuser`.
    as_postgres: bool,
    /// Numbers the databases [`Cluster::create_database`] makes.
    databases: AtomicU64,
    /// fsync, synchronous commit and full-page writes on, as an operator runs it (for
    /// benches); off for tests.
    durable: bool,
}

impl Cluster {
    /// Creates a cluster in a new temporary directory and starts its server.
    ///
    /// Fails (never skips) when PostgreSQL is not installed, saying how to install it, or
    /// when initdb or the server fail, quoting their output and the server log's tail.
    pub fn start() -> Result<Cluster, String> {
        Cluster::start_with(false)
    }

    /// [`Cluster::start`] with PostgreSQL's durability settings left at their defaults
    /// (every commit flushed to disk), for benches that compare with a production setup.
    pub fn start_durable() -> Result<Cluster, String> {
        Cluster::start_with(true)
    }

    fn start_with(durable: bool) -> Result<Cluster, String> {
        let bin = find_bin_dir()?;
        let as_postgres = is_root()?;
        // The server user must reach the directory: under root, /tmp rather than a TMPDIR
        // that may sit in root's home.
        let parent = if as_postgres {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("hoist-pg-")
            .tempdir_in(&parent)
            .map_err(|e| {
                format!(
                    "cannot create a temporary directory in {}: {e}",
                    parent.display()
                )
            })?;
        if as_postgres {
            let mut chown = Command::new("chown");
            chown.arg("-R").arg(SUPERUSER).arg(dir.path());
            run(&mut chown, "chown the cluster directory to postgres").map_err(|why| {
                format!("{why}\n(the postgres user comes with the server package: {INSTALL})")
            })?;
        }
        let mut cluster = Cluster {
            dir,
            bin,
            port: 0,
            as_postgres,
            databases: AtomicU64::new(0),
            durable,
        };
        // From here on, dropping `cluster` stops whatever was started and removes the files.
        cluster.spawn_watchdog()?;
        cluster.initdb()?;
        cluster.start_server()?;
        Ok(cluster)
    }

    /// The cluster of this test process, started on first use and shared by all its tests
    /// (each should use its own [`Cluster::create_database`]). The watchdog stops it when
    /// the process exits.
    ///
    /// # Panics
    ///
    /// When the cluster cannot start (e.g. PostgreSQL is not installed), with the reason;
    /// every later call panics with the same reason without trying again.
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
        match SHARED.get_or_init(Cluster::start) {
            Ok(cluster) => cluster,
            Err(why) => panic!("cannot start the test PostgreSQL cluster: {why}"),
        }
    }

    /// The server's process id (the first line of `postmaster.pid`), for a bench to read
    /// the CPU time the server and its backends used.
    pub fn server_pid(&self) -> Option<u32> {
        let pid = fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        pid.lines().next()?.trim().parse().ok()
    }

    /// The server's TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` on this cluster, as the `postgres` superuser (no password).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a new, empty database (`hoist_test_<pid>_<n>`) and returns its URL. Safe to
    /// call from several threads at once.
    pub fn create_database(&self) -> Result<String, String> {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("hoist_test_{}_{n}", std::process::id());
        let mut createdb = Command::new(self.tool("createdb"));
        createdb
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
            ])
            .arg(&name);
        run(&mut createdb, &format!("create database {name}"))?;
        Ok(self.url(&name))
    }

    /// What `sql` returns on the database at `url` (one of this cluster's), as psql prints
    /// it unaligned and without headers: one line per row, columns separated by `|`.
    pub fn query(&self, url: &str, sql: &str) -> Result<String, String> {
        let mut psql = Command::new(self.tool("psql"));
        psql.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, url]);
        run(&mut psql, &format!("psql {sql}"))
            .map(|out| String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
    }

    /// The program `name` from the bin directory, else from `PATH` (clients only: they
    /// are run as the current user).
    fn tool(&self, name: &str) -> PathBuf {
        let path = self.bin.join(name);
        if path.is_file() {
            path
        } else {
            PathBuf::from(name)
        }
    }

    /// A command running server program `name`, as `postgres` when this process is root,
    /// in the cluster directory (the server user may not be able to enter the current one).
    fn server_command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", SUPERUSER, "--"]).arg(program);
            runuser
        } else {
            Command::new(program)
        };
        command.current_dir(self.dir.path());
        command
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn initdb(&self) -> Result<(), String> {
        let mut initdb = self.server_command("initdb");
        initdb
            .arg("-D")
            .arg(self.data_dir())
            .args([
                "--auth=trust",
                "-U",
                SUPERUSER,
                "--encoding=UTF8",
                "--no-sync",
            ])
            // Byte order for text, as SQLite's BINARY collation compares.
            .arg("--locale=C")
            .arg("--no-instructions");
        run(&mut initdb, "initdb").map(drop)
    }

    /// Starts the server on a free port, trying another one when the port picked was taken
    /// before the server bound it.
    fn start_server(&mut self) -> Result<(), String> {
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let log_before = fs::metadata(self.log_file()).map(|m| m.len()).unwrap_or(0);
            let durability = if self.durable {
                ""
            } else {
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            };
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k '{}' -c max_connections=300{durability}",
                self.dir.path().display()
            );
            let mut pg_ctl = self.server_command("pg_ctl");
            pg_ctl
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.log_file())
                .args(["-w", "-t", "60", "-o", &options, "start"]);
            match run(&mut pg_ctl, "pg_ctl start") {
                Ok(_) => {
                    self.port = port;
                    return Ok(());
                }
                Err(why) => {
                    let log = read_from(&self.log_file(), log_before);
                    last_error = format!("{why}\n{}", self.log_tail());
                    if !log.contains("Address already in use") {
                        return Err(last_error);
                    }
                    // A server that never bound its port has exited; make sure of it.
                    self.stop();
                }
            }
        }
        Err(format!(
            "no free port after {START_ATTEMPTS} attempts: {last_error}"
        ))
    }

    /// Stops the server at once (no checkpoint: the data is thrown away). Errors are
    /// ignored: there may be no server.
    fn stop(&self) {
        let mut pg_ctl = self.server_command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = pg_ctl
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Starts a detached shell that, once this process has exited, stops the server and
    /// removes the directory; it ends by itself once the directory is gone (after `Drop`).
    /// It runs in its own process group, so a Ctrl-C meant for the tests does not kill it,
    /// and it is reparented at once (the `sh` started here exits), leaving no zombie.
    fn spawn_watchdog(&self) -> Result<(), String> {
        const SCRIPT: &str = r#"(
    while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done
    if [ -d "$2" ]; then
        if [ "$4" = yes ]; then
            runuser -u postgres -- "$3" -D "$2/data" -m immediate -w stop
        else
            "$3" -D "$2/data" -m immediate -w stop
        fi
        rm -rf "$2"
    fi
) </dev/null >/dev/null 2>&1 &"#;
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(SCRIPT)
            .arg("hoist-pg-watchdog")
            .arg(std::process::id().to_string())
            .arg(self.dir.path())
            .arg(self.bin.join("pg_ctl"))
            .arg(if self.as_postgres { "yes" } else { "no" })
            .current_dir("/")
            .process_group(0);
        run(&mut sh, "start the cluster's watchdog").map(drop)
    }

    /// The last lines of the server log, for error messages.
    fn log_tail(&self) -> String {
        let log = read_from(&self.log_file(), 0);
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        format!(
            "server log {} (last lines):\n{tail}",
            self.log_file().display()
        )
    }
}

impl Drop for Cluster {
    /// Stops the server; the directory is then removed with the `TempDir`.
    fn drop(&mut self) {
        self.stop();
    }
}

/// The directory holding `initdb` and `pg_ctl`: that of the first `initdb` on `PATH`
/// (symbolic links resolved, so that a link such as /usr/local/bin/initdb leads to the
/// directory with the other programs), else Debian's PostgreSQL 15 directory.
fn find_bin_dir() -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in on_path {
        let initdb = dir.join("initdb");
        if !initdb.is_file() {
            continue;
        }
        let real = fs::canonicalize(&initdb).unwrap_or(initdb);
        if let Some(bin) = real.parent()
            && bin.join("pg_ctl").is_file()
        {
            return Ok(bin.to_path_buf());
        }
    }
    let debian = Path::new(DEBIAN_BIN);
    if debian.join("initdb").is_file() && debian.join("pg_ctl").is_file() {
        return Ok(debian.to_path_buf());
    }
    Err(format!(
        "initdb and pg_ctl are neither on PATH nor in {DEBIAN_BIN}: {INSTALL}"
    ))
}

/// Whether this process runs as root (effective uid 0), from /proc, else from `id -u`.
fn is_root() -> Result<bool, String> {
    if let Ok(status) = fs::read_to_string("/proc/self/status") {
        // "Uid:\t<real>\t<effective>\t<saved>\t<filesystem>"
        let effective = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1));
        if let Some(uid) = effective {
            return Ok(uid == "0");
        }
    }
    let output = run(Command::new("id").arg("-u"), "id -u")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// A loopback port nothing listens on right now (it may be taken before the server binds
/// it: [`Cluster::start_server`] then tries another).
fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound port: {e}"))?
        .port();
    Ok(port)
}

/// Runs `command` to completion, capturing its output; an error describes `what` failed,
/// with the exit status and output.
fn run(command: &mut Command, what: &str) -> Result<Output, String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run {:?}: {e}", command.get_program()))?;
    if output.status.success() {
        return Ok(output);
    }
    Err(format!(
        "{what} failed ({}): {:?}\n{}{}",
        output.status,
        command,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    ))
}

/// The text of `path` from byte `offset` on (empty when it cannot be read).
fn read_from(path: &Path, offset: u64) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    /// `select 1` through psql on `url`.
    fn select_one(cluster: &Cluster, url: &str) -> String {
        let output = Command::new(cluster.tool("psql"))
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                "select 1",
                url,
            ])
            .output()
            .expect("psql runs");
        assert!(
            output.status.success(),
            "psql on {url}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    #[test]
    fn starts_and_creates_databases() {
        let cluster = Cluster::start().expect("cluster starts");
        let first = cluster.create_database().expect("first database");
        let second = cluster.create_database().expect("second database");
        assert_ne!(first, second);
        let prefix = format!(
            "postgres://postgres@127.0.0.1:{}/hoist_test_",
            cluster.port()
        );
        assert!(first.starts_with(&prefix), "{first}");
        assert_eq!(select_one(&cluster, &first), "1");
        assert_eq!(select_one(&cluster, &second), "1");
    }

    #[test]
    fn drop_stops_the_server_and_removes_the_directory() {
        let cluster = Cluster::start().expect("cluster starts");
        let dir = cluster.dir.path().to_path_buf();
        let port = cluster.port();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        drop(cluster);
        assert!(!dir.exists(), "{} is left behind", dir.display());
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the server still listens on {port}"
        );
    }

    #[test]
    fn shared_cluster_creates_databases_from_many_threads() {
        let cluster = Cluster::shared();
        assert!(std::ptr::eq(cluster, Cluster::shared()));
        let threads: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(|| Cluster::shared().create_database()))
            .collect();
        let mut urls: Vec<String> = threads
            .into_iter()
            .map(|t| t.join().expect("thread ends").expect("database created"))
            .collect();
        urls.sort();
        urls.dedup();
        assert_eq!(urls.len(), 8);
        for url in &urls {
            assert_eq!(select_one(cluster, url), "1");
        }
    }
}
