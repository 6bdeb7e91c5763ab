//! The integration tests, one binary: each module is one area of behaviour, run against
//! the simulator on 127.0.0.1:0 and the real `tasksync` binary. One binary links the crate
//! once instead of once per file (the Debian package's test, which needs root and a built
//! package, is `tests/debian_package.rs`, run by `.ci/run` on its own).

mod common;
mod s3_server;

mod backfill;
mod bad_input;
mod cli;
mod code_layout;
mod code_maps;
mod converge;
#[cfg(feature = "crash-points")]
mod crash;
mod daemon;
mod dashboard;
mod demo_duckdb;
mod docs;
mod frontier;
mod history;
mod hostile_api;
mod html_report;
mod metrics;
mod object_storage;
mod operating_procedure;
mod progress;
mod reports;
mod scale_out_readers;
mod shared_writers;
mod storage_faults;
mod upgrade;
