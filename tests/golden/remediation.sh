#!/bin/sh
# Remediation script for golden.img, written by amiscan VERSION (scan --remediation-script).
# 4 failing rule(s): 4 finding(s) handled by commands, 0 left for review (# manual).
#
# Run it as root as the last provisioning step on the build instance, right before the
# image is captured; or against a copy of the guest's file tree, with
# AMISCAN_ROOT=/path/to/the/copy. Review it first: it deletes files and edits
# configuration. amiscan never runs it. Findings that need a person's judgement are listed
# as `# manual` comments. It stops at the first command that fails; where a helper
# declines to touch something (a symlink leading out of the tree, a missing file) it says
# so, carries on, and exits 1 at the end.
set -eu

AMISCAN_ROOT=${AMISCAN_ROOT:-}
while :; do
    case $AMISCAN_ROOT in
        */) AMISCAN_ROOT=${AMISCAN_ROOT%/} ;;
        *) break ;;
    esac
done
if [ -n "$AMISCAN_ROOT" ]; then
    case $AMISCAN_ROOT in
        /*) ;;
        *)
            echo "amiscan: AMISCAN_ROOT must be an absolute path, not $AMISCAN_ROOT" >&2
            exit 2
            ;;
    esac
    if [ ! -d "$AMISCAN_ROOT" ]; then
        echo "amiscan: AMISCAN_ROOT=$AMISCAN_ROOT is not a directory" >&2
        exit 2
    fi
fi
amiscan_unfixed=0
amiscan_tmp=
trap 'if [ -n "$amiscan_tmp" ]; then rm -rf "$amiscan_tmp"; fi' EXIT
trap 'exit 1' HUP INT TERM

# amiscan_skip MESSAGE: something the script would not touch; the script exits 1 at the end.
amiscan_skip() {
    printf 'amiscan: not fixed: %s\n' "$*" >&2
    amiscan_unfixed=1
}

amiscan_have() {
    command -v "$1" >/dev/null 2>&1
}

# amiscan_at GUEST-PATH: sets amiscan_p to the path under AMISCAN_ROOT. Refuses relative
# paths, `.` and `..` components, and in a copied tree a symlink above the last component:
# the guest resolves it inside itself, this shell would resolve it on the host.
amiscan_at() {
    case $1 in
        */)
            amiscan_skip "$1: not a file path"
            return 1
            ;;
        /*) ;;
        *)
            amiscan_skip "$1: not an absolute guest path"
            return 1
            ;;
    esac
    case $1/ in
        */./* | */../*)
            amiscan_skip "$1: has . or .. components"
            return 1
            ;;
    esac
    amiscan_p=$AMISCAN_ROOT$1
    if [ -z "$AMISCAN_ROOT" ]; then
        return 0
    fi
    amiscan_rest=${1#/}
    amiscan_dir=$AMISCAN_ROOT
    while :; do
        case $amiscan_rest in
            */*) ;;
            *) return 0 ;;
        esac
        amiscan_dir=$amiscan_dir/${amiscan_rest%%/*}
        amiscan_rest=${amiscan_rest#*/}
        if [ -L "$amiscan_dir" ]; then
            amiscan_skip "$1: ${amiscan_dir#"$AMISCAN_ROOT"} is a symlink in the copied tree; not followed"
            return 1
        fi
    done
}

# amiscan_one_link HOST-PATH: the path is a regular file with no other hard link, whose
# content is this finding's alone (shred overwrites the content every link shares).
amiscan_one_link() {
    [ -n "$(find "$1" -prune -type f -links 1 -print 2>/dev/null)" ]
}

