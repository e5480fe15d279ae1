//! What a scan did not read, by cause: volumes that may hold files but were not read (or
//! read only in part), fstab mounts with no volume behind them, guest paths the walk could
//! not read, and the guest's other notes that leave a result unproven (no OS root,
//! checksums not enforced, a partition table that may hide data). Built from the guest's
//! typed state and the walk's errors, never from message text; the renderers show it
//! grouped per cause, capped, and the JSON carries every item.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{ImageReport, ResultStatus};
use crate::guest::{display_path, Guest, GuestPath, NoteKind};
use crate::names::escape_for_terminal;
use crate::walk::Inventory;

/// How many items of one cause the table, Markdown and JUnit show; the JSON has them all.
pub const SHOWN: usize = 10;
/// How many volumes the one stderr line names before it only counts them.
const NAMED_ON_STDERR: usize = 3;

/// Everything an image's scan did not read, per cause. Empty for a complete scan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NotRead {
    /// Volumes that may hold files and were not read, or were read only in part.
    pub volumes: Vec<VolumeNotRead>,
    /// fstab entries whose device is no volume of the image.
    pub mounts: Vec<MountNotRead>,
    /// Guest paths the walk could not read; what lies below them is not scanned.
    pub paths: Vec<PathNotRead>,
    /// Other causes the guest reports: `no-os-root`, `checksums-ignored`,
    /// `partition-table`, `fstab-unreadable`.
    pub causes: Vec<CauseNote>,
    /// Which of the image's notes the causes above already say (indices into `notes`), so
    /// renderings that list notes do not say them twice.
    #[serde(skip)]
    pub covered_notes: BTreeSet<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VolumeNotRead {
    pub id: String,
    pub filesystem: &'static str,
    /// Where the guest mounts it, when it does.
    pub mount_point: Option<String>,
    /// True when the volume was read but may miss recent changes (a log not replayed).
    pub partial: bool,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MountNotRead {
    pub mount_point: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PathNotRead {
    /// The guest path as text (lossy when its bytes are not UTF-8).
    pub path: String,
    /// The path's exact bytes, only when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_base64: Option<String>,
    #[serde(skip)]
    pub guest_path: GuestPath,
    /// The volume the path lies on.
    pub volume: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CauseNote {
    pub kind: &'static str,
    pub message: String,
}

impl NotRead {
    /// What the scan of `guest` did not read, from its volumes, notes and the walk's errors.
    pub fn of(guest: &Guest, inventory: &Inventory) -> Self {
        let mut not_read = NotRead::default();
        for state in &guest.volumes {
            let reason = match (&state.fs, &state.partial) {
                // A volume the guest mounts leaves that part of its tree unread, even one
                // that would hold no files on its own.
                (None, _) if state.incomplete || state.mount_point.is_some() => {
                    Some(state.not_scanned.clone().unwrap_or_default())
                }
                (Some(_), Some(partial)) => Some(partial.clone()),
                _ => None,
            };
            if let Some(reason) = reason {
                not_read.volumes.push(VolumeNotRead {
                    id: state.volume.id.clone(),
                    filesystem: state.volume.identity.content.as_str(),
                    mount_point: state.mount_point.as_deref().map(display_path),
                    partial: state.fs.is_some(),
                    reason: if reason.is_empty() {
                        "unreadable".into()
                    } else {
                        reason
                    },
                });
            }
        }
        for (index, note) in guest.notes.iter().enumerate() {
            if !note.incomplete {
                continue;
            }
            match note.kind {
                // The volume's own entry above says it, with its mount point.
                NoteKind::VolumePartial | NoteKind::MountNotScanned => {}
                NoteKind::MountMissing => not_read.mounts.push(MountNotRead {
                    mount_point: note
                        .mount_point
                        .as_deref()
                        .map(display_path)
                        .unwrap_or_default(),
                    reason: note.message.clone(),
                }),
                kind => not_read.causes.push(CauseNote {
                    kind: kind.as_str(),
                    message: note.message.clone(),
                }),
            }
            not_read.covered_notes.insert(index);
        }
        not_read.paths = inventory
            .errors
            .iter()
            .map(|error| {
                let guest_path = GuestPath::new(error.path.clone());
                let (path, path_base64) = guest_path.json_text_and_bytes();
                PathNotRead {
                    path,
                    path_base64,
                    guest_path,
                    volume: guest
                        .volumes
                        .get(error.volume)
                        .map_or_else(String::new, |s| s.volume.id.clone()),
                    reason: error.message.clone(),
                }
            })
            .collect();
        not_read
    }

    /// The kinds of `causes`, each once, in the order first met.
    pub fn cause_kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<&'static str> = Vec::new();
        for cause in &self.causes {
            if !kinds.contains(&cause.kind) {
                kinds.push(cause.kind);
            }
        }
        kinds
    }

    pub fn is_empty(&self) -> bool {
        self.volumes.is_empty()
            && self.mounts.is_empty()
            && self.paths.is_empty()
            && self.causes.is_empty()
    }
}

/// One cause of an incomplete result, as the text renderings show it: a heading and its
/// items, the rest only counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CauseGroup {
    pub heading: String,
    pub items: Vec<Item>,
    pub more: usize,
}

/// One thing not read: where (a volume, mount point or guest path, already escaped for a
/// terminal as paths are everywhere in the report) and why (plain text, which each
/// renderer escapes for its medium).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub place: Option<String>,
    pub text: String,
}

