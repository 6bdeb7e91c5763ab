//! One sync pass: plan windows -> walk them leaf by leaf -> stream each leaf through the
//! merge into its partition's staged file -> replace files -> checkpoint. The order per
//! window is always data durable first, checkpoint second ([`commit`]).
//!
//! Rooms: [`context`] (what a pass needs, opened once), [`backfill`] and [`incremental`]
//! (the two kinds of pass and their plans), [`window`] (walking a window into its
//! partition), [`walker`] (one window leaf by leaf, in time order), `paging` (one range's
//! pages), [`commit`] (the commit point), [`reconcile`] (the recent past re-counted against
//! the API's totals), [`summary`] (a pass's counters).

pub mod backfill;
pub mod context;
pub mod error;
pub mod incremental;
pub mod observe;
pub mod pass;
pub mod reconcile;
pub mod run;
pub mod summary;
pub mod window;

pub use backfill::backfill_job_id;
pub use context::Context;
pub use error::SyncError;
pub use pass::{Pass, PassEvent};
pub use run::{PassKind, run_backfill, run_incremental, run_pass};
