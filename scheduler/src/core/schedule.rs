//! Time arithmetic of the core: backoff delays, periodic windows, cron slots across DST.
//!
//! Every function here is pure: instants go in, instants come out.

use std::time::Duration;

use chrono::{Datelike, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::job::{Anchor, Backoff, BackoffKind, Jitter, JobId, Time};

/// The smallest backoff base delay; smaller bases are raised to it (WorkManager's clamp).
pub const MIN_BACKOFF: Duration = Duration::from_secs(10);
/// The largest backoff delay; longer delays are capped to it.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5 * 3600);

/// `t + d`, saturating at the largest representable instant.
pub fn add(t: Time, d: Duration) -> Time {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC)
}

/// `t − d`, saturating at the earliest representable instant.
pub fn sub(t: Time, d: Duration) -> Time {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC)
}

/// `a − b` as a duration, zero when `b` is after `a`.
pub fn since(a: Time, b: Time) -> Duration {
    (a - b).to_std().unwrap_or(Duration::ZERO)
}

/// The retry delay after attempt `attempt` (1-based) failed: exponential `base · 2^(n−1)` or linear
/// `base · n`, with `base` clamped to [10 s, 5 h] and the result capped at 5 h. With jitter `j`, the
/// delay is multiplied by a factor from `[1 − j, 1 + j]` drawn reproducibly from `seed` and the
/// attempt (then capped again).
pub fn backoff_delay(backoff: &Backoff, attempt: u32, seed: u64) -> Duration {
    let base = backoff.base.clamp(MIN_BACKOFF, MAX_BACKOFF);
    let n = attempt.max(1);
    let raw = match backoff.kind {
        BackoffKind::Exponential => {
            let shift = n - 1;
            if shift >= 32 {
                MAX_BACKOFF
            } else {
                base.saturating_mul(1u32 << shift)
            }
        }
        BackoffKind::Linear => base.saturating_mul(n),
    };
    let capped = raw.min(MAX_BACKOFF);
    let jitter = backoff.jitter.clamp(0.0, 0.99);
    if jitter <= 0.0 {
        return capped;
    }
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let factor: f64 = rng.random_range(1.0 - jitter..=1.0 + jitter);
    capped.mul_f64(factor).min(MAX_BACKOFF)
}

/// The delay a job's [`Jitter`] adds to the due time of cycle `cycle`: in `[0, max)`, drawn
/// reproducibly from the job's id (and the cycle, unless the jitter is fixed), at millisecond
/// resolution.
pub fn jitter_offset(id: JobId, jitter: Jitter, cycle: u64) -> Duration {
    let max = u64::try_from(jitter.max.as_millis()).unwrap_or(u64::MAX);
    if max == 0 {
        return Duration::ZERO;
    }
    let salt = if jitter.fixed {
        0
    } else {
        cycle.wrapping_add(1)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(id.seed() ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    Duration::from_millis(rng.random_range(0..max))
}

/// A window of time in which a recurring job's run for one slot may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The earliest start.
    pub start: Time,
    /// The end of the window (the period end; for cron, the slot itself).
    pub end: Time,
}

fn nanos(t: Time) -> i128 {
    i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos())
}

fn from_nanos(n: i128) -> Time {
    let secs = n.div_euclid(1_000_000_000);
    let sub = n.rem_euclid(1_000_000_000);
    i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, u32::try_from(sub).unwrap_or(0)))
        .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC)
}

/// The effective flex of a periodic schedule: `flex` capped at the interval; `None` is the whole
/// interval.
pub fn effective_flex(every: Duration, flex: Option<Duration>) -> Duration {
    flex.map_or(every, |f| f.min(every))
}

/// Grid window `k` of a periodic schedule anchored at `anchor`: `[anchor + (k+1)·I − F, anchor +
/// (k+1)·I]`.
fn grid_window(anchor: Time, every: Duration, flex: Duration, k: i128) -> Window {
    let i = every.as_nanos() as i128;
    let f = flex.as_nanos() as i128;
    let end = nanos(anchor) + (k + 1) * i;
    Window {
        start: from_nanos(end - f),
        end: from_nanos(end),
    }
}

