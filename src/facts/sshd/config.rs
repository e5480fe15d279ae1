//! The model of what sshd read (settings, Match blocks, problems) and how a keyword's
//! effective value follows from it: first or last value wins, or values accumulate;
//! Match blocks override startup values; compiled-in defaults fill the rest.

use super::keywords::{lookup, Keyword, Merge, Scope, Shape, DEFAULTS};
use crate::facts::Origin;

/// What the configuration files say, as sshd reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshdConfig {
    /// The file sshd starts from: [`MAIN_CONFIG`], else [`VENDOR_CONFIG`]; `None` when
    /// neither exists (then every keyword has its compiled-in default; note that sshd
    /// builds other than SUSE's refuse to start without a configuration file).
    pub main_file: Option<String>,
    /// Every configuration file read, in the order first read.
    pub files: Vec<String>,
    /// Every `Match` block, in parse order (indices are [`Setting::match_block`]).
    pub match_blocks: Vec<MatchBlock>,
    /// Every setting in every file, inside Match blocks or not, in the order sshd reads
    /// them; a file included twice contributes its lines twice. `Include` and `Match`
    /// lines and lines with problems are not settings.
    pub occurrences: Vec<Setting>,
    /// What sshd would reject, at the line concerned (line 0: the file as a whole). When
    /// not empty, sshd refuses to start with this configuration (or, for a problem found
    /// in the per-connection pass, fails every connection).
    pub problems: Vec<(Origin, String)>,
}

/// One keyword line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The canonical keyword, lower case, aliases resolved
    /// (`challengeresponseauthentication` → `kbdinteractiveauthentication`).
    pub keyword: String,
    /// The keyword as written.
    pub written_keyword: String,
    /// The arguments as written (quotes kept, a trailing comment dropped).
    pub value: String,
    /// The arguments as sshd splits them (quotes removed).
    pub tokens: Vec<String>,
    /// The tokens joined by one space, lower case, synonyms resolved (`PermitRootLogin
    /// without-password` → `prohibit-password`).
    pub normalised: String,
    pub origin: Origin,
    /// The Match block the line belongs to (index into [`SshdConfig::match_blocks`]).
    pub match_block: Option<usize>,
}

/// A `Match` block: the lines after a `Match` line up to the next one or the end of the
/// file it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchBlock {
    /// The criteria as written after `Match` (a trailing comment dropped).
    pub criteria: String,
    /// The criteria as sshd parses them: attribute (lower case) and pattern list; `all`
    /// has an empty pattern. Empty when the line is malformed (see `problems`).
    pub conditions: Vec<(String, String)>,
    /// The `Match` line.
    pub origin: Origin,
    /// The block that was open where the file holding this one was included: this block
    /// applies only when its parent applies too.
    pub parent: Option<usize>,
    /// The block's settings, in order.
    pub settings: Vec<Setting>,
}

impl MatchBlock {
    /// `Match all`: applies to every connection.
    pub fn is_all(&self) -> bool {
        matches!(self.conditions.as_slice(), [(attribute, _)] if attribute == "all")
    }
}

/// A keyword's effective value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// The keyword as sshd_config(5) spells it, aliases resolved (`PasswordAuthentication`);
    /// for a keyword sshd does not know, as asked.
    pub keyword: String,
    /// As written (for a compiled-in default, as sshd_config(5) spells it).
    pub value: String,
    pub tokens: Vec<String>,
    /// As in [`Setting::normalised`].
    pub normalised: String,
    /// The line that set it (for keywords that accumulate, the first of them); `None` for
    /// the compiled-in default.
    pub origin: Option<Origin>,
}

impl SshdConfig {
    /// The value sshd uses for a connection that matches no `Match` block but `Match
    /// all` ones — exactly what `sshd -T` prints. `keyword` is case-insensitive and may be
    /// an alias. The value is empty (and `origin` `None`) for a keyword sshd does not know
    /// or ignores (check with [`canonical_keyword`]) and for one that is unset and whose
    /// compiled-in default depends on the build (algorithm lists, paths).
    pub fn effective(&self, keyword: &str) -> Effective {
        self.effective_for(keyword, &|_| false)
    }

