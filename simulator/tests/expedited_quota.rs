//! The android profile's expedited-job quota through the simulator, at AOSP QuotaController's
//! numbers (`QcConstants`: `EJ_LIMIT_RARE_MS` = 10 min in `EJ_WINDOW_SIZE_MS` = 24 h; none
//! while charging): expedited jobs run at once even in deep Doze while the rare bucket's
//! 10 minutes last; then a `drop` job is dropped and a `run-as-regular` job waits for Doze and
//! the bucket's batching exactly like an ordinary job added with it. Guards against an
//! expedited job that waits for Doze, and a quota that never runs out.

mod common;
use common::{run, t};

use chrono::TimeDelta;

const SCENARIO: &str = r#"
    profile = "android"
    start = "2026-11-23T00:00:00Z"
    duration = "12h"
    device = { screen = "off", charging = false, battery = 80 }

    [overrides]
    bucket = "rare"

    # deep Doze from 01:00; its first maintenance window is 02:00 to 02:05
    [[job]]
    name = "first"
    added = "2h30m"
    expedited = "drop"
    outcome = { duration = "6m" }

    [[job]]
    name = "second"
    added = "2h40m"
    expedited = "drop"
    outcome = { duration = "6m" }

    [[job]]
    name = "dropped"
    added = "3h"
    expedited = "drop"
    outcome = { duration = "1m" }

    [[job]]
    name = "demoted"
    added = "3h"
    expedited = "run-as-regular"
    outcome = { duration = "1m" }

    [[job]]
    name = "ordinary"
    added = "3h"
    outcome = { duration = "1m" }
"#;

#[test]
fn the_rare_bucket_gets_ten_expedited_minutes_then_the_out_of_quota_policy_applies() {
    let r = run(SCENARIO);
    let start = t("2026-11-23T00:00:00Z");
    let m = |n: i64| start + TimeDelta::minutes(n);
    let job = |name: &str| r.jobs.iter().find(|j| j.name == name).unwrap();
    // at once, in deep Doze (no maintenance window at 02:30 or 02:40)
    assert_eq!(job("first").runs[0].start, m(150));
    assert_eq!(job("second").runs[0].start, m(160));
    // 12 minutes used by 02:46, over the 10 of the rare bucket
    let dropped = job("dropped");
    assert!(dropped.runs.is_empty(), "{:?}", dropped.runs);
    let why = dropped.cancelled.as_deref().unwrap_or_default();
    assert!(why.contains("expedited quota is used up"), "{why}");
    assert!(job("demoted").cancelled.is_none());
    // run-as-regular: an ordinary job now — held by Doze and the rare bucket's batching with
    // the ordinary job added at the same time, and started with it, in a maintenance window
    let (demoted, ordinary) = (job("demoted"), job("ordinary"));
    assert_eq!(demoted.runs.len(), 1, "{:?}", demoted.runs);
    assert_eq!(ordinary.runs.len(), 1, "{:?}", ordinary.runs);
    assert_eq!(demoted.runs[0].start, ordinary.runs[0].start);
    assert!(demoted.runs[0].start > m(180));
    assert_eq!(demoted.held_back_ms, ordinary.held_back_ms);
    assert!(demoted.held_back_ms.contains_key("doze_deep"));
    // the expedited runs were held by nothing
    assert!(job("first").held_back_ms.is_empty());
    assert!(job("second").held_back_ms.is_empty());
}

#[test]
fn charging_lifts_the_expedited_quota() {
    let r = run(&SCENARIO.replace("charging = false", "charging = true"));
    let job = |name: &str| r.jobs.iter().find(|j| j.name == name).unwrap();
    // QuotaController.isQuotaFreeLocked: no limit while charging (outside restricted)
    assert_eq!(job("dropped").runs.len(), 1);
    assert!(job("dropped").cancelled.is_none());
}