/// The window of the next period of a periodic job.
///
/// `origin` is the enqueue time plus the initial delay (E).
///
/// - With no run yet: the first period, `[E + I − F, E + I]`, as WorkManager places the first
///   period of a flexed job.
/// - `Grid`: the first grid period whose window starts after the last run started — at most one
///   run per period, and a missed period is not caught up with a burst.
/// - `AfterRun`: after a run, the next run is due one whole interval after it finished, flex
///   or not — WorkManager's `WorkSpec.calculateNextRunTime`: `lastEnqueueTime + interval`, the
///   flex applying to the first period only (drifts by each run's length).
pub fn next_periodic_window(
    every: Duration,
    flex: Option<Duration>,
    anchor: Anchor,
    origin: Time,
    last_started: Option<Time>,
    last_finished: Option<Time>,
) -> Window {
    let flex = effective_flex(every, flex);
    match (anchor, last_started, last_finished) {
        (Anchor::AfterRun, Some(_), Some(finished)) => {
            grid_window(finished, every, Duration::ZERO, 0)
        }
        (_, Some(started), _) => {
            let i = every.as_nanos().max(1) as i128;
            let offset = nanos(started) - nanos(origin) + flex.as_nanos() as i128;
            let k = if offset < 0 { 0 } else { offset / i };
            grid_window(origin, every, flex, k)
        }
        _ => grid_window(origin, every, flex, 0),
    }
}

/// The first window of a periodic job that has not ended by `now` (catch-up `skip`); `origin`
/// is the enqueue time plus the initial delay.
pub fn periodic_window_at(
    every: Duration,
    flex: Option<Duration>,
    anchor: Anchor,
    origin: Time,
    now: Time,
) -> Window {
    let flex = effective_flex(every, flex);
    match anchor {
        Anchor::AfterRun => grid_window(now, every, Duration::ZERO, 0),
        Anchor::Grid => {
            let i = every.as_nanos().max(1) as i128;
            let offset = nanos(now) - nanos(origin);
            // smallest k ≥ 0 with E + (k+1)·I ≥ now
            let k1 = if offset <= 0 { 1 } else { (offset + i - 1) / i };
            grid_window(origin, every, flex, (k1 - 1).max(0))
        }
    }
}

/// A parsed cron expression: when it fires, and how it crosses DST changes.
///
/// Five fields mean what they mean in a crontab (Vixie cron / cronie, cron(5)): `min hour dom
/// month dow`, day of week 0–7 with 0 and 7 = Sunday, names (`MON`, `JAN`), `@daily` & co, and a
/// day that matches when *either* day field matches if both are restricted. Six fields put
/// seconds first; a seventh is a year. Parsing and matching are [`croner`]'s; backwork adds the
/// mapping of local times to instants (see [`next_cron`]).
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: croner::Cron,
    /// The minute or hour field starts with `*` (`*/30 * * * *`, `0 */2 * * *`, `@hourly`):
    /// Vixie cron's "wildcard" job, which follows real elapsed time across DST changes instead
    /// of running once per wall-clock time.
    follows_real_time: bool,
}

impl CronSchedule {
    /// True when the minute or hour field starts with `*`, so the job runs through a repeated
    /// hour by real time (see [`next_cron`]).
    pub fn follows_real_time(&self) -> bool {
        self.follows_real_time
    }
}

/// One field of a crontab line: its name, range and the names it takes (`JAN`…, `SUN`…).
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for `first_name`, `first_name + 1`…
    names: &'static [&'static str],
    first_name: u32,
}

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
    first_name: 0,
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    first_name: 0,
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    first_name: 0,
};
const DAY_OF_MONTH: Field = Field {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
    first_name: 0,
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    first_name: 1,
};
const DAY_OF_WEEK: Field = Field {
    name: "day of week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    first_name: 0,
};
const YEAR: Field = Field {
    name: "year",
    min: 1970,
    max: 2999,
    names: &[],
    first_name: 0,
};

