//! Fidelity: the profiles against the numbers they emulate (DESIGN §6), through the simulator.

mod common;
use common::{run, t};

use backwork_scheduler::{RunResult, Time};
use backwork_simulator::{Report, Scenario, simulate};
use chrono::TimeDelta;

/// Screen off on battery at 00:00: light Doze from 00:05, deep Doze from 01:00 with idle periods
/// of 60, 120, 240 and 360 min; jobs run only inside the maintenance windows.
#[test]
fn deep_doze_runs_jobs_only_in_maintenance_windows_at_the_documented_idle_lengths() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "24h"
        device = { screen = "off", charging = false, battery = 90 }

        # runs that outlast every window keep each open to its full length (a window whose
        # work is done closes early: a_deep_maintenance_window_closes_once_its_work_is_done)
        [[job]]
        name = "sync"
        every = "15m"
        flex = "5m"
        outcome = { duration = "15m" }
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
    assert!(r.jobs[0].held_back_ms.contains_key("doze_deep"));
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
/// about 3 a day); no quota while charging (the batch delay stays: JobSchedulerService's
/// `MaybeReadyJobQueueFunctor` has no charging rule).
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
    let per_day = j.per_day.expect("three whole days");
    assert!(
        (3.0..=3.7).contains(&per_day),
        "{per_day} successful runs a day"
    );
    assert!(j.quota_hits > 0);
    assert!(
        j.held_back_ms
            .keys()
            .any(|k| k.starts_with("standby_quota_"))
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
    let per_day = j.per_day.expect("three whole days");
    // no quota while charging: WorkManager's timing (`interval` after each 3-minute run
    // ended) and, the job alone and not in the active bucket, the 31-minute batch delay
    // (`MAX_NON_ACTIVE_JOB_BATCH_DELAY_MS`): one run per 15 + 31 + 3 = 49 minutes, 1 440 / 49
    // ≈ 29.4 a day — far more than the rare bucket's quota allows on battery
    assert!(
        (29.0..=30.0).contains(&per_day),
        "{per_day} runs a day while charging"
    );
}

/// WorkManager (`WorkSpec.calculateNextRunTime`, androidx.work): a 15-min period with a 5-min
/// flex first runs at enqueue + interval − flex, then `interval` after each run ended — flex or
/// not, anchor named or not (the android profile's default is WorkManager's timing, DESIGN §6);
/// a grid anchor, when named, keeps every run in its period's flex window; a 5-min period is
/// raised to 15; `after-run` periods drift with the run's end.
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
        name = "gridded"
        every = "15m"
        flex = "5m"
        anchor = "grid"

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
    // an active app's flex job is eligible from its window's start (DESIGN §6: the android
    // profile does not add the desktop batching window), and WorkManager places the first
    // window at enqueue + interval − flex
    let flexed = &r.jobs[0].runs;
    assert_eq!(flexed[0].start, start + TimeDelta::minutes(10));
    for w in flexed.windows(2) {
        assert_eq!(w[1].start - w[0].end, TimeDelta::minutes(15), "{flexed:?}");
    }
    let gridded = &r.jobs[1].runs;
    let firsts: Vec<_> = gridded.iter().take(3).map(|r| r.start).collect();
    assert_eq!(
        firsts,
        [10, 25, 40].map(|m| start + TimeDelta::minutes(m)),
        "each at its window's start"
    );
    let short = &r.jobs[2];
    assert_eq!(short.schedule, "every 15m after-run");
    assert!(
        short.runs.len() <= 9,
        "raised to 15 min: {}",
        short.runs.len()
    );
    // after-run: each start is 15 min after the previous run's end (2 min long): 17-min steps
    let d = &r.jobs[3].runs;
    for w in d.windows(2) {
        assert_eq!(w[1].start - w[0].end, TimeDelta::minutes(15), "{d:?}");
    }
}

/// WorkManager's `setInitialDelay` on a periodic request (`WorkSpec.calculateNextRunTime`,
/// androidx.work): the first run is due at enqueue + initial delay (+ interval − flex with a
/// flex), later ones `interval` after the previous run ended.
#[test]
fn a_periodic_job_with_an_initial_delay_starts_after_it() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "3h"
        device = { screen = "on" }

        [[job]]
        name = "delayed"
        every = "1h"
        in = "20m"
        outcome = { duration = "1m" }

        [[job]]
        name = "delayed-flexed"
        every = "1h"
        flex = "15m"
        in = "20m"
        outcome = { duration = "1m" }
    "#);
    let start = t("2026-11-23T00:00:00Z");
    let plain = &r.jobs[0].runs;
    assert_eq!(plain[0].start, start + TimeDelta::minutes(20));
    assert_eq!(plain[1].start, plain[0].end + TimeDelta::hours(1));
    let flexed = &r.jobs[1].runs;
    // 20 min + 60 min − 15 min
    assert_eq!(flexed[0].start, start + TimeDelta::minutes(65));
    assert_eq!(flexed[1].start, flexed[0].end + TimeDelta::hours(1));
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

