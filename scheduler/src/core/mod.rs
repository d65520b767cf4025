//! The sans-IO scheduling core.
//!
//! # Driver contract
//!
//! The core is a deterministic state machine. It never reads a clock, never does IO and never
//! spawns: time is an argument, and effects are returned as [`Action`]s for the driver to carry out.
//! The runtime shell, the test driver and the simulator all drive this same core:
//!
//! 1. Feed one input: [`Scheduler::handle`]`(now, event)`. It returns a [`Reply`] or a
//!    [`CoreError`]; a refused input changes nothing.
//! 2. Drain the outputs: call [`Scheduler::poll_action`] until it returns `None`, and carry the
//!    actions out **in order**. An [`Action::Persist`] always precedes the starts, stops and aborts
//!    of the same input, and must be durable before they are carried out (a run's attempt number
//!    is on disk before its worker starts).
//! 3. Ask for the next deadline: [`Scheduler::poll_timeout`]. When that instant comes, feed
//!    [`Event::Timeout`]. When nothing is due, it returns `None` and the driver sleeps until the next
//!    input: there is no periodic tick.
//!
//! The same sequence of inputs always produces the same sequence of actions.
//!
//! ## Boot sequence
//!
//! A driver starts a core in this order, every input at the same instant `now`:
//!
//! 1. [`Scheduler::new`] (or [`Scheduler::without_persistence`] for a driver without a store).
//! 2. [`Event::DeviceChanged`] with the device state its probe reads now. A core assumes a
//!    healthy device until told otherwise, so a load before this could start a job whose
//!    constraints the real device does not meet.
//! 3. [`Event::WorkerRegistered`] for each worker kind it runs, so the load files the jobs of
//!    those kinds as startable rather than waiting for a worker (in either order with step 2).
//! 4. [`Event::Load`] with every stored job (an empty list for a fresh store). A core is loaded
//!    once; [`Event::Reload`] replaces its jobs after the store was reopened.
//! 5. [`Event::Interrupted`], right after the load, when the driver knows more about the runs
//!    its crash interrupted (their real end, a note) than "they were running".
//!
//! Then it drains the actions of each input as the contract above says (the load's own
//! recovery writes and starts included) and goes on with the other inputs.
//!
//! # Layout
//!
//! The core keeps each job as a compact entry (`entry.rs`: the scheduling fields and the request
//! without its input) in one table that owns the jobs, their payloads (inputs, outputs, recent
//! runs, held only for the jobs that have them) and every index over them (`table.rs`). What
//! waits to be dispatched lives in the lanes (`lanes.rs`). The inputs are handled along four
//! seams: admission (`admission.rs`, with `chain.rs` for chains and unique-name sequences),
//! dispatch (`dispatch.rs`, which merges a chained job's input at its start with `merge.rs`),
//! finishing (`finishing.rs`) and recovery (`recovery.rs`, with `interrupted.rs`); `why.rs`
//! explains a job's wait.
//!
//! # Chains
//!
//! A job waits for others through its `prerequisites` (the one dependency mechanism): it is
//! [`JobState::Blocked`] until they all succeed, gets their outputs merged into its input by its
//! [`InputMerger`] when it starts, and ends with [`StopReason::PrerequisiteFailed`] when one of
//! them fails or is cancelled. [`Event::EnqueueChain`] enqueues a [`Chain`] (a DAG of one-off
//! links) all or nothing, in one input; see [`Chain`] for the unique-name policies.

mod admission;
mod chain;
mod dispatch;
mod entry;
mod error;
mod expedited;
mod finishing;
mod interrupted;
mod job;
mod lanes;
mod merge;
mod name;
mod policy;
mod recovery;
mod runs;
mod schedule;
mod spec;
mod table;
mod why;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use backwork_constraints::DeviceState;
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use chain::{After, Chain, ChainLink};
use entry::Entry;
pub use entry::Payloads;
pub use error::CoreError;
pub use expedited::{ExpeditedQuota, OutOfQuotaPolicy};
pub use interrupted::Interruption;
pub use job::millis;
pub use job::{
    Anchor, Backoff, BackoffKind, CatchUp, ConflictPolicy, DEFAULT_TIMEOUT, Force, Jitter, Job,
    JobId, JobRequest, JobState, RunOutcome, RunRecord, RunResult, SHORT_ID_LEN, Schedule,
    StopReason, Time, Unique, humanize, humanize_approx,
};
pub use merge::{InputMerger, MergeError, merge_inputs};
pub use name::{MAX_NAME_BYTES, NameError, check_unique_name};
pub use policy::{
    AllowAll, AppHold, Decision, HoldKind, OsState, Policy, PolicyContext, PolicyJob, PolicyReason,
    PolicyStop,
};
pub use schedule::{
    CronSchedule, MAX_BACKOFF, MIN_BACKOFF, Window, add, backoff_delay, effective_flex,
    jitter_offset, next_cron, next_periodic_window, parse_cron, periodic_window_at, since, sub,
};
pub use spec::{
    ANCHOR_CHOICES, CATCH_UP_CHOICES, Choice, EXPEDITED_CHOICES, INPUT_MERGER_CHOICES, JobOptions,
    NO_TIMEOUT_WORDS, ON_CONFLICT_CHOICES, OptionContext, OptionError, REQUIRES_CHOICES, choose,
    parse_at, parse_duration, parse_timeout, parse_zone,
};
use table::Table;
pub use why::{JobRef, WaitReason};

