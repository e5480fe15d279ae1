#!/usr/bin/env bash
# Builds the XFS images tests/xfs.rs reads, from real tools, into testdata/build/ (git-ignored),
# and the source trees they were made from into testdata/build/trees/xfs-*; the tests compare
# what amiscan reads from each image with its trees, byte for byte, and with xfs_db.
#
# Two ways in. `mkfs.xfs -p PROTOFILE` populates a new filesystem without mounting it (the
# proto file is generated from the tree); it cannot express hard links, sockets, sticky bits,
# times (it stamps the build time), names or symlink targets holding whitespace or a colon,
# holes, unwritten or shared extents, and it writes each file as one extent; and xfsprogs
# 6.1 writes v5 remote symlink blocks without their header. So every v5 image is mounted
# afterwards (`mount -o loop`) to set the tree's exact times (nanoseconds) and sticky bits
# and to make the symlinks too long for the inode, and the images that need more are
# filled by `cp -a` plus `xfs_io` on the mount. The v4 image cannot be mounted (the kernel
# no longer reads V4); its times and sticky bits are written into the inodes directly (v4
# inodes carry no checksum). Then
# every filesystem is checked with `xfs_repair -n`, every mounted one is compared with its
# tree through the kernel, and each structure an image exists for is checked with xfs_db
# (directory forms, extent counts, fork formats, a dirty log), so a tool that changes its
# defaults fails this script instead of silently weakening a test.
#
# Needs root (loop mounts); without it the script fails, it does not skip. Runs once: when
# testdata/build/.complete-xfs holds the sha256 of this script and the rule images' stamp,
# it exits at once. Otherwise it builds into a temporary directory, moves the results into
# place and writes the stamp last. It first runs build-rule-images.sh (which runs
# build-images.sh, the script that clears testdata/build/ when it rebuilds; after that, it
# cannot do so during a test run) because the sealed images reuse the rule images' sealed
# tree. Callers serialise runs with `flock testdata/build/.lock-xfs bash …`.
#
# Images (file names are the contract with the tests); bare filesystems unless a layout is
# given. All are sparse files; mkfs defaults are xfsprogs 6.1's (v5: crc, ftype, finobt,
# sparse inodes, reflink, bigtime, inobtcount; 512-byte inodes; 4 allocation groups).
#   xfs-v5.img               512 MiB, defaults, -p of trees/xfs-v5: files of 0 B to 5 MiB,
#                            directories in every form (shortform, block, leaf, node), inline
#                            symlinks (up to 300 bytes: 336 fit a 512-byte inode) and remote
#                            ones (400, 1000 and 1023 bytes, the longest), device nodes, a
#                            fifo, names that are not UTF-8 and a 255-byte name (no spaces:
#                            the proto format cannot say them), setuid/setgid/sticky, uids up
#                            to 100000, times from 1906 to 2286 with nanoseconds
#   xfs-v5-mounted.img       512 MiB, defaults, cp -a of trees/xfs-v5-mounted plus xfs_io:
#                            hard links, a socket, names with spaces and a newline, sparse files
#                            (a 64 MiB one with two data blocks, one that is all hole), a file
#                            with unwritten extents between written ones, one with unwritten
#                            extents past its end, a reflinked copy partly rewritten, a file of
#                            2 100 extents (data fork in btree format), /huge with 100 000
#                            entries (node directory, data fork in btree format)
#   xfs-v4.img               512 MiB, -m crc=0 -n ftype=0 (v4, 256-byte inodes), -p of
#                            trees/xfs-v4 (a smaller tree: all four directory forms, inline and
#                            remote symlinks, devices, modes)
#   xfs-512inode-64kdir.img  512 MiB, -i size=512 -n size=65536, -p of trees/xfs-64kdir
#                            (/dirs/leaf holds 5 000 entries in 64 KiB directory blocks)
#   xfs-sparse-nrext64.img   512 MiB, -i sparse=1,nrext64=1 (xfsprogs 6.1 knows nrext64), cp -a
#                            of trees/xfs-nrext64: 4 000 small files in 40 directories (many
#                            inode chunks) and a file of 600 extents
#   xfs-1k.img               512 MiB, -b size=1024, -p of trees/xfs-1k (remote symlinks that
#                            span two blocks, directories in every form)
#   xfs-dirty.img            512 MiB, -p of trees/xfs-dirty (/base), then mounted again, /new
#                            written, `sync`, and the filesystem shut down: the log is dirty
#                            (the changes under /new are only in the log)
#   xfs-al2023.img           laid out as Amazon Linux 2023: GPT; p127 BIOS boot (EF02, 1 MiB
#                            at sector 2048); p128 EFI system partition (EF00, FAT16, 10 MiB,
#                            trees/xfs-al2023-efi); p1 XFS root labelled `/` (2 GiB, -p of
#                            trees/xfs-al2023-root, with leftovers the built-in rules find);
#                            the fstab mounts / and /boot/efi by UUID=
#   xfs-al2023-sealed.img    the same layout, root trees/xfs-al2023-sealed-root (the rule
#                            images' sealed tree as Amazon Linux 2023): every rule passes
#   xfs-rhel.img             laid out as RHEL 9: GPT; p1 BIOS boot (1 MiB); p2 EFI system
#                            partition (FAT16, 200 MiB, trees/xfs-rhel-efi) at /boot/efi; p3
#                            XFS /boot labelled `boot` (512 MiB, trees/xfs-rhel-boot); p4 XFS
#                            root labelled `root` (2 GiB, trees/xfs-rhel-root, leftovers)
#   xfs-rhel-sealed.img      the same layout, root trees/xfs-rhel-sealed-root
#
# Source trees (testdata/build/trees/): xfs-v5, xfs-v5-mounted, xfs-v4, xfs-64kdir,
# xfs-nrext64, xfs-1k, xfs-dirty (what is on disk outside the log), xfs-al2023-root,
# xfs-al2023-sealed-root, xfs-al2023-efi, xfs-rhel-root, xfs-rhel-sealed-root,
# xfs-rhel-boot, xfs-rhel-efi. Their modification times are fixed (even seconds and no
# nanoseconds in the FAT trees); SSH keys and the planted AWS key are generated afresh.
set -euo pipefail
export LC_ALL=C TZ=UTC
# mkfs and the xfs tools live in sbin, which a normal user's PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
# mtools: do not refuse images whose geometry it finds unusual.
export MTOOLS_SKIP_CHECK=1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
script="$here/$(basename "${BASH_SOURCE[0]}")"
build="$here/build"
stamp="$build/.complete-xfs"

mkdir -p "$build"
# Also builds build-images.sh's images first, under its own lock.
flock "$build/.lock-rules" bash "$here/build-rule-images.sh"

want="$(sha256sum "$script" | cut -d' ' -f1) $(cat "$build/rules/.complete")"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
    echo "build-xfs-images.sh: must run as root: the XFS images are finished on loop mounts" \
        "(hard links, sockets, holes, unwritten and shared extents, exact times)" >&2
    exit 1
