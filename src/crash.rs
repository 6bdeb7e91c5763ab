//! Named crash points on the durable write path, for crash tests. Compiled in only with the
//! `crash-points` feature; otherwise [`point`] is an empty inline function.
//!
//! With the feature, `TASKSYNC_CRASH_AT=NAME` (or `NAME:N`, the N-th time it is reached)
//! makes the process abort at that point: no destructor, flush or unwinding runs, as with
//! `kill -9`. Points: `after_staging_write`, `after_rename` (the `tasks` file),
//! `between_tasks_and_history`, `after_history_rename` (its day's history), `before_checkpoint`, and
//! `in_state` (inside every state database call, holding its lock). `panic@NAME:N` panics
//! there instead, as a bug would (see `cli::end_on_panic`).

#[cfg(feature = "crash-points")]
pub fn point(name: &str) {
    use std::sync::Mutex;
    static HITS: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());
    let Ok(spec) = std::env::var("TASKSYNC_CRASH_AT") else { return };
    // `panic@NAME:N` panics there instead of aborting: a bug, not a crash.
    let (panics, spec) = match spec.strip_prefix("panic@") {
        Some(rest) => (true, rest.to_string()),
        None => (false, spec),
    };
    let (target, nth) = match spec.split_once(':') {
        Some((t, n)) => (t.to_string(), n.parse().unwrap_or(1)),
        None => (spec.clone(), 1),
    };
    if target != name {
        return;
    }
    let mut hits = HITS.lock().unwrap_or_else(|e| e.into_inner());
    let count = match hits.iter_mut().find(|(n, _)| n == name) {
        Some((_, c)) => {
            *c += 1;
            *c
        }
        None => {
            hits.push((name.to_string(), 1));
            1
        }
    };
    if count == nth && panics {
        panic!("crash point {name} reached (hit {count})");
    }
    if count == nth {
        eprintln!("tasksync: crash point {name} reached (hit {count}); aborting");
        std::process::abort();
    }
}

#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn point(_name: &str) {}
