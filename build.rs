//! Records the git revision the binary is built from, for `ucbridge --version` and the start-up
//! log line. Outside a git checkout (a source tarball) it is `UCBRIDGE_GIT_REVISION` from the
//! environment, else "unknown".

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    out.status.success().then(|| text.trim().to_owned()).filter(|t| !t.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=UCBRIDGE_GIT_REVISION");
    watch_head();
    let revision = std::env::var("UCBRIDGE_GIT_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| git(&["describe", "--always", "--abbrev=12"]));
    println!("cargo:rustc-env=UCBRIDGE_GIT_REVISION={}", revision.as_deref().unwrap_or("unknown"));
}

/// Rebuild when HEAD moves: a checkout changes HEAD, a commit changes the branch HEAD names.
/// Only that branch's ref is watched, not all of `refs/heads`, so creating or committing on
/// other branches (worktrees) does not rebuild this one. Works in a linked worktree too, where
/// HEAD is in the worktree's git dir and the refs in the common one.
fn watch_head() {
    let (Some(git_dir), Some(common)) = (git(&["rev-parse", "--git-dir"]), git(&["rev-parse", "--git-common-dir"]))
    else {
        return;
    };
    let (git_dir, common) = (PathBuf::from(git_dir), PathBuf::from(common));
    let head = git_dir.join("HEAD");
    let branch = std::fs::read_to_string(&head).ok().and_then(|h| h.trim().strip_prefix("ref: ").map(str::to_owned));
    let packed = common.join("packed-refs");
    // A path that does not exist would make cargo rerun this script on every build.
    for path in [Some(head), Some(packed), branch.map(|b| common.join(b))].into_iter().flatten() {
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