fi
for tool in mkfs.xfs xfs_db xfs_io xfs_repair xfs_logprint mount umount sgdisk mkfs.vfat \
    mcopy ssh-keygen python3 truncate sha256sum flock; do
    command -v "$tool" >/dev/null || { echo "build-xfs-images.sh: $tool is required" >&2; exit 1; }
done

started=$SECONDS
rm -rf "$build"/.tmp-xfs.* "$build"/.old-xfs.*
tmp="$(mktemp -d "$build/.tmp-xfs.XXXXXX")"
chmod 755 "$tmp"
mounts=()
cleanup() {
    local m
    for m in "${mounts[@]}"; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trees="$tmp/trees"
mkdir -p "$trees"
tool="$tmp/xfs-tool.py"

# Fixed identifiers, so fstab entries and the tests can name them.
AL_DISK_GUID=0a1e2023-0000-4000-8000-00000000d15c
AL_P1_GUID=0a1e2023-0000-4000-8000-000000000001
AL_P127_GUID=0a1e2023-0000-4000-8000-000000000127
AL_P128_GUID=0a1e2023-0000-4000-8000-000000000128
AL_ROOT_UUID=5b3e7c1a-9d2f-4e8b-a6c4-2023a1a2b3c4
AL_ESP_ID=A1E52023
RHEL_DISK_GUID=0e1a9000-0000-4000-8000-00000000d15c
RHEL_ROOT_UUID=7d4c2b1a-8e9f-4a3b-9c5d-e6f7a8b9c0d1
RHEL_BOOT_UUID=3a9b8c7d-6e5f-4d1c-8b2a-0f1e2d3c4b5a
RHEL_ESP_ID=0E1A2B3C
V5_UUID=0c0ffee5-0000-4000-8000-0000000000a5

# ---------------------------------------------------------------------------------------
# Helpers (Python): proto files, times, placement, and checks through the kernel and xfs_db.
# ---------------------------------------------------------------------------------------
cat >"$tool" <<'PY'
import hashlib, os, re, stat, subprocess, sys

def die(msg):
    sys.exit(f"build-xfs-images.sh: {msg}")

def rel_paths(tree):
    """Every path under tree (bytes, relative), children before their directories."""
    out = []
    for dirpath, dirnames, filenames in os.walk(tree, topdown=False):
        for name in filenames + dirnames:
            out.append(os.path.relpath(os.path.join(dirpath, name), tree))
    return out

def proto(tree, max_symlink):
    """A mkfs.xfs proto file for tree, with paths relative to it (mkfs runs inside it).
    Symlinks with targets longer than max_symlink bytes are left out (see mkxfs)."""
    kinds = {stat.S_IFDIR: b"d", stat.S_IFREG: b"-", stat.S_IFLNK: b"l",
             stat.S_IFBLK: b"b", stat.S_IFCHR: b"c", stat.S_IFIFO: b"p"}
    def spec(path, st):
        kind = kinds.get(stat.S_IFMT(st.st_mode))
        if kind is None:
            die(f"{path!r}: mkfs.xfs -p cannot make this kind of node")
        m = st.st_mode
        return (kind + (b"u" if m & stat.S_ISUID else b"-") + (b"g" if m & stat.S_ISGID else b"-")
                + b"%03o %d %d" % (m & 0o777, st.st_uid, st.st_gid))
    def token(path, text):
        if not text or re.search(rb"\s", text) or b":" in text or text == b"$":
            die(f"{path!r}: {text!r} cannot be written in a proto file")
        return text
    lines = [b"amiscan", b"0 0", spec(tree, os.lstat(tree))]
    def walk(rel):
        d = os.path.join(tree, rel)
        for name in sorted(os.listdir(d)):
            r = os.path.join(rel, name)
            p = os.path.join(tree, r)
            st = os.lstat(p)
            line = token(p, name) + b" " + spec(p, st)
            if stat.S_ISDIR(st.st_mode):
                lines.append(line)
                walk(r)
                lines.append(b"$")
                continue
            if stat.S_ISREG(st.st_mode):
                if st.st_nlink != 1:
                    die(f"{p!r}: mkfs.xfs -p cannot make hard links")
                line += b" " + token(p, b"./" + r)
            elif stat.S_ISLNK(st.st_mode):
                target = os.readlink(p)
                if len(target) > max_symlink:
                    continue
                line += b" " + token(p, target)
            elif stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode):
                line += b" %d %d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
            lines.append(line)
    walk(b"")
    lines.append(b"$")
    sys.stdout.buffer.write(b"\n".join(lines) + b"\n")

def apply(tree, mnt):
    """Gives every node on the mount the tree's permission bits and times, and makes the
    symlinks the proto file left out."""
    for rel in rel_paths(tree):
        st = os.lstat(os.path.join(tree, rel))
        target = os.path.join(mnt, rel)
        if stat.S_ISLNK(st.st_mode) and not os.path.lexists(target):
            os.symlink(os.readlink(os.path.join(tree, rel)), target)
            os.lchown(target, st.st_uid, st.st_gid)
        if not stat.S_ISLNK(st.st_mode):
            if stat.S_IMODE(os.lstat(target).st_mode) != stat.S_IMODE(st.st_mode):
                os.chmod(target, stat.S_IMODE(st.st_mode))
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

def same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True

def compare(tree, mnt):
    """The mount, as the kernel shows it, equals the tree (apart from the root itself)."""
    problems = []
    for rel in rel_paths(tree):
        a, b = os.path.join(tree, rel), os.path.join(mnt, rel)
        try:
            sa, sb = os.lstat(a), os.lstat(b)
        except FileNotFoundError:
            problems.append(f"{rel!r}: missing from the mount")
            continue
        fields = ["st_mode", "st_uid", "st_gid", "st_mtime_ns", "st_nlink"]
        if not stat.S_ISDIR(sa.st_mode):
            fields.append("st_size")
        if stat.S_ISBLK(sa.st_mode) or stat.S_ISCHR(sa.st_mode):
            fields.append("st_rdev")
        for f in fields:
            if getattr(sa, f) != getattr(sb, f):
                problems.append(f"{rel!r}: {f} {getattr(sa, f)} in the tree, "
                                f"{getattr(sb, f)} on the mount")
        if stat.S_ISLNK(sa.st_mode) and os.readlink(a) != os.readlink(b):
            problems.append(f"{rel!r}: symlink targets differ")
        if stat.S_ISREG(sa.st_mode) and sa.st_size == sb.st_size and not same_bytes(a, b):
            problems.append(f"{rel!r}: contents differ")
    for dirpath, dirnames, filenames in os.walk(mnt):
        for name in dirnames + filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), mnt)
            if not os.path.lexists(os.path.join(tree, rel)):
                problems.append(f"{rel!r}: on the mount but not in the tree")
    if problems:
        die(f"{mnt} differs from {tree}:\n  " + "\n  ".join(p for p in problems[:20]))

