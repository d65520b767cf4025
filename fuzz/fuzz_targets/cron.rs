//! Cron expressions: the core's parser and next fire times, and through `backwork add --cron`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backwork_cli::fuzzing::cron(data));
