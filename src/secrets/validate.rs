//! Checks a match must pass to be a credential, for formats that carry more structure than
//! a regex can see: a checksum (GitHub and npm tokens), an encoded header (PyPI macaroons,
//! JWTs), a key structure (private key blocks), an encoded `user:password` pair.
//!
//! A match that fails its check is not reported: it is listed with the allowlisted matches
//! (`--verbose`), with the reason.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use serde::{Deserialize, Serialize};

/// The named checks a detector may ask for (`validate:` in a rule pack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Validator {
    /// `prefix_` + 30 random base62 characters + their CRC-32 in 6 base62 characters
    /// (GitHub's classic tokens and npm's access tokens).
    Github,
    /// `pypi-` + a base64url v2 macaroon whose location is pypi.org.
    Pypi,
    /// Three base64url segments: a JSON header naming an algorithm other than `none`, and a
    /// JSON payload.
    Jwt,
    /// A private key block whose body decodes to a key structure (DER, OpenSSH, OpenPGP),
    /// or says it is encrypted.
    PrivateKey,
    /// Base64 of `user:password`, printable, with a non-empty password.
    BasicAuth,
}

impl Validator {
    pub fn name(self) -> &'static str {
        match self {
            Validator::Github => "github",
            Validator::Pypi => "pypi",
            Validator::Jwt => "jwt",
            Validator::PrivateKey => "private-key",
            Validator::BasicAuth => "basic-auth",
        }
    }

    /// Why `secret` (found inside the match `whole`) is not a credential of its format, if
    /// it is not.
    pub fn reject(self, secret: &[u8], whole: &[u8]) -> Option<&'static str> {
        let valid = match self {
            Validator::Github => github_checksum(secret),
            Validator::Pypi => pypi_macaroon(secret),
            Validator::Jwt => jwt(secret),
            Validator::PrivateKey => private_key(secret, whole),
            Validator::BasicAuth => basic_auth(secret),
        };
        (!valid).then_some(match self {
            Validator::Github => "its CRC-32 checksum does not match (validate: github)",
            Validator::Pypi => "it does not decode to a PyPI macaroon (validate: pypi)",
            Validator::Jwt => "it does not decode to a signed JWT (validate: jwt)",
            Validator::PrivateKey => {
                "its body does not decode to a private key structure (validate: private-key)"
            }
            Validator::BasicAuth => "it does not decode to user:password (validate: basic-auth)",
        })
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Lenient about padding: tokens are written with and without it.
const STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The CRC-32 of the 30 characters before the last 6, base62 and zero-padded, is the last 6.
fn github_checksum(secret: &[u8]) -> bool {
    let Some(tail) = secret.len().checked_sub(36).and_then(|at| secret.get(at..)) else {
        return false;
    };
    let (random, checksum) = tail.split_at(30);
    let mut value = crc32fast::hash(random);
    let mut encoded = [b'0'; 6];
    for slot in encoded.iter_mut().rev() {
        *slot = BASE62.get((value % 62) as usize).copied().unwrap_or(b'0');
        value /= 62;
    }
    value == 0 && encoded == checksum
}

fn pypi_macaroon(secret: &[u8]) -> bool {
    let Some(body) = secret.strip_prefix(b"pypi-") else {
        return false;
    };
    URL_SAFE
        .decode(body)
        .is_ok_and(|macaroon| macaroon.starts_with(b"\x02\x01\x08pypi.org") && macaroon.len() > 32)
}

fn jwt(secret: &[u8]) -> bool {
    let mut parts = secret.split(|&b| b == b'.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let json_object = |segment: &[u8]| {
        URL_SAFE
            .decode(segment)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .filter(serde_json::Value::is_object)
    };
    let Some(header) = json_object(header) else {
        return false;
    };
    let signed = header
        .get("alg")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|alg| !alg.eq_ignore_ascii_case("none"));
    signed && json_object(payload).is_some() && signature.len() >= 16
}

fn private_key(secret: &[u8], whole: &[u8]) -> bool {
    // Legacy encrypted PEM (RFC 1421 headers): the body is ciphertext, with no structure.
    if memchr::memmem::find(whole, b"Proc-Type: 4,ENCRYPTED").is_some() {
        return true;
    }
    if memchr::memmem::find(whole, b"PuTTY-User-Key-File-").is_some() {
        // The private lines are ciphertext when encrypted, else SSH wire format: a 32-bit
        // length first (of an mpint or a key-type string), never above a few KiB.
        let encrypted = memchr::memmem::find(whole, b"Encryption: none").is_none();
        return decode_prefix(secret).is_some_and(|bytes| {
            encrypted || matches!(bytes.get(..4), Some(&[0, 0, hi, _]) if hi < 0x40)
        });
    }
    let Some(body) = decode_prefix(secret) else {
        return false;
    };
    if body.starts_with(b"openssh-key-v1\0") {
        return true;
    }
    if memchr::memmem::find(whole, b"PGP PRIVATE KEY BLOCK").is_some() {
        return pgp_secret_key_packet(&body);
    }
    der_key(&body)
}

/// The leading bytes of a base64 body (its first line or lines), padding and a ragged end
/// ignored.
fn decode_prefix(secret: &[u8]) -> Option<Vec<u8>> {
    let clean: Vec<u8> = secret
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'\\')
        .take_while(|&b| b != b'=')
        .collect();
    let usable = clean.get(..clean.len() - clean.len() % 4)?;
    STANDARD
        .decode(usable)
        .ok()
        .filter(|bytes| bytes.len() >= 8)
}

