//! Waiver files: which findings a publisher has accepted, why, and until when. Parses the
//! YAML strictly (every problem as FILE:LINE:COLUMN) and answers "which waiver covers this
//! finding"; it does not decide the verdict.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::date::{self, Date};
use crate::guest::GuestPath;

/// The file picked up without `--waivers`, next to the image or in the working directory.
pub const DEFAULT_FILE: &str = ".amiscan-waivers.yaml";

/// A waiver file larger than this is refused rather than read into memory.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// A problem in a waiver file, where it is: FILE:LINE:COLUMN, as for rule packs.
pub type WaiverError = crate::rules::pack::PackError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverFile {
    waivers: Vec<Spanned<WaiverSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverSpec {
    rule: String,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    subjects: Vec<String>,
    reason: String,
    /// Spanned so that a bad date is reported where it is written.
    #[serde(default)]
    expires: Option<Spanned<String>>,
    #[serde(default)]
    images: Option<String>,
}

/// One waiver as written, compiled.
#[derive(Debug, Clone)]
pub struct Waiver {
    /// `FILE:LINE` of the waiver's entry: how reports name it.
    pub source: String,
    pub rule: String,
    pub paths: Vec<String>,
    pub subjects: Vec<String>,
    pub reason: String,
    /// Last day the waiver applies (inclusive), as written and parsed.
    pub expires: Option<(String, Date)>,
    pub images: Option<String>,
    path_matchers: Vec<GlobMatcher>,
    subject_matchers: Vec<GlobMatcher>,
    image_matcher: Option<(GlobMatcher, bool)>,
    /// A waiver found next to an image applies to the images of that directory only.
    directory: Option<PathBuf>,
}

impl Waiver {
    /// Whether this waiver is meant for the image (its `images` glob and, for a file next
    /// to images, the directory).
    pub fn covers_image(&self, image: &Path) -> bool {
        if let Some(directory) = &self.directory {
            if image_directory(image) != *directory {
                return false;
            }
        }
        match &self.image_matcher {
            None => true,
            // A glob with a `/` is matched against the path as given, otherwise against
            // the file name, so `base-*.qcow2` works wherever the image lies.
            Some((matcher, whole_path)) if *whole_path => matcher.is_match(image),
            Some((matcher, _)) => image.file_name().is_some_and(|n| matcher.is_match(n)),
        }
    }

    /// Whether the waiver covers a finding of its rule at this path and subject.
    /// Paths match by the guest's exact bytes.
    pub fn covers(&self, path: Option<&GuestPath>, subject: Option<&str>) -> bool {
        let any = |matchers: &[GlobMatcher], value: Option<&[u8]>| {
            matchers.is_empty()
                || value.is_some_and(|v| {
                    let v = std::ffi::OsStr::from_bytes(v);
                    matchers.iter().any(|m| m.is_match(v))
                })
        };
        any(&self.path_matchers, path.map(GuestPath::as_bytes))
            && any(&self.subject_matchers, subject.map(str::as_bytes))
    }

    pub fn expired(&self, today: Date) -> bool {
        self.expires.as_ref().is_some_and(|(_, day)| *day < today)
    }
}

/// The directory an image lies in, as the waiver lookup compares it.
fn image_directory(image: &Path) -> PathBuf {
    let parent = image
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parent
        .canonicalize()
        .unwrap_or_else(|_| parent.to_path_buf())
}

fn glob(pattern: &str, separator: bool) -> Result<GlobMatcher, globset::Error> {
    GlobBuilder::new(pattern)
        .literal_separator(separator)
        .backslash_escape(true)
        .build()
        .map(|g: Glob| g.compile_matcher())
}

/// Parses one waiver file's text, collecting every problem.
pub fn parse(file: &str, text: &str) -> Result<Vec<Waiver>, Vec<WaiverError>> {
    let parsed: WaiverFile = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        vec![WaiverError {
            file: file.to_string(),
            line,
            column,
            message: e.to_string().lines().next().unwrap_or_default().to_string(),
        }]
    })?;
    let mut waivers = Vec::new();
    let mut errors = Vec::new();
    for entry in parsed.waivers {
        let at = &entry.referenced;
        let mut problems = Vec::new();
        // Problems with a place of their own (a bad date), as (line, column, message).
        let mut placed = Vec::new();
        let spec = entry.value;
        if !crate::rules::pack::valid_id(&spec.rule) {
            problems.push(format!(
                "`{}` is not a rule id (like `cleanup.logs`)",
                spec.rule
            ));
        }
        if spec.reason.trim().is_empty() {
            problems.push("a waiver needs a `reason`".to_string());
        }
        // Strict as written: a quoted date with a space in it is not a date.
        let expires = match &spec.expires {
            None => None,
            Some(text) => match date::parse(&text.value) {
                Some(day) => Some((text.value.clone(), day)),
                None => {
                    placed.push((
                        text.referenced.line(),
                        text.referenced.column(),
                        format!(
                            "expires: `{}` is not a YYYY-MM-DD date of the calendar",
                            text.value
                        ),
                    ));
                    None
                }
            },
        };
        let mut path_matchers = Vec::new();
        for path in &spec.paths {
            if !path.starts_with('/') {
                problems.push(format!("path `{path}` must be an absolute guest path"));
                continue;
            }
            match glob(path, true) {
                Ok(m) => path_matchers.push(m),
                Err(e) => problems.push(format!("path `{path}`: {e}")),
            }
        }
        let mut subject_matchers = Vec::new();
        for subject in &spec.subjects {
            match glob(subject, false) {
                Ok(m) => subject_matchers.push(m),
                Err(e) => problems.push(format!("subject `{subject}`: {e}")),
            }
        }
        let image_matcher = match &spec.images {
            None => None,
            Some(pattern) => match glob(pattern, false) {
                Ok(m) => Some((m, pattern.contains('/'))),
                Err(e) => {
                    problems.push(format!("images `{pattern}`: {e}"));
                    None
                }
            },
        };
        if problems.is_empty() && placed.is_empty() {
            waivers.push(Waiver {
                source: format!("{file}:{}", at.line()),
                rule: spec.rule,
                paths: spec.paths,
                subjects: spec.subjects,
                reason: spec.reason.trim().to_string(),
                expires,
                images: spec.images,
                path_matchers,
                subject_matchers,
                image_matcher,
                directory: None,
            });
        } else {
            let entry_place = problems
                .into_iter()
                .map(|message| (at.line(), at.column(), message));
            errors.extend(
                entry_place
                    .chain(placed)
                    .map(|(line, column, message)| WaiverError {
                        file: file.to_string(),
                        line,
                        column,
                        message,
                    }),
            );
        }
    }
    if errors.is_empty() {
        Ok(waivers)
    } else {
        Err(errors)
    }
}

