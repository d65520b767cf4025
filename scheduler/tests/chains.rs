//! Chains of work: a DAG of one-off jobs enqueued in one step must run each link only after its
//! prerequisites succeeded, hand it their outputs merged as WorkManager's two input mergers
//! do, end every link after a failed or cancelled one naming the link that ended it, resolve a
//! unique chain's name as WorkManager's `ExistingWorkPolicy` does for `beginUniqueWork`, be
//! admitted whole or not at all, and survive a crash after any commit without losing a link or
//! running a succeeded link again.
//!
//! The mergers' rules are WorkManager's documentation
//! (<https://developer.android.com/reference/androidx/work/OverwritingInputMerger>: "attempts to
//! add all keys from all inputs to the output. In case of a conflict, this class will overwrite
//! the previously-set key";
//! <https://developer.android.com/reference/androidx/work/ArrayCreatingInputMerger>: a key seen
//! the first time — an array is put in the output, a primitive becomes "a size 1 array"; seen
//! again with the same type — "if they are arrays, concatenate them", primitives make an array;
//! an array and a primitive of its type make "a longer array"; other types throw), and the
//! policies are `ExistingWorkPolicy`'s
//! (<https://developer.android.com/reference/androidx/work/ExistingWorkPolicy>).

mod common;

use backwork_scheduler::{
    Action, After, Chain, ConflictPolicy, CoreError, Disposition, Event, InputMerger, JobId,
    JobRef, JobRequest, JobState, MemoryStore, Reply, RunOutcome, RunResult, Scheduler, Selector,
    StopReason, Store, WaitReason,
};
use serde_json::{Value, json};

use common::*;

/// Enqueues `chain` and returns its links' ids.
fn enqueue_chain(h: &mut Harness, chain: Chain) -> Vec<JobId> {
    match try_chain(h, chain).expect("chain accepted") {
        Reply::ChainEnqueued { ids, .. } => ids,
        other => panic!("{other:?}"),
    }
}

fn try_chain(h: &mut Harness, chain: Chain) -> Result<Reply, CoreError> {
    let ids = chain.links.iter().map(|_| h.fresh_id()).collect();
    h.handle(Event::EnqueueChain { ids, chain })
}

/// The diamond `a → (b, c) → d`, `d` with `merger` and its own input.
fn diamond(merger: InputMerger) -> Chain {
    Chain::begin_with([JobRequest::once(KIND).input(json!({"from": "a"}))])
        .then([JobRequest::once(KIND), JobRequest::once(KIND)])
        .then([JobRequest::once(KIND)
            .input(json!({"n": 0, "own": true}))
            .input_merger(merger)])
}

/// The input `id`'s last run got.
fn started_input(h: &Harness, id: JobId) -> Value {
    h.started_input(id).expect("the job started")
}

/// Runs the diamond with `b` returning `b_out` and `c` returning `c_out`; returns `d`'s input.
fn run_diamond(merger: InputMerger, b_out: Value, c_out: Value) -> (Harness, Vec<JobId>) {
    let mut h = Harness::new();
    let ids = enqueue_chain(&mut h, diamond(merger));
    let [a, b, c, d] = ids[..] else {
        panic!("four links")
    };
    assert_eq!(h.job(a).state, JobState::Running, "the first link starts");
    for x in [b, c, d] {
        assert_eq!(h.job(x).state, JobState::Blocked);
    }
    h.finish(a, RunOutcome::Success(Some(json!({"a": 1}))));
    assert_eq!(h.job(b).state, JobState::Running);
    assert_eq!(h.job(c).state, JobState::Running);
    assert_eq!(h.job(d).state, JobState::Blocked, "d waits for both");
    h.finish(b, RunOutcome::Success(Some(b_out)));
    assert_eq!(h.job(d).state, JobState::Blocked, "d still waits for c");
    h.finish(c, RunOutcome::Success(Some(c_out)));
    assert_eq!(h.job(d).state, JobState::Running);
    // b and c got a's output merged into their own (null) input
    assert_eq!(started_input(&h, b), json!({"a": 1}));
    (h, ids)
}

