//! A job that waits for prerequisites (an appended unique-name job, a chain's later link, a
//! job added `--after` another) counts its initial delay from the moment it is unblocked, not
//! from its enqueue: otherwise a prerequisite that ends late makes the delay vanish and the job
//! start at once.
//!
//! The rule is WorkManager's: when a job succeeds, every dependent whose prerequisites have all
//! completed is set `ENQUEUED` and its `lastEnqueueTime` set to the current time (androidx
//! `work-runtime`, `androidx/work/impl/WorkerWrapper.kt`, `setSucceeded`: "Unblock
//! Dependencies and set Period Start Time" → `workSpecDao.setLastEnqueueTime(dependentWorkId,
//! currentTimeMillis)`), and a one-time job's next run time is `lastEnqueueTime +
//! initialDelay` (`WorkSpec.calculateNextRunTime`).

mod common;

use backwork_scheduler::{
    After, Chain, ConflictPolicy, Event, JobId, JobRequest, JobState, MemoryStore, Reply,
    RunOutcome, Scheduler, Store,
};

use backwork_scheduler::core::add;
use common::*;

/// Enqueues `chain` and returns its links' ids.
fn enqueue_chain(h: &mut Harness, chain: Chain) -> Vec<JobId> {
    let ids: Vec<JobId> = chain.links.iter().map(|_| h.fresh_id()).collect();
    match h.handle(Event::EnqueueChain { ids, chain }).unwrap() {
        Reply::ChainEnqueued { ids, .. } => ids,
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_appended_jobs_delay_counts_from_when_its_prerequisite_succeeded() {
    let mut h = Harness::new();
    let start = h.now;
    // no run limit: the prerequisite may run as long as it likes
    let a = h.enqueue(
        JobRequest::once(KIND)
            .timeout(None)
            .unique("sync", ConflictPolicy::Append),
    );
    let b = h.enqueue(
        JobRequest::once(KIND)
            .delay(mins(10))
            .unique("sync", ConflictPolicy::Append),
    );
    assert_eq!(h.job(b).state, JobState::Blocked);
    assert_eq!(h.starts(a), [start], "the first job starts at once");
    // the prerequisite runs for 30 minutes, far past b's enqueue + 10 min
    h.advance(mins(30));
    assert!(h.starts(b).is_empty(), "blocked while a runs");
    h.finish(a, RunOutcome::Success(None));
    let unblocked = h.now;
    assert_eq!(h.job(b).state, JobState::Enqueued);
    assert_eq!(h.job(b).not_before, add(unblocked, mins(10)));
    h.advance(mins(9));
    assert!(
        h.starts(b).is_empty(),
        "b waits its whole delay after the unblock, not enqueue + 10 min (which has passed)"
    );
    h.advance(mins(2));
    assert_eq!(h.starts(b), [add(unblocked, mins(10))]);
}

#[test]
fn a_chained_links_delay_is_not_cut_short_by_a_quick_prerequisite_either() {
    // the prerequisite ends before the delay would have run out from the enqueue: the delay
    // still counts from the unblock (WorkManager: lastEnqueueTime is the unblock time)
    let mut h = Harness::new();
    let ids = enqueue_chain(
        &mut h,
        Chain::begin_with([JobRequest::once(KIND)]).then([JobRequest::once(KIND).delay(mins(10))]),
    );
    let [a, b] = ids[..] else { panic!("two links") };
    h.advance(mins(3));
    h.finish(a, RunOutcome::Success(None));
    let unblocked = h.now;
    h.advance(mins(8)); // 11 min after the enqueue, 8 after the unblock
    assert!(h.starts(b).is_empty(), "started {:?}", h.starts(b));
    h.advance(mins(3));
    assert_eq!(h.starts(b), [add(unblocked, mins(10))]);
}

#[test]
fn a_job_added_after_a_finished_job_counts_its_delay_from_its_own_enqueue() {
    // nothing to wait for: the enqueue is the later instant
    let mut h = Harness::new();
    let a = h.enqueue(JobRequest::once(KIND));
    h.finish(a, RunOutcome::Success(None));
    h.advance(hours(1));
    let enqueued = h.now;
    let mut chain = Chain::new();
    chain.link(JobRequest::once(KIND).delay(mins(10)), [After::Job(a)]);
    let b = enqueue_chain(&mut h, chain)[0];
    assert_eq!(h.job(b).state, JobState::Enqueued);
    h.advance(mins(11));
    assert_eq!(h.starts(b), [add(enqueued, mins(10))]);
}

#[test]
fn the_delay_counted_from_the_unblock_survives_a_restart() {
    let mut store = MemoryStore::new();
    let mut now = t("2026-01-01T00:00:00Z");
    let mut core = Scheduler::new(accurate(), Box::new(backwork_scheduler::AllowAll));
    core.handle(now, Event::WorkerRegistered(KIND.into()))
        .unwrap();
    let (a, b) = (JobId::from_u128(1), JobId::from_u128(2));
    let mut chain = Chain::begin_with([JobRequest::once(KIND)]);
    chain = chain.then([JobRequest::once(KIND).delay(mins(10))]);
    core.handle(
        now,
        Event::EnqueueChain {
            ids: vec![a, b],
            chain,
        },
    )
    .unwrap();
    let commit_all = |core: &mut Scheduler, store: &mut MemoryStore| {
        while let Some(action) = core.poll_action() {
            if let backwork_scheduler::Action::Persist(cs) = action {
                store.commit(&cs).unwrap();
            }
        }
    };
    commit_all(&mut core, &mut store);
    now = add(now, mins(30));
    core.handle(
        now,
        Event::Finished {
            id: a,
            attempt: 1,
            outcome: RunOutcome::Success(None),
        },
    )
    .unwrap();
    commit_all(&mut core, &mut store);
    // the process ends 5 minutes later; a fresh core loads the store
    let later = add(now, mins(5));
    let mut core = Scheduler::new(accurate(), Box::new(backwork_scheduler::AllowAll));
    core.handle(later, Event::WorkerRegistered(KIND.into()))
        .unwrap();
    core.handle(later, Event::Load(store.load().unwrap()))
        .unwrap();
    assert_eq!(core.state_of(b), Some(JobState::Enqueued));
    assert_eq!(core.job(b).unwrap().not_before, add(now, mins(10)));
    assert_eq!(core.poll_timeout(), Some(add(now, mins(10))));
}
