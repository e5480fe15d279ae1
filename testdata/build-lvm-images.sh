#!/usr/bin/env bash
# Builds the LVM2 images tests/lvm.rs reads, from real tools, into testdata/build/ (git-ignored),
# the source trees their filesystems were made from into testdata/build/trees/lvm-*, and what
# LVM itself says about each volume group into testdata/build/lvm-reports/*.json (the tests
# compare amiscan's view with it: lvm cannot be asked later, without the loop devices).
#
# How. Every physical volume is a loop device (`losetup`, one per partition with --offset and
# --sizelimit, or one for a whole disk); lvm2 runs with its own configuration
# (LVM_SYSTEM_DIR: a filter that accepts exactly those loop devices, no udev, no backups or
# archives, no hints) and with `--driverloaded n`, so it never touches device-mapper: no
# logical volume is ever activated, and nothing is left registered when the loops are
# detached. Every VG is created with --setautoactivation n (the VG flag NOAUTOACTIVATE in its
# metadata): on a host where udev runs lvm2's rules, a PV appearing on a loop device would
# otherwise be activated by the host's own lvm. lvcreate/lvextend allocate the extents (-an
# -Zn: not activated, not zeroed), lvs/pvs/vgs/vgcfgbackup/pvck report where they are, and
# the filesystems, made apart in files (mke2fs -d; mkfs.xfs filled through a loop mount,
# which keeps times; mkfs.vfat and mcopy; mkswap), are then copied extent by extent into the
# images' bytes: segment by segment, and for a striped segment stripe_size chunk by chunk
# across the stripes, as device-mapper's linear and striped targets map them. A thin pool
# cannot be created without device-mapper, so lvm-thin.img's pool and thin volume are
# written into the metadata text by hand and restored with `vgcfgrestore --force`, and the
# pool's metadata by `thin_restore` (thin-provisioning-tools), checked with `thin_check`.
# Every image is checked afterwards with `pvck` and `vgs` on fresh loop devices.
#
# Needs root (loop devices, and loop mounts for XFS); without it the script fails, it does not
# skip. Runs once: when testdata/build/.complete-lvm holds the sha256 of this script and the
# rule images' stamp, it exits at once. Otherwise it builds into a temporary directory, moves
# the results into place and writes the stamp last. It first runs build-rule-images.sh (which
# runs build-images.sh, the script that clears testdata/build/ when it rebuilds) because the
# sealed RHEL image reuses the rule images' sealed tree. Callers serialise runs with
# `flock testdata/build/.lock-lvm bash …`.
#
# Images (file names are the contract with the tests); all sparse, extents of 4 MiB.
#   lvm-linear.img      GPT, p1 a PV of VG vg0: LVs root (ext4, an OS root whose fstab mounts
#                       /dev/mapper/vg0-home at /home, /dev/vg0/var at /var, UUID= of data's
#                       filesystem at /data and /dev/mapper/vg0-my--lv at /srv), home (ext4),
#                       var (XFS), data (ext4), my-lv (ext4; a dash in the name, so
#                       device-mapper's name doubles it)
#   lvm-striped.img     GPT, p1 and p2 PVs of VG vgs: LV stripe, 2 stripes of 64 KiB chunks,
#                       bare ext4 (no fstab) with files of up to 3 MiB
#   lvm-segments.img    GPT, p1 a PV of VG vgseg: LV frag of two segments placed out of order
#                       (logical extents 0-3 at physical extents 20-23, 4-7 at 2-5), ext4
#                       whose files fill both
#   lvm-wholedisk.img   no partition table: the whole disk is a PV of VG vgw, LV root ext4
#   lvm-wrapped.img     GPT, p1 a PV with a 124 KiB metadata area (VG vgwrap, LV root ext4)
#                       after enough commits (vgchange --addtag) that the current metadata
#                       text wraps around the end of the circular buffer
#   lvm-missing-pv.img  GPT, p1 the first of VG vgm's two PVs; the second PV is on another
#                       disk, lvm-missing-pv-disk2.img (GPT, p1). LV a lies on the first PV
#                       (ext4), LV b has one segment on each (ext4: its first half is here).
#                       Alone, the image is a VG with a PV missing; joined with its second
#                       disk (lvm-missing-pv.img+lvm-missing-pv-disk2.img) the VG is whole
#   lvm-thin.img        GPT, p1 a PV of VG vgt: LV plain (ext4), thin pool pool (hidden
#                       pool_tmeta holding real thin metadata, pool_tdata), thin LV thin1 whose
#                       blocks map one to one onto the pool's data (ext4)
#   lvm-rhel.img        laid out as RHEL 9 on LVM: GPT; p1 BIOS boot (1 MiB); p2 EFI system
#                       partition (FAT16, /boot/efi); p3 XFS /boot; p4 a PV of VG rhel with LVs
#                       root, home, var (XFS) and swap; the fstab names /dev/mapper/rhel-*,
#                       UUID= for /boot and /boot/efi; leftovers the built-in rules find, on
#                       root, home and var
#   lvm-rhel-sealed.img the same layout; root, home and var from the rule images' sealed tree
#
# Source trees (testdata/build/trees/): lvm-linear-{root,home,var,data,srv}, lvm-striped,
# lvm-segments, lvm-wholedisk, lvm-wrapped, lvm-missing-a, lvm-missing-b, lvm-thin-plain,
# lvm-thin-thin, lvm-rhel-{root,home,var}, lvm-rhel-sealed-{root,home,var}, lvm-rhel-boot,
# lvm-rhel-efi. Modification times are fixed even seconds.
#
# Reports (testdata/build/lvm-reports/IMAGE.json): per VG its name, uuid, extent size, seqno;
# per PV its metadata name (pv0…), uuid, the volume holding it (p1, disk, or null when it is
# not in the image), its offset in the image, pe_start, and where pvck found its label,
# metadata area and current metadata text; per LV (hidden ones too) its uuid, size, type and
# segments with their physical areas — from vgs, pvs, lvs --segments, vgcfgbackup and pvck.
set -euo pipefail
export LC_ALL=C TZ=UTC
export PATH="$PATH:/usr/sbin:/sbin"
export MTOOLS_SKIP_CHECK=1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
script="$here/$(basename "${BASH_SOURCE[0]}")"
build="$here/build"
stamp="$build/.complete-lvm"

mkdir -p "$build"
# Also builds build-images.sh's images first, under its own lock.
flock "$build/.lock-rules" bash "$here/build-rule-images.sh"

want="$(sha256sum "$script" | cut -d' ' -f1) $(cat "$build/rules/.complete")"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
    echo "build-lvm-images.sh: must run as root: physical volumes are made on loop devices" >&2
    exit 1
fi
for tool in losetup pvcreate vgcreate lvcreate lvextend vgchange lvs pvs vgs vgcfgbackup \
    vgcfgrestore pvck mke2fs e2fsck mkfs.xfs xfs_repair mkswap mount umount sgdisk mkfs.vfat \
    mcopy ssh-keygen thin_restore thin_check python3 truncate sha256sum flock; do
    command -v "$tool" >/dev/null || { echo "build-lvm-images.sh: $tool is required" >&2; exit 1; }
done

