//! rpm's package database, read offline: the header blobs stored in `rpmdb.sqlite` (rpm ≥
//! 4.16: Fedora, RHEL 9, Amazon Linux 2023) and in Berkeley DB hash files (`Packages` of
//! rpm ≤ 4.15: RHEL 7/8, Amazon Linux 2), and the name, epoch, version, release and
//! architecture in each header. Finding the database files is `packages`' job; SUSE's
//! `ndb` format is not read here.
//!
//! Both containers are hostile input: the SQLite side goes through the bounded reader in
//! [`super::sqlite`]; the Berkeley DB walk checks every page number against the file,
//! refuses to visit a page twice, and never sizes a buffer from an unchecked length.
//! Header layout reference: rpm's `doc/manual/format_header.md` (read, not copied).

use std::collections::HashSet;

use super::sqlite::{self, Database, SqliteError};
use super::FactError;
use crate::bytes::array;

/// rpm refuses headers with more index entries or data than this (`hdrchkTags`,
/// `hdrchkData`); so do we.
const MAX_HEADER_ENTRIES: usize = 0x00ff_ffff;
const MAX_HEADER_DATA: usize = 256 << 20;

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// The identity of one installed package, from its header.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RpmHeader {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: Option<String>,
    pub release: Option<String>,
    pub arch: Option<String>,
}

impl RpmHeader {
    /// `[epoch:]version-release`, as `rpm -q --qf '%{EVR}'` prints it.
    pub fn evr(&self) -> Option<String> {
        let version = self.version.as_deref()?;
        let mut evr = String::new();
        if let Some(epoch) = self.epoch {
            evr.push_str(&format!("{epoch}:"));
        }
        evr.push_str(version);
        if let Some(release) = &self.release {
            evr.push('-');
            evr.push_str(release);
        }
        Some(evr)
    }
}

/// Parses an rpm header blob as the database stores it: entry count and data length
/// (big-endian 32-bit), the index entries, then the data store; no lead, no magic.
pub fn parse_header(blob: &[u8]) -> Result<RpmHeader, FactError> {
    let count = usize::try_from(be32(blob, 0))
        .map_err(|_| FactError::malformed("entry count overflows"))?;
    let data_len = usize::try_from(be32(blob, 4))
        .map_err(|_| FactError::malformed("data length overflows"))?;
    if blob.len() < 8 {
        return Err(FactError::malformed("header shorter than its preamble"));
    }
    if count == 0 || count > MAX_HEADER_ENTRIES || data_len > MAX_HEADER_DATA {
        return Err(FactError::malformed(format!(
            "implausible header: {count} entries, {data_len} bytes of data"
        )));
    }
    let data_at = count
        .checked_mul(16)
        .and_then(|n| n.checked_add(8))
        .ok_or_else(|| FactError::malformed("header index overflows"))?;
    let data = data_at
        .checked_add(data_len)
        .and_then(|end| blob.get(data_at..end))
        .ok_or_else(|| {
            FactError::malformed(format!(
                "header of {count} entries and {data_len} data bytes is truncated"
            ))
        })?;
    let mut header = RpmHeader {
        name: String::new(),
        epoch: None,
        version: None,
        release: None,
        arch: None,
    };
    let mut name = None;
    for i in 0..count {
        let entry = 8 + i * 16;
        let tag = be32(blob, entry);
        let kind = be32(blob, entry + 4);
        let offset = usize::try_from(be32(blob, entry + 8)).unwrap_or(usize::MAX);
        let string = || -> Result<String, FactError> {
            if !matches!(kind, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) {
                return Err(FactError::malformed(format!(
                    "tag {tag} has type {kind}, not a string"
                )));
            }
            let rest = data.get(offset..).ok_or_else(|| {
                FactError::malformed(format!("tag {tag}: offset {offset} is past the data"))
            })?;
            let end = rest.iter().position(|b| *b == 0).ok_or_else(|| {
                FactError::malformed(format!("tag {tag}: string is not terminated"))
            })?;
            Ok(String::from_utf8_lossy(rest.get(..end).unwrap_or_default()).into_owned())
        };
        match tag {
            TAG_NAME => name = Some(string()?),
            TAG_VERSION => header.version = Some(string()?),
            TAG_RELEASE => header.release = Some(string()?),
            TAG_ARCH => header.arch = Some(string()?),
            TAG_EPOCH => {
                if kind != TYPE_INT32 {
                    return Err(FactError::malformed(format!(
                        "epoch has type {kind}, not int32"
                    )));
                }
                let value = array::<4>(data, offset)
                    .map(u32::from_be_bytes)
                    .ok_or_else(|| FactError::malformed("epoch is past the data"))?;
                header.epoch = Some(value);
            }
            _ => {}
        }
    }
    header.name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| FactError::malformed("header has no package name"))?;
    Ok(header)
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    array(bytes, at).map_or(0, u32::from_be_bytes)
}

