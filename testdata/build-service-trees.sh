#!/usr/bin/env bash
# Builds the guest trees that tests/services_facts.rs and tests/packages_facts.rs read,
# from real Debian packages and real tools, into testdata/build/services/ (git-ignored),
# and records what the real tools say about each tree next to it (the oracles).
#
# Runs once: when testdata/build/services/.complete holds the sha256 of this script, it
# exits at once. Otherwise it builds into a temporary directory inside that directory,
# moves the results into place and writes the stamp last, so an interrupted build is
# simply redone. Callers serialise runs: `flock testdata/build/.services.lock bash
# testdata/build-service-trees.sh`. Downloaded .debs are kept in services/debs/ across
# rebuilds.
#
# Needs: apt-get (network access to Debian's archive, for `apt-get download`), dpkg-deb,
# dpkg-query, systemctl (systemd 252, Debian 12), update-inetd, rpm and rpmbuild (Debian's
# rpm 4.18, sqlite backend and the read-only bdb_ro backend), db5.3_load (db5.3-util),
# sqlite3, python3.
#
# Layout (file names are the contract with the tests):
#   trees/systemd-split    Debian 12 packages (systemd, openssh-server, vsftpd,
#                          openbsd-inetd, inetutils-telnetd, xinetd, rsh-redone-server,
#                          tftpd-hpa, avahi-daemon, rpcbind, cups-daemon) unpacked with a
#                          real /lib; units enabled, disabled, masked and linked with
#                          `systemctl --root`, plus hand-made odd links; inetd.conf written
#                          by update-inetd; xinetd services; SysV rc links
#   trees/systemd-merged   the same with merged /usr (/lib -> usr/lib, /bin, /sbin)
#   trees/preset-custom    packages only, /etc/machine-id "uninitialized", preset files in
#                          /etc, /usr/lib and /lib (one masked with /dev/null), ssh already
#                          enabled, rpcbind masked
#   trees/preset-debian    packages only (Debian's own 90-systemd.preset), no machine-id
#   trees/preset-none      merged /usr, no preset files at all, no machine-id
#   oracle/TREE.list-unit-files   `systemctl --root list-unit-files` (unit, state)
#   oracle/TREE.is-enabled        `systemctl --root is-enabled` for every unit file and
#                                 the instances used (unit, state)
#   oracle/TREE.preset-links      preset trees: symlinks `systemctl --root preset-all
#                                 --preset-mode=enable-only` adds to a copy ("path target")
#   trees/dpkg-host        this machine's /var/lib/dpkg/status
#   trees/dpkg-states      a status file with every dpkg state, and status.d/ (distroless)
#                          built from real control paragraphs
#   oracle/dpkg-*.query    `dpkg-query --admindir -W` (package, version, status word)
#   trees/rpm-sqlite       rpmdb.sqlite made by rpm (packages built with rpmbuild: epochs,
#                          an 18 KiB header, 150 subpackages) in /usr/lib/sysimage/rpm,
#                          /var/lib/rpm a symlink to it (Fedora's layout)
#   trees/rpm-wal          rpm-sqlite after a committed delete that is still only in
#                          rpmdb.sqlite-wal (not checkpointed)
#   trees/rpm-bdb          /var/lib/rpm/Packages: a Berkeley DB hash (little-endian, 4 KiB
#                          pages) holding the same header blobs, written by db5.3_load
#   trees/rpm-bdb-be       the same, big-endian with 512-byte pages (overflow chains)
#   trees/rpm-ndb          /usr/lib/sysimage/rpm/Packages.db (SUSE ndb; not readable)
#   trees/rpm-truncated    rpm-sqlite with rpmdb.sqlite cut in half
#   trees/rpm-flipped      rpm-sqlite with the Packages root page's type byte flipped
#   oracle/rpm-*.qa        `rpm -qa --dbpath` (name epoch version release arch)
#   trees/apk              /lib/apk/db/installed, hand-written to apk's documented format
#   trees/sqlite/deep.sqlite  a database written by Python's sqlite3 (512-byte pages, every
#                          value type, 200 KiB values, deleted rows); oracle/sqlite-deep.json
#                          its rows as SQLite reads them
set -euo pipefail
export LC_ALL=C TZ=UTC
# update-inetd must not try to signal or restart an inetd on the build machine.
export UPDATE_INETD_FAKE_IT=1
# systemctl must not run the tree's SysV helpers (update-rc.d in a chroot): SysV links are
# made by hand below.
export SYSTEMCTL_SKIP_SYSV=1
export PATH="$PATH:/usr/sbin:/sbin"

