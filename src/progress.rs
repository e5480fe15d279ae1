//! How far a scan is, and showing it: counters that the walk and the rules update from any
//! worker thread, and a display thread that draws them on stderr (an indicatif bar on a
//! terminal, plain lines for logs, or nothing). Knows nothing of disk formats or rules:
//! callers report into a [`Progress`], and only a caller holding one pays for it.
//!
//! The counters are atomics and the hot callers batch their updates (the walk per few
//! hundred entries, the secrets pass per few MiB), so a scan with progress shown runs at
//! the speed of one without. Phase changes are rare and take a lock; they are also sent to
//! the display as events, so a phase shorter than a redraw still gets its line in a log.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::filesystems::Usage;

/// Redraws of the terminal display per second, at most.
const TERMINAL_HZ: u8 = 10;
/// How often a log gets a line when no phase changes.
pub const LINE_INTERVAL: Duration = Duration::from_secs(2);
/// An ETA from less than this much of a phase is mostly noise, so none is shown.
const MIN_ELAPSED_FOR_ETA: Duration = Duration::from_millis(500);
/// Mounts beyond this many are walked but not named while walking (one bit each).
const NAMED_MOUNTS: usize = 64;

/// What the scan is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Opening the image, reading partition tables and superblocks, assembling the guest.
    Opening,
    /// The inventory walk.
    Walking,
    /// The secrets pass: reading every selected file's contents.
    Reading,
    /// Rules running over what was collected.
    Evaluating,
    /// The scan ended and its report follows.
    Done,
    /// The scan ended early (an error, or the display was dropped without `finish`).
    Stopped,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opening => "opening",
            Self::Walking => "walking",
            Self::Reading => "reading file contents",
            Self::Evaluating => "evaluating rules",
            Self::Done => "done",
            Self::Stopped => "stopped",
        }
    }
}

/// What a phase's ETA is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Basis {
    /// No total known: no ETA.
    None,
    /// Nodes walked against the filesystems' counts of nodes in use.
    Files,
    /// Bytes read (plus bytes known to be skipped) against a byte total.
    Bytes,
}

/// A counter on a cache line of its own, so workers bumping one do not slow the others.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Counter(AtomicU64);