#[test]
fn a_diamond_runs_in_order_with_the_overwriting_merger() {
    let (h, ids) = run_diamond(
        InputMerger::Overwriting,
        json!({"n": 1, "b": "x"}),
        json!({"n": 2, "c": "y"}),
    );
    // own input first, then b, then c: c's value for the shared key overwrites the others
    assert_eq!(
        started_input(&h, ids[3]),
        json!({"n": 2, "own": true, "b": "x", "c": "y"})
    );
    let starts: Vec<_> = ids.iter().map(|id| h.starts(*id).len()).collect();
    assert_eq!(starts, [1, 1, 1, 1], "each link ran once");
}

#[test]
fn a_diamond_runs_in_order_with_the_array_creating_merger() {
    let (h, ids) = run_diamond(
        InputMerger::ArrayCreating,
        json!({"n": 1, "tags": ["p", "q"], "b": "x"}),
        json!({"n": [2, 3], "tags": "r"}),
    );
    // primitives become arrays, arrays concatenate, a primitive joins an array of its type
    assert_eq!(
        started_input(&h, ids[3]),
        json!({"n": [0, 1, 2, 3], "own": [true], "tags": ["p", "q", "r"], "b": ["x"]})
    );
}

#[test]
fn values_of_different_types_under_one_key_fail_the_array_creating_merge() {
    let mut h = Harness::new();
    let ids = enqueue_chain(&mut h, diamond(InputMerger::ArrayCreating));
    h.finish(ids[0], RunOutcome::Success(None));
    h.finish(ids[1], RunOutcome::Success(Some(json!({"n": 1}))));
    h.finish(ids[2], RunOutcome::Success(Some(json!({"n": "one"}))));
    // WorkManager throws IllegalArgumentException; here d fails without running, saying why
    let d = h.job(ids[3]);
    assert_eq!(d.state, JobState::Failed);
    assert!(h.started_input(ids[3]).is_none(), "no worker ran");
    let run = d.history.last().expect("the attempt is recorded");
    assert_eq!(run.result, RunResult::Failure);
    assert!(
        run.note.as_deref().unwrap_or("").contains("\"n\""),
        "{run:?}"
    );
}

#[test]
fn a_failed_link_fails_its_dependents_naming_it() {
    let mut h = Harness::new();
    let ids = enqueue_chain(&mut h, diamond(InputMerger::Overwriting));
    let [a, b, c, d] = ids[..] else { panic!() };
    h.finish(a, RunOutcome::Success(None));
    h.finish(b, RunOutcome::Failure(None));
    let dj = h.job(d);
    assert_eq!(dj.state, JobState::Failed);
    assert_eq!(dj.stop_reason, Some(StopReason::PrerequisiteFailed(b)));
    assert!(h.starts(d).is_empty());
    // c is not d's prerequisite's victim: it goes on, and its end changes nothing for d
    assert_eq!(h.job(c).state, JobState::Running);
    h.finish(c, RunOutcome::Success(None));
    assert_eq!(h.job(d).state, JobState::Failed);
    assert!(h.starts(d).is_empty());
}

#[test]
fn cancelling_the_first_link_cancels_the_rest() {
    let mut h = Harness::new();
    let ids = enqueue_chain(&mut h, diamond(InputMerger::Overwriting));
    let [a, b, c, d] = ids[..] else { panic!() };
    let reply = h.handle(Event::Cancel(Selector::Id(a))).unwrap();
    assert_eq!(reply, Reply::Cancelled(vec![a]));
    assert_eq!(
        h.stops(a),
        ["cancelled"],
        "the running link is asked to stop"
    );
    for x in [b, c, d] {
        assert_eq!(h.job(x).state, JobState::Cancelled);
        assert!(h.starts(x).is_empty());
    }
    assert_eq!(
        h.job(b).stop_reason,
        Some(StopReason::PrerequisiteFailed(a))
    );
    assert_eq!(
        h.job(c).stop_reason,
        Some(StopReason::PrerequisiteFailed(a))
    );
    assert!(matches!(
        h.job(d).stop_reason,
        Some(StopReason::PrerequisiteFailed(p)) if p == b || p == c
    ));
}