# Physical paths: systemctl --root resolves drop-in paths and refuses those that leave the
# root as spelled, so a root reached through a symlink makes units look broken.
script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")"
out="$(dirname "$script")/build/services"
stamp="$out/.complete"
want="$(sha256sum "$script" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

for tool in apt-get dpkg-deb dpkg-query systemctl update-inetd rpm rpmbuild db5.3_load sqlite3 \
    python3 sha256sum; do
    command -v "$tool" >/dev/null || { echo "build-service-trees.sh: $tool is required" >&2; exit 1; }
done

started=$SECONDS
mkdir -p "$out/debs"
out="$(cd "$out" && pwd -P)"
rm -rf "$out"/.tmp.*
tmp="$(mktemp -d "$out/.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
trees="$tmp/trees"
oracle="$tmp/oracle"
mkdir -p "$trees" "$oracle"

# ---------------------------------------------------------------------------------------
# Real packages.
# ---------------------------------------------------------------------------------------
packages=(systemd openssh-server vsftpd openbsd-inetd inetutils-telnetd xinetd rsh-redone-server
    tftpd-hpa avahi-daemon rpcbind cups-daemon)
missing=()
for p in "${packages[@]}"; do
    compgen -G "$out/debs/${p}_*.deb" >/dev/null || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    if ! (cd "$out/debs" && apt-get download -q "${missing[@]}" 2>&1); then
        # A fresh machine may have no package lists yet.
        apt-get update -qq
        (cd "$out/debs" && apt-get download -q "${missing[@]}")
    fi
fi
debs=()
for p in "${packages[@]}"; do
    debs+=("$(compgen -G "$out/debs/${p}_*.deb" | sort | tail -n1)")
done

# Unpacks every package into $1; with "merged" as $2, lays it out with merged /usr.
unpack() {
    local tree="$1" layout="${2:-split}"
    local stage="$tmp/stage.$$"
    rm -rf "$stage"
    mkdir -p "$stage"
    for deb in "${debs[@]}"; do
        dpkg-deb -x "$deb" "$stage"
    done
    mkdir -p "$tree"
    if [[ "$layout" == merged ]]; then
        mkdir -p "$tree/usr/lib" "$tree/usr/bin" "$tree/usr/sbin"
        for d in lib bin sbin; do
            if [[ -d "$stage/$d" ]]; then
                cp -a "$stage/$d/." "$tree/usr/$d/"
                rm -rf "${stage:?}/$d"
            fi
            ln -s "usr/$d" "$tree/$d"
        done
    fi
    cp -a "$stage/." "$tree/"
    rm -rf "$stage"
    mkdir -p "$tree/etc/systemd/system" "$tree/var/lib/dpkg"
}

# systemctl acting on a tree; its chatter about created links is not needed.
sc() {
    local tree="$1"
    shift
    systemctl --root="$tree" "$@" >/dev/null 2>"$tmp/sc.err" || {
        echo "systemctl --root=$tree $*:" >&2
        cat "$tmp/sc.err" >&2
        return 1
    }
}

