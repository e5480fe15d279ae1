//! The text descriptor: `createType`, the parent link and the extent lines.
//!
//! ```text
//! # Disk DescriptorFile
//! version=1
//! CID=fffffffe
//! parentCID=ffffffff
//! createType="twoGbMaxExtentSparse"
//!
//! # Extent description
//! RW 4192256 SPARSE "disk-s001.vmdk"
//! RW 2048 FLAT "disk-f002.vmdk" 0
//! RW 2048 ZERO
//! ```
//!
//! Parsing works on bytes (file names need not be UTF-8) and never allocates more than
//! the descriptor's own size.

use crate::image::CorruptKind;

/// Most extents a descriptor may list.
pub(super) const MAX_EXTENTS: usize = 1024;
/// Largest descriptor accepted, embedded or in a file of its own.
pub(super) const MAX_DESCRIPTOR_BYTES: u64 = 1 << 20;
/// Longest `createType` reported; it is shown on a terminal, so it must be a plain word.
const MAX_CREATE_TYPE: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AccessMode {
    ReadWrite,
    ReadOnly,
    NoAccess,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ExtentType {
    Sparse,
    Flat,
    Zero,
    Vmfs,
    VmfsSparse,
    /// Known to VMware but not readable here (VMFSRDM, VMFSRAW, SESPARSE, ...).
    Other(String),
}

impl ExtentType {
    pub(super) fn name(&self) -> &str {
        match self {
            Self::Sparse => "SPARSE",
            Self::Flat => "FLAT",
            Self::Zero => "ZERO",
            Self::Vmfs => "VMFS",
            Self::VmfsSparse => "VMFSSPARSE",
            Self::Other(name) => name,
        }
    }
}

/// One extent line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ExtentLine {
    pub access: AccessMode,
    pub sectors: u64,
    pub kind: ExtentType,
    /// The quoted file name, as bytes; `None` for ZERO extents.
    pub file: Option<Vec<u8>>,
    /// Where the extent starts in its file, in sectors (FLAT and VMFS only).
    pub offset: u64,
    /// 1-based line number and byte offset of the line, for error messages.
    pub line: usize,
    pub at: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Descriptor {
    pub create_type: Option<String>,
    pub parent_cid: Option<String>,
    pub parent_hint: Option<Vec<u8>>,
    pub extents: Vec<ExtentLine>,
}

impl Descriptor {
    /// The parent link, when the descriptor describes a delta disk.
    pub(super) fn parent(&self) -> Option<String> {
        let cid = self
            .parent_cid
            .as_deref()
            .filter(|cid| !cid.eq_ignore_ascii_case("ffffffff"));
        let hint = self.parent_hint.as_deref().filter(|hint| !hint.is_empty());
        match (hint, cid) {
            (None, None) => None,
            (Some(hint), cid) => Some(format!(
                "parentFileNameHint=\"{}\"{}",
                String::from_utf8_lossy(hint).escape_debug(),
                cid.map(|c| format!(", parentCID={}", c.escape_debug()))
                    .unwrap_or_default()
            )),
            (None, Some(cid)) => Some(format!("parentCID={}", cid.escape_debug())),
        }
    }
}

/// A line the parser refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DescriptorError {
    pub line: usize,
    pub at: u64,
    pub kind: CorruptKind,
    pub detail: String,
}

/// What is wrong with one line, before the caller places it in the text. A fault made
/// from bare text is a value the format does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LineFault {
    kind: CorruptKind,
    detail: String,
}

impl From<String> for LineFault {
    fn from(detail: String) -> Self {
        Self {
            kind: CorruptKind::Invalid,
            detail,
        }
    }
}

impl From<&str> for LineFault {
    fn from(detail: &str) -> Self {
        detail.to_string().into()
    }
}

