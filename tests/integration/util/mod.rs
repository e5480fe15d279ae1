//! Helpers for the image tests: building the images once, running the binary, reading its
//! `files` inventory, and describing a source tree the way the inventory should.
//!
//! The images and the trees they were made from come from `testdata/build-images.sh`;
//! every test calls [`image`] or [`tree`], which run that script under `flock` (once per
//! process; the script's stamp makes every later run, in any process, return at once —
//! cargo-nextest runs each test in a process of its own, so a process-local guard alone
//! would not do).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn build_dir() -> PathBuf {
    manifest_dir().join("testdata").join("build")
}

/// The Debian package of each program the tests and build scripts run: the list
/// `.ci/run` installs, so that a missing tool is named with what provides it.
const TOOL_PACKAGES: &[(&str, &str)] = &[
    ("mke2fs", "e2fsprogs"),
    ("mkfs.ext2", "e2fsprogs"),
    ("mkfs.ext3", "e2fsprogs"),
    ("mkfs.ext4", "e2fsprogs"),
    ("debugfs", "e2fsprogs"),
    ("e2fsck", "e2fsprogs"),
    ("tune2fs", "e2fsprogs"),
    ("dumpe2fs", "e2fsprogs"),
    ("sgdisk", "gdisk"),
    ("sfdisk", "fdisk"),
    ("fdisk", "fdisk"),
    ("mkfs.vfat", "dosfstools"),
    ("mkfs.fat", "dosfstools"),
    ("fsck.fat", "dosfstools"),
    ("mcopy", "mtools"),
    ("mmd", "mtools"),
    ("mdir", "mtools"),
    ("mkfs.xfs", "xfsprogs"),
    ("xfs_db", "xfsprogs"),
    ("xfs_io", "xfsprogs"),
    ("xfs_repair", "xfsprogs"),
    ("mkfs.btrfs", "btrfs-progs"),
    ("genisoimage", "genisoimage"),
    ("cryptsetup", "cryptsetup-bin"),
    ("mkswap", "util-linux"),
    ("losetup", "util-linux"),
    ("flock", "util-linux"),
    ("mkfifo", "coreutils"),
    ("qemu-img", "qemu-utils"),
    ("python3", "python3"),
    ("ssh-keygen", "openssh-client"),
    ("systemctl", "systemd"),
    ("rpm", "rpm"),
    ("rpmdb", "rpm"),
    ("db5.3_load", "db5.3-util"),
    ("sqlite3", "sqlite3"),
    ("update-inetd", "update-inetd"),
    ("openssl", "openssl"),
    ("xz", "xz-utils"),
    ("zstd", "zstd"),
    ("xmllint", "libxml2-utils"),
    ("lvm", "lvm2"),
    ("pvcreate", "lvm2"),
    ("vgcreate", "lvm2"),
    ("lvcreate", "lvm2"),
    ("pvck", "lvm2"),
    ("vgchange", "lvm2"),
    ("vgcfgbackup", "lvm2"),
    ("vgcfgrestore", "lvm2"),
    ("lvextend", "lvm2"),
    ("lvs", "lvm2"),
    ("pvs", "lvm2"),
    ("vgs", "lvm2"),
    ("thin_check", "thin-provisioning-tools"),
    ("thin_restore", "thin-provisioning-tools"),
    ("mount", "mount"),
    ("umount", "mount"),
    ("dpkg-deb", "dpkg"),
    ("apt-get", "apt"),
];

