//! Tests of the secret scanner. Keys are generated at run time from a fixed seed, so the
//! sources hold no string that looks like a live credential.

use std::io::{self, Read, Write};

use super::tests_support::Dribble;
use super::*;

// Indices into `sample_detectors()`.
const AWS_ID: usize = 0;
const AWS_SECRET: usize = 1;
const PEM: usize = 2;
const PUTTY: usize = 3;
const GITHUB: usize = 4;
const GITHUB_PAT: usize = 5;
const GITLAB: usize = 6;
const SLACK: usize = 7;
const STRIPE: usize = 8;
const GOOGLE_API: usize = 9;
const SENDGRID: usize = 10;
const NPM: usize = 11;
const PYPI: usize = 12;
const VAULT: usize = 13;
const AZURE: usize = 14;
const TWILIO: usize = 15;
const GCP_SA: usize = 16;

fn scanner() -> Scanner {
    Scanner::new(&sample_detectors()).unwrap()
}

fn limits() -> Limits {
    Limits {
        max_bytes: 64 << 20,
        decompress: true,
    }
}

fn scan(scanner: &Scanner, bytes: &[u8]) -> FileScan {
    let mut reader = bytes;
    scanner.scan(&mut reader, &limits()).unwrap()
}

fn small(scanner: &Scanner, bytes: &[u8]) -> FileScan {
    let mut reader = Dribble::new(bytes);
    let geometry = Geometry {
        chunk: 61,
        context: 4096,
    };
    scanner
        .scan_with(&mut reader, &limits(), geometry, None)
        .unwrap()
}

fn kinds(scan: &FileScan) -> Vec<(usize, u64)> {
    scan.hits.iter().map(|h| (h.detector, h.line)).collect()
}

/// A deterministic generator of key-like strings.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick(&mut self, alphabet: &str, n: usize) -> String {
        let chars: Vec<char> = alphabet.chars().collect();
        (0..n)
            .map(|_| chars[(self.next() % chars.len() as u64) as usize])
            .collect()
    }
}

const UPPER32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URLSAFE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const HEX: &str = "0123456789abcdef";

fn aws_id(rng: &mut Rng) -> String {
    format!("AKIA{}", rng.pick(UPPER32, 16))
}

/// One line per detector that must fire, with its detector index.
fn positives(rng: &mut Rng) -> Vec<(usize, String)> {
    vec![
        (AWS_ID, format!("aws_access_key_id = {}", aws_id(rng))),
        (
            AWS_SECRET,
            format!("aws_secret_access_key = {}", rng.pick(B64, 40)),
        ),
        (
            PEM,
            format!(
                "-----BEGIN RSA PRIVATE KEY-----\n{}\n{}\n-----END RSA PRIVATE KEY-----",
                rng.pick(B64, 64),
                rng.pick(B64, 64)
            ),
        ),
        (
            PUTTY,
            format!(
                "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: k\nPublic-Lines: 2\n{}\n{}\nPrivate-Lines: 1\n{}\nPrivate-MAC: {}",
                rng.pick(B64, 64),
                rng.pick(B64, 20),
                rng.pick(B64, 44),
                rng.pick(HEX, 64)
            ),
        ),
        (GITHUB, format!("token: ghp_{}", rng.pick(ALNUM, 36))),
        (
            GITHUB_PAT,
            format!("GH=github_pat_{}", rng.pick(ALNUM, 82)),
        ),
        (GITLAB, format!("export T=glpat-{}", rng.pick(URLSAFE, 20))),
        (
            SLACK,
            format!(
                "slack: xoxb-{}-{}-{}",
                rng.pick("0123456789", 11),
                rng.pick("0123456789", 12),
                rng.pick(ALNUM, 24)
            ),
        ),
        (STRIPE, format!("STRIPE=sk_live_{}", rng.pick(ALNUM, 24))),
        (GOOGLE_API, format!("key=AIza{}&x", rng.pick(URLSAFE, 35))),
        (
            SENDGRID,
            format!(
                "SENDGRID=SG.{}.{}",
                rng.pick(URLSAFE, 22),
                rng.pick(URLSAFE, 43)
            ),
        ),
        (NPM, format!("//registry.npmjs.org/:_authToken=npm_{}", rng.pick(ALNUM, 36))),
        (
            PYPI,
            format!("password = pypi-AgEIcHlwaS5vcmc{}", rng.pick(URLSAFE, 60)),
        ),
        (VAULT, format!("VAULT_TOKEN=hvs.{}", rng.pick(URLSAFE, 24))),
        (
            AZURE,
            format!(
                "DefaultEndpointsProtocol=https;AccountName=a;AccountKey={}==;",
                rng.pick(B64, 86)
            ),
        ),
        (TWILIO, format!("TWILIO_KEY=SK{}", rng.pick(HEX, 32))),
        (
            GCP_SA,
            format!(
                "{{\n  \"type\": \"service_account\",\n  \"private_key_id\": \"{}\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIE\\n\"\n}}",
                rng.pick(HEX, 40)
            ),
        ),
    ]
}

