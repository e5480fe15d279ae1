//! `facts::services` on guest trees built from real Debian packages by
//! `testdata/build-service-trees.sh`, compared with what `systemctl --root` says about the
//! same trees (`is-enabled` for every unit file, the links `preset-all` creates), with
//! inetd.conf entries written by the real `update-inetd`, and with xinetd and SysV
//! configuration as packaged plus an administrator's edits.

use crate::util;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use amiscan::facts::host::HostDir;
use amiscan::facts::services::{self, EnabledService, Link, Mechanism, Services};

fn build() -> PathBuf {
    util::ensure_built("build-service-trees.sh", ".services.lock");
    util::build_dir().join("services")
}

fn read_tree(name: &str) -> Services {
    let root = build().join("trees").join(name);
    assert!(root.is_dir(), "{} was not built", root.display());
    services::read(&HostDir::new(root)).unwrap()
}

/// `oracle/NAME`: "unit state" lines → map.
fn states(name: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(build().join("oracle").join(name)).unwrap();
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(u, s)| (u.to_string(), s.to_string()))
        .collect()
}

fn template_of(unit: &str) -> Option<String> {
    let (stem, suffix) = unit.rsplit_once('.')?;
    let (prefix, _) = stem.split_once('@')?;
    Some(format!("{prefix}@.{suffix}"))
}

fn systemd_etc(e: &EnabledService) -> bool {
    matches!(e.mechanism, Mechanism::Systemd(_))
}

fn names_with(s: &Services, mechanism: Mechanism) -> BTreeSet<String> {
    s.enabled
        .iter()
        .filter(|e| e.mechanism == mechanism)
        .map(|e| e.name.clone())
        .collect()
}

fn find<'a>(s: &'a Services, unit: &str, mechanism: Mechanism) -> &'a EnabledService {
    s.enabled
        .iter()
        .find(|e| e.unit.as_deref() == Some(unit) && e.mechanism == mechanism)
        .unwrap_or_else(|| panic!("{unit} not reported as {mechanism}: {:#?}", s.enabled))
}

/// The comparison with `systemctl is-enabled` over every unit file and instance.
fn compare_with_systemctl(tree: &str) {
    let s = read_tree(tree);
    let oracle = states(&format!("{tree}.is-enabled"));
    let listed = states(&format!("{tree}.list-unit-files"));
    assert!(
        oracle.len() > 150,
        "{tree}: only {} units in the oracle",
        oracle.len()
    );

    // Masked: exactly what systemctl calls masked.
    let masked: BTreeSet<&String> = oracle
        .iter()
        .filter(|(_, st)| *st == "masked")
        .map(|(u, _)| u)
        .collect();
    let ours: BTreeSet<&String> = s.masked.iter().collect();
    assert_eq!(ours, masked, "{tree}: masked units");

    // Unit files: the same names systemctl lists.
    let files: BTreeSet<&String> = s.unit_files.iter().map(|u| &u.name).collect();
    let listed_names: BTreeSet<&String> = listed.keys().collect();
    assert_eq!(files, listed_names, "{tree}: unit files");
    for file in &s.unit_files {
        let state = &listed[&file.name];
        assert_eq!(file.masked, state == "masked", "{tree}: {}", file.name);
        assert_eq!(
            file.alias_of.is_some(),
            state == "alias",
            "{tree}: {} ({state})",
            file.name
        );
    }

    // What enables a unit in /etc: every unit systemctl calls enabled is reached by one of
    // our /etc links, under its own name, its template's or an alias — except a link to
    // /dev/null in a .wants directory, which systemctl counts and the manager ignores.
    let ours_etc: Vec<&EnabledService> = s.enabled.iter().filter(|e| systemd_etc(e)).collect();
    for (unit, state) in &oracle {
        if state != "enabled" || unit == "nulled.service" {
            continue;
        }
        let found = ours_etc.iter().any(|e| {
            let real = e.unit.as_deref().unwrap();
            real == unit
                || template_of(real).as_deref() == Some(unit)
                || e.alias.as_deref() == Some(unit)
        });
        assert!(found, "{tree}: systemctl says {unit} is enabled; we do not");
    }
    // ... and every unit we report enabled in /etc, systemctl calls enabled (aliases: the
    // alias name is an alias and the unit itself enabled).
    for e in &ours_etc {
        let real = e.unit.as_deref().unwrap();
        let state = oracle
            .get(real)
            .or_else(|| template_of(real).and_then(|t| oracle.get(&t)))
            .unwrap_or_else(|| panic!("{tree}: {real} not in the oracle"));
        assert_eq!(state, "enabled", "{tree}: we report {e:?}");
        if let Some(alias) = &e.alias {
            if e.mechanism == Mechanism::Systemd(Link::Alias) {
                assert_eq!(oracle[alias], "alias", "{tree}: alias {alias}");
            }
        }
    }
    // Vendor links: systemctl never calls these enabled (it ignores links outside /etc for
    // non-instances), but the manager starts the units; they must at least exist.
    for e in s
        .enabled
        .iter()
        .filter(|e| matches!(e.mechanism, Mechanism::Vendor(_)))
    {
        let real = e.unit.as_deref().unwrap();
        let state = oracle
            .get(real)
            .or_else(|| template_of(real).and_then(|t| oracle.get(&t)))
            .map_or("absent", String::as_str);
        assert!(
            ["static", "disabled", "indirect", "enabled", "alias"].contains(&state),
            "{tree}: vendor-enabled {real} is {state}"
        );
    }
    assert!(!s.first_boot, "{tree} has a machine id");
}