def xfs_db(img, *commands):
    args = ["xfs_db", "-r"]
    for c in commands:
        args += ["-c", c]
    out = subprocess.run(args + [img], capture_output=True, check=True)
    return out.stdout.decode("utf-8", "replace")

def listing(img, path):
    """xfs_db's `ls` of a directory: {name: inode number}. Each line is `cookie inode type
    hash name-length name (good)`; the length says where the name ends."""
    out = subprocess.run(["xfs_db", "-r", "-c", b"ls " + path, img], capture_output=True)
    if out.returncode != 0 or out.stderr:
        die(f"xfs_db ls {path!r} failed: {out.stderr!r}")
    entries = {}
    for line in out.stdout.split(b"\n")[1:]:
        if not line:
            continue
        cookie, ino, kind, hash, length, rest = line.split(None, 5)
        entries[rest[:int(length)]] = int(ino)
    return entries

def inode_numbers(img, rels):
    """Inode numbers of tree-relative paths, from xfs_db's listings of their parents."""
    listings = {}
    out = []
    for rel in rels:
        parent, name = os.path.split(rel)
        if parent not in listings:
            listings[parent] = listing(img, b"/" + parent)
        out.append(listings[parent][name])
    return out

def patch_v4(tree, img):
    """Writes the tree's permission bits and times into a v4 filesystem's inodes (v4 inodes
    have no checksum, and the kernel no longer mounts v4, so this is done by hand)."""
    rels = [r for r in rel_paths(tree)]
    inos = inode_numbers(img, rels)
    offsets = []
    for i in range(0, len(inos), 200):
        text = xfs_db(img, *[f"convert inode {n} byte" for n in inos[i:i + 200]])
        offsets += [int(m) for m in re.findall(r"\((\d+)\)", text)]
    if len(offsets) != len(inos):
        die(f"xfs_db convert gave {len(offsets)} offsets for {len(inos)} inodes")
    with open(img, "r+b") as f:
        for rel, at in zip(rels, offsets):
            st = os.lstat(os.path.join(tree, rel))
            f.seek(at)
            core = f.read(8)
            if core[:2] != b"IN" or core[4] != 2:
                die(f"{img}: no v2 inode at byte {at} for {rel!r}")
            mode = int.from_bytes(core[2:4], "big")
            if stat.S_IFMT(mode) != stat.S_IFMT(st.st_mode):
                die(f"{img}: inode at byte {at} is not {rel!r}")
            f.seek(at + 2)
            f.write((stat.S_IFMT(mode) | stat.S_IMODE(st.st_mode)).to_bytes(2, "big"))
            sec, nsec = divmod(st.st_mtime_ns, 10**9)
            if not -2**31 <= sec < 2**31:
                die(f"{rel!r}: a v4 inode cannot hold time {sec}")
            f.seek(at + 40)  # di_mtime: seconds, nanoseconds (big-endian)
            f.write(sec.to_bytes(4, "big", signed=True) + nsec.to_bytes(4, "big"))

def place(disk, at, fsfile):
    """Copies a filesystem image into disk at byte `at`, skipping holes and zero blocks."""
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

def partition_start(disk, number):
    text = subprocess.run(["sgdisk", "-i", str(number), disk], capture_output=True,
                          check=True, text=True).stdout
    first = int(re.search(r"First sector: (\d+)", text)[1])
    last = int(re.search(r"Last sector: (\d+)", text)[1])
    return first * 512, (last - first + 1) * 512

def dir_form(img, path):
    """shortform, block, leaf or node, from the inode's fork format and its block map."""
    text = xfs_db(img, "sb 0", "print blocksize", f"path {path}", "print core.format", "bmap")
    bsize = int(re.search(r"blocksize = (\d+)", text)[1])
    fmt = int(re.search(r"core.format = (\d+)", text)[1])
    if fmt == 1:
        return "shortform", fmt
    offsets = [int(o) for o in re.findall(r"data offset (\d+)", text)]
    leaf, free = (1 << 35) // bsize, (1 << 36) // bsize
    if not any(o >= leaf for o in offsets):
        return "block", fmt
    if not any(o >= free for o in offsets):
        return "leaf", fmt
    return "node", fmt

def inode_info(img, path):
    text = xfs_db(img, f"path {path}", "print core.format core.nextents core.size")
    return {k: int(v) for k, v in re.findall(r"core\.(\w+) = (\d+)", text)}

def expect(what, got, want):
    if got != want:
        die(f"{what}: {got}, expected {want}")

def fiemap_flags(path):
    """The flags of every extent of a file, as xfs_io's fiemap prints them."""
    text = subprocess.run(["xfs_io", "-r", "-c", "fiemap -v", path], capture_output=True,
                          check=True, text=True).stdout
    flags = []
    for line in text.splitlines():
        cols = line.split()
        if len(cols) >= 5 and cols[0].rstrip(":").isdigit() and cols[2] != "hole":
            flags.append(int(cols[-1], 16))
    return flags

def main():
    cmd, args = sys.argv[1], [os.fsencode(a) for a in sys.argv[2:]]
    if cmd == "proto":
        proto(args[0], int(args[1]) if len(args) > 1 else 1024)
    elif cmd == "apply":
        apply(args[0], args[1])
    elif cmd == "compare":
        compare(args[0], args[1])
    elif cmd == "patch-v4":
        patch_v4(args[0], args[1])
    elif cmd == "place":
        place(args[0], int(args[1]), args[2])
    elif cmd == "place-part":
        place(args[0], partition_start(args[0], int(args[1]))[0], args[2])
    elif cmd == "part-size":
        print(partition_start(args[0], int(args[1]))[1])
    elif cmd == "dir-form":
        # dir-form IMG PATH FORM [FORMAT]
        form, fmt = dir_form(args[0], args[1].decode())
        expect(f"{args[0].decode()}:{args[1].decode()} directory form", form, args[2].decode())
        if len(args) > 3:
            expect(f"{args[0].decode()}:{args[1].decode()} data fork format", fmt, int(args[3]))
    elif cmd == "inode":
        # inode IMG PATH FORMAT MIN-EXTENTS
        info = inode_info(args[0], args[1].decode())
        what = f"{args[0].decode()}:{args[1].decode()}"
        expect(f"{what} data fork format", info.get("format"), int(args[2]))
        if info.get("nextents", 0) < int(args[3]):
            die(f"{what}: {info.get('nextents')} extents, expected at least {int(args[3])}")
    elif cmd == "fiemap-has":
        # fiemap-has FILE FLAG: some extent has FLAG (0x800 unwritten, 0x2000 shared)
        flags = fiemap_flags(args[0])
        flag = int(args[1], 16)
        if not any(f & flag for f in flags) or all(f & flag for f in flags):
            die(f"{args[0]!r}: extent flags {[hex(f) for f in flags]}, "
                f"expected some (not all) with {hex(flag)}")
    elif cmd == "sparse":
        st = os.stat(args[0])
        if st.st_blocks * 512 >= st.st_size:
            die(f"{args[0]!r}: {st.st_blocks * 512} bytes allocated for {st.st_size}: no holes")
    else:
        die(f"unknown helper command {cmd}")

