use super::*;
use crate::plan::Window;

/// Records `window` of backfill job `job` (or a re-check when `None`) as wholly committed.
fn commit(s: &mut State, job: Option<&str>, window: Window, tasks: &TaskChanges, now: i64) {
    let (job_id, keeps_intervals) = job.map_or((RECHECK, false), |j| (j, true));
    s.complete_window(&WindowCheckpoint {
        job_id,
        keeps_intervals,
        window,
        left: &[],
        tasks,
        now,
        counts: None,
        rejects: &[],
        give_up_after: i64::MAX,
        settled_before: i64::MAX,
    })
    .unwrap();
}

#[test]
fn completed_windows_are_coalesced_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut s = State::open(&path).unwrap();
    s.ensure_job("j", "backfill", Window::new(0, 300), 1).unwrap();
    commit(&mut s, Some("j"), Window::new(0, 100), &TaskChanges::default(), 2);
    commit(&mut s, Some("j"), Window::new(200, 300), &TaskChanges::default(), 2);
    commit(&mut s, Some("j"), Window::new(100, 200), &TaskChanges::default(), 2);
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
    commit(&mut s, Some("j"), Window::new(0, 100), &seen, 2);
    assert_eq!(s.unfinished_count().unwrap(), 2);
    let done = TaskChanges { unfinished: vec![], finished: vec!["a".into()] };
    commit(&mut s, Some("j"), Window::new(0, 100), &done, 3);
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
    commit(&mut s, None, Window::new(0, 1), &seen, 10 * day);
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

/// Set in a child process of the test below: the database it opens.
const OPEN_IN_CHILD: &str = "TASKSYNC_TEST_OPEN_STATE";

/// Separate processes, not threads: SQLite shares one process's locks between its
/// connections, and the fault this guards against (a database still in rollback mode
/// refusing the switch to WAL at once) showed only between processes, as the service and
/// a backfill started beside it creating the database together.
#[test]
fn many_processes_opening_a_new_database_at_once_all_succeed() {
    if let Ok(path) = std::env::var(OPEN_IN_CHILD) {
        let s = State::open(Path::new(&path)).expect("this opener succeeds");
        s.pin_setting("api.local_time_zone", "UTC", 1).unwrap().unwrap();
        return;
    }
    let me = std::env::current_exe().unwrap();
    let test = "state::tests::many_processes_opening_a_new_database_at_once_all_succeed";
    for round in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let openers: Vec<_> = (0..4)
            .map(|_| {
                std::process::Command::new(&me)
                    .args([test, "--exact", "--test-threads=1"])
                    .env(OPEN_IN_CHILD, &path)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for o in openers {
            let out = o.wait_with_output().unwrap();
            let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "round {round}: {said}");
        }
        let s = State::open(&path).unwrap();
        assert_eq!(s.integrity_check().unwrap(), "ok");
        assert_eq!(s.conn.pragma_query_value(None, "journal_mode", |r| r.get::<_, String>(0)).unwrap(), "wal");
    }
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let err = State::open(&path).err().unwrap().to_string();
    assert!(err.contains("schema version 99") && err.contains("state.db"), "{err}");
}

#[test]
fn parts_left_behind_are_recorded_counted_and_cleared_once_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = State::open(&dir.path().join("state.db")).unwrap();
    s.ensure_job("j", "backfill", Window::new(0, 300), 1).unwrap();
    let left = [crate::plan::LeftBehind { window: Window::new(100, 150), reason: "incomplete".into() }];
    let tasks = TaskChanges::default();
    let c = |now| WindowCheckpoint {
        job_id: "j",
        keeps_intervals: true,
        window: Window::new(0, 300),
        left: &left,
        tasks: &tasks,
        now,
        counts: None,
        rejects: &[],
        give_up_after: i64::MAX,
        settled_before: i64::MAX,
    };
    s.complete_window(&c(5)).unwrap();
    s.complete_window(&c(9)).unwrap();
    assert_eq!(s.done_intervals("j").unwrap(), vec![(0, 100), (150, 300)], "the part left behind is not done");
    let lb = s.left_behind(None).unwrap();
    assert_eq!(
        (lb.len(), lb[0].start, lb[0].end, lb[0].attempts, lb[0].first_at, lb[0].last_at),
        (1, 100, 150, 2, 5, 9)
    );
    commit(&mut s, Some("j"), Window::new(100, 150), &TaskChanges::default(), 12);
    assert!(s.left_behind(Some("j")).unwrap().is_empty(), "committed now, no longer left behind");
    assert_eq!(s.done_intervals("j").unwrap(), vec![(0, 300)]);
}

