//! The tables of the current layout, its version, and the migrations from older versions (the
//! layout itself is described in [`crate::layout`]).

use redb::{MultimapTableDefinition, ReadableTable, TableDefinition, WriteTransaction};

use backwork_scheduler::{Job, JobId, Schedule};

use crate::record::{self, RecordError};

/// The schema version this binary writes (and the newest it reads).
pub const SCHEMA_VERSION: u64 = 3;

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const VERSION_KEY: &str = "schema_version";
pub(crate) const JOBS: TableDefinition<u128, &[u8]> = TableDefinition::new("jobs");
pub(crate) const PAYLOADS: TableDefinition<(u128, u8), &[u8]> = TableDefinition::new("payloads");
pub(crate) const RUNS: TableDefinition<(u128, u64), &[u8]> = TableDefinition::new("runs");

/// The payload slot of a job's input.
pub(crate) const INPUT: u8 = 0;
/// The payload slot of a job's output.
pub(crate) const OUTPUT: u8 = 1;

/// Schema 2's index tables, dropped by the migration.
const BY_STATE: TableDefinition<(u8, u128), ()> = TableDefinition::new("by_state");
const BY_DUE: TableDefinition<(i64, u128), ()> = TableDefinition::new("by_due");
const BY_NAME: MultimapTableDefinition<&str, u128> = MultimapTableDefinition::new("by_name");
const BY_TAG: MultimapTableDefinition<&str, u128> = MultimapTableDefinition::new("by_tag");

/// What a migration did.
#[derive(Debug, Default)]
pub(crate) struct Migrated {
    /// Records rewritten.
    pub records: usize,
    /// Jobs with a six- or seven-field cron whose weekday field has a number (see
    /// [`weekday_numbered`]), with the expression.
    pub weekday_crons: Vec<(JobId, String)>,
}

/// True for a six- or seven-field cron expression (seconds first) whose day-of-week field has
/// a digit. Schemas 1 and 2 read such expressions with the `cron` crate, whose weekdays are
/// numbered 1–7 for Sunday–Saturday; they are now read with crontab(5)'s numbering (0 or 7
/// Sunday, 1 Monday, … 6 Saturday), so the same number may name another day.
pub(crate) fn weekday_numbered(expr: &str) -> bool {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    matches!(fields.len(), 6 | 7) && fields[5].chars().any(|c| c.is_ascii_digit())
}

/// Schema 1 or 2 → 3, in the caller's transaction: every JSON record is decoded with the old
/// form and rewritten as a job record (with its input inside when that is small, see
/// [`record::input_goes_inline`]), a larger input and its output in `payloads` and its history
/// in `runs`; schema 2's index tables are dropped. A cron whose weekday numbers changed meaning
/// is kept as written and listed in [`Migrated::weekday_crons`] (the caller warns once per job).
pub(crate) fn migrate_to_3(txn: &WriteTransaction) -> Result<Migrated, MigrationError> {
    let mut old: Vec<Job> = Vec::new();
    {
        let jobs = txn.open_table(JOBS)?;
        for row in jobs.iter()? {
            let (id, bytes) = row?;
            let id = id.value();
            let job =
                record::decode_legacy(bytes.value()).map_err(|e| MigrationError::Record(id, e))?;
            if job.id.as_u128() != id {
                return Err(MigrationError::Record(
                    id,
                    RecordError::Value(format!("the id {} of another job", job.id)),
                ));
            }
            old.push(job);
        }
    }
    let mut out = Migrated {
        records: old.len(),
        ..Migrated::default()
    };
    {
        let mut jobs = txn.open_table(JOBS)?;
        let mut payloads = txn.open_table(PAYLOADS)?;
        let mut runs = txn.open_table(RUNS)?;
        let mut buf = Vec::new();
        for job in &old {
            let id = job.id.as_u128();
            // the input inside the record when it is small, else in `payloads`
            let mut input = Vec::new();
            if !job.request.input.is_null() {
                record::encode_payload(&job.request.input, &mut input)
                    .map_err(|e| MigrationError::Record(id, e))?;
            }
            let inline = record::input_goes_inline(&input);
            buf.clear();
            record::encode_job(
                job,
                (inline && !input.is_empty()).then_some(&input[..]),
                &mut buf,
            )
            .map_err(|e| MigrationError::Record(id, e))?;
            jobs.insert(id, buf.as_slice())?;
            if !inline {
                payloads.insert((id, INPUT), input.as_slice())?;
            }
            if let Some(v) = &job.output {
                buf.clear();
                record::encode_payload(v, &mut buf).map_err(|e| MigrationError::Record(id, e))?;
                payloads.insert((id, OUTPUT), buf.as_slice())?;
            }
            for (number, run) in job.history_numbers().zip(&job.history) {
                buf.clear();
                record::encode_run(run, &mut buf).map_err(|e| MigrationError::Record(id, e))?;
                runs.insert((id, number), buf.as_slice())?;
            }
            if let Schedule::Cron { expr, .. } = &job.request.schedule
                && weekday_numbered(expr)
            {
                out.weekday_crons.push((job.id, expr.clone()));
            }
        }
    }
    txn.delete_table(BY_STATE)?;
    txn.delete_table(BY_DUE)?;
    txn.delete_multimap_table(BY_NAME)?;
    txn.delete_multimap_table(BY_TAG)?;
    Ok(out)
}

/// A migration failed.
#[derive(Debug)]
pub(crate) enum MigrationError {
    Redb(redb::Error),
    Record(u128, RecordError),
}

impl<E: Into<redb::Error>> From<E> for MigrationError {
    fn from(e: E) -> Self {
        MigrationError::Redb(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekday_numbers_are_found_in_six_and_seven_field_crons_only() {
        // seconds first: the sixth field is the day of week
        assert!(weekday_numbered("0 30 9 * * 1-5"));
        assert!(weekday_numbered("0 0 0 * * 7 2027"));
        assert!(weekday_numbered("0 0 12 * * MON,3"));
        assert!(!weekday_numbered("0 30 9 * * Mon-Fri"));
        assert!(!weekday_numbered("0 30 9 1-5 * *"));
        // five fields: crontab numbering already
        assert!(!weekday_numbered("30 9 * * 1-5"));
    }

    /// The fixture's cron job (`0 30 9 * * 1-5`, written for the old `cron` crate's numbering)
    /// is the one job the migration warns about.
    #[test]
    fn the_migration_names_the_job_whose_weekday_numbers_changed_meaning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.redb");
        std::fs::copy(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v2.redb"),
            &path,
        )
        .unwrap();
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let done = migrate_to_3(&txn).unwrap();
        assert_eq!(done.records, 8);
        let t0 = "2026-03-02T08:00:00Z".parse().unwrap();
        let ids: Vec<JobId> = done.weekday_crons.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [JobId::new_v7(t0, [3; 10])]);
    }
}
