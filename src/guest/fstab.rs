//! Parses the guest's /etc/fstab into mount requests. Matching them to volumes is the
//! tree's job; this module only understands the file's syntax.

use crate::escapes;

/// How an fstab entry names its device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    Uuid(String),
    Label(String),
    PartUuid(String),
    PartLabel(String),
    /// A kernel device name: `sda1`, `xvda1`, `nvme0n1p1`, `vda`, ...
    Kernel(String),
    /// An LVM2 logical volume: `/dev/mapper/VG-LV` (dashes in names doubled) or `/dev/VG/LV`.
    LogicalVolume {
        vg: String,
        lv: String,
    },
    /// Anything else (`/dev/mapper/...`, `tmpfs`, network sources).
    Other(String),
}

/// One line of fstab that mounts something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FstabEntry {
    pub line: usize,
    pub device: DeviceSpec,
    pub raw_device: String,
    pub mount_point: String,
    pub fs_type: String,
    pub options: Vec<String>,
}

impl FstabEntry {
    /// Mounts that the system boots without (`nofail`, `noauto`).
    pub fn optional(&self) -> bool {
        self.options.iter().any(|o| o == "nofail" || o == "noauto")
    }

    /// Whether this entry mounts a block-device filesystem into the tree.
    pub fn is_disk_mount(&self) -> bool {
        const VIRTUAL: &[&str] = &[
            "swap",
            "none",
            "proc",
            "sysfs",
            "tmpfs",
            "devpts",
            "devtmpfs",
            "nfs",
            "nfs4",
            "cifs",
            "efivarfs",
            "securityfs",
            "cgroup",
            "cgroup2",
            "debugfs",
            "bind",
        ];
        self.mount_point.starts_with('/')
            && !VIRTUAL.contains(&self.fs_type.as_str())
            && !self.options.iter().any(|o| o == "bind" || o == "rbind")
    }
}

/// fstab escapes spaces and tabs in fields as octal (`\040`).
fn unescape(field: &str) -> String {
    String::from_utf8_lossy(&escapes::octal(field.as_bytes())).into_owned()
}

/// udev escapes `/` and other bytes in /dev/disk/by-label names as `\x2f`.
fn unescape_udev(name: &str) -> String {
    String::from_utf8_lossy(&escapes::hex(name.as_bytes())).into_owned()
}

fn strip_quotes(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// Classifies the first fstab field.
pub fn parse_device(spec: &str) -> DeviceSpec {
    let tagged = |prefix: &str| {
        spec.strip_prefix(prefix)
            .map(|v| strip_quotes(v).to_string())
    };
    if let Some(v) = tagged("UUID=") {
        return DeviceSpec::Uuid(v);
    }
    if let Some(v) = tagged("LABEL=") {
        return DeviceSpec::Label(v);
    }
    if let Some(v) = tagged("PARTUUID=") {
        return DeviceSpec::PartUuid(v);
    }
    if let Some(v) = tagged("PARTLABEL=") {
        return DeviceSpec::PartLabel(v);
    }
    let by = |dir: &str| spec.strip_prefix(dir).map(unescape_udev);
    if let Some(v) = by("/dev/disk/by-uuid/") {
        return DeviceSpec::Uuid(v);
    }
    if let Some(v) = by("/dev/disk/by-label/") {
        return DeviceSpec::Label(v);
    }
    if let Some(v) = by("/dev/disk/by-partuuid/") {
        return DeviceSpec::PartUuid(v);
    }
    if let Some(v) = by("/dev/disk/by-partlabel/") {
        return DeviceSpec::PartLabel(v);
    }
    if let Some(name) = spec.strip_prefix("/dev/mapper/") {
        if let Some((vg, lv)) = split_mapper_name(name) {
            return DeviceSpec::LogicalVolume { vg, lv };
        }
    }
    if let Some(name) = spec.strip_prefix("/dev/") {
        if !name.contains('/') {
            return DeviceSpec::Kernel(name.to_string());
        }
        let parts: Vec<&str> = name.split('/').collect();
        if let [vg, lv] = parts.as_slice() {
            let reserved = ["disk", "mapper", "md", "block", "char", "fd", "pts", "shm"];
            if !vg.is_empty() && !lv.is_empty() && !reserved.contains(vg) {
                return DeviceSpec::LogicalVolume {
                    vg: (*vg).to_string(),
                    lv: (*lv).to_string(),
                };
            }
        }
    }
    DeviceSpec::Other(spec.to_string())
}

/// Splits a device-mapper name `VG-LV` at the single dash; LVM doubles dashes inside the
/// names (`my--vg-my--lv` is VG `my-vg`, LV `my-lv`).
fn split_mapper_name(name: &str) -> Option<(String, String)> {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i) == Some(&b'-') {
            if bytes.get(i + 1) == Some(&b'-') {
                i += 2;
                continue;
            }
            let (vg, lv) = (name.get(..i)?, name.get(i + 1..)?);
            if vg.is_empty() || lv.is_empty() {
                return None;
            }
            return Some((vg.replace("--", "-"), lv.replace("--", "-")));
        }
        i += 1;
    }
    None
}