/// A failure spreads down a chain of any length: 50 000 links, the first failing, end failed
/// without the core growing its stack per link (a reviewer's 2 400-link chain aborted the
/// daemon with a stack overflow when the spread was recursive).
#[test]
fn a_failure_spreads_down_a_very_long_chain() {
    // on a thread with a 1 MiB stack: a recursion per link would overflow it
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(|| {
            let mut h = Harness::new();
            let mut chain = Chain::begin_with([JobRequest::once(KIND).max_attempts(1)]);
            for _ in 1..50_000 {
                chain = chain.then([JobRequest::once(KIND)]);
            }
            let ids = enqueue_chain(&mut h, chain);
            h.finish(ids[0], RunOutcome::Failure(None));
            let last = *ids.last().unwrap();
            assert_eq!(h.job(last).state, JobState::Failed);
            assert_eq!(
                h.job(last).stop_reason,
                Some(StopReason::PrerequisiteFailed(ids[ids.len() - 2]))
            );
        })
        .unwrap()
        .join()
        .expect("the spread must not overflow the stack");
}

#[test]
fn why_names_what_a_blocked_link_waits_for() {
    let mut h = Harness::new();
    let a = h.enqueue(
        JobRequest::once(KIND)
            .delay(hours(1))
            .unique("compress", ConflictPolicy::Keep),
    );
    let mut chain = Chain::new();
    chain.link(JobRequest::once(KIND), [After::Job(a)]);
    let ids = enqueue_chain(&mut h, chain);
    assert_eq!(h.job(ids[0]).state, JobState::Blocked);
    let why = h.core.why(h.now, ids[0]).unwrap();
    assert_eq!(
        why,
        [WaitReason::Blocked {
            on: vec![JobRef {
                id: a,
                name: Some("compress".into())
            }]
        }]
    );
    assert_eq!(
        why[0].to_string(),
        "blocked: waiting for compress to succeed"
    );
    // after a job that already succeeded, a link is enqueued at once
    h.handle(Event::Force {
        selector: Selector::Id(a),
        force: backwork_scheduler::Force {
            time: true,
            constraints: true,
        },
    })
    .unwrap();
    h.finish(a, RunOutcome::Success(None));
    let mut chain = Chain::new();
    chain.link(JobRequest::once(KIND).delay(hours(1)), [After::Job(a)]);
    let late = enqueue_chain(&mut h, chain);
    assert_eq!(h.job(late[0]).state, JobState::Enqueued);
}

