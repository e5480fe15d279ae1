//! The credential rules (rules/creds.yaml: creds.aws, creds.private-keys, creds.files,
//! creds.tokens) against a real image holding real, freshly generated credentials where
//! bakes leave them, with decoys beside them (testdata/build-creds-image.sh).
//!
//! Every expectation — rule, guest path, line(s), kind of secret, value — is read from
//! testdata/build/creds/planted.json, which the same build writes with the image: nothing
//! secret is committed, and a rebuild (new secrets) cannot leave the tests out of step.
//! Lines are 1-based lines of the decompressed text for compressed files; `null` among an
//! expectation's lines means a finding without a line (a binary keystore).
//!
//! The scan all the tests judge runs once per test process.

use crate::util;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use util::{amiscan, amiscan_env, Run};

/// The credential rules and their severities.
const CREDS_RULES: [(&str, &str); 8] = [
    ("creds.aws", "critical"),
    ("creds.cloud", "critical"),
    ("creds.connection-strings", "high"),
    ("creds.files", "high"),
    ("creds.passwords", "medium"),
    ("creds.private-keys", "high"),
    ("creds.saas", "high"),
    ("creds.tokens", "high"),
];

/// The rules of specific token formats (as opposed to stores, keys and generic patterns).
fn token_rule(rule: &str) -> bool {
    matches!(rule, "creds.tokens" | "creds.saas" | "creds.cloud")
}

/// How many characters of a secret no output may show.
const LEAK_WINDOW: usize = 12;

// ---------------------------------------------------------------------------------------
// planted.json
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Planted {
    image: String,
    expect: Vec<Expect>,
    leaks: Vec<Leak>,
    decoys: Vec<Decoy>,
    not_in_rule: Vec<RulePath>,
    in_rule: Vec<RulePath>,
    binary: Vec<String>,
    sparse: Sparse,
    secret_paths: Vec<String>,
}

/// `rule` must report `path` at one of `lines`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    name: String,
    rule: String,
    path: String,
    lines: Vec<Option<u64>>,
    /// Lower-case words one of which the finding's `subject` must contain (none: any).
    subject: Vec<String>,
    /// The secret itself, when it is one token (its fingerprint is then known).
    value: Option<String>,
    severity: String,
    tags: Vec<String>,
}

/// A value no output may show.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Leak {
    name: String,
    value: String,
    /// Leading characters every such value shares (`ghp_`): windows inside them are not
    /// secret.
    fixed_prefix: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Decoy {
    path: String,
    /// Only this line is a decoy (the file holds real secrets elsewhere).
    line: Option<u64>,
    /// `none`: no credential finding at all; `info`: findings only at severity info.
    allow: String,
    why: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulePath {
    rule: String,
    path: String,
    why: String,
}

/// The 2 GiB sparse file with a token in its last bytes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sparse {
    path: String,
    size: u64,
    rule: String,
    line: u64,
    subject: Vec<String>,
    value: String,
}

fn creds_dir() -> PathBuf {
    util::ensure_built("build-creds-image.sh", ".lock-creds");
    util::build_dir().join("creds")
}

fn planted() -> &'static Planted {
    static PLANTED: OnceLock<Planted> = OnceLock::new();
    PLANTED.get_or_init(|| {
        let path = creds_dir().join("planted.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
}

fn image() -> PathBuf {
    let path = creds_dir().join(&planted().image);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

// ---------------------------------------------------------------------------------------
// Scanning.
// ---------------------------------------------------------------------------------------

fn scan_args(format: &str, extra: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "scan".into(),
        image().into_os_string(),
        "--format".into(),
        format.into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    args
}

fn parse(run: &Run) -> Value {
    util::single_image(serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: stdout is not JSON ({e}); exit {}, stderr:\n{}",
            run.describe(),
            run.code,
            run.stderr
        )
    }))
}

/// `amiscan scan creds.img --format json`, once per process.
fn scanned() -> &'static (Run, Value) {
    static SCAN: OnceLock<(Run, Value)> = OnceLock::new();
    SCAN.get_or_init(|| {
        let run = amiscan(scan_args("json", &[]));
        let report = parse(&run);
        (run, report)
    })
}

fn report() -> &'static Value {
    &scanned().1
}

