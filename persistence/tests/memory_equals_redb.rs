//! The in-memory store and the redb store keep the same thing: the same change sets, committed
//! to both, load back identically — identical to the jobs the scheduling core holds — and give
//! back the same payloads and bounded histories by id, identical to those a core without a
//! store (fed the same inputs) keeps itself — through enqueues with inputs, the
//! `update` policy, runs with and without outputs, retries, a history longer than
//! `history_len`, cancels, pruning, and a crash recovered with `Event::Interrupted`. Guards
//! against the two stores drifting apart (tests run on the memory store, users on redb) and
//! against a change set that misses a payload or a run, and against the core keeping payloads
//! another way with a store than without one.

use std::time::Duration;

use backwork_persistence::{OpenMode, RedbStore};
use backwork_scheduler::{
    Action, AllowAll, ChangeSet, Config, ConflictPolicy, Event, Interruption, Job, JobId,
    JobRequest, MemoryStore, Payloads, Reply, RunOutcome, Scheduler, Selector, Store, Time,
};
use chrono::TimeDelta;
use serde_json::json;

struct Both {
    memory: MemoryStore,
    redb: RedbStore,
    commits: usize,
}

impl Both {
    fn commit(&mut self, cs: &ChangeSet) {
        self.memory.commit(cs).unwrap();
        self.redb.commit(cs).unwrap();
        self.commits += 1;
    }

    /// Both stores load exactly the jobs the core holds, and give back by id the payloads and
    /// histories the shadow core keeps.
    fn check(&mut self, core: &Cores, when: &str) {
        let held: Vec<Job> = core.core.jobs().collect();
        let memory = self.memory.load().unwrap();
        let redb = self.redb.load().unwrap();
        assert_eq!(memory, redb, "{when}: the memory and redb stores differ");
        assert_eq!(redb, held, "{when}: the stores differ from the core");
        let ids: Vec<JobId> = held.iter().map(|j| j.id).collect();
        let kept: Vec<Payloads> = ids
            .iter()
            .map(|id| core.shadow.payloads(*id).expect("the shadow has every job"))
            .collect();
        let memory = self.memory.payloads(&ids, true).unwrap();
        let redb = self.redb.payloads(&ids, true).unwrap();
        assert_eq!(memory, redb, "{when}: the stores' payloads differ");
        assert_eq!(
            redb, kept,
            "{when}: the stores' payloads differ from the shadow's"
        );
        let bare: Vec<Job> = core
            .shadow
            .jobs()
            .map(|mut j| {
                j.request.input = serde_json::Value::Null;
                j.output = None;
                j.history.clear();
                j
            })
            .collect();
        assert_eq!(
            bare, held,
            "{when}: the two cores' scheduling fields differ"
        );
    }
}

/// The core under test (its driver keeps the stores) and a shadow fed the same inputs without
/// a store, which keeps payloads and histories itself.
struct Cores {
    core: Scheduler,
    shadow: Scheduler,
}

impl Cores {
    fn new() -> Cores {
        Cores {
            core: Scheduler::new(config(), Box::new(AllowAll)),
            shadow: Scheduler::new(config(), Box::new(AllowAll)).without_persistence(),
        }
    }

    fn handle(&mut self, now: Time, event: Event) -> Result<Reply, backwork_scheduler::CoreError> {
        let shadow = self.shadow.handle(now, event.clone());
        while self.shadow.poll_action().is_some() {}
        let reply = self.core.handle(now, event);
        assert_eq!(reply, shadow, "both cores answer alike");
        reply
    }

    /// The job whole, as the shadow keeps it.
    fn job(&self, id: JobId) -> Option<Job> {
        self.shadow.job(id)
    }
}

fn drain(core: &mut Cores, both: &mut Both) -> Vec<(JobId, u32)> {
    let mut started = Vec::new();
    while let Some(action) = core.core.poll_action() {
        match action {
            Action::Persist(cs) => both.commit(&cs),
            Action::Start(s) => started.push((s.id, s.attempt)),
            _ => {}
        }
    }
    started
}

fn config() -> Config {
    Config {
        history_len: 3,
        max_concurrent: 8,
        retention: Duration::from_secs(3600),
        ..Config::default()
    }
}

