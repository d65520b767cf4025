//! A job's options in the words people use — the flags of `backwork add`, the keys of a
//! simulator scenario's `[[job]]` — turned into a [`JobRequest`] here and nowhere else.
//!
//! Every front end moves the text it was given into a [`JobOptions`] and calls
//! [`JobOptions::request`]; so `--timeout never` means the same on the command line and in a
//! scenario, the names of constraints, anchors, catch-up and conflict policies are listed once
//! (the `*_CHOICES` tables, which the command line also uses for its help and completion), and
//! a bad value gives one typed [`OptionError`] that names the option.

use std::time::Duration;

use backwork_constraints::{Constraint, NetworkRequirement};
use chrono::{NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

use super::job::{Anchor, Backoff, CatchUp, ConflictPolicy, Jitter, JobRequest, Schedule, Time};
use super::merge::InputMerger;

/// One word an option takes, what it means, and the value it stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice<T: 'static> {
    /// The word, as written (`battery-not-low`).
    pub name: &'static str,
    /// What it means, in a few words (for help text).
    pub help: &'static str,
    /// The value.
    pub value: T,
}

/// The words of `requires` (DESIGN §2's constraints; WorkManager's `Constraints.Builder`).
pub const REQUIRES_CHOICES: &[Choice<Constraint>] = &[
    Choice {
        name: "network",
        help: "Any network connection (NetworkType.CONNECTED)",
        value: Constraint::Network(NetworkRequirement::Connected),
    },
    Choice {
        name: "unmetered",
        help: "An unmetered network (NetworkType.UNMETERED)",
        value: Constraint::Network(NetworkRequirement::Unmetered),
    },
    Choice {
        name: "charging",
        help: "AC power",
        value: Constraint::Charging,
    },
    Choice {
        name: "battery-not-low",
        help: "Battery at or above 15 %, or charging",
        value: Constraint::BatteryNotLow,
    },
    Choice {
        name: "storage-not-low",
        help: "Free space on the store's filesystem not low",
        value: Constraint::StorageNotLow,
    },
    Choice {
        name: "idle",
        help: "The device idle",
        value: Constraint::DeviceIdle,
    },
];

/// The words of `--expedited` (`expedited` in a scenario): what an expedited job does once the
/// expedited quota is used up — WorkManager's two `OutOfQuotaPolicy` values.
pub const EXPEDITED_CHOICES: &[Choice<super::OutOfQuotaPolicy>] = &[
    Choice {
        name: "run-as-regular",
        help: "Run as ordinary work (RUN_AS_NON_EXPEDITED_WORK_REQUEST)",
        value: super::OutOfQuotaPolicy::RunAsNonExpedited,
    },
    Choice {
        name: "drop",
        help: "Drop the job: cancel it, saying why (DROP_WORK_REQUEST)",
        value: super::OutOfQuotaPolicy::Drop,
    },
];

/// The words of `anchor`.
pub const ANCHOR_CHOICES: &[Choice<Anchor>] = &[
    Choice {
        name: "grid",
        help: "A fixed grid from the first add: never drifts (the default, except under android)",
        value: Anchor::Grid,
    },
    Choice {
        name: "after-run",
        help: "Each period from the end of the previous run (WorkManager's; android's default)",
        value: Anchor::AfterRun,
    },
];

/// The words of `catch_up`.
pub const CATCH_UP_CHOICES: &[Choice<CatchUp>] = &[
    Choice {
        name: "one",
        help: "Run once as soon as possible (systemd's Persistent=true)",
        value: CatchUp::One,
    },
    Choice {
        name: "skip",
        help: "Wait for the next slot",
        value: CatchUp::Skip,
    },
];

