//! A store with hundreds of jobs damaged on disk — a live page, one record, the header, the
//! tail — makes `backwork list` (no daemon) and `backwork daemon` exit 4 with an `error:`
//! sentence that names the file and says it was left untouched, never a panic; the file is
//! byte-for-byte what it was before the command ran.

use std::path::Path;
use std::process::{Command, Output};

use backwork_persistence::{OpenMode, RedbStore};
use backwork_scheduler::{AllowAll, ChangeSet, Event, JobId, JobRequest, Scheduler, Store};

const BIN: &str = env!("CARGO_BIN_EXE_backwork");
const JOBS: usize = 300;

fn backwork(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .env("BACKWORK_STORE", dir.join("store.redb"))
        .env("BACKWORK_SOCKET", dir.join("control.sock"))
        .env("COLUMNS", "200")
        .output()
        .unwrap()
}

/// A store of `JOBS` jobs due in an hour, written in batches of 25 and closed cleanly.
fn make_store(path: &Path) {
    // without a store, the core keeps the payloads: the seed's jobs come whole
    let mut core = Scheduler::new(Default::default(), Box::new(AllowAll)).without_persistence();
    let now = chrono::Utc::now();
    let mut store = RedbStore::open(path, OpenMode::CreateIfMissing).unwrap();
    for batch in 0..JOBS / 25 {
        let mut upserts = Vec::new();
        for i in batch * 25..(batch + 1) * 25 {
            let mut bytes = [0u8; 10];
            bytes[2..].copy_from_slice(&(i as u64).to_be_bytes());
            let id = JobId::new_v7(now, bytes);
            core.handle(
                now,
                Event::Enqueue {
                    id,
                    request: JobRequest::once("command")
                        .delay(std::time::Duration::from_secs(3600))
                        .input(serde_json::json!({ "marker": format!("record-{i:04}"), "pad": "x".repeat(300) })),
                },
            )
            .unwrap();
            upserts.push(core.job(id).unwrap().clone());
        }
        store.commit(&ChangeSet::whole(upserts)).unwrap();
    }
    store.close().unwrap();
}

fn garbage(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| ((i ^ seed).wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

fn check(what: &str, damage: impl Fn(&mut Vec<u8>)) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    make_store(&path);
    let healthy = backwork(&["list", "--json"], dir.path());
    assert!(healthy.status.success(), "{healthy:?}");
    assert_eq!(healthy.stdout.iter().filter(|&&b| b == b'\n').count(), JOBS);
    let mut bytes = std::fs::read(&path).unwrap();
    damage(&mut bytes);
    std::fs::write(&path, &bytes).unwrap();
    for args in [&["list"][..], &["daemon", "--device", "manual"][..]] {
        let out = backwork(args, dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{what}, {args:?}: {out:?}");
        assert!(
            err.starts_with(&format!(
                "error: the job store {} is corrupt (",
                path.display()
            )),
            "{what}, {args:?}: {err}"
        );
        assert!(err.contains("it was left untouched"), "{err}");
        assert!(!err.contains("panicked"), "{what}, {args:?}: {err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{what}, {args:?}: the file changed"
        );
    }
}

#[test]
fn a_live_page_overwritten() {
    // every page holding the first job's input: its live page is among them (copy-on-write may
    // have left older copies in freed pages), and it is live in every commit since the first
    check("the pages of the first job's input", |b| {
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
}

#[test]
fn bad_bytes_inside_one_record() {
    check("512 bytes of a record", |b| {
        let at = b
            .windows(11)
            .position(|w| w == b"record-0150")
            .expect("the record is in the file");
        b[at..at + 512].copy_from_slice(&garbage(512, 2));
    });
}

#[test]
fn a_damaged_header() {
    check("the header's commit slots", |b| {
        b[64..320].copy_from_slice(&garbage(256, 3));
    });
}

#[test]
fn a_damaged_tail() {
    check("the last page holding a record", |b| {
        let at = b.windows(7).rposition(|w| w == b"record-").unwrap() / 4096 * 4096;
        b[at..at + 4096].copy_from_slice(&garbage(4096, 4));
    });
}
