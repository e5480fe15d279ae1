//! Configuration files split into lines and tokens exactly as sshd splits them: NUL bytes,
//! the keyword separator (`strdelim`), quotes, backslashes and comments (`argv_split`).
//! What a keyword means is not decided here.

/// One argument, as `argv_split` returns it, with the offset just past it in the text.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) text: String,
    pub(super) end: usize,
}

/// A configuration line that is not blank or a comment.
#[derive(Debug)]
pub(super) enum Line {
    /// A line sshd rejects before looking at its keyword.
    Broken { line: usize, message: String },
    Directive {
        line: usize,
        keyword: String,
        /// The text after the keyword and its separator.
        rest: Vec<u8>,
        tokens: Vec<Token>,
    },
}

const WHITESPACE: &[u8] = b" \t\r\n";

fn span(s: &[u8], set: &[u8]) -> usize {
    s.iter().take_while(|b| set.contains(b)).count()
}

/// sshd's `strdelim`: the next word of `s`, split at whitespace or one `=`, with one pair
/// of double quotes allowed; also the offset of what follows (`None` when nothing does).
/// Returns `None` where sshd gets NULL (an opening quote without a closing one).
pub(super) fn strdelim(s: &[u8]) -> Option<(Vec<u8>, Option<usize>)> {
    let Some(i) = s
        .iter()
        .position(|b| WHITESPACE.contains(b) || *b == b'"' || *b == b'=')
    else {
        return Some((s.to_vec(), None));
    };
    let head = s.get(..i).unwrap_or_default();
    let after = s.get(i + 1..).unwrap_or_default();
    if s.get(i) == Some(&b'"') {
        let close = after.iter().position(|b| *b == b'"')?;
        let mut word = head.to_vec();
        word.extend_from_slice(after.get(..close).unwrap_or_default());
        let mut next = i + close + 2;
        next += span(s.get(next..).unwrap_or_default(), WHITESPACE);
        return Some((word, Some(next)));
    }
    let equals = s.get(i) == Some(&b'=');
    let mut next = i + 1 + span(after, WHITESPACE);
    if !equals && s.get(next) == Some(&b'=') {
        next += 1;
        next += span(s.get(next..).unwrap_or_default(), WHITESPACE);
    }
    Some((head.to_vec(), Some(next)))
}

/// sshd's `argv_split` with comments ending the line: words split at spaces and tabs,
/// single or double quotes, backslash escapes; a word starting with `#` ends the line.
/// `None` for an unterminated quote.
pub(super) fn argv_split(s: &[u8]) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b' ' || c == b'\t' {
            i += 1;
            continue;
        }
        if c == b'#' {
            break;
        }
        let mut word = Vec::new();
        let mut quote = 0u8;
        while let Some(&c) = s.get(i) {
            if c == b'\\' {
                let next = s.get(i + 1).copied();
                match next {
                    Some(n)
                        if n == b'\'' || n == b'"' || n == b'\\' || (quote == 0 && n == b' ') =>
                    {
                        word.push(n);
                        i += 1;
                    }
                    _ => word.push(c),
                }
            } else if quote == 0 && (c == b' ' || c == b'\t') {
                break;
            } else if quote == 0 && (c == b'"' || c == b'\'') {
                quote = c;
            } else if quote != 0 && c == quote {
                quote = 0;
            } else {
                word.push(c);
            }
            i += 1;
        }
        if quote != 0 {
            return None;
        }
        tokens.push(Token {
            text: String::from_utf8_lossy(&word).into_owned(),
            end: i,
        });
    }
    Some(tokens)
}

/// Splits a file into lines the way sshd's `load_server_config` and parser do: each line
/// is cut at a NUL byte (which also swallows its newline, joining it to the next line) and
/// loses leading spaces, tabs and carriage returns; trailing whitespace and form feeds go.
pub(super) fn split_lines(bytes: &[u8]) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut pending_start = 1;
    let mut number = 0;
    for raw in bytes.split_inclusive(|b| *b == b'\n') {
        number += 1;
        if pending.is_empty() {
            pending_start = number;
        }
        let kept = raw.split(|b| *b == 0).next().unwrap_or_default();
        let stripped = kept.get(span(kept, b" \t\r")..).unwrap_or_default();
        pending.extend_from_slice(stripped);
        if pending.last() == Some(&b'\n') {
            pending.pop();
            if let Some(line) = parse_line(&pending, pending_start) {
                lines.push(line);
            }
            pending.clear();
        }
    }
    if let Some(line) = parse_line(&pending, pending_start) {
        lines.push(line);
    }
    lines
}

pub(super) fn parse_line(text: &[u8], number: usize) -> Option<Line> {
    // sshd strips trailing whitespace but never the first character.
    let mut len = text.len();
    while len > 1
        && text
            .get(len - 1)
            .is_some_and(|b| b" \t\r\n\x0c".contains(b))
    {
        len -= 1;
    }
    let text = text.get(..len)?;
    if text.is_empty() {
        return None;
    }
    let (mut keyword, mut rest_at) = strdelim(text)?;
    let mut base = 0;
    if keyword.is_empty() {
        let from = rest_at?;
        let (again, next) = strdelim(text.get(from..)?)?;
        keyword = again;
        rest_at = next;
        base = from;
    }
    if keyword.is_empty() || keyword.first() == Some(&b'#') {
        return None;
    }
    let keyword = String::from_utf8_lossy(&keyword).into_owned();
    let rest = rest_at
        .and_then(|r| text.get(base + r..))
        .unwrap_or_default();
    if rest.is_empty() {
        return Some(Line::Broken {
            line: number,
            message: format!("no argument after keyword \"{keyword}\""),
        });
    }
    let Some(tokens) = argv_split(rest) else {
        return Some(Line::Broken {
            line: number,
            message: format!("{keyword}: invalid quotes"),
        });
    };
    Some(Line::Directive {
        line: number,
        keyword,
        rest: rest.to_vec(),
        tokens,
    })
}
