//! The typed task row: what the decoder produces and the sink stores, one per `task_id`.

/// A string column's value: up to 24 bytes kept inline (a task_id, a status, a region,
/// a template id), longer ones on the heap like a `String`. Most of a task's strings are
/// short, and a million tasks made 13 heap allocations each.
pub type Text = compact_str::CompactString;

/// One task as the API described it at one moment, decoded and normalised.
///
/// Empty strings from the API are stored as `None`: the vendor uses `""`, `null` and a
/// missing field interchangeably, and analysts should see one spelling of "no value".
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    /// The key of the whole dataset: exactly one row per task_id.
    pub task_id: Text,
    /// As the API spelled it, unknown values included.
    pub status: Option<Text>,
    /// 0 = success, non-zero = failure.
    pub err_code: Option<i64>,
    /// The description of `err_code`.
    pub err_message: Option<Text>,
    /// Unix seconds; decides the partition (UTC date) and never changes for a task.
    pub create_time: i64,
    /// Unix seconds; `None` while unfinished (the API's 0, missing or `2000-01-01 00:00:00`).
    pub finish_time: Option<i64>,
    /// kbit/s.
    pub src_bitrate: Option<f64>,
    /// kbit/s.
    pub dst_bitrate: Option<f64>,
    /// The transcoding template's id.
    pub template_id: Option<Text>,
    /// The transcoding template's name.
    pub template_name: Option<Text>,
    /// Source video location, as given to `create_task`.
    pub input: Option<Text>,
    /// Output location, e.g. `oss://bucket/path/file.mp4`.
    pub output: Option<Text>,
    /// Object key of the stored output.
    pub objkey: Option<Text>,
    /// Query string already removed unless `keep_url_query`.
    pub input_url: Option<Text>,
    /// Query string already removed unless `keep_url_query`.
    pub output_url: Option<Text>,
    /// Storage bucket name.
    pub bucket: Option<Text>,
    /// Bucket region, e.g. `cn-zhangjiakou`.
    pub region: Option<Text>,
    /// Storage vendor kind: `s3`, `oss`, `obs`, ...
    pub region_type: Option<Text>,
    /// The record's fields the decoder does not know, as a JSON object (keys sorted), so
    /// that nothing the vendor adds is lost; `None` when there are none.
    pub extra: Option<String>,
}

impl TaskRow {
    /// Seconds from creation to finish; `None` while unfinished.
    pub fn duration_s(&self) -> Option<i64> {
        self.finish_time.map(|f| f - self.create_time)
    }

    /// A task with only its identity and create time: every other field unknown. What a
    /// reader fills column by column, and what tests start from.
    pub fn blank(task_id: Text, create_time: i64) -> TaskRow {
        TaskRow {
            task_id,
            status: None,
            err_code: None,
            err_message: None,
            create_time,
            finish_time: None,
            src_bitrate: None,
            dst_bitrate: None,
            template_id: None,
            template_name: None,
            input: None,
            output: None,
            objkey: None,
            input_url: None,
            output_url: None,
            bucket: None,
            region: None,
            region_type: None,
            extra: None,
        }
    }

    /// A finished task with only its identity, times and status set: the starting point
    /// of unit tests, which then set only the fields they are about
    /// (`TaskRow { status: None, ..TaskRow::example("a", t) }`). Integration tests have
    /// the same in `tests/it/common` (`example_task`).
    #[cfg(test)]
    pub(crate) fn example(task_id: &str, create_time: i64) -> TaskRow {
        TaskRow {
            status: Some("success".into()),
            err_code: Some(0),
            finish_time: Some(create_time + 60),
            ..TaskRow::blank(task_id.into(), create_time)
        }
    }

    /// Whether the task can still change: anything but `success` / `fail` (unknown
    /// statuses included, so that they keep being looked at until given up).
    pub fn is_final(&self) -> bool {
        matches!(self.status.as_deref(), Some("success") | Some("fail"))
    }
}

/// A row as stored: the observation plus when the sync first saw it and last saw it change.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    /// The task as last observed: the columns of docs/contract.md up to `region_type`, and `extra`.
    pub task: TaskRow,
    /// Microseconds since the epoch: the pass that first saw this task.
    pub first_seen_at: i64,
    /// Microseconds since the epoch: the pass that last saw its content change.
    pub changed_at: i64,
    /// The observation (a sequence of the state database, shared by every process on it)
    /// that wrote this content: only a newer observation may replace it, whatever the wall
    /// clock says. 0 in files written before the column existed.
    pub observed_seq: i64,
    /// Microseconds since the epoch: when a complete listing of the task's range first no
    /// longer had it (deleted upstream); `None` while it is listed. The row stays, so that
    /// what ran is still reported; a task listed again clears it.
    pub deleted_at: Option<i64>,
}

/// Removes a presigned query string (and fragment) from a URL: those carry access keys
/// and signatures that would hand download rights to every reader of the dataset.
#[inline(never)] // a stage of bench/profile.sh
pub fn strip_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presigned_query_strings_are_removed() {
        assert_eq!(
            strip_query("https://b.example/x.mp4?AWSAccessKeyId=A&Signature=S&Expires=1"),
            "https://b.example/x.mp4"
        );
        assert_eq!(strip_query("oss://bucket/a.mp4"), "oss://bucket/a.mp4");
        assert_eq!(strip_query("https://h/p#frag"), "https://h/p");
    }
}
