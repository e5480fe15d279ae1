//! `amiscan scan` on a real Debian 12 root file system (debootstrap of bookworm with
//! cloud-init, OpenSSH, sudo, chrony, ...), built by `testdata/build-sealed-debian.sh` into
//! testdata/build/sealed-debian/ twice from one debootstrap run:
//!
//! - `sealed-debian.img`, sealed the way AWS's AMI guidance asks (no host keys, empty
//!   machine-id, root locked, sshd keys-only, no cloud-init state, logs, temporary files,
//!   leases or histories, no build-host identity): a stock image that no rule of
//!   consequence may fail. This is the guard against rules crying wolf.
//! - `unsealed-debian.img`, the same tree as debootstrap left it, with its SSH host keys and a
//!   planted `/root/.bash_history`: the same rules must fire.
//!
//! The build needs root and Debian's package mirror and takes a few minutes, so these tests
//! are ignored by default: `cargo test --test integration sealed_debian:: -- --ignored`.

use crate::util;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use util::{amiscan, build_dir, ensure_built, Run};

/// The path of an image the script builds (building it first, once per process; the
/// script's stamp makes later runs instant).
fn sealed_debian_image(name: &str) -> PathBuf {
    ensure_built("build-sealed-debian.sh", ".lock-sealed-debian");
    let path = build_dir().join("sealed-debian").join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// `amiscan scan IMAGE --format json`, parsed.
fn scan_json(image: &Path) -> (Run, Value) {
    let run = amiscan([
        OsStr::new("scan"),
        image.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
    ]);
    let report: Value = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: stdout is not JSON ({e}); exit {}, stderr:\n{}",
            run.describe(),
            run.code,
            run.stderr
        )
    });
    (run, util::single_image(report))
}

const STATUSES: &[&str] = &["pass", "fail", "waived", "error", "skipped"];

/// Checks the shape of one image of the report against the JSON contract of `scan`
/// (schema_version 2, `images[0]`): `{"image":{"path","format","virtual_size"},"os":{..},
///   "volumes":[..],"results":[{"rule","title","severity","status","findings":[{"path",
///   "subject","message","line"}]}],"summary":{..},"stats":{..}}`.
fn check_contract(report: &Value, image: &Path) {
    let img = &report["image"];
    assert_eq!(
        img["path"].as_str(),
        Some(image.to_str().unwrap()),
        "image.path"
    );
    assert_eq!(img["format"], "raw", "image.format");
    assert_eq!(img["virtual_size"], 2u64 << 30, "image.virtual_size");
    assert!(report["os"].is_object(), "os is not an object: {report:#}");
    let os = report["os"].to_string().to_lowercase();
    assert!(os.contains("debian"), "os does not name Debian: {os}");
    assert!(
        !report["volumes"].as_array().unwrap().is_empty(),
        "no volumes in the report"
    );
    assert!(report["summary"].is_object(), "summary is not an object");
    assert!(report["stats"].is_object(), "stats is not an object");

    let results = report["results"]
        .as_array()
        .expect("results is not an array");
    assert!(
        !results.is_empty(),
        "no results: the scan evaluated no rule"
    );
    for r in results {
        let rule = r["rule"]
            .as_str()
            .unwrap_or_else(|| panic!("result without rule: {r:#}"));
        assert!(r["title"].is_string(), "{rule}: title is not a string");
        assert!(
            r["severity"].is_string(),
            "{rule}: severity is not a string"
        );
        let status = r["status"].as_str().unwrap_or("");
        assert!(
            STATUSES.contains(&status),
            "{rule}: status {:?}",
            r["status"]
        );
        for f in r["findings"]
            .as_array()
            .unwrap_or_else(|| panic!("{rule}: findings"))
        {
            for key in ["path", "subject", "message", "line"] {
                assert!(
                    f.get(key).is_some(),
                    "{rule}: a finding has no {key}: {f:#}"
                );
            }
            assert!(f["message"].is_string(), "{rule}: finding message: {f:#}");
            assert!(
                f["line"].is_null() || f["line"].is_u64(),
                "{rule}: finding line: {f:#}"
            );
        }
    }
}

