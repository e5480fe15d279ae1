//! Progress on stderr and the `--verbose` account of what a scan skipped: the library API
//! the scan command drives (a `Lines` display over the whole pipeline), and the binary's
//! flags: `--progress` on a non-terminal, nothing without it, `--quiet`, `-v`.

use crate::util;

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use amiscan::commands::display::{Display, Mode};
use amiscan::rules::{select, FailOn, Pack, Severity};
use amiscan::scan::ScanConfig;
use serde_json::Value;
use util::{amiscan, image, rule_image, Run};

/// A writer the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One progress line, `amiscan: IMAGE: PHASE: N files, X MiB read[, ETA Ns]`, taken
/// apart: the phase and the file count. `None` for any other line.
fn progress_line<'l>(line: &'l str, image: &str) -> Option<(&'l str, u64)> {
    let rest = line.strip_prefix(&format!("amiscan: {image}: "))?;
    let (phase, counts) = rest.rsplit_once(": ")?;
    let mut parts = counts.split(", ");
    let files = parts.next()?.strip_suffix(" files")?.parse().ok()?;
    let mib = parts.next()?.strip_suffix(" MiB read")?;
    mib.parse::<f64>().ok()?;
    match parts.next() {
        None => {}
        Some(eta) => {
            eta.strip_prefix("ETA ")?
                .strip_suffix('s')?
                .parse::<u64>()
                .ok()?;
        }
    }
    parts.next().is_none().then_some((phase, files))
}

/// Lines that look like progress of any image (`…: N files, X MiB read…`).
fn any_progress_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("amiscan: ") && l.contains(" files, ") && l.contains(" MiB read"))
        .collect()
}

/// `images[0].stats.files` of a schema-2 report, else the top-level `stats.files`.
fn files_in_report(report: &Value) -> u64 {
    let stats = if report["images"].is_array() {
        &report["images"][0]["stats"]
    } else {
        &report["stats"]
    };
    stats["files"].as_u64().expect("stats.files in the report")
}

fn scan(image_path: &Path, extra: &[&str]) -> Run {
    let mut args = vec![OsStr::new("scan"), image_path.as_os_str()];
    args.extend(["--format", "json"].iter().map(OsStr::new));
    args.extend(extra.iter().map(OsStr::new));
    amiscan(args)
}

#[test]
fn a_lines_display_follows_the_whole_pipeline() {
    let path = image("debian-gpt.img");
    let out = Captured::default();
    let display = Display::start_with(Mode::Lines, "debian-gpt.img", Box::new(out.clone()));
    let progress = display.progress();
    assert!(progress.is_some());
    let pack = Pack::builtin().unwrap();
    let config = ScanConfig {
        images: vec![path.clone()],
        rules: select::select(&pack, &[], &[]).unwrap(),
        known_rules: pack.rules().map(|r| r.id.clone()).collect(),
        options: Default::default(),
        fail_on: FailOn::At(Severity::Medium),
        waivers: Vec::new(),
        baseline: None,
        open: Default::default(),
        max_entries: None,
        residue: false,
        loaded_rules: pack.rules().cloned().collect(),
    };
    let scanned = amiscan::scan::scan_image(&path, &config, progress).unwrap();
    display.finish();

    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<(&str, u64)> = text
        .lines()
        .map(|l| progress_line(l, "debian-gpt.img").unwrap_or_else(|| panic!("{l:?}")))
        .collect();
    let phases: Vec<&str> = lines.iter().map(|(phase, _)| *phase).collect();
    assert_eq!(phases.first(), Some(&"opening"), "{text}");
    assert!(phases.iter().any(|p| p.contains("p1 at /")), "{text}");
    assert!(
        phases.iter().any(|p| p.contains("p15 at /boot/efi")),
        "{text}"
    );
    assert!(
        phases
            .iter()
            .any(|p| p.starts_with("reading file contents of ")),
        "{text}"
    );
    assert!(phases.contains(&"evaluating rules"), "{text}");
    assert_eq!(
        lines.last(),
        Some(&("done", scanned.scanned.details.stats.files as u64)),
        "{text}"
    );

    let skipped = &scanned.not_read;
    assert!(
        skipped.contains(
            &"skipped volume p14 (unknown): BIOS boot partition: boot code, no filesystem"
                .to_string()
        ),
        "{skipped:#?}"
    );
    let binary = scanned
        .scanned
        .details
        .stats
        .secrets
        .as_ref()
        .unwrap()
        .skipped_binary;
    assert!(binary > 0);
    assert!(
        skipped.contains(&format!(
            "secrets: {binary} files not searched: binary (a NUL byte in their first 8 KiB)"
        )),
        "{skipped:#?}"
    );
}

