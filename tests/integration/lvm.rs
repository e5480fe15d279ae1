//! End-to-end tests of LVM2 support against real images built by
//! `testdata/build-lvm-images.sh` (lvm2 on loop devices, never activated; filesystems copied
//! into the logical volumes' extents): every image's inventory equals the trees its logical
//! volumes were made from, mounted where the guest's fstab says (by /dev/mapper names with
//! their doubled dashes, /dev/VG/LV and UUID=); `inspect` describes each volume group as
//! lvm's own tools (vgs, pvs, lvs --segments, vgcfgbackup, pvck) described it at build time;
//! what cannot be read (a thin volume, a volume on a physical volume that is not in the
//! image) is named and makes the result incomplete; a RHEL 9 layout on LVM scans as its
//! partitioned counterpart does; and damaged copies (the label's CRC, the metadata text's
//! checksum, a metadata area cut short, a segment past the end of its physical volume) fail
//! closed, naming what is wrong and where, without a panic or a hang.

use crate::util;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use util::{
    amiscan, assert_inventory_matches, assert_volume_inventory_matches, build_dir, damaged_files,
    files, fingerprint, inspect_json, mentions_offset_within, poke, read_at, run_with_deadline,
    source, volume, Fs, Scratch, Source,
};

/// Every image the LVM build script makes.
const LVM_IMAGES: &[&str] = &[
    "lvm-linear.img",
    "lvm-striped.img",
    "lvm-segments.img",
    "lvm-wholedisk.img",
    "lvm-wrapped.img",
    "lvm-missing-pv.img",
    "lvm-thin.img",
    "lvm-rhel.img",
    "lvm-rhel-sealed.img",
];

/// Filesystem UUIDs the build script gives (fstab entries name some of them).
const LIN_ROOT_UUID: &str = "1f000000-0000-4000-8000-00000000a001";
const LIN_VAR_UUID: &str = "1f000000-0000-4000-8000-00000000a003";
const LIN_DATA_UUID: &str = "1f000000-0000-4000-8000-00000000a004";
const RHEL_ROOT_UUID: &str = "2b4c6d8e-0000-4a3b-9c5d-1f0e0000a001";
const RHEL_HOME_UUID: &str = "2b4c6d8e-0000-4a3b-9c5d-1f0e0000a002";
const RHEL_VAR_UUID: &str = "2b4c6d8e-0000-4a3b-9c5d-1f0e0000a003";
const RHEL_BOOT_UUID: &str = "2b4c6d8e-0000-4a3b-9c5d-1f0e0000b007";
const RHEL_ESP_UUID: &str = "0E1A-17A0";

/// Scans are judged as of this day, so that the end-of-life rule does not depend on when
/// the tests run (RHEL 9 is supported then).
const AS_OF: &str = "2026-11-22";

fn ensure_lvm_images() {
    util::ensure_built("build-lvm-images.sh", ".lock-lvm");
}

/// The path of a built LVM image.
fn lvm_image(name: &str) -> PathBuf {
    util::built_image("build-lvm-images.sh", ".lock-lvm", name)
}

fn lvm_source(tree: &str, guest: &'static str, volume: &'static str, fs: Fs) -> Source {
    ensure_lvm_images();
    source(tree, guest, volume, fs)
}

/// What lvm said about an image's volume groups when it was built
/// (`testdata/build/lvm-reports/IMAGE.json`, written from vgs, pvs, lvs, vgcfgbackup, pvck).
fn lvm_report(image: &str) -> Value {
    ensure_lvm_images();
    let stem = image.strip_suffix(".img").unwrap();
    let path = build_dir().join("lvm-reports").join(format!("{stem}.json"));
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// One VG of a build report.
fn report_vg<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["volume_groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no VG {name} in the build report"))
}

/// One PV of a VG of a build report, by its metadata name (`pv0`).
fn report_pv<'a>(vg: &'a Value, name: &str) -> &'a Value {
    vg["physical_volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no PV {name} in {vg:#}"))
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Runs amiscan with an image path and string arguments: `run(&img, ["cat", "/x"])` runs
/// `amiscan cat IMAGE /x` (the image goes right after the subcommand).
fn run<'a>(image_path: &'a Path, args: impl IntoIterator<Item = &'a str>) -> util::Run {
    let mut args = args.into_iter();
    let command = args.next().unwrap();
    let mut all: Vec<&OsStr> = vec![OsStr::new(command), image_path.as_os_str()];
    all.extend(args.map(OsStr::new));
    amiscan(all)
}

// ---------------------------------------------------------------------------------------
// Damaged copies.
// ---------------------------------------------------------------------------------------

/// LVM's CRC-32 (`calc_crc` in lvm2's lib/misc/crc.c): the reflected polynomial 0xEDB88320,
/// no inversion on the way in or out; every on-disk checksum starts from 0xf597a6cf.
fn lvm_crc(data: &[u8]) -> u32 {
    let mut crc: u32 = 0xf597_a6cf;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[..4].try_into().unwrap())
}

fn le_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().unwrap())
}

// ---------------------------------------------------------------------------------------
// The central check: each image's inventory equals its source trees.
// ---------------------------------------------------------------------------------------

