//! The scheduling side of backwork: the job model, the sans-IO scheduling core, the store trait
//! with an in-memory store, the tokio runtime shell, and the test driver.
//!
//! - [`Scheduler`] is the core: a deterministic state machine that takes time as an argument (see
//!   its [driver contract](crate::core)).
//! - [`Runtime`] drives it on tokio with real workers, a store and a device probe.
//! - [`TestDriver`] drives the same runtime under a virtual clock for tests.

#![warn(missing_docs)]

pub mod core;
#[doc(hidden)]
pub mod fuzzing;
mod runtime;
mod store;

pub use backwork_constraints::{
    Constraint, Constraints, DeviceState, ManualProbe, Network, NetworkRequirement, Probe, Unmet,
};
pub use core::{
    Action, After, AllowAll, Anchor, AppHold, Backoff, BackoffKind, CatchUp, Chain, ChainLink,
    ChangeSet, Config, ConflictPolicy, CoreError, CronSchedule, Decision, Disposition, Event,
    ExpeditedQuota, Force, HoldKind, InputMerger, Interruption, Jitter, Job, JobId, JobRef,
    JobRequest, JobState, MIN_PREFIX_LEN, MergeError, OsState, OutOfQuotaPolicy, Payloads, Policy,
    PolicyContext, PolicyJob, PolicyReason, PolicyStop, Reply, RunOutcome, RunRecord, RunResult,
    RunWrite, SHORT_ID_LEN, Schedule, Scheduler, Selector, StartInput, StartJob, StopReason, Time,
    Unique, Upstream, WaitReason, jitter_offset, next_cron, parse_cron,
};
pub use runtime::{
    ChainReceipt, Clock, FnWorker, JobProgress, JobUpdate, ManualClock, Receipt, Runtime,
    RuntimeBuilder, RuntimeError, RuntimeHandle, Service, Stats, SystemClock, TestDriver,
    TestDriverBuilder, TokioClock, Wake, WorkContext, WorkResult, Worker, worker_fn,
};
pub use store::{MemoryStore, Store, StoreError};
