//! Guest path patterns: shell globs (`*` and `?` stay within one path component, `**`
//! crosses them, `[...]` and `{a,b}` as usual) that are absolute or start with `~/`, which
//! stands for every home directory. A pattern's literal directory prefix lets it look only
//! at the slice of the sorted inventory it can match.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};

use super::{BlindSpot, SpecError};
use crate::escapes;
use crate::walk::{Entry, Inventory};

/// Checks a pattern as written in a rule pack.
pub fn validate(pattern: &str) -> Result<(), SpecError> {
    if !(pattern.starts_with('/') || pattern.starts_with("~/")) {
        return Err(SpecError::RelativePattern {
            pattern: pattern.to_string(),
        });
    }
    // Parsed only: compiling a pattern's matcher costs a regex build, paid once per scan
    // when the pattern is used.
    parse(&pattern.replace('~', "/home/user")).map(|_| ())
}

fn parse(pattern: &str) -> Result<globset::Glob, SpecError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|source| SpecError::Glob {
            pattern: pattern.to_string(),
            source,
        })
}

fn compile(patterns: &[String]) -> Result<GlobSet, SpecError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(parse(pattern)?);
    }
    builder.build().map_err(SpecError::GlobSet)
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

/// Patterns compiled for one scan. `~/rest` patterns are matched below each home
/// directory by the guest's exact bytes, so a home whose name is not UTF-8 is searched too.
pub struct PathMatcher {
    include: Split,
    exclude: Split,
    homes: Vec<Vec<u8>>,
    /// Where matches can lie: the inventory slices to look at, shortest first.
    prefixes: Vec<Vec<u8>>,
}

/// Patterns split by how they are anchored: absolute, or below every home (`/rest`).
struct Split {
    absolute: GlobSet,
    in_home: GlobSet,
}

impl Split {
    fn compile(patterns: &[String]) -> Result<(Self, Vec<String>, Vec<String>), SpecError> {
        let mut absolute = Vec::new();
        let mut in_home = Vec::new();
        for pattern in patterns {
            match pattern.strip_prefix('~') {
                Some(rest) => in_home.push(rest.to_string()),
                None => absolute.push(pattern.clone()),
            }
        }
        let split = Split {
            absolute: compile(&absolute)?,
            in_home: compile(&in_home)?,
        };
        Ok((split, absolute, in_home))
    }

    fn is_match(&self, path: &[u8], homes: &[Vec<u8>]) -> bool {
        self.absolute.is_match(OsStr::from_bytes(path))
            || (!self.in_home.is_empty()
                && homes.iter().any(|home| {
                    path.strip_prefix(home.as_slice())
                        .filter(|rest| rest.first() == Some(&b'/'))
                        .is_some_and(|rest| self.in_home.is_match(OsStr::from_bytes(rest)))
                }))
    }
}

impl PathMatcher {
    /// `homes` are the guest's home directories as its bytes (`~/` stands for each).
    pub fn new(
        include: &[String],
        exclude: &[String],
        homes: &[Vec<u8>],
    ) -> Result<Self, SpecError> {
        let (include, absolute, in_home) = Split::compile(include)?;
        let (exclude, _, _) = Split::compile(exclude)?;
        let homes: Vec<Vec<u8>> = trimmed(homes);
        let mut prefixes: Vec<Vec<u8>> = absolute
            .iter()
            .map(|p| unescape(literal_prefix(p)).into_bytes())
            .collect();
        for rest in &in_home {
            let rest = unescape(literal_prefix(rest));
            for home in &homes {
                let mut prefix = home.clone();
                prefix.extend_from_slice(rest.as_bytes());
                prefixes.push(prefix);
            }
        }
        prefixes.sort();
        // A prefix already covered by a shorter one adds nothing.
        let mut kept: Vec<Vec<u8>> = Vec::new();
        for prefix in prefixes {
            if !kept.iter().any(|k| prefix.starts_with(k)) {
                kept.push(prefix);
            }
        }
        Ok(Self {
            include,
            exclude,
            homes,
            prefixes: kept,
        })
    }

    pub fn is_match(&self, path: &[u8]) -> bool {
        self.include.is_match(path, &self.homes) && !self.exclude.is_match(path, &self.homes)
    }

    /// Inventory entries the patterns match, in path order.
    pub fn entries<'a>(&self, inventory: &'a Inventory) -> Vec<&'a Entry> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for prefix in &self.prefixes {
            for entry in inventory.entries_under(prefix) {
                if self.is_match(&entry.path) && seen.insert(&*entry.path) {
                    out.push(entry);
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// Unreadable places where a match could hide.
    pub fn blind_spots<'s>(&self, spots: &'s [BlindSpot]) -> Vec<&'s BlindSpot> {
        spots
            .iter()
            .filter(|spot| {
                self.prefixes
                    .iter()
                    .any(|prefix| spot.path.starts_with(prefix) || prefix.starts_with(&spot.path))
            })
            .collect()
    }
}

/// A literal prefix with glob escapes removed, as it appears in real paths.
fn unescape(prefix: &str) -> String {
    String::from_utf8_lossy(&escapes::unquote(prefix.as_bytes())).into_owned()
}

/// Home directories without trailing slashes, so `home + rest` is a path.
fn trimmed(homes: &[Vec<u8>]) -> Vec<Vec<u8>> {
    homes
        .iter()
        .map(|home| {
            let mut home = home.clone();
            while home.last() == Some(&b'/') {
                home.pop();
            }
            home
        })
        .collect()
}

