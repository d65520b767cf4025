//! Results and retries: success / retry / failure with output, exponential and linear backoff
//! through the core, max attempts, time limits with cancellation and grace, panics as failures.

mod common;

use backwork_scheduler::{
    Backoff, JobRequest, JobState, RunOutcome, RunResult, StopReason, WaitReason,
};
use chrono::TimeDelta;
use common::*;
use serde_json::json;

#[test]
fn outcomes_are_recorded_with_their_output() {
    let mut h = Harness::new();
    let ok = h.enqueue(JobRequest::once(KIND));
    h.finish(ok, RunOutcome::Success(Some(json!({ "rows": 3 }))));
    let job = h.job(ok);
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.output, Some(json!({ "rows": 3 })));
    assert_eq!(job.history[0].result, RunResult::Success);

    let bad = h.enqueue(JobRequest::once(KIND));
    h.finish(bad, RunOutcome::Failure(Some(json!("disk full"))));
    let job = h.job(bad);
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.output, Some(json!("disk full")));
    assert_eq!(job.finished_at, Some(h.now));
}

#[test]
fn retries_back_off_exponentially_through_the_core() {
    let mut h = Harness::new();
    let e = h.now;
    let id = h.enqueue(JobRequest::once(KIND));
    let mut expected = vec![e];
    let mut at = e;
    for (n, delay) in [
        30i64, 60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 18000, 18000,
    ]
    .into_iter()
    .enumerate()
    {
        h.finish(id, RunOutcome::Retry(None));
        assert_eq!(
            h.core.why(h.now, id).unwrap(),
            [WaitReason::Backoff {
                until: at + TimeDelta::seconds(delay),
                attempt: n as u32 + 1,
                stopped_by: None,
            }]
        );
        at += TimeDelta::seconds(delay);
        expected.push(at);
        h.advance_to(at);
    }
    assert_eq!(h.starts(id), expected);
}

#[test]
fn linear_backoff_through_the_core() {
    let mut h = Harness::new();
    let id = h.enqueue(JobRequest::once(KIND).backoff(Backoff::linear(mins(1))));
    let e = h.now;
    h.finish(id, RunOutcome::Retry(None));
    h.advance(mins(1));
    h.finish(id, RunOutcome::Retry(None));
    h.advance(mins(2));
    h.finish(id, RunOutcome::Retry(None));
    h.advance(mins(3));
    assert_eq!(
        h.starts(id),
        [
            e,
            e + TimeDelta::minutes(1),
            e + TimeDelta::minutes(3),
            e + TimeDelta::minutes(6)
        ]
    );
}

#[test]
fn max_attempts_fails_the_job() {
    let mut h = Harness::new().auto(|_, _| Some(RunOutcome::Retry(None)));
    let id = h.enqueue(JobRequest::once(KIND).max_attempts(3));
    h.advance(hours(1));
    let job = h.job(id);
    assert_eq!(h.starts(id).len(), 3);
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.attempt, 3);
    // the last run ended the job: its record says failure, not "retry" (issue 12 review: a
    // failed job listed with RESULT `retry` promised a retry that never came)
    let last = job.history.last().unwrap();
    assert_eq!(last.result, RunResult::Failure);
    assert!(
        last.note
            .as_deref()
            .unwrap()
            .contains("3 attempts are used up"),
        "{last:?}"
    );
    assert_eq!(
        job.history[0].result,
        RunResult::Retry,
        "earlier runs were retried"
    );
}

#[test]
fn a_panic_is_a_failure() {
    let mut h = Harness::new();
    let id = h.enqueue(JobRequest::once(KIND));
    h.finish(id, RunOutcome::Panicked("index out of bounds".into()));
    let job = h.job(id);
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.history[0].result, RunResult::Failure);
    assert!(
        job.history[0]
            .note
            .as_deref()
            .unwrap()
            .contains("index out of bounds")
    );
}