# Units an administrator adds in /etc, and vendor-side oddities.
add_custom_units() {
    local t="$1" etc="$1/etc/systemd/system" lib="$1/lib/systemd/system"
    cat >"$etc/telnet.socket" <<'EOF'
[Unit]
Description=Telnet server socket

[Socket]
ListenStream=23
Accept=yes

[Install]
WantedBy=sockets.target
EOF
    cat >"$etc/telnet@.service" <<'EOF'
[Unit]
Description=Telnet server for %I

[Service]
ExecStart=-/usr/sbin/telnetd
StandardInput=socket
EOF
    cat >"$etc/worker@.service" <<'EOF'
[Unit]
Description=Worker %i

[Service]
ExecStart=/usr/local/bin/worker --name %i

[Install]
WantedBy=multi-user.target
DefaultInstance=main
EOF
    cat >"$etc/needed.service" <<'EOF'
[Unit]
Description=Required by multi-user

[Service]
ExecStart=@/usr/local/sbin/needed-daemon needed
Type=simple

[Install]
RequiredBy=multi-user.target
EOF
    cat >"$lib/vendor-daemon.service" <<'EOF'
[Unit]
Description=Enabled by its package with a link, not by systemctl

[Service]
ExecStart=/usr/sbin/vendord --foreground

[Install]
WantedBy=multi-user.target
EOF
    mkdir -p "$lib/multi-user.target.wants"
    ln -s ../vendor-daemon.service "$lib/multi-user.target.wants/vendor-daemon.service"
    cat >"$lib/nulled.service" <<'EOF'
[Service]
ExecStart=/usr/sbin/nulled

[Install]
WantedBy=multi-user.target
EOF
    mkdir -p "$t/opt/linked"
    cat >"$t/opt/linked/linked.service" <<'EOF'
[Service]
ExecStart=/opt/linked/bin/linked-daemon

[Install]
WantedBy=multi-user.target
EOF
}

# The enablement state the systemd tests check.
configure_systemd() {
    local t="$1" etc="$1/etc/systemd/system"
    echo 3d1219c7c4c5404aaa1f6d2a48adfda4 >"$t/etc/machine-id"
    add_custom_units "$t"
    sc "$t" enable ssh.service vsftpd.service rpcbind.service avahi-daemon.service cups.service \
        telnet.socket worker@.service needed.service getty@tty2.service inetd.service
    sc "$t" link /opt/linked/linked.service
    sc "$t" enable linked.service
    # Disabling follows Also= (avahi-daemon.socket goes too).
    sc "$t" disable avahi-daemon.service
    # Masked after being enabled: its links stay, but it never starts.
    sc "$t" mask cups.service
    # An empty file masks as well as a link to /dev/null does.
    : >"$etc/rpcbind.service"
    # By hand: an alias not listed in Alias=, a link named by a vendor alias, a dangling
    # link, a regular file and a /dev/null link in a .wants directory.
    ln -s /lib/systemd/system/vsftpd.service "$etc/ftp.service"
    ln -s /lib/systemd/system/openbsd-inetd.service "$etc/multi-user.target.wants/openbsd-inetd.service"
    ln -s /lib/systemd/system/gone.service "$etc/multi-user.target.wants/gone.service"
    echo "not a link" >"$etc/multi-user.target.wants/not-a-link.service"
    ln -s /dev/null "$etc/multi-user.target.wants/nulled.service"
}

# Records systemctl's view of every unit file in the tree ($1) as oracle/$2.*.
record_states() {
    local t="$1" name="$2" try
    systemctl --root="$t" list-unit-files --no-legend --no-pager --full 2>/dev/null |
        awk '{print $1, $2}' | sort >"$oracle/$name.list-unit-files"
    # A unit systemctl cannot load ("bad") means the oracle is broken, not the tree.
    if grep ' bad$' "$oracle/$name.list-unit-files" >&2; then
        echo "build-service-trees.sh: systemctl --root=$t could not load the units above" >&2
        exit 1
    fi
    local units
    units="$(awk '{print $1}' "$oracle/$name.list-unit-files"; printf '%s\n' getty@tty1.service \
        getty@tty2.service worker@main.service telnet@1.service)"
    # One unit per call: is-enabled exits non-zero for a disabled unit and reports a
    # missing one on stderr, which would misalign a batch.
    local unit state
    for unit in $units; do
        state="$(systemctl --root="$t" is-enabled "$unit" 2>/dev/null)" || true
        echo "$unit ${state:-not-found}"
    done | sort >"$oracle/$name.is-enabled"
}

# The symlinks under $1/etc/systemd/system, as "path target" lines relative to the root.
links_of() {
    (cd "$1" && find etc/systemd/system -type l -printf '/%p %l\n' | sort)
}