#[test]
fn every_sample_detector_fires_once_on_its_positive() {
    let scanner = scanner();
    let mut rng = Rng(0x5eed);
    let cases = positives(&mut rng);
    assert_eq!(cases.len(), sample_detectors().len());
    for (detector, line) in cases {
        let found = scan(&scanner, line.as_bytes());
        // The service-account JSON also holds a PEM header.
        let expected: Vec<usize> = if detector == GCP_SA {
            vec![GCP_SA, PEM]
        } else {
            vec![detector]
        };
        let got: Vec<usize> = found.hits.iter().map(|h| h.detector).collect();
        assert_eq!(got, expected, "{line}: {found:?}");
    }
}

#[test]
fn sample_detectors_ignore_near_misses() {
    let scanner = scanner();
    let mut rng = Rng(7);
    let misses = [
        // Keyword present, pattern not.
        "the AKIA prefix names an access key".to_string(),
        "task disk ask SK short".to_string(),
        format!("AKIA{}", rng.pick(UPPER32, 15)),
        format!("xAKIA{}", rng.pick(UPPER32, 16)),
        format!("ghp_{}", rng.pick(ALNUM, 35)),
        format!("sk_test_{}", rng.pick(ALNUM, 24)),
        "secret_access_key = short".to_string(),
        "-----BEGIN PUBLIC KEY-----".to_string(),
        "-----BEGIN CERTIFICATE-----".to_string(),
        format!("SK{}", rng.pick(HEX, 31)),
    ];
    for text in misses {
        let found = scan(&scanner, text.as_bytes());
        assert!(found.hits.is_empty(), "{text}: {found:?}");
    }
}

#[test]
fn a_match_must_contain_a_keyword() {
    let spec = DetectorSpec {
        name: "numbered".into(),
        regex: r"[0-9]{8}".into(),
        keywords: vec!["id:".into()],
        min_entropy: None,
        allow_values: vec![],
        allow_regexes: vec![],
        ..DetectorSpec::default()
    };
    let scanner = Scanner::new(std::slice::from_ref(&spec)).unwrap();
    assert!(scan(&scanner, b"id: 12345678").hits.is_empty());
    let spec = DetectorSpec {
        regex: r"(?i)id:[0-9]{8}".into(),
        ..spec
    };
    let scanner = Scanner::new(&[spec]).unwrap();
    assert_eq!(kinds(&scan(&scanner, b"x\nID:12345678")), vec![(0, 2)]);
}

#[test]
fn keywords_match_case_insensitively_and_may_contain_each_other() {
    // `sk` (Twilio's keyword, lower case here) sits inside `sk_live_`: both detectors must
    // still see their keyword.
    let scanner = scanner();
    let mut rng = Rng(99);
    let text = format!(
        "a=sk_live_{} b=SK{}",
        rng.pick(ALNUM, 30),
        rng.pick(HEX, 32)
    );
    let got: Vec<usize> = scan(&scanner, text.as_bytes())
        .hits
        .iter()
        .map(|h| h.detector)
        .collect();
    assert_eq!(got, vec![STRIPE, TWILIO]);
}

