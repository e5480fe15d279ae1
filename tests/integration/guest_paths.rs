//! Guest paths are the guest's bytes from the walk to the report: a home directory whose
//! name is not UTF-8 and one whose name holds a newline are searched like any other, their
//! findings carry the exact bytes in JSON (`path_base64`), are shown escaped in every
//! text format, are waived by a waiver whose glob matches those bytes, are `known` to a
//! baseline written by amiscan itself (version 3) and to one that wrote them escaped
//! (version 2), and reach the remediation script byte for byte.

use crate::util;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use util::{amiscan, decode_base64, escape_for_terminal};

/// The non-UTF-8 home: `/home/caf\xe9` (Latin-1 é).
const LATIN1_HOME: &[u8] = b"/home/caf\xe9";
/// A home whose name holds a newline and a tab.
const CONTROL_HOME: &[u8] = b"/home/new\nline\ttab";

fn guest_join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = dir.to_vec();
    path.push(b'/');
    path.extend_from_slice(name);
    path
}

/// An ext4 image (mke2fs -d) of a small Debian-like root with shell histories in a
/// root-owned home, a Latin-1-named home and a home with control characters.
fn build_image(dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    let _ = fs::remove_dir_all(&tree);
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(
        tree.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    )
    .unwrap();
    fs::write(tree.join("etc/fstab"), "LABEL=root / ext4 defaults 0 1\n").unwrap();
    for home in [b"/root".as_slice(), LATIN1_HOME, CONTROL_HOME] {
        let home = tree.join(OsStr::from_bytes(home.strip_prefix(b"/").unwrap()));
        fs::create_dir_all(&home).unwrap();
        fs::write(home.join(".bash_history"), "ls\nexit\n").unwrap();
    }
    let image = dir.join("paths.img");
    let _ = fs::remove_file(&image);
    let status = crate::util::tool_command("mke2fs")
        .args([
            "-q",
            "-F",
            "-t",
            "ext4",
            "-L",
            "root",
            "-E",
            "root_owner=0:0",
            "-d",
        ])
        .arg(&tree)
        .arg(&image)
        .arg("8M")
        .status()
        .unwrap();
    assert!(status.success(), "mke2fs failed");
    image
}

fn scratch(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("guest_paths")
        .join(format!("{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn scan(image: &Path, extra: &[&OsStr]) -> (util::Run, Value) {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("scan"),
        image.as_os_str(),
        OsStr::new("--select"),
        OsStr::new("history.shell"),
        OsStr::new("--no-default-waivers"),
        OsStr::new("--format"),
        OsStr::new("json"),
    ];
    args.extend_from_slice(extra);
    let run = amiscan(args);
    let report: Value = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.describe()));
    (run, report)
}

/// The findings of `history.shell` as (exact path bytes, finding).
fn findings(report: &Value) -> Vec<(Vec<u8>, Value)> {
    let results = report["images"][0]["results"].as_array().unwrap();
    let result = results
        .iter()
        .find(|r| r["rule"] == "history.shell")
        .unwrap();
    result["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let bytes = match f["path_base64"].as_str() {
                Some(encoded) => decode_base64(encoded),
                None => f["path"].as_str().unwrap().as_bytes().to_vec(),
            };
            (bytes, f.clone())
        })
        .collect()
}

