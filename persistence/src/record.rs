//! The job record as stored in the `jobs` table: decoded in one place, by the store's reads, by
//! the migrations and by the record fuzz target.

use backwork_scheduler::Job;

/// Decodes one stored record.
pub(crate) fn decode(bytes: &[u8]) -> Result<Job, serde_json::Error> {
    serde_json::from_slice(bytes)
}
