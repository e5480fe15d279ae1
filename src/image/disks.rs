//! The image argument: one disk image, or the disks of one machine given together as
//! `DISK+DISK` (optionally `NAME=DISK`), so that a volume group or an fstab spanning
//! them is read as the guest sees it.

use std::path::{Path, PathBuf};

/// Longest disk name accepted (`nvme10n1` and `xvdaa` fit easily).
const MAX_NAME: usize = 16;
/// The most disks one guest may have; EC2 attaches at most a few dozen volumes.
const MAX_DISKS: usize = 64;

/// One disk named by the image argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskArg {
    /// The disk's name in a guest of several disks: as given (`xvdb=data.img`), else
    /// `disk<N>` by position. `None` when the guest has one disk.
    pub name: Option<String>,
    pub path: PathBuf,
}

/// An image argument that joins disks wrongly: a usage error, naming the argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentError {
    #[error("{joined}: {count} disks given; at most {MAX_DISKS} make one guest")]
    TooManyDisks { joined: String, count: usize },
    #[error("{joined}: disk {position} of the guest is empty (disks are joined as DISK+DISK)")]
    EmptyDisk { joined: String, position: usize },
    #[error("{joined}: two disks are named `{name}`")]
    DuplicateName { joined: String, name: String },
}

/// Splits an image argument into the guest's disks. A path that exists is always one
/// disk, whatever characters its name holds; otherwise `+` separates disks.
pub fn split_image_argument(argument: &Path) -> Result<Vec<DiskArg>, ArgumentError> {
    let text = argument.to_str();
    let joined = text.filter(|t| t.contains('+') && argument.symlink_metadata().is_err());
    let Some(joined) = joined else {
        return Ok(vec![DiskArg {
            name: None,
            path: argument.to_path_buf(),
        }]);
    };
    let parts: Vec<&str> = joined.split('+').collect();
    if parts.len() > MAX_DISKS {
        return Err(ArgumentError::TooManyDisks {
            joined: joined.to_string(),
            count: parts.len(),
        });
    }
    let mut disks: Vec<DiskArg> = Vec::with_capacity(parts.len());
    for (index, part) in parts.iter().enumerate() {
        if part.is_empty() {
            return Err(ArgumentError::EmptyDisk {
                joined: joined.to_string(),
                position: index + 1,
            });
        }
        let (name, path) = match part.split_once('=') {
            Some((name, path)) if is_disk_name(name) && !Path::new(part).exists() => {
                (name.to_string(), path)
            }
            _ => (format!("disk{}", index + 1), *part),
        };
        if disks
            .iter()
            .any(|d| d.name.as_deref() == Some(name.as_str()))
        {
            return Err(ArgumentError::DuplicateName {
                joined: joined.to_string(),
                name,
            });
        }
        disks.push(DiskArg {
            name: Some(name),
            path: PathBuf::from(path),
        });
    }
    Ok(disks)
}

/// A disk name as a Linux guest spells one: lower-case letters and digits, starting with
/// a letter.
fn is_disk_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= MAX_NAME
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(argument: &str) -> Result<Vec<(Option<String>, String)>, ArgumentError> {
        split_image_argument(Path::new(argument)).map(|disks| {
            disks
                .into_iter()
                .map(|d| (d.name, d.path.display().to_string()))
                .collect()
        })
    }

    fn named(name: &str, path: &str) -> (Option<String>, String) {
        (Some(name.to_string()), path.to_string())
    }

    #[test]
    fn one_path_is_one_unnamed_disk() {
        assert_eq!(split("root.img").unwrap(), [(None, "root.img".into())]);
    }

    #[test]
    fn disks_joined_by_plus_are_named_by_position_or_as_given() {
        assert_eq!(
            split("/no/root.img+/no/data.img").unwrap(),
            [
                named("disk1", "/no/root.img"),
                named("disk2", "/no/data.img")
            ]
        );
        assert_eq!(
            split("xvda=/no/root.img+/no/data.img+nvme2n1=/no/x=y.img").unwrap(),
            [
                named("xvda", "/no/root.img"),
                named("disk2", "/no/data.img"),
                named("nvme2n1", "/no/x=y.img")
            ]
        );
    }

    #[test]
    fn an_existing_file_with_plus_in_its_name_is_one_disk() {
        let dir = std::env::temp_dir().join(format!("amiscan-disks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a+b.img");
        std::fs::write(&file, b"x").unwrap();
        let disks = split_image_argument(&file).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(disks.len(), 1);
        assert_eq!(disks[0].name, None);
    }

    #[test]
    fn malformed_joins_are_refused() {
        let message = |argument: &str| split(argument).unwrap_err().to_string();
        assert!(message("/no/a.img+").contains("disk 2"));
        assert!(message("+/no/a.img").contains("disk 1"));
        assert!(message("sdb=/no/a.img+sdb=/no/b.img").contains("two disks are named `sdb`"));
        let many = vec!["/no/a.img"; MAX_DISKS + 1].join("+");
        assert!(message(&many).contains("at most"));
        assert!(matches!(
            split(&many),
            Err(ArgumentError::TooManyDisks { count, .. }) if count == MAX_DISKS + 1
        ));
    }

    #[test]
    fn odd_names_are_part_of_the_path() {
        assert_eq!(
            split("Disk=/no/a.img+/no/b.img").unwrap()[0],
            named("disk1", "Disk=/no/a.img")
        );
    }
}