/// Where a tool is looked for: $PATH, then the sbin directories a non-root $PATH may lack
/// (the mkfs tools live there).
fn find_tool(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).is_file().then(|| PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| {
            fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// What to tell the user when `program` is missing: its name, its Debian package, and
/// that `.ci/run` installs it.
pub fn missing_tool_message(program: &str) -> String {
    let package = TOOL_PACKAGES
        .iter()
        .find(|(name, _)| *name == program)
        .map_or_else(
            || "no Debian package known to the tests".to_string(),
            |(_, package)| format!("Debian package {package}"),
        );
    format!("required tool '{program}' not found on PATH ({package}; .ci/run installs it)")
}

/// Fails the test, naming the tool and its package, unless `program` can be run.
pub fn require_tool(program: &str) -> PathBuf {
    find_tool(program).unwrap_or_else(|| panic!("{}", missing_tool_message(program)))
}

/// A `Command` for an external tool, found on $PATH (or in sbin) first: a missing tool
/// fails the test with its name and package instead of a bare "No such file" error.
pub fn tool_command(program: &str) -> Command {
    Command::new(require_tool(program))
}

/// The tool a build script's output says is missing: an up-front check
/// (`required tool 'X' not found`, `X is required`) or bash's `X: command not found`.
fn missing_in_script_output(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|line| {
        if let Some(rest) = line.split("required tool '").nth(1) {
            return rest.split('\'').next().map(str::to_string);
        }
        // `build-lvm-images.sh: pvcreate is required` is that script's own check.
        let before = line
            .strip_suffix(": command not found")
            .or_else(|| line.strip_suffix(" is required"))?;
        before.rsplit([' ', ':']).next().map(str::to_string)
    })
}

/// Builds the images (once per process; instant when the stamp says they are current).
pub fn ensure_images() {
    ensure_built("build-images.sh", ".lock");
}

/// `volume-kinds.img` (testdata/build-volume-kinds.sh): a GPT disk with one partition of
/// each kind amiscan does not read, built on first use.
pub fn volume_kinds_image() -> PathBuf {
    ensure_built("build-volume-kinds.sh", ".lock-kinds");
    image("volume-kinds.img")
}

/// Runs a `testdata/` build script under `flock` on `build/<lock>`, once per process. The
/// scripts keep a stamp, so a run after the first is instant; the lock keeps parallel test
/// processes (cargo-nextest runs one per test) from building at the same time.
pub fn ensure_built(script_name: &str, lock: &str) {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let done = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut done = done.lock().unwrap_or_else(|e| e.into_inner());
    if done.iter().any(|s| s == script_name) {
        return;
    }
    let build = build_dir();
    fs::create_dir_all(&build).unwrap();
    let script = manifest_dir().join("testdata").join(script_name);
    require_tool("bash");
    let output = tool_command("flock")
        .arg(build.join(lock))
        .arg("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run flock/bash for {}: {e}", script.display()));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if let Some(program) = missing_in_script_output(&stderr) {
            panic!(
                "{} cannot build its images: {}",
                script.display(),
                missing_tool_message(&program)
            );
        }
    }
    assert!(
        output.status.success(),
        "{} failed ({}):\n{}{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    done.push(script_name.to_string());
}

/// The path of a built image, e.g. `image("debian-gpt.img")`.
pub fn image(name: &str) -> PathBuf {
    ensure_images();
    let path = build_dir().join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// The path of a built source tree, e.g. `tree("basic")`.
pub fn tree(name: &str) -> PathBuf {
    ensure_images();
    let path = build_dir().join("trees").join(name);
    assert!(path.is_dir(), "{} was not built", path.display());
    path
}

/// An image of `testdata/build-rule-images.sh`: `rule_image("leaky")` (built once; instant
/// when its stamp is current).
pub fn rule_image(case: &str) -> PathBuf {
    ensure_built("build-rule-images.sh", ".lock-rules");
    let path = build_dir().join("rules").join(format!("{case}.img"));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// The tree `rule_image(case)` was made from, after the build-time steps (generated keys,
/// fake hashes filled in, enablement symlinks).
pub fn rule_tree(case: &str) -> PathBuf {
    ensure_built("build-rule-images.sh", ".lock-rules");
    let path = build_dir().join("rules").join(case).join("tree");
    assert!(path.is_dir(), "{} was not built", path.display());
    path
}

/// Every image the build script makes.
pub const ALL_IMAGES: &[&str] = &[
    "hybrid-gpt.img",
    "bare-ext4.img",
    "ext2.img",
    "ext3.img",
    "ext4-1k.img",
    "ext4-no64.img",
    "ext4-inline.img",
    "debian-gpt.img",
    "mbr-logical.img",
    "split-gpt.img",
    "gpt-4k.img",
    "bigdir.img",
    "incomplete.img",
    "corrupt-gpt.img",
];

// ---------------------------------------------------------------------------------------
// Running the binary.
// ---------------------------------------------------------------------------------------

/// What one run of `amiscan` did.
pub struct Run {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn stdout_text(&self) -> String {
        String::from_utf8(self.stdout.clone())
            .unwrap_or_else(|_| panic!("{}: stdout is not UTF-8", self.describe()))
    }

    pub fn describe(&self) -> String {
        format!("amiscan {}", self.args.join(" "))
    }

    /// Panics, showing stderr, unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            code,
            "{} exited {} (expected {code}); stderr:\n{}",
            self.describe(),
            self.code,
            self.stderr
        );
        self
    }
}

/// Runs the binary with arguments (paths are passed as given).
pub fn amiscan<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    amiscan_env(args, &[])
}

/// Runs the binary with arguments and extra environment variables (`RAYON_NUM_THREADS`…).
pub fn amiscan_env<I, S>(args: I, env: &[(&str, &str)]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let output = Command::new(env!("CARGO_BIN_EXE_amiscan"))
        .args(&args)
        .envs(env.iter().copied())
        .output()
        .expect("cannot run the amiscan binary");
    let code = output
        .status
        .code()
        .unwrap_or_else(|| panic!("amiscan {args:?} was killed by a signal: {}", output.status));
    Run {
        args: args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        code,
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `amiscan inspect --format json IMAGE`, parsed.
pub fn inspect_json(image_path: &Path) -> (Run, serde_json::Value) {
    let run = amiscan([
        OsStr::new("inspect"),
        OsStr::new("--format"),
        OsStr::new("json"),
        image_path.as_os_str(),
    ]);
    let value = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: stdout is not JSON ({e}); exit {}, stderr:\n{}",
            run.describe(),
            run.code,
            run.stderr
        )
    });
    (run, value)
}

