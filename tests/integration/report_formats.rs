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
