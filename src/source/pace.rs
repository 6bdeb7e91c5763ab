//! Pacing below a gateway's rate limit: when the API answers HTTP 429, requests are spaced
//! at a rate found by AIMD-style probing, so that a limit below `api.requests_per_second`
//! costs a few 429s while it is found, not a storm of them for the whole pass.
//!
//! Until the first burst of 429s nothing is paced (the configured rate limit and
//! `api.concurrency` bound the client as before). Then:
//! - **decrease**: when at least [`MIN_THROTTLED`] answers and [`THROTTLED_SHARE`] of those
//!   since the last change (counted afresh every 40 answers) were 429, the rate becomes
//!   [`DECREASE`] times the lower of the current rate and the rate actually sent since the
//!   last change; half of it when half or more were 429 (far above the limit, as when a
//!   pass starts 100 times too fast), but never below [`SERVED_SHARE`] of what the API
//!   accepted in the last second;
//! - **increase**: each answered request adds [`INCREASE_PER_ANSWER`] requests/s, which is
//!   about 2 % a second at any rate, up to the configured rate.
//!
//! A stray 429 among many answers (a flaky gateway) changes nothing. Time is passed in, so
//! the logic is tested without a clock, alone and against a model gateway in virtual time
//! (`pace_model_tests.rs`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// 429s since the last change that may mean a limit: fewer is chance.
pub const MIN_THROTTLED: u32 = 2;
/// Share of answers since the last change that were 429 (1 in 20) that means a limit.
pub const THROTTLED_SHARE: u32 = 20;
/// Factor of a decrease.
pub const DECREASE: f64 = 0.85;
/// Factor of a decrease when half or more of the answers were 429.
pub const HALVE: f64 = 0.5;
/// A decrease goes no lower than this share of what the API accepted in the last second.
pub const SERVED_SHARE: f64 = 0.9;
/// Requests/s added per answered request: at `r` requests/s, `r x 0.02` a second.
pub const INCREASE_PER_ANSWER: f64 = 0.02;
/// Never slower than this (requests/s).
pub const MIN_RATE: f64 = 0.5;
/// Answers after which the counts start again, so that old history does not hide a new
/// limit: with 400, a rate climbing past the limit after a long calm needed 1 429 in 20
/// of up to 400 answers before it came down (6.4 % of requests refused at a limit of 20/s
/// in the model of `pace_model_tests.rs`); with 40, 2 of 40 (1.9 %).
const WINDOW_ANSWERS: u32 = 40;

/// The pacing state shared by every request of a client.
#[derive(Debug)]
pub struct Pace {
    /// `api.requests_per_second`: the increase stops there.
    configured: f64,
    /// What changes as answers come.
    state: Mutex<PaceState>,
}

/// Requests the API accepted over the last second, in tenths of a second: what the
/// gateway lets through, below which a decrease never goes. Always counted over a whole
/// second, even in the first one: a gateway's burst (governor's allows a second's worth)
/// accepted in 6 ms, divided by the 0.1 s elapsed, read as 200/s and held the rate up
/// for twenty 429s.
#[derive(Debug)]
struct Served {
    /// Accepted answers per tenth, the current tenth last.
    tenths: [u32; 10],
    /// Start of the current tenth.
    current: Instant,
}

impl Served {
    const TENTH: Duration = Duration::from_millis(100);

    fn new(now: Instant) -> Served {
        Served { tenths: [0; 10], current: now }
    }

    /// Moves the current tenth up to `now`, emptying the tenths passed.
    fn advance(&mut self, now: Instant) {
        let passed = (now.saturating_duration_since(self.current).as_millis() / 100).min(10) as usize;
        if passed > 0 {
            self.tenths.rotate_left(passed);
            self.tenths[10 - passed..].fill(0);
            self.current += Self::TENTH * passed as u32;
        }
    }

    fn accepted(&mut self, now: Instant) {
        self.advance(now);
        self.tenths[9] += 1;
    }

    /// Requests accepted over the last second.
    fn rate(&mut self, now: Instant) -> f64 {
        self.advance(now);
        f64::from(self.tenths.iter().sum::<u32>())
    }
}

