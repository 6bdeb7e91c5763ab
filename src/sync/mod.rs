//! One sync pass: plan windows -> walk each leaf by leaf (`source/`) -> merge each leaf into
//! its partition's rewrite -> commit the window (`commit/`: stage, publish, checkpoint).
//!
//! Rooms: [`context`] (what a pass needs, opened once), [`run`] (a pass from open to its
//! record), [`pass`] (a pass and the one place its events are counted), [`backfill`] and
//! [`incremental`] (the two kinds of pass and their plans), [`window`] (walking windows into
//! their partitions, several at once), [`reconcile`] (the recent past re-counted against the
//! API's totals), [`summary`] (a pass's totals), [`observe`] (requests and gauges into the
//! metrics). [`SyncError`], here, says why a pass stopped, and which failures are one
//! window's.

mod backfill;
mod context;
pub mod incremental;
pub mod observe;
mod pass;
pub mod reconcile;
mod run;
pub mod summary;
pub mod window;

pub use backfill::backfill_job_id;
pub use context::Context;
pub use pass::{Pass, PassEvent};
pub use run::{PassKind, run_backfill, run_incremental, run_pass};

use crate::sink::SinkError;
use crate::source::paging::WalkError;
use crate::state::StateError;

/// Why a pass stopped. Every message names the window, file or database involved.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Walk(#[from] WalkError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Lock(#[from] crate::sink::store::lock::LockError),
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::serve::MetricsError),
    /// A background task of the commit failed.
    #[error("{0}")]
    Task(String),
    /// The config contradicts a setting the state database recorded at first use.
    #[error(
        "`{key}` is {configured} in the config, but the state database {state} recorded {pinned} at first use: \
         tasks' create times and partitions would change under it. If the new value is right, re-sync deliberately: \
         move the state database and output_dir aside and backfill again (docs/configuration.md, \"Changing api.local_time_zone\")"
    )]
    Pinned { key: &'static str, configured: String, pinned: String, state: std::path::PathBuf },
}

/// The commit's failures keep their kind: a conflict or an unreadable file is still the
/// window's own (see [`SyncError::is_window_failure`]).
impl From<crate::commit::CommitError> for SyncError {
    fn from(e: crate::commit::CommitError) -> SyncError {
        match e {
            crate::commit::CommitError::Sink(e) => SyncError::Sink(e),
            crate::commit::CommitError::State(e) => SyncError::State(e),
            crate::commit::CommitError::Task(message) => SyncError::Task(message),
        }
    }
}

impl SyncError {
    /// Whether this failure belongs to one window, which is then left for the next pass
    /// while the others go on: a range that does not settle or holds more than paging
    /// reaches, records outside their window, the API's permanent error for that range, a
    /// page it keeps breaking. Anything else (credentials refused, an API unreachable
    /// after retries, the disk, the state database, the lock) stops the pass.
    pub fn is_window_failure(&self) -> bool {
        use crate::source::ApiError;
        match self {
            SyncError::Walk(
                WalkError::Incomplete { .. } | WalkError::TooDense { .. } | WalkError::OutsideWindow { .. },
            ) => true,
            SyncError::Sink(SinkError::Conflict { .. } | SinkError::Unreadable { .. }) => true,
            SyncError::Walk(WalkError::Api(api)) => matches!(
                api,
                ApiError::Permanent { .. }
                    | ApiError::DeepOffset { .. }
                    | ApiError::TooLarge { .. }
                    | ApiError::Exhausted { undecodable: true, .. }
            ),
            _ => false,
        }
    }
}
