//! `--at` instants in a time zone, and through `backwork add --at … --tz …`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backwork_cli::fuzzing::at(data));
