//! Jitter (DESIGN §6, systemd's `RandomizedDelaySec`): decided once per slot and stored with it,
//! so `why` and `list` show the delayed start, a restart between a slot and its delayed start
//! keeps the run (it was lost for `catch_up = skip`), and catch-up runs after downtime are
//! spread by their jitter instead of all starting at the same instant.

mod common;

use backwork_scheduler::{AllowAll, CatchUp, Config, Event, Job, JobId, JobRequest, WaitReason};
use chrono::TimeDelta;
use chrono_tz::Tz;
use common::*;

fn offset(h: &Harness, id: JobId, cycle: u64) -> TimeDelta {
    let j = h.job(id).request.jitter.expect("has jitter");
    TimeDelta::from_std(backwork_scheduler::jitter_offset(id, j, cycle)).unwrap()
}

/// The records of `h` loaded into a fresh core at `at` (a restart).
fn restart(h: &Harness, at: backwork_scheduler::Time) -> Harness {
    let stored: Vec<Job> = h.core.jobs().collect();
    let mut fresh = Harness::with(Config::default(), Box::new(AllowAll)).auto_succeed();
    fresh.jump_to(at);
    fresh.handle(Event::Load(stored)).unwrap();
    fresh
}

#[test]
fn why_and_next_show_the_jittered_start() {
    // `backwork add --in 1s --jitter 1h`; two seconds later `why` said "nothing holds it back"
    let mut h = Harness::new().auto_succeed();
    let t0 = h.now;
    let id = h.enqueue(JobRequest::once(KIND).delay(secs(1)).jitter(hours(1)));
    let start = t0 + TimeDelta::seconds(1) + offset(&h, id, 0);
    assert!(
        start > t0 + TimeDelta::seconds(2),
        "this id's draw is later than 2 s"
    );
    assert_eq!(h.job(id).not_before, start, "stored with the slot");
    let later = t0 + TimeDelta::seconds(2);
    assert_eq!(
        h.core.why(later, id).unwrap(),
        [WaitReason::NotDue { until: start }]
    );
    h.advance(hours(2));
    assert_eq!(h.starts(id), [start]);
}

#[test]
fn a_restart_between_the_slot_and_its_jittered_start_keeps_the_run() {
    for catch_up in [CatchUp::Skip, CatchUp::One] {
        let mut h = Harness::new().auto_succeed();
        let t0 = h.now; // 00:00
        let id = h.enqueue(
            JobRequest::cron(KIND, "0 * * * *", Tz::UTC)
                .jitter(mins(30))
                .catch_up(catch_up),
        );
        let slot = t0 + TimeDelta::hours(1);
        let start = slot + offset(&h, id, 0);
        assert!(
            start > slot + TimeDelta::minutes(3),
            "this id's draw is late enough"
        );
        // the process stops a second after the slot and is back two minutes later (past the
        // batching slack of the slot itself), before the delayed start
        h.advance_to(slot + TimeDelta::seconds(1));
        assert!(h.starts(id).is_empty());
        let mut fresh = restart(&h, slot + TimeDelta::minutes(2));
        fresh.advance_to(slot + TimeDelta::minutes(59));
        assert_eq!(
            fresh.starts(id),
            [start],
            "{catch_up:?}: the slot still runs, at its start"
        );
    }
}

#[test]
fn a_jittered_slot_missed_by_downtime_follows_its_catch_up_policy() {
    let mut h = Harness::new().auto_succeed();
    let t0 = h.now;
    let skip = h.enqueue(
        JobRequest::cron(KIND, "0 * * * *", Tz::UTC)
            .jitter(mins(10))
            .catch_up(CatchUp::Skip),
    );
    // down from 00:30 to 03:30: the 01:00, 02:00 and 03:00 slots are missed
    h.advance_to(t0 + TimeDelta::minutes(30));
    let mut fresh = restart(&h, t0 + TimeDelta::minutes(210));
    fresh.advance_to(t0 + TimeDelta::hours(4) + TimeDelta::minutes(30));
    let starts = fresh.starts(skip);
    assert_eq!(
        starts.len(),
        1,
        "skip: only the 04:00 slot runs: {starts:?}"
    );
    assert!(starts[0] >= t0 + TimeDelta::hours(4) && starts[0] < t0 + TimeDelta::minutes(250));
}

#[test]
fn catch_up_runs_after_downtime_are_spread_by_their_jitter() {
    let mut h = Harness::new().auto_succeed();
    let t0 = h.now;
    // (without jitter, they would all start at the instant the process is back, as systemd's
    // `Persistent=true` timers do)
    let ids: Vec<JobId> = (0..60)
        .map(|_| h.enqueue(JobRequest::periodic(KIND, hours(1)).jitter(mins(10))))
        .collect();
    h.advance(mins(30));
    // down for five hours
    let back = t0 + TimeDelta::hours(5) + TimeDelta::minutes(30);
    let mut fresh = restart(&h, back);
    fresh.advance(mins(15));
    let mut catch_up: Vec<_> = ids
        .iter()
        .map(|&id| {
            let s = fresh.starts(id);
            assert_eq!(s.len(), 1, "one catch-up run each");
            s[0]
        })
        .collect();
    for s in &catch_up {
        assert!(*s >= back && *s < back + TimeDelta::minutes(10), "{s}");
    }
    catch_up.sort();
    catch_up.dedup();
    assert!(
        catch_up.len() > 50,
        "spread, not one instant: {} distinct",
        catch_up.len()
    );
}