/// iOS: a second app-refresh submit with the same identifier replaces the first.
#[test]
fn ios_a_second_refresh_request_replaces_the_first() {
    let r = run(r#"
        profile = "ios"
        start = "2026-11-23T00:00:00Z"
        duration = "2h"

        [[job]]
        name = "feed"
        task = "refresh"
        in = "1h"

        [[job]]
        name = "feed"
        task = "refresh"
        added = "10m"
        in = "5m"
        outcome = { duration = "5s" }
    "#);
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.jobs.len(), 2);
    assert!(r.jobs[0].runs.is_empty(), "the first request was replaced");
    assert_eq!(r.jobs[1].runs.len(), 1);
    assert_eq!(
        r.jobs[1].runs[0].start,
        t("2026-11-23T00:15:00Z"),
        "added at 10 min, earliest begin 5 min later; alone, it runs then (DESIGN §6)"
    );
    // a second refresh with another identifier is refused: one pending refresh per app
    let r = run(r#"
        profile = "ios"
        start = "2026-11-23T00:00:00Z"
        duration = "1h"

        [[job]]
        name = "feed"
        task = "refresh"
        in = "30m"

        [[job]]
        name = "weather"
        task = "refresh"
        in = "30m"
    "#);
    assert_eq!(r.rejected.len(), 1);
    assert!(
        r.rejected[0].2.contains("1 pending app-refresh"),
        "{:?}",
        r.rejected
    );
}

/// iOS: ten processing requests may be pending; the eleventh is rejected.
#[test]
fn ios_an_eleventh_processing_request_is_rejected() {
    let r = run(r#"
        profile = "ios"
        start = "2026-11-23T00:00:00Z"
        duration = "1h"

        [[job]]
        name = "index"
        task = "processing"
        in = "30m"
        count = 11
    "#);
    assert_eq!(r.jobs.len(), 10);
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.rejected[0].1, "index-11");
    assert!(
        r.rejected[0].2.contains("10 pending processing"),
        "{:?}",
        r.rejected
    );
}

/// iOS: an app-refresh run is stopped when its 30-second budget runs out; processing waits for
/// the device to be idle; nothing runs after a force-quit until the app is opened. (The refresh
/// job is periodic: it models an app that resubmits its request from each run.)
#[test]
fn ios_budgets_idle_charging_and_force_quit() {
    let r = run(r#"
        profile = "ios"
        start = "2026-11-23T00:00:00Z"
        duration = "3h"
        device = { screen = "on", charging = false }

        [[job]]
        name = "refresh"
        task = "refresh"
        every = "15m"
        outcome = { duration = "2m" }

        [[job]]
        name = "index"
        task = "processing"
        outcome = { duration = "5m" }

        [[event]]
        at = "1h"
        screen = "off"
        charging = true

        [[event]]
        at = "1h 30m"
        force_quit = true

        [[event]]
        at = "2h 30m"
        app_open = true
    "#);
    let refresh = &r.jobs[0];
    let first = &refresh.runs[0];
    assert_eq!(first.end - first.start, TimeDelta::seconds(30), "{first:?}");
    assert_eq!(first.outcome, RunResult::Stopped, "{first:?}");
    assert_eq!(
        first.stop.as_deref(),
        Some("ios_refresh_budget"),
        "{first:?}"
    );
    let quit = t("2026-11-23T01:30:00Z");
    let open = t("2026-11-23T02:30:00Z");
    for run in &refresh.runs {
        assert!(
            run.start < quit || run.start >= open,
            "ran while force-quit: {run:?}"
        );
        // 15 minutes apart at least
    }
    for w in refresh.runs.windows(2) {
        assert!(w[1].start - w[0].start >= TimeDelta::minutes(15));
    }
    let index = &r.jobs[1];
    assert_eq!(index.runs.len(), 1);
    assert_eq!(
        index.runs[0].start,
        t("2026-11-23T01:00:00Z"),
        "idle at 01:00"
    );
    assert!(index.held_back_ms.contains_key("ios_processing_idle"));
    assert!(refresh.held_back_ms.contains_key("force_quit"));
}

/// Android batches the jobs of apps outside the active bucket: they wait until 5 are ready or
/// the oldest has waited 31 minutes (JobSchedulerService's `MIN_READY_NON_ACTIVE_JOBS_COUNT`,
/// `MAX_NON_ACTIVE_JOB_BATCH_DELAY_MS`).
#[test]
fn android_batches_jobs_of_non_active_apps_until_five_are_ready_or_31_minutes() {
    let mut toml = String::from(
        r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "2h"
        device = { screen = "on", charging = false }

        [[event]]
        at = "0s"
        bucket = "frequent"
    "#,
    );
    for k in 0..5 {
        toml.push_str(&format!(
            "\n[[job]]\nname = \"j{k}\"\nadded = \"{}m\"\n",
            3 * k + 1
        ));
    }
    toml.push_str("\n[[job]]\nname = \"late\"\nadded = \"40m\"\n");
    let r = run(&toml);
    let at = |m: i64| t("2026-11-23T00:00:00Z") + TimeDelta::minutes(m);
    for j in &r.jobs[..5] {
        // the fifth is ready at 13 min; four run slots, so the last one starts a second later
        let start = j.runs[0].start;
        assert!(
            start >= at(13) && start <= at(13) + TimeDelta::seconds(1),
            "{}: the batch of five goes when the fifth is ready, not at {start}",
            j.name
        );
    }
    assert_eq!(
        r.jobs[5].runs[0].start,
        at(71),
        "alone, it waits 31 minutes"
    );
    assert!(r.jobs[5].held_back_ms.contains_key("standby_batching"));
}

#[test]
fn a_job_at_an_instant_runs_then_and_bad_scenarios_are_clear_errors() {
    let r = run(r#"
        start = "2026-11-23T00:00:00Z"
        duration = "1h"

        [[job]]
        name = "once"
        at = "2026-11-23T00:20:00Z"
        accurate = true
    "#);
    assert_eq!(r.jobs[0].runs[0].start, t("2026-11-23T00:20:00Z"));
    let err = |toml: &str| match Scenario::from_toml(toml).map(|s| simulate(&s)) {
        Err(e) | Ok(Err(e)) => e.to_string(),
        Ok(Ok(_)) => panic!("accepted: {toml}"),
    };
    let head = "start = \"2026-11-23T00:00:00Z\"\nduration = \"1h\"\n";
    assert!(err(head).contains("no [[job]]"));
    assert!(
        err(&format!(
            "{head}[[job]]\nname = \"x\"\nevery = \"1h\"\nat = \"00:30\"\n"
        ))
        .contains("only one schedule")
    );
    assert!(
        err(&format!(
            "{head}[[job]]\nname = \"x\"\nrequires = [\"wifi\"]\n"
        ))
        .contains("job `x`")
    );
    assert!(
        err(&format!(
            "{head}profile = \"windows\"\n[[job]]\nname = \"x\"\n"
        ))
        .contains("unknown profile")
    );
    assert!(
        err(&format!(
            "{head}profile = \"android\"\noverrides = {{ doze = 1 }}\n[[job]]\nname = \"x\"\n"
        ))
        .contains("android overrides")
    );
    assert!(err(&format!("{head}[[job]]\nname = \"x\"\nbogus = 1\n")).contains("does not parse"));
}

#[test]
fn scenarios_too_big_to_simulate_are_refused_not_run() {
    let job = "[[job]]\nname = \"x\"\n";
    for (toml, want) in [
        (
            format!("start = \"2026-11-23T00:00:00Z\"\nduration = \"100years\"\n{job}"),
            "10 years",
        ),
        (
            "start = \"2026-11-23T00:00:00Z\"\nduration = \"1d\"\n[[job]]\nname = \"x\"\ncount = 4000000000\n"
                .to_string(),
            "at most",
        ),
        (
            format!(
                "start = \"2026-11-23T00:00:00Z\"\nduration = \"7d\"\n[[event]]\nat = \"0s\"\nrepeat = \"1ms\"\nscreen = \"off\"\n{job}"
            ),
            "repeats every",
        ),
    ] {
        let err = Scenario::from_toml(&toml).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
    }
}

/// WorkManager's backoff under the android profile, screen on and charging (no Doze, no bucket
/// quota): a one-off that always asks to be retried is retried after exactly 30 s · 2^(n−1),
/// capped at 5 h — WorkManager's `DEFAULT_BACKOFF_DELAY_MILLIS` = 30 000 and
/// `MAX_BACKOFF_MILLIS` = 5 h (androidx.work `WorkRequest`). The desktop batching minute made
/// every gap 60 s too long.
#[test]
fn android_backoff_gaps_are_workmanagers_to_the_second() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "30h"
        device = { screen = "on", charging = true }

        [[job]]
        name = "upload"
        outcome = { fail = 1.0, duration = "0s" }
    "#);
    let runs = &r.jobs[0].runs;
    let gaps: Vec<i64> = runs
        .windows(2)
        .map(|w| (w[1].start - w[0].end).num_seconds())
        .collect();
    let expected: Vec<i64> = (1..gaps.len() as u32 + 1)
        .map(|n| (30i64 << (n - 1).min(20)).min(18_000))
        .collect();
    assert!(gaps.len() >= 12, "{gaps:?}");
    assert_eq!(gaps, expected);
    assert_eq!(
        &gaps[..11],
        [30, 60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 18000]
    );
}

/// `every = "10s"` on the desktop profile: 8 640 runs a day, one per period (it was 1 235: each
/// run pushed to the end of its batching minute ate the periods in between).
#[test]
fn desktop_ten_second_period_runs_8640_times_a_day() {
    let r = run(r#"
        profile = "desktop"
        start = "2026-11-23T00:00:00Z"
        duration = "1d"

        [[job]]
        name = "tick"
        every = "10s"
        outcome = { duration = "0s" }
    "#);
    let end = t("2026-11-24T00:00:00Z");
    let in_the_day = r.jobs[0].runs.iter().filter(|run| run.start < end).count();
    assert_eq!(in_the_day, 8640);
}

/// Every run of `runs` at or after `from`: how many runs started in the 24 hours up to it
/// (the run itself included).
fn runs_in_rolling_day(runs: &[backwork_simulator::RunReport], from: Time) -> Vec<usize> {
    runs.iter()
        .filter(|r| r.start >= from)
        .map(|r| {
            runs.iter()
                .filter(|o| o.start > r.start - TimeDelta::hours(24) && o.start <= r.start)
                .count()
        })
        .collect()
}

/// The reported bug: an app moved from `active` to `rare` after 48 runs was never run again.
/// AOSP's QuotaController keeps one session history per app across bucket changes; in `rare`
/// (`WINDOW_SIZE_RARE_MS` = 24 h) the app may run again once fewer than 48 jobs
/// (`MAX_JOB_COUNT_RARE`) and fewer than 3 sessions (`MAX_SESSION_COUNT_RARE`) remain in the
/// window — each 10-second run 15 minutes apart is its own session
/// (`TIMING_SESSION_COALESCING_DURATION_MS` = 5 s).
#[test]
fn after_a_move_to_the_rare_bucket_the_job_runs_again_when_its_sessions_leave_the_window() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "72h"
        device = { screen = "on", charging = false }

        [[job]]
        name = "sync"
        every = "15m"
        outcome = { duration = "10s" }

        [[event]]
        at = "12h"
        bucket = "rare"
    "#);
    let start = t("2026-11-23T00:00:00Z");
    let runs = &r.jobs[0].runs;
    let active = runs
        .iter()
        .filter(|r| r.start < start + TimeDelta::hours(12))
        .count();
    assert_eq!(active, 48, "every 15 minutes while active");
    let later = runs
        .iter()
        .filter(|r| r.start >= start + TimeDelta::hours(36))
        .count();
    assert!(
        later >= 3,
        "it runs again once the active sessions left the window: {later}"
    );
    // and from the move on, never more than 3 sessions in any rolling 24 hours
    for n in runs_in_rolling_day(runs, start + TimeDelta::hours(12)) {
        assert!(n <= 3, "{n} sessions in 24 h in the rare bucket");
    }
}

/// QuotaController counts execution time over timing sessions: two 6-minute runs that overlap
/// use 6 minutes of the active bucket's 10 (`ALLOWED_TIME_PER_PERIOD_MS` per
/// `WINDOW_SIZE_ACTIVE_MS`), not 12, so neither is stopped for quota.
#[test]
fn overlapping_runs_in_the_active_bucket_are_one_session_and_never_stopped_for_quota() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "4h"
        device = { screen = "on", charging = false }

        [[job]]
        name = "a"
        every = "15m"
        outcome = { duration = "6m" }

        [[job]]
        name = "b"
        every = "15m"
        outcome = { duration = "6m" }
    "#);
    // WorkManager's timing: each run 15 min after the previous one ended, so one every 21 min
    for j in &r.jobs {
        assert!(j.runs.len() >= 11, "{}: {} runs", j.name, j.runs.len());
        for run in &j.runs {
            assert_eq!(run.outcome, RunResult::Success, "{}: {run:?}", j.name);
        }
    }
}

/// In the rare bucket on battery, short runs are capped at 3 sessions per rolling 24 hours
/// (`MAX_SESSION_COUNT_RARE` = 3): it was 32.
#[test]
fn the_rare_bucket_allows_at_most_three_sessions_in_any_24_hours() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "3d"
        device = { screen = "on", charging = false }
        overrides = { bucket = "rare" }

        [[job]]
        name = "sync"
        every = "15m"
        outcome = { duration = "10s" }
    "#);
    let start = t("2026-11-23T00:00:00Z");
    let runs = &r.jobs[0].runs;
    assert!(runs.len() >= 6, "it still runs: {}", runs.len());
    for n in runs_in_rolling_day(runs, start) {
        assert!(n <= 3, "{n} sessions in 24 h");
    }
}

