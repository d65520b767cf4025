//! Expedited work (WorkManager's `setExpedited(OutOfQuotaPolicy)`, JobScheduler's expedited
//! jobs): it starts ahead of ordinary work queued earlier when a run slot frees, is never held
//! back by the batching window, passes the profile's app-wide holds (Doze, standby quotas) under its own quota of run time per rolling
//! window, and once that quota is used up follows its out-of-quota policy — run as ordinary
//! work (held like any job), or be dropped with a reason. Requests that cannot be expedited are
//! refused as WorkManager refuses them. Guards against expedited work that waits behind a
//! queue, a quota that never runs out (or never frees up), and a drop that loses the job
//! silently.

mod common;

use backwork_scheduler::{
    Config, CoreError, Decision, ExpeditedQuota, HoldKind, JobRequest, JobState, OutOfQuotaPolicy,
    Policy, PolicyContext, PolicyJob, PolicyReason, RunOutcome, StopReason, Time, WaitReason,
};
use common::*;

/// A policy that holds every ordinary job (as Doze does) and records which runs it was told
/// were expedited.
#[derive(Debug, Default)]
struct HoldEverything {
    started: std::sync::Arc<std::sync::Mutex<Vec<bool>>>,
}

fn held() -> PolicyReason {
    PolicyReason::new(
        "doze_deep",
        HoldKind::DeviceIdle,
        "the device is in deep Doze",
    )
}

impl Policy for HoldEverything {
    fn before_start(
        &mut self,
        _now: Time,
        _job: PolicyJob<'_>,
        _cx: PolicyContext<'_>,
    ) -> Decision {
        Decision::Deny { reason: held() }
    }
    fn app_hold(&mut self, _now: Time) -> Option<(Option<Time>, PolicyReason)> {
        Some((None, held()))
    }
    fn on_started(&mut self, _now: Time, job: PolicyJob<'_>) {
        self.started.lock().unwrap().push(job.expedited);
    }
}

fn one_slot() -> Config {
    Config {
        max_concurrent: 1,
        ..accurate()
    }
}

#[test]
fn an_expedited_job_starts_before_ordinary_work_queued_earlier_at_the_limit() {
    let mut h = Harness::with(one_slot(), Box::new(backwork_scheduler::AllowAll));
    let long = h.enqueue(JobRequest::once(KIND));
    let first = h.enqueue(JobRequest::once(KIND));
    h.advance(secs(1));
    let second = h.enqueue(JobRequest::once(KIND));
    h.advance(secs(1));
    let urgent = h.enqueue(JobRequest::once(KIND).expedited(OutOfQuotaPolicy::RunAsNonExpedited));
    assert_eq!(h.job(long).state, JobState::Running);
    // the slot is taken: the expedited job waits like the others…
    assert!(
        h.core
            .why(h.now, urgent)
            .unwrap()
            .iter()
            .any(|r| matches!(r, WaitReason::ConcurrencyLimit { .. })),
    );
    // …and takes the slot first when it frees, though the others were queued earlier
    h.advance(secs(1));
    h.finish(long, RunOutcome::Success(None));
    assert_eq!(h.job(urgent).state, JobState::Running);
    assert_eq!(h.job(first).state, JobState::Enqueued);
    h.finish(urgent, RunOutcome::Success(None));
    assert_eq!(h.job(first).state, JobState::Running, "then in queue order");
    h.finish(first, RunOutcome::Success(None));
    assert_eq!(h.job(second).state, JobState::Running);
}

