//! [`RedbStore`]: the scheduler's store on a redb file.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use backwork_scheduler::{ChangeSet, Job, JobId, Payloads, Store, StoreError};
use redb::backends::FileBackend;
use redb::{
    Builder, Database, DatabaseError, Durability, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, StorageBackend, StorageError,
};
use serde_json::Value;

use crate::backend::Backend;
use crate::guard;

use crate::record::{self, RecordError};
use crate::schema::{
    self, INPUT, JOBS, META, MigrationError, OUTPUT, PAYLOADS, RUNS, SCHEMA_VERSION, VERSION_KEY,
};

/// Whether [`RedbStore::open`] may create a missing store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the store (and its directory, 0700) if it does not exist.
    CreateIfMissing,
    /// Fail with [`StoreError::Missing`] if it does not exist.
    MustExist,
}

/// The job registry in a redb file. Open it once per process: a second open, from this process
/// or another, gets [`StoreError::Locked`].
#[derive(Debug)]
pub struct RedbStore {
    db: Option<Database>,
    /// False when `db` is a read-only view (on the checking overlay) kept after a failed
    /// reopen, so reads still answer while writes cannot be made durable (e.g. a full disk).
    writable: bool,
    path: PathBuf,
    /// A buffer the commits encode records into.
    buf: Vec<u8>,
    /// Set after a failed commit: redb may hold a poisoned state, so the store must be reopened.
    failed: bool,
    source: Source,
    /// Device and inode of the file opened (file stores): a commit counts only if the path
    /// still names that file.
    identity: Option<Identity>,
    /// The records decoded by the check of the last open, handed out by the next `load`.
    checked: Option<Vec<Job>>,
    /// The bytes below the writing database, to read redb's header after each commit.
    raw: Option<Arc<dyn StorageBackend>>,
    /// The transaction id of the latest commit this process acknowledged (or found on open).
    acked_txn: Option<u64>,
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

fn io_error(path: &Path, action: &'static str, e: &io::Error) -> StoreError {
    match e.kind() {
        io::ErrorKind::PermissionDenied => StoreError::PermissionDenied {
            path: path_str(path),
            action,
        },
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => StoreError::DiskFull {
            path: path_str(path),
        },
        io::ErrorKind::UnexpectedEof => StoreError::Truncated {
            path: path_str(path),
            detail: match fs::metadata(path) {
                Ok(m) => format!("it is {} bytes long, and redb read past its end", m.len()),
                Err(_) => e.to_string(),
            },
        },
        io::ErrorKind::InvalidData => corrupt_or_truncated(path, e.to_string()),
        _ => StoreError::Io {
            path: path_str(path),
            action,
            detail: e.to_string(),
        },
    }
}

fn storage_error(path: &Path, action: &'static str, e: StorageError) -> StoreError {
    match e {
        StorageError::Corrupted(detail) => corrupt_or_truncated(path, detail),
        StorageError::Io(io) => io_error(path, action, &io),
        StorageError::DatabaseClosed => StoreError::Closed {
            path: path_str(path),
        },
        other => StoreError::Io {
            path: path_str(path),
            action,
            detail: other.to_string(),
        },
    }
}

/// The 9 bytes every redb file begins with: `redb`, then 0x1A 0x0A 0xA9 0x0D 0x0A (redb's
/// `docs/design.md`, "Database header": the magic number).
const REDB_MAGIC: [u8; 9] = *b"redb\x1A\x0A\xA9\x0D\x0A";

/// Checks that `path` names something that can be a store before it is opened for writing:
/// a regular file (through symbolic links) that is not empty and begins with [`REDB_MAGIC`].
/// Read-only, so a file this user may only read is still told apart from a store.
fn check_file(path: &Path) -> Result<(), StoreError> {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    let not_a_file = |kind: String| StoreError::NotAFile {
        path: path_str(path),
        kind,
    };
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) => {
            return Err(not_a_file(
                "a symbolic link that leads back to itself".to_string(),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(match fs::read_link(path) {
                Ok(target) => not_a_file(format!(
                    "a symbolic link to a missing file ({})",
                    target.display()
                )),
                Err(_) => StoreError::Missing {
                    path: path_str(path),
                },
            });
        }
        Err(e) => return Err(io_error(path, "open", &e)),
    };
    let kind = meta.file_type();
    let other = if kind.is_dir() {
        Some("a directory")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        None
    };
    if let Some(other) = other {
        return Err(not_a_file(other.to_string()));
    }
    if meta.len() == 0 {
        return Err(StoreError::Empty {
            path: path_str(path),
        });
    }
    let mut head = Vec::with_capacity(16);
    fs::File::open(path)
        .and_then(|f| io::Read::take(f, 16).read_to_end(&mut head))
        .map_err(|e| io_error(path, "read", &e))?;
    let n = head.len();
    let k = n.min(REDB_MAGIC.len());
    if head[..k] != REDB_MAGIC[..k] {
        return Err(StoreError::NotAStore {
            path: path_str(path),
            begins: head.escape_ascii().to_string(),
        });
    }
    if n < REDB_MAGIC.len() {
        return Err(StoreError::Truncated {
            path: path_str(path),
            detail: format!(
                "it is {n} byte{} long: the first of redb's file signature and nothing more",
                if n == 1 { "" } else { "s" }
            ),
        });
    }
    Ok(())
}

/// redb reports a cut-off file as corruption ("truncated below stored layout"); a file whose
/// length is not a whole number of pages was certainly cut off too.
fn corrupt_or_truncated(path: &Path, detail: String) -> StoreError {
    let len = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if detail.contains("truncated") {
        StoreError::Truncated {
            path: path_str(path),
            detail,
        }
    } else if !len.is_multiple_of(4096) {
        StoreError::Truncated {
            path: path_str(path),
            detail: format!(
                "it is {len} bytes long, not a whole number of 4096-byte pages (redb: {detail})"
            ),
        }
    } else {
        StoreError::Corrupt {
            path: path_str(path),
            detail,
        }
    }
}

/// The process that has `path` open, if one of this user's processes does (Linux: looks through
/// `/proc/*/fd`); "process 1234 (backwork)". Another process is named before this one (which
/// has the file open itself while it finds out it cannot lock it).
fn lock_holder(path: &Path) -> Option<String> {
    let target = std::fs::canonicalize(path).ok()?;
    let procs = std::fs::read_dir("/proc").ok()?;
    let me = std::process::id();
    let mut this_one = None;
    for entry in procs.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me && this_one.is_some() {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue; // another user's process, or gone
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l == target));
        if holds {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            let named = match comm.trim() {
                "" => format!("process {pid}"),
                c => format!("process {pid} ({c})"),
            };
            if pid != me {
                return Some(named);
            }
            this_one = Some(named);
        }
    }
    this_one
}

