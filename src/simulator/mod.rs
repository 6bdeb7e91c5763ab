//! The built-in simulator of the upstream `list_task` API: a seeded data set whose tasks
//! change status over the simulator's own clock, served with the quirks of
//! `docs/api/list_task.md` and, on request, faults. Tests read its ground truth directly.
//!
//! Rooms: [`dataset`] (the seeded tasks and their timelines), [`past`] (tasks listed late,
//! deleted, their create_time corrected), [`faults`] (errors and malformed pages on
//! request), [`render`] (a task as the API spells it), `server` (the HTTP endpoint).

pub mod dataset;
mod faults;
mod past;
pub mod render;
mod server;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dataset::{DatasetSpec, SimTask, generate, mix};
pub use faults::FaultSpec;
use past::Fate;
pub use past::PastSpec;
pub use server::{serve, spawn};

use crate::row::TaskRow;

/// How the simulator behaves, besides its data.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Largest `count` served; larger requests are clamped (the real service's habit).
    pub max_count: u64,
    /// `start_num + count` beyond this is refused with code 1002.
    pub max_offset: u64,
    /// Check the AK/SK signature against these credentials; `None` accepts anything.
    pub keys: Option<(String, String)>,
    /// Transient faults to inject.
    pub faults: FaultSpec,
    /// Shuffle tasks created in the same second differently every few requests, as an
    /// unstable sort on the server would.
    pub unstable_order: bool,
    /// Answer code 1001 for every request whose `start_time` falls in `[start, end)`: a
    /// range the API fails on permanently.
    pub broken: Option<(i64, i64)>,
    /// List each task only some seconds after its create_time (up to this many, fixed per
    /// task), as a service whose index lags its writes does; 0 lists it at once.
    pub late_s: i64,
    /// Every answer leaves this many milliseconds after its request arrived (the network
    /// and the server of a real API), jittered by up to a quarter either way; served
    /// without blocking a thread.
    pub latency_ms: u64,
    /// Requests per second the gateway lets through; beyond it, HTTP 429 with
    /// `Retry-After` (the vendor's gateway). `None`: no limit.
    pub rate_limit: Option<u32>,
    /// How the API's past changes: late listings, deletions, corrected create times.
    pub past: PastSpec,
    /// Ranges the API never serves well, for the tests of what is left behind.
    pub trouble: Trouble,
}

/// Ranges the API never serves well: each makes one part of a window impossible to settle
/// (or to page at the configured size), and the rest must go on.
#[derive(Debug, Clone, Default)]
pub struct Trouble {
    /// `n` extra tasks all created in this one second: more than offset paging reaches
    /// when `n` exceeds `max_offset`.
    pub dense_second: Option<(i64, u64)>,
    /// A second whose `total` counts one task more than the API ever lists.
    pub phantom_second: Option<i64>,
    /// Tasks created in `[start, end)` carry an `err_message` of this many bytes: pages of
    /// them are larger than a small `api.max_body_bytes` unless asked for fewer records.
    pub bloated: Option<(i64, i64, usize)>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            max_count: 100,
            max_offset: 10_000,
            keys: None,
            faults: FaultSpec::none(),
            unstable_order: false,
            late_s: 0,
            broken: None,
            latency_ms: 0,
            rate_limit: None,
            past: PastSpec::default(),
            trouble: Trouble::default(),
        }
    }
}

/// Counters a test can read to check what the client did.
#[derive(Debug, Default)]
pub struct SimStats {
    /// Requests received on `/api/list_task`.
    pub requests: AtomicU64,
    /// Requests answered with an injected fault.
    pub faults: AtomicU64,
    /// Requests refused for a bad or missing signature.
    pub auth_refused: AtomicU64,
    /// Requests refused for a deep offset.
    pub deep_refused: AtomicU64,
    /// Requests refused with 429 by the rate limit (`SimOptions::rate_limit`).
    pub throttled: AtomicU64,
}

