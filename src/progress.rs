//! How far a long pass has come: a progress bar on a terminal (windows done of planned,
//! tasks, tasks/s, retries, ETA), a plain log line at most every [`LINE_EVERY`] elsewhere
//! (systemd, pipes), and a log writer that lifts the bar out of the way of each log line.

use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::source::ApiStats;

/// The least time between two progress lines when there is no terminal.
pub const LINE_EVERY: Duration = Duration::from_secs(30);

/// The bar on screen, if any: the log writer suspends it around every log line.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A bar redrawn in place (stderr is a terminal).
    Bar,
    /// An `info` line at most every [`LINE_EVERY`].
    Lines,
}

impl Mode {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn detect() -> Mode {
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) { Mode::Bar } else { Mode::Lines }
    }
}

/// One pass's progress; does nothing until [`Progress::begin`].
pub struct Progress {
    /// Bar or lines.
    mode: Mode,
    /// Retries so far come from the client's counters.
    stats: Arc<ApiStats>,
    /// The tracked part of the pass, once begun.
    active: Mutex<Option<Active>>,
}

/// What is being tracked.
struct Active {
    /// "backfill" or "first pass".
    label: &'static str,
    /// Windows planned and done.
    planned: u64,
    /// Windows done so far.
    done: u64,
    /// Tasks received so far.
    tasks: u64,
    /// The client's retry count when this began.
    retries_base: u64,
    /// For tasks/s and the ETA.
    started: Instant,
    /// When the last line was written (lines mode).
    lines: Throttle,
    /// The bar (bar mode).
    bar: Option<ProgressBar>,
}

/// Lets a line through at most once per period.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    /// When a line last went out (or tracking began).
    last: Instant,
    /// The least time between two lines.
    every: Duration,
}

impl Throttle {
    pub fn new(start: Instant, every: Duration) -> Throttle {
        Throttle { last: start, every }
    }

    /// Whether a line may go out at `now`; if so, the period restarts.
    pub fn due(&mut self, now: Instant) -> bool {
        let due = now.duration_since(self.last) >= self.every;
        if due {
            self.last = now;
        }
        due
    }
}

impl Progress {
    pub fn new(mode: Mode, stats: Arc<ApiStats>) -> Progress {
        Progress { mode, stats, active: Mutex::new(None) }
    }

    /// Starts tracking `windows` planned windows.
    pub fn begin(&self, label: &'static str, windows: usize) {
        let now = Instant::now();
        let bar = (self.mode == Mode::Bar).then(|| {
            let style = ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} windows, {msg}, ETA {eta}",
            )
            .expect("the template is valid");
            let bar = ProgressBar::with_draw_target(Some(windows as u64), ProgressDrawTarget::stderr())
                .with_style(style.progress_chars("=> "))
                .with_prefix(label);
            bar.set_message("0 tasks");
            bar.enable_steady_tick(Duration::from_millis(200));
            *BAR.lock().expect("never poisoned") = Some(bar.clone());
            bar
        });
        *self.active.lock().expect("never poisoned") = Some(Active {
            label,
            planned: windows as u64,
            done: 0,
            tasks: 0,
            retries_base: self.stats.retries.load(Relaxed),
            started: now,
            lines: Throttle::new(now, LINE_EVERY),
            bar,
        });
    }

    /// One window finished (committed or left behind) with `tasks` tasks.
    pub fn window_done(&self, tasks: u64) {
        let mut guard = self.active.lock().expect("never poisoned");
        let Some(a) = guard.as_mut() else { return };
        a.done += 1;
        a.tasks += tasks;
        let secs = a.started.elapsed().as_secs_f64().max(1e-3);
        let rate = (a.tasks as f64 / secs) as u64;
        let retries = self.stats.retries.load(Relaxed) - a.retries_base;
        match &a.bar {
            Some(bar) => {
                bar.set_message(format!("{} tasks, {}/s, {retries} retries", HumanCount(a.tasks), HumanCount(rate)));
                bar.set_position(a.done);
            }
            None if a.lines.due(Instant::now()) => {
                let left = a.planned.saturating_sub(a.done);
                let eta_s = (secs / a.done as f64 * left as f64).round() as u64;
                tracing::info!(
                    pass = a.label,
                    windows_done = a.done,
                    windows_planned = a.planned,
                    tasks = a.tasks,
                    tasks_per_s = rate,
                    retries,
                    eta_s,
                    "Progress"
                );
            }
            None => {}
        }
    }

    /// Stops tracking; the bar leaves the screen.
    pub fn finish(&self) {
        if let Some(Active { bar: Some(bar), .. }) = self.active.lock().expect("never poisoned").take() {
            *BAR.lock().expect("never poisoned") = None;
            bar.finish_and_clear();
        }
    }
}

/// The log writer: stderr, with the bar (when one is shown) lifted around each write so
/// that log lines and the bar never share a line.
pub fn log_writer() -> LogWriter {
    LogWriter
}

/// See [`log_writer`].
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = BAR.lock().expect("never poisoned").clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf)).map(|()| buf.len()),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_goes_out_at_most_once_per_period() {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(t0, LINE_EVERY);
        assert!(!throttle.due(t0 + Duration::from_secs(10)), "not before the first period has passed");
        assert!(throttle.due(t0 + Duration::from_secs(30)));
        assert!(!throttle.due(t0 + Duration::from_secs(59)), "the period restarts at each line");
        assert!(throttle.due(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn without_a_terminal_nothing_is_drawn_and_windows_are_counted() {
        let p = Progress::new(Mode::Lines, Arc::new(ApiStats::default()));
        p.window_done(5); // before begin: ignored
        p.begin("backfill", 3);
        p.window_done(10);
        p.window_done(20);
        let guard = p.active.lock().unwrap();
        let a = guard.as_ref().unwrap();
        assert_eq!((a.done, a.tasks, a.planned), (2, 30, 3));
        assert!(a.bar.is_none() && BAR.lock().unwrap().is_none());
    }
}
