//! A store written in the previous schema (version 1: records only, no index tables) opens, is
//! migrated in place to the current schema, and answers index lookups.

use backwork_persistence::{OpenMode, RedbStore, SCHEMA_VERSION};
use backwork_scheduler::{Event, JobId, JobRequest, JobState, Scheduler, Store};

#[test]
fn a_schema_1_store_is_migrated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut core = Scheduler::new(Default::default(), Box::new(backwork_scheduler::AllowAll));
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    for i in 0..50u64 {
        let mut bytes = [0u8; 10];
        bytes[2..].copy_from_slice(&i.to_be_bytes());
        let req = JobRequest::once("w").tag(if i % 2 == 0 { "even" } else { "odd" });
        core.handle(
            now,
            Event::Enqueue {
                id: JobId::new_v7(now, bytes),
                request: req,
            },
        )
        .unwrap();
    }
    let jobs: Vec<_> = core.jobs().cloned().collect();

    // the version-1 layout, written with redb directly as an older backwork would have
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn
                .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .unwrap();
            meta.insert("schema_version", 1).unwrap();
            let mut t = txn
                .open_table(redb::TableDefinition::<u128, &[u8]>::new("jobs"))
                .unwrap();
            for j in &jobs {
                t.insert(j.id.as_u128(), serde_json::to_vec(j).unwrap().as_slice())
                    .unwrap();
            }
        }
        txn.commit().unwrap();
    }

    let mut store = RedbStore::open(&path, OpenMode::MustExist).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.load().unwrap(), jobs);
    assert_eq!(store.ids_tagged("even").unwrap().len(), 25);
    assert_eq!(store.ids_in_state(JobState::Enqueued).unwrap().len(), 50);
    store.close().unwrap();
    // and the migration is not repeated
    let store = RedbStore::open(&path, OpenMode::MustExist).unwrap();
    assert_eq!(store.ids_tagged("odd").unwrap().len(), 25);
}