#[test]
fn progress_shows_plain_lines_on_a_non_terminal() {
    let path = image("debian-gpt.img");
    let run = scan(&path, &["--progress"]);
    assert!(
        run.code == 0 || run.code == 1,
        "{} exited {}: {}",
        run.describe(),
        run.code,
        run.stderr
    );
    assert!(
        !run.stderr.contains('\u{1b}'),
        "ANSI escapes on stderr:\n{}",
        run.stderr
    );
    let shown = path.display().to_string();
    let lines: Vec<(&str, u64)> = run
        .stderr
        .lines()
        .filter_map(|l| progress_line(l, &shown))
        .collect();
    assert!(
        lines.iter().any(|(phase, _)| phase.starts_with("walking")),
        "no walk phase line:\n{}",
        run.stderr
    );
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    let (phase, files) = lines.last().copied().unwrap();
    assert_eq!(phase, "done", "{}", run.stderr);
    assert_eq!(files, files_in_report(&report), "{}", run.stderr);
}

#[test]
fn no_progress_on_a_non_terminal_without_the_flag() {
    let run = scan(&image("debian-gpt.img"), &[]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    assert_eq!(any_progress_lines(&run.stderr), Vec::<&str>::new());
}

#[test]
fn quiet_leaves_stderr_empty_on_a_clean_scan() {
    for path in [image("debian-gpt.img"), rule_image("leaky")] {
        let run = scan(&path, &["--quiet"]);
        assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
        assert_eq!(run.stderr, "", "{}", run.describe());
    }
}

#[test]
fn verbose_says_what_was_skipped_and_why() {
    let path = image("debian-gpt.img");
    let run = scan(&path, &["--verbose"]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    let expected = format!(
        "amiscan: {}: skipped volume p14 (unknown): BIOS boot partition: boot code, no filesystem",
        path.display()
    );
    assert!(
        run.stderr.lines().any(|l| l == expected),
        "no {expected:?} in:\n{}",
        run.stderr
    );
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains(": secrets: ") && l.contains(" files not searched: binary")),
        "{}",
        run.stderr
    );
}

/// A content rule's `max_size` is a choice the pack made: `-v` still says which files it
/// left partly unread.
#[test]
fn verbose_names_files_a_content_rule_read_only_in_part() {
    let dir = util::build_dir().join("progress-max-size");
    std::fs::create_dir_all(&dir).unwrap();
    let pack = dir.join("short.yaml");
    std::fs::write(
        &pack,
        "rules:\n  - id: local.short-read\n    title: t\n    severity: low\n    description: d\n    remediation: r\n    check:\n      kind: content\n      paths: [\"/etc/os-release\"]\n      max_size: 8\n      patterns:\n        - name: never\n          regex: \"zzzz\"\n      message: m\n",
    )
    .unwrap();
    let sample = util::manifest_dir().join("testdata/sample.img");
    let run = amiscan([
        OsStr::new("scan"),
        sample.as_os_str(),
        OsStr::new("--rules"),
        pack.as_os_str(),
        OsStr::new("--select"),
        OsStr::new("local.short-read"),
        OsStr::new("-v"),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.lines().any(|l| l.ends_with(
            "/etc/os-release: only the first 8 bytes were read by a content rule (its max_size)"
        )),
        "{}",
        run.stderr
    );
    let quiet = amiscan([
        OsStr::new("scan"),
        sample.as_os_str(),
        OsStr::new("--rules"),
        pack.as_os_str(),
        OsStr::new("--select"),
        OsStr::new("local.short-read"),
    ]);
    assert!(!quiet.stderr.contains("only the first"), "{}", quiet.stderr);
}