# amiscan_remove GUEST-PATH: removes a symlink itself (never what it points to), a
# directory with what is in it, or a file, overwriting files with shred first when there
# is one (not a file with other hard links: their content is not only this finding's).
amiscan_remove() {
    amiscan_at "$1" || return 0
    if [ -L "$amiscan_p" ]; then
        rm -f -- "$amiscan_p" || amiscan_skip "$1: cannot remove the symlink"
    elif [ -d "$amiscan_p" ]; then
        if amiscan_have shred; then
            find "$amiscan_p" -xdev -type f -links 1 -exec shred -u -- {} + 2>/dev/null || :
        fi
        rm -rf -- "$amiscan_p" || amiscan_skip "$1: cannot remove the directory"
    elif [ -e "$amiscan_p" ]; then
        if amiscan_have shred && amiscan_one_link "$amiscan_p"; then
            shred -u -- "$amiscan_p" 2>/dev/null || :
        fi
        if [ -e "$amiscan_p" ]; then
            rm -f -- "$amiscan_p" || amiscan_skip "$1: cannot remove it"
        fi
    fi
}

# amiscan_truncate GUEST-PATH: empties a regular file in place, so it keeps its owner and
# mode (daemons expect their logs to exist); overwritten first with shred when there is one.
amiscan_truncate() {
    amiscan_at "$1" || return 0
    if [ -L "$amiscan_p" ]; then
        amiscan_skip "$1: a symlink; not emptied"
    elif [ -f "$amiscan_p" ]; then
        if amiscan_have shred && amiscan_one_link "$amiscan_p"; then
            shred -n 1 -- "$amiscan_p" 2>/dev/null || :
        fi
        true >"$amiscan_p" || amiscan_skip "$1: cannot empty it"
    fi
}

# amiscan_chmod MODE GUEST-PATH: chmod, but never through a symlink.
amiscan_chmod() {
    amiscan_at "$2" || return 0
    if [ -L "$amiscan_p" ]; then
        amiscan_skip "$2: a symlink; mode not changed"
    elif [ -e "$amiscan_p" ]; then
        chmod -- "$1" "$amiscan_p" || amiscan_skip "$2: cannot change its mode"
    fi
}

# amiscan_editable GUEST-PATH: amiscan_at, and the path is a regular file (reached through
# a symlink only on the live system). Fails quietly when there is no such file.
amiscan_editable() {
    amiscan_at "$1" || return 1
    if [ -n "$AMISCAN_ROOT" ] && [ -L "$amiscan_p" ]; then
        amiscan_skip "$1: a symlink in the copied tree; not followed"
        return 1
    fi
    [ -f "$amiscan_p" ]
}

# amiscan_tempdir: a private directory for rewritten files, removed when the script exits.
amiscan_tempdir() {
    if [ -z "$amiscan_tmp" ]; then
        amiscan_tmp=${TMPDIR:-/tmp}/amiscan-remediation.$$
        if ! (umask 077 && mkdir "$amiscan_tmp"); then
            amiscan_tmp=
            echo "amiscan: cannot create a private temporary directory" >&2
            exit 1
        fi
    fi
}

# amiscan_rewrite HOST-PATH AWK-PROGRAM: runs the program over the file and writes the
# output back with cat, so the file keeps its inode, owner and mode (no sed -i, which is
# not POSIX). The program reads its arguments from ENVIRON (amiscan_a, amiscan_b).
amiscan_rewrite() {
    amiscan_tempdir
    if ! awk "$2" <"$1" >"$amiscan_tmp/new"; then
        amiscan_skip "${1#"$AMISCAN_ROOT"}: awk failed; left as it was"
        return 1
    fi
    if ! cmp -s "$amiscan_tmp/new" "$1"; then
        if ! cat "$amiscan_tmp/new" >"$1"; then
            amiscan_skip "${1#"$AMISCAN_ROOT"}: cannot write it"
            return 1
        fi
    fi
    rm -f "$amiscan_tmp/new"
}

# amiscan_lock_password USER: locks the password as passwd -l does: `!` before the hash,
# an empty field becomes `!`, fields starting with `!` or `*` are locked already. In
# /etc/shadow, and in /etc/passwd where the hash is kept there (not `x`).
amiscan_lock_password() {
    amiscan_a=$1
    export amiscan_a
    for amiscan_file in /etc/shadow /etc/passwd; do
        if amiscan_editable "$amiscan_file"; then
            amiscan_b=$amiscan_file
            export amiscan_b
            amiscan_rewrite "$amiscan_p" '
                BEGIN { FS = OFS = ":" }
                $1 == ENVIRON["amiscan_a"] && NF > 1 && $2 !~ /^[!*]/ &&
                    !(ENVIRON["amiscan_b"] == "/etc/passwd" && $2 == "x") { $2 = "!" $2 }
                { print }' || :
        fi
    done
}