/// The words of `on_conflict`: WorkManager's `ExistingWorkPolicy` (`KEEP`, `REPLACE`,
/// `UPDATE`, `APPEND`, `APPEND_OR_REPLACE`), lower case. `replace` of a periodic or cron job is
/// `ExistingPeriodicWorkPolicy.CANCEL_AND_REENQUEUE`.
pub const ON_CONFLICT_CHOICES: &[Choice<ConflictPolicy>] = &[
    Choice {
        name: "keep",
        help: "Keep the existing job; drop this one",
        value: ConflictPolicy::Keep,
    },
    Choice {
        name: "replace",
        help: "Cancel the existing job and add this one",
        value: ConflictPolicy::Replace,
    },
    Choice {
        name: "update",
        help: "Change the existing job in place (same id)",
        value: ConflictPolicy::Update,
    },
    Choice {
        name: "append",
        help: "Run after the existing one-off job succeeds",
        value: ConflictPolicy::Append,
    },
    Choice {
        name: "append-or-replace",
        help: "Like append; start anew if the existing one failed",
        value: ConflictPolicy::AppendOrReplace,
    },
];

/// The words of `input_merger`: WorkManager's two input mergers.
pub const INPUT_MERGER_CHOICES: &[Choice<InputMerger>] = &[
    Choice {
        name: "overwriting",
        help: "Every key of the prerequisites' outputs; a later one's value wins (OverwritingInputMerger)",
        value: InputMerger::Overwriting,
    },
    Choice {
        name: "array-creating",
        help: "Every key, its values gathered into arrays (ArrayCreatingInputMerger)",
        value: InputMerger::ArrayCreating,
    },
];

/// The words of `timeout` that mean "no time limit".
pub const NO_TIMEOUT_WORDS: &[&str] = &["none", "never"];

/// What a front end knows that the options do not say: the zone local times are read in, and
/// the instant the job is added.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptionContext {
    /// The zone of `cron` and `at` when `tz` is not given (the command line: the local zone; a
    /// scenario: UTC).
    pub zone: Tz,
    /// When the job is added (`at 03:00` is the next 03:00 after it; an `at` before it is
    /// refused).
    pub now: Time,
}

/// A job's options as text, exactly as a person wrote them. Field names are the scenario
/// file's keys; the command line's flags are the same words in kebab case (`--min-interval`),
/// except `--in` and `--tag`.
///
/// ```
/// use backwork_scheduler::core::{JobOptions, OptionContext, OptionError};
///
/// let now = "2026-11-30T12:00:00Z".parse().unwrap();
/// let cx = OptionContext { zone: chrono_tz::Europe::Berlin, now };
/// let options = JobOptions {
///     every: Some("6h".into()),
///     requires: vec!["charging".into(), "unmetered".into()],
///     timeout: Some("never".into()),
///     ..JobOptions::default()
/// };
/// let request = options.request("backup", &cx).unwrap();
/// assert!(request.schedule.is_recurring());
/// assert_eq!(request.timeout, None);
///
/// let wrong = JobOptions { at: Some("03:00".into()), ..options };
/// assert_eq!(wrong.request("backup", &cx).unwrap_err(), OptionError::TwoSchedules);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobOptions {
    /// Once, this long after it is added (humantime: `10m`, `1h 30m`); with `every`, the delay
    /// before the first period (WorkManager's initial delay).
    pub in_: Option<String>,
    /// Once, at this time: `03:00` (the next one, as at(1) reads it), `tomorrow 03:00`,
    /// `2026-12-01T03:00` (in `tz`), or RFC 3339.
    pub at: Option<String>,
    /// Periodic: the interval (humantime).
    pub every: Option<String>,
    /// Periodic: run in the last `flex` of each period (humantime).
    pub flex: Option<String>,
    /// Periodic: one of [`ANCHOR_CHOICES`].
    pub anchor: Option<String>,
    /// Cron: five crontab fields, or six with seconds first; `@daily` and the like.
    pub cron: Option<String>,
    /// The IANA zone of `cron` and `at` (default: [`OptionContext::zone`]).
    pub tz: Option<String>,
    /// Recurring: one of [`CATCH_UP_CHOICES`].
    pub catch_up: Option<String>,
    /// Constraints, each one of [`REQUIRES_CHOICES`].
    pub requires: Vec<String>,
    /// Minimum interval between successful starts (humantime).
    pub min_interval: Option<String>,
    /// Retry delays: `exponential:30s`, `linear:1m`, or a bare kind (base 30 s).
    pub backoff: Option<String>,
    /// Spread each retry delay by ± this fraction, `0 ≤ f < 1`.
    pub backoff_jitter: Option<f64>,
    /// Attempts before the job fails, at least 1 (default: retry forever).
    pub max_attempts: Option<u32>,
    /// Time limit of each run (humantime), or one of [`NO_TIMEOUT_WORDS`] for none (default:
    /// the request's default, WorkManager's 10 minutes).
    pub timeout: Option<String>,
    /// Start at the due time exactly, not batched.
    pub accurate: bool,
    /// Delay each due time by a pseudo-random amount up to this (humantime).
    pub jitter: Option<String>,
    /// With `jitter`: the same delay every time (systemd's `FixedRandomDelay=`).
    pub fixed_jitter: bool,
    /// A unique name.
    pub unique: Option<String>,
    /// With `unique`: one of [`ON_CONFLICT_CHOICES`] (default `keep`).
    pub on_conflict: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// A job that runs after others: one of [`INPUT_MERGER_CHOICES`] (default `overwriting`).
    pub input_merger: Option<String>,
    /// Expedited work: one of [`EXPEDITED_CHOICES`], what to do once the expedited quota is
    /// used up.
    pub expedited: Option<String>,
}