#[test]
fn lines_count_across_chunks_and_crlf() {
    let scanner = scanner();
    let mut rng = Rng(3);
    let mut text = String::new();
    let mut expected = Vec::new();
    for line in 1..=3000u64 {
        if line % 397 == 0 {
            text.push_str(&format!("key {}\r\n", aws_id(&mut rng)));
            expected.push((AWS_ID, line));
        } else {
            text.push_str(&format!("line {line} of filler text, nothing here\r\n"));
        }
    }
    assert_eq!(kinds(&scan(&scanner, text.as_bytes())), expected);
    assert_eq!(kinds(&small(&scanner, text.as_bytes())), expected);
}

#[test]
fn crlf_pem_body_is_fingerprinted() {
    let scanner = scanner();
    let mut rng = Rng(11);
    let body = rng.pick(B64, 64);
    let text = format!(
        "x\r\n-----BEGIN OPENSSH PRIVATE KEY-----\r\n{body}\r\n-----END OPENSSH PRIVATE KEY-----\r\n"
    );
    let found = scan(&scanner, text.as_bytes());
    assert_eq!(kinds(&found), vec![(PEM, 2)]);
    assert_eq!(found.hits[0].fingerprint, fingerprint(body.as_bytes()));
}

#[test]
fn pem_keys_fingerprint_their_body_else_their_header() {
    let scanner = scanner();
    let mut rng = Rng(12);
    let key = |rng: &mut Rng| {
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n{}\n-----END PRIVATE KEY-----\n",
            rng.pick(B64, 64),
            rng.pick(B64, 30)
        )
    };
    let (a, b) = (key(&mut rng), key(&mut rng));
    let fa = scan(&scanner, a.as_bytes()).hits[0].fingerprint.clone();
    let fb = scan(&scanner, b.as_bytes()).hits[0].fingerprint.clone();
    assert_ne!(fa, fb);
    // Encrypted PEM: header lines and a blank line before the body.
    let body = rng.pick(B64, 64);
    let encrypted = format!(
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,{}\n\n{body}\n-----END RSA PRIVATE KEY-----\n",
        rng.pick(HEX, 32)
    );
    let found = scan(&scanner, encrypted.as_bytes());
    assert_eq!(found.hits[0].fingerprint, fingerprint(body.as_bytes()));
    // A header alone (code that parses PEM) is still reported, by its header.
    let header = "if line == \"-----BEGIN EC PRIVATE KEY-----\":\n    pass\n";
    let found = scan(&scanner, header.as_bytes());
    assert_eq!(kinds(&found), vec![(PEM, 1)]);
    assert_eq!(
        found.hits[0].fingerprint,
        fingerprint(b"-----BEGIN EC PRIVATE KEY-----")
    );
    // PGP and PuTTY.
    let pgp = format!(
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\n{}\n",
        rng.pick(B64, 64)
    );
    assert_eq!(kinds(&scan(&scanner, pgp.as_bytes())), vec![(PEM, 1)]);
}

/// Filler text with newlines, `len` bytes long, free of keywords.
fn filler(len: usize) -> Vec<u8> {
    let line = b"lorem ipsum dolor amet, consectetur adipiscing elit 0123\n";
    line.iter().copied().cycle().take(len).collect()
}