/// The longest duration the core accepts anywhere (100 years).
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Tunables of the core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// How many jobs may run at once (default 4).
    pub max_concurrent: usize,
    /// How long a stopped run may take to wind down before it is dropped (default 5 s).
    #[serde(with = "job::millis")]
    pub grace: Duration,
    /// Largest input or output payload, as serialized JSON bytes (default 10 KiB).
    pub payload_cap: usize,
    /// How long finished jobs are kept before they are pruned (default 1 day).
    #[serde(with = "job::millis")]
    pub retention: Duration,
    /// How many recent runs each job keeps (default 10).
    pub history_len: usize,
    /// The shortest periodic interval (default 1 s, the desktop profile's; Android: 15 min).
    #[serde(with = "job::millis")]
    pub min_period: Duration,
    /// The shortest flex window (default 0; Android: 5 min).
    #[serde(with = "job::millis")]
    pub min_flex: Duration,
    /// An interval or flex below its minimum is raised to it with a warning, as WorkManager does
    /// (`true`), or refused with an error (`false`, the default).
    pub raise_short_periods: bool,
    /// How long past its due time a job without a flex window may wait so that it shares a
    /// wake-up with other work (default 1 min, like systemd's `AccuracySec`); periodic jobs with a
    /// flex window may wait to their window's end. A job never waits past its next slot, and
    /// one that has nothing to share a wake-up with starts at its due time (DESIGN §6). Zero
    /// turns batching off: every job starts at its due time, flex windows included (the
    /// android profile's setting: Android batches through Doze and standby buckets instead).
    #[serde(with = "job::millis", default = "default_batch_window")]
    pub batch_window: Duration,
    /// How a periodic job's periods are placed when its request names no anchor: [`Anchor::Grid`]
    /// by default (DESIGN §2: no drift); the android profile uses [`Anchor::AfterRun`], as
    /// WorkManager does (DESIGN §6). Admission writes it into the request, so a job keeps the
    /// anchor it was admitted with.
    #[serde(default)]
    pub default_anchor: Anchor,
    /// The expedited quota when the policy does not set one ([`Policy::expedited_quota`]):
    /// [`ExpeditedQuota::DESKTOP`], 1 hour of expedited run time per rolling 24 hours.
    #[serde(default)]
    pub expedited_quota: ExpeditedQuota,
}

fn default_batch_window() -> Duration {
    Duration::from_secs(60)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_concurrent: 4,
            grace: Duration::from_secs(5),
            payload_cap: 10 * 1024,
            retention: Duration::from_secs(86_400),
            history_len: 10,
            min_period: Duration::from_secs(1),
            min_flex: Duration::ZERO,
            raise_short_periods: false,
            batch_window: default_batch_window(),
            default_anchor: Anchor::Grid,
            expedited_quota: ExpeditedQuota::DESKTOP,
        }
    }
}

/// Which jobs a command applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "value")]
pub enum Selector {
    /// One job by id.
    Id(JobId),
    /// The jobs with this unique name.
    Name(String),
    /// The jobs with this tag.
    Tag(String),
    /// A job by its short id ([`JobId::short`]) or a prefix of it, at least
    /// [`MIN_PREFIX_LEN`] hex digits — unless a job's unique name is exactly this text, which
    /// wins (a name may be 4–7 hex digits, never 8 or more). Two jobs matching is an error
    /// ([`CoreError::AmbiguousPrefix`]), never an action on both.
    Prefix(String),
}

/// The fewest hex digits [`Selector::Prefix`] takes.
pub const MIN_PREFIX_LEN: usize = 4;

/// How many candidates [`CoreError::AmbiguousPrefix`] names at most.
const MAX_CANDIDATES: usize = 8;

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Id(id) => write!(f, "{id}"),
            Selector::Name(n) => f.write_str(n),
            Selector::Tag(t) => write!(f, "tag {t}"),
            Selector::Prefix(p) => f.write_str(p),
        }
    }
}

