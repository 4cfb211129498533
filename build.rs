//! Records the git revision the binary is built from, for `ucbridge --version` and the start-up
//! log line. Outside a git checkout (a source tarball) it is `UCBRIDGE_GIT_REVISION` from the
//! environment, else "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=UCBRIDGE_GIT_REVISION");
    // A new commit or a checkout moves HEAD or the branch it names.
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let revision = std::env::var("UCBRIDGE_GIT_REVISION").ok().filter(|r| !r.is_empty()).or_else(|| {
        let out = Command::new("git").args(["describe", "--always", "--abbrev=12"]).output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        out.status.success().then(|| text.trim().to_owned()).filter(|t| !t.is_empty())
    });
    println!("cargo:rustc-env=UCBRIDGE_GIT_REVISION={}", revision.as_deref().unwrap_or("unknown"));
}
