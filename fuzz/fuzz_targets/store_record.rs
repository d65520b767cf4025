//! A job record read from disk: the store's decoder, index keys, and the core's recovery of it.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backwork_persistence::fuzzing::record(data));