fn database_error(path: &Path, e: DatabaseError) -> StoreError {
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            StoreError::Locked {
                path: path_str(path),
                holder: lock_holder(path),
            }
        }
        DatabaseError::Storage(s) => storage_error(path, "open", s),
        DatabaseError::RepairAborted => StoreError::Corrupt {
            path: path_str(path),
            detail: "its repair was aborted".into(),
        },
        other => StoreError::Io {
            path: path_str(path),
            action: "open",
            detail: other.to_string(),
        },
    }
}

fn redb_error(path: &Path, action: &'static str, e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::DatabaseAlreadyOpen => StoreError::Locked {
            path: path_str(path),
            holder: None,
        },
        redb::Error::Corrupted(detail) => corrupt_or_truncated(path, detail),
        redb::Error::Io(io) => io_error(path, action, &io),
        other => StoreError::Io {
            path: path_str(path),
            action,
            detail: other.to_string(),
        },
    }
}

/// The builder of the writing open: the repair of a file left by a crash (it runs only on a file
/// that already passed [`RedbStore::check`]) reports its progress.
/// The memory redb may use to cache pages (its default is 1 GiB). The scheduling core reads the
/// store once, at load; after that the store writes records in id order and reads payloads by
/// id, so a small cache serves it: with redb's default, 1 M pending jobs kept ~100 MB of pages
/// cached after their enqueue (W9: the cache was a fifth of the process's resident memory).
pub const CACHE_BYTES: usize = 16 * 1024 * 1024;

fn builder() -> Builder {
    let mut b = Builder::new();
    b.set_cache_size(CACHE_BYTES);
    b.set_repair_callback(|session| {
        tracing::info!(
            progress = format!("{:.0}%", session.progress() * 100.0),
            "repairing the job store after an unclean shutdown"
        );
    });
    b
}

/// The builder of the checking open: it verifies the checksum of every page of the committed
/// trees (redb's integrity check) and reports its progress.
fn check_builder() -> Builder {
    let mut b = Builder::new();
    b.set_cache_size(CACHE_BYTES);
    b.set_check_integrity_on_open(true);
    b.set_repair_callback(|session| {
        tracing::debug!(
            progress = format!("{:.0}%", session.progress() * 100.0),
            "checking the job store"
        );
    });
    b
}

/// A redb panic caught while `action`: the file holds data redb cannot follow.
fn panicked(path: &Path, action: &str, message: String) -> StoreError {
    StoreError::Corrupt {
        path: path_str(path),
        detail: format!("redb stopped on damaged data while {action}: {message}"),
    }
}

/// redb's file header (format version 3, documented in redb's design notes): a 64-byte header
/// whose byte 9 (the "god byte") says which of the two 128-byte commit slots that follow is the
/// primary; each slot holds its transaction id, little-endian, at byte 104.
const HEADER_LEN: usize = 64 + 2 * 128;

/// The transaction id of the primary commit slot of a file header.
fn committed_txn(header: &[u8; HEADER_LEN]) -> u64 {
    let slot = 64 + 128 * usize::from(header[9] & 1);
    let mut id = [0u8; 8];
    id.copy_from_slice(&header[slot + 104..slot + 112]);
    u64::from_le_bytes(id)
}

/// The primary commit's transaction id, read from the storage's header.
fn read_txn(raw: &dyn StorageBackend) -> Option<u64> {
    let mut header = [0u8; HEADER_LEN];
    raw.read(0, &mut header).ok()?;
    Some(committed_txn(&header))
}

/// Which file a path named when it was opened: device and inode.
type Identity = (u64, u64);

fn identity(meta: &fs::Metadata) -> Identity {
    (meta.dev(), meta.ino())
}