fn item(place: String, text: &str) -> Item {
    Item {
        place: Some(place),
        text: text.to_string(),
    }
}

fn group(heading: String, all: Vec<Item>) -> CauseGroup {
    let more = all.len().saturating_sub(SHOWN);
    let mut items = all;
    items.truncate(SHOWN);
    CauseGroup {
        heading,
        items,
        more,
    }
}

fn cause_heading(kind: &str) -> &'static str {
    match kind {
        "no-os-root" => "no operating-system root",
        "checksums-ignored" => "checksums not enforced",
        "partition-table" => "partition-table problems that may hide data",
        "fstab-unreadable" => "/etc/fstab unreadable",
        _ => "other",
    }
}

/// `n` and the noun, plural when `n` is not 1 (`1 volume`, `2 volumes`).
pub fn count(n: usize, noun: &str) -> String {
    let n_text = thousands(n);
    if n == 1 {
        format!("{n_text} {noun}")
    } else {
        format!("{n_text} {noun}s")
    }
}

/// A count with its thousands apart (`1 234`), as the "and N more" lines show it.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(digit);
    }
    out
}

/// `2 volumes not read`, `1 volume read in part`, or both kinds together.
fn volumes_heading(volumes: &[VolumeNotRead]) -> String {
    let partial = volumes.iter().filter(|v| v.partial).count();
    let how = if partial == 0 {
        "not read"
    } else if partial == volumes.len() {
        "read in part"
    } else {
        "not read or read in part"
    };
    format!("{} {how}", count(volumes.len(), "volume"))
}

/// The rules that could not decide, with the image's reason once when they share one.
fn rule_errors(image: &ImageReport) -> Vec<&str> {
    image
        .results
        .iter()
        .filter(|r| r.status == ResultStatus::Error)
        .map(|r| r.rule.as_str())
        .collect()
}

