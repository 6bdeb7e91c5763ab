//! tasksync: exports a transcoding service's `list_task` API into exact, de-duplicated,
//! hive-partitioned Parquet, keeping its progress in SQLite.
//!
//! Data flows `plan -> api (fetch + decode) -> sink (merge + replace) -> state (checkpoint)`;
//! `sync` drives one pass through that pipeline. Module map:
//!
//! - [`crash`]: named crash points on the write path (only with the `crash-points` feature).
//! - [`cli`]: the command line of CONTRACT.md and `run()`, which returns the exit code.
//! - [`config`]: TOML -> validated [`config::Config`]; every error names its key. The ground
//!   floor: it imports from no other module of the crate but `time`.
//! - [`time`]: parsing instants (`2021-10-12`, RFC 3339, unix seconds) and the injected clock.
//! - [`row`]: the typed task row that flows from the decoder to the Parquet sink.
//! - [`presigned`]: removing presigned credentials from any text the API sends.
//! - [`api`]: the `list_task` client (signature, retries, rate limit, pacing under 429s) and the
//!   tolerant decoder.
//! - [`plan`]: pure window planning: day-aligned windows, splitting, completed-interval subtraction.
//! - [`sink`]: Arrow schema, the pure merge, reading stored files, the durable write protocol,
//!   the streaming partition rewrite, rejects, and the same layout on object storage.
//! - [`state`]: the SQLite checkpoint database: jobs, completed intervals, unfinished tasks, runs,
//!   and what each partition holds per minute (the counts a reconciliation compares).
//! - [`lock`]: file locks that let writers share an output (partitions, staging areas).
//! - [`sync`]: one pass (backfill or incremental): walk windows leaf by leaf, merge, replace, the
//!   commit point of a window (`sync/commit.rs`), and the reconciliation with the API's totals
//!   (`sync/reconcile.rs`).
//! - [`daemon`]: `run`: passes on a cron schedule, systemd notifications, clean shutdown.
//! - [`metrics`]: Prometheus families, counted as the pipeline works, served at `/metrics`.
//! - [`progress`]: the progress bar of long passes on a terminal, a line every 30 s elsewhere.
//! - [`status`]: `status`: cursor, lag, unfinished tasks, jobs and last passes.
//! - [`check`]: `check`: config, state, output and one signed probe of the API.
//! - [`verify`]: `verify`: reads the whole data set and checks every promise made to analysts.
//! - [`simulator`]: the built-in, seeded simulator of the upstream API, with its ground truth.
//! - [`demo`]: `tasksync demo`, simulator plus a real sync into `./demo-data`.

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