#[test]
fn a_key_straddling_the_chunk_boundary_is_found_once_at_every_offset() {
    let scanner = scanner();
    let geometry = Geometry::DEFAULT;
    let longest = scanner.prefilter.longest();
    // Keyword starts before `limit` are searched in the first step; the window ends
    // `context + longest` bytes later: test both boundaries.
    let limit = geometry.context + geometry.chunk;
    let window_end = limit + geometry.context + longest;
    let mut rng = Rng(21);
    for boundary in [limit, window_end, 2 * limit] {
        for key in [
            aws_id(&mut rng),
            format!("ghp_{}", rng.pick(ALNUM, 36)),
            format!("-----BEGIN RSA PRIVATE KEY-----\n{}\n", rng.pick(B64, 64)),
        ] {
            for shift in 0..64usize {
                let at = boundary - 32 - key.len() / 2 + shift;
                let mut content = filler(at);
                content.push(b'\n');
                content.extend_from_slice(key.as_bytes());
                content.push(b'\n');
                content.extend(filler(300_000));
                let line = content[..at + 1].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
                let found = scan(&scanner, &content);
                assert_eq!(found.hits.len(), 1, "offset {at}: {found:?}");
                assert_eq!(found.hits[0].line, line, "offset {at}");
                let mut reader = Dribble::new(&content);
                let dribbled = scanner.scan(&mut reader, &limits()).unwrap();
                assert_eq!(dribbled.hits, found.hits, "offset {at}, small reads");
            }
        }
    }
}

#[test]
fn small_chunks_find_what_one_chunk_finds() {
    let scanner = scanner();
    let mut rng = Rng(5);
    let mut content = Vec::new();
    for (_, line) in positives(&mut rng) {
        content.extend(filler(777));
        content.extend_from_slice(line.as_bytes());
        content.extend_from_slice(b"\n");
    }
    let whole = scan(&scanner, &content);
    assert_eq!(whole.hits.len(), sample_detectors().len() + 1);
    assert_eq!(small(&scanner, &content), whole);
}

#[test]
fn the_same_key_twice_is_reported_twice() {
    let scanner = scanner();
    let key = aws_id(&mut Rng(8));
    let text = format!("{key}\n{key} {key}\n");
    assert_eq!(
        kinds(&scan(&scanner, text.as_bytes())),
        vec![(AWS_ID, 1), (AWS_ID, 2), (AWS_ID, 2)]
    );
}

#[test]
fn long_lines_are_cut_around_the_keyword() {
    // Minified files: one line of megabytes, the key in the middle.
    let scanner = scanner();
    let key = aws_id(&mut Rng(9));
    let mut content = vec![b'a'; 1_000_000];
    content.push(b' ');
    content.extend_from_slice(key.as_bytes());
    content.push(b' ');
    content.extend(vec![b'b'; 1_000_000]);
    assert_eq!(kinds(&scan(&scanner, &content)), vec![(AWS_ID, 1)]);
}

#[test]
fn binary_content_is_skipped() {
    let scanner = scanner();
    let key = aws_id(&mut Rng(10));
    let mut content = b"\x7fELF\x02\x01\x01\x00".to_vec();
    content.extend_from_slice(key.as_bytes());
    let found = scan(&scanner, &content);
    assert!(found.binary && found.hits.is_empty());
    // A NUL after the first 8 KiB does not make a file binary.
    let mut content = filler(9000);
    content.push(0);
    content.extend_from_slice(key.as_bytes());
    let found = scan(&scanner, &content);
    assert!(!found.binary);
    assert_eq!(found.hits.len(), 1);
}

/// Endless zeros, counting what was read.
struct Zeros {
    left: u64,
    read: u64,
}

impl Read for Zeros {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        buf[..n].fill(0);
        self.left -= n as u64;
        self.read += n as u64;
        Ok(n)
    }
}

/// Zeros (a sparse file's holes), then some text.
struct HoleThenText {
    zeros: Zeros,
    text: io::Cursor<Vec<u8>>,
}

impl Read for HoleThenText {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.zeros.read(buf)? {
            0 => self.text.read(buf),
            n => Ok(n),
        }
    }
}

