//! Opening a store that cannot be used gives a typed error with advice, and never touches the
//! file: a store in use by another process, an emptied file, a truncated file, a corrupt file, a
//! newer schema, a missing file.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use backwork_persistence::{OpenMode, RedbStore, StoreError};
use backwork_scheduler::{ChangeSet, JobId, Store};

fn make_store(path: &std::path::Path, n: usize) {
    let mut core = backwork_scheduler::Scheduler::new(
        Default::default(),
        Box::new(backwork_scheduler::AllowAll),
    )
    // the seed's jobs whole, payloads included: a core without a store keeps them
    .without_persistence();
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    for i in 0..n {
        let mut bytes = [0u8; 10];
        bytes[2..].copy_from_slice(&(i as u64).to_be_bytes());
        let id = JobId::new_v7(now, bytes);
        core.handle(
            now,
            backwork_scheduler::Event::Enqueue {
                id,
                request: backwork_scheduler::JobRequest::once("w")
                    .delay(std::time::Duration::from_secs(3600))
                    .input(serde_json::json!({ "i": i, "pad": "x".repeat(200) })),
            },
        )
        .unwrap();
    }
    let mut store = RedbStore::open(path, OpenMode::CreateIfMissing).unwrap();
    store.commit(&ChangeSet::whole(core.jobs())).unwrap();
    store.close().unwrap();
}

#[test]
fn an_empty_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    fs::write(&path, b"").unwrap();
    let err = RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap_err();
    assert!(matches!(err, StoreError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("left untouched"));
    assert_eq!(fs::metadata(&path).unwrap().len(), 0);
}

#[test]
fn a_truncated_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    make_store(&path, 2000);
    let full = fs::read(&path).unwrap();
    for cut in [full.len() / 2, full.len() / 2 + 100, 4096 + 17, 600] {
        fs::write(&path, &full[..cut]).unwrap();
        let err = RedbStore::open(&path, OpenMode::CreateIfMissing)
            .err()
            .unwrap_or_else(|| panic!("a file cut to {cut} of {} bytes opened", full.len()));
        assert!(
            matches!(err, StoreError::Truncated { .. }),
            "cut at {cut}: {err:?}"
        );
        assert_eq!(
            fs::read(&path).unwrap(),
            &full[..cut],
            "the file must be left untouched"
        );
    }
}

#[test]
fn a_corrupt_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let garbage: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    fs::write(&path, &garbage).unwrap();
    let err = RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap_err();
    // it does not begin with redb's magic number (redb's docs/design.md, "Database header")
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err:?}");
    assert!(err.to_string().contains("is not a job store"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), garbage);
    // with redb's 9-byte magic number in front, the same bytes are a damaged store
    let mut damaged = b"redb\x1A\x0A\xA9\x0D\x0A".to_vec();
    damaged.extend_from_slice(&garbage[9..]);
    fs::write(&path, &damaged).unwrap();
    let err = RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(fs::read(&path).unwrap(), damaged);
}

#[test]
fn a_text_file_is_no_store_and_is_left_alone() {
    // pointing the store at the wrong file: a short text file is not "truncated", and the
    // error shows how it begins
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    for text in [&b"hello, world!\n\n"[..], b"x", b"redis dump\n"] {
        fs::write(&path, text).unwrap();
        let err = RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap_err();
        assert!(matches!(err, StoreError::NotAStore { .. }), "{err:?}");
        let said = err.to_string();
        assert!(said.contains("left untouched"), "{said}");
        let first = String::from_utf8_lossy(&text[..text.len().min(5)]).to_string();
        assert!(said.contains(&first), "{said}");
        assert_eq!(fs::read(&path).unwrap(), text);
    }
    // the first bytes of a store, cut short, are a truncated store
    fs::write(&path, b"redb\x1A").unwrap();
    let err = RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap_err();
    assert!(matches!(err, StoreError::Truncated { .. }), "{err:?}");
    assert!(err.to_string().contains("5 bytes long"), "{err}");
}

