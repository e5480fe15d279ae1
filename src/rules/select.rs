//! `--select` and `--ignore`: rule ids, id globs (`sshd.*`) and tags. A selector that
//! matches no rule is an error, so a typo cannot silently turn a gate off.

use std::sync::Arc;

use globset::GlobBuilder;

use super::{Pack, Rule, SpecError};

struct Selector {
    text: String,
    glob: globset::GlobMatcher,
}

impl Selector {
    fn parse(text: &str) -> Result<Self, SpecError> {
        let glob = GlobBuilder::new(text)
            .literal_separator(false)
            .build()
            .map_err(|source| SpecError::InvalidSelector {
                selector: text.to_string(),
                source,
            })?
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
fn selectors(args: &[String]) -> Result<Vec<Selector>, SpecError> {
    args.iter()
        .flat_map(|a| a.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Selector::parse)
        .collect()
}

/// The rules to run: all (or those `select` names), minus those `ignore` names.
pub fn select(
    pack: &Pack,
    select: &[String],
    ignore: &[String],
) -> Result<Vec<Arc<Rule>>, SpecError> {
    let select = selectors(select)?;
    let ignore = selectors(ignore)?;
    for selector in select.iter().chain(&ignore) {
        if !pack.rules().any(|rule| selector.matches(rule)) {
            return Err(SpecError::UnknownSelector {
                selector: selector.text.clone(),
            });
        }
    }
    Ok(pack
        .rules()
        .filter(|rule| select.is_empty() || select.iter().any(|s| s.matches(rule)))
        .filter(|rule| !ignore.iter().any(|s| s.matches(rule)))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::SpecErrorKind;

    #[test]
    fn selectors_that_match_nothing_or_do_not_parse_are_refused() {
        let pack = Pack::builtin().unwrap_or_default();
        let kind = |selected: &str, ignored: &str| {
            select(&pack, &[selected.to_string()], &[ignored.to_string()])
                .err()
                .map(|e| e.kind())
        };
        assert_eq!(
            kind("no.such-rule", ""),
            Some(SpecErrorKind::UnknownSelector)
        );
        assert_eq!(kind("", "nothing.*"), Some(SpecErrorKind::UnknownSelector));
        assert_eq!(kind("ssh.[", ""), Some(SpecErrorKind::InvalidSelector));
        assert_eq!(kind("*", ""), None);
        let message = select(&pack, &["no.such-rule".into()], &[])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            message.as_deref(),
            Some("`no.such-rule` matches no rule id or tag (see `amiscan rules list`)")
        );
    }
}