main()
PY

# ---------------------------------------------------------------------------------------
# Source trees.
# ---------------------------------------------------------------------------------------
python3 - "$trees" <<'PY'
import os, random, socket, sys

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

def target_of(length, final):
    """A relative symlink target of exactly `length` bytes that resolves like `final`."""
    pad = length - len(final)
    assert pad >= 2, (length, final)
    # `.//` is `./` with a doubled slash: it takes up an odd number of bytes.
    odd = ".//" if pad % 2 else ""
    return "./" * ((pad - len(odd)) // 2) + odd + final

def common(t, variant):
    """What every general tree holds; `variant` is v5, v4, 64k or 1k."""
    put(f"{t}/etc/os-release", 'NAME="amiscan XFS test"\nID=amiscan-xfs\nVERSION_ID="1"\n')
    sizes = [("empty", 0), ("tiny", 60), ("4095", 4095), ("4096", 4096), ("4097", 4097),
             ("65537", 65537), ("1MiB", 1 << 20)]
    if variant == "v5":
        sizes.append(("5MiB-plus-3", (5 << 20) + 3))
    if variant == "1k":
        sizes += [("1023", 1023), ("1024", 1024), ("1025", 1025)]
    for name, size in sizes:
        put(f"{t}/sizes/{name}", rand(f"{variant}/sizes/{name}", size))
    # Directories in each of XFS's forms (the build checks them with xfs_db).
    for name in ("a", "b", "c"):
        put(f"{t}/dirs/short/{name}", f"short {name}\n")
    mkdirs(f"{t}/dirs/empty")
    for i in range(5):
        mkdirs(f"{t}/dirs/subdirs/sub{i}")
    block = 1000 if variant == "64k" else 50
    for i in range(block):
        put(f"{t}/dirs/block/block-entry-{i:04d}", f"{i}\n" if i % 7 == 0 else "")
    leaf = {"v5": 300, "v4": 300, "1k": 250, "64k": 5000}[variant]
    for i in range(leaf):
        put(f"{t}/dirs/leaf/leaf-entry-{i:05d}", f"leaf {i}\n" if i % 10 == 0 else "")
    if variant != "64k":
        for i in range(2000):
            put(f"{t}/dirs/node/node-entry-{i:05d}", f"node {i}\n" if i % 100 == 0 else "")
    # Symlinks: short ones live in the inode, long ones in blocks of their own.
    long_a, long_b = "n" * 120, "m" * 120
    put(f"{t}/long/{long_a}/{long_b}/deep.txt", "reached through a long symlink\n")
    os.makedirs(f"{t}/links")
    os.symlink("../sizes/tiny", f"{t}/links/short")
    os.symlink(f"../long/{long_a}/{long_b}/deep.txt", f"{t}/links/len-258")
    os.symlink(target_of(300, "../long/" + long_a + "/" + long_b + "/deep.txt"),
               f"{t}/links/len-300")
    os.symlink(target_of(400, "../long/" + long_a + "/" + long_b + "/deep.txt"),
               f"{t}/links/len-400")
    os.symlink(target_of(1000, "../sizes/tiny"), f"{t}/links/len-1000")
    # The longest target XFS takes (XFS_SYMLINK_MAXLEN is 1024, the kernel wants it shorter).
    os.symlink(target_of(1023, "../sizes/tiny"), f"{t}/links/len-1023")
    os.symlink("/etc/os-release", f"{t}/links/absolute")
    os.symlink("does-not-exist", f"{t}/links/dangling")
    os.symlink("../dirs/short", f"{t}/links/dir")
    # Device nodes and a fifo.
    os.makedirs(f"{t}/special")
    os.mknod(f"{t}/special/char-1-3", 0o666 | 0o020000, os.makedev(1, 3))
    os.mknod(f"{t}/special/block-8-1", 0o660 | 0o060000, os.makedev(8, 1))
    os.mknod(f"{t}/special/char-big", 0o600 | 0o020000, os.makedev(511, 70000))
    os.mkfifo(f"{t}/special/fifo")
    os.chmod(f"{t}/special/fifo", 0o644)
    # Names: bytes that are not UTF-8, UTF-8, the longest name (255 bytes).
    put(os.path.join(f"{t}/names".encode(), b"\xff\xfe"), b"a name that is not UTF-8\n")
    put(os.path.join(f"{t}/names".encode(), b"caf\xe9"), b"latin-1\n")
    put(f"{t}/names/\u00e9t\u00e9.txt", "UTF-8\n")
    put(f"{t}/names/" + "x" * 251 + ".txt", "255 bytes\n")
    put(f"{t}/names/quote'and\"double#hash=eq", "punctuation\n")
    # Modes and owners.
    put(f"{t}/perms/setuid", "#!/bin/sh\n", 0o4755)
    put(f"{t}/perms/setgid", "#!/bin/sh\n", 0o2755)
    put(f"{t}/perms/both", "#!/bin/sh\n", 0o6711)
    put(f"{t}/perms/private", "secret\n", 0o600)
    put(f"{t}/perms/none", "no access\n", 0o000)
    mkdirs(f"{t}/perms/sticky-dir", 0o1777)
    mkdirs(f"{t}/perms/setgid-dir", 0o2775)
    put(f"{t}/owners/u1000", "uid 1000\n", owner=(1000, 1000))
    put(f"{t}/owners/nobody", "nobody\n", owner=(65534, 65534))
    put(f"{t}/owners/big-ids", "large ids\n", owner=(100000, 200000))
    mkdirs(f"{t}/owners/dir-1000-1001", 0o750, owner=(1000, 1001))
    put(f"{t}/owners/dir-1000-1001/inside", "inside\n", owner=(1000, 1001))
    deep = os.path.join(t, "deep", *[f"d{i:02d}" for i in range(1, 31)])
    put(f"{deep}/bottom.txt", "thirty levels down\n")
    put(f"{t}/times/1969.txt", "before the epoch\n")
    if variant in ("v5", "1k", "64k"):
        for name in ("1906.txt", "2039.txt", "2286.txt", "nanoseconds.txt"):
            put(f"{t}/times/{name}", f"{name}\n")

def sparse_file(path, size, pieces, seed):
    """A file of `size` bytes, holes except `pieces` [(offset, length)] of random bytes."""
    put(path)
    r = random.Random(seed)
    with open(path, "r+b") as f:
        f.truncate(size)
        for at, n in pieces:
            f.seek(at)
            f.write(r.randbytes(n))

# --- xfs-v5, xfs-v4, xfs-64kdir, xfs-1k: made with mkfs.xfs -p -----------------------
common(f"{trees}/xfs-v5", "v5")
common(f"{trees}/xfs-v4", "v4")
common(f"{trees}/xfs-64kdir", "64k")
common(f"{trees}/xfs-1k", "1k")

# --- xfs-v5-mounted: what only a mounted filesystem can hold -------------------------
t = f"{trees}/xfs-v5-mounted"
# An OS marker, so the volume is taken for a guest root (a bare data volume is incomplete).
put(f"{t}/etc/os-release", 'NAME="amiscan XFS test"\nID=amiscan-xfs\nVERSION_ID="1"\n')
put(f"{t}/hard/one", "one inode, three names\n")
os.link(f"{t}/hard/one", f"{t}/hard/two")
os.makedirs(f"{t}/hard/elsewhere")
os.link(f"{t}/hard/one", f"{t}/hard/elsewhere/three")
put(f"{t}/hard/single", "one name only\n")
os.makedirs(f"{t}/special")
s = socket.socket(socket.AF_UNIX)
s.bind(f"{t}/special/socket")
s.close()
os.chmod(f"{t}/special/socket", 0o755)
os.mkfifo(f"{t}/special/fifo")
os.chmod(f"{t}/special/fifo", 0o600)
put(f"{t}/names/with space", "a space\n")
put(f"{t}/names/new\nline", "a newline\n")
put(f"{t}/names/colon:in:name", "colons\n")
put(f"{t}/names/tab\there", "a tab\n")
sparse_file(f"{t}/sparse/holes.bin", 64 << 20, [(1 << 20, 4096), (40 << 20, 100)], "holes")
sparse_file(f"{t}/sparse/all-hole.bin", 10 << 20, [], "all-hole")
sparse_file(f"{t}/sparse/leading-hole.bin", (8 << 20) + 5, [(8 << 20, 5)], "leading")
# Unwritten extents: the image's copy is fallocated, then the two pieces are written.
sparse_file(f"{t}/prealloc/unwritten.bin", 8 << 20, [(1 << 20, 65536), (5 << 20, 4096)],
            "unwritten")
put(f"{t}/prealloc/beyond-eof.bin", rand("beyond-eof", 100_000))
# Reflinks: the image's copy shares the original's extents except one rewritten block.
original = rand("reflink", 2 << 20)
put(f"{t}/reflink/original", original)
copy = bytearray(original)
copy[1 << 20:(1 << 20) + 4096] = rand("reflink-cow", 4096)
put(f"{t}/reflink/copy", bytes(copy))
# 2 100 data blocks with a hole after each: 2 100 extents.
sparse_file(f"{t}/frag/fragmented.bin", 4199 * 4096 + 4096,
            [(i * 4096, 4096) for i in range(0, 4200, 2)], "fragmented")
os.makedirs(f"{t}/huge")
for i in range(1, 100_001):
    os.close(os.open(f"{t}/huge/entry-{i:06d}", os.O_CREAT | os.O_WRONLY, 0o644))
put(f"{t}/huge/zz-nonempty.txt", "the only file in /huge with contents\n")
for name in ("1906.txt", "1969.txt", "2039.txt", "2286.txt", "nanoseconds.txt"):
    put(f"{t}/times/{name}", f"{name}\n")
put(f"{t}/owners/u1000", "uid 1000\n", owner=(1000, 1000))
mkdirs(f"{t}/perms/sticky-dir", 0o1777)

# --- xfs-nrext64: many small files (many inode chunks) and a fragmented file ---------
t = f"{trees}/xfs-nrext64"
put(f"{t}/etc/os-release", 'NAME="amiscan XFS test"\nID=amiscan-xfs\nVERSION_ID="1"\n')
for d in range(40):
    for i in range(100):
        put(f"{t}/many/d{d:02d}/f{i:03d}", f"d{d:02d}/f{i:03d}\n" * (i % 5))
sparse_file(f"{t}/frag/fragmented.bin", 1199 * 4096 + 4096,
            [(i * 4096, 4096) for i in range(0, 1200, 2)], "nrext64-fragmented")

# --- xfs-dirty: what is on disk before the mount whose changes stay in the log -------
t = f"{trees}/xfs-dirty"
for i in range(20):
    put(f"{t}/base/file-{i:02d}", rand(f"dirty/{i}", 1000 * i))
put(f"{t}/base/sub/readme.txt", "written by mkfs.xfs -p, before the dirty mount\n")

# --- Amazon Linux 2023 and RHEL 9: roots with leftovers, /boot, ESPs ----------------
def passwd(t, user, uid, home):
    put(f"{t}/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\n"
        "bin:x:1:1:bin:/bin:/sbin/nologin\n"
        "sshd:x:74:74:Privilege-separated SSH:/usr/share/empty.sshd:/sbin/nologin\n"
        f"{user}:x:{uid}:{uid}:Cloud User:{home}:/bin/bash\n")
    put(f"{t}/etc/group", f"root:x:0:\nbin:x:1:\nsshd:x:74:\nwheel:x:10:{user}\n{user}:x:{uid}:\n")

def leaky_root(t, distro):
    if distro == "al2023":
        put(f"{t}/etc/os-release",
            'NAME="Amazon Linux"\nVERSION="2023"\nID="amzn"\nID_LIKE="fedora"\n'
            'VERSION_ID="2023"\nPLATFORM_ID="platform:al2023"\n'
            'PRETTY_NAME="Amazon Linux 2023.6.20241212"\nANSI_COLOR="0;33"\n'
            'CPE_NAME="cpe:2.3:o:amazon:amazon_linux:2023"\n'
            'HOME_URL="https://aws.amazon.com/linux/amazon-linux-2023/"\n')
        user, home = "ec2-user", "/home/ec2-user"
        put(f"{t}/etc/system-release", "Amazon Linux release 2023.6.20241212 (Amazon Linux)\n")
    else:
        put(f"{t}/etc/os-release",
            'NAME="Red Hat Enterprise Linux"\nVERSION="9.4 (Plow)"\nID="rhel"\n'
            'ID_LIKE="fedora"\nVERSION_ID="9.4"\nPLATFORM_ID="platform:el9"\n'
            'PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"\n'
            'CPE_NAME="cpe:/o:redhat:enterprise_linux:9::baseos"\n')
        user, home = "cloud-user", "/home/cloud-user"
        put(f"{t}/etc/redhat-release", "Red Hat Enterprise Linux release 9.4 (Plow)\n")
    passwd(t, user, 1000, home)
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
    mkdirs(f"{t}/boot/efi", 0o700)
    for d in ("usr/bin", "usr/lib", "usr/lib64", "proc", "sys", "dev", "run"):
        mkdirs(f"{t}/{d}")
    for link, to in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"),
                     ("lib64", "usr/lib64")):
        os.symlink(to, f"{t}/{link}")

