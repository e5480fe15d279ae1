//! Compares amiscan's reading of sshd configurations (`facts::sshd`) with the real
//! `sshd -T` run on the same files. Each fixture under testdata/sshd/ is a small guest
//! tree holding etc/ssh (and maybe usr/etc/ssh); sshd, from Debian's openssh-server
//! package (testdata/fetch-openssh.sh), reads it from /etc/ssh inside a private mount
//! namespace, so the machine's own /etc/ssh is never touched. The namespace needs root or
//! unprivileged user namespaces; AMISCAN_NO_SSHD_ORACLE=1 skips the comparison (loudly)
//! where neither is available.

use crate::util;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use amiscan::facts::host::HostDir;
use amiscan::facts::sshd::{self, SshdConfig};

/// Keywords compared with `sshd -T` for every fixture and connection. The first seven are
/// the ones rules depend on; the others come along because sshd prints them plainly.
const KEYWORDS: &[&str] = &[
    "passwordauthentication",
    "permitrootlogin",
    "permitemptypasswords",
    "kbdinteractiveauthentication",
    "usepam",
    "pubkeyauthentication",
    "authorizedkeysfile",
    "x11forwarding",
    "printmotd",
    "gssapiauthentication",
    "maxauthtries",
    "allowtcpforwarding",
    "permittunnel",
    "hostbasedauthentication",
    "strictmodes",
    "ignorerhosts",
];

/// Keywords `sshd -T` prints in another form than the configuration's (one line per list
/// entry, times in seconds, absolute paths) or that the command line sets (`-h`).
const SHOWN_DIFFERENTLY: &[&str] = &[
    "acceptenv",
    "allowusers",
    "denyusers",
    "allowgroups",
    "denygroups",
    "hostkey",
    "listenaddress",
    "port",
    "subsystem",
    "logingracetime",
    "clientaliveinterval",
];

/// A connection given to `sshd -T -C`, with the criteria (as [`sshd::MatchBlock::criteria`]
/// records them) of the blocks it matches.
struct Connection {
    user: &'static str,
    addr: &'static str,
    host: &'static str,
    blocks: &'static [&'static str],
}

struct Case {
    name: &'static str,
    /// sshd refuses the configuration (`sshd -T` fails); the reader must report problems.
    rejected: bool,
    connections: &'static [Connection],
}

const fn case(name: &'static str) -> Case {
    Case {
        name,
        rejected: false,
        connections: &[],
    }
}

const CASES: &[Case] = &[
    case("debian12-cloud-init"),
    case("ubuntu2204-cloudimg"),
    case("amazon-linux2"),
    case("rhel9-dropins"),
    case("first-wins-and-lexical-order"),
    case("equals-forms"),
    case("mixed-case"),
    Case {
        connections: &[
            Connection {
                user: "deploy",
                addr: "10.1.2.3",
                host: "build.example.com",
                blocks: &[
                    "User deploy,backup",
                    "Address 10.0.0.0/8,192.168.*",
                    "Host *.example.com",
                ],
            },
            Connection {
                user: "alice",
                addr: "203.0.113.5",
                host: "alice.example.org",
                blocks: &["User alice Address 203.0.113.0/24"],
            },
            Connection {
                user: "root",
                addr: "192.168.7.7",
                host: "lan",
                blocks: &["Address 10.0.0.0/8,192.168.*"],
            },
            Connection {
                user: "carol",
                addr: "198.18.0.1",
                host: "elsewhere.example.net",
                blocks: &[],
            },
        ],
        ..case("match-users-addresses")
    },
    Case {
        connections: &[
            Connection {
                user: "alice",
                addr: "192.0.2.1",
                host: "a",
                blocks: &["User alice"],
            },
            Connection {
                user: "bob",
                addr: "192.0.2.1",
                host: "b",
                blocks: &[],
            },
        ],
        ..case("include-in-match")
    },
    Case {
        connections: &[
            Connection {
                user: "bob",
                addr: "192.0.2.2",
                host: "b",
                blocks: &["User bob"],
            },
            Connection {
                user: "alice",
                addr: "192.0.2.2",
                host: "a",
                blocks: &[],
            },
        ],
        ..case("match-in-include-ends")
    },
    case("challenge-response-alias"),
    case("without-password"),
    case("suse-vendor-only"),
    case("no-config"),
    Case {
        rejected: true,
        ..case("include-cycle")
    },
    case("comments-after-values"),
    case("quoted-values"),
    case("crlf"),
    Case {
        connections: &[
            Connection {
                user: "deploy",
                addr: "192.0.2.3",
                host: "d",
                blocks: &["User deploy"],
            },
            Connection {
                user: "eve",
                addr: "192.0.2.3",
                host: "e",
                blocks: &[],
            },
        ],
        ..case("match-all")
    },
    Case {
        rejected: true,
        ..case("glob-self-include")
    },
    Case {
        rejected: true,
        ..case("rejected-values")
    },
    case("hidden-and-other-files"),
    Case {
        connections: &[
            Connection {
                user: "alice",
                addr: "192.0.2.7",
                host: "a",
                blocks: &["User alice,carol", "Address 192.0.2.0/24"],
            },
            Connection {
                user: "bob",
                addr: "192.0.2.7",
                host: "b",
                blocks: &[],
            },
            Connection {
                user: "carol",
                addr: "198.51.100.9",
                host: "c",
                blocks: &["User alice,carol", "User carol", "Address 198.51.100.0/24"],
            },
        ],
        ..case("nested-match-include")
    },
    case("glob-directory-component"),
];

