//! Unit tests of the sshd configuration reader, with an in-memory guest.

use super::arguments::parse_time;
use super::lines::{argv_split, parse_line, split_lines, Line};
use super::match_line::parse_match;
use super::parser::has_magic;
use super::*;
use crate::facts::{DirItem, FactErrorKind, MAX_CONFIG_BYTES};
use crate::filesystems::FileKind;
use std::collections::BTreeMap;

/// A guest held in memory: files, directories (implied by paths) and symlinks.
#[derive(Default)]
struct Guest {
    files: BTreeMap<String, Vec<u8>>,
    links: BTreeMap<String, String>,
    dirs: Vec<String>,
}

impl Guest {
    fn with(files: &[(&str, &str)]) -> Self {
        let mut guest = Guest::default();
        for (path, text) in files {
            guest.add(path, text.as_bytes().to_vec());
        }
        guest
    }

    fn add(&mut self, path: &str, bytes: Vec<u8>) {
        self.files.insert(path.to_string(), bytes);
    }

    fn is_dir(&self, path: &str) -> bool {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        path == "/"
            || self.dirs.iter().any(|d| d == path)
            || self
                .files
                .keys()
                .chain(self.links.keys())
                .any(|p| p.starts_with(&prefix))
            || self.dirs.iter().any(|d| d.starts_with(&prefix))
    }
}

impl GuestFiles for Guest {
    fn read(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, FactError> {
        if path.contains("unreadable") {
            return Err(FactError::unreadable(path, "Permission denied"));
        }
        Ok(self
            .files
            .get(path)
            .map(|b| b.iter().copied().take(limit as usize).collect()))
    }

    fn list(&self, path: &str) -> Result<Option<Vec<DirItem>>, FactError> {
        if !self.is_dir(path) {
            return Ok(None);
        }
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let mut names: Vec<String> = self
            .files
            .keys()
            .chain(self.links.keys())
            .chain(self.dirs.iter())
            .filter_map(|p| p.strip_prefix(&prefix))
            .filter_map(|rest| rest.split('/').next())
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        names.sort();
        names.dedup();
        Ok(Some(
            names
                .into_iter()
                .map(|name| {
                    let full = format!("{prefix}{name}");
                    let kind = self.kind(&full).ok().flatten().unwrap_or(FileKind::File);
                    DirItem {
                        name: name.into_bytes(),
                        kind,
                    }
                })
                .collect(),
        ))
    }

    fn read_link(&self, path: &str) -> Result<Option<Vec<u8>>, FactError> {
        Ok(self.links.get(path).map(|t| t.as_bytes().to_vec()))
    }

    fn kind(&self, path: &str) -> Result<Option<FileKind>, FactError> {
        Ok(if self.links.contains_key(path) {
            Some(FileKind::Symlink)
        } else if self.files.contains_key(path) {
            Some(FileKind::File)
        } else if self.is_dir(path) {
            Some(FileKind::Dir)
        } else {
            None
        })
    }
}

fn error_of(guest: &Guest) -> String {
    read_config(guest).expect_err("a FactError").to_string()
}

fn config(files: &[(&str, &str)]) -> SshdConfig {
    read_config(&Guest::with(files)).expect("readable")
}

fn words(line: &str) -> Option<(String, Vec<String>)> {
    match parse_line(line.as_bytes(), 1)? {
        Line::Directive {
            keyword, tokens, ..
        } => Some((keyword, tokens.into_iter().map(|t| t.text).collect())),
        Line::Broken { message, .. } => Some((format!("broken: {message}"), Vec::new())),
    }
}

#[test]
fn lines_split_like_sshd() {
    let w = |k: &str, v: &[&str]| Some((k.to_string(), v.iter().map(|s| s.to_string()).collect()));
    assert_eq!(
        words("PasswordAuthentication no"),
        w("PasswordAuthentication", &["no"])
    );
    assert_eq!(
        words("PasswordAuthentication=no"),
        w("PasswordAuthentication", &["no"])
    );
    assert_eq!(
        words("PasswordAuthentication = no"),
        w("PasswordAuthentication", &["no"])
    );
    // Only one `=` is a separator.
    assert_eq!(words("UsePAM==yes"), w("UsePAM", &["=yes"]));
    assert_eq!(words("A b # c d"), w("A", &["b"]));
    assert_eq!(words("A b#c"), w("A", &["b#c"]));
    assert_eq!(
        words("A \"b c\" 'd e' f\\ g"),
        w("A", &["b c", "d e", "f g"])
    );
    assert_eq!(words("A x\"y z\"w"), w("A", &["xy zw"]));
    assert_eq!(words("\"UsePAM\" yes"), w("UsePAM", &["yes"]));
    assert_eq!(words("A b\x0c"), w("A", &["b"]));
    assert_eq!(words("#A b"), None);
    assert_eq!(words(""), None);
    assert_eq!(words("\"A b"), None);
    assert_eq!(
        words("A"),
        w("broken: no argument after keyword \"A\"", &[])
    );
    assert_eq!(
        words("A="),
        w("broken: no argument after keyword \"A\"", &[])
    );
    assert_eq!(words("A \"b"), w("broken: A: invalid quotes", &[]));

    // A NUL cuts its line and swallows the newline; leading blanks and CRs go.
    let lines = split_lines(b"  A no\0junk\n\tB yes\r\n\r\n\n C 1");
    let got: Vec<(usize, String, Vec<String>)> = lines
        .into_iter()
        .filter_map(|l| match l {
            Line::Directive {
                line,
                keyword,
                tokens,
                ..
            } => Some((line, keyword, tokens.into_iter().map(|t| t.text).collect())),
            Line::Broken { .. } => None,
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                1,
                "A".to_string(),
                vec!["noB".to_string(), "yes".to_string()]
            ),
            (5, "C".to_string(), vec!["1".to_string()]),
        ]
    );
}

