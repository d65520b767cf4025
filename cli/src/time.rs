//! Times on the command line: durations, instants in the local zone, "in 3h 12m" / "5m ago".

use std::time::Duration;

use backwork_scheduler::Time;
use chrono::{NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use crate::error::CliError;

/// The local IANA time zone (from `TZ` or the system's setting), or UTC if it cannot be told.
pub fn local_zone() -> Tz {
    if let Ok(tz) = std::env::var("TZ")
        && let Ok(z) = tz.trim_start_matches(':').parse::<Tz>()
    {
        return z;
    }
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|name| name.parse::<Tz>().ok())
        .unwrap_or(Tz::UTC)
}

/// Parses a time zone name.
pub fn parse_zone(name: &str) -> Result<Tz, CliError> {
    name.parse::<Tz>().map_err(|_| {
        CliError::invalid(format!(
            "unknown time zone `{name}`; use an IANA name such as Europe/Berlin or UTC"
        ))
    })
}

/// Parses a duration flag (humantime syntax: `10m`, `1h 30m`, `2days`).
pub fn parse_duration(flag: &str, value: &str) -> Result<Duration, CliError> {
    humantime::parse_duration(value).map_err(|e| {
        CliError::invalid(format!(
            "--{flag} {value:?} is not a duration ({e}); write it like 10m, 6h or 1h 30m"
        ))
    })
}

/// Parses `--at`: RFC 3339 (`2026-12-01T03:00:00Z`, `…+01:00`), or a local date and time
/// (`2026-12-01T03:00`, `2026-12-01 03:00:30`) read in `zone`.
pub fn parse_at(value: &str, zone: Tz, now: Time) -> Result<Time, CliError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.to_utc());
    }
    let bad = || {
        CliError::invalid(format!(
            "--at {value:?} is not a time; write it like 03:00 (the next one), tomorrow 03:00, 2026-12-01T03:00 (local) or 2026-12-01T03:00:00Z"
        ))
    };
    let local = |naive: NaiveDateTime| match zone.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => Ok(t.to_utc()),
        // a repeated hour (clocks go back): the first one
        chrono::LocalResult::Ambiguous(first, _) => Ok(first.to_utc()),
        chrono::LocalResult::None => Err(CliError::invalid(format!(
            "--at {value:?} does not exist in {zone} (the clocks skip it); pick a time outside the change"
        ))),
    };
    let full = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok());
    if let Some(naive) = full {
        return local(naive);
    }
    // a time of day, as at(1) reads it: `HH:MM` is its next occurrence (today if still ahead,
    // else tomorrow); `today HH:MM` and `tomorrow HH:MM` name the day
    let (day, clock) = match value.trim().split_once(char::is_whitespace) {
        Some((day, clock)) => (Some(day.trim()), clock.trim()),
        None => (None, value.trim()),
    };
    let time = ["%H:%M:%S", "%H:%M"]
        .iter()
        .find_map(|f| chrono::NaiveTime::parse_from_str(clock, f).ok())
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

/// An instant in `zone`, to the minute, with the zone's abbreviation: `2026-11-22 14:03 CET`
/// (tables).
pub fn instant(t: Time, zone: Tz) -> String {
    t.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// An instant in `zone`, to the second: `Sun 2026-11-22 14:03:07 CET`.
pub fn instant_long(t: Time, zone: Tz) -> String {
    t.with_timezone(&zone)
        .format("%a %Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// The length of `d` (either sign) to a person's precision: `3h 12m`, `45s`, `2d 4h`.
pub fn span(d: chrono::TimeDelta) -> String {
    backwork_scheduler::core::humanize_approx(d.abs().to_std().unwrap_or_default())
}

/// `in 3h 12m`, `5m ago`, or `now` (within a second).
pub fn relative(t: Time, now: Time) -> String {
    let d = t - now;
    if d.num_seconds() == 0 {
        "now".into()
    } else if d > chrono::TimeDelta::zero() {
        format!("in {}", span(d))
    } else {
        format!("{} ago", span(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn relative_times_read_like_a_person_says_them() {
        let now = t("2026-11-22T12:00:00Z");
        assert_eq!(relative(t("2026-11-22T15:12:30Z"), now), "in 3h 12m");
        assert_eq!(relative(t("2026-11-22T11:55:00Z"), now), "5m ago");
        assert_eq!(relative(now, now), "now");
        assert_eq!(relative(t("2026-11-24T13:00:00Z"), now), "in 2d 1h");
        assert_eq!(relative(t("2026-11-22T12:00:45Z"), now), "in 45s");
        // a lone larger unit does not drag in a zero smaller one
        assert_eq!(relative(t("2026-11-22T14:00:00Z"), now), "in 2h");
        assert_eq!(relative(t("2026-11-23T12:00:05Z"), now), "in 1d");
    }

    #[test]
    fn at_reads_local_times_in_the_zone_and_rfc3339_as_given() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            parse_at("2026-12-01T03:00", berlin, now()).unwrap(),
            t("2026-12-01T02:00:00Z")
        );
        assert_eq!(
            parse_at("2026-12-01 03:00:30", Tz::UTC, now()).unwrap(),
            t("2026-12-01T03:00:30Z")
        );
        assert_eq!(
            parse_at("2026-12-01T03:00:00+05:00", berlin, now()).unwrap(),
            t("2026-11-30T22:00:00Z")
        );
        // the skipped hour of spring forward does not exist
        let err = parse_at("2027-03-28T02:30", berlin, now()).unwrap_err();
        assert_eq!(err.code, 2);
        assert!(err.message.contains("does not exist"), "{}", err.message);
        assert_eq!(parse_at("tomorrow", berlin, now()).unwrap_err().code, 2);
    }

    fn now() -> Time {
        t("2026-11-22T12:00:00Z")
    }

    /// at(1): "HH:MM … If that time is already past, the next day is assumed"; `today` and
    /// `tomorrow` may precede it.
    #[test]
    fn at_reads_a_time_of_day_as_at_does() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 12:00 UTC is 13:00 in Berlin (CET, UTC+1)
        assert_eq!(
            parse_at("14:30", berlin, now()).unwrap(),
            t("2026-11-22T13:30:00Z"),
            "still ahead today"
        );
        assert_eq!(
            parse_at("03:00", berlin, now()).unwrap(),
            t("2026-11-23T02:00:00Z"),
            "already past: tomorrow"
        );
        assert_eq!(
            parse_at("tomorrow 03:00", berlin, now()).unwrap(),
            t("2026-11-23T02:00:00Z")
        );
        assert_eq!(
            parse_at("today 23:15:30", berlin, now()).unwrap(),
            t("2026-11-22T22:15:30Z")
        );
        assert_eq!(
            parse_at("yesterday 03:00", berlin, now()).unwrap_err().code,
            2
        );
        assert_eq!(parse_at("25:00", berlin, now()).unwrap_err().code, 2);
    }

    #[test]
    fn instants_show_the_zone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            instant(t("2026-11-22T13:03:00Z"), berlin),
            "2026-11-22 14:03 CET"
        );
        assert_eq!(
            instant_long(t("2026-11-22T13:03:07Z"), berlin),
            "Sun 2026-11-22 14:03:07 CET"
        );
    }
}