impl Counter {
    fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One mount of the tree being walked, and what its filesystem says it holds.
#[derive(Debug, Clone)]
pub struct MountTotals {
    /// The guest path, already escaped for a terminal.
    pub path: String,
    /// Index of the volume in the guest's layout.
    pub volume: usize,
    pub usage: Usage,
}

/// Phase-level state: changed a few times per scan, under a lock.
#[derive(Debug)]
struct State {
    phase: Phase,
    /// Shown after the phase's name ("of 1 234 files, 56.7 MiB").
    detail: String,
    basis: Basis,
    total: u64,
    /// The basis counter's value when the phase began.
    base: u64,
    started: Instant,
    volume_names: Vec<String>,
    /// "p1 at /", by mount index.
    mounts: Vec<String>,
}

enum Event {
    Changed(Snapshot),
    Stop(Phase),
}

/// How far a scan is; shared by reference with every worker.
pub struct Progress {
    files: Counter,
    bytes: Counter,
    /// Bytes a phase planned to read and will not (a binary file stops after its first
    /// KiB): they count towards the ETA, not towards "bytes read".
    credit: Counter,
    /// One bit per mount being walked now.
    walking: AtomicU64,
    state: Mutex<State>,
    events: Mutex<Option<Sender<Event>>>,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("files", &self.files.get())
            .field("bytes", &self.bytes.get())
            .field("phase", &self.lock_state().phase)
            .finish_non_exhaustive()
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// What a display shows at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub phase: Phase,
    /// The phase with its detail: "walking p1 at /", "reading file contents of 12 files".
    pub label: String,
    pub files: u64,
    pub bytes: u64,
    /// Share of the phase done, 0 to 1, when the phase has a total.
    pub fraction: Option<f64>,
    pub eta: Option<Duration>,
}

impl Progress {
    /// Counters at zero, in the opening phase, reporting to no display.
    pub fn new() -> Self {
        Self {
            files: Counter::default(),
            bytes: Counter::default(),
            credit: Counter::default(),
            walking: AtomicU64::new(0),
            state: Mutex::new(State {
                phase: Phase::Opening,
                detail: String::new(),
                basis: Basis::None,
                total: 0,
                base: 0,
                started: Instant::now(),
                volume_names: Vec::new(),
                mounts: Vec::new(),
            }),
            events: Mutex::new(None),
        }
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Nodes walked so far.
    pub fn files(&self) -> u64 {
        self.files.get()
    }

    /// File content read so far (by the walk's hashing, the secrets pass, content rules).
    pub fn bytes(&self) -> u64 {
        self.bytes.get()
    }

    pub fn add_files(&self, n: u64) {
        self.files.add(n);
    }

    pub fn add_bytes(&self, n: u64) {
        self.bytes.add(n);
    }

    /// Bytes the phase planned to read that will not be read: done, as far as the ETA goes.
    pub fn credit_bytes(&self, n: u64) {
        self.credit.add(n);
    }

    #[cfg(test)]
    pub(crate) fn credited(&self) -> u64 {
        self.credit.get()
    }

    #[cfg(test)]
    pub(crate) fn phase(&self) -> Phase {
        self.lock_state().phase
    }

    /// Names the guest's volumes, so the walk can say "walking p1 at /".
    pub fn opened(&self, volume_names: Vec<String>) {
        self.lock_state().volume_names = volume_names;
    }

    /// Enters a phase without a total (opening, evaluating rules).
    pub fn set_phase(&self, phase: Phase) {
        self.begin(phase, String::new(), Basis::None, 0);
    }

    /// Starts the walk of `mounts`. Without hashing a walk's time follows the nodes it
    /// visits, so the ETA compares nodes with the filesystems' counts of inodes in use
    /// (FAT counts none: its nodes are walked uncounted in the total); with hashing it
    /// follows the bytes read, compared with the space the filesystems have allocated.
    pub fn begin_walk(&self, mounts: &[MountTotals], hashing: bool) {
        let nodes = mounts
            .iter()
            .filter_map(|m| m.usage.nodes)
            .fold(0u64, u64::saturating_add);
        let bytes = mounts
            .iter()
            .filter_map(|m| m.usage.bytes)
            .fold(0u64, u64::saturating_add);
        let (basis, total) = match (hashing, nodes, bytes) {
            (true, _, bytes) if bytes > 0 => (Basis::Bytes, bytes),
            (_, nodes, _) if nodes > 0 => (Basis::Files, nodes),
            _ => (Basis::None, 0),
        };
        {
            let mut state = self.lock_state();
            let labels = mounts
                .iter()
                .map(|m| {
                    let name = state
                        .volume_names
                        .get(m.volume)
                        .cloned()
                        .unwrap_or_else(|| format!("volume {}", m.volume.saturating_add(1)));
                    format!("{name} at {}", m.path)
                })
                .collect();
            state.mounts = labels;
        }
        self.walking.store(0, Ordering::Relaxed);
        self.begin(Phase::Walking, String::new(), basis, total);
    }

    /// A worker started walking mount `index`: the display names it, and a log gets a line.
    pub fn mount_started(&self, index: usize) {
        if let Some(bit) = mount_bit(index) {
            self.walking.fetch_or(bit, Ordering::Relaxed);
        }
        self.notify();
    }

    pub fn mount_finished(&self, index: usize) {
        if let Some(bit) = mount_bit(index) {
            self.walking.fetch_and(!bit, Ordering::Relaxed);
        }
    }

    /// Starts reading the contents of `files` files holding `bytes` bytes (already capped
    /// at what will be read of each): the ETA is byte-accurate.
    pub fn begin_reading(&self, files: usize, bytes: u64) {
        let detail = format!("of {files} files, {}", mib(bytes));
        self.begin(Phase::Reading, detail, Basis::Bytes, bytes);
    }

    fn begin(&self, phase: Phase, detail: String, basis: Basis, total: u64) {
        let snapshot = {
            let mut state = self.lock_state();
            state.phase = phase;
            state.detail = detail;
            state.basis = basis;
            state.total = total;
            state.base = self.basis_count(basis);
            state.started = Instant::now();
            self.snapshot_of(&state, Instant::now())
        };
        self.send(Event::Changed(snapshot));
    }

    fn basis_count(&self, basis: Basis) -> u64 {
        match basis {
            Basis::None => 0,
            Basis::Files => self.files.get(),
            Basis::Bytes => self.bytes.get().saturating_add(self.credit.get()),
        }
    }

    fn notify(&self) {
        let snapshot = self.snapshot();
        self.send(Event::Changed(snapshot));
    }

    fn send(&self, event: Event) {
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = events.as_ref() {
            // A display that has gone away wants no more events; nothing to do about it.
            let _ = sender.send(event);
        }
    }

    /// What a display shows now.
    pub fn snapshot(&self) -> Snapshot {
        let state = self.lock_state();
        self.snapshot_of(&state, Instant::now())
    }

    fn snapshot_of(&self, state: &State, now: Instant) -> Snapshot {
        let mut label = state.phase.as_str().to_string();
        if state.phase == Phase::Walking {
            let walking = self.walking.load(Ordering::Relaxed);
            let names: Vec<&str> = state
                .mounts
                .iter()
                .enumerate()
                .filter(|(i, _)| mount_bit(*i).is_some_and(|bit| walking & bit != 0))
                .map(|(_, name)| name.as_str())
                .collect();
            if !names.is_empty() {
                label.push(' ');
                label.push_str(&names.join(", "));
            }
        }
        if !state.detail.is_empty() {
            label.push(' ');
            label.push_str(&state.detail);
        }
        let done = self.basis_count(state.basis).saturating_sub(state.base);
        let (fraction, eta) = match state.basis {
            Basis::None => (None, None),
            Basis::Files | Basis::Bytes if state.total == 0 => (None, None),
            Basis::Files | Basis::Bytes => (
                Some((done as f64 / state.total as f64).min(1.0)),
                eta(
                    done,
                    state.total,
                    now.saturating_duration_since(state.started),
                ),
            ),
        };
        Snapshot {
            phase: state.phase,
            label,
            files: self.files.get(),
            bytes: self.bytes.get(),
            fraction,
            eta,
        }
    }

    /// The final snapshot: the phase the scan ended in, counts as they stand, no ETA.
    fn final_snapshot(&self, phase: Phase) -> Snapshot {
        Snapshot {
            phase,
            label: phase.as_str().to_string(),
            files: self.files.get(),
            bytes: self.bytes.get(),
            fraction: None,
            eta: None,
        }
    }

    fn connect(&self) -> Receiver<Event> {
        let (sender, receiver) = mpsc::channel();
        *self.events.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender);
        receiver
    }

