//! One test's world, set up in one line: a simulator on 127.0.0.1:0 serving a seeded data
//! set, a scratch directory (`out/` and `state/state.db`), and configs pointing at both.

use std::path::PathBuf;

use tasksync::config::Config;
use tasksync::plan::Window;
use tasksync::simulator::SimOptions;
use tasksync::simulator::dataset::DatasetSpec;
use tasksync::sync::SyncError;
use tasksync::sync::summary::Totals;

use super::{SK, Sim, config, fixed, start_sim};

/// A simulator, a scratch directory, and the config that joins them.
pub struct Scenario {
    /// The simulator, its URL and its ground truth.
    pub sim: Sim,
    /// The scratch directory: `out/` is the data set, `state/state.db` the checkpoints.
    pub dir: tempfile::TempDir,
}

impl Scenario {
    /// Starts the simulator of `spec` at `now`, with `options`, and makes the directory.
    pub async fn start(spec: DatasetSpec, options: SimOptions, now: i64) -> Scenario {
        Scenario { sim: start_sim(spec, options, now).await, dir: tempfile::tempdir().unwrap() }
    }

    /// The data set's directory.
    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// The test config (see `config_text`), with `extra_api` lines in `[api]`.
    pub fn config(&self, extra_api: &str) -> Config {
        config(&self.sim.url, self.dir.path(), SK, extra_api)
    }

    /// One backfill of `range` with the plain config, the clock fixed at `now`.
    pub async fn backfill(&self, now: i64, range: Window) -> Result<Totals, SyncError> {
        tasksync::sync::run_backfill(self.config(""), fixed(now), range).await
    }
}