def esp(t, vendor):
    put(f"{t}/EFI/BOOT/BOOTX64.EFI", rand(f"{vendor}/bootx64", 90_000))
    put(f"{t}/EFI/BOOT/fbx64.efi", rand(f"{vendor}/fbx64", 60_000))
    put(f"{t}/EFI/{vendor}/grubx64.efi", rand(f"{vendor}/grubx64", 150_000))
    put(f"{t}/EFI/{vendor}/shimx64.efi", rand(f"{vendor}/shimx64", 95_000))
    put(f"{t}/EFI/{vendor}/BOOTX64.CSV",
        f"shimx64.efi,{vendor},,This is the boot entry for {vendor}\n")

leaky_root(f"{trees}/xfs-al2023-root", "al2023")
leaky_root(f"{trees}/xfs-rhel-root", "rhel")
esp(f"{trees}/xfs-al2023-efi", "amzn")
esp(f"{trees}/xfs-rhel-efi", "redhat")
b = f"{trees}/xfs-rhel-boot"
kernel = "5.14.0-427.13.1.el9_4.x86_64"
put(f"{b}/vmlinuz-{kernel}", rand("vmlinuz", 300_000), 0o755)
put(f"{b}/initramfs-{kernel}.img", rand("initramfs", 700_000), 0o600)
put(f"{b}/System.map-{kernel}", "ffffffff81000000 T _stext\n", 0o600)
put(f"{b}/config-{kernel}", "CONFIG_XFS_FS=m\n")
put(f"{b}/grub2/grub.cfg", "set default=0\nblscfg\n", 0o600)
put(f"{b}/grub2/grubenv", "# GRUB Environment Block\n" + "#" * 999, 0o600)
put(f"{b}/loader/entries/0123456789abcdef0123456789abcdef-{kernel}.conf",
    f"title Red Hat Enterprise Linux (9.4)\nversion {kernel}\nlinux /vmlinuz-{kernel}\n"
    f"initrd /initramfs-{kernel}.img\noptions root=UUID=7d4c2b1a-8e9f-4a3b-9c5d-e6f7a8b9c0d1 ro\n")
