//! Baselines: an earlier JSON report (schema_version 1 to 4) read back as the set of
//! findings already known, so a scan can fail on new findings only and list what was fixed.
//! A finding is identified by rule, path (the guest's exact bytes), subject and secret
//! fingerprint — never by its message, which may be reworded between versions.

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine;
use serde_json::Value;

use crate::guest::GuestPath;

/// A report larger than this is refused rather than read into memory.
const MAX_FILE_BYTES: u64 = 1 << 30;

/// Why an earlier report cannot serve as a baseline.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("{0}")]
    Io(#[source] std::io::Error),
    #[error("{size} bytes is too large for a report")]
    TooLarge { size: u64 },
    #[error("{0}")]
    NotJson(#[source] serde_json::Error),
    #[error("not an amiscan JSON report (no `schema_version`)")]
    NotAReport,
    #[error("schema_version {0} is newer than this amiscan understands (1 to 4)")]
    UnsupportedVersion(u64),
    #[error("{0}")]
    Malformed(Malformed),
}

/// A part of the report that does not have the shape amiscan writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("`results` is not a list")]
    ResultsNotAList,
    #[error("a result has no `rule`")]
    ResultWithoutRule,
    #[error("`images` is not a list")]
    ImagesNotAList,
}

/// What kind of problem a `BaselineError` is, for callers and tests to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselineErrorKind {
    Io,
    TooLarge,
    NotJson,
    NotAReport,
    UnsupportedVersion,
    Malformed,
}

impl BaselineError {
    pub fn kind(&self) -> BaselineErrorKind {
        match self {
            BaselineError::Io(_) => BaselineErrorKind::Io,
            BaselineError::TooLarge { .. } => BaselineErrorKind::TooLarge,
            BaselineError::NotJson(_) => BaselineErrorKind::NotJson,
            BaselineError::NotAReport => BaselineErrorKind::NotAReport,
            BaselineError::UnsupportedVersion(_) => BaselineErrorKind::UnsupportedVersion,
            BaselineError::Malformed(_) => BaselineErrorKind::Malformed,
        }
    }
}

/// A `BaselineError` with the `--baseline` file it concerns, as the user sees it.
#[derive(Debug, thiserror::Error)]
#[error("--baseline {}: {problem}", file.display())]
pub struct BaselineFileError {
    pub file: std::path::PathBuf,
    pub problem: BaselineError,
}

impl BaselineFileError {
    pub fn kind(&self) -> BaselineErrorKind {
        self.problem.kind()
    }
}

/// What identifies a finding across reports.
pub type Key = (String, Option<GuestPath>, Option<String>, Option<String>);

/// One finding of the earlier report (the shape a fixed one is reported in).
pub type KnownFinding = super::decision::FixedFinding;

/// What identifies a finding of the earlier report.
pub fn key(finding: &KnownFinding) -> Key {
    (
        finding.rule.clone(),
        finding.path.clone(),
        finding.subject.clone(),
        finding.fingerprint.clone(),
    )
}

/// One image of the earlier report.
#[derive(Debug, Clone)]
pub struct BaselineImage {
    /// The image's file name, which pairs it with an image of this run.
    pub name: String,
    /// Rules that ran and decided (pass, fail or waived) in the earlier scan.
    pub decided_rules: BTreeSet<String>,
    pub findings: Vec<KnownFinding>,
    keys: BTreeSet<Key>,
}

impl BaselineImage {
    pub fn knows(&self, key: &Key) -> bool {
        self.keys.contains(key)
    }
}

#[derive(Debug, Clone)]
pub struct Baseline {
    pub path: String,
    pub schema_version: u64,
    pub images: Vec<BaselineImage>,
}

fn text(value: &Value, field: &str) -> Option<String> {
    value.get(field).and_then(Value::as_str).map(str::to_string)
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

/// A finding's guest path as its bytes. Version 3 gives them exactly (`path_base64` when
/// they are not UTF-8); versions 1 and 2 wrote paths escaped for a terminal, which is
/// reversible, or as lossy text, which is taken as it is.
fn finding_path(finding: &Value, schema_version: u64) -> Option<GuestPath> {
    let text = finding.get("path").and_then(Value::as_str)?;
    if schema_version >= 3 {
        let exact = finding
            .get("path_base64")
            .and_then(Value::as_str)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
        return Some(GuestPath::new(
            exact.unwrap_or_else(|| text.as_bytes().to_vec()),
        ));
    }
    let bytes = crate::names::unescape_terminal(text).unwrap_or_else(|| text.as_bytes().to_vec());
    Some(GuestPath::new(bytes))
}

/// Reads one image's results (`results` of a v1 report or of a v2/v3 `images[]` entry).
fn image(
    image: &Value,
    results: &Value,
    schema_version: u64,
) -> Result<BaselineImage, BaselineError> {
    let name = image
        .get("path")
        .and_then(Value::as_str)
        .map(file_name)
        .unwrap_or_default();
    let results = results
        .as_array()
        .ok_or(BaselineError::Malformed(Malformed::ResultsNotAList))?;
    let mut decided_rules = BTreeSet::new();
    let mut findings = Vec::new();
    for result in results {
        let rule =
            text(result, "rule").ok_or(BaselineError::Malformed(Malformed::ResultWithoutRule))?;
        let status = text(result, "status").unwrap_or_default();
        if matches!(status.as_str(), "pass" | "fail" | "waived") {
            decided_rules.insert(rule.clone());
        }
        for finding in result
            .get("findings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            findings.push(KnownFinding {
                rule: rule.clone(),
                path: finding_path(finding, schema_version),
                subject: text(finding, "subject"),
                fingerprint: text(finding, "fingerprint"),
                message: text(finding, "message").unwrap_or_default(),
                severity: text(finding, "severity").unwrap_or_default(),
            });
        }
    }
    let keys = findings.iter().map(key).collect();
    Ok(BaselineImage {
        name,
        decided_rules,
        findings,
        keys,
    })
}