/// Why a job's options are refused. [`OptionError::option`] names the option at fault (the
/// scenario key); the message does not, so each front end names it the way its user wrote it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptionError {
    /// Not a humantime duration.
    #[error("{value:?} is not a duration ({reason}); write it like 10m, 6h or 1h 30m")]
    Duration {
        /// The option.
        option: &'static str,
        /// What was written.
        value: String,
        /// humantime's complaint.
        reason: String,
    },
    /// Not a time `at` understands.
    #[error(
        "{value:?} is not a time; write it like 03:00 (the next one), tomorrow 03:00, 2026-12-01T03:00 (local) or 2026-12-01T03:00:00Z"
    )]
    Time {
        /// What was written.
        value: String,
    },
    /// A local time the clocks skip (spring forward).
    #[error(
        "{value:?} does not exist in {zone} (the clocks skip it); pick a time outside the change"
    )]
    SkippedTime {
        /// What was written.
        value: String,
        /// The zone it was read in.
        zone: Tz,
    },
    /// An `at` before the job is added.
    #[error("{value} is in the past; give a future time, or leave the schedule out to run at once")]
    PastTime {
        /// What was written.
        value: String,
    },
    /// Not an IANA zone name.
    #[error("unknown time zone {value:?}; use an IANA name such as Europe/Berlin or UTC")]
    Zone {
        /// What was written.
        value: String,
    },
    /// Not one of the option's words.
    #[error("{value:?} is not one of: {}", choices.join(", "))]
    Choice {
        /// The option.
        option: &'static str,
        /// What was written.
        value: String,
        /// The words it takes.
        choices: Vec<&'static str>,
    },
    /// Not a backoff.
    #[error("{value:?} is not a backoff; write exponential:30s or linear:1m")]
    Backoff {
        /// What was written.
        value: String,
    },
    /// A backoff jitter outside `0 ≤ f < 1`.
    #[error("{value} is not a fraction from 0 up to 1; use e.g. 0.5 for ± 50 %")]
    Fraction {
        /// What was written.
        value: f64,
    },
    /// `max_attempts = 0`.
    #[error("0 attempts would never run; give at least 1, or leave it out to retry forever")]
    ZeroAttempts,
    /// More than one of `at`, `every`, `cron`, or `in` with `at` or `cron`.
    #[error(
        "give only one schedule: every (periodic; in delays its first period), cron, in (a delay) or at (an instant)"
    )]
    TwoSchedules,
    /// `flex` or `anchor` without `every`.
    #[error(
        "a flex window and an anchor apply to periodic jobs only; make it periodic (every) or drop them"
    )]
    PeriodicOnly,
    /// `catch_up` on a one-off job.
    #[error("catching up on missed slots applies to periodic and cron jobs only; drop catch-up")]
    RecurringOnly,
    /// `tz` without `cron` or `at`.
    #[error("a time zone applies to cron and at schedules only; drop it or use one of them")]
    ZoneUnused,
    /// `fixed_jitter` without `jitter`.
    #[error("a fixed jitter needs a jitter; give one or drop fixed-jitter")]
    FixedWithoutJitter,
    /// `on_conflict` without `unique`.
    #[error("a conflict policy needs a unique name; give one or drop on-conflict")]
    ConflictWithoutUnique,
}