#[test]
fn include_components_need_matching_as_glob_decides() {
    assert!(has_magic(b"*.conf") && has_magic(b"[ab]"));
    assert!(!has_magic(b"a\\*") && !has_magic(b"[x"));
}

#[test]
fn match_criteria_like_sshd() {
    let parse = |s: &str| {
        parse_match(
            s.as_bytes(),
            argv_split(s.as_bytes()).map_or(0, |t| t.len()),
        )
    };
    let (conditions, text) = parse("User alice,bob Address 10.0.0.0/8 # admins").unwrap();
    assert_eq!(text, "User alice,bob Address 10.0.0.0/8");
    assert_eq!(
        conditions[1],
        ("address".to_string(), "10.0.0.0/8".to_string())
    );
    assert_eq!(
        parse("all").unwrap().0,
        [("all".to_string(), String::new())]
    );
    assert_eq!(parse("All # every connection").unwrap().1, "All");
    assert!(parse("all User x").is_err());
    assert!(parse("User x all").is_err());
    assert!(parse("User").is_err());
    assert!(parse("Colour blue").is_err());
    assert!(parse("Address 10.0.0.1/8").is_err(), "host bits set");
    assert!(parse("Address 10.0.0.0/33").is_err());
    assert!(parse("Address 192.168.*,!10.1.0.0/16,fe80::/10").is_ok());
    assert!(parse("Address 10.0.0.0/8,,10.1.0.0/16").is_err());
    let e = parse("LocalPort 70000").unwrap_err();
    assert_eq!(e.kind, FactErrorKind::Rejected);
    assert_eq!(e.to_string(), "invalid LocalPort '70000' on Match line");
    assert!(parse("LocalPort 2222").is_ok());
}

#[test]
fn values_checked_like_sshd() {
    let c = config(&[(
        MAIN_CONFIG,
        "PasswordAuthentication yes no\nPermitRootLogin maybe\nMaxAuthTries -1\n\
         LoginGraceTime 1h30m\nClientAliveInterval 5x\nPermitTunnel YES\nNoSuchThing 1\n\
         PermitEmptyPasswords\nPort 0\nAuthorizedKeysFile a \"\" b\nX11Forwarding #c\n",
    )]);
    let lines: Vec<usize> = c.problems.iter().map(|(o, _)| o.line).collect();
    assert_eq!(lines, [1, 2, 3, 5, 6, 7, 8, 9, 10, 11], "{:?}", c.problems);
    assert_eq!(c.occurrences.len(), 1);
    assert_eq!(parse_time("1h30m"), Some(5400));
    assert_eq!(parse_time("2147483648"), None);
}

