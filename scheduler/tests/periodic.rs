//! Periodic jobs: one run per period inside the flex window, anchored to the first enqueue (no
//! drift) or after each run (WorkManager's drift); no burst after missed periods; failures move
//! to the next period with the attempt count reset.

mod common;

use backwork_scheduler::{Anchor, JobRequest, JobState, RunOutcome, WaitReason};
use chrono::TimeDelta;
use common::*;

#[test]
fn runs_once_per_period_inside_the_flex_window_for_hundreds_of_periods() {
    let mut h = Harness::new().auto_succeed();
    let e = h.now;
    let id = h.enqueue(JobRequest::periodic(KIND, mins(15)).flex(mins(5)));
    h.advance(hours(100)); // 400 periods
    let starts = h.starts(id);
    assert_eq!(starts.len(), 400);
    for (k, s) in starts.iter().enumerate() {
        let end = e + TimeDelta::minutes(15 * (k as i64 + 1));
        let open = end - TimeDelta::minutes(5);
        assert!(
            *s >= open && *s <= end,
            "run {k} at {s} outside [{open}, {end}]"
        );
        // a punctual driver starts each run exactly when its window opens: no drift
        assert_eq!(*s, open);
    }
}

#[test]
fn without_flex_it_runs_at_enqueue_then_at_each_period() {
    let mut h = Harness::new().auto_succeed();
    let e = h.now;
    let id = h.enqueue(JobRequest::periodic(KIND, hours(6)));
    h.advance(hours(24));
    let expect: Vec<_> = (0..=4).map(|k| e + TimeDelta::hours(6 * k)).collect();
    assert_eq!(h.starts(id), expect);
}

#[test]
fn late_runs_do_not_shift_the_grid() {
    // runs take 7 minutes and start late; the grid stays anchored to the enqueue time
    let mut h = Harness::new();
    let e = h.now;
    let id = h.enqueue(JobRequest::periodic(KIND, hours(1)));
    for k in 0..50 {
        assert_eq!(h.starts(id).len(), k + 1);
        h.advance(mins(7));
        h.finish(id, RunOutcome::Success(None));
        h.advance_to(e + TimeDelta::hours(k as i64 + 1));
    }
    let starts = h.starts(id);
    assert_eq!(starts[49], e + TimeDelta::hours(49));
}

#[test]
fn after_run_anchor_drifts_like_workmanager() {
    let mut h = Harness::new();
    let e = h.now;
    let id = h.enqueue(
        JobRequest::periodic(KIND, mins(15))
            .flex(mins(5))
            .anchor(Anchor::AfterRun),
    );
    // first period: the flex window at its end, as WorkManager places it
    h.advance(mins(10));
    assert_eq!(h.starts(id), [e + TimeDelta::minutes(10)]);
    for _ in 0..20 {
        h.advance(secs(30)); // each run takes 30 s
        h.finish(id, RunOutcome::Success(None));
        h.advance(mins(15));
    }
    let starts = h.starts(id);
    assert_eq!(starts.len(), 21);
    for pair in starts.windows(2) {
        // WorkSpec.calculateNextRunTime (androidx.work): after the first run the flex no longer
        // applies; the next run is due `interval` after the previous one *finished*
        assert_eq!(pair[1] - pair[0], TimeDelta::seconds(930));
    }
}

#[test]
fn missed_periods_run_once_not_in_a_burst() {
    let mut h = Harness::new().auto_succeed();
    let e = h.now;
    let id = h.enqueue(JobRequest::periodic(KIND, hours(1)));
    assert_eq!(h.starts(id).len(), 1);
    // no network for 5 hours: periods 1..5 pass without a run
    h.set_device(|d| d.network = backwork_scheduler::Network::None);
    let id2 = h.enqueue(JobRequest::periodic(KIND, hours(1)).requires(
        backwork_scheduler::Constraint::Network(backwork_scheduler::NetworkRequirement::Connected),
    ));
    h.advance(mins(5 * 60 + 30));
    assert_eq!(h.starts(id2).len(), 0);
    h.set_device(|d| d.network = backwork_scheduler::Network::Unmetered);
    // one catch-up run now, then the next grid period — not five
    assert_eq!(h.starts(id2), [e + TimeDelta::minutes(330)]);
    h.advance(mins(29));
    assert_eq!(h.starts(id2).len(), 1);
    h.advance(mins(1));
    assert_eq!(h.starts(id2).len(), 2);
    assert_eq!(h.starts(id2)[1], e + TimeDelta::hours(6));
}