# Applies presets to a copy of tree $1 and records the links that appeared as oracle/$2.
record_presets() {
    local t="$1" name="$2" copy="$tmp/preset-copy"
    links_of "$t" >"$tmp/before"
    rm -rf "$copy"
    cp -a "$t" "$copy"
    # Like the manager at first boot, preset-all goes on past units it cannot enable (two
    # units claiming one alias) and then exits non-zero; its log is kept beside the links.
    systemctl --root="$copy" preset-all --preset-mode=enable-only >/dev/null 2>"$tmp/preset.log" || true
    if grep 'Failed to discover\|Channel number out of range' "$tmp/preset.log" >&2; then
        echo "build-service-trees.sh: preset-all could not load units in $name" >&2
        exit 1
    fi
    sed "s|$copy||g" "$tmp/preset.log" | grep -v '^Created symlink' >"$oracle/$name.preset-log" || true
    links_of "$copy" >"$tmp/after"
    comm -13 "$tmp/before" "$tmp/after" >"$oracle/$name.preset-links"
    rm -rf "$copy"
}

# inetd.conf as Debian's packages leave it: group headers, entries added, enabled and
# disabled by the real update-inetd.
write_inetd() {
    local t="$1" conf="$1/etc/inetd.conf"
    cat >"$conf" <<'EOF'
# /etc/inetd.conf:  see inetd(8) for further informations.
#
# Internet superserver configuration database
#
#
# Lines starting with "#:LABEL:" or "#<off>#" should not
# be changed unless you know what you are doing!
#
# If you want to disable an entry so it isn't touched during
# package updates just comment it out with a single '#' character.
#
# Packages should modify this file by using update-inetd(8)
#
# <service_name> <sock_type> <proto> <flags> <user> <server_path> <args>
#
#:INTERNAL: Internal services
#discard		stream	tcp	nowait	root	internal
#discard		dgram	udp	wait	root	internal
#daytime		stream	tcp	nowait	root	internal
#time		stream	tcp	nowait	root	internal

#:STANDARD: These are standard services.

#:BSD: Shell, login, exec and talk are BSD protocols.

#:MAIL: Mail, news and uucp services.

#:INFO: Info services

#:BOOT: TFTP service is provided primarily for booting.  Most sites
#        run this only on machines acting as "boot servers."

#:RPC: RPC based services

#:HAM-RADIO: amateur-radio services

#:OTHER: Other services
EOF
    # update-inetd warns about an uninitialised value on every call; nothing else is said.
    ui() { update-inetd --file "$conf" "$@" 2> >(grep -v 'uninitialized value' >&2); }
    # inetutils-telnetd's postinst adds telnet disabled; the administrator enables it.
    ui --group STANDARD --add "#<off># telnet\tstream\ttcp\tnowait\troot\t/usr/sbin/tcpd\t/usr/sbin/telnetd"
    ui --enable telnet
    # rsh-redone-server's postinst; then login is disabled again.
    ui --group BSD --add "shell\t\tstream\ttcp\tnowait\troot\t/usr/sbin/tcpd\t/usr/sbin/in.rshd"
    ui --group BSD --add "login\t\tstream\ttcp\tnowait\troot\t/usr/sbin/tcpd\t/usr/sbin/in.rlogind"
    ui --disable login
    ui --group BOOT --add "tftp\t\tdgram\tudp\twait\troot\t/usr/sbin/in.tftpd\tin.tftpd -s /srv/tftp"
    # By hand: a host-address prefix, a default-address line, a user-commented entry.
    cat >>"$conf" <<'EOF'
127.0.0.1:
127.0.0.1:finger	stream	tcp	nowait	nobody	/usr/sbin/tcpd	/usr/sbin/in.fingerd
#ftp		stream	tcp	nowait	root	/usr/sbin/tcpd	/usr/sbin/in.ftpd
EOF
    mkdir -p "$t/etc/inetd.d"
    printf 'ntalk\tdgram\tudp4\twait\tnobody.tty\t/usr/sbin/in.ntalkd\tin.ntalkd\n' >"$t/etc/inetd.d/talk"
    printf 'daytime\tstream\ttcp\tnowait\troot\tinternal\n' >"$t/etc/inetd.d/daytime.dpkg-old"
}

