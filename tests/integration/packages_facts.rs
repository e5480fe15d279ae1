//! `facts::packages` (and the rpm and SQLite readers under it) on trees built by
//! `testdata/build-service-trees.sh`, compared with the package managers' own answers:
//! `dpkg-query --admindir -W` on a copy of this machine's dpkg status and on a status file
//! holding every dpkg state, `rpm -qa --dbpath` on databases rpm itself wrote (sqlite,
//! and Berkeley DB files read by rpm's bdb_ro), and Python's sqlite3 on a database made to
//! stress the SQLite reader. Damaged databases must be reported unreadable, and seeded
//! mutations of every database must never panic or hang.

use crate::util;

use util::Rng;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use amiscan::facts::host::HostDir;
use amiscan::facts::packages::{self, Manager, Packages};
use amiscan::facts::rpmdb;
use amiscan::facts::sqlite::{self, Database, Value};

fn build() -> PathBuf {
    util::ensure_built("build-service-trees.sh", ".services.lock");
    util::build_dir().join("services")
}

fn read_tree(name: &str) -> Packages {
    let root = build().join("trees").join(name);
    assert!(root.is_dir(), "{} was not built", root.display());
    packages::read(&HostDir::new(root)).unwrap()
}

fn oracle(name: &str) -> String {
    std::fs::read_to_string(build().join("oracle").join(name)).unwrap()
}

/// `dpkg-query` lines "package version status-word" → installed (name → versions).
fn dpkg_oracle(name: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut installed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in oracle(name).lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (package, version, status) = (fields[0], fields[1], fields[2]);
        if ["installed", "triggers-pending", "triggers-awaited"].contains(&status) {
            installed
                .entry(package.to_string())
                .or_default()
                .insert(version.to_string());
        }
    }
    installed
}

fn check_dpkg_against_query(tree: &str) -> Packages {
    let p = read_tree(tree);
    let want = dpkg_oracle(&format!("{tree}.query"));
    let ours: BTreeMap<&String, &packages::Package> = p
        .installed
        .iter()
        .filter(|(_, pkg)| pkg.origin.path == packages::DPKG_STATUS)
        .collect();
    let ours_names: BTreeSet<&String> = ours.keys().copied().collect();
    let want_names: BTreeSet<&String> = want.keys().collect();
    assert_eq!(ours_names, want_names, "{tree}: installed packages");
    for (name, pkg) in ours {
        assert!(
            want[name].contains(pkg.version.as_ref().unwrap()),
            "{tree}: {name} {:?}",
            pkg.version
        );
        assert_eq!(pkg.manager, Manager::Dpkg);
    }
    let db = p
        .databases
        .iter()
        .find(|d| d.path == packages::DPKG_STATUS)
        .unwrap();
    assert!(db.readable);
    p
}

#[test]
fn dpkg_host_status_matches_dpkg_query() {
    let p = check_dpkg_against_query("dpkg-host");
    assert!(p.installed.len() > 100, "the host has a real dpkg database");
}

#[test]
fn dpkg_states_match_dpkg_query() {
    let p = check_dpkg_against_query("dpkg-states");
    // Multi-Arch: same, one name.
    assert_eq!(p.installed["libmulti1"].version.as_deref(), Some("2.0-1"));
    let origin = &p.installed["state-installed-1"].origin;
    let status =
        std::fs::read_to_string(build().join("trees/dpkg-states/var/lib/dpkg/status")).unwrap();
    assert_eq!(
        status.lines().nth(origin.line - 1),
        Some("Package: state-installed-1")
    );
    assert!(
        !p.installed.contains_key("not-a-package"),
        "a continuation line is not a field"
    );
}

#[test]
fn distroless_status_d_lists_every_control_paragraph() {
    let p = read_tree("dpkg-states");
    let want: BTreeMap<String, String> = oracle("dpkg-status-d.control")
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap();
            (n.to_string(), v.to_string())
        })
        .collect();
    let ours: BTreeMap<String, String> = p
        .installed
        .values()
        .filter(|pkg| pkg.origin.path.starts_with(packages::DPKG_STATUS_D))
        .map(|pkg| (pkg.name.clone(), pkg.version.clone().unwrap()))
        .collect();
    assert_eq!(ours, want);
    let db = p
        .databases
        .iter()
        .find(|d| d.path == packages::DPKG_STATUS_D)
        .unwrap();
    assert_eq!(db.packages, want.len(), "md5sums files are not packages");
}

