use super::*;
use proptest::prelude::*;

const D0: i64 = 1_633_046_400; // 2021-10-01T00:00:00Z

#[test]
fn windows_are_cut_at_utc_midnight() {
    let w = pending_windows(D0 + 3600, D0 + 2 * DAY + 60, &[]);
    assert_eq!(
        w,
        vec![
            Window::new(D0 + 3600, D0 + DAY),
            Window::new(D0 + DAY, D0 + 2 * DAY),
            Window::new(D0 + 2 * DAY, D0 + 2 * DAY + 60)
        ]
    );
}

#[test]
fn done_intervals_are_skipped() {
    let w = pending_windows(D0, D0 + 3 * DAY, &[(D0 + DAY, D0 + 2 * DAY)]);
    assert_eq!(w, vec![Window::new(D0, D0 + DAY), Window::new(D0 + 2 * DAY, D0 + 3 * DAY)]);
    assert!(pending_windows(D0, D0 + DAY, &[(D0 - 5, D0 + DAY + 5)]).is_empty());
}

#[test]
fn a_one_second_window_cannot_be_split() {
    assert_eq!(Window::new(10, 11).split_into(4), None);
    assert_eq!(Window::new(10, 13).split_into(2), Some(vec![Window::new(10, 11), Window::new(11, 13)]));
    assert_eq!(
        Window::new(10, 13).split_into(9),
        Some(vec![Window::new(10, 11), Window::new(11, 12), Window::new(12, 13)])
    );
}

#[test]
fn coalescing_merges_touching_intervals() {
    assert_eq!(coalesce(vec![(5, 7), (1, 3), (3, 4), (6, 9), (20, 20)]), vec![(1, 4), (5, 9)]);
}

#[test]
fn neighbouring_unfinished_tasks_share_a_recheck_window() {
    let w = recheck_windows(&[D0 + 10, D0 + 20, D0 + 5000, D0 + DAY - 1, D0 + DAY + 1], 900);
    assert_eq!(
        w,
        vec![
            Window::new(D0 + 10, D0 + 21),
            Window::new(D0 + 5000, D0 + 5001),
            Window::new(D0 + DAY - 1, D0 + DAY),
            Window::new(D0 + DAY + 1, D0 + DAY + 2)
        ]
    );
}

#[test]
fn the_cursor_moves_only_past_an_unbroken_run_of_done_windows() {
    let ws = [Window::new(0, 10), Window::new(10, 20), Window::new(20, 30)];
    let mut p = CursorTracker::new(&ws);
    assert_eq!(p.done(ws[1]), None, "the first window is not done yet");
    assert_eq!(p.done(ws[0]), Some(20));
    assert_eq!(p.done(ws[2]), Some(30));
}

proptest! {
    #[test]
    fn recheck_windows_cover_every_task_once(mut times in proptest::collection::vec(0i64..(3 * DAY), 0..50), gap in 1i64..5000) {
        times.sort();
        let windows = recheck_windows(&times, gap);
        for t in &times {
            prop_assert_eq!(windows.iter().filter(|w| w.contains(*t)).count(), 1);
        }
        for pair in windows.windows(2) {
            prop_assert!(pair[0].end <= pair[1].start);
        }
        for w in &windows {
            prop_assert_eq!(floor_day(w.start), floor_day(w.end - 1));
        }
    }

    #[test]
    fn planned_windows_cover_exactly_what_is_not_done(
        from in 0i64..(5 * DAY),
        len in 1i64..(4 * DAY),
        done in proptest::collection::vec((0i64..(10 * DAY), 1i64..DAY), 0..6),
    ) {
        let to = from + len;
        let done: Vec<(i64, i64)> = done.into_iter().map(|(s, l)| (s, s + l)).collect();
        let windows = pending_windows(from, to, &done);
        // No overlap, in order, none crossing midnight.
        for pair in windows.windows(2) {
            prop_assert!(pair[0].end <= pair[1].start);
        }
        for w in &windows {
            prop_assert!(w.start < w.end);
            prop_assert_eq!(floor_day(w.start), floor_day(w.end - 1));
        }
        // Every second of [from, to) is either done or in exactly one window (sampled).
        let step = (len / 997).max(1);
        let mut t = from;
        while t < to {
            let is_done = done.iter().any(|(s, e)| *s <= t && t < *e);
            let covering = windows.iter().filter(|w| w.contains(t)).count();
            prop_assert_eq!(covering, usize::from(!is_done), "second {} done={}", t, is_done);
            t += step;
        }
        prop_assert!(windows.iter().all(|w| from <= w.start && w.end <= to));
    }

}

proptest! {
    #[test]
    fn a_window_split_into_parts_is_covered_exactly_in_order(start in -1_000_000i64..1_000_000, width in 1i64..200_000, n in 0u64..50) {
        let w = Window::new(start, start + width);
        match w.split_into(n) {
            None => prop_assert_eq!(width, 1),
            Some(parts) => {
                prop_assert_eq!(parts.len() as i64, (n.max(2) as i64).min(width));
                prop_assert_eq!(parts[0].start, w.start);
                prop_assert_eq!(parts[parts.len() - 1].end, w.end);
                prop_assert!(parts.windows(2).all(|p| p[0].end == p[1].start));
                let (min, max) = parts.iter().fold((i64::MAX, 0), |(a, b), p| (a.min(p.width()), b.max(p.width())));
                prop_assert!(max - min <= 1, "parts are of equal width");
            }
        }
    }
}
