//! Records written through the store come back identical after a reopen, and the index tables
//! answer state, due-time, name and tag lookups.

use backwork_persistence::{OpenMode, RedbStore, SCHEMA_VERSION};
use backwork_scheduler::{
    ChangeSet, ConflictPolicy, Event, Job, JobId, JobRequest, JobState, Scheduler, Store,
};
use std::time::Duration;

/// Jobs made by the real core, so the records have realistic contents.
fn jobs() -> Vec<Job> {
    let mut core = Scheduler::new(Default::default(), Box::new(backwork_scheduler::AllowAll));
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    let reqs = [
        JobRequest::once("a").tag("t1").tag("t2"),
        JobRequest::once("b")
            .delay(Duration::from_secs(60))
            .unique("nightly", ConflictPolicy::Keep),
        JobRequest::periodic("c", Duration::from_secs(3600)).tag("t1"),
    ];
    for (i, r) in reqs.into_iter().enumerate() {
        let id = JobId::new_v7(now, [i as u8; 10]);
        core.handle(now, Event::Enqueue { id, request: r }).unwrap();
    }
    core.jobs().cloned().collect()
}

#[test]
fn records_and_indexes_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let jobs = jobs();
    {
        let mut store = RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap();
        assert!(store.load().unwrap().is_empty());
        store
            .commit(&ChangeSet {
                upserts: jobs.clone(),
                removes: vec![],
            })
            .unwrap();
        store.close().unwrap();
    }
    let mut store = RedbStore::open(&path, OpenMode::MustExist).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.load().unwrap(), jobs);
    assert_eq!(store.get(jobs[1].id).unwrap().as_ref(), Some(&jobs[1]));
    assert_eq!(store.ids_in_state(JobState::Enqueued).unwrap().len(), 3);
    assert_eq!(store.ids_tagged("t1").unwrap(), [jobs[0].id, jobs[2].id]);
    assert_eq!(store.ids_named("nightly").unwrap(), [jobs[1].id]);
    let due_now = store
        .due_by("2026-01-01T00:00:30Z".parse().unwrap())
        .unwrap();
    assert_eq!(due_now, [jobs[0].id, jobs[2].id]);

    // a state change moves the index entries; a removal drops them
    let mut running = jobs[0].clone();
    running.state = JobState::Running;
    store
        .commit(&ChangeSet {
            upserts: vec![running],
            removes: vec![jobs[1].id],
        })
        .unwrap();
    assert_eq!(store.ids_in_state(JobState::Running).unwrap(), [jobs[0].id]);
    assert_eq!(
        store.ids_in_state(JobState::Enqueued).unwrap(),
        [jobs[2].id]
    );
    assert!(store.ids_named("nightly").unwrap().is_empty());
    assert_eq!(store.len().unwrap(), 2);
    assert!(store.get(jobs[1].id).unwrap().is_none());
}