impl Field {
    fn value(&self, text: &str) -> Result<u32, String> {
        if let Ok(v) = text.parse::<u32>() {
            return if (self.min..=self.max).contains(&v) {
                Ok(v)
            } else {
                Err(format!(
                    "{} {v} is outside {}–{}",
                    self.name, self.min, self.max
                ))
            };
        }
        if let Some(i) = self.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(self.first_name + i as u32);
        }
        let names = match self.names {
            [] => String::new(),
            [first, .., last] => format!(" or a name {first}…{last}"),
            [one] => format!(" or {one}"),
        };
        Err(format!(
            "`{text}` is not a {}: use {}–{}{names}",
            self.name, self.min, self.max
        ))
    }

    /// Checks one field against crontab(5): a list of `*`, values and ranges, each with an
    /// optional `/step`.
    fn check(&self, text: &str) -> Result<(), String> {
        for part in text.split(',') {
            if part.is_empty() {
                return Err(format!(
                    "the {} field `{text}` has an empty list element",
                    self.name
                ));
            }
            let (range, step) = match part.split_once('/') {
                Some((r, st)) => (r, Some(st)),
                None => (part, None),
            };
            if let Some(st) = step {
                if !st.parse::<u32>().is_ok_and(|n| n >= 1) {
                    return Err(format!(
                        "`{part}`: the step of a {} must be a whole number from 1",
                        self.name
                    ));
                }
                if range != "*" && !range.contains('-') {
                    return Err(format!(
                        "`{part}`: a step follows `*` or a range (`*/{st}`, `{range}-{}/{st}`)",
                        self.max
                    ));
                }
            }
            if range == "*" {
                continue;
            }
            match range.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (self.value(a)?, self.value(b)?);
                    if a > b {
                        return Err(format!(
                            "`{part}`: a range in the {} field must go upward",
                            self.name
                        ));
                    }
                }
                None => {
                    self.value(range)?;
                }
            }
        }
        Ok(())
    }
}

/// The five-field line a nickname stands for (cron(5)); `None` for one backwork does not keep.
fn nickname(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return None,
    })
}

/// cron(5): the day-of-month/day-of-week OR applies when both fields are restricted, "i.e., do
/// not contain the `*` character"; a field such as `*/10` contains it, so such a line matches on
/// days where *both* fields match (as cronie and Vixie cron do). croner treats only a bare `*`
/// as unrestricted, so the line gets croner's `+` (AND) on its weekday field.
fn with_crontab_day_rule(expr: &str) -> String {
    let mut fields: Vec<String> = expr.split_whitespace().map(str::to_string).collect();
    let (dom, dow) = match fields.len() {
        5 => (2, 4),
        6 | 7 => (3, 5),
        _ => return expr.to_string(),
    };
    let starred = |f: &str| f.starts_with('*');
    let bare = |f: &str| f == "*" || f == "?";
    let (d, w) = (&fields[dom], &fields[dow]);
    if !bare(d) && !bare(w) && (starred(d) || starred(w)) && !w.starts_with('+') {
        fields[dow] = format!("+{w}");
    }
    fields.join(" ")
}

