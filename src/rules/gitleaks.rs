//! Users' own secret rules in gitleaks' TOML format (`--secrets-config`), so a team reuses
//! the configuration it already maintains. Each file becomes one secrets check of the rule
//! `creds.gitleaks`; each of its `[[rules]]` one detector.
//!
//! What maps: `id`, `description`, `regex`, `secretGroup`, `entropy`, `keywords`, `path`;
//! allowlists (the rule's `[rules.allowlist]` and `[[rules.allowlists]]`, the global
//! `[allowlist]` and `[[allowlists]]` with `targetRules`) with `regexes` (`regexTarget`
//! secret, match or line), `paths` and `stopwords`. What cannot be honoured is reported as
//! a notice when the file is loaded, never dropped in silence; where honouring part of an
//! allowlist would hide more than the user asked (`condition = "AND"`), the allowlist is
//! not applied, so more is reported, not less.
//!
//! Patterns are Go (RE2) regexes. They are compiled with ASCII classes (`\w`, `\d`, `\s`,
//! `\b` as in Go); a pattern that needs Unicode classes is compiled with them. A rule's
//! keywords must lie within 4 KiB of a match (gitleaks asks for them anywhere in the file).
//! Paths are matched against the guest path without its leading `/` (`etc/app/.env`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::checks::{secrets, Check, CheckSpec};
use super::pack::Rule;
use super::Severity;
use crate::secrets::DetectorSpec;

/// The rule every gitleaks configuration loads into.
pub const RULE_ID: &str = "creds.gitleaks";

/// Configuration files are small; a larger one is refused rather than read.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// A configuration loaded, and what of it could not be honoured.
#[derive(Debug)]
pub struct Loaded {
    pub detectors: Vec<DetectorSpec>,
    /// One line each, naming the file and the rule.
    pub notices: Vec<String>,
}

/// Why a configuration could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge { file: String },
    #[error("{file}: not a gitleaks configuration: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: no rule could be loaded")]
    Empty { file: String },
}

#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default)]
    rules: Vec<RuleToml>,
    allowlist: Option<Allowlist>,
    #[serde(default)]
    allowlists: Vec<Allowlist>,
    extend: Option<toml::Value>,
    #[serde(flatten)]
    other: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
struct RuleToml {
    id: String,
    regex: Option<String>,
    #[serde(rename = "secretGroup")]
    secret_group: Option<usize>,
    entropy: Option<f64>,
    path: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
    allowlist: Option<Allowlist>,
    #[serde(default)]
    allowlists: Vec<Allowlist>,
    #[serde(flatten)]
    other: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Default, Clone, Deserialize)]
struct Allowlist {
    condition: Option<String>,
    #[serde(rename = "regexTarget")]
    regex_target: Option<String>,
    #[serde(default)]
    regexes: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    stopwords: Vec<String>,
    #[serde(default)]
    commits: Vec<String>,
    #[serde(rename = "targetRules", default)]
    target_rules: Vec<String>,
    #[serde(flatten)]
    other: BTreeMap<String, toml::Value>,
}

/// Keys of a rule or configuration that carry no meaning for a scan of files.
const DOCUMENTATION_KEYS: &[&str] = &["description", "tags", "title", "minVersion"];

/// Reads one configuration file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    let read = |source| ConfigError::Read {
        file: file.clone(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read)?.len();
    if size > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge { file });
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    let loaded = parse(&file, &text)?;
    if loaded.detectors.is_empty() {
        return Err(ConfigError::Empty { file });
    }
    Ok(loaded)
}

