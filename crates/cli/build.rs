//! Build script: puts the commit and its date into `scanwatch --version`.
//!
//! `SCANWATCH_COMMIT` (and `SCANWATCH_COMMIT_DATE`) given by a packager win;
//! otherwise `git` is asked for the short hash and commit date of HEAD. Where
//! neither answers (a source tarball, no git) the version says `unknown`:
//! this script never fails the build.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=SCANWATCH_COMMIT");
    println!("cargo:rerun-if-env-changed=SCANWATCH_COMMIT_DATE");
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    // A packager's commit takes only a packager's date (HEAD may be another).
    let (commit, date) = match env("SCANWATCH_COMMIT") {
        Some(c) => (Some(c), env("SCANWATCH_COMMIT_DATE")),
        None => match git(&["rev-parse", "--short", "HEAD"]) {
            Some(c) => (Some(c), git(&["log", "-1", "--format=%cs", "HEAD"])),
            None => (None, None),
        },
    };
    let build = match (commit, &date) {
        (Some(c), Some(d)) => format!("{c} {d}"),
        (Some(c), None) => c,
        _ => "unknown".to_string(),
    };
    println!("cargo:rustc-env=SCANWATCH_BUILD={build}");
    // The man page's date: the commit's, so the page is reproducible.
    println!(
        "cargo:rustc-env=SCANWATCH_DATE={}",
        date.unwrap_or_default()
    );
    // A new commit (or a moved branch) changes HEAD or the ref it names; in
    // a worktree HEAD and the refs are in different folders, so ask git.
    // Only files that exist are named: a missing one would rerun this
    // script, and rebuild the crate, on every build.
    let mut watch = Vec::new();
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        watch.push(format!("{dir}/HEAD"));
        let common = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]);
        let common = common.unwrap_or(dir);
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch.push(format!("{common}/{r}"));
        }
        watch.push(format!("{common}/packed-refs"));
    }
    for path in watch.iter().filter(|p| std::path::Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
