//! A record written by a newer backwork — a newer record format, or an enum variant this one
//! does not know (a stop reason added later, say) — is refused on open with
//! `StoreError::Corrupt` naming the job, never a panic and never a silent misreading, and the
//! file is left as it was. Guards the versioning rule of the layout (`persistence/src/layout.rs`).

use std::path::Path;

use backwork_persistence::{OpenMode, RedbStore, StoreError, fuzzing::encode};
use backwork_scheduler::{ChangeSet, Event, JobId, JobRequest, Scheduler, StopReason, Store};

/// A store holding one job whose record is `patch`ed after encoding (written with redb directly).
fn store_with_patched_record(path: &Path, patch: impl Fn(&mut Vec<u8>)) -> JobId {
    let mut core = Scheduler::new(Default::default(), Box::new(backwork_scheduler::AllowAll))
        // the seed's jobs whole, payloads included: a core without a store keeps them
        .without_persistence();
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    let id = JobId::new_v7(now, [7; 10]);
    core.handle(
        now,
        Event::Enqueue {
            id,
            request: JobRequest::once("w"),
        },
    )
    .unwrap();
    let mut job = core.job(id).unwrap().clone();
    job.stop_reason = Some(StopReason::PrerequisiteFailed(id));
    {
        let mut store = RedbStore::open(path, OpenMode::CreateIfMissing).unwrap();
        store.commit(&ChangeSet::whole([job.clone()])).unwrap();
        store.close().unwrap();
    }
    let mut bytes = encode(&job, None);
    patch(&mut bytes);
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut jobs = txn
            .open_table(redb::TableDefinition::<u128, &[u8]>::new("jobs"))
            .unwrap();
        jobs.insert(id.as_u128(), bytes.as_slice()).unwrap();
    }
    txn.commit().unwrap();
    id
}

fn refused(path: &Path, id: JobId) -> String {
    let before = std::fs::read(path).unwrap();
    let err = RedbStore::open(path, OpenMode::MustExist).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&id.to_string()),
        "the message names the job: {text}"
    );
    assert_eq!(
        std::fs::read(path).unwrap(),
        before,
        "the file is left as it was"
    );
    text
}

#[test]
fn a_newer_record_format_is_refused_naming_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    // byte 0 is the record's format version; this binary reads 1 to 4
    let id = store_with_patched_record(&path, |b| b[0] = 5);
    let text = refused(&path, id);
    assert!(text.contains("newer"), "{text}");
}

#[test]
fn an_unknown_stop_reason_is_refused_naming_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    // The record ends with: stop_reason = Some (1) · variant 7, prerequisite failed · its job id
    // (16 bytes) · finished_at = None (0) · force (0, 0) · (format 3) input merger (0) ·
    // expedited = None (0) · (format 4) no input inside the record (0).
    // Variant 10 does not exist (yet): 8 and 9 are the coded policy stops.
    let id = store_with_patched_record(&path, |b| {
        let at = b.len() - 23;
        assert_eq!(
            (b[at - 1], b[at]),
            (1, 7),
            "the layout changed: update this test"
        );
        b[at] = 10;
    });
    refused(&path, id);
}