# amiscan_sshd_set KEYWORD VALUE: sshd uses the first value it reads, so the setting goes
# to the top of /etc/ssh/sshd_config, ahead of any Include; other occurrences outside
# Match blocks in that file are commented out. Match blocks are left alone: the script
# lists findings in them as manual.
amiscan_sshd_set() {
    if ! amiscan_editable /etc/ssh/sshd_config; then
        amiscan_skip "/etc/ssh/sshd_config: not a file here; set $1 $2 by hand"
        return 0
    fi
    amiscan_a=$1
    amiscan_b=$2
    export amiscan_a amiscan_b
    amiscan_rewrite "$amiscan_p" '
        function keyword(s) { sub(/^[ \t]+/, "", s); sub(/[ \t=].*/, "", s); return tolower(s) }
        BEGIN {
            key = tolower(ENVIRON["amiscan_a"])
            alias = key
            if (key == "kbdinteractiveauthentication") alias = "challengeresponseauthentication"
            note = "# amiscan: " ENVIRON["amiscan_a"] " comes first: sshd uses the first value it reads."
            setting = ENVIRON["amiscan_a"] " " ENVIRON["amiscan_b"]
            print note
            print setting
        }
        {
            k = keyword($0)
            if (k == "match") in_match = 1
            if (!in_match && ($0 == note || $0 == setting)) next
            if (!in_match && (k == key || k == alias)) { print "# amiscan: " $0; next }
            print
        }' || :
}

# amiscan_disable_service NAME [FOUND-AT]: turns a service off where it was found enabled:
# an inetd line is commented out, an xinetd service gets `disable = yes`, a SysV start link
# is removed. A systemd unit is disabled (and stopped, on the live system), the link found
# is removed if systemctl left it, and a preset rule keeps it off on the first boot (an
# empty machine-id makes systemd apply presets then).
amiscan_disable_service() {
    amiscan_where=${2-}
    case $amiscan_where in
        /etc/inetd.conf | /etc/inetd.d/*)
            amiscan_inetd_off "$1" "$amiscan_where"
            return 0
            ;;
        /etc/xinetd.conf | /etc/xinetd.d/*)
            amiscan_xinetd_off "$1" "$amiscan_where"
            return 0
            ;;
        /etc/rc[0-9S].d/S*)
            amiscan_remove "$amiscan_where"
            return 0
            ;;
    esac
    case $1 in
        *.service | *.socket) ;;
        *)
            amiscan_skip "$1: not a systemd service or socket; turn it off by hand"
            return 0
            ;;
    esac
    if amiscan_have systemctl; then
        if [ -z "$AMISCAN_ROOT" ]; then
            systemctl disable --now -- "$1" || echo "amiscan: systemctl disable --now $1 failed" >&2
        else
            systemctl --root="$AMISCAN_ROOT" disable -- "$1" || echo "amiscan: systemctl --root disable $1 failed" >&2
        fi
    fi
    amiscan_preset_disable "$1"
    case $amiscan_where in
        "" | /etc/systemd/system-preset/* | /usr/lib/systemd/system-preset/* | /lib/systemd/system-preset/* | /usr/local/lib/systemd/system-preset/*) ;;
        /etc/systemd/system/*)
            if amiscan_at "$amiscan_where" && [ -L "$amiscan_p" ]; then
                amiscan_remove "$amiscan_where"
            fi
            ;;
        *) amiscan_skip "$1: enabled through $amiscan_where, which disabling does not change; mask the unit or remove the link by hand" ;;
    esac
}

# amiscan_preset_disable UNIT: a `disable` rule in a preset file that sorts before the
# distribution's.
amiscan_preset_disable() {
    amiscan_at /etc/systemd/system-preset/00-amiscan.preset || return 0
    if [ -n "$AMISCAN_ROOT" ] && [ -L "$amiscan_p" ]; then
        amiscan_skip "/etc/systemd/system-preset/00-amiscan.preset: a symlink in the copied tree; not followed"
        return 0
    fi
    if [ -f "$amiscan_p" ] && grep -qxF -- "disable $1" "$amiscan_p"; then
        return 0
    fi
    if ! mkdir -p -- "${amiscan_p%/*}"; then
        amiscan_skip "$1: cannot create /etc/systemd/system-preset"
        return 0
    fi
    if [ ! -e "$amiscan_p" ]; then
        echo "# Written by the amiscan remediation script: services it disabled stay off on the first boot." >"$amiscan_p" || :
    fi
    printf 'disable %s\n' "$1" >>"$amiscan_p" || amiscan_skip "$1: cannot write its preset rule"
}

# amiscan_inetd_off NAME GUEST-PATH: comments out the service's lines as update-inetd does.
amiscan_inetd_off() {
    if ! amiscan_editable "$2"; then
        amiscan_skip "$2: not a file here; turn $1 off by hand"
        return 0
    fi
    amiscan_a=$1
    export amiscan_a
    amiscan_rewrite "$amiscan_p" '
        /^[ \t]*#/ || NF < 6 { print; next }
        { service = $1; sub(/^.*:/, "", service) }
        service == ENVIRON["amiscan_a"] { print "#<off># " $0; next }
        { print }' || :
}

# amiscan_xinetd_off NAME GUEST-PATH: `disable = yes` in the service's blocks; any other
# disable line there is commented out.
amiscan_xinetd_off() {
    if ! amiscan_editable "$2"; then
        amiscan_skip "$2: not a file here; turn $1 off by hand"
        return 0
    fi
    amiscan_a=$1
    export amiscan_a
    amiscan_rewrite "$amiscan_p" '
        {
            line = $0
            sub(/^[ \t]+/, "", line)
            sub(/[ \t\r]+$/, "", line)
        }
        state == 0 && $1 == "service" && $2 == ENVIRON["amiscan_a"] { state = 1 }
        state == 1 && line == "{" { state = 2; off = 0; print; next }
        state == 2 && line == "}" {
            if (!off) print "\tdisable\t\t= yes"
            state = 0
        }
        state == 2 && line ~ /^disable[ \t]*=/ {
            value = line
            sub(/^disable[ \t]*=[ \t]*/, "", value)
            if (tolower(value) == "yes") off = 1
            else { print "#" $0; next }
        }
        { print }' || :
}