#[test]
fn zeros_are_read_past_and_bounded_by_max_bytes() {
    let scanner = scanner();
    let limits = Limits {
        max_bytes: 16 << 20,
        decompress: true,
    };
    let mut zeros = Zeros {
        left: 64 << 20,
        read: 0,
    };
    let found = scanner.scan(&mut zeros, &limits).unwrap();
    assert!(
        !found.binary,
        "a run of zeros is a hole, not binary content"
    );
    assert!(found.truncated);
    assert_eq!(zeros.read, (16 << 20) + 1, "the budget bounds the read");
    assert!(found.hits.is_empty());
}

#[test]
fn a_secret_after_a_hole_is_found_and_binary_content_after_one_is_skipped() {
    let scanner = scanner();
    let mut rng = Rng(29);
    let key = aws_id(&mut rng);
    let limits = Limits {
        max_bytes: u64::MAX,
        decompress: true,
    };
    let mut sparse = HoleThenText {
        zeros: Zeros {
            left: (3 << 20) + 17,
            read: 0,
        },
        text: io::Cursor::new(format!("log line\n{key}\n").into_bytes()),
    };
    let found = scanner.scan(&mut sparse, &limits).unwrap();
    assert!(!found.binary);
    assert_eq!(found.hits.len(), 1);
    assert_eq!(found.hits[0].line, 2);
    let mut elf_after_hole = HoleThenText {
        zeros: Zeros {
            left: 1 << 20,
            read: 0,
        },
        text: io::Cursor::new(b"\x7fELF\x02\x01\x01\0\0\0AKIA".to_vec()),
    };
    assert!(scanner.scan(&mut elf_after_hole, &limits).unwrap().binary);
}