/// Apple, BGTaskScheduler: a launched task that does not finish before its time runs out has
/// its `expirationHandler` called and is not launched again unless the app submits a new
/// request. A one-off refresh whose work takes 2 minutes (budget ≈ 30 s) is launched once — it
/// was launched 48 times in 12 h.
#[test]
fn ios_a_refresh_request_that_outlasts_its_budget_is_launched_once() {
    let r = run(r#"
        profile = "ios"
        start = "2026-11-23T00:00:00Z"
        duration = "12h"
        device = { screen = "on", charging = false }

        [[job]]
        name = "feed"
        task = "refresh"
        in = "1m"
        outcome = { duration = "2m" }
    "#);
    let runs = &r.jobs[0].runs;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].end - runs[0].start, TimeDelta::seconds(30));
    assert_eq!(runs[0].stop.as_deref(), Some("ios_refresh_budget"));
    // used up by its launch: the stop expired the request rather than putting it back
    let sentence = &r.reasons["ios_refresh_budget"];
    assert!(sentence.starts_with("expired: "), "{sentence}");
}

/// BGProcessingTaskRequest: `requiresExternalPower` and `requiresNetworkConnectivity` are false
/// unless the app sets them. A processing task that asks for neither runs on battery once the
/// device is idle; one that asks for external power (`requires = ["charging"]`) waits for it.
#[test]
fn ios_processing_requires_power_only_when_the_request_asks() {
    let r = run(r#"
        profile = "ios"
        start = "2026-11-23T00:00:00Z"
        duration = "6h"
        device = { screen = "on", charging = false }

        [[job]]
        name = "any-power"
        task = "processing"
        outcome = { duration = "1m" }

        [[job]]
        name = "on-power"
        task = "processing"
        requires = ["charging"]
        outcome = { duration = "1m" }

        [[event]]
        at = "1h"
        screen = "off"

        [[event]]
        at = "3h"
        charging = true
    "#);
    let start = t("2026-11-23T00:00:00Z");
    assert_eq!(r.jobs[0].runs[0].start, start + TimeDelta::hours(1));
    assert_eq!(r.jobs[1].runs[0].start, start + TimeDelta::hours(3));
}

/// AOSP DeviceIdleController ends a light maintenance window early once no job is active
/// (`exitMaintenanceEarlyIfNeededLocked`): the next light-idle period starts then. With the
/// screen off on battery from 00:00, light Doze begins at 00:05 with idle periods of 5, 10,
/// 15 min and windows of 1, 2, 4… min (DESIGN §6). A job that comes due at 00:10:30 — inside
/// the first window, which nothing uses — waits for the next window; one that comes due while a
/// 10-second job keeps the window open waits for the window after that run.
#[test]
fn a_light_doze_window_closes_once_its_work_is_done() {
    let scenario = |jobs: &str| {
        format!(
            r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "1h"
        device = {{ screen = "off", charging = false }}
        {jobs}
    "#
        )
    };
    let start = t("2026-11-23T00:00:00Z");
    // nothing runs in the 00:10 window: it ends at once; idle 10 min; next window at 00:20
    let r = run(&scenario(
        "[[job]]\nname = \"late\"\nin = \"10m 30s\"\noutcome = { duration = \"10s\" }\n",
    ));
    assert_eq!(r.jobs[0].runs[0].start, start + TimeDelta::minutes(20));
    // a job due at the window's start keeps it open for its 10 s; then it ends, and the next
    // window opens 10 min later, at 00:20:10
    let r = run(&scenario(
        "[[job]]\nname = \"first\"\nin = \"10m\"\noutcome = { duration = \"10s\" }\n\
         [[job]]\nname = \"late\"\nin = \"10m 30s\"\noutcome = { duration = \"10s\" }\n",
    ));
    assert_eq!(r.jobs[0].runs[0].start, start + TimeDelta::minutes(10));
    assert_eq!(
        r.jobs[1].runs[0].start,
        start + TimeDelta::minutes(20) + TimeDelta::seconds(10)
    );
}

/// The report says what the profile changed (WorkManager raises a 5-minute interval to 15 with
/// a warning, as `PeriodicWorkRequest` does), and gives runs per day only over whole days.
#[test]
fn the_report_carries_profile_warnings_and_no_per_day_for_less_than_a_day() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "1h"

        [[job]]
        name = "short"
        every = "5m"
    "#);
    let j = &r.jobs[0];
    assert!(
        j.warnings
            .iter()
            .any(|w| w.contains("raised to the minimum of 15m")),
        "{:?}",
        j.warnings
    );
    assert_eq!(j.per_day, None, "an hour says nothing per day");
    let text = r.text();
    assert!(
        text.contains("warning: the interval 5m was raised"),
        "{text}"
    );
    assert!(!text.contains("per day"), "{text}");
    // each run listed in the text report
    let first = j.runs[0].start.format("%Y-%m-%d %H:%M:%S").to_string();
    assert!(text.contains(&first), "{text}");
}

