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

#[cfg(test)]
mod tests {
    use super::*;

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
