//! Fidelity: the profiles against the numbers they emulate (DESIGN §6), through the simulator.

use backwork_scheduler::Time;
use backwork_simulator::{Report, Scenario, simulate};
use chrono::TimeDelta;

fn run(toml: &str) -> Report {
    let report = simulate(&Scenario::from_toml(toml).unwrap()).unwrap();
    eprintln!("{}", report.text());
    report
}

fn t(s: &str) -> Time {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// Screen off on battery at 00:00: light Doze from 00:05, deep Doze from 01:00 with idle periods
/// of 60, 120, 240 and 360 min; jobs run only inside the maintenance windows.
#[test]
fn deep_doze_runs_jobs_only_in_maintenance_windows_at_the_documented_idle_lengths() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "24h"
        device = { screen = "off", charging = false, battery = 90 }

        [[job]]
        name = "sync"
        every = "15m"
        flex = "5m"
        outcome = { duration = "10s" }
    "#);
    let start = t("2026-11-23T00:00:00Z");
    let m = |n: i64| start + TimeDelta::minutes(n);
    // deep Doze: enters at 60 min; windows after idle 60, 120, 240, 360, 360 min, lasting 5 then 10
    let mut deep = Vec::new();
    let mut at = m(60);
    let idles = [60, 120, 240, 360, 360];
    let windows = [5, 10, 10, 10, 10];
    for (idle, w) in idles.iter().zip(windows) {
        at += TimeDelta::minutes(*idle);
        deep.push((at, at + TimeDelta::minutes(w)));
        at += TimeDelta::minutes(w);
    }
    assert_eq!(deep[0].0, m(120));
    assert_eq!(deep[1].0, m(245));
    assert_eq!(deep[2].0, m(495));
    assert_eq!(deep[3].0, m(865));
    let runs = &r.jobs[0].runs;
    let after_deep: Vec<&Time> = runs
        .iter()
        .map(|r| &r.start)
        .filter(|s| **s >= m(60))
        .collect();
    assert!(!after_deep.is_empty());
    for s in &after_deep {
        assert!(
            deep.iter().any(|(a, b)| *s >= a && *s < b),
            "a run at {s} outside every deep maintenance window {deep:?}"
        );
    }
    // and each window that fits in the day serves the job
    for (a, b) in deep.iter().filter(|(_, b)| *b <= m(24 * 60)) {
        assert!(
            after_deep.iter().any(|s| **s >= *a && **s < *b),
            "no run in [{a}, {b})"
        );
    }
    // before deep Doze, light Doze: no run between 00:05 and 00:10 (the first light idle)
    assert!(!runs.iter().any(|r| r.start > m(5) && r.start < m(10)));
    assert!(
        r.jobs[0]
            .held_back_ms
            .keys()
            .any(|k| k.contains("deep Doze"))
    );
}

#[test]
fn doze_ends_when_the_screen_comes_on_or_the_charger_is_plugged_in() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "12h"
        device = { screen = "off", charging = false }

        [[job]]
        name = "sync"
        every = "15m"
        outcome = { duration = "10s" }

        [[event]]
        at = "3h"
        screen = "on"
    "#);
    let start = t("2026-11-23T00:00:00Z");
    let runs = &r.jobs[0].runs;
    // the screen comes on at 03:00 in deep idle (01:00-02:00 idle, 02:00-02:05 window, then
    // idle until 04:05): the job runs at once
    assert!(
        runs.iter().any(|r| r.start == start + TimeDelta::hours(3)),
        "{runs:?}"
    );
    // from then on, once per 15-min period (within its batching minute)
    let later = runs
        .iter()
        .filter(|r| r.start >= start + TimeDelta::hours(3))
        .count();
    assert!((35..=37).contains(&later), "{later}");
}

/// A 15-min periodic job in the rare bucket: 10 min of job time a day on battery (runs of 3 min:
/// about 3 a day); no limit while charging.
#[test]
fn the_rare_bucket_allows_about_three_runs_a_day_on_battery_and_no_limit_while_charging() {
    let battery = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "3d"
        device = { screen = "on", charging = false, battery = 80 }

        [[job]]
        name = "sync"
        every = "15m"
        outcome = { duration = "3m" }

        [[event]]
        at = "0s"
        bucket = "rare"
    "#);
    let j = &battery.jobs[0];
    assert!(
        (3.0..=3.7).contains(&j.per_day),
        "{} successful runs a day",
        j.per_day
    );
    assert!(j.quota_hits > 0);
    assert!(
        j.held_back_ms
            .keys()
            .any(|k| k.contains("standby bucket rare"))
    );
    let charging = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "3d"
        device = { screen = "on", charging = true }

        [[job]]
        name = "sync"
        every = "15m"
        outcome = { duration = "3m" }

        [[event]]
        at = "0s"
        bucket = "rare"
    "#);
    let j = &charging.jobs[0];
    assert!(j.per_day >= 95.0, "{} runs a day while charging", j.per_day);
}

/// WorkManager: a 15-min period with a 5-min flex runs in the last 5 minutes of each period,
/// from the first one; a 5-min period is raised to 15; `after-run` periods drift with the run's
/// end.
#[test]
fn workmanager_first_period_flex_minimums_and_after_run_drift() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "2h"

        [[job]]
        name = "flexed"
        every = "15m"
        flex = "5m"

        [[job]]
        name = "short"
        every = "5m"

        [[job]]
        name = "drifting"
        every = "15m"
        anchor = "after-run"
        accurate = true
        outcome = { duration = "2m" }
    "#);
    let start = t("2026-11-23T00:00:00Z");
    let flexed = &r.jobs[0].runs;
    let first = flexed[0].start;
    assert!(first >= start + TimeDelta::minutes(10) && first <= start + TimeDelta::minutes(15));
    let short = &r.jobs[1];
    assert_eq!(short.schedule, "every 15m");
    assert!(
        short.runs.len() <= 9,
        "raised to 15 min: {}",
        short.runs.len()
    );
    // after-run: each start is 15 min after the previous run's end (2 min long): 17-min steps
    let d = &r.jobs[2].runs;
    for w in d.windows(2) {
        assert_eq!(w[1].start - w[0].end, TimeDelta::minutes(15), "{d:?}");
    }
}

#[test]
fn the_same_scenario_and_seed_give_the_same_report_byte_for_byte() {
    let toml = r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "2d"
        seed = 7
        device = { screen = "on", charging = false, battery = 60 }

        [[job]]
        name = "flaky"
        every = "30m"
        outcome = { fail = 0.3, duration = "20s" }
        count = 5

        [[event]]
        at = "22h"
        repeat = "24h"
        screen = "off"
        charging = true

        [[event]]
        at = "7h"
        repeat = "24h"
        screen = "on"
        charging = false
    "#;
    let a = serde_json::to_string(&simulate(&Scenario::from_toml(toml).unwrap()).unwrap()).unwrap();
    let b = serde_json::to_string(&simulate(&Scenario::from_toml(toml).unwrap()).unwrap()).unwrap();
    assert_eq!(a, b);
    let other = toml.replace("seed = 7", "seed = 8");
    let c =
        serde_json::to_string(&simulate(&Scenario::from_toml(&other).unwrap()).unwrap()).unwrap();
    assert_ne!(a, c, "another seed draws other failures");
}
