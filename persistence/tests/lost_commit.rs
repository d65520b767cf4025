//! redb opens a file whose latest commit cannot be read at the commit before it. That is right
//! for a commit that failed half-way (full disk, I/O error: never acknowledged) and wrong for a
//! commit that was acknowledged and then damaged. A process that knows which commits it
//! acknowledged refuses the second (`StoreError::Corrupt`, file untouched) and accepts the
//! first, losing nothing it acknowledged.

mod common;

use backwork_persistence::{RedbStore, StoreError};
use backwork_scheduler::{AllowAll, ChangeSet, Event, JobId, JobRequest, Scheduler, Store};
use common::Disk;

/// Change sets of 20 jobs each, every record carrying a findable marker.
fn batches(n: usize) -> Vec<ChangeSet> {
    let mut core = Scheduler::new(Default::default(), Box::new(AllowAll))
        // the seed's jobs whole, payloads included: a core without a store keeps them
        .without_persistence();
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    (0..n)
        .map(|b| {
            let upserts: Vec<_> = (b * 20..(b + 1) * 20)
                .map(|i| {
                    let mut bytes = [0u8; 10];
                    bytes[2..].copy_from_slice(&(i as u64).to_be_bytes());
                    let id = JobId::new_v7(now, bytes);
                    core.handle(
                        now,
                        Event::Enqueue {
                            id,
                            request: JobRequest::once("w")
                                .delay(std::time::Duration::from_secs(3600))
                                .input(serde_json::json!({ "marker": format!("record-{i:04}"), "pad": "x".repeat(300) })),
                        },
                    )
                    .unwrap();
                    core.job(id).unwrap().clone()
                })
                .collect();
            ChangeSet::whole(upserts)
        })
        .collect()
}

#[test]
fn an_acknowledged_commit_damaged_later_is_refused_on_reopen() {
    let disk = Disk::default();
    let mut store = RedbStore::with_backend(disk.clone(), "disk").unwrap();
    for cs in batches(10) {
        store.commit(&cs).unwrap();
    }
    // damage the page of the newest record while the store is open, then reopen: the close
    // cannot write (the disk fails), so the check sees the image a crash would leave
    {
        let mut b = disk.bytes();
        let at = b.windows(11).position(|w| w == b"record-0199").unwrap() / 4096 * 4096;
        for (k, byte) in b[at..at + 4096].iter_mut().enumerate() {
            *byte = (k as u8).wrapping_mul(151).wrapping_add(7);
        }
        disk.set_bytes(b);
    }
    disk.fail_with(5);
    let before = disk.bytes();
    let err = store.reopen().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("which this process wrote and acknowledged, can no longer be read"),
        "{text}"
    );
    assert_eq!(disk.bytes(), before, "the check wrote nothing");
}

#[test]
fn a_commit_that_failed_half_way_is_dropped_on_reopen() {
    let disk = Disk::default();
    let sets = batches(12);
    let mut store = RedbStore::with_backend(disk.clone(), "disk").unwrap();
    for cs in &sets[..10] {
        store.commit(cs).unwrap();
    }
    // the 11th commit fails on the disk, half-way
    disk.fail_with(28);
    let err = store.commit(&sets[10]).unwrap_err();
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err:?}");
    // space is back: the reopen goes on from the last acknowledged commit
    disk.fail_with(0);
    store.reopen().unwrap();
    let jobs = store.load().unwrap();
    assert_eq!(
        jobs.len(),
        200,
        "the ten acknowledged batches, not the failed one"
    );
    store.commit(&sets[11]).unwrap();
    assert_eq!(store.load().unwrap().len(), 220);
}
