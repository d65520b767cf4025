//! Faults below the store: a full disk and an I/O error during a commit give typed errors, the
//! failed store refuses further commits (a poisoned transaction is never retried in place), and
//! reopening the same bytes finds exactly what was acknowledged before the fault.

mod common;

use backwork_persistence::{RedbStore, StoreError};
use backwork_scheduler::{AllowAll, ChangeSet, Event, JobId, JobRequest, Scheduler, Store};
use common::Disk;

fn change_sets(n: u64) -> Vec<ChangeSet> {
    let mut core = Scheduler::new(Default::default(), Box::new(AllowAll));
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let mut b = [0u8; 10];
        b[2..].copy_from_slice(&i.to_be_bytes());
        let request = JobRequest::once("w").input(serde_json::json!({ "pad": "x".repeat(2000) }));
        core.handle(
            now,
            Event::Enqueue {
                id: JobId::new_v7(now, b),
                request,
            },
        )
        .unwrap();
        while let Some(a) = core.poll_action() {
            if let backwork_scheduler::Action::Persist(cs) = a {
                out.push(cs);
            }
        }
    }
    out
}

fn fault(errno: i32) -> (StoreError, StoreError, usize) {
    let disk = Disk::default();
    let sets = change_sets(6);
    let mut store = RedbStore::with_backend(disk.clone(), "disk").unwrap();
    for cs in &sets[..3] {
        store.commit(cs).unwrap();
    }
    disk.fail_with(errno);
    let first = store.commit(&sets[3]).unwrap_err();
    disk.fail_with(0);
    let again = store.commit(&sets[4]).unwrap_err();
    drop(store);
    let mut reopened = RedbStore::with_backend(disk.copy(), "disk").unwrap();
    let found = reopened.load().unwrap().len();
    (first, again, found)
}

#[test]
fn a_full_disk_is_a_typed_error_and_loses_nothing_acknowledged() {
    let (first, again, found) = fault(28); // ENOSPC
    assert!(matches!(first, StoreError::DiskFull { .. }), "{first:?}");
    assert!(first.to_string().contains("is full; free some space"));
    assert!(again.to_string().contains("must be reopened"), "{again}");
    assert_eq!(
        found, 3,
        "the three acknowledged jobs, and not the refused ones"
    );
}

#[test]
fn an_io_error_is_a_typed_error_and_the_store_must_be_reopened() {
    let (first, again, found) = fault(5); // EIO
    assert!(
        matches!(
            first,
            StoreError::Io {
                action: "commit",
                ..
            }
        ),
        "{first:?}"
    );
    assert!(matches!(again, StoreError::Io { .. }));
    assert_eq!(found, 3);
}

#[tokio::test(start_paused = true)]
async fn the_runtime_reopens_the_store_after_an_io_error() {
    use backwork_scheduler::{JobState, Runtime, TokioClock, WorkResult, worker_fn};
    use std::time::Duration;
    let disk = Disk::default();
    let rt = Runtime::builder()
        .clock(TokioClock::starting_at(
            "2026-01-01T00:00:00Z".parse().unwrap(),
        ))
        .store(RedbStore::with_backend(disk.clone(), "disk").unwrap())
        .worker("w", worker_fn(|_| async { WorkResult::success() }))
        .start()
        .await
        .unwrap();
    let kept = rt
        .enqueue(JobRequest::once("w").delay(Duration::from_secs(3600)))
        .await
        .unwrap();
    disk.fail_with(5); // EIO
    let err = rt.enqueue(JobRequest::once("w")).await.unwrap_err();
    assert!(err.to_string().contains("failed to commit"), "{err}");
    disk.fail_with(0);
    // the runtime refuses writes at once while the store is down and tries to reopen it with
    // backoff (at most 10 s apart): let it see the disk is back
    tokio::time::sleep(Duration::from_secs(11)).await;
    let jobs = rt.jobs().await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [kept]);
    let next = rt.enqueue(JobRequest::once("w")).await.unwrap();
    rt.wait_idle().await.unwrap();
    assert_eq!(
        rt.job(next).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}
