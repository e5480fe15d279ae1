//! `amiscan cat`: one guest file's bytes, streamed to standard output.

use std::io::{Read, Write};

use super::{CommandError, Outcome};
use crate::filesystems::FileKind;
use crate::guest::{display_path, Tree};

pub fn run(tree: &Tree, path: &[u8], out: &mut dyn Write) -> Result<Outcome, CommandError> {
    let shown = display_path(path);
    let located = tree
        .resolve(path, true)
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    let mount = tree
        .mount(located.mount)
        .ok_or_else(|| CommandError::Usage(format!("{shown}: not found")))?;
    let meta = mount
        .fs
        .metadata(located.node)
        .map_err(|e| CommandError::Image(format!("{shown}: {}", e.rebase(&mount.offset))))?;
    if meta.kind != FileKind::File {
        return Err(CommandError::Usage(format!(
            "{shown}: is a {}, not a regular file",
            meta.kind.as_str()
        )));
    }
    let mut reader = mount
        .fs
        .open(located.node)
        .map_err(|e| CommandError::Image(format!("{shown}: {}", e.rebase(&mount.offset))))?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| CommandError::Image(format!("{shown}: {e}")))?;
        if n == 0 {
            break;
        }
        out.write_all(buf.get(..n).unwrap_or_default())?;
    }
    out.flush()?;
    Ok(Outcome::Complete)
}
