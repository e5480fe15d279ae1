//! `amiscan version [--verbose]`: the version line `--version` prints, and how this binary
//! was built (from build.rs) with what it reads.

use std::io::Write;

/// `0.3.0 (1a2b3c4d5 2026-12-05)`: the version, the commit (`-dirty` when the tree had
/// uncommitted changes, `unknown` outside a git checkout) and the build day in UTC.
pub const LINE: &str = env!("AMISCAN_VERSION_LINE");

/// What the readers understand; `--help` and the README say the same.
const IMAGE_FORMATS: &str = "raw (and raw EBS snapshot dumps), qcow2, VMDK, VHD, VHDX, VDI";
const VOLUMES: &str = "GPT, MBR, LVM2";
const FILESYSTEMS: &str = "ext2, ext3, ext4, XFS, vfat";

/// `amiscan --version --verbose` (in either order, `-V -v` too): clap answers `--version`
/// on its own before reading other flags, so the verbose form is recognised here, before
/// parsing; any other argument leaves it to clap.
pub fn verbose_flag_request<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> bool {
    let words: Vec<&std::ffi::OsStr> = args.iter().skip(1).map(AsRef::as_ref).collect();
    let is = |w: &std::ffi::OsStr, names: &[&str]| names.iter().any(|n| w == *n);
    words.len() == 2
        && words.iter().any(|w| is(w, &["-V", "--version"]))
        && words.iter().any(|w| is(w, &["-v", "--verbose"]))
}

pub fn write(verbose: bool, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "amiscan {LINE}")?;
    if verbose {
        writeln!(out, "commit:        {}", env!("AMISCAN_COMMIT"))?;
        writeln!(out, "build date:    {}", env!("AMISCAN_BUILD_DATE"))?;
        writeln!(out, "features:      {}", env!("AMISCAN_FEATURES"))?;
        writeln!(out, "target:        {}", env!("AMISCAN_TARGET"))?;
        writeln!(out, "rustc:         {}", env!("AMISCAN_RUSTC"))?;
        writeln!(out, "image formats: {IMAGE_FORMATS}")?;
        writeln!(out, "volumes:       {VOLUMES}")?;
        writeln!(out, "filesystems:   {FILESYSTEMS}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::verbose_flag_request;

    #[test]
    fn the_verbose_version_is_asked_for_with_both_flags_only() {
        assert!(verbose_flag_request(&["amiscan", "--version", "--verbose"]));
        assert!(verbose_flag_request(&["amiscan", "-v", "-V"]));
        assert!(!verbose_flag_request(&["amiscan", "--version"]));
        assert!(!verbose_flag_request(&["amiscan", "scan", "--verbose"]));
        assert!(!verbose_flag_request(&[
            "amiscan",
            "--version",
            "--verbose",
            "x"
        ]));
    }
}