#[test]
fn the_same_commits_load_the_same_jobs_from_memory_and_redb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut both = Both {
        memory: MemoryStore::new(),
        redb: RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap(),
        commits: 0,
    };
    let mut core = Cores::new();
    let mut now: Time = "2026-05-01T10:00:00Z".parse().unwrap();
    core.handle(now, Event::Load(Vec::new())).unwrap();
    drain(&mut core, &mut both);
    let id = |n: u8| JobId::new_v7("2026-05-01T10:00:00Z".parse().unwrap(), [n; 10]);
    let enqueue = |core: &mut Cores, both: &mut Both, now: Time, n: u8, r: JobRequest| {
        core.handle(
            now,
            Event::Enqueue {
                id: id(n),
                request: r,
            },
        )
        .unwrap();
        drain(core, both)
    };

    // enqueues: inputs of every shape (none, scalar, nested); `update` replaces one in place
    enqueue(&mut core, &mut both, now, 1, JobRequest::once("idle"));
    enqueue(
        &mut core,
        &mut both,
        now,
        2,
        JobRequest::once("idle").input(json!(42)),
    );
    enqueue(
        &mut core,
        &mut both,
        now,
        3,
        JobRequest::once("idle")
            .input(json!({"a": [1, 2.5, "ü"], "b": null}))
            .unique("u", ConflictPolicy::Update),
    );
    enqueue(
        &mut core,
        &mut both,
        now,
        4,
        JobRequest::once("idle")
            .input(json!("replaced"))
            .unique("u", ConflictPolicy::Update),
    );
    enqueue(
        &mut core,
        &mut both,
        now,
        5,
        JobRequest::once("idle").unique("u", ConflictPolicy::Update),
    );
    both.check(&core, "after the enqueues");
    assert!(
        core.job(id(3)).unwrap().request.input.is_null(),
        "update to no input"
    );

    // a periodic job runs five times (history_len is 3), outputs on some runs only
    enqueue(
        &mut core,
        &mut both,
        now,
        10,
        JobRequest::periodic("tick", Duration::from_secs(60)).input(json!({"p": 1})),
    );
    core.handle(now, Event::WorkerRegistered("tick".into()))
        .unwrap();
    let mut started = drain(&mut core, &mut both);
    for run in 0..5u64 {
        let (rid, attempt) = *started.first().expect("tick started");
        now += TimeDelta::seconds(1);
        let outcome = match run % 3 {
            0 => RunOutcome::Success(Some(json!({"run": run}))),
            1 => RunOutcome::Success(None),
            _ => RunOutcome::Failure(Some(json!(null))),
        };
        core.handle(
            now,
            Event::Finished {
                id: rid,
                attempt,
                outcome,
            },
        )
        .unwrap();
        drain(&mut core, &mut both);
        both.check(&core, &format!("after tick run {run}"));
        now += TimeDelta::seconds(60);
        core.handle(now, Event::Timeout).unwrap();
        started = drain(&mut core, &mut both);
    }
    assert_eq!(core.job(id(10)).unwrap().history.len(), 3);

    // one-off jobs: a retry with an output then a success; a failure; a cancel while running
    core.handle(now, Event::WorkerRegistered("work".into()))
        .unwrap();
    drain(&mut core, &mut both);
    let s = enqueue(
        &mut core,
        &mut both,
        now,
        20,
        JobRequest::once("work").input(json!([1])),
    );
    now += TimeDelta::seconds(1);
    core.handle(
        now,
        Event::Finished {
            id: s[0].0,
            attempt: s[0].1,
            outcome: RunOutcome::Retry(Some(json!("partial"))),
        },
    )
    .unwrap();
    drain(&mut core, &mut both);
    both.check(&core, "after a retry");
    now += TimeDelta::seconds(120);
    core.handle(now, Event::Timeout).unwrap();
    let s = drain(&mut core, &mut both);
    let (rid, attempt) = *s.iter().find(|(i, _)| *i == id(20)).expect("retried");
    core.handle(
        now,
        Event::Finished {
            id: rid,
            attempt,
            outcome: RunOutcome::Success(Some(json!({"done": true}))),
        },
    )
    .unwrap();
    drain(&mut core, &mut both);
    let s = enqueue(
        &mut core,
        &mut both,
        now,
        21,
        JobRequest::once("work").max_attempts(1),
    );
    core.handle(
        now,
        Event::Finished {
            id: s[0].0,
            attempt: s[0].1,
            outcome: RunOutcome::Panicked("boom".into()),
        },
    )
    .unwrap();
    drain(&mut core, &mut both);
    let s = enqueue(&mut core, &mut both, now, 22, JobRequest::once("work"));
    core.handle(now, Event::Cancel(Selector::Id(id(22))))
        .unwrap();
    drain(&mut core, &mut both);
    core.handle(
        now,
        Event::Finished {
            id: s[0].0,
            attempt: s[0].1,
            outcome: RunOutcome::Aborted,
        },
    )
    .unwrap();
    drain(&mut core, &mut both);
    both.check(&core, "after the one-off runs");

    // a job left running, then a crash: both stores reload it, the core records a crashed run
    // and the driver amends it
    let s = enqueue(
        &mut core,
        &mut both,
        now,
        23,
        JobRequest::once("work").input(json!("x")),
    );
    let (busy, attempt) = s[0];
    both.check(&core, "with a job running");
    both.redb.close().unwrap();
    both.redb = RedbStore::open(&path, OpenMode::MustExist).unwrap();
    now += TimeDelta::seconds(30);
    let mut core = Cores::new();
    let jobs = both.redb.load().unwrap();
    assert_eq!(jobs, both.memory.load().unwrap(), "after the reopen");
    // the shadow, without a store, reloads whole jobs: what the stores give back by id
    let whole: Vec<Job> = both.memory.snapshot();
    core.shadow.handle(now, Event::Load(whole)).unwrap();
    while core.shadow.poll_action().is_some() {}
    core.core.handle(now, Event::Load(jobs)).unwrap();
    drain(&mut core, &mut both);
    core.handle(
        now,
        Event::Interrupted(vec![Interruption {
            id: busy,
            attempt,
            ended: now - TimeDelta::seconds(10),
            note: "interrupted by a crash".into(),
        }]),
    )
    .unwrap();
    drain(&mut core, &mut both);
    both.check(&core, "after the recovery");
    let amended = core.job(busy).unwrap().history.last().unwrap().clone();
    assert_eq!(amended.note.as_deref(), Some("interrupted by a crash"));

    // pruning removes the finished jobs past retention: records, payloads and runs
    now += TimeDelta::seconds(7200);
    core.handle(now, Event::Prune { older_than: None }).unwrap();
    drain(&mut core, &mut both);
    assert!(core.job(id(20)).is_none(), "pruned");
    both.check(&core, "after pruning");
    assert!(
        both.commits > 20,
        "the workload commits a fair amount: {}",
        both.commits
    );
}