mkdirs(f"{b}/efi", 0o700)
PY

# Leftovers that must be generated: host keys, an authorized key, AWS credentials.
for distro in al2023 rhel; do
    t="$trees/xfs-$distro-root"
    ssh-keygen -q -t ed25519 -N '' -C "root@build" -f "$t/etc/ssh/ssh_host_ed25519_key" </dev/null
    ssh-keygen -q -t ecdsa -N '' -C "root@build" -f "$t/etc/ssh/ssh_host_ecdsa_key" </dev/null
    ssh-keygen -q -t ed25519 -N '' -C "builder@pipeline" -f "$tmp/builder" </dev/null
    cp "$tmp/builder.pub" "$t/root/.ssh/authorized_keys"
    chmod 600 "$t/root/.ssh/authorized_keys"
    rm -f "$tmp/builder" "$tmp/builder.pub"
    # A well-formed key pair made of random characters (not a documented example key).
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
done
cat >"$trees/xfs-al2023-root/etc/fstab" <<EOF
#
UUID=$AL_ROOT_UUID     /           xfs    defaults,noatime  1   1
UUID=${AL_ESP_ID:0:4}-${AL_ESP_ID:4:4}        /boot/efi       vfat    defaults,noatime 0 2
EOF
cat >"$trees/xfs-rhel-root/etc/fstab" <<EOF
UUID=$RHEL_ROOT_UUID /                       xfs     defaults        0 0
UUID=$RHEL_BOOT_UUID /boot                   xfs     defaults        0 0
UUID=${RHEL_ESP_ID:0:4}-${RHEL_ESP_ID:4:4}          /boot/efi               vfat    defaults        0 2
EOF

# Sealed roots: the rule images' sealed tree (every built-in rule passes on it), as the
# distribution's root: its os-release, its fstab, and the mount points.
for distro in al2023 rhel; do
    t="$trees/xfs-$distro-sealed-root"
    cp -a "$build/rules/sealed/tree" "$t"
    cp "$trees/xfs-$distro-root/etc/os-release" "$trees/xfs-$distro-root/etc/fstab" "$t/etc/"
    rm -f "$t/etc/debian_version"
    mkdir -p "$t/boot/efi"
    chmod 700 "$t/boot/efi"
done

# Fixed modification times for everything (children before their directories, symlinks
# themselves), with nanoseconds except in the FAT trees (FAT keeps two-second times). The
# root of each tree is left alone: it becomes a filesystem's root directory.
python3 - "$trees" <<'PY'
import os, sys, zlib
trees = sys.argv[1]
special = {
    b"times/1906.txt": -2_000_000_000 * 10**9 + 1,
    b"times/1969.txt": -31_536_000 * 10**9 + 500_000_000,
    b"times/2039.txt": 2_200_000_000 * 10**9 + 999_999_999,
    b"times/2286.txt": 10_000_000_000 * 10**9,
    b"times/nanoseconds.txt": 1_234_567_890 * 10**9 + 123_456_789,
}
for tree in sorted(os.listdir(trees)):
    top = os.path.join(trees, tree).encode()
    fat = tree.endswith("-efi")
    for dirpath, dirnames, filenames in os.walk(top, topdown=False):
        for name in filenames + dirnames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            seconds = 1_000_000_000 + 2 * (zlib.crc32(rel) % 150_000_000)
            ns = seconds * 10**9 + (0 if fat else zlib.crc32(rel + b"#ns") % 10**9)
            ns = special.get(rel, ns)
            os.utime(path, ns=(ns, ns), follow_symlinks=False)
PY

# ---------------------------------------------------------------------------------------
# Images.
# ---------------------------------------------------------------------------------------
img="$tmp"
mnt="$tmp/mnt"
mkdir -p "$mnt"

