//! Stores written by older backworks open with this one: a schema-2 store made by the code of
//! that schema (the committed fixture `tests/fixtures/v2.redb`, see
//! `examples/make_v2_fixture.rs`) and a schema-1 store are migrated in place, in one
//! transaction, and every job comes back — its schedule, input, output, history, tags, unique
//! name and prerequisites; a second open changes nothing; a store of a newer schema is refused
//! and left untouched. Guards against an upgrade losing or altering a user's jobs.

use std::path::Path;
use std::time::Duration;

use backwork_persistence::{OpenMode, RedbStore, SCHEMA_VERSION, StoreError};
use backwork_scheduler::{
    AllowAll, Anchor, ConflictPolicy, Event, Job, JobId, JobRequest, JobState, Reply, RunOutcome,
    RunResult, Schedule, Scheduler, Store, Time,
};
use serde_json::json;

fn fixture_copy(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("v2.redb");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v2.redb"),
        &path,
    )
    .unwrap();
    path
}

/// The ids the generator gave its jobs.
fn id(n: u8) -> JobId {
    JobId::new_v7("2026-03-02T08:00:00Z".parse().unwrap(), [n; 10])
}

/// `jobs` (as a load gives them: no payloads, no runs) made whole by `store`'s point reads.
fn whole(store: &mut RedbStore, mut jobs: Vec<Job>) -> Vec<Job> {
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    let payloads = store.payloads(&ids, true).unwrap();
    for (job, p) in jobs.iter_mut().zip(payloads) {
        job.request.input = p.input;
        job.output = p.output;
        job.history = p.history;
    }
    jobs
}

fn by_id(jobs: &[Job], n: u8) -> &Job {
    jobs.iter()
        .find(|j| j.id == id(n))
        .unwrap_or_else(|| panic!("job {n} is missing"))
}

#[test]
fn the_schema_2_fixture_is_migrated_with_every_job_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_copy(dir.path());
    let mut store = RedbStore::open(&path, OpenMode::MustExist).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let loaded = store.load().unwrap();
    assert!(
        loaded
            .iter()
            .all(|j| j.request.input.is_null() && j.output.is_none() && j.history.is_empty()),
        "a load gives the scheduling fields only"
    );
    let jobs = whole(&mut store, loaded.clone());
    assert_eq!(jobs.len(), 8);

    // the one-off job and its input, exactly as given
    let once = by_id(&jobs, 1);
    assert_eq!(once.request.kind, "mail");
    assert_eq!(once.state, JobState::Enqueued);
    assert_eq!(
        once.request.input,
        json!({
            "user": {"name": "Zoë Ångström", "id": 4_294_967_297_u64},
            "items": [1, 2.5, -3, "🚀", null, true],
            "nested": {"deep": {"deeper": ["a", {"b": "c"}]}},
            "quote": "line\nbreak \"quoted\""
        })
    );
    assert_eq!(
        once.request.tags.iter().collect::<Vec<_>>(),
        ["mail", "user"]
    );

    let periodic = by_id(&jobs, 2);
    assert_eq!(
        periodic.request.schedule,
        Schedule::Periodic {
            every: Duration::from_secs(3600),
            flex: Some(Duration::from_secs(600)),
            anchor: Some(Anchor::Grid),
            initial_delay: Duration::ZERO,
        }
    );
    assert!(periodic.request.tags.contains("sync"));

    let cron = by_id(&jobs, 3);
    assert_eq!(
        cron.request.schedule,
        Schedule::Cron {
            expr: "0 30 9 * * 1-5".into(),
            tz: "Europe/Paris".parse().unwrap(),
        }
    );

    // the unique name and the append chain
    let (a, b) = (by_id(&jobs, 4), by_id(&jobs, 5));
    for j in [a, b] {
        let u = j.request.unique.as_ref().unwrap();
        assert_eq!(
            (u.name.as_str(), u.policy),
            ("nightly", ConflictPolicy::Append)
        );
    }
    assert_eq!(a.state, JobState::Enqueued);
    assert_eq!(b.state, JobState::Blocked);
    assert_eq!(b.prerequisites, [id(4)]);

    // three runs, each with its output; the job's output is the last run's
    let report = by_id(&jobs, 6);
    assert_eq!(report.history.len(), 3);
    assert_eq!(report.runs_total, 3);
    for (k, run) in report.history.iter().enumerate() {
        let k = k as u64 + 1;
        assert_eq!(run.result, RunResult::Success);
        assert_eq!(run.output, Some(json!({"run": k, "rows": k * 100})));
        assert!(run.started < run.finished);
    }
    assert_eq!(report.output, Some(json!({"run": 3, "rows": 300})));

    let failed = by_id(&jobs, 7);
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.output, Some(json!({"error": "exit status 3"})));
    assert_eq!(failed.history.len(), 1);
    assert_eq!(failed.history[0].result, RunResult::Failure);
    assert_eq!(failed.history[0].output, failed.output);
    assert!(failed.finished_at.is_some());

    // the job that was running: stored as running; loading it into a core recovers it
    let busy = by_id(&jobs, 8);
    assert_eq!(busy.state, JobState::Running);
    assert_eq!(busy.request.input, json!("short input"));
    let now: Time = "2026-03-02T09:00:00Z".parse().unwrap();
    let mut core = Scheduler::new(Default::default(), Box::new(AllowAll));
    let reply = core.handle(now, Event::Load(loaded)).unwrap();
    assert_eq!(
        reply,
        Reply::Loaded {
            jobs: 8,
            recovered: 1
        }
    );
    assert_eq!(core.job(id(8)).unwrap().state, JobState::Enqueued);

    // the migrated store takes new commits, and a second open is a no-op
    let mut persisted = 0;
    while let Some(action) = core.poll_action() {
        if let backwork_scheduler::Action::Persist(cs) = action {
            store.commit(&cs).unwrap();
            persisted += 1;
        }
    }
    assert!(persisted > 0, "the recovery is written");
    let recovered = store.payloads(&[id(8)], true).unwrap().remove(0);
    assert_eq!(recovered.history.last().unwrap().result, RunResult::Crashed);
    assert_eq!(recovered.input, json!("short input"), "the input is kept");
    let after_recovery: Vec<Job> = core.jobs().collect();
    assert_eq!(store.load().unwrap(), after_recovery);
    store.close().unwrap();
    drop(store);
    // (a migration run again would fail: schema 3's binary records are not the old JSON)
    let mut again = RedbStore::open(&path, OpenMode::MustExist).unwrap();
    assert_eq!(again.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(again.load().unwrap(), after_recovery);
    again.close().unwrap();
    drop(again);
}