#[test]
fn max_bytes_bounds_the_read_and_says_truncated() {
    let scanner = scanner();
    let mut rng = Rng(13);
    let (early, late) = (aws_id(&mut rng), aws_id(&mut rng));
    let mut content = format!("{early}\n").into_bytes();
    content.extend(filler(10_000));
    content.push(b' ');
    content.extend_from_slice(late.as_bytes());
    let limits = Limits {
        max_bytes: 5000,
        decompress: true,
    };
    let mut reader = content.as_slice();
    let found = scanner.scan(&mut reader, &limits).unwrap();
    assert!(found.truncated);
    assert_eq!(found.bytes, 5000);
    assert_eq!(found.hits.len(), 1);
    assert_eq!(found.hits[0].fingerprint, fingerprint(early.as_bytes()));
    // Exactly max_bytes of content is not truncated.
    let limits = Limits {
        max_bytes: content.len() as u64,
        decompress: true,
    };
    let mut reader = content.as_slice();
    let found = scanner.scan(&mut reader, &limits).unwrap();
    assert!(!found.truncated);
    assert_eq!(found.hits.len(), 2);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

/// `xz` from xz-utils, if installed.
fn xz(bytes: &[u8], level: &str) -> Option<Vec<u8>> {
    let mut child = std::process::Command::new("xz")
        .args([level, "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().ok()?;
    writer.join().ok()?.ok()?;
    output.status.success().then_some(output.stdout)
}

/// A log with a key on line 1001.
fn log_with_key(key: &str) -> Vec<u8> {
    let mut text = String::new();
    for i in 1..=2000 {
        if i == 1001 {
            text.push_str(&format!("Jan  1 00:00:00 host app: using key {key}\n"));
        } else {
            text.push_str(&format!("Jan  1 00:00:00 host app[{i}]: request served\n"));
        }
    }
    text.into_bytes()
}

#[test]
fn gzip_xz_and_zstd_content_is_scanned_inside() {
    let scanner = scanner();
    let key = aws_id(&mut Rng(14));
    let log = log_with_key(&key);
    let mut cases = vec![("gzip", gzip(&log)), ("zstd", zstd(&log))];
    match xz(&log, "-6") {
        Some(packed) => cases.push(("xz", packed)),
        None => eprintln!("xz not installed: xz case skipped"),
    }
    // `xz -9` declares a 64 MiB dictionary for these few kilobytes.
    if let Some(packed) = xz(&log, "-9") {
        cases.push(("xz", packed));
    }
    for (kind, packed) in cases {
        let found = scan(&scanner, &packed);
        assert_eq!(found.compressed, Some(kind));
        assert!(!found.truncated, "{kind}");
        assert_eq!(found.bytes, log.len() as u64, "{kind}");
        assert_eq!(kinds(&found), vec![(AWS_ID, 1001)], "{kind}");
        assert_eq!(found.hits[0].fingerprint, fingerprint(key.as_bytes()));
        // Without decompression the compressed bytes are just bytes.
        let mut reader = packed.as_slice();
        let raw = scanner
            .scan(
                &mut reader,
                &Limits {
                    max_bytes: 1 << 20,
                    decompress: false,
                },
            )
            .unwrap();
        assert!(raw.hits.is_empty() && raw.compressed.is_none());
    }
}

#[test]
fn every_member_stream_and_frame_is_read() {
    let scanner = scanner();
    let mut rng = Rng(15);
    let (a, b) = (aws_id(&mut rng), aws_id(&mut rng));
    let (first, second) = (format!("one {a}\n"), format!("two\n{b}\n"));
    let mut gz = gzip(first.as_bytes());
    gz.extend(gzip(second.as_bytes()));
    let mut zs = zstd(first.as_bytes());
    zs.extend(zstd(second.as_bytes()));
    let mut cases = vec![gz, zs];
    if let (Some(mut x1), Some(x2)) = (xz(first.as_bytes(), "-1"), xz(second.as_bytes(), "-1")) {
        // Stream padding between concatenated streams is allowed.
        x1.extend([0u8; 8]);
        x1.extend(x2);
        cases.push(x1);
    }
    for packed in cases {
        let found = scan(&scanner, &packed);
        assert_eq!(kinds(&found), vec![(AWS_ID, 1), (AWS_ID, 3)], "{found:?}");
        assert!(!found.truncated);
    }
}

#[test]
fn damaged_compressed_streams_keep_what_was_read() {
    let scanner = scanner();
    let key = aws_id(&mut Rng(16));
    let log = log_with_key(&key);
    let mut cases = vec![gzip(&log), zstd(&log)];
    if let Some(packed) = xz(&log, "-6") {
        cases.push(packed);
    }
    for packed in cases {
        // Cut short: whatever decoded is scanned, and the scan says truncated.
        for cut in [7, packed.len() / 2, packed.len() - 3] {
            let found = scan(&scanner, &packed[..cut]);
            assert!(found.truncated, "cut at {cut}");
            assert!(found.compressed.is_some());
        }
        // Bytes flipped all over: never a panic, never an error.
        for at in (10..packed.len()).step_by(packed.len() / 40 + 1) {
            let mut damaged = packed.clone();
            damaged[at] ^= 0x55;
            let found = scan(&scanner, &damaged);
            assert!(found.compressed.is_some());
        }
    }
    // A whole log, then garbage after the gzip member.
    let mut trailing = gzip(&log);
    trailing.extend_from_slice(b"\x1f\x8b\x08garbage");
    let found = scan(&scanner, &trailing);
    assert_eq!(found.hits.len(), 1);
    assert!(found.truncated);
}

#[test]
fn decompressed_output_is_capped() {
    let scanner = scanner();
    // 64 MiB of text from a 64 KiB gzip: only max_bytes are produced.
    let line = b"all work and no play makes jack a dull boy\n";
    let big: Vec<u8> = line.iter().copied().cycle().take(64 << 20).collect();
    let limits = Limits {
        max_bytes: 1 << 20,
        decompress: true,
    };
    let mut cases = vec![("gzip", gzip(&big)), ("zstd", zstd(&big))];
    if let Some(packed) = xz(&big, "-1") {
        cases.push(("xz", packed));
    }
    for (kind, packed) in cases {
        let mut reader = packed.as_slice();
        let found = scanner.scan(&mut reader, &limits).unwrap();
        assert_eq!(found.bytes, 1 << 20, "{kind}");
        assert!(found.truncated, "{kind}");
    }
}

#[test]
fn compression_is_unwrapped_one_level_only() {
    let scanner = scanner();
    let key = aws_id(&mut Rng(17));
    let twice = gzip(&gzip(format!("{key}\n").as_bytes()));
    let found = scan(&scanner, &twice);
    assert_eq!(found.compressed, Some("gzip"));
    assert!(found.hits.is_empty());
}

/// Fails after handing out `good` bytes.
struct Failing<'a> {
    good: &'a [u8],
}

impl Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.good.is_empty() {
            return Err(io::Error::other("device gone"));
        }
        self.good.read(buf)
    }
}

