//! The `hoist` binary of this workspace, run as a process the way an operator runs it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{http, wait_until};

/// Builds the `hoist` binary (once per test process) and returns its path, so a test never
/// runs a stale binary.
pub fn hoist_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // Benchmarks run a release build they made themselves.
        if let Some(bin) = std::env::var_os("HOIST_BIN") {
            return PathBuf::from(bin);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let status = Command::new(cargo)
            .current_dir(workspace)
            .args(["build", "--quiet", "-p", "hoist", "--bin", "hoist"])
            .status()
            .expect("run cargo build -p hoist");
        assert!(status.success(), "cargo build -p hoist failed");
        // Tests run from target/<profile>/deps; the binary sits in target/<profile>.
        let exe = std::env::current_exe().expect("test binary path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let bin = profile_dir.join("hoist");
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

/// `hoist copy ARGS` in a fresh working folder, with no environment but PATH.
pub fn hoist_copy(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("a working folder");
    let mut all = vec!["copy"];
    all.extend_from_slice(args);
    HoistRun::new(dir.path(), &all).output()
}

/// `hoist copy ARGS` run under GNU time (Debian package `time`): its output and its peak
/// resident memory in KiB.
pub fn hoist_copy_peak_rss(args: &[&str]) -> (Output, u64) {
    let time = crate::require_tool("time", "time");
    let dir = tempfile::tempdir().expect("a working folder");
    let report = dir.path().join("rss");
    let output = Command::new(time)
        .current_dir(dir.path())
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&report)
        .arg(hoist_bin())
        .arg("copy")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .expect("run hoist under time");
    let text = std::fs::read_to_string(&report).expect("time's report");
    let kib = text
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no peak RSS in {text:?}"));
    (output, kib)
}

/// Fails the test with both streams unless the copy succeeded; returns its stdout.
pub fn assert_copied(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "hoist copy failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A one-shot `hoist` command in `dir`, with only the environment given.
pub struct HoistRun {
    command: Command,
}

impl HoistRun {
    pub fn new(dir: &Path, args: &[&str]) -> Self {
        let mut command = Command::new(hoist_bin());
        command
            .current_dir(dir)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null());
        HoistRun { command }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn output(mut self) -> Output {
        self.command.output().expect("run hoist")
    }
}

impl std::fmt::Debug for HoistRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HoistRun")
            .field("command", &self.command)
            .finish()
    }
}

/// A running `hoist serve` in its own working folder, stopped (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Hoist {
    child: Child,
    dir: TempDir,
    base_url: String,
}

impl Hoist {
    /// Starts `hoist serve` in a fresh temp folder. `config` (if any) is written there as
    /// `hoist.toml` and passed with `--config`; `env` is the whole environment besides PATH.
    /// `listen` is the address the config makes it listen on.
    pub fn start(config: Option<&str>, env: &[(&str, &str)], listen: &str) -> Hoist {
        let dir = tempfile::tempdir().expect("create hoist's temp folder");
        Self::start_in(dir, config, env, listen)
    }

    pub fn start_in(
        dir: TempDir,
        config: Option<&str>,
        env: &[(&str, &str)],
        listen: &str,
    ) -> Hoist {
        if let Some(config) = config {
            std::fs::write(dir.path().join("hoist.toml"), config).expect("write hoist.toml");
        }
        let child = spawn(dir.path(), config.is_some(), env);
        let mut hoist = Hoist {
            child,
            dir,
            base_url: format!("http://{listen}"),
        };
        hoist.wait_healthy();
        hoist
    }

    /// Kills the process with SIGKILL, as a crash would, and starts it again in the same
    /// folder with the same config and `env`.
    pub fn crash_and_restart(&mut self, env: &[(&str, &str)]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let has_config = self.dir.path().join("hoist.toml").is_file();
        self.child = spawn(self.dir.path(), has_config, env);
        self.wait_healthy();
    }

    fn wait_healthy(&mut self) {
        let url = self.url("/healthz");
        let client = http();
        wait_until("hoist answering /healthz", Duration::from_secs(20), || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("hoist exited with {status}:\n{}", self.log());
            }
            client
                .get(&url)
                .send()
                .is_ok_and(|r| r.status().is_success())
        });
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// hoist's working folder (its `data/` lives here unless the config says otherwise).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything hoist logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hoist.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. "TERM") and waits up to `timeout` for the process to exit.
    /// Returns the exit status and how long it took.
    pub fn signal_and_wait(&mut self, signal: &str, timeout: Duration) -> (ExitStatus, Duration) {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} failed");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for hoist") {
                return (status, start.elapsed());
            }
            assert!(
                start.elapsed() < timeout,
                "hoist did not exit within {timeout:?} of SIG{signal}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the process and hands back its folder, so a test can restart in it.
    pub fn into_dir(mut self) -> TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().expect("placeholder temp folder");
        std::mem::replace(&mut self.dir, dir)
    }
}

/// Starts `hoist serve` in `dir`, appending to its hoist.log.
fn spawn(dir: &Path, with_config: bool, env: &[(&str, &str)]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("hoist.log"))
        .expect("open hoist.log");
    let mut command = Command::new(hoist_bin());
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log handle"))
        .stderr(log);
    for (key, value) in env {
        command.env(key, value);
    }
    if with_config {
        command.args(["--config", "hoist.toml"]);
    }
    command.arg("serve");
    command.spawn().expect("start hoist serve")
}

impl Drop for Hoist {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