/// An input to the core.
// An event is built once and moved into `handle`; boxing the request would cost an allocation
// per enqueue for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Load the jobs of a store into a fresh core (recovery: `running` jobs become `enqueued` with
    /// stop reason `unknown`, charged and backed off; missed slots follow their catch-up policy).
    Load(Vec<Job>),
    /// Replace every job with the store's records after the store was reopened (an I/O error):
    /// runs in progress are forgotten (the driver has dropped them), then the records are loaded
    /// as by [`Event::Load`]. Configuration, policy, registered kinds and device state are kept.
    Reload(Vec<Job>),
    /// Right after a load: what the driver knows about the runs its crash interrupted (their
    /// real end, a note); amends the history records the load wrote (see [`Interruption`]).
    Interrupted(Vec<Interruption>),
    /// Enqueue a request under a fresh id.
    Enqueue {
        /// The new job's id (the driver generates it).
        id: JobId,
        /// The request.
        request: JobRequest,
    },
    /// Enqueue a chain (a DAG of one-off jobs) under fresh ids, one per link in order: all of
    /// it or, refused, none of it (see [`Chain`]).
    EnqueueChain {
        /// The links' ids (the driver generates them), as many as the chain has links.
        ids: Vec<JobId>,
        /// The chain.
        chain: Chain,
    },
    /// Cancel the unfinished jobs the selector names, and with them every job after them.
    Cancel(Selector),
    /// Give the failed or cancelled jobs the selector names a fresh cycle: enqueued again, due
    /// now (a recurring job: at its next slot), with no attempt charged and new idempotency keys.
    Retry(Selector),
    /// Treat gates as met for the next run of the selected jobs ("run now", the test driver).
    Force {
        /// Which jobs.
        selector: Selector,
        /// Which gates.
        force: Force,
    },
    /// The device state changed.
    DeviceChanged(DeviceState),
    /// A worker for this kind is now registered.
    WorkerRegistered(String),
    /// A run ended.
    Finished {
        /// The job.
        id: JobId,
        /// The attempt that ended (stale reports are ignored).
        attempt: u32,
        /// How it ended.
        outcome: RunOutcome,
    },
    /// The deadline from [`Scheduler::poll_timeout`] has come.
    Timeout,
    /// The wall clock jumped or the machine resumed from suspend: missed slots follow their
    /// catch-up policy.
    ClockJumped,
    /// The machine is about to suspend or hibernate (logind's `PrepareForSleep(true)`): nothing
    /// new starts — not even a forced job — until [`Event::Resumed`]. Runs in progress are left
    /// alone: they freeze with the machine.
    PrepareForSleep,
    /// The machine resumed (logind's `PrepareForSleep(false)`): missed slots follow their
    /// catch-up policy at once, as for [`Event::ClockJumped`], and starts resume. Without a
    /// [`Event::PrepareForSleep`] before it, it is only a clock jump.
    Resumed,
    /// The machine was suspended this long (measured by the driver's clock, see
    /// [`Clock::suspended`](crate::Clock::suspended)): the time is added to the limits of the
    /// runs in progress, which were frozen meanwhile — as systemd's `RuntimeMaxSec=`, armed on
    /// `CLOCK_MONOTONIC`, does not count a suspend — and missed slots follow their catch-up
    /// policy. Fed before anything else learnt on waking, it holds however late the
    /// announcements of the suspend come, or if none comes.
    Suspended(Duration),
    /// Drop the finished jobs that finished at least `older_than` ago (`None`: the configured
    /// retention, which the core also applies by itself as time passes).
    Prune {
        /// The least age of a finished job that goes.
        older_than: Option<Duration>,
    },
    /// The policy's view of the world changed outside the device state (an app's standby bucket,
    /// a force-quit): every job it deferred or denied is asked again.
    PolicyChanged,
    /// Stop starting jobs and ask running ones to stop, dropping them after `grace`.
    Shutdown {
        /// How long running jobs get to wind down.
        grace: Duration,
    },
}

/// How an enqueue was resolved against an existing unique name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// A new job was inserted.
    Inserted,
    /// The existing job was kept; the request was dropped.
    Kept,
    /// The existing job's request was updated in place.
    Updated,
    /// The existing job was cancelled and the new one inserted.
    Replaced,
    /// The new job was appended after the existing one.
    Appended,
}

/// The core's answer to an input.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Nothing to report.
    Done,
    /// Jobs loaded; `recovered` were found running and put back.
    Loaded {
        /// Jobs loaded.
        jobs: usize,
        /// Jobs recovered from `running`.
        recovered: usize,
    },
    /// The request was enqueued (or resolved against a unique name) as job `id`.
    Enqueued {
        /// The job that now stands for the request.
        id: JobId,
        /// What happened.
        disposition: Disposition,
        /// Values the core changed, e.g. an interval raised to the minimum.
        warnings: Vec<String>,
    },
    /// A chain was enqueued (or resolved against its unique name).
    ChainEnqueued {
        /// The links' ids, in the chain's order; for [`Disposition::Kept`], the unfinished jobs
        /// of the name that were kept instead.
        ids: Vec<JobId>,
        /// What happened.
        disposition: Disposition,
        /// Values the core changed, link by link.
        warnings: Vec<String>,
    },
    /// These jobs were cancelled.
    Cancelled(Vec<JobId>),
    /// These jobs were forced.
    Forced(Vec<JobId>),
    /// These jobs got a fresh cycle.
    Retried(Vec<JobId>),
    /// Finished jobs were pruned.
    Pruned {
        /// How many went.
        count: usize,
        /// How many finished jobs are still kept (younger than `age`, or still winding down).
        kept: usize,
        /// The least age of the jobs that went: the one asked, else the retention.
        age: Duration,
    },
}

/// Job records to write and ids to delete, as one durable unit.
///
/// A store writes, in this order: each upsert's **scheduling fields** (everything but its
/// input, output and history, which a store takes from `inputs`, `outputs` and `runs`
/// only), the inputs, the outputs and the runs — a later entry for the same job (or the same
/// run) replacing an earlier one — then the removes, each of which deletes the job's record,
/// payloads and runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeSet {
    /// Jobs to insert or replace: from the core, each with its scheduling fields but no input
    /// (`Value::Null`), no output and no history — a store writes only the scheduling fields
    /// from it and takes the payloads and runs from the lists below (the core does not keep
    /// them: these lists carry the ones it was given since the last change set).
    pub upserts: Vec<Job>,
    /// Ids to delete, with their payloads and runs.
    pub removes: Vec<JobId>,
    /// A job's input payload: written at enqueue (unless it is null: a new job has none to
    /// replace) and when the `update` conflict policy replaces the request, nowhere else.
    /// `Value::Null` is no input.
    pub inputs: Vec<(JobId, Value)>,
    /// A job's output (its last run's, as [`Job::output`]), whenever it changes; `None` clears it.
    pub outputs: Vec<(JobId, Option<Value>)>,
    /// Run records to insert or replace: every record added to a job's history, and the one
    /// [`Event::Interrupted`] amends (same number).
    pub runs: Vec<RunWrite>,
    /// How many runs the store keeps per job ([`Config::history_len`]; 0 counts as 1): a job's
    /// runs numbered `n − history_len` and below are deleted when its run `n` is written.
    pub history_len: usize,
}

/// One run record for the store, with its number.
#[derive(Debug, Clone, PartialEq)]
pub struct RunWrite {
    /// The job.
    pub id: JobId,
    /// The job's [`Job::runs_total`] when the run started: 1-based, unique per job (a job runs
    /// once at a time). See [`Job::history_numbers`].
    pub number: u64,
    /// The record.
    pub record: RunRecord,
}