/// The one image of a single-image scan report (the current schema_version): its `results`,
/// `summary` (equal to the run's) and `stats`.
pub fn single_image(report: serde_json::Value) -> serde_json::Value {
    assert_eq!(
        report["schema_version"],
        amiscan::report::SCHEMA_VERSION,
        "schema_version in {report:#}"
    );
    let images = report["images"]
        .as_array()
        .expect("a scan report has images");
    assert_eq!(images.len(), 1, "one image in {report:#}");
    assert_eq!(
        images[0]["summary"], report["summary"],
        "one image: same summary"
    );
    images[0].clone()
}

/// The result of one rule in a scan report (a single-image report or one of its images).
pub fn rule_result<'a>(report: &'a serde_json::Value, rule: &str) -> &'a serde_json::Value {
    let report = if report["images"].is_array() {
        &report["images"][0]
    } else {
        report
    };
    report["results"]
        .as_array()
        .expect("a scan report has results")
        .iter()
        .find(|r| r["rule"] == rule)
        .unwrap_or_else(|| panic!("the scan has no result for {rule} (see `amiscan rules list`)"))
}

/// The volume with this id in an inspect report.
pub fn volume<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no volume {id} in {report:#}"))
}

// ---------------------------------------------------------------------------------------
// The `files` inventory.
// ---------------------------------------------------------------------------------------

/// One line of `files --format jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Record {
    pub path: String,
    pub path_base64: Option<String>,
    pub volume: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub inode: u64,
    pub nlink: u32,
    pub sha256: Option<String>,
    pub target: Option<String>,
    pub target_base64: Option<String>,
    pub rdev: Option<[u32; 2]>,
}

pub fn decode_base64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("bad base64 {text:?}: {e}"))
}

impl Record {
    /// The exact path bytes: `path_base64` when the name is not UTF-8, else `path`.
    pub fn path_bytes(&self) -> Vec<u8> {
        match &self.path_base64 {
            Some(raw) => decode_base64(raw),
            None => self.path.as_bytes().to_vec(),
        }
    }

    pub fn target_bytes(&self) -> Option<Vec<u8>> {
        match (&self.target_base64, &self.target) {
            (Some(raw), _) => Some(decode_base64(raw)),
            (None, Some(text)) => Some(text.as_bytes().to_vec()),
            (None, None) => None,
        }
    }
}

/// Parses JSONL output; every non-empty line must be a record.
pub fn parse_inventory(stdout: &[u8]) -> Vec<Record> {
    let text = std::str::from_utf8(stdout).expect("files output is not UTF-8");
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad record {line:?}: {e}"))
        })
        .collect()
}

/// `amiscan files --hash sha256 IMAGE`, parsed.
pub fn files(image_path: &Path) -> (Run, Vec<Record>) {
    let run = amiscan([
        OsStr::new("files"),
        OsStr::new("--hash"),
        OsStr::new("sha256"),
        image_path.as_os_str(),
    ]);
    let records = parse_inventory(&run.stdout);
    (run, records)
}

// ---------------------------------------------------------------------------------------
// Source trees, described as the inventory should describe them.
// ---------------------------------------------------------------------------------------

/// How a volume's filesystem shows a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fs {
    /// ext2/3/4: mke2fs -d copies type, permission bits, owner, size and mtime seconds.
    Ext,
    /// vfat, as Linux's driver shows it under default mount options: owner root, 0755,
    /// directories of size 0, one link, DOS times (two-second steps; the build writes them
    /// as UTC and gives every source file an even mtime).
    Vfat,
    /// XFS (`testdata/build-xfs-images.sh`): as ext, except that mkfs.xfs makes no
    /// `lost+found`. Directory sizes are the bytes of XFS's own directory format, so they
    /// are not compared; a directory has 2 + subdirectories links, as on ext.
    Xfs,
}

/// A source tree and where it appears in the guest.
#[derive(Debug, Clone)]
pub struct Source {
    pub tree: PathBuf,
    /// Guest path of the tree's root (its mount point), `/` for the root volume.
    pub guest: &'static str,
    /// Volume id the inventory must report, e.g. `p1` or `disk`.
    pub volume: &'static str,
    pub fs: Fs,
}

pub fn source(tree_name: &str, guest: &'static str, volume: &'static str, fs: Fs) -> Source {
    Source {
        tree: tree(tree_name),
        guest,
        volume,
        fs,
    }
}

/// What the inventory must say about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub volume: String,
    pub kind: &'static str,
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    /// `None` for ext directories: their size is the filesystem's block allocation, which
    /// the source tree (on whatever filesystem the build ran) says nothing about.
    pub size: Option<u64>,
    pub mtime: i64,
    pub nlink: u32,
    pub sha256: Option<String>,
    pub target: Option<Vec<u8>>,
    /// The source's (device, inode), to check that hard links (and only they) share an
    /// inode in the image.
    pub source_inode: (u64, u64),
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file's identity for the hash cache: device, inode, size, mtime.
type FileKey = (u64, u64, u64, i64);