/// A task's JSON, with the status and create_time it was rendered at.
type Rendered = (&'static str, i64, Arc<str>);

/// The simulator: data, clock, behaviour, counters.
pub struct Simulator {
    /// Tasks sorted by (create_time, idx).
    tasks: Vec<SimTask>,
    /// Each task's JSON as last rendered, with the status it was rendered at: a task's
    /// record changes only with its status, so a page is mostly copied, not rendered, and
    /// the simulator stays far from being the bottleneck of a benchmark.
    rendered: Vec<Mutex<Option<Rendered>>>,
    /// Simulated "now" in unix seconds; tasks created later are not visible yet.
    now: AtomicI64,
    /// Seconds every request moves `now` on (see [`Simulator::advance_per_request`]).
    advance: AtomicI64,
    /// How it behaves: limits, faults, a changing past.
    pub options: SimOptions,
    /// What it was asked and answered, for tests to check what the client did.
    pub stats: SimStats,
    /// Seeds fault and ordering decisions.
    seed: u64,
    /// The gateway's rate limit, from `SimOptions::rate_limit`.
    pub(crate) limiter: Option<governor::DefaultDirectRateLimiter>,
    /// Each task's fate (`SimOptions::past`); empty when the past never changes.
    fates: Vec<Fate>,
    /// Indices of the tasks whose create_time is corrected, for queries of the range they
    /// move into.
    moved: Vec<usize>,
}

impl Simulator {
    /// Generates the data set; the clock starts at `now`.
    pub fn new(spec: &DatasetSpec, options: SimOptions, now: i64) -> Arc<Simulator> {
        let mut tasks = generate(spec);
        if let Some((at, n)) = options.trouble.dense_second {
            tasks.extend(dataset::dense_second(spec.seed, at, n, tasks.len() as u32));
            tasks.sort_unstable_by_key(|t| (t.create, t.idx));
        }
        let rendered = tasks.iter().map(|_| Mutex::new(None)).collect();
        let limiter = options
            .rate_limit
            .and_then(std::num::NonZeroU32::new)
            .map(|rps| governor::RateLimiter::direct(governor::Quota::per_second(rps)));
        let fates: Vec<Fate> = if options.past.is_none() {
            Vec::new()
        } else {
            tasks.iter().map(|t| past::fate(t, spec.seed, &options.past)).collect()
        };
        let moved = (0..fates.len()).filter(|&i| fates[i].corrected.is_some()).collect();
        Arc::new(Simulator {
            fates,
            moved,
            limiter,
            tasks,
            rendered,
            now: AtomicI64::new(now),
            advance: AtomicI64::new(0),
            options,
            stats: SimStats::default(),
            seed: spec.seed,
        })
    }

    /// Task `i`'s `data.list` element at `now`, rendered again only if its status moved.
    fn record_json(&self, i: usize, now: i64) -> Arc<str> {
        let task = &self.tasks[i];
        let status = task.status_at(now);
        let create = self.create_at(i, now);
        let mut slot = self.rendered[i].lock().expect("never poisoned");
        match &*slot {
            Some((at, c, json)) if *at == status && *c == create => json.clone(),
            _ => {
                let json: Arc<str> = render::render(&self.row_at(i, now), task.quirks, task.bad).to_string().into();
                *slot = Some((status, create, json.clone()));
                json
            }
        }
    }

    /// Renders every task visible now, on all cores, so that serving starts warm.
    pub fn prerender(&self) {
        let now = self.now();
        let end = self.tasks.partition_point(|t| t.create <= now);
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let chunk = end.div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            for first in (0..end).step_by(chunk) {
                scope.spawn(move || (first..(first + chunk).min(end)).for_each(|i| drop(self.record_json(i, now))));
            }
        });
    }

    /// Indices of the tasks created in `[start, end]` and visible at `now`.
    fn visible_range(&self, start: i64, end: i64, now: i64) -> std::ops::Range<usize> {
        let end = end.min(now);
        if end < start {
            return 0..0;
        }
        self.tasks.partition_point(|t| t.create < start)..self.tasks.partition_point(|t| t.create <= end)
    }

    /// Whether task `i` is listed at `now` (see [`SimOptions::late_s`]). The ground truth
    /// ignores the lag: it is what the API lists once it has caught up.
    fn listed(&self, i: usize, now: i64) -> bool {
        let late = self.options.late_s;
        (late == 0
            || self.tasks[i].create + (mix(self.seed ^ u64::from(self.tasks[i].idx)) % (late as u64 + 1)) as i64 <= now)
            && self.exists(i, now)
    }

    /// Whether task `i` is in the source at `now`: listed (after a late listing's lag) and
    /// not deleted. Unlike [`Simulator::listed`] it ignores `late_s`, as the truth does.
    fn exists(&self, i: usize, now: i64) -> bool {
        self.fates.get(i).is_none_or(|f| f.listed_from <= now && f.exists_at(now))
    }

    /// Task `i`'s create_time as the API lists it at `now` (after any correction).
    fn create_at(&self, i: usize, now: i64) -> i64 {
        self.fates.get(i).map_or(self.tasks[i].create, |f| f.create_at(&self.tasks[i], now))
    }

    /// What the API reports about task `i` at `now`, its create_time corrected.
    fn row_at(&self, i: usize, now: i64) -> TaskRow {
        let mut row = self.tasks[i].row_at(now);
        row.create_time = self.create_at(i, now);
        if let Some((from, to, bytes)) = self.options.trouble.bloated
            && (from..to).contains(&row.create_time)
        {
            row.err_message = Some("x".repeat(bytes).into());
        }
        row
    }

    /// The tasks the API's `total` counts in `[start, end]` at `now` beyond those it lists
    /// (see [`Trouble::phantom_second`]).
    pub(crate) fn phantoms(&self, start: i64, end: i64, now: i64) -> u64 {
        self.options.trouble.phantom_second.is_some_and(|s| start <= s && s <= end.min(now)).into()
    }

    /// Indices of the tasks the API lists at `now` with a create_time in `[start, end]`;
    /// `lagged` applies `late_s` (the API), or not (the truth).
    fn listing(&self, start: i64, end: i64, now: i64, lagged: bool) -> Vec<usize> {
        let inside = |i: usize| (start..=end.min(now)).contains(&self.create_at(i, now));
        let shown = |i: usize| if lagged { self.listed(i, now) } else { self.exists(i, now) };
        let mut out: Vec<usize> = self.visible_range(start, end, now).filter(|&i| shown(i) && inside(i)).collect();
        let base = self.visible_range(start, end, now);
        out.extend(self.moved.iter().copied().filter(|&i| !base.contains(&i) && shown(i) && inside(i)));
        out
    }

    /// The simulated time.
    pub fn now(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    /// Moves the simulated clock (forward in practice: statuses then progress).
    pub fn set_now(&self, now: i64) {
        self.now.store(now, Ordering::SeqCst);
    }

    /// Makes every request move the clock on by `seconds` (0 stops it): a clock that
    /// runs while a window is paged, the same on every machine.
    pub fn advance_per_request(&self, seconds: i64) {
        self.advance.store(seconds, Ordering::SeqCst);
    }

    /// The clock for one request: its time now, then moved on if it runs per request.
    pub fn tick(&self) -> i64 {
        let step = self.advance.load(Ordering::SeqCst);
        if step == 0 { self.now() } else { self.now.fetch_add(step, Ordering::SeqCst) }
    }

    /// Tasks created in `[start, end]` (both inclusive, as the API treats them) and visible at `now`.
    pub fn visible(&self, start: i64, end: i64, now: i64) -> &[SimTask] {
        &self.tasks[self.visible_range(start, end, now)]
    }

    /// Ground truth: what a perfect sync of `[start, end)` would store at the current
    /// clock, URLs stripped unless `keep_url_query`. Rejected (bad) records are excluded.
    pub fn truth(&self, start: i64, end: i64, keep_url_query: bool) -> Vec<TaskRow> {
        let now = self.now();
        self.listing(start, end - 1, now, false)
            .into_iter()
            .filter(|&i| !self.tasks[i].bad)
            .map(|i| {
                let mut row = self.row_at(i, now);
                if !keep_url_query {
                    crate::presigned::scrub_task(&mut row);
                }
                row
            })
            .collect()
    }

    /// Records in `[start, end)` rendered without a task_id (what must land in the rejects file).
    pub fn bad_records(&self, start: i64, end: i64) -> usize {
        let now = self.now();
        self.listing(start, end - 1, now, false).into_iter().filter(|&i| self.tasks[i].bad).count()
    }
}