started=$SECONDS
rm -rf "$build"/.tmp-lvm.* "$build"/.old-lvm.*
tmp="$(mktemp -d "$build/.tmp-lvm.XXXXXX")"
chmod 755 "$tmp"
loops=()
mounted=""
cleanup() {
    local l
    [[ -n "$mounted" ]] && { umount "$mounted" 2>/dev/null || umount -l "$mounted" 2>/dev/null || true; }
    for l in "${loops[@]}"; do
        losetup -d "$l" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trees="$tmp/trees"
reports="$tmp/lvm-reports"
mkdir -p "$trees" "$reports" "$tmp/lvm" "$tmp/lvm-run"
tool="$tmp/lvm-tool.py"
log="$tmp/lvm.log"
: >"$log"

# lvm2 sees only the loop devices this script attaches, and keeps nothing outside $tmp.
export LVM_SYSTEM_DIR="$tmp/lvm" LVM_SUPPRESS_FD_WARNINGS=1

# Fixed identifiers, so fstab entries and the tests can name them.
LIN_ROOT_UUID=1f000000-0000-4000-8000-00000000a001
LIN_HOME_UUID=1f000000-0000-4000-8000-00000000a002
LIN_VAR_UUID=1f000000-0000-4000-8000-00000000a003
LIN_DATA_UUID=1f000000-0000-4000-8000-00000000a004
LIN_SRV_UUID=1f000000-0000-4000-8000-00000000a005
RHEL_DISK_GUID=0e1a9000-0000-4000-8000-0000000017a0
RHEL_ROOT_UUID=2b4c6d8e-0000-4a3b-9c5d-1f0e0000a001
RHEL_HOME_UUID=2b4c6d8e-0000-4a3b-9c5d-1f0e0000a002
RHEL_VAR_UUID=2b4c6d8e-0000-4a3b-9c5d-1f0e0000a003
RHEL_SWAP_UUID=2b4c6d8e-0000-4a3b-9c5d-1f0e0000a004
RHEL_BOOT_UUID=2b4c6d8e-0000-4a3b-9c5d-1f0e0000b007
RHEL_ESP_ID=0E1A17A0

# ---------------------------------------------------------------------------------------
# Helpers (Python): reports from lvm's own tools, and copying a filesystem into an LV.
# ---------------------------------------------------------------------------------------
cat >"$tool" <<'PY'
import hashlib, json, os, re, subprocess, sys

def die(msg):
    sys.exit(f"build-lvm-images.sh: {msg}")

def lvm(*args):
    out = subprocess.run(list(args[:1]) + ["--driverloaded", "n"] + list(args[1:]),
                         capture_output=True, text=True)
    if out.returncode != 0:
        die(f"{' '.join(args)} failed:\n{out.stderr}")
    return out.stdout

def report_rows(command, fields, *extra):
    text = lvm(command, "--reportformat", "json", "--units", "b", "--nosuffix", "-o", fields,
               *extra)
    rows = []
    for part in json.loads(text)["report"]:
        for key in ("vg", "pv", "lv", "seg"):
            rows += part.get(key, [])
    return rows

def pvck_headers(dev):
    """What pvck --dump headers says about a PV: label sector, metadata area, current text."""
    text = lvm("pvck", "--dump", "headers", dev)
    def field(name):
        m = re.search(r"^\s*" + re.escape(name) + r" (\S+)", text, re.M)
        if not m:
            die(f"pvck --dump headers {dev}: no {name}:\n{text}")
        return m[1]
    label = int(re.search(r"label_header at (\d+)", text)[1])
    if field("label_header.id") != "LABELONE":
        die(f"{dev}: no LABELONE")
    mda = int(re.search(r"mda_header_1 at (\d+)", text)[1])
    return {
        "label": label,
        "mda": mda,
        "mda_size": int(field("mda_header_1.size")),
        "text_offset": int(field("mda_header_1.raw_locn[0].offset")),
        "text_size": int(field("mda_header_1.raw_locn[0].size")),
        "text_checksum": field("mda_header_1.raw_locn[0].checksum"),
    }

def report(out, devmap_file, *vgs):
    """Writes what lvm says about the VGs. devmap: device → {volume, offset} (the PV's volume
    id and its byte offset in the image, or null for a PV left out of the image)."""
    devmap = json.load(open(devmap_file))
    result = {"volume_groups": []}
    for vg in vgs:
        [v] = report_rows("vgs", "vg_name,vg_uuid,vg_extent_size,vg_seqno,vg_extent_count", vg)
        backup = os.path.join(os.path.dirname(out), f".{vg}.vgcfg")
        lvm("vgcfgbackup", "-f", backup, vg)
        text = open(backup).read()
        os.remove(backup)
        # pvN { id = "…" … }: the metadata's own names of the PVs.
        names = {uuid: name for name, uuid in
                 re.findall(r'\n\t\t(pv\d+) \{\n\t\t\tid = "([^"]+)"', text)}
        pvs = []
        by_dev = {}
        for p in report_rows("pvs", "pv_name,pv_uuid,pe_start,pv_pe_count,dev_size,vg_name"):
            if p["vg_name"] != vg:
                continue
            where = devmap[p["pv_name"]]
            pv = {
                "name": names[p["pv_uuid"]],
                "uuid": p["pv_uuid"],
                "volume": where["volume"],
                "offset": where["offset"],
                "pe_start": int(p["pe_start"]),
                "pe_count": int(p["pv_pe_count"]),
                "device_size": int(p["dev_size"]),
            }
            h = pvck_headers(p["pv_name"])
            base = where["offset"]
            kept = base is not None
            pv.update({
                "label_offset": base + h["label"] if kept else None,
                "mda_offset": base + h["mda"] if kept else None,
                "mda_size": h["mda_size"],
                "text_offset": base + h["mda"] + h["text_offset"] if kept else None,
                "text_size": h["text_size"],
                "text_checksum": h["text_checksum"],
                "text_wraps": h["text_offset"] + h["text_size"] > h["mda_size"],
            })
            pvs.append(pv)
            by_dev[p["pv_name"]] = pv
        pvs.sort(key=lambda p: int(p["name"][2:]))
        lvs = {}
        order = []
        for s in report_rows("lvs", "lv_name,lv_uuid,lv_size,segtype,seg_start_pe,seg_size_pe,"
                             "stripes,stripe_size,seg_pe_ranges", "-a", "--segments", vg):
            name = s["lv_name"]
            hidden = name.startswith("[")
            name = name.strip("[]")
            if name not in lvs:
                lvs[name] = {"name": name, "uuid": s["lv_uuid"], "size": int(s["lv_size"]),
                             "type": s["segtype"], "hidden": hidden, "segments": []}
                order.append(name)
            areas = []
            for r in s["seg_pe_ranges"].split():
                dev, span = r.rsplit(":", 1)
                first, last = (int(x) for x in span.split("-"))
                if dev in by_dev:
                    areas.append({"pv": by_dev[dev]["name"], "start_extent": first,
                                  "extent_count": last - first + 1})
                else:
                    areas.append({"lv": dev, "start_extent": first,
                                  "extent_count": last - first + 1})
            lvs[name]["segments"].append({
                "start_extent": int(s["seg_start_pe"]),
                "extent_count": int(s["seg_size_pe"]),
                "segtype": s["segtype"],
                "stripes": int(s["stripes"]),
                "stripe_size": int(s["stripe_size"]),
                "areas": areas,
            })
        result["volume_groups"].append({
            "name": v["vg_name"],
            "uuid": v["vg_uuid"],
            "extent_size": int(v["vg_extent_size"]),
            "extent_count": int(v["vg_extent_count"]),
            "seqno": int(v["vg_seqno"]),
            "physical_volumes": pvs,
            "logical_volumes": [lvs[n] for n in order],
        })
    with open(out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")

def lv_map(rep, vg, lv, files):
    """The LV's bytes as a list of (lv_offset, length, file, file_offset) pieces, following
    its segments and stripes. files: PV name → (image file, PV offset in it)."""
    [g] = [g for g in rep["volume_groups"] if g["name"] == vg]
    [l] = [l for l in g["logical_volumes"] if l["name"] == lv]
    ext = g["extent_size"]
    pvs = {p["name"]: p for p in g["physical_volumes"]}
    pieces = []
    for s in l["segments"]:
        if s["segtype"] not in ("linear", "striped"):
            die(f"{vg}/{lv}: cannot place data in a {s['segtype']} segment")
        n = s["stripes"]
        if len(s["areas"]) != n:
            die(f"{vg}/{lv}: {len(s['areas'])} areas for {n} stripes")
        seg_start = s["start_extent"] * ext
        seg_len = s["extent_count"] * ext
        # Each area: where the stripe begins on its PV's file.
        starts = []
        for a in s["areas"]:
            pv = pvs[a["pv"]]
            file, base = files[a["pv"]]
            starts.append((file, base + pv["pe_start"] + a["start_extent"] * ext))
        chunk = s["stripe_size"] if n > 1 else seg_len
        if n > 1 and (chunk <= 0 or seg_len % (chunk * n)):
            die(f"{vg}/{lv}: segment of {seg_len} bytes is not whole rows of {n} x {chunk}")
        for i in range(seg_len // chunk):
            stripe, row = i % n, i // n
            file, at = starts[stripe]
            pieces.append((seg_start + i * chunk, chunk, file, at + row * chunk))
    if pieces[-1][0] + pieces[-1][1] != l["size"]:
        die(f"{vg}/{lv}: mapped {pieces[-1][0] + pieces[-1][1]} bytes of {l['size']}")
    return pieces

def data_ranges(fd, start, end):
    """The data regions of a file within [start, end) (holes read as zeros: skipped)."""
    pos = start
    while pos < end:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            return
        if data >= end:
            return
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        yield data, hole
        pos = hole

def place(rep_file, vg, lv, fsfile, files_json):
    """Copies a filesystem image into the LV's extents (its data regions only: the image
    stays sparse), then reads every written range back through the same map."""
    rep = json.load(open(rep_file))
    files = {k: tuple(v) for k, v in json.load(open(files_json)).items()}
    pieces = lv_map(rep, vg, lv, files)
    size = os.path.getsize(fsfile)
    if size != pieces[-1][0] + pieces[-1][1]:
        die(f"{fsfile}: {size} bytes for an LV of {pieces[-1][0] + pieces[-1][1]}")
    handles = {}
    written = []
    with open(fsfile, "rb") as src:
        for lv_at, length, file, at in pieces:
            for data, hole in data_ranges(src.fileno(), lv_at, lv_at + length):
                while data < hole:
                    n = min(1 << 20, hole - data)
                    src.seek(data)
                    chunk = src.read(n)
                    if chunk.count(0) != len(chunk):
                        if file not in handles:
                            handles[file] = open(file, "r+b")
                        handles[file].seek(at + data - lv_at)
                        handles[file].write(chunk)
                        written.append((data, n, file, at + data - lv_at))
                    data += n
        for h in handles.values():
            h.close()
        for data, n, file, at in written:
            src.seek(data)
            with open(file, "rb") as f:
                f.seek(at)
                if f.read(n) != src.read(n):
                    die(f"{vg}/{lv}: bytes {data}..+{n} read back differ from {fsfile}")

def check_spread(rep_file, vg, lv, fsfile):
    """Every segment and every stripe of the LV receives some of the filesystem's data, so
    that reading it right depends on following all of them."""
    rep = json.load(open(rep_file))
    [g] = [g for g in rep["volume_groups"] if g["name"] == vg]
    [l] = [l for l in g["logical_volumes"] if l["name"] == lv]
    ext = g["extent_size"]
    with open(fsfile, "rb") as f:
        for s in l["segments"]:
            n, chunk = s["stripes"], max(s["stripe_size"], 1)
            seen = [0] * n
            for i in range(s["extent_count"] * ext // (chunk if n > 1 else ext)):
                step = chunk if n > 1 else ext
                f.seek(s["start_extent"] * ext + i * step)
                data = f.read(step)
                if data.count(0) != len(data):
                    seen[i % n] += 1
            if not all(seen):
                die(f"{vg}/{lv}: segment at extent {s['start_extent']}: data chunks per "
                    f"stripe {seen}")

def part(disk, number):
    """Byte offset and size of a GPT partition, from sgdisk."""
    text = subprocess.run(["sgdisk", "-i", str(number), disk], capture_output=True,
                          check=True, text=True).stdout
    first = int(re.search(r"First sector: (\d+)", text)[1])
    last = int(re.search(r"Last sector: (\d+)", text)[1])
    return first * 512, (last - first + 1) * 512

def place_at(disk, at, fsfile):
    """Copies a filesystem image into disk at byte `at`, its data regions only."""
    size = os.path.getsize(fsfile)
    with open(fsfile, "rb") as src, open(disk, "r+b") as dst:
        fd = src.fileno()
        pos = 0
        while pos < size:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            src.seek(data)
            while data < hole:
                chunk = src.read(min(1 << 20, hole - data))
                if chunk.count(0) != len(chunk):
                    dst.seek(at + data)
                    dst.write(chunk)
                data += len(chunk)
            pos = hole

def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "report":
        report(args[0], args[1], *args[2:])
    elif cmd == "place":
        place(*args)
    elif cmd == "check-spread":
        check_spread(*args)
    elif cmd == "part":
        off, size = part(args[0], int(args[1]))
        print(f"{off} {size}")
    elif cmd == "place-part":
        place_at(args[0], part(args[0], int(args[1]))[0], args[2])
    elif cmd == "lv-size":
        rep = json.load(open(args[0]))
        [g] = [g for g in rep["volume_groups"] if g["name"] == args[1]]
        [l] = [l for l in g["logical_volumes"] if l["name"] == args[2]]
        print(l["size"])
    elif cmd == "get":
        # get REPORT VG PV FIELD
        rep = json.load(open(args[0]))
        [g] = [g for g in rep["volume_groups"] if g["name"] == args[1]]
        [p] = [p for p in g["physical_volumes"] if p["name"] == args[2]]
        print(p[args[3]])
    else:
        die(f"unknown helper command {cmd}")

main()
PY

# ---------------------------------------------------------------------------------------
# Source trees.
# ---------------------------------------------------------------------------------------
python3 - "$trees" <<'PY'
import os, random, sys

trees = sys.argv[1]

def put(path, data=b"", mode=0o644, owner=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, mode)
    if owner:
        os.chown(path, *owner)

def rand(seed, n):
    return random.Random(seed).randbytes(n)

def mkdirs(path, mode=0o755, owner=None):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)
    if owner:
        os.chown(path, *owner)

def small(t, name):
    """A small tree: an os-release naming it, a few files, a symlink, a hard link."""
    put(f"{t}/etc/os-release", f'NAME="amiscan LVM test"\nID=amiscan-lvm\nVERSION_ID="{name}"\n')
    put(f"{t}/data/{name}.bin", rand(f"{name}/bin", 70_000))
    put(f"{t}/data/empty", b"")
    put(f"{t}/data/text.txt", f"{name}: logical volume contents\n")
    os.symlink("text.txt", f"{t}/data/link")
    os.link(f"{t}/data/text.txt", f"{t}/data/hard")
    put(f"{t}/perms/private", "private\n", 0o600, owner=(1000, 1000))
    mkdirs(f"{t}/perms/sticky", 0o1777)

# --- lvm-linear: an OS root whose fstab mounts four more LVs --------------------------
t = f"{trees}/lvm-linear-root"
put(f"{t}/etc/os-release",
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
    'VERSION_ID="12"\nVERSION="12 (bookworm)"\nID=debian\n')
put(f"{t}/etc/hostname", "lvm-linear\n")
put(f"{t}/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/bash\n")
put(f"{t}/etc/group", "root:x:0:\nuser:x:1000:\n")
put(f"{t}/usr/bin/tool", rand("linear/tool", 150_000), 0o755)
put(f"{t}/usr/share/doc/readme.txt", "the root logical volume\n")
os.symlink("usr/bin", f"{t}/bin")
mkdirs(f"{t}/root", 0o700)
mkdirs(f"{t}/tmp", 0o1777)
for d in ("home", "var", "data", "srv"):
    mkdirs(f"{t}/{d}")
t = f"{trees}/lvm-linear-home"
mkdirs(f"{t}/user", 0o750, owner=(1000, 1000))
put(f"{t}/user/notes.txt", "notes on the home LV\n", 0o640, owner=(1000, 1000))
put(f"{t}/user/big.bin", rand("linear/home/big", 1_500_000), owner=(1000, 1000))
os.symlink("notes.txt", f"{t}/user/notes-link")
t = f"{trees}/lvm-linear-var"
put(f"{t}/log/syslog", "Jan  1 00:00:00 lvm-linear kernel: hello from the var LV (XFS)\n", 0o640)
put(f"{t}/lib/state/blob", rand("linear/var/blob", 300_000))
mkdirs(f"{t}/tmp", 0o1777)
for i in range(40):
    put(f"{t}/spool/entries/entry-{i:03d}", f"{i}\n" * i)
t = f"{trees}/lvm-linear-data"
put(f"{t}/dataset/part-1.bin", rand("linear/data/1", 2_000_000))
put(f"{t}/dataset/part-2.bin", rand("linear/data/2", 123_457))
put(f"{t}/README", "mounted at /data by UUID=\n")
t = f"{trees}/lvm-linear-srv"
put(f"{t}/www/index.html", "<html>the LV with a dash in its name</html>\n")
put(f"{t}/www/asset.bin", rand("linear/srv", 50_000))

# --- lvm-striped: files large enough to cross many 64 KiB stripe chunks -------------
t = f"{trees}/lvm-striped"
for name, size in (("0", 0), ("100", 100), ("65535", 65535), ("65536", 65536),
                   ("65537", 65537), ("131073", 131073), ("1MiB", 1 << 20),
                   ("3MiB-plus-1", (3 << 20) + 1)):
    put(f"{t}/sizes/{name}", rand(f"striped/{name}", size))
for i in range(300):
    put(f"{t}/many/f{i:03d}", f"file {i}\n" * (i % 13))
os.symlink("../sizes/1MiB", f"{t}/many/link-to-1MiB")
os.link(f"{t}/sizes/100", f"{t}/many/hard-100")
mkdirs(f"{t}/perms/sticky", 0o1777)
put(f"{t}/perms/setuid", "#!/bin/sh\n", 0o4755)

# --- lvm-segments: 20 MiB of data in a 32 MiB filesystem of two 16 MiB segments -------
t = f"{trees}/lvm-segments"
for i in range(5):
    put(f"{t}/fill/chunk-{i}.bin", rand(f"segments/{i}", 4 << 20))
put(f"{t}/last.txt", "written last: in the second segment\n")
small(t, "segments")

for name in ("wholedisk", "wrapped", "missing-a", "missing-b", "thin-plain", "thin-thin"):
    small(f"{trees}/lvm-{name}", name)

# --- RHEL 9 on LVM: root, home and var LVs with leftovers, /boot, the ESP ------------
def leaky_root(t):
    put(f"{t}/etc/os-release",
        'NAME="Red Hat Enterprise Linux"\nVERSION="9.4 (Plow)"\nID="rhel"\n'
        'ID_LIKE="fedora"\nVERSION_ID="9.4"\nPLATFORM_ID="platform:el9"\n'
        'PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"\n'
        'CPE_NAME="cpe:/o:redhat:enterprise_linux:9::baseos"\n')
    user, home = "cloud-user", "/home/cloud-user"
    put(f"{t}/etc/redhat-release", "Red Hat Enterprise Linux release 9.4 (Plow)\n")
    put(f"{t}/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\n"
        "bin:x:1:1:bin:/bin:/sbin/nologin\n"
        "sshd:x:74:74:Privilege-separated SSH:/usr/share/empty.sshd:/sbin/nologin\n"
        f"{user}:x:1000:1000:Cloud User:{home}:/bin/bash\n")
    put(f"{t}/etc/group", f"root:x:0:\nbin:x:1:\nsshd:x:74:\nwheel:x:10:{user}\n{user}:x:1000:\n")
    # An empty password for the cloud user and a usable (fake) one for root.
    put(f"{t}/etc/shadow",
        "root:$6$amiscanFAKEsalt$" + "Q" * 86 + ":19700:0:99999:7:::\n"
        "bin:*:19700:0:99999:7:::\nsshd:!!:19700::::::\n"
        f"{user}::19700:0:99999:7:::\n", 0o000)
    put(f"{t}/etc/hostname", "ip-10-0-1-23.ec2.internal\n")
    put(f"{t}/etc/machine-id", "2f0c8e1b7a6d4c3e9f5a1b2c3d4e5f60\n", 0o444)
    put(f"{t}/etc/ssh/sshd_config",
        "# leftovers of a debugging session\n"
        "PasswordAuthentication yes\n"
        "PermitRootLogin yes\n"
        "Subsystem sftp /usr/libexec/openssh/sftp-server\n", 0o600)
    put(f"{t}/usr/sbin/sshd", "#!/bin/sh\n# stand-in for the sshd binary\n", 0o755)
    mkdirs(f"{t}/root", 0o550)
    mkdirs(f"{t}/root/.ssh", 0o700)
    mkdirs(f"{t}/root/.aws", 0o700)
    put(f"{t}/root/.bash_history", "aws s3 ls\nsudo systemctl restart sshd\n", 0o600)
    mkdirs(f"{t}/{home}", 0o700, owner=(1000, 1000))
    mkdirs(f"{t}/{home}/.ssh", 0o700, owner=(1000, 1000))
    put(f"{t}/{home}/.bash_history", "sudo -i\ncurl http://169.254.169.254/latest/meta-data/\n",
        0o600, owner=(1000, 1000))
    put(f"{t}/{home}/.bashrc", "# .bashrc\n", 0o644, owner=(1000, 1000))
    put(f"{t}/var/lib/cloud/instances/i-0123456789abcdef0/boot-finished", "1734000000.5\n")
    put(f"{t}/var/lib/cloud/instances/i-0123456789abcdef0/user-data.txt",
        "#cloud-config\npackages: [httpd]\n", 0o600)
    put(f"{t}/var/lib/cloud/data/instance-id", "i-0123456789abcdef0\n")
    os.symlink("/var/lib/cloud/instances/i-0123456789abcdef0", f"{t}/var/lib/cloud/instance")
    put(f"{t}/var/log/cloud-init.log",
        "2024-12-12 10:00:00,000 - util.py[DEBUG]: Cloud-init v. 22.2.2 running 'init-local'\n")
    put(f"{t}/var/log/messages", "Dec 12 10:00:01 ip-10-0-1-23 kernel: Linux version 6.1\n", 0o600)
    put(f"{t}/var/log/secure",
        "Dec 12 10:00:05 ip-10-0-1-23 sshd[812]: Accepted publickey for root\n", 0o600)
    mkdirs(f"{t}/tmp", 0o1777)
    mkdirs(f"{t}/var/tmp", 0o1777)
    mkdirs(f"{t}/boot", 0o555)
    for d in ("usr/bin", "usr/lib", "usr/lib64", "proc", "sys", "dev", "run"):
        mkdirs(f"{t}/{d}")
    for link, to in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"),
                     ("lib64", "usr/lib64")):
        os.symlink(to, f"{t}/{link}")

leaky_root(f"{trees}/lvm-rhel-root")
t = f"{trees}/lvm-rhel-efi"
for path, seed, size in (("EFI/BOOT/BOOTX64.EFI", "bootx64", 90_000),
                         ("EFI/BOOT/fbx64.efi", "fbx64", 60_000),
                         ("EFI/redhat/grubx64.efi", "grubx64", 150_000),
                         ("EFI/redhat/shimx64.efi", "shimx64", 95_000)):
    put(f"{t}/{path}", rand(f"lvm-rhel/{seed}", size))
put(f"{t}/EFI/redhat/BOOTX64.CSV", "shimx64.efi,redhat,,This is the boot entry for redhat\n")
b = f"{trees}/lvm-rhel-boot"
kernel = "5.14.0-427.13.1.el9_4.x86_64"
put(f"{b}/vmlinuz-{kernel}", rand("lvm-rhel/vmlinuz", 300_000), 0o755)
put(f"{b}/initramfs-{kernel}.img", rand("lvm-rhel/initramfs", 700_000), 0o600)
put(f"{b}/System.map-{kernel}", "ffffffff81000000 T _stext\n", 0o600)
put(f"{b}/grub2/grub.cfg", "set default=0\nblscfg\n", 0o600)
put(f"{b}/loader/entries/0123456789abcdef0123456789abcdef-{kernel}.conf",
    f"title Red Hat Enterprise Linux (9.4)\nversion {kernel}\nlinux /vmlinuz-{kernel}\n"
    f"initrd /initramfs-{kernel}.img\noptions root=/dev/mapper/rhel-root ro "
    "rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap\n")
mkdirs(f"{b}/efi", 0o700)
PY

# Leftovers that must be generated: host keys, an authorized key, AWS credentials.
t="$trees/lvm-rhel-root"
ssh-keygen -q -t ed25519 -N '' -C "root@build" -f "$t/etc/ssh/ssh_host_ed25519_key" </dev/null
ssh-keygen -q -t ecdsa -N '' -C "root@build" -f "$t/etc/ssh/ssh_host_ecdsa_key" </dev/null
ssh-keygen -q -t ed25519 -N '' -C "builder@pipeline" -f "$tmp/builder" </dev/null
cp "$tmp/builder.pub" "$t/root/.ssh/authorized_keys"
chmod 600 "$t/root/.ssh/authorized_keys"
rm -f "$tmp/builder" "$tmp/builder.pub"
python3 - "$t/root/.aws/credentials" <<'PY'
import secrets, string, sys
b32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
alnum = string.ascii_letters + string.digits
key_id = "AKIA" + "".join(secrets.choice(b32) for _ in range(16))
secret = "".join(secrets.choice(alnum + "+/") for _ in range(40))
with open(sys.argv[1], "w") as f:
    f.write(f"[default]\naws_access_key_id = {key_id}\n"
            f"aws_secret_access_key = {secret}\nregion = us-east-1\n")
PY
chmod 600 "$t/root/.aws/credentials"

cat >"$trees/lvm-linear-root/etc/fstab" <<EOF
# /etc/fstab: every logical volume named a different way
/dev/mapper/vg0-root    /       ext4    errors=remount-ro 0 1
/dev/mapper/vg0-home    /home   ext4    defaults        0 2
/dev/vg0/var            /var    xfs     defaults        0 2
UUID=$LIN_DATA_UUID /data ext4 defaults 0 2
/dev/mapper/vg0-my--lv  /srv    ext4    defaults        0 2
EOF
RHEL_FSTAB="#
# /etc/fstab
# Created by anaconda
#
/dev/mapper/rhel-root   /                       xfs     defaults        0 0
UUID=$RHEL_BOOT_UUID /boot                   xfs     defaults        0 0
UUID=${RHEL_ESP_ID:0:4}-${RHEL_ESP_ID:4:4}          /boot/efi               vfat    umask=0077,shortname=winnt 0 2
/dev/mapper/rhel-home   /home                   xfs     defaults        0 0
/dev/mapper/rhel-var    /var                    xfs     defaults        0 0
/dev/mapper/rhel-swap   none                    swap    defaults        0 0"
echo "$RHEL_FSTAB" >"$trees/lvm-rhel-root/etc/fstab"

# The sealed root: the rule images' sealed tree (every built-in rule passes on it) as RHEL.
t="$trees/lvm-rhel-sealed-root"
cp -a "$build/rules/sealed/tree" "$t"
cp "$trees/lvm-rhel-root/etc/os-release" "$trees/lvm-rhel-root/etc/fstab" "$t/etc/"
rm -f "$t/etc/debian_version"
mkdir -p "$t/boot"
chmod 555 "$t/boot"

# /home and /var of both RHEL roots live on LVs of their own: move them into trees of their
# own, leaving the (empty) mount points.
for case in rhel rhel-sealed; do
    for d in home var; do
        mv "$trees/lvm-$case-root/$d" "$trees/lvm-$case-$d"
        mkdir "$trees/lvm-$case-root/$d"
        chmod 755 "$trees/lvm-$case-root/$d"
    done
done

# Fixed, even modification times for everything (children before their directories,
# symlinks themselves). The root of each tree is left alone: it becomes a filesystem's root.
python3 - "$trees" <<'PY'
import os, sys, zlib
trees = sys.argv[1]
for tree in sorted(os.listdir(trees)):
    top = os.path.join(trees, tree).encode()
    for dirpath, dirnames, filenames in os.walk(top, topdown=False):
        for name in filenames + dirnames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            t = 1_000_000_000 + 2 * (zlib.crc32(rel) % 150_000_000)
            os.utime(path, ns=(t * 10**9, t * 10**9), follow_symlinks=False)
PY

# ---------------------------------------------------------------------------------------
# Tools.
# ---------------------------------------------------------------------------------------
step() { echo "build-lvm-images.sh: $((SECONDS - started)) s: $1" >&2; }
fail() { echo "build-lvm-images.sh: $*" >&2; tail -n 40 "$log" >&2; exit 1; }

# use_devices DEV...: lvm2 sees exactly these block devices from now on.
use_devices() {
    local filter="" d
    for d in "$@"; do
        filter+="\"a|^${d}\$|\", "
    done
    cat >"$LVM_SYSTEM_DIR/lvm.conf" <<EOF
devices {
    dir = "/dev"
    scan = [ "/dev" ]
    filter = [ ${filter}"r|.*|" ]
    global_filter = [ ${filter}"r|.*|" ]
    obtain_device_list_from_udev = 0
    external_device_info_source = "none"
    use_devicesfile = 0
    hints = "none"
    md_component_detection = 0
    multipath_component_detection = 0
    fw_raid_component_detection = 0
}
activation {
    udev_sync = 0
    udev_rules = 0
    monitoring = 0
}
global {
    use_lvmpolld = 0
    event_activation = 0
    locking_dir = "$tmp/lvm-run"
}
backup {
    backup = 0
    archive = 0
}
EOF
}
# lvmc COMMAND ARGS...: an lvm2 command that never touches device-mapper (--driverloaded n),
# its output logged; a failure stops the build.
lvmc() {
    local cmd="$1"
    shift
    echo "+ $cmd $*" >>"$log"
    "$cmd" --driverloaded n "$@" >>"$log" 2>&1 || fail "$cmd $* failed"
}
# attach FILE [OFFSET SIZE]: a loop device for the file (or a byte range of it), in $LOOP.
# (Not run in $(…): the device must be remembered for detaching.)
attach() {
    if [[ $# == 3 ]]; then
        LOOP="$(losetup -f --show -o "$2" --sizelimit "$3" "$1")"
    else
        LOOP="$(losetup -f --show "$1")"
    fi
    loops+=("$LOOP")
}
# detach_all: detaches every loop device of this script and checks none is left.
detach_all() {
    local l
    sync
    for l in "${loops[@]}"; do
        losetup -d "$l"
    done
    loops=()
}
# attach_part DISK N: a loop device for GPT partition N of DISK in $LOOP, its offset in
# $PART_OFF.
attach_part() {
    local size
    read -r PART_OFF size < <(python3 "$tool" part "$1" "$2")
    attach "$1" "$PART_OFF" "$size"
}
# devmap OUT DEV=VOLUME:OFFSET…: which volume of the image each device is (OFFSET null: a PV
# left out of the image).
devmap() {
    local out="$1"
    shift
    python3 - "$out" "$@" <<'PY'
import json, sys
m = {}
for arg in sys.argv[2:]:
    dev, rest = arg.split("=", 1)
    volume, offset = rest.rsplit(":", 1)
    m[dev] = {"volume": None if volume == "null" else volume,
              "offset": None if offset == "null" else int(offset)}
json.dump(m, open(sys.argv[1], "w"))
PY
}
# pvfiles OUT PV=FILE:OFFSET…: the image file and byte offset of each PV, for `place`.
pvfiles() {
    local out="$1"
    shift
    python3 - "$out" "$@" <<'PY'
import json, sys
m = {}
for arg in sys.argv[2:]:
    pv, rest = arg.split("=", 1)
    file, offset = rest.rsplit(":", 1)
    m[pv] = [file, int(offset)]
json.dump(m, open(sys.argv[1], "w"))
PY
}
# mkext OUT SIZE TREE MKE2FS-ARGS...: an ext4 image of TREE in a sparse file, checked.
mkext() {
    local file="$1" size="$2" tree="$3"
    shift 3
    rm -f "$file"
    truncate -s "$size" "$file"
    mke2fs -q -F -t ext4 -b 4096 -I 256 "$@" -d "$tree" "$file"
    e2fsck -fn "$file" >>"$log" 2>&1 || fail "e2fsck -fn $file found problems"
}
# mkxfs OUT SIZE TREE MKFS-ARGS...: an XFS image of TREE: mkfs.xfs, then cp -a through a loop
# mount (which keeps the tree's times, unlike mkfs.xfs -p), checked with xfs_repair -n.
mkxfs() {
    local file="$1" size="$2" tree="$3"
    shift 3
    rm -f "$file"
    truncate -s "$size" "$file"
    mkfs.xfs -q -f "$@" "$file"
    mkdir -p "$tmp/mnt"
    mount -o loop,noatime "$file" "$tmp/mnt"
    mounted="$tmp/mnt"
    cp -a "$tree/." "$tmp/mnt/"
    umount "$tmp/mnt"
    mounted=""
    xfs_repair -n "$file" >>"$log" 2>&1 || fail "xfs_repair -n $file found problems"
}
# verify DISK: pvck and vgs, on fresh loop devices of every GPT partition (or the whole
# disk), find the label, the metadata and the VG again.
verify() {
    local disk="$1" vg="$2" devs=() n
    shift 2
    if [[ $# == 0 ]]; then
        attach "$disk"
        devs+=("$LOOP")
    else
        for n in "$@"; do
            attach_part "$disk" "$n"
            devs+=("$LOOP")
        done
    fi
    use_devices "${devs[@]}"
    for d in "${devs[@]}"; do
        lvmc pvck "$d"
    done
    lvmc vgs "$vg"
    detach_all
}

# ---------------------------------------------------------------------------------------
# Images.
# ---------------------------------------------------------------------------------------
img="$tmp"

# 1. lvm-linear.img: GPT p1 PV, VG vg0, five LVs.
step "1. lvm-linear.img"
disk="$img/lvm-linear.img"
truncate -s 516M "$disk"
sgdisk -n 1:2048:0 -t 1:8E00 -c 1:"lvm" "$disk" >/dev/null
attach_part "$disk" 1; pv="$LOOP"
use_devices "$pv"
lvmc pvcreate -y "$pv"
lvmc vgcreate --setautoactivation n vg0 "$pv"
lvmc lvcreate -an -Zn -y -L 32M -n root vg0
lvmc lvcreate -an -Zn -y -L 16M -n home vg0
lvmc lvcreate -an -Zn -y -L 320M -n var vg0
lvmc lvcreate -an -Zn -y -L 16M -n data vg0
lvmc lvcreate -an -Zn -y -L 8M -n my-lv vg0
devmap "$tmp/devmap" "$pv=p1:$PART_OFF"
python3 "$tool" report "$reports/lvm-linear.json" "$tmp/devmap" vg0
pvfiles "$tmp/pvfiles" "pv0=$disk:$PART_OFF"
detach_all
rep="$reports/lvm-linear.json"
mkext "$tmp/fs" "$(python3 "$tool" lv-size "$rep" vg0 root)" "$trees/lvm-linear-root" -L root -U "$LIN_ROOT_UUID"
python3 "$tool" place "$rep" vg0 root "$tmp/fs" "$tmp/pvfiles"
mkext "$tmp/fs" "$(python3 "$tool" lv-size "$rep" vg0 home)" "$trees/lvm-linear-home" -L home -U "$LIN_HOME_UUID"
python3 "$tool" place "$rep" vg0 home "$tmp/fs" "$tmp/pvfiles"
mkxfs "$tmp/fs" "$(python3 "$tool" lv-size "$rep" vg0 var)" "$trees/lvm-linear-var" -L var -m uuid="$LIN_VAR_UUID"
python3 "$tool" place "$rep" vg0 var "$tmp/fs" "$tmp/pvfiles"
mkext "$tmp/fs" "$(python3 "$tool" lv-size "$rep" vg0 data)" "$trees/lvm-linear-data" -L data -U "$LIN_DATA_UUID"
python3 "$tool" place "$rep" vg0 data "$tmp/fs" "$tmp/pvfiles"
mkext "$tmp/fs" "$(python3 "$tool" lv-size "$rep" vg0 my-lv)" "$trees/lvm-linear-srv" -L srv -U "$LIN_SRV_UUID"
python3 "$tool" place "$rep" vg0 my-lv "$tmp/fs" "$tmp/pvfiles"
verify "$disk" vg0 1

# 2. lvm-striped.img: p1 and p2 PVs, LV stripe over both (64 KiB chunks).
step "2. lvm-striped.img"
disk="$img/lvm-striped.img"
truncate -s 132M "$disk"
sgdisk -n 1:2048:+64M -t 1:8E00 -n 2:0:+64M -t 2:8E00 "$disk" >/dev/null
attach_part "$disk" 1; pv1="$LOOP"; off1=$PART_OFF
attach_part "$disk" 2; pv2="$LOOP"; off2=$PART_OFF
use_devices "$pv1" "$pv2"
lvmc pvcreate -y "$pv1" "$pv2"
lvmc vgcreate --setautoactivation n vgs "$pv1" "$pv2"
lvmc lvcreate -an -Zn -y -i 2 -I 64k -L 48M -n stripe vgs "$pv1" "$pv2"
devmap "$tmp/devmap" "$pv1=p1:$off1" "$pv2=p2:$off2"
rep="$reports/lvm-striped.json"
python3 "$tool" report "$rep" "$tmp/devmap" vgs
pvfiles "$tmp/pvfiles" "pv0=$disk:$off1" "pv1=$disk:$off2"
detach_all
mkext "$tmp/fs" "$(python3 "$tool" lv-size "$rep" vgs stripe)" "$trees/lvm-striped" -L stripe
python3 "$tool" check-spread "$rep" vgs stripe "$tmp/fs"
python3 "$tool" place "$rep" vgs stripe "$tmp/fs" "$tmp/pvfiles"
verify "$disk" vgs 1 2

# 3. lvm-segments.img: LV frag's first segment after its second on the PV.
step "3. lvm-segments.img"
disk="$img/lvm-segments.img"
truncate -s 130M "$disk"
sgdisk -n 1:2048:0 -t 1:8E00 "$disk" >/dev/null
attach_part "$disk" 1; pv="$LOOP"
use_devices "$pv"
lvmc pvcreate -y "$pv"
lvmc vgcreate --setautoactivation n vgseg "$pv"
lvmc lvcreate -an -Zn -y -l 4 -n frag vgseg "$pv:20-23"
lvmc lvextend -y -l +4 vgseg/frag "$pv:2-5"
devmap "$tmp/devmap" "$pv=p1:$PART_OFF"
rep="$reports/lvm-segments.json"
python3 "$tool" report "$rep" "$tmp/devmap" vgseg
pvfiles "$tmp/pvfiles" "pv0=$disk:$PART_OFF"
detach_all
python3 - "$rep" <<'PY' || fail "lvm-segments: frag is not laid out as intended"
import json, sys
[g] = json.load(open(sys.argv[1]))["volume_groups"]
[lv] = [l for l in g["logical_volumes"] if l["name"] == "frag"]
got = [(s["start_extent"], s["extent_count"], s["areas"][0]["start_extent"]) for s in lv["segments"]]
assert got == [(0, 4, 20), (4, 4, 2)], got
PY
mkext "$tmp/fs" "$(python3 "$tool" lv-size "$rep" vgseg frag)" "$trees/lvm-segments" -L frag
python3 "$tool" check-spread "$rep" vgseg frag "$tmp/fs"
python3 "$tool" place "$rep" vgseg frag "$tmp/fs" "$tmp/pvfiles"
verify "$disk" vgseg 1

# 4. lvm-wholedisk.img: the whole disk is the PV.
step "4. lvm-wholedisk.img"
disk="$img/lvm-wholedisk.img"
truncate -s 64M "$disk"
attach "$disk"; pv="$LOOP"
use_devices "$pv"
lvmc pvcreate -y "$pv"
lvmc vgcreate --setautoactivation n vgw "$pv"
lvmc lvcreate -an -Zn -y -L 32M -n root vgw
devmap "$tmp/devmap" "$pv=disk:0"
rep="$reports/lvm-wholedisk.json"
python3 "$tool" report "$rep" "$tmp/devmap" vgw
pvfiles "$tmp/pvfiles" "pv0=$disk:0"
detach_all
mkext "$tmp/fs" "$(python3 "$tool" lv-size "$rep" vgw root)" "$trees/lvm-wholedisk" -L root
python3 "$tool" place "$rep" vgw root "$tmp/fs" "$tmp/pvfiles"
verify "$disk" vgw

# 5. lvm-wrapped.img: a small metadata area whose current text wraps around its end.
step "5. lvm-wrapped.img"
disk="$img/lvm-wrapped.img"
truncate -s 66M "$disk"
sgdisk -n 1:2048:0 -t 1:8E00 "$disk" >/dev/null
attach_part "$disk" 1; pv="$LOOP"
use_devices "$pv"
lvmc pvcreate -y --metadatasize 64k --dataalignment 64k "$pv"
lvmc vgcreate --setautoactivation n vgwrap "$pv"
lvmc lvcreate -an -Zn -y -L 16M -n root vgwrap
# Commit until the current text starts before the end of the area and ends after it (lvm
# starts again at the beginning when less than a sector is left, so not every lap wraps).
# Forty long tags first make the text about 6 KiB: few commits per lap.
tags=()
for i in $(seq -w 1 40); do
    tags+=(--addtag "tag-$i-$(printf 'x%.0s' $(seq 1 90))")
done
lvmc vgchange "${tags[@]}" vgwrap
commits=0
while :; do
    commits=$((commits + 1))
    ((commits <= 400)) || fail "lvm-wrapped: the metadata did not wrap in 400 commits"
    lvmc vgchange --addtag "commit-$commits" vgwrap
    # raw_locn[0] offset + size beyond the area's size: the text wraps.
    headers="$(pvck --driverloaded n --dump headers "$pv" 2>/dev/null)"
    [[ "$headers" =~ mda_header_1\.size\ ([0-9]+) ]] && area=${BASH_REMATCH[1]}
    [[ "$headers" =~ raw_locn\[0\]\.offset\ ([0-9]+) ]] && at=${BASH_REMATCH[1]}
    [[ "$headers" =~ raw_locn\[0\]\.size\ ([0-9]+) ]] && size=${BASH_REMATCH[1]}
    if ((at + size > area)); then
        break
    fi
done
echo "lvm-wrapped: wrapped after $commits commits" >>"$log"
devmap "$tmp/devmap" "$pv=p1:$PART_OFF"
rep="$reports/lvm-wrapped.json"
python3 "$tool" report "$rep" "$tmp/devmap" vgwrap
[[ "$(python3 "$tool" get "$rep" vgwrap pv0 text_wraps)" == True ]] || fail "lvm-wrapped: not wrapped"
pvfiles "$tmp/pvfiles" "pv0=$disk:$PART_OFF"
detach_all
mkext "$tmp/fs" "$(python3 "$tool" lv-size "$rep" vgwrap root)" "$trees/lvm-wrapped" -L root
python3 "$tool" place "$rep" vgwrap root "$tmp/fs" "$tmp/pvfiles"
verify "$disk" vgwrap 1

# 6. lvm-missing-pv.img: VG vgm over two disks, each kept in its own image.
step "6. lvm-missing-pv.img"
disk="$img/lvm-missing-pv.img"
other="$img/lvm-missing-pv-disk2.img"
truncate -s 66M "$disk" "$other"
sgdisk -n 1:2048:0 -t 1:8E00 "$disk" >/dev/null
sgdisk -n 1:2048:0 -t 1:8E00 "$other" >/dev/null
attach_part "$disk" 1; pv1="$LOOP"; off1=$PART_OFF
attach_part "$other" 1; pv2="$LOOP"; off2=$PART_OFF
use_devices "$pv1" "$pv2"
lvmc pvcreate -y "$pv1" "$pv2"
lvmc vgcreate --setautoactivation n vgm "$pv1" "$pv2"
lvmc lvcreate -an -Zn -y -l 4 -n a vgm "$pv1"
lvmc lvcreate -an -Zn -y -l 2 -n b vgm "$pv1"
lvmc lvextend -y -l +2 vgm/b "$pv2"
devmap "$tmp/devmap" "$pv1=p1:$off1" "$pv2=null:null"
rep="$reports/lvm-missing-pv.json"
python3 "$tool" report "$rep" "$tmp/devmap" vgm
pvfiles "$tmp/pvfiles" "pv0=$disk:$off1" "pv1=$other:$off2"
detach_all
mkext "$tmp/fs" "$(python3 "$tool" lv-size "$rep" vgm a)" "$trees/lvm-missing-a" -L a
python3 "$tool" place "$rep" vgm a "$tmp/fs" "$tmp/pvfiles"
mkext "$tmp/fs" "$(python3 "$tool" lv-size "$rep" vgm b)" "$trees/lvm-missing-b" -L b
python3 "$tool" place "$rep" vgm b "$tmp/fs" "$tmp/pvfiles"
# pvck still finds the kept PV's label and metadata; vgs reports the VG with a PV missing.
attach_part "$disk" 1; pv1="$LOOP"
use_devices "$pv1"
lvmc pvck "$pv1"
vgs --driverloaded n -o vg_name,pv_count,vg_missing_pv_count --noheadings vgm 2>>"$log" |
    grep -q 'vgm *2 *1' || fail "lvm-missing-pv: vgs does not report one missing PV"
detach_all
attach_part "$disk" 1; pv1="$LOOP"
attach_part "$other" 1; pv2="$LOOP"
use_devices "$pv1" "$pv2"
vgs --driverloaded n -o vg_name,pv_count,vg_missing_pv_count --noheadings vgm 2>>"$log" |
    grep -q 'vgm *2 *0' || fail "lvm-missing-pv: vgs does not see both PVs of the two disks"
detach_all

# 7. lvm-thin.img: LV plain, and a thin pool with a thin LV, restored from metadata text.
step "7. lvm-thin.img"
disk="$img/lvm-thin.img"
truncate -s 130M "$disk"
sgdisk -n 1:2048:0 -t 1:8E00 "$disk" >/dev/null
attach_part "$disk" 1; pv="$LOOP"
use_devices "$pv"
lvmc pvcreate -y "$pv"
lvmc vgcreate --setautoactivation n vgt "$pv"
lvmc lvcreate -an -Zn -y -L 16M -n plain vgt
# The pool's two sub-volumes are allocated as ordinary LVs (lvm reserves the _tmeta and
# _tdata suffixes), then renamed, hidden and joined into a pool in the metadata text.
lvmc lvcreate -an -Zn -y -L 4M -n tmeta vgt
lvmc lvcreate -an -Zn -y -L 32M -n tdata vgt
lvmc vgcfgbackup -f "$tmp/vgt.vg" vgt
python3 - "$tmp/vgt.vg" <<'PY' || fail "lvm-thin: cannot edit the metadata text"
import random, re, sys
path = sys.argv[1]
text = open(path).read()
for name in ("tmeta", "tdata"):
    text, n = re.subn(r'(\n\t\t)%s( \{\n(?:.*\n)*?\t\t\tstatus = )\["READ", "WRITE", "VISIBLE"\]'
                      % name, r'\1pool_%s\2["READ", "WRITE"]' % name, text, count=1)
    assert n == 1, name
rng = random.Random("lvm-thin")
chars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
def lvm_id():
    s = "".join(rng.choice(chars) for _ in range(32))
    return "-".join([s[:6], s[6:10], s[10:14], s[14:18], s[18:22], s[22:26], s[26:]])
extents = 8  # 32 MiB in 4 MiB extents: the pool's data, and the thin LV's virtual size
lvs = f'''
		pool {{
			id = "{lvm_id()}"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			creation_time = 1700000000
			creation_host = "build"
			segment_count = 1

			segment1 {{
				start_extent = 0
				extent_count = {extents}

				type = "thin-pool"
				metadata = "pool_tmeta"
				pool = "pool_tdata"
				transaction_id = 1
				chunk_size = 128
				discards = "passdown"
				zero_new_blocks = 0
			}}
		}}

		thin1 {{
			id = "{lvm_id()}"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			creation_time = 1700000000
			creation_host = "build"
			segment_count = 1

			segment1 {{
				start_extent = 0
				extent_count = {extents}

				type = "thin"
				thin_pool = "pool"
				transaction_id = 0
				device_id = 1
			}}
		}}
'''
assert text.count("\tlogical_volumes {\n") == 1
text = text.replace("\tlogical_volumes {\n", "\tlogical_volumes {\n" + lvs, 1)
open(path, "w").write(text)
PY
lvmc vgcfgrestore --force -f "$tmp/vgt.vg" vgt
devmap "$tmp/devmap" "$pv=p1:$PART_OFF"
rep="$reports/lvm-thin.json"
python3 "$tool" report "$rep" "$tmp/devmap" vgt
pvfiles "$tmp/pvfiles" "pv0=$disk:$PART_OFF"
detach_all
mkext "$tmp/fs" "$(python3 "$tool" lv-size "$rep" vgt plain)" "$trees/lvm-thin-plain" -L plain
python3 "$tool" place "$rep" vgt plain "$tmp/fs" "$tmp/pvfiles"
# The thin LV's filesystem, in the pool's data LV; thin device 1 maps its 512 blocks of
# 64 KiB one to one onto the pool's, in the pool metadata thin_restore writes.
mkext "$tmp/fs" "$(python3 "$tool" lv-size "$rep" vgt thin1)" "$trees/lvm-thin-thin" -L thin
python3 "$tool" place "$rep" vgt pool_tdata "$tmp/fs" "$tmp/pvfiles"
cat >"$tmp/thin.xml" <<'EOF'
<superblock uuid="" time="0" transaction="1" version="2" data_block_size="128" nr_data_blocks="512">
  <device dev_id="1" mapped_blocks="512" transaction="0" creation_time="0" snap_time="0">
    <range_mapping origin_begin="0" data_begin="0" length="512" time="0"/>
  </device>
</superblock>
EOF
rm -f "$tmp/tmeta"
truncate -s "$(python3 "$tool" lv-size "$rep" vgt pool_tmeta)" "$tmp/tmeta"
thin_restore -q -i "$tmp/thin.xml" -o "$tmp/tmeta" >>"$log" 2>&1 || fail "thin_restore failed"
thin_check "$tmp/tmeta" >>"$log" 2>&1 || fail "thin_check rejects the pool metadata"
python3 "$tool" place "$rep" vgt pool_tmeta "$tmp/tmeta" "$tmp/pvfiles"
rm -f "$tmp/tmeta" "$tmp/thin.xml" "$tmp/vgt.vg"
verify "$disk" vgt 1

# 8-9. RHEL 9 on LVM: p1 BIOS boot, p2 ESP, p3 XFS /boot, p4 PV of VG rhel.
step "8-9. lvm-rhel.img, lvm-rhel-sealed.img"
python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random("core.img").randbytes(100_000))' \
    >"$tmp/core.img"
rm -f "$tmp/esp.fs"
truncate -s 100M "$tmp/esp.fs"
mkfs.vfat -F 16 -i "$RHEL_ESP_ID" "$tmp/esp.fs" >/dev/null
# -s recursive, -p keep attributes, -m keep modification times (written as UTC: TZ=UTC).
mcopy -s -p -m -i "$tmp/esp.fs" "$trees/lvm-rhel-efi/EFI" ::/
mkxfs "$tmp/boot.fs" 320M "$trees/lvm-rhel-boot" -L boot -m uuid="$RHEL_BOOT_UUID"
for case in rhel rhel-sealed; do
    disk="$img/lvm-$case.img"
    truncate -s $((1 + 1 + 100 + 320 + 1100 + 1))M "$disk"
    sgdisk -U "$RHEL_DISK_GUID" \
        -n 1:2048:+1M -t 1:EF02 -c 1:"p.legacy" \
        -n 2:0:+100M -t 2:EF00 -c 2:"p.UEFI" \
        -n 3:0:+320M -t 3:8300 -c 3:"p.xbootldr" \
        -n 4:0:+1100M -t 4:8E00 -c 4:"p.lxlvm" \
        "$disk" >/dev/null
    attach_part "$disk" 4; pv="$LOOP"
    use_devices "$pv"
    lvmc pvcreate -y "$pv"
    lvmc vgcreate --setautoactivation n rhel "$pv"
    lvmc lvcreate -an -Zn -y -L 16M -n swap rhel
    lvmc lvcreate -an -Zn -y -L 400M -n root rhel
    lvmc lvcreate -an -Zn -y -L 320M -n home rhel
    lvmc lvcreate -an -Zn -y -L 320M -n var rhel
    devmap "$tmp/devmap" "$pv=p4:$PART_OFF"
    rep="$reports/lvm-$case.json"
    python3 "$tool" report "$rep" "$tmp/devmap" rhel
    pvfiles "$tmp/pvfiles" "pv0=$disk:$PART_OFF"
    detach_all
    for lv in root home var; do
        uuid_var="RHEL_${lv^^}_UUID"
        mkxfs "$tmp/fs" "$(python3 "$tool" lv-size "$rep" rhel $lv)" "$trees/lvm-$case-$lv" \
            -L "$lv" -m uuid="${!uuid_var}"
        python3 "$tool" place "$rep" rhel "$lv" "$tmp/fs" "$tmp/pvfiles"
    done
    rm -f "$tmp/fs"
    truncate -s "$(python3 "$tool" lv-size "$rep" rhel swap)" "$tmp/fs"
    chmod 600 "$tmp/fs"
    mkswap -U "$RHEL_SWAP_UUID" "$tmp/fs" >>"$log" 2>&1 || fail "mkswap failed"
    python3 "$tool" place "$rep" rhel swap "$tmp/fs" "$tmp/pvfiles"
    python3 "$tool" place-part "$disk" 1 "$tmp/core.img"
    python3 "$tool" place-part "$disk" 2 "$tmp/esp.fs"
    python3 "$tool" place-part "$disk" 3 "$tmp/boot.fs"
    verify "$disk" rhel 4
done
rm -f "$tmp"/*.fs "$tmp/fs" "$tmp/core.img" "$tmp/devmap" "$tmp/pvfiles" "$tool"
rmdir "$tmp/mnt" 2>/dev/null || true

# Nothing of this build stays attached.
for f in "$img"/lvm-*.img; do
    if [[ -n "$(losetup -j "$f")" ]]; then
        fail "$f is still attached to a loop device: $(losetup -j "$f")"
    fi
done

# ---------------------------------------------------------------------------------------
# Into place: the old build moves aside, the new one in, and the stamp is written last.
# ---------------------------------------------------------------------------------------
rm -f "$stamp"
old="$(mktemp -d "$build/.old-lvm.XXXXXX")"
mkdir -p "$build/trees"
find "$build" -maxdepth 1 -name 'lvm-*.img' -exec mv -t "$old" {} +
find "$build/trees" -mindepth 1 -maxdepth 1 -name 'lvm-*' -exec mv -t "$old" {} +
[[ -d "$build/lvm-reports" ]] && mv "$build/lvm-reports" "$old/"
find "$trees" -mindepth 1 -maxdepth 1 -exec mv -t "$build/trees" {} +
mv "$reports" "$build/lvm-reports"
find "$tmp" -maxdepth 1 -name 'lvm-*.img' -exec mv -t "$build" {} +
echo "$want" >"$stamp.new"
mv "$stamp.new" "$stamp"
rm -rf "$old"
echo "build-lvm-images.sh: built $(find "$build" -maxdepth 1 -name 'lvm-*.img' | wc -l) images in $((SECONDS - started)) s" >&2