impl OptionError {
    /// The option at fault (its scenario key: `every`, `min_interval`, `in`), or `None` when
    /// options do not fit together.
    pub fn option(&self) -> Option<&'static str> {
        match self {
            OptionError::Duration { option, .. } | OptionError::Choice { option, .. } => {
                Some(option)
            }
            OptionError::Time { .. }
            | OptionError::SkippedTime { .. }
            | OptionError::PastTime { .. } => Some("at"),
            OptionError::Zone { .. } => Some("tz"),
            OptionError::Backoff { .. } => Some("backoff"),
            OptionError::Fraction { .. } => Some("backoff_jitter"),
            OptionError::ZeroAttempts => Some("max_attempts"),
            OptionError::TwoSchedules
            | OptionError::PeriodicOnly
            | OptionError::RecurringOnly
            | OptionError::ZoneUnused
            | OptionError::FixedWithoutJitter
            | OptionError::ConflictWithoutUnique => None,
        }
    }
}

/// A humantime duration (`10m`, `1h 30m`, `2days`). humantime reads a capital `M` as months;
/// a lone `M` is refused as the trap it is (`10M` meant minutes more often than months).
pub fn parse_duration(option: &'static str, value: &str) -> Result<Duration, OptionError> {
    if value
        .split(|c: char| !c.is_alphabetic())
        .any(|unit| unit == "M")
    {
        return Err(OptionError::Duration {
            option,
            value: value.to_string(),
            reason: "`M` is months here, not minutes".into(),
        });
    }
    humantime::parse_duration(value.trim()).map_err(|e| OptionError::Duration {
        option,
        value: value.to_string(),
        reason: e.to_string(),
    })
}

/// An IANA zone name.
pub fn parse_zone(value: &str) -> Result<Tz, OptionError> {
    value.trim().parse::<Tz>().map_err(|_| OptionError::Zone {
        value: value.to_string(),
    })
}

/// The value of the word `value` in `choices`.
pub fn choose<T: Copy>(
    option: &'static str,
    choices: &'static [Choice<T>],
    value: &str,
) -> Result<T, OptionError> {
    choices
        .iter()
        .find(|c| c.name == value.trim())
        .map(|c| c.value)
        .ok_or_else(|| OptionError::Choice {
            option,
            value: value.to_string(),
            choices: choices.iter().map(|c| c.name).collect(),
        })
}

/// A time `at` understands, read in `zone`: RFC 3339 (`2026-12-01T03:00:00Z`, `…+01:00`) as
/// given; a local date and time (`2026-12-01T03:00`, `2026-12-01 03:00:30`); or, as at(1)
/// reads it, a time of day `HH:MM[:SS]` — its next occurrence after `now` — optionally after
/// `today` or `tomorrow`. A local time repeated when the clocks go back is its first
/// occurrence; one they skip is refused.
pub fn parse_at(value: &str, zone: Tz, now: Time) -> Result<Time, OptionError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value.trim()) {
        return Ok(t.to_utc());
    }
    // RFC 3339 without seconds (`2026-12-01T03:00Z`, `…03:00+01:00`), as people write it
    let trimmed = value.trim();
    for f in ["%Y-%m-%dT%H:%M%:z", "%Y-%m-%d %H:%M%:z"] {
        if let Ok(t) = chrono::DateTime::parse_from_str(trimmed, f) {
            return Ok(t.to_utc());
        }
    }
    if let Some(utc) = trimmed.strip_suffix(['Z', 'z'])
        && let Some(naive) = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(utc, f).ok())
    {
        return Ok(naive.and_utc());
    }
    let bad = || OptionError::Time {
        value: value.to_string(),
    };
    let local = |naive: NaiveDateTime| match zone.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => Ok(t.to_utc()),
        chrono::LocalResult::Ambiguous(first, _) => Ok(first.to_utc()),
        chrono::LocalResult::None => Err(OptionError::SkippedTime {
            value: value.to_string(),
            zone,
        }),
    };
    let full = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(value.trim(), f).ok());
    if let Some(naive) = full {
        return local(naive);
    }
    let (day, clock) = match value.trim().split_once(char::is_whitespace) {
        Some((day, clock)) => (Some(day.trim()), clock.trim()),
        None => (None, value.trim()),
    };
    let time = ["%H:%M:%S", "%H:%M"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(clock, f).ok())
        .ok_or_else(bad)?;
    let today = now.with_timezone(&zone).date_naive();
    let date = match day {
        None => {
            let candidate = local(today.and_time(time))?;
            if candidate > now {
                return Ok(candidate);
            }
            today.succ_opt().ok_or_else(bad)?
        }
        Some("today") => today,
        Some("tomorrow") => today.succ_opt().ok_or_else(bad)?,
        Some(_) => return Err(bad()),
    };
    local(date.and_time(time))
}

