//! fnmatch(3): one name against one pattern, as sshd's `Include` globs and systemd's
//! preset rules match them. Callers pick the flavour their program uses ([`Flags`]);
//! splitting paths into components and listing directories stays with them.
//!
//! Iterative with a single backtrack point (the last `*`): hostile patterns can neither
//! exhaust the stack nor take exponential time.

/// Where the callers' programs differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    /// A backslash quotes the next character; off is `FNM_NOESCAPE`.
    pub escape: bool,
    /// A leading `.` in the name is matched only by a literal `.` (`FNM_PERIOD`).
    pub period: bool,
    /// `[:alpha:]`-style classes inside brackets.
    pub classes: bool,
}

/// What glob(3) asks of each path component (sshd's `Include`).
pub const GLOB: Flags = Flags {
    escape: true,
    period: true,
    classes: true,
};

/// `FNM_NOESCAPE`, as systemd matches preset rules. Without classes: the preset matcher
/// never had them, and adding them would change which rule wins for odd patterns.
pub const NOESCAPE: Flags = Flags {
    escape: false,
    period: false,
    classes: false,
};

/// Matches file names byte by byte.
pub fn bytes(pattern: &[u8], name: &[u8], flags: Flags) -> bool {
    matches(pattern, name, flags)
}

/// Matches text character by character (`?` takes one character, not one byte).
pub fn text(pattern: &str, name: &str, flags: Flags) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    matches(&pattern, &name, flags)
}

/// One unit of matching: a byte or a character.
trait Symbol: Copy + Ord {
    fn ascii(b: u8) -> Self;
    /// Classes only ever hold ASCII; `None` (or a byte above 0x7f) is in none of them.
    fn to_byte(self) -> Option<u8>;
}

impl Symbol for u8 {
    fn ascii(b: u8) -> Self {
        b
    }

    fn to_byte(self) -> Option<u8> {
        Some(self)
    }
}

impl Symbol for char {
    fn ascii(b: u8) -> Self {
        char::from(b)
    }

    fn to_byte(self) -> Option<u8> {
        u8::try_from(self).ok()
    }
}

fn is<T: Symbol>(s: Option<&T>, b: u8) -> bool {
    s.is_some_and(|s| *s == T::ascii(b))
}

fn matches<T: Symbol>(pattern: &[T], name: &[T], flags: Flags) -> bool {
    if flags.period
        && is(name.first(), b'.')
        && !is(pattern.first(), b'.')
        && !(is(pattern.first(), b'\\') && is(pattern.get(1), b'.'))
    {
        return false;
    }
    let (mut p, mut n) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    loop {
        if is(pattern.get(p), b'*') {
            p += 1;
            backtrack = Some((p, n));
            continue;
        }
        if let Some(&c) = name.get(n) {
            if let Some((true, width)) = match_one(pattern, p, c, flags) {
                p += width;
                n += 1;
                continue;
            }
        } else if p >= pattern.len() {
            return true;
        }
        match backtrack {
            Some((star_p, star_n)) if star_n < name.len() => {
                backtrack = Some((star_p, star_n + 1));
                p = star_p;
                n = star_n + 1;
            }
            _ => return false,
        }
    }
}

/// Matches one name symbol against the pattern element at `p`: whether it matched and the
/// element's width; `None` at the end of the pattern.
fn match_one<T: Symbol>(pattern: &[T], p: usize, c: T, flags: Flags) -> Option<(bool, usize)> {
    let first = *pattern.get(p)?;
    if first == T::ascii(b'?') {
        return Some((true, 1));
    }
    if flags.escape && first == T::ascii(b'\\') {
        return Some(match pattern.get(p + 1) {
            Some(&escaped) => (escaped == c, 2),
            None => (c == first, 1),
        });
    }
    if first == T::ascii(b'[') {
        // An unterminated bracket is a literal `[`.
        return Some(bracket(pattern, p, c, flags).unwrap_or((c == first, 1)));
    }
    Some((first == c, 1))
}

