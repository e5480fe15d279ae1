//! The detector set the tests, benchmarks and fuzz target use; rules/creds.yaml carries the
//! same detectors for `scan`.
//!
//! Every regex starts with `(?-u)`: byte-oriented classes and ASCII word boundaries keep the
//! regex engine on its fast DFA path over arbitrary (non-UTF-8) file content. Weak patterns
//! carry a `min_entropy`, and documented example keys are allowlisted.

use super::DetectorSpec;

fn spec(
    name: &str,
    regex: &str,
    keywords: &[&str],
    min_entropy: Option<f64>,
    allow_values: &[&str],
    allow_regexes: &[&str],
) -> DetectorSpec {
    DetectorSpec {
        name: name.into(),
        regex: regex.into(),
        keywords: keywords.iter().map(|k| (*k).into()).collect(),
        min_entropy,
        allow_values: allow_values.iter().map(|v| (*v).into()).collect(),
        allow_regexes: allow_regexes.iter().map(|r| (*r).into()).collect(),
        ..DetectorSpec::default()
    }
}

/// Placeholders that look like keys in documentation and templates: the AWS documentation's
/// `EXAMPLE` suffix, runs of `x`, and alphabet or digit sequences.
const PLACEHOLDERS: &[&str] = &["EXAMPLE", "(?i)x{8}", "(?i)abcdefghij|0123456789"];

/// The sample detectors, in a fixed order (tests refer to them by index).
///
/// AWS key IDs: only the prefixes of credentials (AKIA long-term, ASIA temporary, ABIA and
/// ACCA their service-specific variants, A3T the oldest); AIDA, AROA, AGPA, ANPA and the
/// like are the unique IDs of users, roles, groups and policies, not secrets. Fewer than 33
/// keywords of three bytes or more keep the prefilter on its fastest SIMD searcher.
pub fn sample_detectors() -> Vec<DetectorSpec> {
    vec![
        spec(
            "AWS access key ID",
            r"(?-u)\b(?P<secret>(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
            &["A3T", "AKIA", "ASIA", "ABIA", "ACCA"],
            Some(3.0),
            &["AKIAIOSFODNN7EXAMPLE"],
            PLACEHOLDERS,
        ),
        spec(
            "AWS secret access key",
            r#"(?-u)(?i:aws_?secret_?(?:access_?)?key|secret_?access_?key)["']?[ \t]*(?:=>|:=|[:=])[ \t]*["']?(?P<secret>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
            &["secret_access_key", "secretaccesskey", "aws_secret"],
            Some(4.0),
            &["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
            PLACEHOLDERS,
        ),
        spec(
            "private key (PEM)",
            r"(?-u)(?P<at>-----BEGIN )(?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----(?:[ \t]*\r?\n(?:[A-Za-z][A-Za-z0-9-]*:[^\r\n]*\r?\n)*(?:[ \t]*\r?\n)?(?P<secret>[A-Za-z0-9+/=]{16,}))?",
            &["PRIVATE KEY-----", "PRIVATE KEY BLOCK-----"],
            None,
            &[],
            &[],
        ),
        spec(
            "PuTTY private key",
            r"(?-u)PuTTY-User-Key-File-[23]: [A-Za-z0-9@.-]+(?:\r?\n(?:[^\r\n]*\r?\n){0,40}?Private-Lines: [0-9]+\r?\n(?P<secret>[A-Za-z0-9+/=]{16,}))?",
            &["PuTTY-User-Key-File-"],
            None,
            &[],
            &[],
        ),
        spec(
            "GitHub token",
            r"(?-u)\b(?P<secret>gh[pousr]_[A-Za-z0-9]{36})\b",
            &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
            Some(3.0),
            &[],
            PLACEHOLDERS,
        ),
        spec(
            "GitHub fine-grained token",
            r"(?-u)\b(?P<secret>github_pat_[A-Za-z0-9_]{82})\b",
            &["github_pat_"],
            Some(3.0),
            &[],
            PLACEHOLDERS,
        ),
        spec(
            "GitLab personal access token",
            r"(?-u)\b(?P<secret>glpat-[A-Za-z0-9_-]{20,})(?:[^A-Za-z0-9_-]|$)",
            &["glpat-"],
            Some(3.0),
            &[],
            PLACEHOLDERS,
        ),
        spec(
            "Slack token",
            r"(?-u)\b(?P<secret>xox[baprs]-[0-9]{6,15}-[0-9A-Za-z][0-9A-Za-z-]{8,250}[0-9A-Za-z])",
            &["xox"],
            Some(3.0),
            &[],
            PLACEHOLDERS,
        ),
        spec(
            "Stripe live secret key",
            r"(?-u)\b(?P<secret>(?:sk|rk)_live_[0-9A-Za-z]{24,247})\b",
            &["sk_live_", "rk_live_"],
            Some(3.0),
            &[],
            PLACEHOLDERS,
        ),
        spec(
            "Google API key",
            r"(?-u)\b(?P<secret>AIza[0-9A-Za-z_-]{35})(?:[^0-9A-Za-z_-]|$)",
            &["AIza"],
            Some(3.0),
            &[],
            PLACEHOLDERS,
        ),
        spec(
            "SendGrid API key",
            r"(?-u)\b(?P<secret>SG\.[0-9A-Za-z_-]{22}\.[0-9A-Za-z_-]{43})(?:[^0-9A-Za-z_-]|$)",
            &["SG."],
            Some(3.0),
            &[],
            PLACEHOLDERS,
        ),
        spec(
            "npm access token",
            r"(?-u)\b(?P<secret>npm_[A-Za-z0-9]{36})\b",
            &["npm_"],
            Some(3.0),
            &[],
            PLACEHOLDERS,
        ),
        spec(
            "PyPI API token",
            r"(?-u)(?P<secret>pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,})",
            &["pypi-AgEIcHlwaS5vcmc"],
            None,
            &[],
            &[],
        ),
        spec(
            "HashiCorp Vault token",
            r"(?-u)\b(?P<secret>hv[sb]\.[A-Za-z0-9_-]{24,})(?:[^A-Za-z0-9_-]|$)",
            &["hvs.", "hvb."],
            Some(3.0),
            &[],
            PLACEHOLDERS,
        ),
        spec(
            "Azure storage account key",
            r"(?-u)AccountKey=(?P<secret>[A-Za-z0-9+/]{86}==)",
            &["AccountKey="],
            Some(4.0),
            // Azurite's and the storage emulator's published development key.
            &["Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="],
            PLACEHOLDERS,
        ),
        spec(
            "Twilio API key",
            r"(?-u)\b(?P<secret>SK[0-9a-fA-F]{32})\b",
            &["SK"],
            Some(3.2),
            &[],
            PLACEHOLDERS,
        ),
        spec(
            "Google service account key",
            r#"(?-u)"private_key_id"[ \t\r\n]*:[ \t\r\n]*"(?P<secret>[0-9a-f]{40})"[ \t\r\n]*,[ \t\r\n]*"private_key"[ \t\r\n]*:[ \t\r\n]*"-----BEGIN"#,
            &["\"private_key_id\""],
            None,
            &[],
            &[],
        ),
    ]
}