/// Parses a cron expression: five crontab fields, or six with seconds first (a seventh field is
/// a year), or a nickname (`@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`).
///
/// # Errors
///
/// A one-line sentence naming the expression and the reason, with an example of each form.
pub fn parse_cron(expr: &str) -> Result<CronSchedule, String> {
    let trimmed = expr.trim();
    let example = "write five crontab fields (`0 3 * * 1`: Mondays at 03:00) or six with seconds \
                   first (`30 0 3 * * 1`)";
    let line = if trimmed.starts_with('@') {
        if trimmed.eq_ignore_ascii_case("@reboot") {
            return Err(
                "@reboot is not a schedule backwork can keep: add a one-off job instead (backwork \
                 add -- CMD runs it now)"
                    .into(),
            );
        }
        nickname(trimmed).ok_or_else(|| {
            format!(
                "`{trimmed}` is not a valid cron expression: the nicknames are @hourly, @daily \
                 (@midnight), @weekly, @monthly and @yearly (@annually), each alone"
            )
        })?
    } else {
        trimmed
    };
    let fields: Vec<&str> = line.split_whitespace().collect();
    let layout: &[&Field] = match fields.len() {
        5 => &[&MINUTE, &HOUR, &DAY_OF_MONTH, &MONTH, &DAY_OF_WEEK],
        6 => &[&SECOND, &MINUTE, &HOUR, &DAY_OF_MONTH, &MONTH, &DAY_OF_WEEK],
        7 => &[
            &SECOND,
            &MINUTE,
            &HOUR,
            &DAY_OF_MONTH,
            &MONTH,
            &DAY_OF_WEEK,
            &YEAR,
        ],
        n => {
            return Err(format!(
                "`{trimmed}` is not a valid cron expression: it has {n} field{}, not 5, 6 or 7; \
                 {example}",
                if n == 1 { "" } else { "s" }
            ));
        }
    };
    for (field, text) in layout.iter().zip(&fields) {
        field
            .check(text)
            .map_err(|e| format!("`{trimmed}` is not a valid cron expression: {e}"))?;
    }
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .year(croner::parser::Year::Optional)
        .build()
        .parse(&with_crontab_day_rule(line))
        .map_err(|e| {
            let reason = e.to_string().replace('\n', " ");
            format!("`{trimmed}` is not a valid cron expression ({reason}); {example}")
        })?;
    // Vixie cron's wildcard jobs: the minute or the hour field starts with `*`
    // (`MIN_STAR | HR_STAR` in its cron.c)
    let (minute, hour) = if fields.len() == 5 {
        (fields[0], fields[1])
    } else {
        (fields[1], fields[2])
    };
    Ok(CronSchedule {
        cron,
        follows_real_time: minute.starts_with('*') || hour.starts_with('*'),
    })
}

/// How far ahead [`next_cron`] looks for a fall-back change that repeats wall-clock times a
/// real-time job must run through (real changes shift the offset by 30 min to 2 h).
const MAX_SHIFT: TimeDelta = TimeDelta::hours(3);

/// The first instant strictly after `after` at which `schedule` fires in time zone `tz`.
///
/// The expression is matched on local wall-clock times (croner); each match is then mapped to
/// instants in `tz` by Vixie cron's DST rule (DESIGN §2):
/// - a **fixed-time** job (neither the minute nor the hour field starts with `*`) runs once per
///   wall-clock time: a time skipped by spring-forward runs right after the change, a time
///   repeated by fall-back runs at its first occurrence (or at its second when the first had
///   passed before the job could see it);
/// - a **wildcard** job (the minute or the hour field starts with `*`: `*/30 * * * *`,
///   `0 * * * *`, `*/15 2 * * *`) follows real elapsed time: it runs at both occurrences of a
///   repeated time, and a skipped time simply does not occur.
///
/// `None` when the expression never fires again.
pub fn next_cron(schedule: &CronSchedule, tz: Tz, after: Time) -> Option<Time> {
    // croner searches years 1..5000; instants near chrono's limits have no local time in
    // every zone (a record a fuzzer wrote found it)
    if !(2..5000).contains(&after.year()) {
        return None;
    }
    let local_after = after.with_timezone(&tz).naive_local();
    let first = first_match(schedule, tz, local_after, false, after);
    if !schedule.follows_real_time {
        return first;
    }
    // A real-time job before a fall-back change: the wall-clock times repeated after the
    // change lie behind `local_after` on the wall clock but ahead in real time.
    let Some(change) = fall_back_after(tz, after) else {
        return first;
    };
    if first.is_some_and(|t| t < change) {
        return first;
    }
    let repeated_from = change.with_timezone(&tz).naive_local();
    let second = first_match(schedule, tz, repeated_from, true, after);
    match (first, second) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The first match of `schedule` on the wall clock from `cursor` (inclusive or not) whose
/// instant in `tz` is after `after`, mapping wall-clock times to instants by the DST rule of
/// [`next_cron`].
fn first_match(
    schedule: &CronSchedule,
    tz: Tz,
    mut cursor: NaiveDateTime,
    mut inclusive: bool,
    after: Time,
) -> Option<Time> {
    for _ in 0..10_000 {
        let naive = schedule
            .cron
            .find_next_occurrence(&cursor, inclusive)
            .ok()?;
        cursor = naive;
        inclusive = false;
        let instant = match tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, second) => {
                let (first, second) = (first.with_timezone(&Utc), second.with_timezone(&Utc));
                Some(if first > after { first } else { second })
            }
            LocalResult::None => {
                let end = gap_end(tz, naive)?;
                if schedule.follows_real_time {
                    // the skipped times do not occur: go on from the end of the gap
                    cursor = end.naive_local();
                    inclusive = true;
                    None
                } else {
                    Some(end.with_timezone(&Utc))
                }
            }
        };
        if let Some(t) = instant.filter(|t| *t > after) {
            return Some(t);
        }
    }
    None
}

