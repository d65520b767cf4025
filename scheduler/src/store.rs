//! The store trait — the seam the durable registry implements — and an in-memory store.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use crate::core::{ChangeSet, Job, JobId, Payloads, RunRecord};

/// Where job records live. The runtime loads every record's scheduling fields once at start,
/// then writes each batch of changes with [`Store::commit`], which must return only once the
/// changes are durable: the runtime acknowledges a change to its caller, and starts a worker,
/// only after that. Payloads and run histories stay in the store: the runtime reads them by id
/// ([`Store::payloads`]) when a run starts or someone asks for a job.
///
/// Implementations are called from a blocking thread, one call at a time.
pub trait Store: Send + 'static {
    /// Every stored job, without its payloads and history (input `Null`, output `None`, no
    /// runs): what the scheduling core needs.
    fn load(&mut self) -> Result<Vec<Job>, StoreError>;

    /// The payloads of the jobs `ids`, in the same order, read by id; their runs too when
    /// `history` (else left empty). A job the store does not hold gets empty payloads.
    fn payloads(&mut self, ids: &[JobId], history: bool) -> Result<Vec<Payloads>, StoreError>;

    /// Writes `changes` atomically and durably.
    fn commit(&mut self, changes: &ChangeSet) -> Result<(), StoreError>;

    /// Closes the store cleanly (the next open needs no repair).
    fn close(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Drops whatever state a failed commit left and opens the store again; the runtime calls it
    /// after a commit failed (then with backoff while it keeps failing), then loads every record
    /// anew. A store with nothing to reopen returns `Ok`.
    ///
    /// A store that can still be read but not written (a full disk) should keep answering
    /// [`Store::load`] with what is durable after a failed commit or a failed reopen: the runtime
    /// then keeps answering reads and refuses writes until a reopen succeeds.
    fn reopen(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A store failure. Each message names the store and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process has the store open.
    #[error(
        "the job store {path} is in use by {}; stop that process (or talk to it through its control socket) and try again",
        holder.as_deref().unwrap_or("another process")
    )]
    Locked {
        /// The store file.
        path: String,
        /// The process holding it, if known.
        holder: Option<String>,
    },
    /// The store file does not exist (and creating it was not asked for).
    #[error("there is no job store at {path}; check the path, or create it by starting the daemon")]
    Missing {
        /// The store file.
        path: String,
    },
    /// The store file exists but is empty: it was never written, or it was emptied.
    #[error(
        "the job store {path} exists but is empty (0 bytes); it was left untouched. If you expected jobs in it, restore it from a backup; otherwise delete the file and start again"
    )]
    Empty {
        /// The store file.
        path: String,
    },
    /// The store's path names no regular file: a directory, a device, a FIFO, a socket, or a
    /// symbolic link to nothing. A wrong path, most often.
    #[error(
        "{path} is {kind}, not a job store file; it was left untouched. Check the store's path (--store or BACKWORK_STORE)"
    )]
    NotAFile {
        /// The path.
        path: String,
        /// What it is: "a directory", "a FIFO", "a symbolic link to a missing file (…)".
        kind: String,
    },
    /// The file does not begin with redb's 9-byte magic number (`redb`, then
    /// `0x1A 0x0A 0xA9 0x0D 0x0A`: redb's `docs/design.md`, "Database header"), so it is no
    /// store: a wrong path, most often, or a store whose first bytes were overwritten.
    #[error(
        "the file {path} is not a job store: it does not begin with redb's file signature (it begins with \"{begins}\"); it was left untouched. Check the store's path (--store or BACKWORK_STORE); a store whose first bytes were overwritten must be restored from a backup"
    )]
    NotAStore {
        /// The file.
        path: String,
        /// Its first bytes (up to 16), escaped.
        begins: String,
    },
    /// This user may not read or write the store (or create it there).
    #[error(
        "the job store {path} failed to {action}: permission denied. Run backwork as a user who may read and write the store (and write its directory, to create it), or give this user that access"
    )]
    PermissionDenied {
        /// The store file.
        path: String,
        /// What was being done.
        action: &'static str,
    },
    /// The store file is shorter than its contents say: it was cut off.
    #[error(
        "the job store {path} is truncated ({detail}); it was left untouched. Restore it from a backup, or move it aside to start with an empty store"
    )]
    Truncated {
        /// The store file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The stored data cannot be read back.
    #[error(
        "the job store {path} is corrupt ({detail}); it was left untouched. Restore it from a backup, or move it aside to start with an empty store"
    )]
    Corrupt {
        /// The store file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The store was written by a newer version of backwork.
    #[error(
        "the job store {path} has schema version {found}, newer than the {supported} this backwork understands; upgrade backwork"
    )]
    NewerSchema {
        /// The store file.
        path: String,
        /// The version found.
        found: u64,
        /// The newest version this binary reads.
        supported: u64,
    },
    /// The store file was deleted, or another file put at its path, while this process had it
    /// open: what it writes would go to a file nobody opens again, so nothing is acknowledged.
    #[error(
        "the job store {path} was deleted or replaced by another file while this process had it open, so this change was not saved; check what removed or replaced the file, then try again"
    )]
    Replaced {
        /// The store file.
        path: String,
    },
    /// The disk is full.
    #[error("the disk holding the job store {path} is full; free some space and try again")]
    DiskFull {
        /// The store file.
        path: String,
    },
    /// Reading or writing failed.
    #[error(
        "the job store {path} failed to {action}: {detail}; check the disk and the file, then try again"
    )]
    Io {
        /// The store file.
        path: String,
        /// What was being done.
        action: &'static str,
        /// The underlying error.
        detail: String,
    },
    /// The store was closed.
    #[error("the job store {path} is closed; open it again")]
    Closed {
        /// The store file.
        path: String,
    },
}

