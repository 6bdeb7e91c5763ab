use super::*;

#[test]
fn completed_windows_are_coalesced_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut s = State::open(&path).unwrap();
    s.ensure_job("j", "backfill", Window::new(0, 300), 1).unwrap();
    s.complete_window(Some("j"), Window::new(0, 100), &TaskChanges::default(), 2).unwrap();
    s.complete_window(Some("j"), Window::new(200, 300), &TaskChanges::default(), 2).unwrap();
    s.complete_window(Some("j"), Window::new(100, 200), &TaskChanges::default(), 2).unwrap();
    drop(s);
    let s = State::open(&path).unwrap();
    assert_eq!(s.done_intervals("j").unwrap(), vec![(0, 300)]);
    assert_eq!(s.integrity_check().unwrap(), "ok");
}

#[test]
fn unfinished_tasks_are_tracked_until_seen_final() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = State::open(&dir.path().join("state.db")).unwrap();
    s.ensure_job("j", "backfill", Window::new(0, 300), 1).unwrap();
    let seen = TaskChanges {
        unfinished: vec![("a".into(), 5, Some("running".into())), ("b".into(), 6, None)],
        finished: vec![],
    };
    s.complete_window(Some("j"), Window::new(0, 100), &seen, 2).unwrap();
    assert_eq!(s.unfinished_count().unwrap(), 2);
    let done = TaskChanges { unfinished: vec![], finished: vec!["a".into()] };
    s.complete_window(Some("j"), Window::new(0, 100), &done, 3).unwrap();
    assert_eq!(s.unfinished_count().unwrap(), 1);
    assert_eq!(s.unfinished_between(0, 10).unwrap(), vec![6]);
    assert_eq!(s.give_up_before(7, 4).unwrap(), 1);
    assert_eq!(s.unfinished_count().unwrap(), 0, "given-up tasks are no longer re-checked");
    assert!(s.unfinished_between(0, 10).unwrap().is_empty());
}

#[test]
fn old_unfinished_tasks_are_rechecked_less_often() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = State::open(&dir.path().join("state.db")).unwrap();
    let day = 86_400;
    // Seen at t=10d: one created 10 minutes before, one a day before.
    let seen = TaskChanges {
        unfinished: vec![("young".into(), 10 * day - 600, None), ("old".into(), 9 * day, None)],
        finished: vec![],
    };
    s.complete_window(None, Window::new(0, 1), &seen, 10 * day).unwrap();
    assert_eq!(
        s.unfinished_due(0, i64::MAX, 10 * day + 60).unwrap(),
        vec![10 * day - 600],
        "a minute later only the young one is due"
    );
    assert_eq!(s.unfinished_due(0, i64::MAX, 10 * day + 3 * 3600).unwrap().len(), 2, "after three hours both are");
}

#[test]
fn the_cursor_only_moves_forward() {
    let dir = tempfile::tempdir().unwrap();
    let s = State::open(&dir.path().join("state.db")).unwrap();
    assert_eq!(s.cursor(INCREMENTAL).unwrap(), None);
    s.advance_cursor(INCREMENTAL, 100).unwrap();
    s.advance_cursor(INCREMENTAL, 50).unwrap();
    assert_eq!(s.cursor(INCREMENTAL).unwrap(), Some(100));
}

#[test]
fn many_openers_of_a_new_database_at_once_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let openers: Vec<_> = (0..8)
        .map(|_| {
            let p = path.clone();
            std::thread::spawn(move || State::open(&p).map(|_| ()))
        })
        .collect();
    for o in openers {
        o.join().unwrap().expect("every opener succeeds");
    }
    assert_eq!(State::open(&path).unwrap().integrity_check().unwrap(), "ok");
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let err = State::open(&path).err().unwrap().to_string();
    assert!(err.contains("schema version 99") && err.contains("state.db"), "{err}");
}
