//! Paging one range of a window: its first page, then the rest concurrently, and a short
//! range paged again. Each range runs as a task of its own, so that the walker can page
//! the next ranges while it hands over the current one (see `walker.rs`).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use crate::plan::Window;
use crate::source::client::Client;
use crate::source::decode::{Page, Record};
use crate::source::{ApiError, PageQuery};

/// Why a window could not be walked; every message names the window.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(
        "window {window} holds {total} tasks within one second, more than offset paging reaches (api.max_offset = {max})"
    )]
    TooDense { window: Window, total: u64, max: u64 },
    #[error("the request for {query} stopped before it finished: {message}")]
    Task { query: PageQuery, message: String },
    #[error(
        "window {window} stayed incomplete after {attempts} pagings: {distinct} distinct records of the {total} the API reported"
    )]
    Incomplete {
        /// The range paged.
        window: Window,
        /// Pagings made: the first and every repaging (`api.repage_attempts`).
        attempts: u32,
        /// Distinct records collected over all of them.
        distinct: usize,
        /// The `total` the API last reported.
        total: u64,
        /// Whether `total` grew while the window was paged (records still arriving), as
        /// opposed to a total the API never serves.
        grew: bool,
    },
    #[error(
        "window {window}: the API returned task {task_id} created at {}, outside the window it was asked for; {cause}",
        crate::time::show(*create_time)
    )]
    OutsideWindow { window: Window, task_id: String, create_time: i64, cause: String },
}

impl WalkError {
    /// Whether the range's `total` grew while it was paged (records still arriving).
    pub(super) fn grew(&self) -> bool {
        matches!(self, WalkError::Incomplete { grew: true, .. })
    }
}

/// Limits the walker works within.
#[derive(Debug, Clone, Copy)]
pub struct WalkLimits {
    /// Deepest offset the server serves (`api.max_offset`).
    pub max_offset: u64,
    /// Extra sequential pagings of a short window (`api.repage_attempts`).
    pub repage_attempts: u32,
    /// Pages requested at once within a window.
    pub concurrency: usize,
}

/// Tasks a leaf is planned to hold at most (unless `max_offset` is lower). A leaf is held
/// in memory until it is complete, so this bounds the memory of a window in flight
/// (~1 KB a task) whatever the size of a day; 25 pages of 100 keep `concurrency` pages
/// in flight for most of a leaf.
pub const LEAF_TASKS: u64 = 2_500;

impl WalkLimits {
    /// The most tasks a leaf is paged with; a range holding more is split.
    pub fn leaf_tasks(&self) -> u64 {
        self.max_offset.clamp(1, LEAF_TASKS)
    }
}

/// Records collected for one leaf range, one per identity, the newest arrival kept.
#[derive(Default)]
pub(super) struct Collected {
    /// (arrival number, record) in order of first arrival; a later copy of a record
    /// replaces the earlier in place, so that records move once, from page to here.
    records: Vec<(u64, Record)>,
    /// identity -> position in `records`.
    index: HashMap<crate::row::Text, usize>,
    /// Records received so far, for the arrival numbers.
    seq: u64,
    /// Tasks whose create_time came as a local-time string.
    local_times: u64,
}

/// A leaf's records once paged; the index is dropped, since a leaf may wait, complete,
/// while the one before it is merged.
pub(super) struct Gathered {
    /// (arrival number, record), one per identity.
    pub records: Vec<(u64, Record)>,
    /// Tasks whose create_time came as a local-time string.
    pub local_times: u64,
}

impl Collected {
    /// Room for `total` records, so that nothing is moved as they come.
    fn with_capacity(total: u64) -> Collected {
        let n = usize::try_from(total).unwrap_or(0).min(LEAF_TASKS as usize);
        Collected { records: Vec::with_capacity(n), index: HashMap::with_capacity(n), ..Collected::default() }
    }

    fn gathered(self) -> Gathered {
        Gathered { records: self.records, local_times: self.local_times }
    }

