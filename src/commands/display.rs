//! Showing a scan's progress on stderr, for the command line only: a display thread that
//! draws a [`Progress`]'s counters as an indicatif bar on a terminal, as plain lines for
//! logs, or not at all. The counters themselves live in `crate::progress`.

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{mib, Event, Phase, Progress, Snapshot};

/// Redraws of the terminal display per second, at most.
const TERMINAL_HZ: u8 = 10;
/// How often a log gets a line when no phase changes.
pub const LINE_INTERVAL: Duration = Duration::from_secs(2);

/// Whole seconds, rounded up, so that "ETA 0s" is never shown while work remains.
fn eta_seconds(eta: Duration) -> u64 {
    eta.as_secs() + u64::from(eta.subsec_nanos() > 0)
}

/// `N files, X MiB read[, ETA Ns]`.
fn counts(snapshot: &Snapshot) -> String {
    let mut text = format!("{} files, {} read", snapshot.files, mib(snapshot.bytes));
    if let Some(eta) = snapshot.eta {
        text.push_str(&format!(", ETA {}s", eta_seconds(eta)));
    }
    text
}

/// The text after the image name: `PHASE: N files, X MiB read[, ETA Ns]`.
fn status(snapshot: &Snapshot) -> String {
    format!("{}: {}", snapshot.label, counts(snapshot))
}

/// One line of the `Lines` display: `amiscan: IMAGE: PHASE: N files, X MiB read[, ETA Ns]`.
/// `image` must already be escaped for a terminal.
pub fn format_line(image: &str, snapshot: &Snapshot) -> String {
    format!("amiscan: {image}: {}", status(snapshot))
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A bar redrawn in place on stderr, cleared at the end.
    Terminal,
    /// Plain lines on stderr (CI logs): one per phase change, at most one more every
    /// [`LINE_INTERVAL`], and a last one when the scan ends.
    Lines,
    Off,
}

impl Mode {
    /// `--quiet` wins; a terminal gets the bar; anything else gets lines only when asked
    /// with `--progress`.
    pub fn choose(stderr_is_terminal: bool, progress_flag: bool, quiet: bool) -> Self {
        match (quiet, stderr_is_terminal, progress_flag) {
            (true, _, _) => Self::Off,
            (false, true, _) => Self::Terminal,
            (false, false, true) => Self::Lines,
            (false, false, false) => Self::Off,
        }
    }

    /// [`Mode::choose`] for this process's stderr.
    pub fn for_stderr(progress_flag: bool, quiet: bool) -> Self {
        Self::choose(std::io::stderr().is_terminal(), progress_flag, quiet)
    }
}

