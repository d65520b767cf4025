//! The body of the store-record fuzz target (`fuzz/fuzz_targets/store_record.rs`), as a plain
//! function that stable tests also call. Not part of the public API.

use crate::record;
use crate::schema::Keys;

/// Bytes as a record read from disk: decoded by the store's decoder; a record that decodes gets
/// its index keys computed (as a commit does) and is loaded into a scheduling core, which then
/// recovers and drives it (as opening a store does). A file may hold anything: none of this
/// may panic.
pub fn record(data: &[u8]) {
    let Ok(job) = record::decode(data) else {
        return;
    };
    let _ = Keys::of(&job);
    let now = backwork_scheduler::fuzzing::instant_of(1_764_374_400_i64.to_le_bytes());
    backwork_scheduler::fuzzing::drive(vec![job], Vec::new(), now);
}
