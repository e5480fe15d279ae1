//! The residue rules: what deleted files leave in free space and the journal. The images are
//! made the way a build host makes them: ext4 mounted through a loop device, files written
//! by the kernel, synced, then removed with plain `rm` (their blocks freed, not cleared),
//! or shredded with `shred -zu` and the free space zero-filled; one is mounted with
//! `data=journal` so a file's content also lands in the journal. Mounting needs root, as
//! CI runs; without it the suite fails, saying so.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::util::{amiscan, inspect_json, mkfs_ext4, os_tree, rule_result, single_image, tool};

const AWS_KEY_ID: &str = "AKIA2PCR4JYK4FQVSADR";
const AWS_SECRET: &str = "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";
const GITHUB_TOKEN: &str = "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";

/// A loop mount, unmounted when dropped (also when a step of the build panics).
struct Mounted(PathBuf);

impl Mounted {
    fn new(image: &Path, at: &Path, options: &str) -> Mounted {
        fs::create_dir_all(at).unwrap();
        let output = Command::new("mount")
            .args(["-o", &format!("loop,{options}")])
            .arg(image)
            .arg(at)
            .output()
            .expect("mount");
        assert!(
            output.status.success(),
            "the residue suite builds its images through loop mounts, which need root (as CI \
             runs): mount -o loop,{options} {}: {}",
            image.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        Mounted(at.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("sync").status();
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The files a builder leaves: an AWS credentials file, a GitHub token in a history with
/// timestamps, an SSH host key pair and a user's private key.
fn plant(root: &Path) -> Vec<PathBuf> {
    let aws = root.join("root/.aws");
    fs::create_dir_all(&aws).unwrap();
    fs::write(
        aws.join("credentials"),
        format!(
            "[default]\naws_access_key_id = {AWS_KEY_ID}\naws_secret_access_key = {AWS_SECRET}\n"
        ),
    )
    .unwrap();
    fs::write(
        root.join("root/.bash_history"),
        format!(
            "#1733390000\nexport GITHUB_TOKEN={GITHUB_TOKEN}\n#1733390042\ngit clone https://github.com/example/app\n"
        ),
    )
    .unwrap();
    fs::create_dir_all(root.join("etc/ssh")).unwrap();
    let host_key = root.join("etc/ssh/ssh_host_ed25519_key");
    ed25519_key(host_key.to_str().unwrap(), "root@builder");
    vec![
        aws.join("credentials"),
        root.join("root/.bash_history"),
        host_key.clone(),
        host_key.with_extension("pub"),
    ]
}

/// The planted private key's base64 lines, which no output may contain.
fn key_lines(root: &Path) -> Vec<String> {
    let key = fs::read_to_string(root.join("etc/ssh/ssh_host_ed25519_key")).unwrap();
    key.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .map(str::to_string)
        .collect()
}

struct Images {
    /// Files removed with `rm`.
    deleted: PathBuf,
    /// Files shredded, free space zero-filled.
    shredded: PathBuf,
    /// data=journal; the credentials shredded, so only the journal's copy remains.
    journal: PathBuf,
    /// Nothing ever deleted.
    clean: PathBuf,
    /// The private key's lines of the deleted image's host key.
    key_lines: Vec<String>,
}

/// An unencrypted ed25519 key pair at `path` (OpenSSH format) and `path.pub`.
fn ed25519_key(path: &str, comment: &str) {
    tool(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
    );
}

/// A test key a package ships (listed in its md5sums, unmodified).
const PACKAGED_KEY: &str = "usr/share/demo/test.key";

fn package_test_key(tree: &Path) {
    let key = tree.join(PACKAGED_KEY);
    fs::create_dir_all(key.parent().unwrap()).unwrap();
    ed25519_key(key.to_str().unwrap(), "test");
    fs::remove_file(key.with_extension("key.pub")).unwrap();
    let sum = tool("md5sum", &[key.to_str().unwrap()]);
    let md5 = sum.split_whitespace().next().unwrap();
    let info = tree.join("var/lib/dpkg/info");
    fs::create_dir_all(&info).unwrap();
    fs::write(
        info.join("demo-tests.md5sums"),
        format!("{md5}  {PACKAGED_KEY}\n"),
    )
    .unwrap();
    fs::write(
        tree.join("var/lib/dpkg/status"),
        "Package: demo-tests\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n\n",
    )
    .unwrap();
}

/// An empty 64 MiB ext4 volume holding only a small OS root.
fn blank(dir: &Path, name: &str, tree: &Path) -> PathBuf {
    let image = dir.join(name);
    mkfs_ext4(tree, &image, &[], "64M");
    image
}

fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("residue")
            .join(std::process::id().to_string());
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let tree = os_tree(&dir);
        package_test_key(&tree);

        let deleted = blank(&dir, "deleted.img", &tree);
        let key_lines = {
            let mount = Mounted::new(&deleted, &dir.join("m-deleted"), "rw");
            let mut planted = plant(&mount.0);
            let lines = key_lines(&mount.0);
            // A directory of many blocks: the deleted file's entry lies in one without `.`.
            let app = mount.0.join("srv/app");
            fs::create_dir_all(&app).unwrap();
            for n in 0..150 {
                fs::write(
                    app.join(format!("config-file-with-a-long-name-{n:03}.txt")),
                    "x\n",
                )
                .unwrap();
            }
            fs::write(
                app.join("zz-settings.env"),
                format!("AWS_ACCESS_KEY_ID={AWS_KEY_ID}\n"),
            )
            .unwrap();
            planted.push(app.join("zz-settings.env"));
            // An earlier version of a packaged file, freed by an upgrade: the same key.
            let old = mount.0.join("usr/share/demo/test.key.dpkg-old");
            fs::copy(mount.0.join(PACKAGED_KEY), &old).unwrap();
            planted.push(old);
            tool("sync", &[]);
            for file in &planted {
                fs::remove_file(file).unwrap();
            }
            lines
        };

        let shredded = blank(&dir, "shredded.img", &tree);
        {
            let mount = Mounted::new(&shredded, &dir.join("m-shredded"), "rw");
            let planted = plant(&mount.0);
            tool("sync", &[]);
            for file in &planted {
                tool("shred", &["-zu", file.to_str().unwrap()]);
            }
            let fill = mount.0.join("zero.fill");
            // dd stops when the volume is full; that is the point.
            let _ = Command::new("dd")
                .args(["if=/dev/zero", "bs=1M", "status=none"])
                .arg(format!("of={}", fill.display()))
                .status();
            tool("sync", &[]);
            fs::remove_file(&fill).unwrap();
        }

        let journal = blank(&dir, "journal.img", &tree);
        {
            let mount = Mounted::new(&journal, &dir.join("m-journal"), "data=journal");
            let aws = mount.0.join("root/.aws");
            fs::create_dir_all(&aws).unwrap();
            let credentials = aws.join("credentials");
            fs::write(
                &credentials,
                format!("[default]\naws_access_key_id = {AWS_KEY_ID}\n"),
            )
            .unwrap();
            tool("sync", &[]);
            tool("shred", &["-zu", credentials.to_str().unwrap()]);
        }

        let clean = blank(&dir, "clean.img", &tree);
        Images {
            deleted,
            shredded,
            journal,
            clean,
            key_lines,
        }
    })
}

fn scan_json(image: &Path) -> (i32, Value) {
    let run = amiscan([
        "scan".as_ref(),
        // With the credential rules, whose pass tells which values packages ship.
        "--select".as_ref(),
        "residue.*,creds.*".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        image.as_os_str(),
    ]);
    let report: Value = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("{}: {e}; stderr: {}", run.describe(), run.stderr));
    (run.code, single_image(report))
}

