//! Rule packs: YAML files of rules, the built-in pack embedded in the binary, user packs
//! added with `--rules`, and validation that reports every problem with file, line and
//! column.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::checks::{Check, CheckSpec};
use super::spec_error::{FilterField, FixField, FixFilter, Missing, SpecError};
use super::Severity;

pub use super::placeholder::Placeholder;

/// The built-in pack, one file per theme, in the order docs list them.
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    ("rules/ssh.yaml", include_str!("../../rules/ssh.yaml")),
    ("rules/sshd.yaml", include_str!("../../rules/sshd.yaml")),
    (
        "rules/accounts.yaml",
        include_str!("../../rules/accounts.yaml"),
    ),
    (
        "rules/history.yaml",
        include_str!("../../rules/history.yaml"),
    ),
    (
        "rules/services.yaml",
        include_str!("../../rules/services.yaml"),
    ),
    (
        "rules/cleanup.yaml",
        include_str!("../../rules/cleanup.yaml"),
    ),
    ("rules/system.yaml", include_str!("../../rules/system.yaml")),
    (
        "rules/residue.yaml",
        include_str!("../../rules/residue.yaml"),
    ),
    ("rules/creds.yaml", include_str!("../../rules/creds.yaml")),
    (
        "rules/creds-files.yaml",
        include_str!("../../rules/creds-files.yaml"),
    ),
    (
        "rules/creds-cloud.yaml",
        include_str!("../../rules/creds-cloud.yaml"),
    ),
    (
        "rules/creds-tokens.yaml",
        include_str!("../../rules/creds-tokens.yaml"),
    ),
    (
        "rules/creds-saas.yaml",
        include_str!("../../rules/creds-saas.yaml"),
    ),
    (
        "rules/creds-connections.yaml",
        include_str!("../../rules/creds-connections.yaml"),
    ),
];

/// Pack files larger than this are refused (a pack is text written by people).
const MAX_PACK_BYTES: u64 = 4 << 20;

/// One rule, validated and compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub description: String,
    pub remediation: String,
    pub references: Vec<String>,
    pub tags: Vec<String>,
    /// The checks as written; the rule fails when any of them finds something.
    pub specs: Vec<CheckSpec>,
    pub checks: Vec<Check>,
    /// What the remediation script runs when the rule fails; `None`: its findings are
    /// listed there for the publisher to handle by hand.
    pub fix: Option<Fix>,
    /// The pack file the rule came from (`rules/ssh.yaml` for built-in rules).
    pub source: String,
    pub line: u64,
}

/// A rule's `fix:` as written: shell templates for the remediation script and which
/// findings they handle.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FixSpec {
    /// Run once per handled finding, placeholders filled in from the finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub each: Option<String>,
    /// Run once, before the per-finding commands, when the rule has a handled finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub once: Option<String>,
    /// Only findings matching this are handled; the others are left to the publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<FilterSpec>,
    /// Findings matching this are left to the publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<FilterSpec>,
}

/// Regular expressions over a finding's fields; every one given must match.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Shell text, copied as written.
    Text(String),
    Value(Placeholder),
}

/// A shell template split at its placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub segments: Vec<Segment>,
}

impl Template {
    /// `{name}` is a placeholder when `name` is an identifier; `${name}` stays shell
    /// parameter expansion, and braces around anything else (`{ print $1 }`) stay text.
    pub fn parse(text: &str) -> Result<Template, SpecError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let (before, from_brace) = rest.split_at(open);
            literal.push_str(before);
            let after = from_brace.get(1..).unwrap_or_default();
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let name = after.get(..name_len).unwrap_or_default();
            let is_placeholder = !literal.ends_with('$')
                && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && after.get(name_len..).is_some_and(|r| r.starts_with('}'));
            if !is_placeholder {
                literal.push('{');
                rest = after;
                continue;
            }
            let Some(placeholder) = Placeholder::ALL.into_iter().find(|p| p.name() == name) else {
                return Err(SpecError::UnknownPlaceholder {
                    name: name.to_string(),
                });
            };
            if !literal.is_empty() {
                segments.push(Segment::Text(std::mem::take(&mut literal)));
            }
            segments.push(Segment::Value(placeholder));
            rest = after.get(name_len + 1..).unwrap_or_default();
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            segments.push(Segment::Text(literal));
        }
        Ok(Template { segments })
    }

    pub fn placeholders(&self) -> impl Iterator<Item = Placeholder> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Value(p) => Some(*p),
            Segment::Text(_) => None,
        })
    }
}