#[test]
fn failure_moves_to_the_next_period_and_resets_the_attempt() {
    let mut h = Harness::new();
    let e = h.now;
    let id = h.enqueue(JobRequest::periodic(KIND, hours(1)));
    h.finish(
        id,
        RunOutcome::Failure(Some(serde_json::json!("server said no"))),
    );
    let job = h.job(id);
    assert_eq!(job.state, JobState::Enqueued);
    assert_eq!(job.attempt, 0);
    assert_eq!(job.not_before, e + TimeDelta::hours(1));
    assert_eq!(job.output, Some(serde_json::json!("server said no")));
    assert_eq!(
        h.core.why(h.now, id).unwrap(),
        [WaitReason::NotDue {
            until: e + TimeDelta::hours(1)
        }]
    );
}

#[test]
fn retry_within_a_period_backs_off_and_counts_attempts() {
    let mut h = Harness::new();
    let e = h.now;
    let id = h.enqueue(JobRequest::periodic(KIND, hours(6)));
    h.finish(id, RunOutcome::Retry(None));
    assert_eq!(h.job(id).attempt, 1);
    h.advance(secs(30));
    assert_eq!(h.starts(id), [e, e + TimeDelta::seconds(30)]);
    h.finish(id, RunOutcome::Retry(None));
    h.advance(secs(60));
    assert_eq!(h.starts(id).len(), 3);
    assert_eq!(h.running[&id], 3);
    h.finish(id, RunOutcome::Success(None));
    let job = h.job(id);
    assert_eq!(job.attempt, 0, "a new period starts with a fresh count");
    assert_eq!(job.cycle, 1);
    assert_eq!(job.not_before, e + TimeDelta::hours(6));
}

#[test]
fn each_period_gets_its_own_idempotency_keys() {
    let mut h = Harness::new();
    let id = h.enqueue(JobRequest::periodic(KIND, hours(1)));
    h.finish(id, RunOutcome::Retry(None));
    h.advance(secs(30));
    h.finish(id, RunOutcome::Success(None));
    h.advance(hours(1));
    let keys: Vec<String> = h
        .log
        .iter()
        .filter_map(|(_, a)| match a {
            backwork_scheduler::Action::Start(s) => Some(s.idempotency_key()),
            _ => None,
        })
        .collect();
    assert_eq!(
        keys,
        [
            format!("{id}-0-1"),
            format!("{id}-0-2"),
            format!("{id}-1-1")
        ]
    );
}

#[test]
fn short_intervals_are_raised_with_a_warning_when_configured_like_workmanager() {
    let android_like = backwork_scheduler::Config {
        min_period: mins(15),
        min_flex: mins(5),
        raise_short_periods: true,
        ..backwork_scheduler::Config::default()
    };
    let mut h = Harness::with(android_like, Box::new(backwork_scheduler::AllowAll));
    let reply = h
        .try_enqueue(JobRequest::periodic(KIND, mins(5)).flex(mins(1)))
        .unwrap();
    let backwork_scheduler::Reply::Enqueued { id, warnings, .. } = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(
        warnings,
        [
            "the interval 5m was raised to the minimum of 15m",
            "the flex window 1m was raised to the minimum of 5m"
        ]
    );
    let job = h.job(id);
    assert_eq!(
        job.request.schedule,
        backwork_scheduler::Schedule::Periodic {
            every: mins(15),
            flex: Some(mins(5)),
            anchor: Some(Anchor::Grid),
            initial_delay: std::time::Duration::ZERO,
        }
    );
    // first run in the flex window at the end of the first period: 10 min after enqueue
    assert_eq!(job.not_before, h.now + TimeDelta::minutes(10));
    // the desktop default refuses instead of guessing
    let mut desktop = Harness::new();
    let err = desktop
        .try_enqueue(JobRequest::periodic(
            KIND,
            std::time::Duration::from_millis(10),
        ))
        .unwrap_err();
    assert!(
        err.to_string().contains("shorter than the minimum of 1s"),
        "{err}"
    );
}
