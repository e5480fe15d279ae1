//! Build metadata for `amiscan --version`: the git commit, the build date and, for
//! `amiscan version --verbose`, the target and the compiler. Nothing here reaches the
//! network; a build outside a git checkout (a crate tarball) says "unknown".

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = git_commit(&manifest_dir).unwrap_or_else(|| "unknown".to_string());
    let date = build_date().unwrap_or_else(|| "unknown".to_string());
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!("cargo:rustc-env=AMISCAN_VERSION_LINE={version} ({commit} {date})");
    println!("cargo:rustc-env=AMISCAN_COMMIT={commit}");
    println!("cargo:rustc-env=AMISCAN_BUILD_DATE={date}");
    println!(
        "cargo:rustc-env=AMISCAN_TARGET={}",
        std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_string())
    );
    println!("cargo:rustc-env=AMISCAN_RUSTC={}", rustc_version());
    println!("cargo:rustc-env=AMISCAN_FEATURES={}", features());

    // Without these lines cargo would rerun this script whenever any file of the package
    // changes; with them, only a new commit or a checkout does. The dirty mark is therefore
    // as of the last commit or checkout that rebuilt it.
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    for path in git_paths(&manifest_dir) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// Runs git in the package directory; `None` when git is missing or this is no checkout.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The short hash of HEAD, with `-dirty` when tracked files differ from it.
fn git_commit(dir: &Path) -> Option<String> {
    let hash = git(dir, &["rev-parse", "--short=9", "HEAD"]).filter(|h| !h.is_empty())?;
    let dirty =
        git(dir, &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{hash}-dirty") } else { hash })
}

/// HEAD, the branch it points to and packed-refs, wherever this checkout keeps them (a
/// worktree has its HEAD apart from the shared refs).
fn git_paths(dir: &Path) -> Vec<PathBuf> {
    let mut names = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        names.push(branch);
    }
    names
        .iter()
        .filter_map(|name| {
            git(
                dir,
                &["rev-parse", "--path-format=absolute", "--git-path", name],
            )
        })
        .map(PathBuf::from)
        .filter(|path| path.exists())
        .collect()
}

/// Today in UTC, or the day of `SOURCE_DATE_EPOCH` for a reproducible build.
fn build_date() -> Option<String> {
    let timestamp = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(seconds) => jiff::Timestamp::from_second(seconds.trim().parse().ok()?).ok()?,
        Err(_) => jiff::Timestamp::now(),
    };
    Some(timestamp.strftime("%Y-%m-%d").to_string())
}

fn rustc_version() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The cargo features this build has, comma-separated, as cargo names them to the script.
fn features() -> String {
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(key, _)| {
            key.strip_prefix("CARGO_FEATURE_")
                .map(|name| name.to_lowercase().replace('_', "-"))
        })
        .collect();
    features.sort();
    if features.is_empty() {
        "none".to_string()
    } else {
        features.join(", ")
    }
}
