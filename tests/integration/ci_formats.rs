//! The CI renderings of real scans. SARIF must satisfy the official SARIF 2.1.0 schema and
//! JUnit the Jenkins xunit-plugin's junit-10.xsd (both in testdata/schemas/, provenance in
//! its README), checked by real validators: Python's `jsonschema` (Debian's
//! python3-jsonschema, with python3-rfc3987 so `uri-reference` formats are checked too) and
//! `xmllint --schema` (libxml2-utils). Each scan writes JSON, SARIF and JUnit in one run, so
//! the three describe the same scan and the CI formats are checked against the JSON.
//!
//! Secrets: tests/integration/creds.rs renders every `--format` that `scan --help` lists and looks for
//! planted values; `the_ci_formats_are_listed_for_the_leak_test` keeps SARIF and JUnit in
//! that list.

use crate::util;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use util::{amiscan, build_dir, manifest_dir, rule_image, Run};

const AS_OF: &str = "2026-11-22";

fn work_dir() -> PathBuf {
    let dir = build_dir().join("ci-formats");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What one scan wrote: the JSON report (stdout), SARIF and JUnit (`--output` files).
struct Outputs {
    run: Run,
    json: Value,
    sarif_path: PathBuf,
    sarif_text: String,
    sarif: Value,
    junit_path: PathBuf,
    junit: Value,
}

/// `amiscan scan IMAGES --format json --output sarif=… --output junit=… EXTRA`, with a
/// fixed `--as-of` and no default waiver files. `name` keeps parallel tests' files apart.
fn scan(name: &str, images: &[&Path], extra: &[&str]) -> Outputs {
    let dir = work_dir();
    let sarif_path = dir.join(format!("{name}.sarif"));
    let junit_path = dir.join(format!("{name}.xml"));
    for path in [&sarif_path, &junit_path] {
        let _ = std::fs::remove_file(path);
    }
    let mut args: Vec<String> = vec!["scan".into()];
    args.extend(images.iter().map(|p| p.display().to_string()));
    args.extend(
        [
            "--as-of",
            AS_OF,
            "--no-default-waivers",
            "--format",
            "json",
            "--output",
        ]
        .map(String::from),
    );
    args.push(format!("sarif={}", sarif_path.display()));
    args.push("--output".into());
    args.push(format!("junit={}", junit_path.display()));
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = amiscan(&args);
    let json: Value = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: stdout is not JSON ({e}); exit {}, stderr:\n{}",
            run.describe(),
            run.code,
            run.stderr
        )
    });
    assert_eq!(json["summary"]["exit_code"], run.code, "{}", run.describe());
    let sarif_text = std::fs::read_to_string(&sarif_path)
        .unwrap_or_else(|e| panic!("{}: no SARIF file ({e}): {}", run.describe(), run.stderr));
    let sarif = serde_json::from_str(&sarif_text).unwrap();
    let junit = junit_summary(&junit_path);
    let outputs = Outputs {
        run,
        json,
        sarif_path,
        sarif_text,
        sarif,
        junit_path,
        junit,
    };
    check(&outputs);
    outputs
}

// ---------------------------------------------------------------------------------------
// Validators.
// ---------------------------------------------------------------------------------------

/// Validates argv[2] against the draft-07 schema argv[1], formats included; exits 2 when
/// the format checks `uri` and `uri-reference` are unavailable (they need rfc3987), so a
/// missing package cannot make the validation quietly weaker.
const VALIDATE_JSON: &str = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1], encoding="utf-8"))
document = json.load(open(sys.argv[2], encoding="utf-8"))
checker = jsonschema.FormatChecker()
missing = [f for f in ("uri", "uri-reference") if f not in checker.checkers]
if missing:
    print("format checks unavailable:", missing, "(install python3-rfc3987)")
    sys.exit(2)
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema, format_checker=checker)
errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
for error in errors[:20]:
    print("/".join(str(p) for p in error.absolute_path), ":", error.message[:400])
sys.exit(1 if errors else 0)
"#;

/// A Python with `jsonschema` and `rfc3987`: Debian's (what .ci/run installs) or the
/// first `python3` on PATH that has them.
fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        for candidate in ["/usr/bin/python3", "python3"] {
            let ok = Command::new(candidate)
                .args(["-c", "import jsonschema, rfc3987"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return candidate.to_string();
            }
        }
        panic!(
            "no python3 with jsonschema and rfc3987: install python3-jsonschema and \
             python3-rfc3987 (.ci/run does)"
        );
    })
}

