//! The credential catalogue of the built-in pack: every detector carries its metadata and
//! fixtures, every fixture behaves, and a tree holding one example of every kind, placed
//! where users leave credentials, is found whole by a scan — without any output format
//! showing a planted value.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use amiscan::rules::checks::secrets::detectors_of;
use amiscan::rules::Pack;
use amiscan::secrets::DetectorSpec;
use regex::bytes::Regex;
use serde_json::Value;

use crate::util::{amiscan, mkfs_ext4, os_tree, scratch_dir};

/// The catalogue's promised breadth.
const AT_LEAST: usize = 200;

fn catalogue() -> Vec<(String, DetectorSpec)> {
    let pack = Pack::builtin().unwrap();
    let rules: Vec<_> = pack.rules().map(|r| &**r).collect();
    detectors_of(rules.into_iter())
        .into_iter()
        .map(|(rule, spec)| (rule.id.clone(), spec.clone()))
        .collect()
}

#[test]
fn every_detector_has_its_metadata_and_fixtures() {
    let catalogue = catalogue();
    assert!(
        catalogue.len() >= AT_LEAST,
        "{} kinds, fewer than {AT_LEAST}",
        catalogue.len()
    );
    let kebab = regex::Regex::new("^[a-z0-9]+(?:-[a-z0-9]+)*$").unwrap();
    let (mut names, mut ids) = (BTreeSet::new(), BTreeSet::new());
    let mut wrong = Vec::new();
    for (rule, spec) in &catalogue {
        let mut say = |what: &str| wrong.push(format!("{rule}: {:?}: {what}", spec.name));
        if !names.insert(spec.name.clone()) {
            say("name used twice");
        }
        match &spec.id {
            Some(id) if kebab.is_match(id) => {
                if !ids.insert(id.clone()) {
                    say("id used twice");
                }
            }
            Some(_) => say("id is not kebab-case"),
            None => say("no id"),
        }
        if spec.provider.as_deref().is_none_or(str::is_empty) {
            say("no provider");
        }
        if spec.rotate.as_deref().is_none_or(str::is_empty) {
            say("no rotate");
        }
        if spec.keywords.iter().any(|k| k.len() < 3) || spec.keywords.is_empty() {
            say("keywords must be literals of 3 bytes or more");
        }
        if !spec.regex.starts_with("(?-u)") && !spec.regex.starts_with("(?i-u)") {
            say("regex does not start with (?-u)");
        }
        if spec.examples.is_empty() {
            say("no examples");
        }
        if spec.counterexamples.is_empty() {
            say("no counterexamples");
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_fixture_behaves() {
    let specs: Vec<DetectorSpec> = catalogue().into_iter().map(|(_, s)| s).collect();
    let failures = amiscan::secrets::check_fixtures(&specs).unwrap();
    let said: Vec<String> = failures
        .iter()
        .map(|f| {
            format!(
                "{:?}: {} entry {}: {}",
                specs[f.detector].name,
                f.fixture.field(),
                f.entry + 1,
                f.problem
            )
        })
        .collect();
    assert!(said.is_empty(), "{}", said.join("\n"));
}

/// `rules check` runs fixtures and names the one that fails, never its text.
#[test]
fn rules_check_names_a_fixture_that_fails() {
    let dir = scratch_dir("secrets_catalogue", "check");
    let pack = dir.join("pack.yaml");
    fs::write(
        &pack,
        r#"rules:
  - id: team.tokens
    title: Team tokens
    severity: high
    description: Tokens of the team's own service.
    remediation: Revoke them.
    check:
      kind: secrets
      message: team token
      detectors:
        - name: Team token
          regex: '(?-u)\b(?P<secret>team_[0-9a-f]{32})\b'
          keywords: [team_]
          min_entropy: 3.0
          examples: ['TOKEN=team_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'TOKEN=team_9f8e7d6c5b4a39281706f5e4d3c2b1a0']
          counterexamples: ['TOKEN=team_5f0c2e9a7b3d1846c0e2a4b6d8f01357']
"#,
    )
    .unwrap();
    let run = amiscan(["rules", "check", pack.to_str().unwrap()]);
    run.expect_code(1);
    assert!(
        run.stderr.contains(
            "team.tokens: detector \"Team token\": counterexamples entry 1: reported (line 1,"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("examples entry 1: not reported (allowlisted: entropy"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("5f0c2e9a7b3d1846"), "{}", run.stderr);
    // The built-in pack's files, checked as a user would check their own.
    let files: Vec<PathBuf> = fs::read_dir("rules")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    let mut args = vec!["rules".to_string(), "check".to_string()];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let run = amiscan(args);
    run.expect_code(0);
}

/// A guest path that `glob` matches: `~` becomes alice's home, `**` a directory, other
/// wildcards a letter.
fn path_for(glob: &str) -> String {
    let mut path = glob.replacen('~', "/home/alice", 1);
    path = path
        .replace("/**/", "/srv/deep/")
        .replace("**", "deep/config");
    let mut out = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' | '?' => out.push('x'),
            '[' => {
                let first = chars.next().unwrap_or('x');
                out.push(if first == '!' || first == '^' {
                    'q'
                } else {
                    first
                });
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                }
            }
            '{' => {
                let mut first = String::new();
                let mut taking = true;
                for c in chars.by_ref() {
                    match c {
                        '}' => break,
                        ',' => taking = false,
                        c if taking => first.push(c),
                        _ => {}
                    }
                }
                out.push_str(&first);
            }
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// Where an unscoped detector's example goes, in turn: the places users leave credentials.
fn place(index: usize) -> (String, bool) {
    let n = index / 8;
    match index % 8 {
        0 => ("/home/alice/.bash_history".into(), false),
        1 => (format!("/srv/app{n}/.env"), false),
        2 => (format!("/etc/app{n}/config.yaml"), false),
        3 => (format!("/opt/app{n}/settings.json"), false),
        4 => (format!("/etc/app{n}/app.ini"), false),
        5 => (format!("/var/log/app{n}.log.1.gz"), true),
        6 => (format!("/srv/infra{n}/terraform.tfstate"), false),
        _ => (format!("/root/notes/tool{n}.txt"), false),
    }
}

struct Planted {
    rule: String,
    name: String,
    path: String,
    /// The secret as the detector's regex captures it.
    secret: Vec<u8>,
}

/// Writes one example of every detector into `tree`, and a Java keystore.
fn plant(tree: &Path) -> Vec<Planted> {
    let mut files: BTreeMap<String, (bool, Vec<u8>)> = BTreeMap::new();
    let mut planted = Vec::new();
    for (index, (rule, spec)) in catalogue().into_iter().enumerate() {
        // Residue detectors look in free space, not files: the residue suite plants theirs.
        if rule.starts_with("residue.") {
            continue;
        }
        let example = spec.examples[0].clone();
        let (path, gzip) = match spec.paths.first() {
            Some(glob) => (path_for(glob), false),
            None => place(index),
        };
        let regex = Regex::new(&spec.regex).unwrap();
        let caps = regex.captures(example.as_bytes()).unwrap_or_else(|| {
            panic!(
                "{:?}: its first example does not match its regex",
                spec.name
            )
        });
        let secret = caps
            .name("secret")
            .or_else(|| caps.get(1))
            .or_else(|| caps.get(0))
            .unwrap()
            .as_bytes()
            .to_vec();
        let file = files.entry(path.clone()).or_insert((gzip, Vec::new()));
        file.1.extend_from_slice(example.as_bytes());
        file.1.extend_from_slice(b"\n\n");
        planted.push(Planted {
            rule,
            name: spec.name.clone(),
            path,
            secret,
        });
    }
    for (path, (gzip, content)) in files {
        let full = tree.join(path.trim_start_matches('/'));
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        if gzip {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(&content).unwrap();
            fs::write(&full, encoder.finish().unwrap()).unwrap();
        } else {
            fs::write(&full, content).unwrap();
        }
    }
    // A Java keystore (found by name, not content).
    let keystore = tree.join("opt/app-server/conf/server.jks");
    fs::create_dir_all(keystore.parent().unwrap()).unwrap();
    fs::write(
        &keystore,
        b"\xfe\xed\xfe\xed\x00\x00\x00\x02\x00\x00\x00\x01",
    )
    .unwrap();
    planted
}

#[test]
fn one_example_of_every_kind_is_found_where_planted_and_never_shown() {
    let dir = scratch_dir("secrets_catalogue", "recall");
    let tree = os_tree(&dir);
    fs::write(
        tree.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
    )
    .unwrap();
    let planted = plant(&tree);
    let img = dir.join("recall.img");
    mkfs_ext4(&tree, &img, &[], "64M");

    let run = amiscan([
        "scan",
        img.to_str().unwrap(),
        "--select",
        "creds.*",
        "--format",
        "json",
    ]);
    run.expect_code(1);
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    let mut found: BTreeSet<(String, String, String)> = BTreeSet::new();
    for result in report["images"][0]["results"].as_array().unwrap() {
        for finding in result["findings"].as_array().unwrap() {
            found.insert((
                result["rule"].as_str().unwrap().to_string(),
                finding["subject"].as_str().unwrap_or("").to_string(),
                finding["path"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    let missed: Vec<String> = planted
        .iter()
        .filter(|p| !found.contains(&(p.rule.clone(), p.name.clone(), p.path.clone())))
        .map(|p| format!("  {}: {:?} at {}", p.rule, p.name, p.path))
        .collect();
    assert!(
        missed.is_empty(),
        "{} of {} kinds not found where planted:\n{}",
        missed.len(),
        planted.len(),
        missed.join("\n")
    );
    assert!(
        found
            .iter()
            .any(|(rule, _, path)| rule == "creds.private-keys"
                && path == "/opt/app-server/conf/server.jks"),
        "the Java keystore"
    );

    // No output shows a planted secret: its last 12 characters (past any fixed prefix)
    // appear nowhere, in any format, verbose.
    let mut outputs = vec![("json".to_string(), run.stdout.clone())];
    for format in ["table", "jsonl", "markdown", "sarif", "junit"] {
        let run = amiscan([
            "scan",
            img.to_str().unwrap(),
            "--select",
            "creds.*",
            "--format",
            format,
            "-v",
        ]);
        let mut both = run.stdout.clone();
        both.extend_from_slice(run.stderr.as_bytes());
        outputs.push((format.to_string(), both));
    }
    let mut leaks = Vec::new();
    for p in planted.iter().filter(|p| p.secret.len() >= 16) {
        let tail = &p.secret[p.secret.len() - 12..];
        for (format, output) in &outputs {
            if output.windows(tail.len()).any(|w| w == tail) {
                leaks.push(format!("  {format}: {:?} ({})", p.name, p.path));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "planted values shown:\n{}",
        leaks.join("\n")
    );
}

/// docs/secrets.md ends with the catalogue as `rules detectors --format markdown` prints
/// it; `AMISCAN_BLESS=1` rewrites that part.
#[test]
fn docs_secrets_md_lists_the_catalogue() {
    const BEGIN: &str = "<!-- detectors: begin -->\n";
    const END: &str = "<!-- detectors: end -->\n";
    let run = amiscan(["rules", "detectors", "--format", "markdown"]);
    run.expect_code(0);
    let generated = run.stdout_text();
    let doc = fs::read_to_string("docs/secrets.md").unwrap();
    let start = doc.find(BEGIN).expect("docs/secrets.md: no begin marker") + BEGIN.len();
    let end = doc.find(END).expect("docs/secrets.md: no end marker");
    if std::env::var_os("AMISCAN_BLESS").is_some() {
        let blessed = format!("{}{generated}{}", &doc[..start], &doc[end..]);
        fs::write("docs/secrets.md", blessed).unwrap();
        return;
    }
    assert!(
        doc[start..end] == generated,
        "docs/secrets.md's catalogue is stale; regenerate it with \
         AMISCAN_BLESS=1 cargo test --test integration secrets_catalogue::docs"
    );
}

/// A team's gitleaks configuration, as they maintain it, finds their own token kind; its
/// allowlists (paths, stopwords, line regexes) are honoured, and what cannot be honoured
/// is said on stderr.
#[test]
fn a_gitleaks_configuration_runs_as_creds_gitleaks() {
    let dir = scratch_dir("secrets_catalogue", "gitleaks");
    let tree = os_tree(&dir);
    let token = "acme_3f9a1c0e7b2d4f6a8c1e3b5d7f9a0c2e";
    let files = [
        ("srv/app/.env", format!("ACME_TOKEN={token}\n")),
        ("usr/share/doc/acme/README", format!("ACME_TOKEN={token}\n")),
        (
            "etc/acme/test.conf",
            "token = acme_0000testtoken0000testtoken0000\n".to_string(),
        ),
        (
            "etc/acme/sample.conf",
            format!("token = {token}  # gitleaks:allow\n"),
        ),
    ];
    for (path, content) in &files {
        let full = tree.join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(full, content).unwrap();
    }
    let img = dir.join("gitleaks.img");
    mkfs_ext4(&tree, &img, &[], "8M");
    let config = dir.join("gitleaks.toml");
    fs::write(
        &config,
        r#"title = "ACME rules"

[extend]
useDefault = true

[[rules]]
id = "acme-api-token"
description = "ACME API token"
regex = '''\b(acme_[0-9a-z]{32})\b'''
secretGroup = 1
entropy = 3.0
keywords = ["acme_"]
[[rules.allowlists]]
regexTarget = "line"
regexes = ['''gitleaks:allow''']
[[rules.allowlists]]
stopwords = ["testtoken"]

[[rules]]
id = "acme-cert"
path = '''\.acme-cert$'''

[allowlist]
paths = ['''^usr/share/doc/''']
"#,
    )
    .unwrap();
    let run = amiscan([
        "scan",
        img.to_str().unwrap(),
        "--secrets-config",
        config.to_str().unwrap(),
        "--select",
        "creds.gitleaks",
        "--format",
        "json",
    ]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("[extend] is not followed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("rule `acme-cert`: has no `regex`"),
        "{}",
        run.stderr
    );
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    let result = crate::util::rule_result(&report, "creds.gitleaks");
    let found: Vec<(String, String)> = result["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["subject"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [("/srv/app/.env".to_string(), "acme-api-token".to_string())],
        "{result:#}"
    );
    assert!(!run
        .stdout
        .windows(12)
        .any(|w| w == &token.as_bytes()[20..32]));

    // Not TOML at all: an error naming the file, before any image is opened.
    fs::write(&config, "[[rules]\nid =").unwrap();
    let run = amiscan([
        "scan",
        img.to_str().unwrap(),
        "--secrets-config",
        config.to_str().unwrap(),
    ]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("not a gitleaks configuration"),
        "{}",
        run.stderr
    );
}
