//! A small input lives inside its job record (format 4, up to 256 bytes of JSON), a larger one
//! in the `payloads` table — and a job's input reads back as given whichever way it went, after
//! every change the core makes to the job: its runs (records rewritten without a new input),
//! an `update` to a larger, a smaller or no input (the old copy never left behind to win a
//! later read), a reopen, a removal. Driven by the real core's change sets. Guards against an
//! input lost when a record is rewritten, and against two copies of one input disagreeing.

use std::path::Path;

use backwork_persistence::{OpenMode, RedbStore};
use backwork_scheduler::{
    Action, AllowAll, ConflictPolicy, Event, JobId, JobRequest, RunOutcome, Scheduler, Selector,
    Store, Time,
};
use redb::ReadableDatabase;
use serde_json::{Value, json};

/// A core whose change sets go to `store` as they come; returns the starts it asked for.
/// The store at `path` opened again, and a fresh core loaded from it.
fn reopen(path: &std::path::Path, now: Time) -> (RedbStore, Scheduler) {
    let mut store = RedbStore::open(path, OpenMode::MustExist).unwrap();
    let mut core = Scheduler::new(Default::default(), Box::new(AllowAll));
    let jobs = store.load().unwrap();
    feed(&mut core, &mut store, now, Event::Load(jobs));
    (store, core)
}

fn feed(core: &mut Scheduler, store: &mut RedbStore, now: Time, event: Event) -> Vec<JobId> {
    core.handle(now, event).expect("the core takes the event");
    let mut starts = Vec::new();
    while let Some(action) = core.poll_action() {
        match action {
            Action::Persist(changes) => store.commit(&changes).expect("commit"),
            Action::Start(start) => starts.push(start.id),
            _ => {}
        }
    }
    starts
}

/// The rows of job `id`'s input in `payloads` (0 or 1), read with redb directly.
fn input_rows(path: &Path, id: JobId) -> usize {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let payloads = txn
        .open_table(redb::TableDefinition::<(u128, u8), &[u8]>::new("payloads"))
        .unwrap();
    usize::from(payloads.get((id.as_u128(), 0u8)).unwrap().is_some())
}

/// The input the store gives for `id` by id.
fn input(store: &mut RedbStore, id: JobId) -> Value {
    store.payloads(&[id], false).unwrap().remove(0).input
}

fn request(input: Value) -> JobRequest {
    JobRequest::periodic("sync", std::time::Duration::from_secs(3600))
        .unique("sync", ConflictPolicy::Update)
        .input(input)
}

#[test]
fn an_input_reads_back_as_given_wherever_it_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let small = json!({ "folder": "/home/me/photos" });
    // 300 bytes of JSON text and more: over what a record keeps inside itself
    let large = json!({ "folder": "p".repeat(300) });
    let mut now: Time = "2026-01-01T00:00:00Z".parse().unwrap();
    let id = JobId::new_v7(now, [1; 10]);

    let mut store = RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    let mut core = Scheduler::new(Default::default(), Box::new(AllowAll));
    feed(&mut core, &mut store, now, Event::Load(Vec::new()));
    feed(
        &mut core,
        &mut store,
        now,
        Event::WorkerRegistered("sync".into()),
    );
    let starts = feed(
        &mut core,
        &mut store,
        now,
        Event::Enqueue {
            id,
            request: request(small.clone()),
        },
    );
    assert_eq!(starts, [id], "a periodic job's first run is due at once");
    assert_eq!(input(&mut store, id), small);

    // its run starts and ends: two record rewrites that bring no input; it keeps its own
    now += chrono::TimeDelta::seconds(5);
    feed(
        &mut core,
        &mut store,
        now,
        Event::Finished {
            id,
            attempt: 1,
            outcome: RunOutcome::Success(Some(json!("done"))),
        },
    );
    assert_eq!(input(&mut store, id), small, "kept through its run");
    store.close().unwrap();
    assert_eq!(
        input_rows(&path, id),
        0,
        "a small input is inside its record"
    );

    // `update` to a larger input: in `payloads`, and the record's copy is gone
    let mut store = RedbStore::open(&path, OpenMode::MustExist).unwrap();
    assert_eq!(input(&mut store, id), small, "kept through a reopen");
    let mut core = Scheduler::new(Default::default(), Box::new(AllowAll));
    let jobs = store.load().unwrap();
    feed(&mut core, &mut store, now, Event::Load(jobs));
    let new = JobId::new_v7(now, [2; 10]);
    feed(
        &mut core,
        &mut store,
        now,
        Event::Enqueue {
            id: new,
            request: request(large.clone()),
        },
    );
    assert_eq!(input(&mut store, id), large, "updated to the larger input");
    assert_eq!(store.get(id).unwrap().unwrap().request.input, large);
    store.close().unwrap();
    assert_eq!(input_rows(&path, id), 1, "a large input is in `payloads`");

    // back to a small input: inside the record, and the row in `payloads` is gone
    let (mut store, mut core) = reopen(&path, now);
    let other = json!([1, 2, 3]);
    feed(
        &mut core,
        &mut store,
        now,
        Event::Enqueue {
            id: JobId::new_v7(now, [3; 10]),
            request: request(other.clone()),
        },
    );
    assert_eq!(input(&mut store, id), other, "updated to the smaller input");
    store.close().unwrap();
    assert_eq!(input_rows(&path, id), 0, "no stale copy left in `payloads`");

    // to no input at all, then removed
    let (mut store, mut core) = reopen(&path, now);
    feed(
        &mut core,
        &mut store,
        now,
        Event::Enqueue {
            id: JobId::new_v7(now, [4; 10]),
            request: request(Value::Null),
        },
    );
    assert_eq!(input(&mut store, id), Value::Null, "updated to no input");
    assert_eq!(store.get(id).unwrap().unwrap().request.input, Value::Null);
    feed(&mut core, &mut store, now, Event::Cancel(Selector::Id(id)));
    feed(
        &mut core,
        &mut store,
        now + chrono::TimeDelta::days(30),
        Event::Prune {
            older_than: Some(std::time::Duration::ZERO),
        },
    );
    assert!(store.get(id).unwrap().is_none(), "pruned");
    assert_eq!(input(&mut store, id), Value::Null);
    store.close().unwrap();
    assert_eq!(input_rows(&path, id), 0);
}
