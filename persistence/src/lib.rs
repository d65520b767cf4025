//! The durable registry of backwork: a [`RedbStore`] that implements the scheduler's
//! [`Store`](backwork_scheduler::Store) trait on a redb file.
//!
//! - **Schema.** A `meta` table holds the schema version ([`SCHEMA_VERSION`]); `jobs` holds each
//!   job record (JSON) by id; index tables answer the lookups by state, due time, unique name and
//!   tag without scanning every record. Older layouts are migrated on open, in one transaction.
//! - **Durability.** [`RedbStore::commit`](backwork_scheduler::Store::commit) writes a whole change
//!   set in one `Immediate` transaction; the runtime gathers concurrent changes into one change
//!   set (group commit).
//! - **Safety on open.** A missing file is created (0600, in a 0700 directory) only when asked; an
//!   empty or truncated file is refused and left untouched; a file held by another process, a
//!   corrupt file and a newer schema each give their own [`StoreError`] with advice.
//!
//! This is the only crate that knows redb.

#![warn(missing_docs)]

#[doc(hidden)]
pub mod fuzzing;
mod path;
mod record;
mod schema;
mod store;

pub use backwork_scheduler::StoreError;
pub use path::default_store_path;
pub use schema::SCHEMA_VERSION;
pub use store::{OpenMode, RedbStore};