/// A running display: holds the [`Progress`] it shows and the thread drawing it. Dropping
/// it stops the thread and waits for it, whatever path the scan leaves by (the last line
/// then says `stopped`); [`Display::finish`] does the same with `done`.
#[must_use = "dropping the display stops it at once"]
pub struct Display {
    /// `None` when nothing is shown, so no caller counts anything.
    progress: Option<Arc<Progress>>,
    /// Taken by the first of `finish` and `drop`.
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Display {
    /// Starts showing the scan of `image_name` on stderr, in the opening phase.
    pub fn start(mode: Mode, image_name: &str) -> Self {
        Self::start_with(mode, image_name, Box::new(std::io::stderr()))
    }

    /// The same, with `Lines` written to `out` (the terminal bar always draws on stderr,
    /// and only when stderr is a terminal).
    pub fn start_with(mode: Mode, image_name: &str, out: Box<dyn Write + Send>) -> Self {
        let off = Self {
            progress: None,
            thread: Mutex::new(None),
        };
        if mode == Mode::Off {
            return off;
        }
        let progress = Arc::new(Progress::new());
        let events = progress.connect();
        let shown = Arc::clone(&progress);
        let image = crate::names::escape_for_terminal(image_name.as_bytes());
        let spawned = std::thread::Builder::new()
            .name("amiscan-progress".into())
            .spawn(move || match mode {
                Mode::Terminal => draw_terminal(&image, &shown, &events),
                Mode::Lines => write_lines(&image, &shown, &events, out),
                Mode::Off => {}
            });
        match spawned {
            Ok(thread) => {
                progress.set_phase(Phase::Opening);
                Self {
                    progress: Some(progress),
                    thread: Mutex::new(Some(thread)),
                }
            }
            // Progress is a courtesy: a scan that cannot have a thread for it runs without.
            Err(_) => off,
        }
    }

    /// The counters to hand to the walk and the rules; `None` when nothing is shown.
    pub fn progress(&self) -> Option<&Progress> {
        self.progress.as_deref()
    }

    /// Ends the display after a complete scan: the last line says `done`, the bar is
    /// cleared, the thread has stopped when this returns. Call it before anything else is
    /// written to stderr (notes, `--verbose` lines) and before the report. Takes `&self`,
    /// so the counters may still be borrowed; they count on, shown nowhere.
    pub fn finish(&self) {
        self.stop(Phase::Done);
    }

    fn stop(&self, phase: Phase) {
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(thread) = thread else {
            return;
        };
        if let Some(progress) = &self.progress {
            progress.disconnect(phase);
        }
        // A display thread that panicked has nothing left to draw.
        let _ = thread.join();
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.stop(Phase::Stopped);
    }
}

fn write_lines(
    image: &str,
    progress: &Progress,
    events: &Receiver<Event>,
    mut out: Box<dyn Write + Send>,
) {
    let mut last_written: Option<(Instant, String)> = None;
    let mut write = |line: String, last: &mut Option<(Instant, String)>| {
        // Nothing to do if stderr is gone; the scan's own output matters more.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        *last = Some((Instant::now(), line));
    };
    loop {
        let wait = last_written.as_ref().map_or(LINE_INTERVAL, |(at, _)| {
            LINE_INTERVAL.saturating_sub(at.elapsed())
        });
        match events.recv_timeout(wait) {
            Ok(Event::Changed(snapshot)) => {
                write(format_line(image, &snapshot), &mut last_written);
            }
            Ok(Event::Stop(phase)) => {
                let line = format_line(image, &progress.final_snapshot(phase));
                write(line, &mut last_written);
                return;
            }
            Err(RecvTimeoutError::Timeout) => {
                let line = format_line(image, &progress.snapshot());
                // A phase with nothing to count (evaluating rules) would repeat itself.
                if last_written.as_ref().is_some_and(|(_, last)| *last == line) {
                    last_written = Some((Instant::now(), line));
                } else {
                    write(line, &mut last_written);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn draw_terminal(image: &str, progress: &Progress, events: &Receiver<Event>) {
    let tick = Duration::from_millis(1000 / u64::from(TERMINAL_HZ));
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(TERMINAL_HZ));
    // One template for the whole scan, and one update per redraw (the message): changing
    // the style or the position separately would draw frames that mix two states.
    let style = ProgressStyle::with_template("{spinner} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    // The line is narrow: the file name says which image, the lines mode the whole path.
    let name = image.rsplit('/').next().unwrap_or(image);
    // A change or a tick redraws; a stop (or a display gone) ends the loop.
    while let Ok(Event::Changed(_)) | Err(RecvTimeoutError::Timeout) = events.recv_timeout(tick) {
        let snapshot = progress.snapshot();
        let gauge = snapshot.fraction.map(gauge).unwrap_or_default();
        // Counts first: a narrow terminal cuts the end of the line.
        bar.set_message(format!(
            "{name} {gauge}{} · {}",
            counts(&snapshot),
            snapshot.label
        ));
        // Turns the spinner; it shows on the next redraw the rate limit lets through.
        bar.tick();
    }
    bar.finish_and_clear();
}

/// `[=========>          ] ` for a share done, 0 to 1.
fn gauge(fraction: f64) -> String {
    const WIDTH: usize = 20;
    let filled = ((fraction.clamp(0.0, 1.0) * WIDTH as f64) as usize).min(WIDTH);
    let head = usize::from(filled < WIDTH);
    format!(
        "[{}{}{}] ",
        "=".repeat(filled),
        ">".repeat(head),
        " ".repeat(WIDTH - filled - head)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::filesystems::Usage;
    use crate::progress::MountTotals;

    fn snapshot(label: &str, files: u64, bytes: u64, eta: Option<Duration>) -> Snapshot {
        Snapshot {
            phase: Phase::Walking,
            label: label.to_string(),
            files,
            bytes,
            fraction: None,
            eta,
        }
    }

    #[test]
    fn a_line_names_image_phase_files_bytes_and_eta() {
        let line = format_line("disk.img", &snapshot("walking p1 at /", 12, 3 << 20, None));
        assert_eq!(
            line,
            "amiscan: disk.img: walking p1 at /: 12 files, 3.0 MiB read"
        );
        let eta = Some(Duration::from_millis(4_200));
        let line = format_line("d", &snapshot("reading file contents", 0, 1 << 19, eta));
        assert_eq!(
            line,
            "amiscan: d: reading file contents: 0 files, 0.5 MiB read, ETA 5s"
        );
    }

    #[test]
    fn the_gauge_is_always_as_wide() {
        assert_eq!(gauge(0.0), "[>                   ] ");
        assert_eq!(gauge(0.5), "[==========>         ] ");
        assert_eq!(gauge(1.0), "[====================] ");
        assert_eq!(gauge(f64::NAN), "[>                   ] ");
        assert_eq!(gauge(7.0), "[====================] ");
    }

    #[test]
    fn the_mode_follows_the_flags_and_the_terminal() {
        assert_eq!(Mode::choose(true, false, false), Mode::Terminal);
        assert_eq!(Mode::choose(true, true, false), Mode::Terminal);
        assert_eq!(Mode::choose(false, true, false), Mode::Lines);
        assert_eq!(Mode::choose(false, false, false), Mode::Off);
        assert_eq!(Mode::choose(true, true, true), Mode::Off);
        assert_eq!(Mode::choose(false, true, true), Mode::Off);
    }

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    #[test]
    fn lines_mode_writes_every_phase_and_a_final_count() {
        let out = Captured::default();
        let display = Display::start_with(Mode::Lines, "a\u{1b}b.img", Box::new(out.clone()));
        let progress = display.progress().unwrap();
        let mounts = [MountTotals {
            path: "/".into(),
            volume: 0,
            usage: Usage::default(),
        }];
        progress.begin_walk(&mounts, false);
        progress.mount_started(0);
        progress.add_files(41);
        progress.mount_finished(0);
        progress.add_files(1);
        progress.begin_reading(2, 10);
        progress.add_bytes(10);
        progress.set_phase(Phase::Evaluating);
        display.finish();
        // Finished: dropping it adds no `stopped` line.
        drop(display);
        let lines = out.lines();
        assert_eq!(
            lines,
            [
                "amiscan: a\\u{1b}b.img: opening: 0 files, 0.0 MiB read",
                "amiscan: a\\u{1b}b.img: walking: 0 files, 0.0 MiB read",
                "amiscan: a\\u{1b}b.img: walking volume 1 at /: 0 files, 0.0 MiB read",
                "amiscan: a\\u{1b}b.img: reading file contents of 2 files, 0.0 MiB: 42 files, 0.0 MiB read",
                "amiscan: a\\u{1b}b.img: evaluating rules: 42 files, 0.0 MiB read",
                "amiscan: a\\u{1b}b.img: done: 42 files, 0.0 MiB read",
            ]
        );
    }

    #[test]
    fn a_dropped_display_says_the_scan_stopped() {
        let out = Captured::default();
        {
            let display = Display::start_with(Mode::Lines, "x", Box::new(out.clone()));
            display.progress().unwrap().add_files(3);
        }
        assert_eq!(
            out.lines().last().map(String::as_str),
            Some("amiscan: x: stopped: 3 files, 0.0 MiB read")
        );
    }

    #[test]
    fn off_shows_nothing_and_hands_out_no_counters() {
        let display = Display::start(Mode::Off, "x");
        assert!(display.progress().is_none());
    }

    #[test]
    fn a_quiet_log_gets_a_line_every_interval_at_most() {
        let out = Captured::default();
        let started = Instant::now();
        let display = Display::start_with(Mode::Lines, "x", Box::new(out.clone()));
        let progress = display.progress().unwrap();
        for _ in 0..25 {
            progress.add_files(1);
            std::thread::sleep(Duration::from_millis(100));
        }
        display.finish();
        let elapsed = started.elapsed();
        // The opening line, one periodic line per full interval, the last line.
        let lines = out.lines();
        let periodic = (elapsed.as_secs_f64() / LINE_INTERVAL.as_secs_f64()).floor() as usize;
        assert!(
            lines.len() >= 3 && lines.len() <= 2 + periodic,
            "{elapsed:?}: {lines:?}"
        );
        assert!(lines[1].starts_with("amiscan: x: opening: "), "{lines:?}");
        assert_ne!(lines[1], lines[0], "{lines:?}");
    }
}