# xinetd as packaged (every service in /etc/xinetd.d disabled) plus an administrator's
# changes: echo-stream enabled, a tftp service, a defaults `disabled` list, ignored files.
write_xinetd() {
    local t="$1" d="$1/etc/xinetd.d"
    python3 - "$d/echo" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
# Enable only the first (tcp) entry, as an administrator editing the file would.
text = text.replace("disable\t\t= yes", "disable\t\t= no", 1)
open(path, "w").write(text)
PY
    cat >"$d/tftp" <<'EOF'
service tftp
{
	socket_type	= dgram
	protocol	= udp
	wait		= yes
	user		= root
	server		= /usr/sbin/in.tftpd
	server_args	= -s /srv/tftp
	disable		= no
}
EOF
    cat >"$d/rsync" <<'EOF'
# enabled in the file, but listed in defaults' `disabled`
service rsync
{
	socket_type	= stream
	wait		= no
	user		= root
	server		= /usr/bin/rsync
	server_args	= --daemon
}
EOF
    cat >"$d/cvs" <<'EOF'
service cvspserver
{
	socket_type	= stream
	wait		= no
	user		= root
	server		= /usr/bin/cvs
	flags		= REUSE DISABLE
}
EOF
    cp "$d/tftp" "$d/tftp.dpkg-old"
    cp "$d/tftp" "$d/tftp~"
    python3 - "$t/etc/xinetd.conf" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
text = text.replace("defaults\n{\n", "defaults\n{\n\tdisabled = rsync\n", 1)
open(path, "w").write(text)
PY
}

write_sysv() {
    local t="$1"
    for rl in 2 3 4 5; do
        mkdir -p "$t/etc/rc$rl.d"
        ln -s ../init.d/tftpd-hpa "$t/etc/rc$rl.d/S01tftpd-hpa"
        ln -s ../init.d/openbsd-inetd "$t/etc/rc$rl.d/S01openbsd-inetd"
    done
    for rl in 0 1 6; do
        mkdir -p "$t/etc/rc$rl.d"
        ln -s ../init.d/tftpd-hpa "$t/etc/rc$rl.d/K01tftpd-hpa"
    done
    ln -s ../init.d/vsftpd "$t/etc/rc2.d/K01vsftpd"
    echo "# not a link" >"$t/etc/rc2.d/README"
}

# ---------------------------------------------------------------------------------------
# systemd, inetd, xinetd, SysV trees.
# ---------------------------------------------------------------------------------------
for layout in split merged; do
    t="$trees/systemd-$layout"
    unpack "$t" "$layout"
    configure_systemd "$t"
    write_inetd "$t"
    write_xinetd "$t"
    write_sysv "$t"
    record_states "$t" "systemd-$layout"
done

t="$trees/preset-custom"
unpack "$t"
add_custom_units "$t"
echo uninitialized >"$t/etc/machine-id"
sc "$t" enable ssh.service
sc "$t" mask rpcbind.service
mkdir -p "$t/etc/systemd/system-preset" "$t/usr/lib/systemd/system-preset"
cat >"$t/etc/systemd/system-preset/00-local.preset" <<'EOF'
# local policy
enable getty@.service tty3 tty4
disable avahi-daemon.*
  enable worker@.service
; a comment
enable telnet.socket
enable rpcbind.*
enable ssh.service
enable vendor-daemon.service extra words are ignored
bogus line
EOF
ln -s /dev/null "$t/etc/systemd/system-preset/90-systemd.preset"
cat >"$t/usr/lib/systemd/system-preset/50-vendor.preset" <<'EOF'
enable vsftpd.service
enable cups.service
disable cups.*
enable remote-fs.target
EOF
# Same name in /lib: hidden by the /usr/lib file only when they are the same directory.
cat >"$t/lib/systemd/system-preset/50-vendor.preset" <<'EOF'
disable vsftpd.service
EOF
cat >"$t/usr/lib/systemd/system-preset/99-default.preset" <<'EOF'
disable *
EOF
record_states "$t" preset-custom
record_presets "$t" preset-custom

t="$trees/preset-debian"
unpack "$t"
rm -f "$t/etc/machine-id"
record_states "$t" preset-debian
record_presets "$t" preset-debian

