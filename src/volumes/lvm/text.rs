//! LVM2's metadata text format: `key = value` pairs and `name { … }` sections, values
//! being integers, quoted strings or `[ … ]` lists of them, `#` comments to the end of the
//! line. Every value is hostile: nesting, counts and string lengths are bounded.

/// Sections nest five deep in real metadata (vg, logical_volumes, lv, segment).
const MAX_DEPTH: usize = 16;
/// Keys, sections and list items in one document: 1 000 LVs of 100 items stay below.
const MAX_ITEMS: usize = 1 << 20;
const MAX_STRING: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Int(i64),
    Str(String),
    List(Vec<Value>),
    Section(Section),
}

/// A section's entries in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Section {
    pub entries: Vec<(String, Value)>,
}

impl Section {
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(crate) fn int(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn list(&self, key: &str) -> Option<&[Value]> {
        match self.get(key)? {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    pub(crate) fn section(&self, key: &str) -> Option<&Section> {
        match self.get(key)? {
            Value::Section(s) => Some(s),
            _ => None,
        }
    }

    /// The subsections, in order.
    pub(crate) fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.entries.iter().filter_map(|(k, v)| match v {
            Value::Section(s) => Some((k.as_str(), s)),
            _ => None,
        })
    }
}

/// Where and why the text could not be parsed (byte offset within the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub at: usize,
    pub detail: String,
}

struct Parser<'t> {
    text: &'t [u8],
    at: usize,
    items: usize,
}

impl Parser<'_> {
    fn fail<T>(&self, detail: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            at: self.at,
            detail: detail.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    /// Skips whitespace, NULs (the area's padding) and comments.
    fn skip(&mut self) {
        while let Some(byte) = self.peek() {
            match byte {
                b' ' | b'\t' | b'\r' | b'\n' | 0 => self.at += 1,
                b'#' => {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.at += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn count(&mut self) -> Result<(), ParseError> {
        self.items += 1;
        if self.items > MAX_ITEMS {
            return self.fail(format!("more than {MAX_ITEMS} items"));
        }
        Ok(())
    }

    fn identifier(&mut self) -> Result<String, ParseError> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"_.+-".contains(&b))
        {
            self.at += 1;
        }
        if self.at == start || self.at - start > MAX_STRING {
            return self.fail("expected a name");
        }
        Ok(String::from_utf8_lossy(self.text.get(start..self.at).unwrap_or(&[])).into_owned())
    }

    /// The entries of a section up to `}` (or the end of the text at depth 0).
    fn section(&mut self, depth: usize) -> Result<Section, ParseError> {
        if depth > MAX_DEPTH {
            return self.fail(format!("sections nested deeper than {MAX_DEPTH}"));
        }
        let mut section = Section::default();
        loop {
            self.skip();
            match self.peek() {
                None if depth == 0 => return Ok(section),
                None => return self.fail("section not closed"),
                Some(b'}') if depth > 0 => {
                    self.at += 1;
                    return Ok(section);
                }
                Some(_) => {}
            }
            self.count()?;
            let key = self.identifier()?;
            self.skip();
            match self.peek() {
                Some(b'=') => {
                    self.at += 1;
                    self.skip();
                    let value = self.value()?;
                    section.entries.push((key, value));
                }
                Some(b'{') => {
                    self.at += 1;
                    let inner = self.section(depth + 1)?;
                    section.entries.push((key, Value::Section(inner)));
                }
                _ => return self.fail(format!("expected '=' or '{{' after {key}")),
            }
        }
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.skip();
                    match self.peek() {
                        Some(b']') => {
                            self.at += 1;
                            return Ok(Value::List(items));
                        }
                        Some(b',') if !items.is_empty() => {
                            self.at += 1;
                            continue;
                        }
                        None => return self.fail("list not closed"),
                        Some(b'[') => return self.fail("nested list"),
                        Some(_) => {}
                    }
                    self.count()?;
                    items.push(self.value()?);
                }
            }
            Some(b'-' | b'0'..=b'9') => self.integer(),
            _ => self.fail("expected a value"),
        }
    }

    fn integer(&mut self) -> Result<Value, ParseError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        let digits =
            std::str::from_utf8(self.text.get(start..self.at).unwrap_or(&[])).unwrap_or("");
        match digits.parse::<i64>() {
            Ok(n) => Ok(Value::Int(n)),
            Err(_) => {
                self.at = start;
                self.fail(format!("bad integer {digits:?}"))
            }
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.at += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return self.fail("string not closed"),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(byte) => out.push(byte),
                        None => return self.fail("string not closed"),
                    }
                    self.at += 1;
                }
                Some(byte) => {
                    out.push(byte);
                    self.at += 1;
                }
            }
            if out.len() > MAX_STRING {
                return self.fail(format!("string longer than {MAX_STRING} bytes"));
            }
        }
    }
}

/// Parses a whole metadata text into its top-level section.
pub(crate) fn parse(text: &[u8]) -> Result<Section, ParseError> {
    let mut parser = Parser {
        text,
        at: 0,
        items: 0,
    };
    parser.section(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_lists_strings_and_comments() {
        let text = b"vg {\nid = \"a-b\"\nseqno = 7 # note\nstatus = [\"READ\", \"WRITE\"]\nlv { stripes = [\n\"pv0\", 0\n] }\n}\ncontents = \"x\\\"y\"\n\0\0";
        let top = parse(text).unwrap();
        let vg = top.section("vg").unwrap();
        assert_eq!(vg.str("id"), Some("a-b"));
        assert_eq!(vg.int("seqno"), Some(7));
        assert_eq!(vg.list("status").unwrap().len(), 2);
        let lv = vg.section("lv").unwrap();
        assert_eq!(
            lv.list("stripes").unwrap(),
            &[Value::Str("pv0".into()), Value::Int(0)]
        );
        assert_eq!(top.str("contents"), Some("x\"y"));
    }

    #[test]
    fn hostile_text_is_refused_with_its_offset() {
        assert_eq!(parse(b"vg {").unwrap_err().detail, "section not closed");
        assert_eq!(parse(b"a = [1, [2]]").unwrap_err().at, 8);
        assert!(parse(b"a = 99999999999999999999").is_err());
        let deep = "a {".repeat(40);
        assert!(parse(deep.as_bytes())
            .unwrap_err()
            .detail
            .contains("deeper"));
        assert!(parse(b"a = \"unterminated").is_err());
        assert!(parse(b"= 1").is_err());
        let long = format!("a = \"{}\"", "x".repeat(MAX_STRING + 1));
        assert!(parse(long.as_bytes()).is_err());
    }
}
