//! Missed slots after downtime (process down, machine off, suspended): `catch_up = one` runs once
//! as soon as possible; `skip` waits for the next slot.

mod common;

use backwork_scheduler::{AllowAll, CatchUp, Config, Event, Job, JobRequest, JobState};
use chrono::TimeDelta;
use chrono_tz::Tz;
use common::*;

/// Runs `request` until its first success, then "stops the process" for `down` and loads the
/// stored records into a fresh core.
fn restart_after(request: JobRequest, down: std::time::Duration) -> (Harness, Job) {
    let mut h = Harness::new().auto_succeed();
    let id = h.enqueue(request);
    h.advance(mins(1));
    let stored: Vec<Job> = h.core.jobs().collect();
    let later = backwork_scheduler::core::add(h.now, down);
    let mut fresh = Harness::with(Config::default(), Box::new(AllowAll)).auto_succeed();
    fresh.jump_to(later);
    fresh.handle(Event::Load(stored)).unwrap();
    let job = fresh.job(id);
    (fresh, job)
}

#[test]
fn periodic_catch_up_one_runs_once_after_downtime() {
    let (h, job) = restart_after(JobRequest::periodic(KIND, hours(1)), hours(10));
    // one run at restart, not ten
    assert_eq!(h.starts(job.id), [h.now]);
    assert_eq!(h.job(job.id).not_before, t("2026-01-01T11:00:00Z"));
}

#[test]
fn periodic_catch_up_skip_waits_for_the_next_slot() {
    let (h, job) = restart_after(
        JobRequest::periodic(KIND, hours(1))
            .flex(mins(10))
            .catch_up(CatchUp::Skip),
        hours(10) + mins(20),
    );
    assert!(h.starts(job.id).is_empty());
    let job = h.job(job.id);
    assert_eq!(job.state, JobState::Enqueued);
    // now is 10:21; the window of the period ending 11:00 opens at 10:50
    assert_eq!(job.not_before, t("2026-01-01T10:50:00Z"));
}

#[test]
fn cron_catch_up_one_and_skip() {
    let daily = || JobRequest::cron(KIND, "0 0 3 * * *", Tz::UTC);
    let (h, job) = restart_after(daily(), hours(72));
    assert_eq!(h.starts(job.id), [h.now], "one catch-up run, not three");
    let (h, job) = restart_after(daily().catch_up(CatchUp::Skip), hours(72));
    assert!(h.starts(job.id).is_empty());
    assert_eq!(h.job(job.id).not_before, t("2026-01-04T03:00:00Z"));
}

#[test]
fn suspend_detected_as_a_clock_jump_applies_catch_up() {
    let mut h = Harness::new().auto_succeed();
    let skip = h.enqueue(
        JobRequest::periodic(KIND, hours(1))
            .flex(mins(5))
            .catch_up(CatchUp::Skip),
    );
    let one = h.enqueue(JobRequest::periodic(KIND, hours(1)).flex(mins(5)));
    // the machine sleeps for 5 hours; on resume the runtime reports a clock jump
    h.jump_to(h.now + TimeDelta::hours(5) + TimeDelta::minutes(10));
    h.handle(Event::ClockJumped).unwrap();
    assert_eq!(h.starts(one), [h.now]);
    assert!(h.starts(skip).is_empty());
    assert_eq!(h.job(skip).not_before, t("2026-01-01T05:55:00Z"));
}

#[test]
fn clock_jumping_backwards_is_harmless() {
    let mut h = Harness::new().auto_succeed();
    let id = h.enqueue(JobRequest::periodic(KIND, hours(1)));
    h.advance(hours(3));
    assert_eq!(h.starts(id).len(), 4);
    h.jump_to(t("2025-12-31T00:00:00Z"));
    h.handle(Event::ClockJumped).unwrap();
    h.handle(Event::Timeout).unwrap();
    assert_eq!(h.starts(id).len(), 4, "no run for a time that already ran");
    assert!(h.core.poll_timeout().is_some());
}
