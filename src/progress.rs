//! How far a scan is: counters that the walk and the rules update from any worker thread,
//! the phase with its totals, and an ETA. Knows nothing of disk formats, rules or how
//! progress is shown (`commands::display` draws it): callers report into a [`Progress`],
//! and only a caller holding one pays for it.
//!
//! The counters are atomics and the hot callers batch their updates (the walk per few
//! hundred entries, the secrets pass per few MiB), so a scan with progress shown runs at
//! the speed of one without. Phase changes are rare and take a lock; they are also sent to
//! a connected display as events, so a phase shorter than a redraw still gets its line in
//! a log.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::filesystems::Usage;

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

/// What a display hears: a phase changed (draw now), or the scan ended in a phase.
pub enum Event {
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

    #[cfg(any(test, feature = "test-support"))]
    pub fn credited(&self) -> u64 {
        self.credit.get()
    }

    #[cfg(any(test, feature = "test-support"))]
    pub fn phase(&self) -> Phase {
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
    pub fn final_snapshot(&self, phase: Phase) -> Snapshot {
        Snapshot {
            phase,
            label: phase.as_str().to_string(),
            files: self.files.get(),
            bytes: self.bytes.get(),
            fraction: None,
            eta: None,
        }
    }

    /// Sends phase changes to the returned receiver (one display at a time).
    pub fn connect(&self) -> Receiver<Event> {
        let (sender, receiver) = mpsc::channel();
        *self.events.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender);
        receiver
    }

    /// Tells the display to draw its last and stop; later events go nowhere.
    pub fn disconnect(&self, phase: Phase) {
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

/// Bytes as MiB with one decimal, as progress shows them.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use rayon::prelude::*;

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
}