    fn add(&mut self, page: Page) -> usize {
        let n = page.records.len();
        self.local_times += page.local_times;
        for record in page.records {
            self.seq += 1;
            match self.index.entry(record.identity()) {
                Entry::Occupied(at) => self.records[*at.get()] = (self.seq, record),
                Entry::Vacant(slot) => {
                    slot.insert(self.records.len());
                    self.records.push((self.seq, record));
                }
            }
        }
        n
    }
}

/// What paging one range found, for the walker to decide on.
pub(super) enum Paged {
    /// Paged completely; whether unstable paging made it page more than once.
    Leaf(Gathered, bool),
    /// More than one leaf holds (or deep pages refused): split it for about this many tasks.
    Split(u64),
    /// Its records did not all arrive within the pagings allowed.
    Unsettled(WalkError),
}

/// A task that is aborted when its handle is dropped: a range or a page nobody waits for
/// any more (the window failed, the pass stopped) stops asking the API.
struct Spawned<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T: Send + 'static> Spawned<T> {
    fn start(work: impl std::future::Future<Output = T> + Send + 'static) -> Spawned<T> {
        Spawned(tokio::spawn(work))
    }

    /// The task's output, or why it died, for the caller to name the query.
    async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

/// A range being paged in the background; dropping it aborts the paging.
pub(super) struct Paging(Spawned<Result<Paged, WalkError>>);

impl Paging {
    /// Starts paging `w` on its own task.
    pub fn start(client: &Arc<Client>, w: Window, limits: WalkLimits) -> Paging {
        let client = client.clone();
        Paging(Spawned::start(async move { page_range(&client, w, limits).await }))
    }

    /// What the paging found; `w` names the range if the task died.
    pub async fn finish(self, w: Window) -> Result<Paged, WalkError> {
        match self.0.join().await {
            Ok(paged) => paged,
            Err(e) => Err(WalkError::Task { query: query(w, 0, 0), message: e.to_string() }),
        }
    }
}

/// Pages `w` if one leaf may hold it, after its first page says how many it holds. A
/// page larger than `api.max_body_bytes` makes the range paged again with half the
/// `count`, down to one record a page.
async fn page_range(client: &Arc<Client>, w: Window, limits: WalkLimits) -> Result<Paged, WalkError> {
    let mut count = client.page_size();
    loop {
        match page_range_by(client, w, limits, count).await {
            Err(WalkError::Api(ApiError::TooLarge { .. })) if count > 1 => {
                count /= 2;
                tracing::info!(window = %w, count, "A page was larger than api.max_body_bytes; asking for fewer records a page");
            }
            other => return other,
        }
    }
}

/// [`page_range`] with `count` records a page.
async fn page_range_by(client: &Arc<Client>, w: Window, limits: WalkLimits, count: u32) -> Result<Paged, WalkError> {
    let first = fetch(client, query(w, 0, count)).await?;
    let total = first.total.unwrap_or(0);
    // A one-second range is paged whole when offset paging reaches it at all.
    if total > limits.max_offset || (total > limits.leaf_tasks() && w.width() > 1) {
        return Ok(Paged::Split(total));
    }
    match page_leaf(client, w, first, limits, count).await {
        Ok((got, repaged)) => Ok(Paged::Leaf(got.gathered(), repaged)),
        Err(WalkError::Api(ApiError::DeepOffset { .. })) => Ok(Paged::Split(total.max(2 * limits.leaf_tasks()))),
        Err(e @ WalkError::Incomplete { .. }) => Ok(Paged::Unsettled(e)),
        Err(e) => Err(e),
    }
}

/// Fetches and decodes one page as a task of its own, so that decoding runs on every
/// worker thread rather than on the one polling the range. Dropping the future aborts it.
async fn fetch(client: &Arc<Client>, q: PageQuery) -> Result<Page, WalkError> {
    let client = client.clone();
    match Spawned::start(async move { client.list_page(q).await }).join().await {
        Ok(page) => Ok(page?),
        Err(e) => Err(WalkError::Task { query: q, message: e.to_string() }),
    }
}

fn query(w: Window, offset: u64, count: u32) -> PageQuery {
    PageQuery { start: w.start, end: w.end, offset, count }
}

