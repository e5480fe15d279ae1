//! Guest path patterns: shell globs (`*` and `?` stay within one path component, `**`
//! crosses them, `[...]` and `{a,b}` as usual) that are absolute or start with `~/`, which
//! stands for every home directory. A pattern's literal directory prefix lets it look only
//! at the slice of the sorted inventory it can match.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::context::{BlindSpot, ScanContext};
use crate::escapes;
use crate::walk::Entry;

/// Checks a pattern as written in a rule pack.
pub fn validate(pattern: &str) -> Result<(), String> {
    if !(pattern.starts_with('/') || pattern.starts_with("~/")) {
        return Err(format!(
            "path pattern `{pattern}` must be absolute or start with `~/`"
        ));
    }
    compile(&[pattern.replace('~', "/home/user")]).map(|_| ())
}

fn compile(patterns: &[String]) -> Result<GlobSet, String> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("path pattern `{pattern}`: {e}"))?;
        builder.add(glob);
    }
    builder.build().map_err(|e| e.to_string())
}

/// `~/rest` once per home directory; other patterns as they are.
pub fn expand_homes(pattern: &str, homes: &[String]) -> Vec<String> {
    match pattern.strip_prefix("~/") {
        None => vec![pattern.to_string()],
        Some(rest) => homes
            .iter()
            .map(|home| format!("{}/{rest}", globset::escape(home.trim_end_matches('/'))))
            .collect(),
    }
}

/// The part of a pattern before its first wildcard, cut back to a directory boundary.
pub fn literal_prefix(pattern: &str) -> &str {
    let mut previous = '\0';
    let first_wild = pattern
        .char_indices()
        .find(|&(_, c)| {
            let wild = matches!(c, '*' | '?' | '[' | '{') && previous != '\\';
            previous = c;
            wild
        })
        .map(|(index, _)| index);
    match first_wild {
        None => pattern,
        Some(index) => {
            let head = pattern.get(..index).unwrap_or("");
            match head.rfind('/') {
                Some(slash) => pattern.get(..=slash).unwrap_or("/"),
                None => "/",
            }
        }
    }
}

/// Patterns compiled for one scan (homes expanded).
pub struct PathMatcher {
    include: GlobSet,
    exclude: GlobSet,
    prefixes: Vec<String>,
}

impl PathMatcher {
    pub fn new(include: &[String], exclude: &[String], homes: &[String]) -> Result<Self, String> {
        let include: Vec<String> = include
            .iter()
            .flat_map(|p| expand_homes(p, homes))
            .collect();
        let exclude: Vec<String> = exclude
            .iter()
            .flat_map(|p| expand_homes(p, homes))
            .collect();
        let mut prefixes: Vec<String> = include
            .iter()
            .map(|p| unescape(literal_prefix(p)))
            .collect();
        prefixes.sort();
        // A prefix already covered by a shorter one adds nothing.
        let mut kept: Vec<String> = Vec::new();
        for prefix in prefixes {
            if !kept.iter().any(|k| prefix.starts_with(k.as_str())) {
                kept.push(prefix);
            }
        }
        Ok(Self {
            include: compile(&include)?,
            exclude: compile(&exclude)?,
            prefixes: kept,
        })
    }

    pub fn is_match(&self, path: &[u8]) -> bool {
        let path = OsStr::from_bytes(path);
        self.include.is_match(path) && !self.exclude.is_match(path)
    }

    /// Inventory entries the patterns match, in path order.
    pub fn entries<'a>(&self, ctx: &ScanContext<'a>) -> Vec<&'a Entry> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for prefix in &self.prefixes {
            for entry in ctx.entries_under(prefix.as_bytes()) {
                if self.is_match(&entry.path) && seen.insert(entry.path.as_slice()) {
                    out.push(entry);
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// Unreadable places where a match could hide.
    pub fn blind_spots<'c>(&self, ctx: &'c ScanContext<'_>) -> Vec<&'c BlindSpot> {
        let mut spots: Vec<&BlindSpot> = Vec::new();
        for prefix in &self.prefixes {
            for spot in ctx.blind_spots_for(prefix.as_bytes()) {
                if !spots.iter().any(|s| std::ptr::eq(*s, spot)) {
                    spots.push(spot);
                }
            }
        }
        spots
    }
}

/// A literal prefix with glob escapes removed, as it appears in real paths.
fn unescape(prefix: &str) -> String {
    String::from_utf8_lossy(&escapes::unquote(prefix.as_bytes())).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_stop_at_the_first_wildcard_directory() {
        assert_eq!(literal_prefix("/etc/ssh/ssh_host_*key"), "/etc/ssh/");
        assert_eq!(literal_prefix("/etc/machine-id"), "/etc/machine-id");
        assert_eq!(literal_prefix("/tmp/**"), "/tmp/");
        assert_eq!(literal_prefix("/**/x"), "/");
        assert_eq!(literal_prefix("/var/log/{a,b}"), "/var/log/");
    }

    #[test]
    fn tilde_means_every_home_and_homes_are_escaped() {
        assert_eq!(
            expand_homes("~/.ssh/*", &["/root".into(), "/home/a[1]".into()]),
            vec![
                "/root/.ssh/*".to_string(),
                "/home/a[[]1[]]/.ssh/*".to_string()
            ]
        );
        let matcher = PathMatcher::new(&["~/.ssh/*".into()], &[], &["/home/a[1]".into()]).unwrap();
        assert!(matcher.is_match(b"/home/a[1]/.ssh/id_rsa"));
        assert!(!matcher.is_match(b"/home/a1/.ssh/id_rsa"));
        // An escaped `[` still stops the literal prefix early: a wider slice, same matches.
        assert_eq!(matcher.prefixes, vec!["/home/".to_string()]);
    }

    #[test]
    fn star_stays_within_a_component() {
        let matcher = PathMatcher::new(&["/etc/ssh/ssh_host_*key".into()], &[], &[]).unwrap();
        assert!(matcher.is_match(b"/etc/ssh/ssh_host_rsa_key"));
        assert!(!matcher.is_match(b"/etc/ssh/sub/ssh_host_rsa_key"));
        assert!(validate("etc/x").is_err());
        assert!(validate("/etc/[x").is_err());
    }
}