fn findings<'r>(image: &'r Value, rule: &str) -> &'r Vec<Value> {
    rule_result(image, rule)["findings"].as_array().unwrap()
}

#[test]
fn deleted_credentials_keys_and_histories_are_found_at_their_offsets() {
    let images = images();
    let (code, image) = scan_json(&images.deleted);
    assert_eq!(code, 1, "{image:#}");
    let secrets = findings(&image, "residue.secrets");
    let kinds: Vec<&str> = secrets
        .iter()
        .map(|f| f["subject"].as_str().unwrap())
        .collect();
    for kind in [
        "AWS access key ID",
        "AWS secret access key",
        "PEM private key",
    ] {
        assert!(kinds.contains(&kind), "{kind} not found: {secrets:#?}");
    }
    assert!(
        kinds.iter().any(|k| k.starts_with("GitHub")),
        "the token in the deleted history: {kinds:?}"
    );
    // Each offset is where the secret lies on the image.
    let bytes = fs::read(&images.deleted).unwrap();
    let packaged = fs::read_to_string(
        images
            .deleted
            .parent()
            .unwrap()
            .join("tree")
            .join(PACKAGED_KEY),
    )
    .unwrap();
    let packaged_line = &packaged.lines().nth(1).unwrap()[..32];
    for finding in secrets {
        assert_eq!(finding["volume"], "disk");
        assert_eq!(finding["area"], "free space");
        assert!(finding["path"].is_null());
        let at = finding["offset"].as_u64().unwrap() as usize;
        let expected: &[&str] = match finding["subject"].as_str().unwrap() {
            "AWS access key ID" => &[AWS_KEY_ID],
            "AWS secret access key" => &[AWS_SECRET],
            "PEM private key" => &[&images.key_lines[0][..32], packaged_line],
            other if other.starts_with("GitHub") => &[GITHUB_TOKEN],
            other => panic!("unexpected kind {other}"),
        };
        assert!(
            expected
                .iter()
                .any(|e| bytes.get(at..at + e.len()) == Some(e.as_bytes())),
            "{finding:#}"
        );
    }
    // The journal's old copies of inode tables and directories name the deleted files.
    let subject_and_former: BTreeSet<(String, String)> = secrets
        .iter()
        .chain(findings(&image, "residue.unshredded"))
        .map(|f| {
            (
                f["subject"].as_str().unwrap().to_string(),
                f["formerly"].as_str().unwrap_or("(none)").to_string(),
            )
        })
        .collect();
    for (subject, former) in [
        ("AWS access key ID", "/root/.aws/credentials"),
        ("AWS secret access key", "/root/.aws/credentials"),
        ("AWS access key ID", "/srv/app/zz-settings.env"),
        ("bash history record", "/root/.bash_history"),
        ("PEM private key", "/etc/ssh/ssh_host_ed25519_key"),
        ("OpenSSH public key", "/etc/ssh/ssh_host_ed25519_key.pub"),
    ] {
        assert!(
            subject_and_former.contains(&(subject.to_string(), former.to_string())),
            "{subject} formerly {former}: {subject_and_former:#?}"
        );
    }
    let aws = secrets
        .iter()
        .find(|f| f["subject"] == "AWS access key ID")
        .unwrap();
    assert!(
        aws["message"]
            .as_str()
            .unwrap()
            .ends_with("(formerly /root/.aws/credentials)"),
        "{aws:#}"
    );
    // The freed copy of a packaged test key is distribution content: info, as in files.
    let shipped: Vec<&Value> = secrets
        .iter()
        .filter(|f| {
            let at = f["offset"].as_u64().unwrap() as usize;
            bytes.get(at..at + 32) == Some(packaged_line.as_bytes())
        })
        .collect();
    assert!(!shipped.is_empty(), "the freed packaged key: {secrets:#?}");
    for finding in shipped {
        assert_eq!(finding["severity"], "info", "{finding:#}");
    }
    let unshredded = findings(&image, "residue.unshredded");
    let kinds: Vec<&str> = unshredded
        .iter()
        .map(|f| f["subject"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"OpenSSH public key"), "{unshredded:#?}");
    assert!(kinds.contains(&"bash history record"), "{unshredded:#?}");
    let stats = &image["stats"]["residue"];
    assert_eq!(stats["volumes"], 1);
    assert!(stats["nonzero_bytes"].as_u64().unwrap() < stats["area_bytes"].as_u64().unwrap());
}

