//! How the human renderings meet a terminal: the width they must keep to, whether they are
//! coloured, and the tables, wrapping and colours that honour both. Deciding those from
//! `--color`, `NO_COLOR`, `COLUMNS` and the terminal is the command layer's; the machine
//! formats (JSON, JSON Lines, SARIF, JUnit, Markdown) never pass through here.

use std::io::Write;

use anstyle::{AnsiColor, Effects, Style};
use comfy_table::{
    presets::UTF8_BORDERS_ONLY, Attribute, Cell, Color, ColumnConstraint, ContentArrangement,
    Table, Width,
};
use unicode_width::UnicodeWidthChar;

use crate::gate::{ResultStatus, Verdict};
use crate::rules::Severity;

/// The width when neither the terminal nor `COLUMNS` says: what every terminal shows.
pub const DEFAULT_WIDTH: u16 = 80;
/// Below this no table keeps its columns legible; a narrower request is raised to it.
pub const MIN_WIDTH: u16 = 40;

/// What a column that wraps keeps at least, so that it still shows a word or two.
pub const MIN_WRAPPED: u16 = 8;

/// Where human output goes: how many columns it may take and whether it may be coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminal {
    color: bool,
    width: u16,
}

/// What a word means, and so its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    /// A failure, or a critical severity: red and bold.
    Alarm,
    /// A high severity: red.
    Bad,
    /// Passed: green.
    Good,
    /// An error, or a medium severity: yellow.
    Warn,
    /// Not proven either way: magenta.
    Unproven,
    /// A low severity: cyan.
    Mild,
    /// Waived, skipped, informational: dim.
    Muted,
}

impl Tone {
    pub fn of_status(status: ResultStatus) -> Self {
        match status {
            ResultStatus::Pass => Self::Good,
            ResultStatus::Fail => Self::Alarm,
            ResultStatus::Error => Self::Warn,
            ResultStatus::Waived | ResultStatus::Skipped => Self::Muted,
        }
    }

    pub fn of_verdict(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Pass => Self::Good,
            Verdict::Fail => Self::Alarm,
            Verdict::Error => Self::Warn,
            Verdict::Incomplete => Self::Unproven,
        }
    }

    pub fn of_severity(severity: Severity) -> Self {
        match severity {
            Severity::Critical => Self::Alarm,
            Severity::High => Self::Bad,
            Severity::Medium => Self::Warn,
            Severity::Low => Self::Mild,
            Severity::Info => Self::Muted,
        }
    }

    fn style(self) -> Style {
        let color = |c: AnsiColor| Style::new().fg_color(Some(c.into()));
        match self {
            Self::Plain => Style::new(),
            Self::Alarm => color(AnsiColor::Red).effects(Effects::BOLD),
            Self::Bad => color(AnsiColor::Red),
            Self::Good => color(AnsiColor::Green),
            Self::Warn => color(AnsiColor::Yellow),
            Self::Unproven => color(AnsiColor::Magenta),
            Self::Mild => color(AnsiColor::Cyan),
            Self::Muted => Style::new().effects(Effects::DIMMED),
        }
    }

    /// The same colours as [`Tone::style`], for a table cell.
    fn cell(self, cell: Cell) -> Cell {
        match self {
            Self::Plain => cell,
            Self::Alarm => cell.fg(Color::DarkRed).add_attribute(Attribute::Bold),
            Self::Bad => cell.fg(Color::DarkRed),
            Self::Good => cell.fg(Color::DarkGreen),
            Self::Warn => cell.fg(Color::DarkYellow),
            Self::Unproven => cell.fg(Color::DarkMagenta),
            Self::Mild => cell.fg(Color::DarkCyan),
            Self::Muted => cell.add_attribute(Attribute::Dim),
        }
    }
}

impl Terminal {
    /// What a file gets: no colour, and the width every terminal shows.
    pub const PLAIN: Self = Self {
        color: false,
        width: DEFAULT_WIDTH,
    };

