//! Regexes compiled on first use. A catalogue of hundreds of detectors, each with a few
//! allowlist patterns, costs about half a second and a hundred megabytes to compile in
//! full, while a scan meets the keywords of a handful: the others are only checked for
//! syntax when the pack is loaded (`parse_only`), and compiled the first time a keyword of
//! theirs is met.

use std::sync::OnceLock;

use regex::bytes::Regex;

#[derive(Clone)]
pub struct LazyRegex {
    pattern: String,
    compiled: OnceLock<Result<Regex, String>>,
}

impl LazyRegex {
    /// Checks the syntax now (cheaply, without compiling); `Err` says what is wrong. The
    /// capture groups come with it: parsing is most of what loading a pack costs, so it
    /// is done once.
    pub fn new(pattern: &str) -> Result<(Self, Captures), String> {
        let captures = parse_only(pattern)?;
        let lazy = LazyRegex {
            pattern: pattern.to_string(),
            compiled: OnceLock::new(),
        };
        Ok((lazy, captures))
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

/// Parses `pattern`'s syntax as `regex::bytes::Regex::new` would, without building its
/// automata or even translating it: the translation is two thirds of a parse, and the few
/// errors only it finds (an unknown Unicode class name, a class too large) are found on
/// first use, where a regex that does not compile leaves its check unknown, and by `rules
/// check`, which compiles every regex. Returns the number of capture groups, the whole
/// match's included, and the index of the group named `secret`.
pub fn parse_only(pattern: &str) -> Result<Captures, String> {
    let ast = regex_syntax::ast::parse::ParserBuilder::new()
        .build()
        .parse(pattern)
        .map_err(|e| e.to_string())?;
    let groups = match regex_syntax::ast::visit(&ast, Groups::default()) {
        Ok(groups) => groups,
        Err(never) => match never {},
    };
    Ok(Captures {
        groups: groups.count + 1,
        secret: groups.secret,
    })
}

/// What a pattern's capture groups are, known before it is compiled.
#[derive(Debug, Clone, Copy)]
pub struct Captures {
    pub groups: usize,
    pub secret: Option<usize>,
}

/// Counts capture groups and finds the one named `secret` while walking the syntax tree.
#[derive(Default)]
struct Groups {
    count: usize,
    secret: Option<usize>,
}

impl regex_syntax::ast::Visitor for Groups {
    type Output = Groups;
    type Err = std::convert::Infallible;

    fn finish(self) -> Result<Groups, Self::Err> {
        Ok(self)
    }

    fn visit_pre(&mut self, ast: &regex_syntax::ast::Ast) -> Result<(), Self::Err> {
        use regex_syntax::ast::{Ast, GroupKind};
        if let Ast::Group(group) = ast {
            match &group.kind {
                GroupKind::CaptureIndex(index) => self.count = self.count.max(*index as usize),
                GroupKind::CaptureName { name, .. } => {
                    let index = name.index as usize;
                    self.count = self.count.max(index);
                    if name.name == "secret" && self.secret.is_none() {
                        self.secret = Some(index);
                    }
                }
                GroupKind::NonCapturing(_) => {}
            }
        }
        Ok(())
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
        let (lazy, _) = LazyRegex::new("ab+c").unwrap();
        assert!(lazy.compiled.get().is_none());
        assert!(lazy.get().unwrap().is_match(b"xabbbc"));
        assert!(lazy.compiled.get().is_some());
    }
}
