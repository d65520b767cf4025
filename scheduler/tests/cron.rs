//! Cron jobs through the core: slots in a named zone, across daylight-saving changes, one run per
//! slot.

mod common;

use backwork_scheduler::{JobRequest, RunOutcome};
use chrono_tz::Tz;
use common::*;

#[test]
fn cron_runs_at_its_slots_in_a_named_zone_across_both_dst_changes() {
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let mut h = Harness::new().auto_succeed();
    h.jump_to(t("2026-03-27T12:00:00Z"));
    let id = h.enqueue(JobRequest::cron(KIND, "0 30 2 * * *", berlin));
    h.advance_to(t("2026-03-31T12:00:00Z"));
    assert_eq!(
        h.starts(id),
        [
            t("2026-03-28T01:30:00Z"),
            t("2026-03-29T01:00:00Z"), // 02:30 skipped by spring-forward: right after the change
            t("2026-03-30T00:30:00Z"),
            t("2026-03-31T00:30:00Z"),
        ]
    );
}

#[test]
fn cron_repeated_hour_runs_once() {
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let mut h = Harness::new().auto_succeed();
    h.jump_to(t("2026-10-24T12:00:00Z"));
    let id = h.enqueue(JobRequest::cron(KIND, "0 30 2 * * *", berlin));
    h.advance_to(t("2026-10-26T12:00:00Z"));
    assert_eq!(
        h.starts(id),
        [t("2026-10-25T00:30:00Z"), t("2026-10-26T01:30:00Z")]
    );
}

#[test]
fn cron_job_with_long_runs_takes_the_next_slot_after_its_start() {
    let mut h = Harness::new();
    let id = h.enqueue(JobRequest::cron(KIND, "0 */10 * * * *", Tz::UTC).timeout(None));
    h.advance(mins(10));
    h.advance(mins(25)); // runs from :10 to :35, missing :20 and :30
    h.finish(id, RunOutcome::Success(None));
    // catch-up `one`: the slots :20 and :30 passed during the run; they are served by one run now
    assert_eq!(
        h.starts(id),
        [t("2026-01-01T00:10:00Z"), t("2026-01-01T00:35:00Z")]
    );
    h.finish(id, RunOutcome::Success(None));
    h.advance(mins(5));
    assert_eq!(h.starts(id).len(), 3);
    assert_eq!(h.starts(id)[2], t("2026-01-01T00:40:00Z"));
}

#[test]
fn cron_skip_drops_slots_that_passed_during_a_long_run() {
    let mut h = Harness::new();
    let id = h.enqueue(
        JobRequest::cron(KIND, "0 */10 * * * *", Tz::UTC)
            .timeout(None)
            .catch_up(backwork_scheduler::CatchUp::Skip),
    );
    h.advance(mins(35));
    h.finish(id, RunOutcome::Success(None));
    assert_eq!(h.starts(id), [t("2026-01-01T00:10:00Z")]);
    h.advance(mins(5));
    assert_eq!(
        h.starts(id),
        [t("2026-01-01T00:10:00Z"), t("2026-01-01T00:40:00Z")]
    );
}
