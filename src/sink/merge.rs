//! The partition merge, pure: existing rows + new observations -> the partition's new rows.
//!
//! Per task_id the newest observation wins; `first_seen_at` is kept from the oldest, and
//! `changed_at` moves only when the content changes, so re-reading an unchanged task
//! changes nothing and a quiet pass rewrites no file.

use std::collections::HashMap;

use crate::row::{StoredRow, TaskRow};

/// The merged partition and what changed in it.
#[derive(Debug)]
pub struct Merged {
    /// All rows of the partition, sorted by (create_time, task_id).
    pub rows: Vec<StoredRow>,
    /// Task ids not in the partition before.
    pub new: usize,
    /// Task ids whose content differs from what was stored.
    pub changed: usize,
}

impl Merged {
    /// Whether the partition file must be rewritten.
    pub fn is_changed(&self) -> bool {
        self.new + self.changed > 0
    }
}

/// Merges `observations` (newest last when a task_id repeats) into `existing`, stamping
/// new and changed rows with `seen_at` (microseconds).
pub fn merge(existing: Vec<StoredRow>, observations: Vec<TaskRow>, seen_at: i64) -> Merged {
    let mut by_id: HashMap<String, StoredRow> = HashMap::with_capacity(existing.len() + observations.len());
    for row in existing {
        by_id.insert(row.task.task_id.clone(), row);
    }
    let (mut new, mut changed) = (0, 0);
    for task in observations {
        match by_id.get_mut(&task.task_id) {
            Some(stored) if stored.task == task => {}
            Some(stored) => {
                // Only an observation from a pass at least as recent may replace the row.
                if seen_at >= stored.changed_at {
                    stored.task = task;
                    stored.changed_at = seen_at;
                    changed += 1;
                }
            }
            None => {
                new += 1;
                by_id.insert(task.task_id.clone(), StoredRow { task, first_seen_at: seen_at, changed_at: seen_at });
            }
        }
    }
    let mut rows: Vec<StoredRow> = by_id.into_values().collect();
    rows.sort_unstable_by(|a, b| a.task.create_time.cmp(&b.task.create_time).then_with(|| a.task.task_id.cmp(&b.task.task_id)));
    Merged { rows, new, changed }
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