#[test]
fn a_chain_is_admitted_whole_or_not_at_all() {
    let mut h = Harness::new();
    let before = h.core.len();
    // the third link is refused: nothing of the first two is added
    let chain = Chain::begin_with([JobRequest::once(KIND)])
        .then([JobRequest::once(KIND)])
        .then([JobRequest::once(KIND).timeout(Some(std::time::Duration::ZERO))]);
    assert!(matches!(
        try_chain(&mut h, chain),
        Err(CoreError::ZeroDuration { .. })
    ));
    let mut forward = Chain::new();
    forward.link(JobRequest::once(KIND), [After::Link(1)]);
    forward.link(JobRequest::once(KIND), []);
    assert_eq!(
        try_chain(&mut h, forward),
        Err(CoreError::LinkOrder { link: 0, after: 1 })
    );
    let periodic = Chain::begin_with([JobRequest::periodic(KIND, hours(1))]);
    assert_eq!(
        try_chain(&mut h, periodic),
        Err(CoreError::RecurringLink { link: 0 })
    );
    let mut unknown = Chain::new();
    unknown.link(JobRequest::once(KIND), [After::Job(JobId::from_u128(7))]);
    assert_eq!(
        try_chain(&mut h, unknown),
        Err(CoreError::NoSuchPrerequisite(JobId::from_u128(7)))
    );
    assert_eq!(h.core.len(), before);
    assert!(h.log.is_empty(), "no action at all: {:?}", h.log);

    // accepted: the whole chain is one change set
    let ids = enqueue_chain(&mut h, diamond(InputMerger::Overwriting));
    let persists: Vec<_> = h
        .log
        .iter()
        .filter_map(|(_, a)| match a {
            Action::Persist(cs) => Some(cs),
            _ => None,
        })
        .collect();
    assert_eq!(persists.len(), 1);
    let written: Vec<JobId> = persists[0].upserts.iter().map(|j| j.id).collect();
    for id in &ids {
        assert!(written.contains(id));
    }
}

fn unique_chain(policy: ConflictPolicy) -> Chain {
    Chain::begin_with([JobRequest::once(KIND).delay(hours(1))])
        .then([JobRequest::once(KIND)])
        .unique("sync", policy)
}

fn chain_reply(h: &mut Harness, chain: Chain) -> (Vec<JobId>, Disposition) {
    match try_chain(h, chain).unwrap() {
        Reply::ChainEnqueued {
            ids, disposition, ..
        } => (ids, disposition),
        other => panic!("{other:?}"),
    }
}

#[test]
fn keep_adds_nothing_while_the_sequence_is_unfinished() {
    let mut h = Harness::new();
    let (first, d) = chain_reply(&mut h, unique_chain(ConflictPolicy::Keep));
    assert_eq!(d, Disposition::Inserted);
    let (kept, d) = chain_reply(&mut h, unique_chain(ConflictPolicy::Keep));
    assert_eq!(d, Disposition::Kept);
    assert_eq!(kept, first, "the unfinished jobs of the name are kept");
    assert_eq!(h.core.len(), 2);
}

#[test]
fn replace_cancels_the_sequence_and_starts_a_new_one() {
    let mut h = Harness::new();
    let (old, _) = chain_reply(&mut h, unique_chain(ConflictPolicy::Keep));
    let (new, d) = chain_reply(&mut h, unique_chain(ConflictPolicy::Replace));
    assert_eq!(d, Disposition::Replaced);
    for id in &old {
        assert_eq!(h.job(*id).state, JobState::Cancelled);
        assert_eq!(
            h.job(*id).unique_name(),
            None,
            "the old sequence gave the name up"
        );
    }
    assert_eq!(h.core.resolve(&Selector::Name("sync".into())).unwrap(), new);
    assert_eq!(h.job(new[1]).prerequisites, [new[0]]);
    // an append now follows the new sequence alone
    let (appended, d) = chain_reply(&mut h, unique_chain(ConflictPolicy::Append));
    assert_eq!(d, Disposition::Appended);
    assert_eq!(h.job(appended[0]).prerequisites, [new[1]]);
    assert_eq!(h.job(appended[0]).state, JobState::Blocked);
}

