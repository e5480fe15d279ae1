//! Guest paths as the unit loader sees them: symlinks resolved inside the guest, parents,
//! basenames and link targets made absolute. Unit names are [`super::names`]' job.

use super::MAX_SYMLINKS;
use crate::facts::{FactError, GuestFiles};
use crate::filesystems::FileKind;

/// `path` with every symlink in it resolved inside the guest, as far as the path exists;
/// used to tell when two configured directories are the same one (merged /usr).
pub fn canonical_path(files: &dyn GuestFiles, path: &str) -> Result<String, FactError> {
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0usize;
    while let Some(component) = pending.pop() {
        match component.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        done.push(component);
        let here = format!("/{}", done.join("/"));
        match files.kind(&here)? {
            Some(FileKind::Symlink) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(FactError::unreadable(
                        path,
                        "too many levels of symbolic links",
                    ));
                }
                let Some(target) = files.read_link(&here)? else {
                    break;
                };
                let target = String::from_utf8_lossy(&target).into_owned();
                done.pop();
                if target.starts_with('/') {
                    done.clear();
                }
                pending.extend(
                    target
                        .split('/')
                        .filter(|c| !c.is_empty())
                        .rev()
                        .map(str::to_string),
                );
            }
            Some(_) => {}
            None => {
                // The rest does not exist: keep it as written.
                done.extend(pending.drain(..).rev());
                break;
            }
        }
    }
    Ok(format!("/{}", done.join("/")))
}

pub(super) fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => path.get(..i).unwrap_or("/"),
    }
}

pub(super) fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A symlink target made absolute against the directory holding the link.
pub(super) fn absolute(link_dir: &str, target: &str) -> String {
    if target.starts_with('/') {
        target.to_string()
    } else {
        format!("{}/{}", link_dir.trim_end_matches('/'), target)
    }
}