/// Deep Doze needs a stationary device (AOSP DeviceIdleController: the significant-motion
/// sensor; `handleMotionDetectedLocked` sends both Doze states back to active, then inactive with
/// `MOTION_INACTIVE_TIMEOUT` = 10 min, followed by `IDLE_AFTER_INACTIVE_TIMEOUT` = 30 min of
/// looking for motion). A phone carried while its screen is off gets light Doze only; deep Doze
/// comes 40 min after it is put down (and never before the usual 60 min after screen-off); motion
/// in deep Doze ends it, and light Doze starts over.
#[test]
fn deep_doze_waits_for_the_device_to_be_still_and_motion_ends_it() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "8h"
        device = { screen = "off", charging = false, battery = 90, moving = true }

        [[job]]
        name = "sync"
        every = "15m"
        outcome = { duration = "10s" }

        [[event]]            # put down on a desk
        at = "2h"
        moving = false

        [[event]]            # picked up and carried in deep Doze
        at = "5h"
        moving = true

        [[event]]
        at = "5h 10m"
        moving = false
    "#);
    let start = t("2026-11-23T00:00:00Z");
    let m = |n: i64| start + TimeDelta::minutes(n);
    let first = |code: &str, after: Time| {
        r.os_state
            .iter()
            .find(|(t, c)| *t >= after && c == code)
            .map(|(t, _)| *t)
    };
    // carried: light Doze from 00:05, no deep Doze until 40 min after 02:00
    assert_eq!(first("light_idle", start), Some(m(5)));
    assert_eq!(first("deep_idle", start), Some(m(160)), "{:?}", r.os_state);
    // motion at 05:00 in deep Doze: light Doze again, its idle 5 min later…
    assert!(
        r.os_state
            .iter()
            .any(|(t, c)| *t == m(300) && !c.starts_with("deep")),
        "{:?}",
        r.os_state
    );
    assert_eq!(first("light_idle", m(300)), Some(m(305)));
    // …and deep Doze 40 min after it was put down again, at 05:50
    assert_eq!(first("deep_idle", m(300)), Some(m(350)), "{:?}", r.os_state);
    // the job ran while carried (light maintenance windows), not only in deep windows
    let runs = &r.jobs[0].runs;
    assert!(runs.iter().filter(|r| r.start < m(120)).count() >= 4);
}