impl ChangeSet {
    /// A change set that writes `jobs` whole: each one's scheduling fields, input, output and
    /// history (numbered by [`Job::history_numbers`]), keeping every run given — to seed a
    /// store with jobs made elsewhere.
    pub fn whole(jobs: impl IntoIterator<Item = Job>) -> ChangeSet {
        let mut out = ChangeSet::default();
        for job in jobs {
            out.history_len = out.history_len.max(job.history.len());
            out.inputs.push((job.id, job.request.input.clone()));
            out.outputs.push((job.id, job.output.clone()));
            for (number, record) in job.history_numbers().zip(job.history.iter().cloned()) {
                out.runs.push(RunWrite {
                    id: job.id,
                    number,
                    record,
                });
            }
            out.upserts.push(job);
        }
        out.history_len = out.history_len.max(1);
        out
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty()
            && self.removes.is_empty()
            && self.inputs.is_empty()
            && self.outputs.is_empty()
            && self.runs.is_empty()
    }
}

/// A run the driver must start. It carries what the core knows; the run's input payload is the
/// driver's to read (from its store, or from [`Scheduler::payloads`] without one) and to make
/// with [`StartJob::input`], after the start is durable and before the worker runs.
#[derive(Debug, Clone, PartialEq)]
pub struct StartJob {
    /// The job.
    pub id: JobId,
    /// Its worker kind.
    pub kind: String,
    /// The attempt number (1-based in the current cycle; already durable).
    pub attempt: u32,
    /// How many cycles of the job had ended when it started (part of its idempotency key).
    pub cycle: u64,
    /// The jobs whose outputs are merged into its input, in order (empty: its input is its
    /// own).
    pub prerequisites: Box<[JobId]>,
    /// How they are merged.
    pub input_merger: InputMerger,
}

/// A starting run's input, as its worker gets it.
#[derive(Debug, Clone, PartialEq)]
pub struct StartInput {
    /// The input payload: the job's own, or for a job with prerequisites the merge of its own
    /// input and their outputs by its [`InputMerger`] (WorkManager's `getInputData`).
    pub input: Value,
    /// For a job with prerequisites: what they passed on (its `input` is then the merge of its
    /// own input and this).
    pub upstream: Option<Box<Upstream>>,
}

/// What the prerequisites of a starting job passed on.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// The outputs of the prerequisites, merged by the job's [`InputMerger`] (an object).
    pub outputs: Value,
    /// The job's own input, as it was enqueued (before the merge).
    pub own_input: Value,
}

impl StartJob {
    /// `"{id}-{cycle}-{attempt}"` (see [`Job::idempotency_key`]): the same for every try of one
    /// attempt, different for the next attempt and the next period. Built when asked, not at
    /// every start (a driver without workers, such as the simulator, never needs it).
    pub fn idempotency_key(&self) -> String {
        entry::idempotency_key(self.id, self.cycle, self.attempt)
    }

    /// The run's input from the job's own input `own` and its prerequisites' outputs
    /// (`outputs[i]` is that of `prerequisites[i]`; `None`: it has none). The one place a
    /// chained job's input is made.
    ///
    /// # Errors
    /// [`MergeError`] when the inputs cannot be merged: report the run as
    /// [`RunOutcome::not_started`] (it fails without running, as WorkManager's merge throws).
    pub fn input(&self, own: Value, outputs: &[Option<Value>]) -> Result<StartInput, MergeError> {
        if self.prerequisites.is_empty() {
            return Ok(StartInput {
                input: own,
                upstream: None,
            });
        }
        let null = Value::Null;
        let merger = self.input_merger;
        let merged = merge_inputs(
            merger,
            (0..self.prerequisites.len())
                .map(|i| outputs.get(i).and_then(Option::as_ref).unwrap_or(&null)),
        )
        .map_err(|e| match e {
            // name the place in the whole merge: the job's own input is input 0
            MergeError::NotAnObject { index, found } => MergeError::NotAnObject {
                index: index + 1,
                found,
            },
            other => other,
        })?;
        let input = merge_inputs(merger, [&own, &merged])?;
        Ok(StartInput {
            input,
            upstream: Some(Box::new(Upstream {
                outputs: merged,
                own_input: own,
            })),
        })
    }
}

/// An output of the core, for the driver to carry out in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Make these changes durable before carrying out the actions that follow.
    Persist(ChangeSet),
    /// Start a worker run.
    Start(StartJob),
    /// Ask a run to stop (fire its cancellation token); report [`Event::Finished`] when it ends.
    Stop {
        /// The job.
        id: JobId,
        /// Why.
        reason: StopReason,
    },
    /// The grace period is over: drop the run, then report [`Event::Finished`] with
    /// [`RunOutcome::Aborted`].
    Abort {
        /// The job.
        id: JobId,
    },
}

#[derive(Debug, Clone)]
struct Active {
    attempt: u32,
    started: Time,
    deadline: Option<Time>,
    policy_deadline: Option<(Time, PolicyStop)>,
    ignore_constraints: bool,
    stop: Option<StopReason>,
    abort_at: Option<Time>,
    /// It runs as expedited work (charged to the expedited quota).
    expedited: bool,
}