/// Where the store's bytes come from.
enum Source {
    /// A file at the store's path.
    File(OpenMode),
    /// A custom backend (tests): a factory of fresh handles on the same bytes.
    Backend(Box<dyn Fn() -> Box<dyn StorageBackend> + Send>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(mode) => write!(f, "File({mode:?})"),
            Source::Backend(_) => f.write_str("Backend"),
        }
    }
}

/// Reads the schema version, migrates an older layout and creates missing tables — writing only
/// when something is missing or old, so opening a current store on a full disk needs no space.
///
/// `report`: log what a migration did (the migration, and each cron whose weekday numbers
/// changed meaning). The check of a file migrates a throw-away copy in memory first, and says
/// nothing, so each is said once, by the open that writes it.
fn prepare_schema(db: &Database, path: &Path, report: bool) -> Result<(), StoreError> {
    let err = |e: redb::Error| redb_error(path, "read its schema", e);
    let current = {
        let txn = db.begin_read().map_err(|e| err(e.into()))?;
        let exists = |r: Result<(), redb::TableError>| match r {
            Ok(()) => Ok(true),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
            Err(e) => Err(err(e.into())),
        };
        let version = match txn.open_table(META) {
            Ok(meta) => meta
                .get(VERSION_KEY)
                .map_err(|e| err(e.into()))?
                .map(|v| v.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(err(e.into())),
        };
        version == Some(SCHEMA_VERSION)
            && exists(txn.open_table(JOBS).map(drop))?
            && exists(txn.open_table(PAYLOADS).map(drop))?
            && exists(txn.open_table(RUNS).map(drop))?
    };
    if current {
        return Ok(());
    }
    let txn = db.begin_write().map_err(|e| err(e.into()))?;
    let version = {
        let meta = txn.open_table(META).map_err(|e| err(e.into()))?;
        let v = meta.get(VERSION_KEY).map_err(|e| err(e.into()))?;
        v.map(|v| v.value())
    };
    let version = match version {
        Some(v) => v,
        None => {
            let jobs = txn.open_table(JOBS).map_err(|e| err(e.into()))?;
            if jobs.len().map_err(|e| err(e.into()))? > 0 {
                return Err(StoreError::Corrupt {
                    path: path_str(path),
                    detail: "it holds records but no schema version".into(),
                });
            }
            SCHEMA_VERSION
        }
    };
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path_str(path),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version < 1 {
        return Err(StoreError::Corrupt {
            path: path_str(path),
            detail: format!("unknown schema version {version}"),
        });
    }
    if version < SCHEMA_VERSION {
        let done = schema::migrate_to_3(&txn).map_err(|e| match e {
            MigrationError::Redb(e) => err(e),
            MigrationError::Record(id, e) => corrupt_record(path, id, &e),
        })?;
        if report {
            tracing::info!(
                records = done.records,
                from = version,
                to = SCHEMA_VERSION,
                "migrated the job store"
            );
            for (job, cron) in &done.weekday_crons {
                tracing::warn!(
                    %job,
                    %cron,
                    "this job's cron expression numbers weekdays; they now follow crontab(5) (0 or 7 Sunday, 1 Monday … 6 Saturday), not the 1 = Sunday of backwork's schema 2 and older: check that it still names the days you mean"
                );
            }
        }
    }
    {
        let mut meta = txn.open_table(META).map_err(|e| err(e.into()))?;
        meta.insert(VERSION_KEY, SCHEMA_VERSION)
            .map_err(|e| err(e.into()))?;
        txn.open_table(JOBS).map_err(|e| err(e.into()))?;
        txn.open_table(PAYLOADS).map_err(|e| err(e.into()))?;
        txn.open_table(RUNS).map_err(|e| err(e.into()))?;
    }
    txn.commit().map_err(|e| err(e.into()))?;
    Ok(())
}

/// A record of job `id` that does not decode: the store is corrupt, and the message names the job.
fn corrupt_record(path: &Path, id: u128, e: &RecordError) -> StoreError {
    StoreError::Corrupt {
        path: path_str(path),
        detail: format!(
            "the record of job {} cannot be read: {e}",
            JobId::from_u128(id)
        ),
    }
}

/// A run record of job `id` that does not decode.
fn corrupt_run(path: &Path, id: u128, number: u64, e: &RecordError) -> StoreError {
    StoreError::Corrupt {
        path: path_str(path),
        detail: format!(
            "run {number} of job {} cannot be read: {e}",
            JobId::from_u128(id)
        ),
    }
}

/// Sets a payload decoded from `bytes` on `job` (only decodes it, to check it, when `keep` is
/// false).
fn set_payload(
    path: &Path,
    job: &mut Job,
    slot: u8,
    bytes: &[u8],
    keep: bool,
) -> Result<(), StoreError> {
    let value =
        record::decode_payload(bytes).map_err(|e| corrupt_record(path, job.id.as_u128(), &e))?;
    match slot {
        INPUT if keep => job.request.input = value,
        OUTPUT if keep => job.output = Some(value),
        INPUT | OUTPUT => {}
        other => {
            return Err(corrupt_record(
                path,
                job.id.as_u128(),
                &RecordError::Value(format!("a payload in an unknown slot {other}")),
            ));
        }
    }
    Ok(())
}

/// How much of each job a read gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// The record, its payloads and its runs.
    Whole,
    /// The record only, but every payload and run is decoded too (and dropped): the check of
    /// a file before it is opened for writing.
    Checked,
    /// The record only; the payload and run tables are not read (a load: the scheduling core
    /// keeps no payloads).
    Scheduling,
}