#[test]
fn systemd_split_usr_matches_systemctl() {
    compare_with_systemctl("systemd-split");
}

#[test]
fn systemd_merged_usr_matches_systemctl() {
    compare_with_systemctl("systemd-merged");
}

#[test]
fn systemd_details_in_both_layouts() {
    for tree in ["systemd-split", "systemd-merged"] {
        let s = read_tree(tree);
        let wants = Mechanism::Systemd(Link::Wants);

        let ssh = find(&s, "ssh.service", wants);
        assert_eq!(ssh.program.as_deref(), Some("sshd"));
        assert_eq!(ssh.wanted_by.as_deref(), Some("multi-user.target"));
        assert_eq!(
            ssh.origin.path,
            "/etc/systemd/system/multi-user.target.wants/ssh.service"
        );
        let sshd = find(&s, "ssh.service", Mechanism::Systemd(Link::Alias));
        assert_eq!(sshd.alias.as_deref(), Some("sshd.service"));
        // An alias made by hand, not listed in Alias=, still names the unit.
        let ftp = s
            .enabled
            .iter()
            .find(|e| e.alias.as_deref() == Some("ftp.service"))
            .unwrap();
        assert_eq!(ftp.unit.as_deref(), Some("vsftpd.service"));
        assert_eq!(ftp.program.as_deref(), Some("vsftpd"));

        // A socket unit with Accept=yes runs the template service's program.
        let telnet = find(&s, "telnet.socket", Mechanism::Systemd(Link::Wants));
        assert_eq!(telnet.name, "telnet");
        assert_eq!(telnet.wanted_by.as_deref(), Some("sockets.target"));
        assert_eq!(telnet.program.as_deref(), Some("telnetd"));
        let rpcbind = find(&s, "rpcbind.socket", wants);
        assert_eq!(rpcbind.program, None, "rpcbind.service is masked");

        // Instances: named as started, defined by the template.
        let getty = find(&s, "getty@tty2.service", wants);
        assert_eq!(getty.name, "getty@tty2");
        assert!(getty
            .unit_file
            .as_deref()
            .unwrap()
            .ends_with("/getty@.service"));
        assert_eq!(getty.program.as_deref(), Some("agetty"));
        let worker = find(&s, "worker@main.service", wants);
        assert_eq!(worker.program.as_deref(), Some("worker"));

        let needed = find(&s, "needed.service", Mechanism::Systemd(Link::Requires));
        assert_eq!(needed.program.as_deref(), Some("needed-daemon"));
        let linked = find(&s, "linked.service", wants);
        assert_eq!(
            linked.unit_file.as_deref(),
            Some("/opt/linked/linked.service")
        );

        // A link named by a vendor alias starts the real unit.
        let via_alias = s
            .enabled
            .iter()
            .find(|e| e.alias.as_deref() == Some("openbsd-inetd.service") && e.mechanism == wants)
            .unwrap();
        assert_eq!(via_alias.unit.as_deref(), Some("inetd.service"));
        assert_eq!(via_alias.program.as_deref(), Some("inetd"));

        // Shipped enabled by a link in the vendor directory.
        let vendor = find(&s, "vendor-daemon.service", Mechanism::Vendor(Link::Wants));
        assert_eq!(vendor.program.as_deref(), Some("vendord"));
        assert!(s
            .enabled
            .iter()
            .any(|e| e.unit.as_deref() == Some("systemd-journald.service")
                && matches!(e.mechanism, Mechanism::Vendor(_))));

        // Not started: disabled, masked (by link or empty file), dangling, not a link, or
        // a link to /dev/null.
        let units: BTreeSet<&str> = s.enabled.iter().filter_map(|e| e.unit.as_deref()).collect();
        for absent in [
            "avahi-daemon.service",
            "avahi-daemon.socket",
            "cups.service",
            "rpcbind.service",
            "gone.service",
            "not-a-link.service",
            "nulled.service",
        ] {
            assert!(!units.contains(absent), "{tree}: {absent} reported enabled");
        }
        assert!(s.masked.contains(&"cups.service".to_string()));
        assert!(s.masked.contains(&"rpcbind.service".to_string()));
        // The unit list tells installed from enabled.
        assert!(s
            .unit_files
            .iter()
            .any(|u| u.name == "avahi-daemon.service" && !u.masked));
    }
}