/// An active app working without a break — one 90-second job started every minute for 30
/// minutes, one continuous timing session — is never stopped or held for quota: the active
/// bucket's window equals its allowed time (10 min per 10 min), and AOSP QuotaController
/// (`getTimeUntilQuotaConsumedLocked`: "the app jobs can essentially run until they reach the
/// maximum limit") lets it run to the daily limit; one start a minute is far from the rate limit
/// of 20 starts per window (`incrementJobCountLocked` counts starts, not the jobs of a session
/// that reaches into the last minute).
#[test]
fn an_active_app_working_without_a_break_is_not_held_for_quota() {
    let mut toml = String::from(
        "profile = \"android\"\nstart = \"2026-11-23T00:00:00Z\"\nduration = \"2h\"\n\
         device = { screen = \"on\", charging = false, battery = 80 }\n",
    );
    for k in 0..30 {
        toml.push_str(&format!(
            "[[job]]\nname = \"j{k:02}\"\nin = \"{k}m\"\noutcome = {{ duration = \"90s\" }}\n"
        ));
    }
    let r = run(&toml);
    let start = t("2026-11-23T00:00:00Z");
    for (k, j) in r.jobs.iter().enumerate() {
        assert_eq!(j.runs.len(), 1, "{}: {:?}", j.name, j.runs);
        assert_eq!(j.runs[0].outcome, RunResult::Success, "{}", j.name);
        assert_eq!(
            j.runs[0].start,
            start + TimeDelta::minutes(k as i64),
            "{}",
            j.name
        );
    }
    assert!(r.app_held.is_empty(), "{:?}", r.app_held);
}

/// A deep maintenance window whose work is done ends at once, like a light one: AOSP
/// DeviceIdleController's `exitMaintenanceEarlyIfNeededLocked` steps the deep state from
/// `STATE_IDLE_MAINTENANCE` to the next `STATE_IDLE` when no operation is active. The next idle
/// period (twice as long: `IDLE_FACTOR`) counts from that early end.
#[test]
fn a_deep_maintenance_window_closes_once_its_work_is_done() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "8h"
        device = { screen = "off", charging = false, battery = 90 }

        [[job]]
        name = "sync"
        every = "15m"
        outcome = { duration = "10s" }
    "#);
    let start = t("2026-11-23T00:00:00Z");
    let s = |secs: i64| start + TimeDelta::seconds(secs);
    let deep: Vec<(Time, &str)> = r
        .os_state
        .iter()
        .filter(|(_, c)| c.starts_with("deep_"))
        .map(|(t, c)| (*t, c.as_str()))
        .collect();
    // deep idle 01:00–02:00; the window opens at 02:00 and closes when the 10-second run
    // ends; the next idle lasts 120 min from then
    assert_eq!(
        deep[..4],
        [
            (s(3600), "deep_idle"),
            (s(7200), "deep_maintenance"),
            (s(7210), "deep_idle"),
            (s(7210 + 7200), "deep_maintenance"),
        ],
        "{:?}",
        r.os_state
    );
}

/// Charging lifts the quotas of every bucket but `restricted`: AOSP QuotaController's
/// `isQuotaFreeLocked` ("Restricted jobs require additional constraints when charging, so don't
/// immediately mark quota as free when charging"). A restricted app on the charger keeps its
/// one session per 24 h (`MAX_SESSION_COUNT_RESTRICTED`), while a rare one runs freely. Five
/// jobs, so that batching (`MIN_READY_NON_ACTIVE_JOBS_COUNT`; restricted jobs are always
/// batched) lets them go together.
#[test]
fn charging_does_not_free_the_restricted_buckets_quota() {
    let scenario = |bucket: &str| {
        format!(
            "profile = \"android\"\nstart = \"2026-11-23T00:00:00Z\"\nduration = \"1d\"\n\
             device = {{ screen = \"on\", charging = true, bucket = \"{bucket}\" }}\n\
             [[job]]\nname = \"sync\"\ncount = 5\nevery = \"15m\"\n\
             outcome = {{ duration = \"10s\" }}\n"
        )
    };
    let restricted = run(&scenario("restricted"));
    let runs: usize = restricted.jobs.iter().map(|j| j.runs.len()).sum();
    // one session of the five in a day (`MAX_SESSION_COUNT_RESTRICTED` = 1)
    assert_eq!(runs, 5, "{runs} runs in a day in the restricted bucket");
    assert!(restricted.jobs.iter().any(|j| j.quota_hits > 0));
    let rare = run(&scenario("rare"));
    for j in &rare.jobs {
        assert!(j.runs.len() >= 90, "{}: {}", j.name, j.runs.len());
    }
}

/// The text report lists the first and the last runs of a long list (the end of a scenario — a
/// job coming back after a bucket change, say — is what a reader looks for), and says how many
/// it leaves out.
#[test]
fn the_text_report_shows_the_first_and_the_last_runs() {
    let r = run(r#"
        start = "2026-11-23T00:00:00Z"
        duration = "1h"

        [[job]]
        name = "tick"
        every = "1m"
        accurate = true
    "#);
    let runs = &r.jobs[0].runs;
    assert!(runs.len() > 48, "{}", runs.len());
    let text = r.text();
    let line = |run: &backwork_simulator::RunReport| {
        format!("    {}", run.start.format("%Y-%m-%d %H:%M:%S"))
    };
    assert!(text.contains(&line(&runs[0])), "{text}");
    assert!(text.contains(&line(&runs[runs.len() - 1])), "{text}");
    assert!(!text.contains(&line(&runs[30])), "{text}");
    assert!(
        text.contains(&format!("… {} more runs", runs.len() - 48)),
        "{text}"
    );
}

/// A rare-bucket app held for its quota through a night of deep Doze: the hold in force is
/// re-asked when Doze's phase changes, so the night shows as Doze time, not as quota time — it
/// was all "quota" (the core kept the quota's hold until its end without asking again).
/// DeviceIdleController's timings (DESIGN §6): screen off on battery at 02:00, still → light
/// Doze from 02:05 (`LIGHT_IDLE_AFTER_INACTIVE_TIMEOUT` 5 min), deep Doze from 03:00
/// (`INACTIVE_TIMEOUT` 30 min + `IDLE_AFTER_INACTIVE_TIMEOUT`/sensing: 60 min from screen-off),
/// deep idle periods 60 and 120 min then 240 (`IDLE_TIMEOUT`, ×2 `IDLE_FACTOR`), screen on at
/// 10:00. QuotaController's rare bucket: 3 sessions per 24 h (`MAX_SESSION_COUNT_RARE`).
#[test]
fn a_quota_held_app_shows_the_deep_doze_it_waited_through() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "12h"
        device = { screen = "on", charging = false, battery = 80, bucket = "rare" }

        [[job]]
        name = "sync"
        every = "15m"
        outcome = { duration = "10s" }

        [[event]]
        at = "2h"
        screen = "off"

        [[event]]
        at = "10h"
        screen = "on"
    "#);
    let job = &r.jobs[0];
    assert_eq!(
        job.runs.len(),
        3,
        "three sessions, then the rare bucket's quota holds it"
    );
    let held = |code: &str| job.held_back_ms.get(code).copied().unwrap_or(0);
    let deep = held("doze_deep");
    let minutes = |ms: u64| ms / 60_000;
    // deep Doze 03:00–10:00, 7 h: its maintenance windows (04:00, 06:00) close as they open,
    // since the quota lets nothing of the app run in them (`exitMaintenanceEarlyIfNeededLocked`)
    assert_eq!(
        deep,
        7 * 3_600_000,
        "deep Doze held it {} min: {:?}",
        minutes(deep),
        job.held_back_ms
    );
    assert!(held("doze_light") > 0, "{:?}", job.held_back_ms);
    // the quota's codes keep the time the device was awake (00:30–02:05, 10:00–12:00) and the
    // maintenance windows: not the night
    let quota: u64 = job
        .held_back_ms
        .iter()
        .filter(|(code, _)| code.starts_with("standby_quota"))
        .map(|(_, ms)| ms)
        .sum();
    assert!(quota > 0, "{:?}", job.held_back_ms);
    assert!(
        minutes(quota) < 4 * 60,
        "quota held it {} min: the night counts as Doze",
        minutes(quota)
    );
}

