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

/// Runs `expr` in `zone` from `from` to `to` through the core (batching off) and returns the
/// start instants.
fn dst_starts(expr: &str, zone: &str, from: &str, to: &str) -> Vec<backwork_scheduler::Time> {
    let tz: Tz = zone.parse().unwrap();
    let mut h = Harness::new().auto_succeed();
    h.jump_to(t(from));
    let id = h.enqueue(JobRequest::cron(KIND, expr, tz));
    h.advance_to(t(to));
    h.starts(id)
}

// The DST changes below are the tz database's, as `zdump -v -c 2024,2027 ZONE` prints them:
// - Europe/Berlin 2026-10-25 01:00Z: 03:00 CEST → 02:00 CET (02:00–02:59 twice);
//   2026-03-29 01:00Z: 02:00 CET → 03:00 CEST.
// - Australia/Melbourne 2024-04-06 16:00Z: 03:00 AEDT → 02:00 AEST (02:00–02:59 twice);
//   2026-04-04 16:00Z the same; 2026-10-03 16:00Z: 02:00 AEST → 03:00 AEDT.
// - America/Santiago (changes at midnight) 2026-04-05 03:00Z: Sunday 00:00 −03 → Saturday
//   23:00 −04 (23:00–23:59 twice); 2026-09-06 04:00Z: 00:00 −04 → 01:00 −03 (midnight skipped).
// DESIGN §2 (Vixie cron's rule): a fixed-hour job runs once in a repeated hour and right after
// a skipped time; a job whose hour field is `*` or a step follows real time through both.

#[test]
fn dst_every_30_minutes_runs_through_the_repeated_hour_melbourne() {
    // the reported bug: 01:30, 02:00, 02:30 AEDT, then nothing until 03:00 AEST
    let starts = dst_starts(
        "0 */30 * * * *",
        "Australia/Melbourne",
        "2024-04-06T14:00:00Z", // 01:00 AEDT
        "2024-04-06T17:00:00Z", // 03:00 AEST
    );
    // real time: every 30 minutes without a gap — 01:30, 02:00, 02:30 AEDT, 02:00, 02:30,
    // 03:00 AEST
    let expected: Vec<_> = [
        "2024-04-06T14:30:00Z",
        "2024-04-06T15:00:00Z",
        "2024-04-06T15:30:00Z",
        "2024-04-06T16:00:00Z",
        "2024-04-06T16:30:00Z",
        "2024-04-06T17:00:00Z",
    ]
    .map(t)
    .to_vec();
    assert_eq!(starts, expected);
}

#[test]
fn dst_hourly_has_no_two_hour_gap_berlin() {
    let starts = dst_starts(
        "0 * * * *",
        "Europe/Berlin",
        "2026-10-24T22:30:00Z", // 00:30 CEST
        "2026-10-25T03:00:00Z", // 04:00 CET
    );
    // 01:00, 02:00 CEST, 02:00, 03:00, 04:00 CET: one an hour by real time
    let expected: Vec<_> = [
        "2026-10-24T23:00:00Z",
        "2026-10-25T00:00:00Z",
        "2026-10-25T01:00:00Z",
        "2026-10-25T02:00:00Z",
        "2026-10-25T03:00:00Z",
    ]
    .map(t)
    .to_vec();
    assert_eq!(starts, expected);
}

#[test]
fn dst_fixed_hour_runs_once_in_the_repeated_hour_and_right_after_a_skipped_one() {
    // Melbourne fall-back: 02:30 happens twice on 2026-04-05; once, at the first (AEDT)
    let starts = dst_starts(
        "30 2 * * *",
        "Australia/Melbourne",
        "2026-04-03T12:00:00Z",
        "2026-04-06T12:00:00Z",
    );
    let expected: Vec<_> = [
        "2026-04-03T15:30:00Z", // Sat 02:30 AEDT
        "2026-04-04T15:30:00Z", // Sun 02:30 AEDT, the first of two
        "2026-04-05T16:30:00Z", // Mon 02:30 AEST
    ]
    .map(t)
    .to_vec();
    assert_eq!(starts, expected);
    // Melbourne spring-forward: 02:30 does not exist on 2026-10-04: right after the change
    let starts = dst_starts(
        "30 2 * * *",
        "Australia/Melbourne",
        "2026-10-02T12:00:00Z",
        "2026-10-04T17:00:00Z",
    );
    let expected: Vec<_> = [
        "2026-10-02T16:30:00Z", // Sat 02:30 AEST
        "2026-10-03T16:00:00Z", // Sun 03:00 AEDT, the moment of the change
        "2026-10-04T15:30:00Z", // Mon 02:30 AEDT
    ]
    .map(t)
    .to_vec();
    assert_eq!(starts, expected);
}

#[test]
fn dst_at_midnight_santiago() {
    // fall-back at midnight: Saturday 23:00–23:59 twice; a fixed 23:30 job runs once
    let fixed = dst_starts(
        "30 23 * * *",
        "America/Santiago",
        "2026-04-04T12:00:00Z",
        "2026-04-06T12:00:00Z",
    );
    let expected: Vec<_> = [
        "2026-04-05T02:30:00Z", // Sat 23:30 −03, the first of two
        "2026-04-06T03:30:00Z", // Sun 23:30 −04
    ]
    .map(t)
    .to_vec();
    assert_eq!(fixed, expected);
    // an hourly job runs through both 23:00s
    let hourly = dst_starts(
        "0 * * * *",
        "America/Santiago",
        "2026-04-05T00:30:00Z", // Sat 21:30 −03
        "2026-04-05T04:00:00Z", // Sun 00:00 −04
    );
    let expected: Vec<_> = [
        "2026-04-05T01:00:00Z", // 22:00 −03
        "2026-04-05T02:00:00Z", // 23:00 −03
        "2026-04-05T03:00:00Z", // 23:00 −04
        "2026-04-05T04:00:00Z", // Sun 00:00 −04
    ]
    .map(t)
    .to_vec();
    assert_eq!(hourly, expected);
    // spring-forward at midnight: 2026-09-06 00:00 does not exist; @daily runs right after the
    // change, at 01:00 −03
    let daily = dst_starts(
        "@daily",
        "America/Santiago",
        "2026-09-04T12:00:00Z",
        "2026-09-07T12:00:00Z",
    );
    let expected: Vec<_> = [
        "2026-09-05T04:00:00Z", // Sat 00:00 −04
        "2026-09-06T04:00:00Z", // Sun 01:00 −03, right after the skipped midnight
        "2026-09-07T03:00:00Z", // Mon 00:00 −03
    ]
    .map(t)
    .to_vec();
    assert_eq!(daily, expected);
    // and every 30 minutes simply continues by real time across the skipped hour
    let half = dst_starts(
        "*/30 * * * *",
        "America/Santiago",
        "2026-09-06T03:00:00Z", // Sat 23:00 −04
        "2026-09-06T04:30:00Z", // Sun 01:30 −03
    );
    let expected: Vec<_> = [
        "2026-09-06T03:30:00Z", // 23:30 −04
        "2026-09-06T04:00:00Z", // 01:00 −03
        "2026-09-06T04:30:00Z", // 01:30 −03
    ]
    .map(t)
    .to_vec();
    assert_eq!(half, expected);
}
