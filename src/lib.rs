//! tasksync: exports a transcoding service's `list_task` API into exact, de-duplicated,
//! hive-partitioned Parquet, keeping its progress in SQLite.
//!
//! Data flows **source -> transform -> sink -> checkpoint**: the source walks a window
//! of the API until it is complete, the transforms merge what it saw with what is stored,
//! the sink writes the data set's files, and the checkpoint records the window in SQLite,
//! always after its data is durable. [`commit`] owns that order; [`sync`] drives passes
//! through it. The map lists the modules from the ground floor up: each imports only
//! modules listed before it (`tests/it/code_layout.rs` checks it, and that no two files
//! import each other; `tests/it/code_maps.rs` checks every `mod.rs` map and docs/internals.md
//! against the tree).
//!
//! Helpers, used on every floor:
//! - [`time`]: parsing instants (`2021-10-12`, RFC 3339, unix seconds) and the injected clock.
//! - [`config`]: TOML -> validated [`config::Config`]; every error names its key.
//! - [`row`]: the typed task row that flows from the decoder to the Parquet sink.
//! - [`presigned`]: removing presigned credentials from any text the API sends.
//! - [`crash`]: named crash points on the write path (only with the `crash-points` feature).
//! - [`plan`]: pure window planning: day-aligned windows, splitting, completed-interval subtraction.
//!
//! The pipeline, in the order data flows:
//! - [`source`]: the upstream `list_task` API: the client (signature, retries, rate limit,
//!   pacing under 429s), the tolerant decoder, and walking a window until it is complete.
//! - [`transform`]: pure: the merge of observations with stored rows, and the versions of
//!   each task (`task_history/`) derived from a day's files.
//! - [`sink`]: the data set: its file format (schema, reader, writer) and its store (local
//!   or S3, staging, locks), and the rejects file.
//! - [`state`]: the checkpoint: the SQLite database and all of its SQL (windows and jobs,
//!   unfinished tasks, runs and sequences, what each partition holds per minute).
//! - [`commit`]: the one durable write path: stage -> publish -> checkpoint, its protocol
//!   table and crash points, and the partition rewrite that stages a window's files.
//!
//! Passes and the commands around them:
//! - [`metrics`]: Prometheus families and `/metrics`, fed in their own vocabulary and the
//!   commit's window figures.
//! - [`progress`]: the progress bar of long passes on a terminal, a line every 30 s elsewhere.
//! - [`sync`]: one pass (backfill or incremental): plan windows, walk each through the
//!   pipeline, reconcile the recent past with the API's totals, feed the metrics.
//! - [`simulator`]: the built-in, seeded simulator of the upstream API, with its ground truth.
//! - [`status`]: `status`: cursor, lag, unfinished tasks, jobs and last passes.
//! - [`check`]: `check`: config, state, output and one signed probe of the API.
//! - [`verify`]: `verify`: reads the whole data set (`task_history/` too) and checks every
//!   promise made to analysts.
//! - [`daemon`]: `run`: passes on a cron schedule until a shutdown future completes, systemd
//!   notifications.
//! - [`demo`]: `tasksync demo`, simulator plus a real sync into `./demo-data`.
//! - [`cli`]: the command line of docs/contract.md, the signals, and `run()`, which returns the
//!   exit code.

pub mod check;
pub mod cli;
pub mod commit;
pub mod config;
pub mod crash;
pub mod daemon;
pub mod demo;
pub mod metrics;
pub mod plan;
pub mod presigned;
pub mod progress;
pub mod row;
pub mod simulator;
pub mod sink;
pub mod source;
pub mod state;
pub mod status;
pub mod sync;
pub mod time;
pub mod transform;
pub mod verify;
