//! The gate across runs: waiver files (where they are picked up, what each state does to
//! the exit code), baselines written by amiscan itself, several images in one run, and the
//! usage errors that must stop a run before any image is opened.

use crate::util;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}); exit {}: {}", self.code, self.stderr))
    }
}

fn amiscan_in(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_amiscan"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A fresh directory with copies of the sample image under the given names.
fn workspace(name: &str, images: &[&str]) -> PathBuf {
    let dir = util::build_dir().join("gate").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for image in images {
        let path = dir.join(image);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(util::manifest_dir().join("testdata/sample.img"), path).unwrap();
    }
    dir
}

fn finding<'a>(report: &'a Value, image: usize, rule: &str, path: &str) -> &'a Value {
    report["images"][image]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == rule)
        .and_then(|r| {
            r["findings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["path"] == path)
        })
        .unwrap_or_else(|| panic!("no {rule} finding at {path}"))
}

/// The rules failing at medium or above in testdata/sample.img, each with its paths.
const GATING: &[(&str, &str)] = &[
    ("accounts.password-set", "/etc/shadow"),
    ("cleanup.machine-id", "/etc/machine-id"),
    ("creds.aws", "/root/.aws/credentials"),
    ("creds.private-keys", "/etc/ssl/private/app.key"),
    ("creds.tokens", "/home/admin/.config/gh/hosts.yml"),
    ("history.shell", "/home/admin/.bash_history"),
    ("history.shell", "/root/.bash_history"),
    ("ssh.authorized-keys", "/home/admin/.ssh/authorized_keys"),
    ("sshd.password-authentication", "/etc/ssh/sshd_config"),
    ("sshd.permit-root-login", "/etc/ssh/sshd_config"),
];

fn waive_all(paths_too: bool) -> String {
    let mut text = String::from("waivers:\n");
    for (rule, path) in GATING {
        text.push_str(&format!("  - rule: {rule}\n"));
        if paths_too {
            text.push_str(&format!("    paths: [\"{path}\"]\n"));
        }
        text.push_str("    reason: accepted for the test\n");
    }
    text
}