#[derive(Debug)]
struct PaceState {
    /// Requests/s once a limit was met; `None` before: nothing is paced.
    rate: Option<f64>,
    /// The earliest time the next request may leave.
    next: Instant,
    /// When the counts below started.
    since: Instant,
    /// Answers other than 429 since `since`.
    answered: u32,
    /// 429s since `since`.
    throttled: u32,
    /// What the API accepted lately: a decrease stops just below it.
    served: Served,
}

impl Pace {
    pub fn new(configured_rps: u32, now: Instant) -> Pace {
        let state =
            PaceState { rate: None, next: now, since: now, answered: 0, throttled: 0, served: Served::new(now) };
        Pace { configured: f64::from(configured_rps.max(1)), state: Mutex::new(state) }
    }

    /// When the next request may leave (`now` when unpaced); reserves that slot.
    pub fn slot(&self, now: Instant) -> Instant {
        let mut s = self.state.lock().expect("never poisoned");
        let Some(rate) = s.rate else { return now };
        let slot = s.next.max(now);
        s.next = slot + Duration::from_secs_f64(1.0 / rate);
        slot
    }

    /// Counts the answer to a request sent at `sent`; returns the new rate when it was
    /// lowered. A 429 to a request sent before the last change says nothing of the new
    /// rate: it is not counted, or every request in flight would lower the rate again.
    pub fn answered(&self, throttled: bool, sent: Instant, now: Instant) -> Option<f64> {
        let mut s = self.state.lock().expect("never poisoned");
        if throttled && sent < s.since && s.rate.is_some() {
            return None;
        }
        if throttled {
            s.throttled += 1;
        } else {
            s.answered += 1;
            s.served.accepted(now);
            if let Some(rate) = s.rate {
                s.rate = Some((rate + INCREASE_PER_ANSWER).min(self.configured));
            }
        }
        let n = s.answered + s.throttled;
        if s.throttled >= MIN_THROTTLED && s.throttled * THROTTLED_SHARE >= n {
            let elapsed = now.saturating_duration_since(s.since).as_secs_f64().max(0.001);
            let sent = f64::from(n) / elapsed;
            let factor = if s.throttled * 2 >= n { HALVE } else { DECREASE };
            let lowered = s.rate.unwrap_or(self.configured).min(sent) * factor;
            // Never far below what the gateway let through in the last second: a halving
            // that overshoots would take seconds to climb back at 2 %/s.
            let floor = s.served.rate(now) * SERVED_SHARE;
            let rate = lowered.max(floor.min(s.rate.unwrap_or(f64::MAX) * DECREASE)).min(self.configured).max(MIN_RATE);
            (s.rate, s.since, s.answered, s.throttled) = (Some(rate), now, 0, 0);
            return Some(rate);
        }
        if n >= WINDOW_ANSWERS {
            (s.since, s.answered, s.throttled) = (now, 0, 0);
        }
        None
    }

