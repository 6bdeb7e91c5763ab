//! The simulator's changing past: tasks listed late (hours to days after their
//! create_time), deleted over time, and listed under a corrected create_time (same UTC
//! day). Each task's fate is decided from the seed alone, so a seed means the same history
//! on every machine, and a data set generated without them is the same as before.

use super::dataset::{SimTask, mix};
use crate::time::DAY;

/// How much of the past changes, each in tasks per 100,000.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PastSpec {
    /// Tasks the API lists only 1 hour to 3 days after their create_time.
    pub late_per_100k: u32,
    /// Tasks deleted upstream (`del_task`) 10 minutes to 5 days after their create_time.
    pub deleted_per_100k: u32,
    /// Tasks whose create_time the API corrects (to 1 to 120 minutes earlier, within the
    /// same UTC day) 10 minutes to 2 days after it.
    pub corrected_per_100k: u32,
    /// When the past starts changing: each delay counts from the later of a task's
    /// create_time and this instant (0: from the create_time), so that a benchmark can sync
    /// a still past first and measure what one reconciliation finds after it changed.
    pub since: i64,
}

impl PastSpec {
    /// Whether any task's past changes at all.
    pub fn is_none(&self) -> bool {
        *self == PastSpec::default()
    }

    /// Parses a percentage (`"0.1"`, `"2"`) into tasks per 100,000, for the command line.
    pub fn per_100k(pct: &str) -> Result<u32, String> {
        let v: f64 = pct.trim().parse().map_err(|_| format!("{pct:?} is not a percentage"))?;
        if !(0.0..=100.0).contains(&v) {
            return Err(format!("{pct} is not a percentage between 0 and 100"));
        }
        Ok((v * 1000.0).round() as u32)
    }
}

/// What happens to one task's listing over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fate {
    /// Listed from this instant on (its create_time when listed at once).
    pub listed_from: i64,
    /// Deleted at this instant: never listed again.
    pub deleted_at: Option<i64>,
    /// From `.0` on, listed with create_time `.1`.
    pub corrected: Option<(i64, i64)>,
}

impl Fate {
    /// The create_time the API lists at `now`.
    pub fn create_at(&self, task: &SimTask, now: i64) -> i64 {
        match self.corrected {
            Some((at, create)) if at <= now => create,
            _ => task.create,
        }
    }

    /// Whether the task exists upstream at `now` (deletion aside from listing lag).
    pub fn exists_at(&self, now: i64) -> bool {
        self.deleted_at.is_none_or(|d| now < d)
    }
}

/// Draws `task`'s fate; `salt` keeps the three decisions independent of one another.
pub fn fate(task: &SimTask, seed: u64, spec: &PastSpec) -> Fate {
    let roll = |salt: u64| mix(seed ^ mix(u64::from(task.idx) ^ salt));
    let hit = |salt: u64, per_100k: u32| per_100k > 0 && roll(salt) % 100_000 < u64::from(per_100k);
    let within = |salt: u64, lo: i64, hi: i64| lo + (roll(salt) % (hi - lo) as u64) as i64;
    let base = task.create.max(spec.since);
    let listed_from = if hit(1, spec.late_per_100k) { base + within(2, 3600, 3 * DAY) } else { task.create };
    let deleted_at = hit(3, spec.deleted_per_100k).then(|| base + within(4, 600, 5 * DAY));
    let corrected = hit(5, spec.corrected_per_100k).then(|| {
        let day_start = task.create - task.create.rem_euclid(DAY);
        (base + within(6, 600, 2 * DAY), (task.create - within(7, 60, 7200)).max(day_start))
    });
    Fate { listed_from, deleted_at, corrected }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::dataset::{DatasetSpec, generate};

    #[test]
    fn fates_are_drawn_at_the_rates_asked_and_stay_within_their_day() {
        let start = 1_633_046_400;
        let spec =
            DatasetSpec { seed: 3, tasks: 20_000, start, end: start + 10 * DAY, hot_hour: None, bad_per_million: 0 };
        let past = PastSpec { late_per_100k: 1000, deleted_per_100k: 2000, corrected_per_100k: 500, since: 0 };
        let tasks = generate(&spec);
        let fates: Vec<Fate> = tasks.iter().map(|t| fate(t, 3, &past)).collect();
        let late = fates.iter().zip(&tasks).filter(|(f, t)| f.listed_from > t.create).count();
        let deleted = fates.iter().filter(|f| f.deleted_at.is_some()).count();
        let corrected = fates.iter().filter(|f| f.corrected.is_some()).count();
        assert!((150..250).contains(&late), "{late} late of 20,000 at 1 %");
        assert!((330..470).contains(&deleted), "{deleted} deleted of 20,000 at 2 %");
        assert!((60..140).contains(&corrected), "{corrected} corrected of 20,000 at 0.5 %");
        for (f, t) in fates.iter().zip(&tasks) {
            if let Some((at, create)) = f.corrected {
                assert!(at > t.create && create <= t.create);
                assert_eq!(create.div_euclid(DAY), t.create.div_euclid(DAY), "a correction stays in its UTC day");
            }
        }
        let none: Vec<Fate> = tasks.iter().map(|t| fate(t, 3, &PastSpec::default())).collect();
        assert!(none.iter().zip(&tasks).all(|(f, t)| f.listed_from == t.create && f.deleted_at.is_none()));
    }
}