# amiscan_clean_log GUEST-PATH: rotated, compressed and journal files are removed; a live
# log is emptied in place, so it keeps the owner and mode its daemon expects.
amiscan_clean_log() {
    case $1 in
        *.journal | *.journal~ | *.gz | *.xz | *.bz2 | *.zst | *.[0-9] | *.old | */imjournal.state)
            amiscan_remove "$1"
            ;;
        *) amiscan_truncate "$1" ;;
    esac
}

# amiscan_stop_service UNIT: on the live system, stops a daemon that would write again what
# the script removes.
amiscan_stop_service() {
    if [ -z "$AMISCAN_ROOT" ] && amiscan_have systemctl; then
        systemctl stop -- "$1" 2>/dev/null || :
    fi
}

# ---- accounts.password-set (high): An account has a usable password
# /etc/shadow:2 (admin): account admin has a usable password (sha512crypt hash)
amiscan_lock_password 'admin'

# ---- cleanup.machine-id (medium): /etc/machine-id is set
# /etc/machine-id: machine ID baked into the image (file, 33 bytes)
case '/etc/machine-id' in
    /etc/machine-id) amiscan_truncate '/etc/machine-id' ;;
    *) amiscan_remove '/etc/machine-id' ;;
esac

# ---- cleanup.tmp (low): Files left in /tmp or /var/tmp
# /tmp/build-scratch.txt: temporary file (file, 8 bytes)
amiscan_remove '/tmp/build-scratch.txt'

# ---- history.shell (high): Shell or REPL history left in a home directory
# /home/admin/.bash_history: history file (file, 3 bytes)
amiscan_remove '/home/admin/.bash_history'

if [ "$amiscan_unfixed" != 0 ]; then
    echo "amiscan: some findings were not fixed; see the messages above" >&2
    exit 1
fi