/// A time limit: `Some(d)`, or `None` for one of [`NO_TIMEOUT_WORDS`].
pub fn parse_timeout(value: &str) -> Result<Option<Duration>, OptionError> {
    if NO_TIMEOUT_WORDS.contains(&value.trim()) {
        Ok(None)
    } else {
        parse_duration("timeout", value).map(Some)
    }
}

impl JobOptions {
    /// The request for worker `kind`, or the first option that is refused. (Values the core
    /// checks against each other — a cron expression, a flex longer than its period — are
    /// checked when the request is enqueued.)
    pub fn request(&self, kind: &str, cx: &OptionContext) -> Result<JobRequest, OptionError> {
        let duration = |option: &'static str, v: &Option<String>| {
            v.as_deref().map(|v| parse_duration(option, v)).transpose()
        };
        // `in` with `every` is the delay before the first period, not a second schedule
        let in_alone = if self.every.is_some() {
            &None
        } else {
            &self.in_
        };
        let schedules = [&self.every, &self.cron, in_alone, &self.at]
            .iter()
            .filter(|o| o.is_some())
            .count();
        if schedules > 1 {
            return Err(OptionError::TwoSchedules);
        }
        if self.every.is_none() && (self.flex.is_some() || self.anchor.is_some()) {
            return Err(OptionError::PeriodicOnly);
        }
        if self.tz.is_some() && self.cron.is_none() && self.at.is_none() {
            return Err(OptionError::ZoneUnused);
        }
        if self.fixed_jitter && self.jitter.is_none() {
            return Err(OptionError::FixedWithoutJitter);
        }
        if self.on_conflict.is_some() && self.unique.is_none() {
            return Err(OptionError::ConflictWithoutUnique);
        }
        let zone = self.tz.as_deref().map(parse_zone).transpose()?;
        let zone = zone.unwrap_or(cx.zone);
        let mut r = if let Some(every) = duration("every", &self.every)? {
            let mut r = JobRequest::periodic(kind, every);
            if let Some(f) = duration("flex", &self.flex)? {
                r = r.flex(f);
            }
            if let Some(a) = &self.anchor {
                r = r.anchor(choose("anchor", ANCHOR_CHOICES, a)?);
            }
            if let Some(d) = duration("in", &self.in_)? {
                r = r.delay(d);
            }
            r
        } else if let Some(expr) = &self.cron {
            JobRequest::cron(kind, expr.trim(), zone)
        } else if let Some(text) = &self.at {
            let at = parse_at(text, zone, cx.now)?;
            if at < cx.now {
                return Err(OptionError::PastTime {
                    value: text.clone(),
                });
            }
            JobRequest::once(kind).not_before(at)
        } else {
            JobRequest::once(kind).delay(duration("in", &self.in_)?.unwrap_or_default())
        };
        if let Some(c) = &self.catch_up {
            let c = choose("catch_up", CATCH_UP_CHOICES, c)?;
            if !r.schedule.is_recurring() {
                return Err(OptionError::RecurringOnly);
            }
            r = r.catch_up(c);
        }
        for c in &self.requires {
            r = r.requires(choose("requires", REQUIRES_CHOICES, c)?);
        }
        if let Some(m) = duration("min_interval", &self.min_interval)? {
            r = r.min_interval(m);
        }
        if let Some(b) = &self.backoff {
            r = r.backoff(
                b.parse::<Backoff>()
                    .map_err(|_| OptionError::Backoff { value: b.clone() })?,
            );
        }
        if let Some(j) = self.backoff_jitter {
            if !(0.0..1.0).contains(&j) {
                return Err(OptionError::Fraction { value: j });
            }
            r.backoff.jitter = j;
        }
        match self.max_attempts {
            Some(0) => return Err(OptionError::ZeroAttempts),
            Some(n) => r = r.max_attempts(n),
            None => {}
        }
        if let Some(t) = &self.timeout {
            r = r.timeout(parse_timeout(t)?);
        }
        if self.accurate {
            r = r.accurate();
        }
        if let Some(e) = &self.expedited {
            r.expedited = Some(choose("expedited", EXPEDITED_CHOICES, e)?);
        }
        r.jitter = duration("jitter", &self.jitter)?.map(|max| Jitter {
            max,
            fixed: self.fixed_jitter,
        });
        if let Some(name) = &self.unique {
            let policy = match &self.on_conflict {
                Some(p) => choose("on_conflict", ON_CONFLICT_CHOICES, p)?,
                None => ConflictPolicy::Keep,
            };
            let recurring = !matches!(r.schedule, Schedule::Once { .. });
            let policy = match policy {
                ConflictPolicy::Replace if recurring => ConflictPolicy::CancelAndReenqueue,
                p => p,
            };
            r = r.unique(name.clone(), policy);
        }
        for t in &self.tags {
            r = r.tag(t.clone());
        }
        if let Some(m) = &self.input_merger {
            r = r.input_merger(choose("input_merger", INPUT_MERGER_CHOICES, m)?);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn now() -> Time {
        t("2026-11-22T12:00:00Z")
    }

    fn berlin() -> Tz {
        "Europe/Berlin".parse().unwrap()
    }

    #[test]
    fn at_reads_local_times_in_the_zone_and_rfc3339_as_given() {
        assert_eq!(
            parse_at("2026-12-01T03:00", berlin(), now()).unwrap(),
            t("2026-12-01T02:00:00Z")
        );
        assert_eq!(
            parse_at("2026-12-01 03:00:30", Tz::UTC, now()).unwrap(),
            t("2026-12-01T03:00:30Z")
        );
        assert_eq!(
            parse_at("2026-12-01T03:00:00+05:00", berlin(), now()).unwrap(),
            t("2026-11-30T22:00:00Z")
        );
        // without seconds, with a zone: as given
        assert_eq!(
            parse_at("2026-12-01T03:00Z", berlin(), now()).unwrap(),
            t("2026-12-01T03:00:00Z")
        );
        assert_eq!(
            parse_at("2026-12-01T03:00+05:00", berlin(), now()).unwrap(),
            t("2026-11-30T22:00:00Z")
        );
        // the skipped hour of spring forward (last Sunday of March, 02:00 → 03:00 in the EU)
        assert!(matches!(
            parse_at("2027-03-28T02:30", berlin(), now()),
            Err(OptionError::SkippedTime { .. })
        ));
        // the repeated hour of fall back (last Sunday of October): its first occurrence, CEST
        assert_eq!(
            parse_at("2027-10-31T02:30", berlin(), now()).unwrap(),
            t("2027-10-31T00:30:00Z")
        );
        assert!(matches!(
            parse_at("tomorrow", berlin(), now()),
            Err(OptionError::Time { .. })
        ));
    }

    /// at(1): "HH:MM … If that time is already past, the next day is assumed"; `today` and
    /// `tomorrow` may precede it.
    #[test]
    fn at_reads_a_time_of_day_as_at_does() {
        // 12:00 UTC is 13:00 in Berlin (CET, UTC+1)
        assert_eq!(
            parse_at("14:30", berlin(), now()).unwrap(),
            t("2026-11-22T13:30:00Z"),
            "still ahead today"
        );
        assert_eq!(
            parse_at("03:00", berlin(), now()).unwrap(),
            t("2026-11-23T02:00:00Z"),
            "already past: tomorrow"
        );
        assert_eq!(
            parse_at("tomorrow 03:00", berlin(), now()).unwrap(),
            t("2026-11-23T02:00:00Z")
        );
        assert_eq!(
            parse_at("today 23:15:30", berlin(), now()).unwrap(),
            t("2026-11-22T22:15:30Z")
        );
        assert!(parse_at("yesterday 03:00", berlin(), now()).is_err());
        assert!(parse_at("25:00", berlin(), now()).is_err());
    }

    fn cx() -> OptionContext {
        OptionContext {
            zone: berlin(),
            now: now(),
        }
    }

    #[test]
    fn each_bad_value_names_its_option() {
        let bad = |o: JobOptions| o.request("k", &cx()).unwrap_err();
        let e = bad(JobOptions {
            every: Some("6 hourz".into()),
            ..Default::default()
        });
        assert_eq!(e.option(), Some("every"));
        let e = bad(JobOptions {
            requires: vec!["wifi".into()],
            ..Default::default()
        });
        assert_eq!(e.option(), Some("requires"));
        assert!(e.to_string().contains("battery-not-low"), "{e}");
        // humantime's `M` is months: a lone `M` is refused rather than read as 10 months
        let e = bad(JobOptions {
            in_: Some("10M".into()),
            ..Default::default()
        });
        assert_eq!(e.option(), Some("in"));
        assert!(e.to_string().contains("months"), "{e}");
        let e = bad(JobOptions {
            max_attempts: Some(0),
            ..Default::default()
        });
        assert_eq!(e, OptionError::ZeroAttempts);
        let e = bad(JobOptions {
            at: Some("2026-11-22T11:00:00Z".into()),
            ..Default::default()
        });
        assert!(matches!(e, OptionError::PastTime { .. }));
        let e = bad(JobOptions {
            in_: Some("1h".into()),
            catch_up: Some("one".into()),
            ..Default::default()
        });
        assert_eq!(e, OptionError::RecurringOnly);
        let e = bad(JobOptions {
            tz: Some("Europe/Berlin".into()),
            ..Default::default()
        });
        assert_eq!(e, OptionError::ZoneUnused);
        let e = bad(JobOptions {
            cron: Some("0 3 * * *".into()),
            tz: Some("Mars/Olympus".into()),
            ..Default::default()
        });
        assert_eq!(e.option(), Some("tz"));
    }

    /// `none` and `never` mean "no time limit" wherever the options come from.
    #[test]
    fn no_timeout_has_two_words() {
        for word in NO_TIMEOUT_WORDS {
            let r = JobOptions {
                timeout: Some((*word).into()),
                ..Default::default()
            }
            .request("k", &cx())
            .unwrap();
            assert_eq!(r.timeout, None, "{word}");
        }
    }

    /// `replace` of a recurring job is WorkManager's `CANCEL_AND_REENQUEUE`
    /// (ExistingPeriodicWorkPolicy); of a one-off job, `REPLACE` (ExistingWorkPolicy).
    #[test]
    fn replace_of_a_recurring_job_cancels_and_reenqueues() {
        let r = JobOptions {
            every: Some("1h".into()),
            unique: Some("sync".into()),
            on_conflict: Some("replace".into()),
            ..Default::default()
        }
        .request("k", &cx())
        .unwrap();
        assert_eq!(r.unique.unwrap().policy, ConflictPolicy::CancelAndReenqueue);
        let r = JobOptions {
            unique: Some("sync".into()),
            on_conflict: Some("append-or-replace".into()),
            ..Default::default()
        }
        .request("k", &cx())
        .unwrap();
        assert_eq!(r.unique.unwrap().policy, ConflictPolicy::AppendOrReplace);
    }
}