/// Jobs made by the real core, with inputs, outputs and a history.
fn core_jobs() -> Vec<Job> {
    // without a store, the core keeps the payloads and histories: the jobs come whole
    let mut core = Scheduler::new(Default::default(), Box::new(AllowAll)).without_persistence();
    let now: Time = "2026-01-01T00:00:00Z".parse().unwrap();
    core.handle(now, Event::WorkerRegistered("w".into()))
        .unwrap();
    let mut started = Vec::new();
    for i in 0..50u64 {
        let mut bytes = [0u8; 10];
        bytes[2..].copy_from_slice(&i.to_be_bytes());
        let req = JobRequest::once(if i < 3 { "w" } else { "idle" })
            .input(json!({ "i": i }))
            .tag(if i % 2 == 0 { "even" } else { "odd" });
        core.handle(
            now,
            Event::Enqueue {
                id: JobId::new_v7(now, bytes),
                request: req,
            },
        )
        .unwrap();
        while let Some(a) = core.poll_action() {
            if let backwork_scheduler::Action::Start(s) = a {
                started.push(s);
            }
        }
    }
    for s in started {
        core.handle(
            now,
            Event::Finished {
                id: s.id,
                attempt: s.attempt,
                outcome: RunOutcome::Success(Some(json!(["out", s.attempt]))),
            },
        )
        .unwrap();
    }
    core.jobs().collect()
}

/// Writes an old layout with redb directly: `meta` at `version`, and `jobs` as JSON records.
fn write_old_layout(path: &Path, version: u64, jobs: &[Job]) {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut meta = txn
            .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .unwrap();
        meta.insert("schema_version", version).unwrap();
        let mut t = txn
            .open_table(redb::TableDefinition::<u128, &[u8]>::new("jobs"))
            .unwrap();
        for j in jobs {
            t.insert(j.id.as_u128(), serde_json::to_vec(j).unwrap().as_slice())
                .unwrap();
        }
    }
    txn.commit().unwrap();
}

#[test]
fn a_schema_1_store_is_migrated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let jobs = core_jobs();
    assert!(jobs.iter().filter(|j| !j.history.is_empty()).count() == 3);
    write_old_layout(&path, 1, &jobs);

    let mut store = RedbStore::open(&path, OpenMode::MustExist).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let loaded = store.load().unwrap();
    assert_eq!(whole(&mut store, loaded), jobs);
    store.close().unwrap();
    drop(store);
    let mut store = RedbStore::open(&path, OpenMode::MustExist).unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(whole(&mut store, loaded), jobs);
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    write_old_layout(&path, SCHEMA_VERSION + 1, &[]);
    let before = std::fs::read(&path).unwrap();
    let err = RedbStore::open(&path, OpenMode::MustExist).unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found, supported, .. } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}