/// The scheduling core. See the [module documentation](self) for the driver contract.
#[derive(Debug)]
pub struct Scheduler {
    config: Config,
    policy: Box<dyn Policy>,
    now: Time,
    /// Every job, its payloads, and the indexes over them (see [`table`]).
    jobs: Table,
    /// Where each enqueued job waits (see [`lanes`]).
    lanes: lanes::Lanes,
    deferred: BTreeMap<JobId, (Option<Time>, PolicyReason)>,
    /// Expedited jobs that found the expedited quota used up and wait as ordinary work
    /// ([`OutOfQuotaPolicy::RunAsNonExpedited`]) until their next start.
    demoted: BTreeSet<JobId>,
    /// How many demotions there were (a pass that made one is followed by another).
    demotions: u64,
    /// The app's expedited run time (see [`expedited`]).
    ej_ledger: expedited::Ledger,
    /// The policy's app-wide hold in force, if any: the ready jobs not forced are parked
    /// behind it, none asked about or re-filed, until it ends or the world changes.
    app_hold: Option<AppHold>,
    /// The runs in progress, filed by their next deadline (see [`runs`]).
    active: runs::Runs,
    device: DeviceState,
    kinds: BTreeSet<String>,
    cron_cache: BTreeMap<String, CronSchedule>,
    shutting_down: bool,
    /// Since when the machine is about to sleep ([`Event::PrepareForSleep`]): nothing starts
    /// until it resumes.
    asleep_since: Option<Time>,
    /// Emit `Persist` actions (off for a driver without a store, such as the simulator).
    persist: bool,
    /// Whether the core keeps each job's recent runs ([`Scheduler::without_run_history`]).
    keep_history: bool,
    dirty: BTreeSet<JobId>,
    /// The inputs the next change set writes (the core does not keep them: the store does).
    dirty_inputs: BTreeMap<JobId, Value>,
    /// The outputs the next change set writes (`None`: clear the stored one).
    dirty_outputs: BTreeMap<JobId, Option<Value>>,
    /// The `crashed` runs the last load recorded, by job, with their numbers: what
    /// [`Event::Interrupted`] may amend (the core keeps no history when a store does).
    crashed: BTreeMap<JobId, (u64, RunRecord)>,
    /// Run records the next change set writes.
    dirty_runs: Vec<RunWrite>,
    removed: Vec<JobId>,
    pending: Vec<Action>,
    actions: VecDeque<Action>,
    pruned: usize,
}

fn min_time() -> Time {
    chrono::DateTime::<chrono::Utc>::MIN_UTC
}

impl Scheduler {
    /// A core with `config` and `policy`, assuming a healthy device until told otherwise.
    pub fn new(config: Config, policy: Box<dyn Policy>) -> Self {
        Scheduler {
            jobs: Table::new(config.retention, false),
            config,
            policy,
            now: min_time(),
            lanes: lanes::Lanes::default(),
            deferred: BTreeMap::new(),
            demoted: BTreeSet::new(),
            demotions: 0,
            ej_ledger: expedited::Ledger::default(),
            app_hold: None,
            active: runs::Runs::default(),
            device: DeviceState::default(),
            kinds: BTreeSet::new(),
            cron_cache: BTreeMap::new(),
            shutting_down: false,
            asleep_since: None,
            persist: true,
            keep_history: true,
            dirty: BTreeSet::new(),
            dirty_inputs: BTreeMap::new(),
            dirty_outputs: BTreeMap::new(),
            crashed: BTreeMap::new(),
            dirty_runs: Vec::new(),
            removed: Vec::new(),
            pending: Vec::new(),
            actions: VecDeque::new(),
            pruned: 0,
        }
    }

    /// A core for a driver that keeps no store (a simulation): it emits no
    /// [`Action::Persist`], saving a copy of every changed record, and keeps the jobs' inputs,
    /// outputs and histories itself ([`Scheduler::payloads`]), since no store does. Must be
    /// called before the first input.
    pub fn without_persistence(mut self) -> Self {
        self.persist = false;
        self.jobs = Table::new(self.config.retention, true);
        self
    }

    /// A core [without persistence](Scheduler::without_persistence) that keeps no run history
    /// of its jobs either ([`Scheduler::last_run`] is `None`): for a driver that records runs
    /// itself (a simulation), saving a record per run. (A core with a store keeps none anyway.)
    pub fn without_run_history(mut self) -> Self {
        self.keep_history = false;
        self
    }