/// sha256 of a file, cached by identity so trees shared by several tests hash once.
pub fn sha256_file(path: &Path) -> String {
    static CACHE: OnceLock<Mutex<HashMap<FileKey, String>>> = OnceLock::new();
    let meta = fs::metadata(path).unwrap();
    let key = (meta.dev(), meta.ino(), meta.size(), meta.mtime());
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(hit) = cache.lock().unwrap().get(&key) {
        return hit.clone();
    }
    let mut file = fs::File::open(path).unwrap();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digest = hex(&hasher.finalize());
    cache.lock().unwrap().insert(key, digest.clone());
    digest
}

pub fn kind_of(file_type: fs::FileType) -> &'static str {
    if file_type.is_symlink() {
        "symlink"
    } else if file_type.is_dir() {
        "dir"
    } else if file_type.is_file() {
        "file"
    } else if file_type.is_fifo() {
        "fifo"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_char_device() {
        "char"
    } else if file_type.is_block_device() {
        "block"
    } else {
        "unknown"
    }
}

/// `parent` joined with `name` as a guest path.
pub fn guest_join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = parent.to_vec();
    if out != b"/" {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

fn describe_source(src: &Source, out: &mut BTreeMap<Vec<u8>, Expected>) {
    fn walk(src: &Source, dir: &Path, guest: &[u8], out: &mut BTreeMap<Vec<u8>, Expected>) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let meta = fs::symlink_metadata(&path).unwrap();
            let guest_path = guest_join(guest, name.as_bytes());
            let kind = kind_of(meta.file_type());
            let subdirs = || {
                fs::read_dir(&path)
                    .unwrap()
                    .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_dir())
                    .count() as u32
            };
            let expected = match src.fs {
                Fs::Ext | Fs::Xfs => Expected {
                    volume: src.volume.to_string(),
                    kind,
                    mode: format!("{:04o}", meta.mode() & 0o7777),
                    uid: meta.uid(),
                    gid: meta.gid(),
                    size: (kind != "dir").then_some(meta.size()),
                    mtime: meta.mtime(),
                    // A directory's links: its own entry, its `.`, and each child's `..`.
                    nlink: if kind == "dir" {
                        2 + subdirs()
                    } else {
                        meta.nlink() as u32
                    },
                    sha256: (kind == "file").then(|| sha256_file(&path)),
                    target: (kind == "symlink").then(|| {
                        fs::read_link(&path)
                            .unwrap()
                            .as_os_str()
                            .as_bytes()
                            .to_vec()
                    }),
                    source_inode: (meta.dev(), meta.ino()),
                },
                Fs::Vfat => {
                    assert!(
                        kind == "file" || kind == "dir",
                        "{} cannot be put on FAT",
                        path.display()
                    );
                    assert_eq!(meta.mtime() % 2, 0, "{}: odd mtime", path.display());
                    Expected {
                        volume: src.volume.to_string(),
                        kind,
                        mode: "0755".to_string(),
                        uid: 0,
                        gid: 0,
                        size: Some(if kind == "dir" { 0 } else { meta.size() }),
                        mtime: meta.mtime(),
                        nlink: 1,
                        sha256: (kind == "file").then(|| sha256_file(&path)),
                        target: None,
                        source_inode: (meta.dev(), meta.ino()),
                    }
                }
            };
            out.insert(guest_path.clone(), expected);
            if kind == "dir" {
                walk(src, &path, &guest_path, out);
            }
        }
    }
    walk(src, &src.tree, src.guest.as_bytes(), out);
}

/// Everything the sources put in the guest, by guest path (mount points excluded: each is
/// the root directory of its filesystem, made by mkfs rather than copied from the tree).
pub fn expected_inventory(sources: &[Source]) -> BTreeMap<Vec<u8>, Expected> {
    let mut out = BTreeMap::new();
    for src in sources {
        describe_source(src, &mut out);
    }
    for src in sources {
        out.remove(src.guest.as_bytes());
    }
    out
}

/// A guest path for messages (lossy, with control characters escaped).
pub fn shown(path: &[u8]) -> String {
    escape_for_terminal(path)
}

/// How a record differs from what was expected, one `field: expected X, got Y` each.
pub fn field_diffs(expected: &Expected, actual: &Record) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut check = |name: &str, want: String, got: String| {
        if want != got {
            diffs.push(format!("{name}: expected {want}, got {got}"));
        }
    };
    check("volume", expected.volume.clone(), actual.volume.clone());
    check("type", expected.kind.to_string(), actual.kind.clone());
    check("mode", expected.mode.clone(), actual.mode.clone());
    check("uid", expected.uid.to_string(), actual.uid.to_string());
    check("gid", expected.gid.to_string(), actual.gid.to_string());
    if let Some(size) = expected.size {
        check("size", size.to_string(), actual.size.to_string());
    }
    check(
        "mtime",
        expected.mtime.to_string(),
        actual.mtime.to_string(),
    );
    check(
        "nlink",
        expected.nlink.to_string(),
        actual.nlink.to_string(),
    );
    check(
        "sha256",
        format!("{:?}", expected.sha256),
        format!("{:?}", actual.sha256),
    );
    check(
        "target",
        format!("{:?}", expected.target.as_deref().map(escape_for_terminal)),
        format!(
            "{:?}",
            actual.target_bytes().as_deref().map(escape_for_terminal)
        ),
    );
    diffs
}

