//! Build script: records the git commit the binary is built from, for `tasksync --version`
//! and `tasksync_build_info`. A build outside a git checkout (a source tarball) says
//! "unknown"; `TASKSYNC_COMMIT` set in the environment wins (a packager's own record).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=TASKSYNC_COMMIT");
    // The commit changes when HEAD moves or the branch it names does.
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = std::env::var("TASKSYNC_COMMIT").ok().filter(|c| !c.is_empty()).or_else(git_commit);
    println!("cargo:rustc-env=TASKSYNC_COMMIT={}", commit.unwrap_or_else(|| "unknown".into()));
}

/// The short hash of HEAD. (No "-dirty" mark: this script reruns only when HEAD moves,
/// so a mark taken at one build would be stale at the next.)
fn git_commit() -> Option<String> {
    let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
    let hash = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !hash.is_empty()).then_some(hash)
}
