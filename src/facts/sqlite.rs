//! A small read-only reader of the SQLite 3 file format: the database header, table
//! b-trees, overflow chains, records, and the committed frames of a write-ahead log. It
//! reads rows of whole tables (enough for rpm's `rpmdb.sqlite`); it does not read index
//! b-trees, run SQL, or write anything.
//!
//! The bytes come from a guest image and are hostile: every page number is checked against
//! the page count, every offset against the page, every b-tree walk is bounded in depth
//! and refuses to visit a page twice, and no buffer is sized from an unchecked length.
//! Format reference: <https://www.sqlite.org/fileformat2.html>.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::bytes::array;

/// b-trees deeper than this are corrupt: SQLite itself never builds one past about 20
/// levels even with 512-byte pages and enormous keys.
const MAX_DEPTH: usize = 40;

const HEADER_MAGIC: &[u8; 16] = b"SQLite format 3\0";
const WAL_MAGIC_LE: u32 = 0x377f_0682;
const WAL_MAGIC_BE: u32 = 0x377f_0683;
const WAL_HEADER: usize = 32;
const WAL_FRAME_HEADER: usize = 24;

/// Page types, from the first byte of a b-tree page header.
const INTERIOR_TABLE: u8 = 5;
const LEAF_TABLE: u8 = 13;

/// What is wrong with a database file, naming the page (1-based) when one is involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", page.map(|p| format!("page {p}: ")).unwrap_or_default())]
pub struct SqliteError {
    pub page: Option<u32>,
    pub message: String,
}

/// The package readers report a broken database like any other undecodable bytes.
impl From<SqliteError> for super::FactError {
    fn from(error: SqliteError) -> Self {
        Self::malformed(error.to_string())
    }
}

impl SqliteError {
    fn file(message: impl Into<String>) -> Self {
        Self {
            page: None,
            message: message.into(),
        }
    }

    fn page(page: u32, message: impl Into<String>) -> Self {
        Self {
            page: Some(page),
            message: message.into(),
        }
    }
}

/// Called with each row's rowid and record payload; an error stops the scan.
pub type RowVisitor<'v> = dyn FnMut(i64, &[u8]) -> Result<(), SqliteError> + 'v;

/// One column value of a record. Text is kept as bytes: the file's encoding is checked to
/// be UTF-8 when the database is opened, but a hostile file may still hold invalid bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a [u8]),
    Blob(&'a [u8]),
}

impl Value<'_> {
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Value::Integer(v) => Some(*v),
            _ => None,
        }
    }

    /// Text or blob bytes.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Text(b) | Value::Blob(b) => Some(b),
            _ => None,
        }
    }
}

/// An open database: the main file's bytes plus, when a write-ahead log was given, the
/// newest committed copy of each page it holds.
#[derive(Debug)]
pub struct Database<'a> {
    file: &'a [u8],
    page_size: usize,
    usable: usize,
    page_count: u32,
    wal_pages: HashMap<u32, &'a [u8]>,
}

impl<'a> Database<'a> {
    /// Opens the database in `file`; `wal` is the `-wal` file beside it, if any (an empty
    /// or invalid log holds no committed transaction and is ignored, as SQLite does).
    pub fn open(file: &'a [u8], wal: Option<&'a [u8]>) -> Result<Self, SqliteError> {
        if file.get(..16) != Some(HEADER_MAGIC.as_slice()) {
            return Err(SqliteError::file("not an SQLite 3 database (bad magic)"));
        }
        let header = file
            .get(..100)
            .ok_or_else(|| SqliteError::file("truncated database header"))?;
        let raw_size = u16_be(header, 16);
        let page_size = if raw_size == 1 {
            65536
        } else {
            usize::from(raw_size)
        };
        if !page_size.is_power_of_two() || !(512..=65536).contains(&page_size) {
            return Err(SqliteError::file(format!("invalid page size {raw_size}")));
        }
        let reserved = usize::from(header.get(20).copied().unwrap_or(0));
        let usable = page_size.saturating_sub(reserved);
        // The format requires at least 480 usable bytes; the overflow arithmetic relies on it.
        if usable < 480 {
            return Err(SqliteError::file(format!(
                "usable page size {usable} is below the format's minimum of 480"
            )));
        }
        let encoding = u32_be(header, 56);
        if encoding > 1 {
            return Err(SqliteError::file(format!(
                "text encoding {encoding} (UTF-16) is not supported"
            )));
        }
        let file_pages = u32::try_from(file.len() / page_size).unwrap_or(u32::MAX);
        // The header's size is only trusted when written by a version that maintains it.
        let header_pages = u32_be(header, 28);
        let mut page_count = if header_pages != 0 && u32_be(header, 24) == u32_be(header, 92) {
            header_pages.min(file_pages)
        } else {
            file_pages
        };
        let mut wal_pages = HashMap::new();
        if let Some(wal) = wal {
            if let Some((pages, committed_size)) = read_wal(wal, page_size)? {
                wal_pages = pages;
                page_count = committed_size;
            }
        }
        if page_count == 0 {
            return Err(SqliteError::file("database holds no pages"));
        }
        Ok(Self {
            file,
            page_size,
            usable,
            page_count,
            wal_pages,
        })
    }

