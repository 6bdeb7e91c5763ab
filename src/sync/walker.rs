//! The window walker: everything `list_task` holds for one window, complete and checked.
//!
//! A window whose `total` is beyond `api.max_offset` (or whose deep pages the server
//! refuses) is halved, recursively, before it is paged. Pages advance by what was actually
//! received (servers clamp `count`); after the first page the rest are fetched
//! concurrently. The union of distinct records must reach `total`; paging is unstable, so a
//! short window is paged again, sequentially, adding to what it already has.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};

use crate::api::client::Client;
use crate::api::decode::{Page, Record, Reject};
use crate::api::{ApiError, PageQuery};
use crate::plan::Window;
use crate::row::TaskRow;

/// What a window held.
#[derive(Debug, Default)]
pub struct Fetched {
    /// One row per task_id inside the window, the last observation winning.
    pub rows: Vec<TaskRow>,
    /// Records that could not be decoded, once each.
    pub rejects: Vec<Reject>,
    /// Windows actually paged (more than one when the window was split).
    pub leaves: u64,
    /// Windows paged more than once because of unstable paging.
    pub repaged: u64,
}

/// Why a window could not be walked; every message names the window.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("window {window} holds {total} tasks within one second, more than offset paging reaches (api.max_offset = {max})")]
    TooDense { window: Window, total: u64, max: u64 },
    #[error("window {window} stayed incomplete after {attempts} pagings: {distinct} distinct records of the {total} the API reported")]
    Incomplete { window: Window, attempts: u32, distinct: usize, total: u64 },
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

/// Records collected for one leaf window, keyed by identity, newest last.
#[derive(Default)]
struct Collected {
    records: HashMap<String, (u64, Record)>,
    seq: u64,
}

impl Collected {
    fn add(&mut self, page: Page) -> usize {
        let n = page.records.len();
        for record in page.records {
            self.seq += 1;
            self.records.insert(record.identity(), (self.seq, record));
        }
        n
    }
}

/// Walks `window` completely. Rows outside it (the API's bounds are inclusive) are dropped.
pub async fn walk(client: &Client, window: Window, limits: WalkLimits) -> Result<Fetched, WalkError> {
    let mut queue = vec![window];
    let mut all = Collected::default();
    let mut fetched = Fetched::default();
    while let Some(w) = queue.pop() {
        let first = client.list_page(query(w, 0, client.page_size())).await?;
        let total = first.total.unwrap_or(0);
        if total > limits.max_offset {
            split(w, total, limits, &mut queue)?;
            continue;
        }
        match page_leaf(client, w, first, limits).await {
            Ok((leaf, repaged)) => {
                fetched.leaves += 1;
                fetched.repaged += u64::from(repaged);
                for (_, (_, record)) in leaf.records {
                    all.seq += 1;
                    all.records.insert(record.identity(), (all.seq, record));
                }
            }
            Err(WalkError::Api(ApiError::DeepOffset { .. })) => split(w, total, limits, &mut queue)?,
            Err(e) => return Err(e),
        }
    }
    let mut entries: Vec<(u64, Record)> = all.records.into_values().collect();
    entries.sort_unstable_by_key(|(seq, _)| *seq);
    for (_, record) in entries {
        match record {
            Record::Task(t) if window.contains(t.create_time) => fetched.rows.push(t),
            Record::Task(_) => {}
            Record::Reject(r) => fetched.rejects.push(r),
        }
    }
    Ok(fetched)
}

fn split(w: Window, total: u64, limits: WalkLimits, queue: &mut Vec<Window>) -> Result<(), WalkError> {
    let (a, b) = w.halve().ok_or(WalkError::TooDense { window: w, total, max: limits.max_offset })?;
    tracing::debug!(window = %w, total, "Splitting a window too deep for offset paging");
    queue.push(b);
    queue.push(a);
    Ok(())
}

fn query(w: Window, offset: u64, count: u32) -> PageQuery {
    PageQuery { start: w.start, end: w.end, offset, count }
}

/// Pages one window that fits within `max_offset`; returns its records and whether it had
/// to be paged again.
async fn page_leaf(client: &Client, w: Window, first: Page, limits: WalkLimits) -> Result<(Collected, bool), WalkError> {
    let mut total = first.total.unwrap_or(0);
    let mut got = Collected::default();
    let stride = got.add(first) as u64;
    if stride > 0 && stride < total {
        let offsets = (1..).map(|i| i * stride).take_while(|o| *o < total);
        let pages: Vec<Page> = futures::stream::iter(offsets)
            .map(|o| client.list_page(query(w, o, client.page_size())))
            .buffered(limits.concurrency.max(1))
            .try_collect()
            .await?;
        for page in pages {
            total = page.total.unwrap_or(total);
            got.add(page);
        }
    }
    let mut attempts = 0;
    while (got.records.len() as u64) < total {
        if attempts >= limits.repage_attempts {
            return Err(WalkError::Incomplete { window: w, attempts: attempts + 1, distinct: got.records.len(), total });
        }
        attempts += 1;
        tracing::debug!(window = %w, distinct = got.records.len(), total, attempt = attempts, "Paging a short window again");
        total = repage(client, w, total, &mut got).await?;
    }
    Ok((got, attempts > 0))
}

/// One sequential pass over the window's pages; returns the latest `total`.
async fn repage(client: &Client, w: Window, mut total: u64, got: &mut Collected) -> Result<u64, WalkError> {
    let mut offset = 0;
    while offset < total {
        let page = client.list_page(query(w, offset, client.page_size())).await?;
        total = page.total.unwrap_or(total);
        let n = got.add(page) as u64;
        if n == 0 {
            break;
        }
        offset += n;
    }
    Ok(total)
}