/// Apple, BGTaskScheduler `submit(_:)`: a request is used up when the system launches its task;
/// it is not launched again unless the app submits a new one. So a refresh whose work fails, or
/// asks for a retry, or hits the job's own time limit is launched once (review: 11 launches).
#[test]
fn ios_a_request_is_used_up_by_its_launch_whatever_its_outcome() {
    for outcome in [
        r#"outcome = { fail = 1.0, duration = "5s" }"#,
        r#"timeout = "20s"
        outcome = { duration = "2m" }"#,
    ] {
        let r = run(&format!(
            r#"
            profile = "ios"
            start = "2026-11-23T00:00:00Z"
            duration = "12h"
            device = {{ screen = "on", charging = false }}

            [[job]]
            name = "feed"
            task = "refresh"
            in = "1m"
            {outcome}
        "#
        ));
        let runs = &r.jobs[0].runs;
        assert_eq!(runs.len(), 1, "{outcome}: {runs:?}");
        assert_ne!(runs[0].outcome, RunResult::Success, "{outcome}");
    }
}

/// AOSP QuotaController.updateExecutionStatsLocked: "Exclude active sessions from the session
/// count so that new jobs aren't prevented from starting due to an app hitting the session
/// limit". A rare-bucket app whose quota frees starts every ready job in one session — it used
/// to spend each of its 3 sessions a day on one job, and a one-off job never got one.
#[test]
fn jobs_ready_together_share_a_session_under_the_session_cap() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "3d"
        device = { screen = "on", charging = false, bucket = "rare" }

        [[job]]
        name = "a"
        every = "15m"
        count = 6
        outcome = { duration = "3s" }

        [[job]]
        name = "x"
        in = "2h"
        outcome = { duration = "3s" }
    "#);
    let x = r.jobs.iter().find(|j| j.name == "x").unwrap();
    assert_eq!(
        x.runs.len(),
        1,
        "the one-off job gets a session: {:?}",
        x.runs
    );
    // the periodic copies share a session when it opens: on the second day, every copy's first
    // run belongs to the first session (the profile's concurrency lets a few run at once, the
    // others follow within the coalescing time)
    let day2 = t("2026-11-24T00:00:00Z");
    let mut all: Vec<_> = r.jobs.iter().flat_map(|j| j.runs.iter().cloned()).collect();
    all.sort_by_key(|run| run.start);
    let day2_runs: Vec<_> = all
        .iter()
        .filter(|run| run.start >= day2)
        .cloned()
        .collect();
    let first_session_end = sessions_of(&day2_runs)[0].1;
    for j in r.jobs.iter().filter(|j| j.name.starts_with("a-")) {
        let first = j.runs.iter().find(|run| run.start >= day2).unwrap();
        assert!(
            first.start <= first_session_end,
            "{} first runs on day 2 at {}, after the first session ended at {first_session_end}",
            j.name,
            first.start
        );
    }
    // and the cap still holds: at most 3 sessions in any rolling 24 h
    for n in sessions_in_rolling_day(&all) {
        assert!(n <= 3, "{n} sessions in 24 h");
    }
}

/// For each timing session of `runs` (sorted by start), how many sessions start in the 24 h
/// from its start.
fn sessions_in_rolling_day(runs: &[backwork_simulator::RunReport]) -> Vec<usize> {
    let sessions = sessions_of(runs);
    sessions
        .iter()
        .map(|(s, _)| {
            sessions
                .iter()
                .filter(|(o, _)| *o >= *s && *o < *s + TimeDelta::hours(24))
                .count()
        })
        .collect()
}

/// A run that ends at the instant another run's end stops it (the working_set bucket's job
/// time used up) is reported once, as stopped — it was listed both stopped and succeeded.
#[test]
fn a_run_stopped_at_its_own_end_is_reported_once() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "6h"
        seed = 1
        device = { screen = "on", charging = false, bucket = "working_set" }

        [[job]]
        name = "a"
        every = "15m"
        count = 3
        outcome = { duration = "9m" }
    "#);
    for j in &r.jobs {
        for pair in j.runs.windows(2) {
            assert!(pair[0].start != pair[1].start, "{}: {pair:?}", j.name);
        }
        let n = j.runs.len() as u64;
        assert_eq!(j.succeeded + j.failed + j.stopped, n, "{}", j.name);
    }
}

/// The starting bucket a scenario names (`device.bucket`) is the bucket lane's first value.
#[test]
fn the_bucket_lane_starts_with_the_scenarios_bucket() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "1h"
        device = { screen = "on", charging = false, bucket = "rare" }

        [[job]]
        name = "a"
        every = "15m"
    "#);
    assert_eq!(r.bucket[0].1, "rare", "{:?}", r.bucket);
}