    /// Tells the display to draw its last and stop; later events go nowhere.
    fn disconnect(&self, phase: Phase) {
        let sender = self
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(sender) = sender {
            let _ = sender.send(Event::Stop(phase));
        }
    }
}

fn mount_bit(index: usize) -> Option<u64> {
    (index < NAMED_MOUNTS).then(|| 1u64 << index)
}

/// Time left at the pace so far; `None` until there is a pace worth extrapolating, and
/// once the estimate has run out (the totals are estimates: hard links, sparse files and
/// metadata make them inexact).
pub fn eta(done: u64, total: u64, elapsed: Duration) -> Option<Duration> {
    if done == 0 || done >= total || elapsed < MIN_ELAPSED_FOR_ETA {
        return None;
    }
    let left = (total - done) as f64 * elapsed.as_secs_f64() / done as f64;
    Duration::try_from_secs_f64(left).ok()
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

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
    use rayon::prelude::*;

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
    fn an_eta_needs_a_pace_and_work_left() {
        let second = Duration::from_secs(1);
        assert_eq!(eta(0, 100, second), None);
        assert_eq!(eta(100, 100, second), None);
        assert_eq!(eta(150, 100, second), None);
        assert_eq!(eta(50, 100, Duration::from_millis(10)), None);
        assert_eq!(eta(25, 100, second), Some(Duration::from_secs(3)));
        assert_eq!(
            eta(1, 1_000_001, second),
            Some(Duration::from_secs(1_000_000))
        );
        // Past what a Duration holds: no estimate rather than a wrapped one.
        assert_eq!(eta(1, u64::MAX, Duration::from_secs(10)), None);
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

    #[test]
    fn counters_add_up_across_rayon_workers() {
        let progress = Progress::new();
        (0..10_000u64).into_par_iter().for_each(|i| {
            progress.add_files(1);
            progress.add_bytes(i);
        });
        assert_eq!(progress.files(), 10_000);
        assert_eq!(progress.bytes(), (0..10_000u64).sum::<u64>());
    }

    #[test]
    fn the_walk_total_comes_from_the_filesystems_counts() {
        let progress = Progress::new();
        let mounts = [
            MountTotals {
                path: "/".into(),
                volume: 0,
                usage: Usage {
                    nodes: Some(300),
                    bytes: Some(4 << 20),
                },
            },
            // FAT: bytes only.
            MountTotals {
                path: "/boot/efi".into(),
                volume: 1,
                usage: Usage {
                    nodes: None,
                    bytes: Some(1 << 20),
                },
            },
        ];
        progress.begin_walk(&mounts, false);
        progress.add_files(75);
        let seen = progress.snapshot();
        assert_eq!(seen.fraction, Some(0.25));
        assert_eq!(seen.label, "walking");
        progress.mount_started(1);
        assert_eq!(progress.snapshot().label, "walking volume 2 at /boot/efi");

        // Hashing: the bytes allocated are the total, counted from the phase's start.
        progress.begin_walk(&mounts, true);
        progress.add_bytes(1 << 20);
        progress.credit_bytes(1 << 20);
        assert_eq!(progress.snapshot().fraction, Some(0.4));

        // More nodes than the estimate (hard links): full, never past.
        progress.begin_walk(&mounts, false);
        progress.add_files(1_000);
        assert_eq!(progress.snapshot().fraction, Some(1.0));
        assert_eq!(progress.snapshot().eta, None);
    }

    #[test]
    fn the_reading_phase_counts_planned_bytes() {
        let progress = Progress::new();
        progress.add_bytes(999);
        progress.begin_reading(3, 4 << 20);
        progress.add_bytes(1 << 20);
        progress.credit_bytes(1 << 20);
        let seen = progress.snapshot();
        assert_eq!(seen.label, "reading file contents of 3 files, 4.0 MiB");
        assert_eq!(seen.fraction, Some(0.5));
        assert_eq!(seen.bytes, 999 + (1 << 20));
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