#[test]
fn append_runs_after_every_leaf_of_the_sequence() {
    let mut h = Harness::new();
    // a sequence with two leaves (parallel links no one waits for)
    let two = Chain::begin_with([
        JobRequest::once(KIND).delay(hours(1)),
        JobRequest::once(KIND).delay(hours(1)),
    ])
    .unique("sync", ConflictPolicy::Append);
    let (leaves, d) = chain_reply(&mut h, two);
    assert_eq!(d, Disposition::Inserted, "nothing to append to yet");
    let (tail, d) = chain_reply(&mut h, unique_chain(ConflictPolicy::Append));
    assert_eq!(d, Disposition::Appended);
    assert_eq!(h.job(tail[0]).prerequisites, leaves, "after every leaf");
    assert_eq!(h.job(tail[1]).prerequisites, [tail[0]]);
    // a failed leaf: WorkManager's APPEND marks the new work failed too
    h.advance(hours(1));
    h.finish(leaves[0], RunOutcome::Failure(None));
    h.finish(leaves[1], RunOutcome::Success(None));
    for id in &tail {
        assert_eq!(h.job(*id).state, JobState::Failed);
    }
    let (more, _) = chain_reply(&mut h, unique_chain(ConflictPolicy::Append));
    assert_eq!(h.job(more[0]).state, JobState::Failed);
    assert_eq!(
        h.job(more[0]).stop_reason,
        Some(StopReason::PrerequisiteFailed(tail[1]))
    );
    assert_eq!(h.job(more[1]).state, JobState::Failed);
}

#[test]
fn append_or_replace_starts_a_new_sequence_after_a_failure() {
    let mut h = Harness::new();
    let (old, _) = chain_reply(&mut h, unique_chain(ConflictPolicy::AppendOrReplace));
    // unfinished: appended
    let (tail, d) = chain_reply(&mut h, unique_chain(ConflictPolicy::AppendOrReplace));
    assert_eq!(d, Disposition::Appended);
    assert_eq!(h.job(tail[0]).prerequisites, [old[1]]);
    // the sequence fails: the next one starts afresh, and the failed one gives the name up
    h.handle(Event::Cancel(Selector::Id(old[0]))).unwrap();
    assert_eq!(h.job(tail[1]).state, JobState::Cancelled);
    let (fresh, d) = chain_reply(&mut h, unique_chain(ConflictPolicy::AppendOrReplace));
    assert_eq!(d, Disposition::Inserted);
    assert!(h.job(fresh[0]).prerequisites.is_empty());
    assert_eq!(h.job(fresh[0]).state, JobState::Enqueued);
    assert_eq!(h.job(fresh[1]).state, JobState::Blocked);
    assert_eq!(
        h.core.resolve(&Selector::Name("sync".into())).unwrap(),
        fresh
    );
}

#[test]
fn a_finished_prerequisite_is_kept_while_a_dependent_waits() {
    let mut h = Harness::new();
    let mut chain = Chain::new();
    let a = chain.link(JobRequest::once(KIND), []);
    // the second link waits for a device the core is told is missing
    chain.link(
        JobRequest::once(KIND).requires(backwork_scheduler::Constraint::Charging),
        [After::Link(a)],
    );
    h.set_device(|d| d.charging = false);
    let ids = enqueue_chain(&mut h, chain);
    h.finish(ids[0], RunOutcome::Success(Some(json!({"k": 1}))));
    assert_eq!(h.job(ids[1]).state, JobState::Enqueued);
    // two days pass, past the 1-day retention: a is kept, its output is still b's input
    h.advance(hours(48));
    assert!(h.core.job(ids[0]).is_some());
    h.set_device(|d| d.charging = true);
    assert_eq!(started_input(&h, ids[1]), json!({"k": 1}));
    h.finish(ids[1], RunOutcome::Success(None));
    // once nothing waits for it, its retention counts again
    h.advance(hours(1));
    assert!(h.core.job(ids[0]).is_none(), "pruned");
}