/// Every package header in an `rpmdb.sqlite` (and its `-wal`, when one was left behind).
pub fn read_sqlite(file: &[u8], wal: Option<&[u8]>) -> Result<Vec<RpmHeader>, FactError> {
    let db = Database::open(file, wal).map_err(FactError::from)?;
    let root = db
        .table_root("Packages")
        .map_err(FactError::from)?
        .ok_or_else(|| FactError::malformed("no Packages table"))?;
    let mut headers = Vec::new();
    db.scan_table(root, &mut |rowid, payload| {
        let values = sqlite::parse_record(payload)?;
        let blob = values
            .get(1)
            .and_then(sqlite::Value::as_bytes)
            .ok_or_else(|| SqliteError {
                page: None,
                message: format!("Packages row {rowid} has no header blob"),
            })?;
        let header = parse_header(blob).map_err(|e| SqliteError {
            page: None,
            message: format!("Packages row {rowid}: {e}"),
        })?;
        headers.push(header);
        Ok(())
    })
    .map_err(FactError::from)?;
    headers.sort();
    Ok(headers)
}

/// Berkeley DB page types and hash item types (db_page.h).
const BDB_HASH_MAGIC: u32 = 0x0006_1561;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;
const PAGE_HEADER: usize = 26;

/// A Berkeley DB hash file, in the byte order its metadata page says.
struct Bdb<'a> {
    file: &'a [u8],
    swapped: bool,
    page_size: usize,
    last_page: u32,
}

impl<'a> Bdb<'a> {
    fn u32_at(&self, bytes: &[u8], at: usize) -> u32 {
        let raw = array::<4>(bytes, at).unwrap_or_default();
        if self.swapped {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        }
    }

    fn u16_at(&self, bytes: &[u8], at: usize) -> u16 {
        let raw = array::<2>(bytes, at).unwrap_or_default();
        if self.swapped {
            u16::from_be_bytes(raw)
        } else {
            u16::from_le_bytes(raw)
        }
    }

    fn page(&self, number: u32) -> Result<&'a [u8], FactError> {
        if number == 0 || number > self.last_page {
            return Err(FactError::malformed(format!(
                "page {number} is out of range (1..={})",
                self.last_page
            )));
        }
        let start = usize::try_from(number)
            .ok()
            .and_then(|n| n.checked_mul(self.page_size))
            .ok_or_else(|| FactError::malformed("page offset overflows"))?;
        let page = self
            .file
            .get(start..start.saturating_add(self.page_size))
            .ok_or_else(|| {
                FactError::malformed(format!("page {number} lies past the end of the file"))
            })?;
        if self.u32_at(page, 8) != number {
            return Err(FactError::malformed(format!(
                "page {number} records page number {}",
                self.u32_at(page, 8)
            )));
        }
        Ok(page)
    }

    /// An item's bytes: inline, or gathered from its overflow chain.
    fn item(
        &self,
        page: &[u8],
        start: usize,
        end: usize,
        seen: &mut HashSet<u32>,
    ) -> Result<Vec<u8>, FactError> {
        let item = page
            .get(start..end)
            .ok_or_else(|| FactError::malformed("item outside its page"))?;
        match item.first() {
            Some(&H_KEYDATA) => Ok(item.get(1..).unwrap_or_default().to_vec()),
            Some(&H_OFFPAGE) => {
                let mut next = self.u32_at(item, 4);
                let total = usize::try_from(self.u32_at(item, 8)).unwrap_or(usize::MAX);
                if total > self.file.len() {
                    return Err(FactError::malformed(format!(
                        "overflow item of {total} bytes is larger than the file"
                    )));
                }
                let mut bytes = Vec::with_capacity(total.min(1 << 20));
                while bytes.len() < total {
                    if !seen.insert(next) {
                        return Err(FactError::malformed(format!(
                            "overflow page {next} reached twice"
                        )));
                    }
                    let page = self.page(next)?;
                    if page.get(25) != Some(&P_OVERFLOW) {
                        return Err(FactError::malformed(format!(
                            "page {next} is not an overflow page"
                        )));
                    }
                    let len = usize::from(self.u16_at(page, 22));
                    let chunk = page
                        .get(PAGE_HEADER..PAGE_HEADER.saturating_add(len))
                        .ok_or_else(|| {
                            FactError::malformed(format!("overflow page {next} claims {len} bytes"))
                        })?;
                    if len == 0 || len > total - bytes.len() {
                        return Err(FactError::malformed(format!(
                            "overflow page {next} holds {len} bytes, not what the chain needs"
                        )));
                    }
                    bytes.extend_from_slice(chunk);
                    next = self.u32_at(page, 16);
                }
                Ok(bytes)
            }
            Some(other) => Err(FactError::malformed(format!(
                "unsupported hash item type {other}"
            ))),
            None => Err(FactError::malformed("empty hash item")),
        }
    }
}

