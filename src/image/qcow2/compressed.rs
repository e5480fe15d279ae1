//! Compressed clusters: raw deflate or zstd, always decompressing to exactly one cluster.
//!
//! Decompressor state, the compressed-input buffer and a few recently decompressed
//! clusters are kept per thread, so a filesystem reading a compressed cluster 4 KiB at a
//! time decompresses it once, and threads never wait for one another here.

use std::cell::RefCell;
use std::io;

use flate2::{Decompress, FlushDecompress};
use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};

use super::header::Compression;
use crate::image::CorruptKind;

/// Bytes of decompressed clusters each thread keeps (at least one cluster).
const KEPT_BYTES: usize = 1 << 20;
/// At most this many clusters are kept per thread.
const KEPT_MAX: usize = 8;

/// Why a compressed cluster could not be read.
#[derive(Debug)]
pub enum Failure {
    Io(io::Error),
    /// The compressed data is not valid or does not make exactly one cluster.
    Corrupt(CorruptKind, String),
}

/// One compressed cluster to read.
pub struct Request {
    /// Identifies the image, so clusters of different images never mix.
    pub image: u64,
    pub coffset: u64,
    /// Compressed bytes to read (already clamped to the file).
    pub csize: usize,
    pub cluster_size: usize,
    pub kind: Compression,
}

struct Kept {
    image: u64,
    coffset: u64,
    used: u64,
    data: Vec<u8>,
}

#[derive(Default)]
struct State {
    inflate: Option<Decompress>,
    zstd: Option<Decoder<'static>>,
    input: Vec<u8>,
    kept: Vec<Kept>,
    tick: u64,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Copies bytes `within..within + out.len()` of the decompressed cluster into `out`;
/// `fetch` fills a buffer with the `csize` compressed bytes.
pub fn read(
    req: &Request,
    within: usize,
    out: &mut [u8],
    fetch: &dyn Fn(&mut [u8]) -> io::Result<()>,
) -> Result<(), Failure> {
    let mut result = None;
    // A thread being torn down, or (never expected) a nested call, gets fresh state.
    let _ = STATE.try_with(|cell| {
        if let Ok(mut state) = cell.try_borrow_mut() {
            result = Some(state.read(req, within, &mut *out, fetch));
        }
    });
    match result {
        Some(result) => result,
        None => State::default().read(req, within, out, fetch),
    }
}

impl State {
    fn read(
        &mut self,
        req: &Request,
        within: usize,
        out: &mut [u8],
        fetch: &dyn Fn(&mut [u8]) -> io::Result<()>,
    ) -> Result<(), Failure> {
        let end = within
            .checked_add(out.len())
            .filter(|&end| end <= req.cluster_size)
            .ok_or_else(|| {
                Failure::Corrupt(
                    CorruptKind::OutOfRange,
                    "read past the end of the cluster".into(),
                )
            })?;
        self.tick += 1;
        let tick = self.tick;
        // A whole cluster goes straight to the caller's buffer.
        if within == 0 && out.len() == req.cluster_size {
            self.fetch(req, fetch)?;
            return decompress(
                &mut self.inflate,
                &mut self.zstd,
                req.kind,
                &self.input,
                out,
            );
        }
        if let Some(kept) = self
            .kept
            .iter_mut()
            .find(|k| k.image == req.image && k.coffset == req.coffset)
        {
            kept.used = tick;
            let part = kept.data.get(within..end).ok_or_else(|| {
                Failure::Corrupt(CorruptKind::Truncated, "kept cluster is short".into())
            })?;
            out.copy_from_slice(part);
            return Ok(());
        }
        self.fetch(req, fetch)?;
        let slots = (KEPT_BYTES / req.cluster_size).clamp(1, KEPT_MAX);
        let slot = if self.kept.len() < slots {
            self.kept.push(Kept {
                image: req.image,
                coffset: req.coffset,
                used: tick,
                data: Vec::new(),
            });
            self.kept.len() - 1
        } else {
            self.kept
                .iter()
                .enumerate()
                .min_by_key(|(_, k)| k.used)
                .map_or(0, |(i, _)| i)
        };
        let Some(kept) = self.kept.get_mut(slot) else {
            return Err(Failure::Corrupt(
                CorruptKind::Invalid,
                "no cluster slot".into(),
            ));
        };
        // Invalid until decompressed.
        kept.image = u64::MAX;
        kept.data.resize(req.cluster_size, 0);
        decompress(
            &mut self.inflate,
            &mut self.zstd,
            req.kind,
            &self.input,
            &mut kept.data,
        )?;
        kept.image = req.image;
        kept.coffset = req.coffset;
        kept.used = tick;
        let part = kept.data.get(within..end).ok_or_else(|| {
            Failure::Corrupt(CorruptKind::Truncated, "kept cluster is short".into())
        })?;
        out.copy_from_slice(part);
        Ok(())
    }

