//! Times on the command line: the local zone, instants in it, "in 3h 12m" / "5m ago". (The
//! options of a job — durations, `--at` — are read by the core's `JobOptions`.)

use backwork_scheduler::Time;
use chrono_tz::Tz;

/// A warning when `TZ` is set to something that is not an IANA zone name (times are then shown
/// in the system's zone, or UTC), so a typo does not silently move every time shown.
pub fn zone_warning() -> Option<String> {
    let tz = std::env::var("TZ").ok().filter(|v| !v.trim().is_empty())?;
    // `:/etc/localtime` (a file, tzset(3)) is the system's zone, which is what is shown
    if tz.trim_start_matches(':').parse::<Tz>().is_ok() || tz.starts_with(":/") {
        return None;
    }
    Some(format!(
        "warning: TZ={tz:?} is not an IANA time zone name (like Europe/Berlin), which backwork needs to name zones; times are shown in {}",
        local_zone()
    ))
}

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

/// An instant in `zone`, to the minute, with its weekday and the zone's abbreviation: `Sun
/// 2026-11-22 14:03 CET` (tables).
pub fn instant(t: Time, zone: Tz) -> String {
    t.with_timezone(&zone)
        .format("%a %Y-%m-%d %H:%M %Z")
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
    fn instants_show_the_zone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            instant(t("2026-11-22T13:03:00Z"), berlin),
            "Sun 2026-11-22 14:03 CET"
        );
        assert_eq!(
            instant_long(t("2026-11-22T13:03:07Z"), berlin),
            "Sun 2026-11-22 14:03:07 CET"
        );
    }
}
