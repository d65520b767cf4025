//! Jobs written through the store come back identical after a reopen — scheduling fields,
//! inputs, outputs and histories — one at a time (`get`), by id (`payloads`) and all at once
//! (`load`, which gives the scheduling fields only: the core keeps no payloads), and removing
//! a job removes its record, its payloads and its runs in the same commit. Guards against a
//! field lost or altered by the record encoding and against rows left behind by a removal.

use backwork_persistence::{OpenMode, RedbStore, SCHEMA_VERSION};
use backwork_scheduler::{
    ChangeSet, ConflictPolicy, Event, Job, JobId, JobRequest, JobState, RunRecord, RunResult,
    RunWrite, Scheduler, StopReason, Store,
};
use redb::ReadableDatabase;
use serde_json::json;
use std::time::Duration;

/// Jobs made by the real core, so the records have realistic contents.
fn jobs() -> Vec<Job> {
    // without a store, the core keeps the payloads: the jobs come whole
    let mut core = Scheduler::new(Default::default(), Box::new(backwork_scheduler::AllowAll))
        .without_persistence();
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    let reqs = [
        JobRequest::once("a")
            .tag("t1")
            .tag("t2")
            .input(json!({"k": [1, 2]})),
        JobRequest::once("b")
            .delay(Duration::from_secs(60))
            .unique("nightly", ConflictPolicy::Keep),
        JobRequest::periodic("c", Duration::from_secs(3600)).tag("t1"),
    ];
    for (i, r) in reqs.into_iter().enumerate() {
        let id = JobId::new_v7(now, [i as u8; 10]);
        core.handle(now, Event::Enqueue { id, request: r }).unwrap();
    }
    core.jobs().collect()
}

/// The number of rows of job `id` in the `payloads` and `runs` tables (read with redb directly).
fn rows_of(path: &std::path::Path, id: JobId) -> (usize, usize) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let k = id.as_u128();
    let payloads = txn
        .open_table(redb::TableDefinition::<(u128, u8), &[u8]>::new("payloads"))
        .unwrap();
    let runs = txn
        .open_table(redb::TableDefinition::<(u128, u64), &[u8]>::new("runs"))
        .unwrap();
    (
        payloads.range((k, 0u8)..=(k, u8::MAX)).unwrap().count(),
        runs.range((k, 0u64)..=(k, u64::MAX)).unwrap().count(),
    )
}

#[test]
fn jobs_survive_a_reopen_and_a_removal_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut jobs = jobs();
    // a finished job with an output and a history, its fields at their extremes
    let mut done = jobs[0].clone();
    done.id = JobId::new_v7("2026-01-01T00:00:00Z".parse().unwrap(), [9; 10]);
    done.state = JobState::Failed;
    done.runs_total = 12;
    done.cycle = u64::MAX;
    done.attempt = u32::MAX;
    done.stop_reason = Some(StopReason::Policy(backwork_scheduler::PolicyStop::new(
        "standby_quota_jobs",
        "quota: 3 runs a day",
    )));
    done.output = Some(json!(null));
    // an input over the 256 bytes a record keeps inside itself: stored in `payloads`
    done.request.input = json!({ "blob": "x".repeat(300) });
    done.finished_at = Some("2026-01-01T00:00:01.123456789Z".parse().unwrap());
    done.history = (0..2)
        .map(|k| RunRecord {
            attempt: k + 1,
            started: "2026-01-01T00:00:00.5Z".parse().unwrap(),
            finished: "2026-01-01T00:00:01.123456789Z".parse().unwrap(),
            result: RunResult::Failure,
            output: Some(json!({"k": k})),
            stop_reason: Some(StopReason::PrerequisiteFailed(jobs[1].id)),
            note: Some("a note".into()),
        })
        .collect();
    jobs.push(done.clone());
    {
        let mut store = RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap();
        assert!(store.load().unwrap().is_empty());
        store.commit(&ChangeSet::whole(jobs.clone())).unwrap();
        store.close().unwrap();
    }
    assert_eq!(
        rows_of(&path, done.id),
        (2, 2),
        "an input too big for its record, an output and two runs"
    );
    assert_eq!(
        rows_of(&path, jobs[0].id),
        (0, 0),
        "a small input lives inside its record"
    );
    assert_eq!(rows_of(&path, jobs[1].id), (0, 0), "no input is no row");

    let mut store = RedbStore::open(&path, OpenMode::MustExist).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let bare: Vec<Job> = jobs
        .iter()
        .map(|j| {
            let mut j = j.clone();
            j.request.input = serde_json::Value::Null;
            j.output = None;
            j.history.clear();
            j
        })
        .collect();
    assert_eq!(
        store.load().unwrap(),
        bare,
        "a load skips payloads and runs"
    );
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    let payloads = store.payloads(&ids, true).unwrap();
    for (job, p) in jobs.iter().zip(&payloads) {
        assert_eq!(
            (&p.input, &p.output, &p.history),
            (&job.request.input, &job.output, &job.history),
            "the payloads of {} by id",
            job.id
        );
    }
    let without_runs = store.payloads(&[done.id], false).unwrap();
    assert!(without_runs[0].history.is_empty() && without_runs[0].output == done.output);
    let unknown = JobId::new_v7("2026-01-01T00:00:00Z".parse().unwrap(), [200; 10]);
    assert_eq!(
        store.payloads(&[unknown], true).unwrap(),
        [backwork_scheduler::Payloads::default()],
        "an unknown id has empty payloads"
    );
    assert_eq!(store.get(done.id).unwrap().as_ref(), Some(&done));
    assert_eq!(store.get(jobs[1].id).unwrap().as_ref(), Some(&jobs[1]));

    // a run numbered past the history length prunes the oldest; a removal removes everything
    let mut cs = ChangeSet {
        removes: vec![done.id],
        runs: vec![RunWrite {
            id: jobs[2].id,
            number: 5,
            record: done.history[0].clone(),
        }],
        history_len: 1,
        ..Default::default()
    };
    cs.runs.insert(
        0,
        RunWrite {
            id: jobs[2].id,
            number: 4,
            record: done.history[1].clone(),
        },
    );
    store.commit(&cs).unwrap();
    assert_eq!(store.len().unwrap(), 3);
    assert!(store.get(done.id).unwrap().is_none());
    assert_eq!(
        store.get(jobs[2].id).unwrap().unwrap().history,
        [done.history[0].clone()],
        "only the last run is kept"
    );
    store.close().unwrap();
    drop(store);
    assert_eq!(rows_of(&path, done.id), (0, 0));
}
