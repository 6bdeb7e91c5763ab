//! Fuzzes the page decoder with arbitrary bodies: it must never panic, every task it
//! accepts must satisfy the row invariants, the fast path must agree with the `Value` path, and the rows must convert to the Arrow batch.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tasksync::source::decode::{DecodeOptions, Envelope, Record, decode_page, decode_page_via_value};
use tasksync::row::StoredRow;

fuzz_target!(|data: &[u8]| {
    let opts = DecodeOptions { zone: tasksync::time::parse_offset("+08:00").unwrap(), keep_url_query: false };
    let decoded = decode_page(data, &opts);
    assert_eq!(decoded, decode_page_via_value(data, &opts), "the fast path agrees with the Value path");
    if let Ok(Envelope::Page(page)) = decoded {
        let mut rows = Vec::new();
        for record in page.records {
            if let Record::Task(task) = record {
                assert!(!task.task_id.is_empty(), "an accepted task has an id");
                assert!(task.create_time > 0, "an accepted task has a usable create_time");
                for url in [&task.input_url, &task.output_url].into_iter().flatten() {
                    assert!(!url.contains('?'), "query strings are stripped");
                }
                let _ = task.duration_s();
                rows.push(StoredRow { task, first_seen_at: 0, changed_at: 0, observed_seq: 0, deleted_at: None });
            }
        }
        tasksync::sink::format::schema::to_batch(&rows).expect("decoded rows always form a valid batch");
    }
});