#[test]
fn read_errors_are_errors_even_inside_compressed_content() {
    let scanner = scanner();
    let log = log_with_key(&aws_id(&mut Rng(18)));
    let packed = gzip(&log);
    for content in [&log[..], &packed[..]] {
        let mut reader = Failing {
            good: &content[..content.len() / 2],
        };
        let error = scanner.scan(&mut reader, &limits()).unwrap_err();
        assert_eq!(error.to_string(), "device gone");
    }
}

#[test]
fn allowlists_and_entropy_move_matches_aside_with_a_reason() {
    let scanner = scanner();
    let text = "id AKIAIOSFODNN7EXAMPLE\n\
                id AKIAZZZZZZZZZZZZZZZZ\n\
                aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n";
    let found = scan(&scanner, text.as_bytes());
    assert!(found.hits.is_empty(), "{found:?}");
    let reasons: Vec<(usize, u64, &str)> = found
        .allowlisted
        .iter()
        .map(|h| (h.detector, h.line, h.allow_reason.as_deref().unwrap()))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert_eq!(reasons[0], (AWS_ID, 1, "listed in allow_values"));
    assert_eq!((reasons[1].0, reasons[1].1), (AWS_ID, 2));
    assert!(
        reasons[1]
            .2
            .starts_with("entropy 1.02 below min_entropy 3.00"),
        "{}",
        reasons[1].2
    );
    assert_eq!(reasons[2], (AWS_SECRET, 3, "listed in allow_values"));
    // A placeholder caught by allow_regexes.
    let found = scan(
        &scanner,
        b"token ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
    );
    assert_eq!(
        found.allowlisted[0].allow_reason.as_deref(),
        Some("matches allow_regexes `(?i)x{8}`")
    );
}

#[test]
fn weak_patterns_need_entropy() {
    let scanner = scanner();
    let low = format!("SK{}", "0".repeat(16) + &"1".repeat(16));
    let found = scan(&scanner, low.as_bytes());
    assert!(found.hits.is_empty());
    assert_eq!(found.allowlisted.len(), 1);
    let high = format!("SK{}", Rng(19).pick(HEX, 32));
    assert_eq!(scan(&scanner, high.as_bytes()).hits.len(), 1);
}

#[test]
fn secrets_appear_in_no_output() {
    let scanner = scanner();
    let mut rng = Rng(20);
    let body: String = positives(&mut rng)
        .into_iter()
        .map(|(_, line)| line + "\n")
        .collect();
    let found = scan(&scanner, body.as_bytes());
    let debug = format!("{found:?} {scanner:?}");
    let mut rng = Rng(20);
    for (_, line) in positives(&mut rng) {
        // The longest run of key characters in each line is (part of) its secret.
        let secret = line
            .split(|c: char| !(c.is_ascii_alphanumeric() || "+/_-".contains(c)))
            .max_by_key(|s| s.len())
            .unwrap();
        assert!(!debug.contains(&secret[4..]), "{secret} leaked");
    }
    let spec = &sample_detectors()[AWS_ID];
    assert!(!format!("{spec:?}").contains("AKIAIOSFODNN7EXAMPLE"));
}

