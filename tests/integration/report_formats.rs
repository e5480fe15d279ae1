//! The renderings of one scan agree with the JSON contract: JSON Lines holds exactly the
//! report's findings, Markdown names every failing rule and escapes guest text, and
//! `--output` writes each format to its file while stdout keeps `--format`.

use crate::util;

use serde_json::Value;
use util::{amiscan, rule_image};

fn scan(extra: &[&str]) -> util::Run {
    let image = rule_image("leaky");
    let mut args = vec![
        "scan".to_string(),
        image.display().to_string(),
        "--as-of".into(),
        "2026-11-22".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    amiscan(&args)
}

fn json_report() -> Value {
    let run = scan(&["--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.describe());
    serde_json::from_slice(&run.stdout).unwrap()
}

#[test]
fn json_lines_hold_every_finding_once() {
    let report = json_report();
    let run = scan(&["--format", "jsonl"]);
    assert_eq!(run.code, 1);
    let mut lines: Vec<Value> = run
        .stdout_text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The image record comes first and says what the report's summary says.
    let image = lines.remove(0);
    let summary = &report["images"][0]["summary"];
    assert_eq!(image["type"], "image");
    assert_eq!(image["image"], report["images"][0]["image"]["path"]);
    assert_eq!(image["verdict"], summary["verdict"]);
    assert_eq!(image["exit_code"], summary["exit_code"]);
    assert_eq!(image["incomplete"], summary["incomplete"]);
    assert_eq!(image["rules"], summary["results"]);
    assert_eq!(image["findings"], summary["findings"]);
    assert!(lines.iter().all(|l| l["type"] == "finding"), "{lines:?}");
    let mut expected = Vec::new();
    for result in report["images"][0]["results"].as_array().unwrap() {
        for f in result["findings"].as_array().unwrap() {
            expected.push((
                result["rule"].clone(),
                f["path"].clone(),
                f["line"].clone(),
                f["message"].clone(),
                f["severity"].clone(),
                f["fingerprint"].clone(),
            ));
        }
    }
    let got: Vec<_> = lines
        .iter()
        .map(|l| {
            assert_eq!(l["image"], report["images"][0]["image"]["path"]);
            (
                l["rule"].clone(),
                l["path"].clone(),
                l["line"].clone(),
                l["message"].clone(),
                l["severity"].clone(),
                l["fingerprint"].clone(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert!(got.len() > 40, "the leaky image has many findings");
}

#[test]
fn markdown_names_every_failing_rule_and_its_findings() {
    let report = json_report();
    let run = scan(&["--format", "markdown"]);
    assert_eq!(run.code, 1);
    let text = run.stdout_text();
    assert!(text.starts_with("## amiscan: ❌ FAIL"), "{text}");
    for result in report["images"][0]["results"].as_array().unwrap() {
        let id = result["rule"].as_str().unwrap();
        let row = format!("| `{id}` |");
        assert_eq!(
            text.contains(&row),
            result["status"] == "fail" || result["status"] == "error",
            "{id}"
        );
    }
    assert!(text.contains("- `/root/.bash_history`"), "{text}");
    assert!(!text.contains("<script"), "guest text is escaped");
}

#[test]
fn outputs_are_written_in_the_format_their_name_says() {
    let dir = util::build_dir().join("report-formats");
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let jsonl = dir.join("findings.ndjson");
    let md = dir.join("summary.md");
    let explicit = dir.join("table-output");
    for path in [&json, &jsonl, &md, &explicit] {
        let _ = std::fs::remove_file(path);
    }
    let run = scan(&[
        "--output",
        json.to_str().unwrap(),
        "--output",
        jsonl.to_str().unwrap(),
        "--output",
        md.to_str().unwrap(),
        "--output",
        &format!("table={}", explicit.display()),
    ]);
    assert_eq!(run.code, 1, "{}", run.describe());
    assert!(
        run.stdout_text().contains("Verdict: FAIL"),
        "stdout keeps the table"
    );
    // The file holds the same report as a separate `--format json` run, but for timing.
    let mut written: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let mut expected = json_report();
    for report in [&mut written, &mut expected] {
        report["images"][0]["stats"]["duration_ms"] = Value::Null;
        report["duration_ms"] = Value::Null;
        report["started_at"] = Value::Null;
    }
    assert_eq!(written, expected);
    let lines = std::fs::read_to_string(&jsonl).unwrap();
    assert!(lines
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));
    assert!(std::fs::read_to_string(&md)
        .unwrap()
        .starts_with("## amiscan:"));
    assert!(std::fs::read_to_string(&explicit)
        .unwrap()
        .contains("Verdict: FAIL"));
}

#[test]
fn an_output_without_a_known_format_is_a_usage_error_before_scanning() {
    let run = scan(&["--output", "/nonexistent/report.sarif.unknown"]);
    assert_eq!(run.code, 2, "{}", run.describe());
    assert!(run.stderr.contains("--output"), "{}", run.stderr);
}

/// `--label KEY=VALUE` reaches every format, the same in each.
#[test]
fn labels_reach_every_format() {
    let dir = util::scratch_dir("report_formats", "labels");
    let file = |name: &str| dir.join(name).display().to_string();
    let mut args = vec![
        "--label".to_string(),
        "build=1 234".into(),
        "--label".into(),
        "region=eu-west-1".into(),
        "--format".into(),
        "json".into(),
    ];
    for (format, name) in [
        ("jsonl", "r.jsonl"),
        ("markdown", "r.md"),
        ("sarif", "r.sarif"),
        ("junit", "r.xml"),
        ("table", "r.txt"),
    ] {
        args.push("--output".into());
        args.push(format!("{format}={}", file(name)));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = scan(&args);
    assert_eq!(run.code, 1, "{}", run.describe());
    let expected = serde_json::json!({"build": "1 234", "region": "eu-west-1"});
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["images"][0]["labels"], expected);
    // The run's start, RFC 3339 in UTC to the second, and its duration.
    let started = report["started_at"].as_str().unwrap();
    assert!(started.len() == 20 && started.ends_with('Z'), "{started}");
    let started: jiff::Timestamp = started.parse().unwrap();
    let age = jiff::Timestamp::now().as_second() - started.as_second();
    assert!((0..3600).contains(&age), "started {age} s ago");
    assert!(report["duration_ms"].is_u64());
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let first: Value = serde_json::from_str(read("r.jsonl").lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "image");
    assert_eq!(first["labels"], expected);
    let sarif: Value = serde_json::from_str(&read("r.sarif")).unwrap();
    assert_eq!(sarif["runs"][0]["properties"]["labels"], expected);
    let junit = read("r.xml");
    assert!(
        junit.contains(r#"<property name="label.build" value="1 234"/>"#)
            && junit.contains(r#"<property name="label.region" value="eu-west-1"/>"#),
        "{junit}"
    );
    let table = read("r.txt");
    assert!(
        table.contains("\n  labels: build=1 234, region=eu-west-1\n"),
        "{table}"
    );
    let markdown = read("r.md");
    assert!(
        markdown.contains("Labels: `build=1 234`, `region=eu-west-1`"),
        "{markdown}"
    );
}

#[test]
fn a_malformed_or_repeated_label_is_a_usage_error() {
    for bad in [
        &["--label", "bad key=1"][..],
        &["--label", "=1"],
        &["--label", "a/b=1"],
        &["--label", "no-value"],
        &["--label", "é=1"],
        &["--label", "a=1", "--label", "a=2"],
    ] {
        let run = scan(bad);
        assert_eq!(run.code, 2, "{bad:?}: {}", run.describe());
        assert!(run.stderr.contains("--label"), "{bad:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{bad:?}: no report");
    }
    // Letters, digits, `_`, `.` and `-` make a key; the value is free text.
    let run = scan(&["--label", "Team_A.b-2=any thing=at all", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.describe());
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        report["images"][0]["labels"]["Team_A.b-2"],
        "any thing=at all"
    );
}

/// `--image-digest` gives each file of a guest of two disks the SHA-256 `sha256sum` gives.
#[test]
fn image_digests_are_what_sha256sum_computes() {
    let disks = [
        rule_image("leaky"),
        util::manifest_dir().join("testdata/sample.img"),
    ];
    let joined = format!("{}+{}", disks[0].display(), disks[1].display());
    let json = amiscan(["scan", &joined, "--format", "json", "--image-digest"]);
    // Wide enough that no line wraps: the test is about the content.
    let table = util::amiscan_env(["scan", &joined, "--image-digest"], &[("COLUMNS", "400")]);
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    let digests = report["images"][0]["image"]["digests"].as_array().unwrap();
    assert_eq!(digests.len(), 2, "{digests:?}");
    for (digest, disk) in digests.iter().zip(&disks) {
        let sum = util::tool("sha256sum", &[disk.to_str().unwrap()]);
        let expected = sum.split_whitespace().next().unwrap();
        assert_eq!(digest["path"], disk.display().to_string());
        assert_eq!(digest["sha256"], expected);
        let line = format!("  sha256 {}: {expected}\n", disk.display());
        assert!(
            table.stdout_text().contains(&line),
            "{}",
            table.stdout_text()
        );
    }
    // Without the flag, nothing is read twice and nothing is said.
    let plain = amiscan(["scan", &joined, "--format", "json"]);
    let report: Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert!(report["images"][0]["image"].get("digests").is_none());
}

/// A rule whose checks all meet one unreadable place says so once, with a count.
#[test]
fn a_rule_error_names_each_cause_once() {
    let dir = crate::golden::not_read_dir();
    let run = amiscan([
        "scan",
        dir.join("unread.img").to_str().unwrap(),
        "--select",
        "creds.files",
        "--format",
        "json",
        "--no-default-waivers",
    ]);
    assert_eq!(run.code, 3, "{}", run.describe());
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    let result = &report["images"][0]["results"][0];
    assert_eq!(result["status"], "error");
    let reason = result["reason"].as_str().unwrap();
    assert_eq!(
        reason.matches("/home could not be read").count(),
        1,
        "{reason}"
    );
    assert_eq!(
        reason.matches("/srv/data could not be read").count(),
        1,
        "{reason}"
    );
    // Each of the rule's two checks (stores, environment files) met /home: the count says
    // how many.
    assert!(
        reason.contains("that part of the guest tree is not scanned (×2); /srv/data"),
        "{reason}"
    );
}

/// A disk image cut short: the partitions past its end are named in the "Not read"
/// section with the partition-table problems that hide them, not only counted in JSON.
#[test]
fn a_truncated_image_says_which_partitions_it_lost() {
    use std::io::Read;
    let dir = util::scratch_dir("report_formats", "truncated");
    let image = dir.join("truncated.img");
    let mut whole = std::fs::File::open(util::volume_kinds_image()).unwrap();
    let mut cut = std::fs::File::create(&image).unwrap();
    std::io::copy(&mut (&mut whole).take(60_000_000), &mut cut).unwrap();
    drop(cut);
    let run = util::amiscan_env(
        [
            "scan",
            image.to_str().unwrap(),
            "--select",
            "cleanup.tmp",
            "--no-default-waivers",
        ],
        &[("COLUMNS", "400")],
    );
    assert_eq!(run.code, 3, "{}", run.describe());
    let text = run.stdout_text();
    let section = &text[text
        .find("Not read (the result is incomplete):")
        .expect(&text)..];
    assert!(section.contains("\n  4 volumes not read:\n"), "{section}");
    assert!(
        section.contains(
            "\n    p3 (unknown): GPT entry 3 at byte 1280 ends at byte 152043520, past the end \
             of the 60000000-byte disk\n"
        ),
        "{section}"
    );
    assert!(
        section.contains("\n  partition-table problems that may hide data:\n"),
        "{section}"
    );
    // Problems that hide nothing stay notes, not causes.
    assert!(
        text.contains("note: partition table: backup GPT cannot be used"),
        "{text}"
    );
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains(": incomplete: "))
        .expect(&run.stderr);
    assert!(
        line.contains("4 volumes not read (p3: GPT entry 3"),
        "{line}"
    );
    assert!(
        line.ends_with(", partition-table problems that may hide data"),
        "{line}"
    );
}