/// Every package header in a Berkeley DB hash `Packages` file (key: a 32-bit instance
/// number; value: the header blob). Walks each bucket's page chain from the metadata
/// page's bucket map, as Berkeley DB does.
pub fn read_bdb(file: &[u8]) -> Result<Vec<RpmHeader>, FactError> {
    let meta = file
        .get(..512)
        .ok_or_else(|| FactError::malformed("shorter than a Berkeley DB metadata page"))?;
    let magic = array::<4>(meta, 12).ok_or_else(|| FactError::malformed("truncated metadata"))?;
    let swapped = if u32::from_le_bytes(magic) == BDB_HASH_MAGIC {
        false
    } else if u32::from_be_bytes(magic) == BDB_HASH_MAGIC {
        true
    } else {
        return Err(FactError::malformed("not a Berkeley DB hash database"));
    };
    let mut db = Bdb {
        file,
        swapped,
        page_size: 0,
        last_page: 0,
    };
    let version = db.u32_at(meta, 16);
    if !(8..=10).contains(&version) {
        return Err(FactError::malformed(format!(
            "unsupported Berkeley DB hash version {version}"
        )));
    }
    if meta.get(25) != Some(&P_HASHMETA) {
        return Err(FactError::malformed(
            "first page is not a hash metadata page",
        ));
    }
    let page_size = usize::try_from(db.u32_at(meta, 20)).unwrap_or(0);
    if !page_size.is_power_of_two() || !(512..=65536).contains(&page_size) {
        return Err(FactError::malformed(format!(
            "invalid page size {page_size}"
        )));
    }
    db.page_size = page_size;
    let in_file = u32::try_from(file.len() / page_size).unwrap_or(u32::MAX);
    db.last_page = db.u32_at(meta, 32).min(in_file.saturating_sub(1));
    let max_bucket = db.u32_at(meta, 72);
    if max_bucket > db.last_page {
        return Err(FactError::malformed(format!(
            "{max_bucket} buckets in a file of {} pages",
            db.last_page
        )));
    }
    let spares: Vec<u32> = (0..32).map(|i| db.u32_at(meta, 96 + 4 * i)).collect();

    let mut seen: HashSet<u32> = HashSet::new();
    let mut headers = Vec::new();
    for bucket in 0..=max_bucket {
        let split_point = (u32::BITS - bucket.leading_zeros()) as usize;
        let spare = spares.get(split_point).copied().unwrap_or(0);
        let mut next = bucket
            .checked_add(spare)
            .ok_or_else(|| FactError::malformed("bucket page number overflows"))?;
        while next != 0 {
            if !seen.insert(next) {
                return Err(FactError::malformed(format!(
                    "hash page {next} reached twice"
                )));
            }
            let page = db.page(next)?;
            let kind = page.get(25).copied().unwrap_or(0);
            if kind != P_HASH && kind != P_HASH_UNSORTED {
                return Err(FactError::malformed(format!(
                    "bucket page {next} has type {kind}"
                )));
            }
            let entries = usize::from(db.u16_at(page, 20));
            let index_end = PAGE_HEADER + 2 * entries;
            if index_end > page_size {
                return Err(FactError::malformed(format!(
                    "page {next}: {entries} items do not fit"
                )));
            }
            let offset = |i: usize| usize::from(db.u16_at(page, PAGE_HEADER + 2 * i));
            for pair in 0..entries / 2 {
                let key_at = offset(2 * pair);
                let key_end = if pair == 0 {
                    page_size
                } else {
                    offset(2 * pair - 1)
                };
                let value_at = offset(2 * pair + 1);
                if value_at < index_end
                    || value_at >= key_at
                    || key_at >= key_end
                    || key_end > page_size
                {
                    return Err(FactError::malformed(format!(
                        "page {next}: item {} has bad offsets",
                        2 * pair
                    )));
                }
                let key = db.item(page, key_at, key_end, &mut seen)?;
                // Key 0 holds rpm's counter of instances, not a package.
                if key.len() == 4 && key.iter().all(|b| *b == 0) {
                    continue;
                }
                let value = db.item(page, value_at, key_at, &mut seen)?;
                let header = parse_header(&value)
                    .map_err(|e| FactError::malformed(format!("page {next}: {e}")))?;
                headers.push(header);
            }
            next = db.u32_at(page, 16);
        }
    }
    headers.sort();
    Ok(headers)
}

