//! Window planning, pure: `[from, to)` minus what is done -> day-aligned windows; splitting.
//!
//! A window never crosses a UTC midnight, so each one feeds exactly one partition and a
//! window's checkpoint covers exactly the rows that partition file holds for it.

use crate::time::{DAY, floor_day, show};

/// A half-open range `[start, end)` of `create_time`, unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// First second of the window (inclusive, unix seconds).
    pub start: i64,
    /// First second after the window (exclusive, unix seconds).
    pub end: i64,
}

impl Window {
    pub fn new(start: i64, end: i64) -> Window {
        debug_assert!(start < end, "a window is never empty");
        Window { start, end }
    }

    pub fn width(&self) -> i64 {
        self.end - self.start
    }

    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && t < self.end
    }

    /// `n` consecutive windows of (nearly) equal width covering this one (at least two;
    /// fewer than `n` when it is narrower than `n` seconds), or `None` for a one-second
    /// window, which cannot be split.
    pub fn split_into(&self, n: u64) -> Option<Vec<Window>> {
        let n = (n.max(2) as i64).min(self.width());
        if n < 2 {
            return None;
        }
        let bounds: Vec<i64> =
            (0..=n).map(|i| self.start + (self.width() as i128 * i as i128 / n as i128) as i64).collect();
        Some(bounds.windows(2).map(|b| Window::new(b[0], b[1])).collect())
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {})", show(self.start), show(self.end))
    }
}

/// A range that could not be committed exactly, with the reason: left for the next pass.
/// The walker hands it over, the commit records it, the pass summary and the exit-3
/// sentence name it; printed `[start, end) (reason)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftBehind {
    /// The range not committed.
    pub window: Window,
    /// Why, in a sentence.
    pub reason: String,
}

impl std::fmt::Display for LeftBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.window, self.reason)
    }
}

/// As the runs table has always stored it: one string per range.
impl serde::Serialize for LeftBehind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Sorts and merges overlapping or touching intervals.
pub fn coalesce(mut intervals: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    intervals.retain(|(s, e)| s < e);
    intervals.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(intervals.len());
    for (s, e) in intervals {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The parts of `[from, to)` not covered by `done`, in order.
pub fn subtract(from: i64, to: i64, done: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut gaps = Vec::new();
    let mut cursor = from;
    for (s, e) in coalesce(done.to_vec()) {
        if e <= cursor || s >= to {
            continue;
        }
        if s > cursor {
            gaps.push((cursor, s.min(to)));
        }
        cursor = cursor.max(e);
        if cursor >= to {
            break;
        }
    }
    if cursor < to {
        gaps.push((cursor, to));
    }
    gaps
}

/// The windows still to do in `[from, to)`, cut at every UTC midnight, oldest first.
pub fn pending_windows(from: i64, to: i64, done: &[(i64, i64)]) -> Vec<Window> {
    let mut out = Vec::new();
    for (s, e) in subtract(from, to, done) {
        let mut start = s;
        while start < e {
            let end = (floor_day(start) + DAY).min(e);
            out.push(Window::new(start, end));
            start = end;
        }
    }
    out
}

/// Windows that re-check unfinished tasks created at `times` (sorted): neighbours closer
/// than `gap` seconds share a window, so a cluster costs one request, not one per task.
/// Windows never cross a UTC midnight.
pub fn recheck_windows(times: &[i64], gap: i64) -> Vec<Window> {
    let mut out: Vec<Window> = Vec::new();
    for &t in times {
        match out.last_mut() {
            Some(w) if t < w.end + gap && floor_day(t) == floor_day(w.start) => w.end = w.end.max(t + 1),
            _ => out.push(Window::new(t, t + 1)),
        }
    }
    out
}

/// Tracks which of a pass's forward windows are checkpointed, to move the cursor only
/// past an unbroken run of them (windows finish out of order).
#[derive(Debug, Default)]
pub struct CursorTracker {
    /// start -> (end, checkpointed), for every forward window of the pass.
    windows: std::collections::BTreeMap<i64, (i64, bool)>,
    /// The cursor last returned.
    reached: Option<i64>,
}

impl CursorTracker {
    pub fn new(windows: &[Window]) -> CursorTracker {
        CursorTracker { windows: windows.iter().map(|w| (w.start, (w.end, false))).collect(), reached: None }
    }

    /// Records `window` as checkpointed; returns the new cursor if it moved.
    pub fn done(&mut self, window: Window) -> Option<i64> {
        if let Some(entry) = self.windows.get_mut(&window.start) {
            entry.1 = true;
        }
        let mut cursor = None;
        for (end, done) in self.windows.values() {
            if !*done {
                break;
            }
            cursor = Some(*end);
        }
        if cursor.is_some() && cursor != self.reached {
            self.reached = cursor;
            return cursor;
        }
        None
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