#[test]
fn a_load_settles_a_blocked_job_whose_prerequisites_ended() {
    // a store in which a blocked job's prerequisite is gone (pruned by an older version) and
    // another's failed: the load does not leave them waiting for good
    let mut h = Harness::new();
    let mut chain = Chain::new();
    let a = chain.link(JobRequest::once(KIND).delay(hours(1)), []);
    chain.link(JobRequest::once(KIND), [After::Link(a)]);
    let ids = enqueue_chain(&mut h, chain);
    let mut gone = Chain::new();
    let b = gone.link(JobRequest::once(KIND).delay(hours(1)), []);
    gone.link(JobRequest::once(KIND), [After::Link(b)]);
    let other = enqueue_chain(&mut h, gone);
    let mut jobs: Vec<_> = h.core.jobs().collect();
    jobs.retain(|j| j.id != other[0]);
    for j in &mut jobs {
        if j.id == ids[0] {
            j.state = JobState::Failed;
            j.finished_at = Some(h.now);
        }
    }
    let mut core = Scheduler::new(accurate(), Box::new(backwork_scheduler::AllowAll));
    core.handle(h.now, Event::Load(jobs)).unwrap();
    assert_eq!(core.state_of(ids[1]), Some(JobState::Failed));
    assert_eq!(
        core.job(ids[1]).unwrap().stop_reason,
        Some(StopReason::PrerequisiteFailed(ids[0]))
    );
    assert_eq!(core.state_of(other[1]), Some(JobState::Enqueued));
}

/// Runs the diamond, crashing after durable commit `crash_after` (the states `crash_points.rs`
/// shows a store image can hold); a fresh core then loads the store and finishes the chain.
/// Returns the links' ids, the links durably succeeded at the crash, the starts before and
/// after it, and d's input.
type Crashed = (Vec<JobId>, Vec<JobId>, Vec<JobId>, Vec<JobId>, Value);

fn diamond_with_a_crash(crash_after: usize) -> Option<Crashed> {
    let mut store = MemoryStore::new();
    let mut now = t("2026-01-01T00:00:00Z");
    let mut core = Scheduler::new(accurate(), Box::new(backwork_scheduler::AllowAll));
    core.handle(now, Event::WorkerRegistered(KIND.into()))
        .unwrap();
    let mut commits = 0;
    let mut before = Vec::new();
    let mut crashed = false;
    let chain = diamond(InputMerger::Overwriting);
    let ids: Vec<JobId> = (0..chain.links.len() as u128)
        .map(|i| JobId::from_u128(1000 + i))
        .collect();
    let output = |ids: &[JobId], id: JobId| {
        let i = ids.iter().position(|x| *x == id).expect("a link");
        json!({ format!("out{i}"): i, "last": i })
    };
    core.handle(
        now,
        Event::EnqueueChain {
            ids: ids.clone(),
            chain,
        },
    )
    .unwrap();
    // the driver: commit, then start; every run succeeds a second later
    let mut running: Vec<(JobId, u32)> = Vec::new();
    'drive: loop {
        while let Some(action) = core.poll_action() {
            match action {
                Action::Persist(cs) => {
                    if commits == crash_after {
                        crashed = true;
                        break 'drive;
                    }
                    store.commit(&cs).unwrap();
                    commits += 1;
                }
                Action::Start(s) => {
                    before.push(s.id);
                    running.push((s.id, s.attempt));
                }
                _ => {}
            }
        }
        let Some((id, attempt)) = running.pop() else {
            break;
        };
        now += chrono::TimeDelta::seconds(1);
        core.handle(
            now,
            Event::Finished {
                id,
                attempt,
                outcome: RunOutcome::Success(Some(output(&ids, id))),
            },
        )
        .unwrap();
    }
    if !crashed {
        return None;
    }
    // the restart: what the store holds, loaded into a fresh core
    let durable_done: Vec<JobId> = store
        .load()
        .unwrap()
        .into_iter()
        .filter(|j| j.state == JobState::Succeeded)
        .map(|j| j.id)
        .collect();
    assert_eq!(
        store.load().unwrap().len(),
        4,
        "the first commit holds the whole chain"
    );
    now += chrono::TimeDelta::seconds(10);
    let mut core = Scheduler::new(accurate(), Box::new(backwork_scheduler::AllowAll));
    core.handle(now, Event::WorkerRegistered(KIND.into()))
        .unwrap();
    core.handle(now, Event::Load(store.load().unwrap()))
        .unwrap();
    let mut after = Vec::new();
    let mut d_input = Value::Null;
    let mut running: Vec<(JobId, u32)> = Vec::new();
    loop {
        while let Some(action) = core.poll_action() {
            match action {
                Action::Persist(cs) => store.commit(&cs).unwrap(),
                Action::Start(s) => {
                    if s.id == ids[3] {
                        d_input = start_input(&mut store, &s).expect("d's input merges").input;
                    }
                    after.push(s.id);
                    running.push((s.id, s.attempt));
                }
                _ => {}
            }
        }
        let Some((id, attempt)) = running.pop() else {
            match core.poll_timeout() {
                Some(t) if t > now && t < now + chrono::TimeDelta::hours(2) => {
                    now = t;
                    core.handle(now, Event::Timeout).unwrap();
                    continue;
                }
                _ => break,
            }
        };
        now += chrono::TimeDelta::seconds(1);
        core.handle(
            now,
            Event::Finished {
                id,
                attempt,
                outcome: RunOutcome::Success(Some(output(&ids, id))),
            },
        )
        .unwrap();
    }
    for id in &ids {
        assert_eq!(
            core.state_of(*id),
            Some(JobState::Succeeded),
            "crash after commit {crash_after}: every link ends succeeded"
        );
    }
    Some((ids, durable_done, before, after, d_input))
}