/// A restart after a slot boundary keeps a slot whose jittered start is still ahead: hourly,
/// fixed jitter up to 50 min, `catch_up = skip`, down from 01:20 to 02:20 — a job whose start
/// is 02:xx with xx > 20 still runs for the 02:00 slot (DESIGN §6: "a slot whose jittered start
/// is still ahead at boot is not missed"; the first review found it lost).
#[test]
fn a_skip_job_keeps_a_slot_that_began_during_downtime_when_its_start_is_ahead() {
    let mut h = Harness::new().auto_succeed();
    let t0 = h.now;
    let ids: Vec<JobId> = (0..12)
        .map(|_| {
            h.enqueue(
                JobRequest::cron(KIND, "0 * * * *", Tz::UTC)
                    .fixed_jitter(mins(50))
                    .catch_up(CatchUp::Skip),
            )
        })
        .collect();
    let late: Vec<(JobId, TimeDelta)> = ids
        .iter()
        .map(|&id| (id, offset(&h, id, 0)))
        .filter(|(_, o)| *o > TimeDelta::minutes(21))
        .collect();
    assert!(!late.is_empty(), "some draws are later than 21 minutes");
    h.advance_to(t0 + TimeDelta::minutes(80));
    let mut fresh = restart(&h, t0 + TimeDelta::minutes(140));
    fresh.advance_to(t0 + TimeDelta::minutes(179));
    for (id, o) in late {
        assert_eq!(
            fresh.starts(id),
            [t0 + TimeDelta::hours(2) + o],
            "the 02:00 slot runs at its jittered start"
        );
    }
}

/// Jitter exists to spread work; batching gathers it. A jittered start is not batched (on the
/// desktop profile too), so 20 jobs that fail together with a backoff jitter of 0.5 retry
/// spread over 15–45 s, not together at the latest of them (the first review's finding).
#[test]
fn batching_does_not_undo_jitter() {
    let mut h = Harness::with(Config::default(), Box::new(AllowAll)).auto(|_, attempt| {
        Some(if attempt == 1 {
            backwork_scheduler::RunOutcome::Retry(None)
        } else {
            backwork_scheduler::RunOutcome::Success(None)
        })
    });
    let t0 = h.now;
    let spec = backwork_scheduler::core::JobOptions {
        backoff_jitter: Some(0.5),
        ..Default::default()
    };
    let ids: Vec<JobId> = (0..20)
        .map(|_| h.enqueue(spec.request(KIND, &options_context(h.now)).unwrap()))
        .collect();
    h.advance(mins(2));
    let mut retries: Vec<TimeDelta> = ids.iter().map(|&id| h.starts(id)[1] - t0).collect();
    retries.sort();
    retries.dedup();
    assert!(retries.len() >= 18, "spread: {retries:?}");
    assert!(
        retries[0] >= TimeDelta::seconds(15) && *retries.last().unwrap() <= TimeDelta::seconds(45)
    );
    // and a job's own jitter is kept the same way
    let mut h = Harness::with(Config::default(), Box::new(AllowAll)).auto_succeed();
    let t0 = h.now;
    let ids: Vec<JobId> = (0..20)
        .map(|_| h.enqueue(JobRequest::once(KIND).delay(mins(1)).jitter(secs(55))))
        .collect();
    h.advance(mins(5));
    for &id in &ids {
        assert_eq!(
            h.starts(id),
            [t0 + TimeDelta::minutes(1) + offset(&h, id, 0)],
            "each at its own jittered start"
        );
    }
}

/// A jitter as long as the time between slots could push a run past its next slot (the first
/// review saw 19 runs a day for `every 1h` with a 2 h jitter): refused with a sentence.
#[test]
fn a_jitter_as_long_as_the_period_is_refused() {
    let mut h = Harness::new();
    for request in [
        JobRequest::periodic(KIND, hours(1)).jitter(hours(2)),
        JobRequest::periodic(KIND, hours(1)).jitter(hours(1)),
        JobRequest::cron(KIND, "0 * * * *", Tz::UTC).jitter(hours(2)),
    ] {
        let err = h.try_enqueue(request).unwrap_err().to_string();
        assert!(err.contains("between slots"), "{err}");
    }
    assert_eq!(h.core.jobs().count(), 0);
    h.enqueue(JobRequest::periodic(KIND, hours(1)).jitter(mins(59)));
}

fn options_context(now: backwork_scheduler::Time) -> backwork_scheduler::core::OptionContext {
    backwork_scheduler::core::OptionContext {
        zone: chrono_tz::Tz::UTC,
        now,
    }
}
