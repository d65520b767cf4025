//! Bytes on a control-socket connection: the server's frame decoder, and `add` requests into the core.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backwork_control::fuzzing::frames(data));