    /// The paced rate, `None` while no limit was met.
    pub fn rate(&self) -> Option<f64> {
        self.state.lock().expect("never poisoned").rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn nothing_is_paced_before_a_limit_is_met() {
        let t = Instant::now();
        let pace = Pace::new(100, t);
        for i in 0..1000 {
            assert_eq!(pace.answered(false, t + i * MS, t + i * MS), None);
            assert_eq!(pace.slot(t + i * MS), t + i * MS);
        }
        assert_eq!(pace.rate(), None);
    }

    #[test]
    fn a_stray_429_among_many_answers_changes_nothing() {
        let t = Instant::now();
        let pace = Pace::new(100, t);
        for i in 0..2000u32 {
            assert_eq!(pace.answered(i % 50 == 7, t + i * MS, t + i * MS), None, "one in 50 is below the share");
        }
        assert_eq!(pace.rate(), None);
    }

    #[test]
    fn a_burst_of_429s_paces_below_the_rate_actually_sent() {
        let t = Instant::now();
        let pace = Pace::new(10_000, t);
        // 380 requests/s were sent: 38 in 100 ms, the last two refused.
        for i in 0..36 {
            pace.answered(false, t + i * 2 * MS + MS, t + i * 2 * MS + MS);
        }
        pace.answered(true, t + 99 * MS, t + 99 * MS);
        let rate = pace.answered(true, t + 100 * MS, t + 100 * MS).expect("two 429s of 38 answers lower the rate");
        // 0.85 of the 380/s sent; the 36 accepted in the last second are far below.
        assert!((rate - 380.0 * DECREASE).abs() < 0.5, "{rate}");
        // Requests now leave one every 1/rate seconds, however many ask at once.
        let now = t + 200 * MS;
        let (a, b, c) = (pace.slot(now), pace.slot(now), pace.slot(now));
        assert_eq!(a, now);
        let gap = Duration::from_secs_f64(1.0 / rate);
        assert!(b - a >= gap - MS / 1000 && c - b >= gap - MS / 1000);
    }

    #[test]
    fn far_above_the_limit_the_rate_halves_at_each_burst() {
        let t = Instant::now();
        let pace = Pace::new(100_000, t);
        pace.answered(false, t, t);
        pace.answered(true, t + 5 * MS, t + 5 * MS);
        let first = pace.answered(true, t + 10 * MS, t + 10 * MS).expect("two of three answers were 429");
        assert!((first - 300.0 * HALVE).abs() < 1.0, "3 answers in 10 ms: {first}");
        // Two more refused within 2 ms: sent faster than paced, so the paced rate halves.
        pace.answered(true, t + 11 * MS, t + 11 * MS);
        let second = pace.answered(true, t + 12 * MS, t + 12 * MS).unwrap();
        assert!((second - first * HALVE).abs() < 1e-9, "{first} -> {second}");
    }

    #[test]
    fn the_rate_climbs_back_about_two_percent_a_second_and_stops_at_the_configured_rate() {
        let t = Instant::now();
        let pace = Pace::new(120, t);
        // 36 accepted over a second, then two refused: the gateway lets ~36/s through.
        for i in 0..36 {
            pace.answered(false, t + i * 27 * MS, t + i * 27 * MS);
        }
        pace.answered(true, t + 990 * MS, t + 990 * MS);
        pace.answered(true, t + 1000 * MS, t + 1000 * MS);
        let low = pace.rate().unwrap();
        // 0.85 of the 38/s sent, which is above 0.9 of the 32 accepted in the last second.
        assert!((low - 38.0 * DECREASE).abs() < 1e-6, "{low}");
        // One second of answers at the paced rate.
        for i in 0..low as u32 {
            pace.answered(false, t + 1100 * MS + i * MS, t + 1100 * MS + i * MS);
        }
        let after = pace.rate().unwrap();
        assert!(after > low * 1.015 && after < low * 1.025, "{low} -> {after}");
        for i in 0..100_000 {
            pace.answered(false, t + 2000 * MS + i * MS, t + 2000 * MS + i * MS);
        }
        assert_eq!(pace.rate(), Some(120.0));
    }

    #[test]
    fn a_halving_stops_just_below_what_the_gateway_accepted_in_the_last_second() {
        let t = Instant::now();
        let pace = Pace::new(1000, t);
        // 80 accepted over 0.8 s (the counts start afresh at 40 and 80), then two refused.
        for i in 1..=80 {
            pace.answered(false, t + i * 10 * MS, t + i * 10 * MS);
        }
        pace.answered(true, t + 810 * MS, t + 810 * MS);
        let rate = pace.answered(true, t + 820 * MS, t + 820 * MS).expect("two of two answers were 429");
        // Half the 100/s sent since the counts restarted would be 50/s: 0.9 of the 80
        // accepted in the last second instead.
        assert!((rate - 80.0 * SERVED_SHARE).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn refusals_of_requests_sent_before_a_change_do_not_lower_the_rate_again() {
        let t = Instant::now();
        let pace = Pace::new(1000, t);
        pace.answered(true, t, t + MS);
        let rate = pace.answered(true, t, t + 2 * MS).expect("lowered");
        // The other requests in flight, sent before the change, come back refused too.
        for i in 0..8 {
            assert_eq!(pace.answered(true, t + MS, t + (3 + i) * MS), None);
        }
        assert_eq!(pace.rate(), Some(rate));
        // Requests sent after it that are refused do.
        pace.answered(true, t + 20 * MS, t + 21 * MS);
        assert!(pace.answered(true, t + 20 * MS, t + 22 * MS).is_some());
    }

    #[test]
    fn the_rate_never_falls_below_the_floor() {
        let t = Instant::now();
        let pace = Pace::new(100, t);
        for i in 0..10_000 {
            pace.answered(true, t + i * MS, t + i * MS);
        }
        assert_eq!(pace.rate(), Some(MIN_RATE));
    }
}

#[cfg(test)]
#[path = "pace_model_tests.rs"]
mod model_tests;
