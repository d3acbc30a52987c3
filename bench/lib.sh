# Shared by the bench scripts, sourced from the workspace root.

# The release build folder cargo writes to: $CARGO_TARGET_DIR, absolute or relative to the
# workspace root (as cargo reads it there), else target/. Prints it as an absolute path.
release_dir() {
    (cd "${CARGO_TARGET_DIR:-target}/release" && pwd)
}
