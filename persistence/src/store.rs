//! [`RedbStore`]: the scheduler's store on a redb file.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use backwork_scheduler::{ChangeSet, Job, JobId, JobState, Store, StoreError, Time};
use redb::backends::FileBackend;
use redb::{
    Builder, Database, DatabaseError, Durability, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, StorageError,
};

use crate::schema::{
    self, BY_DUE, BY_NAME, BY_STATE, BY_TAG, Indexes, JOBS, Keys, META, MigrationError,
    SCHEMA_VERSION, VERSION_KEY,
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
    path: PathBuf,
    /// Index keys of every stored record, so commits update indexes without re-reading records.
    keys: HashMap<JobId, Keys>,
    /// Set after a failed commit: redb may hold a poisoned state, so the store must be reopened.
    failed: bool,
    /// How to open the database again; `None` for a file store (it reopens its path).
    reopener: Option<Reopener>,
}

/// Opens a backend store's database again (on a fresh handle of the same backend).
struct Reopener(Box<dyn Fn() -> Result<Database, DatabaseError> + Send>);

impl std::fmt::Debug for Reopener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reopener")
    }
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

fn io_error(path: &Path, action: &'static str, e: &io::Error) -> StoreError {
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => StoreError::DiskFull {
            path: path_str(path),
        },
        io::ErrorKind::UnexpectedEof => StoreError::Truncated {
            path: path_str(path),
            detail: e.to_string(),
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
            detail: format!("its length, {len} bytes, is not a whole number of pages: {detail}"),
        }
    } else {
        StoreError::Corrupt {
            path: path_str(path),
            detail,
        }
    }
}

/// The process that has `path` open, if one of this user's processes does (Linux: looks through
/// `/proc/*/fd`); "process 1234 (backwork)".
fn lock_holder(path: &Path) -> Option<String> {
    let target = std::fs::canonicalize(path).ok()?;
    let procs = std::fs::read_dir("/proc").ok()?;
    for entry in procs.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue; // another user's process, or gone
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l == target));
        if holds {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            return Some(match comm.trim() {
                "" => format!("process {pid}"),
                c => format!("process {pid} ({c})"),
            });
        }
    }
    None
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

fn builder() -> Builder {
    let mut b = Builder::new();
    b.set_repair_callback(|session| {
        tracing::info!(
            progress = format!("{:.0}%", session.progress() * 100.0),
            "repairing the job store after an unclean shutdown"
        );
    });
    b
}

impl RedbStore {
    /// Opens the store at `path`, creating it if `mode` allows. Refuses, and leaves untouched, a
    /// file that is empty, truncated, corrupt, held by another process, or of a newer schema.
    /// Migrates an older schema in place.
    pub fn open(path: impl AsRef<Path>, mode: OpenMode) -> Result<RedbStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        match fs::metadata(&path) {
            Ok(meta) if meta.len() == 0 => {
                return Err(StoreError::Empty {
                    path: path_str(&path),
                });
            }
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
        let db = builder()
            .open(&path)
            .map_err(|e| database_error(&path, e))?;
        let mut store = RedbStore {
            db: Some(db),
            path,
            keys: HashMap::new(),
            failed: false,
            reopener: None,
        };
        store.prepare_schema()?;
        Ok(store)
    }

    /// Opens (or initializes) a store on a custom redb storage backend — for tests that
    /// simulate crashes and faults below the file system. `name` is only used in messages.
    /// The backend is cloned to reopen the store after a failure, so clones must share the
    /// underlying bytes.
    pub fn with_backend(
        backend: impl redb::StorageBackend + Clone,
        name: impl Into<PathBuf>,
    ) -> Result<RedbStore, StoreError> {
        let path = name.into();
        let db = builder()
            .create_with_backend(backend.clone())
            .map_err(|e| database_error(&path, e))?;
        let reopener = Reopener(Box::new(move || {
            builder().create_with_backend(backend.clone())
        }));
        let mut store = RedbStore {
            db: Some(db),
            path,
            keys: HashMap::new(),
            failed: false,
            reopener: Some(reopener),
        };
        store.prepare_schema()?;
        Ok(store)
    }

