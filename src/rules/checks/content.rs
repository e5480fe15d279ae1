//! `kind: content` — files selected by glob whose contents match a regular expression.
//! Findings name the pattern and the line of its first match, never the matched text:
//! what these rules look for is usually secret.

use regex::bytes::Regex;
use serde::{Deserialize, Serialize};

use super::{validate_patterns, CheckReport};
use crate::facts::FactError;
use crate::filesystems::FileKind;
use crate::guest::display_path;
use crate::rules::context::ScanContext;
use crate::rules::engine::Finding;
use crate::rules::globs::PathMatcher;
use crate::rules::spec_error::{EmptyList, PatternList, SpecError};

/// Files are read up to this many bytes unless a rule says otherwise.
pub const DEFAULT_MAX_SIZE: u64 = 1 << 20;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamedPattern {
    /// What a match is, in findings ("OpenSSH private key").
    pub name: String,
    pub regex: String,
    /// Regexes over the `secret` group that mark a placeholder, not a credential.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_regexes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Globs of guest paths; `~/` means every home directory.
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Regular expressions (Rust regex syntax, matched against bytes; `(?m)` for line
    /// anchors). A group named `secret` marks a credential: findings then carry its
    /// fingerprint and line.
    pub patterns: Vec<NamedPattern>,
    /// Only the first this-many bytes of each file are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// Also read the files sshd's AuthorizedKeysFile names, for every account.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sshd_authorized_keys: bool,
    /// What a finding says (the pattern name and line are added).
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Compiled {
    spec: Spec,
    patterns: Vec<CompiledPattern>,
}

#[derive(Debug, Clone)]
struct CompiledPattern {
    name: String,
    regex: Regex,
    allow: Vec<Regex>,
}

impl Spec {
    pub fn compile(&self) -> Result<Compiled, SpecError> {
        if self.paths.is_empty() && !self.sshd_authorized_keys {
            return Err(SpecError::EmptyList(EmptyList::Paths));
        }
        if self.patterns.is_empty() {
            return Err(SpecError::EmptyList(EmptyList::ContentPatterns));
        }
        validate_patterns(&self.paths, PatternList::Paths)?;
        validate_patterns(&self.exclude, PatternList::Exclude)?;
        let compile = |name: &str, regex: &str| {
            Regex::new(regex).map_err(|source| SpecError::Regex {
                name: name.to_string(),
                source,
            })
        };
        let patterns = self
            .patterns
            .iter()
            .map(|p| {
                Ok(CompiledPattern {
                    name: p.name.clone(),
                    regex: compile(&p.name, &p.regex)?,
                    allow: p
                        .allow_regexes
                        .iter()
                        .map(|a| compile(&p.name, a))
                        .collect::<Result<_, SpecError>>()?,
                })
            })
            .collect::<Result<_, SpecError>>()?;
        Ok(Compiled {
            spec: self.clone(),
            patterns,
        })
    }
}

/// Secrets reported per file and pattern at most; more is one leak, not news.
const MAX_SECRETS_PER_FILE: usize = 1000;

impl CompiledPattern {
    /// A pattern with a `secret` group reports every credential it matches (each must be
    /// rotated), at the secret's line, with its fingerprint and never its bytes; matches
    /// whose secret is a placeholder are skipped. Other patterns report their first match.
    fn find_all(&self, bytes: &[u8], path: &[u8], message: &str, out: &mut Vec<Finding>) {
        for captures in self.regex.captures_iter(bytes).take(MAX_SECRETS_PER_FILE) {
            let secret = captures.name("secret");
            if secret.is_some_and(|s| self.allow.iter().any(|a| a.is_match(s.as_bytes()))) {
                continue;
            }
            let Some(found) = secret.or_else(|| captures.get(0)) else {
                continue;
            };
            let mut finding = Finding::at(path, format!("{message} ({})", self.name))
                .line(line_of(bytes, found.start()))
                .subject(self.name.clone());
            finding.fingerprint = secret.map(|s| crate::secrets::fingerprint(s.as_bytes()));
            out.push(finding);
            if secret.is_none() {
                break;
            }
        }
    }
}

impl Compiled {
    pub fn evaluate(&self, ctx: &ScanContext<'_>) -> CheckReport {
        let spec = &self.spec;
        let mut report = CheckReport::default();
        let mut paths = spec.paths.clone();
        if spec.sshd_authorized_keys {
            match authorized_keys_paths(ctx) {
                Ok(extra) => paths.extend(extra),
                Err(e) => report.unknown.push(e.to_string()),
            }
        }
        let matcher = match PathMatcher::new(&paths, &spec.exclude, ctx.homes()) {
            Ok(matcher) => matcher,
            Err(e) => return CheckReport::unknown(e.to_string()),
        };
        let limit = spec.max_size.unwrap_or(DEFAULT_MAX_SIZE);
        for entry in matcher.entries(ctx.inventory) {
            if !matches!(entry.meta.kind, FileKind::File | FileKind::Symlink) {
                continue;
            }
            let path = display_path(&entry.path);
            let bytes = match ctx.read_file(&entry.path, limit) {
                Ok(Some(bytes)) => {
                    ctx.count_read(bytes.len());
                    bytes
                }
                Ok(None) => {
                    ctx.note_partly_read(format!(
                        "{path}: not read by a content rule: a symlink that leads to no \
                         regular file inside the guest"
                    ));
                    continue;
                }
                Err(e) => {
                    report.unknown.push(e.to_string());
                    continue;
                }
            };
            if u64::try_from(bytes.len()).is_ok_and(|read| read >= limit) && entry.meta.size > limit
            {
                ctx.note_partly_read(format!(
                    "{path}: only the first {limit} bytes were read by a content rule \
                     (its max_size)"
                ));
            }
            for pattern in &self.patterns {
                pattern.find_all(&bytes, &entry.path, &spec.message, &mut report.findings);
            }
        }
        report.note_blind_spots(&matcher.blind_spots(&ctx.blind_spots));
        report
    }
}

/// 1-based line number of a byte offset.
pub fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes
        .get(..offset)
        .unwrap_or(bytes)
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Glob patterns (escaped literals) for every account's AuthorizedKeysFile entries, with
/// sshd's tokens expanded: `%h` home, `%u` user, `%U` uid, `%%` a percent sign; relative
/// paths are relative to the home directory.
fn authorized_keys_paths<'c>(ctx: &'c ScanContext<'_>) -> Result<Vec<String>, &'c FactError> {
    let config = match ctx.sshd() {
        Ok(Some(config)) => config,
        Ok(None) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let accounts = match ctx.accounts() {
        Ok(Some(accounts)) => accounts,
        Ok(None) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for file in config.authorized_keys_files() {
        if file.eq_ignore_ascii_case("none") {
            continue;
        }
        for account in &accounts.passwd {
            let expanded = expand_tokens(&file, account);
            let absolute = if expanded.starts_with('/') {
                expanded
            } else {
                format!("{}/{expanded}", account.home.trim_end_matches('/'))
            };
            if absolute.starts_with('/') {
                out.push(globset::escape(&absolute));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn expand_tokens(template: &str, account: &crate::facts::accounts::PasswdEntry) -> String {
    let mut out = String::new();
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(&account.home),
            Some('u') => out.push_str(&account.name),
            Some('U') => out.push_str(&account.uid.map(|u| u.to_string()).unwrap_or_default()),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_from_one() {
        assert_eq!(line_of(b"a\nb\nc", 0), 1);
        assert_eq!(line_of(b"a\nb\nc", 2), 2);
        assert_eq!(line_of(b"a\nb\nc", 4), 3);
        assert_eq!(line_of(b"a", 99), 1);
    }
}