/// Timing sessions as QuotaController forms them from runs sorted by start: runs that overlap
/// or start less than 5 s after the session's end (`TIMING_SESSION_COALESCING_DURATION_MS`)
/// join it. Each session's start and end.
fn sessions_of(runs: &[backwork_simulator::RunReport]) -> Vec<(Time, Time)> {
    let mut sessions: Vec<(Time, Time)> = Vec::new();
    for run in runs {
        match sessions.last_mut() {
            Some((_, end)) if run.start < *end + TimeDelta::seconds(5) => {
                *end = (*end).max(run.end);
            }
            _ => sessions.push((run.start, run.end)),
        }
    }
    sessions
}

/// AOSP JobSchedulerService, `MaybeReadyJobQueueFunctor.accept` (Android 12 and 13; the same in
/// 14–16): `else if (job.getNumFailures() > 0) { shouldForceBatchJob = false; }` — a job that
/// failed before is not held for a batch. A failing one-off in the `frequent` bucket waits the
/// 31 minutes (`MAX_NON_ACTIVE_JOB_BATCH_DELAY_MS`) once, before its first run; its retries
/// follow WorkManager's backoff alone (`DEFAULT_BACKOFF_DELAY_MILLIS` = 30 s, doubling). They
/// waited 31 minutes each.
#[test]
fn retries_are_not_batched_in_non_active_buckets() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "3h"
        device = { screen = "on", charging = false, bucket = "frequent" }

        [[job]]
        name = "flaky"
        in = "0s"
        max_attempts = 3
        outcome = { fail = 1.0, duration = "10s" }
    "#);
    let at = |s: i64| t("2026-11-23T00:00:00Z") + TimeDelta::seconds(s);
    let starts: Vec<Time> = r.jobs[0].runs.iter().map(|x| x.start).collect();
    // 31 min batched; then 10 s of run + 30 s of backoff; then 10 s + 60 s
    assert_eq!(
        starts,
        vec![at(31 * 60), at(31 * 60 + 40), at(31 * 60 + 40 + 70)]
    );
}

/// `MaybeReadyJobQueueFunctor` has no charging rule: a job outside the active bucket is
/// batched whether the device charges or not (it was let through while charging, with no
/// source). AOSP JobSchedulerService (Android 12 and 13): "Restricted jobs must always be
/// batched" — `shouldForceBatchJob = true` with no `MAX_NON_ACTIVE_JOB_BATCH_DELAY_MS`: a lone
/// restricted job never runs, five ready ones (`MIN_READY_NON_ACTIVE_JOBS_COUNT`) do; and
/// "Never batch expedited jobs, even for RESTRICTED apps".
#[test]
fn batching_ignores_charging_and_restricted_jobs_are_always_batched() {
    let charging = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "2h"
        device = { screen = "on", charging = true, bucket = "frequent" }

        [[job]]
        name = "alone"
        in = "0s"
    "#);
    assert_eq!(
        charging.jobs[0].runs[0].start,
        t("2026-11-23T00:31:00Z"),
        "charging does not lift batching"
    );
    let restricted = |n: u32| {
        let mut toml = String::from(
            r#"
            profile = "android"
            start = "2026-11-23T00:00:00Z"
            duration = "4h"
            device = { screen = "on", charging = true, bucket = "restricted" }
            "#,
        );
        for k in 0..n {
            toml.push_str(&format!(
                "\n[[job]]\nname = \"r{k}\"\nadded = \"{}m\"\n",
                10 * k
            ));
        }
        run(&toml)
    };
    let lone = restricted(1);
    assert!(
        lone.jobs[0].runs.is_empty(),
        "a lone restricted job is never let go by the batch delay"
    );
    assert!(lone.jobs[0].held_back_ms.contains_key("standby_batching"));
    let five = restricted(5);
    for j in &five.jobs {
        assert_eq!(j.runs.len(), 1, "{}", j.name);
        let start = j.runs[0].start;
        assert!(
            start >= t("2026-11-23T00:40:00Z") && start <= t("2026-11-23T00:40:01Z"),
            "{}: five restricted jobs go when the fifth is ready, not at {start}",
            j.name
        );
    }
    let expedited = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "1h"
        device = { screen = "on", charging = false, bucket = "restricted" }

        [[job]]
        name = "urgent"
        expedited = "run-as-regular"
    "#);
    assert_eq!(
        expedited.jobs[0].runs[0].start,
        t("2026-11-23T00:00:00Z"),
        "an expedited job is never batched"
    );
}

/// AOSP DeviceIdleController (Android 12 and 13), `stepLightIdleStateLocked`, state
/// `LIGHT_STATE_INACTIVE`: "if (!isOpsInactiveLocked()) { // We have some active ops going
/// on... give them a chance to finish before going in to our first idle. mLightState =
/// LIGHT_STATE_PRE_IDLE; scheduleLightAlarmLocked(mConstants.LIGHT_PRE_IDLE_TIMEOUT)" —
/// `DEFAULT_LIGHT_PRE_IDLE_TIMEOUT` = 3 min; `exitMaintenanceEarlyIfNeededLocked` steps on
/// ("s:predone") once no job is active. DeviceIdleJobsController restricts jobs in light idle
/// too (`updateIdleMode(mPowerManager.isDeviceIdleMode() ||
/// mPowerManager.isLightDeviceIdleMode())`). Screen off on battery at 00:01: light Doze is due
/// at 00:06. A 20-minute run started at 00:00 holds it off until 00:09 and is stopped then; a
/// 5-minute run from 00:03 holds it off until it ends, at 00:08. A run used to go on through
/// light idle.
#[test]
fn light_doze_waits_for_running_jobs_at_most_three_minutes_then_stops_them() {
    let scenario = |job: &str| {
        format!(
            "profile = \"android\"\nstart = \"2026-11-23T00:00:00Z\"\nduration = \"30m\"\n\
             device = {{ screen = \"on\", charging = false }}\n\
             [[event]]\nat = \"1m\"\nscreen = \"off\"\n{job}"
        )
    };
    let light_idle_from = |r: &Report| {
        r.os_state
            .iter()
            .find(|(_, c)| c == "light_idle")
            .map(|(t, _)| *t)
    };
    let long = run(&scenario(
        "[[job]]\nname = \"long\"\nin = \"0s\"\noutcome = { duration = \"20m\" }\n",
    ));
    let runs = &long.jobs[0].runs;
    assert_eq!(runs[0].start, t("2026-11-23T00:00:00Z"));
    assert_eq!(runs[0].end, t("2026-11-23T00:09:00Z"), "{runs:?}");
    assert_eq!(runs[0].stop.as_deref(), Some("doze_began"));
    assert_eq!(light_idle_from(&long), Some(t("2026-11-23T00:09:00Z")));
    let short = run(&scenario(
        "[[job]]\nname = \"short\"\nin = \"3m\"\noutcome = { duration = \"5m\" }\n",
    ));
    let runs = &short.jobs[0].runs;
    assert_eq!(runs[0].end, t("2026-11-23T00:08:00Z"), "{runs:?}");
    assert_eq!(runs[0].outcome, RunResult::Success);
    assert_eq!(light_idle_from(&short), Some(t("2026-11-23T00:08:00Z")));
    // nothing running when it is due: light Doze begins on time
    let none = run(&scenario("[[job]]\nname = \"later\"\nin = \"20m\"\n"));
    assert_eq!(light_idle_from(&none), Some(t("2026-11-23T00:06:00Z")));
}

