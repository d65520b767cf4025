//! A process whose store file is deleted, or replaced by another file at the same path, while it
//! holds it open notices before acknowledging: the commit fails with `StoreError::Replaced`
//! (a sentence that says so), never reports success for a change written into a file nobody
//! will open again, and a reopen uses the file the path names now.

use std::fs;
use std::path::Path;

use backwork_persistence::{OpenMode, RedbStore, StoreError};
use backwork_scheduler::{AllowAll, ChangeSet, Event, JobId, JobRequest, Scheduler, Store};

fn change(i: u64) -> ChangeSet {
    let mut core = Scheduler::new(Default::default(), Box::new(AllowAll))
        // the seed's jobs whole, payloads included: a core without a store keeps them
        .without_persistence();
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    let mut bytes = [0u8; 10];
    bytes[2..].copy_from_slice(&i.to_be_bytes());
    let id = JobId::new_v7(now, bytes);
    core.handle(
        now,
        Event::Enqueue {
            id,
            request: JobRequest::once("w").delay(std::time::Duration::from_secs(60)),
        },
    )
    .unwrap();
    ChangeSet::whole(vec![core.job(id).unwrap().clone()])
}

fn count(path: &Path) -> usize {
    RedbStore::open(path, OpenMode::MustExist)
        .unwrap()
        .load()
        .unwrap()
        .len()
}

#[test]
fn a_deleted_store_file_stops_acknowledging() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut store = RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    store.commit(&change(1)).unwrap();
    fs::remove_file(&path).unwrap();
    let err = store.commit(&change(2)).unwrap_err();
    assert!(matches!(err, StoreError::Replaced { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("was deleted or replaced"), "{text}");
    assert!(text.contains("not saved"), "{text}");
    // and it keeps refusing until reopened
    assert!(store.commit(&change(3)).is_err());
    assert!(matches!(
        store.reopen().unwrap_err(),
        StoreError::Missing { .. }
    ));
}

#[test]
fn a_store_file_replaced_by_another_stops_acknowledging_and_reopen_uses_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let other = dir.path().join("other.redb");
    let mut store = RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    store.commit(&change(1)).unwrap();
    {
        let mut o = RedbStore::open(&other, OpenMode::CreateIfMissing).unwrap();
        o.commit(&change(10)).unwrap();
        o.commit(&change(11)).unwrap();
        o.close().unwrap();
    }
    fs::rename(&other, &path).unwrap();
    let err = store.commit(&change(2)).unwrap_err();
    assert!(matches!(err, StoreError::Replaced { .. }), "{err:?}");
    store.reopen().unwrap();
    assert_eq!(store.load().unwrap().len(), 2, "the file at the path now");
    store.commit(&change(3)).unwrap();
    drop(store);
    assert_eq!(count(&path), 3);
}