#[test]
fn a_pinned_setting_refuses_another_value() {
    let dir = tempfile::tempdir().unwrap();
    let s = State::open(&dir.path().join("state.db")).unwrap();
    assert_eq!(s.pin_setting("api.local_time_zone", "+08:00", 1).unwrap(), Ok(()));
    assert_eq!(s.pin_setting("api.local_time_zone", "+08:00", 2).unwrap(), Ok(()));
    let refused = s.pin_setting("api.local_time_zone", "+00:00", 3).unwrap().unwrap_err();
    assert!(refused.starts_with("+08:00 (recorded 1970-01-01"), "{refused}");
    drop(s);
    let reopened = State::open(&dir.path().join("state.db")).unwrap();
    assert!(reopened.pin_setting("api.local_time_zone", "+00:00", 4).unwrap().is_err(), "it survives reopening");
}

#[test]
fn the_sequence_only_grows_across_connections() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (a, b) = (State::open(&path).unwrap(), State::open(&path).unwrap());
    let seq = [a.next_sequence("obs").unwrap(), b.next_sequence("obs").unwrap(), a.next_sequence("obs").unwrap()];
    assert_eq!(seq, [1, 2, 3]);
}

#[test]
fn a_range_left_behind_again_with_other_bounds_keeps_its_age_and_is_given_up_after_give_up_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = State::open(&dir.path().join("s.db")).unwrap();
    let tasks = TaskChanges::default();
    // A window ending at "now" fails whole, pass after pass: its end moves each time.
    let mut leave = |end: i64, now: i64| {
        let left = [crate::plan::LeftBehind { window: Window::new(0, end), reason: "incomplete".into() }];
        let c = WindowCheckpoint {
            job_id: INCREMENTAL,
            keeps_intervals: false,
            window: Window::new(0, end),
            left: &left,
            tasks: &tasks,
            now,
            counts: None,
            rejects: &[],
            give_up_after: 100,
            settled_before: i64::MAX,
        };
        s.complete_window(&c).unwrap()
    };
    assert_eq!(leave(1_000, 10), 1, "waiting");
    assert_eq!(leave(1_050, 60), 1, "still waiting, 50 s old");
    assert_eq!(leave(1_120, 130), 0, "given up: left behind 120 s, over give_up_after");
    let rows = s.left_behind(Some(INCREMENTAL)).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].end, rows[0].first_at, rows[0].given_up_at), (1_120, 10, Some(130)));
}

#[test]
fn a_state_database_of_the_previous_release_opens_read_only_then_migrates_forward_keeping_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        // What the previous release (schema version 4) left: a range left behind, a cursor.
        let conn = rusqlite::Connection::open(&path).unwrap();
        for (i, sql) in MIGRATIONS.iter().take(4).enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", (i + 1) as i64).unwrap();
        }
        conn.execute(
            "INSERT INTO left_behind (job_id, start_ts, end_ts, reason, first_at, last_at, attempts)
             VALUES ('incremental', 0, 60, 'incomplete', 5, 6, 2)",
            [],
        )
        .unwrap();
        conn.execute("INSERT INTO cursors (name, ts) VALUES ('incremental', 600)", []).unwrap();
    }
    // `status` reads it as it is, writing nothing.
    let old = State::open_read_only(&path).unwrap();
    assert_eq!(old.version(), 4);
    assert_eq!(old.left_behind(None).unwrap()[0].given_up_at, None);
    assert_eq!(
        (old.last_reconciliation().unwrap(), old.deleted_tasks().unwrap(), old.ranges_given_up().unwrap()),
        (None, 0, 0)
    );
    drop(old);
    let mut s = State::open(&path).unwrap();
    assert_eq!(s.version(), MIGRATIONS.len());
    assert_eq!(s.cursor(INCREMENTAL).unwrap(), Some(600), "the cursor is kept");
    let left = s.left_behind(None).unwrap();
    assert_eq!((left.len(), left[0].attempts, left[0].given_up_at), (1, 2, None), "the range left behind is kept");
    let tasks = TaskChanges::default();
    let c = WindowCheckpoint {
        job_id: INCREMENTAL,
        keeps_intervals: false,
        window: Window::new(0, 60),
        left: &[],
        tasks: &tasks,
        now: 700,
        counts: Some(("2021-10-01", &crate::state::counts::DayCounts::empty())),
        rejects: &[("2021-10-01".into(), "k".into(), 3)],
        give_up_after: i64::MAX,
        settled_before: i64::MAX,
    };
    assert_eq!(s.complete_window(&c).unwrap(), 0);
    assert!(s.left_behind(None).unwrap().is_empty(), "committed now");
    let day = s.day_record("2021-10-01").unwrap().unwrap();
    assert_eq!((day.held_between(0, 86_400), day.rejects[3]), (1, 1), "the new tables work");
}
