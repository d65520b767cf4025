//! Lateness from batching is reported, apart from the holds (issue 13, item 5). The scheduler
//! may start a job up to its batching window (desktop: 1 minute, DESIGN §6) after its due time
//! so that it shares a wake-up with work due a little later; that wait is no hold of the
//! profile or the device, so it is not in `held_back_ms`, but a user tuning a schedule wants to
//! see it: `batching_ms`, and a line of the text report.

mod common;
use common::run;

use chrono::TimeDelta;

#[test]
fn a_job_that_waits_to_share_a_wake_up_is_late_by_batching_not_held_back() {
    let r = run(r#"
        start = "2026-11-23T00:00:00Z"
        duration = "1h"

        [[job]]
        name = "early"
        in = "600s"

        [[job]]
        name = "later"
        in = "640s"

        [[job]]
        name = "punctual"
        in = "1200s"
        accurate = true
    "#);
    let at = |s: i64| {
        chrono::DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
            .expect("instant")
            .to_utc()
            + TimeDelta::seconds(s)
    };
    let job = |name: &str| {
        r.jobs
            .iter()
            .find(|j| j.name == name)
            .unwrap_or_else(|| panic!("{name} in the report"))
    };
    // "early" is due at 10:00 and may wait up to its 1-minute batching window (to 11:00); the
    // one wake-up that serves it and "later" (due 10:40) comes at 10:40
    let early = job("early");
    assert_eq!(early.runs[0].start, at(640), "{:?}", early.runs);
    assert_eq!(early.batching_ms, 40_000);
    assert!(early.held_back_ms.is_empty(), "{:?}", early.held_back_ms);
    assert_eq!(job("later").runs[0].start, at(640));
    assert_eq!(job("later").batching_ms, 0, "it ran at its due time");
    // an accurate job is never delayed to share a wake-up
    assert_eq!(job("punctual").runs[0].start, at(1200));
    assert_eq!(job("punctual").batching_ms, 0);

    let text = r.text();
    assert!(
        text.contains("late by batching (waiting to share a wake-up): 40s"),
        "{text}"
    );
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["jobs"][0]["batching_ms"], 40_000);
}
