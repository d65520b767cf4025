//! The body of the store-record fuzz target (`fuzz/fuzz_targets/store_record.rs`), as a plain
//! function that stable tests also call. Not part of the public API.

use backwork_scheduler::{Job, JobId};

use crate::record;

/// The id the fuzzed job records are decoded under (a record does not hold its id: it is the key).
fn id() -> JobId {
    JobId::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001)
}

/// A job's record as a commit writes it, keeping `inline` (an input's JSON text) inside it.
pub fn encode(job: &Job, inline: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    record::encode_job(job, inline, &mut out).expect("every job has a record");
    out
}

/// Bytes as records read from disk, given to each decoder the store's reads and migrations
/// use: the run record's, the old JSON record's (whose job, if it decodes, is encoded as a job
/// record and fed on as such, as the migration does) and the job record's. A job record that
/// decodes must encode to bytes that decode to the same bytes again (the mapping is one), and
/// is loaded into a scheduling core, which recovers and drives it (as opening a store does).
/// A file may hold anything: none of this may panic.
pub fn record(data: &[u8]) {
    let _ = record::decode_run(data);
    if let Ok(job) = record::decode_legacy(data) {
        let mut bytes = Vec::new();
        if record::encode_job(&job, None, &mut bytes).is_ok() {
            job_record(&bytes);
        }
    }
    job_record(data);
}

fn job_record(data: &[u8]) {
    let Ok(job) = record::decode_job(id(), data) else {
        return;
    };
    let inline = record::inline_input(data).expect("a record that decodes has its parts");
    let once = encode(&job, inline);
    let again = record::decode_job(id(), &once).map(|j| {
        let inline = record::inline_input(&once).expect("a record just written has its parts");
        encode(&j, inline)
    });
    assert_eq!(again.as_ref(), Ok(&once), "a record encodes back to itself");
    let now = backwork_scheduler::fuzzing::instant_of(1_764_374_400_i64.to_le_bytes());
    backwork_scheduler::fuzzing::drive(vec![job], Vec::new(), now);
}
