//! The built-in rule pack against real images (testdata/build-rule-images.sh): `leaky`,
//! where every built-in rule fails; `sealed`, where every rule passes or is skipped through
//! the tricky passing cases; `tricky`, where rules fail for reasons only a careful reading
//! of the configuration finds. Also rule selection, the table output, determinism, and
//! that no output ever shows a password hash.
//!
//! Expected lines are looked up in the tree each image was built from (by content, so
//! editing a file does not silently shift what is checked).

use crate::util;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs;

use serde_json::Value;
use util::{amiscan, amiscan_env, rule_image, rule_tree, Run};

/// Scans are judged as of this day: Debian 11's LTS (2026-08-31) is over, 12's is not.
const AS_OF: &str = "2026-11-22";

/// `amiscan scan IMAGE --format json --as-of AS_OF EXTRA...`, parsed.
fn scan_env(case: &str, extra: &[&str], env: &[(&str, &str)]) -> (Run, Value) {
    let mut args: Vec<OsString> = vec![
        "scan".into(),
        rule_image(case).into_os_string(),
        "--format".into(),
        "json".into(),
        "--as-of".into(),
        AS_OF.into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    let run = amiscan_env(&args, env);
    let json = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: stdout is not JSON ({e}); exit {}, stderr:\n{}",
            run.describe(),
            run.code,
            run.stderr
        )
    });
    (run, util::single_image(json))
}

fn scan(case: &str, extra: &[&str]) -> (Run, Value) {
    scan_env(case, extra, &[])
}

/// The built-in rules, from `rules list --format json`: id → tags.
fn builtin_rules() -> BTreeMap<String, Vec<String>> {
    let run = amiscan(["rules", "list", "--format", "json"]);
    run.expect_code(0);
    let list: Value = serde_json::from_slice(&run.stdout).unwrap();
    let rules: BTreeMap<String, Vec<String>> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| {
            let tags = rule["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect();
            (rule["id"].as_str().unwrap().to_string(), tags)
        })
        .collect();
    assert!(rules.len() >= 30, "only {} built-in rules", rules.len());
    rules
}

/// Results by rule id.
fn results(report: &Value) -> BTreeMap<String, &Value> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["rule"].as_str().unwrap().to_string(), r))
        .collect()
}

fn result<'a>(report: &'a Value, rule: &str) -> &'a Value {
    util::rule_result(report, rule)
}

fn findings<'a>(report: &'a Value, rule: &str) -> Vec<&'a Value> {
    result(report, rule)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .collect()
}