/// The jobs whose ids fall in `range`, in id order, as `detail` says. Each table is read once,
/// in key order, and merged by id.
fn read_jobs(
    txn: &redb::ReadTransaction,
    path: &Path,
    range: std::ops::RangeInclusive<u128>,
    detail: Detail,
) -> Result<Vec<Job>, StoreError> {
    let rerr = |e: redb::Error| redb_error(path, "read", e);
    let mut jobs = Vec::new();
    {
        let table = txn.open_table(JOBS).map_err(|e| rerr(e.into()))?;
        for row in table.range(range.clone()).map_err(|e| rerr(e.into()))? {
            let (id, bytes) = row.map_err(|e| rerr(e.into()))?;
            let id = id.value();
            let mut job = record::decode_job(JobId::from_u128(id), bytes.value())
                .map_err(|e| corrupt_record(path, id, &e))?;
            if detail != Detail::Scheduling
                && let Some(json) =
                    record::inline_input(bytes.value()).map_err(|e| corrupt_record(path, id, &e))?
            {
                set_payload(path, &mut job, INPUT, json, detail == Detail::Whole)?;
            }
            jobs.push(job);
        }
    }
    if detail == Detail::Scheduling {
        return Ok(jobs);
    }
    let keep = detail == Detail::Whole;
    let (lo, hi) = (*range.start(), *range.end());
    // `jobs` is in id order: each payload or run finds its job by advancing a cursor
    {
        let table = txn.open_table(PAYLOADS).map_err(|e| rerr(e.into()))?;
        let mut at = 0;
        for row in table
            .range((lo, 0u8)..=(hi, u8::MAX))
            .map_err(|e| rerr(e.into()))?
        {
            let (key, bytes) = row.map_err(|e| rerr(e.into()))?;
            let (id, slot) = key.value();
            while at < jobs.len() && jobs[at].id.as_u128() < id {
                at += 1;
            }
            match jobs.get_mut(at) {
                Some(job) if job.id.as_u128() == id => {
                    set_payload(path, job, slot, bytes.value(), keep)?;
                }
                _ => {} // a payload without its record: not part of any job
            }
        }
    }
    {
        let table = txn.open_table(RUNS).map_err(|e| rerr(e.into()))?;
        let mut at = 0;
        for row in table
            .range((lo, 0u64)..=(hi, u64::MAX))
            .map_err(|e| rerr(e.into()))?
        {
            let (key, bytes) = row.map_err(|e| rerr(e.into()))?;
            let (id, number) = key.value();
            while at < jobs.len() && jobs[at].id.as_u128() < id {
                at += 1;
            }
            match jobs.get_mut(at) {
                Some(job) if job.id.as_u128() == id => {
                    let run = record::decode_run(bytes.value())
                        .map_err(|e| corrupt_run(path, id, number, &e))?;
                    if keep {
                        job.history.push(run);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(jobs)
}

/// The payloads of the jobs `ids` (their runs too when `history`), in order; point reads in
/// one read transaction. A job without a record gets empty payloads.
fn read_payloads(
    txn: &redb::ReadTransaction,
    path: &Path,
    ids: &[JobId],
    history: bool,
) -> Result<Vec<Payloads>, StoreError> {
    let rerr = |e: redb::Error| redb_error(path, "read", e);
    let jobs = txn.open_table(JOBS).map_err(|e| rerr(e.into()))?;
    let payloads = txn.open_table(PAYLOADS).map_err(|e| rerr(e.into()))?;
    let runs = if history {
        Some(txn.open_table(RUNS).map_err(|e| rerr(e.into()))?)
    } else {
        None
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let key = id.as_u128();
        let mut p = Payloads::default();
        // the input inside the record, if it is there (then `payloads` has none)
        let inline = match jobs.get(key).map_err(|e| rerr(e.into()))? {
            Some(rec) => record::inline_input(rec.value())
                .map_err(|e| corrupt_record(path, key, &e))?
                .map(record::decode_payload)
                .transpose()
                .map_err(|e| corrupt_record(path, key, &e))?,
            None => None,
        };
        let slots: &[u8] = match inline {
            Some(input) => {
                p.input = input;
                &[OUTPUT]
            }
            None => &[INPUT, OUTPUT],
        };
        for &slot in slots {
            if let Some(bytes) = payloads.get((key, slot)).map_err(|e| rerr(e.into()))? {
                let value = record::decode_payload(bytes.value())
                    .map_err(|e| corrupt_record(path, key, &e))?;
                match slot {
                    INPUT => p.input = value,
                    _ => p.output = Some(value),
                }
            }
        }
        if let Some(runs) = &runs {
            for row in runs
                .range((key, 0u64)..=(key, u64::MAX))
                .map_err(|e| rerr(e.into()))?
            {
                let (k, bytes) = row.map_err(|e| rerr(e.into()))?;
                let run = record::decode_run(bytes.value())
                    .map_err(|e| corrupt_run(path, key, k.value().1, &e))?;
                p.history.push(run);
            }
        }
        out.push(p);
    }
    Ok(out)
}

/// Every job of `db`, decoded as `detail` says; a redb panic on the way is a
/// [`StoreError::Corrupt`].
fn load_all(db: &Database, path: &Path, detail: Detail) -> Result<Vec<Job>, StoreError> {
    let read = guard::catch(|| -> Result<Vec<Job>, StoreError> {
        let txn = db.begin_read().map_err(|e| redb_error(path, "read", e))?;
        read_jobs(&txn, path, 0..=u128::MAX, detail)
    });
    read.map_err(|m| panicked(path, "reading the records", m))?
}

impl RedbStore {
    /// Opens the store at `path`, creating it if `mode` allows.
    ///
    /// The file is **checked before anything is written to it**: a first open runs redb's
    /// integrity check (every page checksum of the committed trees), the schema check and the
    /// decoding of every record over an in-memory overlay, so whatever redb would write on the
    /// way — the repair of a file a crash left, the check's own commit — stays in memory. Only a
    /// file that passed is opened for writing, where redb may repair it (after a crash; progress
    /// is logged). A file that is empty, truncated, corrupt (redb panics included), held by
    /// another process, or of a newer schema is refused with its [`StoreError`] and left
    /// byte-for-byte unchanged. An older schema is migrated in place.
    ///
    /// A missing file is created without ever replacing one (see [`OpenMode::CreateIfMissing`]).
    pub fn open(path: impl AsRef<Path>, mode: OpenMode) -> Result<RedbStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        // (a symbolic link to nothing is found, and refused by the check, not created through)
        match fs::symlink_metadata(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => match mode {
                OpenMode::MustExist => {
                    return Err(StoreError::Missing {
                        path: path_str(&path),
                    });
                }
                OpenMode::CreateIfMissing => Self::create(&path)?,
            },
            Err(e) => return Err(io_error(&path, "open", &e)),
        }
        let mut store = RedbStore {
            db: None,
            writable: false,
            path,
            buf: Vec::new(),
            failed: false,
            source: Source::File(mode),
            identity: None,
            checked: None,
            raw: None,
            acked_txn: None,
        };
        store.open_db()?;
        Ok(store)
    }

    /// Opens (or initializes) a store on a custom redb storage backend — for tests that
    /// simulate crashes and faults below the file system. `name` is only used in messages.
    /// The backend is cloned to check it and to reopen the store after a failure, so clones
    /// must share the underlying bytes.
    pub fn with_backend(
        backend: impl redb::StorageBackend + Clone,
        name: impl Into<PathBuf>,
    ) -> Result<RedbStore, StoreError> {
        let mut store = RedbStore {
            db: None,
            writable: false,
            path: name.into(),
            buf: Vec::new(),
            failed: false,
            source: Source::Backend(Box::new(move || Box::new(backend.clone()))),
            identity: None,
            checked: None,
            raw: None,
            acked_txn: None,
        };
        store.open_db()?;
        Ok(store)
    }

    /// A fresh handle on the store's bytes, and for a file the identity of what it opened.
    fn fresh(&self) -> Result<(Box<dyn StorageBackend>, Option<Identity>), StoreError> {
        match &self.source {
            Source::Backend(make) => Ok((make(), None)),
            Source::File(_) => {
                check_file(&self.path)?;
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&self.path)
                    .map_err(|e| match e.kind() {
                        io::ErrorKind::NotFound => StoreError::Missing {
                            path: path_str(&self.path),
                        },
                        _ => io_error(&self.path, "open", &e),
                    })?;
                let meta = file
                    .metadata()
                    .map_err(|e| io_error(&self.path, "open", &e))?;
                let backend = FileBackend::new(file).map_err(|e| database_error(&self.path, e))?;
                Ok((Box::new(backend), Some(identity(&meta))))
            }
        }
    }

    /// Checks the store without writing to it: an open over an in-memory overlay with redb's
    /// integrity check, the schema check (a migration runs in the overlay too) and every record
    /// decoded. Returns the checked database (still on the overlay, holding the file's lock)
    /// and the records.
    fn check(&self) -> Result<(Database, Vec<Job>), StoreError> {
        let path = &self.path;
        let (inner, _) = self.fresh()?;
        let (overlay, view) = Backend::overlay(inner);
        let db = guard::catch(|| check_builder().create_with_backend(overlay))
            .map_err(|m| panicked(path, "checking the file", m))?
            .map_err(|e| database_error(path, e))?;
        // redb repairs a file whose latest commit cannot be read by falling back to the commit
        // before it. That is right for a commit that failed half-way (a full disk, an I/O
        // error, a power loss: never acknowledged) and wrong for damage to a commit that was
        // acknowledged. This process knows which commits it acknowledged: a fall-back past one
        // of them is refused. A process with no such knowledge (a fresh start) cannot tell
        // the two apart, opens at the older commit and says so.
        let mut after = [0u8; HEADER_LEN];
        let before: Option<[u8; HEADER_LEN]> = view.base_header()[..]
            .get(..HEADER_LEN)
            .and_then(|b| b.try_into().ok());
        if let Some(before) = before
            && view.wrote_header()
            && view.read_start(&mut after).is_ok()
            && committed_txn(&after) <= committed_txn(&before)
        {
            let latest = committed_txn(&before);
            let readable = committed_txn(&after).saturating_sub(1);
            match self.acked_txn {
                Some(acked) if readable < acked => {
                    return Err(StoreError::Corrupt {
                        path: path_str(path),
                        detail: format!(
                            "transaction {acked}, which this process wrote and acknowledged, can no longer be read; only transaction {readable} can, which would lose acknowledged changes"
                        ),
                    });
                }
                Some(_) => tracing::info!(
                    path = %path.display(),
                    failed = latest,
                    kept = readable,
                    "the commit that failed is dropped; the store goes on from the last one acknowledged"
                ),
                None => tracing::warn!(
                    path = %path.display(),
                    latest,
                    kept = readable,
                    "the latest commit of the job store cannot be read (a commit that failed half-way, or damage); opening it at the commit before"
                ),
            }
        }
        guard::catch(|| prepare_schema(&db, path, false))
            .map_err(|m| panicked(path, "reading the schema", m))??;
        let jobs = load_all(&db, path, Detail::Checked)?;
        Ok((db, jobs))
    }

    /// Checks the store, then opens it for writing (see [`RedbStore::open`]).
    fn open_db(&mut self) -> Result<(), StoreError> {
        self.db = None;
        self.writable = false;
        let (view, jobs) = self.check()?;
        drop(view); // releases the lock for the writing open
        let (inner, identity) = self.fresh()?;
        let path = self.path.clone();
        let (direct, raw) = Backend::direct(inner);
        let db = guard::catch(|| builder().create_with_backend(direct))
            .map_err(|m| panicked(&path, "opening the file", m))?
            .map_err(|e| database_error(&path, e))?;
        guard::catch(|| prepare_schema(&db, &path, true))
            .map_err(|m| panicked(&path, "preparing the schema", m))??;
        self.db = Some(db);
        self.writable = true;
        self.identity = identity;
        self.acked_txn = read_txn(&*raw).or(self.acked_txn);
        self.raw = Some(raw);
        self.failed = false;
        self.checked = Some(jobs);
        Ok(())
    }

    /// Creates a fresh store file without ever replacing one: it is built under a temporary
    /// name in the same directory, then linked to `path` with `link(2)`, which fails if `path`
    /// exists. When another process created the store meanwhile, its file is kept (and opened
    /// by the caller); the temporary file is removed either way.
    fn create(path: &Path) -> Result<(), StoreError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        if !dir.as_os_str().is_empty() && !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| io_error(dir, "create its directory", &e))?;
            // DirBuilder's mode is filtered by the umask; set it exactly.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| io_error(dir, "set its directory's permissions", &e))?;
        }
        let tmp = tempfile::Builder::new()
            .prefix(&format!(
                ".{}.",
                path.file_name().unwrap_or_default().to_string_lossy()
            ))
            .suffix(".tmp")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            })
            .map_err(|e| io_error(path, "create", &e))?;
        // the umask may have filtered the mode; set it exactly
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o600))
            .map_err(|e| io_error(tmp.path(), "set permissions", &e))?;
        let file = tmp
            .as_file()
            .try_clone()
            .map_err(|e| io_error(tmp.path(), "create", &e))?;
        let backend = FileBackend::new(file).map_err(|e| database_error(tmp.path(), e))?;
        let db = builder()
            .create_with_backend(backend)
            .map_err(|e| database_error(tmp.path(), e))?;
        // the schema (version, tables) is written by `prepare_schema` on the first open
        drop(db);
        tmp.as_file()
            .sync_all()
            .map_err(|e| io_error(tmp.path(), "create", &e))?;
        match fs::hard_link(tmp.path(), path) {
            Ok(()) => {
                if let Ok(d) = fs::File::open(if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                }) {
                    let _ = d.sync_all();
                }
                tracing::info!(path = %path.display(), "created a new job store");
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                tracing::debug!(path = %path.display(), "another process created the job store first; opening it");
            }
            Err(e) => return Err(io_error(path, "create", &e)),
        }
        // `tmp` is unlinked when dropped
        Ok(())
    }

    fn db(&self) -> Result<&Database, StoreError> {
        self.db.as_ref().ok_or_else(|| StoreError::Closed {
            path: path_str(&self.path),
        })
    }

    /// True when the path still names the file this store opened (checked after every commit,
    /// before the commit counts as done).
    fn still_at_path(&self) -> bool {
        match self.identity {
            None => true,
            Some(id) => fs::metadata(&self.path).is_ok_and(|m| identity(&m) == id),
        }
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in a read transaction, mapping redb's errors to [`StoreError`].
    fn read<T>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        let db = self.db()?;
        guard::catch(|| {
            let txn = db
                .begin_read()
                .map_err(|e| redb_error(&self.path, "read", e))?;
            f(&txn).map_err(|e| redb_error(&self.path, "read", e))
        })
        .map_err(|m| panicked(&self.path, "reading", m))?
    }

    /// The schema version on disk.
    pub fn schema_version(&self) -> Result<u64, StoreError> {
        self.read(|txn| {
            let v = txn.open_table(META)?.get(VERSION_KEY)?;
            Ok(v.map_or(0, |v| v.value()))
        })
    }

    /// One job, read from disk: its record, payloads and runs.
    pub fn get(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        let db = self.db()?;
        let path = &self.path;
        guard::catch(|| {
            let txn = db.begin_read().map_err(|e| redb_error(path, "read", e))?;
            let key = id.as_u128();
            Ok(read_jobs(&txn, path, key..=key, Detail::Whole)?.pop())
        })
        .map_err(|m| panicked(path, "reading", m))?
    }

    /// How many records the store holds.
    pub fn len(&self) -> Result<u64, StoreError> {
        self.read(|txn| Ok(txn.open_table(JOBS)?.len()?))
    }

    /// True when the store holds no records.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        self.len().map(|n| n == 0)
    }

    fn write(&mut self, changes: &ChangeSet) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e: redb::Error| redb_error(&path, "commit", e);
        let encode_err = |e: RecordError| StoreError::Io {
            path: path_str(&path),
            action: "encode a record",
            detail: e.to_string(),
        };
        let mut buf = std::mem::take(&mut self.buf);
        let db = self.db()?;
        let mut txn = db.begin_write().map_err(|e| err(e.into()))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| StoreError::Io {
                path: path_str(&path),
                action: "commit",
                detail: e.to_string(),
            })?;
        // Each job's input goes inside its record when it is small (one row of one table for an
        // enqueue), else to `payloads`. A record rewritten without a new input keeps the input
        // it holds; `payloads` is touched only for the inputs it keeps or may keep.
        let mut given: HashMap<u128, &Value> = changes
            .inputs
            .iter()
            .map(|(id, v)| (id.as_u128(), v))
            .collect();
        // inputs for `payloads`: (id, the JSON to write or `None` to delete)
        let mut input_writes: Vec<(u128, Option<Vec<u8>>)> = Vec::new();
        let mut input = Vec::new();
        if !changes.upserts.is_empty() || !changes.removes.is_empty() || !given.is_empty() {
            let mut jobs = txn.open_table(JOBS).map_err(|e| err(e.into()))?;
            for job in &changes.upserts {
                let id = job.id.as_u128();
                input.clear();
                let new_input = given.remove(&id);
                let inline = match new_input {
                    Some(v) if !v.is_null() => {
                        record::encode_payload(v, &mut input).map_err(encode_err)?;
                        if record::input_goes_inline(&input) {
                            true
                        } else {
                            input_writes.push((id, Some(input.clone())));
                            false
                        }
                    }
                    Some(_) => {
                        input_writes.push((id, None));
                        false
                    }
                    // no new input: the record keeps the one it holds
                    None => match jobs.get(id).map_err(|e| err(e.into()))? {
                        Some(old) if record::may_keep_input(old.value()) => {
                            match record::inline_input(old.value()) {
                                Ok(Some(kept)) => {
                                    input.extend_from_slice(kept);
                                    true
                                }
                                _ => false,
                            }
                        }
                        _ => false,
                    },
                };
                buf.clear();
                record::encode_job(job, inline.then_some(&input[..]), &mut buf)
                    .map_err(encode_err)?;
                let replaced = jobs
                    .insert(id, buf.as_slice())
                    .map_err(|e| err(e.into()))?
                    .is_some();
                // a new inline input replaces one an older record may have kept in `payloads`
                if replaced && inline && new_input.is_some() {
                    input_writes.push((id, None));
                }
            }
            // an input for a job whose record this change set does not rewrite (the core sends
            // none such; kept correct anyway): to `payloads`, and out of the record
            for (id, v) in given.drain() {
                let old = match jobs.get(id).map_err(|e| err(e.into()))? {
                    Some(old) => old.value().to_vec(),
                    None => continue, // no such job: nothing to give an input to
                };
                if matches!(record::inline_input(&old), Ok(Some(_))) {
                    let job = record::decode_job(JobId::from_u128(id), &old)
                        .map_err(|e| corrupt_record(&path, id, &e))?;
                    buf.clear();
                    record::encode_job(&job, None, &mut buf).map_err(encode_err)?;
                    jobs.insert(id, buf.as_slice()).map_err(|e| err(e.into()))?;
                }
                if v.is_null() {
                    input_writes.push((id, None));
                } else {
                    input.clear();
                    record::encode_payload(v, &mut input).map_err(encode_err)?;
                    input_writes.push((id, Some(input.clone())));
                }
            }
            for id in &changes.removes {
                jobs.remove(id.as_u128()).map_err(|e| err(e.into()))?;
            }
        }
        if !input_writes.is_empty() || !changes.outputs.is_empty() || !changes.removes.is_empty() {
            let mut payloads = txn.open_table(PAYLOADS).map_err(|e| err(e.into()))?;
            for (id, v) in &changes.outputs {
                let key = (id.as_u128(), OUTPUT);
                match v {
                    Some(v) => {
                        buf.clear();
                        record::encode_payload(v, &mut buf).map_err(encode_err)?;
                        payloads
                            .insert(key, buf.as_slice())
                            .map_err(|e| err(e.into()))?;
                    }
                    None => {
                        payloads.remove(key).map_err(|e| err(e.into()))?;
                    }
                }
            }
            for (id, json) in &input_writes {
                match json {
                    Some(json) => {
                        payloads
                            .insert((*id, INPUT), json.as_slice())
                            .map_err(|e| err(e.into()))?;
                    }
                    None => {
                        payloads.remove((*id, INPUT)).map_err(|e| err(e.into()))?;
                    }
                }
            }
            for id in &changes.removes {
                payloads
                    .remove((id.as_u128(), INPUT))
                    .map_err(|e| err(e.into()))?;
                payloads
                    .remove((id.as_u128(), OUTPUT))
                    .map_err(|e| err(e.into()))?;
            }
        }
        if !changes.runs.is_empty() || !changes.removes.is_empty() {
            let mut runs = txn.open_table(RUNS).map_err(|e| err(e.into()))?;
            let keep = u64::try_from(changes.history_len.max(1)).unwrap_or(u64::MAX);
            for run in &changes.runs {
                let id = run.id.as_u128();
                buf.clear();
                record::encode_run(&run.record, &mut buf).map_err(encode_err)?;
                runs.insert((id, run.number), buf.as_slice())
                    .map_err(|e| err(e.into()))?;
                // keep the last `history_len` numbers of the job
                if let Some(cut) = run.number.checked_sub(keep) {
                    runs.retain_in((id, 0u64)..=(id, cut), |_, _| false)
                        .map_err(|e| err(e.into()))?;
                }
            }
            for id in &changes.removes {
                let id = id.as_u128();
                runs.retain_in((id, 0u64)..=(id, u64::MAX), |_, _| false)
                    .map_err(|e| err(e.into()))?;
            }
        }
        txn.commit().map_err(|e| err(e.into()))?;
        self.buf = buf;
        Ok(())
    }
}

