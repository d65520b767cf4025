//! Unique names: every conflict policy, enforced in the same step as the insert.

mod common;

use backwork_scheduler::{
    ConflictPolicy, CoreError, Disposition, JobRequest, JobState, Reply, RunOutcome, StopReason,
};
use chrono::TimeDelta;
use common::*;

fn enqueue_named(h: &mut Harness, req: JobRequest) -> (backwork_scheduler::JobId, Disposition) {
    match h.try_enqueue(req).unwrap() {
        Reply::Enqueued {
            id, disposition, ..
        } => (id, disposition),
        other => panic!("{other:?}"),
    }
}

fn unfinished_named(h: &Harness, name: &str) -> usize {
    h.core
        .jobs()
        .filter(|j| j.unique_name() == Some(name) && !j.state.is_finished())
        .count()
}

#[test]
fn keep_keeps_the_existing_job() {
    let mut h = Harness::new();
    let (a, d) = enqueue_named(
        &mut h,
        JobRequest::once("other").unique("n", ConflictPolicy::Keep),
    );
    assert_eq!(d, Disposition::Inserted);
    let (b, d) = enqueue_named(
        &mut h,
        JobRequest::once("other").unique("n", ConflictPolicy::Keep),
    );
    assert_eq!((b, d), (a, Disposition::Kept));
    assert_eq!(h.core.jobs().count(), 1);
    // once the existing one finished, a new one is inserted
    h.handle(backwork_scheduler::Event::Cancel(
        backwork_scheduler::Selector::Id(a),
    ))
    .unwrap();
    let (c, d) = enqueue_named(
        &mut h,
        JobRequest::once("other").unique("n", ConflictPolicy::Keep),
    );
    assert_ne!(c, a);
    assert_eq!(d, Disposition::Inserted);
}

#[test]
fn replace_cancels_the_existing_job_including_a_running_one() {
    let mut h = Harness::new();
    let (a, _) = enqueue_named(
        &mut h,
        JobRequest::once(KIND).unique("n", ConflictPolicy::Replace),
    );
    assert!(h.running.contains_key(&a));
    let (b, d) = enqueue_named(
        &mut h,
        JobRequest::once(KIND).unique("n", ConflictPolicy::Replace),
    );
    assert_eq!(d, Disposition::Replaced);
    assert_eq!(h.job(a).state, JobState::Cancelled);
    assert_eq!(h.stops(a), ["cancelled"]);
    assert_eq!(unfinished_named(&h, "n"), 1);
    // the cancelled run's report arrives later and changes nothing
    h.finish(a, RunOutcome::Success(None));
    assert_eq!(h.job(a).state, JobState::Cancelled);
    assert_eq!(h.job(b).state, JobState::Running);
}

#[test]
fn update_keeps_id_and_enqueue_time() {
    let mut h = Harness::new();
    let e = h.now;
    let (a, _) = enqueue_named(
        &mut h,
        JobRequest::once(KIND)
            .delay(hours(6))
            .unique("n", ConflictPolicy::Update),
    );
    h.advance(hours(3));
    let (b, d) = enqueue_named(
        &mut h,
        JobRequest::once(KIND)
            .delay(hours(6))
            .input(serde_json::json!({ "v": 2 }))
            .unique("n", ConflictPolicy::Update),
    );
    assert_eq!((b, d), (a, Disposition::Updated));
    let job = h.job(a);
    assert_eq!(job.enqueued_at, e);
    assert_eq!(job.request.input, serde_json::json!({ "v": 2 }));
    // enqueued 3 h ago with a 6 h delay: still due in 3 h, not 6
    assert_eq!(job.not_before, e + TimeDelta::hours(6));
    h.advance(hours(3));
    assert_eq!(h.starts(a), [e + TimeDelta::hours(6)]);
}

/// A job waits for a worker in the lane of its request's kind; an update that changes the kind
/// takes it out of that lane first (the lanes find a job by its request's kind): it starts with
/// a worker of the new kind, and a worker of the old kind registered later finds nothing of it.
#[test]
fn update_of_a_job_waiting_for_a_worker_moves_it_to_its_new_kind() {
    let mut h = Harness::new();
    let (a, _) = enqueue_named(
        &mut h,
        JobRequest::once("nobody").unique("n", ConflictPolicy::Update),
    );
    assert!(h.starts(a).is_empty(), "no worker of its kind");
    let (b, d) = enqueue_named(
        &mut h,
        JobRequest::once(KIND).unique("n", ConflictPolicy::Update),
    );
    assert_eq!((b, d), (a, Disposition::Updated));
    assert_eq!(h.starts(a), [h.now], "a worker of the new kind runs it");
    h.handle(backwork_scheduler::Event::WorkerRegistered("nobody".into()))
        .unwrap();
    assert_eq!(
        h.starts(a).len(),
        1,
        "the old kind's lane kept nothing of it"
    );
    assert_eq!(h.job(a).state, JobState::Running);
}

