//! A full disk (an injected ENOSPC below redb, for where a test cannot mount a small file
//! system; `cli/tests/full_disk.rs` does it on a real tmpfs) under a running runtime: reads
//! keep answering with exactly what was acknowledged, writes fail at once with `DiskFull`, and
//! a write refused with "disk full" is never applied later, when space is back.

use std::collections::BTreeSet;
use std::io;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backwork_persistence::{RedbStore, StoreError};
use backwork_scheduler::{
    JobId, JobRequest, Runtime, RuntimeError, TokioClock, WorkResult, worker_fn,
};

/// An in-memory disk whose writes and syncs fail with `errno` once it is set; reads work.
#[derive(Debug, Clone, Default)]
struct Disk {
    bytes: Arc<Mutex<Vec<u8>>>,
    errno: Arc<AtomicI32>,
}

impl Disk {
    fn fail_with(&self, errno: i32) {
        self.errno.store(errno, Ordering::SeqCst);
    }
    fn check(&self) -> io::Result<()> {
        match self.errno.load(Ordering::SeqCst) {
            0 => Ok(()),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }
}

impl redb::StorageBackend for Disk {
    fn len(&self) -> io::Result<u64> {
        Ok(self.bytes.lock().unwrap().len() as u64)
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let b = self.bytes.lock().unwrap();
        let (s, e) = (offset as usize, offset as usize + out.len());
        if e > b.len() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "past the end"));
        }
        out.copy_from_slice(&b[s..e]);
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check()?;
        self.bytes.lock().unwrap().resize(len as usize, 0);
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()> {
        self.check()
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check()?;
        let mut b = self.bytes.lock().unwrap();
        let e = offset as usize + data.len();
        if e > b.len() {
            b.resize(e, 0);
        }
        b[offset as usize..e].copy_from_slice(data);
        Ok(())
    }
}

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