#[test]
fn effective_values_and_defaults() {
    let c = config(&[
        (MAIN_CONFIG, "Include sshd_config.d/*.conf\nPermitRootLogin without-password\nAllowUsers a b\nAllowUsers c\nIPQoS af21\nIPQoS lowdelay\nForceCommand echo hi # not a comment\n"),
        ("/etc/ssh/sshd_config.d/x.conf", "challengeresponseauthentication no\n"),
    ]);
    let root = c.effective("permitrootlogin");
    assert_eq!(
        (root.value.as_str(), root.normalised.as_str()),
        ("without-password", "prohibit-password")
    );
    assert_eq!(root.origin.map(|o| o.line), Some(2));
    let kbd = c.effective("KbdInteractiveAuthentication");
    assert_eq!(kbd.normalised, "no");
    assert_eq!(c.occurrences[0].keyword, "kbdinteractiveauthentication");
    assert_eq!(
        c.occurrences[0].written_keyword,
        "challengeresponseauthentication"
    );
    assert_eq!(c.effective("allowusers").tokens, ["a", "b", "c"]);
    assert_eq!(c.effective("ipqos").value, "lowdelay");
    assert_eq!(c.effective("forcecommand").value, "echo hi # not a comment");
    let password = c.effective("passwordauthentication");
    assert_eq!(
        (password.normalised.as_str(), password.origin),
        ("yes", None)
    );
    assert_eq!(
        c.authorized_keys_files(),
        [".ssh/authorized_keys", ".ssh/authorized_keys2"]
    );
    assert_eq!(c.effective("NoSuchKeyword").value, "");
    assert_eq!(c.effective("ciphers").origin, None);
    assert_eq!(
        canonical_keyword("skeyauthentication"),
        Some("KbdInteractiveAuthentication")
    );
    assert_eq!(canonical_keyword("bogus"), None);
}

#[test]
fn no_binary_no_config() {
    let guest = Guest::with(&[(MAIN_CONFIG, "PasswordAuthentication no\n")]);
    assert!(!sshd_installed(&guest).unwrap());
    assert!(read(&guest).unwrap().is_none());
    let mut guest = guest;
    guest
        .links
        .insert("/usr/sbin/sshd".into(), "/nonexistent".into());
    assert!(sshd_installed(&guest).unwrap());
    let c = read(&guest).unwrap().unwrap();
    assert_eq!(c.effective("passwordauthentication").normalised, "no");
    let empty = config(&[]);
    assert_eq!(empty.main_file, None);
    assert_eq!(empty.effective("UsePAM").normalised, "no");
}

#[test]
fn unreadable_and_unopenable_files() {
    let e = read_config(&Guest::with(&[
        (MAIN_CONFIG, "Include unreadable.conf\n"),
        ("/etc/ssh/unreadable.conf", "x"),
    ]));
    let e = e.expect_err("a FactError");
    assert_eq!(e.kind, FactErrorKind::Unreadable);
    assert!(e.to_string().contains("Permission denied"));
    let mut guest = Guest::with(&[(
        MAIN_CONFIG,
        "Include d/*.conf dir.conf\nPermitRootLogin no\n",
    )]);
    guest.dirs.push("/etc/ssh/dir.conf".into());
    guest
        .links
        .insert("/etc/ssh/d/x.conf".into(), "/gone".into());
    let c = read_config(&guest).unwrap();
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    assert!(c.problems[0].1.contains("cannot be opened"));
    // sshd exits there: nothing after is read.
    assert!(c.occurrences.is_empty());
    let mut huge = Guest::default();
    huge.add(MAIN_CONFIG, vec![b'#'; MAX_CONFIG_BYTES as usize + 1]);
    assert!(error_of(&huge).contains("larger than"));
    let e = read_config(&huge).expect_err("a FactError");
    assert_eq!(e.kind, FactErrorKind::TooLarge);
    assert_eq!(
        e.to_string(),
        format!("{MAIN_CONFIG}: larger than {MAX_CONFIG_BYTES} bytes; not read")
    );
}

#[test]
fn include_depth_is_sshds() {
    let chain = |levels: usize| {
        let mut guest = Guest::with(&[(MAIN_CONFIG, "Include l1.conf\n")]);
        for i in 1..=levels {
            let text = if i == levels {
                "PasswordAuthentication no\n".to_string()
            } else {
                format!("Include l{}.conf\n", i + 1)
            };
            guest.add(&format!("/etc/ssh/l{i}.conf"), text.into_bytes());
        }
        read_config(&guest).unwrap()
    };
    let ok = chain(16);
    assert!(ok.problems.is_empty(), "{:?}", ok.problems);
    assert_eq!(ok.effective("passwordauthentication").normalised, "no");
    let deep = chain(17);
    assert_eq!(deep.problems.len(), 1);
    assert_eq!(deep.problems[0].0.path, "/etc/ssh/l16.conf");
}