/// Every rule's status, as `rule: status` lines, for messages.
fn status_table(report: &Value) -> String {
    results(report)
        .iter()
        .map(|(rule, r)| {
            format!(
                "  {rule}: {} ({} findings){}\n",
                r["status"].as_str().unwrap(),
                r["findings"].as_array().unwrap().len(),
                r["reason"]
                    .as_str()
                    .map(|reason| format!(" — {reason}"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// The finding of `rule` at `path` (and `line`, `None` meaning the finding has no line).
fn expect_finding<'a>(report: &'a Value, rule: &str, path: &str, line: Option<u64>) -> &'a Value {
    let all = findings(report, rule);
    all.iter()
        .copied()
        .find(|f| f["path"] == path && f["line"].as_u64() == line)
        .unwrap_or_else(|| {
            panic!(
                "{rule}: no finding at {path}:{line:?}; findings:\n{}",
                serde_json::to_string_pretty(&all).unwrap()
            )
        })
}

/// The paths of a rule's findings.
fn finding_paths(report: &Value, rule: &str) -> BTreeSet<String> {
    findings(report, rule)
        .iter()
        .filter_map(|f| f["path"].as_str().map(str::to_string))
        .collect()
}

/// The 1-based line of the built tree's `path` that satisfies `pred` (exactly one must).
fn line_where(case: &str, path: &str, what: &str, pred: impl Fn(&str) -> bool) -> u64 {
    let file = rule_tree(case).join(path.trim_start_matches('/'));
    let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let lines: Vec<u64> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| pred(l))
        .map(|(i, _)| u64::try_from(i + 1).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{case}:{path}: {what} is on lines {lines:?}"
    );
    lines[0]
}

/// The line holding `needle`.
fn line_of(case: &str, path: &str, needle: &str) -> u64 {
    line_where(case, path, needle, |l| l.contains(needle))
}

/// The account file line of `account`.
fn account_line(case: &str, path: &str, account: &str) -> u64 {
    let prefix = format!("{account}:");
    line_where(case, path, account, |l| l.starts_with(&prefix))
}

/// The JSON report without the one field that may differ between two runs.
fn without_duration(mut report: Value) -> Value {
    let stats = report["stats"].as_object_mut().unwrap();
    assert!(
        stats.remove("duration_ms").is_some(),
        "no stats.duration_ms"
    );
    report
}

// ---------------------------------------------------------------------------------------
// leaky: every built-in rule fails.
// ---------------------------------------------------------------------------------------

#[test]
fn leaky_fails_every_builtin_rule() {
    let rules = builtin_rules();
    let (run, report) = scan("leaky", &[]);
    run.expect_code(1);
    assert_eq!(report["summary"]["verdict"], "fail");
    assert_eq!(report["summary"]["exit_code"], 1);
    assert_eq!(report["summary"]["incomplete"], false, "{}", run.stderr);
    let got: BTreeSet<String> = results(&report).into_keys().collect();
    let want: BTreeSet<String> = rules.keys().cloned().collect();
    assert_eq!(got, want, "the scan did not run exactly the built-in rules");
    let not_failing: Vec<String> = results(&report)
        .iter()
        .filter(|(_, r)| r["status"] != "fail")
        .map(|(id, r)| format!("{id}: {}", r["status"]))
        .collect();
    assert!(
        not_failing.is_empty(),
        "leaky.img must fail every built-in rule (add a failing case to \
         testdata/rules/leaky for a new rule); these did not fail: {not_failing:?}\n{}",
        status_table(&report)
    );
    assert_eq!(report["summary"]["results"]["fail"], rules.len());
    // Two volumes, the second mounted at /home through the root's fstab.
    let mounts: BTreeSet<&str> = report["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["mount_point"].as_str())
        .collect();
    assert_eq!(mounts, BTreeSet::from(["/", "/home"]));
}

#[test]
fn leaky_findings_name_files_and_lines() {
    let c = "leaky";
    let (run, r) = scan(c, &[]);
    run.expect_code(1);

    // Accounts: the shadow or passwd line that decides, the account as subject, the
    // scheme but never the hash.
    for (account, file, scheme) in [
        ("root", "/etc/shadow", "sha512crypt"),
        ("admin", "/etc/shadow", "yescrypt"),
        ("legacy", "/etc/passwd", "md5crypt"),
    ] {
        let line = account_line(c, file, account);
        let f = expect_finding(&r, "accounts.password-set", file, Some(line));
        assert_eq!(f["subject"], account);
        assert!(f["message"].as_str().unwrap().contains(scheme), "{f}");
    }
    assert_eq!(findings(&r, "accounts.password-set").len(), 3);
    let f = expect_finding(
        &r,
        "accounts.empty-password",
        "/etc/shadow",
        Some(account_line(c, "/etc/shadow", "guest")),
    );
    assert_eq!(f["subject"], "guest");
    assert_eq!(f["severity"], "critical");
    assert_eq!(findings(&r, "accounts.empty-password").len(), 1);
    let f = expect_finding(
        &r,
        "accounts.uid0",
        "/etc/passwd",
        Some(account_line(c, "/etc/passwd", "toor")),
    );
    assert_eq!(f["subject"], "toor");
    assert_eq!(
        findings(&r, "accounts.uid0").len(),
        1,
        "root itself is not a finding"
    );
    expect_finding(
        &r,
        "accounts.sudoers-nopasswd",
        "/etc/sudoers.d/90-cloud-init-users",
        Some(line_of(c, "/etc/sudoers.d/90-cloud-init-users", "NOPASSWD")),
    );

    // sshd: the file and line that set the value sshd uses; a keyword left unset names
    // no file (OpenSSH's compiled-in default).
    for (rule, keyword, value) in [
        (
            "sshd.password-authentication",
            "PasswordAuthentication",
            "yes",
        ),
        ("sshd.permit-root-login", "PermitRootLogin", "yes"),
        ("sshd.permit-empty-passwords", "PermitEmptyPasswords", "yes"),
    ] {
        let line = line_of(c, "/etc/ssh/sshd_config", &format!("{keyword} {value}"));
        let f = expect_finding(&r, rule, "/etc/ssh/sshd_config", Some(line));
        assert_eq!(f["subject"], keyword);
    }
    let kbd = findings(&r, "sshd.keyboard-interactive");
    assert_eq!(kbd.len(), 1, "{kbd:?}");
    assert!(
        kbd[0]["path"].is_null(),
        "KbdInteractiveAuthentication is not set: {}",
        kbd[0]
    );
    assert_eq!(kbd[0]["subject"], "KbdInteractiveAuthentication");
    assert!(
        kbd[0]["message"].as_str().unwrap().contains("UsePAM"),
        "{}",
        kbd[0]
    );

    // SSH leftovers: generated host keys, the builder's key for root, a private key saved
    // under an innocent name on the /home volume.
    let host_keys = finding_paths(&r, "ssh.host-keys");
    for key in fs::read_dir(rule_tree(c).join("etc/ssh")).unwrap() {
        let name = key.unwrap().file_name().into_string().unwrap();
        if name.starts_with("ssh_host_") {
            assert!(
                host_keys.contains(&format!("/etc/ssh/{name}")),
                "{name} not in {host_keys:?}"
            );
        }
    }
    assert!(
        host_keys.contains("/etc/ssh/ssh_host_ed25519_key"),
        "{host_keys:?}"
    );
    let key_line = line_where(c, "/root/.ssh/authorized_keys", "the key", |l| {
        l.starts_with("ssh-")
    });
    expect_finding(
        &r,
        "ssh.authorized-keys",
        "/root/.ssh/authorized_keys",
        Some(key_line),
    );
    let f = expect_finding(
        &r,
        "ssh.user-keypairs",
        "/home/admin/.ssh/deploy.txt",
        Some(1),
    );
    assert_eq!(f["subject"], "OpenSSH private key");
    assert_eq!(
        finding_paths(&r, "ssh.user-keypairs"),
        BTreeSet::from(["/home/admin/.ssh/deploy.txt".to_string()]),
        "the .pub beside it is not a private key"
    );

    // Histories on both volumes.
    assert_eq!(
        finding_paths(&r, "history.shell"),
        BTreeSet::from([
            "/home/admin/.bash_history".to_string(),
            "/home/admin/.python_history".to_string(),
            "/root/.bash_history".to_string(),
        ])
    );

    // Services: each enabling mechanism names its file (and line, for text files).
    let f = expect_finding(
        &r,
        "services.telnet",
        "/etc/inetd.conf",
        Some(line_of(c, "/etc/inetd.conf", "/usr/sbin/telnetd")),
    );
    assert_eq!(f["severity"], "high");
    expect_finding(
        &r,
        "services.cleartext",
        "/etc/xinetd.d/tftp",
        Some(line_of(c, "/etc/xinetd.d/tftp", "service tftp")),
    );
    let f = expect_finding(
        &r,
        "services.ftp",
        "/etc/systemd/system/multi-user.target.wants/vsftpd.service",
        None,
    );
    assert_eq!(f["severity"], "high", "enabled, not merely installed");
    assert_eq!(f["subject"], "vsftpd.service");
    assert_eq!(
        findings(&r, "services.ftp").len(),
        1,
        "installed-only findings are not added when enabled"
    );
    expect_finding(
        &r,
        "services.network",
        "/etc/systemd/system/multi-user.target.wants/rpcbind.service",
        None,
    );
    expect_finding(
        &r,
        "services.network",
        "/etc/systemd/system/sockets.target.wants/rpcbind.socket",
        None,
    );
    let f = expect_finding(
        &r,
        "packages.cleartext-clients",
        "/var/lib/dpkg/status",
        Some(line_of(c, "/var/lib/dpkg/status", "Package: rsh-client")),
    );
    assert_eq!(f["subject"], "rsh-client");

    // Clean-up leftovers.
    let cloud = finding_paths(&r, "cleanup.cloud-init");
    for path in [
        "/var/lib/cloud/instance",
        "/var/lib/cloud/instances/i-0a1b2c3d4e5f60718",
        "/var/lib/cloud/data/instance-id",
        "/var/lib/cloud/sem/config_scripts_per_once.once",
        "/var/log/cloud-init.log",
        "/etc/sudoers.d/90-cloud-init-users",
    ] {
        assert!(cloud.contains(path), "{path} not in {cloud:?}");
    }
    let logs = finding_paths(&r, "cleanup.logs");
    for path in [
        "/var/log/auth.log",
        "/var/log/wtmp",
        "/var/log/journal/3f9c2b7e5d1a4c8e9b0f6a2d4e8c1b57/system.journal",
    ] {
        assert!(logs.contains(path), "{path} not in {logs:?}");
    }
    for (rule, path) in [
        ("cleanup.machine-id", "/etc/machine-id"),
        ("cleanup.dhcp-leases", "/var/lib/dhcp/dhclient.ens5.leases"),
        ("cleanup.tmp", "/tmp/build.sh"),
        ("cleanup.ssm", "/var/log/amazon/ssm/amazon-ssm-agent.log"),
        ("cleanup.instance-files", "/etc/.updated"),
        ("cleanup.account-backups", "/etc/shadow-"),
        ("cleanup.spools", "/var/spool/cron/crontabs/root"),
        ("cleanup.crash-dumps", "/var/crash/core.1"),
        ("cleanup.installer-files", "/root/anaconda-ks.cfg"),
        (
            "cleanup.network-profiles",
            "/etc/udev/rules.d/70-persistent-net.rules",
        ),
        ("cleanup.kerberos-keytab", "/etc/krb5.keytab"),
        ("cleanup.random-seed", "/var/lib/systemd/random-seed"),
        ("files.world-writable", "/opt/app/settings.ini"),
        ("files.setid-programs", "/usr/local/bin/backup-helper"),
        ("files.shadow-permissions", "/etc/shadow"),
        ("system.os-end-of-life", "/etc/os-release"),
    ] {
        let paths = finding_paths(&r, rule);
        assert!(paths.contains(path), "{rule}: {path} not in {paths:?}");
    }
    expect_finding(&r, "cleanup.instance-files", "/etc/hostname", Some(1));
    assert_eq!(
        finding_paths(&r, "files.world-writable"),
        BTreeSet::from(["/opt/app/settings.ini".to_string()]),
        "sticky /tmp and /var/tmp, and symlinks, are not world-writable findings"
    );
    expect_finding(
        &r,
        "security.selinux-disabled",
        "/etc/selinux/config",
        Some(line_of(c, "/etc/selinux/config", "SELINUX=disabled")),
    );
    expect_finding(
        &r,
        "security.apparmor-disabled",
        "/etc/default/grub",
        Some(line_of(c, "/etc/default/grub", "apparmor=0")),
    );
    let eol = expect_finding(&r, "system.os-end-of-life", "/etc/os-release", None);
    assert!(
        eol["message"].as_str().unwrap().contains("2026-08-31"),
        "{eol}"
    );
}

// ---------------------------------------------------------------------------------------
// sealed: every rule passes or is skipped.
// ---------------------------------------------------------------------------------------

#[test]
fn sealed_passes_every_rule() {
    let rules = builtin_rules();
    let (run, report) = scan("sealed", &[]);
    run.expect_code(0);
    assert_eq!(report["summary"]["verdict"], "pass");
    assert_eq!(report["summary"]["exit_code"], 0);
    assert_eq!(
        report["summary"]["findings"],
        0,
        "{}",
        status_table(&report)
    );
    let all = results(&report);
    assert_eq!(
        all.keys().cloned().collect::<BTreeSet<_>>(),
        rules.keys().cloned().collect::<BTreeSet<_>>()
    );
    let bad: Vec<&String> = all
        .iter()
        .filter(|(_, r)| r["status"] != "pass" && r["status"] != "skipped")
        .map(|(id, _)| id)
        .collect();
    assert!(
        bad.is_empty(),
        "sealed.img: {bad:?} neither passed nor were skipped:\n{}",
        status_table(&report)
    );
    // Nothing here is a reason to skip: the image has sshd, accounts, an OS release in
    // the end-of-life table and a package database.
    for rule in [
        "sshd.password-authentication",
        "sshd.keyboard-interactive",
        "accounts.password-set",
        "system.os-end-of-life",
        "packages.cleartext-clients",
        "services.ftp",
    ] {
        assert_eq!(
            result(&report, rule)["status"],
            "pass",
            "{rule}:\n{}",
            status_table(&report)
        );
    }
}

/// With --sshd-strict every occurrence must conform: the `PasswordAuthentication yes` that
/// the drop-in shadows now fails, at its own line; the drop-in's values still pass the rest.
#[test]
fn sealed_sshd_strict_flags_the_shadowed_line() {
    let (run, r) = scan("sealed", &["--sshd-strict"]);
    run.expect_code(1);
    let line = line_of(
        "sealed",
        "/etc/ssh/sshd_config",
        "PasswordAuthentication yes",
    );
    expect_finding(
        &r,
        "sshd.password-authentication",
        "/etc/ssh/sshd_config",
        Some(line),
    );
    assert_eq!(findings(&r, "sshd.password-authentication").len(), 1);
    for rule in [
        "sshd.permit-root-login",
        "sshd.permit-empty-passwords",
        "sshd.keyboard-interactive",
    ] {
        assert_eq!(
            result(&r, rule)["status"],
            "pass",
            "{rule}:\n{}",
            status_table(&r)
        );
    }
}

// ---------------------------------------------------------------------------------------
// tricky: subtle failures.
// ---------------------------------------------------------------------------------------

const TRICKY_FAILING: &[&str] = &[
    "accounts.uid0",
    "history.shell",
    "services.ftp",
    "services.telnet",
    "ssh.authorized-keys",
    "sshd.keyboard-interactive",
    "sshd.password-authentication",
    "sshd.permit-root-login",
];

#[test]
fn tricky_fails_exactly_the_subtle_rules() {
    let rules = builtin_rules();
    let (run, r) = scan("tricky", &[]);
    run.expect_code(1);
    assert_eq!(r["summary"]["verdict"], "fail");
    let mut wrong = Vec::new();
    for id in rules.keys() {
        let status = result(&r, id)["status"].as_str().unwrap().to_string();
        let ok = if TRICKY_FAILING.contains(&id.as_str()) {
            status == "fail"
        } else {
            status == "pass" || status == "skipped"
        };
        if !ok {
            wrong.push(format!("{id}: {status}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "tricky.img: unexpected statuses {wrong:?}\n{}",
        status_table(&r)
    );
}

#[test]
fn tricky_findings_point_at_the_subtle_causes() {
    let c = "tricky";
    let (run, r) = scan(c, &[]);
    run.expect_code(1);

    // The global value is `no` (drop-in), but a Match block turns passwords back on: one
    // finding, at the block's line, naming the block.
    let pa = findings(&r, "sshd.password-authentication");
    assert_eq!(pa.len(), 1, "only the Match block fails: {pa:?}");
    let f = expect_finding(
        &r,
        "sshd.password-authentication",
        "/etc/ssh/sshd_config",
        Some(line_of(
            c,
            "/etc/ssh/sshd_config",
            "PasswordAuthentication yes",
        )),
    );
    let message = f["message"].as_str().unwrap();
    assert!(message.contains("Match Address 10.0.0.0/8"), "{message}");
    let match_line = line_of(c, "/etc/ssh/sshd_config", "Match Address");
    assert!(message.contains(&format!("line {match_line}")), "{message}");

    // `Match User deploy` then `Include`: the included file's PermitRootLogin yes belongs
    // to the block.
    let prl = findings(&r, "sshd.permit-root-login");
    assert_eq!(prl.len(), 1, "the global prohibit-password passes: {prl:?}");
    let f = expect_finding(
        &r,
        "sshd.permit-root-login",
        "/etc/ssh/match.d/deploy.conf",
        Some(line_of(
            c,
            "/etc/ssh/match.d/deploy.conf",
            "PermitRootLogin yes",
        )),
    );
    assert!(
        f["message"].as_str().unwrap().contains("Match User deploy"),
        "{f}"
    );

    // ChallengeResponseAuthentication is KbdInteractiveAuthentication's alias.
    let f = expect_finding(
        &r,
        "sshd.keyboard-interactive",
        "/etc/ssh/sshd_config",
        Some(line_of(
            c,
            "/etc/ssh/sshd_config",
            "ChallengeResponseAuthentication yes",
        )),
    );
    assert_eq!(f["subject"], "KbdInteractiveAuthentication");

    // AuthorizedKeysFile … /etc/ssh/keys/%u, expanded for admin.
    assert_eq!(
        finding_paths(&r, "ssh.authorized-keys"),
        BTreeSet::from(["/etc/ssh/keys/admin".to_string()])
    );
    expect_finding(&r, "ssh.authorized-keys", "/etc/ssh/keys/admin", Some(1));

    // A home directory outside /home, known only from /etc/passwd.
    assert_eq!(
        finding_paths(&r, "history.shell"),
        BTreeSet::from(["/srv/tester/.bash_history".to_string()])
    );

    // Installed but not enabled: the unit file and the package, one step below high.
    let ftp = findings(&r, "services.ftp");
    assert!(!ftp.is_empty());
    for f in &ftp {
        assert_eq!(f["severity"], "medium", "{f}");
    }
    let f = expect_finding(
        &r,
        "services.ftp",
        "/var/lib/dpkg/status",
        Some(line_of(c, "/var/lib/dpkg/status", "Package: vsftpd")),
    );
    assert_eq!(f["subject"], "vsftpd");
    assert!(
        ftp.iter().any(|f| f["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("/systemd/system/vsftpd.service"))),
        "the unit file is a finding too: {ftp:?}"
    );
    assert_eq!(
        result(&r, "services.ftp")["gating"],
        true,
        "medium gates at the default --fail-on medium"
    );

    // A SysV rc link enables telnetd at high severity.
    let f = expect_finding(&r, "services.telnet", "/etc/rc3.d/S01telnetd", None);
    assert_eq!(f["severity"], "high");
    assert_eq!(findings(&r, "services.telnet").len(), 1);

    let f = expect_finding(
        &r,
        "accounts.uid0",
        "/etc/passwd",
        Some(account_line(c, "/etc/passwd", "toor")),
    );
    assert_eq!(f["subject"], "toor");
}

/// `--fail-on high`: the FTP server that is only installed (medium) no longer gates, but
/// the scan still fails on the high and critical rules.
#[test]
fn tricky_installed_only_server_does_not_gate_at_fail_on_high() {
    let (run, r) = scan("tricky", &["--fail-on", "high"]);
    run.expect_code(1);
    assert_eq!(r["summary"]["fail_on"], "high");
    let ftp = result(&r, "services.ftp");
    assert_eq!(ftp["status"], "fail");
    assert_eq!(ftp["gating"], false, "{ftp}");
    assert_eq!(
        ftp["severity"], "high",
        "the rule's own severity is unchanged"
    );
    for rule in TRICKY_FAILING.iter().filter(|id| **id != "services.ftp") {
        assert_eq!(result(&r, rule)["gating"], true, "{rule} must gate at high");
    }
    // With every high rule ignored, only the installed FTP server fails: below the gate.
    let (run, r) = scan("tricky", &["--fail-on", "high", "--select", "services.ftp"]);
    run.expect_code(0);
    assert_eq!(r["summary"]["verdict"], "pass");
    assert_eq!(result(&r, "services.ftp")["status"], "fail");
    let (run, _) = scan("tricky", &["--fail-on", "never"]);
    run.expect_code(0);
}

// ---------------------------------------------------------------------------------------
// The images hold what the cases claim, so that a pass is never vacuous.
// ---------------------------------------------------------------------------------------

/// The image's `files` inventory by path.
fn inventory(case: &str) -> BTreeMap<String, util::Record> {
    let (run, records) = util::files(&rule_image(case));
    run.expect_code(0);
    records.into_iter().map(|r| (r.path.clone(), r)).collect()
}

fn node<'a>(inventory: &'a BTreeMap<String, util::Record>, path: &str) -> &'a util::Record {
    inventory
        .get(path)
        .unwrap_or_else(|| panic!("{path} is not in the image"))
}

#[test]
fn sealed_image_holds_the_tricky_passing_cases() {
    let inv = inventory("sealed");
    let link = |path: &str, target: &str| {
        let n = node(&inv, path);
        assert_eq!(
            (n.kind.as_str(), n.target.as_deref()),
            ("symlink", Some(target)),
            "{path}"
        );
    };
    let file = |path: &str, mode: &str, empty: bool| {
        let n = node(&inv, path);
        assert_eq!((n.kind.as_str(), n.mode.as_str()), ("file", mode), "{path}");
        assert_eq!(n.size == 0, empty, "{path}: {} bytes", n.size);
    };
    link("/etc/systemd/system/telnet.socket", "/dev/null");
    link("/var/lib/dbus/machine-id", "/etc/machine-id");
    link(
        "/etc/systemd/system/multi-user.target.wants/ssh.service",
        "/lib/systemd/system/ssh.service",
    );
    file("/etc/machine-id", "0644", true);
    file("/etc/shadow", "0640", false);
    file("/root/.bash_history", "0644", true);
    file("/root/.ssh/authorized_keys", "0644", true);
    file("/etc/krb5.keytab", "0644", true);
    file("/var/log/auth.log", "0644", true);
    file("/var/spool/cron/atjobs/.SEQ", "0644", false);
    file("/etc/ssh/sshd_config.d/50-cloud-image.conf", "0644", false);
    assert_eq!(node(&inv, "/tmp").mode, "1777");
    let under_tmp: Vec<(&String, &str)> = inv
        .range("/tmp/".to_string().."/tmp0".to_string())
        .map(|(p, r)| (p, r.kind.as_str()))
        .collect();
    assert_eq!(under_tmp, [(&"/tmp/.X11-unix".to_string(), "dir")]);
    let ssh_dir: BTreeSet<&str> = inv
        .range("/home/admin/.ssh/".to_string().."/home/admin/.ssh0".to_string())
        .map(|(p, _)| p.as_str())
        .collect();
    assert_eq!(
        ssh_dir,
        BTreeSet::from([
            "/home/admin/.ssh/authorized_keys",
            "/home/admin/.ssh/id_ed25519.pub",
            "/home/admin/.ssh/known_hosts",
        ])
    );
    assert!(!inv.keys().any(|p| p.starts_with("/etc/ssh/ssh_host_")));
    let status = fs::read_to_string(rule_tree("sealed").join("var/lib/dpkg/status")).unwrap();
    assert!(status.contains("Package: vsftpd\nStatus: deinstall ok config-files\n"));
}

#[test]
fn tricky_image_holds_its_cases() {
    let inv = inventory("tricky");
    let n = node(&inv, "/etc/rc3.d/S01telnetd");
    assert_eq!(n.target.as_deref(), Some("../init.d/telnetd"));
    assert_eq!(
        node(&inv, "/usr/lib/systemd/system/vsftpd.service").kind,
        "file"
    );
    assert!(
        !inv.keys()
            .any(|p| p.starts_with("/etc/systemd/") && p.contains("vsftpd")),
        "vsftpd must not be enabled"
    );
    // An empty machine-id, present: not a first boot, so systemd's presets (which would
    // enable vsftpd) do not apply.
    assert_eq!(node(&inv, "/etc/machine-id").size, 0);
    assert!(node(&inv, "/etc/ssh/keys/admin").size > 0);
    assert!(node(&inv, "/srv/tester/.bash_history").size > 0);
}

// ---------------------------------------------------------------------------------------
// Selection, output formats, determinism.
// ---------------------------------------------------------------------------------------

#[test]
fn select_glob_runs_only_the_sshd_rules() {
    let rules = builtin_rules();
    let want: BTreeSet<String> = rules
        .keys()
        .filter(|id| id.starts_with("sshd."))
        .cloned()
        .collect();
    assert_eq!(want.len(), 4, "{want:?}");
    let (run, r) = scan("leaky", &["--select", "sshd.*"]);
    run.expect_code(1);
    let got: BTreeSet<String> = results(&r).into_keys().collect();
    assert_eq!(got, want);
    assert_eq!(r["summary"]["rules"], 4);
}

#[test]
fn ignore_by_tag_drops_every_rule_with_the_tag() {
    let rules = builtin_rules();
    let want: BTreeSet<String> = rules
        .iter()
        .filter(|(_, tags)| !tags.iter().any(|t| t == "cleanup"))
        .map(|(id, _)| id.clone())
        .collect();
    assert!(want.len() < rules.len() && !want.is_empty());
    let (run, r) = scan("leaky", &["--ignore", "cleanup"]);
    run.expect_code(1);
    let got: BTreeSet<String> = results(&r).into_keys().collect();
    assert_eq!(got, want);
    // Tags and ids combine, comma-separated.
    let (_, r) = scan(
        "leaky",
        &[
            "--select",
            "accounts,ssh.host-keys",
            "--ignore",
            "accounts.uid0",
        ],
    );
    let got: BTreeSet<String> = results(&r).into_keys().collect();
    let mut want: BTreeSet<String> = rules
        .iter()
        .filter(|(_, tags)| tags.iter().any(|t| t == "accounts"))
        .map(|(id, _)| id.clone())
        .collect();
    want.insert("ssh.host-keys".into());
    want.remove("accounts.uid0");
    assert_eq!(got, want);
}

#[test]
fn selectors_that_match_nothing_are_usage_errors() {
    for flag in ["--select", "--ignore"] {
        let run = amiscan([
            OsString::from("scan"),
            rule_image("sealed").into_os_string(),
            flag.into(),
            "nonexistent".into(),
        ]);
        run.expect_code(2);
        assert!(run.stderr.contains("nonexistent"), "{flag}: {}", run.stderr);
        assert!(
            run.stdout.is_empty(),
            "{flag}: a usage error prints no report"
        );
    }
}

#[test]
fn table_output_names_every_failing_rule() {
    let rules = builtin_rules();
    let run = amiscan([
        OsString::from("scan"),
        rule_image("leaky").into_os_string(),
        "--as-of".into(),
        AS_OF.into(),
    ]);
    run.expect_code(1);
    let text = run.stdout_text();
    for id in rules.keys() {
        // The summary table row and the findings section's heading.
        assert!(
            text.matches(id.as_str()).count() >= 2,
            "{id} is not both in the table and in the findings:\n{text}"
        );
    }
    assert!(text.contains("/home/admin/.ssh/deploy.txt:1"), "{text}");
    assert!(text.contains("Verdict: FAIL"), "{text}");

    let run = amiscan([
        OsString::from("scan"),
        rule_image("tricky").into_os_string(),
        "--as-of".into(),
        AS_OF.into(),
        "--fail-on".into(),
        "high".into(),
    ]);
    run.expect_code(1);
    let text = run.stdout_text();
    for id in TRICKY_FAILING {
        assert!(
            text.contains(&format!("{id} [")),
            "{id} has no findings section:\n{text}"
        );
    }
    let ftp_row = text
        .lines()
        .find(|l| l.contains("services.ftp") && l.contains('│'))
        .unwrap_or_else(|| panic!("no services.ftp row:\n{text}"));
    assert!(ftp_row.contains("below --fail-on"), "{ftp_row}");

    let run = amiscan([
        OsString::from("scan"),
        rule_image("sealed").into_os_string(),
        "--as-of".into(),
        AS_OF.into(),
    ]);
    run.expect_code(0);
    assert!(
        run.stdout_text().contains("Verdict: PASS"),
        "{}",
        run.stdout_text()
    );
}

/// Every password hash in the images' account and installer files (fake, but shaped like
/// real ones): none may appear in any output, nor their salt or digest alone.
fn fake_hashes() -> Vec<String> {
    let mut hashes = Vec::new();
    for (case, file) in [
        ("leaky", "etc/shadow"),
        ("leaky", "etc/shadow-"),
        ("leaky", "etc/passwd"),
        ("leaky", "root/anaconda-ks.cfg"),
        ("sealed", "etc/shadow"),
    ] {
        let text = fs::read_to_string(rule_tree(case).join(file)).unwrap();
        assert!(
            !text.contains("@HASH:"),
            "{case}/{file}: placeholder left unfilled"
        );
        for word in text.split(|c: char| c == ':' || c.is_whitespace()) {
            let word = word.trim_start_matches('!');
            if word.starts_with('$') && word.len() > 20 {
                hashes.push(word.to_string());
                // Salt and digest on their own.
                hashes.extend(word.split('$').filter(|p| p.len() >= 8).map(str::to_string));
            }
        }
    }
    assert!(hashes.len() >= 6 * 3, "too few hashes found: {hashes:?}");
    hashes
}

#[test]
fn no_output_shows_a_password_hash() {
    let hashes = fake_hashes();
    let mut runs = Vec::new();
    for case in ["leaky", "sealed", "tricky"] {
        let image = rule_image(case).into_os_string();
        for format in ["json", "table"] {
            runs.push(amiscan([
                OsString::from("scan"),
                image.clone(),
                "--format".into(),
                format.into(),
                "--as-of".into(),
                AS_OF.into(),
                "--sshd-strict".into(),
            ]));
        }
    }
    for run in &runs {
        let out = String::from_utf8_lossy(&run.stdout);
        for hash in &hashes {
            assert!(
                !out.contains(hash.as_str()),
                "{} printed {hash:?}",
                run.describe()
            );
            assert!(
                !run.stderr.contains(hash.as_str()),
                "{} printed {hash:?} on stderr",
                run.describe()
            );
        }
    }
}

#[test]
fn scanning_twice_gives_the_same_report() {
    for case in ["leaky", "tricky"] {
        let (first_run, first) = scan(case, &[]);
        let (second_run, second) = scan(case, &[]);
        assert_eq!(first_run.code, second_run.code);
        assert_eq!(without_duration(first), without_duration(second), "{case}");
    }
}

#[test]
fn thread_count_does_not_change_the_report() {
    let reference = without_duration(scan_env("leaky", &[], &[("RAYON_NUM_THREADS", "1")]).1);
    let others = [
        without_duration(scan_env("leaky", &[], &[("RAYON_NUM_THREADS", "2")]).1),
        without_duration(scan("leaky", &["--threads", "1"]).1),
        without_duration(scan("leaky", &["--threads", "2"]).1),
        without_duration(scan("leaky", &["--threads", "7"]).1),
    ];
    for (i, other) in others.iter().enumerate() {
        assert_eq!(
            &reference, other,
            "run {i} differs from the single-threaded one"
        );
    }
}