/// An OpenPGP secret-key packet header: old format tag 5 (`0x94`–`0x97`) or new format
/// (`0xc5`).
fn pgp_secret_key_packet(body: &[u8]) -> bool {
    matches!(body.first(), Some(0x94..=0x97 | 0xc5))
}

/// A DER SEQUENCE holding an INTEGER version (PKCS#1, SEC 1, DSA, PKCS#8) or a SEQUENCE
/// (encrypted PKCS#8): every private key container starts this way.
fn der_key(body: &[u8]) -> bool {
    let Some((&0x30, rest)) = body.split_first() else {
        return false;
    };
    let content = match rest.split_first() {
        Some((&len, content)) if len < 0x80 => {
            if usize::from(len) < 16 {
                return false;
            }
            content
        }
        Some((&0x81, content)) => content.get(1..).unwrap_or_default(),
        Some((&0x82, content)) => content.get(2..).unwrap_or_default(),
        Some((&0x83, content)) => content.get(3..).unwrap_or_default(),
        _ => return false,
    };
    match content {
        [0x02, 0x01, version, ..] => *version <= 1,
        [0x30, ..] => true,
        _ => false,
    }
}

fn basic_auth(secret: &[u8]) -> bool {
    let Ok(pair) = STANDARD.decode(secret) else {
        return false;
    };
    let printable = pair.iter().all(|b| (0x20..0x7f).contains(b) || *b >= 0x80);
    match memchr::memchr(b':', &pair) {
        Some(colon) => printable && colon + 1 < pair.len(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token made the way the format says, from a fixed random part.
    fn github_token(prefix: &str, random: &str) -> String {
        let mut value = crc32fast::hash(random.as_bytes());
        let mut checksum = [b'0'; 6];
        for slot in checksum.iter_mut().rev() {
            *slot = BASE62[(value % 62) as usize];
            value /= 62;
        }
        format!("{prefix}{random}{}", String::from_utf8_lossy(&checksum))
    }

    #[test]
    fn github_checksums_are_verified() {
        let token = github_token("ghp_", "Xq3vR8kLm2Zt9wPa7NcdE4fG5hJ6k1");
        assert!(Validator::Github.reject(token.as_bytes(), b"").is_none());
        let npm = github_token("npm_", "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1");
        assert!(Validator::Github.reject(npm.as_bytes(), b"").is_none());
        let mut broken = token.into_bytes();
        let last = broken.len() - 1;
        broken[last] = if broken[last] == b'A' { b'B' } else { b'A' };
        assert!(Validator::Github.reject(&broken, b"").is_some());
        assert!(Validator::Github.reject(b"ghp_short", b"").is_some());
    }

    #[test]
    fn jwts_need_a_json_header_with_an_algorithm() {
        let header = URL_SAFE.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE.encode(br#"{"sub":"1234567890"}"#);
        let token = format!("{header}.{payload}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c");
        assert!(Validator::Jwt.reject(token.as_bytes(), b"").is_none());
        let unsigned = URL_SAFE.encode(br#"{"alg":"none"}"#);
        let token = format!("{unsigned}.{payload}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c");
        assert!(Validator::Jwt.reject(token.as_bytes(), b"").is_some());
        assert!(Validator::Jwt.reject(b"eyJhbGciOi.abc.def", b"").is_some());
    }

    #[test]
    fn private_key_bodies_must_decode_to_a_key_structure() {
        // PKCS#8 RSA: SEQUENCE (long form), INTEGER 0, SEQUENCE …
        let der = [
            0x30, 0x82, 0x04, 0xbd, 0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a,
        ];
        let body = STANDARD.encode(der);
        assert!(Validator::PrivateKey
            .reject(body.as_bytes(), b"-----BEGIN PRIVATE KEY-----")
            .is_none());
        let openssh = STANDARD.encode(b"openssh-key-v1\0\0\0\0\x04none");
        assert!(Validator::PrivateKey
            .reject(openssh.as_bytes(), b"-----BEGIN OPENSSH PRIVATE KEY-----")
            .is_none());
        let zeros = "A".repeat(64);
        assert!(Validator::PrivateKey
            .reject(zeros.as_bytes(), b"-----BEGIN PRIVATE KEY-----")
            .is_some());
        let words = STANDARD.encode(b"paste your private key here, base64");
        assert!(Validator::PrivateKey
            .reject(words.as_bytes(), b"-----BEGIN RSA PRIVATE KEY-----")
            .is_some());
    }

    #[test]
    fn basic_auth_needs_a_password() {
        let good = STANDARD.encode(b"deploy:s3cr3t-Pa55");
        assert!(Validator::BasicAuth.reject(good.as_bytes(), b"").is_none());
        let empty = STANDARD.encode(b"deploy:");
        assert!(Validator::BasicAuth.reject(empty.as_bytes(), b"").is_some());
        assert!(Validator::BasicAuth.reject(b"!!!!", b"").is_some());
    }

    #[test]
    fn pypi_tokens_are_macaroons_for_pypi_org() {
        let mut macaroon = b"\x02\x01\x08pypi.org\x02\x01".to_vec();
        macaroon.extend_from_slice(&[7u8; 40]);
        let token = format!("pypi-{}", URL_SAFE.encode(&macaroon));
        assert!(Validator::Pypi.reject(token.as_bytes(), b"").is_none());
        assert!(Validator::Pypi
            .reject(b"pypi-AgEIcHlwaS5vcmcAAAA", b"")
            .is_some());
    }
}
