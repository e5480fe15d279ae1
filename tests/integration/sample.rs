//! The committed sample image and the README's first command: what the README shows is
//! what the scan prints, the sample's fake credentials are found, and no output format
//! ever carries one of them in full.

use std::ffi::OsStr;

use crate::util::{amiscan, manifest_dir};

/// The values planted by testdata/sample/make-sample.sh.
const PLANTED: &[&str] = &[
    "AKIAZ2VOVGCMRUMYF63F",
    "Bp6fIGt+0HZROMvaY3i5ce7R8YMUcq0aBAjookKE",
    "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",
    "MC4CAQAwBQYDK2VwBCIEILckcCwkrrpyl/fSt2z0MDchANNO1JAWSX9xK2rrtx+1",
];

/// The lines of the README's abridged example output.
fn readme_example() -> Vec<String> {
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    let after = readme
        .split_once("Abridged:\n\n```\n")
        .expect("README has the abridged example output")
        .1;
    let block = after.split_once("```").unwrap().0;
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readme_shows_what_the_first_command_prints() {
    let sample = manifest_dir().join("testdata/sample.img");
    let run = amiscan([OsStr::new("scan"), sample.as_os_str()]);
    run.expect_code(1);
    let printed = run.stdout_text();
    let example = readme_example();
    for line in &example {
        assert!(
            printed.lines().any(|p| p == line),
            "README line not in the output: {line:?}\n{printed}"
        );
    }
    let redacted = example
        .iter()
        .filter(|l| l.starts_with("  /") && l.ends_with(']') && l.contains('…'))
        .count();
    assert!(redacted >= 3, "the example shows redacted credentials");
    assert!(example.iter().any(|l| l.starts_with("creds.")));
}

#[test]
fn no_output_format_carries_a_planted_credential() {
    let sample = manifest_dir().join("testdata/sample.img");
    for format in ["table", "json", "jsonl", "sarif", "junit", "markdown"] {
        let run = amiscan([
            OsStr::new("scan"),
            sample.as_os_str(),
            OsStr::new("--format"),
            OsStr::new(format),
            OsStr::new("-v"),
        ]);
        run.expect_code(1);
        let all = format!("{}{}", run.stdout_text(), run.stderr);
        assert!(all.contains("creds.tokens"), "{format}: {all}");
        for secret in PLANTED {
            // Four characters are shown as the fingerprint's prefix; more never.
            assert!(!all.contains(&secret[..8]), "{format} prints {secret}");
        }
    }
}