    pub fn page_count(&self) -> u32 {
        self.page_count
    }

    /// The usable bytes of page `number` (1-based).
    fn page(&self, number: u32) -> Result<&'a [u8], SqliteError> {
        if number == 0 || number > self.page_count {
            return Err(SqliteError::page(
                number,
                format!("page number out of range (1..={})", self.page_count),
            ));
        }
        if let Some(page) = self.wal_pages.get(&number) {
            return page
                .get(..self.usable)
                .ok_or_else(|| SqliteError::page(number, "short page in the write-ahead log"));
        }
        let start = usize::try_from(number - 1)
            .ok()
            .and_then(|n| n.checked_mul(self.page_size))
            .ok_or_else(|| SqliteError::page(number, "page offset overflows"))?;
        let end = start
            .checked_add(self.usable)
            .ok_or_else(|| SqliteError::page(number, "page offset overflows"))?;
        self.file
            .get(start..end)
            .ok_or_else(|| SqliteError::page(number, "page lies past the end of the file"))
    }

    /// The root page of the table called `name` (compared ASCII case-insensitively, as
    /// SQL identifiers are), from the schema table.
    pub fn table_root(&self, name: &str) -> Result<Option<u32>, SqliteError> {
        let mut found = None;
        self.scan_table(1, &mut |_, payload| {
            let values = parse_record(payload)?;
            let kind = values.first().and_then(Value::as_bytes);
            let table = values.get(1).and_then(Value::as_bytes);
            if kind == Some(b"table".as_slice())
                && table.is_some_and(|t| t.eq_ignore_ascii_case(name.as_bytes()))
            {
                let root = values.get(3).and_then(Value::as_integer);
                let root = root
                    .and_then(|r| u32::try_from(r).ok())
                    .filter(|r| *r != 0)
                    .ok_or_else(|| SqliteError::page(1, format!("table {name}: bad root page")))?;
                found = Some(root);
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// Calls `visit` with the rowid and the whole record payload of every row of the table
    /// b-tree rooted at `root`, in rowid order. Stops at the first error `visit` returns.
    pub fn scan_table(&self, root: u32, visit: &mut RowVisitor<'_>) -> Result<(), SqliteError> {
        let mut seen = vec![
            false;
            usize::try_from(self.page_count)
                .unwrap_or(usize::MAX)
                .saturating_add(1)
        ];
        // Children are pushed in reverse so they pop in key order; the depth rides along.
        let mut stack: Vec<(u32, usize)> = vec![(root, 0)];
        while let Some((number, depth)) = stack.pop() {
            if depth > MAX_DEPTH {
                return Err(SqliteError::page(
                    number,
                    "b-tree is deeper than any real one",
                ));
            }
            let slot = seen
                .get_mut(usize::try_from(number).unwrap_or(usize::MAX))
                .ok_or_else(|| SqliteError::page(number, "page number out of range"))?;
            if *slot {
                return Err(SqliteError::page(
                    number,
                    "page reached twice (a cycle in the b-tree)",
                ));
            }
            *slot = true;
            let page = self.page(number)?;
            let header_at = if number == 1 { 100 } else { 0 };
            let kind = *page
                .get(header_at)
                .ok_or_else(|| SqliteError::page(number, "truncated page header"))?;
            let cells = cell_offsets(page, header_at, kind, number)?;
            match kind {
                LEAF_TABLE => {
                    for at in cells {
                        let (rowid, payload) = self.leaf_cell(page, at, number, &mut seen)?;
                        visit(rowid, &payload)?;
                    }
                }
                INTERIOR_TABLE => {
                    let right = u32_be(page, header_at + 8);
                    stack.push((right, depth + 1));
                    let mut children = Vec::with_capacity(cells.len());
                    for at in cells {
                        let child = array::<4>(page, at)
                            .map(u32::from_be_bytes)
                            .ok_or_else(|| SqliteError::page(number, "truncated interior cell"))?;
                        children.push(child);
                    }
                    stack.extend(children.into_iter().rev().map(|c| (c, depth + 1)));
                }
                other => {
                    return Err(SqliteError::page(
                        number,
                        format!("expected a table b-tree page, found type {other}"),
                    ))
                }
            }
        }
        Ok(())
    }

    /// A table leaf cell at `at`: its rowid and whole payload (gathered from overflow pages
    /// when it does not fit on the page).
    fn leaf_cell(
        &self,
        page: &'a [u8],
        at: usize,
        number: u32,
        seen: &mut [bool],
    ) -> Result<(i64, Cow<'a, [u8]>), SqliteError> {
        let bad = |what: &str| SqliteError::page(number, format!("cell at offset {at}: {what}"));
        let (size, n1) = varint(page, at).ok_or_else(|| bad("truncated payload size"))?;
        let (rowid, n2) = varint(page, at + n1).ok_or_else(|| bad("truncated rowid"))?;
        let start = at + n1 + n2;
        let usable = self.usable;
        // A payload can never be larger than the database holding it.
        let total_bytes = u64::from(self.page_count).saturating_mul(self.page_size as u64);
        if size > total_bytes {
            return Err(bad("payload larger than the whole database"));
        }
        let size = usize::try_from(size).map_err(|_| bad("payload size overflows"))?;
        let local = local_payload(size, usable);
        let here = page
            .get(start..start.saturating_add(local))
            .ok_or_else(|| bad("payload runs past the end of the page"))?;
        if local == size {
            return Ok((rowid as i64, Cow::Borrowed(here)));
        }
        let mut next = array::<4>(page, start + local)
            .map(u32::from_be_bytes)
            .ok_or_else(|| bad("truncated overflow page number"))?;
        let mut payload = Vec::with_capacity(size.min(1 << 20));
        payload.extend_from_slice(here);
        while payload.len() < size {
            let slot = seen
                .get_mut(usize::try_from(next).unwrap_or(usize::MAX))
                .ok_or_else(|| SqliteError::page(next, "overflow page number out of range"))?;
            if *slot {
                return Err(SqliteError::page(next, "overflow page reached twice"));
            }
            *slot = true;
            let overflow = self.page(next)?;
            let content = overflow
                .get(4..)
                .ok_or_else(|| SqliteError::page(next, "truncated overflow page"))?;
            let take = content.len().min(size - payload.len());
            payload.extend_from_slice(content.get(..take).unwrap_or_default());
            next = u32_be(overflow, 0);
            if payload.len() < size && next == 0 {
                return Err(SqliteError::page(
                    number,
                    "overflow chain ends before the payload does",
                ));
            }
        }
        Ok((rowid as i64, Cow::Owned(payload)))
    }
}

/// The cell offsets of a b-tree page, each checked to lie in the page's content area.
fn cell_offsets(
    page: &[u8],
    header_at: usize,
    kind: u8,
    number: u32,
) -> Result<Vec<usize>, SqliteError> {
    let header_len = match kind {
        LEAF_TABLE | 10 => 8,
        INTERIOR_TABLE | 2 => 12,
        other => {
            return Err(SqliteError::page(
                number,
                format!("not a b-tree page (type {other})"),
            ));
        }
    };
    let count = usize::from(u16_be(page, header_at + 3));
    let pointers = header_at + header_len;
    let content_min = pointers + 2 * count;
    if content_min > page.len() {
        return Err(SqliteError::page(
            number,
            format!("{count} cells do not fit on the page"),
        ));
    }
    let mut offsets = Vec::with_capacity(count);
    for i in 0..count {
        let at = usize::from(u16_be(page, pointers + 2 * i));
        if at < content_min || at >= page.len() {
            return Err(SqliteError::page(
                number,
                format!("cell pointer {i} ({at}) is outside the content area"),
            ));
        }
        offsets.push(at);
    }
    Ok(offsets)
}

/// How much of a table leaf payload of `size` bytes is stored on the page itself.
fn local_payload(size: usize, usable: usize) -> usize {
    let max_local = usable - 35;
    if size <= max_local {
        return size;
    }
    let min_local = (usable - 12) * 32 / 255 - 23;
    let surplus = min_local + (size - min_local) % (usable - 4);
    if surplus <= max_local {
        surplus
    } else {
        min_local
    }
}

/// A record's column values. Values borrow from `payload`.
pub fn parse_record(payload: &[u8]) -> Result<Vec<Value<'_>>, SqliteError> {
    let bad = |what: &str| SqliteError::file(format!("record: {what}"));
    let (header_len, mut at) = varint(payload, 0).ok_or_else(|| bad("truncated header size"))?;
    let header_len = usize::try_from(header_len)
        .ok()
        .filter(|h| *h <= payload.len() && *h >= at)
        .ok_or_else(|| bad("header size outside the record"))?;
    let mut body = header_len;
    let mut values = Vec::new();
    while at < header_len {
        let (serial, n) = varint(payload, at).ok_or_else(|| bad("truncated serial type"))?;
        at += n;
        let len = match serial {
            0 | 8 | 9 => 0,
            1..=4 => serial as usize,
            5 => 6,
            6 | 7 => 8,
            10 | 11 => return Err(bad("reserved serial type")),
            n => usize::try_from((n - 12) / 2).map_err(|_| bad("value length overflows"))?,
        };
        let end = body
            .checked_add(len)
            .filter(|e| *e <= payload.len())
            .ok_or_else(|| bad("value runs past the end of the record"))?;
        let bytes = payload.get(body..end).unwrap_or_default();
        body = end;
        values.push(match serial {
            0 => Value::Null,
            8 => Value::Integer(0),
            9 => Value::Integer(1),
            1..=6 => Value::Integer(signed_be(bytes)),
            7 => Value::Real(f64::from_bits(signed_be(bytes) as u64)),
            n if n % 2 == 0 => Value::Blob(bytes),
            _ => Value::Text(bytes),
        });
    }
    Ok(values)
}

/// A big-endian two's-complement integer of 1 to 8 bytes.
fn signed_be(bytes: &[u8]) -> i64 {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let start: u64 = if negative { u64::MAX } else { 0 };
    bytes
        .iter()
        .fold(start, |acc, b| (acc << 8) | u64::from(*b)) as i64
}

/// An SQLite varint at `at`: its value and length (1..=9 bytes).
pub fn varint(bytes: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for i in 0..9 {
        let byte = *bytes.get(at.checked_add(i)?)?;
        if i == 8 {
            return Some(((value << 8) | u64::from(byte), 9));
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn u16_be(bytes: &[u8], at: usize) -> u16 {
    array(bytes, at).map_or(0, u16::from_be_bytes)
}

fn u32_be(bytes: &[u8], at: usize) -> u32 {
    array(bytes, at).map_or(0, u32::from_be_bytes)
}

/// The pages of the last committed transaction in a write-ahead log, and the database size
/// it committed; `None` when the log holds no valid commit. Frames are valid while their
/// salts match the header and the running checksum matches, exactly as SQLite recovers a
/// log without its shared-memory index.
#[allow(clippy::type_complexity)]
fn read_wal(
    wal: &[u8],
    page_size: usize,
) -> Result<Option<(HashMap<u32, &[u8]>, u32)>, SqliteError> {
    let Some(header) = wal.get(..WAL_HEADER) else {
        return Ok(None);
    };
    let magic = u32_be(header, 0);
    let big_endian = match magic {
        WAL_MAGIC_LE => false,
        WAL_MAGIC_BE => true,
        _ => return Ok(None),
    };
    let wal_page_size = usize::try_from(u32_be(header, 8)).unwrap_or(0);
    let wal_page_size = if wal_page_size == 1 {
        65536
    } else {
        wal_page_size
    };
    if wal_page_size != page_size {
        // SQLite ignores a log whose page size differs from the database's.
        return Ok(None);
    }
    let salt = (u32_be(header, 16), u32_be(header, 20));
    let mut sum = wal_checksum((0, 0), header.get(..24).unwrap_or_default(), big_endian);
    if sum != (u32_be(header, 24), u32_be(header, 28)) {
        return Ok(None);
    }
    let frame_len = WAL_FRAME_HEADER + page_size;
    let mut pending: Vec<(u32, &[u8])> = Vec::new();
    let mut committed: HashMap<u32, &[u8]> = HashMap::new();
    let mut committed_size = None;
    for frame in wal
        .get(WAL_HEADER..)
        .unwrap_or_default()
        .chunks_exact(frame_len)
    {
        let page_number = u32_be(frame, 0);
        let size_after = u32_be(frame, 4);
        if (u32_be(frame, 8), u32_be(frame, 12)) != salt || page_number == 0 {
            break;
        }
        let data = frame.get(WAL_FRAME_HEADER..).unwrap_or_default();
        sum = wal_checksum(sum, frame.get(..8).unwrap_or_default(), big_endian);
        sum = wal_checksum(sum, data, big_endian);
        if sum != (u32_be(frame, 16), u32_be(frame, 20)) {
            break;
        }
        pending.push((page_number, data));
        if size_after != 0 {
            committed.extend(pending.drain(..));
            committed_size = Some(size_after);
        }
    }
    Ok(committed_size.map(|size| {
        committed.retain(|page, _| *page <= size);
        (committed, size)
    }))
}

/// SQLite's log checksum: pairs of 32-bit words, in the byte order the magic names.
fn wal_checksum(mut sum: (u32, u32), bytes: &[u8], big_endian: bool) -> (u32, u32) {
    for pair in bytes.chunks_exact(8) {
        let word = |at: usize| {
            let b = array::<4>(pair, at).unwrap_or_default();
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        sum.0 = sum.0.wrapping_add(word(0)).wrapping_add(sum.1);
        sum.1 = sum.1.wrapping_add(word(4)).wrapping_add(sum.0);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_follow_the_format() {
        assert_eq!(varint(&[0x05], 0), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00], 0), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9], 0), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81], 0), None);
    }

    #[test]
    fn local_payload_matches_the_spec_examples() {
        // 4096-byte pages: up to 4061 bytes stay local.
        assert_eq!(local_payload(4061, 4096), 4061);
        // Just too big: the minimum stays local, the rest overflows.
        assert_eq!(local_payload(4062, 4096), 489);
        // 5000 bytes: 489 + (5000 - 489) % 4092 = 908 fits, so 908 stay local.
        assert_eq!(local_payload(5000, 4096), 908);
    }

    #[test]
    fn records_decode_every_serial_type() {
        // header: len 7; types NULL, i8, text(3), blob(2), const 1, f64
        let mut rec = vec![7, 0, 1, 19, 16, 9, 7];
        rec.push(0xfe);
        rec.extend_from_slice(b"abc");
        rec.extend_from_slice(&[1, 2]);
        rec.extend_from_slice(&1.5f64.to_bits().to_be_bytes());
        let values = parse_record(&rec).unwrap();
        assert_eq!(
            values,
            vec![
                Value::Null,
                Value::Integer(-2),
                Value::Text(b"abc"),
                Value::Blob(&[1, 2]),
                Value::Integer(1),
                Value::Real(1.5)
            ]
        );
        assert!(parse_record(&rec[..rec.len() - 1]).is_err());
    }
}