/// Parses a configuration's text; `file` names it in notices.
pub fn parse(file: &str, text: &str) -> Result<Loaded, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        file: file.to_string(),
        message: e.message().to_string(),
    })?;
    let mut notices = Vec::new();
    let mut notice = |what: String| notices.push(format!("{file}: {what}"));
    if config.extend.is_some() {
        notice(
            "[extend] is not followed: gitleaks' default rules are not loaded (amiscan's \
             built-in creds.* rules run alongside), nor other files"
                .into(),
        );
    }
    for key in config.other.keys() {
        if !DOCUMENTATION_KEYS.contains(&key.as_str()) {
            notice(format!("key `{key}` is not understood and is ignored"));
        }
    }
    let globals: Vec<Allowlist> = config
        .allowlist
        .into_iter()
        .chain(config.allowlists)
        .collect();

    let mut detectors = Vec::new();
    for rule in config.rules {
        let id = rule.id.clone();
        let mut notice = |what: String| notices.push(format!("{file}: rule `{id}`: {what}"));
        for key in rule.other.keys() {
            if !DOCUMENTATION_KEYS.contains(&key.as_str()) {
                notice(format!("key `{key}` is not understood and is ignored"));
            }
        }
        let Some(regex) = rule.regex.clone() else {
            notice(
                "has no `regex` (a rule on file paths alone): not loaded; amiscan's path \
                 rules (`kind: path` in a rule pack) find files by name"
                    .into(),
            );
            continue;
        };
        let Some(regex) = go_regex(&regex) else {
            notice("its regex does not compile as a Rust regex: not loaded".into());
            continue;
        };
        let keywords: Vec<String> = rule
            .keywords
            .iter()
            .filter(|k| !k.is_empty())
            .map(|k| k.to_ascii_lowercase())
            .collect();
        if keywords.is_empty() {
            notice("has no keywords: its regex runs over all content, which is slow".into());
        }
        if let Some(entropy) = rule.entropy.filter(|e| !(0.0..=8.0).contains(e)) {
            notice(format!("entropy {entropy} is outside 0–8: not loaded"));
            continue;
        }
        let mut spec = DetectorSpec {
            name: rule.id.clone(),
            id: Some(rule.id.clone()),
            regex,
            without_keywords: keywords.is_empty(),
            keyword_nearby: true,
            keywords,
            min_entropy: rule.entropy,
            secret_group: rule.secret_group,
            path_regex: rule.path.clone(),
            ..DetectorSpec::default()
        };
        let own = rule.allowlist.iter().chain(&rule.allowlists);
        let global = globals
            .iter()
            .filter(|g| g.target_rules.is_empty() || g.target_rules.contains(&rule.id));
        for allowlist in own.chain(global) {
            if let Err(why) = apply(allowlist, &mut spec) {
                notice(why);
            }
        }
        // Compiled in full now: a rule that loads is one a scan can run, and a user's
        // configuration holds a few rules, not a catalogue.
        let checked = crate::secrets::Scanner::new(std::slice::from_ref(&spec))
            .and_then(|scanner| scanner.compile_all());
        if let Err(e) = checked {
            notice(format!("{e}: not loaded"));
            continue;
        }
        if secrets::Spec::single(spec.clone()).compile().is_err() {
            notice("a path regex does not compile: not loaded".into());
            continue;
        }
        detectors.push(spec);
    }
    Ok(Loaded { detectors, notices })
}

/// Adds an allowlist's entries to a detector, or says why it is not applied.
fn apply(allowlist: &Allowlist, spec: &mut DetectorSpec) -> Result<(), String> {
    for key in allowlist.other.keys() {
        if key != "description" {
            return Err(format!(
                "an allowlist has key `{key}`, which is not understood: the allowlist is not \
                 applied"
            ));
        }
    }
    let criteria = [
        !allowlist.regexes.is_empty(),
        !allowlist.paths.is_empty(),
        !allowlist.stopwords.is_empty(),
        !allowlist.commits.is_empty(),
    ]
    .iter()
    .filter(|&&present| present)
    .count();
    let and = allowlist
        .condition
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case("and"));
    if and && criteria > 1 {
        return Err(
            "an allowlist with condition AND over several criteria is not applied (each \
             criterion alone would allow more than asked)"
                .into(),
        );
    }
    let mut regexes = Vec::new();
    for pattern in &allowlist.regexes {
        regexes.push(go_regex(pattern).ok_or_else(|| {
            "an allowlist regex does not compile as a Rust regex: the allowlist is not applied"
                .to_string()
        })?);
    }
    let target = match allowlist.regex_target.as_deref() {
        None | Some("secret") => &mut spec.allow_regexes,
        Some("match") => &mut spec.allow_match_regexes,
        Some("line") => &mut spec.allow_line_regexes,
        Some(other) => {
            return Err(format!(
                "an allowlist's regexTarget `{other}` is not understood: the allowlist is not \
                 applied"
            ))
        }
    };
    target.extend(regexes);
    spec.allow_path_regexes
        .extend(allowlist.paths.iter().cloned());
    spec.stopwords.extend(allowlist.stopwords.iter().cloned());
    if !allowlist.commits.is_empty() && criteria == 1 {
        return Err("an allowlist of commits has no meaning in an image and is ignored".into());
    }
    Ok(())
}

