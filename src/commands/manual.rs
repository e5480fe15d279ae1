//! `amiscan completions SHELL` and `amiscan man`: shell completions and manual pages
//! generated from the same clap definitions as `--help`, so they cannot drift from it.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use super::CommandError;
use crate::cli::Cli;

pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "amiscan", out);
}

/// amiscan(1) on `out`, or with `dir` one page per command written there (amiscan.1,
/// amiscan-scan.1, amiscan-rules-list.1, …), their names listed on `out`.
pub fn man(dir: Option<&Path>, out: &mut dyn Write) -> Result<(), CommandError> {
    let command = Cli::command();
    match dir {
        None => clap_mangen::Man::new(command).render(out)?,
        Some(dir) => {
            let fail = |e: std::io::Error| {
                CommandError::Usage(format!("man --out {}: {e}", dir.display()))
            };
            std::fs::create_dir_all(dir).map_err(fail)?;
            clap_mangen::generate_to(command, dir).map_err(fail)?;
            let mut pages: Vec<_> = std::fs::read_dir(dir)
                .map_err(fail)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "1"))
                .collect();
            pages.sort();
            for page in pages {
                writeln!(out, "{}", page.display())?;
            }
        }
    }
    Ok(())
}