/// A bracket expression at `p`; `None` when it is not terminated.
fn bracket<T: Symbol>(pattern: &[T], p: usize, c: T, flags: Flags) -> Option<(bool, usize)> {
    let mut i = p + 1;
    let negate = is(pattern.get(i), b'!') || is(pattern.get(i), b'^');
    if negate {
        i += 1;
    }
    let escape = |s: T| flags.escape && s == T::ascii(b'\\');
    let mut matched = false;
    let mut first = true;
    loop {
        let b = *pattern.get(i)?;
        if b == T::ascii(b']') && !first {
            return Some((matched != negate, i + 1 - p));
        }
        first = false;
        if flags.classes && b == T::ascii(b'[') && is(pattern.get(i + 1), b':') {
            let body = pattern.get(i + 2..)?;
            let close = body
                .windows(2)
                .position(|w| is(w.first(), b':') && is(w.get(1), b']'))?;
            matched |= in_class(body.get(..close)?, c);
            i += close + 4;
            continue;
        }
        let (low, width) = if escape(b) {
            (*pattern.get(i + 1)?, 2)
        } else {
            (b, 1)
        };
        i += width;
        if is(pattern.get(i), b'-') && pattern.get(i + 1).is_some_and(|e| !is(Some(e), b']')) {
            let end = *pattern.get(i + 1)?;
            let (high, width) = if escape(end) {
                (*pattern.get(i + 2)?, 3)
            } else {
                (end, 2)
            };
            matched |= low <= c && c <= high;
            i += width;
        } else {
            matched |= low == c;
        }
    }
}

fn in_class<T: Symbol>(class: &[T], c: T) -> bool {
    let Some(class) = class
        .iter()
        .map(|s| s.to_byte())
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let Some(c) = c.to_byte() else {
        return false;
    };
    match class.as_slice() {
        b"alnum" => c.is_ascii_alphanumeric(),
        b"alpha" => c.is_ascii_alphabetic(),
        b"blank" => c == b' ' || c == b'\t',
        b"cntrl" => c.is_ascii_control(),
        b"digit" => c.is_ascii_digit(),
        b"graph" => c.is_ascii_graphic(),
        b"lower" => c.is_ascii_lowercase(),
        b"print" => c.is_ascii_graphic() || c == b' ',
        b"punct" => c.is_ascii_punctuation(),
        b"space" => c.is_ascii_whitespace() || c == 0x0b,
        b"upper" => c.is_ascii_uppercase(),
        b"xdigit" => c.is_ascii_hexdigit(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_flavour_matches_like_glibc() {
        let m = |p: &str, n: &str| bytes(p.as_bytes(), n.as_bytes(), GLOB);
        assert!(m("*.conf", "50-cloud-init.conf"));
        assert!(!m("*.conf", "x.conf.dpkg-old"));
        assert!(!m("*.conf", ".hidden.conf"));
        assert!(!m("?hidden.conf", ".hidden.conf"));
        assert!(m(".*.conf", ".hidden.conf"));
        assert!(m("\\.*.conf", ".hidden.conf"));
        assert!(m("??-*.conf", "10-x.conf"));
        assert!(!m("??-*.conf", "5-x.conf"));
        assert!(m("[a-c]*", "b.conf"));
        assert!(!m("[a-c]*", "d.conf"));
        assert!(m("[!a-c]*", "d.conf"));
        assert!(m("[^a-c]*", "d.conf"));
        assert!(m("[]]", "]"));
        assert!(m("[[:digit:]]*", "1x"));
        assert!(!m("[[:digit:]]*", "x1"));
        assert!(m("a\\*", "a*"));
        assert!(!m("a\\*", "ab"));
        assert!(m("[x", "[x"));
        assert!(m("*a*a*a*a*a*a*b", &"a".repeat(60).replace("aa", "ab")));
        assert!(!m("*a*a*a*a*a*a*a*a*a*c", &"a".repeat(5000)));
    }

    #[test]
    fn noescape_flavour_follows_fnmatch_noescape() {
        let m = |p: &str, n: &str| text(p, n, NOESCAPE);
        assert!(m("*", "anything.service"));
        assert!(m("avahi-daemon.*", "avahi-daemon.socket"));
        assert!(!m("avahi-daemon.*", "avahi-daemon"));
        assert!(m(
            "systemd-journal-gatewayd.*",
            "systemd-journal-gatewayd.socket"
        ));
        assert!(m("getty@?.service", "getty@1.service"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[!a-c]x", "bx"));
        assert!(m("a\\b", "a\\b"));
        assert!(m("[x", "[x"));
        // No FNM_PERIOD, and `?` takes a whole character.
        assert!(m("*", ".hidden"));
        assert!(m("?.service", "é.service"));
        // Many stars against a long name that fails late: must stay fast.
        assert!(m("*a*a*a*a*a*b", &format!("{}b", "a".repeat(40))));
        assert!(!m("*a*a*a*a*a*b", &"a".repeat(200)));
    }
}
