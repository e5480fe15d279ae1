//! The remediation script (`scan --remediation-script`), executed: guest paths with quotes,
//! spaces, `$(...)`, newlines, leading dashes, globs and bytes that are not UTF-8 reach the
//! helpers as one argument each, and only the right file goes; helpers refuse symlinks that
//! lead out of the copied tree; files are edited exactly and a second run changes nothing.
//! End to end, through the CLI: the script made from each rule image, run against a copy of
//! the tree the image was built from, then the image rebuilt from the copy and scanned
//! again: a rule with a `fix` fails afterwards only on findings its fix says it leaves for
//! review, and every failing rule's leftovers were listed as `# manual` in the script.
//!
//! Every run sets AMISCAN_ROOT to a directory under the test's scratch directory: the
//! script is never run against the live system.

use crate::util;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use amiscan::names::escape_for_terminal;
use amiscan::report::remediation::write_script;
use amiscan::rules::engine::Finding;
use amiscan::rules::pack::{parse, Pack, Rule};
use serde_json::Value;
use util::{amiscan, amiscan_env, rule_disk, rule_image, rule_tree, single_image};

/// Scans are judged as of this day, as in tests/integration/scan_rules.rs.
const AS_OF: &str = "2026-11-22";

/// A fresh scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("remediation")
        .join(test);
    if dir.exists() {
        // A tree a script cleaned may hold directories without write permission.
        let _ = crate::util::tool_command("chmod")
            .arg("-R")
            .arg("u+rwx")
            .arg(&dir)
            .status();
        fs::remove_dir_all(&dir).unwrap();
    }
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A pack's rules by id, from YAML text.
fn rules(yaml: &str) -> BTreeMap<String, Rule> {
    parse("test.yaml", yaml)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect()
}