# mount_fs FSFILE: mounts it at $mnt.
mount_fs() {
    mount -o loop,noatime "$1" "$mnt"
    mounts+=("$mnt")
}
# unmount_fs: unmounts $mnt.
unmount_fs() {
    umount "$mnt"
    mounts=()
}
# mkxfs_proto OUT SIZE TREE MAX-SYMLINK MKFS-ARGS...: mkfs.xfs -p of TREE in a sparse file
# (no mount), leaving out symlinks with targets longer than MAX-SYMLINK bytes.
mkxfs_proto() {
    local file="$1" size="$2" tree="$3" max_symlink="$4"
    shift 4
    rm -f "$file"
    truncate -s "$size" "$file"
    python3 "$tool" proto "$tree" "$max_symlink" >"$tmp/proto"
    (cd "$tree" && mkfs.xfs -q -f "$@" -p "$tmp/proto" "$file")
}
# finish_mounted FSFILE TREE: sets the tree's times and sticky bits on the mounted
# filesystem and checks, through the kernel, that it equals the tree.
finish_mounted() {
    python3 "$tool" apply "$2" "$mnt"
    python3 "$tool" compare "$2" "$mnt"
}
# mkxfs OUT SIZE TREE MKFS-ARGS...: mkfs.xfs -p, then times, sticky bits and remote
# symlinks on a mount. mkfs.xfs 6.1 -p writes the blocks of remote symlinks on v5 without
# their header (magic, owner, CRC), which the kernel rejects as corrupt; so the proto file
# holds only the symlinks that fit in a 512-byte v5 inode (336 bytes of literal area), and
# the kernel makes the others.
mkxfs() {
    local file="$1" size="$2" tree="$3"
    shift 3
    mkxfs_proto "$file" "$size" "$tree" 336 "$@"
    mount_fs "$file"
    finish_mounted "$file" "$tree"
    unmount_fs
    check_fs "$file"
}
# check_fs FSFILE: xfs_repair -n finds nothing to repair.
check_fs() {
    local log
    if ! log="$(xfs_repair -n "$1" 2>&1)"; then
        echo "build-xfs-images.sh: xfs_repair -n $1 found problems:" >&2
        echo "$log" >&2
        exit 1
    fi
}
# fragment SRC DST: rewrites DST (on the mount) block by block from SRC with direct I/O,
# writing only SRC's data blocks, so that each becomes an extent of its own.
fragment() {
    local src="$1" dst="$2" args=() at
    rm -f "$dst"
    while read -r at; do
        args+=(-c "pwrite -q -i $src -s $at $at 4096")
    done < <(python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
pos = 0
while pos < size:
    try:
        data = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    hole = os.lseek(fd, data, os.SEEK_HOLE)
    for at in range(data, hole, 4096):
        print(at)
    pos = hole' "$src")
    xfs_io -d -f "${args[@]}" -c "truncate $(stat -c %s "$src")" "$dst"
}
check() { python3 "$tool" "$@"; }
# step NAME: says how long the build has taken so far (shown when a test's build fails).
step() { echo "build-xfs-images.sh: $((SECONDS - started)) s: $1" >&2; }

# 1. xfs-v5.img: defaults, mkfs.xfs -p.
step "1. xfs-v5.img"
mkxfs "$img/xfs-v5.img" 512M "$trees/xfs-v5" -m uuid="$V5_UUID" -L xfs-v5
check dir-form "$img/xfs-v5.img" /dirs/empty shortform
check dir-form "$img/xfs-v5.img" /dirs/short shortform
check dir-form "$img/xfs-v5.img" /dirs/block block
check dir-form "$img/xfs-v5.img" /dirs/leaf leaf
check dir-form "$img/xfs-v5.img" /dirs/node node
check inode "$img/xfs-v5.img" /links/len-300 1 0
check inode "$img/xfs-v5.img" /links/len-400 2 1
check inode "$img/xfs-v5.img" /links/len-1000 2 1

# 2. xfs-v5-mounted.img: defaults, cp -a, then what only xfs_io makes.
step "2. xfs-v5-mounted.img"
t="$trees/xfs-v5-mounted"
rm -f "$img/xfs-v5-mounted.img"
truncate -s 512M "$img/xfs-v5-mounted.img"
mkfs.xfs -q -f -L xfs-mounted "$img/xfs-v5-mounted.img"
mount_fs "$img/xfs-v5-mounted.img"
cp -a "$t/." "$mnt/"
rm -f "$mnt/prealloc/unwritten.bin" "$mnt/prealloc/beyond-eof.bin" "$mnt/reflink/copy"
xfs_io -f -c "falloc 0 8m" -c "pwrite -q -i $t/prealloc/unwritten.bin -s 1m 1m 64k" \
    -c "pwrite -q -i $t/prealloc/unwritten.bin -s 5m 5m 4k" -c fsync \
    "$mnt/prealloc/unwritten.bin"
xfs_io -f -c "pwrite -q -i $t/prealloc/beyond-eof.bin 0 100000" -c "falloc -k 0 16m" -c fsync \
    "$mnt/prealloc/beyond-eof.bin"
cp --reflink=always "$mnt/reflink/original" "$mnt/reflink/copy"
xfs_io -c "pwrite -q -i $t/reflink/copy -s 1m 1m 4k" -c fsync "$mnt/reflink/copy"
fragment "$t/frag/fragmented.bin" "$mnt/frag/fragmented.bin"
finish_mounted "$img/xfs-v5-mounted.img" "$t"
check fiemap-has "$mnt/prealloc/unwritten.bin" 0x800
check fiemap-has "$mnt/reflink/copy" 0x2000
check sparse "$mnt/sparse/holes.bin"
check sparse "$mnt/sparse/leading-hole.bin"
if [[ $(( $(stat -c %b "$mnt/prealloc/beyond-eof.bin") * 512 )) -lt $((16 << 20)) ]]; then
    echo "build-xfs-images.sh: prealloc/beyond-eof.bin has no blocks past its end" >&2
    exit 1
fi
unmount_fs
check_fs "$img/xfs-v5-mounted.img"
check inode "$img/xfs-v5-mounted.img" /frag/fragmented.bin 3 2100
check dir-form "$img/xfs-v5-mounted.img" /huge node 3

# 3. xfs-v4.img: v4 without ftype; not mountable, so times go straight into the inodes.
step "3. xfs-v4.img"
mkxfs_proto "$img/xfs-v4.img" 512M "$trees/xfs-v4" 1024 -m crc=0 -n ftype=0 -L xfs-v4
python3 "$tool" patch-v4 "$trees/xfs-v4" "$img/xfs-v4.img"
check_fs "$img/xfs-v4.img"
check dir-form "$img/xfs-v4.img" /dirs/short shortform
check dir-form "$img/xfs-v4.img" /dirs/block block
check dir-form "$img/xfs-v4.img" /dirs/leaf leaf
check dir-form "$img/xfs-v4.img" /dirs/node node
check inode "$img/xfs-v4.img" /links/short 1 0
check inode "$img/xfs-v4.img" /links/len-258 2 1
if ! xfs_db -r -c "path /perms/sticky-dir" -c "print core.mode" "$img/xfs-v4.img" |
    grep -q 'core.mode = 041777'; then
    echo "build-xfs-images.sh: xfs-v4.img: the sticky bit was not written" >&2
    exit 1
fi

# 4. xfs-512inode-64kdir.img: 64 KiB directory blocks.
step "4. xfs-512inode-64kdir.img"
mkxfs "$img/xfs-512inode-64kdir.img" 512M "$trees/xfs-64kdir" -i size=512 -n size=65536 \
    -L xfs-64kdir
check dir-form "$img/xfs-512inode-64kdir.img" /dirs/short shortform
check dir-form "$img/xfs-512inode-64kdir.img" /dirs/block block
check dir-form "$img/xfs-512inode-64kdir.img" /dirs/leaf leaf

# 5. xfs-sparse-nrext64.img: sparse inode chunks and 64-bit extent counters, mounted copy.
step "5. xfs-sparse-nrext64.img"
t="$trees/xfs-nrext64"
rm -f "$img/xfs-sparse-nrext64.img"
truncate -s 512M "$img/xfs-sparse-nrext64.img"
mkfs.xfs -q -f -i sparse=1,nrext64=1 -L xfs-nrext64 "$img/xfs-sparse-nrext64.img"
mount_fs "$img/xfs-sparse-nrext64.img"
cp -a "$t/." "$mnt/"
fragment "$t/frag/fragmented.bin" "$mnt/frag/fragmented.bin"
finish_mounted "$img/xfs-sparse-nrext64.img" "$t"
unmount_fs
check_fs "$img/xfs-sparse-nrext64.img"
if ! xfs_db -r -c version "$img/xfs-sparse-nrext64.img" | grep -q NREXT64; then
    echo "build-xfs-images.sh: xfs-sparse-nrext64.img lacks the nrext64 feature" >&2
    exit 1
fi
check inode "$img/xfs-sparse-nrext64.img" /frag/fragmented.bin 3 600

# 6. xfs-1k.img: 1 KiB blocks.
step "6. xfs-1k.img"
mkxfs "$img/xfs-1k.img" 512M "$trees/xfs-1k" -b size=1024 -L xfs-1k
check dir-form "$img/xfs-1k.img" /dirs/short shortform
check dir-form "$img/xfs-1k.img" /dirs/block block
check dir-form "$img/xfs-1k.img" /dirs/leaf leaf
check dir-form "$img/xfs-1k.img" /dirs/node node
check inode "$img/xfs-1k.img" /links/len-1000 2 1

# 7. xfs-dirty.img: a dirty log. The second mount's changes reach only the log.
step "7. xfs-dirty.img"
mkxfs "$img/xfs-dirty.img" 512M "$trees/xfs-dirty" -L xfs-dirty
mount_fs "$img/xfs-dirty.img"
mkdir "$mnt/new"
for i in 1 2 3; do echo "only in the log $i" >"$mnt/new/file-$i"; done
sync
xfs_io -x -c shutdown "$mnt"
unmount_fs
if ! xfs_logprint -t "$img/xfs-dirty.img" 2>/dev/null | grep -q 'state: <DIRTY>'; then
    echo "build-xfs-images.sh: xfs-dirty.img: the log is not dirty" >&2
    exit 1
fi

# 8-9. Amazon Linux 2023: p127 BIOS boot, p128 ESP, p1 XFS root labelled `/`.
step "8-9. Amazon Linux 2023"
python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random("core.img").randbytes(100_000))' \
    >"$tmp/core.img"
