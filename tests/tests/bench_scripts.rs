//! The bench scripts find the release build where cargo put it: `CARGO_TARGET_DIR`,
//! absolute or relative, else `target/`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench")
}

/// `release_dir` from bench/lib.sh, run in `cwd` with `CARGO_TARGET_DIR` set or not.
fn release_dir(cwd: &Path, target_dir: Option<&str>) -> String {
    let lib = bench_dir().join("lib.sh");
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(format!(". {:?}; release_dir", lib.display().to_string()))
        .current_dir(cwd)
        .env_remove("CARGO_TARGET_DIR");
    if let Some(dir) = target_dir {
        command.env("CARGO_TARGET_DIR", dir);
    }
    let out = command.output().expect("run bash");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

#[test]
fn release_dir_honours_an_absolute_a_relative_or_no_cargo_target_dir() {
    let root = tempfile::tempdir().expect("a folder");
    let root_path = root.path().canonicalize().expect("canonical");
    for dir in ["target/release", "elsewhere/release", "abs/release"] {
        std::fs::create_dir_all(root_path.join(dir)).expect("mkdir");
    }
    let absolute = root_path.join("abs");
    assert_eq!(
        release_dir(&root_path, Some(absolute.to_str().expect("UTF-8"))),
        root_path.join("abs/release").display().to_string()
    );
    assert_eq!(
        release_dir(&root_path, Some("elsewhere")),
        root_path.join("elsewhere/release").display().to_string()
    );
    assert_eq!(
        release_dir(&root_path, None),
        root_path.join("target/release").display().to_string()
    );
}

#[test]
fn every_bench_script_finds_binaries_through_release_dir() {
    let mut scripts = 0;
    for entry in std::fs::read_dir(bench_dir()).expect("bench/") {
        let path = entry.expect("an entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() || name.contains('.') {
            continue;
        }
        scripts += 1;
        let text = std::fs::read_to_string(&path).expect("a script");
        assert!(
            text.contains(". bench/lib.sh"),
            "{name} does not source bench/lib.sh"
        );
        assert!(
            text.contains("$(release_dir)"),
            "{name} does not use release_dir"
        );
        assert!(
            !text.contains("target/release"),
            "{name} names target/release itself, ignoring CARGO_TARGET_DIR"
        );
    }
    assert_eq!(scripts, 5, "bench/copy, ingest, ledger, oidc, publish");
}