/// Five LVs mounted by the root LV's fstab, each named another way: /dev/mapper/vg0-home,
/// /dev/vg0/var (XFS), UUID= of data's filesystem, /dev/mapper/vg0-my--lv for the LV `my-lv`.
#[test]
fn linear_inventory_matches_every_lv_at_its_mount_point() {
    assert_inventory_matches(
        "lvm-linear.img",
        &[
            lvm_source("lvm-linear-root", "/", "vg0/root", Fs::Ext),
            lvm_source("lvm-linear-home", "/home", "vg0/home", Fs::Ext),
            lvm_source("lvm-linear-var", "/var", "vg0/var", Fs::Xfs),
            lvm_source("lvm-linear-data", "/data", "vg0/data", Fs::Ext),
            lvm_source("lvm-linear-srv", "/srv", "vg0/my-lv", Fs::Ext),
        ],
        0,
    );
}

/// Two stripes of 64 KiB chunks on two partitions: files of up to 3 MiB cross dozens of
/// chunk boundaries, so any misplaced chunk changes a hash.
#[test]
fn striped_inventory_matches_source() {
    let report = lvm_report("lvm-striped.img");
    let lv = &report_vg(&report, "vgs")["logical_volumes"][0];
    assert_eq!(lv["segments"][0]["stripes"], 2, "build report: {lv:#}");
    assert_eq!(
        lv["segments"][0]["stripe_size"], 65536,
        "build report: {lv:#}"
    );
    assert_inventory_matches(
        "lvm-striped.img",
        &[lvm_source("lvm-striped", "/", "vgs/stripe", Fs::Ext)],
        // A bare data volume: no operating-system root, so never complete.
        3,
    );
}

/// An LV whose second segment lies before its first on the PV; the filesystem's data
/// fills both, so reading the segments in PV order (or only the first) changes hashes.
#[test]
fn segments_out_of_order_inventory_matches_source() {
    let report = lvm_report("lvm-segments.img");
    let lv = &report_vg(&report, "vgseg")["logical_volumes"][0];
    let placement: Vec<(u64, u64)> = lv["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                u64_of(&s["start_extent"]),
                u64_of(&s["areas"][0]["start_extent"]),
            )
        })
        .collect();
    assert_eq!(placement, [(0, 20), (4, 2)], "build report: {lv:#}");
    assert_inventory_matches(
        "lvm-segments.img",
        &[lvm_source("lvm-segments", "/", "vgseg/frag", Fs::Ext)],
        0,
    );
}

/// No partition table: the whole disk is the PV.
#[test]
fn wholedisk_pv_inventory_matches_source() {
    assert_inventory_matches(
        "lvm-wholedisk.img",
        &[lvm_source("lvm-wholedisk", "/", "vgw/root", Fs::Ext)],
        0,
    );
}

/// The current metadata text wraps around the end of the metadata area's circular buffer:
/// read in two pieces, it must still be found, checksummed and parsed.
#[test]
fn wrapped_metadata_inventory_matches_source() {
    let report = lvm_report("lvm-wrapped.img");
    let pv = report_pv(report_vg(&report, "vgwrap"), "pv0");
    assert_eq!(pv["text_wraps"], true, "build report: {pv:#}");
    assert_inventory_matches(
        "lvm-wrapped.img",
        &[lvm_source("lvm-wrapped", "/", "vgwrap/root", Fs::Ext)],
        0,
    );
}

fn rhel_sources(case: &str) -> Vec<Source> {
    let tree = |part: &str| format!("lvm-{case}-{part}");
    vec![
        lvm_source(&tree("root"), "/", "rhel/root", Fs::Xfs),
        lvm_source(&tree("home"), "/home", "rhel/home", Fs::Xfs),
        lvm_source(&tree("var"), "/var", "rhel/var", Fs::Xfs),
        lvm_source("lvm-rhel-boot", "/boot", "p3", Fs::Xfs),
        lvm_source("lvm-rhel-efi", "/boot/efi", "p2", Fs::Vfat),
    ]
}

#[test]
fn rhel_inventory_matches_lvs_boot_and_esp() {
    assert_inventory_matches("lvm-rhel.img", &rhel_sources("rhel"), 0);
}

#[test]
fn rhel_sealed_inventory_matches_lvs_boot_and_esp() {
    assert_inventory_matches("lvm-rhel-sealed.img", &rhel_sources("rhel-sealed"), 0);
}

// ---------------------------------------------------------------------------------------
// What cannot be read is named, and everything else is still listed.
// ---------------------------------------------------------------------------------------

/// VG vgm has two PVs; the image holds only the first. LV a (on it) is read in full; LV b
/// (one segment on each PV) is not scanned, and the reason names the missing PV.
#[test]
fn missing_pv_leaves_its_lv_unscanned_and_the_rest_listed() {
    let img = lvm_image("lvm-missing-pv.img");
    let report = lvm_report("lvm-missing-pv.img");
    let vg = report_vg(&report, "vgm");
    let missing = report_pv(vg, "pv1");
    assert!(missing["volume"].is_null(), "build report: {missing:#}");
    let missing_uuid = missing["uuid"].as_str().unwrap();
    let names_missing_pv = |text: &str| text.contains("pv1") || text.contains(missing_uuid);

    assert_inventory_matches(
        "lvm-missing-pv.img",
        &[lvm_source("lvm-missing-a", "/", "vgm/a", Fs::Ext)],
        3,
    );
    let (run, _) = files(&img);
    assert!(
        run.stderr.contains("vgm/b") && names_missing_pv(&run.stderr),
        "files: stderr does not name LV vgm/b and the missing PV (pv1 or {missing_uuid}):\n{}",
        run.stderr
    );

    let (run, report) = inspect_json(&img);
    run.expect_code(3);
    assert_eq!(report["complete"], false, "{report:#}");
    let a = volume(&report, "vgm/a");
    assert_eq!(a["scanned"], true, "{a:#}");
    assert_eq!(a["mount_point"], "/", "{a:#}");
    let b = volume(&report, "vgm/b");
    assert_eq!(b["scanned"], false, "{b:#}");
    let error = b["error"].as_str().unwrap_or_default();
    assert!(
        names_missing_pv(error),
        "vgm/b: the reason does not name the missing PV (pv1 or {missing_uuid}): {b:#}"
    );
}

