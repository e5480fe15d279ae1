//! A keyword's arguments checked as sshd's servconf.c checks them: counts, yes/no and
//! choice words, integers, times and ports. Recording the value is the parser's job.

use super::keywords::{Keyword, Shape};
use super::lines::Token;
use crate::facts::FactError;

/// Checks a keyword's arguments as sshd does; the message says what sshd objects to.
pub(super) fn check_arguments(spec: &Keyword, tokens: &[Token]) -> Result<(), FactError> {
    let (min, max) = match spec.shape {
        Shape::Flag
        | Shape::Choice(_)
        | Shape::ExactChoice(_)
        | Shape::Int
        | Shape::Time
        | Shape::Port => (1, 1),
        Shape::Args(min, max) => (min, max),
        Shape::Rest | Shape::Ignored | Shape::Match | Shape::Include => return Ok(()),
    };
    if tokens.len() < min || tokens.first().is_some_and(|t| t.text.is_empty()) {
        return Err(FactError::rejected("missing argument"));
    }
    if tokens.len() > max {
        return Err(FactError::rejected("extra arguments at end of line"));
    }
    if spec.canonical == "AuthorizedKeysFile" && tokens.iter().any(|t| t.text.is_empty()) {
        return Err(FactError::rejected("empty argument"));
    }
    let Some(first) = tokens.first().map(|t| t.text.as_str()) else {
        return Ok(());
    };
    let valid = match spec.shape {
        Shape::Flag => ["yes", "no"].iter().any(|w| w.eq_ignore_ascii_case(first)),
        Shape::Choice(words) => words.iter().any(|w| w.eq_ignore_ascii_case(first)),
        Shape::ExactChoice(words) => words.contains(&first),
        Shape::Int => parse_int(first).is_some(),
        Shape::Time => parse_time(first).is_some(),
        Shape::Port => valid_port(first, false),
        _ => true,
    };
    if valid {
        Ok(())
    } else {
        Err(FactError::rejected(format!(
            "unsupported value \"{first}\""
        )))
    }
}

/// sshd's `atoi_err`: a decimal integer from 0 to `INT_MAX`.
fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<i64>()
        .ok()
        .filter(|v| *v <= i64::from(i32::MAX))
}

/// sshd's `convtime`: e.g. `90`, `5m`, `1h30m`; at most `INT_MAX` seconds.
pub(super) fn parse_time(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let unsigned = rest.strip_prefix('+').unwrap_or(rest);
        let digits = unsigned.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let (number, after) = unsigned.split_at(digits);
        let value: i64 = number.parse().ok()?;
        let mut chars = after.chars();
        let multiplier = match chars.next() {
            None => 1,
            Some('s' | 'S') => 1,
            Some('m' | 'M') => 60,
            Some('h' | 'H') => 3600,
            Some('d' | 'D') => 86_400,
            Some('w' | 'W') => 604_800,
            Some(_) => return None,
        };
        total = total.checked_add(value.checked_mul(multiplier)?)?;
        if total > i64::from(i32::MAX) {
            return None;
        }
        rest = chars.as_str();
    }
    Some(total)
}

/// sshd's `a2port`: a number up to 65535 or a service name (which only the guest's
/// /etc/services could confirm, so any name is accepted).
pub(super) fn valid_port(s: &str, zero_allowed: bool) -> bool {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u32>()
            .is_ok_and(|p| p <= 65_535 && (zero_allowed || p > 0));
    }
    !s.is_empty()
}