/// A Go regex as a bytes regex with Go's ASCII classes, or with Unicode classes when the
/// pattern needs them; `None` when it does not compile either way.
fn go_regex(pattern: &str) -> Option<String> {
    [format!("(?-u){pattern}"), pattern.to_string()]
        .into_iter()
        .find(|candidate| regex::bytes::Regex::new(candidate).is_ok())
}

/// The rule `creds.gitleaks` holding one check per loaded configuration.
pub fn rule(configs: Vec<(String, Vec<DetectorSpec>)>) -> Option<Rule> {
    if configs.is_empty() {
        return None;
    }
    let mut specs = Vec::new();
    let mut checks = Vec::new();
    let sources: Vec<String> = configs.iter().map(|(file, _)| file.clone()).collect();
    for (file, detectors) in configs {
        let spec = secrets::Spec {
            message: format!("secret (gitleaks rule from {file})"),
            ..secrets::Spec::many(detectors)
        };
        let compiled = spec.compile().ok()?;
        specs.push(CheckSpec::Secrets(spec));
        checks.push(Check::Secrets(compiled));
    }
    Some(Rule {
        id: RULE_ID.to_string(),
        title: "Secrets found by the user's gitleaks rules".into(),
        severity: Severity::High,
        description: format!(
            "The rules of {} (gitleaks TOML, --secrets-config), run by amiscan's secrets \
             engine over every regular file of the guest, compressed files included. Findings \
             name the gitleaks rule id as their kind.",
            sources.join(", ")
        ),
        remediation: "Remove the secret from the image, inject it at boot from a secrets \
                      store, and rotate it."
            .into(),
        references: vec!["gitleaks configuration format".into()],
        tags: vec!["secrets".into(), "gitleaks".into()],
        specs,
        checks,
        fix: None,
        source: sources.join(", "),
        line: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Loaded {
        parse("test.toml", text).unwrap()
    }

    #[test]
    fn rules_and_allowlists_map_to_detectors() {
        let loaded = load_text(
            r#"
title = "team rules"
[[rules]]
id = "acme-token"
description = "ACME API token"
regex = '''acme_[a-z0-9]{8}_(\w{24})'''
secretGroup = 1
entropy = 3.0
keywords = ["ACME_"]
path = '''(^|/)\.env$'''
[rules.allowlist]
regexTarget = "line"
regexes = ['''#\s*example''']
stopwords = ["test"]

[allowlist]
paths = ['''^usr/share/doc/''']
"#,
        );
        assert!(loaded.notices.is_empty(), "{:?}", loaded.notices);
        let [spec] = loaded.detectors.as_slice() else {
            panic!("{:?}", loaded.detectors);
        };
        assert_eq!(spec.name, "acme-token");
        assert_eq!(spec.keywords, ["acme_"]);
        assert_eq!(spec.secret_group, Some(1));
        assert_eq!(spec.min_entropy, Some(3.0));
        assert_eq!(spec.allow_line_regexes.len(), 1);
        assert_eq!(spec.stopwords, ["test"]);
        assert_eq!(spec.allow_path_regexes, ["^usr/share/doc/"]);
        assert!(spec.regex.starts_with("(?-u)"));
    }

    #[test]
    fn what_cannot_be_honoured_is_said() {
        let loaded = load_text(
            r#"
[extend]
useDefault = true
[[rules]]
id = "paths-only"
path = '''\.pem$'''
[[rules]]
id = "bad-regex"
regex = '''(?P<x'''
[[rules]]
id = "and-list"
regex = '''tok_[0-9a-f]{16}'''
keywords = ["tok_"]
[[rules.allowlists]]
condition = "AND"
paths = ['''test''']
regexes = ['''0000''']
"#,
        );
        let said = loaded.notices.join("\n");
        assert!(said.contains("[extend] is not followed"), "{said}");
        assert!(said.contains("rule `paths-only`: has no `regex`"), "{said}");
        assert!(
            said.contains("rule `bad-regex`: its regex does not compile"),
            "{said}"
        );
        assert!(
            said.contains("rule `and-list`: an allowlist with condition AND"),
            "{said}"
        );
        let [spec] = loaded.detectors.as_slice() else {
            panic!("{:?}", loaded.detectors);
        };
        assert!(spec.allow_regexes.is_empty() && spec.allow_path_regexes.is_empty());
    }

    #[test]
    fn broken_toml_is_an_error_naming_the_file() {
        let e = parse("team.toml", "[[rules]\nid=").unwrap_err().to_string();
        assert!(
            e.starts_with("team.toml: not a gitleaks configuration"),
            "{e}"
        );
    }
}
