#!/usr/bin/env bash
# Fetches Debian's OpenSSH server into testdata/build/openssh/ (git-ignored) so that
# tests/sshd_oracle.rs can compare amiscan's reading of sshd configurations with what the
# real `sshd -T` prints. Nothing is installed: the packages are downloaded with
# `apt-get download` and unpacked with `dpkg-deb -x`, with any shared library sshd needs
# that the machine lacks (on a stock Debian 12, libwrap0).
#
# Results (the contract with the test):
#   sshd         wrapper that runs the unpacked sshd with its libraries
#   hostkey      an ed25519 host key (sshd -T refuses to run without one)
#   passwd       a passwd file with root and the privilege separation user `sshd`,
#                bind-mounted over /etc/passwd inside the test's mount namespace
#   version      the openssh-server package version
#
# Runs once: when testdata/build/openssh/.complete holds the sha256 of this script, it
# exits at once. It builds into a temporary directory and moves it into place, writing the
# stamp last. Callers that may run concurrently use flock (the test does, through
# tests/util's ensure_built).
set -euo pipefail
export LC_ALL=C

script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
build="$(dirname "$script")/build"
out="$build/openssh"
want="$(sha256sum "$script" | cut -d' ' -f1)"
if [[ -f "$out/.complete" && "$(cat "$out/.complete")" == "$want" ]]; then
    exit 0
fi

for tool in apt-get dpkg-deb ldd sha256sum; do
    command -v "$tool" >/dev/null || {
        echo "fetch-openssh.sh: $tool is required (this needs a Debian or Ubuntu machine)" >&2
        exit 1
    }
done

mkdir -p "$build"
rm -rf "$build"/.openssh.tmp.*
tmp="$(mktemp -d "$build/.openssh.tmp.XXXXXX")"
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

# apt-get download fetches the candidate version into the current directory. When the
# package lists are missing (a fresh container), a root caller refreshes them once.
updated=0
download() {
    if apt-get download -q -o APT::Sandbox::User=root "$@" >download.log 2>&1; then
        return 0
    fi
    if [[ $updated == 0 && $(id -u) == 0 ]]; then
        echo "fetch-openssh.sh: apt-get download $* failed; running apt-get update once" >&2
        updated=1
        apt-get update -qq >&2
        apt-get download -q -o APT::Sandbox::User=root "$@" >download.log 2>&1 && return 0
    fi
    echo "fetch-openssh.sh: apt-get download $* failed:" >&2
    cat download.log >&2
    exit 1
}

unpack() {
    local deb
    for deb in ./*.deb; do
        dpkg-deb -x "$deb" root
        rm -f "$deb"
    done
}

shared_object_dirs() {
    find root \( -name '*.so' -o -name '*.so.[0-9]*' \) -printf '%h\n' 2>/dev/null | sort -u
}

library_path() {
    shared_object_dirs | sed "s|^|$tmp/|" | paste -sd: -
}

download openssh-server
version="$(dpkg-deb -f ./openssh-server_*.deb Version)"
unpack
sshd="root/usr/sbin/sshd"
[[ -x "$sshd" ]] || { echo "fetch-openssh.sh: the package has no usr/sbin/sshd" >&2; exit 1; }

# The Debian packages providing sshd's libraries; those the machine lacks are fetched.
declare -A providers=(
    [libwrap.so.0]=libwrap0 [libgssapi_krb5.so.2]=libgssapi-krb5-2 [libkrb5.so.3]=libkrb5-3
    [libk5crypto.so.3]=libk5crypto3 [libkrb5support.so.0]=libkrb5support0
    [libkeyutils.so.1]=libkeyutils1 [libcom_err.so.2]=libcom-err2 [libaudit.so.1]=libaudit1
    [libcap-ng.so.0]=libcap-ng0 [libpam.so.0]=libpam0g [libselinux.so.1]=libselinux1
    [libpcre2-8.so.0]=libpcre2-8-0 [libcrypto.so.3]=libssl3 [libsystemd.so.0]=libsystemd0
    [libcap.so.2]=libcap2 [libgcrypt.so.20]=libgcrypt20 [libgpg-error.so.0]=libgpg-error0
    [liblz4.so.1]=liblz4-1 [liblzma.so.5]=liblzma5 [libzstd.so.1]=libzstd1 [libz.so.1]=zlib1g
    [libcrypt.so.1]=libcrypt1 [libresolv.so.2]=libc6
)
for round in 1 2 3 4 5; do
    missing="$(LD_LIBRARY_PATH="$(library_path)" ldd "$sshd" | awk '/not found/ {print $1}' | sort -u)"
    [[ -z "$missing" ]] && break
    packages=()
    for soname in $missing; do
        package="${providers[$soname]:-}"
        [[ -n "$package" ]] || {
            echo "fetch-openssh.sh: sshd needs $soname and no package is known for it" >&2
            exit 1
        }
        packages+=("$package")
    done
    echo "fetch-openssh.sh: fetching ${packages[*]} for $missing" >&2
    download "${packages[@]}"
    unpack
    if [[ $round == 5 ]]; then
        echo "fetch-openssh.sh: sshd still misses libraries: $missing" >&2
        exit 1
    fi
done
libs="$(library_path)"

# ssh-keygen comes from the machine when it has one, else from Debian's openssh-client.
keygen="$(command -v ssh-keygen || true)"
if [[ -z "$keygen" ]]; then
    download openssh-client
    unpack
    keygen="$tmp/root/usr/bin/ssh-keygen"
fi
LD_LIBRARY_PATH="$libs" "$keygen" -q -t ed25519 -N '' -C amiscan-sshd-oracle -f hostkey
rm -f hostkey.pub

printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'sshd:x:100:65534::/run/sshd:/usr/sbin/nologin' >passwd
echo "$version" >version
rm -f download.log

# The wrapper finds its libraries relative to itself, so the directory can move.
rel_libs="$(shared_object_dirs | sed 's|^|$here/|' | paste -sd: -)"
cat >sshd <<EOF
#!/bin/sh
here="\$(cd "\$(dirname "\$0")" && pwd)"
LD_LIBRARY_PATH="$rel_libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "\$here/root/usr/sbin/sshd" "\$@"
EOF
chmod +x sshd

cd "$build"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$want" >"$out/.complete"
echo "fetch-openssh.sh: openssh-server $version ready in $out" >&2