    /// Creates a fresh store file atomically: it is built under a temporary name in the same
    /// directory and renamed into place, so a crash never leaves an empty file at `path`.
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
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_error(&tmp, "create", &e))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
            .map_err(|e| io_error(&tmp, "set permissions", &e))?;
        let result = (|| {
            let backend = FileBackend::new(file).map_err(|e| database_error(&tmp, e))?;
            let db = builder()
                .create_with_backend(backend)
                .map_err(|e| database_error(&tmp, e))?;
            // the schema (version, tables) is written by `prepare_schema` on the first open
            drop(db);
            fs::rename(&tmp, path).map_err(|e| io_error(path, "create", &e))?;
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
            tracing::info!(path = %path.display(), "created a new job store");
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn db(&self) -> Result<&Database, StoreError> {
        self.db.as_ref().ok_or_else(|| StoreError::Closed {
            path: path_str(&self.path),
        })
    }

    /// Checks the schema version and migrates an older layout.
    fn prepare_schema(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e: redb::Error| redb_error(&path, "read its schema", e);
        let db = self.db()?;
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
                        path: path_str(&self.path),
                        detail: "it holds records but no schema version".into(),
                    });
                }
                SCHEMA_VERSION
            }
        };
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: path_str(&self.path),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < 1 {
            return Err(StoreError::Corrupt {
                path: path_str(&self.path),
                detail: format!("unknown schema version {version}"),
            });
        }
        if version == 1 {
            let n = schema::migrate_1_to_2(&txn).map_err(|e| match e {
                MigrationError::Redb(e) => err(e),
                MigrationError::Record(id, detail) => StoreError::Corrupt {
                    path: path_str(&path),
                    detail: format!("record {} cannot be read: {detail}", JobId::from_u128(id)),
                },
            })?;
            tracing::info!(records = n, "migrated the job store from schema 1 to 2");
        }
        {
            let mut meta = txn.open_table(META).map_err(|e| err(e.into()))?;
            meta.insert(VERSION_KEY, SCHEMA_VERSION)
                .map_err(|e| err(e.into()))?;
            txn.open_table(JOBS).map_err(|e| err(e.into()))?;
            txn.open_table(BY_STATE).map_err(|e| err(e.into()))?;
            txn.open_table(BY_DUE).map_err(|e| err(e.into()))?;
            txn.open_multimap_table(BY_NAME)
                .map_err(|e| err(e.into()))?;
            txn.open_multimap_table(BY_TAG).map_err(|e| err(e.into()))?;
        }
        txn.commit().map_err(|e| err(e.into()))?;
        Ok(())
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
        let txn = self
            .db()?
            .begin_read()
            .map_err(|e| redb_error(&self.path, "read", e))?;
        f(&txn).map_err(|e| redb_error(&self.path, "read", e))
    }

    /// The schema version on disk.
    pub fn schema_version(&self) -> Result<u64, StoreError> {
        self.read(|txn| {
            let v = txn.open_table(META)?.get(VERSION_KEY)?;
            Ok(v.map_or(0, |v| v.value()))
        })
    }

    fn decode(&self, id: u128, bytes: &[u8]) -> Result<Job, StoreError> {
        crate::record::decode(bytes).map_err(|e| StoreError::Corrupt {
            path: path_str(&self.path),
            detail: format!("record {} cannot be read: {e}", JobId::from_u128(id)),
        })
    }

    /// One record, read from disk.
    pub fn get(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        let bytes = self.read(|txn| {
            let row = txn.open_table(JOBS)?.get(id.as_u128())?;
            Ok(row.map(|b| b.value().to_vec()))
        })?;
        bytes.map(|b| self.decode(id.as_u128(), &b)).transpose()
    }

    /// Ids of the jobs in `state`, in id order (from the state index).
    pub fn ids_in_state(&self, state: JobState) -> Result<Vec<JobId>, StoreError> {
        let code = schema::state_code(state);
        self.read(|txn| {
            let t = txn.open_table(BY_STATE)?;
            let mut out = Vec::new();
            for row in t.range((code, 0u128)..=(code, u128::MAX))? {
                out.push(JobId::from_u128(row?.0.value().1));
            }
            Ok(out)
        })
    }

    /// Ids of the enqueued jobs due at or before `at`, earliest first (from the due index).
    pub fn due_by(&self, at: Time) -> Result<Vec<JobId>, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(BY_DUE)?;
            let mut out = Vec::new();
            for row in t.range(..=(at.timestamp_millis(), u128::MAX))? {
                out.push(JobId::from_u128(row?.0.value().1));
            }
            Ok(out)
        })
    }

    fn multimap_ids(
        &self,
        table: redb::MultimapTableDefinition<&str, u128>,
        key: &str,
    ) -> Result<Vec<JobId>, StoreError> {
        self.read(|txn| {
            let t = txn.open_multimap_table(table)?;
            let mut out = Vec::new();
            for v in t.get(key)? {
                out.push(JobId::from_u128(v?.value()));
            }
            Ok(out)
        })
    }

    /// Ids of the jobs with unique name `name` (from the name index).
    pub fn ids_named(&self, name: &str) -> Result<Vec<JobId>, StoreError> {
        self.multimap_ids(BY_NAME, name)
    }

    /// Ids of the jobs tagged `tag` (from the tag index).
    pub fn ids_tagged(&self, tag: &str) -> Result<Vec<JobId>, StoreError> {
        self.multimap_ids(BY_TAG, tag)
    }

    /// How many records the store holds.
    pub fn len(&self) -> Result<u64, StoreError> {
        self.read(|txn| Ok(txn.open_table(JOBS)?.len()?))
    }

    /// True when the store holds no records.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        self.len().map(|n| n == 0)
    }

    fn write(&mut self, changes: &ChangeSet) -> Result<Vec<(JobId, Option<Keys>)>, StoreError> {
        let path = self.path.clone();
        let err = |e: redb::Error| redb_error(&path, "commit", e);
        let db = self.db()?;
        let mut txn = db.begin_write().map_err(|e| err(e.into()))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| StoreError::Io {
                path: path_str(&path),
                action: "commit",
                detail: e.to_string(),
            })?;
        let mut staged = Vec::with_capacity(changes.upserts.len() + changes.removes.len());
        {
            let mut jobs = txn.open_table(JOBS).map_err(|e| err(e.into()))?;
            for job in &changes.upserts {
                let id = job.id.as_u128();
                let bytes = serde_json::to_vec(job).map_err(|e| StoreError::Io {
                    path: path_str(&path),
                    action: "encode a record",
                    detail: e.to_string(),
                })?;
                jobs.insert(id, bytes.as_slice())
                    .map_err(|e| err(e.into()))?;
            }
            for id in &changes.removes {
                jobs.remove(id.as_u128()).map_err(|e| err(e.into()))?;
            }
        }
        {
            let mut indexes = Indexes::open(&txn).map_err(err)?;
            for job in &changes.upserts {
                let new = Keys::of(job);
                let old = self.keys.get(&job.id);
                if old != Some(&new) {
                    if let Some(old) = old {
                        indexes.remove(job.id.as_u128(), old).map_err(err)?;
                    }
                    indexes.insert(job.id.as_u128(), &new).map_err(err)?;
                }
                staged.push((job.id, Some(new)));
            }
            for id in &changes.removes {
                if let Some(old) = self.keys.get(id) {
                    indexes.remove(id.as_u128(), old).map_err(err)?;
                }
                staged.push((*id, None));
            }
        }
        txn.commit().map_err(|e| err(e.into()))?;
        Ok(staged)
    }
}

