//! A `Match` line's criteria as sshd checks them at startup, when no connection is
//! known: attribute names, `all`, address lists and ports. Whether a block applies to a
//! connection is the caller's decision.

use super::arguments::valid_port;
use super::lines::strdelim;
use crate::facts::FactError;

/// A `Match` line's criteria as sshd's `match_cfg_line` checks them when no connection
/// is given. Returns the conditions and the criteria text without a trailing comment.
pub(super) fn parse_match(
    rest: &[u8],
    token_count: usize,
) -> Result<(Vec<(String, String)>, String), FactError> {
    let mut conditions = Vec::new();
    let mut cursor = Some(0usize);
    let mut text_end = rest.len();
    let next_word = |cursor: &mut Option<usize>| -> Option<(Vec<u8>, usize)> {
        let at = (*cursor)?;
        let (word, next) = strdelim(rest.get(at..)?)?;
        *cursor = next.map(|n| at + n);
        Some((word, at))
    };
    while let Some((attribute, at)) = next_word(&mut cursor) {
        if attribute.is_empty() {
            break;
        }
        if attribute.first() == Some(&b'#') {
            text_end = at;
            cursor = None;
            break;
        }
        let attribute = String::from_utf8_lossy(&attribute).to_ascii_lowercase();
        if attribute == "all" {
            if !conditions.is_empty() {
                return Err(FactError::rejected(
                    "'all' cannot be combined with other Match attributes",
                ));
            }
            match next_word(&mut cursor) {
                Some((arg, at)) if arg.first() == Some(&b'#') => {
                    text_end = at;
                    cursor = None;
                }
                Some((arg, _)) if !arg.is_empty() => {
                    return Err(FactError::rejected(
                        "'all' cannot be combined with other Match attributes",
                    ));
                }
                _ => {}
            }
            conditions.push((attribute, String::new()));
            break;
        }
        let pattern = match next_word(&mut cursor) {
            Some((arg, _)) if !arg.is_empty() && arg.first() != Some(&b'#') => {
                String::from_utf8_lossy(&arg).into_owned()
            }
            _ => {
                return Err(FactError::rejected(format!(
                    "missing Match criteria for {attribute}"
                )))
            }
        };
        match attribute.as_str() {
            "user" | "group" | "host" | "rdomain" => {}
            // Later releases' criteria, accepted rather than reported.
            "invalid-user" | "version" | "sessiontype" | "command" => {}
            "address" | "localaddress" => {
                if !valid_address_list(&pattern) {
                    return Err(FactError::rejected(format!(
                        "invalid Match {attribute} argument '{pattern}'"
                    )));
                }
            }
            "localport" => {
                if !valid_port(&pattern, true) {
                    return Err(FactError::rejected(format!(
                        "invalid LocalPort '{pattern}' on Match line"
                    )));
                }
            }
            _ => {
                return Err(FactError::rejected(format!(
                    "unsupported Match attribute {attribute}"
                )))
            }
        }
        conditions.push((attribute, pattern));
    }
    if conditions.is_empty() {
        return Err(FactError::rejected(
            "one or more attributes required for Match",
        ));
    }
    let leftover = cursor.and_then(|c| rest.get(c..)).unwrap_or_default();
    if !leftover.is_empty() && token_count > 0 {
        return Err(FactError::rejected("Match: extra arguments at end of line"));
    }
    let text = String::from_utf8_lossy(rest.get(..text_end).unwrap_or_default());
    Ok((conditions, text.trim_end().to_string()))
}

/// sshd's `addr_match_list` with no address: rejects empty entries and CIDR entries whose
/// prefix length is out of range or leaves host bits set; anything else is a wildcard
/// pattern.
fn valid_address_list(list: &str) -> bool {
    list.split(',').all(|entry| {
        let entry = entry.strip_prefix('!').unwrap_or(entry);
        !entry.is_empty() && cidr_consistent(entry)
    })
}

fn cidr_consistent(entry: &str) -> bool {
    if entry.len() >= 64 {
        return true;
    }
    let (address, length) = match entry.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (entry, None),
    };
    let length = match length {
        Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => match l.parse::<u32>()
        {
            Ok(n) if n <= 128 => Some(n),
            _ => return true,
        },
        Some(_) => return true,
        None => None,
    };
    let Ok(ip) = address.parse::<std::net::IpAddr>() else {
        return true;
    };
    let (bits, width) = match ip {
        std::net::IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32),
        std::net::IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    let length = length.unwrap_or(width);
    if length > width {
        return false;
    }
    let host_mask = u128::MAX.checked_shr(length).unwrap_or(0);
    bits & host_mask == 0
}
