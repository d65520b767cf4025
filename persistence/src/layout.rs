//! # The store's file layout, schema 3
//!
//! The store is one redb file. redb gives ordered tables of typed keys and values in
//! copy-on-write B-trees with checksummed pages and atomic commits; this module describes
//! what backwork puts in them. Multi-byte integers in keys are redb's fixed-width
//! little-endian encodings (`u64`, `u128`, tuples of them); values are byte strings whose
//! encoding is described below.
//!
//! ## Tables
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `&str` | `u64` |
//! | `jobs` | `u128`: the job id (UUID v7 as an integer, so time-ordered) | the **job record** |
//! | `payloads` | `(u128, u8)`: job id, slot (`0` input, `1` output) | the payload's JSON text (UTF-8) |
//! | `runs` | `(u128, u64)`: job id, run number | the **run record** |
//!
//! - `meta` holds one key, `"schema_version"` → `3`.
//! - `jobs` holds every job the scheduler knows, finished ones until they are pruned.
//! - `payloads`: a job's input is stored here only when it is not JSON `null` and its JSON
//!   text is longer than 256 bytes (`record::INLINE_INPUT_MAX`); a smaller input is kept inside
//!   the job record (field 30), so an enqueue writes one row of one table. A job's input is
//!   in one place only: the writer that puts it in one removes it from the other. A missing
//!   input reads as `null`. A job's output (the last run's) is stored here when there is
//!   one — an output that *is* `null` is stored as the four bytes `null`.
//! - `runs`: a job's recent runs. The run number is the job's `runs_total` when that run
//!   started (1-based; a job runs once at a time, so it is unique per job). A commit that
//!   writes run `n` of a job deletes its runs numbered `n − history_len` and below, so at most
//!   `history_len` (the core's `Config::history_len`, at least 1) are kept; reading a job's
//!   runs in key order gives its history oldest first.
//! - Removing a job removes its `jobs` row, both payload slots and all its runs, in the same
//!   transaction.
//!
//! There are no index tables: the scheduler loads every record of `jobs` when it opens the
//! store and keeps its own indexes in memory (schema 2's `by_state`, `by_due`, `by_name` and
//! `by_tag` had no reader and are dropped by the migration). It keeps no payloads: `payloads`
//! and `runs` are read only by key — a starting run's input and its prerequisites' outputs, a
//! job `show` prints — and in full only by the check of the file when it is opened.
//!
//! ## The job record
//!
//! Byte 0 is the record's **format version** (`4` today; `1` to `3` are read too).
//! The rest is the [postcard](https://docs.rs/postcard) encoding (postcard's wire format 1.0)
//! of these fields, in this order, with nothing after them (a format 2 record ends after field
//! 27, a format 3 record after field 29):
//!
//! | # | field | type → encoding |
//! |---|---|---|
//! | 1 | kind | string: varint length, UTF-8 bytes |
//! | 2 | schedule | enum (below) |
//! | 3 | constraints | `network`: option of enum {0 connected, 1 unmetered}; then `charging`, `battery_not_low`, `storage_not_low`, `device_idle`: one byte each (0/1) |
//! | 4 | min_interval | option of duration |
//! | 5 | backoff | kind enum {0 exponential, 1 linear}; base: duration; jitter: `f64`, 8 bytes little-endian |
//! | 6 | max_attempts | option of varint `u32` |
//! | 7 | timeout | option of duration (`none`: no limit) |
//! | 8 | unique | option of (name: string, policy enum {0 keep, 1 replace, 2 update, 3 append, 4 append_or_replace, 5 cancel_and_reenqueue}) |
//! | 9 | tags | sequence (varint count) of strings, in sorted order |
//! | 10 | catch_up | enum {0 one, 1 skip} |
//! | 11 | accurate | bool |
//! | 12 | jitter | option of (max: duration, fixed: bool) |
//! | 13 | state | enum {0 enqueued, 1 blocked, 2 running, 3 succeeded, 4 failed, 5 cancelled} |
//! | 14 | enqueued_at | instant |
//! | 15 | attempt | varint `u32` |
//! | 16 | not_before | instant |
//! | 17 | backing_off | bool |
//! | 18 | window_end | option of instant |
//! | 19 | last_started | option of instant |
//! | 20 | last_finished | option of instant |
//! | 21 | last_success_started | option of instant |
//! | 22 | runs_total | varint `u64` |
//! | 23 | cycle | varint `u64` |
//! | 24 | prerequisites | sequence of job ids, each 16 bytes big-endian |
//! | 25 | stop_reason | option of stop reason (below) |
//! | 26 | finished_at | option of instant |
//! | 27 | force | two bools: time, constraints |
//! | 28 | input_merger (format 3) | enum {0 overwriting, 1 array_creating}; a format 1 or 2 record has no such field and reads as overwriting |
//! | 29 | expedited (format 3) | option of enum {0 run_as_non_expedited, 1 drop}: the out-of-quota policy of an expedited job; none: not expedited |
//! | 30 | input (format 4) | option of bytes (varint length, then the input's JSON text, at most 256 bytes): the job's input when it is small; none: the input is `null` or in `payloads`. A record of format 1 to 3 has none. A format 4 record without one ends with the byte `0`; one with one ends with the last byte of a JSON text, never `0` |
//!
//! The job's id is the key, not part of the record. Its output and history are in `payloads`
//! and `runs`; its input is field 30 or in `payloads`.
//!
//! Encodings (postcard's): an **option** is one byte `0` (none) or `1` followed by the value; an
//! **enum** is its variant index as a varint `u32`, followed by the variant's fields; a
//! **varint** is LEB128 (7 bits a byte, low first), signed integers zigzag-encoded first; a
//! **duration** is whole seconds (varint `u64`) then nanoseconds (varint `u32`); an
//! **instant** is whole seconds since 1970-01-01T00:00:00Z (varint `i64`) then nanoseconds
//! (varint `u32`) — both lossless for any value the core holds.
//!
//! - **schedule**: `0` once (delay: duration; not_before: option of instant), `1` periodic
//!   (every: duration; flex: option of duration; anchor enum {0 grid, 1 after_run}), `2` cron
//!   (expr: string; tz: string, an IANA zone name), `3` periodic with an initial delay (every:
//!   duration; flex: option of duration; anchor: option of the anchor enum, none meaning the
//!   profile's default; initial_delay: duration). Format 2 writes every periodic schedule as
//!   `3`; variant `1` is only found in format 1 records (anchor named, no delay).
//! - **stop reason**: `0` cancelled, `1` timeout, `2` constraint lost (constraint enum: `0`
//!   network + network enum, `1` charging, `2` battery_not_low, `3` storage_not_low, `4`
//!   device_idle), `3` shutdown, `4` unknown, `5` policy (string: the sentence; read with code
//!   `policy`), `6` expired (string; read with code `expired`), `7` prerequisite failed (job
//!   id, 16 bytes big-endian), `8` policy (code string, sentence string), `9` expired (code
//!   string, sentence string). Writers since `8` and `9` exist write those, never `5` or `6`.
//!
//! ## The run record
//!
//! Byte 0 is its format version (`1`); then, in
//! postcard: attempt (varint `u32`), started (instant), finished (instant), result (enum {0
//! success, 1 retry, 2 failure, 3 stopped, 4 crashed}), output (option of bytes: varint length
//! and the output's JSON text), stop reason (option, as above), note (option of string).
//!
//! ## Versions
//!
//! - A **record's** format byte changes when its fields change. A field is only ever added at
//!   the end, in a new format; the reader of format *n* reads every format up to *n*, so a
//!   store never has to be rewritten for a new field. A record of a format newer than this
//!   binary knows, an enum variant it does not know (a newer stop reason, say), bytes left
//!   over after the last field, an instant out of range or an unknown time zone are reported as
//!   [`StoreError::Corrupt`](crate::StoreError::Corrupt) naming the job — never a panic.
//! - The **schema** version in `meta` changes when tables or keys change. Opening migrates an
//!   older schema in one transaction (1 → 3 and 2 → 3 re-encode schema 1's and 2's JSON records
//!   into the tables above and drop the index tables); a newer schema is refused with
//!   [`StoreError::NewerSchema`](crate::StoreError::NewerSchema) and left unchanged.
//!
//! | job record format | change |
//! |---|---|
//! | 1 | the fields above, schedule variants 0–2 |
//! | 2 | schedule variant 3 (a periodic job's initial delay; an anchor left to the profile) |
//! | 3 | fields 28 and 29: the input merger of a job with prerequisites (chains) and `expedited`; a format 1 or 2 record reads as overwriting and not expedited |
//! | 4 | field 30: a small input inside the record (one row per enqueue instead of two: about a quarter fewer bytes written per durable enqueue); a record of format 1 to 3 keeps its input in `payloads` |
//!
//! | schema | layout |
//! |---|---|
//! | 1 | `meta`, and `jobs` (id → the core's `Job` as JSON, history and payloads included) |
//! | 2 | schema 1 and the index tables `by_state`, `by_due`, `by_name`, `by_tag` |
//! | 3 | this page |