/// Many pattern lists matched at once: which lists match a path, in one pass over each
/// glob set (the scoped detectors of the secrets pass: one list each, hundreds of lists,
/// every file of the guest).
pub struct PathLists {
    absolute: GlobSet,
    /// The list each absolute pattern belongs to.
    absolute_list: Vec<usize>,
    in_home: GlobSet,
    in_home_list: Vec<usize>,
    homes: Vec<Vec<u8>>,
}

impl PathLists {
    pub fn new(lists: &[&[String]], homes: &[Vec<u8>]) -> Result<Self, SpecError> {
        let (mut absolute, mut absolute_list) = (Vec::new(), Vec::new());
        let (mut in_home, mut in_home_list) = (Vec::new(), Vec::new());
        for (index, list) in lists.iter().enumerate() {
            for pattern in list.iter() {
                match pattern.strip_prefix('~') {
                    Some(rest) => {
                        in_home.push(rest.to_string());
                        in_home_list.push(index);
                    }
                    None => {
                        absolute.push(pattern.clone());
                        absolute_list.push(index);
                    }
                }
            }
        }
        Ok(PathLists {
            absolute: compile(&absolute)?,
            absolute_list,
            in_home: compile(&in_home)?,
            in_home_list,
            homes: trimmed(homes),
        })
    }

    /// Appends to `lists` the index of each list a pattern of which matches `path` (a list
    /// may be named more than once). `lists` is the caller's, so that matching a file
    /// allocates nothing once it has grown.
    pub fn matches_into(&self, path: &[u8], lists: &mut Vec<usize>) {
        let mut patterns = Vec::new();
        let mut add = |set: &GlobSet, owners: &[usize], path: &[u8], lists: &mut Vec<usize>| {
            set.matches_candidate_into(&Candidate::new(OsStr::from_bytes(path)), &mut patterns);
            lists.extend(patterns.iter().filter_map(|&p| owners.get(p).copied()));
        };
        if !self.absolute.is_empty() {
            add(&self.absolute, &self.absolute_list, path, lists);
        }
        if self.in_home.is_empty() {
            return;
        }
        for home in &self.homes {
            let Some(rest) = path
                .strip_prefix(home.as_slice())
                .filter(|rest| rest.first() == Some(&b'/'))
            else {
                continue;
            };
            add(&self.in_home, &self.in_home_list, rest, lists);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::SpecErrorKind;

    #[test]
    fn prefixes_stop_at_the_first_wildcard_directory() {
        assert_eq!(literal_prefix("/etc/ssh/ssh_host_*key"), "/etc/ssh/");
        assert_eq!(literal_prefix("/etc/machine-id"), "/etc/machine-id");
        assert_eq!(literal_prefix("/tmp/**"), "/tmp/");
        assert_eq!(literal_prefix("/**/x"), "/");
        assert_eq!(literal_prefix("/var/log/{a,b}"), "/var/log/");
    }

    #[test]
    fn tilde_means_every_home_by_its_bytes() {
        let homes = [
            b"/root".to_vec(),
            b"/home/a[1]".to_vec(),
            b"/home/x\xff\n".to_vec(),
        ];
        let matcher = PathMatcher::new(&["~/.ssh/*".into()], &[], &homes).unwrap();
        assert!(matcher.is_match(b"/home/a[1]/.ssh/id_rsa"));
        assert!(!matcher.is_match(b"/home/a1/.ssh/id_rsa"));
        assert!(matcher.is_match(b"/home/x\xff\n/.ssh/id_rsa"));
        assert!(matcher.is_match(b"/root/.ssh/authorized_keys"));
        assert!(!matcher.is_match(b"/rootx/.ssh/authorized_keys"));
        assert!(!matcher.is_match(b"/root/.ssh/sub/key"));
        assert_eq!(
            matcher.prefixes,
            vec![
                b"/home/a[1]/.ssh/".to_vec(),
                b"/home/x\xff\n/.ssh/".to_vec(),
                b"/root/.ssh/".to_vec()
            ]
        );
        let root_home = PathMatcher::new(&["~/.profile".into()], &[], &[b"/".to_vec()]).unwrap();
        assert!(root_home.is_match(b"/.profile"));
    }

    #[test]
    fn excludes_apply_below_homes_too() {
        let homes = [b"/home/a".to_vec()];
        let matcher = PathMatcher::new(&["~/**".into()], &["~/.cache/**".into()], &homes).unwrap();
        assert!(matcher.is_match(b"/home/a/.bash_history"));
        assert!(!matcher.is_match(b"/home/a/.cache/x"));
    }

    #[test]
    fn star_stays_within_a_component() {
        let matcher = PathMatcher::new(&["/etc/ssh/ssh_host_*key".into()], &[], &[]).unwrap();
        assert!(matcher.is_match(b"/etc/ssh/ssh_host_rsa_key"));
        assert!(!matcher.is_match(b"/etc/ssh/sub/ssh_host_rsa_key"));
        assert!(validate("etc/x").is_err());
        assert!(validate("/etc/[x").is_err());
    }

    #[test]
    fn bad_globs_are_invalid_patterns() {
        let kind = |pattern: &str| validate(pattern).err().map(|e| e.kind());
        assert_eq!(kind("/etc/[x"), Some(SpecErrorKind::InvalidPattern));
        assert_eq!(kind("etc/x"), Some(SpecErrorKind::InvalidPattern));
        assert_eq!(kind("/etc/{a,b"), Some(SpecErrorKind::InvalidPattern));
        assert_eq!(kind("~/.ssh/*"), None);
        let error = PathMatcher::new(&["/etc/[x".into()], &[], &[]).err();
        assert!(matches!(error, Some(SpecError::Glob { pattern, .. }) if pattern == "/etc/[x"));
    }
}