#[test]
fn inetd_lines_as_update_inetd_leaves_them() {
    let s = read_tree("systemd-split");
    let inetd: BTreeMap<&str, (Option<&str>, usize)> = s
        .enabled
        .iter()
        .filter(|e| e.mechanism == Mechanism::Inetd)
        .map(|e| (e.name.as_str(), (e.program.as_deref(), e.origin.line)))
        .collect();
    let programs: BTreeMap<&str, Option<&str>> = inetd.iter().map(|(n, (p, _))| (*n, *p)).collect();
    assert_eq!(
        programs,
        BTreeMap::from([
            ("telnet", Some("telnetd")),
            ("shell", Some("in.rshd")),
            ("tftp", Some("in.tftpd")),
            ("finger", Some("in.fingerd")),
            ("ntalk", Some("in.ntalkd")),
        ]),
        "login was disabled by update-inetd, ftp commented by hand, daytime is a .dpkg-old file"
    );
    // Origins point at the real lines.
    let conf = std::fs::read_to_string(build().join("trees/systemd-split/etc/inetd.conf")).unwrap();
    let line = |n: usize| conf.lines().nth(n - 1).unwrap();
    assert!(line(inetd["telnet"].1).starts_with("telnet\t"));
    assert!(
        conf.contains("#<off># login"),
        "update-inetd's disabled form"
    );
}

#[test]
fn xinetd_services_as_packaged_and_edited() {
    let s = read_tree("systemd-split");
    let xinetd: BTreeMap<&str, Option<&str>> = s
        .enabled
        .iter()
        .filter(|e| e.mechanism == Mechanism::Xinetd)
        .map(|e| (e.name.as_str(), e.program.as_deref()))
        .collect();
    assert_eq!(
        xinetd,
        BTreeMap::from([("echo", Some("internal")), ("tftp", Some("in.tftpd"))]),
        "everything else is disable = yes, in defaults' disabled list, flagged DISABLE, or in an ignored file"
    );
    let echo = s
        .enabled
        .iter()
        .find(|e| e.mechanism == Mechanism::Xinetd && e.name == "echo")
        .unwrap();
    assert!(echo.origin.path.ends_with("/etc/xinetd.d/echo"));
}

#[test]
fn sysv_start_links() {
    let s = read_tree("systemd-split");
    let sysv: BTreeSet<(String, u8)> = s
        .enabled
        .iter()
        .filter_map(|e| match e.mechanism {
            Mechanism::SysV { runlevel } => Some((e.name.clone(), runlevel)),
            _ => None,
        })
        .collect();
    let want: BTreeSet<(String, u8)> = (2..=5)
        .flat_map(|rl| {
            [
                ("openbsd-inetd".to_string(), rl),
                ("tftpd-hpa".to_string(), rl),
            ]
        })
        .collect();
    assert_eq!(sysv, want);
    assert_eq!(names_with(&s, Mechanism::SysV { runlevel: 2 }).len(), 2);
}

/// Presets against `systemctl preset-all --preset-mode=enable-only` on a copy: the links
/// we predict are exactly the links it created, pointing at the same unit files.
fn compare_presets(tree: &str) {
    let s = read_tree(tree);
    assert!(s.first_boot, "{tree}: machine-id says first boot");
    let text =
        std::fs::read_to_string(build().join(format!("oracle/{tree}.preset-links"))).unwrap();
    let oracle: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once(' ')).collect();
    let log = std::fs::read_to_string(build().join(format!("oracle/{tree}.preset-log"))).unwrap();
    let ours: BTreeMap<String, &EnabledService> = s
        .enabled
        .iter()
        .filter(|e| matches!(e.mechanism, Mechanism::PresetFirstBoot(_)))
        .map(|e| (e.link().unwrap(), e))
        .collect();
    let ours_paths: BTreeSet<&str> = ours.keys().map(String::as_str).collect();
    let oracle_paths: BTreeSet<&str> = oracle.keys().copied().collect();
    assert_eq!(ours_paths, oracle_paths, "{tree}: preset links");
    for (path, e) in &ours {
        // Two units claiming one alias: which one wins depends on directory order.
        if log.contains(&format!("\"{path}\" already exists")) {
            continue;
        }
        assert_eq!(
            Some(oracle[path.as_str()]),
            e.unit_file.as_deref(),
            "{tree}: {path}"
        );
    }
}

