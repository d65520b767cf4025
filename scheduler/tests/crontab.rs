//! Five-field cron lines mean what they mean in a crontab. Every expected fire time below comes
//! from the cron(5) man page (Vixie cron / cronie) and the calendar (2026-01-01 is a Thursday,
//! `date -d 2026-01-01 +%a`), not from this code: the bug this guards against is a parser with
//! Quartz weekday numbering (1 = Sunday) that ran `0 3 * * 1` on Sundays and refused `0 3 * * 0`.

use backwork_scheduler::{Time, next_cron, parse_cron};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

fn instant(s: &str) -> Time {
    DateTime::parse_from_rfc3339(s)
        .expect("test instant")
        .with_timezone(&Utc)
}

/// The next three fire times of `expr` in `zone` after `from`.
fn next_three(expr: &str, zone: Tz, from: &str) -> Vec<Time> {
    let schedule = parse_cron(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let mut at = instant(from);
    (0..3)
        .map(|_| {
            at = next_cron(&schedule, zone, at).expect("fires");
            at
        })
        .collect()
}

#[test]
fn crontab_lines_fire_as_cron_5_says() {
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    // From Thursday 2026-01-01 00:00 in Berlin (CET, UTC+1). Each row: the line, what cron(5)
    // says it means, and the next three fire times in local time.
    let from = "2026-01-01T00:00:00+01:00";
    let rows: &[(&str, &str, [&str; 3])] = &[
        // "day of week 0-7 (0 or 7 is Sunday, or use names)"
        (
            "0 3 * * 0",
            "Sundays",
            [
                "2026-01-04T03:00:00+01:00",
                "2026-01-11T03:00:00+01:00",
                "2026-01-18T03:00:00+01:00",
            ],
        ),
        (
            "0 3 * * 1",
            "Mondays",
            [
                "2026-01-05T03:00:00+01:00",
                "2026-01-12T03:00:00+01:00",
                "2026-01-19T03:00:00+01:00",
            ],
        ),
        (
            "0 3 * * 2",
            "Tuesdays",
            [
                "2026-01-06T03:00:00+01:00",
                "2026-01-13T03:00:00+01:00",
                "2026-01-20T03:00:00+01:00",
            ],
        ),
        (
            "0 3 * * 3",
            "Wednesdays",
            [
                "2026-01-07T03:00:00+01:00",
                "2026-01-14T03:00:00+01:00",
                "2026-01-21T03:00:00+01:00",
            ],
        ),
        (
            "0 3 * * 4",
            "Thursdays",
            [
                "2026-01-01T03:00:00+01:00",
                "2026-01-08T03:00:00+01:00",
                "2026-01-15T03:00:00+01:00",
            ],
        ),
        (
            "0 3 * * 5",
            "Fridays",
            [
                "2026-01-02T03:00:00+01:00",
                "2026-01-09T03:00:00+01:00",
                "2026-01-16T03:00:00+01:00",
            ],
        ),
        (
            "0 3 * * 6",
            "Saturdays",
            [
                "2026-01-03T03:00:00+01:00",
                "2026-01-10T03:00:00+01:00",
                "2026-01-17T03:00:00+01:00",
            ],
        ),
        (
            "0 3 * * 7",
            "Sundays (7 is Sunday too)",
            [
                "2026-01-04T03:00:00+01:00",
                "2026-01-11T03:00:00+01:00",
                "2026-01-18T03:00:00+01:00",
            ],
        ),
        // ranges: "1-5" is Monday to Friday
        (
            "0 3 * * 1-5",
            "weekdays",
            [
                "2026-01-01T03:00:00+01:00",
                "2026-01-02T03:00:00+01:00",
                "2026-01-05T03:00:00+01:00",
            ],
        ),
        (
            "0 3 * * 5-7",
            "Friday to Sunday",
            [
                "2026-01-02T03:00:00+01:00",
                "2026-01-03T03:00:00+01:00",
                "2026-01-04T03:00:00+01:00",
            ],
        ),
        // names, case-insensitive, in lists
        (
            "0 3 * * MON",
            "Mondays by name",
            [
                "2026-01-05T03:00:00+01:00",
                "2026-01-12T03:00:00+01:00",
                "2026-01-19T03:00:00+01:00",
            ],
        ),
        (
            "0 3 * * mon,wed",
            "Mondays and Wednesdays",
            [
                "2026-01-05T03:00:00+01:00",
                "2026-01-07T03:00:00+01:00",
                "2026-01-12T03:00:00+01:00",
            ],
        ),
        (
            "0 0 1 jan,jul *",
            "1 January and 1 July",
            [
                "2026-07-01T00:00:00+02:00",
                "2027-01-01T00:00:00+01:00",
                "2027-07-01T00:00:00+02:00",
            ],
        ),
        // cron(5): "30 4 1,15 * 5 would cause a command to be run at 4:30 am on the 1st and
        // 15th of each month, plus every Friday" (both day fields restricted: either matches)
        (
            "30 4 1,15 * 5",
            "1st, 15th and Fridays",
            [
                "2026-01-01T04:30:00+01:00",
                "2026-01-02T04:30:00+01:00",
                "2026-01-09T04:30:00+01:00",
            ],
        ),
        // "restricted (i.e., do not contain the * character)": `*/10` contains it, so this is
        // not the OR case — days 1, 11, 21, 31 that are also Mondays (the first three in 2026:
        // 05-11, 06-01, 08-31, by `date -d 2026-05-11 +%a`)
        (
            "0 0 */10 * 1",
            "days 1, 11, 21, 31 that are Mondays",
            [
                "2026-05-11T00:00:00+02:00",
                "2026-06-01T00:00:00+02:00",
                "2026-08-31T00:00:00+02:00",
            ],
        ),
        // a restricted day of month with an unrestricted weekday: only the day of month
        (
            "0 3 13 * *",
            "the 13th",
            [
                "2026-01-13T03:00:00+01:00",
                "2026-02-13T03:00:00+01:00",
                "2026-03-13T03:00:00+01:00",
            ],
        ),
        // steps: "0-23/2 ... every other hour"; "*/2" the same
        (
            "0 0-23/2 * * *",
            "every other hour",
            [
                "2026-01-01T02:00:00+01:00",
                "2026-01-01T04:00:00+01:00",
                "2026-01-01T06:00:00+01:00",
            ],
        ),
        (
            "0 */6 * * *",
            "every six hours",
            [
                "2026-01-01T06:00:00+01:00",
                "2026-01-01T12:00:00+01:00",
                "2026-01-01T18:00:00+01:00",
            ],
        ),
        (
            "*/15 * * * *",
            "every quarter hour",
            [
                "2026-01-01T00:15:00+01:00",
                "2026-01-01T00:30:00+01:00",
                "2026-01-01T00:45:00+01:00",
            ],
        ),
        (
            "5-20/5 9 * * *",
            "09:05, 09:10, 09:15, 09:20",
            [
                "2026-01-01T09:05:00+01:00",
                "2026-01-01T09:10:00+01:00",
                "2026-01-01T09:15:00+01:00",
            ],
        ),
        // nicknames: "@daily = 0 0 * * *", "@weekly = 0 0 * * 0", "@monthly = 0 0 1 * *",
        // "@hourly = 0 * * * *", "@yearly = 0 0 1 1 *"
        (
            "@daily",
            "midnight",
            [
                "2026-01-02T00:00:00+01:00",
                "2026-01-03T00:00:00+01:00",
                "2026-01-04T00:00:00+01:00",
            ],
        ),
        (
            "@weekly",
            "Sunday midnight",
            [
                "2026-01-04T00:00:00+01:00",
                "2026-01-11T00:00:00+01:00",
                "2026-01-18T00:00:00+01:00",
            ],
        ),
        (
            "@monthly",
            "first of the month",
            [
                "2026-02-01T00:00:00+01:00",
                "2026-03-01T00:00:00+01:00",
                "2026-04-01T00:00:00+02:00",
            ],
        ),
        (
            "@hourly",
            "every hour",
            [
                "2026-01-01T01:00:00+01:00",
                "2026-01-01T02:00:00+01:00",
                "2026-01-01T03:00:00+01:00",
            ],
        ),
        (
            "@yearly",
            "1 January",
            [
                "2027-01-01T00:00:00+01:00",
                "2028-01-01T00:00:00+01:00",
                "2029-01-01T00:00:00+01:00",
            ],
        ),
        // six fields put seconds first, with the same weekday numbering
        (
            "30 0 3 * * 1",
            "Mondays 03:00:30",
            [
                "2026-01-05T03:00:30+01:00",
                "2026-01-12T03:00:30+01:00",
                "2026-01-19T03:00:30+01:00",
            ],
        ),
        (
            "0 0 3 * * 0",
            "Sundays 03:00:00",
            [
                "2026-01-04T03:00:00+01:00",
                "2026-01-11T03:00:00+01:00",
                "2026-01-18T03:00:00+01:00",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (expr, meaning, expected) in rows {
        let expected: Vec<Time> = expected.iter().map(|s| instant(s)).collect();
        let got = next_three(expr, berlin, from);
        if got != expected {
            failures.push(format!(
                "`{expr}` ({meaning}): got {got:?}, cron(5) says {expected:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bad_lines_get_one_line_reasons_that_name_the_field() {
    for (expr, needle) in [
        ("0 3 * * 8", "day of week 8 is outside 0–7"),
        ("60 * * * *", "minute 60 is outside 0–59"),
        ("0 24 * * *", "hour 24 is outside 0–23"),
        ("0 0 1 13 *", "month 13 is outside 1–12"),
        ("0 0 0 * *", "day of month 0 is outside 1–31"),
        ("0 3 * * MONDAY", "`MONDAY` is not a day of week"),
        ("0 3 * *", "it has 4 fields"),
        ("", "it has 0 fields"),
        ("@reboot", "@reboot"),
        ("@daily 3", "each alone"),
        ("@fortnightly", "the nicknames are"),
        // not crontab(5) syntax: empty list elements (a typo must not change the schedule:
        // `0, 30 * * * *` would otherwise be six fields, seconds first), and other crons'
        // extensions
        ("0, 30 * * * *", "empty list element"),
        (",5 * * * *", "empty list element"),
        ("0,,30 * * * *", "empty list element"),
        ("0 3 * * 1,", "empty list element"),
        ("0 0 L * *", "`L` is not a day of month"),
        ("0 0 * * 5L", "`5L` is not a day of week"),
        ("0 0 * * 1#2", "`1#2` is not a day of week"),
        ("0 0 ? * *", "`?` is not a day of month"),
        ("5/10 * * * *", "a step follows `*` or a range"),
        ("*/0 * * * *", "a whole number from 1"),
        ("0 5-1 * * *", "must go upward"),
    ] {
        let err = parse_cron(expr).unwrap_err();
        assert!(err.contains(needle), "`{expr}`: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
    // cronie's crontab(5) lists @midnight with @daily
    let midnight = next_three("@midnight", Tz::UTC, "2026-01-01T00:00:00Z");
    assert_eq!(
        midnight,
        next_three("0 0 * * *", Tz::UTC, "2026-01-01T00:00:00Z")
    );
}

/// Vixie cron (cron.c, `find_jobs`): a job is a "wildcard" job when its minute or hour field
/// starts with `*` (`MIN_STAR | HR_STAR`) and follows the clock through DST changes; any other
/// job is "fixed-time": run once at a repeated time and right after the change at a skipped
/// one. Berlin: 2026-10-25 01:00Z 03:00 CEST → 02:00 CET; 2026-03-29 01:00Z 02:00 CET → 03:00
/// CEST (`zdump -v -c 2026,2027 Europe/Berlin`).
#[test]
fn vixie_wildcard_and_fixed_time_jobs_across_dst_in_berlin() {
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let all = |expr: &str, from: &str, to: &str| {
        let schedule = parse_cron(expr).unwrap();
        let (mut at, end) = (instant(from), instant(to));
        let mut out = Vec::new();
        while let Some(next) = next_cron(&schedule, berlin, at).filter(|t| *t <= end) {
            out.push(next);
            at = next;
        }
        out
    };
    // `*/15 2 * * *` is a wildcard job (minute `*`): through both 02:xx passes…
    let fall = all(
        "*/15 2 * * *",
        "2026-10-24T12:00:00Z",
        "2026-10-25T12:00:00Z",
    );
    let expected: Vec<Time> = [
        "2026-10-25T00:00:00Z", // 02:00 CEST
        "2026-10-25T00:15:00Z",
        "2026-10-25T00:30:00Z",
        "2026-10-25T00:45:00Z",
        "2026-10-25T01:00:00Z", // 02:00 CET
        "2026-10-25T01:15:00Z",
        "2026-10-25T01:30:00Z",
        "2026-10-25T01:45:00Z",
    ]
    .map(instant)
    .to_vec();
    assert_eq!(fall, expected);
    // …and on the day 02:xx does not exist, it does not run
    let spring = all(
        "*/15 2 * * *",
        "2026-03-28T12:00:00Z",
        "2026-03-29T12:00:00Z",
    );
    assert!(spring.is_empty(), "{spring:?}");
    // `45 0-23/1 * * *` is fixed-time (neither field starts with `*`): 02:45 is skipped on
    // 2026-03-29, so it runs right after the change, at 03:00 CEST
    let fixed = all(
        "45 0-23/1 * * *",
        "2026-03-29T00:00:00Z",
        "2026-03-29T02:00:00Z",
    );
    let expected: Vec<Time> = [
        "2026-03-29T00:45:00Z", // 01:45 CET
        "2026-03-29T01:00:00Z", // 03:00 CEST, for the skipped 02:45
        "2026-03-29T01:45:00Z", // 03:45 CEST
    ]
    .map(instant)
    .to_vec();
    assert_eq!(fixed, expected);
}

/// Zones with every kind of change the tz database has in 2025–2026: northern and southern
/// DST, changes at midnight (Santiago, Havana, Asunción), a 30-minute change (Lord Howe),
/// 45-minute offsets (Chatham, Kathmandu), a zone that leaves DST for Ramadan (Casablanca),
/// and zones without DST.
const ZONES: [&str; 12] = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Melbourne",
    "Australia/Lord_Howe",
    "America/Santiago",
    "America/Havana",
    "America/Asuncion",
    "Pacific/Chatham",
    "Asia/Kathmandu",
    "Africa/Casablanca",
    "Asia/Tokyo",
    "UTC",
];

/// DESIGN §2: a job whose hour field is `*` follows real elapsed time. Every change in these
/// zones moves the clock by a multiple of 30 minutes, so `*/30 * * * *` must fire exactly every
/// 30 minutes of real time all year — no run lost in a repeated hour, none doubled in a gap.
#[test]
fn a_wildcard_hour_job_fires_every_30_real_minutes_through_every_change_of_a_year() {
    let schedule = parse_cron("*/30 * * * *").unwrap();
    for zone in ZONES {
        let tz: Tz = zone.parse().unwrap();
        let mut at = instant("2025-01-01T00:00:00Z");
        let mut prev = next_cron(&schedule, tz, at).unwrap();
        let end = instant("2026-01-01T00:00:00Z");
        while prev < end {
            at = next_cron(&schedule, tz, prev).unwrap();
            assert_eq!(
                (at - prev).num_minutes(),
                30,
                "{zone}: {prev} → {at} is not 30 minutes of real time"
            );
            prev = at;
        }
    }
}

/// DESIGN §2: a job with a fixed hour runs once per day of the local calendar — once on a day
/// whose 02:30 occurs twice, and on a day whose 02:30 is skipped, right after the change.
#[test]
fn a_fixed_hour_job_runs_once_every_local_day_through_every_change_of_a_year() {
    let schedule = parse_cron("30 2 * * *").unwrap();
    for zone in ZONES {
        let tz: Tz = zone.parse().unwrap();
        let mut at = instant("2025-01-01T00:00:00Z");
        let mut days = Vec::new();
        while at < instant("2026-01-01T00:00:00Z") {
            at = next_cron(&schedule, tz, at).unwrap();
            let local = at.with_timezone(&tz);
            let wall = local.time();
            // 02:30, or (on a day 02:30 is skipped) the first instant after the gap
            if wall != chrono::NaiveTime::from_hms_opt(2, 30, 0).unwrap() {
                let before = (at - chrono::TimeDelta::seconds(1)).with_timezone(&tz);
                assert!(
                    before.offset() != local.offset(),
                    "{zone}: {local} is neither 02:30 nor the moment of a change"
                );
            }
            days.push(local.date_naive());
        }
        for pair in days.windows(2) {
            assert_eq!(
                (pair[1] - pair[0]).num_days(),
                1,
                "{zone}: runs on {} then {}",
                pair[0],
                pair[1]
            );
        }
    }
}

/// Instants at the ends of what chrono represents have no local time in most zones; asking for
/// the next slot after them is `None`, not a panic (a stored record the fuzzer mutated had one).
#[test]
fn next_cron_at_the_ends_of_time_is_none() {
    let schedule = parse_cron("0 3 * * *").unwrap();
    let melbourne: Tz = "Australia/Melbourne".parse().unwrap();
    for at in [
        chrono::DateTime::<Utc>::MAX_UTC,
        chrono::DateTime::<Utc>::MIN_UTC,
    ] {
        assert_eq!(next_cron(&schedule, melbourne, at), None);
    }
}
