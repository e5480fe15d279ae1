//! Backslash escapes decoded, one function per convention: the plain kind (a backslash
//! quotes the next byte, as in glob patterns), fstab's octal `\040` and udev's hex `\x2f`.
//! A shared utility, not a layer: bytes in, bytes out; making text of them is the caller's
//! business.

/// Drops each backslash that is not itself quoted, keeping the byte it quotes; a trailing
/// lone backslash is dropped too (glob(3) and globset read patterns this way).
pub fn unquote(input: &[u8]) -> Vec<u8> {
    decode(input, |escape| {
        Some((escape.get(1).copied(), escape.len().min(2)))
    })
}

/// fstab(5) and getmntent(3): `\` and three octal digits (a byte, so at most `\377`);
/// anything else is kept as written.
pub fn octal(input: &[u8]) -> Vec<u8> {
    decode(input, |escape| {
        let digits = escape.get(1..4)?;
        if !digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
            return None;
        }
        let value = u8::from_str_radix(std::str::from_utf8(digits).ok()?, 8).ok()?;
        Some((Some(value), 4))
    })
}

/// udev's names under /dev/disk/by-*: `\x` and two hex digits; anything else is kept as
/// written.
pub fn hex(input: &[u8]) -> Vec<u8> {
    decode(input, |escape| {
        if escape.get(1) != Some(&b'x') {
            return None;
        }
        let digits = std::str::from_utf8(escape.get(2..4)?).ok()?;
        Some((Some(u8::from_str_radix(digits, 16).ok()?), 4))
    })
}

/// Copies `input`, handing each backslash and what follows it to `escape`, which says
/// what the escape stands for (a byte, or nothing) and how many bytes it spans; `None`
/// keeps the backslash as an ordinary byte.
fn decode(input: &[u8], escape: impl Fn(&[u8]) -> Option<(Option<u8>, usize)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(rest) = input.get(i..).filter(|r| !r.is_empty()) {
        let decoded = rest
            .starts_with(b"\\")
            .then(|| escape(rest))
            .flatten()
            .filter(|(_, width)| *width > 0);
        match decoded {
            Some((byte, width)) => {
                out.extend(byte);
                i += width;
            }
            None => {
                out.extend(rest.first());
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_backslashes_quote_the_next_byte() {
        assert_eq!(unquote(b"a\\*b"), b"a*b");
        assert_eq!(unquote(b"a\\\\b"), b"a\\b");
        assert_eq!(unquote(b"/etc/ssh/\\[x\\]"), b"/etc/ssh/[x]");
        assert_eq!(unquote(b"trailing\\"), b"trailing");
        assert_eq!(unquote("\\é".as_bytes()), "é".as_bytes());
        assert_eq!(unquote(b""), b"");
    }

    #[test]
    fn octal_escapes_as_fstab_writes_them() {
        assert_eq!(octal(b"/mnt/my\\040disk"), b"/mnt/my disk");
        assert_eq!(octal(b"a\\011b\\134c"), b"a\tb\\c");
        // Not three octal digits, or more than a byte: kept as written.
        assert_eq!(octal(b"a\\08b"), b"a\\08b");
        assert_eq!(octal(b"a\\777"), b"a\\777");
        assert_eq!(octal(b"a\\04"), b"a\\04");
        assert_eq!(octal(b"\\"), b"\\");
    }

    #[test]
    fn hex_escapes_as_udev_writes_them() {
        assert_eq!(hex(b"my\\x2fdisk"), b"my/disk");
        assert_eq!(hex(b"a\\x20b"), b"a b");
        assert_eq!(hex(b"a\\xzz"), b"a\\xzz");
        assert_eq!(hex(b"a\\x2"), b"a\\x2");
        assert_eq!(hex(b"a\\y2f"), b"a\\y2f");
    }
}
