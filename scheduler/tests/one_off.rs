//! One-off jobs: they run once, as soon as allowed, never before their delay or instant; bad
//! requests are refused with a clear error and change nothing; unregistered kinds wait.

mod common;

use backwork_scheduler::{
    Config, CoreError, Event, JobRequest, JobState, Reply, RunOutcome, WaitReason,
};
use common::*;
use serde_json::json;

#[test]
fn one_off_runs_at_once_and_only_once() {
    let mut h = Harness::new().auto_succeed();
    let id = h.enqueue(JobRequest::once(KIND));
    assert_eq!(h.starts(id), [h.now]);
    h.advance(hours(20));
    assert_eq!(h.starts(id).len(), 1);
    assert_eq!(h.job(id).state, JobState::Succeeded);
}

#[test]
fn one_off_waits_for_its_delay() {
    let mut h = Harness::new().auto_succeed();
    let start = h.now;
    let id = h.enqueue(JobRequest::once(KIND).delay(mins(10)));
    assert!(h.starts(id).is_empty());
    assert_eq!(
        h.core.poll_timeout(),
        Some(start + chrono::TimeDelta::minutes(10))
    );
    h.advance(mins(9));
    assert!(h.starts(id).is_empty());
    assert_eq!(
        h.core.why(h.now, id).unwrap(),
        [WaitReason::NotDue {
            until: start + chrono::TimeDelta::minutes(10)
        }]
    );
    h.advance(mins(1));
    assert_eq!(h.starts(id), [start + chrono::TimeDelta::minutes(10)]);
}

#[test]
fn one_off_waits_for_its_instant() {
    let mut h = Harness::new().auto_succeed();
    let at = t("2026-01-01T03:00:00Z");
    let id = h.enqueue(JobRequest::once(KIND).not_before(at));
    h.advance(hours(5));
    assert_eq!(h.starts(id), [at]);
    // an instant in the past means "now"
    let past = h.enqueue(JobRequest::once(KIND).not_before(t("2020-01-01T00:00:00Z")));
    assert_eq!(h.starts(past), [h.now]);
}

#[test]
fn unregistered_kind_stays_queued_without_an_attempt() {
    let mut h = Harness::new().auto_succeed();
    let id = h.enqueue(JobRequest::once("unknown-kind"));
    h.advance(hours(24));
    let job = h.job(id);
    assert_eq!(job.state, JobState::Enqueued);
    assert_eq!(job.attempt, 0);
    assert!(h.starts(id).is_empty());
    assert_eq!(
        h.core.why(h.now, id).unwrap(),
        [WaitReason::NoWorker {
            kind: "unknown-kind".into()
        }]
    );
    assert_eq!(
        h.core.why(h.now, id).unwrap()[0].to_string(),
        "no worker registered for kind unknown-kind"
    );
    // registering the worker later starts it at once
    h.handle(Event::WorkerRegistered("unknown-kind".into()))
        .unwrap();
    assert_eq!(h.starts(id), [h.now]);
}