#[test]
fn a_crash_after_any_commit_resumes_the_chain_without_running_a_succeeded_link_again() {
    // a crash before the first commit loses the chain, which was never acknowledged
    let mut points = 0;
    for k in 1.. {
        let Some((ids, done, before, after, d_input)) = diamond_with_a_crash(k) else {
            break;
        };
        points += 1;
        // nothing lost: every link ran (and ended succeeded, checked above); a link whose
        // success was durable before the crash does not run again; only a run in flight at the
        // crash (started, its end not durable) runs a second time
        for id in &ids {
            assert!(
                before.contains(id) || after.contains(id),
                "crash point {k}: link {id} never ran"
            );
            assert!(
                !(done.contains(id) && after.contains(id)),
                "crash point {k}: link {id} ran again after its success was durable"
            );
            assert!(
                after.iter().filter(|x| *x == id).count() <= 1,
                "crash point {k}: link {id} ran twice after the restart"
            );
        }
        // d gets b's and c's outputs, whichever side of the crash they ran on
        assert_eq!(d_input["out1"], json!(1), "crash point {k}: {d_input}");
        assert_eq!(d_input["out2"], json!(2), "crash point {k}: {d_input}");
        assert_eq!(d_input["own"], json!(true));
    }
    assert!(
        points >= 4,
        "the chain commits at least once per link: {points}"
    );
}

/// `append` to a name whose sequence ends in a periodic job is refused, as `after` such a job is:
/// a periodic job never finishes, so the new job would wait blocked for ever (a reviewer's
/// appended jobs did). Nothing is added.
#[test]
fn appending_to_a_periodic_job_is_refused() {
    let mut h = Harness::new();
    let periodic =
        h.enqueue(JobRequest::periodic(KIND, hours(1)).unique("per", ConflictPolicy::Keep));
    for policy in [ConflictPolicy::Append, ConflictPolicy::AppendOrReplace] {
        let before = h.core.jobs().count();
        let err = h
            .try_enqueue(JobRequest::once(KIND).unique("per", policy))
            .unwrap_err();
        assert_eq!(
            err,
            CoreError::RecurringPrerequisite(periodic),
            "{policy:?}"
        );
        let err = try_chain(
            &mut h,
            Chain::begin_with([JobRequest::once(KIND)]).unique("per", policy),
        )
        .unwrap_err();
        assert_eq!(
            err,
            CoreError::RecurringPrerequisite(periodic),
            "{policy:?}"
        );
        assert_eq!(h.core.jobs().count(), before, "nothing added");
    }
}