/// A store in memory: nothing survives the process, but everything survives a runtime restart
/// within it (clones share the same records). Tests can make commits fail with
/// [`MemoryStore::fail_commits`].
///
/// It keeps what the durable store keeps, the same way: each upsert's scheduling fields, the
/// inputs, outputs and numbered runs of a change set, the last `history_len` runs of each job.
/// So [`Store::load`] gives back exactly what the redb store gives back after the same commits.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<MemoryInner>>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    /// Each job, its history left empty (the runs are in `runs`).
    jobs: BTreeMap<JobId, Job>,
    /// Each job's runs by number.
    runs: BTreeMap<JobId, BTreeMap<u64, RunRecord>>,
    fail_commits: bool,
    commits: u64,
}

impl MemoryInner {
    fn payloads(&self, id: JobId, history: bool) -> Payloads {
        let Some(job) = self.jobs.get(&id) else {
            return Payloads::default();
        };
        Payloads {
            input: job.request.input.clone(),
            output: job.output.clone(),
            history: match self.runs.get(&id) {
                Some(runs) if history => runs.values().cloned().collect(),
                _ => Vec::new(),
            },
        }
    }

    fn job(&self, id: JobId) -> Option<Job> {
        let mut job = self.jobs.get(&id)?.clone();
        if let Some(runs) = self.runs.get(&id) {
            job.history = runs.values().cloned().collect();
        }
        Some(job)
    }

    fn insert_whole(&mut self, mut job: Job) {
        let runs: BTreeMap<u64, RunRecord> = job
            .history_numbers()
            .zip(std::mem::take(&mut job.history))
            .collect();
        if !runs.is_empty() {
            self.runs.insert(job.id, runs);
        }
        self.jobs.insert(job.id, job);
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemoryInner> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A store holding `jobs`, exactly as given — inputs, outputs and histories included (e.g. a
    /// snapshot taken while a job was running, to test recovery after a crash).
    pub fn with_jobs(jobs: impl IntoIterator<Item = Job>) -> Self {
        let store = Self::new();
        {
            let mut inner = store.lock();
            for job in jobs {
                inner.insert_whole(job);
            }
        }
        store
    }

    /// A copy of every stored record, whole (payloads and history included), in id order.
    pub fn snapshot(&self) -> Vec<Job> {
        let inner = self.lock();
        inner.jobs.keys().filter_map(|id| inner.job(*id)).collect()
    }

    /// The stored record of `id`, whole.
    pub fn get(&self, id: JobId) -> Option<Job> {
        self.lock().job(id)
    }

    /// How many commits were made.
    pub fn commits(&self) -> u64 {
        self.lock().commits
    }

    /// Makes every following commit fail (`true`) or succeed again (`false`).
    pub fn fail_commits(&self, fail: bool) {
        self.lock().fail_commits = fail;
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<Vec<Job>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .jobs
            .values()
            .map(|job| {
                let mut job = job.clone();
                job.request.input = Value::Null;
                job.output = None;
                job
            })
            .collect())
    }

    fn payloads(&mut self, ids: &[JobId], history: bool) -> Result<Vec<Payloads>, StoreError> {
        let inner = self.lock();
        Ok(ids.iter().map(|id| inner.payloads(*id, history)).collect())
    }

    fn commit(&mut self, changes: &ChangeSet) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.fail_commits {
            return Err(StoreError::Io {
                path: "memory".into(),
                action: "commit",
                detail: "injected failure".into(),
            });
        }
        for job in &changes.upserts {
            // the scheduling fields only: the payloads and runs come from their own lists
            let (input, output) = match inner.jobs.get(&job.id) {
                Some(old) => (old.request.input.clone(), old.output.clone()),
                None => (Value::Null, None),
            };
            let mut record = Job {
                history: Vec::new(),
                output,
                ..job.clone()
            };
            record.request.input = input;
            inner.jobs.insert(job.id, record);
        }
        for (id, input) in &changes.inputs {
            if let Some(job) = inner.jobs.get_mut(id) {
                job.request.input = input.clone();
            }
        }
        for (id, output) in &changes.outputs {
            if let Some(job) = inner.jobs.get_mut(id) {
                job.output = output.clone();
            }
        }
        let keep = changes.history_len.max(1) as u64;
        for run in &changes.runs {
            let runs = inner.runs.entry(run.id).or_default();
            runs.insert(run.number, run.record.clone());
            let cut = run.number.saturating_sub(keep);
            runs.retain(|n, _| *n > cut);
        }
        for id in &changes.removes {
            inner.jobs.remove(id);
            inner.runs.remove(id);
        }
        inner.commits += 1;
        Ok(())
    }
}