#[test]
fn shredded_and_zero_filled_leaves_nothing() {
    let images = images();
    let (code, image) = scan_json(&images.shredded);
    assert_eq!(code, 0, "{image:#}");
    assert!(findings(&image, "residue.secrets").is_empty());
    assert!(findings(&image, "residue.unshredded").is_empty());
    // And inspect agrees: the free space holds next to nothing but zeros.
    let (_, shredded) = inspect_json(&images.shredded);
    let (_, deleted) = inspect_json(&images.deleted);
    let nonzero = |report: &Value| {
        report["volumes"][0]["unallocated"]["nonzero_bytes"]
            .as_u64()
            .unwrap_or_else(|| panic!("{report:#}"))
    };
    assert!(
        nonzero(&shredded) < nonzero(&deleted),
        "{} vs {}",
        nonzero(&shredded),
        nonzero(&deleted)
    );
    assert!(nonzero(&shredded) <= 64 << 10, "{}", nonzero(&shredded));
}

#[test]
fn a_secret_that_survives_only_in_the_journal_is_found_there() {
    let images = images();
    let (code, image) = scan_json(&images.journal);
    assert_eq!(code, 1, "{image:#}");
    let secrets = findings(&image, "residue.secrets");
    assert!(!secrets.is_empty());
    for finding in secrets {
        assert_eq!(finding["area"], "journal", "{finding:#}");
    }
    assert!(secrets.iter().any(|f| f["subject"] == "AWS access key ID"));
}