fn fixtures_dir() -> PathBuf {
    util::manifest_dir().join("testdata").join("sshd")
}

fn parse(name: &str) -> SshdConfig {
    sshd::read_config(&HostDir::new(fixtures_dir().join(name)))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_fixture_has_a_case() {
    let mut on_disk: Vec<String> = fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CASES.iter().map(|c| c.name.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

/// What the reader must say without help from sshd.
#[test]
fn fixtures_read_as_expected() {
    for case in CASES {
        let config = parse(case.name);
        assert_eq!(
            !config.problems.is_empty(),
            case.rejected,
            "{}: problems {:?}",
            case.name,
            config.problems
        );
        for connection in case.connections {
            for criteria in connection.blocks {
                assert!(
                    config.match_blocks.iter().any(|b| b.criteria == *criteria),
                    "{}: no Match block `{criteria}` in {:?}",
                    case.name,
                    config
                        .match_blocks
                        .iter()
                        .map(|b| &b.criteria)
                        .collect::<Vec<_>>()
                );
            }
        }
    }
    // Git must not have normalised the line ends this fixture is about.
    let crlf = fs::read(fixtures_dir().join("crlf/etc/ssh/sshd_config")).unwrap();
    assert!(crlf.windows(2).any(|w| w == b"\r\n"));

    let cycle = parse("include-cycle");
    assert!(
        cycle.problems[0].1.contains("nested more than 16"),
        "{:?}",
        cycle.problems
    );
    assert_eq!(cycle.problems[0].0.path, "/etc/ssh/sshd_config.d/b.conf");

    let self_include = parse("glob-self-include");
    assert_eq!(
        self_include.problems.len(),
        1,
        "{:?}",
        self_include.problems
    );
    assert!(self_include.problems[0].1.contains("for a connection"));
    // The startup pass read 10-a.conf twice (once more from 20-b.conf through the cache).
    let a_lines = self_include
        .occurrences
        .iter()
        .filter(|s| s.origin.path.ends_with("10-a.conf"))
        .count();
    assert_eq!(a_lines, 2);

    let rejected = parse("rejected-values");
    let lines: Vec<usize> = rejected.problems.iter().map(|(o, _)| o.line).collect();
    assert_eq!(lines, [2, 3, 5], "{:?}", rejected.problems);
    // A rejected line sets nothing: the compiled-in default shows through.
    assert_eq!(rejected.effective("PermitRootLogin").origin, None);

    let suse = parse("suse-vendor-only");
    assert_eq!(suse.main_file.as_deref(), Some("/usr/etc/ssh/sshd_config"));
    let none = parse("no-config");
    assert_eq!(none.main_file, None);
    assert!(none.files.is_empty());

    let nested = parse("nested-match-include");
    let address = nested
        .match_blocks
        .iter()
        .position(|b| b.criteria == "Address 192.0.2.0/24")
        .unwrap();
    let parent = nested.match_blocks[address].parent.unwrap();
    assert_eq!(nested.match_blocks[parent].criteria, "User alice,carol");

    let debian = parse("debian12-cloud-init");
    let password = debian.effective("PasswordAuthentication");
    assert_eq!(password.normalised, "yes");
    assert_eq!(
        password.origin.unwrap().path,
        "/etc/ssh/sshd_config.d/50-cloud-init.conf"
    );
    let alias = parse("challenge-response-alias").effective("challengeresponseauthentication");
    assert_eq!(
        (alias.keyword.as_str(), alias.normalised.as_str()),
        ("KbdInteractiveAuthentication", "yes")
    );
}

/// The namespace runner: shows the fixture's etc/ssh at /etc/ssh, a passwd file with the
/// `sshd` user at /etc/passwd and a fresh /run (sshd wants /run/sshd) to sshd only. A
/// missing /etc/ssh is made by putting a tmpfs over /etc that holds bind mounts of its
/// entries.
const RUNNER: &str = r#"
set -eu
fixture=$1 oracle=$2
shift 2
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -m 755 /run/sshd /run/shadow
shadow() {
    keep=/run/shadow/$(echo "$1" | tr / _)
    mkdir -p "$keep"
    mount --bind "$1" "$keep"
    mount -t tmpfs -o mode=755 tmpfs "$1"
    for entry in "$keep/ld.so.cache" "$keep"/* "$keep"/.[!.]* "$keep"/..?*; do
        [ -e "$entry" ] || [ -L "$entry" ] || continue
        name=${entry##*/}
        if [ -e "$1/$name" ] || [ -L "$1/$name" ]; then continue; fi
        if [ -L "$entry" ]; then cp -P "$entry" "$1/$name"
        elif [ -d "$entry" ]; then mkdir "$1/$name"; mount --bind "$entry" "$1/$name"
        else : >"$1/$name"; mount --bind "$entry" "$1/$name"; fi
    done
}
if [ ! -d /etc/ssh ]; then shadow /etc; mkdir /etc/ssh; fi
if [ -d "$fixture/etc/ssh" ]; then
    mount --bind "$fixture/etc/ssh" /etc/ssh
else
    mount -t tmpfs -o mode=755 tmpfs /etc/ssh
fi
mount --bind "$oracle/passwd" /etc/passwd
exec "$oracle/sshd" "$@"
"#;

struct Oracle {
    dir: PathBuf,
    /// How to enter a private mount namespace: as root directly, otherwise inside a user
    /// namespace where the caller is root.
    unshare: &'static [&'static str],
}

impl Oracle {
    /// `None` when the comparison is switched off; panics with the reason when it cannot run.
    fn get() -> Option<Oracle> {
        if std::env::var("AMISCAN_NO_SSHD_ORACLE").as_deref() == Ok("1") {
            eprintln!(
                "\n*** AMISCAN_NO_SSHD_ORACLE=1: the sshd configuration reader is NOT being \
                 compared with the real sshd -T ***\n"
            );
            return None;
        }
        util::ensure_built("fetch-openssh.sh", ".openssh.lock");
        let mut refusals = String::new();
        for unshare in [
            &["--mount", "--propagation", "private"][..],
            &[
                "--user",
                "--map-root-user",
                "--mount",
                "--propagation",
                "private",
            ][..],
        ] {
            let probe = crate::util::tool_command("unshare")
                .args(unshare)
                .arg("true")
                .output()
                .unwrap_or_else(|e| panic!("cannot run unshare (util-linux): {e}"));
            if probe.status.success() {
                return Some(Oracle {
                    dir: util::build_dir().join("openssh"),
                    unshare,
                });
            }
            refusals.push_str(&String::from_utf8_lossy(&probe.stderr));
        }
        panic!(
            "the sshd oracle needs a private mount namespace (`unshare --mount` as root, or \
             a user namespace): {refusals}Set AMISCAN_NO_SSHD_ORACLE=1 to skip the comparison \
             with sshd -T."
        )
    }

    /// `sshd -T` (with `extra` arguments) on a fixture: its settings, or sshd's complaint.
    fn dump(&self, fixture: &Path, extra: &[String]) -> Result<BTreeMap<String, String>, String> {
        let mut args: Vec<String> = vec![
            "-T".into(),
            "-h".into(),
            self.dir.join("hostkey").display().to_string(),
        ];
        if !fixture.join("etc/ssh/sshd_config").exists() {
            // Debian's sshd does not know SUSE's fallback; point it at the vendor file.
            let vendor = fixture.join("usr/etc/ssh/sshd_config");
            let file = if vendor.exists() {
                vendor.display().to_string()
            } else {
                "/dev/null".to_string()
            };
            args.extend(["-f".to_string(), file]);
        }
        args.extend(extra.iter().cloned());
        let output = crate::util::tool_command("unshare")
            .args(self.unshare)
            .args(["sh", "-c", RUNNER, "sh"])
            .arg(fixture)
            .arg(&self.dir)
            .args(&args)
            .output()
            .unwrap();
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        let mut settings = BTreeMap::new();
        for line in String::from_utf8(output.stdout).unwrap().lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            settings
                .entry(key.to_string())
                .or_insert_with(|| value.to_string());
        }
        Ok(settings)
    }
}

