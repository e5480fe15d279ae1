//! What standard output is, decided once per run: how wide the human renderings may be
//! and whether they are coloured, from `--color`, `NO_COLOR` (https://no-color.org),
//! `COLUMNS` and whether standard output is a terminal.

use std::ffi::OsString;
use std::io::IsTerminal;

use crate::cli::ColorChoice;
use crate::report::terminal::{Terminal, DEFAULT_WIDTH};

/// What the environment says, read once so that the decision itself is a pure function.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub stdout_is_terminal: bool,
    /// The terminal's width, when standard output is one and its size could be read.
    pub terminal_width: Option<u16>,
    pub no_color: Option<OsString>,
    pub columns: Option<OsString>,
}

impl Environment {
    pub fn current() -> Self {
        let stdout_is_terminal = std::io::stdout().is_terminal();
        // comfy-table asks the terminal (through crossterm) only when stdout is one.
        let terminal_width = stdout_is_terminal
            .then(|| comfy_table::Table::new().width())
            .flatten()
            .filter(|w| *w > 0);
        Self {
            stdout_is_terminal,
            terminal_width,
            no_color: std::env::var_os("NO_COLOR"),
            columns: std::env::var_os("COLUMNS"),
        }
    }
}

/// The terminal standard output is: colour as `--color` and NO_COLOR say; the terminal's
/// width, else `COLUMNS`, else 80.
pub fn decide(choice: ColorChoice, env: &Environment) -> Terminal {
    // NO_COLOR counts only when set and not empty, as the convention says.
    let no_color = env.no_color.as_ref().is_some_and(|v| !v.is_empty());
    let color = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => env.stdout_is_terminal && !no_color,
    };
    let columns = env
        .columns
        .as_ref()
        .and_then(|c| c.to_str())
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|c| *c > 0);
    let width = env.terminal_width.or(columns).unwrap_or(DEFAULT_WIDTH);
    Terminal::new(color, width)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(terminal: Option<u16>, no_color: Option<&str>, columns: Option<&str>) -> Environment {
        Environment {
            stdout_is_terminal: terminal.is_some(),
            terminal_width: terminal,
            no_color: no_color.map(OsString::from),
            columns: columns.map(OsString::from),
        }
    }

    #[test]
    fn colour_follows_the_flag_then_no_color_then_the_terminal() {
        let tty = env(Some(100), None, None);
        assert!(decide(ColorChoice::Auto, &tty).color());
        assert!(!decide(ColorChoice::Never, &tty).color());
        let no_color = env(Some(100), Some("1"), None);
        assert!(!decide(ColorChoice::Auto, &no_color).color());
        assert!(decide(ColorChoice::Always, &no_color).color());
        // Set but empty does not count.
        assert!(decide(ColorChoice::Auto, &env(Some(100), Some(""), None)).color());
        let pipe = env(None, None, None);
        assert!(!decide(ColorChoice::Auto, &pipe).color());
        assert!(decide(ColorChoice::Always, &pipe).color());
    }

    #[test]
    fn width_is_the_terminal_then_columns_then_80() {
        assert_eq!(
            decide(ColorChoice::Auto, &env(Some(132), None, Some("60"))).width(),
            132
        );
        assert_eq!(
            decide(ColorChoice::Auto, &env(None, None, Some("60"))).width(),
            60
        );
        assert_eq!(
            decide(ColorChoice::Auto, &env(None, None, Some("wide"))).width(),
            80
        );
        assert_eq!(
            decide(ColorChoice::Auto, &env(None, None, None)).width(),
            80
        );
    }
}
