//! Arbitrary bytes as one file's content for the secret scanner, with the sample detector
//! set: magic-byte sniffing, gzip/xz/zstd decoding of damaged streams, binary detection,
//! chunked keyword search (also with tiny chunks and reads of 1 to 64 bytes), candidate
//! regions, regexes, allowlists and fingerprints (`amiscan::secrets::exercise`).
//!
//! Seeds (`corpus/secrets/`), from random keys of every kind generated once: a CRLF PEM
//! key in plain text; one key of each kind, gzip-compressed (`keys-text.gz`, and twice as
//! two members in `keys.gz`) so that the repository holds no plain-text token that hosting
//! services' secret scanning would flag; a log with a key compressed by gzip, xz and zstd.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    amiscan::secrets::exercise(data);
});