#[test]
fn oversized_payload_is_refused_and_nothing_is_stored() {
    let mut h = Harness::new();
    let big = "x".repeat(11 * 1024);
    let err = h
        .try_enqueue(JobRequest::once(KIND).input(json!({ "blob": big })))
        .unwrap_err();
    assert!(
        matches!(err, CoreError::PayloadTooLarge { cap: 10240, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("over the cap of 10240 bytes"));
    assert_eq!(h.core.jobs().count(), 0);
    assert!(
        h.core.poll_action().is_none(),
        "a refused request persists nothing"
    );
    // just under the cap is fine, and the cap is configurable
    let ok = "y".repeat(10 * 1024 - 20);
    h.enqueue(JobRequest::once(KIND).input(json!({ "blob": ok })));
    let mut small = Harness::with(
        Config {
            payload_cap: 16,
            ..Config::default()
        },
        Box::new(backwork_scheduler::AllowAll),
    );
    assert!(
        small
            .try_enqueue(JobRequest::once(KIND).input(json!("seventeen chars!")))
            .is_err()
    );
}

#[test]
fn oversized_output_is_dropped_with_a_note() {
    let mut h = Harness::new();
    let id = h.enqueue(JobRequest::once(KIND));
    h.finish(id, RunOutcome::Success(Some(json!("z".repeat(20 * 1024)))));
    let job = h.job(id);
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.output, None);
    let note = job.history[0].note.clone().unwrap();
    assert!(note.contains("over the cap"), "{note}");
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let mut h = Harness::new();
    let cases: Vec<(JobRequest, &str)> = vec![
        (JobRequest::once(""), "worker kind is empty"),
        (
            JobRequest::periodic(KIND, std::time::Duration::ZERO),
            "shorter than the minimum",
        ),
        (
            JobRequest::periodic(KIND, std::time::Duration::from_millis(500)),
            "shorter than the minimum",
        ),
        (
            JobRequest::periodic(KIND, hours(1)).flex(hours(2)),
            "longer than the interval",
        ),
        (
            JobRequest::periodic(KIND, std::time::Duration::from_secs(u64::MAX)),
            "longer than 100 years",
        ),
        (
            JobRequest::once(KIND).delay(std::time::Duration::from_secs(u64::MAX)),
            "longer than 100 years",
        ),
        (
            JobRequest::cron(KIND, "not cron", chrono_tz::Tz::UTC),
            "not a valid cron expression",
        ),
        (
            JobRequest::cron(KIND, "0 3 * *", chrono_tz::Tz::UTC),
            "has 4 fields",
        ),
        (
            // cron(5): day of week is 0–7
            JobRequest::cron(KIND, "0 3 * * 8", chrono_tz::Tz::UTC),
            "not a valid cron expression",
        ),
        (
            // February 30th never comes
            JobRequest::cron(KIND, "0 0 30 2 *", chrono_tz::Tz::UTC),
            "never fires",
        ),
        (
            JobRequest::cron(KIND, "0 0 0 1 1 * 2001", chrono_tz::Tz::UTC),
            "never fires",
        ),
        (JobRequest::once(KIND).max_attempts(0), "at least 1"),
        (
            JobRequest::once(KIND).jitter(std::time::Duration::ZERO),
            "jitter must be longer than zero",
        ),
        (
            JobRequest::once(KIND).jitter(std::time::Duration::from_secs(u64::MAX)),
            "jitter of",
        ),
        (
            JobRequest::once(KIND).timeout(Some(std::time::Duration::ZERO)),
            "longer than zero",
        ),
        (
            JobRequest::once(KIND).backoff(backwork_scheduler::Backoff::default().with_jitter(1.5)),
            "jitter",
        ),
        (
            JobRequest::once(KIND).unique("  ", backwork_scheduler::ConflictPolicy::Keep),
            "unique name is empty",
        ),
    ];
    for (req, needle) in cases {
        let err = h.try_enqueue(req).unwrap_err();
        assert!(
            err.to_string().contains(needle),
            "`{err}` should mention `{needle}`"
        );
        assert_eq!(h.core.jobs().count(), 0);
        assert!(h.core.poll_action().is_none());
    }
}

#[test]
fn ids_are_time_ordered_uuid_v7() {
    let mut h = Harness::new();
    let a = h.enqueue(JobRequest::once("x"));
    h.advance(secs(1));
    let b = h.enqueue(JobRequest::once("x"));
    assert!(a < b);
    assert_eq!(a.0.get_version_num(), 7);
    let listed: Vec<_> = h.core.jobs().map(|j| j.id).collect();
    assert_eq!(listed, [a, b]);
    assert!(matches!(
        h.handle(Event::Enqueue {
            id: a,
            request: JobRequest::once("x")
        }),
        Err(CoreError::DuplicateId(_))
    ));
    let _ = Reply::Done;
}
