//! Regexes compiled on first use. A catalogue of hundreds of detectors, each with a few
//! allowlist patterns, costs about half a second and a hundred megabytes to compile in
//! full, while a scan meets the keywords of a handful: the others are only checked for
//! syntax when the pack is loaded (`parse_only`), and compiled the first time a keyword of
//! theirs is met.

use std::sync::OnceLock;

use regex::bytes::Regex;

pub struct LazyRegex {
    pattern: String,
    compiled: OnceLock<Result<Regex, String>>,
}

impl LazyRegex {
    /// Checks the syntax now (cheaply, without compiling); `Err` says what is wrong.
    pub fn new(pattern: &str) -> Result<Self, String> {
        parse_only(pattern)?;
        Ok(LazyRegex {
            pattern: pattern.to_string(),
            compiled: OnceLock::new(),
        })
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The compiled regex; `Err` when it could not be compiled (a size limit: the syntax
    /// was checked already).
    pub fn get(&self) -> Result<&Regex, &str> {
        self.compiled
            .get_or_init(|| Regex::new(&self.pattern).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(String::as_str)
    }

    /// Why compiling failed, if it was tried and failed.
    pub fn failed(&self) -> Option<&str> {
        match self.compiled.get() {
            Some(Err(why)) => Some(why),
            _ => None,
        }
    }

    /// Compiles now, as a scan would: for `rules check`, which must find every problem.
    pub fn compile(&self) -> Result<(), String> {
        self.get().map(|_| ()).map_err(str::to_string)
    }
}

/// Parses `pattern` as `regex::bytes::Regex::new` would (bytes mode, so invalid UTF-8 may
/// match), without building its automata. Returns the number of capture groups, the
/// whole match's included, and the index of the group named `secret`.
pub fn parse_only(pattern: &str) -> Result<Captures, String> {
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    collect_names(&hir, &mut names);
    let groups = hir.properties().explicit_captures_len() + 1;
    let secret = names
        .iter()
        .find(|(name, _)| name == "secret")
        .map(|(_, index)| *index);
    Ok(Captures { groups, secret })
}

/// What a pattern's capture groups are, known before it is compiled.
#[derive(Debug, Clone, Copy)]
pub struct Captures {
    pub groups: usize,
    pub secret: Option<usize>,
}

fn collect_names(hir: &regex_syntax::hir::Hir, names: &mut Vec<(String, usize)>) {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Capture(capture) => {
            if let Some(name) = &capture.name {
                names.push((name.to_string(), capture.index as usize));
            }
            collect_names(&capture.sub, names);
        }
        HirKind::Concat(subs) | HirKind::Alternation(subs) => {
            subs.iter().for_each(|sub| collect_names(sub, names));
        }
        HirKind::Repetition(repetition) => collect_names(&repetition.sub, names),
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_known_before_compiling() {
        let captures = parse_only(r"(?-u)a(b)(?P<secret>c(d))").unwrap();
        assert_eq!(captures.groups, 4);
        assert_eq!(captures.secret, Some(2));
        let compiled = Regex::new(r"(?-u)a(b)(?P<secret>c(d))").unwrap();
        assert_eq!(compiled.captures_len(), captures.groups);
        assert!(parse_only("(").is_err());
        // Bytes mode: a class that can match invalid UTF-8 is fine, as in Regex::new.
        assert!(parse_only(r"(?-u)[\xff]").is_ok());
    }

    #[test]
    fn compiling_happens_once_on_first_use() {
        let lazy = LazyRegex::new("ab+c").unwrap();
        assert!(lazy.compiled.get().is_none());
        assert!(lazy.get().unwrap().is_match(b"xabbbc"));
        assert!(lazy.compiled.get().is_some());
    }
}