fn result<'a>(report: &'a Value, rule: &str) -> &'a Value {
    util::rule_result(report, rule)
}

fn findings<'a>(report: &'a Value, rule: &str) -> Vec<&'a Value> {
    result(report, rule)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .collect()
}

/// Every finding of the credential rules, with its rule.
fn creds_findings(report: &Value) -> Vec<(&'static str, &Value)> {
    CREDS_RULES
        .iter()
        .flat_map(|(rule, _)| findings(report, rule).into_iter().map(move |f| (*rule, f)))
        .collect()
}

/// A finding, briefly, for messages (never a secret: findings hold none).
fn show(f: &Value) -> String {
    format!(
        "{}:{} [{}] subject={} fingerprint={} — {}",
        f["path"].as_str().unwrap_or("-"),
        f["line"],
        f["severity"].as_str().unwrap_or("?"),
        f["subject"],
        f["fingerprint"],
        f["message"].as_str().unwrap_or("")
    )
}

/// The findings of `e.rule` at `e.path` on one of `e.lines`.
fn matching<'a>(report: &'a Value, e: &Expect) -> Vec<&'a Value> {
    findings(report, &e.rule)
        .into_iter()
        .filter(|f| f["path"] == e.path.as_str() && e.lines.contains(&f["line"].as_u64()))
        .collect()
}

/// What the credential rules did report about a path, for a miss's message.
fn nearby(report: &Value, path: &str) -> String {
    let near: Vec<String> = creds_findings(report)
        .into_iter()
        .filter(|(_, f)| f["path"] == path)
        .map(|(rule, f)| format!("      {rule}: {}", show(f)))
        .collect();
    if near.is_empty() {
        "      (no credential finding at this path)".to_string()
    } else {
        near.join("\n")
    }
}

fn lines_text(lines: &[Option<u64>]) -> String {
    lines
        .iter()
        .map(|l| l.map_or("no line".to_string(), |l| l.to_string()))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Asserts that every expectation `which` selects is reported by its rule at its path and
/// line; lists every miss with what was reported there instead.
fn assert_found(which: impl Fn(&Expect) -> bool, what: &str) {
    let report = report();
    let selected: Vec<&Expect> = planted().expect.iter().filter(|e| which(e)).collect();
    assert!(!selected.is_empty(), "planted.json has no {what}");
    let misses: Vec<String> = selected
        .iter()
        .filter(|e| matching(report, e).is_empty())
        .map(|e| {
            format!(
                "  {} — {} expected at {}:{}; at this path:\n{}",
                e.name,
                e.rule,
                e.path,
                lines_text(&e.lines),
                nearby(report, &e.path)
            )
        })
        .collect();
    assert!(
        misses.is_empty(),
        "{} of {} {what} not reported where planted:\n{}",
        misses.len(),
        selected.len(),
        misses.join("\n")
    );
}

fn has_tag(e: &Expect, tag: &str) -> bool {
    e.tags.iter().any(|t| t == tag)
}

/// `first 4 characters…8 hex digits of SHA-256(secret)`.
fn fingerprint(secret: &str) -> String {
    let digest = util::hex(&Sha256::digest(secret.as_bytes()));
    let head: String = secret.chars().take(4).collect();
    format!("{head}…{}", &digest[..8])
}

// ---------------------------------------------------------------------------------------
// The image holds what planted.json says (independent of the rules).
// ---------------------------------------------------------------------------------------

/// A guest file's content as `amiscan cat` reads it, decompressed for .gz, .xz and .zst.
fn guest_text(path: &str) -> Vec<u8> {
    let run = amiscan([
        OsString::from("cat"),
        image().into_os_string(),
        OsString::from(path),
    ]);
    run.expect_code(0);
    let raw = run.stdout;
    if path.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        out
    } else if path.ends_with(".zst") {
        zstd::decode_all(raw.as_slice()).unwrap()
    } else if path.ends_with(".xz") {
        let mut child = crate::util::tool_command("xz")
            .arg("-dc")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("cannot run xz");
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            use std::io::Write as _;
            stdin.write_all(&raw).unwrap();
        });
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(output.status.success(), "xz -dc {path} failed");
        output.stdout
    } else {
        raw
    }
}