#[test]
fn time_limit_stops_then_aborts_counts_an_attempt_and_backs_off() {
    let mut h = Harness::new();
    let e = h.now;
    let id = h.enqueue(JobRequest::once(KIND)); // default limit: 10 minutes
    h.advance(mins(10) - secs(1));
    assert!(h.stops(id).is_empty());
    h.advance(secs(1));
    assert_eq!(h.stops(id), ["time limit exceeded"]);
    h.advance(secs(5));
    assert_eq!(h.aborts(id), 1);
    h.finish(id, RunOutcome::Aborted);
    let job = h.job(id);
    assert_eq!(job.state, JobState::Enqueued);
    assert_eq!(job.attempt, 1, "a timed-out run is charged");
    assert_eq!(job.stop_reason, Some(StopReason::Timeout));
    assert_eq!(job.not_before, e + TimeDelta::seconds(605 + 30));
    assert_eq!(job.history[0].result, RunResult::Stopped);
    // `why` names the timeout, not a plain failure
    assert_eq!(
        h.core.why(h.now, id).unwrap(),
        [WaitReason::Backoff {
            until: e + TimeDelta::seconds(605 + 30),
            attempt: 1,
            stopped_by: Some(StopReason::Timeout),
        }]
    );
}

#[test]
fn a_run_that_stops_within_grace_is_not_aborted_and_no_limit_means_none() {
    let mut h = Harness::new();
    let id = h.enqueue(JobRequest::once(KIND).timeout(Some(mins(1))));
    h.advance(mins(1));
    assert_eq!(h.stops(id).len(), 1);
    h.finish(id, RunOutcome::Retry(None));
    h.advance(secs(10));
    assert_eq!(h.aborts(id), 0);

    let forever = h.enqueue(JobRequest::once(KIND).timeout(None));
    h.advance(hours(20));
    assert!(h.stops(forever).is_empty());
    assert_eq!(h.job(forever).state, JobState::Running);
}

/// 500 jobs that fail together with a backoff jitter of 0.5 retry spread over 30 s ± 50 %, not
/// in the same half-second (DESIGN §2: "Optional jitter (± fraction)").
#[test]
fn backoff_jitter_spreads_retries_of_jobs_that_fail_together() {
    let spec = backwork_scheduler::core::JobOptions {
        backoff_jitter: Some(0.5),
        ..Default::default()
    };
    let mut h = Harness::new().auto(|_, attempt| {
        Some(if attempt == 1 {
            backwork_scheduler::RunOutcome::Retry(None)
        } else {
            backwork_scheduler::RunOutcome::Success(None)
        })
    });
    let t0 = h.now;
    let ids: Vec<_> = (0..500)
        .map(|_| h.enqueue(spec.request(KIND, &options_context(h.now)).unwrap()))
        .collect();
    h.advance(mins(1));
    let mut retries: Vec<i64> = ids
        .iter()
        .map(|&id| (h.starts(id)[1] - t0).num_milliseconds())
        .collect();
    retries.sort_unstable();
    assert!(
        retries[0] >= 15_000 && retries[499] <= 45_000,
        "{retries:?}"
    );
    let busiest_half_second = retries
        .iter()
        .map(|&r| retries.iter().filter(|&&o| o >= r && o < r + 500).count())
        .max()
        .unwrap();
    assert!(
        busiest_half_second < 25,
        "{busiest_half_second} retries in one half-second"
    );
}

/// DESIGN §2: "A base below the clamp is raised with a warning, and the record shows the value
/// in force." (The first review found `linear:5s` stored as 5 s with no warning.)
#[test]
fn a_backoff_base_outside_the_clamp_is_changed_with_a_warning() {
    let mut h = Harness::new();
    let reply = h
        .try_enqueue(JobRequest::once(KIND).backoff(backwork_scheduler::Backoff::linear(secs(5))))
        .unwrap();
    let backwork_scheduler::Reply::Enqueued { id, warnings, .. } = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(h.job(id).request.backoff.base, secs(10));
    assert!(
        warnings.iter().any(|w| w.contains("raised to 10s")),
        "{warnings:?}"
    );
    // a backoff jitter that is not a fraction is refused before it reaches the wire
    for bad in [f64::NAN, f64::INFINITY, 1.0, -0.1] {
        let spec = backwork_scheduler::core::JobOptions {
            backoff_jitter: Some(bad),
            ..Default::default()
        };
        let err = spec.request(KIND, &options_context(h.now)).unwrap_err();
        assert_eq!(err.option(), Some("backoff_jitter"), "{err}");
    }
}

fn options_context(now: backwork_scheduler::Time) -> backwork_scheduler::core::OptionContext {
    backwork_scheduler::core::OptionContext {
        zone: chrono_tz::Tz::UTC,
        now,
    }
}