t="$trees/preset-none"
unpack "$t" merged
add_custom_units "$t"
rm -f "$t/etc/machine-id" "$t"/usr/lib/systemd/system-preset/*.preset
record_states "$t" preset-none
record_presets "$t" preset-none

# ---------------------------------------------------------------------------------------
# dpkg.
# ---------------------------------------------------------------------------------------
query() {
    dpkg-query --admindir="$1/var/lib/dpkg" -W -f='${Package} ${Version} ${db:Status-Status}\n' |
        sort >"$oracle/$2.query"
}

t="$trees/dpkg-host"
mkdir -p "$t/var/lib/dpkg"
cp /var/lib/dpkg/status "$t/var/lib/dpkg/status"
query "$t" dpkg-host

t="$trees/dpkg-states"
mkdir -p "$t/var/lib/dpkg/status.d"
{
    n=0
    for status in "install ok installed" "hold ok installed" "deinstall ok installed" \
        "install ok triggers-pending" "install ok triggers-awaited" "install ok unpacked" \
        "install ok half-configured" "install reinstreq half-installed" \
        "deinstall ok config-files" "purge ok not-installed"; do
        n=$((n + 1))
        word="${status##* }"
        # dpkg refuses trigger states without the trigger fields that explain them.
        extra=""
        [[ "$word" == triggers-pending ]] && extra="Triggers-Pending: ldconfig"$'\n'
        [[ "$word" == triggers-awaited ]] && extra="Triggers-Awaited: libc-bin"$'\n'
        cat <<EOF
Package: state-$word-$n
Status: $status
Priority: optional
Section: misc
Installed-Size: 12
Maintainer: Test <test@example.org>
Architecture: amd64
Version: 1.$n-1
${extra}Description: a package in state $status
 Continuation line: with a colon, which is not a field.
 .
 Package: not-a-package

EOF
    done
    # Multi-Arch: same, installed twice under one name.
    for arch in amd64 i386; do
        cat <<EOF
Package: libmulti1
Status: install ok installed
Architecture: $arch
Multi-Arch: same
Maintainer: Test <test@example.org>
Version: 2.0-1
Description: one name, two architectures

EOF
    done
} >"$t/var/lib/dpkg/status"
query "$t" dpkg-states
# Distroless: the control paragraphs of real packages, one file each, with md5sums.
for deb in "${debs[@]}"; do
    pkg="$(dpkg-deb -f "$deb" Package)"
    dpkg-deb -f "$deb" >"$t/var/lib/dpkg/status.d/$pkg"
    dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./md5sums >"$t/var/lib/dpkg/status.d/$pkg.md5sums" 2>/dev/null || true
    echo "$pkg $(dpkg-deb -f "$deb" Version)" >>"$oracle/dpkg-status-d.control"
done
sort -o "$oracle/dpkg-status-d.control" "$oracle/dpkg-status-d.control"

# ---------------------------------------------------------------------------------------
# rpm.
# ---------------------------------------------------------------------------------------
rb="$tmp/rpmbuild"
mkdir -p "$rb/SPECS"
cat >"$rb/SPECS/tiny.spec" <<'EOF'
Name: tiny-one
Version: 1.2.3
Release: 4.fc40
Epoch: 2
Summary: A tiny package with an epoch
License: MIT
BuildArch: noarch
%description
tiny
%files

%package -n tiny-two
Summary: No epoch
Version: 0.9
Release: 1
%description -n tiny-two
two
%files -n tiny-two
EOF
python3 - "$rb/SPECS/big.spec" <<'PY'
import random, sys
rng = random.Random(20261122)
words = ["rpm", "header", "overflow", "page", "sqlite", "blob", "chain", "audit"]
desc = "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(300))
subs = "".join(
    f"%package -n sub-{i:03d}\nSummary: subpackage {i}\nVersion: {i}.0\n"
    f"%description -n sub-{i:03d}\nsub {i}\n%files -n sub-{i:03d}\n\n"
    for i in range(1, 151))
open(sys.argv[1], "w").write(f"""Name: big-description
Version: 3.1
Release: 7.amzn2023
Summary: A header larger than a database page
License: MIT
%description
{desc}
%files

{subs}""")
PY
for spec in tiny big; do
    rpmbuild --quiet --define "_topdir $rb" --define "_build_id_links none" -bb "$rb/SPECS/$spec.spec" \
        >/dev/null 2>"$tmp/rpmbuild.err" || { cat "$tmp/rpmbuild.err" >&2; exit 1; }
done
mapfile -t rpms < <(find "$rb/RPMS" -name '*.rpm' | sort)

qa() {
    # bdb_ro warns about every index file it cannot find; only Packages is needed.
    rpm -qa --dbpath "$1" "${@:3}" --qf '%{NAME} %{EPOCH} %{VERSION} %{RELEASE} %{ARCH}\n' \
        2> >(grep -v '^warning: could not open' >&2) | sort >"$oracle/$2.qa"
}

t="$trees/rpm-sqlite"
db="$t/usr/lib/sysimage/rpm"
mkdir -p "$db" "$t/var/lib"
ln -s ../../usr/lib/sysimage/rpm "$t/var/lib/rpm"
rpm --dbpath "$db" --define '_db_backend sqlite' --initdb
rpm --dbpath "$db" --define '_db_backend sqlite' -i --justdb --nodeps --noscripts --ignorearch --ignoreos \
    "${rpms[@]}" 2>/dev/null
qa "$db" rpm-sqlite

# A delete committed to the log and not yet checkpointed into the main file.
t="$trees/rpm-wal"
mkdir -p "$t/usr/lib/sysimage/rpm" "$tmp/walcheck"
python3 - "$db/rpmdb.sqlite" "$t/usr/lib/sysimage/rpm" "$tmp/walcheck" <<'PY'
import shutil, sqlite3, sys, os
src, dest, check = sys.argv[1:4]
work = os.path.join(check, "work.sqlite")
shutil.copy(src, work)
conn = sqlite3.connect(work)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA wal_autocheckpoint=0")
conn.commit()
hnum = conn.execute("SELECT hnum FROM Name WHERE key = 'tiny-two'").fetchone()[0]
conn.execute("DELETE FROM Name WHERE hnum = ?", (hnum,))
conn.execute("DELETE FROM Packages WHERE hnum = ?", (hnum,))
conn.commit()
# Copied while the connection is open: closing would checkpoint the log into the file.
for d in (dest, check):
    shutil.copy(work, os.path.join(d, "rpmdb.sqlite"))
    shutil.copy(work + "-wal", os.path.join(d, "rpmdb.sqlite-wal"))
assert os.path.getsize(os.path.join(dest, "rpmdb.sqlite-wal")) > 0
conn.close()
PY
qa "$tmp/walcheck" rpm-wal

# Berkeley DB hash files holding the same header blobs (key: the 32-bit instance number,
# as rpm ≤ 4.15 stored them; key 0 holds the instance counter).
bdb() {
    local dest="$1" lorder="$2" pagesize="$3"
    mkdir -p "$dest"
    sqlite3 "$db/rpmdb.sqlite" "SELECT hnum, hex(blob) FROM Packages ORDER BY hnum" |
        python3 -c '
import struct, sys
lorder, pagesize = sys.argv[1], sys.argv[2]
fmt = "<I" if lorder == "1234" else ">I"
rows = [line.rstrip("\n").split("|") for line in sys.stdin if line.strip()]
print("VERSION=3\nformat=bytevalue\ntype=hash\ndb_lorder=%s\ndb_pagesize=%s\nHEADER=END" % (lorder, pagesize))
print(" " + struct.pack(fmt, 0).hex())
print(" " + struct.pack(fmt, max(int(h) for h, _ in rows)).hex())
for h, blob in rows:
    print(" " + struct.pack(fmt, int(h)).hex())
    print(" " + blob.lower())
print("DATA=END")
' "$lorder" "$pagesize" >"$tmp/dump"
    db5.3_load -f "$tmp/dump" "$dest/Packages"
}
t="$trees/rpm-bdb"
bdb "$t/var/lib/rpm" 1234 4096
qa "$t/var/lib/rpm" rpm-bdb --define '_db_backend bdb_ro'
t="$trees/rpm-bdb-be"
bdb "$t/var/lib/rpm" 4321 512
qa "$t/var/lib/rpm" rpm-bdb-be --define '_db_backend bdb_ro'

t="$trees/rpm-ndb"
mkdir -p "$t/usr/lib/sysimage/rpm"
printf 'RpmP\001\000\000\000' >"$t/usr/lib/sysimage/rpm/Packages.db"

t="$trees/rpm-truncated"
mkdir -p "$t/var/lib/rpm"
size="$(stat -c %s "$db/rpmdb.sqlite")"
head -c "$((size / 2))" "$db/rpmdb.sqlite" >"$t/var/lib/rpm/rpmdb.sqlite"

t="$trees/rpm-flipped"
mkdir -p "$t/var/lib/rpm"
cp "$db/rpmdb.sqlite" "$t/var/lib/rpm/rpmdb.sqlite"
python3 - "$t/var/lib/rpm/rpmdb.sqlite" "$(sqlite3 "$db/rpmdb.sqlite" \
    "SELECT rootpage FROM sqlite_master WHERE name = 'Packages'")" <<'PY'
import sys
path, root = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    page_size = int.from_bytes(f.read(18)[16:18], "big")
    at = (root - 1) * page_size + (100 if root == 1 else 0)
    f.seek(at)
    kind = f.read(1)[0]
    f.seek(at)
    f.write(bytes([kind ^ 0x20]))
PY

# A database for the SQLite reader alone, written by SQLite itself: 512-byte pages (a
# deep b-tree), every value type, values of up to 200 KiB (long overflow chains), deleted
# rows (free pages), and the expected rows dumped by SQLite as JSON.
mkdir -p "$trees/sqlite"
python3 - "$trees/sqlite/deep.sqlite" "$oracle/sqlite-deep.json" <<'PY'
import json, random, sqlite3, sys
path, dump = sys.argv[1:3]
rng = random.Random(7)
conn = sqlite3.connect(path)
conn.execute("PRAGMA page_size=512")
conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a, b, c)")
conn.execute("CREATE TABLE other (x TEXT)")
conn.execute("CREATE INDEX t_a ON t(a)")
def value(i):
    kind = rng.randrange(7)
    if kind == 0: return None
    if kind == 1: return rng.randrange(-2**63, 2**63)
    if kind == 2: return rng.choice([0, 1, -1, 127, -128, 32767, 2**23, 2**31 - 1, 2**40, -2**47])
    if kind == 3: return rng.random() * 1e6
    if kind == 4: return "".join(rng.choice("abcdé漢字 ") for _ in range(rng.randrange(0, 40)))
    if kind == 5: return rng.randbytes(rng.randrange(0, 3000))
    return rng.randbytes(rng.randrange(60000, 200000)) if i % 97 == 0 else b""
for i in range(1, 4001):
    conn.execute("INSERT INTO t VALUES (?, ?, ?, ?)", (i * 3 - 7000, value(i), value(i), value(i)))
conn.execute("INSERT INTO other VALUES ('x')")
conn.execute("DELETE FROM t WHERE id % 5 = 0")
conn.commit()
rows = []
for rid, a, b, c in conn.execute("SELECT id, a, b, c FROM t ORDER BY id"):
    def enc(v):
        if isinstance(v, bytes): return {"blob": v.hex()}
        if isinstance(v, float): return {"real": v.hex()}
        return v
    rows.append([rid, enc(a), enc(b), enc(c)])
json.dump(rows, open(dump, "w"))
conn.close()
PY

# ---------------------------------------------------------------------------------------
# apk (Alpine): the installed database, as apk-tools documents and writes it.
# ---------------------------------------------------------------------------------------
t="$trees/apk"
mkdir -p "$t/lib/apk/db"
cat >"$t/lib/apk/db/installed" <<'EOF'
C:Q1lBsJ4kn6g/8OWhWhNCqVbYqhh/8=
P:musl
V:1.2.5-r0
A:x86_64
S:407412
I:667648
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1712149000
c:3d3c3ea8bc4fc0c5fcf7c1fd8f9d4e37da36b3b7
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1yZ3lcoGnhGsYl6l8DbF4rQKrC2I=

C:Q1JjJ2s3+Iu8A7ZnBmKsUiLRGYl9U=
P:busybox
V:1.36.1-r15
A:x86_64
S:509456
I:954368
T:Size optimized toolkit of many common UNIX utilities
D:so:libc.musl-x86_64.so.1
F:bin
R:busybox
a:0:0:755

C:Q1abcabcabcabcabcabcabcabcabcab=
P:openssh-server
V:9.6_p1-r0
A:x86_64
T:OpenSSH server
EOF

# ---------------------------------------------------------------------------------------
rm -rf "$out/trees" "$out/oracle"
mv "$trees" "$out/trees"
mv "$oracle" "$out/oracle"
echo "$want" >"$stamp"
echo "build-service-trees.sh: built in $((SECONDS - started)) s" >&2