#[test]
fn a_clean_image_passes() {
    let (code, image) = scan_json(&images().clean);
    assert_eq!(code, 0, "{image:#}");
    for rule in ["residue.secrets", "residue.unshredded"] {
        assert_eq!(rule_result(&image, rule)["status"], "pass");
    }
}

#[test]
fn with_no_residue_the_residue_rules_are_skipped() {
    let run = amiscan([
        "scan".as_ref(),
        "--no-residue".as_ref(),
        "--select".as_ref(),
        "residue.*".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        images().deleted.as_os_str(),
    ]);
    let image = single_image(serde_json::from_slice(&run.stdout).unwrap());
    assert_eq!(rule_result(&image, "residue.secrets")["status"], "skipped");
    assert!(image["stats"].get("residue").is_none());
}

#[test]
fn no_output_holds_a_planted_secret() {
    let images = images();
    let dir = images.deleted.parent().unwrap().join("outputs");
    fs::create_dir_all(&dir).unwrap();
    let script = dir.join("fix.sh");
    let mut outputs = Vec::new();
    for format in ["table", "json", "jsonl", "markdown", "sarif", "junit"] {
        let run = amiscan([
            "scan".as_ref(),
            "--format".as_ref(),
            format.as_ref(),
            "--remediation-script".as_ref(),
            script.as_os_str(),
            "-v".as_ref(),
            images.deleted.as_os_str(),
        ]);
        assert_eq!(run.code, 1, "{}: {}", run.describe(), run.stderr);
        outputs.push((
            format.to_string(),
            String::from_utf8_lossy(&run.stdout).into_owned(),
        ));
        outputs.push((format!("{format} stderr"), run.stderr));
    }
    let script_text = fs::read_to_string(&script).unwrap();
    for command in ["shred -zu", "dd if=/dev/zero", "fstrim"] {
        assert!(script_text.contains(command), "{script_text}");
    }
    outputs.push(("remediation script".to_string(), script_text));
    for (what, text) in &outputs {
        for planted in [AWS_KEY_ID, AWS_SECRET, GITHUB_TOKEN]
            .into_iter()
            .chain(images.key_lines.iter().map(String::as_str))
        {
            assert!(!text.contains(planted), "{what} holds a planted secret");
        }
    }
}

/// An XFS volume whose free space is fragmented into more extents than one btree block
/// holds (so the free-space btree has a root node over several leaves), with a credential
/// removed by `rm`.
fn xfs_image() -> &'static PathBuf {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let dir = images().deleted.parent().unwrap().to_path_buf();
        let image = dir.join("xfs.img");
        fs::File::create(&image)
            .unwrap()
            .set_len(320 << 20)
            .unwrap();
        tool(
            "mkfs.xfs",
            &["-q", "-f", "-d", "agcount=2", image.to_str().unwrap()],
        );
        let mount = Mounted::new(&image, &dir.join("m-xfs"), "rw");
        fs::create_dir_all(mount.0.join("etc")).unwrap();
        fs::write(mount.0.join("etc/os-release"), "ID=rhel\nVERSION_ID=9.4\n").unwrap();
        let files = mount.0.join("files");
        fs::create_dir_all(&files).unwrap();
        for n in 0..1600u32 {
            fs::write(files.join(n.to_string()), vec![b'x'; 4096]).unwrap();
        }
        fs::write(
            mount.0.join("credentials"),
            format!("[default]\naws_access_key_id = {AWS_KEY_ID}\n"),
        )
        .unwrap();
        tool("sync", &[]);
        for n in (0..1600u32).step_by(2) {
            fs::remove_file(files.join(n.to_string())).unwrap();
        }
        fs::remove_file(mount.0.join("credentials")).unwrap();
        drop(mount);
        image
    })
}

