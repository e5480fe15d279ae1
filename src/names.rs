//! How guest names, which are arbitrary bytes, are shown to people and written to JSON.
//!
//! Terminal output escapes anything that is not printable UTF-8 so a crafted file name
//! cannot move the cursor or forge lines. JSON output is lossless: `path` holds the name as
//! a string (invalid bytes replaced by U+FFFD) and, only when the bytes are not valid
//! UTF-8, `path_base64` holds the exact bytes.

use base64::Engine;

/// Escapes control characters, backslashes and invalid UTF-8 (`\xNN`) for display.
pub fn escape_for_terminal(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The JSON rendering of a name: a display string, plus the exact bytes when they are not
/// valid UTF-8.
pub fn json_text_and_bytes(bytes: &[u8]) -> (String, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), None),
        Err(_) => (
            String::from_utf8_lossy(bytes).into_owned(),
            Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        ),
    }
}

/// The inverse of `escape_for_terminal`: `\\`, `\n`, `\t`, `\r`, `\u{hex}` and `\xNN`.
pub fn unescape_terminal(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next()? {
            '\\' => out.push(b'\\'),
            'n' => out.push(b'\n'),
            't' => out.push(b'\t'),
            'r' => out.push(b'\r'),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                if hex.len() != 2 {
                    return None;
                }
                out.push(u8::from_str_radix(&hex, 16).ok()?);
            }
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let hex: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let c = char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_decode_to_the_same_bytes() {
        let raw: &[u8] = b"/tmp/a\nb\\c\xff\x1b\xc3\xa9";
        let shown = escape_for_terminal(raw);
        assert_eq!(unescape_terminal(&shown).as_deref(), Some(raw));
        assert_eq!(unescape_terminal("/a\\qb"), None);
    }

    #[test]
    fn terminal_escapes_are_unambiguous() {
        assert_eq!(escape_for_terminal(b"a\nb\\c\xff"), "a\\nb\\\\c\\xff");
        assert_eq!(escape_for_terminal("é\u{1b}".as_bytes()), "é\\u{1b}");
    }

    #[test]
    fn json_keeps_invalid_bytes() {
        assert_eq!(json_text_and_bytes(b"ok"), ("ok".to_string(), None));
        let (text, raw) = json_text_and_bytes(b"a\xffb");
        assert_eq!(text, "a\u{fffd}b");
        assert_eq!(raw.as_deref(), Some("Yf9i"));
    }
}
