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

mod entry;
mod error;
mod interrupted;
mod job;
mod lanes;
mod name;
mod policy;
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

use entry::{Entry, Payloads};
pub use error::CoreError;
pub use interrupted::Interruption;
pub use job::millis;
pub use job::{
    Anchor, Backoff, BackoffKind, CatchUp, ConflictPolicy, DEFAULT_TIMEOUT, Force, Jitter, Job,
    JobId, JobRequest, JobState, RunOutcome, RunRecord, RunResult, SHORT_ID_LEN, Schedule,
    StopReason, Time, Unique, humanize, humanize_approx,
};
pub use name::{MAX_NAME_BYTES, NameError, check_unique_name};
pub use policy::{
    AllowAll, AppHold, Decision, HoldKind, OsState, Policy, PolicyContext, PolicyReason,
};
pub use schedule::{
    CronSchedule, MAX_BACKOFF, MIN_BACKOFF, Window, add, backoff_delay, effective_flex,
    jitter_offset, next_cron, next_periodic_window, parse_cron, periodic_window_at, since, sub,
};
pub use spec::{
    ANCHOR_CHOICES, CATCH_UP_CHOICES, Choice, JobOptions, NO_TIMEOUT_WORDS, ON_CONFLICT_CHOICES,
    OptionContext, OptionError, REQUIRES_CHOICES, choose, parse_at, parse_duration, parse_timeout,
    parse_zone,
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
    /// Cancel the unfinished jobs the selector names.
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
    /// Jobs to insert or replace. The whole job is here (the core still holds whole jobs), but a
    /// store writes only its scheduling fields from it.
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

/// A run the driver must start.
#[derive(Debug, Clone, PartialEq)]
pub struct StartJob {
    /// The job.
    pub id: JobId,
    /// Its worker kind.
    pub kind: String,
    /// The attempt number (1-based in the current cycle; already durable).
    pub attempt: u32,
    /// The input payload.
    pub input: Value,
    /// `"{id}-{cycle}-{attempt}"` (see [`Job::idempotency_key`]).
    pub idempotency_key: String,
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

/// The time gates of one enqueued job (see `Scheduler::gates`).
#[derive(Debug, Clone)]
struct Gates {
    /// The due time of the current cycle, jitter included, or the end of a backoff.
    due: Time,
    /// `due` is a backoff's end.
    backing_off: bool,
    /// When the minimum interval since the last successful start has passed.
    min_interval: Option<Time>,
    /// A policy deferral: until when (if known), and why.
    policy: Option<(Option<Time>, PolicyReason)>,
}

impl Gates {
    /// The instant all of them are open (a denial without an end does not count: the policy is
    /// asked again when the world changes).
    fn open_at(&self) -> Time {
        let mut at = self.due;
        if let Some(t) = self.min_interval {
            at = at.max(t);
        }
        if let Some((Some(until), _)) = &self.policy {
            at = at.max(*until);
        }
        at
    }
}

#[derive(Debug, Clone)]
struct Active {
    attempt: u32,
    started: Time,
    deadline: Option<Time>,
    policy_deadline: Option<(Time, String)>,
    ignore_constraints: bool,
    stop: Option<StopReason>,
    abort_at: Option<Time>,
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
    /// The policy's app-wide hold in force, if any: the ready jobs not forced are parked
    /// behind it, none asked about or re-filed, until it ends or the world changes.
    app_hold: Option<AppHold>,
    active: BTreeMap<JobId, Active>,
    device: DeviceState,
    kinds: BTreeSet<String>,
    cron_cache: BTreeMap<String, CronSchedule>,
    shutting_down: bool,
    /// Emit `Persist` actions (off for a driver without a store, such as the simulator).
    persist: bool,
    dirty: BTreeSet<JobId>,
    /// Jobs whose input the next change set writes.
    dirty_inputs: BTreeSet<JobId>,
    /// Jobs whose output the next change set writes.
    dirty_outputs: BTreeSet<JobId>,
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
            jobs: Table::new(config.retention),
            config,
            policy,
            now: min_time(),
            lanes: lanes::Lanes::default(),
            deferred: BTreeMap::new(),
            app_hold: None,
            active: BTreeMap::new(),
            device: DeviceState::default(),
            kinds: BTreeSet::new(),
            cron_cache: BTreeMap::new(),
            shutting_down: false,
            persist: true,
            dirty: BTreeSet::new(),
            dirty_inputs: BTreeSet::new(),
            dirty_outputs: BTreeSet::new(),
            dirty_runs: Vec::new(),
            removed: Vec::new(),
            pending: Vec::new(),
            actions: VecDeque::new(),
            pruned: 0,
        }
    }

    /// A core for a driver that keeps no store (a simulation): it emits no
    /// [`Action::Persist`], saving a copy of every changed record.
    pub fn without_persistence(mut self) -> Self {
        self.persist = false;
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
            Event::Cancel(selector) => self.cancel(now, &selector),
            Event::Force { selector, force } => self.force(&selector, force),
            Event::Retry(selector) => self.retry_finished(now, &selector),
            Event::DeviceChanged(device) => {
                self.device_changed(now, device);
                Ok(Reply::Done)
            }
            Event::WorkerRegistered(kind) => {
                for (key, id) in self.lanes.take_kind(&kind) {
                    self.lanes.wait_for_time(key, key, id);
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
        let running = self
            .active
            .values()
            .filter_map(|a| {
                if a.stop.is_some() {
                    a.abort_at
                } else {
                    let policy = a.policy_deadline.as_ref().map(|(t, _)| *t);
                    [a.deadline, policy].into_iter().flatten().min()
                }
            })
            .min();
        let prune = self.jobs.next_prune();
        [due, running, prune].into_iter().flatten().min()
    }

    /// The job with this id, whole: its entry with its input, output and history.
    pub fn job(&self, id: JobId) -> Option<Job> {
        self.jobs.get(&id).map(|e| self.jobs.whole(e))
    }

    /// Every job, whole, in id order (which is enqueue order).
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

    /// The latest run of job `id` that ended, if any.
    pub fn last_run(&self, id: JobId) -> Option<&RunRecord> {
        self.jobs.history(&id).last()
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
        self.lanes.is_parked(id) && !self.deferred.contains_key(&id)
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

    // ---------------------------------------------------------------- inputs

    /// Drops every job and what refers to them; keeps configuration, policy, kinds and device.
    fn forget_jobs(&mut self) {
        self.jobs.clear();
        let log = self.lanes.log.take().map(|_| Vec::new());
        self.lanes = lanes::Lanes::default();
        self.lanes.log = log;
        self.deferred.clear();
        self.app_hold = None;
        self.active.clear();
        self.dirty.clear();
        self.dirty_inputs.clear();
        self.dirty_outputs.clear();
        self.dirty_runs.clear();
        self.removed.clear();
        self.pending.clear();
        self.actions.clear();
    }

    fn load(&mut self, now: Time, jobs: Vec<Job>) -> Result<Reply, CoreError> {
        if !self.jobs.is_empty() {
            return Err(CoreError::AlreadyLoaded);
        }
        let count = jobs.len();
        for job in jobs {
            if let Schedule::Cron { expr, .. } = &job.request.schedule {
                // parsed once here, not at every look at the job
                let _ = self.cron(expr);
            }
            self.jobs.insert_job(job);
        }
        let ids: Vec<JobId> = self.jobs.ids().collect();
        let mut recovered = 0;
        for id in ids {
            let Some(job) = self.jobs.get_mut(&id) else {
                continue;
            };
            if job.state == JobState::Running {
                recovered += 1;
                let started = job.last_started.unwrap_or(now);
                let attempt = job.attempt;
                job.set_stop_reason(Some(StopReason::Unknown));
                job.last_finished = Some(now);
                job.state = JobState::Enqueued;
                let record = RunRecord {
                    attempt,
                    started,
                    finished: now,
                    result: RunResult::Crashed,
                    output: None,
                    stop_reason: Some(StopReason::Unknown),
                    note: Some("the process died during this run".into()),
                };
                self.push_history(id, record);
                self.retry(now, id);
            } else if !job.state.is_finished() {
                self.reindex(id);
                self.dirty.remove(&id);
            }
        }
        self.apply_catch_up(now);
        Ok(Reply::Loaded {
            jobs: count,
            recovered,
        })
    }

    /// Checks a request, raising short intervals and flex windows when configured to; returns
    /// what it changed.
    /// Whether an enqueue of `request` at `now` would pass this core's checks (its config's
    /// limits; not the policy's admission, nor unique-name conflicts, which depend on the
    /// queue), with the warnings it would give. Changes nothing: a front end calls it before it
    /// creates anything for a request that may be refused.
    ///
    /// # Errors
    /// The [`CoreError`] the enqueue would give.
    pub fn check_request(
        &mut self,
        now: Time,
        request: &JobRequest,
    ) -> Result<Vec<String>, CoreError> {
        self.validate(now, &mut request.clone())
    }

    fn validate(&mut self, now: Time, r: &mut JobRequest) -> Result<Vec<String>, CoreError> {
        let mut warnings = Vec::new();
        if r.kind.trim().is_empty() {
            return Err(CoreError::EmptyKind);
        }
        let size = serde_json::to_string(&r.input).map_or(usize::MAX, |s| s.len());
        if size > self.config.payload_cap {
            return Err(CoreError::PayloadTooLarge {
                size,
                cap: self.config.payload_cap,
            });
        }
        let long = |what: &'static str, d: Duration| {
            if d > MAX_DURATION {
                Err(CoreError::DurationTooLong { what, value: d })
            } else {
                Ok(())
            }
        };
        match &mut r.schedule {
            Schedule::Once { delay, not_before } => {
                long("delay", *delay)?;
                if let Some(t) = not_before {
                    long("wait until the start time", since(*t, now))?;
                }
            }
            Schedule::Periodic { every, flex, .. } => {
                long("interval", *every)?;
                if flex.is_some_and(|f| f.is_zero()) {
                    return Err(CoreError::ZeroDuration {
                        what: "flex window",
                    });
                }
                let (min, min_flex) = (self.config.min_period, self.config.min_flex);
                if *every < min {
                    if !self.config.raise_short_periods {
                        return Err(CoreError::IntervalTooShort { every: *every, min });
                    }
                    warnings.push(format!(
                        "the interval {} was raised to the minimum of {}",
                        humanize(*every),
                        humanize(min)
                    ));
                    *every = min;
                }
                if let Some(f) = flex {
                    if *f > *every {
                        if !self.config.raise_short_periods {
                            return Err(CoreError::FlexTooLong {
                                flex: *f,
                                every: *every,
                            });
                        }
                        warnings.push(format!(
                            "the flex window {} was lowered to the interval {}",
                            humanize(*f),
                            humanize(*every)
                        ));
                        *f = *every;
                    }
                    if *f < min_flex {
                        if !self.config.raise_short_periods {
                            return Err(CoreError::FlexTooShort {
                                flex: *f,
                                min: min_flex,
                            });
                        }
                        warnings.push(format!(
                            "the flex window {} was raised to the minimum of {}",
                            humanize(*f),
                            humanize(min_flex)
                        ));
                        *f = min_flex.min(*every);
                    }
                }
            }
            Schedule::Cron { expr, tz } => {
                let parsed = self.cron(expr)?;
                if next_cron(&parsed, *tz, now).is_none() {
                    return Err(CoreError::CronNeverFires { expr: expr.clone() });
                }
            }
        }
        let base = r.backoff.base;
        let clamped = base.clamp(MIN_BACKOFF, MAX_BACKOFF);
        if clamped != base {
            warnings.push(format!(
                "the backoff base {} was {} to {} (WorkManager's range is 10s to 5h)",
                humanize(base),
                if clamped > base { "raised" } else { "lowered" },
                humanize(clamped)
            ));
            r.backoff.base = clamped;
        }
        if let Some(j) = r.jitter {
            let period = match &r.schedule {
                Schedule::Periodic { every, .. } => Some(*every),
                Schedule::Cron { expr, tz } => {
                    let parsed = self.cron(expr)?;
                    next_cron(&parsed, *tz, now)
                        .and_then(|a| next_cron(&parsed, *tz, a).map(|b| since(b, a)))
                }
                Schedule::Once { .. } => None,
            };
            if let Some(period) = period.filter(|p| j.max >= *p) {
                return Err(CoreError::JitterTooLong {
                    jitter: j.max,
                    period,
                });
            }
        }
        let r = &*r;
        if let Some(d) = r.min_interval {
            long("minimum interval", d)?;
        }
        if let Some(d) = r.timeout {
            long("time limit", d)?;
            if d.is_zero() {
                return Err(CoreError::ZeroDuration { what: "time limit" });
            }
        }
        long("backoff base", r.backoff.base)?;
        if let Some(j) = r.jitter {
            long("jitter", j.max)?;
            if j.max.is_zero() {
                return Err(CoreError::ZeroDuration { what: "jitter" });
            }
        }
        if !(0.0..1.0).contains(&r.backoff.jitter) {
            return Err(CoreError::InvalidJitter(r.backoff.jitter));
        }
        if r.max_attempts == Some(0) {
            return Err(CoreError::ZeroMaxAttempts);
        }
        if let Some(tag) = r
            .tags
            .iter()
            .find(|t| t.trim().is_empty() || t.trim() != t.as_str())
        {
            return Err(CoreError::BadTag { tag: tag.clone() });
        }
        if let Some(u) = &r.unique {
            if u.name.trim().is_empty() {
                return Err(CoreError::EmptyUniqueName);
            }
            name::check_unique_name(&u.name)?;
            let recurring = r.schedule.is_recurring();
            let ok = match u.policy {
                ConflictPolicy::Keep | ConflictPolicy::Update | ConflictPolicy::Replace => true,
                ConflictPolicy::Append | ConflictPolicy::AppendOrReplace => !recurring,
                ConflictPolicy::CancelAndReenqueue => recurring,
            };
            if !ok {
                let (schedule, allowed) = if recurring {
                    ("recurring", "keep, update, replace or cancel_and_reenqueue")
                } else {
                    (
                        "one-off",
                        "keep, replace, update, append or append_or_replace",
                    )
                };
                return Err(CoreError::PolicyNotAllowed {
                    policy: u.policy.to_string(),
                    schedule,
                    allowed,
                });
            }
        }
        Ok(warnings)
    }

    fn cron(&mut self, expr: &str) -> Result<CronSchedule, CoreError> {
        if let Some(s) = self.cron_cache.get(expr) {
            return Ok(s.clone());
        }
        let parsed = parse_cron(expr).map_err(CoreError::InvalidCron)?;
        self.cron_cache.insert(expr.to_string(), parsed.clone());
        Ok(parsed)
    }

    fn enqueue(
        &mut self,
        now: Time,
        id: JobId,
        mut request: JobRequest,
    ) -> Result<Reply, CoreError> {
        let warnings = self.validate(now, &mut request)?;
        if self.jobs.contains(&id) {
            return Err(CoreError::DuplicateId(id));
        }
        // the unfinished jobs of the request's name are not counted: it replaces or updates them
        let same_name: Vec<&Entry> = request
            .unique
            .as_ref()
            .map(|u| self.jobs.named(&u.name))
            .into_iter()
            .flatten()
            .filter_map(|id| self.jobs.get(id))
            .filter(|j| !j.state.is_finished())
            .collect();
        let by_tag: Vec<(String, usize)> = request
            .tags
            .iter()
            .map(|tag| {
                let all = self.jobs.unfinished_with_tag(tag);
                let named = same_name
                    .iter()
                    .filter(|j| j.request.tags.contains(tag))
                    .count();
                (tag.clone(), all.saturating_sub(named))
            })
            .collect();
        let cx = PolicyContext {
            device: &self.device,
            running: self.active.len(),
            pending: self.lanes.len() + self.active.len(),
            pending_by_tag: &by_tag,
        };
        self.policy
            .admit(now, &request, cx)
            .map_err(CoreError::Rejected)?;

        let mut prerequisite = None;
        let mut disposition = Disposition::Inserted;
        if let Some(u) = request.unique.clone() {
            let chain = self.jobs.named(&u.name).to_vec();
            let unfinished: Vec<JobId> = chain
                .iter()
                .copied()
                .filter(|c| self.jobs.get(c).is_some_and(|j| !j.state.is_finished()))
                .collect();
            let last = chain.last().and_then(|c| self.jobs.get(c));
            match u.policy {
                ConflictPolicy::Keep => {
                    if let Some(&existing) = unfinished.last() {
                        return Ok(Reply::Enqueued {
                            id: existing,
                            disposition: Disposition::Kept,
                            warnings,
                        });
                    }
                }
                ConflictPolicy::Update => {
                    if let Some(&existing) = unfinished.last() {
                        self.update_in_place(existing, request);
                        return Ok(Reply::Enqueued {
                            id: existing,
                            disposition: Disposition::Updated,
                            warnings,
                        });
                    }
                }
                ConflictPolicy::Replace | ConflictPolicy::CancelAndReenqueue => {
                    for c in &unfinished {
                        self.cancel_one(now, *c, StopReason::Cancelled);
                    }
                    if !unfinished.is_empty() {
                        disposition = Disposition::Replaced;
                    }
                }
                ConflictPolicy::Append | ConflictPolicy::AppendOrReplace => {
                    if let Some(last) = last {
                        let broken = matches!(last.state, JobState::Failed | JobState::Cancelled);
                        if !(broken && u.policy == ConflictPolicy::AppendOrReplace) {
                            prerequisite = Some(last.id);
                            disposition = Disposition::Appended;
                        }
                    }
                }
            }
        }

        let input = std::mem::take(&mut request.input);
        let job = self.initial_job(now, id, request, prerequisite)?;
        if !input.is_null() {
            // a new job has no stored input to replace: a null one writes nothing
            self.dirty_inputs.insert(id);
        }
        self.jobs.insert(
            job,
            Payloads {
                input,
                ..Payloads::default()
            },
        );
        self.reindex(id);
        if let Some(p) = prerequisite {
            // Appending to a chain whose last job already failed or was cancelled: so does this one.
            match self.jobs.get(&p).map(|j| j.state) {
                Some(JobState::Failed) => self.finish_job(
                    now,
                    id,
                    JobState::Failed,
                    Some(StopReason::PrerequisiteFailed(p)),
                ),
                Some(JobState::Cancelled) => self.finish_job(
                    now,
                    id,
                    JobState::Cancelled,
                    Some(StopReason::PrerequisiteFailed(p)),
                ),
                _ => {}
            }
        }
        Ok(Reply::Enqueued {
            id,
            disposition,
            warnings,
        })
    }

    fn initial_job(
        &mut self,
        now: Time,
        id: JobId,
        request: JobRequest,
        prerequisite: Option<JobId>,
    ) -> Result<Entry, CoreError> {
        let blocked = prerequisite
            .and_then(|p| self.jobs.get(&p))
            .is_some_and(|p| p.state != JobState::Succeeded);
        let mut job = Entry {
            id,
            request: self.jobs.share(request),
            state: if blocked {
                JobState::Blocked
            } else {
                JobState::Enqueued
            },
            enqueued_at: now,
            attempt: 0,
            not_before: now,
            backing_off: false,
            window_end: None,
            last_started: None,
            last_finished: None,
            last_success_started: None,
            runs_total: 0,
            cycle: 0,
            prerequisites: prerequisite.into_iter().collect(),
            stop_reason: None,
            finished_at: None,
            force: Force::default(),
        };
        self.place(&mut job)?;
        Ok(job)
    }

    /// Sets `not_before` / `window_end` of `job` for its current cycle from its schedule.
    fn place(&mut self, job: &mut Entry) -> Result<(), CoreError> {
        let cron = cron_of(&mut self.cron_cache, &job.request.schedule)?;
        place(job, cron.as_ref())
    }

    /// `due` delayed by the job's jitter for its current cycle (decided once per slot: the
    /// result is stored as the job's `not_before`, so a restart keeps it and `why`/`list` show
    /// it); a flexed periodic job stays inside its window.
    fn jittered(&self, job: &Entry, due: Time) -> Time {
        jittered(job, due)
    }

    fn update_in_place(&mut self, id: JobId, request: JobRequest) {
        self.jobs.replace_request(id, request);
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        if job.state == JobState::Enqueued && !job.backing_off {
            let mut placed = job.clone();
            if self.place(&mut placed).is_ok()
                && let Some(job) = self.jobs.get_mut(&id)
            {
                *job = placed;
            }
        }
        self.dirty_inputs.insert(id);
        self.reindex(id);
    }

    fn cancel(&mut self, now: Time, selector: &Selector) -> Result<Reply, CoreError> {
        let ids = self.resolve(selector)?;
        let unfinished: Vec<JobId> = ids
            .iter()
            .copied()
            .filter(|id| self.jobs.get(id).is_some_and(|j| !j.state.is_finished()))
            .collect();
        if unfinished.is_empty() {
            match selector {
                Selector::Tag(_) => {}
                _ => match ids.last().and_then(|id| self.jobs.get(id)) {
                    Some(job) => {
                        return Err(CoreError::AlreadyFinished {
                            id: job.id,
                            state: job.state,
                            action: "cancel",
                        });
                    }
                    None => return Err(CoreError::NoSuchJob(selector.to_string())),
                },
            }
        }
        for id in &unfinished {
            self.cancel_one(now, *id, StopReason::Cancelled);
        }
        Ok(Reply::Cancelled(unfinished))
    }

    fn cancel_one(&mut self, now: Time, id: JobId, reason: StopReason) {
        if self.active.contains_key(&id) {
            self.request_stop(now, id, StopReason::Cancelled, self.config.grace);
            if let Some(a) = self.active.get_mut(&id) {
                a.stop = Some(StopReason::Cancelled);
            }
        }
        self.finish_job(now, id, JobState::Cancelled, Some(reason));
    }

    /// `Event::Retry`: checks every selected job first, so a refusal changes nothing.
    fn retry_finished(&mut self, now: Time, selector: &Selector) -> Result<Reply, CoreError> {
        let ids = self.resolve(selector)?;
        if ids.is_empty() {
            return Err(CoreError::NoSuchJob(selector.to_string()));
        }
        // a name means its last job; a tag means its failed and cancelled jobs
        let ids: Vec<JobId> = match selector {
            Selector::Name(_) => ids.last().copied().into_iter().collect(),
            Selector::Tag(_) => ids
                .into_iter()
                .filter(|id| {
                    self.jobs
                        .get(id)
                        .is_some_and(|j| matches!(j.state, JobState::Failed | JobState::Cancelled))
                })
                .collect(),
            _ => ids,
        };
        for id in &ids {
            let Some(job) = self.jobs.get(id) else {
                continue;
            };
            if !matches!(job.state, JobState::Failed | JobState::Cancelled) {
                return Err(CoreError::NotRetriable {
                    id: *id,
                    state: job.state,
                });
            }
            if self.active.contains_key(id) {
                return Err(CoreError::StillStopping(*id));
            }
            if let Some(name) = job.unique_name()
                && let Some(live) = self
                    .jobs
                    .named(name)
                    .iter()
                    .find(|c| self.jobs.get(c).is_some_and(|j| !j.state.is_finished()))
            {
                return Err(CoreError::NameTaken {
                    name: name.to_string(),
                    live: *live,
                });
            }
            if let Some(p) = job.prerequisites.iter().find(|p| {
                self.jobs
                    .get(p)
                    .is_some_and(|p| matches!(p.state, JobState::Failed | JobState::Cancelled))
            }) {
                return Err(CoreError::PrerequisiteNotDone {
                    id: *id,
                    prerequisite: *p,
                });
            }
        }
        for id in &ids {
            let Some(job) = self.jobs.get(id) else {
                continue;
            };
            let state = if job.prerequisites.iter().all(|p| {
                self.jobs
                    .get(p)
                    .is_none_or(|p| p.state == JobState::Succeeded)
            }) {
                JobState::Enqueued
            } else {
                JobState::Blocked
            };
            self.jobs.revive(*id, state);
            let Some(job) = self.jobs.get_mut(id) else {
                continue;
            };
            job.attempt = 0;
            job.cycle = job.cycle.saturating_add(1);
            job.stop_reason = None;
            job.backing_off = false;
            job.force = Force::default();
            if job.request.schedule.is_recurring() {
                let mut placed = job.clone();
                if self.place(&mut placed).is_ok()
                    && let Some(job) = self.jobs.get_mut(id)
                {
                    *job = placed;
                }
            } else {
                job.not_before = now;
                job.window_end = None;
            }
            self.reindex(*id);
            self.dirty.insert(*id);
        }
        Ok(Reply::Retried(ids))
    }

    fn force(&mut self, selector: &Selector, force: Force) -> Result<Reply, CoreError> {
        let ids = self.resolve(selector)?;
        if ids.is_empty() {
            return Err(CoreError::NoSuchJob(selector.to_string()));
        }
        let mut forced = Vec::new();
        let single = matches!(selector, Selector::Id(_));
        for id in ids {
            let Some(job) = self.jobs.get_mut(&id) else {
                continue;
            };
            match job.state {
                JobState::Enqueued => {
                    job.force.time |= force.time;
                    job.force.constraints |= force.constraints;
                    if force.time {
                        self.deferred.remove(&id);
                    }
                    self.reindex(id);
                    forced.push(id);
                }
                JobState::Running => forced.push(id),
                JobState::Blocked if single => return Err(CoreError::Blocked(id)),
                state if single && state.is_finished() => {
                    return Err(CoreError::AlreadyFinished {
                        id,
                        state,
                        action: "run",
                    });
                }
                _ => {}
            }
        }
        Ok(Reply::Forced(forced))
    }

    fn device_changed(&mut self, now: Time, device: DeviceState) {
        self.device = device;
        self.policy.on_device(now, &device);
        // jobs waiting on the device, and ready ones, are filed again against the new state
        for (key, id) in self.lanes.take_device_dependent() {
            self.lanes.wait_for_time(key, key, id);
        }
        // the policy may see things differently now (a screen that comes on ends Doze)
        self.ask_policy_again();
        let lost: Vec<(JobId, StopReason)> = self
            .active
            .iter()
            .filter(|(_, a)| a.stop.is_none() && !a.ignore_constraints)
            .filter_map(|(id, _)| {
                let job = self.jobs.get(id)?;
                let unmet = job.request.constraints.check(&device);
                unmet
                    .first()
                    .map(|u| (*id, StopReason::ConstraintLost(u.constraint)))
            })
            .collect();
        for (id, reason) in lost {
            self.request_stop(now, id, reason, self.config.grace);
        }
    }

    /// Every job the policy deferred or denied is asked again at the next dispatch, and an
    /// app-wide hold is lifted (the policy is asked again too).
    fn ask_policy_again(&mut self) {
        self.app_hold = None;
        let held: Vec<JobId> = self.deferred.keys().copied().collect();
        self.deferred.clear();
        for id in held {
            let dirty = self.dirty.contains(&id);
            self.reindex(id);
            if !dirty {
                self.dirty.remove(&id); // a deferral is not part of the record
            }
        }
    }

    fn finished(&mut self, now: Time, id: JobId, attempt: u32, outcome: RunOutcome) {
        if self.active.get(&id).is_none_or(|a| a.attempt != attempt) {
            return; // stale or unknown report
        }
        let Some(active) = self.active.remove(&id) else {
            return;
        };
        let ran_for = since(now, active.started);
        if let Some(job) = self.jobs.get(&id) {
            self.policy
                .on_finished(now, &self.jobs.upsert_view(job), ran_for);
        }
        let (mut result, output, mut note) = match outcome {
            RunOutcome::Success(out) => (RunResult::Success, out, None),
            RunOutcome::Retry(v) => (RunResult::Retry, v, None),
            RunOutcome::Failure(out) => (RunResult::Failure, out, None),
            RunOutcome::Panicked(msg) => (
                RunResult::Failure,
                None,
                Some(format!("the worker panicked: {msg}")),
            ),
            RunOutcome::Aborted => (
                RunResult::Failure,
                None,
                Some("the run was dropped after its grace period".to_string()),
            ),
        };
        let output = match output {
            Some(v) => {
                let size = serde_json::to_string(&v).map_or(usize::MAX, |s| s.len());
                if size > self.config.payload_cap {
                    note = Some(format!(
                        "the output of {size} bytes was dropped: it is over the cap of {} bytes",
                        self.config.payload_cap
                    ));
                    None
                } else {
                    Some(v)
                }
            }
            None => None,
        };
        if active.stop.is_some() {
            result = RunResult::Stopped;
        } else if result == RunResult::Retry
            && let Some(m) = self
                .jobs
                .get(&id)
                .and_then(|j| j.request.max_attempts.filter(|m| j.attempt >= *m))
        {
            // no retry follows: the run ended the job (or its cycle) as a failure, and its
            // record says so rather than "retry"
            result = RunResult::Failure;
            note.get_or_insert_with(|| {
                if m == 1 {
                    "the worker asked for a retry, but its one attempt is used up".to_string()
                } else {
                    format!("the worker asked for a retry, but all {m} attempts are used up")
                }
            });
        }
        self.push_history(
            id,
            RunRecord {
                attempt,
                started: active.started,
                finished: now,
                result,
                output: output.clone(),
                stop_reason: active.stop.clone(),
                note,
            },
        );
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        job.last_finished = Some(now);
        if job.state.is_finished() {
            // cancelled while it ran: the record is final already
            self.touch(id);
            return;
        }
        let recurring = job.request.schedule.is_recurring();
        if let Some(reason) = active.stop {
            job.set_stop_reason(Some(reason.clone()));
            if reason.is_free() {
                job.attempt = job.attempt.saturating_sub(1);
                job.state = JobState::Enqueued;
                self.reindex(id);
            } else if matches!(reason, StopReason::Expired(_)) {
                // the request is used up: no retry
                if recurring {
                    self.advance_slot(now, id);
                } else {
                    self.finish_job(now, id, JobState::Failed, Some(reason));
                }
            } else {
                self.retry(now, id);
            }
            return;
        }
        match result {
            RunResult::Success => {
                job.last_success_started = Some(active.started);
                job.stop_reason = None;
                if self.jobs.set_output(id, output) {
                    self.dirty_outputs.insert(id);
                }
                if recurring {
                    self.advance_slot(now, id);
                } else {
                    self.finish_job(now, id, JobState::Succeeded, None);
                }
            }
            RunResult::Retry => self.retry(now, id),
            _ => {
                if self.jobs.set_output(id, output) {
                    self.dirty_outputs.insert(id);
                }
                if recurring {
                    self.advance_slot(now, id);
                } else {
                    self.finish_job(now, id, JobState::Failed, None);
                }
            }
        }
    }

    // ---------------------------------------------------------------- transitions

    fn push_history(&mut self, id: JobId, record: RunRecord) {
        let cap = self.config.history_len.max(1);
        if let Some(job) = self.jobs.get(&id) {
            if self.persist {
                // the run that ended is the last one started: its number is `runs_total`
                self.dirty_runs.push(RunWrite {
                    id,
                    number: job.runs_total,
                    record: record.clone(),
                });
            }
            self.jobs.push_history(id, record, cap);
            self.touch(id);
        }
    }

    /// The attempt failed in a way that may be retried: back off, or give up at `max_attempts`.
    fn retry(&mut self, now: Time, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let exhausted = job.request.max_attempts.is_some_and(|m| job.attempt >= m);
        if exhausted {
            if job.request.schedule.is_recurring() {
                self.advance_slot(now, id);
            } else {
                self.finish_job(now, id, JobState::Failed, None);
            }
            return;
        }
        let delay = backoff_delay(&job.request.backoff, job.attempt, job.id.seed());
        job.not_before = schedule::add(now, delay);
        job.backing_off = true;
        job.state = JobState::Enqueued;
        self.reindex(id);
    }

    /// A recurring job's cycle ended: move to its next slot, with the attempt count reset.
    fn advance_slot(&mut self, now: Time, id: JobId) {
        // placed where it is (a job is large: taking it out of the map and back moved it twice,
        // and its neighbours in the map's node, at every run)
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let cron = cron_of(&mut self.cron_cache, &job.request.schedule);
        job.attempt = 0;
        job.cycle = job.cycle.saturating_add(1);
        job.state = JobState::Enqueued;
        let placed = cron.and_then(|cron| place(job, cron.as_ref()));
        match placed {
            Ok(()) => {
                self.reindex(id);
                // slots that passed while it ran are missed slots too
                self.skip_missed(now, id);
            }
            // a cron expression with no future slot (a year field in the past): the job is done
            Err(_) => self.finish_job(now, id, JobState::Succeeded, None),
        }
    }

    /// Puts a job into a finished state and settles its dependents.
    fn finish_job(&mut self, now: Time, id: JobId, state: JobState, reason: Option<StopReason>) {
        self.jobs.finish(id, state, now);
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        job.force = Force::default();
        if reason.is_some() {
            job.set_stop_reason(reason);
        }
        self.deferred.remove(&id);
        self.reindex(id);
        let dependents = self.jobs.dependents(&id).to_vec();
        for d in dependents {
            let Some(dep) = self.jobs.get(&d) else {
                continue;
            };
            if dep.state != JobState::Blocked {
                continue;
            }
            match state {
                JobState::Succeeded => {
                    let ready = dep.prerequisites.iter().all(|p| {
                        self.jobs
                            .get(p)
                            .is_none_or(|p| p.state == JobState::Succeeded)
                    });
                    if ready && let Some(dep) = self.jobs.get_mut(&d) {
                        dep.state = JobState::Enqueued;
                        self.reindex(d);
                    }
                }
                other => self.finish_job(now, d, other, Some(StopReason::PrerequisiteFailed(id))),
            }
        }
    }

    fn request_stop(&mut self, now: Time, id: JobId, reason: StopReason, grace: Duration) {
        let Some(a) = self.active.get_mut(&id) else {
            return;
        };
        let abort_at = schedule::add(now, grace);
        if a.stop.is_none() {
            a.stop = Some(reason.clone());
            a.abort_at = Some(abort_at);
            self.pending.push(Action::Stop { id, reason });
        } else if let Some(at) = a.abort_at {
            a.abort_at = Some(at.min(abort_at));
        }
    }

    /// Missed slots after downtime (see [`Scheduler::skip_missed`]).
    fn apply_catch_up(&mut self, now: Time) {
        let ids: Vec<JobId> = self.jobs.ids().collect();
        for id in ids {
            self.skip_missed(now, id);
        }
    }

    /// True when the current slot of an enqueued recurring job (not backing off) can no longer
    /// start on time at `now`: a periodic job's window has ended, a cron slot's latest start
    /// (its jittered due time plus the batching slack) has passed.
    fn slot_missed(&self, job: &Entry, now: Time) -> bool {
        if job.state != JobState::Enqueued || job.backing_off {
            return false;
        }
        match (&job.request.schedule, job.window_end) {
            (Schedule::Periodic { .. }, Some(end)) => end.max(job.not_before) < now,
            (Schedule::Cron { .. }, Some(_)) => self.latest_start(job, job.not_before) < now,
            _ => false,
        }
    }

    /// If `id` is a recurring job whose slot was missed at `now`, applies its catch-up policy:
    /// `skip` moves it to the first slot that has not ended; `one` runs it once as soon as
    /// possible — delayed by its jitter, when it has one, so that jobs catching up together do
    /// not all start at the same instant.
    fn skip_missed(&mut self, now: Time, id: JobId) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        if !self.slot_missed(job, now) {
            return;
        }
        if job.request.catch_up == CatchUp::One {
            if job.request.jitter.is_some() {
                let due = self.jittered(job, now);
                if let Some(job) = self.jobs.get_mut(&id) {
                    job.not_before = due;
                }
                self.reindex(id);
            }
            return;
        }
        // the first slot that is not missed at `now` — a slot that began before `now` still
        // counts when its jittered start (and batching slack) is ahead, so look from one
        // jitter back
        let Some(mut candidate) = self.jobs.get(&id).cloned() else {
            return;
        };
        let jitter = candidate.request.jitter.map_or(Duration::ZERO, |j| j.max);
        let look_from = sub(now, jitter.saturating_add(self.batch_slack(&candidate)));
        // the current slot is missed (its jitter was decided once); later ones that end
        // before `look_from` cannot be kept either
        let mut after = candidate
            .window_end
            .map_or(look_from, |end| end.max(look_from));
        let mut placed = false;
        for _ in 0..10_000 {
            let Some((start, end)) = self.slot_after(&candidate, after) else {
                break;
            };
            candidate.attempt = 0;
            candidate.cycle = candidate.cycle.saturating_add(1);
            candidate.window_end = Some(end);
            candidate.not_before = self.jittered(&candidate, start);
            if !self.slot_missed(&candidate, now) {
                placed = true;
                break;
            }
            after = end;
        }
        if let Some(job) = self.jobs.get_mut(&id) {
            *job = candidate;
        }
        if placed {
            self.reindex(id);
        } else {
            self.finish_job(now, id, JobState::Succeeded, None);
        }
    }

    /// The first slot of a recurring job whose window ends after `after`: its start and end
    /// (for cron, the slot itself twice). `None` for one-off jobs and a cron expression that
    /// never fires again.
    fn slot_after(&mut self, job: &Entry, after: Time) -> Option<(Time, Time)> {
        match job.request.schedule.clone() {
            Schedule::Periodic {
                every,
                flex,
                anchor,
            } => {
                let at = after + TimeDelta::nanoseconds(1);
                let w = periodic_window_at(every, flex, anchor, job.enqueued_at, at);
                Some((w.start, w.end))
            }
            Schedule::Cron { expr, tz } => {
                let parsed = self.cron(&expr).ok()?;
                next_cron(&parsed, tz, after).map(|slot| (slot, slot))
            }
            Schedule::Once { .. } => None,
        }
    }

    /// Re-files a job after any change (an enqueued job waits for its time gates first), and
    /// marks it for persisting.
    fn reindex(&mut self, id: JobId) {
        self.lanes.remove(id);
        self.touch(id);
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        if job.state != JobState::Enqueued {
            return;
        }
        let key = self.gate_of(job);
        let latest = self.latest_start(job, key);
        self.lanes.wait_for_time(key, latest, id);
    }

    /// How long past its gate a job may wait to share a wake-up: its flex window's end for a
    /// periodic job with a flex (unless it backs off), else the batching window; nothing for an
    /// accurate or forced job. Never as late as the job's next slot, so a period or cron slot
    /// shorter than the batching window is not eaten.
    fn latest_start(&self, job: &Entry, gate: Time) -> Time {
        let policy_chose =
            matches!(self.deferred.get(&job.id), Some((Some(until), _)) if *until == gate);
        let jittered = if job.backing_off {
            job.request.backoff.jitter > 0.0
        } else {
            job.request.jitter.is_some()
        };
        if job.force.time
            || job.request.accurate
            || self.config.batch_window.is_zero()
            || policy_chose
            || jittered
        {
            // forced, accurate, batching off, the policy picked the instant itself (a
            // maintenance window opens then), or a jittered start, which is there to spread
            // jobs apart and would be undone by gathering them into one wake-up
            return gate;
        }
        let flexed = matches!(
            job.request.schedule,
            Schedule::Periodic { flex: Some(_), .. }
        ) && !job.backing_off;
        let latest = match job.window_end {
            Some(end) if flexed && end >= gate => end,
            _ => schedule::add(gate, self.batch_slack(job)),
        };
        match self.next_slot(job) {
            // a margin before the next slot opens (a second, or half the gap if that is less)
            Some(next) if next > gate => {
                let margin = since(next, gate).min(Duration::from_secs(2)) / 2;
                latest.min(next - TimeDelta::from_std(margin).unwrap_or_default())
            }
            Some(_) => gate,
            None => latest,
        }
    }

    /// When the slot after a recurring job's current one opens (before jitter): the next grid
    /// period's window start, or the next cron slot. `None` for one-off jobs and periods anchored
    /// after the run (those begin when this run ends).
    fn next_slot(&self, job: &Entry) -> Option<Time> {
        let end = job.window_end?;
        match &job.request.schedule {
            Schedule::Periodic {
                every,
                flex,
                anchor: Anchor::Grid,
            } => Some(schedule::add(
                end,
                every.saturating_sub(effective_flex(*every, *flex)),
            )),
            Schedule::Cron { expr, tz } => match self.cron_cache.get(expr) {
                Some(parsed) => next_cron(parsed, *tz, end),
                None => next_cron(&parse_cron(expr).ok()?, *tz, end),
            },
            _ => None,
        }
    }

    /// The batching slack of a job without a flex window.
    fn batch_slack(&self, job: &Entry) -> Duration {
        if job.request.accurate {
            Duration::ZERO
        } else {
            self.config.batch_window
        }
    }

    /// Files a job whose time gates are open in the lane of what it waits for next.
    fn classify(&mut self, key: Time, id: JobId) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        if !self.kinds.contains(&job.request.kind) {
            self.lanes.wait_for_worker(key, id, &job.request.kind);
        } else if !job.force.constraints && !job.request.constraints.satisfied_by(&self.device) {
            let needs = job.request.constraints;
            self.lanes.wait_for_device(key, id, needs);
        } else {
            self.lanes.ready(key, id, job.force.time);
        }
    }

    /// The time gates of an enqueued job, each with the instant it opens: the one computation
    /// that dispatch (through [`Scheduler::gate_of`]), `why` and `list` use.
    fn gates(&self, job: &Entry) -> Gates {
        let min_interval = match (job.request.min_interval, job.last_success_started) {
            (Some(mi), Some(last)) => Some(schedule::add(last, mi)),
            _ => None,
        };
        Gates {
            due: job.not_before,
            backing_off: job.backing_off,
            min_interval,
            policy: self.deferred.get(&job.id).cloned(),
        }
    }

    /// The instant every time gate of an enqueued job is open: due time (with its jitter) or
    /// backoff, min-interval, policy deferral. Forced jobs are open now.
    fn gate_of(&self, job: &Entry) -> Time {
        if job.force.time {
            return min_time();
        }
        self.gates(job).open_at()
    }

    /// Timed work: time limits, grace periods, retention.
    fn expire(&mut self, now: Time) {
        let timed_out: Vec<JobId> = self
            .active
            .iter()
            .filter(|(_, a)| a.stop.is_none() && a.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in timed_out {
            self.request_stop(now, id, StopReason::Timeout, self.config.grace);
        }
        let policy_stops: Vec<(JobId, String)> = self
            .active
            .iter()
            .filter_map(|(id, a)| match (&a.stop, &a.policy_deadline) {
                (None, Some((at, reason))) if *at <= now => Some((*id, reason.clone())),
                _ => None,
            })
            .collect();
        for (id, reason) in policy_stops {
            let expires = self.jobs.get(&id).is_some_and(|j| {
                self.policy
                    .deadline_expires_request(&self.jobs.upsert_view(j))
            });
            let reason = if expires {
                StopReason::Expired(reason)
            } else {
                StopReason::Policy(reason)
            };
            self.request_stop(now, id, reason, self.config.grace);
        }
        for (id, a) in self.active.iter_mut() {
            if a.abort_at.is_some_and(|t| t <= now) {
                a.abort_at = None;
                self.pending.push(Action::Abort { id: *id });
            }
        }
        self.prune_finished(now, self.config.retention);
    }

    /// Removes every finished job that finished at least `age` ago: at retention as time passes
    /// (`expire`), or sooner when asked (`Event::Prune`). A job still winding down after a
    /// cancel is looked at again after its grace period; an entry whose job is gone or live
    /// again (`retry`) is dropped.
    fn prune_finished(&mut self, now: Time, age: Duration) {
        // `prune_at` is keyed by the end of retention: finished + retention
        let horizon = if age <= self.config.retention {
            schedule::add(now, self.config.retention - age)
        } else {
            schedule::sub(now, age - self.config.retention)
        };
        let due = self.jobs.prune_due(horizon);
        for (key, id) in due {
            let Some(finished) = self
                .jobs
                .get(&id)
                .filter(|j| j.state.is_finished())
                .and_then(|j| j.finished_at)
            else {
                self.jobs.requeue_prune((key, id), None);
                continue;
            };
            if self.active.contains_key(&id) {
                self.jobs
                    .requeue_prune((key, id), Some(schedule::add(now, self.config.grace)));
            } else if schedule::add(finished, age) <= now {
                self.jobs.requeue_prune((key, id), None);
                self.remove(id);
            } else {
                // younger than `age`: keep it, under its own key (a grace re-check is done)
                let own = schedule::add(finished, self.config.retention);
                if own != key {
                    self.jobs.requeue_prune((key, id), Some(own));
                }
            }
        }
    }

    /// Removes job `id`: from the table (with its payloads and indexes), and from what waits
    /// to be dispatched or written.
    fn remove(&mut self, id: JobId) {
        if self.jobs.remove(id).is_none() {
            return;
        }
        self.lanes.remove(id);
        self.deferred.remove(&id);
        self.dirty.remove(&id);
        self.dirty_inputs.remove(&id);
        self.dirty_outputs.remove(&id);
        self.removed.push(id);
        self.pruned += 1;
    }

    /// Files every job whose time gates opened, then starts ready jobs the policy allows, in due
    /// order, while slots last.
    fn dispatch(&mut self, now: Time) {
        self.dispatch_once(now);
        // a policy that let a batch go may release the jobs it held for that batch
        if self.policy.wants_reask() {
            self.ask_policy_again();
            self.dispatch_once(now);
        }
    }

    fn dispatch_once(&mut self, now: Time) {
        if self.shutting_down {
            return;
        }
        while let Some((key, id)) = self.lanes.pop_due(now) {
            self.classify(key, id);
        }
        if self
            .app_hold
            .as_ref()
            .is_some_and(|h| h.until.is_some_and(|u| u <= now))
        {
            self.app_hold = None; // its time is up: the policy is asked again
        }
        let mut cursor = None;
        // whether the policy's app-wide hold was asked since the last start
        let mut asked = false;
        while self.active.len() < self.config.max_concurrent.max(1) {
            if self.app_hold.is_some() {
                // only forced jobs pass an app-wide hold; the others stay parked, unasked
                let Some((key, id)) = self.lanes.next_ready_forced(cursor) else {
                    break;
                };
                cursor = Some((key, id));
                self.start(now, id);
                continue;
            }
            let Some((key, id)) = self.lanes.next_ready(cursor) else {
                break;
            };
            cursor = Some((key, id));
            let Some(job) = self.jobs.get(&id) else {
                continue;
            };
            if !job.force.time {
                if !asked {
                    asked = true;
                    if let Some((until, reason)) = self.policy.app_hold(now) {
                        // as for a deferral, a hold must end in the future
                        let until =
                            until.map(|u| u.max(schedule::add(now, Duration::from_secs(1))));
                        self.app_hold = Some(AppHold { until, reason });
                        continue; // this job is parked with the others
                    }
                }
                let Some(job) = self.jobs.get(&id) else {
                    continue;
                };
                let cx = PolicyContext {
                    device: &self.device,
                    running: self.active.len(),
                    pending: self.lanes.len() + self.active.len(),
                    pending_by_tag: &[],
                };
                match self
                    .policy
                    .before_start(now, &self.jobs.upsert_view(job), cx)
                {
                    Decision::Allow => {
                        self.deferred.remove(&id);
                    }
                    Decision::Defer { until, reason } => {
                        // a deferral must end in the future, or the job would wait for a
                        // wake-up that never comes
                        let until = until.max(schedule::add(now, Duration::from_secs(1)));
                        self.deferred.insert(id, (Some(until), reason));
                        let dirty = self.dirty.contains(&id);
                        self.reindex(id);
                        if !dirty {
                            self.dirty.remove(&id);
                        }
                        continue;
                    }
                    Decision::Deny { reason } => {
                        self.deferred.insert(id, (None, reason));
                        self.lanes.note(id); // no longer ready: held for a reason of its own
                        continue;
                    }
                }
            }
            self.start(now, id);
            asked = false; // a start may use up what the app is allowed
        }
    }

    fn start(&mut self, now: Time, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let ignore_constraints = job.force.constraints;
        job.state = JobState::Running;
        job.attempt = job.attempt.saturating_add(1);
        job.runs_total = job.runs_total.saturating_add(1);
        job.last_started = Some(now);
        job.stop_reason = None;
        job.force = Force::default();
        let start = StartJob {
            id,
            kind: job.request.kind.clone(),
            attempt: job.attempt,
            input: Value::Null, // filled below, once the entry is no longer borrowed
            idempotency_key: job.idempotency_key(job.attempt),
        };
        let deadline = job.request.timeout.map(|d| schedule::add(now, d));
        let view = job.to_job(Payloads::default());
        let policy_deadline = self.policy.run_deadline(now, &view);
        let start = StartJob {
            input: self.jobs.input(&id),
            ..start
        };
        self.active.insert(
            id,
            Active {
                attempt: start.attempt,
                started: now,
                deadline,
                policy_deadline,
                ignore_constraints,
                stop: None,
                abort_at: None,
            },
        );
        self.deferred.remove(&id);
        self.reindex(id);
        if let Some(job) = self.jobs.get(&id) {
            self.policy.on_started(now, &self.jobs.upsert_view(job));
        }
        self.pending.push(Action::Start(start));
    }

    /// Marks `id` for persisting (nothing to do for a driver without a store).
    fn touch(&mut self, id: JobId) {
        if self.persist {
            self.dirty.insert(id);
        }
    }

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
            .filter(|id| self.jobs.contains(id))
            .map(|id| (id, self.jobs.input(&id)))
            .collect();
        let outputs = dirty_outputs
            .into_iter()
            .filter(|id| self.jobs.contains(id))
            .map(|id| (id, self.jobs.output(&id).cloned()))
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

/// Sets `not_before` / `window_end` of `job` for its current cycle from its schedule; `cron` is
/// the parsed expression of a cron job.
fn place(job: &mut Entry, cron: Option<&CronSchedule>) -> Result<(), CoreError> {
    match &job.request.schedule {
        Schedule::Once { delay, not_before } => {
            let by_delay = schedule::add(job.enqueued_at, *delay);
            job.not_before = not_before.map_or(by_delay, |t| t.max(by_delay));
            job.window_end = None;
        }
        Schedule::Periodic {
            every,
            flex,
            anchor,
        } => {
            let w = next_periodic_window(
                *every,
                *flex,
                *anchor,
                job.enqueued_at,
                job.last_started,
                job.last_finished,
            );
            job.not_before = w.start;
            job.window_end = Some(w.end);
        }
        Schedule::Cron { expr, tz } => {
            let parsed = match cron {
                Some(parsed) => parsed.clone(),
                None => parse_cron(expr).map_err(CoreError::InvalidCron)?,
            };
            // The first slot after the last run started (at most one run per slot, no burst of
            // missed slots), or after the enqueue for a job that never ran.
            let after = job.last_started.unwrap_or(job.enqueued_at);
            let slot = next_cron(&parsed, *tz, after)
                .ok_or_else(|| CoreError::CronNeverFires { expr: expr.clone() })?;
            job.not_before = slot;
            job.window_end = Some(slot);
        }
    }
    job.backing_off = false;
    job.not_before = jittered(job, job.not_before);
    Ok(())
}

/// `due` delayed by the job's jitter for its current cycle; a flexed periodic job stays inside
/// its window.
fn jittered(job: &Entry, due: Time) -> Time {
    let Some(j) = job.request.jitter else {
        return due;
    };
    let at = schedule::add(due, schedule::jitter_offset(job.id, j, job.cycle));
    match (&job.request.schedule, job.window_end) {
        (Schedule::Periodic { flex: Some(_), .. }, Some(end)) => at.min(end.max(due)),
        _ => at,
    }
}