/// 1-based line `n` of `data` (LF-separated; a CR before the LF stays).
fn nth_line(data: &[u8], n: u64) -> Option<&[u8]> {
    data.split(|&b| b == b'\n')
        .nth(usize::try_from(n).ok()?.checked_sub(1)?)
}

#[test]
fn the_image_holds_what_planted_json_says() {
    let planted = planted();
    let mut problems = Vec::new();
    let mut cache: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for e in &planted.expect {
        let data = cache
            .entry(e.path.as_str())
            .or_insert_with(|| guest_text(&e.path));
        if let Some(value) = &e.value {
            let [Some(line)] = e.lines[..] else {
                problems.push(format!("{}: a value but not exactly one line", e.name));
                continue;
            };
            let text = nth_line(data, line).unwrap_or_default();
            if !text.windows(value.len()).any(|w| w == value.as_bytes()) {
                problems.push(format!(
                    "{}: line {line} of {} does not hold the value",
                    e.name, e.path
                ));
            }
        } else if e.rule == "creds.private-keys" {
            let ok = match e.lines[..] {
                [Some(line)] => nth_line(data, line).is_some_and(|l| {
                    let l = String::from_utf8_lossy(l);
                    (l.starts_with("-----BEGIN ") && l.contains("PRIVATE KEY-----"))
                        || l.starts_with("PuTTY-User-Key-File-")
                }),
                // PKCS#12: DER, a SEQUENCE.
                [None] => data.first() == Some(&0x30),
                _ => false,
            };
            if !ok {
                problems.push(format!("{}: no key at {}:{:?}", e.name, e.path, e.lines));
            }
        } else {
            for line in e.lines.iter().flatten() {
                if nth_line(data, *line).is_none_or(<[u8]>::is_empty) {
                    problems.push(format!("{}: {}:{line} is empty or missing", e.name, e.path));
                }
            }
        }
    }
    // The CRLF file really has CRLF line endings.
    let crlf = planted.expect.iter().find(|e| has_tag(e, "crlf")).unwrap();
    assert!(
        guest_text(&crlf.path).windows(2).any(|w| w == b"\r\n"),
        "{} has no CRLF",
        crlf.path
    );
    // Decoys are there (the package-shipped ones included).
    for d in &planted.decoys {
        let data = cache
            .entry(d.path.as_str())
            .or_insert_with(|| guest_text(&d.path));
        if data.is_empty() {
            problems.push(format!("decoy {} is empty", d.path));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The sparse file: 2 GiB in the guest, while the whole image stays small.
    let run = amiscan([OsString::from("files"), image().into_os_string()]);
    run.expect_code(0);
    let inventory = util::parse_inventory(&run.stdout);
    let blob = inventory
        .iter()
        .find(|r| r.path == planted.sparse.path)
        .unwrap_or_else(|| panic!("{} is not in the image", planted.sparse.path));
    assert_eq!(blob.size, planted.sparse.size);
    use std::os::unix::fs::MetadataExt;
    let allocated = std::fs::metadata(image()).unwrap().blocks() * 512;
    assert!(
        allocated < 64 << 20,
        "the image takes {allocated} bytes on disk: the sparse file was not stored sparse"
    );
}

// ---------------------------------------------------------------------------------------
// The rules and the verdict.
// ---------------------------------------------------------------------------------------

#[test]
fn creds_rules_are_built_in_and_fail_on_the_image() {
    let run = amiscan(["rules", "list", "--format", "json"]);
    run.expect_code(0);
    let list: Value = serde_json::from_slice(&run.stdout).unwrap();
    let builtin: BTreeMap<&str, &str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["severity"].as_str().unwrap()))
        .collect();
    for (rule, severity) in CREDS_RULES {
        assert_eq!(
            builtin.get(rule).copied(),
            Some(severity),
            "{rule} is not a built-in rule of severity {severity}"
        );
    }
    let (run, report) = scanned();
    run.expect_code(1);
    assert_eq!(report["summary"]["verdict"], "fail");
    assert_eq!(report["summary"]["incomplete"], false, "{}", run.stderr);
    for (rule, severity) in CREDS_RULES {
        let r = result(report, rule);
        assert_eq!(r["status"], "fail", "{rule}: {r:#}");
        assert_eq!(r["severity"], severity, "{rule}");
    }
}