/// Interprets a parsed report.
pub fn from_value(path: &str, report: &Value) -> Result<Baseline, BaselineError> {
    let schema_version = report
        .get("schema_version")
        .and_then(Value::as_u64)
        .ok_or(BaselineError::NotAReport)?;
    let images = match schema_version {
        1 => vec![image(
            report.get("image").unwrap_or(&Value::Null),
            report.get("results").unwrap_or(&Value::Null),
            1,
        )?],
        2..=4 => report
            .get("images")
            .and_then(Value::as_array)
            .ok_or(BaselineError::Malformed(Malformed::ImagesNotAList))?
            .iter()
            // An image that could not be opened then has no findings to carry over.
            .filter(|i| i.get("error").is_none_or(Value::is_null))
            .map(|i| {
                image(
                    i.get("image").unwrap_or(&Value::Null),
                    i.get("results").unwrap_or(&Value::Null),
                    schema_version,
                )
            })
            .collect::<Result<_, _>>()?,
        other => return Err(BaselineError::UnsupportedVersion(other)),
    };
    Ok(Baseline {
        path: path.to_string(),
        schema_version,
        images,
    })
}

/// Reads a JSON report written by `amiscan scan --format json`.
pub fn read(path: &Path) -> Result<Baseline, BaselineFileError> {
    let fail = |problem| BaselineFileError {
        file: path.to_path_buf(),
        problem,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| fail(BaselineError::Io(e)))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(fail(BaselineError::TooLarge { size }));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(BaselineError::Io(e)))?;
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|e| fail(BaselineError::NotJson(e)))?;
    from_value(&path.display().to_string(), &value).map_err(fail)
}

impl Baseline {
    /// The earlier image this image is compared with: the only one, or the one with the
    /// same file name.
    pub fn for_image(&self, image: &str) -> Option<&BaselineImage> {
        match self.images.as_slice() {
            [only] => Some(only),
            many => {
                let name = file_name(image);
                many.iter().find(|i| i.name == name)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_one_and_two_reports_read_the_same() {
        let results = serde_json::json!([
            {"rule": "history.shell", "status": "fail", "findings": [
                {"path": "/root/.bash_history", "subject": null, "message": "m", "severity": "high"}]},
            {"rule": "sshd.root-login", "status": "error", "findings": []}
        ]);
        let v1 = serde_json::json!({"schema_version": 1, "image": {"path": "a/old.img"}, "results": results});
        let v2 = serde_json::json!({"schema_version": 2, "images": [
            {"image": {"path": "old.img"}, "results": results, "error": null}]});
        for report in [v1, v2] {
            let baseline = from_value("b.json", &report).unwrap();
            let image = baseline.for_image("new.img").unwrap();
            assert_eq!(image.name, "old.img");
            let key = (
                "history.shell".to_string(),
                Some(GuestPath::from("/root/.bash_history")),
                None,
                None,
            );
            assert!(image.knows(&key));
            assert!(image.decided_rules.contains("history.shell"));
            assert!(!image.decided_rules.contains("sshd.root-login"));
        }
    }

    #[test]
    fn several_images_pair_by_file_name() {
        let report = serde_json::json!({"schema_version": 2, "images": [
            {"image": {"path": "x/a.img"}, "results": []},
            {"image": {"path": "x/b.img"}, "results": []}]});
        let baseline = from_value("b.json", &report).unwrap();
        assert_eq!(
            baseline.for_image("/elsewhere/b.img").unwrap().name,
            "b.img"
        );
        assert!(baseline.for_image("c.img").is_none());
    }

    #[test]
    fn other_documents_are_refused() {
        let kind = |report: serde_json::Value| from_value("b", &report).err().map(|e| e.kind());
        assert_eq!(
            kind(serde_json::json!({"results": []})),
            Some(BaselineErrorKind::NotAReport)
        );
        assert_eq!(
            kind(serde_json::json!({"schema_version": 9})),
            Some(BaselineErrorKind::UnsupportedVersion)
        );
        assert_eq!(
            kind(serde_json::json!({"schema_version": 2, "images": [{"results": 3}]})),
            Some(BaselineErrorKind::Malformed)
        );
        let newer = from_value("b", &serde_json::json!({"schema_version": 9})).err();
        assert_eq!(
            newer.map(|e| e.to_string()).as_deref(),
            Some("schema_version 9 is newer than this amiscan understands (1 to 4)")
        );
    }

    #[test]
    fn file_errors_name_the_file() {
        let missing = read(Path::new("/nonexistent/amiscan-baseline.json")).err();
        assert_eq!(
            missing.as_ref().map(|e| e.kind()),
            Some(BaselineErrorKind::Io)
        );
        assert!(missing
            .map(|e| e.to_string())
            .is_some_and(|m| m.starts_with("--baseline /nonexistent/amiscan-baseline.json: ")));
    }
}
