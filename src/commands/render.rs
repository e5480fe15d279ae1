//! Small renderings shared by the commands: sizes, modes, times.

use crate::filesystems::{FileKind, Metadata};

/// A byte count for people: `512 B`, `4.0 MiB`, `8.0 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let name = UNITS.get(unit).copied().unwrap_or("B");
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {name}")
    }
}

/// `ls -l`'s mode column: `drwxr-xr-x`, with setuid, setgid and sticky shown as s/S, t/T.
pub fn mode_string(meta: &Metadata) -> String {
    let kind = match meta.kind {
        FileKind::File => '-',
        FileKind::Dir => 'd',
        FileKind::Symlink => 'l',
        FileKind::CharDevice => 'c',
        FileKind::BlockDevice => 'b',
        FileKind::Fifo => 'p',
        FileKind::Socket => 's',
    };
    let p = meta.permissions;
    let bit = |mask: u16, c: char| if p & mask != 0 { c } else { '-' };
    let special = |exec: bool, flag: bool, set: char| match (exec, flag) {
        (true, true) => set,
        (false, true) => set.to_ascii_uppercase(),
        (true, false) => 'x',
        (false, false) => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(kind);
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(p & 0o100 != 0, p & 0o4000 != 0, 's'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(p & 0o010 != 0, p & 0o2000 != 0, 's'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(p & 0o001 != 0, p & 0o1000 != 0, 't'));
    s
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn utc_time(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_sizes() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00");
        assert_eq!(utc_time(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(utc_time(-1), "1969-12-31 23:59:59");
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(8 << 30), "8.0 GiB");
    }

    #[test]
    fn modes_show_special_bits() {
        let meta = Metadata {
            kind: FileKind::File,
            permissions: 0o4755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            mtime_nsec: 0,
            inode: 1,
            nlink: 1,
            rdev: None,
        };
        assert_eq!(mode_string(&meta), "-rwsr-xr-x");
        let sticky = Metadata {
            kind: FileKind::Dir,
            permissions: 0o1777,
            ..meta
        };
        assert_eq!(mode_string(&sticky), "drwxrwxrwt");
    }
}