#[test]
fn expedited_work_passes_an_app_wide_hold_until_its_quota_is_used_up() {
    let quota = ExpeditedQuota {
        limit: Some(mins(10)),
        window: hours(24),
    };
    let policy = HoldEverything::default();
    let started = policy.started.clone();
    let mut h = Harness::with(
        Config {
            expedited_quota: quota,
            ..accurate()
        },
        Box::new(policy),
    );
    let ordinary = h.enqueue(JobRequest::once(KIND));
    let e1 = h.enqueue(JobRequest::once(KIND).expedited(OutOfQuotaPolicy::RunAsNonExpedited));
    assert_eq!(
        h.job(ordinary).state,
        JobState::Enqueued,
        "held like any job"
    );
    assert_eq!(
        h.job(e1).state,
        JobState::Running,
        "expedited: past the hold"
    );
    // a second expedited run overlapping the first counts once: minutes 3 to 8 add only 2
    h.advance(mins(3));
    let e2 = h.enqueue(JobRequest::once(KIND).expedited(OutOfQuotaPolicy::Drop));
    assert_eq!(h.job(e2).state, JobState::Running);
    h.advance(mins(3));
    h.finish(e1, RunOutcome::Success(None));
    h.advance(mins(2));
    h.finish(e2, RunOutcome::Success(None)); // 8 minutes of expedited time in all
    let e3 = h.enqueue(JobRequest::once(KIND).expedited(OutOfQuotaPolicy::Drop));
    assert_eq!(h.job(e3).state, JobState::Running, "8 of 10 minutes used");
    h.advance(mins(2));
    h.finish(e3, RunOutcome::Success(None)); // 10 of 10

    // out of quota, `drop`: cancelled, the reason says why
    let dropped = h.enqueue(JobRequest::once(KIND).expedited(OutOfQuotaPolicy::Drop));
    let job = h.job(dropped);
    assert_eq!(job.state, JobState::Cancelled);
    assert_eq!(job.runs_total, 0);
    match &job.stop_reason {
        Some(StopReason::Policy(why)) => {
            assert_eq!(why.code, "expedited_quota");
            assert!(why.message.contains("expedited quota is used up"), "{why}");
            assert!(why.message.contains("drop"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // out of quota, `run-as-regular`: an ordinary job now, held with the others
    let demoted = h.enqueue(JobRequest::once(KIND).expedited(OutOfQuotaPolicy::RunAsNonExpedited));
    assert_eq!(h.job(demoted).state, JobState::Enqueued);
    let why = h.core.why(h.now, demoted).unwrap();
    assert!(
        why.iter()
            .any(|r| matches!(r, WaitReason::Policy { reason, .. } if reason.code == "doze_deep")),
        "{why:?}"
    );

    // the window rolls on: 24 h after the first minutes, the quota frees again
    h.advance(hours(24));
    let later = h.enqueue(JobRequest::once(KIND).expedited(OutOfQuotaPolicy::Drop));
    assert_eq!(h.job(later).state, JobState::Running);
    // the policy was told which runs were expedited (so they are not charged to its quotas)
    assert_eq!(*started.lock().unwrap(), [true, true, true, true]);
    assert_eq!(h.job(ordinary).state, JobState::Enqueued);
    assert_eq!(h.job(demoted).state, JobState::Enqueued);
}

#[test]
fn what_cannot_be_expedited_is_refused() {
    let mut h = Harness::new();
    let e = OutOfQuotaPolicy::RunAsNonExpedited;
    let refused = |h: &mut Harness, r: JobRequest| match h.try_enqueue(r) {
        Err(CoreError::NotExpeditable(what)) => what,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        refused(&mut h, JobRequest::periodic(KIND, hours(1)).expedited(e)),
        "a periodic job"
    );
    assert_eq!(
        refused(&mut h, JobRequest::once(KIND).delay(mins(5)).expedited(e)),
        "a delayed job"
    );
    let charging = JobRequest::once(KIND)
        .requires(backwork_scheduler::Constraint::Charging)
        .expedited(e);
    assert_eq!(refused(&mut h, charging), "a job that requires charging");
    // the network and storage are fine
    let ok = JobRequest::once(KIND)
        .requires(backwork_scheduler::Constraint::Network(
            backwork_scheduler::NetworkRequirement::Connected,
        ))
        .requires(backwork_scheduler::Constraint::StorageNotLow)
        .expedited(e);
    assert!(h.try_enqueue(ok).is_ok());
    assert!(h.core.jobs().count() == 1, "refusals changed nothing");
}

/// With batching on (the desktop's 1-minute window), an ordinary retry may wait past its
/// backoff to share a wake-up with work due a little later; an expedited one starts when its
/// backoff ends.
#[test]
fn an_expedited_retry_is_not_batched() {
    let run = |expedited: bool| {
        let mut h = Harness::with(Config::default(), Box::new(backwork_scheduler::AllowAll)).auto(
            |_, attempt| {
                Some(if attempt == 1 {
                    RunOutcome::Retry(None)
                } else {
                    RunOutcome::Success(None)
                })
            },
        );
        let t0 = h.now;
        let mut request = JobRequest::once(KIND);
        if expedited {
            request = request.expedited(OutOfQuotaPolicy::RunAsNonExpedited);
        }
        let id = h.enqueue(request);
        // ordinary work due 80 s in: within the batching window of the retry's gate (30 s)
        h.enqueue(JobRequest::once(KIND).delay(secs(80)));
        h.advance(mins(5));
        let starts = h.starts(id);
        assert_eq!(starts.len(), 2);
        (starts[1] - t0).num_seconds()
    };
    assert_eq!(
        run(false),
        80,
        "the ordinary retry shares the wake-up at 80 s"
    );
    assert_eq!(
        run(true),
        30,
        "the expedited retry starts when its backoff ends"
    );
}

/// A job demoted to ordinary work at its quota (`RunAsNonExpedited`) starts as ordinary work
/// does — here at once, nothing holding it — not at the next unrelated event (a reviewer's
/// daemon left it `enqueued` with "nothing holds it back" for minutes).
#[test]
fn a_job_run_as_regular_at_its_quota_starts_at_once_when_nothing_holds_it() {
    let quota = ExpeditedQuota {
        limit: Some(secs(1)),
        window: hours(24),
    };
    let mut h = Harness::with(
        Config {
            expedited_quota: quota,
            ..accurate()
        },
        Box::new(backwork_scheduler::AllowAll),
    );
    let first = h.enqueue(JobRequest::once(KIND).expedited(OutOfQuotaPolicy::RunAsNonExpedited));
    h.advance(secs(2));
    h.finish(first, RunOutcome::Success(None));
    // the quota (1 s a day) is used up: the next one runs as ordinary work, at once
    let second = h.enqueue(JobRequest::once(KIND).expedited(OutOfQuotaPolicy::RunAsNonExpedited));
    assert_eq!(
        h.job(second).state,
        JobState::Running,
        "{:?}",
        h.core.why(h.now, second)
    );
    assert_eq!(h.starts(second), [h.now]);
}