/// Parses fstab text; malformed lines are skipped, as mount(8) skips them.
pub fn parse(text: &str) -> Vec<FstabEntry> {
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let line_no = index + 1;
            let content = line.trim();
            if content.is_empty() || content.starts_with('#') {
                return None;
            }
            let mut fields = content.split_whitespace();
            let raw_device = fields.next()?.to_string();
            let mount_point = unescape(fields.next()?);
            let fs_type = fields.next().unwrap_or("auto").to_string();
            let options = fields
                .next()
                .unwrap_or("defaults")
                .split(',')
                .map(str::to_string)
                .collect();
            Some(FstabEntry {
                line: line_no,
                device: parse_device(&unescape(&raw_device)),
                raw_device,
                mount_point,
                fs_type,
                options,
            })
        })
        .collect()
}

/// For a kernel device name, which disk it names and which partition (`None` = whole disk).
/// `sda1` → ("sda", Some(1)); `nvme0n1p2` → ("nvme0n1", Some(2)); `xvda` → ("xvda", None).
pub fn split_kernel_name(name: &str) -> Option<(String, Option<u32>)> {
    let digits_at = name
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_digit())
        .last()
        .map(|(i, _)| i);
    let is_nvme_like =
        name.starts_with("nvme") || name.starts_with("mmcblk") || name.starts_with("loop");
    if is_nvme_like {
        // nvme0n1p1: the partition follows a 'p'; without one it names the whole disk.
        if let Some(p) = name.rfind('p') {
            let (disk, part) = name.split_at(p);
            if let Some(number) = part.get(1..).and_then(|n| n.parse().ok()) {
                if disk.ends_with(|c: char| c.is_ascii_digit()) {
                    return Some((disk.to_string(), Some(number)));
                }
            }
        }
        return Some((name.to_string(), None));
    }
    match digits_at {
        Some(at) => {
            let (disk, part) = name.split_at(at);
            Some((disk.to_string(), part.parse().ok()))
        }
        None => Some((name.to_string(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_device_spelling() {
        let text = "# comment\n\
            UUID=1234-ABCD /boot/efi vfat umask=0077 0 1\n\
            LABEL=data\\040disk /data ext4 defaults,nofail 0 2\n\
            PARTUUID=abc-01 /var ext4 defaults 0 2\n\
            /dev/disk/by-label/my\\x2fhome /home ext4 defaults 0 2\n\
            /dev/nvme0n1p3 /srv ext4 defaults 0 2\n\
            /dev/sda1 / ext4 defaults 0 1\n\
            tmpfs /tmp tmpfs defaults 0 0\n\
            /swapfile none swap sw 0 0\n\
            /dev/sdb1 /mnt/my\\040dir ext4 noauto 0 0\n";
        let entries = parse(text);
        assert_eq!(entries.len(), 9);
        assert_eq!(entries[0].device, DeviceSpec::Uuid("1234-ABCD".into()));
        assert_eq!(entries[1].device, DeviceSpec::Label("data disk".into()));
        assert!(entries[1].optional());
        assert_eq!(entries[2].device, DeviceSpec::PartUuid("abc-01".into()));
        assert_eq!(entries[3].device, DeviceSpec::Label("my/home".into()));
        assert_eq!(entries[4].device, DeviceSpec::Kernel("nvme0n1p3".into()));
        let lv = |vg: &str, lv: &str| DeviceSpec::LogicalVolume {
            vg: vg.into(),
            lv: lv.into(),
        };
        assert_eq!(parse_device("/dev/mapper/rhel-root"), lv("rhel", "root"));
        assert_eq!(
            parse_device("/dev/mapper/my--vg-my--lv"),
            lv("my-vg", "my-lv")
        );
        assert_eq!(parse_device("/dev/mapper/vg0-a--b--"), lv("vg0", "a-b-"));
        assert_eq!(parse_device("/dev/rhel/home"), lv("rhel", "home"));
        assert!(matches!(
            parse_device("/dev/mapper/control"),
            DeviceSpec::Other(_)
        ));
        assert!(matches!(parse_device("/dev/md/root"), DeviceSpec::Other(_)));
        assert_eq!(entries[5].line, 7);
        assert!(!entries[6].is_disk_mount());
        assert!(!entries[7].is_disk_mount());
        assert_eq!(entries[8].mount_point, "/mnt/my dir");
    }

    #[test]
    fn splits_kernel_names() {
        let cases = [
            ("sda1", ("sda", Some(1))),
            ("xvda15", ("xvda", Some(15))),
            ("vdb", ("vdb", None)),
            ("nvme0n1p14", ("nvme0n1", Some(14))),
            ("nvme1n1", ("nvme1n1", None)),
            ("mmcblk0p2", ("mmcblk0", Some(2))),
        ];
        for (name, (disk, part)) in cases {
            assert_eq!(
                split_kernel_name(name),
                Some((disk.to_string(), part)),
                "{name}"
            );
        }
    }
}