    /// Feeds one input at instant `now`. Then drain [`Scheduler::poll_action`].
    pub fn handle(&mut self, now: Time, event: Event) -> Result<Reply, CoreError> {
        self.now = now;
        self.pruned = 0;
        let reply = match event {
            Event::Load(jobs) => self.load(now, jobs),
            Event::Reload(jobs) => {
                self.forget_jobs();
                self.load(now, jobs)
            }
            Event::Interrupted(runs) => {
                self.interrupted(now, runs);
                Ok(Reply::Done)
            }
            Event::Enqueue { id, request } => self.enqueue(now, id, request),
            Event::EnqueueChain { ids, chain } => self.enqueue_chain(now, ids, chain),
            Event::Cancel(selector) => self.cancel(now, &selector),
            Event::Force { selector, force } => self.force(&selector, force),
            Event::Retry(selector) => self.retry_finished(now, &selector),
            Event::DeviceChanged(device) => {
                self.device_changed(now, device);
                Ok(Reply::Done)
            }
            Event::WorkerRegistered(kind) => {
                for (key, id) in self.lanes.take_kind(&mut self.jobs, &kind) {
                    self.lanes.wait_for_time(&mut self.jobs, key, key, id);
                }
                self.kinds.insert(kind);
                Ok(Reply::Done)
            }
            Event::Finished {
                id,
                attempt,
                outcome,
            } => {
                self.finished(now, id, attempt, outcome);
                Ok(Reply::Done)
            }
            Event::Timeout => Ok(Reply::Done),
            Event::Prune { older_than } => {
                if let Some(age) = older_than {
                    self.prune_finished(now, age);
                }
                Ok(Reply::Pruned {
                    count: 0,
                    kept: 0,
                    age: older_than.unwrap_or(self.config.retention),
                })
            }
            Event::PolicyChanged => {
                self.ask_policy_again();
                Ok(Reply::Done)
            }
            Event::ClockJumped => {
                self.apply_catch_up(now);
                Ok(Reply::Done)
            }
            Event::PrepareForSleep => {
                self.asleep_since.get_or_insert(now);
                Ok(Reply::Done)
            }
            Event::Resumed => {
                self.asleep_since = None;
                self.apply_catch_up(now);
                Ok(Reply::Done)
            }
            Event::Suspended(slept) => {
                self.suspended(now, slept);
                Ok(Reply::Done)
            }
            Event::Shutdown { grace } => {
                self.shutting_down = true;
                let ids: Vec<JobId> = self.active.keys().copied().collect();
                for id in ids {
                    self.request_stop(now, id, StopReason::Shutdown, grace);
                }
                Ok(Reply::Done)
            }
        };
        if reply.is_ok() {
            self.expire(now);
            self.dispatch(now);
        }
        self.flush();
        match reply {
            Ok(Reply::Done) if self.pruned > 0 => Ok(Reply::Pruned {
                count: self.pruned,
                kept: self.jobs.finished_kept(),
                age: self.config.retention,
            }),
            Ok(Reply::Pruned { age, .. }) => Ok(Reply::Pruned {
                count: self.pruned,
                kept: self.jobs.finished_kept(),
                age,
            }),
            other => other,
        }
    }

    /// The next action for the driver, in order; `None` when there is none.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next instant at which the core needs [`Event::Timeout`], or `None` if it only needs to
    /// hear about other events.
    pub fn poll_timeout(&mut self) -> Option<Time> {
        let now = self.now;
        let due = match &self.app_hold {
            // nothing but forced jobs (due at once) starts before an app-wide hold ends: one
            // wake-up at its end, for the parked jobs and every gate that opens meanwhile
            Some(hold) => hold.until.filter(|_| {
                self.lanes.parked_len() > 0 || self.lanes.next_wake_after(now).is_some()
            }),
            None => self.lanes.next_wake_after(now),
        }
        .map(|t| self.policy.plan_wake(now, t));
        let running = self.active.next_deadline();
        if self.asleep_since.is_some() && !self.shutting_down {
            // nothing is due before the resume, which is an input of its own (see `expire`)
            return None;
        }
        let prune = self.jobs.next_prune();
        [due, running, prune].into_iter().flatten().min()
    }

    /// The job with this id. A core that persists (its driver keeps a store) holds no
    /// payloads: the job's input is `Null`, its output `None` and its history empty — read
    /// them from the store ([`Store::payloads`](crate::Store::payloads)). A core
    /// [without persistence](Scheduler::without_persistence) gives them whole.
    pub fn job(&self, id: JobId) -> Option<Job> {
        self.jobs.get(&id).map(|e| self.jobs.whole(e))
    }

    /// The payloads and history the core keeps of job `id`: those of a core
    /// [without persistence](Scheduler::without_persistence); empty for a core whose driver
    /// keeps a store (the store has them). `None` for an unknown job.
    pub fn payloads(&self, id: JobId) -> Option<Payloads> {
        self.jobs.contains(&id).then(|| self.jobs.payloads(&id))
    }

