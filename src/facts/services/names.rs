//! systemd unit names: which are valid, plain, templates or instances, and how the parts
//! of `prefix@instance.suffix` are taken apart and put together.

const UNIT_SUFFIXES: [&str; 11] = [
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NameKind {
    Plain,
    Template,
    Instance,
}

/// systemd's `unit_name_is_valid`: allowed characters, a known suffix, at most one `@`
/// with a non-empty prefix.
pub(super) fn unit_name_kind(name: &str) -> Option<NameKind> {
    if name.is_empty() || name.len() > 255 {
        return None;
    }
    let (stem, suffix) = name.rsplit_once('.')?;
    if !UNIT_SUFFIXES.contains(&suffix) || stem.is_empty() {
        return None;
    }
    if !stem
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
    {
        return None;
    }
    match stem.split_once('@') {
        None => Some(NameKind::Plain),
        Some((prefix, instance)) => {
            if prefix.is_empty() || instance.contains('@') {
                None
            } else if instance.is_empty() {
                Some(NameKind::Template)
            } else {
                Some(NameKind::Instance)
            }
        }
    }
}

pub(super) fn stem(unit: &str) -> &str {
    unit.rsplit_once('.').map_or(unit, |(s, _)| s)
}

pub(super) fn suffix(unit: &str) -> &str {
    unit.rsplit_once('.').map_or("", |(_, s)| s)
}

/// `prefix@.suffix` for an instance or template name.
pub(super) fn template_of(unit: &str) -> Option<String> {
    let (prefix, _) = stem(unit).split_once('@')?;
    Some(format!("{prefix}@.{}", suffix(unit)))
}

pub(super) fn instance_of(unit: &str) -> Option<&str> {
    stem(unit)
        .split_once('@')
        .map(|(_, i)| i)
        .filter(|i| !i.is_empty())
}

/// `template` (`a@.service`) with `instance` filled in.
pub(super) fn with_instance(template: &str, instance: &str) -> String {
    let prefix = stem(template).trim_end_matches('@');
    format!("{prefix}@{instance}.{}", suffix(template))
}