    /// The value for a connection to which exactly the blocks `applies` accepts apply
    /// (`Match all` blocks always do; a block whose parent does not apply never does).
    /// Values from applying blocks override the startup value, first one winning, for
    /// keywords allowed in Match blocks.
    pub fn effective_for(&self, keyword: &str, applies: &dyn Fn(&MatchBlock) -> bool) -> Effective {
        let unset = |name: &str| Effective {
            keyword: name.to_string(),
            value: String::new(),
            tokens: Vec::new(),
            normalised: String::new(),
            origin: None,
        };
        let Some(spec) = lookup(keyword) else {
            return unset(keyword);
        };
        if matches!(spec.shape, Shape::Ignored | Shape::Match | Shape::Include) {
            return unset(spec.canonical);
        }
        let canonical = spec.canonical.to_ascii_lowercase();
        if spec.scope == Scope::Anywhere {
            let in_blocks = self.occurrences.iter().filter(|s| {
                s.keyword == canonical
                    && s.match_block
                        .is_some_and(|b| self.chain_applies(b, applies))
            });
            if let Some(found) = merge(spec, in_blocks) {
                return found;
            }
        }
        let startup = self.occurrences.iter().filter(|s| {
            s.keyword == canonical
                && s.match_block
                    .is_none_or(|b| self.chain_applies(b, &|_| false))
        });
        merge(spec, startup)
            .or_else(|| compiled_default(spec))
            .unwrap_or_else(|| unset(spec.canonical))
    }

    /// `AuthorizedKeysFile`'s paths (from [`Self::effective`]), `%h`/`%u` tokens unexpanded.
    pub fn authorized_keys_files(&self) -> Vec<String> {
        self.effective("AuthorizedKeysFile").tokens
    }

    /// Whether block `index` and every block it is nested in apply.
    pub(super) fn chain_applies(
        &self,
        index: usize,
        applies: &dyn Fn(&MatchBlock) -> bool,
    ) -> bool {
        let mut next = Some(index);
        // Parents always precede their children, so the walk ends; the bound is belt and
        // braces against a malformed value built by hand.
        for _ in 0..=self.match_blocks.len() {
            let Some(i) = next else {
                return true;
            };
            let Some(block) = self.match_blocks.get(i) else {
                return false;
            };
            if !block.is_all() && !applies(block) {
                return false;
            }
            next = block.parent.filter(|p| *p < i);
        }
        false
    }
}

fn merge<'a>(spec: &Keyword, mut settings: impl Iterator<Item = &'a Setting>) -> Option<Effective> {
    let from = |s: &Setting| Effective {
        keyword: spec.canonical.to_string(),
        value: s.value.clone(),
        tokens: s.tokens.clone(),
        normalised: s.normalised.clone(),
        origin: Some(s.origin.clone()),
    };
    match spec.merge {
        Merge::First => settings.next().map(from),
        Merge::Last => settings.last().map(from),
        Merge::Accumulate => {
            let first = settings.next()?;
            let mut all = from(first);
            for s in settings {
                all.value.push(' ');
                all.value.push_str(&s.value);
                all.normalised.push(' ');
                all.normalised.push_str(&s.normalised);
                all.tokens.extend(s.tokens.iter().cloned());
            }
            Some(all)
        }
    }
}

fn compiled_default(spec: &Keyword) -> Option<Effective> {
    let (_, value) = DEFAULTS
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(spec.canonical))?;
    let tokens: Vec<String> = value.split(' ').map(str::to_string).collect();
    Some(Effective {
        keyword: spec.canonical.to_string(),
        value: (*value).to_string(),
        normalised: normalise(spec.canonical, &tokens),
        tokens,
        origin: None,
    })
}

pub(super) fn normalise(canonical: &str, tokens: &[String]) -> String {
    let joined = tokens.join(" ").to_ascii_lowercase();
    if canonical.eq_ignore_ascii_case("permitrootlogin") && joined == "without-password" {
        "prohibit-password".to_string()
    } else {
        joined
    }
}
