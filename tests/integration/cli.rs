//! The command line as an installed tool: `--version`, shell completions, the manual page,
//! colour, output kept to the terminal's width, help for every argument.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use clap::CommandFactory;

/// The sample image committed in testdata/ (a scan of it fails: it holds leftovers).
fn sample() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/sample.img")
        .display()
        .to_string()
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs amiscan with stdout piped, with exactly the colour and width variables given.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_amiscan"))
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .env_remove("CLICOLOR_FORCE")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("cannot run the amiscan binary");
    Output {
        code: output
            .status
            .code()
            .expect("amiscan was killed by a signal"),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Feeds `input` to a program, returning (exit code, stdout, stderr).
fn pipe(program: &str, args: &[&str], input: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn version_names_the_commit_and_the_build_date() {
    let line = regex::Regex::new(
        r"^amiscan \d+\.\d+\.\d+\S* \(([0-9a-f]{7,}(-dirty)?|unknown) (\d{4}-\d{2}-\d{2}|unknown)\)\n$",
    )
    .unwrap();
    for args in [&["--version"][..], &["-V"], &["version"]] {
        let out = run(args, &[]);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert!(line.is_match(&out.stdout), "{args:?}: {:?}", out.stdout);
    }
    // Built from this checkout, so the commit and the date are known.
    let out = run(&["--version"], &[]);
    assert!(!out.stdout.contains("unknown"), "{}", out.stdout);

    let verbose = run(&["version", "--verbose"], &[]);
    assert_eq!(verbose.code, 0, "{}", verbose.stderr);
    for args in [
        &["--version", "--verbose"][..],
        &["-V", "-v"],
        &["--verbose", "--version"],
    ] {
        let same = run(args, &[]);
        assert_eq!(same.code, 0, "{args:?}: {}", same.stderr);
        assert_eq!(same.stdout, verbose.stdout, "{args:?}");
    }
    assert!(
        verbose.stdout.starts_with(&out.stdout),
        "{}",
        verbose.stdout
    );
    let target = std::env::consts::ARCH;
    for expected in [
        "features:",
        "target:",
        target,
        "rustc:",
        "rustc 1.",
        "qcow2",
        "VMDK",
        "VHDX",
        "VDI",
        "LVM2",
        "ext4",
        "XFS",
        "vfat",
    ] {
        assert!(
            verbose.stdout.contains(expected),
            "version --verbose lacks {expected:?}:\n{}",
            verbose.stdout
        );
    }
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(&["completions", shell], &[]);
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        // fish names long options without their dashes (`-l format`).
        let format = if shell == "fish" {
            "-l format"
        } else {
            "--format"
        };
        for word in ["scan", format, "inspect", "completions"] {
            assert!(
                out.stdout.contains(word),
                "{shell} completions lack {word:?}"
            );
        }
    }
    let bash = run(&["completions", "bash"], &[]);
    let (code, _, stderr) = pipe("bash", &["-n"], &bash.stdout);
    assert_eq!(code, 0, "bash -n rejects the completions: {stderr}");
    let unknown = run(&["completions", "tcsh"], &[]);
    assert_eq!(unknown.code, 2);
}

/// groff's warnings (`-ww`) for a page, which must render and warn about nothing.
fn assert_renders(name: &str, page: &str) {
    assert!(
        page.starts_with(".ie") || page.contains(".TH"),
        "{name}: {page}"
    );
    let (code, text, stderr) = pipe("groff", &["-ww", "-man", "-Tutf8"], page);
    assert_eq!(code, 0, "{name}: groff failed: {stderr}");
    assert!(stderr.is_empty(), "{name}: groff warns:\n{stderr}");
    assert!(
        text.contains("amiscan"),
        "{name}: rendered nothing:\n{text}"
    );
}

#[test]
fn the_manual_page_renders_without_warnings() {
    let out = run(&["man"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_renders("amiscan.1", &out.stdout);
    // roff escapes the dashes of options.
    for word in ["scan", "inspect", "\\-\\-color", "qcow2"] {
        assert!(out.stdout.contains(word), "the page lacks {word:?}");
    }

    let dir = std::env::temp_dir().join(format!("amiscan-cli-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = run(&["man", "--out", dir.to_str().unwrap()], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for expected in ["amiscan.1", "amiscan-scan.1", "amiscan-rules-list.1"] {
        assert!(pages.iter().any(|p| p == expected), "{pages:?}");
    }
    for page in &pages {
        assert_renders(page, &std::fs::read_to_string(dir.join(page)).unwrap());
    }
    let scan = std::fs::read_to_string(dir.join("amiscan-scan.1")).unwrap();
    assert!(scan.contains("fail\\-on"), "{scan}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// SGR escapes (`ESC [ … m`) right before `word` (a table cell's padding may come between).
fn painted(text: &str, word: &str) -> bool {
    regex::Regex::new(&format!(r"(\x1b\[[0-9;]*m)+ ?{}", regex::escape(word)))
        .unwrap()
        .is_match(text)
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let image = sample();
    let always = run(&["--color", "always", "scan", &image], &[]);
    assert_eq!(always.code, 1, "{}", always.stderr);
    assert!(painted(&always.stdout, "FAIL"), "{}", always.stdout);
    assert!(painted(&always.stdout, "critical"), "{}", always.stdout);
    // The colour is reset after the word.
    assert!(always.stdout.contains("FAIL\x1b["), "{}", always.stdout);
    // --color always wins over NO_COLOR; the flag is global, so it may follow the command.
    let forced = run(&["scan", &image, "--color=always"], &[("NO_COLOR", "1")]);
    assert!(painted(&forced.stdout, "FAIL"), "{}", forced.stdout);

    let plain_runs = [
        run(&["--color", "never", "scan", &image], &[]),
        run(&["scan", &image], &[("NO_COLOR", "1")]),
        // Piped, and auto: no colour.
        run(&["scan", &image], &[]),
        run(
            &["--color", "always", "scan", &image, "--format", "json"],
            &[],
        ),
        run(
            &["--color", "always", "scan", &image, "--format", "sarif"],
            &[],
        ),
        run(
            &["--color", "always", "scan", &image, "--format", "junit"],
            &[],
        ),
        run(
            &["--color", "always", "scan", &image, "--format", "jsonl"],
            &[],
        ),
        run(
            &["--color", "always", "scan", &image, "--format", "markdown"],
            &[],
        ),
    ];
    for out in &plain_runs {
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(!out.stdout.contains('\x1b'), "{}", out.stdout);
    }
    // Only the machine formats stay plain: the same run's table is coloured.
    assert!(painted(
        &run(&["--color", "always", "rules", "list"], &[]).stdout,
        "critical"
    ));
    assert!(!run(&["rules", "list"], &[]).stdout.contains('\x1b'));
}

/// Every line of `text` fits in `width` characters, and every line of one box (from its
/// top border to its bottom) is as wide as the others.
fn assert_fits(what: &str, text: &str, width: usize) {
    let mut box_width: Option<usize> = None;
    for line in text.lines() {
        let chars = line.chars().count();
        assert!(
            chars <= width,
            "{what} at {width} columns: a line of {chars}:\n{line}\n\n{text}"
        );
        let first = line.chars().next();
        if first == Some('┌') {
            box_width = Some(chars);
        }
        if let Some(expected) = box_width {
            assert!(
                matches!(first, Some('│' | '╞' | '└' | '┌')),
                "{what} at {width} columns: a box line that does not start with a border:\n{line}\n\n{text}"
            );
            assert_eq!(
                chars, expected,
                "{what} at {width} columns: box lines differ in width:\n{line}\n\n{text}"
            );
        }
        if first == Some('└') {
            box_width = None;
        }
    }
    assert!(box_width.is_none(), "{what}: a box is not closed:\n{text}");
}

#[test]
fn tables_keep_to_the_width() {
    let image = sample();
    let commands: [(&str, Vec<&str>, i32); 3] = [
        ("inspect", vec!["inspect", &image], 0),
        ("rules list", vec!["rules", "list"], 0),
        ("scan", vec!["scan", &image], 1),
    ];
    for width in ["60", "80", "120"] {
        for (what, args, code) in &commands {
            let out = run(args, &[("COLUMNS", width)]);
            assert_eq!(out.code, *code, "{what}: {}", out.stderr);
            assert!(
                out.stdout.contains('┌'),
                "{what}: no table:\n{}",
                out.stdout
            );
            assert_fits(what, &out.stdout, width.parse().unwrap());
        }
    }
    // Neither a terminal nor COLUMNS: 80.
    for (what, args, _) in &commands {
        assert_fits(what, &run(args, &[]).stdout, 80);
    }
    // At 80 columns a sample volume's row stays on one line: the UUID loses its middle
    // rather than wrap.
    let inspect = run(&["inspect", &image], &[("COLUMNS", "80")]).stdout;
    assert!(
        inspect
            .lines()
            .any(|l| l.starts_with("│ p1 ") && l.contains('…') && l.contains("yes")),
        "{inspect}"
    );
    // Wide enough, nothing is shortened.
    let wide = run(&["inspect", &image], &[("COLUMNS", "200")]).stdout;
    assert!(!wide.contains('…'), "{wide}");
}

#[test]
fn every_argument_and_command_has_help() {
    fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in command.get_subcommands() {
            let name = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() && sub.get_long_about().is_none() {
                missing.push(name.clone());
            }
            walk(sub, &name, missing);
        }
    }
    let mut missing = Vec::new();
    let mut command = amiscan::cli::Cli::command();
    command.build();
    walk(&command, "amiscan", &mut missing);
    assert!(missing.is_empty(), "without help: {missing:#?}");

    let help = run(&["--help"], &[]).stdout;
    for word in [
        "raw", "EBS", "qcow2", "VMDK", "VHD", "VHDX", "VDI", "ext4", "XFS", "vfat", "LVM2",
    ] {
        assert!(help.contains(word), "--help lacks {word:?}:\n{help}");
    }
}

#[test]
fn an_unreadable_pack_names_the_file_without_a_position() {
    let out = run(&["rules", "check", "missing.yaml"], &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .lines()
            .any(|l| l == "missing.yaml: No such file or directory"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(":0:0"), "{}", out.stderr);
    // A problem with a position keeps FILE:LINE:COLUMN.
    let dir = std::env::temp_dir().join(format!("amiscan-cli-pack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pack = dir.join("bad.yaml");
    std::fs::write(&pack, "rules:\n  - id: x\n    bogus: 1\n").unwrap();
    let out = run(&["rules", "check", pack.to_str().unwrap()], &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let located = format!("{}:", pack.display());
    assert!(
        regex::Regex::new(&format!(r"{}\d+:\d+: ", regex::escape(&located)))
            .unwrap()
            .is_match(&out.stderr),
        "{}",
        out.stderr
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