/// Apple, `BGProcessingTask`: "Processing tasks run only when the device is idle. The system
/// terminates any background processing tasks running when the user starts using the device.
/// Background refresh tasks aren't affected." The screen comes on 10 s into an 8-minute
/// processing run and a 20-second refresh run: the processing run stops then, its request
/// used up (no second launch when the device is idle again); the refresh runs to its end. The
/// processing run used to go on.
#[test]
fn ios_processing_tasks_stop_when_the_user_starts_using_the_device() {
    let r = run(r#"
        profile = "ios"
        start = "2026-11-23T00:00:00Z"
        duration = "2h"
        device = { screen = "off", charging = true }

        [[job]]
        name = "index"
        task = "processing"
        outcome = { duration = "8m" }

        [[job]]
        name = "refresh"
        task = "refresh"
        outcome = { duration = "20s" }

        [[event]]
        at = "10s"
        screen = "on"

        [[event]]
        at = "30m"
        screen = "off"
    "#);
    let job = |name: &str| r.jobs.iter().find(|j| j.name == name).unwrap();
    let index = &job("index").runs;
    assert_eq!(index.len(), 1, "{index:?}");
    assert_eq!(index[0].start, t("2026-11-23T00:00:00Z"));
    assert_eq!(index[0].end, t("2026-11-23T00:00:10Z"));
    assert_eq!(index[0].stop.as_deref(), Some("ios_processing_user_active"));
    let sentence = &r.reasons["ios_processing_user_active"];
    assert!(sentence.starts_with("expired: "), "{sentence}");
    let refresh = &job("refresh").runs;
    assert_eq!(refresh.len(), 1, "{refresh:?}");
    assert_eq!(refresh[0].end, t("2026-11-23T00:00:20Z"));
    assert_eq!(refresh[0].outcome, RunResult::Success);
}

/// AOSP QuotaController (Android 12 and 13), `Timer.onStateChangedLocked`: "if (isQuotaFree)
/// { emitSessionLocked(nowElapsed); } else if (!isActive() && shouldTrackLocked()) { // Start
/// timing from unplug. if (mRunningBgJobs.size() > 0) { mStartTimeElapsed = nowElapsed; …".
/// In the working-set bucket (`ALLOWED_TIME_PER_PERIOD_MS` = 10 min per
/// `WINDOW_SIZE_WORKING_MS` = 2 h; batching off with `batch_ready_jobs = 1` to look at the
/// quota alone), an 8-minute run on battery leaves 2 minutes; a 9-minute run started on the
/// charger at 00:20 is timed from the unplug at 00:22 and stopped at 00:24. It used to run to
/// its end, never counted.
#[test]
fn a_run_going_when_the_charger_is_unplugged_counts_against_the_quota_from_then() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "1h"
        overrides = { batch_ready_jobs = 1 }
        device = { screen = "on", charging = false, bucket = "working_set" }

        [[job]]
        name = "first"
        in = "0s"
        outcome = { duration = "8m" }

        [[job]]
        name = "second"
        in = "20m"
        outcome = { duration = "9m" }

        [[event]]
        at = "10m"
        charging = true

        [[event]]
        at = "22m"
        charging = false
    "#);
    let first = &r.jobs[0].runs;
    assert_eq!(first[0].end, t("2026-11-23T00:08:00Z"), "{first:?}");
    let second = &r.jobs[1].runs;
    assert_eq!(second[0].start, t("2026-11-23T00:20:00Z"), "{second:?}");
    assert_eq!(second[0].end, t("2026-11-23T00:24:00Z"), "{second:?}");
    assert_eq!(second[0].stop.as_deref(), Some("standby_quota_time"));
}

/// AOSP DeviceIdleController (Android 12 and 13), `stepLightIdleStateLocked`: a light
/// maintenance window lasts the budget `mCurLightIdleBudget`, which starts at
/// `LIGHT_IDLE_MAINTENANCE_MIN_BUDGET` (1 min) and is kept within it and
/// `LIGHT_IDLE_MAINTENANCE_MAX_BUDGET` (5 min); as a window ends, "We didn't use up all of our
/// minimum budget; add this to the reserve" (`+= MIN_BUDGET - duration`) or "We used more than
/// our minimum budget; this comes out of the reserve" (`-= duration - MIN_BUDGET`). Screen off
/// on battery at 00:00 (deep Doze pushed past the scenario), light idle 00:05–00:10 (5 min),
/// 00:10–00:20 (10), 00:20–00:35 (15): the windows at 00:10 and 00:20 have nothing to do and
/// end at once, so the window at 00:35 has 3 minutes; a 20-minute job added at 00:25 uses all
/// three, which leaves the minimum: its next window, after 15 minutes of idle, lasts 1 minute.
/// The windows were 1 → 2 → 4 → 5 minutes whatever they were used for.
#[test]
fn light_maintenance_windows_last_the_budget_reserve() {
    let r = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "1h"
        overrides = { deep_idle_after = "10h" }
        device = { screen = "off", charging = false }

        [[job]]
        name = "long"
        added = "25m"
        outcome = { duration = "20m" }
    "#);
    let runs = &r.jobs[0].runs;
    let span = |i: usize| (runs[i].start, runs[i].end);
    assert_eq!(
        span(0),
        (t("2026-11-23T00:35:00Z"), t("2026-11-23T00:38:00Z")),
        "{runs:?}"
    );
    assert_eq!(runs[0].stop.as_deref(), Some("doze_window_closed"));
    assert_eq!(
        span(1),
        (t("2026-11-23T00:53:00Z"), t("2026-11-23T00:54:00Z")),
        "{runs:?}"
    );
}