// ---------------------------------------------------------------------------------------
// Every planted secret, where it was planted.
// ---------------------------------------------------------------------------------------

#[test]
fn aws_keys_are_found_where_planted() {
    assert_found(|e| e.rule == "creds.aws", "AWS keys");
}

#[test]
fn private_keys_are_found_where_planted() {
    assert_found(|e| e.rule == "creds.private-keys", "private keys");
}

#[test]
fn credential_files_are_found_where_planted() {
    assert_found(|e| e.rule == "creds.files", "credential stores");
}

#[test]
fn tokens_are_found_where_planted() {
    assert_found(|e| token_rule(&e.rule), "tokens");
}

#[test]
fn secrets_across_read_buffer_boundaries_are_found() {
    assert_found(
        |e| has_tag(e, "boundary"),
        "secrets straddling 256 KiB boundaries",
    );
}

#[test]
fn secrets_inside_compressed_logs_are_found() {
    assert_found(|e| has_tag(e, "compressed"), "secrets in gzip/xz/zstd logs");
}

#[test]
fn crlf_files_are_numbered_like_lf_files() {
    assert_found(|e| has_tag(e, "crlf"), "secrets in a CRLF file");
}

#[test]
fn paths_that_look_like_tests_are_scanned() {
    assert_found(
        |e| has_tag(e, "test-path"),
        "secrets under /home/tester and */test/*",
    );
}

#[test]
fn secrets_on_the_home_volume_are_found() {
    assert_found(
        |e| e.path.starts_with("/home/"),
        "secrets on the /home volume",
    );
}

/// The sparse file claims 2 GiB and holds one line at its end. Either the scan reads it
/// (and reports the token), or it is over the size cap and the report counts it.
#[test]
fn the_sparse_file_is_scanned_or_counted_as_too_large() {
    let report = report();
    let sparse = &planted().sparse;
    let found: Vec<&Value> = findings(report, &sparse.rule)
        .into_iter()
        .filter(|f| f["path"] == sparse.path.as_str())
        .collect();
    if found.is_empty() {
        let capped = size_capped(report);
        assert!(
            capped >= 1,
            "{} (2 GiB, sparse) was neither reported by {} nor counted as over the size \
             cap: stats.secrets = {:#}\nat this path:\n{}",
            sparse.path,
            sparse.rule,
            report["stats"]["secrets"],
            nearby(report, &sparse.path)
        );
    } else {
        let f = found[0];
        assert_eq!(f["line"].as_u64(), Some(sparse.line), "{}", show(f));
        assert_eq!(
            f["fingerprint"],
            fingerprint(&sparse.value).as_str(),
            "{}",
            show(f)
        );
        let subject = f["subject"].as_str().unwrap_or("").to_lowercase();
        assert!(
            sparse.subject.iter().any(|w| subject.contains(w.as_str())),
            "{}",
            show(f)
        );
    }
}

// ---------------------------------------------------------------------------------------
// What findings say.
// ---------------------------------------------------------------------------------------