rm -f "$tmp/al-esp.fs"
truncate -s 10M "$tmp/al-esp.fs"
mkfs.vfat -F 16 -i "$AL_ESP_ID" "$tmp/al-esp.fs" >/dev/null
# -s recursive, -p keep attributes, -m keep modification times (written as UTC: TZ=UTC).
mcopy -s -p -m -i "$tmp/al-esp.fs" "$trees/xfs-al2023-efi/EFI" ::/
for case in al2023 al2023-sealed; do
    disk="$img/xfs-$case.img"
    rm -f "$disk"
    truncate -s $((12 + 2048 + 1))M "$disk"
    sgdisk -U "$AL_DISK_GUID" \
        -n 127:2048:4095 -t 127:EF02 -c 127:"BIOS Boot Partition" -u 127:"$AL_P127_GUID" \
        -n 128:4096:24575 -t 128:EF00 -c 128:"EFI System Partition" -u 128:"$AL_P128_GUID" \
        -n 1:24576:+2048M -t 1:8300 -c 1:"Linux" -u 1:"$AL_P1_GUID" \
        "$disk" >/dev/null
    mkxfs "$tmp/al-root.fs" "$(check part-size "$disk" 1)" "$trees/xfs-$case-root" \
        -L / -m uuid="$AL_ROOT_UUID"
    check place-part "$disk" 127 "$tmp/core.img"
    check place-part "$disk" 128 "$tmp/al-esp.fs"
    check place-part "$disk" 1 "$tmp/al-root.fs"
    rm -f "$tmp/al-root.fs"
done

# 10-11. RHEL 9: p1 BIOS boot, p2 ESP, p3 XFS /boot labelled `boot`, p4 XFS root `root`.
step "10-11. RHEL 9"
rm -f "$tmp/rhel-esp.fs"
truncate -s 200M "$tmp/rhel-esp.fs"
mkfs.vfat -F 16 -i "$RHEL_ESP_ID" "$tmp/rhel-esp.fs" >/dev/null
mcopy -s -p -m -i "$tmp/rhel-esp.fs" "$trees/xfs-rhel-efi/EFI" ::/
for case in rhel rhel-sealed; do
    disk="$img/xfs-$case.img"
    rm -f "$disk"
    truncate -s $((1 + 1 + 200 + 512 + 2048 + 1))M "$disk"
    sgdisk -U "$RHEL_DISK_GUID" \
        -n 1:2048:+1M -t 1:EF02 -c 1:"p.legacy" \
        -n 2:0:+200M -t 2:EF00 -c 2:"p.UEFI" \
        -n 3:0:+512M -t 3:8300 -c 3:"p.xbootldr" \
        -n 4:0:+2048M -t 4:8300 -c 4:"p.lxroot" \
        "$disk" >/dev/null
    mkxfs "$tmp/rhel-boot.fs" "$(check part-size "$disk" 3)" "$trees/xfs-rhel-boot" \
        -L boot -m uuid="$RHEL_BOOT_UUID"
    mkxfs "$tmp/rhel-root.fs" "$(check part-size "$disk" 4)" "$trees/xfs-$case-root" \
        -L root -m uuid="$RHEL_ROOT_UUID"
    check place-part "$disk" 1 "$tmp/core.img"
    check place-part "$disk" 2 "$tmp/rhel-esp.fs"
    check place-part "$disk" 3 "$tmp/rhel-boot.fs"
    check place-part "$disk" 4 "$tmp/rhel-root.fs"
    rm -f "$tmp/rhel-boot.fs" "$tmp/rhel-root.fs"
done
rm -f "$tmp"/*.fs "$tmp/core.img" "$tmp/proto" "$tool"
rmdir "$mnt"

# ---------------------------------------------------------------------------------------
# Into place: the old build moves aside, the new one in, and the stamp is written last.
# ---------------------------------------------------------------------------------------
rm -f "$stamp"
old="$(mktemp -d "$build/.old-xfs.XXXXXX")"
mkdir -p "$build/trees"
find "$build" -maxdepth 1 -name 'xfs-*.img' -exec mv -t "$old" {} +
find "$build/trees" -mindepth 1 -maxdepth 1 -name 'xfs-*' -exec mv -t "$old" {} +
find "$trees" -mindepth 1 -maxdepth 1 -exec mv -t "$build/trees" {} +
find "$tmp" -maxdepth 1 -name 'xfs-*.img' -exec mv -t "$build" {} +
echo "$want" >"$stamp.new"
mv "$stamp.new" "$stamp"
rm -rf "$old"
echo "build-xfs-images.sh: built $(find "$build" -maxdepth 1 -name 'xfs-*.img' | wc -l) images in $((SECONDS - started)) s" >&2