/// Lost+found directories mkfs made that the sources do not have.
fn lost_and_found(sources: &[Source]) -> BTreeSet<Vec<u8>> {
    sources
        .iter()
        .filter(|s| s.fs == Fs::Ext && !s.tree.join("lost+found").exists())
        .map(|s| guest_join(s.guest.as_bytes(), b"lost+found"))
        .collect()
}

/// The central check: the image's `files --hash sha256` inventory equals the sources,
/// mapped to their guest paths, exactly: every path, type, permission bits, owner, size,
/// sha256, symlink target, link count and mtime. The only exclusions are `lost+found`
/// (made by mke2fs, not in the sources) and the mount points themselves (filesystem roots
/// made by mkfs: only their presence, type and volume are checked). Hard links must share
/// one inode, and nothing else may.
///
/// `code` is the exit status `files` must end with (3 for images that are partly unreadable).
pub fn assert_inventory_matches(image_name: &str, sources: &[Source], code: i32) -> Vec<Record> {
    assert_inventory_matches_at(&image(image_name), sources, code)
}

/// `assert_inventory_matches` for one volume of an image argument given as a path (disks
/// joined with `+`, say): only that volume's records are compared with its source, so
/// volumes the guest does not mount (listed from their own `/`) can be checked one by one.
pub fn assert_volume_inventory_matches(image_path: &Path, source: Source, code: i32) {
    let (run, mut records) = files(image_path);
    run.expect_code(code);
    records.retain(|r| r.volume == source.volume);
    let label = format!("{} volume {}", image_path.display(), source.volume);
    compare_inventory(&label, &run, &records, &[source]);
}

fn assert_inventory_matches_at(image_path: &Path, sources: &[Source], code: i32) -> Vec<Record> {
    let (run, records) = files(image_path);
    run.expect_code(code);
    compare_inventory(&image_path.display().to_string(), &run, &records, sources);
    records
}