    /// Every job, in id order (which is enqueue order); payloads as [`Scheduler::job`] says.
    pub fn jobs(&self) -> impl Iterator<Item = Job> + '_ {
        self.jobs.entries().map(|e| self.jobs.whole(e))
    }

    /// Every job's id, in id order.
    pub fn ids(&self) -> impl Iterator<Item = JobId> + '_ {
        self.jobs.ids()
    }

    /// The state of job `id`.
    pub fn state_of(&self, id: JobId) -> Option<JobState> {
        self.jobs.get(&id).map(|e| e.state)
    }

    /// The unique name of job `id`, if it has one.
    pub fn unique_name_of(&self, id: JobId) -> Option<&str> {
        self.jobs.get(&id).and_then(|e| e.unique_name())
    }

    /// The latest run of job `id` that ended, if the core keeps histories (a core
    /// [without persistence](Scheduler::without_persistence); with a store, the runs are in the
    /// change sets and the store).
    pub fn last_run(&self, id: JobId) -> Option<&RunRecord> {
        self.jobs.history(&id).back()
    }

    /// How many jobs the core holds.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// True when the core holds no job.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// The ids a selector names: one id; every job with the name (oldest first); every job with
    /// the tag; the one job whose short id starts with the prefix (or the jobs named by it).
    ///
    /// # Errors
    /// [`CoreError::AmbiguousPrefix`] when a prefix matches more than one job's short id.
    pub fn resolve(&self, selector: &Selector) -> Result<Vec<JobId>, CoreError> {
        if let Selector::Prefix(prefix) = selector {
            let named = self.jobs.named(prefix);
            if !named.is_empty() {
                return Ok(named.to_vec());
            }
            let prefix = prefix.to_ascii_lowercase();
            let mut matches = self
                .jobs
                .ids()
                .filter(|id| prefix.len() >= MIN_PREFIX_LEN && id.short().starts_with(&prefix));
            let first = matches.next();
            let rest: Vec<JobId> = matches.collect();
            return match (first, rest.is_empty()) {
                (Some(id), true) => Ok(vec![id]),
                (None, _) => Ok(Vec::new()),
                (Some(id), false) => {
                    let mut candidates: Vec<(JobId, Option<String>)> = std::iter::once(id)
                        .chain(rest.iter().copied())
                        .take(MAX_CANDIDATES)
                        .map(|id| {
                            let name = self
                                .jobs
                                .get(&id)
                                .and_then(|j| j.unique_name().map(str::to_string));
                            (id, name)
                        })
                        .collect();
                    candidates.sort_by_key(|(id, _)| *id);
                    Err(CoreError::AmbiguousPrefix {
                        prefix,
                        count: rest.len() + 1,
                        candidates,
                    })
                }
            };
        }
        Ok(self.resolve_plain(selector))
    }

    fn resolve_plain(&self, selector: &Selector) -> Vec<JobId> {
        match selector {
            Selector::Prefix(_) => Vec::new(),
            Selector::Id(id) => self.jobs.contains(id).then_some(*id).into_iter().collect(),
            Selector::Name(name) => self.jobs.named(name).to_vec(),
            Selector::Tag(tag) => self
                .jobs
                .entries()
                .filter(|j| j.request.tags.contains(tag))
                .map(|j| j.id)
                .collect(),
        }
    }

    /// The jobs held back at `now` although their schedule lets them run: waiting for a worker,
    /// the device, a run slot, the policy, or a wake-up. (Jobs only waiting for their time are
    /// not here.)
    pub fn held_back(&self, now: Time) -> Vec<JobId> {
        let mut ids: Vec<JobId> = self.lanes.due_waiting(now).collect();
        ids.extend(self.deferred.keys().copied());
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The jobs whose time gates opened in `(from, to]` and that the core has not looked at
    /// since (it was not woken): what an observer checks when only time passed.
    pub fn gates_opened(&self, from: Time, to: Time) -> Vec<JobId> {
        self.lanes.gates_in(from, to).collect()
    }

    /// The next instant after the last input's at which some job's time gates open (an observer
    /// such as the simulator looks then; the core itself may wake later, to batch).
    pub fn next_gate(&self) -> Option<Time> {
        self.lanes.next_gate_after(self.now)
    }

    /// How many runs are in progress.
    pub fn running(&self) -> usize {
        self.active.len()
    }

    /// The device state the core holds.
    pub fn device(&self) -> &DeviceState {
        &self.device
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The constraints that due jobs are waiting for the device to satisfy (a probe with no
    /// event source for some of them may watch those, and only those, while they are wanted).
    pub fn waiting_constraints(
        &self,
    ) -> std::collections::BTreeSet<backwork_constraints::Constraint> {
        self.lanes.device_needs()
    }

    /// The worker kinds registered so far.
    pub fn kinds(&self) -> &BTreeSet<String> {
        &self.kinds
    }

    /// The instant of the last input.
    pub fn now(&self) -> Time {
        self.now
    }

    /// True once [`Event::Shutdown`] was handled.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// The policy, for inspection by tests and the simulator.
    pub fn policy(&self) -> &dyn Policy {
        self.policy.as_ref()
    }

    /// The policy's app-wide hold in force at `now` (see [`Policy::app_hold`]), if any: every
    /// due job that was not forced waits behind it, with its reason.
    pub fn app_hold_at(&self, now: Time) -> Option<&AppHold> {
        self.app_hold
            .as_ref()
            .filter(|h| h.until.is_none_or(|u| u > now))
    }

    /// Whether job `id` is **ready**: due, its constraints met, a worker for it, not forced,
    /// and no decision of the policy about it alone — it waits only for what holds every ready
    /// job alike ([`Scheduler::ready_reasons`]: an app-wide hold, the run slots).
    pub fn is_ready(&self, id: JobId) -> bool {
        self.lanes.is_parked(&self.jobs, id) && !self.deferred.contains_key(&id)
    }

    /// The jobs held back at `now` for reasons of their own: [`Scheduler::held_back`] without
    /// the ready jobs, whose reasons [`Scheduler::ready_reasons`] gives for all at once.
    pub fn held_back_not_ready(&self, now: Time) -> Vec<JobId> {
        let mut ids: Vec<JobId> = self.lanes.due_waiting_not_ready(now).collect();
        ids.extend(self.deferred.keys().copied());
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Keep a log of the jobs that may have become, or stopped being, ready
    /// ([`Scheduler::is_ready`]), for an observer that follows the ready jobs as a group (the
    /// simulator); drain it with [`Scheduler::take_ready_changes`].
    pub fn log_ready_changes(mut self) -> Self {
        self.lanes.log = Some(Vec::new());
        self
    }

    /// The jobs that may have become, or stopped being, ready since the last call (with
    /// repeats), when [`Scheduler::log_ready_changes`] is on; empty otherwise.
    pub fn take_ready_changes(&mut self) -> Vec<JobId> {
        self.lanes
            .log
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    // ------------------------------------------- placement (shared by admission and finishing)

    /// Sets `not_before` / `window_end` of `job` for its current cycle from its schedule.
    fn place(&mut self, job: &mut Entry) -> Result<(), CoreError> {
        let cron = cron_of(&mut self.cron_cache, &job.request.schedule)?;
        let origin = self.schedule_origin(job);
        place(job, origin, cron.as_ref())
    }

    /// The instant `job`'s schedule counts from: its enqueue time, or — for a job that waited
    /// for prerequisites — the moment the last of them succeeded, when that is later.
    ///
    /// This is WorkManager's rule: when a blocked job is unblocked, its `lastEnqueueTime` is
    /// set to that moment (androidx `work-runtime`, `WorkerWrapper.kt`, `setSucceeded`:
    /// "Unblock Dependencies and set Period Start Time" → `setLastEnqueueTime`), and
    /// `WorkSpec.calculateNextRunTime` counts the initial delay from `lastEnqueueTime`. So an
    /// appended or chained job's `in`/initial delay runs from its unblocking, not from when it
    /// was enqueued. The origin is derived from the prerequisites' end times (kept while a
    /// dependent is unfinished), so it needs no field of its own and survives a restart. A
    /// prerequisite that is unfinished or gone adds nothing.
    fn schedule_origin(&self, job: &Entry) -> Time {
        job.prerequisites()
            .iter()
            .filter_map(|p| self.jobs.get(p))
            .filter(|p| p.state == JobState::Succeeded)
            .filter_map(|p| p.finished_at())
            .fold(job.enqueued_at(), Time::max)
    }

    /// `due` delayed by the job's jitter for its current cycle (decided once per slot: the
    /// result is stored as the job's `not_before`, so a restart keeps it and `why`/`list` show
    /// it); a flexed periodic job stays inside its window.
    fn jittered(&self, job: &Entry, due: Time) -> Time {
        jittered(job, due)
    }

    // ---------------------------------------------------------------- writes

    /// Marks `id` for persisting (nothing to do for a driver without a store).
    fn touch(&mut self, id: JobId) {
        if self.persist {
            self.dirty.insert(id);
        }
    }

    /// Hands the input's changes to the driver: one [`Action::Persist`] (when persisting and
    /// something changed), then the starts, stops and aborts, in order.
    fn flush(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        let removes = std::mem::take(&mut self.removed);
        let dirty_inputs = std::mem::take(&mut self.dirty_inputs);
        let dirty_outputs = std::mem::take(&mut self.dirty_outputs);
        let mut runs = std::mem::take(&mut self.dirty_runs);
        if !self.persist {
            self.actions.extend(self.pending.drain(..));
            return;
        }
        let upserts: Vec<Job> = dirty
            .into_iter()
            .filter_map(|id| Some(self.jobs.upsert_view(self.jobs.get(&id)?)))
            .collect();
        let inputs = dirty_inputs
            .into_iter()
            .filter(|(id, _)| self.jobs.contains(id))
            .collect();
        let outputs = dirty_outputs
            .into_iter()
            .filter(|(id, _)| self.jobs.contains(id))
            .collect();
        runs.retain(|r| self.jobs.contains(&r.id)); // not those of a job removed since
        let changes = ChangeSet {
            upserts,
            removes,
            inputs,
            outputs,
            runs,
            history_len: self.config.history_len.max(1),
        };
        if !changes.is_empty() {
            self.actions.push_back(Action::Persist(changes));
        }
        self.actions.extend(self.pending.drain(..));
    }
}

/// The parsed expression of a cron schedule (parsed once, then from `cache`), `None` for other
/// schedules.
fn cron_of(
    cache: &mut BTreeMap<String, CronSchedule>,
    schedule: &Schedule,
) -> Result<Option<CronSchedule>, CoreError> {
    let Schedule::Cron { expr, .. } = schedule else {
        return Ok(None);
    };
    if let Some(parsed) = cache.get(expr) {
        return Ok(Some(parsed.clone()));
    }
    let parsed = parse_cron(expr).map_err(CoreError::InvalidCron)?;
    cache.insert(expr.clone(), parsed.clone());
    Ok(Some(parsed))
}

/// Sets `not_before` / `window_end` of `job` for its current cycle from its schedule, counted
/// from `origin` (see [`Scheduler::schedule_origin`]); `cron` is the parsed expression of a cron
/// job.
fn place(job: &mut Entry, origin: Time, cron: Option<&CronSchedule>) -> Result<(), CoreError> {
    let (due, end) = match &job.request.schedule {
        Schedule::Once { delay, not_before } => {
            let by_delay = schedule::add(origin, *delay);
            (not_before.map_or(by_delay, |t| t.max(by_delay)), None)
        }
        Schedule::Periodic {
            every,
            flex,
            anchor,
            initial_delay,
        } => {
            let w = next_periodic_window(
                *every,
                *flex,
                anchor.unwrap_or_default(),
                schedule::add(origin, *initial_delay),
                job.last_started(),
                job.last_finished(),
            );
            (w.start, Some(w.end))
        }
        Schedule::Cron { expr, tz } => {
            let parsed = match cron {
                Some(parsed) => parsed.clone(),
                None => parse_cron(expr).map_err(CoreError::InvalidCron)?,
            };
            // The first slot after the last run started (at most one run per slot, no burst of
            // missed slots), or after the enqueue for a job that never ran.
            let after = job.last_started().unwrap_or(origin);
            let slot = next_cron(&parsed, *tz, after)
                .ok_or_else(|| CoreError::CronNeverFires { expr: expr.clone() })?;
            (slot, Some(slot))
        }
    };
    job.backing_off = false;
    job.set_window_end(end);
    job.set_not_before(jitter_within(job, due, end));
    Ok(())
}

/// `due` delayed by the job's jitter for its current cycle; a flexed periodic job stays inside
/// its window.
fn jittered(job: &Entry, due: Time) -> Time {
    jitter_within(job, due, job.window_end())
}

/// [`jittered`] for a job whose current window ends at `window_end`.
fn jitter_within(job: &Entry, due: Time, window_end: Option<Time>) -> Time {
    let Some(j) = job.request.jitter else {
        return due;
    };
    let at = schedule::add(due, schedule::jitter_offset(job.id, j, job.cycle));
    match (&job.request.schedule, window_end) {
        (Schedule::Periodic { flex: Some(_), .. }, Some(end)) => at.min(end.max(due)),
        _ => at,
    }
}
