//! User rule packs and the rule documentation: `rules check` accepts a good pack and points
//! at the line of each problem in a broken one; `--rules` overrides a built-in rule;
//! `rules explain` shows the remediation; docs/rules.md is what `rules list --format
//! markdown` prints.

use crate::util;

use std::ffi::OsString;
use std::fs;
use std::path::PathBuf;

use serde_json::Value;
use util::{amiscan, manifest_dir, rule_image};

/// A fresh directory for this test's pack files.
fn pack_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("rule_packs")
        .join(test);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// `amiscan rules check PACK`.
fn rules_check(pack: &std::path::Path) -> util::Run {
    amiscan([
        OsString::from("rules"),
        "check".into(),
        pack.as_os_str().to_owned(),
    ])
}

fn write_pack(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

const GOOD_PACK: &str = r#"# A user pack: one path rule, one content rule.
rules:
  - id: local.backup-archives
    title: Backup archives left in /root
    severity: medium
    description: Archives of the build host's files.
    remediation: rm -f /root/*.tgz
    tags: [local, cleanup]
    check:
      kind: path
      paths: ["/root/*.tgz", "/root/*.tar.gz"]
      message: backup archive
  - id: local.app-token
    title: An application token in the app's settings
    severity: high
    description: Tokens belong in a secrets store.
    remediation: remove the token line
    checks:
      - kind: content
        paths: ["/opt/app/*.ini"]
        patterns:
          - name: token line
            regex: "(?m)^token\\s*="
        message: application token
      - kind: path
        paths: ["~/.app-token"]
        message: token file
"#;

#[test]
fn a_good_pack_checks_clean() {
    let dir = pack_dir("good");
    let pack = write_pack(&dir, "good.yaml", GOOD_PACK);
    let run = rules_check(&pack);
    run.expect_code(0);
    assert!(
        run.stdout_text().contains("2 rules"),
        "{}",
        run.stdout_text()
    );
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    // And it runs: the pack's rules join the built-in ones.
    let run = amiscan([
        OsString::from("scan"),
        rule_image("leaky").into_os_string(),
        "--format".into(),
        "json".into(),
        "--rules".into(),
        dir.join("good.yaml").into_os_string(),
        "--select".into(),
        "local.*".into(),
    ]);
    run.expect_code(0);
    let report = util::single_image(serde_json::from_slice(&run.stdout).unwrap());
    let ids: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["local.app-token", "local.backup-archives"]);
}

/// A broken pack, the line `rules check` must name, and words its message must hold.
struct Broken {
    name: &'static str,
    text: &'static str,
    line: u64,
    says: &'static [&'static str],
}

const BROKEN: &[Broken] = &[
    Broken {
        name: "indent-under",
        // `severity` is indented less than the keys beside it. The YAML parser closes the
        // rule's mapping there, so the problem surfaces as the rule (line 3, where its
        // keys start) missing `severity` — the right key, one line up.
        text: "rules:\n  - id: local.bad-indent\n    title: t\n   severity: high\n    description: d\n    remediation: r\n    check: {kind: path, paths: [\"/a\"], message: m}\n",
        line: 3,
        says: &["severity"],
    },
    Broken {
        name: "indent-over",
        text: "rules:\n  - id: local.bad-indent\n    title: t\n      severity: high\n    description: d\n    remediation: r\n    check: {kind: path, paths: [\"/a\"], message: m}\n",
        line: 4,
        says: &[],
    },
    Broken {
        name: "unknown-rule-field",
        text: "rules:\n  - id: local.typo\n    title: t\n    severity: high\n    description: d\n    remediation: r\n    severty: low\n    check: {kind: path, paths: [\"/a\"], message: m}\n",
        line: 7,
        says: &["severty"],
    },
    Broken {
        name: "unknown-check-field",
        text: "rules:\n  - id: local.typo\n    title: t\n    severity: high\n    description: d\n    remediation: r\n    check:\n      kind: path\n      paths: [\"/a\"]\n      mesage: m\n",
        line: 10,
        says: &["mesage"],
    },
    Broken {
        name: "invalid-regex",
        // Check compilation errors point at the check (its `kind:` line), as the
        // relative-glob unit test in src/rules/pack.rs has it.
        text: "rules:\n  - id: local.bad-regex\n    title: t\n    severity: high\n    description: d\n    remediation: r\n    check:\n      kind: content\n      paths: [\"/etc/x\"]\n      patterns:\n        - name: broken\n          regex: \"(abc\"\n      message: m\n",
        line: 8,
        says: &["`broken`", "regex"],
    },
    Broken {
        name: "relative-glob",
        text: "rules:\n  - id: local.relative\n    title: t\n    severity: high\n    description: d\n    remediation: r\n    check:\n      kind: path\n      paths: [\"/etc/ok\", \"var/log/*.log\"]\n      message: m\n",
        line: 8,
        says: &["var/log/*.log", "absolute"],
    },
    Broken {
        name: "duplicate-id",
        text: "rules:\n  - id: local.twice\n    title: t\n    severity: high\n    description: d\n    remediation: r\n    check: {kind: path, paths: [\"/a\"], message: m}\n  - id: local.twice\n    title: t2\n    severity: low\n    description: d\n    remediation: r\n    check: {kind: path, paths: [\"/b\"], message: m}\n",
        line: 8,
        says: &["local.twice", "twice", "line 2"],
    },
    Broken {
        name: "bad-severity",
        text: "rules:\n  - id: local.severity\n    title: t\n    severity: urgent\n    description: d\n    remediation: r\n    check: {kind: path, paths: [\"/a\"], message: m}\n",
        line: 4,
        says: &["urgent"],
    },
];

/// Each broken pack alone: exit 1 and a `FILE:LINE:COLUMN: message` line at the right
/// line. Every case is tried before the test fails, so one run lists every mismatch.
#[test]
fn broken_packs_name_file_line_and_column() {
    let dir = pack_dir("broken");
    let mut mismatches = Vec::new();
    for case in BROKEN {
        let path = write_pack(&dir, &format!("{}.yaml", case.name), case.text);
        let run = amiscan([
            OsString::from("rules"),
            "check".into(),
            path.clone().into_os_string(),
        ]);
        if run.code != 1 {
            mismatches.push(format!(
                "{}: exit {} (expected 1); stderr:\n{}",
                case.name, run.code, run.stderr
            ));
            continue;
        }
        let prefix = format!("{}:", path.display());
        let Some(first) = run.stderr.lines().find(|l| l.starts_with(&prefix)) else {
            mismatches.push(format!(
                "{}: no line starting with {prefix}; stderr:\n{}",
                case.name, run.stderr
            ));
            continue;
        };
        let mut fields = first[prefix.len()..].splitn(3, ':');
        let line: Option<u64> = fields.next().and_then(|l| l.parse().ok());
        let column: Option<u64> = fields.next().and_then(|c| c.parse().ok());
        match (line, column) {
            (Some(line), Some(column)) if line == case.line && column >= 1 => {}
            _ => mismatches.push(format!(
                "{}: expected line {}, got `{first}`",
                case.name, case.line
            )),
        }
        for word in case.says {
            if !run.stderr.contains(word) {
                mismatches.push(format!(
                    "{}: the message does not say {word:?}: {}",
                    case.name, run.stderr
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Several pack arguments: every broken one is reported, the good one does not hide them.
#[test]
fn rules_check_reports_every_broken_argument() {
    let dir = pack_dir("several");
    let good = write_pack(&dir, "good.yaml", GOOD_PACK);
    let regex = BROKEN.iter().find(|b| b.name == "invalid-regex").unwrap();
    let severity = BROKEN.iter().find(|b| b.name == "bad-severity").unwrap();
    let a = write_pack(&dir, "a.yaml", regex.text);
    let b = write_pack(&dir, "b.yaml", severity.text);
    let run = amiscan([
        OsString::from("rules"),
        "check".into(),
        a.clone().into_os_string(),
        good.into_os_string(),
        b.clone().into_os_string(),
    ]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains(&format!("{}:{}:", a.display(), regex.line)),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("{}:{}:", b.display(), severity.line)),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("2 problem(s)"), "{}", run.stderr);
}

const OVERRIDE_PACK: &str = r#"# Our images regenerate host keys at boot in any case: downgrade the built-in rule.
rules:
  - id: ssh.host-keys
    title: SSH host keys from the build host (regenerated at boot by our unit)
    severity: low
    description: >
      Overridden locally: a boot unit deletes and regenerates host keys, so keys in the
      image are only noted.
    remediation: |
      shred -u /etc/ssh/ssh_host_*key /etc/ssh/ssh_host_*key.pub
    tags: [ssh, local]
    check:
      kind: path
      paths: ["/etc/ssh/ssh_host_*key", "/etc/ssh/ssh_host_*key.pub"]
      message: SSH host key baked into the image
"#;

fn scan_host_keys(rules: Option<&std::path::Path>) -> (util::Run, Value) {
    let mut args: Vec<OsString> = vec![
        "scan".into(),
        rule_image("leaky").into_os_string(),
        "--format".into(),
        "json".into(),
        "--select".into(),
        "ssh.host-keys".into(),
    ];
    if let Some(path) = rules {
        args.push("--rules".into());
        args.push(path.into());
    }
    let run = amiscan(&args);
    let json = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("{}: {e}; stderr:\n{}", run.describe(), run.stderr));
    (run, util::single_image(json))
}

#[test]
fn a_user_pack_overrides_a_builtin_rule() {
    let (run, builtin) = scan_host_keys(None);
    run.expect_code(1);
    let result = &builtin["results"][0];
    assert_eq!(result["rule"], "ssh.host-keys");
    assert_eq!(result["severity"], "high");
    assert_eq!(result["gating"], true);

    let dir = pack_dir("override");
    let pack = write_pack(&dir, "host-keys.yaml", OVERRIDE_PACK);
    let check = rules_check(&pack);
    check.expect_code(0);
    // As a file and as a directory of packs.
    for rules in [pack.as_path(), dir.as_path()] {
        let (run, report) = scan_host_keys(Some(rules));
        run.expect_code(0);
        let result = &report["results"][0];
        assert_eq!(result["rule"], "ssh.host-keys");
        assert_eq!(result["status"], "fail");
        assert_eq!(result["severity"], "low", "{result}");
        assert_eq!(
            result["gating"], false,
            "low is below the default --fail-on medium"
        );
        assert!(result["title"]
            .as_str()
            .unwrap()
            .contains("regenerated at boot"));
        let findings = result["findings"].as_array().unwrap();
        assert!(!findings.is_empty());
        for finding in findings {
            assert_eq!(finding["severity"], "low", "{finding}");
        }
        assert_eq!(report["summary"]["verdict"], "pass");
    }
    // The pack replaces the rule, it does not add a second one.
    let run = amiscan([
        OsString::from("rules"),
        "list".into(),
        "--format".into(),
        "json".into(),
        "--rules".into(),
        pack.clone().into_os_string(),
    ]);
    run.expect_code(0);
    let list: Value = serde_json::from_slice(&run.stdout).unwrap();
    let matching: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["id"] == "ssh.host-keys")
        .collect();
    assert_eq!(matching.len(), 1);
    assert_eq!(matching[0]["severity"], "low");
    assert_eq!(matching[0]["source"], pack.display().to_string());
    let explain = amiscan([
        OsString::from("rules"),
        "explain".into(),
        "ssh.host-keys".into(),
        "--rules".into(),
        pack.into_os_string(),
    ]);
    explain.expect_code(0);
    assert!(
        explain.stdout_text().contains("severity: low"),
        "{}",
        explain.stdout_text()
    );
}

#[test]
fn explain_prints_the_remediation() {
    let run = amiscan(["rules", "explain", "ssh.host-keys"]);
    run.expect_code(0);
    let text = run.stdout_text();
    for needle in [
        "ssh.host-keys",
        "severity: high",
        "defined in: rules/ssh.yaml:",
        "Remediation:",
        "shred -u /etc/ssh/ssh_host_*key /etc/ssh/ssh_host_*key.pub",
        "References:",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
    let run = amiscan(["rules", "explain", "ssh.no-such-rule"]);
    run.expect_code(2);
    assert!(run.stderr.contains("ssh.no-such-rule"), "{}", run.stderr);
}

/// docs/rules.md is generated; this fails when it is stale or missing.
#[test]
fn docs_rules_md_is_current() {
    const REGENERATE: &str =
        "regenerate it with `cargo run -- rules list --format markdown > docs/rules.md`";
    let run = amiscan(["rules", "list", "--format", "markdown"]);
    run.expect_code(0);
    let generated = run.stdout_text();
    let path = manifest_dir().join("docs").join("rules.md");
    let committed = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} cannot be read ({e}); {REGENERATE}", path.display()));
    if committed != generated {
        let lines = generated.lines().count().max(committed.lines().count()) + 1;
        let (line, (want, got)) = generated
            .lines()
            .chain(std::iter::repeat(""))
            .zip(committed.lines().chain(std::iter::repeat("")))
            .take(lines)
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .unwrap_or((lines, ("(end of file)", "(a different line ending)")));
        panic!(
            "docs/rules.md is stale (first difference at line {}: generated {want:?}, file has {got:?}); {REGENERATE}",
            line + 1
        );
    }
}

const UNBUILDABLE_PACK: &str = r#"rules:
  - id: local.unbuildable
    title: A detector whose regex only fails to build
    severity: high
    description: The syntax parses; the class name does not exist.
    remediation: none
    check:
      kind: secrets
      detectors:
        - name: Broken class
          regex: '(?i)aws_secret_access_key\s*=\s*(?P<secret>\p{NoSuchClass}{8,})'
          keywords: [aws_secret_access_key]
      message: secret
"#;

/// A regex error only building finds (not the syntax check at load) is never a pass: the
/// scan that meets the detector's keyword reports its rule as error, naming the detector,
/// and `rules check` finds it beforehand.
#[test]
fn a_regex_that_does_not_build_makes_its_rule_error() {
    let dir = pack_dir("unbuildable");
    let pack = write_pack(&dir, "unbuildable.yaml", UNBUILDABLE_PACK);
    let check = rules_check(&pack);
    assert_ne!(check.code, 0, "{}", check.describe());
    let said = format!("{}{}", check.stdout_text(), check.stderr);
    assert!(said.contains("Broken class"), "{said}");

    let run = amiscan([
        OsString::from("scan"),
        rule_image("leaky").into_os_string(),
        "--format".into(),
        "json".into(),
        "--rules".into(),
        pack.into_os_string(),
        "--select".into(),
        "local.unbuildable".into(),
    ]);
    run.expect_code(3);
    let report = util::single_image(serde_json::from_slice(&run.stdout).unwrap());
    let result = &report["results"][0];
    assert_eq!(result["rule"], "local.unbuildable");
    assert_eq!(result["status"], "error", "{result}");
    assert!(
        result.to_string().contains("Broken class")
            && result.to_string().contains("could not be compiled"),
        "{result}"
    );
}