#[test]
fn compile_errors_name_the_detector_and_the_problem() {
    let good = sample_detectors()[AWS_ID].clone();
    let bad = |f: fn(&mut DetectorSpec)| {
        let mut spec = good.clone();
        f(&mut spec);
        Scanner::new(&[good.clone(), spec]).unwrap_err().to_string()
    };
    let e = bad(|s| s.regex = "(".into());
    assert!(
        e.starts_with("detector 1 (\"AWS access key ID\"): regex:"),
        "{e}"
    );
    let e = bad(|s| s.keywords.clear());
    assert!(
        e.contains("`keywords` must hold at least one literal"),
        "{e}"
    );
    let e = bad(|s| s.keywords = vec![String::new()]);
    assert!(e.contains("a keyword is empty"), "{e}");
    let e = bad(|s| s.min_entropy = Some(9.0));
    assert!(e.contains("min_entropy"), "{e}");
    let e = bad(|s| s.allow_values.push(String::new()));
    assert!(e.contains("`allow_values` entry 1 is empty"), "{e}");
    assert!(!e.contains("AKIAIOSFODNN7EXAMPLE"));
    let e = bad(|s| s.allow_regexes = vec!["[".into()]);
    assert!(e.contains("allow_regexes"), "{e}");
    let e = bad(|s| s.name = " ".into());
    assert!(e.contains("`name` is empty"), "{e}");
}

#[test]
fn compile_errors_have_a_kind() {
    let good = sample_detectors()[AWS_ID].clone();
    let kind = |f: fn(&mut DetectorSpec)| {
        let mut spec = good.clone();
        f(&mut spec);
        Scanner::new(&[spec]).err().map(|e| e.kind())
    };
    assert_eq!(
        kind(|s| s.regex = "(".into()),
        Some(DetectorErrorKind::InvalidRegex)
    );
    assert_eq!(
        kind(|s| s.allow_regexes = vec!["[".into()]),
        Some(DetectorErrorKind::InvalidRegex)
    );
    assert_eq!(kind(|s| s.keywords.clear()), Some(DetectorErrorKind::Empty));
    assert_eq!(
        kind(|s| s.min_entropy = Some(9.0)),
        Some(DetectorErrorKind::OutOfRange)
    );
    assert_eq!(kind(|_| {}), None);
}

#[test]
fn hits_per_file_are_capped() {
    let scanner = scanner();
    let mut rng = Rng(22);
    let text: String = (0..1500).map(|_| aws_id(&mut rng) + "\n").collect();
    let found = scan(&scanner, text.as_bytes());
    assert_eq!(found.hits.len(), MAX_HITS_PER_FILE);
    assert_eq!(found.hits_dropped, 500);
    assert_eq!(found.hits.last().map(|h| h.line), Some(1000));
}

#[test]
fn empty_and_tiny_inputs() {
    let scanner = scanner();
    for input in [
        &b""[..],
        b"\x1f",
        b"\x1f\x8b",
        b"\x1f\x8b\x08",
        b"\xfd7zXZ",
        b"\x28\xb5\x2f\xfd",
    ] {
        let found = scan(&scanner, input);
        assert!(found.hits.is_empty());
    }
    assert_eq!(scan(&scanner, b"").bytes, 0);
    assert!(!scan(&scanner, b"").truncated);
    let none = Scanner::new(&[]).unwrap();
    assert!(scan(&none, b"AKIA").hits.is_empty());
}

#[test]
fn exercise_returns_on_odd_inputs() {
    let mut rng = Rng(23);
    let mut inputs: Vec<Vec<u8>> = positives(&mut rng)
        .into_iter()
        .map(|(_, l)| l.into_bytes())
        .collect();
    inputs.push(gzip(&log_with_key(&aws_id(&mut rng))));
    inputs.push(vec![0xff; 10_000]);
    inputs.push(b"-----BEGIN RSA PRIVATE KEY-----\n".repeat(500));
    for input in inputs {
        exercise(&input);
    }
}

#[test]
fn scanner_is_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Scanner>();
    let scanner = scanner();
    let key = aws_id(&mut Rng(24));
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| assert_eq!(scan(&scanner, key.as_bytes()).hits.len(), 1));
        }
    });
}