fn sarif_schema() -> PathBuf {
    manifest_dir().join("testdata/schemas/sarif-schema-2.1.0.json")
}

fn junit_schema() -> PathBuf {
    manifest_dir().join("testdata/schemas/junit-10.xsd")
}

fn validate_json(schema: &Path, document: &Path) -> Result<(), String> {
    let output = Command::new(python())
        .args(["-c", VALIDATE_JSON])
        .arg(schema)
        .arg(document)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    match output.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(text),
        _ => panic!("the JSON schema validator did not run: {text}"),
    }
}

fn validate_xml(schema: &Path, document: &Path) -> Result<(), String> {
    let output = crate::util::tool_command("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema)
        .arg(document)
        .output()
        .unwrap_or_else(|e| panic!("cannot run xmllint (install libxml2-utils): {e}"));
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    match output.status.code() {
        Some(0) => Ok(()),
        // 3: the document does not validate; 1: it is not well-formed XML.
        Some(1 | 3) => Err(text),
        _ => panic!("xmllint did not run: {text}"),
    }
}

/// The JUnit file as JSON, read by Python's XML parser: suites with their counts and each
/// test case's outcome (`pass`, `failure`, `error`, `skipped`), plus the `<testsuites>`
/// totals.
const READ_JUNIT: &str = r#"
import json, sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
def outcome(case):
    for kind in ("failure", "error", "skipped"):
        element = case.find(kind)
        if element is not None:
            return {"outcome": kind, "message": element.get("message"), "type": element.get("type"), "text": element.text or ""}
    out = case.find("system-out")
    return {"outcome": "pass", "out": out.text if out is not None else None}
suites = []
for suite in root.findall("testsuite"):
    cases = []
    for case in suite.findall("testcase"):
        entry = {"classname": case.get("classname"), "name": case.get("name")}
        entry.update(outcome(case))
        cases.append(entry)
    suites.append({key: suite.get(key) for key in ("name", "tests", "failures", "errors", "skipped", "time")} | {"cases": cases})
totals = {key: root.get(key) for key in ("name", "tests", "failures", "errors", "time")}
print(json.dumps({"tag": root.tag, "totals": totals, "suites": suites}))
"#;

fn junit_summary(path: &Path) -> Value {
    let output = Command::new(python())
        .args(["-c", READ_JUNIT])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{} is not readable XML: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

// ---------------------------------------------------------------------------------------
// What every scan's SARIF and JUnit must say, given its JSON report.
// ---------------------------------------------------------------------------------------

fn percent_decode(uri: &str) -> Vec<u8> {
    let bytes = uri.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn sarif_level(severity: &str) -> &'static str {
    match severity {
        "critical" | "high" => "error",
        "medium" => "warning",
        "low" | "info" => "note",
        other => panic!("unknown severity {other}"),
    }
}

/// The findings that become SARIF results: those of failing and waived rules, in order.
fn reported_findings(image: &Value) -> Vec<(&Value, &Value)> {
    image["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail" || r["status"] == "waived")
        .flat_map(|r| {
            r["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |f| (r, f))
        })
        .collect()
}

fn suppressed(result: &Value) -> bool {
    result["suppressions"]
        .as_array()
        .is_some_and(|s| !s.is_empty())
}

fn is_waived(finding: &Value) -> bool {
    finding["waiver"].is_object() && finding["waiver"]["expired"] == false
}

fn check(outputs: &Outputs) {
    let what = outputs.run.describe();
    let json = &outputs.json;
    let sarif = &outputs.sarif;

    if let Err(errors) = validate_json(&sarif_schema(), &outputs.sarif_path) {
        panic!("{what}: the SARIF does not match the SARIF 2.1.0 schema:\n{errors}");
    }
    if let Err(errors) = validate_xml(&junit_schema(), &outputs.junit_path) {
        panic!("{what}: the JUnit XML does not match junit-10.xsd:\n{errors}");
    }

    let images = json["images"].as_array().unwrap();
    let rule_ids: Vec<&str> = json["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(!rule_ids.is_empty(), "{what}: the report lists no rules");
    assert!(
        rule_ids.windows(2).all(|w| w[0] < w[1]),
        "{what}: rules are listed once each, in id order"
    );

    // SARIF: a run per image, each describing every rule that ran exactly once.
    assert_eq!(sarif["version"], "2.1.0");
    let runs = sarif["runs"].as_array().unwrap();
    assert_eq!(runs.len(), images.len(), "{what}: one run per image");
    let mut categories = BTreeSet::new();
    for (run, image) in runs.iter().zip(images) {
        let descriptors = run["tool"]["driver"]["rules"].as_array().unwrap();
        let ids: Vec<&str> = descriptors
            .iter()
            .map(|d| d["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, rule_ids, "{what}: one descriptor per rule that ran");
        for descriptor in descriptors {
            let tags = descriptor["properties"]["tags"].as_array().unwrap();
            assert!(tags.contains(&Value::from("security")));
            let score: f64 = descriptor["properties"]["security-severity"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((0.1..=10.0).contains(&score));
        }
        assert_eq!(run["tool"]["driver"]["name"], "amiscan");
        match run.get("automationDetails") {
            Some(details) => {
                assert!(
                    images.len() > 1,
                    "{what}: a single image leaves the category to the upload"
                );
                let id = details["id"].as_str().unwrap();
                assert!(id.starts_with("amiscan/") && id.ends_with('/'), "{id}");
                assert!(
                    categories.insert(id.to_string()),
                    "{what}: category {id} twice"
                );
            }
            None => assert_eq!(
                images.len(),
                1,
                "{what}: several runs need distinct categories"
            ),
        }
        assert_eq!(run["properties"]["image"], image["image"]["path"]);
        let invocation = &run["invocations"][0];
        // An image read in part did not run to completion either: GitHub must not close
        // alerts because results are missing.
        assert_eq!(
            invocation["executionSuccessful"],
            image["error"].is_null() && image["summary"]["incomplete"] == false,
            "{what}"
        );
        let notifications = invocation["toolExecutionNotifications"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for result in image["results"].as_array().unwrap() {
            if result["status"] == "error" {
                assert!(
                    notifications.iter().any(|n| n["level"] == "error"
                        && n["associatedRule"]["id"] == result["rule"]
                        && ids[n["associatedRule"]["index"].as_u64().unwrap() as usize]
                            == result["rule"]),
                    "{what}: no notification for the error of {}",
                    result["rule"]
                );
            }
        }

        // One result per finding of a failing or waived rule, in the report's order.
        let expected = reported_findings(image);
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), expected.len(), "{what}: results vs findings");
        let mut fingerprints = BTreeSet::new();
        for (got, (rule, finding)) in results.iter().zip(&expected) {
            let at = format!("{what}: {} {}", rule["rule"], finding);
            assert_eq!(got["ruleId"], rule["rule"], "{at}");
            let index = got["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(
                ids[index],
                rule["rule"].as_str().unwrap(),
                "{at}: ruleIndex"
            );
            assert_eq!(
                got["level"],
                sarif_level(finding["severity"].as_str().unwrap()),
                "{at}"
            );
            assert_eq!(suppressed(got), is_waived(finding), "{at}: suppression");
            if suppressed(got) {
                let suppression = &got["suppressions"][0];
                assert_eq!(suppression["kind"], "external");
                assert_eq!(suppression["status"], "accepted");
                assert_eq!(suppression["justification"], finding["waiver"]["reason"]);
            }
            let state = match finding["baseline"].as_str() {
                None => Value::Null,
                Some("new") => Value::from("new"),
                Some("known") => Value::from("unchanged"),
                Some(other) => panic!("baseline state {other}"),
            };
            assert_eq!(got["baselineState"], state, "{at}: baselineState");
            assert_eq!(got["properties"]["gating"], finding["gating"], "{at}");
            let locations = got["locations"].as_array().unwrap();
            assert_eq!(locations.len(), 1, "{at}: GitHub needs one location");
            let physical = &locations[0]["physicalLocation"];
            let uri = physical["artifactLocation"]["uri"].as_str().unwrap();
            assert!(!uri.is_empty() && !uri.starts_with('/'), "{at}: {uri}");
            match finding["path"].as_str() {
                Some(path) => {
                    // The URI carries the guest's exact bytes.
                    let exact = match finding["path_base64"].as_str() {
                        Some(encoded) => util::decode_base64(encoded),
                        None => path.as_bytes().to_vec(),
                    };
                    assert_eq!(physical["artifactLocation"]["uriBaseId"], "GUESTROOT");
                    assert_eq!(
                        percent_decode(uri),
                        exact.strip_prefix(b"/").unwrap_or(&exact),
                        "{at}"
                    );
                    assert_eq!(physical["region"]["startLine"], finding["line"], "{at}");
                }
                None => assert_eq!(physical["artifactLocation"]["uriBaseId"], "IMAGEDIR"),
            }
            let message = got["message"]["text"].as_str().unwrap();
            assert!(
                message.starts_with(finding["message"].as_str().unwrap()),
                "{at}: {message}"
            );
            if let Some(fingerprint) = finding["fingerprint"].as_str() {
                assert!(message.contains(fingerprint), "{at}: {message}");
            }
            let key = got["partialFingerprints"]["amiscan/v1"].as_str().unwrap();
            assert_eq!(key.len(), 64, "{at}: {key}");
            assert!(got["partialFingerprints"]
                .get("primaryLocationLineHash")
                .is_none());
            assert!(
                fingerprints.insert(key.to_string()),
                "{at}: two findings share the fingerprint {key}"
            );
        }
    }

    // JUnit: a suite per image, a case per rule, counts as the JSON summary says.
    let junit = &outputs.junit;
    assert_eq!(junit["tag"], "testsuites");
    let suites = junit["suites"].as_array().unwrap();
    assert_eq!(suites.len(), images.len(), "{what}: one suite per image");
    let (mut tests, mut failures, mut errors) = (0, 0, 0);
    for (suite, image) in suites.iter().zip(images) {
        let count = |key: &str| suite[key].as_str().unwrap().parse::<u64>().unwrap();
        assert_eq!(suite["name"], image["image"]["path"]);
        let cases = suite["cases"].as_array().unwrap();
        tests += count("tests");
        failures += count("failures");
        errors += count("errors");
        if !image["error"].is_null() {
            assert_eq!((count("tests"), count("errors")), (1, 1), "{what}");
            assert_eq!(cases.len(), 1);
            assert_eq!(cases[0]["name"], "open image");
            assert_eq!(cases[0]["outcome"], "error");
            continue;
        }
        let summary = &image["summary"];
        let n = |v: &Value| v.as_u64().unwrap();
        // An image read in part has one more case, `amiscan.read`, an error, first.
        let read = u64::from(summary["incomplete"] == true);
        let cases = if read == 1 {
            assert_eq!(cases[0]["name"], "amiscan.read", "{what}");
            assert_eq!(cases[0]["outcome"], "error", "{what}");
            &cases[1..]
        } else {
            &cases[..]
        };
        assert_eq!(count("tests"), n(&summary["rules"]) + read, "{what}: tests");
        assert_eq!(
            count("errors"),
            n(&summary["results"]["error"]) + read,
            "{what}: errors"
        );
        assert_eq!(
            count("skipped"),
            n(&summary["results"]["waived"]) + n(&summary["results"]["skipped"]),
            "{what}: skipped"
        );
        let results = image["results"].as_array().unwrap();
        let gating_failures = results
            .iter()
            .filter(|r| r["status"] == "fail" && r["gating"] == true)
            .count() as u64;
        assert_eq!(count("failures"), gating_failures, "{what}: failures");
        assert_eq!(cases.len(), results.len());
        for (case, result) in cases.iter().zip(results) {
            let rule = result["rule"].as_str().unwrap();
            assert_eq!(case["name"], rule);
            let prefix = rule.split('.').next().unwrap();
            assert_eq!(case["classname"], format!("amiscan.{prefix}"));
            let expected = match (result["status"].as_str().unwrap(), result["gating"] == true) {
                ("pass", _) | ("fail", false) => "pass",
                ("fail", true) => "failure",
                ("waived" | "skipped", _) => "skipped",
                ("error", _) => "error",
                (other, _) => panic!("status {other}"),
            };
            assert_eq!(case["outcome"], expected, "{what}: {rule}");
            if result["status"] == "fail" {
                // Failing or not, the findings are listed where a CI user looks.
                let listed = if expected == "failure" {
                    case["text"].as_str().unwrap()
                } else {
                    case["out"].as_str().unwrap()
                };
                for finding in result["findings"].as_array().unwrap() {
                    assert!(
                        listed.contains(finding["message"].as_str().unwrap()),
                        "{what}: {rule}: {listed}"
                    );
                }
            }
        }
    }
    let total = |key: &str| {
        junit["totals"][key]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(
        (total("tests"), total("failures"), total("errors")),
        (tests, failures, errors),
        "{what}: <testsuites> totals"
    );
}

fn run_of(outputs: &Outputs, index: usize) -> &Value {
    &outputs.sarif["runs"][index]
}

fn results_of<'a>(outputs: &'a Outputs, rule: &str) -> Vec<&'a Value> {
    run_of(outputs, 0)["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ruleId"] == rule)
        .collect()
}

fn case_of<'a>(outputs: &'a Outputs, rule: &str) -> &'a Value {
    outputs.junit["suites"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == rule)
        .unwrap_or_else(|| panic!("no test case {rule}"))
}

// ---------------------------------------------------------------------------------------
// Scans.
// ---------------------------------------------------------------------------------------

#[test]
fn a_plain_scan_agrees_with_the_json_report() {
    let leaky = rule_image("leaky");
    let out = scan("plain", &[&leaky], &[]);
    assert_eq!(out.run.code, 1);
    let run = run_of(&out, 0);
    assert!(run["results"].as_array().unwrap().len() > 40);
    // The finding without a file is placed on the image, its subject a logical location.
    let defaults = results_of(&out, "sshd.keyboard-interactive");
    assert_eq!(defaults.len(), 1);
    let location = &defaults[0]["locations"][0];
    assert_eq!(
        location["physicalLocation"]["artifactLocation"]["uri"],
        "leaky.img"
    );
    assert_eq!(
        location["logicalLocations"][0]["name"],
        "KbdInteractiveAuthentication"
    );
    // Help carries the remediation, the descriptor the rule's own words.
    let descriptor = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "ssh.host-keys")
        .unwrap();
    assert_eq!(descriptor["name"], "SshHostKeys");
    assert_eq!(descriptor["defaultConfiguration"]["level"], "error");
    assert_eq!(descriptor["properties"]["security-severity"], "8.0");
    let markdown = descriptor["help"]["markdown"].as_str().unwrap();
    assert!(
        markdown.contains("```sh\nshred -u /etc/ssh/ssh_host_*key"),
        "{markdown}"
    );
    assert!(descriptor["help"]["text"]
        .as_str()
        .unwrap()
        .contains("EC2 Image Builder clean-up script"));
    // Below the default gate (medium): listed, but a passing test case.
    let low = case_of(&out, "cleanup.tmp");
    assert_eq!(low["outcome"], "pass");
    assert!(low["out"]
        .as_str()
        .unwrap()
        .contains("below --fail-on medium"));
    let failure = case_of(&out, "ssh.host-keys");
    assert_eq!(failure["outcome"], "failure");
    assert_eq!(failure["type"], "high");
    assert!(failure["text"].as_str().unwrap().contains("Remediation:"));
}

#[test]
fn fail_on_high_makes_medium_failures_passing_test_cases() {
    let leaky = rule_image("leaky");
    let out = scan("fail-on-high", &[&leaky], &["--fail-on", "high"]);
    assert_eq!(out.run.code, 1, "critical and high findings remain");
    let medium = case_of(&out, "cleanup.machine-id");
    assert_eq!(medium["outcome"], "pass");
    assert!(medium["out"]
        .as_str()
        .unwrap()
        .contains("below --fail-on high"));
    assert_eq!(case_of(&out, "creds.aws")["outcome"], "failure");
    // SARIF still reports every finding; `gating` says which fail the scan.
    let machine_id = results_of(&out, "cleanup.machine-id");
    assert_eq!(machine_id.len(), 1);
    assert_eq!(machine_id[0]["properties"]["gating"], false);
    assert_eq!(machine_id[0]["level"], "warning");
}

#[test]
fn waived_findings_are_suppressed_and_expired_waivers_are_not() {
    let leaky = rule_image("leaky");
    let waivers = work_dir().join("waivers.yaml");
    std::fs::write(
        &waivers,
        "waivers:\n\
         \x20 - rule: ssh.host-keys\n\
         \x20   paths: [\"/etc/ssh/ssh_host_*\"]\n\
         \x20   reason: host keys are regenerated at first boot\n\
         \x20   expires: 2027-06-30\n\
         \x20 - rule: history.shell\n\
         \x20   paths: [\"/home/admin/.python_history\"]\n\
         \x20   reason: kept for the support team\n\
         \x20 - rule: cleanup.machine-id\n\
         \x20   paths: [\"/etc/machine-id\"]\n\
         \x20   reason: an old exception\n\
         \x20   expires: 2026-01-31\n",
    )
    .unwrap();
    let out = scan(
        "waivers",
        &[&leaky],
        &["--waivers", waivers.to_str().unwrap()],
    );
    assert_eq!(out.run.code, 1);
    // Every finding waived: the rule is skipped in JUnit, its results suppressed.
    let host_keys = results_of(&out, "ssh.host-keys");
    assert!(host_keys.len() >= 2);
    assert!(host_keys.iter().all(|r| suppressed(r)));
    let case = case_of(&out, "ssh.host-keys");
    assert_eq!(case["outcome"], "skipped");
    let message = case["message"].as_str().unwrap();
    assert!(
        message.starts_with("waived: host keys are regenerated at first boot (")
            && message.contains("waivers.yaml:2"),
        "{message}"
    );
    // Partly waived: the rule still fails, one result suppressed.
    let history = results_of(&out, "history.shell");
    assert_eq!(history.iter().filter(|r| suppressed(r)).count(), 1);
    assert!(history.len() > 1);
    assert_eq!(case_of(&out, "history.shell")["outcome"], "failure");
    // Expired: not suppressed, and the message says so.
    let machine_id = results_of(&out, "cleanup.machine-id");
    assert_eq!(machine_id.len(), 1);
    assert!(!suppressed(machine_id[0]));
    let text = machine_id[0]["message"]["text"].as_str().unwrap();
    assert!(text.contains("expired on 2026-01-31"), "{text}");
    assert_eq!(case_of(&out, "cleanup.machine-id")["outcome"], "failure");
    let configuration = run_of(&out, 0)["invocations"][0]["toolConfigurationNotifications"]
        .as_array()
        .unwrap();
    assert!(configuration.iter().any(|n| n["message"]["text"]
        .as_str()
        .unwrap()
        .contains("expired on 2026-01-31")));
}

#[test]
fn baseline_states_follow_the_earlier_report() {
    let leaky = rule_image("leaky");
    // The earlier report: the same image before the credential rules existed.
    let earlier = amiscan([
        OsStr::new("scan"),
        leaky.as_os_str(),
        OsStr::new("--as-of"),
        OsStr::new(AS_OF),
        OsStr::new("--no-default-waivers"),
        OsStr::new("--ignore"),
        OsStr::new("creds.*"),
        OsStr::new("--format"),
        OsStr::new("json"),
    ]);
    assert_eq!(earlier.code, 1, "{}", earlier.stderr);
    let baseline = work_dir().join("baseline.json");
    std::fs::write(&baseline, &earlier.stdout).unwrap();
    let out = scan(
        "baseline",
        &[&leaky],
        &["--baseline", baseline.to_str().unwrap()],
    );
    let results = run_of(&out, 0)["results"].as_array().unwrap();
    let new: Vec<&Value> = results
        .iter()
        .filter(|r| r["baselineState"] == "new")
        .collect();
    assert!(!new.is_empty());
    assert!(new
        .iter()
        .all(|r| r["ruleId"].as_str().unwrap().starts_with("creds.")));
    assert!(results
        .iter()
        .filter(|r| !r["ruleId"].as_str().unwrap().starts_with("creds."))
        .all(|r| r["baselineState"] == "unchanged"));
    // Known findings do not gate: their rules pass in JUnit, the new ones fail.
    assert_eq!(case_of(&out, "ssh.host-keys")["outcome"], "pass");
    assert_eq!(case_of(&out, "creds.aws")["outcome"], "failure");
    assert_eq!(out.run.code, 1);
}

#[test]
fn two_images_make_two_runs_and_two_suites() {
    let leaky = rule_image("leaky");
    let sealed = rule_image("sealed");
    let out = scan("two-images", &[&leaky, &sealed], &[]);
    assert_eq!(out.run.code, 1);
    let ids: Vec<&str> = (0..2)
        .map(|i| run_of(&out, i)["automationDetails"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["amiscan/leaky.img/", "amiscan/sealed.img/"]);
    let suites = out.junit["suites"].as_array().unwrap();
    assert_eq!(suites[0]["name"], leaky.display().to_string());
    assert_eq!(suites[1]["name"], sealed.display().to_string());
    assert_eq!(suites[1]["failures"], "0");
}

#[test]
fn an_image_that_cannot_be_opened_is_an_error() {
    let missing = work_dir().join("no-such-image.img");
    let out = scan("unreadable", &[&missing], &[]);
    assert_eq!(out.run.code, 2);
    let run = run_of(&out, 0);
    assert_eq!(run["invocations"][0]["executionSuccessful"], false);
    assert_eq!(
        run["invocations"][0]["toolExecutionNotifications"][0]["level"],
        "error"
    );
    assert_eq!(run["results"].as_array().unwrap().len(), 0);
    let case = &out.junit["suites"][0]["cases"][0];
    assert!(case["message"]
        .as_str()
        .unwrap()
        .contains("no-such-image.img"));
}

#[test]
fn rules_that_cannot_decide_are_errors_and_notifications() {
    // Part of this guest is on a volume amiscan cannot read: some rules cannot decide.
    util::ensure_images();
    let image = util::image("incomplete.img");
    let out = scan("incomplete", &[&image], &[]);
    assert_eq!(out.run.code, 3);
    let errors: u64 = out.junit["suites"][0]["errors"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(errors > 0);
    let notifications = run_of(&out, 0)["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .unwrap();
    // The unreadable volume itself, an error located at the image file, so GitHub code
    // scanning does not read the missing results as fixed.
    let image_name = image.file_name().unwrap().to_str().unwrap();
    assert!(
        notifications.iter().any(|n| n["level"] == "error"
            && n["associatedRule"].is_null()
            && n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == image_name
            && n["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"]
                == "IMAGEDIR"
            && n["message"]["text"]
                .as_str()
                .unwrap()
                .contains("1 volume not read: p2 (btrfs, mounted at /data)")),
        "{notifications:#?}"
    );
    assert_eq!(
        run_of(&out, 0)["invocations"][0]["executionSuccessful"],
        false
    );
    // JUnit: one error test case names the cause, besides the rules that could not decide.
    let read = case_of(&out, "amiscan.read");
    assert_eq!(read["outcome"], "error", "{read}");
    assert!(
        read["text"]
            .as_str()
            .unwrap()
            .contains("p2 (btrfs, mounted at /data)"),
        "{read}"
    );
    let rules_in_error = out.json["images"][0]["summary"]["results"]["error"]
        .as_u64()
        .unwrap();
    assert_eq!(
        errors,
        rules_in_error + 1,
        "the rules' errors and amiscan.read"
    );
}

#[test]
fn fingerprints_are_stable_across_runs_and_thread_counts() {
    let leaky = rule_image("leaky");
    let first = scan("stable-1", &[&leaky], &["--threads", "1"]);
    let second = scan("stable-2", &[&leaky], &["--threads", "2"]);
    let again = scan("stable-3", &[&leaky], &["--threads", "2"]);
    // No timestamps, no timings: the whole SARIF document is the same.
    assert_eq!(first.sarif_text, second.sarif_text, "--threads 1 vs 2");
    assert_eq!(second.sarif_text, again.sarif_text, "two runs");
    // Lines move; fingerprints do not depend on them or on the message.
    let keys = |out: &Outputs| -> Vec<String> {
        run_of(out, 0)["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r["partialFingerprints"]["amiscan/v1"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(keys(&first), keys(&second));
    // A different scan of the same image (another gate) keeps every finding's key.
    let gated = scan("stable-gate", &[&leaky], &["--fail-on", "never"]);
    assert_eq!(keys(&gated), keys(&first));
}

#[test]
fn hostile_file_names_are_encoded_and_escaped() {
    // A pack of our own flags every file of /names in the basic tree: a name that is not
    // UTF-8, one with a newline, one with accents.
    let pack = work_dir().join("names-pack.yaml");
    std::fs::write(
        &pack,
        "rules:\n\
         \x20 - id: test.names\n\
         \x20   title: Files with <hard> & \"odd\" names\n\
         \x20   severity: medium\n\
         \x20   description: Every file under /names, for the escaping tests.\n\
         \x20   remediation: |\n\
         \x20     rm -f /names/*   # <not> & \"quoted\" ```fenced```\n\
         \x20   references:\n\
         \x20     - \"a [link](x) & <b>\"\n\
         \x20   tags: [test]\n\
         \x20   check:\n\
         \x20     kind: path\n\
         \x20     paths: [\"/names/*\"]\n\
         \x20     message: a file with a hard name\n",
    )
    .unwrap();
    util::ensure_images();
    let image = util::image("bare-ext4.img");
    let out = scan(
        "hostile-names",
        &[&image],
        &["--rules", pack.to_str().unwrap(), "--select", "test.names"],
    );
    assert_eq!(out.run.code, 1, "{}", out.run.stderr);
    let uris: Vec<&str> = results_of(&out, "test.names")
        .iter()
        .map(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(uris.len(), 3, "{uris:?}");
    for uri in &uris {
        assert!(
            uri.bytes().all(|b| b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%' | b'/')),
            "{uri}"
        );
    }
    assert!(uris.contains(&"names/%C3%A9t%C3%A9.txt"), "{uris:?}");
    let failure = case_of(&out, "test.names");
    assert_eq!(failure["outcome"], "failure");
    assert!(failure["message"]
        .as_str()
        .unwrap()
        .starts_with("Files with <hard> & \"odd\" names"));
    assert!(failure["text"]
        .as_str()
        .unwrap()
        .contains("# <not> & \"quoted\""));
    let markdown = run_of(&out, 0)["tool"]["driver"]["rules"][0]["help"]["markdown"]
        .as_str()
        .unwrap();
    assert!(markdown.contains("````sh\n"), "a longer fence: {markdown}");
    assert!(markdown.contains("\\[link\\](x) \\& \\<b\\>"), "{markdown}");
}

#[test]
fn the_validators_reject_broken_documents() {
    // The checks above mean something only if the validators can fail.
    let dir = work_dir();
    let sarif = dir.join("broken.sarif");
    std::fs::write(
        &sarif,
        r#"{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}},
            "results": [{"message": {"text": "m"}, "ruleIndex": "one",
              "locations": [{"physicalLocation": {"artifactLocation": {"uri": "a b#c#d"}}}]}]}]}"#,
    )
    .unwrap();
    let errors = validate_json(&sarif_schema(), &sarif).unwrap_err();
    assert!(errors.contains("ruleIndex"), "{errors}");
    assert!(errors.contains("uri-reference"), "{errors}");
    let junit = dir.join("broken.xml");
    std::fs::write(
        &junit,
        "<testsuites><testsuite name=\"x\" tests=\"1\"><testcase/></testsuite></testsuites>",
    )
    .unwrap();
    let errors = validate_xml(&junit_schema(), &junit).unwrap_err();
    assert!(
        errors.contains("failures") || errors.contains("name"),
        "{errors}"
    );
    // The SARIF schema shipped is the one the README names.
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(sarif_schema()).unwrap()).unwrap();
    assert_eq!(
        schema["title"],
        "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    );
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
}

#[test]
fn the_ci_formats_are_listed_for_the_leak_test() {
    let help = amiscan(["scan", "--help"]);
    help.expect_code(0);
    let text = help.stdout_text();
    for format in ["sarif", "junit"] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("- {format}:"))
                    || l.contains("[possible values:") && l.contains(format)),
            "scan --help does not list {format}, so tests/integration/creds.rs would not check it:\n{text}"
        );
    }
}

/// The golden files of tests/integration/golden.rs are documents CI tools will read too.
#[test]
fn the_golden_files_validate() {
    let golden = util::manifest_dir().join("tests/golden");
    validate_json(&sarif_schema(), &golden.join("scan.sarif")).unwrap();
    validate_xml(&junit_schema(), &golden.join("scan.junit.xml")).unwrap();
}