/// A compiled `FilterSpec`.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Matched against the guest path's bytes.
    path: Option<regex::bytes::Regex>,
    subject: Option<Regex>,
    message: Option<Regex>,
}

impl Filter {
    fn compile(spec: &FilterSpec, filter: FixFilter) -> Result<Filter, SpecError> {
        let invalid = |field: FilterField| {
            move |source| SpecError::FilterRegex {
                filter,
                field,
                source,
            }
        };
        let regex = |field: FilterField, text: &Option<String>| {
            text.as_deref()
                .map(|t| Regex::new(t).map_err(invalid(field)))
                .transpose()
        };
        let path = spec
            .path
            .as_deref()
            .map(|t| regex::bytes::Regex::new(t).map_err(invalid(FilterField::Path)))
            .transpose()?;
        let compiled = Filter {
            path,
            subject: regex(FilterField::Subject, &spec.subject)?,
            message: regex(FilterField::Message, &spec.message)?,
        };
        if compiled.path.is_none() && compiled.subject.is_none() && compiled.message.is_none() {
            return Err(SpecError::MissingField(Missing::FilterField(filter)));
        }
        Ok(compiled)
    }

    /// A field the filter names but the finding lacks does not match.
    pub fn matches(&self, path: Option<&[u8]>, subject: Option<&str>, message: &str) -> bool {
        let field = |regex: &Option<Regex>, value: Option<&str>| match regex {
            Some(regex) => value.is_some_and(|v| regex.is_match(v)),
            None => true,
        };
        let path_matches = match &self.path {
            Some(regex) => path.is_some_and(|p| regex.is_match(p)),
            None => true,
        };
        path_matches && field(&self.subject, subject) && field(&self.message, Some(message))
    }
}

/// A validated `fix:`.
#[derive(Debug, Clone)]
pub struct Fix {
    pub spec: FixSpec,
    pub each: Option<Template>,
    pub once: Option<String>,
    only: Option<Filter>,
    except: Option<Filter>,
}

impl Fix {
    pub fn compile(spec: FixSpec) -> Result<Fix, SpecError> {
        let nonempty = |field: FixField, text: &Option<String>| match text {
            Some(t) if t.trim().is_empty() => Err(SpecError::EmptyFix(field)),
            _ => Ok(()),
        };
        nonempty(FixField::Each, &spec.each)?;
        nonempty(FixField::Once, &spec.once)?;
        if spec.each.is_none() && spec.once.is_none() {
            return Err(SpecError::MissingField(Missing::FixCommand));
        }
        let in_fix = |field: FixField| {
            move |e: SpecError| SpecError::InFix {
                field,
                source: Box::new(e),
            }
        };
        let each = spec
            .each
            .as_deref()
            .map(|t| Template::parse(t.trim_end()).map_err(in_fix(FixField::Each)))
            .transpose()?;
        let once = match spec.once.as_deref() {
            Some(text) => {
                let template = Template::parse(text).map_err(in_fix(FixField::Once))?;
                if let Some(placeholder) = template.placeholders().next() {
                    return Err(SpecError::PlaceholderInOnce { placeholder });
                }
                Some(text.trim_end().to_string())
            }
            None => None,
        };
        let only = spec
            .only
            .as_ref()
            .map(|f| Filter::compile(f, FixFilter::Only))
            .transpose()?;
        let except = spec
            .except
            .as_ref()
            .map(|f| Filter::compile(f, FixFilter::Except))
            .transpose()?;
        Ok(Fix {
            spec,
            each,
            once,
            only,
            except,
        })
    }

    /// Whether the fix handles a finding with these fields (`only` and `except` applied).
    pub fn handles(&self, path: Option<&[u8]>, subject: Option<&str>, message: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|f| f.matches(path, subject, message))
            && !self
                .except
                .as_ref()
                .is_some_and(|f| f.matches(path, subject, message))
    }
}