#[test]
fn periodic_update_changes_the_interval_but_keeps_the_anchor() {
    let mut h = Harness::new().auto_succeed();
    let e = h.now;
    let (a, _) = enqueue_named(
        &mut h,
        JobRequest::periodic(KIND, hours(6)).unique("p", ConflictPolicy::Update),
    );
    h.advance(hours(1));
    let (b, _) = enqueue_named(
        &mut h,
        JobRequest::periodic(KIND, hours(2)).unique("p", ConflictPolicy::Update),
    );
    assert_eq!(a, b);
    assert_eq!(h.job(a).not_before, e + TimeDelta::hours(2));
    h.advance(hours(3));
    assert_eq!(
        h.starts(a),
        [e, e + TimeDelta::hours(2), e + TimeDelta::hours(4)]
    );
}

#[test]
fn periodic_keep_and_cancel_and_reenqueue() {
    let mut h = Harness::new();
    let (a, _) = enqueue_named(
        &mut h,
        JobRequest::periodic("x", hours(1)).unique("p", ConflictPolicy::Keep),
    );
    let (b, d) = enqueue_named(
        &mut h,
        JobRequest::periodic("x", hours(1)).unique("p", ConflictPolicy::Keep),
    );
    assert_eq!((a, Disposition::Kept), (b, d));
    let (c, d) = enqueue_named(
        &mut h,
        JobRequest::periodic("x", hours(1)).unique("p", ConflictPolicy::CancelAndReenqueue),
    );
    assert_ne!(c, a);
    assert_eq!(d, Disposition::Replaced);
    assert_eq!(h.job(a).state, JobState::Cancelled);
    assert_eq!(unfinished_named(&h, "p"), 1);
}

#[test]
fn append_runs_after_the_existing_job_succeeds() {
    let mut h = Harness::new();
    let (a, _) = enqueue_named(
        &mut h,
        JobRequest::once(KIND).unique("chain", ConflictPolicy::Append),
    );
    let (b, d) = enqueue_named(
        &mut h,
        JobRequest::once(KIND).unique("chain", ConflictPolicy::Append),
    );
    let (c, _) = enqueue_named(
        &mut h,
        JobRequest::once(KIND).unique("chain", ConflictPolicy::Append),
    );
    assert_eq!(d, Disposition::Appended);
    assert_eq!(h.job(b).state, JobState::Blocked);
    assert_eq!(h.job(b).prerequisites, [a]);
    assert_eq!(h.job(c).prerequisites, [b]);
    assert!(matches!(
        &h.core.why(h.now, b).unwrap()[..],
        [backwork_scheduler::WaitReason::Blocked { on }]
            if on == &[backwork_scheduler::JobRef { id: a, name: Some("chain".into()) }]
    ));
    h.finish(a, RunOutcome::Success(None));
    assert_eq!(h.job(b).state, JobState::Running);
    h.finish(b, RunOutcome::Success(None));
    assert_eq!(h.job(c).state, JobState::Running);
}

#[test]
fn append_after_a_failure_fails_the_chain_and_append_or_replace_starts_fresh() {
    let mut h = Harness::new();
    let (a, _) = enqueue_named(
        &mut h,
        JobRequest::once(KIND).unique("chain", ConflictPolicy::Append),
    );
    let (b, _) = enqueue_named(
        &mut h,
        JobRequest::once(KIND).unique("chain", ConflictPolicy::Append),
    );
    h.finish(a, RunOutcome::Failure(None));
    let job_b = h.job(b);
    assert_eq!(job_b.state, JobState::Failed);
    assert_eq!(job_b.stop_reason, Some(StopReason::PrerequisiteFailed(a)));
    // appending to a failed chain: the new job fails at once
    let (c, _) = enqueue_named(
        &mut h,
        JobRequest::once(KIND).unique("chain", ConflictPolicy::Append),
    );
    assert_eq!(h.job(c).state, JobState::Failed);
    // append_or_replace starts a new chain instead
    let (d, disp) = enqueue_named(
        &mut h,
        JobRequest::once(KIND).unique("chain", ConflictPolicy::AppendOrReplace),
    );
    assert_eq!(disp, Disposition::Inserted);
    assert_eq!(h.job(d).state, JobState::Running);
    assert!(h.job(d).prerequisites.is_empty());
}

#[test]
fn cancelling_a_prerequisite_cancels_its_dependents() {
    let mut h = Harness::new();
    let (a, _) = enqueue_named(
        &mut h,
        JobRequest::once("idle").unique("c", ConflictPolicy::Append),
    );
    let (b, _) = enqueue_named(
        &mut h,
        JobRequest::once("idle").unique("c", ConflictPolicy::Append),
    );
    h.handle(backwork_scheduler::Event::Cancel(
        backwork_scheduler::Selector::Id(a),
    ))
    .unwrap();
    assert_eq!(h.job(b).state, JobState::Cancelled);
}

#[test]
fn policies_that_do_not_fit_the_schedule_are_refused() {
    let mut h = Harness::new();
    let err = h
        .try_enqueue(JobRequest::periodic(KIND, hours(1)).unique("p", ConflictPolicy::Append))
        .unwrap_err();
    assert!(matches!(err, CoreError::PolicyNotAllowed { .. }));
    assert!(
        err.to_string()
            .contains("keep, update, replace or cancel_and_reenqueue")
    );
    let err = h
        .try_enqueue(JobRequest::once(KIND).unique("o", ConflictPolicy::CancelAndReenqueue))
        .unwrap_err();
    assert!(matches!(err, CoreError::PolicyNotAllowed { .. }));
    assert_eq!(h.core.jobs().count(), 0);
}
