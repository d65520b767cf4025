//! The on-disk layout, its version, and the migrations from older versions.
//!
//! | version | layout |
//! |---|---|
//! | 1 | `meta` (schema version) and `jobs` (id → JSON record) only |
//! | 2 | adds the index tables `by_state`, `by_due`, `by_name`, `by_tag` |

use redb::{MultimapTableDefinition, ReadableTable, TableDefinition, WriteTransaction};

use backwork_scheduler::{Job, JobState};

/// The schema version this binary writes (and the newest it reads).
pub const SCHEMA_VERSION: u64 = 2;

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const VERSION_KEY: &str = "schema_version";
pub(crate) const JOBS: TableDefinition<u128, &[u8]> = TableDefinition::new("jobs");
pub(crate) const BY_STATE: TableDefinition<(u8, u128), ()> = TableDefinition::new("by_state");
pub(crate) const BY_DUE: TableDefinition<(i64, u128), ()> = TableDefinition::new("by_due");
pub(crate) const BY_NAME: MultimapTableDefinition<&str, u128> =
    MultimapTableDefinition::new("by_name");
pub(crate) const BY_TAG: MultimapTableDefinition<&str, u128> =
    MultimapTableDefinition::new("by_tag");

pub(crate) fn state_code(s: JobState) -> u8 {
    match s {
        JobState::Enqueued => 0,
        JobState::Blocked => 1,
        JobState::Running => 2,
        JobState::Succeeded => 3,
        JobState::Failed => 4,
        JobState::Cancelled => 5,
    }
}

/// The index keys of one record; the store caches them so a commit never re-reads old records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    pub state: u8,
    pub due: Option<i64>,
    pub name: Option<String>,
    pub tags: Vec<String>,
}

impl Keys {
    pub fn of(job: &Job) -> Keys {
        Keys {
            state: state_code(job.state),
            due: (job.state == JobState::Enqueued).then(|| job.not_before.timestamp_millis()),
            name: job.unique_name().map(str::to_string),
            tags: job.request.tags.iter().cloned().collect(),
        }
    }
}

/// The index tables of one write transaction, opened once per commit.
pub(crate) struct Indexes<'txn> {
    by_state: redb::Table<'txn, (u8, u128), ()>,
    by_due: redb::Table<'txn, (i64, u128), ()>,
    by_name: redb::MultimapTable<'txn, &'static str, u128>,
    by_tag: redb::MultimapTable<'txn, &'static str, u128>,
}

impl<'txn> Indexes<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, redb::Error> {
        Ok(Indexes {
            by_state: txn.open_table(BY_STATE)?,
            by_due: txn.open_table(BY_DUE)?,
            by_name: txn.open_multimap_table(BY_NAME)?,
            by_tag: txn.open_multimap_table(BY_TAG)?,
        })
    }

    /// Writes the index entries of `keys` for `id`.
    pub fn insert(&mut self, id: u128, keys: &Keys) -> Result<(), redb::Error> {
        self.by_state.insert((keys.state, id), ())?;
        if let Some(due) = keys.due {
            self.by_due.insert((due, id), ())?;
        }
        if let Some(name) = &keys.name {
            self.by_name.insert(name.as_str(), id)?;
        }
        for tag in &keys.tags {
            self.by_tag.insert(tag.as_str(), id)?;
        }
        Ok(())
    }

    /// Removes the index entries of `keys` for `id`.
    pub fn remove(&mut self, id: u128, keys: &Keys) -> Result<(), redb::Error> {
        self.by_state.remove((keys.state, id))?;
        if let Some(due) = keys.due {
            self.by_due.remove((due, id))?;
        }
        if let Some(name) = &keys.name {
            self.by_name.remove(name.as_str(), id)?;
        }
        for tag in &keys.tags {
            self.by_tag.remove(tag.as_str(), id)?;
        }
        Ok(())
    }
}

/// Version 1 → 2: build the index tables from the records.
pub(crate) fn migrate_1_to_2(txn: &WriteTransaction) -> Result<usize, MigrationError> {
    let mut entries = Vec::new();
    {
        let jobs = txn.open_table(JOBS)?;
        for row in jobs.iter()? {
            let (id, bytes) = row?;
            let job: Job = crate::record::decode(bytes.value())
                .map_err(|e| MigrationError::Record(id.value(), e.to_string()))?;
            entries.push((id.value(), Keys::of(&job)));
        }
    }
    let mut indexes = Indexes::open(txn)?;
    for (id, keys) in &entries {
        indexes.insert(*id, keys)?;
    }
    Ok(entries.len())
}

/// A migration failed.
#[derive(Debug)]
pub(crate) enum MigrationError {
    Redb(redb::Error),
    Record(u128, String),
}

impl<E: Into<redb::Error>> From<E> for MigrationError {
    fn from(e: E) -> Self {
        MigrationError::Redb(e.into())
    }
}
