//! tasksync: exports a transcoding service's `list_task` API into exact, de-duplicated,
//! hive-partitioned Parquet, keeping its progress in SQLite.
//!
//! Data flows `plan -> api (fetch + decode) -> sink (merge + replace) -> state (checkpoint)`;
//! `sync` drives one pass through that pipeline. The map lists the modules from the ground
//! floor up: each imports only modules listed before it (`tests/code_layout.rs` checks it,
//! and that no two files import each other).
//!
//! - [`time`]: parsing instants (`2021-10-12`, RFC 3339, unix seconds) and the injected clock.
//! - [`config`]: TOML -> validated [`config::Config`]; every error names its key.
//! - [`row`]: the typed task row that flows from the decoder to the Parquet sink.
//! - [`presigned`]: removing presigned credentials from any text the API sends.
//! - [`crash`]: named crash points on the write path (only with the `crash-points` feature).
//! - [`lock`]: file locks that let writers share an output (partitions, staging areas).
//! - [`metrics`]: Prometheus families and `/metrics`; a leaf, fed in its own vocabulary.
//! - [`plan`]: pure window planning: day-aligned windows, splitting, completed-interval subtraction.
//! - [`api`]: the `list_task` client (signature, retries, rate limit, pacing under 429s), the
//!   tolerant decoder, and the observer through which requests are counted.
//! - [`sink`]: Arrow schema, the pure merge, reading stored files, the durable write protocol,
//!   the streaming partition rewrite, every version of each task (`task_history/`), rejects,
//!   and the same layout on object storage.
//! - [`state`]: the SQLite checkpoint database and all of its SQL: checkpoints and jobs,
//!   unfinished tasks, runs and sequences, what each partition holds per minute.
//! - [`progress`]: the progress bar of long passes on a terminal, a line every 30 s elsewhere.
//! - [`sync`]: one pass (backfill or incremental): walk windows leaf by leaf, merge, replace, the
//!   commit point of a window (`sync/commit.rs`), the reconciliation with the API's totals
//!   (`sync/reconcile.rs`), and where the pipeline feeds the metrics (`sync/observe.rs`).
//! - [`simulator`]: the built-in, seeded simulator of the upstream API, with its ground truth.
//! - [`status`]: `status`: cursor, lag, unfinished tasks, jobs and last passes.
//! - [`check`]: `check`: config, state, output and one signed probe of the API.
//! - [`verify`]: `verify`: reads the whole data set (`task_history/` too) and checks every
//!   promise made to analysts.
//! - [`daemon`]: `run`: passes on a cron schedule until a shutdown future completes, systemd
//!   notifications.
//! - [`demo`]: `tasksync demo`, simulator plus a real sync into `./demo-data`.
//! - [`cli`]: the command line of CONTRACT.md, the signals, and `run()`, which returns the
//!   exit code.

pub mod api;
pub mod check;
pub mod cli;
pub mod config;
pub mod crash;
pub mod daemon;
pub mod demo;
pub mod lock;
pub mod metrics;
pub mod plan;
pub mod presigned;
pub mod progress;
pub mod row;
pub mod simulator;
pub mod sink;
pub mod state;
pub mod status;
pub mod sync;
pub mod time;
pub mod verify;
