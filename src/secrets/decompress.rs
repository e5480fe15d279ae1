//! Compressed file content, recognised by magic bytes (never by name): gzip (every member),
//! xz (every stream) and zstd (every frame), each turned into a plain `Read` of the content.
//!
//! Memory is bounded whatever a header claims: deflate needs a 32 KiB window; the xz
//! dictionary is capped at 64 MiB (the largest preset, `xz -9`) and zstd's window at
//! 128 MiB (its own default limit), both allocated zeroed or filled as output is made, so
//! resident memory follows the bytes actually decoded, which the caller caps. The caller
//! reads at most `max_bytes` of output; a corrupt stream is a read error the caller turns
//! into a truncated scan.

use std::io::{self, Read};

use xz4rust::{XzDecoder, XzError, XzNextBlockResult};

/// Bytes needed to recognise every format.
pub const MAGIC_LEN: usize = 6;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b, 0x08];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// The largest xz dictionary accepted: `xz -9` and `xz -e` use 64 MiB.
const XZ_MAX_DICT: usize = 64 << 20;
/// zstd's own default limit (2^27); larger windows need `--long` on both sides.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;
/// Compressed bytes read ahead by the xz reader.
const XZ_INPUT: usize = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    pub fn sniff(header: &[u8]) -> Option<Self> {
        if header.starts_with(GZIP_MAGIC) {
            Some(Compression::Gzip)
        } else if header.starts_with(XZ_MAGIC) {
            Some(Compression::Xz)
        } else if header.starts_with(ZSTD_MAGIC) {
            Some(Compression::Zstd)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }

    /// A reader of the decompressed content of `raw`.
    pub fn decoder<'a, R: Read + 'a>(self, raw: R) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
            Compression::Xz => Box::new(XzRead::new(raw)),
            Compression::Zstd => {
                let mut decoder = zstd::stream::read::Decoder::new(raw)?;
                decoder.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
                Box::new(decoder)
            }
        })
    }
}

/// Wraps the file's reader and keeps its first error, so that a failed read of the file
/// can be told apart from damaged compressed data when a decoder reports either.
pub struct Tracked<'a> {
    inner: &'a mut dyn Read,
    error: Option<io::Error>,
}

impl<'a> Tracked<'a> {
    pub fn new(inner: &'a mut dyn Read) -> Self {
        Tracked { inner, error: None }
    }

    pub fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }
}

impl Read for Tracked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.error.get_or_insert(e);
                Err(copy)
            }
            other => other,
        }
    }
}

/// xz4rust's push decoder as a `Read`, over every stream of a concatenated file (with the
/// zero padding the format allows between streams).
struct XzRead<R> {
    inner: R,
    decoder: Box<XzDecoder<'static>>,
    input: Box<[u8]>,
    start: usize,
    end: usize,
    input_done: bool,
    /// The last stream ended: skip padding, then start another or stop.
    between_streams: bool,
    finished: bool,
}

fn damaged(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("xz: {what}"))
}

impl<R: Read> XzRead<R> {
    fn new(inner: R) -> Self {
        XzRead {
            inner,
            // No dictionary up front: it is allocated (zeroed, so untouched pages cost no
            // memory) once a block header says how large it must be, up to the cap.
            decoder: XzDecoder::in_heap_with_alloc_dict_size(0, XZ_MAX_DICT),
            input: vec![0; XZ_INPUT].into_boxed_slice(),
            start: 0,
            end: 0,
            input_done: false,
            between_streams: false,
            finished: false,
        }
    }

    /// Moves unread input to the front and reads more after it; false at the end of input.
    fn refill(&mut self) -> io::Result<bool> {
        if self.input_done {
            return Ok(false);
        }
        self.input.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        let Some(room) = self.input.get_mut(self.end..) else {
            return Ok(false);
        };
        if room.is_empty() {
            return Err(damaged("a header does not fit the input buffer"));
        }
        loop {
            match self.inner.read(room) {
                Ok(0) => {
                    self.input_done = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n.min(room.len());
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Skips stream padding; true if another stream follows.
    fn next_stream(&mut self) -> io::Result<bool> {
        loop {
            let pending = self.input.get(self.start..self.end).unwrap_or_default();
            match pending.iter().position(|&b| b != 0) {
                Some(at) => {
                    self.start += at;
                    return Ok(true);
                }
                None => {
                    self.start = self.end;
                    if !self.refill()? {
                        return Ok(false);
                    }
                }
            }
        }
    }
}

impl<R: Read> Read for XzRead<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() || self.finished {
            return Ok(0);
        }
        loop {
            if self.between_streams {
                if !self.next_stream()? {
                    self.finished = true;
                    return Ok(0);
                }
                self.decoder.reset();
                self.between_streams = false;
            }
            if self.start == self.end && !self.refill()? {
                return Err(damaged("the stream ends early"));
            }
            let input = self.input.get(self.start..self.end).unwrap_or_default();
            match self.decoder.decode(input, out) {
                Ok(XzNextBlockResult::NeedMoreData(used, made)) => {
                    self.start = self.start.saturating_add(used).min(self.end);
                    if made > 0 {
                        return Ok(made.min(out.len()));
                    }
                    if used == 0 && !self.refill()? {
                        return Err(damaged("the stream ends early"));
                    }
                }
                Ok(XzNextBlockResult::EndOfStream(used, made)) => {
                    self.start = self.start.saturating_add(used).min(self.end);
                    self.between_streams = true;
                    if made > 0 {
                        return Ok(made.min(out.len()));
                    }
                }
                Err(XzError::NeedsLargerInputBuffer) => {
                    if !self.refill()? {
                        return Err(damaged("the stream ends early"));
                    }
                }
                Err(e) => return Err(damaged(&e.to_string())),
            }
        }
    }
}