fn compare_inventory(image_name: &str, run: &Run, records: &[Record], sources: &[Source]) {
    let mut problems: Vec<String> = Vec::new();

    let mut actual: BTreeMap<Vec<u8>, &Record> = BTreeMap::new();
    for record in records {
        if actual.insert(record.path_bytes(), record).is_some() {
            problems.push(format!("{}: listed twice", shown(&record.path_bytes())));
        }
    }

    for src in sources {
        match actual.get(src.guest.as_bytes()) {
            Some(r) if r.kind == "dir" && r.volume == src.volume => {}
            Some(r) => problems.push(format!(
                "{} (mount point): expected the root directory of volume {}, got {} of volume {}",
                src.guest, src.volume, r.kind, r.volume
            )),
            None => problems.push(format!(
                "{} (mount point of volume {}): missing",
                src.guest, src.volume
            )),
        }
    }

    let expected = expected_inventory(sources);
    let excluded = lost_and_found(sources);
    let mount_points: BTreeSet<Vec<u8>> = sources
        .iter()
        .map(|s| s.guest.as_bytes().to_vec())
        .collect();
    for (path, want) in &expected {
        match actual.get(path) {
            None => problems.push(format!("{}: missing from the inventory", shown(path))),
            Some(got) => {
                let diffs = field_diffs(want, got);
                if !diffs.is_empty() {
                    problems.push(format!("{}: {}", shown(path), diffs.join("; ")));
                }
            }
        }
    }
    for (path, got) in &actual {
        if !expected.contains_key(path) && !excluded.contains(path) && !mount_points.contains(path)
        {
            problems.push(format!(
                "{}: in the inventory (volume {}, {}) but not in the source",
                shown(path),
                got.volume,
                got.kind
            ));
        }
    }

    // Hard links: source inodes and image inodes must correspond one to one.
    let mut by_source: BTreeMap<(u64, u64), BTreeSet<(String, u64)>> = BTreeMap::new();
    let mut by_image: BTreeMap<(String, u64), BTreeSet<(u64, u64)>> = BTreeMap::new();
    for (path, want) in &expected {
        if let Some(got) = actual.get(path) {
            by_source
                .entry(want.source_inode)
                .or_default()
                .insert((got.volume.clone(), got.inode));
            by_image
                .entry((got.volume.clone(), got.inode))
                .or_default()
                .insert(want.source_inode);
        }
    }
    let names_of = |inode: &(u64, u64)| -> String {
        expected
            .iter()
            .filter(|(_, e)| e.source_inode == *inode)
            .map(|(p, _)| shown(p))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (source_inode, image_inodes) in &by_source {
        if image_inodes.len() > 1 {
            problems.push(format!(
                "hard links {} have different inodes in the image: {image_inodes:?}",
                names_of(source_inode)
            ));
        }
    }
    for ((volume, inode), source_inodes) in &by_image {
        if source_inodes.len() > 1 {
            let names: Vec<String> = source_inodes.iter().map(names_of).collect();
            problems.push(format!(
                "distinct files share inode {inode} of volume {volume}: {}",
                names.join(" / ")
            ));
        }
    }

    if !problems.is_empty() {
        const SHOWN: usize = 12;
        let mut message = format!(
            "{image_name}: the inventory differs from the source trees in {} ways \
             ({} records, {} expected); first {}:\n",
            problems.len(),
            records.len(),
            expected.len(),
            problems.len().min(SHOWN)
        );
        for p in problems.iter().take(SHOWN) {
            message.push_str("  ");
            message.push_str(p);
            message.push('\n');
        }
        if !run.stderr.is_empty() {
            message.push_str("stderr:\n");
            message.push_str(&run.stderr);
        }
        panic!("{message}");
    }
}

// ---------------------------------------------------------------------------------------
// Renderings the commands use, reimplemented to build expected output.
// ---------------------------------------------------------------------------------------

/// Terminal escaping of names is unit-tested with literal cases in `amiscan::names`; the
/// integration tests reuse it to build expected `ls` output.
pub use amiscan::names::escape_for_terminal;

/// `ls -l`'s mode column for a source node.
pub fn mode_string(meta: &fs::Metadata) -> String {
    let kind = match kind_of(meta.file_type()) {
        "dir" => 'd',
        "symlink" => 'l',
        "fifo" => 'p',
        "socket" => 's',
        "char" => 'c',
        "block" => 'b',
        _ => '-',
    };
    let p = meta.mode();
    let mut s = String::from(kind);
    let triplets = [
        (0o400, 0o200, 0o100, 0o4000, 's'),
        (0o40, 0o20, 0o10, 0o2000, 's'),
        (0o4, 0o2, 0o1, 0o1000, 't'),
    ];
    for (r, w, x, special, letter) in triplets {
        s.push(if p & r != 0 { 'r' } else { '-' });
        s.push(if p & w != 0 { 'w' } else { '-' });
        s.push(match (p & x != 0, p & special != 0) {
            (true, true) => letter,
            (false, true) => letter.to_ascii_uppercase(),
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC, computed by counting days.
pub fn utc_time(seconds: i64) -> String {
    let mut days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut year = 1970;
    loop {
        let len = if leap(year) { 366 } else { 365 };
        if days < 0 {
            year -= 1;
            days += if leap(year) { 366 } else { 365 };
        } else if days >= len {
            days -= len;
            year += 1;
        } else {
            break;
        }
    }
    let months = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while days >= months[month] {
        days -= months[month];
        month += 1;
    }
    format!(
        "{year:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        month + 1,
        days + 1,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The source's children of `dir`, sorted by name bytes.
pub fn sorted_names(dir: &Path) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    names.sort();
    names
}

/// Partitions as `sfdisk --json` reads them (512-byte sectors): number → (start, size) in bytes.
pub fn sfdisk_partitions(image_path: &Path) -> BTreeMap<u32, (u64, u64)> {
    let output = tool_command("sfdisk")
        .arg("--json")
        .arg(image_path)
        .output()
        .expect("cannot run sfdisk");
    assert!(output.status.success(), "sfdisk --json failed");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let table = &json["partitiontable"];
    let device = table["device"].as_str().unwrap();
    let sector = table["sectorsize"].as_u64().unwrap_or(512);
    table["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let node = p["node"].as_str().unwrap();
            let number = node[device.len()..]
                .trim_start_matches('p')
                .parse()
                .unwrap();
            (
                number,
                (
                    p["start"].as_u64().unwrap() * sector,
                    p["size"].as_u64().unwrap() * sector,
                ),
            )
        })
        .collect()
}

/// sha256 and mtime (ns) of a file, for proving it was not written.
pub fn fingerprint(path: &Path) -> (String, i64, i64) {
    let output = tool_command("sha256sum")
        .arg(path)
        .output()
        .expect("cannot run sha256sum");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let digest = text.split_whitespace().next().unwrap().to_string();
    let meta = fs::metadata(path).unwrap();
    (digest, meta.mtime(), meta.mtime_nsec())
}

#[test]
fn a_missing_tool_is_named_with_its_package() {
    let panicked = std::panic::catch_unwind(|| tool("mkfs.no-such-filesystem", &[])).unwrap_err();
    let message = panicked
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        message,
        "required tool 'mkfs.no-such-filesystem' not found on PATH (no Debian package known to \
         the tests; .ci/run installs it)"
    );
    assert_eq!(
        missing_tool_message("mkfs.xfs"),
        "required tool 'mkfs.xfs' not found on PATH (Debian package xfsprogs; .ci/run installs it)"
    );
    // What bash says when a build script runs a tool that is not installed.
    let output = tool_command("bash")
        .args(["-c", "set -e; mkfs.no-such-filesystem -q x.img"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        missing_in_script_output(&stderr).as_deref(),
        Some("mkfs.no-such-filesystem"),
        "{stderr}"
    );
    assert_eq!(
        missing_in_script_output("required tool 'qemu-img' not found on PATH").as_deref(),
        Some("qemu-img")
    );
    assert_eq!(
        missing_in_script_output("build-lvm-images.sh: pvcreate is required").as_deref(),
        Some("pvcreate")
    );
}

#[test]
fn utc_time_counts_days() {
    assert_eq!(utc_time(0), "1970-01-01 00:00:00");
    assert_eq!(utc_time(951_782_400), "2000-02-29 00:00:00");
    assert_eq!(utc_time(-31_536_000), "1969-01-01 00:00:00");
    assert_eq!(utc_time(1_700_000_000), "2023-11-14 22:13:20");
}

// ---------------------------------------------------------------------------------------
// Runs on damaged images.
// ---------------------------------------------------------------------------------------

/// How long one run on a damaged image may take: generous for a debug build on a loaded
/// two-core machine, while a hang would run forever.
pub const DAMAGED_RUN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `amiscan ARGS` with a deadline and returns (exit code, stderr). A signal (a crash,
/// an abort), a panic or a run past the deadline fails the test. With `limit_memory` the
/// run gets 2 GiB of address space, so an allocation sized from a crafted field fails
/// loudly instead of quietly succeeding on a machine with enough memory.
pub fn run_with_deadline(args: &[&OsStr], limit_memory: bool) -> (i32, String) {
    use std::io::Read as _;
    use std::process::Stdio;
    let binary = env!("CARGO_BIN_EXE_amiscan");
    let mut command = if limit_memory {
        let mut c = Command::new("bash");
        c.arg("-c")
            .arg("ulimit -v 2097152; exec \"$0\" \"$@\"")
            .arg(binary);
        c
    } else {
        Command::new(binary)
    };
    let mut child = command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the amiscan binary");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let text = reader.join().unwrap();
            let Some(code) = status.code() else {
                panic!("amiscan {args:?} was killed by a signal ({status}); stderr:\n{text}");
            };
            assert!(
                code != 101 && !text.contains("panicked"),
                "amiscan {args:?} panicked:\n{text}"
            );
            return (code, text);
        }
        if started.elapsed() > DAMAGED_RUN_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("amiscan {args:?} did not finish within {DAMAGED_RUN_DEADLINE:?} (hang?)");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// xorshift64*: deterministic, so a failing mutation or sample is reproducible from its
/// seed. Shared by every test that mutates or samples.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn below_u64(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Lays `tree` out as `testdata/build-rule-images.sh` lays out the `case` image (`leaky`,
/// `sealed`, `tricky`), into `out`: the same partitions, labels and UUIDs, made by the same
/// shell function. For rescanning a tree a test has changed.
pub fn rule_disk(case: &str, tree: &Path, out: &Path) {
    let script = manifest_dir().join("testdata").join("build-rule-images.sh");
    let output = tool_command("bash")
        .arg(&script)
        .arg("--disk")
        .arg(case)
        .arg(tree)
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "build-rule-images.sh --disk {case} {} {} failed ({}):\n{}{}",
        tree.display(),
        out.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---------------------------------------------------------------------------------------
// Damaged copies of built images.
// ---------------------------------------------------------------------------------------

/// A directory for damaged copies, private to one test and process, removed when dropped.
pub struct Scratch {
    pub dir: PathBuf,
    /// Where the built images this test copies live.
    images: fn(&str) -> PathBuf,
}

impl Scratch {
    /// A scratch directory of test `test` in suite `suite`, copying images found by
    /// `images` (an image name to its built path).
    pub fn new(suite: &str, test: &str, images: fn(&str) -> PathBuf) -> Scratch {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(suite)
            .join(format!("{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch { dir, images }
    }

    /// A sparse copy of a built image.
    pub fn copy(&self, name: &str) -> PathBuf {
        let to = self.dir.join(name);
        let status = tool_command("cp")
            .arg("--sparse=always")
            .arg((self.images)(name))
            .arg(&to)
            .status()
            .unwrap();
        assert!(status.success(), "cp {name} failed");
        to
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Overwrites bytes of a file at `at`.
pub fn poke(file: &Path, at: u64, bytes: &[u8]) {
    let mut f = fs::OpenOptions::new().write(true).open(file).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(bytes).unwrap();
}

pub fn read_at(file: &Path, at: u64, len: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0; len];
    fs::File::open(file)
        .unwrap()
        .read_exact_at(&mut buf, at)
        .unwrap();
    buf
}

/// Whether a message gives a byte offset inside `start..start + len` (the damaged
/// structure: a reader may name its first byte or the field it found wrong), in decimal
/// or in hex.
pub fn mentions_offset_within(text: &str, start: u64, len: u64) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts_number =
            bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric());
        if !starts_number {
            i += 1;
            continue;
        }
        let (radix, from) = if bytes[i..].starts_with(b"0x") {
            (16, i + 2)
        } else {
            (10, i)
        };
        let to = from
            + bytes[from..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit() && (radix == 16 || b.is_ascii_digit()))
                .count();
        if let Ok(n) = u64::from_str_radix(&text[from..to], radix) {
            if (start..start + len).contains(&n) {
                return true;
            }
        }
        i = to.max(i + 1);
    }
    false
}

/// `files --hash sha256` on a damaged image, with a deadline and a 2 GiB address-space
/// limit: (exit code, stderr). A panic, a signal or a hang fails the test.
pub fn damaged_files(img: &Path) -> (i32, String) {
    run_with_deadline(
        &[
            OsStr::new("files"),
            OsStr::new("--hash"),
            OsStr::new("sha256"),
            img.as_os_str(),
        ],
        true,
    )
}

/// Asserts that a scan report of an image built with the usual planted leftovers (the
/// XFS and LVM RHEL-like and Amazon Linux-like images) fails each rule at each planted
/// path; `home` is the image's user home directory.
pub fn assert_planted_leftovers_found(image: &str, report: &serde_json::Value, home: &str) {
    let history = format!("{home}/.bash_history");
    let planted: &[(&str, &str)] = &[
        ("ssh.host-keys", "/etc/ssh/ssh_host_ed25519_key"),
        ("ssh.host-keys", "/etc/ssh/ssh_host_ed25519_key.pub"),
        ("ssh.host-keys", "/etc/ssh/ssh_host_ecdsa_key"),
        ("ssh.authorized-keys", "/root/.ssh/authorized_keys"),
        ("history.shell", &history),
        ("history.shell", "/root/.bash_history"),
        ("creds.aws", "/root/.aws/credentials"),
        ("sshd.password-authentication", "/etc/ssh/sshd_config"),
        ("sshd.permit-root-login", "/etc/ssh/sshd_config"),
        ("accounts.empty-password", "/etc/shadow"),
        ("accounts.password-set", "/etc/shadow"),
        ("cleanup.machine-id", "/etc/machine-id"),
        ("cleanup.cloud-init", "/var/lib/cloud/instance"),
        ("cleanup.cloud-init", "/var/log/cloud-init.log"),
        ("cleanup.logs", "/var/log/messages"),
        ("cleanup.logs", "/var/log/secure"),
    ];
    let mut missing = Vec::new();
    for (rule, path) in planted {
        let result = rule_result(report, rule);
        let found = result["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == *path);
        if result["status"] != "fail" || !found {
            missing.push(format!(
                "{rule} at {path}: status {}, findings {}",
                result["status"],
                serde_json::to_string(&result["findings"]).unwrap()
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "{image}: planted leftovers not found:\n  {}",
        missing.join("\n  ")
    );
}

/// The path of an image built by `testdata/SCRIPT` (run once per process, under `lock`).
pub fn built_image(script: &str, lock: &str, name: &str) -> PathBuf {
    ensure_built(script, lock);
    let path = build_dir().join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// `amiscan scan IMAGE --format json --as-of DAY`: the run and the image's report.
pub fn scan_json_as_of(img: &Path, as_of: &str) -> (Run, serde_json::Value) {
    let run = amiscan([
        OsStr::new("scan"),
        img.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
        OsStr::new("--as-of"),
        OsStr::new(as_of),
    ]);
    let json = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: stdout is not JSON ({e}); exit {}, stderr:\n{}",
            run.describe(),
            run.code,
            run.stderr
        )
    });
    (run, single_image(json))
}

// ---------------------------------------------------------------------------------------
// Small guests built by a test itself.
// ---------------------------------------------------------------------------------------

/// An empty directory for test `test` of suite `suite`, private to this process; left in
/// place afterwards for a look at what failed.
pub fn scratch_dir(suite: &str, test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(suite)
        .join(format!("{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A sparse copy of an image, for a test to damage.
pub fn copy_sparse(from: &Path, to: &Path) {
    tool(
        "cp",
        &[
            "--sparse=always",
            from.to_str().unwrap(),
            to.to_str().unwrap(),
        ],
    );
}

/// Runs a tool that must succeed; its standard output.
pub fn tool(program: &str, args: &[&str]) -> String {
    let output = tool_command(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A small OS root in `dir/tree`: os-release and an fstab mounting LABEL=root at `/`, so
/// only what a test does to it can keep it from passing.
pub fn os_tree(dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(
        tree.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\n",
    )
    .unwrap();
    fs::write(tree.join("etc/fstab"), "LABEL=root / ext4 defaults 0 1\n").unwrap();
    tree
}

/// `mke2fs -t ext4 -L root -d TREE IMAGE SIZE`, with `extra` options before `-d`.
pub fn mkfs_ext4(tree: &Path, image: &Path, extra: &[&str], size: &str) {
    let mut args = vec!["-q", "-F", "-t", "ext4", "-L", "root"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-d", tree.to_str().unwrap(), image.to_str().unwrap(), size]);
    tool("mke2fs", &args);
}

/// `len` bytes of deterministic noise (xorshift64 from `seed`, which must not be 0).
pub fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}
