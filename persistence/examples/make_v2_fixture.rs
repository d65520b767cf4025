//! Writes `persistence/tests/fixtures/v2.redb`: a small store in **schema 2** (JSON records and
//! the four index tables), made by driving the real scheduling core on a virtual clock and
//! committing its change sets, as a backwork daemon of that schema would have.
//!
//! **It can only be re-run at a schema-2 commit** (07f3876 or earlier on the store-v3 branch):
//! at any later commit the store it would write has the newer layout, so it refuses to run.
//! The migration test (`tests/migration.rs`) opens a copy of the committed file.
//!
//! ```text
//! cargo run -p backwork-persistence --example make_v2_fixture -- persistence/tests/fixtures/v2.redb
//! ```
//!
//! What the store holds (the migration test checks each):
//! - `once`: a one-off job with a non-trivial input (nested objects, unicode, numbers), tagged;
//! - `periodic`: every hour, 10 min flex, tagged;
//! - `cron`: six-field `0 30 9 * * 1-5` in Europe/Paris (weekday numbers in the old `cron`
//!   crate's meaning);
//! - `chain-a` / `chain-b`: unique name `nightly`, the second appended (blocked on the first);
//! - `report`: a periodic job that ran three times, each with an output;
//! - `fails`: a one-off job with one attempt whose run failed with an output;
//! - `busy`: a job that was running when the store was copied (recovery applies on open).

use std::time::Duration;

use backwork_persistence::{OpenMode, RedbStore, SCHEMA_VERSION};
use backwork_scheduler::{
    Action, AllowAll, ConflictPolicy, Event, JobId, JobRequest, JobState, RunOutcome, Scheduler,
    Store, Time,
};

fn drain(core: &mut Scheduler, store: &mut RedbStore) -> Vec<(JobId, u32)> {
    let mut started = Vec::new();
    while let Some(action) = core.poll_action() {
        match action {
            Action::Persist(changes) => store.commit(&changes).expect("commit"),
            Action::Start(s) => started.push((s.id, s.attempt)),
            _ => {}
        }
    }
    started
}

fn main() {
    assert_eq!(
        SCHEMA_VERSION, 2,
        "this generator writes a schema-2 fixture and only runs at a schema-2 commit"
    );
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "persistence/tests/fixtures/v2.redb".into());
    let _ = std::fs::remove_file(&path);
    let mut store = RedbStore::open(&path, OpenMode::CreateIfMissing).expect("create the store");
    let mut core = Scheduler::new(Default::default(), Box::new(AllowAll));
    let t0: Time = "2026-03-02T08:00:00Z".parse().unwrap();
    core.handle(t0, Event::Load(Vec::new())).unwrap();
    drain(&mut core, &mut store);
    let id = |n: u8| JobId::new_v7(t0, [n; 10]);
    let enqueue = |core: &mut Scheduler, store: &mut RedbStore, at: Time, n: u8, r: JobRequest| {
        core.handle(
            at,
            Event::Enqueue {
                id: id(n),
                request: r,
            },
        )
        .expect("enqueue");
        drain(core, store)
    };

    // jobs whose kinds have no worker yet stay enqueued
    let input = serde_json::json!({
        "user": {"name": "Zoë Ångström", "id": 4_294_967_297_u64},
        "items": [1, 2.5, -3, "🚀", null, true],
        "nested": {"deep": {"deeper": ["a", {"b": "c"}]}},
        "quote": "line\nbreak \"quoted\""
    });
    enqueue(
        &mut core,
        &mut store,
        t0,
        1,
        JobRequest::once("mail")
            .input(input)
            .tag("user")
            .tag("mail"),
    );
    enqueue(
        &mut core,
        &mut store,
        t0,
        2,
        JobRequest::periodic("sync", Duration::from_secs(3600))
            .flex(Duration::from_secs(600))
            .tag("sync"),
    );
    enqueue(
        &mut core,
        &mut store,
        t0,
        3,
        JobRequest::cron("digest", "0 30 9 * * 1-5", "Europe/Paris".parse().unwrap()),
    );
    enqueue(
        &mut core,
        &mut store,
        t0,
        4,
        JobRequest::once("nightly")
            .unique("nightly", ConflictPolicy::Append)
            .tag("chain"),
    );
    enqueue(
        &mut core,
        &mut store,
        t0,
        5,
        JobRequest::once("nightly")
            .unique("nightly", ConflictPolicy::Append)
            .tag("chain"),
    );

    // `report` runs three times, one period apart, each run with an output
    let mut at = t0;
    enqueue(
        &mut core,
        &mut store,
        at,
        6,
        JobRequest::periodic("report", Duration::from_secs(600)).tag("report"),
    );
    core.handle(at, Event::WorkerRegistered("report".into()))
        .unwrap();
    let mut started = drain(&mut core, &mut store);
    for run in 1..=3u64 {
        let (rid, attempt) = *started.first().expect("report started");
        at += chrono::TimeDelta::seconds(5);
        core.handle(
            at,
            Event::Finished {
                id: rid,
                attempt,
                outcome: RunOutcome::Success(Some(
                    serde_json::json!({"run": run, "rows": run * 100}),
                )),
            },
        )
        .unwrap();
        drain(&mut core, &mut store);
        if run < 3 {
            at += chrono::TimeDelta::seconds(600);
            core.handle(at, Event::Timeout).unwrap();
            started = drain(&mut core, &mut store);
        }
    }

    // `fails`: one attempt, a failure with an output
    core.handle(at, Event::WorkerRegistered("fails".into()))
        .unwrap();
    drain(&mut core, &mut store);
    let started = enqueue(
        &mut core,
        &mut store,
        at,
        7,
        JobRequest::once("fails").max_attempts(1).tag("user"),
    );
    let (fid, attempt) = *started.first().expect("fails started");
    at += chrono::TimeDelta::seconds(2);
    core.handle(
        at,
        Event::Finished {
            id: fid,
            attempt,
            outcome: RunOutcome::Failure(Some(serde_json::json!({"error": "exit status 3"}))),
        },
    )
    .unwrap();
    drain(&mut core, &mut store);

    // `busy`: starts and is still running when the process "dies"
    core.handle(at, Event::WorkerRegistered("busy".into()))
        .unwrap();
    drain(&mut core, &mut store);
    let started = enqueue(
        &mut core,
        &mut store,
        at,
        8,
        JobRequest::once("busy").input(serde_json::json!("short input")),
    );
    assert_eq!(started.first().map(|s| s.0), Some(id(8)), "busy started");

    // the store holds what the list above says
    let job = |n: u8| core.job(id(n)).expect("job");
    assert_eq!(job(5).state, JobState::Blocked);
    assert_eq!(job(5).prerequisites, [id(4)]);
    assert_eq!(job(6).history.len(), 3);
    assert_eq!(job(7).state, JobState::Failed);
    assert_eq!(job(8).state, JobState::Running);
    store.close().expect("close");
    drop(store);
    eprintln!("wrote {path}: {} jobs", core.jobs().count());
}