impl Store for RedbStore {
    /// Every record. After a failed commit (before a reopen), the failed database is dropped
    /// and what is durable is read through a checked read-only view, so a store that cannot be
    /// written still answers.
    fn load(&mut self) -> Result<Vec<Job>, StoreError> {
        if self.failed && self.writable {
            self.db = None;
            self.writable = false;
            let (view, jobs) = self.check()?;
            self.db = Some(view);
            self.checked = Some(jobs);
        }
        match self.checked.take() {
            Some(jobs) => Ok(jobs),
            None => load_all(self.db()?, &self.path, Detail::Scheduling),
        }
    }

    /// Point reads by id in one read transaction.
    fn payloads(&mut self, ids: &[JobId], history: bool) -> Result<Vec<Payloads>, StoreError> {
        let db = self.db()?;
        let path = &self.path;
        guard::catch(|| {
            let txn = db.begin_read().map_err(|e| redb_error(path, "read", e))?;
            read_payloads(&txn, path, ids, history)
        })
        .map_err(|m| panicked(path, "reading", m))?
    }

    fn commit(&mut self, changes: &ChangeSet) -> Result<(), StoreError> {
        self.checked = None;
        if self.failed || !self.writable {
            return Err(StoreError::Io {
                path: path_str(&self.path),
                action: "commit",
                detail: "an earlier commit failed; the store must be reopened".into(),
            });
        }
        let written = guard::catch(|| self.write(changes)).unwrap_or_else(|m| {
            Err(StoreError::Io {
                path: path_str(&self.path),
                action: "commit",
                detail: format!(
                    "redb stopped on damaged data ({m}); the store is checked again when it is reopened"
                ),
            })
        });
        // The commit counts only if the path still names the file it went to: a store deleted
        // or replaced meanwhile gets nothing acknowledged (checked once per group commit).
        let written = written.and_then(|()| {
            if self.still_at_path() {
                Ok(())
            } else {
                Err(StoreError::Replaced {
                    path: path_str(&self.path),
                })
            }
        });
        match written {
            Ok(()) => {
                if let Some(raw) = &self.raw {
                    self.acked_txn = read_txn(&**raw).or(self.acked_txn);
                }
                Ok(())
            }
            Err(e) => {
                // Never retry a failed transaction in place: the caller reopens the store.
                self.failed = true;
                Err(e)
            }
        }
    }

    fn close(&mut self) -> Result<(), StoreError> {
        if let Some(db) = self.db.take() {
            drop(db);
            tracing::debug!(path = %self.path.display(), "job store closed");
        }
        Ok(())
    }

    /// Checks and opens the store again (as [`RedbStore::open`] does). When the file passes the
    /// check but cannot be opened for writing — e.g. the repair of the failed commit needs space
    /// on a full disk — the store keeps a read-only view of what is durable, so
    /// [`Store::load`] still answers, and returns the error.
    fn reopen(&mut self) -> Result<(), StoreError> {
        // drop the failed database first: it holds the file lock
        self.db = None;
        self.writable = false;
        match self.open_db() {
            Ok(()) => {
                tracing::info!(path = %self.path.display(), "job store reopened");
                Ok(())
            }
            Err(e) => {
                self.db = None;
                if let Ok((view, jobs)) = self.check() {
                    self.db = Some(view);
                    self.checked = Some(jobs);
                    tracing::warn!(path = %self.path.display(), error = %e, "the job store can be read but not written");
                }
                self.failed = true;
                Err(e)
            }
        }
    }
}