#[test]
fn cycles_and_fan_out_are_bounded() {
    let start = std::time::Instant::now();
    // Each file includes itself twice: without sshd's exit at depth 17 that is 2^17 parses.
    let c = config(&[(MAIN_CONFIG, "Include sshd_config sshd_config\n")]);
    assert_eq!(c.problems.len(), 1);
    // A tree of distinct files, three wide and fifteen deep: 3^15 parses.
    let mut guest = Guest::with(&[(MAIN_CONFIG, "Include f1.conf\n")]);
    for i in 1..=15 {
        let next = format!("f{}.conf", i + 1);
        guest.add(
            &format!("/etc/ssh/f{i}.conf"),
            format!("Include {next} {next} {next}\nUsePAM yes\n").into_bytes(),
        );
    }
    assert!(error_of(&guest).contains("included sshd configuration files"));
    assert!(start.elapsed().as_secs() < 20);
}

#[test]
fn huge_and_hostile_input_is_bounded() {
    // Many lines: one 4 MiB file read eight times.
    let big = "PasswordAuthentication no\n".repeat((MAX_CONFIG_BYTES / 26) as usize);
    let mut guest = Guest::with(&[(MAIN_CONFIG, "Include a a a a a a a a\n")]);
    guest.add("/etc/ssh/a", big.into_bytes());
    assert!(error_of(&guest).contains("configuration lines"));
    let e = read_config(&guest).expect_err("a FactError");
    assert_eq!(e.kind, FactErrorKind::LimitReached);

    let blocks = "Match all\n".repeat(MAX_MATCH_BLOCKS + 1);
    assert!(error_of(&Guest::with(&[(MAIN_CONFIG, &blocks)])).contains("Match blocks"));

    // Binary garbage: deterministic pseudo-random bytes, with the separators sshd cares
    // about made frequent.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..64 {
        let mut bytes = Vec::new();
        for _ in 0..4096 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let b = (state >> 24) as u8;
            bytes.push(match b % 16 {
                0 => b'\n',
                1 => b'"',
                2 => b'=',
                3 => b' ',
                4 => b'#',
                5 => b'*',
                _ => b,
            });
        }
        let prefix = if round % 2 == 0 {
            &b"Match User x\nInclude *\n"[..]
        } else {
            &b"Include /etc/ssh/*\n"[..]
        };
        let mut main = prefix.to_vec();
        main.extend_from_slice(&bytes);
        let mut guest = Guest::default();
        guest.add(MAIN_CONFIG, main);
        guest.add("/etc/ssh/other", bytes);
        let _ = read_config(&guest);
    }

    // Many directories for a glob to list.
    let mut guest = Guest::with(&[(MAIN_CONFIG, "Include /*/*/*/*/*.conf\n")]);
    for i in 0..40 {
        for j in 0..40 {
            guest.add(&format!("/d{i}/e{j}/f/g/x.conf"), b"UsePAM yes\n".to_vec());
        }
    }
    assert!(error_of(&guest).contains("directories"));
}

#[test]
fn match_blocks_and_includes() {
    let c = config(&[
        (MAIN_CONFIG, "Include sshd_config.d/*.conf\nPasswordAuthentication no\nMatch User a\n  Include m.conf\n  X11Forwarding yes\n"),
        ("/etc/ssh/sshd_config.d/10.conf", "UsePAM yes\nMatch Address 10.0.0.0/8\n  PermitRootLogin yes\n"),
        ("/etc/ssh/m.conf", "PermitEmptyPasswords yes\nMatch all\n  PasswordAuthentication yes\n"),
    ]);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let criteria: Vec<(&str, Option<usize>)> = c
        .match_blocks
        .iter()
        .map(|b| (b.criteria.as_str(), b.parent))
        .collect();
    assert_eq!(
        criteria,
        [
            ("Address 10.0.0.0/8", None),
            ("User a", None),
            ("all", Some(1))
        ]
    );
    // The Match in 10.conf ended with the file.
    assert_eq!(
        c.effective("passwordauthentication").origin.map(|o| o.line),
        Some(2)
    );
    assert_eq!(c.match_blocks[1].settings.len(), 2);
    assert_eq!(
        c.match_blocks[1].settings[0].keyword,
        "permitemptypasswords"
    );
    // `Match all` inside a block applies only with its parent.
    assert_eq!(c.effective("passwordauthentication").normalised, "no");
    let for_a = c.effective_for("passwordauthentication", &|b| b.criteria == "User a");
    assert_eq!(for_a.normalised, "yes");
    assert_eq!(
        c.effective_for("permitrootlogin", &|b| b.criteria.starts_with("Address"))
            .normalised,
        "yes"
    );
    assert_eq!(c.effective_for("usepam", &|_| true).normalised, "yes");
}