/// Reads and parses a waiver file from the host.
pub fn load(path: &Path) -> Result<Vec<Waiver>, Vec<WaiverError>> {
    let name = path.display().to_string();
    let fail = |message: String| {
        vec![WaiverError {
            file: name.clone(),
            line: 0,
            column: 0,
            message,
        }]
    };
    let size = std::fs::metadata(path)
        .map_err(|e| fail(format!("cannot read: {e}")))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(fail(format!(
            "{size} bytes; a waiver file may have at most {MAX_FILE_BYTES}"
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    parse(&name, &text)
}

/// Where waivers come from when `--waivers` is not given: `.amiscan-waivers.yaml` in the
/// working directory (for every image) and next to each image (for the images of that
/// directory). Each file is read once.
pub fn load_defaults(images: &[PathBuf]) -> Result<Vec<Waiver>, Vec<WaiverError>> {
    let mut waivers = Vec::new();
    let mut errors = Vec::new();
    let cwd = Path::new(".").canonicalize().ok();
    let mut seen = Vec::new();
    let mut add = |file: PathBuf, directory: Option<PathBuf>| {
        let key = file.canonicalize().unwrap_or_else(|_| file.clone());
        if seen.contains(&key) || !file.is_file() {
            return;
        }
        seen.push(key);
        match load(&file) {
            Ok(found) => waivers.extend(found.into_iter().map(|mut w| {
                w.directory = directory.clone();
                w
            })),
            Err(e) => errors.extend(e),
        }
    };
    add(PathBuf::from(DEFAULT_FILE), None);
    for image in images {
        let directory = image_directory(image);
        if Some(&directory) == cwd.as_ref() {
            continue;
        }
        add(directory.join(DEFAULT_FILE), Some(directory));
    }
    if errors.is_empty() {
        Ok(waivers)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: Date = jiff::civil::date(2026, 11, 22);

    #[test]
    fn a_full_waiver_parses_and_matches() {
        let text = "waivers:\n  - rule: cleanup.logs\n    paths: [\"/var/log/installer/**\"]\n    subjects: [\"syslog*\"]\n    reason: kept for support\n    expires: 2026-12-31\n    images: \"base-*.img\"\n";
        let waivers = parse("w.yaml", text).unwrap();
        let waiver = &waivers[0];
        assert_eq!(waiver.source, "w.yaml:2");
        assert!(waiver.covers(
            Some(&GuestPath::from("/var/log/installer/a/b.log")),
            Some("syslog")
        ));
        assert!(!waiver.covers(Some(&GuestPath::from("/var/log/other.log")), Some("syslog")));
        assert!(!waiver.covers(None, Some("syslog")));
        assert!(!waiver.covers(Some(&GuestPath::from("/var/log/installer/x")), Some("auth")));
        assert!(!waiver.expired(TODAY));
        assert!(waiver.expired(jiff::civil::date(2027, 1, 1)));
        assert!(waiver.covers_image(Path::new("/tmp/x/base-1.img")));
        assert!(!waiver.covers_image(Path::new("/tmp/x/app-1.img")));
    }

    #[test]
    fn the_expiry_day_itself_still_applies() {
        let text = "waivers:\n  - rule: a.b\n    reason: r\n    expires: 2026-11-22\n";
        let waiver = &parse("w", text).unwrap()[0];
        assert!(!waiver.expired(TODAY));
        assert!(waiver.expired(jiff::civil::date(2026, 11, 23)));
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = "waivers:\n  - rule: a.b\n    reason: \"  \"\n  - rule: Bad\n    reason: r\n    expires: soon\n    paths: [relative]\n";
        let errors = parse("w.yaml", text).unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 4, "{shown:#?}");
        assert!(shown[0].starts_with("w.yaml:2:"), "{shown:#?}");
        assert!(shown[1].starts_with("w.yaml:4:") && shown[1].contains("not a rule id"));
        assert!(shown.iter().any(|s| s.contains("YYYY-MM-DD")));
        assert!(shown.iter().any(|s| s.contains("absolute")));
    }

    #[test]
    fn a_bad_date_is_named_where_it_is_written() {
        for bad in [
            "2026-02-30",
            "2026-2-3",
            "2026-13-01",
            "0000-01-01",
            "\"+2026-01-01\"",
            "\"2026-01-01 \"",
            "2026-01-01T10:00:00",
            "2027-02-29",
        ] {
            let text = format!("waivers:\n  - rule: a.b\n    reason: r\n    expires: {bad}\n");
            let errors = parse("w.yaml", &text).unwrap_err();
            assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
            assert_eq!(
                (errors[0].line, errors[0].column),
                (4, 14),
                "{bad}: {errors:?}"
            );
            assert!(errors[0].message.contains("YYYY-MM-DD"), "{errors:?}");
        }
        let leap = "waivers:\n  - rule: a.b\n    reason: r\n    expires: 2028-02-29\n";
        let waiver = &parse("w.yaml", leap).unwrap()[0];
        assert_eq!(
            waiver.expires.as_ref().map(|(text, _)| text.as_str()),
            Some("2028-02-29")
        );
    }

    #[test]
    fn a_missing_reason_or_an_unknown_field_names_its_place() {
        let missing = parse("w", "waivers:\n  - rule: a.b\n").unwrap_err();
        assert!(missing[0].message.contains("reason"), "{missing:?}");
        let unknown = parse(
            "w",
            "waivers:\n  - rule: a.b\n    reason: r\n    until: x\n",
        );
        let unknown = unknown.unwrap_err();
        assert!(unknown[0].message.contains("until"), "{unknown:?}");
        assert!(unknown[0].line >= 2, "{unknown:?}");
    }
}
