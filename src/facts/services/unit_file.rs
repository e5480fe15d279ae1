//! The few settings read from a unit file itself (`[Install]`, `ExecStart=`, what a
//! socket, timer or path unit activates) and systemd's install-time specifiers. Drop-ins
//! are not read; resolving which file defines a unit is [`super::systemd`]'s job.

use super::names::{instance_of, stem};
use super::paths::basename;

/// What systemd's `[Install]`, `ExecStart=` and activation settings say, from the unit
/// file itself (drop-ins are not read).
#[derive(Debug, Clone, Default)]
pub(super) struct UnitInfo {
    pub(super) wanted_by: Vec<String>,
    pub(super) required_by: Vec<String>,
    pub(super) upheld_by: Vec<String>,
    pub(super) alias: Vec<String>,
    pub(super) also: Vec<String>,
    pub(super) default_instance: Option<String>,
    pub(super) exec_start: Option<String>,
    /// `Service=` of a socket, `Unit=` of a timer or path unit.
    pub(super) activates: Option<String>,
    pub(super) accept: bool,
}

/// Parses the settings above from a unit file. A list setting assigned the empty string
/// is reset, as systemd's `config_parse_strv` does.
pub(super) fn parse_unit(text: &str) -> UnitInfo {
    let mut info = UnitInfo::default();
    let mut section = String::new();
    let mut logical = String::new();
    let mut lines = text.lines().peekable();
    while let Some(raw) = lines.next() {
        logical.push_str(raw);
        // A trailing backslash continues the line (comment lines in between are skipped).
        if logical.ends_with('\\') {
            logical.pop();
            logical.push(' ');
            while let Some(next) = lines.peek() {
                if next.trim_start().starts_with(['#', ';']) {
                    lines.next();
                } else {
                    break;
                }
            }
            if lines.peek().is_some() {
                continue;
            }
        }
        let line = std::mem::take(&mut logical);
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            section = line
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let list = |target: &mut Vec<String>| {
            if value.is_empty() {
                target.clear();
            } else {
                target.extend(value.split_whitespace().map(str::to_string));
            }
        };
        match (section.as_str(), key) {
            ("Install", "WantedBy") => list(&mut info.wanted_by),
            ("Install", "RequiredBy") => list(&mut info.required_by),
            ("Install", "UpheldBy") => list(&mut info.upheld_by),
            ("Install", "Alias") => list(&mut info.alias),
            ("Install", "Also") => list(&mut info.also),
            ("Install", "DefaultInstance") => {
                info.default_instance = Some(value.to_string()).filter(|v| !v.is_empty());
            }
            ("Service", "ExecStart") => {
                if value.is_empty() {
                    info.exec_start = None;
                } else if info.exec_start.is_none() {
                    info.exec_start = Some(value.to_string());
                }
            }
            ("Socket", "Service") | ("Timer", "Unit") | ("Path", "Unit") => {
                info.activates = Some(value.to_string()).filter(|v| !v.is_empty());
            }
            ("Socket", "Accept") => {
                info.accept = matches!(
                    value.to_ascii_lowercase().as_str(),
                    "yes" | "true" | "on" | "1"
                );
            }
            _ => {}
        }
    }
    info
}

/// The executable's basename from an `ExecStart=` value (prefix characters `@-:+!`
/// stripped).
pub(super) fn exec_program(exec: &str) -> Option<String> {
    let command = exec.trim_start_matches(['@', '-', ':', '+', '!']);
    let first = command.split_whitespace().next()?;
    let first = first.trim_matches(['"', '\'']);
    let name = basename(first);
    (!name.is_empty()).then(|| name.to_string())
}

/// systemd's install-time specifiers that depend only on the unit name; others make the
/// value unusable (`None`), as an unresolvable specifier does in `systemctl enable`.
pub(super) fn expand_specifiers(value: &str, unit: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = value.chars();
    let stem = stem(unit);
    let prefix = stem.split_once('@').map_or(stem, |(p, _)| p);
    let instance = instance_of(unit).unwrap_or("");
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '%' => out.push('%'),
            'n' => out.push_str(unit),
            'N' => out.push_str(stem),
            'p' | 'P' => out.push_str(prefix),
            'i' | 'I' => out.push_str(instance),
            'j' | 'J' => out.push_str(prefix.rsplit('-').next().unwrap_or(prefix)),
            _ => return None,
        }
    }
    Some(out)
}
