//! The durable registry of backwork.
//!
//! **Role.** This crate will hold the redb-backed implementation of the scheduler's store trait
//! (`backwork_scheduler::Store`): the on-disk schema with its version number and migrations, the
//! encoding of job records, group commit (one writer gathers concurrent changes into one durable
//! transaction), and recovery on open (every job found `running` goes back to `enqueued`).
//!
//! It is the only crate that knows redb. Until the durability issue lands it holds no code: the
//! runtime runs on `backwork_scheduler::MemoryStore`.

#![warn(missing_docs)]