fn expected_paths() -> Vec<Vec<u8>> {
    let mut paths: Vec<Vec<u8>> = [b"/root".as_slice(), LATIN1_HOME, CONTROL_HOME]
        .iter()
        .map(|home| guest_join(home, b".bash_history"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn histories_in_homes_of_any_name_are_found_with_their_exact_bytes() {
    let dir = scratch("exact");
    let image = build_image(&dir);
    let (run, report) = scan(&image, &[]);
    run.expect_code(1);
    assert_eq!(report["schema_version"], amiscan::report::SCHEMA_VERSION);
    let found = findings(&report);
    let mut paths: Vec<Vec<u8>> = found.iter().map(|(p, _)| p.clone()).collect();
    paths.sort();
    assert_eq!(paths, expected_paths(), "{report:#}");
    for (bytes, finding) in &found {
        let valid = std::str::from_utf8(bytes).is_ok();
        assert_eq!(finding["path_base64"].is_string(), !valid, "{finding:#}");
        // The text is what JSON can carry: the bytes themselves when they are UTF-8
        // (control characters included, JSON escapes them), else a lossy rendering.
        assert_eq!(
            finding["path"].as_str().unwrap(),
            String::from_utf8_lossy(bytes),
            "{finding:#}"
        );
    }

    // Text formats show every path escaped, never raw control bytes.
    let shown: Vec<String> = expected_paths()
        .iter()
        .map(|p| escape_for_terminal(p))
        .collect();
    for format in ["table", "markdown", "junit", "sarif"] {
        let run = amiscan([
            OsStr::new("scan"),
            image.as_os_str(),
            OsStr::new("--select"),
            OsStr::new("history.shell"),
            OsStr::new("--no-default-waivers"),
            OsStr::new("--format"),
            OsStr::new(format),
        ]);
        run.expect_code(1);
        let text = run.stdout_text();
        if format != "sarif" {
            for path in &shown {
                assert!(
                    text.contains(path.as_str()),
                    "{format} lacks {path}:\n{text}"
                );
            }
        }
        assert!(
            !text.contains("new\nline"),
            "{format} printed a raw newline of a name:\n{text}"
        );
    }
    let run = amiscan([
        OsStr::new("scan"),
        image.as_os_str(),
        OsStr::new("--select"),
        OsStr::new("history.shell"),
        OsStr::new("--no-default-waivers"),
        OsStr::new("--format"),
        OsStr::new("jsonl"),
    ]);
    let mut jsonl: Vec<Vec<u8>> = run
        .stdout_text()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|value| value["type"] == "finding")
        .map(|value| match value["path_base64"].as_str() {
            Some(encoded) => decode_base64(encoded),
            None => value["path"].as_str().unwrap().as_bytes().to_vec(),
        })
        .collect();
    jsonl.sort();
    assert_eq!(jsonl, expected_paths());
}

#[test]
fn waivers_and_baselines_match_the_exact_bytes() {
    let dir = scratch("gate");
    let image = build_image(&dir);

    // `?` in a waiver glob stands for one byte of a name that is not UTF-8.
    let waivers = dir.join("waivers.yaml");
    fs::write(
        &waivers,
        "waivers:\n  - rule: history.shell\n    paths: [\"/home/caf?/.bash_history\", \"/home/new?line?tab/.bash_history\"]\n    reason: test\n",
    )
    .unwrap();
    let (run, report) = scan(&image, &[OsStr::new("--waivers"), waivers.as_os_str()]);
    run.expect_code(1);
    let found = findings(&report);
    for (bytes, finding) in &found {
        let root = bytes.starts_with(b"/root/");
        assert_eq!(finding["waiver"].is_null(), root, "{finding:#}");
    }
    assert_eq!(report["waivers"][0]["matched"], 2, "{report:#}");

    // A version 3 baseline written by amiscan: every finding is known, none fixed.
    let baseline = dir.join("baseline.json");
    fs::write(&baseline, &run.stdout).unwrap();
    let (run, report) = scan(&image, &[OsStr::new("--baseline"), baseline.as_os_str()]);
    run.expect_code(0);
    for (_, finding) in findings(&report) {
        assert_eq!(finding["baseline"], "known", "{finding:#}");
    }
    assert_eq!(report["images"][0]["fixed"], Value::Array(Vec::new()));

    // A version 2 baseline wrote paths escaped for a terminal: they still match.
    let mut old: Value = serde_json::from_slice(&fs::read(&baseline).unwrap()).unwrap();
    old["schema_version"] = Value::from(2);
    for result in old["images"][0]["results"].as_array_mut().unwrap() {
        for finding in result["findings"].as_array_mut().unwrap() {
            let bytes = match finding["path_base64"].as_str() {
                Some(encoded) => decode_base64(encoded),
                None => finding["path"].as_str().unwrap().as_bytes().to_vec(),
            };
            finding["path"] = Value::from(escape_for_terminal(&bytes));
            finding.as_object_mut().unwrap().remove("path_base64");
        }
    }
    fs::write(&baseline, serde_json::to_vec(&old).unwrap()).unwrap();
    let (run, report) = scan(&image, &[OsStr::new("--baseline"), baseline.as_os_str()]);
    run.expect_code(0);
    for (_, finding) in findings(&report) {
        assert_eq!(finding["baseline"], "known", "{finding:#}");
    }
}

#[test]
fn the_remediation_script_removes_the_exact_files() {
    let dir = scratch("script");
    let image = build_image(&dir);
    let script = dir.join("fix.sh");
    let run = amiscan([
        OsStr::new("scan"),
        image.as_os_str(),
        OsStr::new("--select"),
        OsStr::new("history.shell"),
        OsStr::new("--no-default-waivers"),
        OsStr::new("--remediation-script"),
        script.as_os_str(),
    ]);
    run.expect_code(1);
    // Run it against a copy of the tree (AMISCAN_ROOT makes it act below that root).
    let root = std::path::absolute(dir.join("root")).unwrap();
    let status = crate::util::tool_command("cp")
        .arg("-a")
        .arg(dir.join("tree"))
        .arg(&root)
        .status()
        .unwrap();
    assert!(status.success());
    let output = crate::util::tool_command("sh")
        .arg(&script)
        .env("AMISCAN_ROOT", &root)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for path in expected_paths() {
        let on_host = root.join(OsStr::from_bytes(path.strip_prefix(b"/").unwrap()));
        assert!(
            !on_host.exists(),
            "{} is still there",
            escape_for_terminal(&path)
        );
    }
}