#[test]
fn waiving_every_gating_finding_passes_and_expiry_brings_them_back() {
    let dir = workspace("waive-all", &["sample.img"]);
    std::fs::write(dir.join(".amiscan-waivers.yaml"), waive_all(true)).unwrap();
    let run = amiscan_in(&dir, &["scan", "sample.img", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    for (rule, path) in GATING {
        let f = finding(&report, 0, rule, path);
        assert_eq!(f["gating"], false, "{rule} {path}");
        assert_eq!(f["waiver"]["expired"], false);
        assert!(f["waiver"]["source"]
            .as_str()
            .unwrap()
            .starts_with(".amiscan-waivers.yaml:"));
    }
    assert!(report["waivers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|w| w["state"] == "applied"));
    // One waiver per path; creds.aws finds the key ID and the secret key on one path.
    assert_eq!(report["summary"]["waived"], GATING.len() + 1);
    assert!(
        run.stderr.contains(&format!(
            "{} waiver(s) read from .amiscan-waivers.yaml",
            GATING.len()
        )),
        "a waiver file picked up by default is announced: {}",
        run.stderr
    );

    // The same waivers, expired yesterday: every finding gates again, and stderr says so.
    let expired = waive_all(true).replace(
        "    reason: accepted for the test\n",
        "    reason: accepted for the test\n    expires: 2026-11-21\n",
    );
    std::fs::write(dir.join(".amiscan-waivers.yaml"), expired).unwrap();
    let run = amiscan_in(
        &dir,
        &[
            "scan",
            "sample.img",
            "--format",
            "json",
            "--as-of",
            "2026-11-22",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    for (rule, path) in GATING {
        let f = finding(&report, 0, rule, path);
        assert_eq!(f["gating"], true, "{rule} {path}");
        assert_eq!(f["waiver"]["expired"], true);
    }
    assert!(
        run.stderr.contains("expired on 2026-11-21"),
        "{}",
        run.stderr
    );
    // On its last day a waiver still applies.
    let run = amiscan_in(&dir, &["scan", "sample.img", "--as-of", "2026-11-21"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn waiver_files_next_to_an_image_apply_to_that_directory_only() {
    let dir = workspace("waive-dirs", &["a/one.img", "b/two.img"]);
    std::fs::write(dir.join("a/.amiscan-waivers.yaml"), waive_all(false)).unwrap();
    let run = amiscan_in(
        &dir,
        &["scan", "a/one.img", "b/two.img", "--format", "json"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["images"][0]["summary"]["verdict"], "pass");
    assert_eq!(report["images"][1]["summary"]["verdict"], "fail");
    assert_eq!(report["summary"]["images"], 2);
    assert_eq!(report["summary"]["verdict"], "fail");
    // --no-default-waivers ignores it; --waivers names files explicitly (for every image).
    let run = amiscan_in(&dir, &["scan", "a/one.img", "--no-default-waivers"]);
    assert_eq!(run.code, 1);
    let run = amiscan_in(
        &dir,
        &["scan", "b/two.img", "--waivers", "a/.amiscan-waivers.yaml"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn an_images_glob_scopes_a_waiver() {
    let dir = workspace("waive-images", &["base-1.img", "app-1.img"]);
    let text = waive_all(false).replace(
        "    reason: accepted for the test\n",
        "    reason: accepted for the test\n    images: \"base-*.img\"\n",
    );
    std::fs::write(dir.join(".amiscan-waivers.yaml"), text).unwrap();
    let run = amiscan_in(&dir, &["scan", "*.img", "--format", "json"]);
    let report = run.json();
    let verdicts: Vec<(&str, &str)> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["image"]["path"].as_str().unwrap(),
                i["summary"]["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    // The quoted glob expands in sorted order.
    assert_eq!(verdicts, [("app-1.img", "fail"), ("base-1.img", "pass")]);
    assert_eq!(run.code, 1);
}

#[test]
fn unmatched_and_unknown_waivers_are_reported_but_do_not_gate() {
    let dir = workspace("waive-stale", &["sample.img"]);
    let text = format!(
        "{}  - rule: cleanup.tmp\n    reason: stale\n  - rule: cleanup.no-such-rule\n    reason: typo\n  - rule: services.ftp\n    reason: not run\n",
        waive_all(true)
    );
    std::fs::write(dir.join(".amiscan-waivers.yaml"), text).unwrap();
    let run = amiscan_in(
        &dir,
        &[
            "scan",
            "sample.img",
            "--format",
            "json",
            "--ignore",
            "services.ftp",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let states: Vec<(String, String)> = run.json()["waivers"]
        .as_array()
        .unwrap()
        .iter()
        .skip(GATING.len())
        .map(|w| (w["rule"].to_string(), w["state"].to_string()))
        .collect();
    assert_eq!(
        states,
        [
            ("\"cleanup.tmp\"".into(), "\"unmatched\"".into()),
            ("\"cleanup.no-such-rule\"".into(), "\"unknown-rule\"".into()),
            ("\"services.ftp\"".into(), "\"not-evaluated\"".into()),
        ]
    );
    assert!(run.stderr.contains("matched no finding"), "{}", run.stderr);
    assert!(
        run.stderr.contains("names no loaded rule"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_bad_waiver_file_stops_the_run_with_its_location() {
    let dir = workspace("waive-bad", &["sample.img"]);
    std::fs::write(
        dir.join("w.yaml"),
        "waivers:\n  - rule: history.shell\n    reason: ok\n  - rule: cleanup.logs\n    expires: 2026-13-01\n    reason: bad date\n",
    )
    .unwrap();
    let run = amiscan_in(&dir, &["scan", "sample.img", "--waivers", "w.yaml"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout, "", "nothing is scanned");
    // Named where the bad date is written: line 5, the value's column.
    assert!(run.stderr.contains("w.yaml:5:14:"), "{}", run.stderr);
    std::fs::write(dir.join("w.yaml"), "waivers:\n  - rule: history.shell\n").unwrap();
    let run = amiscan_in(&dir, &["scan", "sample.img", "--waivers", "w.yaml"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("reason"), "{}", run.stderr);
}

#[test]
fn waiver_dates_are_strict_and_named_where_written() {
    let dir = workspace("waive-dates", &["sample.img"]);
    for bad in [
        "2026-02-30",
        "2026-2-3",
        "2026-13-01",
        "0000-01-01",
        "\"+2026-01-01\"",
        "\"2026-01-01 \"",
        "2026-01-01T00:00:00",
        "2027-02-29",
    ] {
        let text = format!(
            "waivers:\n  - rule: history.shell\n    reason: accepted\n    expires: {bad}\n"
        );
        std::fs::write(dir.join("w.yaml"), text).unwrap();
        let run = amiscan_in(&dir, &["scan", "sample.img", "--waivers", "w.yaml"]);
        assert_eq!(run.code, 2, "expires: {bad}: {}", run.stderr);
        assert_eq!(run.stdout, "", "nothing is scanned");
        assert!(
            run.stderr.contains("w.yaml:4:14: expires:") && run.stderr.contains("YYYY-MM-DD"),
            "expires: {bad}: {}",
            run.stderr
        );
    }
    std::fs::write(
        dir.join("w.yaml"),
        "waivers:\n  - rule: history.shell\n    reason: accepted\n    expires: 2028-02-29\n",
    )
    .unwrap();
    let run = amiscan_in(
        &dir,
        &[
            "scan",
            "sample.img",
            "--waivers",
            "w.yaml",
            "--format",
            "json",
            "--as-of",
            "2026-11-22",
        ],
    );
    assert_ne!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.json()["waivers"][0]["expires"], "2028-02-29");
}

fn scan_with_baseline(dir: &Path) -> Run {
    amiscan_in(
        dir,
        &[
            "scan",
            "sample.img",
            "--baseline",
            "before.json",
            "--format",
            "json",
        ],
    )
}

#[test]
fn a_baseline_of_the_same_image_passes_and_lists_what_was_fixed() {
    let dir = workspace("baseline", &["sample.img"]);
    let first = amiscan_in(&dir, &["scan", "sample.img", "--format", "json"]);
    assert_eq!(first.code, 1);
    std::fs::write(dir.join("before.json"), &first.stdout).unwrap();
    let run = scan_with_baseline(&dir);
    assert_eq!(run.code, 0, "every finding is known: {}", run.stderr);
    let report = run.json();
    assert_eq!(report["summary"]["known"], report["summary"]["findings"]);
    assert_eq!(report["summary"]["fixed"], 0);
    assert_eq!(
        report["baseline"]["schema_version"],
        amiscan::report::SCHEMA_VERSION
    );

    // Remove one finding from the baseline and add one the image no longer has: the first
    // is new (and gates), the second is fixed.
    let mut before = first.json();
    let results = before["images"][0]["results"].as_array_mut().unwrap();
    let history = results
        .iter_mut()
        .find(|r| r["rule"] == "history.shell")
        .unwrap();
    history["findings"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["path"] != "/root/.bash_history");
    let tmp = results
        .iter_mut()
        .find(|r| r["rule"] == "cleanup.tmp")
        .unwrap();
    tmp["status"] = "fail".into();
    tmp["findings"] = serde_json::json!([{"path": "/tmp/gone", "subject": null,
        "message": "temporary file", "line": null, "severity": "low", "fingerprint": null}]);
    std::fs::write(
        dir.join("before.json"),
        serde_json::to_string(&before).unwrap(),
    )
    .unwrap();
    let run = scan_with_baseline(&dir);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    let root = finding(&report, 0, "history.shell", "/root/.bash_history");
    assert_eq!(root["baseline"], "new");
    assert_eq!(root["gating"], true);
    let admin = finding(&report, 0, "history.shell", "/home/admin/.bash_history");
    assert_eq!(admin["baseline"], "known");
    assert_eq!(admin["gating"], false);
    let fixed = &report["images"][0]["fixed"];
    assert_eq!(fixed.as_array().unwrap().len(), 1, "{fixed:#}");
    assert_eq!(fixed[0]["path"], "/tmp/gone");
    assert_eq!(report["summary"]["fixed"], 1);
}

#[test]
fn a_baseline_that_is_not_a_report_is_a_usage_error() {
    let dir = workspace("baseline-bad", &["sample.img"]);
    std::fs::write(dir.join("x.json"), "{\"results\": []}").unwrap();
    let run = amiscan_in(&dir, &["scan", "sample.img", "--baseline", "x.json"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--baseline x.json"), "{}", run.stderr);
    let run = amiscan_in(&dir, &["scan", "sample.img", "--baseline", "missing.json"]);
    assert_eq!(run.code, 2);
}

#[test]
fn several_images_make_one_report_and_the_worst_exit_code() {
    let dir = workspace("many", &["one.img", "two.img"]);
    let incomplete = util::image("incomplete.img");
    let incomplete = incomplete.to_str().unwrap();
    // Incomplete (3) alone; with a failing image, fail (1) wins.
    let run = amiscan_in(&dir, &["scan", incomplete, "--format", "json"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let run = amiscan_in(&dir, &["scan", incomplete, "one.img", "--format", "json"]);
    assert_eq!(run.code, 1);
    let report = run.json();
    assert_eq!(report["images"][0]["summary"]["verdict"], "incomplete");
    assert_eq!(report["images"][1]["summary"]["verdict"], "fail");
    assert!(report["summary"]["incomplete"].as_bool().unwrap());
    // A missing image is reported as such; the others are still scanned; exit 2 unless
    // something fails.
    let run = amiscan_in(
        &dir,
        &["scan", "missing.img", incomplete, "--format", "json"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["images"][0]["summary"]["verdict"], "error");
    assert!(report["images"][0]["error"]
        .as_str()
        .unwrap()
        .contains("missing.img"));
    assert_eq!(report["images"][1]["summary"]["verdict"], "incomplete");
    assert!(run.stderr.contains("missing.img"), "{}", run.stderr);
    // Counts add up.
    let run = amiscan_in(&dir, &["scan", "one.img", "two.img", "--format", "json"]);
    let report = run.json();
    let one = &report["images"][0]["summary"];
    assert_eq!(
        report["summary"]["findings"],
        2 * one["findings"].as_u64().unwrap()
    );
    assert_eq!(
        report["summary"]["rules"],
        2 * one["rules"].as_u64().unwrap()
    );
}

#[test]
fn usage_errors_come_before_any_scan() {
    let dir = workspace("usage", &["one.img", "two.img"]);
    let run = amiscan_in(&dir, &["scan", "nothing-*.img"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("matches no file"), "{}", run.stderr);
    let run = amiscan_in(
        &dir,
        &[
            "scan",
            "one.img",
            "two.img",
            "--remediation-script",
            "fix.sh",
        ],
    );
    assert_eq!(run.code, 2);
    assert!(!dir.join("fix.sh").exists());
    let run = amiscan_in(&dir, &["scan", "one.img", "--output", "report.pdf"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout, "");
}

#[test]
fn format_with_a_file_writes_that_file_and_keeps_stdout() {
    let dir = workspace("format-file", &["one.img"]);
    let run = amiscan_in(
        &dir,
        &[
            "scan",
            "one.img",
            "--format",
            "sarif=r.sarif",
            "--format",
            "json",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.json()["schema_version"],
        amiscan::report::SCHEMA_VERSION,
        "stdout is the JSON report"
    );
    let sarif: Value =
        serde_json::from_slice(&std::fs::read(dir.join("r.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    // Two formats for standard output, or an unknown one, stop the run before scanning.
    for args in [
        &[
            "scan", "one.img", "--format", "json", "--format", "markdown",
        ][..],
        &["scan", "one.img", "--format", "pdf=r.pdf"][..],
        &["scan", "one.img", "--format", "json="][..],
    ] {
        let run = amiscan_in(&dir, args);
        assert_eq!(run.code, 2, "{args:?}");
        assert_eq!(run.stdout, "", "{args:?}");
    }
}