    fn fetch(
        &mut self,
        req: &Request,
        fetch: &dyn Fn(&mut [u8]) -> io::Result<()>,
    ) -> Result<(), Failure> {
        self.input.resize(req.csize, 0);
        fetch(&mut self.input).map_err(Failure::Io)
    }
}

/// Decompresses `input` into all of `out`; anything else (less output, or a stream that
/// goes on past it) is corrupt, as qemu treats it.
fn decompress(
    inflate: &mut Option<Decompress>,
    zstd: &mut Option<Decoder<'static>>,
    kind: Compression,
    input: &[u8],
    out: &mut [u8],
) -> Result<(), Failure> {
    match kind {
        Compression::Deflate => {
            let inflate = inflate.get_or_insert_with(|| Decompress::new(false));
            inflate.reset(false);
            inflate
                .decompress(input, out, FlushDecompress::Finish)
                .map_err(|e| {
                    Failure::Corrupt(
                        CorruptKind::Invalid,
                        format!("deflate data is corrupt: {e}"),
                    )
                })?;
            let produced = inflate.total_out();
            if produced != out.len() as u64 {
                return Err(Failure::Corrupt(
                    CorruptKind::Invalid,
                    format!(
                        "deflate data ({} bytes) decompresses to {produced} bytes, not a \
                     {}-byte cluster",
                        input.len(),
                        out.len()
                    ),
                ));
            }
            Ok(())
        }
        Compression::Zstd => {
            let decoder = match zstd {
                Some(decoder) => decoder,
                None => zstd.insert(Decoder::new().map_err(|e| {
                    Failure::Io(io::Error::other(format!("cannot start zstd: {e}")))
                })?),
            };
            decoder
                .reinit()
                .map_err(|e| Failure::Io(io::Error::other(format!("cannot reset zstd: {e}"))))?;
            let wanted = out.len();
            let mut src = InBuffer::around(input);
            let mut dst = OutBuffer::around(out);
            let mut remaining_hint = 1;
            // Every pass consumes input or produces output (else it stops), so this bound
            // is never the reason the loop ends on valid data.
            let passes = input.len() + wanted + 2;
            for _ in 0..passes {
                if dst.pos() >= wanted {
                    break;
                }
                let before = (src.pos(), dst.pos());
                remaining_hint = decoder.run(&mut src, &mut dst).map_err(|e| {
                    Failure::Corrupt(CorruptKind::Invalid, format!("zstd data is corrupt: {e}"))
                })?;
                if (src.pos(), dst.pos()) == before {
                    break;
                }
            }
            let produced = dst.pos();
            if produced != wanted {
                return Err(Failure::Corrupt(
                    CorruptKind::Invalid,
                    format!(
                        "zstd data ({} bytes) decompresses to {produced} bytes, not a \
                     {wanted}-byte cluster",
                        input.len()
                    ),
                ));
            }
            if remaining_hint != 0 {
                return Err(Failure::Corrupt(
                    CorruptKind::TooLarge,
                    format!("zstd frame goes on past the {wanted}-byte cluster"),
                ));
            }
            Ok(())
        }
    }
}
