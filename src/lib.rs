//! # backwork
//!
//! A background-work scheduler for Rust programs and Linux machines, in the spirit of Android's
//! WorkManager: register one-off, periodic and cron jobs with constraints (network, charging,
//! battery, storage, idle, minimum interval); an executor runs each job when it is due and its
//! constraints hold, retries with backoff, and can be tested on a virtual clock.
//!
//! ```
//! use std::time::Duration;
//! use backwork::{Constraints, JobRequest, Runtime, WorkResult, worker_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), backwork::RuntimeError> {
//! let runtime = Runtime::builder()
//!     .worker("sync", worker_fn(|ctx| async move {
//!         // talk to the server here; ctx.idempotency_key() identifies this attempt
//!         let _ = ctx.attempt();
//!         WorkResult::success()
//!     }))
//!     .start()
//!     .await?;
//! runtime
//!     .enqueue(
//!         JobRequest::periodic("sync", Duration::from_secs(6 * 3600))
//!             .constraints(Constraints::none().charging().battery_not_low()),
//!     )
//!     .await?;
//! runtime.shutdown(Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```
//!
//! The pieces, all re-exported here:
//! - the job model: [`JobRequest`], [`Job`], [`JobState`], [`Schedule`], [`Backoff`], …;
//! - the runtime: [`Runtime`], [`RuntimeHandle`], [`Worker`], [`WorkContext`], [`WorkResult`];
//! - device constraints and probes: [`Constraints`], [`DeviceState`], [`ManualProbe`], and
//!   where each value came from ([`DeviceReport`], [`Probe::report`]);
//! - testing: [`TestDriver`] (virtual clock, scripted device);
//! - the sans-IO scheduling core for custom drivers: [`core`] ([`Scheduler`]);
//! - storage: the [`Store`] trait, the durable [`RedbStore`] (the default store lives at
//!   [`default_store_path`]) and [`MemoryStore`];
//! - the control socket: add [`ControlSocket`] as a [`Service`] with one builder call and the
//!   `backwork` command line lists, explains, runs and cancels this app's jobs:
//!   `Runtime::builder().service(ControlSocket::new(default_socket_path()))`.

#![warn(missing_docs)]

pub use backwork_constraints::{DeviceReadings, DeviceReport, Reading, Source};
#[cfg(target_os = "linux")]
pub use backwork_constraints::{HostConfig, HostProbe, IdleSource};
pub use backwork_control::{ControlSocket, default_socket_path};
pub use backwork_persistence::{OpenMode, RedbStore, SCHEMA_VERSION, default_store_path};
pub use backwork_scheduler::core;
pub use backwork_scheduler::{
    Action, After, AllowAll, Anchor, Backoff, BackoffKind, CatchUp, Chain, ChainLink, ChainReceipt,
    ChangeSet, Clock, Config, ConflictPolicy, Constraint, Constraints, CoreError, Decision,
    DeviceState, Disposition, Event, ExpeditedQuota, FnWorker, Force, InputMerger, Interruption,
    Job, JobId, JobProgress, JobRequest, JobState, JobUpdate, ManualClock, ManualProbe,
    MemoryStore, MergeError, Network, NetworkRequirement, OutOfQuotaPolicy, Policy, PolicyContext,
    Probe, Receipt, Reply, RunOutcome, RunRecord, RunResult, Runtime, RuntimeBuilder, RuntimeError,
    RuntimeHandle, Schedule, Scheduler, Selector, Service, StartJob, Stats, StopReason, Store,
    StoreError, SystemClock, TestDriver, TestDriverBuilder, Time, TokioClock, Unique, Unmet,
    Upstream, WaitReason, WorkContext, WorkResult, Worker, worker_fn,
};

/// The README's Rust examples, compiled and run as doc-tests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