/// The causes of an incomplete result, grouped, in a fixed order: volumes, mounts, paths,
/// the guest's other causes (one group per kind), rules that could not decide.
pub fn groups(image: &ImageReport) -> Vec<CauseGroup> {
    let not_read = &image.not_read;
    let mut groups = Vec::new();
    if !not_read.volumes.is_empty() {
        let items = not_read
            .volumes
            .iter()
            .map(|v| {
                let at = v
                    .mount_point
                    .as_deref()
                    .map(|m| format!(", mounted at {m}"))
                    .unwrap_or_default();
                let how = if v.partial { "read in part: " } else { "" };
                item(
                    format!("{} ({}{at})", v.id, v.filesystem),
                    &format!("{how}{}", v.reason),
                )
            })
            .collect();
        groups.push(group(volumes_heading(&not_read.volumes), items));
    }
    if !not_read.mounts.is_empty() {
        let items = not_read
            .mounts
            .iter()
            .map(|m| item(m.mount_point.clone(), &m.reason))
            .collect();
        groups.push(group(
            format!(
                "{} without a volume",
                count(not_read.mounts.len(), "fstab mount")
            ),
            items,
        ));
    }
    if !not_read.paths.is_empty() {
        let items = not_read
            .paths
            .iter()
            .map(|p| {
                item(
                    format!("{} (volume {})", p.guest_path.display(), p.volume),
                    &p.reason,
                )
            })
            .collect();
        groups.push(group(
            format!("{} unreadable", count(not_read.paths.len(), "path")),
            items,
        ));
    }
    for kind in not_read.cause_kinds() {
        let items = not_read
            .causes
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| Item {
                place: None,
                text: c.message.clone(),
            })
            .collect();
        groups.push(group(cause_heading(kind).to_string(), items));
    }
    let errors = rule_errors(image);
    if !errors.is_empty() {
        // Each rule's reason is shown with the rule; here only which rules, in one item.
        let shown: Vec<&str> = errors.iter().take(SHOWN).copied().collect();
        let rest = errors.len().saturating_sub(SHOWN);
        let mut rules = shown.join(", ");
        if rest > 0 {
            rules.push_str(&format!(" and {} more", thousands(rest)));
        }
        groups.push(CauseGroup {
            heading: format!(
                "{} could not decide (each says why)",
                count(errors.len(), "rule")
            ),
            items: vec![Item {
                place: None,
                text: rules,
            }],
            more: 0,
        });
    }
    groups
}

/// The one stderr line for an incomplete image, whatever the report's format:
/// `incomplete: 2 volumes not read (p3: …; p4: …), 5 paths unreadable`. None when the
/// image was read completely or could not be opened at all (its error is said already).
/// Escaped for a terminal.
pub fn stderr_summary(image: &ImageReport) -> Option<String> {
    if !image.summary.incomplete || image.error.is_some() {
        return None;
    }
    let not_read = &image.not_read;
    let mut parts = Vec::new();
    if !not_read.volumes.is_empty() {
        let mut named: Vec<String> = not_read
            .volumes
            .iter()
            .take(NAMED_ON_STDERR)
            .map(|v| format!("{}: {}", v.id, escape_for_terminal(v.reason.as_bytes())))
            .collect();
        if not_read.volumes.len() > NAMED_ON_STDERR {
            named.push("…".into());
        }
        parts.push(format!(
            "{} ({})",
            volumes_heading(&not_read.volumes),
            named.join("; ")
        ));
    }
    if !not_read.mounts.is_empty() {
        let points: Vec<&str> = not_read
            .mounts
            .iter()
            .map(|m| m.mount_point.as_str())
            .collect();
        parts.push(format!(
            "{} without a volume ({})",
            count(points.len(), "fstab mount"),
            points.join(", ")
        ));
    }
    if !not_read.paths.is_empty() {
        parts.push(format!(
            "{} unreadable",
            count(not_read.paths.len(), "path")
        ));
    }
    parts.extend(
        not_read
            .cause_kinds()
            .into_iter()
            .map(|k| cause_heading(k).to_string()),
    );
    let errors = rule_errors(image).len();
    if errors > 0 {
        parts.push(format!("{} could not decide", count(errors, "rule")));
    }
    Some(format!("incomplete: {}", parts.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_people_write_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1234), "1 234");
        assert_eq!(thousands(1_234_567), "1 234 567");
        assert_eq!(count(1, "path"), "1 path");
        assert_eq!(count(1234, "path"), "1 234 paths");
    }

    #[test]
    fn long_lists_are_capped_and_counted() {
        let all: Vec<Item> = (0..SHOWN + 1234)
            .map(|i| item(i.to_string(), "unreadable"))
            .collect();
        let g = group("paths".into(), all);
        assert_eq!(g.items.len(), SHOWN);
        assert_eq!(g.more, 1234);
        let few = group("paths".into(), vec![item("a".into(), "b")]);
        assert_eq!((few.items.len(), few.more), (1, 0));
    }
}
