//! The limits a window's walk works within, and how a walk fails: shared by the walker
//! (`walker.rs`) and the paging of one range (`paging.rs`), which each import it.

use crate::api::{ApiError, PageQuery};
use crate::plan::Window;

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