/// The instant of the first change after `after`, within [`MAX_SHIFT`], at which `tz`'s UTC
/// offset goes down (a fall-back), to the second.
fn fall_back_after(tz: Tz, after: Time) -> Option<Time> {
    let offset = |t: Time| t.with_timezone(&tz).offset().fix().local_minus_utc();
    let before = offset(after);
    let horizon = after + MAX_SHIFT;
    if offset(horizon) >= before {
        return None;
    }
    // the offset is `before` at `lo` and lower at `hi`
    let (mut lo, mut hi) = (after, horizon);
    while hi - lo > TimeDelta::seconds(1) {
        let mid = lo + (hi - lo) / 2;
        if offset(mid) < before {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi.with_nanosecond(0).unwrap_or(hi))
}

/// The first valid local instant after `naive`, which lies in a spring-forward gap: the moment of
/// the change. Gaps start and end on whole minutes, so the first valid whole minute is the end.
fn gap_end(tz: Tz, naive: NaiveDateTime) -> Option<chrono::DateTime<Tz>> {
    let mut m = naive.with_second(0)?.with_nanosecond(0)?;
    for _ in 0..(26 * 60) {
        m += TimeDelta::minutes(1);
        if let Some(t) = tz.from_local_datetime(&m).earliest() {
            return Some(t);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        s.parse().unwrap()
    }

    const S: u64 = 1;

    #[test]
    fn exponential_backoff_table() {
        let b = Backoff::default();
        let expect = [
            (1, 30),
            (2, 60),
            (3, 120),
            (4, 240),
            (5, 480),
            (6, 960),
            (7, 1920),
            (8, 3840),
            (9, 7680),
            (10, 15360),
            (11, 18000),
            (12, 18000),
            (40, 18000),
            (u32::MAX, 18000),
        ];
        for (n, secs) in expect {
            assert_eq!(
                backoff_delay(&b, n, 7),
                Duration::from_secs(secs * S),
                "attempt {n}"
            );
        }
    }

    #[test]
    fn linear_backoff_table() {
        let b = Backoff::linear(Duration::from_secs(60));
        for (n, secs) in [(1, 60), (2, 120), (3, 180), (10, 600), (300, 18000)] {
            assert_eq!(
                backoff_delay(&b, n, 0),
                Duration::from_secs(secs),
                "attempt {n}"
            );
        }
    }

    #[test]
    fn backoff_base_is_clamped() {
        assert_eq!(
            backoff_delay(&Backoff::exponential(Duration::from_secs(1)), 1, 0),
            MIN_BACKOFF
        );
        assert_eq!(
            backoff_delay(&Backoff::linear(Duration::from_secs(1)), 2, 0),
            Duration::from_secs(20)
        );
        assert_eq!(
            backoff_delay(&Backoff::linear(Duration::from_secs(86_400)), 1, 0),
            MAX_BACKOFF
        );
    }

    #[test]
    fn jitter_stays_in_bounds_and_is_reproducible() {
        let b = Backoff::default().with_jitter(0.2);
        let mut distinct = std::collections::BTreeSet::new();
        for seed in 0..200u64 {
            let d = backoff_delay(&b, 3, seed);
            assert!(
                d >= Duration::from_secs(96) && d <= Duration::from_secs(144),
                "{d:?}"
            );
            assert_eq!(d, backoff_delay(&b, 3, seed));
            distinct.insert(d);
        }
        assert!(distinct.len() > 100, "jitter must actually vary");
    }

    #[test]
    fn grid_windows_over_hundreds_of_periods_do_not_drift() {
        let e = t("2026-01-01T00:00:00Z");
        let every = Duration::from_secs(900);
        let flex = Some(Duration::from_secs(300));
        let mut last = None;
        for k in 0..500i64 {
            let w = next_periodic_window(every, flex, Anchor::Grid, e, last, None);
            let end = e + TimeDelta::seconds(900 * (k + 1));
            assert_eq!(w.end, end, "period {k}");
            assert_eq!(w.start, end - TimeDelta::seconds(300));
            // the run starts somewhere in the window and takes a while
            let started = w.start + TimeDelta::seconds(k % 300);
            last = Some(started);
        }
    }

    #[test]
    fn grid_without_flex_runs_at_enqueue_then_each_period_start() {
        let e = t("2026-01-01T00:00:00Z");
        let every = Duration::from_secs(3600);
        let w0 = next_periodic_window(every, None, Anchor::Grid, e, None, None);
        assert_eq!((w0.start, w0.end), (e, t("2026-01-01T01:00:00Z")));
        let w1 = next_periodic_window(every, None, Anchor::Grid, e, Some(e), None);
        assert_eq!(w1.start, t("2026-01-01T01:00:00Z"));
        // a run late in period 5 does not produce a burst: next is period 6
        let late = t("2026-01-01T05:59:00Z");
        let w = next_periodic_window(every, None, Anchor::Grid, e, Some(late), None);
        assert_eq!(w.start, t("2026-01-01T06:00:00Z"));
    }

    #[test]
    fn after_run_anchor_drifts_with_the_finish_time() {
        let e = t("2026-01-01T00:00:00Z");
        let every = Duration::from_secs(900);
        let flex = Some(Duration::from_secs(300));
        let mut finished = None;
        let mut started = None;
        // WorkSpec.calculateNextRunTime (androidx.work): the first run at enqueue + interval −
        // flex, each later one at lastEnqueueTime (the previous run's end) + interval
        for k in 0..300 {
            let w = next_periodic_window(every, flex, Anchor::AfterRun, e, started, finished);
            match finished {
                None => assert_eq!(w.start, e + TimeDelta::seconds(600)),
                Some(f) => assert_eq!(w.start, f + TimeDelta::seconds(900), "period {k}"),
            }
            assert_eq!(w.end, finished.unwrap_or(e) + TimeDelta::seconds(900));
            started = Some(w.start);
            finished = Some(w.start + TimeDelta::seconds(7)); // each run takes 7 s: drift
        }
        // 600 s + 7 s, then 299 periods × (900 s + 7 s) after the enqueue
        assert_eq!(finished.unwrap(), e + TimeDelta::seconds(607 + 299 * 907));
    }

    #[test]
    fn skip_window_is_the_first_not_yet_ended() {
        let e = t("2026-01-01T00:00:00Z");
        let every = Duration::from_secs(3600);
        let w = periodic_window_at(
            every,
            Some(Duration::from_secs(600)),
            Anchor::Grid,
            e,
            t("2026-01-01T05:30:00Z"),
        );
        assert_eq!(w.end, t("2026-01-01T06:00:00Z"));
        assert_eq!(w.start, t("2026-01-01T05:50:00Z"));
        let at_end = periodic_window_at(every, None, Anchor::Grid, e, t("2026-01-01T06:00:00Z"));
        assert_eq!(at_end.end, t("2026-01-01T06:00:00Z"));
    }

    fn fire_times(expr: &str, tz: Tz, from: Time, n: usize) -> Vec<Time> {
        let s = parse_cron(expr).unwrap();
        let mut out = Vec::new();
        let mut at = from;
        for _ in 0..n {
            at = next_cron(&s, tz, at).unwrap();
            out.push(at);
        }
        out
    }

    #[test]
    fn cron_spring_forward_runs_right_after_the_change() {
        // Europe/Berlin: 2026-03-29 02:00 local → 03:00 (01:00 UTC)
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let times = fire_times("0 30 2 * * *", tz, t("2026-03-27T12:00:00Z"), 4);
        assert_eq!(
            times,
            [
                t("2026-03-28T01:30:00Z"), // 02:30 CET
                t("2026-03-29T01:00:00Z"), // 02:30 does not exist: right after the change (03:00 CEST)
                t("2026-03-30T00:30:00Z"), // 02:30 CEST
                t("2026-03-31T00:30:00Z"),
            ]
        );
    }

    #[test]
    fn cron_fall_back_runs_a_repeated_time_once() {
        // Europe/Berlin: 2026-10-25 03:00 CEST → 02:00 CET; 02:00–02:59 happen twice.
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let times = fire_times("0 30 2 * * *", tz, t("2026-10-23T12:00:00Z"), 3);
        assert_eq!(
            times,
            [
                t("2026-10-24T00:30:00Z"), // 02:30 CEST
                t("2026-10-25T00:30:00Z"), // first 02:30 (CEST) only
                t("2026-10-26T01:30:00Z"), // 02:30 CET
            ]
        );
        // every 20 minutes (hour field `*`): by real time, through both passes of 02:xx
        let twenty = fire_times("0 */20 * * * *", tz, t("2026-10-24T23:50:00Z"), 8);
        assert_eq!(
            twenty,
            [
                t("2026-10-25T00:00:00Z"), // 02:00 CEST
                t("2026-10-25T00:20:00Z"),
                t("2026-10-25T00:40:00Z"),
                t("2026-10-25T01:00:00Z"), // 02:00 CET, the second pass
                t("2026-10-25T01:20:00Z"),
                t("2026-10-25T01:40:00Z"),
                t("2026-10-25T02:00:00Z"), // 03:00 CET
                t("2026-10-25T02:20:00Z"),
            ]
        );
    }

    #[test]
    fn cron_inside_the_gap_every_minute_collapses_to_one_run() {
        let tz: Tz = "America/New_York".parse().unwrap();
        // 2026-03-08 02:00 EST → 03:00 EDT (07:00 UTC)
        let times = fire_times("0 */15 * * * *", tz, t("2026-03-08T06:40:00Z"), 3);
        assert_eq!(
            times,
            [
                t("2026-03-08T06:45:00Z"), // 01:45 EST
                t("2026-03-08T07:00:00Z"), // 02:00..02:45 skipped → 03:00 EDT, once
                t("2026-03-08T07:15:00Z"),
            ]
        );
    }

    #[test]
    fn cron_in_utc_and_errors() {
        let times = fire_times("0 0 3 * * *", Tz::UTC, t("2026-01-01T03:00:00Z"), 2);
        assert_eq!(
            times,
            [t("2026-01-02T03:00:00Z"), t("2026-01-03T03:00:00Z")]
        );
        // five fields are a crontab line: minute first
        let crontab = fire_times("0 3 * * *", Tz::UTC, t("2026-01-01T03:00:00Z"), 1);
        assert_eq!(crontab, [t("2026-01-02T03:00:00Z")]);
        let err = parse_cron("0 3 * *").unwrap_err();
        assert!(
            err.contains("it has 4 fields") && !err.contains('\n'),
            "{err}"
        );
        assert!(parse_cron("every day").is_err());
        let never = parse_cron("0 0 0 1 1 * 2001").unwrap();
        assert_eq!(next_cron(&never, Tz::UTC, t("2026-01-01T00:00:00Z")), None);
    }
}