/// One paging of a range: the `total` its first page reported, whether a later page
/// reported another, and the identities it saw.
struct Round {
    /// The `total` its first page reported.
    total: u64,
    /// The total the last page reported.
    last: u64,
    /// Whether a later page reported another `total` (tasks listed or deleted meanwhile).
    moved: bool,
    /// Identities of the records it saw (task_id, or a reject's raw text).
    ids: HashSet<crate::row::Text>,
}

impl Round {
    fn new(total: u64) -> Round {
        Round { total, last: total, moved: false, ids: HashSet::new() }
    }

    /// Notes one page of this paging; returns the total it reported.
    fn see(&mut self, page: &Page) -> u64 {
        let total = page.total.unwrap_or(self.last);
        self.moved |= total != self.total;
        self.last = total;
        self.ids.extend(page.records.iter().map(Record::identity));
        total
    }
}

/// What the pagings with one unchanging `total` saw together: the evidence of completeness.
/// A paging whose total moved (tasks listed or deleted while it ran) shifts later offsets,
/// so that one live task can be skipped while the count still matches: its records are
/// kept (a task seen once existed), but it proves nothing.
#[derive(Default)]
struct Stable {
    /// The `total` those pagings all reported.
    total: u64,
    /// The distinct identities they saw together: complete once as many as `total`.
    ids: HashSet<crate::row::Text>,
}

impl Stable {
    /// Takes a finished paging into account; returns whether the range is now complete.
    fn add(&mut self, round: Round) -> bool {
        if round.moved {
            *self = Stable { total: round.total, ids: HashSet::new() };
            return false;
        }
        if round.total == self.total {
            self.ids.extend(round.ids);
        } else {
            *self = Stable { total: round.total, ids: round.ids };
        }
        self.ids.len() as u64 >= self.total
    }
}

/// Pages one range that fits within `max_offset`; returns its records and whether it had
/// to be paged again. Pages are taken as they arrive: a slow page holds up no other. The
/// range is complete once pagings that saw one `total` throughout have together seen that
/// many distinct records (see [`Stable`]).
async fn page_leaf(
    client: &Arc<Client>,
    w: Window,
    first: Page,
    limits: WalkLimits,
    count: u32,
) -> Result<(Collected, bool), WalkError> {
    let first_total = first.total.unwrap_or(0);
    let mut got = Collected::with_capacity(first_total);
    let mut round = Round::new(first_total);
    let mut total = round.see(&first);
    let stride = got.add(first) as u64;
    if stride > 0 && stride < first_total {
        let offsets = (1..).map(|i| i * stride).take_while(move |o| *o < first_total);
        let mut pages = futures::stream::iter(offsets)
            .map(|o| fetch(client, query(w, o, count)))
            .buffer_unordered(limits.concurrency.max(1));
        while let Some(page) = pages.try_next().await? {
            total = round.see(&page);
            got.add(page);
        }
    }
    let mut stable = Stable { total: first_total, ..Stable::default() };
    let mut attempts = 0;
    while !stable.add(round) {
        if attempts >= limits.repage_attempts {
            return Err(WalkError::Incomplete {
                window: w,
                attempts: attempts + 1,
                distinct: got.records.len(),
                total,
                grew: total > first_total,
            });
        }
        attempts += 1;
        tracing::debug!(window = %w, distinct = got.records.len(), total, attempt = attempts, "Paging a short window again");
        round = repage(client, w, total, count, &mut got).await?;
        total = round.last;
    }
    Ok((got, attempts > 0))
}

/// One sequential paging of the range, starting from the latest known `total`.
async fn repage(
    client: &Arc<Client>,
    w: Window,
    total: u64,
    count: u32,
    got: &mut Collected,
) -> Result<Round, WalkError> {
    let mut round = Round::new(total);
    let mut offset = 0;
    let mut last = total;
    while offset < last {
        let page = fetch(client, query(w, offset, count)).await?;
        if offset == 0 {
            round = Round::new(page.total.unwrap_or(total));
        }
        last = round.see(&page);
        let n = got.add(page) as u64;
        if n == 0 {
            break;
        }
        offset += n;
    }
    Ok(round)
}