impl Store for RedbStore {
    fn load(&mut self) -> Result<Vec<Job>, StoreError> {
        let decoded = self.read(|txn| {
            let mut jobs = Vec::new();
            for row in txn.open_table(JOBS)?.iter()? {
                let (id, bytes) = row?;
                jobs.push(self.decode(id.value(), bytes.value()));
            }
            Ok(jobs)
        })?;
        let out = decoded
            .into_iter()
            .collect::<Result<Vec<Job>, StoreError>>()?;
        self.keys = out.iter().map(|j| (j.id, Keys::of(j))).collect();
        Ok(out)
    }

    fn commit(&mut self, changes: &ChangeSet) -> Result<(), StoreError> {
        if self.failed {
            return Err(StoreError::Io {
                path: path_str(&self.path),
                action: "commit",
                detail: "an earlier commit failed; the store must be reopened".into(),
            });
        }
        match self.write(changes) {
            Ok(staged) => {
                for (id, keys) in staged {
                    match keys {
                        Some(k) => self.keys.insert(id, k),
                        None => self.keys.remove(&id),
                    };
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

    fn reopen(&mut self) -> Result<(), StoreError> {
        // drop the failed database first: it holds the file lock
        self.db = None;
        let db = match &self.reopener {
            Some(Reopener(open)) => open(),
            None => builder().open(&self.path),
        }
        .map_err(|e| database_error(&self.path, e))?;
        self.db = Some(db);
        self.failed = false;
        self.keys.clear(); // `load` rebuilds it
        self.prepare_schema()?;
        tracing::info!(path = %self.path.display(), "job store reopened");
        Ok(())
    }
}