#[cfg(any(test, feature = "test-support"))]
/// Drives both readers from arbitrary bytes, for the fuzz target and the mutation tests:
/// the input is tried as an SQLite database — split at the first write-ahead-log magic,
/// if there is one, into the database and its log — as a Berkeley DB file, and as one
/// header blob. Returns the number of headers found.
pub fn exercise(bytes: &[u8]) -> usize {
    let log_at = bytes
        .windows(4)
        .position(|w| w == [0x37, 0x7f, 0x06, 0x82] || w == [0x37, 0x7f, 0x06, 0x83]);
    let (file, wal) = match log_at {
        Some(at) => (bytes.get(..at).unwrap_or_default(), bytes.get(at..)),
        None => (bytes, None),
    };
    let mut found = read_sqlite(file, wal).map_or(0, |h| h.len());
    found += read_bdb(bytes).map_or(0, |h| h.len());
    if let Ok(header) = parse_header(bytes) {
        found += usize::from(!header.name.is_empty());
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(entries: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, kind, value) in entries {
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&kind.to_be_bytes());
            index.extend_from_slice(&(data.len() as u32).to_be_bytes());
            index.extend_from_slice(&1u32.to_be_bytes());
            data.extend_from_slice(value);
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blob.extend(index);
        blob.extend(data);
        blob
    }

    #[test]
    fn header_fields_are_read() {
        let blob = header(&[
            (TAG_NAME, TYPE_STRING, b"bash\0"),
            (TAG_EPOCH, TYPE_INT32, &[0, 0, 0, 1]),
            (TAG_VERSION, TYPE_STRING, b"5.2\0"),
            (TAG_RELEASE, TYPE_STRING, b"3.fc40\0"),
        ]);
        let h = parse_header(&blob).unwrap();
        assert_eq!(h.name, "bash");
        assert_eq!(h.evr().as_deref(), Some("1:5.2-3.fc40"));
        assert!(parse_header(&blob[..blob.len() - 1]).is_err());
    }

    #[test]
    fn header_without_name_or_with_bad_offsets_is_refused() {
        let e = parse_header(&header(&[(TAG_VERSION, TYPE_STRING, b"1\0")])).unwrap_err();
        assert_eq!(e.kind, crate::facts::FactErrorKind::Malformed);
        assert_eq!(e.to_string(), "header has no package name");
        let mut blob = header(&[(TAG_NAME, TYPE_STRING, b"x\0")]);
        blob[8 + 8..8 + 12].copy_from_slice(&100u32.to_be_bytes());
        assert!(parse_header(&blob).is_err());
    }
}