/// The result of one rule (each rule appears once).
fn result<'a>(report: &'a Value, rule: &str) -> &'a Value {
    let matching: Vec<&Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["rule"] == rule)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "rule {rule} appears {} times in the results",
        matching.len()
    );
    matching[0]
}

/// The guest paths a result's findings name.
fn finding_paths(result: &Value) -> Vec<String> {
    result["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["path"].as_str().map(str::to_string))
        .collect()
}

/// One line per result, for failure messages.
fn describe(result: &Value) -> String {
    let mut text = format!(
        "{} ({}, {}): {}",
        result["rule"].as_str().unwrap_or("?"),
        result["severity"].as_str().unwrap_or("?"),
        result["title"].as_str().unwrap_or("?"),
        result["status"].as_str().unwrap_or("?"),
    );
    for f in result["findings"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "\n    {}{}: {}",
            f["path"].as_str().unwrap_or("-"),
            f["line"]
                .as_u64()
                .map(|l| format!(":{l}"))
                .unwrap_or_default(),
            f["message"].as_str().unwrap_or("")
        ));
    }
    text
}

#[test]
#[ignore = "needs network and root: run testdata/build-sealed-debian.sh"]
fn sealed_image_fails_no_rule_of_consequence() {
    let image = sealed_debian_image("sealed-debian.img");
    let (run, report) = scan_json(&image);
    check_contract(&report, &image);

    let offenders: Vec<String> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| matches!(r["severity"].as_str(), Some("critical" | "high" | "medium")))
        .filter(|r| !matches!(r["status"].as_str(), Some("pass" | "skipped")))
        .map(describe)
        .collect();
    assert!(
        offenders.is_empty(),
        "on a properly sealed stock Debian 12 image, {} rule(s) of severity medium or above \
         did not pass (false positives, or errors reading a real root file system):\n{}\n\
         (testdata/build/sealed-debian/leftovers.txt lists what the sealed tree still holds)",
        offenders.len(),
        offenders.join("\n")
    );
    assert_eq!(
        run.code,
        0,
        "{} exited {} on the sealed image; stderr:\n{}",
        run.describe(),
        run.code,
        run.stderr
    );

    // The two rules the unsealed image must fail have to pass here on their merits: the
    // files they look for are readable and absent, so "skipped" would hide a bug.
    for rule in ["ssh.host-keys", "history.shell"] {
        let r = result(&report, rule);
        assert_eq!(r["status"], "pass", "{}", describe(r));
    }
}

#[test]
#[ignore = "needs network and root: run testdata/build-sealed-debian.sh"]
fn unsealed_image_fails_host_keys_and_history() {
    let image = sealed_debian_image("unsealed-debian.img");
    let (run, report) = scan_json(&image);
    check_contract(&report, &image);

    let keys = result(&report, "ssh.host-keys");
    assert_eq!(keys["status"], "fail", "{}", describe(keys));
    let key_paths = finding_paths(keys);
    assert!(
        key_paths
            .iter()
            .any(|p| p.starts_with("/etc/ssh/ssh_host_")),
        "ssh.host-keys names no /etc/ssh/ssh_host_* file:\n{}",
        describe(keys)
    );
    // debootstrap's openssh-server postinst (and ssh-keygen -A) made the ed25519 pair.
    assert!(
        key_paths
            .iter()
            .any(|p| p.starts_with("/etc/ssh/ssh_host_ed25519_key")),
        "ssh.host-keys misses the ed25519 host key:\n{}",
        describe(keys)
    );

    let history = result(&report, "history.shell");
    assert_eq!(history["status"], "fail", "{}", describe(history));
    assert!(
        finding_paths(history)
            .iter()
            .any(|p| p == "/root/.bash_history"),
        "history.shell does not name /root/.bash_history:\n{}",
        describe(history)
    );

    assert_eq!(
        run.code,
        1,
        "{} exited {} on the unsealed image (expected 1: rules failed); stderr:\n{}",
        run.describe(),
        run.code,
        run.stderr
    );
}