/// A rule of a test pack; `fix` is the YAML of its `fix:` fields (or empty for none).
fn rule_yaml(id: &str, fix: &str) -> String {
    let mut text = format!(
        "  - id: {id}\n    title: test rule {id}\n    severity: high\n    description: d\n    \
         remediation: |\n      # Do it by hand, {id}.\n      more\n    check:\n      kind: path\n      \
         paths: [\"/x\"]\n      message: m\n"
    );
    if !fix.is_empty() {
        text.push_str("    fix:\n");
        for line in fix.lines() {
            text.push_str("      ");
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// A finding at a guest path given as bytes, shown as checks show paths.
fn finding_at(path: &[u8], message: &str) -> Finding {
    Finding::at(path.to_vec(), message)
}

fn script_text(image: &str, failing: &[(&Rule, Vec<&Finding>)]) -> String {
    let mut out = Vec::new();
    write_script(&mut out, image, failing).unwrap();
    String::from_utf8(out).expect("the script is UTF-8 text")
}

/// `dash -n` and `bash -n` accept the script.
fn assert_parses(script: &Path) {
    for shell in ["dash", "bash"] {
        let output = Command::new(shell).arg("-n").arg(script).output().unwrap();
        assert!(
            output.status.success(),
            "{shell} -n {}: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Runs the script with `shell` against `root` (never the live system), from `cwd`, with a
/// minimal environment.
fn run_script(shell: &str, script: &Path, root: &Path, cwd: &Path) -> Output {
    assert!(root.is_absolute() && root.is_dir() && root != Path::new("/"));
    let tmp = cwd.join("tmpdir");
    fs::create_dir_all(&tmp).unwrap();
    Command::new(shell)
        .arg(script)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("AMISCAN_ROOT", root)
        .env("TMPDIR", &tmp)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {}; stdout:\n{}stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `cp -a FROM TO`, as a publisher would copy a tree.
fn copy_tree(from: &Path, to: &Path) {
    let status = crate::util::tool_command("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

/// Every node under `root`: type, mode, owner, size, content hash or link target. No
/// times: truncating an empty file again touches its mtime, not its content.
fn manifest(root: &Path) -> BTreeMap<Vec<u8>, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<Vec<u8>, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            let what = if meta.file_type().is_symlink() {
                format!("link {:?}", fs::read_link(&path).unwrap())
            } else if meta.is_dir() {
                walk(root, &path, out);
                "dir".to_string()
            } else {
                format!("file {}", util::sha256_file(&path))
            };
            out.insert(
                rel,
                format!(
                    "{what} {:o} {}:{} {}",
                    meta.mode(),
                    meta.uid(),
                    meta.gid(),
                    meta.len()
                ),
            );
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

// ---------------------------------------------------------------------------------------
// Quoting and confinement, with findings made by hand.
// ---------------------------------------------------------------------------------------

/// Names that break a command when quoted badly, each next to the decoys a bad quoting
/// would hit instead.
const HOSTILE: &[&[u8]] = &[
    b"it's a \"file\"",
    b"$(touch PWNED)",
    b"`touch PWNED`",
    b"a;touch PWNED;b",
    b"new\nline",
    b"trailing\n",
    b"-rf",
    b"*",
    b" lead space",
    b"100% \\done\\ \x1b[31m",
    b"caf\xe9",
    b"tab\there",
    b"rtl\xe2\x80\xaeexe.txt",
];

const DECOYS: &[&[u8]] = &[
    b"it",
    b"s",
    b"a",
    b"new",
    b"line",
    b"trailing",
    b"rf",
    b"-",
    b"lead",
    b"100%",
    b"caf",
    b"tab",
    b"here",
    b"keep",
    b"PWNED.not",
];

#[test]
fn hostile_guest_paths_remove_exactly_their_file() {
    let dir = scratch("hostile");
    let pack = rules(&format!(
        "rules:\n{}",
        rule_yaml("test.remove", "each: amiscan_remove {path}")
    ));
    let rule = &pack["test.remove"];
    let mut findings = Vec::new();
    for name in HOSTILE {
        let mut path = b"/srv/x/".to_vec();
        path.extend_from_slice(name);
        findings.push(finding_at(&path, "hostile name"));
    }
    findings.push(finding_at(b"/-n", "a leading dash at the top"));
    let text = script_text("hostile.img", &[(rule, findings.iter().collect())]);
    // One command line per finding: no raw control character reaches the script.
    assert!(
        text.chars().all(|c| c == '\n' || !c.is_control()),
        "control characters in the script:\n{text}"
    );
    assert!(!text.contains('\u{202e}'), "a bidi override in the script");
    let script = dir.join("fix.sh");
    fs::write(&script, &text).unwrap();
    assert_parses(&script);

    for shell in ["sh", "dash", "bash"] {
        let root = dir.join(format!("root-{shell}"));
        let cwd = dir.join(format!("cwd-{shell}"));
        let x = root.join("srv/x");
        fs::create_dir_all(&x).unwrap();
        fs::create_dir_all(&cwd).unwrap();
        for name in HOSTILE.iter().chain(DECOYS) {
            fs::write(x.join(OsStr::from_bytes(name)), b"content").unwrap();
        }
        fs::write(root.join("-n"), b"top").unwrap();
        fs::write(root.join("n"), b"decoy").unwrap();
        let output = run_script(shell, &script, &root, &cwd);
        assert!(output.status.success(), "{shell}: {}", describe(&output));
        assert!(output.stderr.is_empty(), "{shell}: {}", describe(&output));
        let left: BTreeSet<Vec<u8>> = fs::read_dir(&x)
            .unwrap()
            .map(|e| e.unwrap().file_name().as_bytes().to_vec())
            .collect();
        let want: BTreeSet<Vec<u8>> = DECOYS.iter().map(|d| d.to_vec()).collect();
        assert_eq!(
            left.iter()
                .map(|n| escape_for_terminal(n))
                .collect::<Vec<_>>(),
            want.iter()
                .map(|n| escape_for_terminal(n))
                .collect::<Vec<_>>(),
            "{shell}: exactly the hostile names must be gone"
        );
        assert!(
            !root.join("-n").exists() && root.join("n").exists(),
            "{shell}"
        );
        for place in [&root, &cwd, &x] {
            assert!(
                !place.join("PWNED").exists(),
                "{shell}: a command ran in {place:?}"
            );
        }
    }
}

#[test]
fn helpers_stay_inside_the_copied_tree() {
    let dir = scratch("confined");
    let root = dir.join("root");
    let outside = dir.join("outside");
    let cwd = dir.join("cwd");
    for d in [&root, &outside, &cwd] {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(outside.join("victim"), b"host file").unwrap();
    fs::write(outside.join("log"), b"host log").unwrap();
    fs::set_permissions(outside.join("log"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::create_dir_all(root.join("srv")).unwrap();
    fs::create_dir_all(root.join("var/lib/cloud")).unwrap();
    fs::create_dir_all(root.join("var/log")).unwrap();
    fs::create_dir_all(root.join("etc/ssh")).unwrap();
    // Absolute and relative links out of the tree, above a finding and as the finding.
    std::os::unix::fs::symlink(&outside, root.join("srv/abs")).unwrap();
    std::os::unix::fs::symlink("../../outside", root.join("srv/rel")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("var/lib/cloud/instance")).unwrap();
    std::os::unix::fs::symlink(outside.join("log"), root.join("var/log/syslog")).unwrap();
    std::os::unix::fs::symlink(outside.join("log"), root.join("etc/shadow")).unwrap();
    std::os::unix::fs::symlink(outside.join("victim"), root.join("etc/ssh/sshd_config")).unwrap();
    // A file hard-linked from outside the tree, and a directory holding a link out of it.
    fs::hard_link(outside.join("victim"), root.join("srv/hard")).unwrap();
    fs::create_dir_all(root.join("srv/dir")).unwrap();
    fs::write(root.join("srv/dir/own"), b"tree file").unwrap();
    std::os::unix::fs::symlink(outside.join("victim"), root.join("srv/dir/out")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("srv/dir/outdir")).unwrap();

    let pack = rules(&format!(
        "rules:\n{}{}{}{}{}",
        rule_yaml("t.remove", "each: amiscan_remove {path}"),
        rule_yaml("t.truncate", "each: amiscan_truncate {path}"),
        rule_yaml("t.chmod", "each: amiscan_chmod o-rwx {path}"),
        rule_yaml("t.lock", "each: amiscan_lock_password {subject}"),
        rule_yaml("t.sshd", "once: amiscan_sshd_set PasswordAuthentication no"),
    ));
    let removes = [
        finding_at(b"/srv/abs/victim", "through an absolute link"),
        finding_at(b"/srv/rel/victim", "through a relative link"),
        finding_at(b"/srv/../../outside/victim", "dot-dot"),
        finding_at(b"/var/lib/cloud/instance", "the link itself"),
        finding_at(
            b"/var/lib/cloud/instance/",
            "a trailing slash follows the link",
        ),
        finding_at(b"/srv/hard", "a second link to a host file"),
        finding_at(b"/srv/dir", "a directory with links out"),
    ];
    let truncates = [finding_at(b"/var/log/syslog", "a link to a host log")];
    let chmods = [finding_at(b"/etc/shadow", "a link to a host file")];
    let locks = [finding_at(b"/etc/shadow", "m").subject("root")];
    let sshd = [finding_at(b"/etc/ssh/sshd_config", "m")];
    let text = script_text(
        "confined.img",
        &[
            (&pack["t.remove"], removes.iter().collect()),
            (&pack["t.truncate"], truncates.iter().collect()),
            (&pack["t.chmod"], chmods.iter().collect()),
            (&pack["t.lock"], locks.iter().collect()),
            (&pack["t.sshd"], sshd.iter().collect()),
        ],
    );
    let script = dir.join("fix.sh");
    fs::write(&script, &text).unwrap();
    assert_parses(&script);
    let host_before = manifest(&outside);
    let output = run_script("sh", &script, &root, &cwd);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for refused in [
        "/srv/abs/victim: /srv/abs is a symlink",
        "/srv/rel/victim: /srv/rel is a symlink",
        "/srv/../../outside/victim: has . or .. components",
        "/var/lib/cloud/instance/: not a file path",
        "/var/log/syslog: a symlink; not emptied",
        "/etc/shadow: a symlink; mode not changed",
        "/etc/shadow: a symlink in the copied tree",
        "/etc/ssh/sshd_config: a symlink in the copied tree",
    ] {
        assert!(stderr.contains(refused), "no {refused:?} in {stderr}");
    }
    assert_eq!(
        manifest(&outside),
        host_before,
        "a file outside the tree changed"
    );
    assert_eq!(fs::read(outside.join("log")).unwrap(), b"host log");
    assert!(
        fs::symlink_metadata(root.join("var/lib/cloud/instance")).is_err(),
        "the link itself is removed"
    );
    assert_eq!(fs::read(outside.join("victim")).unwrap(), b"host file");
    for gone in ["srv/hard", "srv/dir"] {
        assert!(
            fs::symlink_metadata(root.join(gone)).is_err(),
            "{gone} is still there"
        );
    }
}

#[test]
fn what_a_fix_cannot_do_is_listed_as_manual() {
    let pack = rules(&format!(
        "rules:\n{}{}{}{}",
        rule_yaml("t.none", ""),
        rule_yaml("t.each", "each: 'amiscan_remove {path} # {line}'"),
        rule_yaml(
            "t.once",
            "once: amiscan_sshd_set PasswordAuthentication no\nexcept: {message: 'in a Match block'}"
        ),
        rule_yaml("t.waived", "each: amiscan_remove {path}"),
    ));
    let none = [
        finding_at(b"/etc/b", "second"),
        finding_at(b"/etc/a", "first\nrm -rf / # a forged line"),
    ];
    let each = [
        finding_at(b"/etc/with-line", "has a line").line(3),
        finding_at(b"/etc/no-line", "has no line"),
        Finding {
            path: None,
            line: None,
            subject: Some("Keyword".into()),
            message: "no path at all".into(),
            severity: None,
            fingerprint: Some("AKIA…0123abcd".into()),
            residue: None,
        },
        finding_at(b"/etc/with-line", "has a line").line(3),
    ];
    let once = [
        finding_at(b"/etc/ssh/sshd_config", "global value").line(4),
        finding_at(b"/etc/ssh/sshd_config", "in a Match block").line(12),
    ];
    let forward = [
        (&pack["t.each"], each.iter().collect::<Vec<_>>()),
        (&pack["t.none"], none.iter().collect()),
        (&pack["t.once"], once.iter().collect()),
        (&pack["t.waived"], Vec::new()),
    ];
    let text = script_text("manual.img", &forward);
    let backward: Vec<_> = forward
        .iter()
        .rev()
        .map(|(r, f)| (*r, f.iter().rev().copied().collect()))
        .collect();
    assert_eq!(
        script_text("manual.img", &backward),
        text,
        "input order leaks"
    );

    let expect_in_order = [
        "# Remediation script for manual.img, written by amiscan ",
        "# 3 failing rule(s): 2 finding(s) handled by commands, 5 left for review (# manual).",
        "set -eu",
        "# ---- t.each (high): test rule t.each",
        "# /etc/with-line:3: has a line",
        "amiscan_remove '/etc/with-line' # 3",
        "# manual (t.each): Do it by hand, t.each.",
        "#   (Keyword): no path at all [no path to fill in {path}]",
        "#   /etc/no-line: has no line [no line to fill in {line}]",
        "# ---- t.none (high): test rule t.none",
        "# manual (t.none): Do it by hand, t.none.",
        "#   /etc/a: first\\u{a}rm -rf / # a forged line",
        "#   /etc/b: second",
        "# ---- t.once (high): test rule t.once",
        "# /etc/ssh/sshd_config:4: global value",
        "amiscan_sshd_set PasswordAuthentication no",
        "# manual (t.once): Do it by hand, t.once.",
        "#   /etc/ssh/sshd_config:12: in a Match block",
    ];
    let mut at = 0;
    for want in expect_in_order {
        let Some(found) = text[at..].find(want) else {
            panic!("{want:?} is missing or out of order in:\n{text}");
        };
        at += found + want.len();
    }
    assert_eq!(text.matches("amiscan_remove '/etc/with-line'").count(), 1);
    assert!(
        !text.contains("t.waived"),
        "a rule with no findings left is not mentioned"
    );
    assert!(
        !text.contains("AKIA"),
        "fingerprints stay out of the script"
    );
    assert!(
        text.lines()
            .all(|l| !l.trim_start().starts_with("rm -rf /")),
        "a message forged a command line:\n{text}"
    );

    // Nothing failing: a script that says so and does nothing.
    let dir = scratch("nothing");
    let empty = script_text("sealed.img", &[]);
    assert!(empty.contains("# No rule failed"), "{empty}");
    let script = dir.join("fix.sh");
    fs::write(&script, &empty).unwrap();
    let root = dir.join("root");
    fs::create_dir_all(&root).unwrap();
    let output = run_script("sh", &script, &root, &dir);
    assert!(output.status.success(), "{}", describe(&output));
}

#[test]
fn configuration_edits_are_exact_and_idempotent() {
    let dir = scratch("edits");
    let root = dir.join("root");
    let cwd = dir.join("cwd");
    fs::create_dir_all(&cwd).unwrap();
    let files: &[(&str, &str, u32)] = &[
        (
            "etc/ssh/sshd_config",
            "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication yes\n  \
             challengeresponseauthentication=yes\nUsePAM yes\n\nMatch Address 10.0.0.0/8\n\t\
             PasswordAuthentication yes\n\tKbdInteractiveAuthentication yes\n",
            0o644,
        ),
        (
            "etc/shadow",
            "root:$6$abc$def:19700:0:99999:7:::\nguest::19700::::::\nlocked:!$6$x$y:1::::::\n\
             star:*:1::::::\ndouble:!!:1::::::\n",
            0o640,
        ),
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nlegacy:$1$ab$cd:1002:1002::/home/legacy:/bin/sh\n\
             guest:x:1001:1001::/home/guest:/bin/sh\n",
            0o644,
        ),
        (
            "etc/inetd.conf",
            "# a comment naming telnet\ntelnet stream tcp nowait root /usr/sbin/tcpd \
             /usr/sbin/telnetd\n127.0.0.1:telnet stream tcp nowait root /usr/sbin/in.telnetd \
             in.telnetd\nftp stream tcp nowait root /usr/sbin/tcpd /usr/sbin/ftpd\n",
            0o644,
        ),
        (
            "etc/xinetd.d/tftp",
            "service tftp\n{\n\tsocket_type = dgram\n\tdisable = no\n}\n\nservice other\n{\n\t\
             disable = no\n}\n\nservice tftp\n{\n\tid = tftp-tcp\n}\n",
            0o644,
        ),
    ];
    for (path, text, mode) in files {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(*mode)).unwrap();
    }
    let pack = rules(&format!(
        "rules:\n{}{}{}{}",
        rule_yaml("t.sshd", "once: amiscan_sshd_set PasswordAuthentication no"),
        rule_yaml(
            "t.kbd",
            "once: amiscan_sshd_set KbdInteractiveAuthentication no"
        ),
        rule_yaml("t.lock", "each: amiscan_lock_password {subject}"),
        rule_yaml(
            "t.service",
            "each: amiscan_disable_service {subject} {path}"
        ),
    ));
    let any = [finding_at(b"/etc/ssh/sshd_config", "m")];
    let accounts: Vec<Finding> = ["root", "guest", "locked", "star", "double", "legacy"]
        .iter()
        .map(|u| finding_at(b"/etc/shadow", "m").subject(*u))
        .collect();
    let services = [
        finding_at(b"/etc/inetd.conf", "inetd").subject("telnet"),
        finding_at(b"/etc/xinetd.d/tftp", "xinetd").subject("tftp"),
    ];
    let text = script_text(
        "edits.img",
        &[
            (&pack["t.sshd"], any.iter().collect()),
            (&pack["t.kbd"], any.iter().collect()),
            (&pack["t.lock"], accounts.iter().collect()),
            (&pack["t.service"], services.iter().collect()),
        ],
    );
    let script = dir.join("fix.sh");
    fs::write(&script, &text).unwrap();
    assert_parses(&script);
    let output = run_script("sh", &script, &root, &cwd);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(output.stderr.is_empty(), "{}", describe(&output));

    let read = |path: &str| fs::read_to_string(root.join(path)).unwrap();
    assert_eq!(
        read("etc/ssh/sshd_config"),
        "# amiscan: PasswordAuthentication comes first: sshd uses the first value it reads.\n\
         PasswordAuthentication no\n\
         # amiscan: KbdInteractiveAuthentication comes first: sshd uses the first value it reads.\n\
         KbdInteractiveAuthentication no\n\
         Include /etc/ssh/sshd_config.d/*.conf\n\
         # amiscan: PasswordAuthentication yes\n\
         # amiscan:   challengeresponseauthentication=yes\n\
         UsePAM yes\n\nMatch Address 10.0.0.0/8\n\tPasswordAuthentication yes\n\t\
         KbdInteractiveAuthentication yes\n",
        "Match blocks are left alone"
    );
    assert_eq!(
        read("etc/shadow"),
        "root:!$6$abc$def:19700:0:99999:7:::\nguest:!:19700::::::\nlocked:!$6$x$y:1::::::\n\
         star:*:1::::::\ndouble:!!:1::::::\n"
    );
    assert_eq!(
        read("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\nlegacy:!$1$ab$cd:1002:1002::/home/legacy:/bin/sh\n\
         guest:x:1001:1001::/home/guest:/bin/sh\n"
    );
    assert_eq!(
        read("etc/inetd.conf"),
        "# a comment naming telnet\n#<off># telnet stream tcp nowait root /usr/sbin/tcpd \
         /usr/sbin/telnetd\n#<off># 127.0.0.1:telnet stream tcp nowait root \
         /usr/sbin/in.telnetd in.telnetd\nftp stream tcp nowait root /usr/sbin/tcpd \
         /usr/sbin/ftpd\n"
    );
    assert_eq!(
        read("etc/xinetd.d/tftp"),
        "service tftp\n{\n\tsocket_type = dgram\n#\tdisable = no\n\tdisable\t\t= yes\n}\n\n\
         service other\n{\n\tdisable = no\n}\n\nservice tftp\n{\n\tid = tftp-tcp\n\t\
         disable\t\t= yes\n}\n"
    );
    for (path, _, mode) in files {
        let meta = fs::metadata(root.join(path)).unwrap();
        assert_eq!(meta.mode() & 0o7777, *mode, "{path}: the mode changed");
    }

    let once = manifest(&root);
    let output = run_script("sh", &script, &root, &cwd);
    assert!(output.status.success(), "second run: {}", describe(&output));
    assert_eq!(manifest(&root), once, "a second run changed the tree");
}

// ---------------------------------------------------------------------------------------
// End to end, through the CLI, on the rule images.
// ---------------------------------------------------------------------------------------

/// `amiscan scan IMAGE --format json --as-of AS_OF EXTRA…`: the run and its one image.
fn scan(image: &Path, extra: &[&OsStr], env: &[(&str, &str)]) -> (util::Run, Value) {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("scan"),
        image.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
        OsStr::new("--as-of"),
        OsStr::new(AS_OF),
    ];
    args.extend_from_slice(extra);
    let run = amiscan_env(&args, env);
    let report: Value = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: not JSON ({e}); stderr:\n{}",
            run.describe(),
            run.stderr
        )
    });
    (run, single_image(report))
}

/// (rule id, status, findings as (path, subject, message)).
type Results = BTreeMap<String, (String, Vec<(Option<String>, Option<String>, String)>)>;

fn results(image: &Value) -> Results {
    image["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let findings = r["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["path"].as_str().map(str::to_string),
                        f["subject"].as_str().map(str::to_string),
                        f["message"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (
                r["rule"].as_str().unwrap().to_string(),
                (r["status"].as_str().unwrap().to_string(), findings),
            )
        })
        .collect()
}

fn table(results: &Results) -> String {
    results
        .iter()
        .map(|(id, (status, findings))| format!("  {id}: {status} {findings:?}\n"))
        .collect()
}

/// The `# manual (ID)` block of a script: its lines.
fn manual_block<'a>(script: &'a str, id: &str) -> Vec<&'a str> {
    let head = format!("# manual ({id}):");
    let mut lines = script.lines().skip_while(|l| !l.starts_with(&head));
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    std::iter::once(first)
        .chain(lines.take_while(|l| l.starts_with("#   ")))
        .collect()
}

/// The script the CLI writes for a rule image, run on a copy of its tree; the image rebuilt
/// from the copy and scanned again. Returns (script, before, after).
fn clean_and_rescan(case: &str) -> (String, Results, Results) {
    let dir = scratch(case);
    let image = rule_image(case);
    let script = dir.join("fix.sh");
    let (run, before) = scan(
        &image,
        &[OsStr::new("--remediation-script"), script.as_os_str()],
        &[("RAYON_NUM_THREADS", "4")],
    );
    assert!(
        run.code == 0 || run.code == 1,
        "{}: {}",
        run.describe(),
        run.stderr
    );
    let text = fs::read_to_string(&script).unwrap();
    assert!(text.starts_with("#!/bin/sh\n"), "{text}");
    assert!(text.contains("\nset -eu\n"), "{text}");
    assert!(
        text.contains(&format!("amiscan {}", env!("CARGO_PKG_VERSION"))),
        "the header names the version"
    );
    assert!(
        !text.contains(env!("CARGO_TARGET_TMPDIR")),
        "a host path leaked"
    );
    assert_parses(&script);

    // The same scan at another thread count writes the same script.
    let again = dir.join("again.sh");
    scan(
        &image,
        &[OsStr::new("--remediation-script"), again.as_os_str()],
        &[("RAYON_NUM_THREADS", "1")],
    );
    assert_eq!(
        fs::read_to_string(&again).unwrap(),
        text,
        "the script is not deterministic"
    );

    let tree = dir.join("tree");
    copy_tree(&rule_tree(case), &tree);
    let cwd = dir.join("cwd");
    fs::create_dir_all(&cwd).unwrap();
    let output = run_script("sh", &script, &tree, &cwd);
    assert!(output.status.success(), "{case}: {}", describe(&output));
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("not fixed"),
        "{case}: {}",
        describe(&output)
    );
    let once = manifest(&tree);
    let output = run_script("sh", &script, &tree, &cwd);
    assert!(
        output.status.success(),
        "{case}, second run: {}",
        describe(&output)
    );
    assert_eq!(
        manifest(&tree),
        once,
        "{case}: a second run changed the tree"
    );

    let fixed = dir.join("fixed.img");
    rule_disk(case, &tree, &fixed);
    let (run, after) = scan(&fixed, &[], &[]);
    assert!(
        run.code == 0 || run.code == 1,
        "{}: {}",
        run.describe(),
        run.stderr
    );
    (text, results(&before), results(&after))
}

/// A rule with a `fix` fails after the script only on findings the fix leaves for review;
/// every rule that failed before and fails after had its findings listed as `# manual`
/// (findings that only appear once the enabled server is off — the package still being
/// installed — are new, and the fix says it leaves them too).
fn assert_cleaned(case: &str, script: &str, before: &Results, after: &Results) {
    let pack = Pack::builtin().unwrap();
    let mut problems = Vec::new();
    for (id, (status, findings)) in after {
        if status != "fail" {
            continue;
        }
        let rule = pack.get(id).unwrap();
        let listed = manual_block(script, id);
        match &rule.fix {
            None => {
                if listed.is_empty() {
                    problems.push(format!(
                        "{id}: fails, has no fix, and is not in a # manual block"
                    ));
                }
            }
            Some(fix) => {
                for (path, subject, message) in findings {
                    if fix.handles(
                        path.as_deref().map(str::as_bytes),
                        subject.as_deref(),
                        message,
                    ) {
                        problems.push(format!(
                            "{id}: still fails on {path:?} {subject:?} {message:?}, which its fix handles"
                        ));
                    }
                }
            }
        }
        let was = &before.get(id).map(|(_, f)| f.clone()).unwrap_or_default();
        for (path, _, message) in findings.iter().filter(|f| was.contains(f)) {
            let shown = path.as_deref().unwrap_or(message);
            if !listed.iter().any(|l| l.contains(shown)) {
                problems.push(format!(
                    "{id}: {shown} failed before and after, but is not in its # manual block {listed:?}"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{case}:\n{}\nbefore:\n{}after:\n{}",
        problems.join("\n"),
        table(before),
        table(after)
    );
}

#[test]
fn the_leaky_image_is_cleaned_by_its_script() {
    let (script, before, after) = clean_and_rescan("leaky");
    assert!(
        before.values().all(|(status, _)| status == "fail"),
        "{}",
        table(&before)
    );
    assert_cleaned("leaky", &script, &before, &after);
    let pack = Pack::builtin().unwrap();
    let with_fix: BTreeSet<&str> = pack
        .rules()
        .filter(|r| r.fix.is_some())
        .map(|r| r.id.as_str())
        .collect();
    let passing: BTreeSet<&str> = after
        .iter()
        .filter(|(_, (status, _))| status == "pass")
        .map(|(id, _)| id.as_str())
        .collect();
    // Package removal is left for review; every other fixable rule passes outright (the
    // environment file's secrets are tokens of known kinds, reported by their own rules).
    let partial: BTreeSet<&str> = ["services.ftp", "services.telnet"].into();
    assert_eq!(
        with_fix
            .difference(&passing)
            .copied()
            .collect::<BTreeSet<_>>(),
        partial,
        "\n{}",
        table(&after)
    );
    assert!(
        passing.contains("accounts.sudoers-nopasswd"),
        "cloud-init's sudo rule went with cloud-init's state"
    );

    // No secret of the image is in the script: the generated AWS key, token and password.
    let tree = rule_tree("leaky");
    let mut secrets = Vec::new();
    for (file, marker) in [
        ("root/.aws/credentials", "= "),
        ("opt/app/deploy.env", "="),
        ("home/admin/.netrc", "password "),
    ] {
        for line in fs::read_to_string(tree.join(file)).unwrap().lines() {
            if let Some((_, value)) = line.split_once(marker) {
                secrets.push(value.trim().to_string());
            }
        }
    }
    assert!(secrets.len() >= 4, "{secrets:?}");
    for secret in &secrets {
        assert!(
            !script.contains(secret.as_str()),
            "a secret is in the script"
        );
    }
}

#[test]
fn the_tricky_image_leaves_match_blocks_for_review() {
    let (script, before, after) = clean_and_rescan("tricky");
    assert_cleaned("tricky", &script, &before, &after);
    for id in ["sshd.password-authentication", "sshd.permit-root-login"] {
        let block = manual_block(&script, id);
        assert!(
            block.iter().any(|l| l.contains("`Match ")),
            "{id}: the Match block finding is not listed: {block:?}"
        );
        assert_eq!(after[id].0, "fail", "{id}: the Match block is untouched");
    }
    for id in [
        "sshd.keyboard-interactive",
        "ssh.authorized-keys",
        "history.shell",
    ] {
        assert_eq!(after[id].0, "pass", "{id}\n{}", table(&after));
    }
}

#[test]
fn the_sealed_image_gets_a_script_that_does_nothing() {
    let (script, before, after) = clean_and_rescan("sealed");
    assert!(
        before.values().all(|(s, _)| s != "fail"),
        "{}",
        table(&before)
    );
    assert!(script.contains("# No rule failed"), "{script}");
    assert_eq!(
        before
            .iter()
            .map(|(id, (s, _))| (id, s))
            .collect::<Vec<_>>(),
        after.iter().map(|(id, (s, _))| (id, s)).collect::<Vec<_>>()
    );
}

#[test]
fn rules_check_points_at_a_bad_placeholder() {
    let dir = scratch("pack");
    let pack = dir.join("bad.yaml");
    fs::write(
        &pack,
        format!(
            "rules:\n{}",
            rule_yaml("t.bad", "each: |\n  rm {path}\n  rm {pth}")
        ),
    )
    .unwrap();
    let run = amiscan([OsStr::new("rules"), OsStr::new("check"), pack.as_os_str()]);
    run.expect_code(1);
    let want = format!("{}:16:", pack.display());
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with(&want) && l.contains("{pth}")),
        "{}",
        run.stderr
    );
    let explain = amiscan(["rules", "explain", "cleanup.tmp"]);
    explain.expect_code(0);
    assert!(
        explain.stdout_text().contains("amiscan_remove {path}"),
        "{}",
        explain.stdout_text()
    );
    let explain = amiscan(["rules", "explain", "system.os-end-of-life"]);
    assert!(
        explain.stdout_text().contains("# manual"),
        "{}",
        explain.stdout_text()
    );
}

/// The publisher's loop on the committed sample image: scan, write the script, run it on
/// the image's source trees (testdata/sample/make-sample.sh with SAMPLE_FIX), rebuild, and
/// the new image scans clean: every rule that failed has a fix or, for the key and the token,
/// is left for review and removed by hand; nothing fails after.
#[test]
fn the_sample_image_scans_clean_after_its_script() {
    let dir = util::build_dir().join("remediation-sample");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("fix.sh");
    let fixed = dir.join("fixed.img");
    let sample = util::manifest_dir().join("testdata/sample.img");
    let before = amiscan([
        OsStr::new("scan"),
        sample.as_os_str(),
        OsStr::new("--remediation-script"),
        script.as_os_str(),
    ]);
    assert_eq!(before.code, 1, "{}", before.stderr);
    let mut text = std::fs::read_to_string(&script).unwrap();
    // A key or a token may be in use by the service: the script leaves those to the
    // publisher, who removes them (and injects them at boot) by hand.
    assert!(
        text.contains(", 2 left for review"),
        "every failing rule but the key and the token has a fix:\n{text}"
    );
    for (rule, path) in [
        ("creds.private-keys", "/etc/ssl/private/app.key"),
        ("creds.tokens", "/home/admin/.config/gh/hosts.yml"),
    ] {
        assert!(text.contains(&format!("# manual ({rule})")), "{text}");
        text.push_str(&format!("rm -f -- \"$AMISCAN_ROOT{path}\"\n"));
    }
    std::fs::write(&script, text).unwrap();
    let built = crate::util::tool_command("bash")
        .arg(util::manifest_dir().join("testdata/sample/make-sample.sh"))
        .arg(&fixed)
        .env("SAMPLE_FIX", &script)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let after = amiscan([
        OsStr::new("scan"),
        fixed.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
    ]);
    assert_eq!(after.code, 0, "{}\n{}", after.stderr, after.stdout_text());
    let report: Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(report["summary"]["findings"], 0, "{report:#}");
    assert_eq!(report["summary"]["results"]["error"], 0);
}
