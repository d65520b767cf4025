//! A record read from disk: the store's decoders (job record, run record, the old JSON record the
//! migration reads), the re-encoding, and the core's recovery of what decodes.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backwork_persistence::fuzzing::record(data));