/// How `sshd -T` prints a value, brought to the reader's normalised form.
fn normalise_dump(keyword: &str, value: &str) -> String {
    let value = match (keyword, value) {
        ("permitrootlogin", "without-password") => "prohibit-password",
        ("authorizedkeysfile", _) => return value.to_string(),
        _ => value,
    };
    value.to_ascii_lowercase()
}

fn ours(effective: &sshd::Effective, keyword: &str) -> String {
    if keyword == "authorizedkeysfile" {
        effective.tokens.join(" ")
    } else {
        effective.normalised.clone()
    }
}

#[test]
fn sshd_t_agrees() {
    let Some(oracle) = Oracle::get() else {
        return;
    };
    let started = Instant::now();
    let mut mismatches = Vec::new();
    let (mut compared, mut runs) = (0usize, 0usize);
    for case in CASES {
        let fixture = fixtures_dir().join(case.name);
        let config = parse(case.name);
        let dump = oracle.dump(&fixture, &[]);
        runs += 1;
        match (&dump, case.rejected) {
            (Err(complaint), true) => {
                eprintln!(
                    "{}: sshd rejects it as expected: {}",
                    case.name,
                    complaint.trim()
                );
                continue;
            }
            (Ok(_), true) => {
                mismatches.push(format!(
                    "{}: sshd -T accepted a configuration expected to be rejected",
                    case.name
                ));
                continue;
            }
            (Err(complaint), false) => {
                mismatches.push(format!("{}: sshd -T failed: {complaint}", case.name));
                continue;
            }
            (Ok(_), false) => {}
        }
        let dump = dump.unwrap();
        // Beyond the listed keywords: every value sshd prints in the form amiscan keeps,
        // which checks the table of compiled-in defaults too.
        for (keyword, value) in &dump {
            let effective = config.effective(keyword);
            if KEYWORDS.contains(&keyword.as_str())
                || SHOWN_DIFFERENTLY.contains(&keyword.as_str())
                || effective.value.is_empty()
            {
                continue;
            }
            compared += 1;
            let theirs = normalise_dump(keyword, value);
            if effective.normalised != theirs {
                mismatches.push(format!(
                    "{}: {keyword}: sshd -T says {theirs:?}, amiscan {:?}",
                    case.name, effective.normalised
                ));
            }
        }
        for keyword in KEYWORDS {
            compared += 1;
            let theirs = normalise_dump(keyword, dump.get(*keyword).map_or("", String::as_str));
            let ours = ours(&config.effective(keyword), keyword);
            if ours != theirs {
                mismatches.push(format!(
                    "{}: {keyword}: sshd -T says {theirs:?}, amiscan {ours:?}",
                    case.name
                ));
            }
        }
        for connection in case.connections {
            let spec = format!(
                "user={},addr={},host={},laddr=192.0.2.254,lport=22",
                connection.user, connection.addr, connection.host
            );
            runs += 1;
            let dump = match oracle.dump(&fixture, &["-C".to_string(), spec.clone()]) {
                Ok(dump) => dump,
                Err(complaint) => {
                    mismatches.push(format!(
                        "{} -C {spec}: sshd -T failed: {complaint}",
                        case.name
                    ));
                    continue;
                }
            };
            let applies =
                |block: &sshd::MatchBlock| connection.blocks.contains(&block.criteria.as_str());
            for keyword in KEYWORDS {
                compared += 1;
                let theirs = normalise_dump(keyword, dump.get(*keyword).map_or("", String::as_str));
                let ours = ours(&config.effective_for(keyword, &applies), keyword);
                if ours != theirs {
                    mismatches.push(format!(
                        "{} -C {spec}: {keyword}: sshd -T says {theirs:?}, amiscan {ours:?}",
                        case.name
                    ));
                }
            }
        }
    }
    eprintln!(
        "sshd oracle ({}): {} fixtures, {runs} sshd -T runs, {compared} values compared in {:.2?}",
        fs::read_to_string(oracle.dir.join("version"))
            .unwrap_or_default()
            .trim(),
        CASES.len(),
        started.elapsed()
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
