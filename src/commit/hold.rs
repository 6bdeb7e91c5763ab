//! Step 0 of the protocol: one partition held for one window, within this process and
//! across processes, from before its stored file is read until after its checkpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::sink::store::Store;
use crate::sink::store::lock::{self, Held, LockError};

/// A partition held for one window: this process's lock and the cross-process file lock.
#[derive(Debug)]
pub struct PartitionHold {
    /// Keeps this process's other windows of the partition waiting.
    _local: tokio::sync::OwnedMutexGuard<()>,
    /// Keeps other processes' writers of the partition waiting.
    _file: Held,
}

/// The partitions this process's windows hold: one window per partition at a time (the
/// file lock keeps other processes out; this keeps our own windows from polling it).
#[derive(Default)]
pub struct PartitionLocks {
    /// One async mutex per partition seen, by day.
    by_day: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl PartitionLocks {
    /// Partition `date` of `store` for one window. `waiting` is called while another
    /// process holds it: a live writer (the kernel drops the locks of the dead), so waiting
    /// for it is progress for the service's watchdog.
    pub async fn hold(&self, store: &Store, date: &str, waiting: impl Fn()) -> Result<PartitionHold, LockError> {
        let local = {
            let mut locks = self.by_day.lock().expect("never poisoned");
            locks.entry(date.to_string()).or_default().clone()
        };
        let local = local.lock_owned().await;
        let file = lock::take_noting(&store.partition_lock(date), waiting).await?;
        Ok(PartitionHold { _local: local, _file: file })
    }
}
