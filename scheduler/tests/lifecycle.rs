//! The life of a job around its runs: cancellation (by id, name, tag; a cancelled job never
//! starts), retention and pruning, recovery after a crash, the order of persistence and starts,
//! shutdown, the concurrency limit, and the policy hook.

mod common;

use backwork_scheduler::{
    Action, AllowAll, Config, CoreError, Decision, Event, HoldKind, Job, JobRequest, JobState,
    Policy, PolicyContext, PolicyJob, PolicyReason, PolicyStop, Reply, RunOutcome, RunResult,
    Selector, StopReason, Store, Time, WaitReason,
};
use chrono::TimeDelta;
use common::*;

#[test]
fn cancel_by_id_name_and_tag() {
    let mut h = Harness::new();
    let a = h.enqueue(JobRequest::once("idle").delay(hours(1)).tag("nightly"));
    let b = h.enqueue(JobRequest::once("idle").delay(hours(1)).tag("nightly"));
    let c = h.enqueue(
        JobRequest::once("idle")
            .delay(hours(1))
            .unique("named", backwork_scheduler::ConflictPolicy::Keep),
    );
    let d = h.enqueue(JobRequest::once("idle").delay(hours(1)));
    assert_eq!(
        h.handle(Event::Cancel(Selector::Id(d))).unwrap(),
        Reply::Cancelled(vec![d])
    );
    assert_eq!(
        h.handle(Event::Cancel(Selector::Name("named".into())))
            .unwrap(),
        Reply::Cancelled(vec![c])
    );
    assert_eq!(
        h.handle(Event::Cancel(Selector::Tag("nightly".into())))
            .unwrap(),
        Reply::Cancelled(vec![a, b])
    );
    for id in [a, b, c, d] {
        let job = h.job(id);
        assert_eq!(job.state, JobState::Cancelled);
        assert_eq!(job.stop_reason, Some(StopReason::Cancelled));
    }
    // cancelling again: typed errors, not silent success
    assert!(matches!(
        h.handle(Event::Cancel(Selector::Id(a))),
        Err(CoreError::AlreadyFinished { .. })
    ));
    assert!(matches!(
        h.handle(Event::Cancel(Selector::Name("nope".into()))),
        Err(CoreError::NoSuchJob(_))
    ));
    assert_eq!(
        h.handle(Event::Cancel(Selector::Tag("nightly".into())))
            .unwrap(),
        Reply::Cancelled(vec![])
    );
}

#[test]
fn a_cancelled_job_never_starts() {
    let mut h = Harness::new().auto_succeed();
    let id = h.enqueue(JobRequest::periodic(KIND, hours(1)).flex(mins(5)));
    h.handle(Event::Cancel(Selector::Id(id))).unwrap();
    h.advance(hours(10));
    assert!(h.starts(id).is_empty());
    assert!(h.core.poll_timeout() != Some(t("2026-01-01T00:55:00Z")));
    assert!(matches!(
        h.handle(Event::Force {
            selector: Selector::Id(id),
            force: backwork_scheduler::Force {
                time: true,
                constraints: true
            }
        }),
        Err(CoreError::AlreadyFinished { .. })
    ));
}

