//! Every scan report the tests produce must satisfy docs/scan-report.schema.json, the
//! published contract. The validator below covers the schema keywords that file uses
//! (type, const, enum, required, properties, items, pattern-free strings,
//! additionalProperties, propertyNames, minimum, $ref into $defs) and fails on any other
//! keyword, so the schema cannot grow a constraint this test silently ignores.

use crate::util;

use serde_json::Value;
use util::{amiscan, manifest_dir, rule_image};

fn type_matches(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("schema uses unknown type {other}"),
    }
}

fn validate(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(schema) = schema.as_object() else {
        return;
    };
    for (keyword, rule) in schema {
        match keyword.as_str() {
            "$schema" | "$id" | "title" | "description" | "$defs" | "pattern" => {}
            "$ref" => {
                let name = rule.as_str().unwrap().trim_start_matches("#/$defs/");
                validate(root, &root["$defs"][name], value, at, errors);
            }
            "type" => {
                let names: Vec<&str> = match rule {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(a) => a.iter().map(|v| v.as_str().unwrap()).collect(),
                    _ => panic!("bad type"),
                };
                if !names.iter().any(|n| type_matches(value, n)) {
                    errors.push(format!("{at}: {value} is not {names:?}"));
                }
            }
            "const" if value != rule => errors.push(format!("{at}: {value} != {rule}")),
            "const" => {}
            "enum" if !rule.as_array().unwrap().contains(value) => {
                errors.push(format!("{at}: {value} not in {rule}"))
            }
            "enum" => {}
            "minimum" => {
                if let Some(n) = value.as_f64() {
                    if n < rule.as_f64().unwrap() {
                        errors.push(format!("{at}: {n} < {rule}"));
                    }
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for key in rule.as_array().unwrap() {
                        if !object.contains_key(key.as_str().unwrap()) {
                            errors.push(format!("{at}: missing {key}"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(object) = value.as_object() {
                    for (key, sub) in rule.as_object().unwrap() {
                        if let Some(child) = object.get(key) {
                            validate(root, sub, child, &format!("{at}.{key}"), errors);
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(object) = value.as_object() {
                    for (key, child) in object {
                        validate(root, rule, child, &format!("{at}.{key}"), errors);
                    }
                }
            }
            "propertyNames" => {
                if let Some(object) = value.as_object() {
                    for key in object.keys() {
                        validate(
                            root,
                            rule,
                            &Value::String(key.clone()),
                            &format!("{at} key"),
                            errors,
                        );
                    }
                }
            }
            "items" => {
                if let Some(array) = value.as_array() {
                    for (index, child) in array.iter().enumerate() {
                        validate(root, rule, child, &format!("{at}[{index}]"), errors);
                    }
                }
            }
            other => panic!("schema keyword {other} is not checked by this test"),
        }
    }
}

fn schema() -> Value {
    let text =
        std::fs::read_to_string(manifest_dir().join("docs/scan-report.schema.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn assert_valid(image: &std::path::Path, extra: &[&str]) {
    let mut args = vec![
        "scan".to_string(),
        image.display().to_string(),
        "--format".into(),
        "json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = amiscan(&args);
    assert!(matches!(run.code, 0 | 1 | 3), "{}", run.describe());
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    let schema = schema();
    let mut errors = Vec::new();
    validate(&schema, &schema, &report, "$", &mut errors);
    assert!(errors.is_empty(), "{}: {errors:#?}", image.display());
    assert_eq!(
        report["summary"]["exit_code"], run.code,
        "exit code and summary agree"
    );
}

#[test]
fn sample_report_matches_the_schema() {
    assert_valid(&manifest_dir().join("testdata/sample.img"), &[]);
}

#[test]
fn rule_case_reports_match_the_schema() {
    for case in ["leaky", "sealed", "tricky"] {
        assert_valid(
            &rule_image(case),
            &["--as-of", "2026-11-22", "--sshd-strict"],
        );
    }
}

#[test]
fn an_incomplete_scan_matches_the_schema() {
    util::ensure_images();
    assert_valid(&util::image("incomplete.img"), &[]);
}

/// A guest given as two disks lists each under `image.disks`.
#[test]
fn a_guest_of_two_disks_matches_the_schema() {
    let joined = format!(
        "{}+{}",
        rule_image("leaky").display(),
        manifest_dir().join("testdata/sample.img").display()
    );
    assert_valid(std::path::Path::new(&joined), &["--as-of", "2026-11-22"]);
}

#[test]
fn the_validator_rejects_a_broken_report() {
    let schema = schema();
    let mut errors = Vec::new();
    let broken = serde_json::json!({"schema_version": 2, "results": [{"status": "maybe"}]});
    validate(&schema, &schema, &broken, "$", &mut errors);
    assert!(errors.len() >= 3, "{errors:#?}");
}

/// The golden reports (tests/integration/golden.rs) hold every status, waiver state and baseline state.
#[test]
fn golden_reports_match_the_schema() {
    let schema = schema();
    for name in ["scan.json", "baseline.json"] {
        let path = manifest_dir().join("tests/golden").join(name);
        let report: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mut errors = Vec::new();
        validate(&schema, &schema, &report, "$", &mut errors);
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
}