/// A problem in a pack, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0: the file as a whole (it could not be read), no position to point at.
        if self.line == 0 {
            return write!(f, "{}: {}", self.file, self.message);
        }
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// An I/O error as a user reads it: `No such file or directory`, without the errno.
fn io_message(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.rsplit_once(" (os error ") {
        Some((message, _)) => message.to_string(),
        None => text,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PackFile {
    rules: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: Spanned<String>,
    title: String,
    severity: Severity,
    description: String,
    remediation: String,
    #[serde(default)]
    references: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    /// One check, or (`checks`) several whose findings add up.
    #[serde(default)]
    check: Option<Spanned<CheckSpec>>,
    #[serde(default)]
    checks: Option<Spanned<Vec<CheckSpec>>>,
    /// Shell for the remediation script (`scan --remediation-script`).
    #[serde(default)]
    fix: Option<Spanned<FixSpec>>,
}

/// Rule ids: dotted, lower-case words with hyphens (`sshd.password-authentication`).
pub fn valid_id(id: &str) -> bool {
    let word = |w: &str| {
        !w.is_empty()
            && !w.starts_with('-')
            && !w.ends_with('-')
            && w.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    id.split('.').count() >= 2 && id.split('.').all(word)
}

/// Parses one pack file's text into rules, collecting every problem.
pub fn parse(file: &str, text: &str) -> Result<Vec<Rule>, Vec<PackError>> {
    let pack: PackFile = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let message = first_line(&e.to_string());
        let (line, column) = refine_unknown_field(text, &message, line).unwrap_or((line, column));
        vec![PackError {
            file: file.to_string(),
            line,
            column,
            message,
        }]
    })?;
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for spec in pack.rules {
        let at = |span: &Spanned<String>, message: String| PackError {
            file: file.to_string(),
            line: span.referenced.line(),
            column: span.referenced.column(),
            message,
        };
        let id = spec.id.value.clone();
        if !valid_id(&id) {
            errors.push(at(
                &spec.id,
                format!("rule id `{id}` must be dotted lower-case words, like `ssh.host-keys`"),
            ));
        }
        if let Some(line) = seen.insert(id.clone(), spec.id.referenced.line()) {
            errors.push(at(
                &spec.id,
                format!("rule `{id}` is defined twice in this file (first at line {line})"),
            ));
        }
        for (field, value) in [
            ("title", &spec.title),
            ("description", &spec.description),
            ("remediation", &spec.remediation),
        ] {
            if value.trim().is_empty() {
                errors.push(at(&spec.id, format!("rule `{id}`: `{field}` is empty")));
            }
        }
        let (specs, check_at) = match (spec.check, spec.checks) {
            (Some(one), None) => (vec![one.value], one.referenced),
            (None, Some(many)) if !many.value.is_empty() => (many.value, many.referenced),
            _ => {
                errors.push(at(
                    &spec.id,
                    format!("rule `{id}` needs exactly one of `check` and a non-empty `checks`"),
                ));
                continue;
            }
        };
        let fix = match spec.fix {
            Some(fix) => match Fix::compile(fix.value) {
                Ok(fix) => Some(fix),
                Err(error) => {
                    let message = error.to_string();
                    let (line, column) = refine_fix_error(text, &message, fix.referenced.line())
                        .unwrap_or((fix.referenced.line(), fix.referenced.column()));
                    errors.push(PackError {
                        file: file.to_string(),
                        line,
                        column,
                        message: format!("rule `{id}`: {message}"),
                    });
                    None
                }
            },
            None => None,
        };
        let mut checks = Vec::new();
        for check in &specs {
            match check.compile() {
                Ok(compiled) => checks.push(compiled),
                Err(message) => errors.push(PackError {
                    file: file.to_string(),
                    line: check_at.line(),
                    column: check_at.column(),
                    message: format!("rule `{id}`: check `{}`: {message}", check.kind()),
                }),
            }
        }
        if checks.len() == specs.len() {
            rules.push(Rule {
                id: id.clone(),
                title: spec.title.trim().to_string(),
                severity: spec.severity,
                description: spec.description.trim().to_string(),
                remediation: spec.remediation.trim_end().to_string(),
                references: spec.references,
                tags: spec.tags,
                specs,
                checks,
                fix,
                source: file.to_string(),
                line: spec.id.referenced.line(),
            });
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}

/// Checks are internally tagged by `kind`, so serde reports an unknown field inside one at
/// the check's start; this finds the field's own line (the first `field:` key at or after
/// that line).
fn refine_unknown_field(text: &str, message: &str, from_line: u64) -> Option<(u64, u64)> {
    let field = message.strip_prefix("unknown field `")?.split('`').next()?;
    let skip = usize::try_from(from_line.saturating_sub(1)).ok()?;
    text.lines()
        .enumerate()
        .skip(skip)
        .find_map(|(index, line)| {
            let indent = line.len() - line.trim_start().len();
            let rest = line
                .trim_start()
                .strip_prefix("- ")
                .unwrap_or(line.trim_start());
            let key = rest.strip_prefix(field)?;
            key.trim_start().starts_with(':').then(|| {
                let column = indent + (line.trim_start().len() - rest.len()) + 1;
                (index as u64 + 1, column as u64)
            })
        })
}

/// A fix error names the field (`fix.each`) and maybe a placeholder; the parser only knows
/// where the `fix` mapping starts. This finds the placeholder's, else the field's, line
/// at or after that point.
fn refine_fix_error(text: &str, message: &str, from_line: u64) -> Option<(u64, u64)> {
    let field = message
        .strip_prefix("`fix.")?
        .split(['`', '.'])
        .next()
        .filter(|f| !f.is_empty())?;
    let placeholder = message
        .split_once("`{")
        .and_then(|(_, rest)| rest.split_once("}`"))
        .map(|(name, _)| format!("{{{name}}}"));
    let skip = usize::try_from(from_line.saturating_sub(1)).ok()?;
    let lines = || text.lines().enumerate().skip(skip);
    let found = placeholder
        .as_deref()
        .and_then(|needle| lines().find_map(|(i, l)| l.find(needle).map(|c| (i, c))))
        .or_else(|| {
            lines().find_map(|(i, l)| {
                let key = format!("{field}:");
                l.find(&key).map(|c| (i, c))
            })
        })?;
    Some((found.0 as u64 + 1, found.1 as u64 + 1))
}

/// The parser's message without the position it repeats (`error: line 3 column 5: `),
/// which the report already gives as FILE:LINE:COLUMN.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or(text).trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line.split_once(": ") {
        Some((position, rest))
            if position.starts_with("line ") && position.contains(" column ") =>
        {
            rest.to_string()
        }
        _ => line.to_string(),
    }
}

/// A set of rules keyed by id.
#[derive(Debug, Clone, Default)]
pub struct Pack {
    rules: BTreeMap<String, Arc<Rule>>,
    /// What loading said without failing (parts of a gitleaks configuration not honoured).
    notices: Vec<String>,
}

impl Pack {
    /// The rules shipped inside amiscan.
    pub fn builtin() -> Result<Self, Vec<PackError>> {
        let mut pack = Pack::default();
        let mut errors = Vec::new();
        for (file, text) in BUILTIN_FILES {
            match parse(file, text) {
                Ok(rules) => {
                    for rule in rules {
                        if pack.rules.contains_key(&rule.id) {
                            errors.push(PackError {
                                file: file.to_string(),
                                line: rule.line,
                                column: 1,
                                message: format!(
                                    "rule `{}` is defined in two built-in files",
                                    rule.id
                                ),
                            });
                        }
                        pack.add(rule);
                    }
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(pack)
        } else {
            Err(errors)
        }
    }

    /// Records something loading said without failing, for the command to print.
    pub fn add_notice(&mut self, notice: String) {
        self.notices.push(notice);
    }

    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// Adds a rule, replacing one with the same id.
    pub fn add(&mut self, rule: Rule) {
        self.rules.insert(rule.id.clone(), Arc::new(rule));
    }

    /// Adds the rules of a pack file, or of every `*.yaml`/`*.yml` file in a directory (in
    /// name order).
    /// Every file is checked even after one fails, so all problems are reported at once.
    pub fn load(&mut self, path: &Path) -> Result<(), Vec<PackError>> {
        let mut errors = Vec::new();
        for file in pack_files(path)? {
            let name = file.display().to_string();
            let text = match read_pack(&file) {
                Ok(text) => text,
                Err(error) => {
                    errors.push(PackError {
                        file: name,
                        line: 0,
                        column: 0,
                        message: match &error {
                            ReadPackError::Io(e) => io_message(e),
                            other => other.to_string(),
                        },
                    });
                    continue;
                }
            };
            match parse(&name, &text) {
                Ok(rules) => rules.into_iter().for_each(|rule| self.add(rule)),
                Err(mut problems) => errors.append(&mut problems),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    pub fn rules(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.rules.values()
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Rule>> {
        self.rules.get(id)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// The pack files a `--rules` argument names.
pub fn pack_files(path: &Path) -> Result<Vec<PathBuf>, Vec<PackError>> {
    let fail = |message: String| {
        vec![PackError {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            message,
        }]
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(io_message(&e)))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| fail(e.to_string()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(fail(
            "no *.yaml or *.yml rule files in this directory".into(),
        ));
    }
    Ok(files)
}

/// Why a pack file's text could not be had.
#[derive(Debug, thiserror::Error)]
enum ReadPackError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("larger than {MAX_PACK_BYTES} bytes; not a rule pack")]
    TooLarge,
}

fn read_pack(path: &Path) -> Result<String, ReadPackError> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(MAX_PACK_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_PACK_BYTES {
        return Err(ReadPackError::TooLarge);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dotted_lower_case_words() {
        assert!(valid_id("ssh.host-keys"));
        assert!(valid_id("a.b.c2"));
        assert!(!valid_id("ssh"));
        assert!(!valid_id("SSH.keys"));
        assert!(!valid_id("ssh..keys"));
        assert!(!valid_id("ssh.-keys"));
        assert!(!valid_id("ssh.keys_x"));
    }

    #[test]
    fn the_builtin_pack_loads() {
        let pack = Pack::builtin().unwrap();
        assert!(pack.len() >= 21);
    }

    #[test]
    fn errors_carry_line_and_column() {
        let text = "rules:\n  - id: a.b\n    title: t\n    severity: high\n    description: d\n    remediation: r\n    check:\n      kind: path\n      paths: [\"relative\"]\n      message: m\n";
        let errors = parse("x.yaml", text).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 8, "{errors:?}");
        assert!(errors[0].message.contains("absolute"), "{errors:?}");
        let errors = parse("x.yaml", "rules:\n  - id: a.b\n    titel: t\n").unwrap_err();
        assert_eq!(errors[0].line, 3, "{errors:?}");
        assert!(errors[0].message.contains("titel"), "{errors:?}");
    }

    /// A pack with one path rule and `fix` lines after it (indented as rule fields).
    fn with_fix(fix: &str) -> String {
        format!(
            "rules:\n  - id: a.b\n    title: t\n    severity: high\n    description: d\n    \
             remediation: r\n    check:\n      kind: path\n      paths: [\"/x\"]\n      \
             message: m\n    fix:\n{fix}"
        )
    }

    #[test]
    fn fix_templates_are_split_at_placeholders() {
        let t = Template::parse("rm -f {path} && awk '{ print $1 }' ${path} {line}").unwrap();
        assert_eq!(
            t.segments,
            vec![
                Segment::Text("rm -f ".into()),
                Segment::Value(Placeholder::Path),
                Segment::Text(" && awk '{ print $1 }' ${path} ".into()),
                Segment::Value(Placeholder::Line),
            ]
        );
        let rules = parse("x.yaml", &with_fix("      each: amiscan_remove {path}\n")).unwrap();
        let fix = rules[0].fix.as_ref().unwrap();
        assert!(fix.handles(Some(b"/x"), None, "m"));
    }

    #[test]
    fn fix_errors_point_at_their_line() {
        let cases: &[(&str, u64, &str)] = &[
            (
                "      once: echo\n      each: |\n        rm\n        rm {pth}\n",
                15,
                "{pth}",
            ),
            ("      once: rm {path}\n", 12, "not per finding"),
            (
                "      each: rm {path}\n      except: {message: '('}\n",
                13,
                "fix.except.message",
            ),
            ("      except: {path: x}\n", 12, "needs `each`, `once`"),
            ("      each: \"  \"\n", 12, "empty"),
            ("      each: rm {path}\n      eahc: x\n", 13, "eahc"),
        ];
        for (fix, line, says) in cases {
            let errors = parse("x.yaml", &with_fix(fix)).unwrap_err();
            assert_eq!(errors.len(), 1, "{fix:?}: {errors:?}");
            assert_eq!(errors[0].line, *line, "{fix:?}: {errors:?}");
            assert!(errors[0].message.contains(says), "{fix:?}: {errors:?}");
        }
    }

    #[test]
    fn only_and_except_choose_the_findings_a_fix_handles() {
        let rules = parse(
            "x.yaml",
            &with_fix(
                "      each: rm {path}\n      only: {path: '^/home/'}\n      \
                 except: {subject: '^keep$', message: 'env'}\n",
            ),
        )
        .unwrap();
        let fix = rules[0].fix.as_ref().unwrap();
        assert!(fix.handles(Some(b"/home/a"), None, "m"));
        assert!(!fix.handles(Some(b"/etc/a"), None, "m"));
        assert!(
            !fix.handles(None, None, "m"),
            "a missing field does not match `only`"
        );
        assert!(!fix.handles(Some(b"/home/a"), Some("keep"), "an env file"));
        assert!(
            fix.handles(Some(b"/home/a"), Some("keep"), "other"),
            "every field must match"
        );
    }
}
