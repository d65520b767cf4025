//! Durations as the command line parses them (humantime), shown back, and through `backwork add`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backwork_cli::fuzzing::duration(data));