    pub fn new(color: bool, width: u16) -> Self {
        Self {
            color,
            width: width.max(MIN_WIDTH),
        }
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn color(&self) -> bool {
        self.color
    }

    /// A table that keeps to the width, wrapping its widest columns first, coloured only
    /// when colour is on.
    pub fn table(&self) -> Table {
        let mut table = Table::new();
        table
            .load_preset(UTF8_BORDERS_ONLY)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(self.width);
        if self.color {
            table.enforce_styling();
        } else {
            table.force_no_tty();
        }
        table
    }

    /// Keeps the columns at `indices` (identifiers: rule ids, sizes, severities) from
    /// wrapping, in that order of priority, as long as every other column keeps at least
    /// [`MIN_WRAPPED`] columns: the prose columns wrap instead. Call it after the rows are
    /// added.
    pub fn keep_whole(&self, table: &mut Table, indices: &[usize]) {
        let widths = table.column_max_content_widths();
        // The outer borders, a space between columns and one on each side of every cell.
        let padding = (3 * widths.len() as u16 + 1).min(self.width);
        // What the columns left to wrap need at least: their content, or MIN_WRAPPED.
        let others: u16 = widths
            .iter()
            .enumerate()
            .filter(|(index, _)| !indices.contains(index))
            .map(|(_, width)| (*width).min(MIN_WRAPPED))
            .sum();
        let mut left = self.width.saturating_sub(padding + others);
        for &index in indices {
            let Some(&width) = widths.get(index) else {
                continue;
            };
            if width > left {
                continue;
            }
            left -= width;
            if let Some(column) = table.column_mut(index) {
                // comfy-table's widths count the padding.
                let keep = Width::Fixed(width + 2);
                column.set_constraint(ColumnConstraint::LowerBoundary(keep));
            }
        }
    }

    /// A table cell in the colour of `tone`, when colour is on.
    pub fn cell(&self, text: impl ToString, tone: Tone) -> Cell {
        let cell = Cell::new(text.to_string());
        if self.color {
            tone.cell(cell)
        } else {
            cell
        }
    }

    /// `text` in the colour of `tone`, when colour is on. Paint after wrapping: the
    /// escape codes take no columns on screen but would count as text.
    pub fn paint(&self, text: &str, tone: Tone) -> String {
        if self.color && tone != Tone::Plain {
            let style = tone.style();
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }

    /// `line` with the first `word` in it painted (the status in a wrapped heading).
    pub fn paint_word(&self, line: &str, word: &str, tone: Tone) -> String {
        match line.split_once(word) {
            Some((before, after)) if self.color && !word.is_empty() => {
                format!("{before}{}{after}", self.paint(word, tone))
            }
            _ => line.to_string(),
        }
    }

    /// `text` wrapped to the width, continuation lines indented by `indent` columns.
    pub fn wrap(&self, text: &str, indent: usize) -> Vec<String> {
        wrap(text, usize::from(self.width), indent)
    }

    /// Writes `text` wrapped to the width, continuation lines indented by `indent`.
    pub fn write_wrapped(
        &self,
        out: &mut dyn Write,
        text: &str,
        indent: usize,
    ) -> std::io::Result<()> {
        for line in self.wrap(text, indent) {
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}

/// Display columns a string takes (wide characters take two).
pub fn columns(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// `text` cut to at most `max` columns with an ellipsis in the middle, so that both ends
/// of an identifier stay recognisable (`8c2d3a5e…7f01`).
pub fn shorten_middle(text: &str, max: usize) -> String {
    if columns(text) <= max || max < 3 {
        return text.to_string();
    }
    let keep = max - 1;
    let head_len = keep.div_ceil(2);
    let tail_len = keep - head_len;
    let head: String = text.chars().take(head_len).collect();
    let tail: Vec<char> = text.chars().rev().take(tail_len).collect();
    let tail: String = tail.into_iter().rev().collect();
    format!("{head}…{tail}")
}

/// Greedy word wrap to `width` display columns. Continuation lines start with `indent`
/// spaces; a word longer than a line (a long path) is cut where the line ends. Runs of
/// spaces inside a line are kept: the renderings use two spaces as a separator.
pub fn wrap(text: &str, width: usize, indent: usize) -> Vec<String> {
    // An indent that leaves less than half the line would make a column of fragments.
    let indent = if indent * 2 > width { 0 } else { indent };
    let mut lines = Vec::new();
    let mut line = String::new();
    // Columns used, and where this line's own text starts (after the indent).
    let mut used = 0usize;
    let mut start = 0usize;
    let mut new_line = |line: &mut String, used: &mut usize, start: &mut usize| {
        // A two-space separator where the line breaks would leave a trailing space.
        let ended = line.trim_end().len();
        line.truncate(ended);
        lines.push(std::mem::replace(line, " ".repeat(indent)));
        *used = indent;
        *start = indent;
    };
    for (index, word) in text.split(' ').enumerate() {
        if index > 0 {
            let fits = used + 1 + columns(word) <= width;
            if used > start && !fits && !word.is_empty() {
                new_line(&mut line, &mut used, &mut start);
            } else if (used > start || start == 0) && used < width {
                // The separator, except at the start of a continuation line.
                line.push(' ');
                used += 1;
            }
        }
        for c in word.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width && used > start {
                new_line(&mut line, &mut used, &mut start);
            }
            line.push(c);
            used += w;
        }
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_line_never_ends_in_a_space() {
        let text =
            "  /root/.aws/credentials:3  AWS credential (AWS secret access key)  [Bp6f…ab03ee53]";
        let lines = wrap(text, 80, 4);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines.iter().all(|l| !l.ends_with(' ')), "{lines:#?}");
    }

    #[test]
    fn wrapping_keeps_to_the_width_and_indents() {
        let text = "  /etc/ssh/ssh_host_ed25519_key  SSH host key baked into the image (file, 30 bytes)  [new]";
        let lines = wrap(text, 40, 4);
        assert!(lines.iter().all(|l| columns(l) <= 40), "{lines:#?}");
        assert!(
            lines.iter().skip(1).all(|l| l.starts_with("    ")),
            "{lines:#?}"
        );
        let joined: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
        let words: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(joined, words);
        assert_eq!(wrap("short", 40, 4), ["short"]);
        assert_eq!(wrap("", 40, 4), [""]);
    }

    #[test]
    fn a_word_longer_than_the_line_is_cut() {
        let long = "x".repeat(100);
        let lines = wrap(&format!("a {long}"), 30, 2);
        assert!(lines.iter().all(|l| columns(l) <= 30), "{lines:#?}");
        assert_eq!(lines.concat().matches('x').count(), 100);
    }

    #[test]
    fn identifiers_lose_their_middle() {
        let uuid = "8c2d3a5e-1b4f-4c6d-9e0a-3b5c7d9e7f01";
        assert_eq!(shorten_middle(uuid, 13), "8c2d3a…9e7f01");
        assert_eq!(columns(&shorten_middle(uuid, 13)), 13);
        assert_eq!(shorten_middle(uuid, 9), "8c2d…7f01");
        assert_eq!(shorten_middle("short", 13), "short");
    }

    #[test]
    fn colour_only_when_on() {
        let plain = Terminal::new(false, 80);
        assert_eq!(plain.paint("FAIL", Tone::Alarm), "FAIL");
        let colored = Terminal::new(true, 80);
        let painted = colored.paint("FAIL", Tone::Alarm);
        assert!(painted.starts_with("\u{1b}[") && painted.contains("FAIL"));
        assert!(painted.ends_with("\u{1b}[0m"), "{painted:?}");
        assert_eq!(colored.paint("x", Tone::Plain), "x");
        assert_eq!(Terminal::new(false, 10).width(), MIN_WIDTH);
    }
}
