//! What a finding may show of a secret: a short prefix and a truncated hash, enough to tell
//! two secrets apart and to recognise one already known, not enough to use it. Also the
//! entropy measure behind `min_entropy`.

use sha2::{Digest, Sha256};

/// Characters of the secret shown at most.
const PREFIX: usize = 4;

/// A short, non-reversible fingerprint: the first 4 characters, "…", and the first 8 hex
/// digits of the SHA-256 of the secret (`AKIA…3f9c1a2b`). Never the secret: secrets shorter
/// than 16 bytes show a quarter of their length at most, and bytes other than printable
/// ASCII show as `?`.
pub fn fingerprint(secret: &[u8]) -> String {
    let shown = PREFIX.min(secret.len() / 4);
    let mut out = String::with_capacity(shown + 3 + 8);
    for &b in secret.iter().take(shown) {
        out.push(if b.is_ascii_graphic() { b as char } else { '?' });
    }
    out.push('…');
    let digest = Sha256::digest(secret);
    for byte in digest.iter().take(4) {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Shannon entropy of `bytes`, in bits per byte (0 for empty input; at most 8, and at most
/// log2 of the length).
pub fn shannon_entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        if let Some(count) = counts.get_mut(usize::from(b)) {
            *count = count.saturating_add(1);
        }
    }
    let total = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / total;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_shows_prefix_and_hash_only() {
        let fp = fingerprint(b"AKIAZ7Q2XJ4LM5NB3RTW");
        assert!(fp.starts_with("AKIA…"), "{fp}");
        assert_eq!(fp.chars().count(), 4 + 1 + 8);
        assert!(!fp.contains("Z7Q2"));
        // Known value: SHA-256("abc") starts ba7816bf.
        assert_eq!(fingerprint(b"abc"), "…ba7816bf");
    }

    #[test]
    fn short_and_binary_secrets_show_little() {
        assert_eq!(fingerprint(b"12345678").chars().next(), Some('1'));
        assert!(fingerprint(b"12345678").starts_with("12…"));
        assert!(
            fingerprint(b"\x00\x01\x02\x03\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4")
                .starts_with("????…")
        );
    }

    #[test]
    fn entropy_of_known_strings() {
        assert_eq!(shannon_entropy(b""), 0.0);
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abab") - 1.0).abs() < 1e-9);
        assert!((shannon_entropy(b"0123456789abcdef") - 4.0).abs() < 1e-9);
    }
}
