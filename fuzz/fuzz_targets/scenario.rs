//! Scenario files as `backwork simulate` reads them; those that parse are simulated.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backwork_cli::fuzzing::scenario(data));
