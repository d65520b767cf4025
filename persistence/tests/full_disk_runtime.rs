//! A full disk (an injected ENOSPC below redb, for where a test cannot mount a small file
//! system; `cli/tests/full_disk.rs` does it on a real tmpfs) under a running runtime: reads
//! keep answering with exactly what was acknowledged, writes fail at once with `DiskFull`, and
//! a write refused with "disk full" is never applied later, when space is back.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use backwork_persistence::{RedbStore, StoreError};
use backwork_scheduler::{
    JobId, JobRequest, Runtime, RuntimeError, TokioClock, WorkResult, worker_fn,
};
use common::Disk;

const ENOSPC: i32 = 28;

fn later() -> JobRequest {
    JobRequest::once("w").delay(Duration::from_secs(3600))
}

async fn ids(rt: &Runtime) -> BTreeSet<JobId> {
    rt.jobs().await.unwrap().iter().map(|j| j.id).collect()
}

fn is_disk_full(r: Result<JobId, RuntimeError>) -> bool {
    matches!(r, Err(RuntimeError::Store(StoreError::DiskFull { .. })))
}

#[tokio::test(start_paused = true)]
async fn reads_answer_writes_fail_fast_and_nothing_refused_is_applied_later() {
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
    let mut acked = BTreeSet::new();
    for _ in 0..5 {
        acked.insert(rt.enqueue(later()).await.unwrap());
    }

    disk.fail_with(ENOSPC);
    for _ in 0..20 {
        let start = tokio::time::Instant::now();
        let refused = rt.enqueue(later()).await;
        assert!(is_disk_full(refused.clone()), "{refused:?}");
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("is full; free some space"),
        );
        // no waiting on the store's retry pause: the refusal is immediate
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(ids(&rt).await, acked, "reads show exactly what is durable");
        assert!(rt.device().await.is_ok());
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    // a batch, a cancel: refused too, changing nothing
    let many = rt.enqueue_many(vec![later(), later()]).await;
    assert!(
        matches!(many, Err(RuntimeError::Store(StoreError::DiskFull { .. }))),
        "{many:?}"
    );
    let first = *acked.iter().next().unwrap();
    let cancel = rt.cancel(backwork_scheduler::Selector::Id(first)).await;
    assert!(cancel.is_err(), "{cancel:?}");

    // space is back: within the longest retry pause (10 s) writes are made again
    disk.fail_with(0);
    tokio::time::sleep(Duration::from_secs(11)).await;
    let new = rt.enqueue(later()).await.unwrap();
    let mut expected = acked.clone();
    expected.insert(new);
    assert_eq!(
        ids(&rt).await,
        expected,
        "the acknowledged jobs and the new one, none of the refused"
    );
    rt.shutdown(Duration::from_secs(1)).await.unwrap();

    // and on disk, after a reopen from the bytes
    let mut reopened = RedbStore::with_backend(disk.clone(), "disk").unwrap();
    let stored: BTreeSet<JobId> = backwork_scheduler::Store::load(&mut reopened)
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(stored, expected);
}
