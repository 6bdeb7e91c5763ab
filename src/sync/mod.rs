//! One sync pass: plan windows -> walk each leaf by leaf (`source/`) -> merge each leaf into
//! its partition's rewrite -> commit the window (`commit/`: stage, publish, checkpoint).
//!
//! Rooms: [`context`] (what a pass needs, opened once), [`run`] (a pass from open to its
//! record), [`pass`] (a pass and the one place its events are counted), [`backfill`] and
//! [`incremental`] (the two kinds of pass and their plans), [`window`] (walking windows into
//! their partitions, several at once), [`reconcile`] (the recent past re-counted against the
//! API's totals), [`summary`] (a pass's totals), [`observe`] (requests and gauges into the
//! metrics), [`error`] (why a pass stopped, and which failures are one window's).

mod backfill;
mod context;
mod error;
pub mod incremental;
pub mod observe;
mod pass;
pub mod reconcile;
mod run;
pub mod summary;
pub mod window;

pub use backfill::backfill_job_id;
pub use context::Context;
pub use error::SyncError;
pub use pass::{Pass, PassEvent};
pub use run::{PassKind, run_backfill, run_incremental, run_pass};