/// `rpm -qa` lines "name epoch version release arch" → name → (evr, arch).
fn rpm_oracle(name: &str) -> BTreeMap<String, (String, String)> {
    oracle(name)
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            let evr = if f[1] == "(none)" {
                format!("{}-{}", f[2], f[3])
            } else {
                format!("{}:{}-{}", f[1], f[2], f[3])
            };
            (f[0].to_string(), (evr, f[4].to_string()))
        })
        .collect()
}

fn check_rpm(tree: &str, oracle_name: &str, db_path: &str) {
    let p = read_tree(tree);
    let want = rpm_oracle(oracle_name);
    assert!(
        want.len() > 100,
        "{oracle_name}: rpm listed {} packages",
        want.len()
    );
    let ours: BTreeMap<String, (String, String)> = p
        .installed
        .values()
        .map(|pkg| {
            assert_eq!(pkg.manager, Manager::Rpm);
            assert_eq!(pkg.origin.path, db_path);
            (
                pkg.name.clone(),
                (
                    pkg.version.clone().unwrap(),
                    pkg.architecture.clone().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(ours, want, "{tree}");
    assert_eq!(p.databases.len(), 1, "{tree}: {:?}", p.databases);
    assert!(p.databases[0].readable && !p.incomplete());
    assert_eq!(p.databases[0].path, db_path);
}

#[test]
fn rpm_sqlite_matches_rpm_qa() {
    // /var/lib/rpm is a symlink to /usr/lib/sysimage/rpm: one database, read once.
    check_rpm(
        "rpm-sqlite",
        "rpm-sqlite.qa",
        "/usr/lib/sysimage/rpm/rpmdb.sqlite",
    );
    let p = read_tree("rpm-sqlite");
    assert_eq!(
        p.installed["tiny-one"].version.as_deref(),
        Some("2:1.2.3-4.fc40")
    );
    // A subpackage inherits the main package's epoch.
    assert_eq!(p.installed["tiny-two"].version.as_deref(), Some("2:0.9-1"));
}

#[test]
fn rpm_sqlite_with_uncheckpointed_wal_matches_rpm_qa() {
    check_rpm(
        "rpm-wal",
        "rpm-wal.qa",
        "/usr/lib/sysimage/rpm/rpmdb.sqlite",
    );
    assert!(!read_tree("rpm-wal").installed.contains_key("tiny-two"));
    // Without its log the same file still lists the deleted package: the log matters.
    let dir = build().join("trees/rpm-wal/usr/lib/sysimage/rpm");
    let file = std::fs::read(dir.join("rpmdb.sqlite")).unwrap();
    let without = rpmdb::read_sqlite(&file, None).unwrap();
    assert!(without.iter().any(|h| h.name == "tiny-two"));
}

#[test]
fn rpm_berkeley_db_matches_rpm_qa_bdb_ro() {
    check_rpm("rpm-bdb", "rpm-bdb.qa", "/var/lib/rpm/Packages");
    check_rpm("rpm-bdb-be", "rpm-bdb-be.qa", "/var/lib/rpm/Packages");
}

#[test]
fn rpm_ndb_is_present_but_unreadable() {
    let p = read_tree("rpm-ndb");
    assert!(p.incomplete());
    assert_eq!(p.databases.len(), 1);
    assert_eq!(p.databases[0].path, "/usr/lib/sysimage/rpm/Packages.db");
    assert!(!p.databases[0].readable);
    assert!(p.installed.is_empty());
}

#[test]
fn damaged_rpm_databases_are_errors_not_empty() {
    for tree in ["rpm-truncated", "rpm-flipped"] {
        let p = read_tree(tree);
        assert!(p.incomplete(), "{tree}: {:?}", p.databases);
        let db = &p.databases[0];
        assert!(!db.readable && db.problem.is_some(), "{tree}: {db:?}");
        assert!(p.installed.is_empty());
    }
}

#[test]
fn apk_installed_database() {
    let p = read_tree("apk");
    let got: BTreeMap<&str, (&str, &str)> = p
        .installed
        .values()
        .map(|pkg| {
            (
                pkg.name.as_str(),
                (
                    pkg.version.as_deref().unwrap(),
                    pkg.architecture.as_deref().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(
        got,
        BTreeMap::from([
            ("musl", ("1.2.5-r0", "x86_64")),
            ("busybox", ("1.36.1-r15", "x86_64")),
            ("openssh-server", ("9.6_p1-r0", "x86_64")),
        ])
    );
    let text = std::fs::read_to_string(build().join("trees/apk/lib/apk/db/installed")).unwrap();
    let line = p.installed["busybox"].origin.line;
    assert_eq!(text.lines().nth(line - 1), Some("P:busybox"));
}

#[test]
fn a_guest_without_package_databases_has_none() {
    let p = packages::read(&HostDir::new(build().join("trees/sqlite"))).unwrap();
    assert!(p.databases.is_empty() && p.installed.is_empty());
}

/// Every row of a table SQLite wrote, compared value by value with SQLite's own reading.
#[test]
fn sqlite_reader_matches_sqlite_on_a_deep_database() {
    let bytes = std::fs::read(build().join("trees/sqlite/deep.sqlite")).unwrap();
    let want: Vec<Vec<serde_json::Value>> =
        serde_json::from_str(&oracle("sqlite-deep.json")).unwrap();
    let db = Database::open(&bytes, None).unwrap();
    let root = db.table_root("t").unwrap().unwrap();
    assert!(db.table_root("missing").unwrap().is_none());
    let mut got = Vec::new();
    db.scan_table(root, &mut |rowid, payload| {
        let values = sqlite::parse_record(payload)?;
        let mut row = vec![serde_json::json!(rowid)];
        // Column 0 is the INTEGER PRIMARY KEY, stored as NULL: the rowid stands for it.
        for v in values.iter().skip(1) {
            row.push(match v {
                Value::Null => serde_json::Value::Null,
                Value::Integer(i) => serde_json::json!(i),
                Value::Real(f) => serde_json::json!({ "real": float_hex(*f) }),
                Value::Text(t) => serde_json::json!(std::str::from_utf8(t).unwrap()),
                Value::Blob(b) => serde_json::json!({ "blob": hex(b) }),
            });
        }
        got.push(row);
        Ok(())
    })
    .unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        // Rows hold up to 200 KiB of blob: say which row differs, not what it holds.
        assert!(g == w, "row {} differs from SQLite's reading", w[0]);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Python's `float.hex()` format, for exact comparison.
fn float_hex(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0x0.0p+0"
        } else {
            "0x0.0p+0"
        }
        .to_string();
    }
    let bits = f.to_bits();
    let sign = if bits >> 63 == 1 { "-" } else { "" };
    let exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mantissa = bits & ((1 << 52) - 1);
    format!("{sign}0x1.{mantissa:013x}p{exponent:+}")
}

// ---------------------------------------------------------------------------------------
// Hostile input: seeded mutations of every database kind.
// ---------------------------------------------------------------------------------------

const DEADLINE: Duration = Duration::from_secs(60);

/// A truncation, or a few bytes set to 0, 0xff or random — biased towards page headers
/// (the first bytes of each page), where the structure lives.
fn mutate(original: &[u8], page: usize, rng: &mut Rng) -> Vec<u8> {
    let mut bytes = original.to_vec();
    if rng.below(5) == 0 {
        bytes.truncate(rng.below(bytes.len()));
        return bytes;
    }
    for _ in 0..1 + rng.below(8) {
        let at = if rng.below(2) == 0 {
            rng.below(bytes.len() / page + 1) * page + rng.below(16)
        } else {
            rng.below(bytes.len())
        };
        if let Some(b) = bytes.get_mut(at) {
            *b = match rng.below(3) {
                0 => 0,
                1 => 0xff,
                _ => rng.next() as u8,
            };
        }
    }
    bytes
}

fn must_return(what: String, input: Vec<u8>, f: fn(&[u8]) -> usize) {
    let (done, wait) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(move || {
            let result = std::panic::catch_unwind(|| f(&input));
            let _ = done.send(result.is_ok());
        })
        .unwrap();
    match wait.recv_timeout(DEADLINE) {
        Ok(true) => handle.join().unwrap(),
        Ok(false) => panic!("{what}: a reader panicked"),
        Err(_) => panic!("{what}: did not return within {DEADLINE:?}"),
    }
}

fn mutation_run(path: &Path, page: usize, rounds: usize, seed: u64) {
    let original = std::fs::read(path).unwrap();
    assert!(
        rpmdb::exercise(&original) > 100,
        "{}: the seed must be read",
        path.display()
    );
    let mut rng = Rng(seed ^ original.len() as u64);
    for round in 0..rounds {
        let mutated = mutate(&original, page, &mut rng);
        must_return(
            format!("{} round {round}", path.display()),
            mutated,
            rpmdb::exercise,
        );
    }
}

#[test]
fn mutated_rpm_sqlite_never_panics_or_hangs() {
    let path = build().join("trees/rpm-sqlite/usr/lib/sysimage/rpm/rpmdb.sqlite");
    mutation_run(&path, 4096, 1000, 1);
}

#[test]
fn mutated_rpm_bdb_never_panics_or_hangs() {
    mutation_run(
        &build().join("trees/rpm-bdb/var/lib/rpm/Packages"),
        4096,
        500,
        2,
    );
    mutation_run(
        &build().join("trees/rpm-bdb-be/var/lib/rpm/Packages"),
        512,
        500,
        3,
    );
}

#[test]
fn mutated_wal_never_panics_or_hangs() {
    let dir = build().join("trees/rpm-wal/usr/lib/sysimage/rpm");
    let file = std::fs::read(dir.join("rpmdb.sqlite")).unwrap();
    let wal = std::fs::read(dir.join("rpmdb.sqlite-wal")).unwrap();
    let mut rng = Rng(4);
    for round in 0..200 {
        let mutated = mutate(&wal, 4096 + 24, &mut rng);
        let file = file.clone();
        let (done, wait) = mpsc::channel();
        std::thread::spawn(move || {
            let ok = std::panic::catch_unwind(|| {
                let _ = rpmdb::read_sqlite(&file, Some(&mutated));
            })
            .is_ok();
            let _ = done.send(ok);
        });
        assert_eq!(wait.recv_timeout(DEADLINE), Ok(true), "wal round {round}");
    }
}

#[test]
fn mutated_deep_sqlite_never_panics_or_hangs() {
    let original = std::fs::read(build().join("trees/sqlite/deep.sqlite")).unwrap();
    let mut rng = Rng(5);
    for round in 0..150 {
        let mutated = mutate(&original, 512, &mut rng);
        must_return(format!("deep.sqlite round {round}"), mutated, |bytes| {
            let Ok(db) = Database::open(bytes, None) else {
                return 0;
            };
            let Ok(Some(root)) = db.table_root("t") else {
                return 0;
            };
            let mut rows = 0;
            let _ = db.scan_table(root, &mut |_, payload| {
                let _ = sqlite::parse_record(payload);
                rows += 1;
                Ok(())
            });
            rows
        });
    }
}

/// Inputs in the fuzz corpus (seeds and anything the fuzzer found) replay on stable.
#[test]
fn rpmdb_fuzz_corpus_replays() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/rpmdb");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 2,
        "seed corpus missing in {}",
        dir.display()
    );
    for path in inputs {
        let bytes = std::fs::read(&path).unwrap();
        let seed = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-");
        if seed {
            assert!(
                rpmdb::exercise(&bytes) > 0,
                "{}: a valid seed",
                path.display()
            );
        }
        must_return(path.display().to_string(), bytes, rpmdb::exercise);
    }
}
