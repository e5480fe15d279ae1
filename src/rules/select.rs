//! `--select` and `--ignore`: rule ids, id globs (`sshd.*`) and tags. A selector that
//! matches no rule is an error, so a typo cannot silently turn a gate off.

use std::sync::Arc;

use globset::GlobBuilder;

use super::{Pack, Rule};

struct Selector {
    text: String,
    glob: globset::GlobMatcher,
}

impl Selector {
    fn parse(text: &str) -> Result<Self, String> {
        let glob = GlobBuilder::new(text)
            .literal_separator(false)
            .build()
            .map_err(|e| format!("selector `{text}`: {e}"))?
            .compile_matcher();
        Ok(Self {
            text: text.to_string(),
            glob,
        })
    }

    fn matches(&self, rule: &Rule) -> bool {
        self.glob.is_match(&rule.id) || rule.tags.iter().any(|t| t == &self.text)
    }
}

/// Splits comma-separated selector arguments.
fn selectors(args: &[String]) -> Result<Vec<Selector>, String> {
    args.iter()
        .flat_map(|a| a.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Selector::parse)
        .collect()
}

/// The rules to run: all (or those `select` names), minus those `ignore` names.
pub fn select(pack: &Pack, select: &[String], ignore: &[String]) -> Result<Vec<Arc<Rule>>, String> {
    let select = selectors(select)?;
    let ignore = selectors(ignore)?;
    for selector in select.iter().chain(&ignore) {
        if !pack.rules().any(|rule| selector.matches(rule)) {
            return Err(format!(
                "`{}` matches no rule id or tag (see `amiscan rules list`)",
                selector.text
            ));
        }
    }
    Ok(pack
        .rules()
        .filter(|rule| select.is_empty() || select.iter().any(|s| s.matches(rule)))
        .filter(|rule| !ignore.iter().any(|s| s.matches(rule)))
        .cloned()
        .collect())
}