/// xfs_db's list of free extents (`freesp -d`: AG, AG block, length), as merged byte
/// ranges of the volume.
fn xfs_db_free_bytes(image: &Path) -> u64 {
    let geometry = tool(
        "xfs_db",
        &[
            "-r",
            "-c",
            "sb 0",
            "-c",
            "p agblocks blocksize",
            image.to_str().unwrap(),
        ],
    );
    let field = |name: &str| -> u64 {
        geometry
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = ")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let block = field("blocksize");
    let listing = tool(
        "xfs_db",
        &["-r", "-c", "freesp -d", image.to_str().unwrap()],
    );
    let mut total = 0;
    for line in listing.lines() {
        let numbers: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        if let [_, _, len] = numbers[..] {
            total += len * block;
        }
    }
    assert!(total > 0, "{listing}");
    total
}

#[test]
fn xfs_free_space_matches_xfs_db_and_its_residue_is_found() {
    let image = xfs_image();
    let (run, inspect) = inspect_json(image);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let unallocated = &inspect["volumes"][0]["unallocated"];
    assert_eq!(
        unallocated["bytes"].as_u64(),
        Some(xfs_db_free_bytes(image)),
        "{inspect:#}"
    );
    // An AG's bnobt has more than one level after the fragmenting deletions.
    let deepest = (0..2)
        .map(|ag| {
            let agf = format!("agf {ag}");
            tool(
                "xfs_db",
                &[
                    "-r",
                    "-c",
                    &agf,
                    "-c",
                    "p bnolevel",
                    image.to_str().unwrap(),
                ],
            )
        })
        .filter_map(|p| p.trim().strip_prefix("bnolevel = ")?.parse::<u32>().ok())
        .max();
    assert!(
        deepest >= Some(2),
        "the test needs a btree with nodes: {deepest:?}"
    );

    let (code, report) = scan_json(image);
    assert_eq!(code, 1, "{report:#}");
    let secrets = findings(&report, "residue.secrets");
    let bytes = fs::read(image).unwrap();
    let found: Vec<&Value> = secrets
        .iter()
        .filter(|f| {
            let at = f["offset"].as_u64().unwrap() as usize;
            bytes.get(at..at + AWS_KEY_ID.len()) == Some(AWS_KEY_ID.as_bytes())
        })
        .collect();
    assert!(!found.is_empty(), "{secrets:#?}");
    assert!(found.iter().all(|f| f["area"] == "free space"));
}

/// On a partitioned disk the offset counts from the start of the image, not of the
/// partition: leaky.img's root filesystem (GPT partition 1, at 1 MiB) holds a file that
/// debugfs removed.
#[test]
fn offsets_on_a_partitioned_disk_are_image_offsets() {
    let image = crate::util::rule_image("leaky");
    let (code, report) = scan_json(&image);
    assert_eq!(code, 1);
    let bytes = fs::read(&image).unwrap();
    let key = b"AKIA4R7YQNPW2KXD5VTM";
    let found: Vec<&Value> = findings(&report, "residue.secrets")
        .iter()
        .filter(|f| f["subject"] == "AWS access key ID")
        .collect();
    assert!(!found.is_empty(), "{report:#}");
    for finding in found {
        assert_eq!(finding["volume"], "p1");
        let at = finding["offset"].as_u64().unwrap() as usize;
        assert!(at >= 1 << 20, "{finding:#}");
        assert_eq!(bytes.get(at..at + key.len()), Some(&key[..]), "{finding:#}");
    }
}

/// Free space full of key-shaped text costs a count, not memory: 5000 distinct access
/// key ids in one freed file give 1000 findings (the per-rule list) and count the rest.
#[test]
fn a_flood_of_matches_is_capped_and_counted() {
    let dir = images().deleted.parent().unwrap().join("flood");
    fs::create_dir_all(&dir).unwrap();
    let tree = os_tree(&dir);
    let image = blank(&dir, "flood.img", &tree);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let noise = crate::util::noise(5000 * 16, 11);
    let mut text = String::new();
    let mut keys = BTreeSet::new();
    for chunk in noise.chunks(16) {
        let tail: String = chunk
            .iter()
            .map(|b| alphabet[usize::from(*b) % 32] as char)
            .collect();
        let placeholder = ["ABCD", "1234", "0000", "FAKE", "TEST", "DUMMY", "XXXX"]
            .iter()
            .any(|p| tail.contains(p));
        if !placeholder && keys.insert(tail.clone()) {
            text.push_str(&format!("key = AKIA{tail}\n"));
        }
    }
    let count = keys.len();
    assert!(count > 4000, "{count}");
    let file = dir.join("keys.txt");
    fs::write(&file, text).unwrap();
    let image_s = image.to_str().unwrap();
    let write = format!("write {} /keys.txt", file.display());
    tool("debugfs", &["-w", "-R", &write, image_s]);
    tool("debugfs", &["-w", "-R", "rm /keys.txt", image_s]);
    let (code, report) = scan_json(&image);
    assert_eq!(code, 1);
    // At most 1000 listed (the scanner's own cap per stretch counts allowlisted matches
    // too), and every match accounted for.
    let listed = findings(&report, "residue.secrets").len();
    assert!((900..=1000).contains(&listed), "{listed}");
    let stats = &report["stats"]["residue"];
    let dropped = stats["findings_dropped"].as_u64().unwrap() as usize;
    let allowlisted = stats["allowlisted"].as_u64().unwrap() as usize;
    assert!(dropped >= 4000 - 1000, "{stats:#}");
    assert_eq!(
        listed + dropped + allowlisted,
        count,
        "listed {listed}, dropped {dropped}, allowlisted {allowlisted}"
    );
}

/// Free space that cannot be read is never a pass: a volume cut short leaves the residue
/// rules `error`, naming the area and where the read failed.
#[test]
fn free_space_that_cannot_be_read_makes_the_rules_error() {
    let dir = images().clean.parent().unwrap().join("cut");
    fs::create_dir_all(&dir).unwrap();
    let image = dir.join("cut.img");
    fs::copy(&images().clean, &image).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap()
        .set_len(40 << 20)
        .unwrap();
    let (code, report) = scan_json(&image);
    assert_eq!(code, 3, "{report:#}");
    for rule in ["residue.secrets", "residue.unshredded"] {
        let result = rule_result(&report, rule);
        assert_eq!(result["status"], "error", "{result:#}");
        let reason = result["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("free space not read"), "{reason}");
    }
}

/// A free-space btree block that fails its CRC is never used: `inspect` leaves the free
/// space unmeasured, naming the block, and the residue rules are `error`.
#[test]
fn an_xfs_free_space_block_that_fails_its_crc_is_not_used() {
    let image = xfs_image();
    let copy = image.parent().unwrap().join("xfs-bad-bnobt.img");
    fs::copy(image, &copy).unwrap();
    let copy_s = copy.to_str().unwrap();
    let root: u64 = tool("xfs_db", &["-r", "-c", "agf 0", "-c", "p bnoroot", copy_s])
        .trim()
        .strip_prefix("bnoroot = ")
        .unwrap()
        .parse()
        .unwrap();
    let mut bytes = fs::read(&copy).unwrap();
    // A byte of the records, well inside the block and covered by its CRC.
    let at = (root * 4096 + 200) as usize;
    bytes[at] ^= 0x40;
    fs::write(&copy, &bytes).unwrap();
    let (_, inspect) = inspect_json(&copy);
    let error = inspect["volumes"][0]["unallocated"]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{inspect:#}"));
    assert!(error.contains("free-space btree block"), "{error}");
    assert!(error.contains("CRC"), "{error}");
    let (code, report) = scan_json(&copy);
    assert_eq!(code, 3, "{report:#}");
    for rule in ["residue.secrets", "residue.unshredded"] {
        assert_eq!(rule_result(&report, rule)["status"], "error");
    }
}