#[test]
fn finished_jobs_are_pruned_after_retention() {
    let mut h = Harness::new().auto_succeed();
    let id = h.enqueue(JobRequest::once(KIND));
    assert_eq!(h.job(id).state, JobState::Succeeded);
    assert_eq!(h.core.poll_timeout(), Some(h.now + TimeDelta::days(1)));
    h.advance(hours(23));
    assert!(h.core.job(id).is_some());
    h.advance(hours(1));
    assert!(h.core.job(id).is_none());
    let removed: Vec<_> = h
        .log
        .iter()
        .filter_map(|(_, a)| match a {
            Action::Persist(cs) => Some(cs.removes.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(removed, [id]);
    assert_eq!(
        h.core.poll_timeout(),
        None,
        "nothing left: no wake-up at all"
    );
}

#[test]
fn the_attempt_is_persisted_before_the_run_starts() {
    let mut h = Harness::new();
    let id = h.enqueue(JobRequest::once(KIND));
    let persist_pos = h
        .log
        .iter()
        .position(|(_, a)| matches!(a, Action::Persist(cs) if cs.upserts.iter().any(|j| j.id == id && j.state == JobState::Running && j.attempt == 1)))
        .expect("the running state with attempt 1 is persisted");
    let start_pos = h
        .log
        .iter()
        .position(|(_, a)| matches!(a, Action::Start(s) if s.id == id))
        .unwrap();
    assert!(persist_pos < start_pos);
}

fn reload(h: &Harness, at: Time, config: Config) -> Harness {
    // what the store holds, loaded by a fresh core over the same store
    let stored: Vec<Job> = h.store.clone().load().expect("a memory store loads");
    let mut fresh = Harness::with(config, Box::new(AllowAll));
    fresh.store = h.store.clone();
    fresh.jump_to(at);
    let reply = fresh.handle(Event::Load(stored)).unwrap();
    assert!(matches!(reply, Reply::Loaded { .. }));
    fresh
}

#[test]
fn recovery_requeues_running_jobs_charged_and_backed_off() {
    let mut h = Harness::new();
    let id = h.enqueue(JobRequest::once(KIND));
    assert_eq!(h.job(id).state, JobState::Running);
    // the process dies here; it restarts a minute later
    let later = h.now + TimeDelta::minutes(1);
    let mut r = reload(&h, later, Config::default());
    let job = r.job(id);
    assert_eq!(job.state, JobState::Enqueued);
    assert_eq!(job.stop_reason, Some(StopReason::Unknown));
    assert_eq!(job.attempt, 1, "the crashed attempt stays counted");
    assert_eq!(job.history[0].result, RunResult::Crashed);
    assert_eq!(
        r.core.why(r.now, id).unwrap(),
        [WaitReason::Backoff {
            until: later + TimeDelta::seconds(30),
            attempt: 1,
            // the crash is what ended the attempt
            stopped_by: Some(StopReason::Unknown),
        }]
    );
    r.advance(secs(30));
    assert_eq!(r.running[&id], 2);
    // and the recovery itself was persisted
    assert!(r.log.iter().any(|(_, a)| matches!(a, Action::Persist(cs) if cs.upserts.iter().any(|j| j.id == id && j.state == JobState::Enqueued))));
}

#[test]
fn a_job_that_keeps_crashing_the_process_eventually_fails() {
    let mut h = Harness::new();
    let id = h.enqueue(JobRequest::once(KIND).max_attempts(3));
    let mut at = h.now;
    for _ in 0..5 {
        at += TimeDelta::hours(6);
        h = reload(&h, at, Config::default());
        h.advance(hours(5));
        if h.job(id).state == JobState::Failed {
            break;
        }
    }
    let job = h.job(id);
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.attempt, 3);
    assert_eq!(
        job.history
            .iter()
            .filter(|r| r.result == RunResult::Crashed)
            .count(),
        3
    );
}

#[test]
fn shutdown_stops_runs_and_starts_nothing_new() {
    let mut h = Harness::new();
    let a = h.enqueue(JobRequest::once(KIND));
    h.handle(Event::Shutdown { grace: secs(2) }).unwrap();
    assert_eq!(h.stops(a), ["shutdown"]);
    let b = h.enqueue(JobRequest::once(KIND));
    assert!(h.starts(b).is_empty());
    assert_eq!(h.core.why(h.now, b).unwrap(), [WaitReason::ShuttingDown]);
    h.advance(secs(2));
    assert_eq!(h.aborts(a), 1);
    h.finish(a, RunOutcome::Aborted);
    let job = h.job(a);
    assert_eq!(
        job.state,
        JobState::Enqueued,
        "an interrupted run goes back to the queue"
    );
    assert_eq!(job.attempt, 0, "shutdown is not the job's fault");
}

#[test]
fn the_concurrency_limit_holds_and_frees_slots_in_order() {
    let mut h = Harness::with(
        Config {
            max_concurrent: 2,
            ..Config::default()
        },
        Box::new(AllowAll),
    );
    let ids: Vec<_> = (0..5).map(|_| h.enqueue(JobRequest::once(KIND))).collect();
    assert_eq!(h.running.keys().copied().collect::<Vec<_>>(), ids[..2]);
    assert_eq!(
        h.core.why(h.now, ids[2]).unwrap(),
        [WaitReason::ConcurrencyLimit {
            running: 2,
            limit: 2
        }]
    );
    h.finish(ids[0], RunOutcome::Success(None));
    assert!(h.running.contains_key(&ids[2]));
    assert_eq!(h.running.len(), 2);
}

/// A policy that defers every start to the next whole hour and refuses jobs tagged `denied`.
#[derive(Debug, Default)]
struct HourlyWindows {
    started: usize,
}

impl Policy for HourlyWindows {
    fn admit(&mut self, _now: Time, r: &JobRequest, cx: PolicyContext<'_>) -> Result<(), String> {
        if cx.pending >= 3 {
            return Err("at most 3 pending jobs".into());
        }
        if r.tags.contains("refused") {
            return Err("refused by tag".into());
        }
        Ok(())
    }

    fn before_start(&mut self, now: Time, job: PolicyJob<'_>, _cx: PolicyContext<'_>) -> Decision {
        if job.request.tags.contains("denied") {
            return Decision::Deny {
                reason: PolicyReason::new("denied", HoldKind::AppStopped, "denied by tag"),
            };
        }
        let top = now.timestamp() % 3600 == 0;
        if top {
            Decision::Allow
        } else {
            let next = now.timestamp() - now.timestamp() % 3600 + 3600;
            Decision::Defer {
                until: chrono::DateTime::from_timestamp(next, 0).unwrap(),
                reason: PolicyReason::new(
                    "hourly_window",
                    HoldKind::Spacing,
                    "waiting for the hourly window",
                ),
            }
        }
    }

    fn on_started(&mut self, _now: Time, _job: PolicyJob<'_>) {
        self.started += 1;
    }
}

#[test]
fn the_policy_hook_can_defer_deny_and_refuse() {
    let mut h = Harness::with(Config::default(), Box::new(HourlyWindows::default())).auto_succeed();
    h.advance(mins(10));
    let id = h.enqueue(JobRequest::once(KIND));
    assert!(h.starts(id).is_empty());
    assert_eq!(
        h.core.why(h.now, id).unwrap(),
        [WaitReason::Policy {
            reason: PolicyReason::new(
                "hourly_window",
                HoldKind::Spacing,
                "waiting for the hourly window"
            ),
            until: Some(t("2026-01-01T01:00:00Z"))
        }]
    );
    assert_eq!(h.core.poll_timeout(), Some(t("2026-01-01T01:00:00Z")));
    h.advance(mins(50));
    assert_eq!(h.starts(id), [t("2026-01-01T01:00:00Z")]);

    let denied = h.enqueue(JobRequest::once(KIND).tag("denied"));
    h.advance(hours(2));
    assert!(h.starts(denied).is_empty());
    assert!(matches!(
        &h.core.why(h.now, denied).unwrap()[..],
        [WaitReason::Policy { until: None, .. }]
    ));
    // a forced run ("run now") bypasses the policy
    h.handle(Event::Force {
        selector: Selector::Id(denied),
        force: backwork_scheduler::Force {
            time: true,
            constraints: false,
        },
    })
    .unwrap();
    assert_eq!(h.starts(denied).len(), 1);

    let err = h
        .try_enqueue(JobRequest::once(KIND).tag("refused"))
        .unwrap_err();
    assert!(err.to_string().contains("refused by tag"));
}

#[test]
fn a_stale_run_report_is_ignored() {
    let mut h = Harness::new();
    let id = h.enqueue(JobRequest::once(KIND));
    // a report for an attempt that is not the running one (a late report from an aborted run)
    h.handle(Event::Finished {
        id,
        attempt: 7,
        outcome: RunOutcome::Success(None),
    })
    .unwrap();
    assert_eq!(h.job(id).state, JobState::Running);
    assert_eq!(h.core.running(), 1);
    // and one for a job that is not running at all
    let other = h.enqueue(JobRequest::once("idle"));
    h.handle(Event::Finished {
        id: other,
        attempt: 1,
        outcome: RunOutcome::Failure(None),
    })
    .unwrap();
    assert_eq!(h.job(other).state, JobState::Enqueued);
}

/// A policy that gives every run a 30-second budget, like an iOS app-refresh task.
#[derive(Debug)]
struct Budget;

impl Policy for Budget {
    fn run_deadline(&mut self, now: Time, _job: PolicyJob<'_>) -> Option<(Time, PolicyStop)> {
        Some((
            now + TimeDelta::seconds(30),
            PolicyStop::new("refresh_budget", "the 30 s refresh budget ran out"),
        ))
    }
}

#[test]
fn a_policy_can_stop_a_run_at_its_budget_without_charging_it() {
    let mut h = Harness::with(Config::default(), Box::new(Budget));
    let id = h.enqueue(JobRequest::once(KIND));
    assert_eq!(h.core.poll_timeout(), Some(h.now + TimeDelta::seconds(30)));
    h.advance(secs(30));
    assert_eq!(h.stops(id), ["policy: the 30 s refresh budget ran out"]);
    h.finish(id, RunOutcome::Retry(None));
    // not charged: nothing holds it back, so it starts again at once with the same attempt number
    let job = h.job(id);
    assert_eq!(job.state, JobState::Running);
    assert_eq!(job.attempt, 1);
    assert_eq!(job.runs_total, 2);
    assert_eq!(
        job.history[0].stop_reason,
        Some(StopReason::Policy(PolicyStop::new(
            "refresh_budget",
            "the 30 s refresh budget ran out"
        )))
    );
    assert_eq!(
        job.history[0].stop_reason.as_ref().map(StopReason::code),
        Some("refresh_budget")
    );
    assert_eq!(job.history[0].result, RunResult::Stopped);
}

/// `Event::Prune { older_than }` drops exactly the finished jobs that finished at least that
/// long ago, keeps younger ones and live ones, and says how many it kept.
#[test]
fn prune_older_than_drops_only_jobs_finished_that_long_ago() {
    use backwork_scheduler::{Event, Reply, Selector};
    let mut h = Harness::new();
    let first = h.enqueue(JobRequest::once(KIND).delay(mins(600)));
    h.handle(Event::Cancel(Selector::Id(first))).unwrap();
    h.advance(mins(60));
    let second = h.enqueue(JobRequest::once(KIND).delay(mins(600)));
    h.handle(Event::Cancel(Selector::Id(second))).unwrap();
    let live = h.enqueue(JobRequest::once(KIND).delay(mins(600)));
    h.advance(mins(1));
    // first finished 61 min ago, second 1 min ago
    let reply = h
        .handle(Event::Prune {
            older_than: Some(mins(30)),
        })
        .unwrap();
    assert_eq!(
        reply,
        Reply::Pruned {
            count: 1,
            kept: 1,
            age: mins(30)
        }
    );
    assert!(h.core.job(first).is_none());
    assert!(h.core.job(second).is_some());
    assert!(h.core.job(live).is_some());
    let reply = h
        .handle(Event::Prune {
            older_than: Some(std::time::Duration::ZERO),
        })
        .unwrap();
    assert!(
        matches!(
            reply,
            Reply::Pruned {
                count: 1,
                kept: 0,
                ..
            }
        ),
        "{reply:?}"
    );
    assert!(h.core.job(live).is_some(), "a live job is never pruned");
}

/// `Event::Retry` gives a failed one-off job a fresh cycle: it is due at once, its attempts count
/// from zero, and its run gets new idempotency keys (`{id}-{cycle}-{attempt}`), so a worker that
/// deduplicates by key does the work again. A succeeded job, and a name another live job holds,
/// are refused and nothing changes.
#[test]
fn retry_gives_a_failed_job_a_fresh_cycle() {
    use backwork_scheduler::{Action, CoreError, Event, Reply, RunOutcome, Selector};
    let mut h = Harness::new();
    let id = h.enqueue(
        JobRequest::once(KIND)
            .max_attempts(1)
            .unique("report", backwork_scheduler::ConflictPolicy::Keep),
    );
    h.finish(id, RunOutcome::Failure(None));
    assert_eq!(h.job(id).state, JobState::Failed);
    let keys = |h: &Harness| -> Vec<String> {
        h.log
            .iter()
            .filter_map(|(_, a)| match a {
                Action::Start(s) if s.id == id => Some(s.idempotency_key()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(keys(&h).len(), 1);
    h.advance(mins(5));
    let reply = h
        .handle(Event::Retry(Selector::Name("report".into())))
        .unwrap();
    assert_eq!(reply, Reply::Retried(vec![id]));
    let job = h.job(id);
    assert_eq!(job.state, JobState::Running, "due at once, and started");
    assert_eq!(job.attempt, 1);
    let k = keys(&h);
    assert_eq!(k.len(), 2);
    assert_ne!(k[0], k[1], "a fresh cycle has fresh keys");
    h.finish(id, RunOutcome::Success(None));
    assert_eq!(h.job(id).state, JobState::Succeeded);

    // a succeeded job is not retried
    assert!(matches!(
        h.handle(Event::Retry(Selector::Id(id))),
        Err(CoreError::NotRetriable { .. })
    ));
    // a cancelled job whose name another live job holds is not retried either
    let other = h.enqueue(
        JobRequest::once(KIND)
            .delay(mins(60))
            .unique("nightly", backwork_scheduler::ConflictPolicy::Keep),
    );
    h.handle(Event::Cancel(Selector::Id(other))).unwrap();
    let live = h.enqueue(
        JobRequest::once(KIND)
            .delay(mins(60))
            .unique("nightly", backwork_scheduler::ConflictPolicy::Keep),
    );
    // the new job began a new sequence of the name: the cancelled one gave the name up (as
    // WorkManager's `KEEP` deletes finished work of the name), so the name means `live` alone
    assert_eq!(h.job(other).unique_name(), None);
    assert_eq!(
        h.core.resolve(&Selector::Name("nightly".into())).unwrap(),
        [live]
    );
    // a finished job of a sequence whose other link is live keeps the name: not retried
    let chain = backwork_scheduler::Chain::begin_with([
        JobRequest::once(KIND).delay(mins(60)),
        JobRequest::once(KIND).delay(mins(60)),
    ])
    .unique("pair", backwork_scheduler::ConflictPolicy::Keep);
    let ids = vec![h.fresh_id(), h.fresh_id()];
    h.handle(Event::EnqueueChain {
        ids: ids.clone(),
        chain,
    })
    .unwrap();
    h.handle(Event::Cancel(Selector::Id(ids[0]))).unwrap();
    let before = h.job(ids[0]);
    assert!(matches!(
        h.handle(Event::Retry(Selector::Id(ids[0]))),
        Err(CoreError::NameTaken { live: l, .. }) if l == ids[1]
    ));
    assert_eq!(h.job(ids[0]), before, "a refusal changes nothing");
}
