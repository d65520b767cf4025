//! A store file damaged on disk — a live page overwritten, bad bytes inside one record, a
//! damaged header, a damaged tail — is refused on open with `StoreError::Corrupt` (or
//! `Truncated`, or `NotAStore` when its first bytes are gone) whose sentence is true about the file, never with a panic, and the open leaves
//! the file byte-for-byte as it found it: no repair, no truncation, on a file we call corrupt.
//! Both a cleanly closed store and one a crash left open (which redb would repair) are tried,
//! except for the tail of a crash image (see `lost_commit.rs`).

use std::fs;
use std::path::Path;

use backwork_persistence::{OpenMode, RedbStore, StoreError};
use backwork_scheduler::{ChangeSet, JobId, Store};

const JOBS: usize = 400;

/// Writes `JOBS` jobs in batches of 20; `clean` closes the store, otherwise the bytes are
/// copied while it is still open (the image a crash leaves, which needs redb's repair).
fn make_store(path: &Path, clean: bool) {
    let mut core = backwork_scheduler::Scheduler::new(
        Default::default(),
        Box::new(backwork_scheduler::AllowAll),
    )
    // the seed's jobs whole, payloads included: a core without a store keeps them
    .without_persistence();
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    let mut store = RedbStore::open(path, OpenMode::CreateIfMissing).unwrap();
    for batch in 0..JOBS / 20 {
        let mut upserts = Vec::new();
        for i in batch * 20..(batch + 1) * 20 {
            let mut bytes = [0u8; 10];
            bytes[2..].copy_from_slice(&(i as u64).to_be_bytes());
            let id = JobId::new_v7(now, bytes);
            core.handle(
                now,
                backwork_scheduler::Event::Enqueue {
                    id,
                    request: backwork_scheduler::JobRequest::once("w")
                        .delay(std::time::Duration::from_secs(3600))
                        .input(serde_json::json!({ "i": i, "marker": format!("record-{i:04}"), "pad": "x".repeat(300) })),
                },
            )
            .unwrap();
            upserts.push(core.job(id).unwrap().clone());
        }
        store.commit(&ChangeSet::whole(upserts)).unwrap();
    }
    if clean {
        store.close().unwrap();
    } else {
        let image = fs::read(path).unwrap();
        drop(store);
        fs::write(path, image).unwrap();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("the marker is in the file")
}

/// Deterministic bytes that are not a valid page.
fn garbage(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| ((i ^ seed).wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

/// Damages a fresh store with `damage`, opens it, and returns the error; asserts the open did
/// not change one byte.
fn open_damaged(clean: bool, damage: impl Fn(&mut Vec<u8>)) -> StoreError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    make_store(&path, clean);
    let mut bytes = fs::read(&path).unwrap();
    damage(&mut bytes);
    fs::write(&path, &bytes).unwrap();
    let result = std::panic::catch_unwind(|| RedbStore::open(&path, OpenMode::MustExist));
    let err = match result {
        Err(_) => panic!("opening a damaged store panicked"),
        Ok(Ok(mut store)) => {
            // an open that succeeds must at least load without a panic (redb's checksums
            // did not cover the damage); report what it found
            let loaded = store.load();
            panic!(
                "a damaged store opened: load gave {:?}",
                loaded.map(|j| j.len())
            );
        }
        Ok(Err(e)) => e,
    };
    assert_eq!(
        fs::read(&path).unwrap(),
        bytes,
        "the open changed the file it refused ({err})"
    );
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("left untouched"), "{text}");
    err
}

fn corrupt(err: &StoreError) {
    assert!(
        matches!(
            err,
            StoreError::Corrupt { .. } | StoreError::Truncated { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn a_live_page_overwritten_is_refused_untouched() {
    for clean in [true, false] {
        // every page that holds the first job's input: its live page is among them (copy-on-
        // write may have left older copies in freed pages), and it is live in the latest
        // commit and the one before (damage to the latest commit only is a commit that failed
        // half-way to redb, which opens a crash image at the commit before: `lost_commit.rs`)
        let err = open_damaged(clean, |b| {
            let marker = b"record-0000";
            let pages: Vec<usize> = b
                .windows(marker.len())
                .enumerate()
                .filter(|(_, w)| w == marker)
                .map(|(at, _)| at / 4096 * 4096)
                .collect();
            assert!(!pages.is_empty(), "the marker is in the file");
            for page in pages {
                b[page..page + 4096].copy_from_slice(&garbage(4096, 1));
            }
        });
        corrupt(&err);
        eprintln!("page (clean {clean}): {err}");
    }
}

#[test]
fn bad_bytes_inside_one_record_are_refused_untouched() {
    for clean in [true, false] {
        let err = open_damaged(clean, |b| {
            let at = find(b, b"record-0200");
            b[at..at + 512].copy_from_slice(&garbage(512, 2));
        });
        corrupt(&err);
        eprintln!("record (clean {clean}): {err}");
    }
}

#[test]
fn a_damaged_header_is_refused_untouched() {
    // redb's header: magic number and layout in the first 64 bytes, then two 128-byte commit
    // slots
    for clean in [true, false] {
        for (from, to) in [(0, 512), (64, 192), (192, 320), (64, 320)] {
            let err = open_damaged(clean, |b| {
                b[from..to].copy_from_slice(&garbage(to - from, 3));
            });
            if from == 0 {
                // redb's magic number is gone: the file no longer says it is a redb file
                assert!(matches!(err, StoreError::NotAStore { .. }), "{err:?}");
            } else {
                corrupt(&err);
            }
            eprintln!("header {from}..{to} (clean {clean}): {err}");
        }
    }
}

#[test]
fn a_damaged_tail_is_refused_untouched() {
    // (a crash image whose latest commit is damaged opens at the commit before: a fresh
    // process cannot tell that from a commit that failed half-way; tests/lost_commit.rs)
    // the last page that holds a record, in a cleanly closed store
    let err = open_damaged(true, |b| {
        let at = b.windows(7).rposition(|w| w == b"record-").unwrap() / 4096 * 4096;
        b[at..at + 4096].copy_from_slice(&garbage(4096, 4));
    });
    corrupt(&err);
    eprintln!("tail: {err}");
}

#[test]
fn an_undamaged_store_left_by_a_crash_opens_with_everything() {
    // the control: the same images without damage open (redb repairs the crashed one) and
    // hold every record, so the refusals above are about the damage
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        make_store(&path, clean);
        let image = fs::read(&path).unwrap();
        let mut store = RedbStore::open(&path, OpenMode::MustExist).unwrap();
        assert_eq!(store.load().unwrap().len(), JOBS);
        // a file that passed the check is opened for writing (and repaired if a crash left
        // it): unlike the damaged files above, it is written to
        assert_ne!(fs::read(&path).unwrap(), image);
    }
}