/// Parses descriptor text (already cut at its first NUL when it was embedded).
pub(super) fn parse(text: &[u8]) -> Result<Descriptor, DescriptorError> {
    let mut descriptor = Descriptor::default();
    let mut at = 0u64;
    for (index, raw) in text.split(|b| *b == b'\n').enumerate() {
        let line = index + 1;
        let here = at;
        at = at.saturating_add(raw.len() as u64 + 1);
        let fail = |fault: LineFault| DescriptorError {
            line,
            at: here,
            kind: fault.kind,
            detail: fault.detail,
        };
        let trimmed = raw.trim_ascii();
        if trimmed.is_empty() || trimmed.starts_with(b"#") {
            continue;
        }
        if let Some(extent) = parse_extent(trimmed).map_err(&fail)? {
            if descriptor.extents.len() >= MAX_EXTENTS {
                return Err(fail(LineFault {
                    kind: CorruptKind::TooLarge,
                    detail: format!("more than {MAX_EXTENTS} extents"),
                }));
            }
            descriptor.extents.push(ExtentLine {
                line,
                at: here,
                ..extent
            });
            continue;
        }
        let Some(eq) = trimmed.iter().position(|b| *b == b'=') else {
            // VMware ignores lines it does not understand; so do we.
            continue;
        };
        let key = trimmed.get(..eq).unwrap_or_default().trim_ascii();
        let value = unquote(trimmed.get(eq + 1..).unwrap_or_default().trim_ascii());
        match key {
            b"createType" => {
                let word = std::str::from_utf8(value)
                    .ok()
                    .filter(|w| {
                        !w.is_empty()
                            && w.len() <= MAX_CREATE_TYPE
                            && w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    })
                    .ok_or_else(|| {
                        fail(LineFault::from(format!(
                            "createType \"{}\" is not a word of at most {MAX_CREATE_TYPE} letters and digits",
                            String::from_utf8_lossy(value).escape_debug()
                        )))
                    })?;
                descriptor.create_type = Some(word.to_string());
            }
            b"parentCID" => {
                descriptor.parent_cid = Some(String::from_utf8_lossy(value).into_owned());
            }
            b"parentFileNameHint" => descriptor.parent_hint = Some(value.to_vec()),
            _ => {}
        }
    }
    Ok(descriptor)
}

fn unquote(value: &[u8]) -> &[u8] {
    value
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(value)
}

/// The next whitespace-separated token and the rest, or `None` at the end.
fn token(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let text = text.trim_ascii_start();
    if text.is_empty() {
        return None;
    }
    let end = text
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(text.len());
    Some(text.split_at(end))
}

fn number(token: &[u8], what: &str) -> Result<u64, LineFault> {
    std::str::from_utf8(token)
        .ok()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<u64>().ok())
        .ok_or_else(|| {
            LineFault::from(format!(
                "{what} \"{}\" is not a decimal number",
                String::from_utf8_lossy(token).escape_debug()
            ))
        })
}