#[test]
fn a_path_that_names_no_file_is_no_store_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("a-directory");
    fs::create_dir(&sub).unwrap();
    let fifo = dir.path().join("a-fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let dangling = dir.path().join("dangling.redb");
    std::os::unix::fs::symlink(dir.path().join("gone.redb"), &dangling).unwrap();
    let (loop1, loop2) = (dir.path().join("loop1"), dir.path().join("loop2"));
    std::os::unix::fs::symlink(&loop2, &loop1).unwrap();
    std::os::unix::fs::symlink(&loop1, &loop2).unwrap();
    for (path, what) in [
        (sub.as_path(), "a directory"),
        (Path::new("/dev/null"), "a character device"),
        (fifo.as_path(), "a FIFO"),
        (dangling.as_path(), "a symbolic link to a missing file"),
        (loop1.as_path(), "a symbolic link that leads back to itself"),
    ] {
        for mode in [OpenMode::CreateIfMissing, OpenMode::MustExist] {
            let err = RedbStore::open(path, mode).unwrap_err();
            assert!(matches!(err, StoreError::NotAFile { .. }), "{err:?}");
            assert!(err.to_string().contains(what), "{err}");
        }
    }
    // nothing was made through the link, and the directory holds what it held
    assert!(!dir.path().join("gone.redb").exists());
    assert_eq!(fs::read_dir(&sub).unwrap().count(), 0);
}

#[test]
fn a_store_this_user_may_not_write_is_refused_as_such() {
    if nix::unistd::geteuid().is_root() {
        eprintln!("skipped: root may write any file");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    make_store(&path, 1);
    let before = fs::read(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    let err = RedbStore::open(&path, OpenMode::MustExist).unwrap_err();
    assert!(
        matches!(err, StoreError::PermissionDenied { .. }),
        "{err:?}"
    );
    assert_eq!(fs::read(&path).unwrap(), before);
    // a text file this user may only read is still told to be no store at all
    let text = dir.path().join("notes.txt");
    fs::write(&text, "hello\n").unwrap();
    fs::set_permissions(&text, fs::Permissions::from_mode(0o444)).unwrap();
    let err = RedbStore::open(&text, OpenMode::MustExist).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err:?}");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    make_store(&path, 1);
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn
                .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .unwrap();
            meta.insert("schema_version", 99).unwrap();
        }
        txn.commit().unwrap();
    }
    let err = RedbStore::open(&path, OpenMode::MustExist).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NewerSchema {
                found: 99,
                supported: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("upgrade backwork"));
}

#[test]
fn a_missing_store_is_created_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("store.redb");
    let err = RedbStore::open(&path, OpenMode::MustExist).unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }));
    assert!(!path.exists());
    RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    assert!(path.exists());
    let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
}

/// Held by the tests that fork a child and by the one that names this process as the holder:
/// between its fork and its exec, a child holds every descriptor of this process (close-on-exec
/// closes them only at the exec), so the other test would see it holding the store too.
static FORKS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_second_open_in_this_process_is_refused() {
    let _no_fork = FORKS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let _first = RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    let err = RedbStore::open(&path, OpenMode::MustExist).unwrap_err();
    let StoreError::Locked { holder, .. } = &err else {
        panic!("{err:?}");
    };
    // the holder is this very process
    let me = format!("process {} ", std::process::id());
    assert!(
        holder.as_ref().is_some_and(|h| h.starts_with(&me)),
        "{holder:?}"
    );
    assert!(err.to_string().contains("is in use by process"), "{err}");
}

/// Helper run in a child process by the next test: holds the store open until stdin closes.
#[test]
#[ignore = "run by a_second_process_gets_the_in_use_error"]
fn helper_hold_store() {
    let Some(path) = std::env::var_os("BACKWORK_HOLD_STORE") else {
        return;
    };
    let _store = RedbStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    println!("holding");
    let mut buf = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut buf);
}

#[test]
fn a_second_process_gets_the_in_use_error() {
    let _fork = FORKS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_hold_store",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BACKWORK_HOLD_STORE", &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // wait until the child says it holds the store
    let mut out = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut byte = [0u8; 1];
    while !seen.contains("holding") {
        if out.read(&mut byte).unwrap() == 0 {
            panic!("the helper exited before holding the store: {seen}");
        }
        seen.push(byte[0] as char);
    }
    let err = RedbStore::open(&path, OpenMode::MustExist).unwrap_err();
    let StoreError::Locked { holder, .. } = &err else {
        panic!("{err:?}");
    };
    // the message names the process that holds the store
    let them = format!("process {} ", child.id());
    assert!(
        holder.as_ref().is_some_and(|h| h.starts_with(&them)),
        "{holder:?}"
    );
    drop(child.stdin.take());
    child.wait().unwrap();
    // once the other process is gone, the store opens
    RedbStore::open(&path, OpenMode::MustExist).unwrap();
}