#[test]
fn presets_custom_policy_match_systemctl() {
    compare_presets("preset-custom");
    let s = read_tree("preset-custom");
    let getty = find(
        &s,
        "getty@tty3.service",
        Mechanism::PresetFirstBoot(Link::Wants),
    );
    assert!(getty
        .origin
        .path
        .ends_with("/etc/systemd/system-preset/00-local.preset"));
    assert_eq!(getty.origin.line, 2);
    // Enabled through Also= although its own rule says disable.
    find(&s, "cups.socket", Mechanism::PresetFirstBoot(Link::Wants));
    // ssh was enabled already: nothing new to create.
    assert!(!s
        .enabled
        .iter()
        .any(|e| e.unit.as_deref() == Some("ssh.service")
            && matches!(e.mechanism, Mechanism::PresetFirstBoot(_))));
}

#[test]
fn presets_debian_default_match_systemctl() {
    compare_presets("preset-debian");
}

#[test]
fn presets_with_no_preset_files_enable_everything_like_systemctl() {
    compare_presets("preset-none");
    let s = read_tree("preset-none");
    let vsftpd = find(
        &s,
        "vsftpd.service",
        Mechanism::PresetFirstBoot(Link::Wants),
    );
    assert_eq!(vsftpd.origin.line, 0, "no rule: systemd's default");
}

#[test]
fn first_boot_follows_machine_id_semantics() {
    let dir = std::env::temp_dir().join(format!("amiscan-machine-id-{}", std::process::id()));
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let files = HostDir::new(&dir);
    assert!(services::first_boot(&files).unwrap(), "missing");
    std::os::unix::fs::symlink("/var/lib/dbus/machine-id", etc.join("machine-id")).unwrap();
    assert!(
        services::first_boot(&files).unwrap(),
        "a dangling link reads as missing"
    );
    std::fs::remove_file(etc.join("machine-id")).unwrap();
    std::fs::write(etc.join("machine-id"), "").unwrap();
    assert!(
        !services::first_boot(&files).unwrap(),
        "empty is not a first boot"
    );
    std::fs::write(etc.join("machine-id"), "uninitialized\n").unwrap();
    assert!(services::first_boot(&files).unwrap());
    std::fs::write(etc.join("machine-id"), "3d1219c7c4c5404aaa1f6d2a48adfda4\n").unwrap();
    assert!(!services::first_boot(&files).unwrap());
    // Not first boot: no preset entries even though presets would enable things.
    let s = services::read(&files).unwrap();
    assert!(s.enabled.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn results_are_sorted_and_stable() {
    let a = read_tree("systemd-merged");
    let b = read_tree("systemd-merged");
    assert_eq!(a, b);
    let mut sorted = a.enabled.clone();
    sorted.sort();
    assert_eq!(sorted, a.enabled);
}

#[test]
fn xinetd_include_loops_and_defaults_enabled_list() {
    let dir = std::env::temp_dir().join(format!("amiscan-xinetd-{}", std::process::id()));
    let d = dir.join("etc/xinetd.d");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        dir.join("etc/xinetd.conf"),
        "defaults\n{\n\tenabled = ftp-id telnet\n}\ninclude /etc/xinetd.conf\nincludedir /etc/xinetd.d\n",
    )
    .unwrap();
    std::fs::write(
        d.join("ftp"),
        "service ftp\n{\n\tid = ftp-id\n\tserver = /usr/sbin/in.ftpd\n}\nincludedir /etc/xinetd.d\n",
    )
    .unwrap();
    std::fs::write(
        d.join("telnet"),
        "service telnet\n{\n\tserver = /usr/sbin/in.telnetd\n\tdisable = yes\n}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("shell"),
        "service shell\n{\n\tserver = /usr/sbin/in.rshd\n}\n",
    )
    .unwrap();
    let s = services::read(&HostDir::new(&dir)).unwrap();
    let names: Vec<(&str, Option<&str>)> = s
        .enabled
        .iter()
        .map(|e| (e.name.as_str(), e.program.as_deref()))
        .collect();
    // Only ids listed in `enabled` run, and `disable = yes` still wins.
    assert_eq!(names, vec![("ftp", Some("in.ftpd"))]);
    std::fs::remove_dir_all(&dir).unwrap();
}
