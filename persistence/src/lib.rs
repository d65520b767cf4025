//! The durable registry of backwork: a [`RedbStore`] that implements the scheduler's
//! [`Store`](backwork_scheduler::Store) trait on a redb file.
//!
//! - **Schema.** A `meta` table holds the schema version ([`SCHEMA_VERSION`]); `jobs` holds each
//!   job's scheduling fields by id as a versioned binary record (postcard), `payloads` its input
//!   and output (JSON), `runs` its recent runs. The [`layout`] module documents every table, key
//!   and value byte by byte, and the version rules. Older layouts are migrated on open, in one
//!   transaction; a newer one is refused.
//! - **Durability.** [`RedbStore::commit`](backwork_scheduler::Store::commit) writes a whole change
//!   set in one `Immediate` transaction; the runtime gathers concurrent changes into one change
//!   set (group commit).
//! - **Creation never replaces a file.** A missing store is created (0600, in a 0700 directory)
//!   only when asked: written in full under a temporary name, then linked into place with
//!   `link(2)`, which fails if the path exists — then the file another process created first is
//!   opened instead. A commit counts only if the path still names the file the store opened
//!   (device and inode, checked once per group commit); otherwise it fails with
//!   [`StoreError::Replaced`] and nothing is acknowledged.
//! - **Opening never writes to a file that failed its check.** Every open first *checks* the file
//!   through an in-memory overlay (the storage backend keeps redb's writes in memory): redb's
//!   integrity check (the checksum of every page of the committed trees), the schema check (a
//!   migration runs in the overlay too) and the decoding of every record. Only a file that
//!   passed is opened for writing. **When redb's repair may write:** only in that second open,
//!   on a file that passed the check, i.e. after a crash or a failed commit (the repair's
//!   progress is logged at INFO). A file that is empty, truncated, corrupt — a redb panic
//!   included (caught, its message kept as the detail) — held by another process, of a newer
//!   schema, or no redb file at all (a directory, a device, a FIFO, a link to nothing:
//!   [`StoreError::NotAFile`]; a file that does not begin with redb's magic number:
//!   [`StoreError::NotAStore`]) gets its own [`StoreError`] with advice and is left
//!   byte-for-byte unchanged. One this user may not write is [`StoreError::PermissionDenied`].
//! - **Latest commit unreadable.** redb opens a file whose latest commit cannot be read at the
//!   commit before. That is right for a commit that failed half-way (never acknowledged) and
//!   wrong for damage to an acknowledged one: a reopen in the process that acknowledged the
//!   lost commit refuses it ([`StoreError::Corrupt`]); a fresh process cannot tell the two
//!   apart, opens at the older commit and logs a warning.
//! - **A store that cannot be written can still be read.** After a failed commit (full disk,
//!   I/O error), [`Store::load`](backwork_scheduler::Store::load) reads what is durable through
//!   a checked read-only view, and a reopen that cannot open for writing (e.g. the repair needs
//!   space) keeps that view: the runtime answers reads and refuses writes meanwhile.
//!
//! This is the only crate that knows redb.

#![warn(missing_docs)]

mod backend;
#[doc(hidden)]
pub mod fuzzing;
mod guard;
pub mod layout;
mod path;
mod record;
mod schema;
mod store;

pub use backwork_scheduler::StoreError;
pub use path::default_store_path;
pub use schema::SCHEMA_VERSION;
pub use store::{OpenMode, RedbStore};