/// The two disks of VG vgm given together (`DISK+DISK`) make the VG whole: LV b, with a
/// segment on each disk, is read in full like LV a; nothing is incomplete; each disk's
/// volumes carry its name; `inspect` lists both disks and both PVs.
#[test]
fn pvs_on_two_disks_given_together_make_the_vg_whole() {
    let first = lvm_image("lvm-missing-pv.img");
    let second = lvm_image("lvm-missing-pv-disk2.img");
    let joined = PathBuf::from(format!("{}+{}", first.display(), second.display()));

    assert_volume_inventory_matches(
        &joined,
        lvm_source("lvm-missing-a", "/", "vgm/a", Fs::Ext),
        0,
    );
    assert_volume_inventory_matches(
        &joined,
        lvm_source("lvm-missing-b", "/", "vgm/b", Fs::Ext),
        0,
    );

    let (run, report) = inspect_json(&joined);
    run.expect_code(0);
    assert_eq!(report["complete"], true, "{report:#}");
    let disks = report["disks"].as_array().unwrap();
    let named: Vec<(&str, &str)> = disks
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap(),
                d["image"]["path"].as_str().unwrap(),
            )
        })
        .collect();
    let paths = [first.display().to_string(), second.display().to_string()];
    assert_eq!(
        named,
        [("disk1", paths[0].as_str()), ("disk2", paths[1].as_str())],
        "{report:#}"
    );
    assert_eq!(report["image"]["path"], joined.display().to_string());
    let lvm = lvm_report("lvm-missing-pv.img");
    let vg = report_vg(&lvm, "vgm");
    for (id, pv) in [("disk1/p1", "pv0"), ("disk2/p1", "pv1")] {
        let v = volume(&report, id);
        assert_eq!(v["filesystem"], "LVM2_member", "{v:#}");
        assert_eq!(v["uuid"], report_pv(vg, pv)["uuid"], "{v:#}");
    }
    let group = report["volume_groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "vgm")
        .unwrap();
    let holders: Vec<&Value> = group["physical_volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["volume"])
        .collect();
    assert_eq!(
        holders,
        [&Value::from("disk1/p1"), &Value::from("disk2/p1")],
        "{group:#}"
    );
    let b = volume(&report, "vgm/b");
    assert_eq!(b["scanned"], true, "{b:#}");

    let run = amiscan([
        OsStr::new("scan"),
        OsStr::new("--format"),
        OsStr::new("json"),
        joined.as_os_str(),
    ]);
    run.expect_code(0);
    let scanned: Value = serde_json::from_slice(&run.stdout).unwrap();
    let image = &scanned["images"][0]["image"];
    let sizes = fs::metadata(&first).unwrap().len() + fs::metadata(&second).unwrap().len();
    assert_eq!(image["virtual_size"], sizes, "{image:#}");
    assert_eq!(image["disks"][1]["name"], "disk2", "{image:#}");
    assert_eq!(image["disks"][1]["path"], paths[1].as_str(), "{image:#}");

    // The same disks named as the guest would see them, in the table too.
    let named = PathBuf::from(format!(
        "xvda={}+nvme1n1={}",
        first.display(),
        second.display()
    ));
    let run = amiscan([OsStr::new("inspect"), named.as_os_str()]);
    run.expect_code(0);
    let table = run.stdout_text();
    for expected in [
        "Guest:      2 disks",
        "Disk:       xvda",
        "Disk:       nvme1n1",
        "xvda/p1",
        "nvme1n1/p1",
    ] {
        assert!(
            table.contains(expected),
            "inspect table lacks {expected:?}:\n{table}"
        );
    }
}

/// A joined argument whose second disk cannot be opened is an unreadable image (exit 2)
/// naming that disk; a join with an empty part is a usage error naming its position.
#[test]
fn joined_disks_that_cannot_be_opened_are_named() {
    let first = lvm_image("lvm-missing-pv.img");
    let joined = format!("{}+/nonexistent/disk2.img", first.display());
    let run = amiscan(["inspect", joined.as_str()]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("/nonexistent/disk2.img"),
        "{}",
        run.describe()
    );
    let run = amiscan(["ls", &format!("{}+", first.display()), "/"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("disk 2 of the guest is empty"),
        "{}",
        run.describe()
    );
    let run = amiscan(["scan", joined.as_str()]);
    run.expect_code(2);
    assert!(
        run.stdout_text().contains("/nonexistent/disk2.img")
            || run.stderr.contains("/nonexistent/disk2.img"),
        "{}",
        run.describe()
    );
}

/// A thin pool and a thin LV (not readable: no thin-pool reader) beside a linear LV: the
/// thin LV is listed, not scanned, named on stderr; the result is incomplete; `plain` is
/// read in full.
#[test]
fn thin_lv_is_named_unscanned_and_the_linear_lv_read() {
    let img = lvm_image("lvm-thin.img");
    assert_inventory_matches(
        "lvm-thin.img",
        &[lvm_source("lvm-thin-plain", "/", "vgt/plain", Fs::Ext)],
        3,
    );
    let (run, _) = files(&img);
    assert!(
        run.stderr.contains("thin1"),
        "files: stderr does not name the thin LV thin1:\n{}",
        run.stderr
    );
    let (run, report) = inspect_json(&img);
    run.expect_code(3);
    assert_eq!(report["complete"], false, "{report:#}");
    let thin = volume(&report, "vgt/thin1");
    assert_eq!(thin["scheme"], "lvm", "{thin:#}");
    assert_eq!(thin["scanned"], false, "{thin:#}");
    assert!(
        thin["error"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase()
            .contains("thin"),
        "vgt/thin1: the reason does not say it is a thin volume: {thin:#}"
    );
    let plain = volume(&report, "vgt/plain");
    assert_eq!(plain["scanned"], true, "{plain:#}");
    assert_eq!(plain["filesystem"], "ext4", "{plain:#}");
}

// ---------------------------------------------------------------------------------------
// inspect: the volumes, and the volume groups as lvm describes them.
// ---------------------------------------------------------------------------------------

/// The JSON a segment of the build report must appear as: lvm's `linear` is a striped
/// segment of one stripe (as the metadata text writes it), with no stripe size.
fn expected_segment(s: &Value) -> Value {
    let segtype = s["segtype"].as_str().unwrap();
    let mut out = serde_json::json!({
        "start_extent": s["start_extent"],
        "extent_count": s["extent_count"],
    });
    match segtype {
        "linear" => {
            out["type"] = "striped".into();
            out["stripes"] = 1.into();
            out["stripe_size"] = Value::Null;
        }
        "striped" => {
            out["type"] = "striped".into();
            out["stripes"] = s["stripes"].clone();
            out["stripe_size"] = s["stripe_size"].clone();
        }
        other => out["type"] = other.into(),
    }
    out
}

/// `inspect --format json`'s `volume_groups` against the build report: every VG with its
/// uuid, extent size and seqno; every PV with its uuid and the volume holding it (null when
/// it is not in the image); every visible LV with its uuid, size, type and segments (start,
/// count, type; stripes and stripe size for striped ones). Hidden LVs (a thin pool's
/// sub-volumes) may be listed; if they are, they must agree too, and say they are hidden.
fn assert_volume_groups_match(image: &str) {
    let img = lvm_image(image);
    let want = lvm_report(image);
    let (run, got) = inspect_json(&img);
    assert!(
        [0, 3].contains(&run.code),
        "{image}: inspect exit {}:\n{}",
        run.code,
        run.stderr
    );
    let Some(groups) = got["volume_groups"].as_array() else {
        panic!("{image}: no volume_groups array in inspect's JSON:\n{got:#}");
    };
    let mut problems = Vec::new();
    let wanted = want["volume_groups"].as_array().unwrap();
    if groups.len() != wanted.len() {
        problems.push(format!(
            "{} volume groups, expected {}",
            groups.len(),
            wanted.len()
        ));
    }
    for w in wanted {
        let name = w["name"].as_str().unwrap();
        let Some(g) = groups.iter().find(|g| g["name"] == name) else {
            problems.push(format!("VG {name} missing"));
            continue;
        };
        for field in ["uuid", "extent_size", "seqno"] {
            if g[field] != w[field] {
                problems.push(format!(
                    "VG {name}: {field} {}, lvm says {}",
                    g[field], w[field]
                ));
            }
        }
        let got_pvs = g["physical_volumes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let want_pvs = w["physical_volumes"].as_array().unwrap();
        if got_pvs.len() != want_pvs.len() {
            problems.push(format!(
                "VG {name}: {} PVs, lvm says {}",
                got_pvs.len(),
                want_pvs.len()
            ));
        }
        for wp in want_pvs {
            let pv = wp["name"].as_str().unwrap();
            match got_pvs.iter().find(|p| p["name"] == pv) {
                None => problems.push(format!("VG {name}: PV {pv} missing")),
                Some(p) => {
                    for field in ["uuid", "volume"] {
                        if p[field] != wp[field] {
                            problems.push(format!(
                                "VG {name} PV {pv}: {field} {}, expected {}",
                                p[field], wp[field]
                            ));
                        }
                    }
                }
            }
        }
        let got_lvs = g["logical_volumes"].as_array().cloned().unwrap_or_default();
        let want_lvs = w["logical_volumes"].as_array().unwrap();
        for wl in want_lvs {
            let lv = wl["name"].as_str().unwrap();
            let Some(l) = got_lvs.iter().find(|l| l["name"] == lv) else {
                if wl["hidden"] == false {
                    problems.push(format!("VG {name}: LV {lv} missing"));
                }
                continue;
            };
            for field in ["uuid", "hidden"] {
                if l[field] != wl[field] {
                    problems.push(format!(
                        "LV {name}/{lv}: {field} {}, lvs says {}",
                        l[field], wl[field]
                    ));
                }
            }
            if l["size"] != wl["size"] {
                problems.push(format!(
                    "LV {name}/{lv}: size {}, lvs says {}",
                    l["size"], wl["size"]
                ));
            }
            if l["type"] != wl["type"] {
                problems.push(format!(
                    "LV {name}/{lv}: type {}, lvs says {}",
                    l["type"], wl["type"]
                ));
            }
            let want_segments: Vec<Value> = wl["segments"]
                .as_array()
                .unwrap()
                .iter()
                .map(expected_segment)
                .collect();
            let got_segments = l["segments"].as_array().cloned().unwrap_or_default();
            if got_segments.len() != want_segments.len() {
                problems.push(format!(
                    "LV {name}/{lv}: {} segments, lvs says {}",
                    got_segments.len(),
                    want_segments.len()
                ));
            }
            for (i, (gs, ws)) in got_segments.iter().zip(&want_segments).enumerate() {
                for (field, value) in ws.as_object().unwrap() {
                    if &gs[field] != value {
                        problems.push(format!(
                            "LV {name}/{lv} segment {i}: {field} {}, expected {value}",
                            gs[field]
                        ));
                    }
                }
            }
        }
        for l in &got_lvs {
            if !want_lvs.iter().any(|wl| wl["name"] == l["name"]) {
                problems.push(format!(
                    "VG {name}: LV {} is not in lvs's report",
                    l["name"]
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{image}: volume_groups differ from lvm's report:\n  {}\ninspect's volume_groups:\n{:#}",
        problems.join("\n  "),
        got["volume_groups"]
    );
}

#[test]
fn inspect_volume_groups_match_lvm_reports() {
    for image in LVM_IMAGES {
        assert_volume_groups_match(image);
    }
}

/// The LVs are volumes of their own (`VG/LV`, scheme lvm) with their filesystem, its UUID
/// and mount point; the PV's partition is listed as LVM2_member, not scanned, and does not
/// make the result incomplete.
#[test]
fn inspect_linear_lists_lvs_as_volumes() {
    let img = lvm_image("lvm-linear.img");
    let (run, report) = inspect_json(&img);
    run.expect_code(0);
    assert_eq!(report["complete"], true, "{report:#}");
    assert_eq!(report["os"]["id"], "debian", "{report:#}");
    for (id, fs_type, uuid, mount) in [
        ("vg0/root", "ext4", Some(LIN_ROOT_UUID), "/"),
        ("vg0/home", "ext4", None, "/home"),
        ("vg0/var", "xfs", Some(LIN_VAR_UUID), "/var"),
        ("vg0/data", "ext4", Some(LIN_DATA_UUID), "/data"),
        ("vg0/my-lv", "ext4", None, "/srv"),
    ] {
        let v = volume(&report, id);
        assert_eq!(v["scheme"], "lvm", "{v:#}");
        assert_eq!(v["filesystem"], fs_type, "{v:#}");
        assert_eq!(v["scanned"], true, "{v:#}");
        assert_eq!(v["mount_point"], mount, "{v:#}");
        assert!(v["error"].is_null(), "{v:#}");
        if let Some(uuid) = uuid {
            assert_eq!(v["uuid"], uuid, "{v:#}");
        }
    }
    let p1 = volume(&report, "p1");
    assert_eq!(p1["filesystem"], "LVM2_member", "{p1:#}");
    assert_eq!(p1["scanned"], false, "{p1:#}");
    assert!(p1["mount_point"].is_null(), "{p1:#}");
    let lvm = lvm_report("lvm-linear.img");
    assert_eq!(
        p1["uuid"],
        report_pv(report_vg(&lvm, "vg0"), "pv0")["uuid"],
        "{p1:#}"
    );
}

/// RHEL 9 on LVM: root, home and var LVs (XFS) by /dev/mapper names, /boot and /boot/efi
/// by UUID=, the swap LV listed but holding no files (not incomplete).
#[test]
fn inspect_rhel_lists_lvs_boot_esp_and_swap() {
    let img = lvm_image("lvm-rhel.img");
    let (run, report) = inspect_json(&img);
    run.expect_code(0);
    assert_eq!(report["complete"], true, "{report:#}");
    assert_eq!(report["os"]["id"], "rhel");
    assert_eq!(report["os"]["version_id"], "9.4");
    for (id, uuid, mount) in [
        ("rhel/root", RHEL_ROOT_UUID, "/"),
        ("rhel/home", RHEL_HOME_UUID, "/home"),
        ("rhel/var", RHEL_VAR_UUID, "/var"),
        ("p3", RHEL_BOOT_UUID, "/boot"),
    ] {
        let v = volume(&report, id);
        assert_eq!(v["filesystem"], "xfs", "{v:#}");
        assert_eq!(v["uuid"], uuid, "{v:#}");
        assert_eq!(v["mount_point"], mount, "{v:#}");
        assert_eq!(v["scanned"], true, "{v:#}");
        assert_eq!(v["details"]["log"], "clean", "{v:#}");
    }
    let p2 = volume(&report, "p2");
    assert_eq!(p2["filesystem"], "vfat");
    assert_eq!(p2["uuid"], RHEL_ESP_UUID);
    assert_eq!(p2["mount_point"], "/boot/efi");
    let swap = volume(&report, "rhel/swap");
    assert_eq!(swap["scheme"], "lvm", "{swap:#}");
    assert_eq!(swap["filesystem"], "swap", "{swap:#}");
    assert_eq!(swap["scanned"], false, "{swap:#}");
    let p4 = volume(&report, "p4");
    assert_eq!(p4["filesystem"], "LVM2_member", "{p4:#}");
    assert_eq!(p4["scanned"], false, "{p4:#}");
    assert_eq!(volume(&report, "p1")["scanned"], false);
}

// ---------------------------------------------------------------------------------------
// The built-in rules on the RHEL 9 layout.
// ---------------------------------------------------------------------------------------

fn scan(image: &str) -> (util::Run, Value) {
    util::scan_json_as_of(&lvm_image(image), AS_OF)
}

/// Every planted leftover is found under its rule at its path — on the root LV, and on the
/// home and var LVs that the fstab mounts over it.
#[test]
fn scan_rhel_finds_every_planted_leftover() {
    let (run, report) = scan("lvm-rhel.img");
    run.expect_code(1);
    assert_eq!(report["summary"]["incomplete"], false, "{}", run.stderr);
    util::assert_planted_leftovers_found("lvm-rhel.img", &report, "/home/cloud-user");
}

#[test]
fn scan_rhel_sealed_passes() {
    let (run, report) = scan("lvm-rhel-sealed.img");
    let failing: Vec<String> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] != "pass" && r["status"] != "skipped")
        .map(|r| format!("{}: {} {}", r["rule"], r["status"], r["findings"]))
        .collect();
    assert!(
        failing.is_empty(),
        "lvm-rhel-sealed.img: rules that did not pass:\n  {}\nstderr:\n{}",
        failing.join("\n  "),
        run.stderr
    );
    run.expect_code(0);
    assert_eq!(report["summary"]["incomplete"], false);
}

// ---------------------------------------------------------------------------------------
// Read-only and deterministic.
// ---------------------------------------------------------------------------------------

/// No command writes to an image: the small ones are hashed, the others keep their size
/// and modification time (which any write, even of the same bytes, changes).
#[test]
fn images_are_never_written() {
    for name in LVM_IMAGES {
        let img = lvm_image(name);
        let hashed = [
            "lvm-wholedisk.img",
            "lvm-wrapped.img",
            "lvm-missing-pv.img",
            "lvm-thin.img",
        ]
        .contains(name);
        let stamp = |img: &Path| {
            let meta = fs::metadata(img).unwrap();
            (meta.len(), meta.mtime(), meta.mtime_nsec())
        };
        let before = (hashed.then(|| fingerprint(&img)), stamp(&img));
        for args in [
            vec!["inspect", "--format", "json"],
            vec!["ls", "-l", "/"],
            vec!["files", "--hash", "sha256"],
        ] {
            let r = run(&img, args);
            assert!(
                [0, 3].contains(&r.code),
                "{}: exit {}:\n{}",
                r.describe(),
                r.code,
                r.stderr
            );
        }
        let after = (hashed.then(|| fingerprint(&img)), stamp(&img));
        assert_eq!(after, before, "{name} changed");
    }
    let disks = [
        lvm_image("lvm-missing-pv.img"),
        lvm_image("lvm-missing-pv-disk2.img"),
    ];
    let before: Vec<_> = disks.iter().map(|d| fingerprint(d)).collect();
    let joined = PathBuf::from(format!("{}+{}", disks[0].display(), disks[1].display()));
    for args in [
        vec!["inspect", "--format", "json"],
        vec!["files", "--hash", "sha256"],
    ] {
        run(&joined, args).expect_code(0);
    }
    let after: Vec<_> = disks.iter().map(|d| fingerprint(d)).collect();
    assert_eq!(after, before, "the joined disks changed");
}

#[test]
fn striped_inventory_is_the_same_at_any_thread_count() {
    let img = lvm_image("lvm-striped.img");
    // A bare data volume: no operating-system root, so never complete.
    let one = run(&img, ["files", "--hash", "sha256", "--threads", "1"]);
    one.expect_code(3);
    let four = run(&img, ["files", "--hash", "sha256", "--threads", "4"]);
    four.expect_code(3);
    let count = one.stdout.iter().filter(|b| **b == b'\n').count();
    assert!(count >= 300, "only {count} lines");
    assert!(
        one.stdout == four.stdout,
        "--threads 1 and --threads 4 differ"
    );
}

// ---------------------------------------------------------------------------------------
// Damage: fail closed, name the structure and its byte offset, never panic or hang. The
// RHEL layout is damaged because it keeps readable volumes outside LVM (the ESP, /boot):
// a damaged PV must make the result incomplete, not merely smaller.
// ---------------------------------------------------------------------------------------

/// The RHEL image's PV, from the build report.
fn rhel_pv() -> Value {
    let report = lvm_report("lvm-rhel.img");
    report_pv(report_vg(&report, "rhel"), "pv0").clone()
}

/// Asserts that no LV of VG `rhel` is listed by `files` and that the result is incomplete.
fn assert_rhel_lvs_absent(img: &Path, what: &str) {
    let (run, records) = files(img);
    run.expect_code(3);
    let from_lvs: Vec<&str> = records
        .iter()
        .filter(|r| r.volume.starts_with("rhel/"))
        .map(|r| r.path.as_str())
        .take(5)
        .collect();
    assert!(
        from_lvs.is_empty(),
        "{what}: files still lists files of VG rhel's LVs: {from_lvs:?}"
    );
}

/// A byte of the label sector that only its CRC covers (padding after the PV header):
/// the label is not trusted, so the PV is not used and its LVs are absent; the error names
/// the label and a byte offset in its sector.
#[test]
fn damaged_label_crc_drops_the_pv() {
    let scratch = Scratch::new("lvm-tests", "damaged_label", lvm_image);
    let pv = rhel_pv();
    let label = u64_of(&pv["label_offset"]);
    let img = scratch.copy("lvm-rhel.img");
    let sector = read_at(&img, label, 512);
    assert_eq!(&sector[..8], b"LABELONE", "no label at byte {label}");
    assert_eq!(&sector[24..32], b"LVM2 001");
    // The CRC covers bytes 20..512 of the sector: the label's data offset, type, and the
    // PV header; byte 256 is padding past the header's extension, zero as written.
    assert_eq!(
        lvm_crc(&sector[20..512]),
        le_u32(&sector[16..20]),
        "the label CRC as built"
    );
    assert_eq!(sector[256], 0);
    poke(&img, label + 256, &[0x5a]);
    let (code, stderr) = damaged_files(&img);
    assert_eq!(code, 3, "files exit code; stderr:\n{stderr}");
    assert!(
        stderr.to_ascii_lowercase().contains("label"),
        "stderr does not name the label:\n{stderr}"
    );
    assert!(
        mentions_offset_within(&stderr, label, 512),
        "stderr gives no byte offset in the label sector ({label}..+512):\n{stderr}"
    );
    assert_rhel_lvs_absent(&img, "label CRC damaged");
    let (run, report) = inspect_json(&img);
    run.expect_code(3);
    assert_eq!(report["complete"], false);
    assert!(
        !report["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["id"] == "rhel/root"),
        "rhel/root is still listed as a volume"
    );
}

/// A byte in the middle of the current metadata text: its checksum (in the metadata area
/// header's raw location) no longer matches; the error says so with a byte offset in the
/// metadata area, and the LVs are absent.
#[test]
fn damaged_metadata_text_fails_its_checksum() {
    let scratch = Scratch::new("lvm-tests", "damaged_text", lvm_image);
    let pv = rhel_pv();
    let (mda, text_at, text_len) = (
        u64_of(&pv["mda_offset"]),
        u64_of(&pv["text_offset"]),
        u64_of(&pv["text_size"]),
    );
    let img = scratch.copy("lvm-rhel.img");
    let text = read_at(&img, text_at, text_len as usize);
    assert!(
        text.starts_with(b"rhel {"),
        "no metadata text at byte {text_at}"
    );
    // pvck prints the checksum without leading zeros: compare numbers, not text.
    let built = pv["text_checksum"].as_str().unwrap();
    let built = u32::from_str_radix(built.trim_start_matches("0x"), 16).unwrap();
    assert_eq!(lvm_crc(&text), built, "the text's checksum as built");
    let middle = text_len / 2;
    let was = text[middle as usize];
    poke(
        &img,
        text_at + middle,
        &[if was == b'x' { b'y' } else { b'x' }],
    );
    let (code, stderr) = damaged_files(&img);
    assert_eq!(code, 3, "files exit code; stderr:\n{stderr}");
    assert!(
        stderr.to_ascii_lowercase().contains("checksum"),
        "stderr does not report a checksum mismatch:\n{stderr}"
    );
    assert!(
        mentions_offset_within(&stderr, mda, text_at + text_len - mda),
        "stderr gives no byte offset in the metadata area ({mda}..{}):\n{stderr}",
        text_at + text_len
    );
    assert_rhel_lvs_absent(&img, "metadata text damaged");
}

/// The image cut in the middle of the current metadata text: a clean failure (2 or 3)
/// with a message, never a panic or a hang. On the whole-disk PV nothing is readable, so
/// every command fails, and `files` says why: the LVM metadata; on the RHEL layout p4 then
/// runs past the end of the disk (the ESP and /boot are still read, so `ls` may succeed),
/// and `files` names p4.
#[test]
fn truncated_metadata_area_fails_cleanly() {
    let scratch = Scratch::new("lvm-tests", "truncated", lvm_image);
    for (name, vg, must_fail, named) in [
        (
            "lvm-wholedisk.img",
            "vgw",
            &[
                &["files", "--hash", "sha256"][..],
                &["inspect"],
                &["ls", "-R", "/"],
            ][..],
            "metadata",
        ),
        (
            "lvm-rhel.img",
            "rhel",
            &[&["files", "--hash", "sha256"][..], &["inspect"]][..],
            "p4",
        ),
    ] {
        let report = lvm_report(name);
        let pv = report_pv(report_vg(&report, vg), "pv0").clone();
        let keep = u64_of(&pv["text_offset"]) + u64_of(&pv["text_size"]) / 2;
        let img = scratch.copy(name);
        fs::OpenOptions::new()
            .write(true)
            .open(&img)
            .unwrap()
            .set_len(keep)
            .unwrap();
        for command in must_fail {
            let mut args: Vec<&OsStr> = vec![OsStr::new(command[0]), img.as_os_str()];
            args.extend(command[1..].iter().map(OsStr::new));
            let (code, stderr) = run_with_deadline(&args, true);
            assert!(
                code == 2 || code == 3,
                "{name} cut at {keep}: {command:?} exit {code}:\n{stderr}"
            );
            if command[0] == "files" {
                assert!(
                    stderr.to_ascii_lowercase().contains(named),
                    "{name} cut at {keep}: {command:?} exits {code}, the message does not \
                     name {named}:\n{stderr}"
                );
            }
        }
        // Whatever else is read, `ls` ends cleanly.
        let (code, stderr) = run_with_deadline(
            &[
                OsStr::new("ls"),
                img.as_os_str(),
                OsStr::new("-R"),
                OsStr::new("/"),
            ],
            true,
        );
        assert!(
            [0, 2, 3].contains(&code),
            "{name} cut at {keep}: ls -R / exit {code}:\n{stderr}"
        );
        let (_, inspected) = inspect_json(&img);
        assert_eq!(inspected["complete"], false, "{name} cut at {keep}");
        fs::remove_file(&img).unwrap();
    }
}

/// Rewrites the current metadata text of the PV described by `pv` (a build report entry)
/// with `edit`, fixing up what lvm checks: the raw location's size and checksum (CRC of
/// the text) and the metadata area header's own checksum (CRC of its bytes 4..512).
fn rewrite_metadata_text(img: &Path, pv: &Value, edit: impl FnOnce(&str) -> String) {
    let mda = u64_of(&pv["mda_offset"]);
    let text_at = u64_of(&pv["text_offset"]);
    let text_len = u64_of(&pv["text_size"]);
    assert_eq!(pv["text_wraps"], false, "the text must be in one piece");
    let mut header = read_at(img, mda, 512);
    assert_eq!(
        &header[4..20],
        b" LVM2 x[5A%r0N*>",
        "no metadata area header"
    );
    assert_eq!(lvm_crc(&header[4..]), le_u32(&header[0..4]));
    // raw_locn[0]: offset (u64) at 40, size (u64) at 48, checksum (u32) at 56.
    assert_eq!(le_u64(&header[40..]), text_at - mda);
    assert_eq!(le_u64(&header[48..]), text_len);
    let old = String::from_utf8(read_at(img, text_at, text_len as usize)).unwrap();
    assert_eq!(lvm_crc(old.as_bytes()), le_u32(&header[56..]));
    let new = edit(&old);
    assert_ne!(new, old, "the edit changed nothing");
    let mut bytes = new.into_bytes();
    let new_len = bytes.len() as u64;
    let checksum = lvm_crc(&bytes);
    bytes.push(0);
    assert!(
        text_at - mda + new_len < u64_of(&pv["mda_size"]),
        "the edited text does not fit"
    );
    poke(img, text_at, &bytes);
    header[48..56].copy_from_slice(&new_len.to_le_bytes());
    header[56..60].copy_from_slice(&checksum.to_le_bytes());
    let header_crc = lvm_crc(&header[4..]);
    header[0..4].copy_from_slice(&header_crc.to_le_bytes());
    poke(img, mda, &header);
}

/// LV home's segment moved so that it starts inside the PV but runs past its last extent
/// (the text's checksums fixed up, so only the segment itself is wrong): home is listed,
/// not scanned, with a reason naming the segment; root and var are still read.
#[test]
fn segment_past_the_end_of_the_pv_is_refused() {
    let scratch = Scratch::new("lvm-tests", "segment_past_end", lvm_image);
    let pv = rhel_pv();
    let pe_count = u64_of(&pv["pe_count"]);
    let report = lvm_report("lvm-rhel.img");
    let home = report_vg(&report, "rhel")["logical_volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "home")
        .unwrap()
        .clone();
    let count = u64_of(&home["segments"][0]["extent_count"]);
    let start = u64_of(&home["segments"][0]["areas"][0]["start_extent"]);
    let moved = pe_count - count / 2;
    let img = scratch.copy("lvm-rhel.img");
    rewrite_metadata_text(&img, &pv, |text| {
        let lv = text.find("\nhome {\n").expect("no LV home in the text");
        let from = format!("stripes = [\n\"pv0\", {start}\n]");
        let at = lv + text[lv..].find(&from).expect("no stripes of home");
        format!(
            "{}stripes = [\n\"pv0\", {moved}\n]{}",
            &text[..at],
            &text[at + from.len()..]
        )
    });
    let (code, stderr) = damaged_files(&img);
    assert_eq!(code, 3, "files exit code; stderr:\n{stderr}");
    assert!(
        stderr.contains("rhel/home") && stderr.to_ascii_lowercase().contains("segment"),
        "stderr does not name rhel/home's segment:\n{stderr}"
    );
    let (run, report) = inspect_json(&img);
    run.expect_code(3);
    let home = volume(&report, "rhel/home");
    assert_eq!(home["scanned"], false, "{home:#}");
    assert!(
        home["error"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase()
            .contains("segment"),
        "rhel/home: the reason does not name the segment: {home:#}"
    );
    for id in ["rhel/root", "rhel/var"] {
        let v = volume(&report, id);
        assert_eq!(v["scanned"], true, "{v:#}");
    }
    let (_, records) = files(&img);
    let by_path: BTreeMap<&str, &util::Record> =
        records.iter().map(|r| (r.path.as_str(), r)).collect();
    for (path, id) in [
        ("/etc/os-release", "rhel/root"),
        ("/var/log/messages", "rhel/var"),
    ] {
        assert_eq!(
            by_path.get(path).map(|r| r.volume.as_str()),
            Some(id),
            "{path}"
        );
    }
    assert!(
        !records.iter().any(|r| r.volume == "rhel/home"),
        "files lists files of rhel/home"
    );
}