#[test]
fn findings_name_the_kind_of_secret() {
    let report = report();
    let mut wrong = Vec::new();
    for e in planted().expect.iter().filter(|e| !e.subject.is_empty()) {
        let found = matching(report, e);
        if found.is_empty() {
            continue; // the *_are_found_where_planted tests report it
        }
        let ok = found.iter().any(|f| {
            let subject = f["subject"].as_str().unwrap_or("").to_lowercase();
            e.subject.iter().any(|w| subject.contains(w.as_str()))
        });
        if !ok {
            wrong.push(format!(
                "  {}: subject should name one of {:?}; found {}",
                e.name,
                e.subject,
                found
                    .iter()
                    .map(|f| f["subject"].to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn fingerprints_are_four_characters_and_a_sha256_prefix() {
    let report = report();
    let mut wrong = Vec::new();
    // Every credential finding carries one, shaped `abcd…0123abcd`.
    for (rule, f) in creds_findings(report) {
        let shape_ok = f["fingerprint"].as_str().is_some_and(|fp| {
            fp.split_once('…').is_some_and(|(head, tail)| {
                head.chars().count() == 4
                    && tail.len() == 8
                    && tail
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
        });
        if !shape_ok {
            wrong.push(format!("  {rule}: bad fingerprint: {}", show(f)));
        }
    }
    // Where the secret is one token, the fingerprint is the token's.
    for e in planted()
        .expect
        .iter()
        .filter(|e| e.rule == "creds.aws" || token_rule(&e.rule))
    {
        let Some(value) = &e.value else { continue };
        let found = matching(report, e);
        if found.is_empty() {
            continue;
        }
        let want = fingerprint(value);
        if !found.iter().any(|f| f["fingerprint"] == want.as_str()) {
            wrong.push(format!(
                "  {}: want fingerprint {want}; found {}",
                e.name,
                found
                    .iter()
                    .map(|f| f["fingerprint"].to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn findings_carry_the_rule_severity() {
    let report = report();
    let mut wrong = Vec::new();
    for e in &planted().expect {
        for f in matching(report, e) {
            if f["severity"] != e.severity.as_str() {
                wrong.push(format!("  {}: want {}: {}", e.name, e.severity, show(f)));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------------------
// What must not fail.
// ---------------------------------------------------------------------------------------

#[test]
fn decoys_are_not_failing_findings() {
    let report = report();
    let mut wrong = Vec::new();
    for d in &planted().decoys {
        for (rule, f) in creds_findings(report) {
            if f["path"] != d.path.as_str() {
                continue;
            }
            if d.line.is_some() && f["line"].as_u64() != d.line {
                continue;
            }
            let allowed = d.allow == "info" && f["severity"] == "info";
            if !allowed {
                wrong.push(format!(
                    "  {} ({}; allowed: {}): {rule}: {}",
                    d.path,
                    d.why,
                    d.allow,
                    show(f)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "decoys reported:\n{}", wrong.join("\n"));
}

#[test]
fn package_keys_are_info_when_unmodified_and_fail_when_changed() {
    let report = report();
    let planted = planted();
    // Modified after install (MD5 mismatch) or not listed in the md5sums: high.
    assert_found(
        |e| has_tag(e, "package"),
        "modified or unlisted package keys",
    );
    for e in planted.expect.iter().filter(|e| has_tag(e, "package")) {
        for f in matching(report, e) {
            assert_eq!(f["severity"], "high", "{}: {}", e.name, show(f));
        }
    }
    // Shipped unmodified: info at most.
    let shipped: Vec<&Decoy> = planted
        .decoys
        .iter()
        .filter(|d| d.allow == "info")
        .collect();
    assert!(shipped.len() >= 2);
    for d in shipped {
        for (rule, f) in creds_findings(report) {
            if f["path"] == d.path.as_str() {
                assert_eq!(f["severity"], "info", "{rule} at {}: {}", d.path, show(f));
            }
        }
    }
}

#[test]
fn keys_in_ssh_directories_are_left_to_ssh_user_keypairs() {
    let report = report();
    for r in &planted().not_in_rule {
        let hits: Vec<String> = findings(report, &r.rule)
            .into_iter()
            .filter(|f| f["path"] == r.path.as_str())
            .map(show)
            .collect();
        assert!(
            hits.is_empty(),
            "{} reports {} ({}): {hits:?}",
            r.rule,
            r.path,
            r.why
        );
    }
    for r in &planted().in_rule {
        assert!(
            findings(report, &r.rule)
                .iter()
                .any(|f| f["path"] == r.path.as_str()),
            "{} does not report {} ({})",
            r.rule,
            r.path,
            r.why
        );
    }
}

#[test]
fn no_failing_credential_finding_outside_the_planted_files() {
    let report = report();
    let planted_paths: BTreeSet<&str> = planted().secret_paths.iter().map(String::as_str).collect();
    let stray: Vec<String> = creds_findings(report)
        .into_iter()
        .filter(|(_, f)| f["severity"] != "info")
        .filter(|(_, f)| {
            !f["path"]
                .as_str()
                .is_some_and(|p| planted_paths.contains(p))
        })
        .map(|(rule, f)| format!("  {rule}: {}", show(f)))
        .collect();
    assert!(
        stray.is_empty(),
        "credential findings in files where nothing was planted:\n{}",
        stray.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Statistics.
// ---------------------------------------------------------------------------------------

/// The count of files over the size cap (`skipped_too_large`, or `truncated` when only
/// their head is read).
fn size_capped(report: &Value) -> u64 {
    let secrets = &report["stats"]["secrets"];
    ["skipped_too_large", "truncated"]
        .iter()
        .filter_map(|k| secrets[k].as_u64())
        .sum()
}

#[test]
fn stats_count_scanned_binary_and_oversized_files() {
    let report = report();
    let planted = planted();
    let secrets = &report["stats"]["secrets"];
    assert!(
        secrets.is_object(),
        "no stats.secrets in {:#}",
        report["stats"]
    );
    for key in ["files_scanned", "skipped_binary"] {
        assert!(
            secrets[key].is_u64(),
            "stats.secrets.{key} missing: {secrets:#}"
        );
    }
    assert!(
        secrets["skipped_too_large"].is_u64() || secrets["truncated"].is_u64(),
        "stats.secrets counts no files over the size cap: {secrets:#}"
    );
    // Every text file something was planted in was scanned (the keystore aside: binary).
    let text_files: BTreeSet<&str> = planted
        .expect
        .iter()
        .filter(|e| e.lines.iter().all(Option::is_some))
        .map(|e| e.path.as_str())
        .collect();
    let scanned = secrets["files_scanned"].as_u64().unwrap();
    assert!(
        scanned >= text_files.len() as u64,
        "files_scanned = {scanned}, but {} text files hold planted secrets",
        text_files.len()
    );
    let binary = secrets["skipped_binary"].as_u64().unwrap();
    assert!(
        binary >= planted.binary.len() as u64,
        "skipped_binary = {binary}, but the image holds {} binaries with key-shaped bytes \
         ({:?})",
        planted.binary.len(),
        planted.binary
    );
    for path in &planted.binary {
        let hits: Vec<String> = creds_findings(report)
            .into_iter()
            .filter(|(_, f)| f["path"] == path.as_str())
            .map(|(rule, f)| format!("{rule}: {}", show(f)))
            .collect();
        assert!(
            hits.is_empty(),
            "binary {path} was scanned as text: {hits:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// No output shows a secret.
// ---------------------------------------------------------------------------------------

/// The `--format` values `scan --help` lists.
fn scan_formats(help: &str) -> Vec<String> {
    let at = help.find("--format").expect("scan --help has no --format");
    let rest = &help[at..];
    // clap lists values inline (`[possible values: a, b]`) or, when they are documented,
    // one per line (`- a: what it is`); either way within the option's own block.
    let block = &rest[..rest[2..].find("\n      --").map_or(rest.len(), |i| i + 2)];
    if let Some(start) = block.find("[possible values: ") {
        let start = start + "[possible values: ".len();
        let end = start + block[start..].find(']').unwrap();
        return block[start..end]
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
    }
    let formats: Vec<String> = block
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- "))
        .filter_map(|item| item.split(':').next())
        .map(|name| name.trim().to_string())
        .collect();
    assert!(!formats.is_empty(), "scan --help lists no --format values");
    formats
}

/// Every `LEAK_WINDOW`-byte window of `text`.
fn windows(text: &[u8]) -> HashSet<&[u8]> {
    text.windows(LEAK_WINDOW).collect()
}

/// The planted values `text` shows, whole or in part.
fn leaked(text: &[u8]) -> Vec<String> {
    let all = windows(text);
    let mut out = Vec::new();
    for leak in &planted().leaks {
        let value = leak.value.as_bytes();
        let whole = text.windows(value.len()).any(|w| w == value);
        let first = leak.fixed_prefix.saturating_sub(LEAK_WINDOW - 1);
        let part = value
            .windows(LEAK_WINDOW)
            .enumerate()
            .skip(first)
            .find(|(_, w)| all.contains(w))
            .map(|(at, _)| at);
        match (whole, part) {
            (true, _) => out.push(format!("{} (whole)", leak.name)),
            (false, Some(at)) => out.push(format!(
                "{} (the {LEAK_WINDOW} characters at offset {at})",
                leak.name
            )),
            (false, None) => {}
        }
    }
    out
}

#[test]
fn no_output_shows_a_planted_secret() {
    assert!(planted().leaks.len() > 100, "too few planted values");
    let help = amiscan(["scan", "--help"]);
    help.expect_code(0);
    let help_text = help.stdout_text();
    let mut runs: Vec<Vec<String>> = scan_formats(&help_text)
        .into_iter()
        .map(|f| vec![f])
        .collect();
    assert!(
        runs.iter().any(|r| r[0] == "table") && runs.iter().any(|r| r[0] == "json"),
        "{runs:?}"
    );
    let verbose = help_text.contains("--verbose");
    if verbose {
        for f in scan_formats(&help_text) {
            runs.push(vec![f, "--verbose".into()]);
        }
    }
    let mut problems = Vec::new();
    for args in runs {
        let extra: Vec<&str> = args[1..].iter().map(String::as_str).collect();
        let run = amiscan(scan_args(&args[0], &extra));
        assert!(
            run.code == 1,
            "{} exited {}: {}",
            run.describe(),
            run.code,
            run.stderr
        );
        for (stream, text) in [
            ("stdout", &run.stdout[..]),
            ("stderr", run.stderr.as_bytes()),
        ] {
            for what in leaked(text) {
                problems.push(format!("  {} {stream}: {what}", run.describe()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "outputs show planted secrets (--verbose {}):\n{}",
        if verbose { "checked" } else { "does not exist" },
        problems.join("\n")
    );
}

#[test]
fn the_leak_check_would_see_a_leak() {
    // The check itself: a value, or 12 characters of one past its fixed prefix, is seen;
    // the fixed prefix alone is not.
    let leak = planted()
        .leaks
        .iter()
        .find(|l| l.value.starts_with("pypi-AgEIcHlwaS5vcmc"))
        .unwrap();
    assert!(leaked(leak.value.as_bytes())
        .iter()
        .any(|w| w.starts_with(&leak.name)));
    let middle = &leak.value[30..30 + LEAK_WINDOW];
    assert!(leaked(format!("…{middle}…").as_bytes())
        .iter()
        .any(|w| w.starts_with(&leak.name)));
    assert!(!leaked(b"a PyPI token (pypi-AgEIcHlwaS5vcmc...)")
        .iter()
        .any(|w| w.starts_with(&leak.name)));
}

// ---------------------------------------------------------------------------------------
// Determinism.
// ---------------------------------------------------------------------------------------

fn without_duration(mut report: Value) -> Value {
    report["stats"]
        .as_object_mut()
        .unwrap()
        .remove("duration_ms");
    report
}

#[test]
fn the_report_is_the_same_at_any_thread_count() {
    let one = amiscan_env(scan_args("json", &["--threads", "1"]), &[]);
    let four = amiscan_env(scan_args("json", &["--threads", "4"]), &[]);
    let (one, four) = (
        without_duration(parse(&one)),
        without_duration(parse(&four)),
    );
    let default = without_duration(report().clone());
    assert!(one == four, "--threads 1 and --threads 4 differ");
    assert!(one == default, "--threads 1 and the default differ");
}

/// `--secrets-max-size` caps the content read per file: files beyond it are counted as
/// truncated (never skipped silently), and a secret past the cap is not claimed as found
/// while one before it still is.
#[test]
fn the_size_cap_is_configurable_and_counted() {
    let run = amiscan(scan_args(
        "json",
        &["--select", "creds.*", "--secrets-max-size", "65536"],
    ));
    let report = parse(&run);
    let stats = &report["stats"]["secrets"];
    assert!(
        stats["truncated"].as_u64().unwrap() >= 3,
        "the 2 GiB sparse file and the 400 KiB boundary files exceed 64 KiB: {stats}"
    );
    let tokens: Vec<&Value> = findings(&report, "creds.tokens")
        .into_iter()
        .chain(findings(&report, "creds.saas"))
        .collect();
    assert!(
        !tokens.iter().any(|f| f["path"] == "/var/lib/app/blob.dat"),
        "the sparse file's token lies past the cap"
    );
    assert!(tokens.iter().any(|f| f["path"] == "/etc/app/app.env"));
    let uncapped = &scanned().1["stats"]["secrets"];
    assert_eq!(
        uncapped["truncated"], 0,
        "the default cap (4 GiB) cuts nothing here"
    );
}