/// An extent line, `None` when the line is not one (it does not start with an access
/// mode), an error when it starts like one but is malformed.
fn parse_extent(line: &[u8]) -> Result<Option<ExtentLine>, LineFault> {
    let Some((access, rest)) = token(line) else {
        return Ok(None);
    };
    let access = match access {
        b"RW" => AccessMode::ReadWrite,
        b"RDONLY" => AccessMode::ReadOnly,
        b"NOACCESS" => AccessMode::NoAccess,
        _ => return Ok(None),
    };
    let (sectors, rest) = token(rest).ok_or("extent line ends before its size")?;
    let sectors = number(sectors, "extent size")?;
    let (kind, rest) = token(rest).ok_or("extent line ends before its type")?;
    let kind = match kind {
        b"SPARSE" => ExtentType::Sparse,
        b"FLAT" => ExtentType::Flat,
        b"ZERO" => ExtentType::Zero,
        b"VMFS" => ExtentType::Vmfs,
        b"VMFSSPARSE" => ExtentType::VmfsSparse,
        other => {
            let name = String::from_utf8_lossy(other);
            if name.len() > 32 || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!(
                    "extent type \"{}\" is not one VMware defines",
                    name.escape_debug()
                )
                .into());
            }
            ExtentType::Other(name.into_owned())
        }
    };
    let rest = rest.trim_ascii_start();
    let (file, rest) = if kind == ExtentType::Zero && rest.is_empty() {
        (None, rest)
    } else {
        let quoted = rest
            .strip_prefix(b"\"")
            .ok_or("the extent's file name must follow its type, in double quotes")?;
        let close = quoted
            .iter()
            .position(|b| *b == b'"')
            .ok_or("the extent's file name has no closing quote")?;
        let (name, after) = quoted.split_at(close);
        if name.is_empty() {
            return Err("the extent's file name is empty".into());
        }
        if name.contains(&0) {
            return Err("the extent's file name contains a NUL byte".into());
        }
        (Some(name.to_vec()), after.get(1..).unwrap_or_default())
    };
    let (offset, rest) = match token(rest) {
        None => (0, rest),
        Some((offset, rest)) => (number(offset, "extent offset")?, rest),
    };
    if offset != 0 && !matches!(kind, ExtentType::Flat | ExtentType::Vmfs) {
        return Err(format!(
            "a {} extent cannot start at an offset in its file",
            kind.name()
        )
        .into());
    }
    if let Some((extra, _)) = token(rest) {
        return Err(format!(
            "unexpected \"{}\" after the extent's offset",
            String::from_utf8_lossy(extra).escape_debug()
        )
        .into());
    }
    Ok(Some(ExtentLine {
        access,
        sectors,
        kind,
        file,
        offset,
        line: 0,
        at: 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qemu_descriptor() {
        let text = b"# Disk DescriptorFile\nversion=1\nCID=112ca897\nparentCID=ffffffff\n\
createType=\"twoGbMaxExtentFlat\"\n\n# Extent description\nRW 2048 FLAT \"a b-f001.vmdk\" 0\r\n\
RDONLY 100 FLAT \"x\" 7\nNOACCESS 5 ZERO\nRW 9 SPARSE \"s.vmdk\"\n\n#DDB\nddb.adapterType = \"ide\"\n";
        let d = parse(text).unwrap();
        assert_eq!(d.create_type.as_deref(), Some("twoGbMaxExtentFlat"));
        assert_eq!(d.parent(), None);
        assert_eq!(d.extents.len(), 4);
        let first = &d.extents[0];
        assert_eq!(first.file.as_deref(), Some(&b"a b-f001.vmdk"[..]));
        assert_eq!((first.sectors, first.offset, first.line), (2048, 0, 8));
        assert_eq!(d.extents[1].offset, 7);
        assert_eq!(d.extents[1].access, AccessMode::ReadOnly);
        assert_eq!(d.extents[2].kind, ExtentType::Zero);
        assert_eq!(d.extents[2].file, None);
        assert_eq!(d.extents[3].kind, ExtentType::Sparse);
    }

    #[test]
    fn reports_parent() {
        let d = parse(b"parentCID=1234abcd\nparentFileNameHint=\"base.vmdk\"\n").unwrap();
        let parent = d.parent().unwrap();
        assert!(parent.contains("base.vmdk") && parent.contains("1234abcd"));
        let d = parse(b"parentCID=FFFFFFFF\nparentFileNameHint=\"\"\n").unwrap();
        assert_eq!(d.parent(), None);
    }

    #[test]
    fn refuses_malformed_extent_lines() {
        for bad in [
            &b"RW x SPARSE \"a\""[..],
            b"RW 5",
            b"RW 5 FLAT a",
            b"RW 5 FLAT \"a",
            b"RW 5 FLAT \"\"",
            b"RW 5 FLAT \"a\0b\"",
            b"RW 5 SPARSE \"a\" 3",
            b"RW 5 FLAT \"a\" 3 4",
            b"RW 5 FLAT \"a\" -3",
            b"RW 99999999999999999999999 FLAT \"a\"",
            b"createType=\"evil\x1b[31m\"",
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.line, 1, "{}", String::from_utf8_lossy(bad));
            assert_eq!(err.kind, CorruptKind::Invalid);
        }
    }

    #[test]
    fn bounds_extent_count() {
        let text = "RW 1 ZERO\n".repeat(MAX_EXTENTS + 1);
        let err = parse(text.as_bytes()).unwrap_err();
        assert_eq!(err.line, MAX_EXTENTS + 1);
        assert_eq!(err.kind, CorruptKind::TooLarge);
    }
}
