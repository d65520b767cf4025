//! The tokio runtime shell around the core.
//!
//! One actor task owns the [`Scheduler`] and the [`Store`]. It waits on exactly one thing at a time
//! besides its inboxes and the commit in flight: the core's next deadline (there is no periodic
//! tick). Each wake-up it gathers every command and run report that is ready and feeds them to
//! the core; the changes, answers and starts, stops and aborts they produce form a **batch**.
//!
//! **Group commit, pipelined.** A batch goes to the store as **one** commit when the disk is
//! free. While that commit is in flight (on a blocking thread — redb writes one transaction at a
//! time, so there is at most one), the actor goes on gathering and feeding: the next batch forms
//! meanwhile and goes to the disk as soon as the commit in flight is done. A batch's effects —
//! answers to its callers (reads too: the core they read may hold the batch in flight), published
//! updates, worker starts, stops and aborts — are carried out only once *its* commit is durable,
//! in commit order (`Actor::settle`). A failed commit refuses its batch and the batch gathered
//! on top of it, drops every run in flight, and rebuilds the core from the store (reopened, with
//! backoff), so nothing refused is applied later.
//!
//! When nothing can arrive during a commit — no run is out and no input waits (a lone caller; a
//! drain whose runs all reported) — there is nothing to overlap, and the commit is made in place
//! on the actor's worker thread (`block_in_place`), saving the hand-off to a blocking thread and
//! back. Before an idle disk is taken while runs are out, the actor yields to the scheduler (no
//! timer) as long as that brings new reports, so the workers finishing now ride in this commit.

mod clock;
mod testing;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backwork_constraints::{DeviceReadings, DeviceState, ManualProbe, Probe};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::Instrument;

pub use clock::{Clock, ManualClock, SystemClock, TokioClock, Wake};
pub use testing::{TestDriver, TestDriverBuilder};
use worker::{DynWorker, Erased};
pub use worker::{FnWorker, WorkContext, WorkResult, Worker, worker_fn};

use crate::core::{
    Action, AllowAll, ChangeSet, Config, CoreError, Disposition, Event, Force, Interruption, Job,
    JobId, JobRequest, JobState, Payloads, Policy, Reply, RunOutcome, RunResult, Scheduler,
    Selector, StartInput, StartJob, StopReason, Time, WaitReason, humanize_approx,
};
use crate::store::{MemoryStore, Store, StoreError};

/// How many ready inputs one wake-up gathers before it commits.
const MAX_BATCH: usize = 4096;

/// How many turns of the tokio scheduler the actor gives ready tasks before it takes an idle
/// disk, as long as each turn brings new inputs.
const SETTLE_TURNS: usize = 4;

/// The first pause before reopening a store that failed again soon after it came back.
const REOPEN_FIRST: Duration = Duration::from_millis(100);
/// The longest pause between two tries to reopen a failed store.
const REOPEN_MAX: Duration = Duration::from_secs(10);

/// Set while the store cannot take writes (a commit failed and the store has not been reopened):
/// writes are refused at once with `error`, reads answer from what the store still reads.
struct StoreDown {
    /// What writes are told.
    error: StoreError,
    /// When to try reopening the store next.
    retry_at: tokio::time::Instant,
}

/// An error from the runtime.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The scheduler refused the request; nothing changed.
    #[error(transparent)]
    Rejected(#[from] CoreError),
    /// The store failed; the change was not made durable and the runtime stopped.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runtime has stopped (shut down, or stopped after a store failure).
    #[error("the backwork runtime has stopped; start a new one to continue")]
    Stopped,
    /// A service registered with [`RuntimeBuilder::service`] could not start; the runtime did not
    /// start either.
    #[error("could not start the {name}: {detail}")]
    Service {
        /// The service's name.
        name: String,
        /// What went wrong, and what to do about it.
        detail: String,
    },
}

/// A companion task that runs beside a [`Runtime`] and stops with it, such as the control socket
/// that lets the `backwork` command line inspect an app's queue.
pub trait Service: Send + 'static {
    /// A short name for errors and logs ("control socket").
    fn name(&self) -> String;

    /// Starts the service. [`RuntimeBuilder::start`] calls it after the store is loaded (so the
    /// store's lock is held) and before any job starts. `stop` fires when the runtime shuts down;
    /// the task should then finish promptly. An error stops the runtime from starting.
    fn start(
        self: Box<Self>,
        runtime: RuntimeHandle,
        stop: CancellationToken,
    ) -> Result<tokio::task::JoinHandle<()>, String>;
}

/// A change of a job as observers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobUpdate {
    /// The job.
    pub id: JobId,
    /// Its state.
    pub state: JobState,
    /// Its attempt count in the current cycle.
    pub attempt: u32,
    /// The last stop reason, if any.
    pub stop_reason: Option<StopReason>,
    /// The output a run wrote, in the update of the change that wrote it; `None` in other
    /// updates (the core keeps no outputs: [`RuntimeHandle::job`] reads the job's last one).
    pub output: Option<Value>,
    /// The latest progress the running worker reported ([`WorkContext::set_progress`]); `None`
    /// when the job is not running or its run has reported none. A progress report is an
    /// update of its own, with the job's state unchanged.
    pub progress: Option<Value>,
    /// When the runtime saw the change.
    pub at: Time,
}

impl JobUpdate {
    fn of(job: &Job, at: Time, progress: Option<&JobProgress>) -> Self {
        JobUpdate {
            id: job.id,
            state: job.state,
            attempt: job.attempt,
            stop_reason: job.stop_reason.clone(),
            output: job.output.clone(),
            progress: progress
                .filter(|p| job.state == JobState::Running && p.attempt == job.attempt)
                .map(|p| p.value.clone()),
            at,
        }
    }
}

/// The latest progress a running job reported, as the runtime keeps it.
///
/// Like WorkManager's `setProgress` (whose `WorkInfo.getProgress()` is "available only while
/// the worker is running"), progress lives in memory only: it is never written to the store,
/// it is forgotten when the run ends (whatever its result), and a report from a run that has
/// already ended is ignored. Each report replaces the previous one.
#[derive(Debug, Clone, PartialEq)]
pub struct JobProgress {
    /// What the worker reported: any JSON value (a command job's is
    /// `{"percent": n, "message": "…"}` with either key absent).
    pub value: Value,
    /// The attempt that reported it.
    pub attempt: u32,
    /// When the runtime received it.
    pub at: Time,
}

/// What an enqueue resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The job that now stands for the request.
    pub id: JobId,
    /// How a unique-name conflict was resolved (`Inserted` when there was none).
    pub disposition: Disposition,
    /// Values the scheduler changed, e.g. an interval raised to the profile's minimum.
    pub warnings: Vec<String>,
}

/// What [`RuntimeHandle::enqueue_chain`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReceipt {
    /// The links' ids in the chain's order; for [`Disposition::Kept`], the unfinished jobs of
    /// the name that were kept instead.
    pub ids: Vec<JobId>,
    /// How the chain's unique name was resolved (`Inserted` when it has none).
    pub disposition: Disposition,
    /// Values the scheduler changed, link by link.
    pub warnings: Vec<String>,
}

type Reply1<T> = oneshot::Sender<T>;

/// One job as `inspect` gives it: its record and every reason it is not running now.
type Inspected = (Job, Vec<WaitReason>);

pub(crate) enum Command {
    Enqueue {
        request: JobRequest,
        reply: Reply1<Result<Receipt, RuntimeError>>,
    },
    EnqueueChain {
        chain: crate::core::Chain,
        reply: Reply1<Result<ChainReceipt, RuntimeError>>,
    },
    EnqueueMany {
        requests: Vec<JobRequest>,
        reply: Reply1<Result<Vec<Result<Receipt, CoreError>>, RuntimeError>>,
    },
    Event {
        event: Event,
        reply: Reply1<Result<Reply, RuntimeError>>,
    },
    Job {
        id: JobId,
        reply: Reply1<Result<Option<Job>, RuntimeError>>,
    },
    Jobs {
        reply: Reply1<Result<Vec<Job>, RuntimeError>>,
    },
    Device {
        reply: Reply1<DeviceState>,
    },
    DeviceReport {
        reply: Reply1<(DeviceState, Option<DeviceReadings>)>,
    },
    Inspect {
        selector: Option<Selector>,
        /// Read each job's payloads and history from the store too.
        payloads: bool,
        reply: Reply1<Result<Vec<Inspected>, RuntimeError>>,
    },
    Why {
        id: JobId,
        reply: Reply1<Result<Vec<WaitReason>, RuntimeError>>,
    },
    Watch {
        id: JobId,
        reply: Reply1<Option<watch::Receiver<JobUpdate>>>,
    },
    NextDeadline {
        reply: Reply1<Option<Time>>,
    },
    WaitIdle {
        reply: Reply1<()>,
    },
    Progress {
        id: JobId,
        attempt: u32,
        value: Value,
    },
    ProgressOf {
        reply: Reply1<BTreeMap<JobId, JobProgress>>,
    },
    Shutdown {
        grace: Duration,
        reply: Reply1<()>,
    },
}

impl Command {
    /// True for the commands that change jobs (and so need the store to take a commit).
    fn is_write(&self) -> bool {
        matches!(
            self,
            Command::Enqueue { .. }
                | Command::EnqueueMany { .. }
                | Command::EnqueueChain { .. }
                | Command::Event { .. }
        )
    }
}

/// Counters of what the runtime's actor did, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// How many times the actor woke up (for any input: a command, a run report, a device
    /// change, its timer, the end of a commit in flight). An idle runtime does not wake at all.
    pub wakeups: u64,
    /// How many times its timer fired.
    pub timer_fires: u64,
    /// How many store commits it made.
    pub commits: u64,
}

#[derive(Debug, Default)]
struct Counters {
    wakeups: AtomicU64,
    timer_fires: AtomicU64,
    commits: AtomicU64,
}

/// A cheap, clonable handle to a running [`Runtime`]: enqueue, cancel, inspect, observe.
#[derive(Debug, Clone)]
pub struct RuntimeHandle {
    tx: mpsc::Sender<Command>,
    updates: broadcast::Sender<JobUpdate>,
    clock: Arc<dyn Clock>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl RuntimeHandle {
    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, RuntimeError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| RuntimeError::Stopped)?;
        rx.await.map_err(|_| RuntimeError::Stopped)
    }

    pub(crate) fn send_lossy(&self, cmd: Command) {
        let _ = self.tx.try_send(cmd);
    }

    /// Enqueues a request; returns once it is durable. With a unique name, the id returned is the
    /// job that now stands for the request (the existing one for `keep` and `update`).
    pub async fn enqueue(&self, request: JobRequest) -> Result<JobId, RuntimeError> {
        self.enqueue_resolved(request).await.map(|r| r.id)
    }

    /// Like [`RuntimeHandle::enqueue`], also saying how a unique-name conflict was resolved and
    /// which values were adjusted.
    pub async fn enqueue_resolved(&self, request: JobRequest) -> Result<Receipt, RuntimeError> {
        self.call(|reply| Command::Enqueue { request, reply })
            .await?
    }

    /// Enqueues a chain (a DAG of one-off jobs, see [`Chain`](crate::Chain)) in one durable
    /// commit: every link, or — refused — none. Returns once it is durable.
    pub async fn enqueue_chain(
        &self,
        chain: crate::core::Chain,
    ) -> Result<ChainReceipt, RuntimeError> {
        self.call(|reply| Command::EnqueueChain { chain, reply })
            .await?
    }

    /// Enqueues many requests in one durable commit. Each request is checked on its own: the
    /// answer holds one result per request, in order; refused requests change nothing, the others
    /// are all durable when this returns.
    pub async fn enqueue_many(
        &self,
        requests: Vec<JobRequest>,
    ) -> Result<Vec<Result<Receipt, CoreError>>, RuntimeError> {
        self.call(|reply| Command::EnqueueMany { requests, reply })
            .await?
    }

    async fn event(&self, event: Event) -> Result<Reply, RuntimeError> {
        self.call(|reply| Command::Event { event, reply }).await?
    }

    /// Cancels the unfinished jobs the selector names; returns their ids once durable.
    pub async fn cancel(&self, selector: Selector) -> Result<Vec<JobId>, RuntimeError> {
        match self.event(Event::Cancel(selector)).await? {
            Reply::Cancelled(ids) => Ok(ids),
            _ => Ok(Vec::new()),
        }
    }

    /// Runs the selected queued jobs now, past their delay, period, backoff and minimum interval;
    /// with `ignore_constraints`, also past their constraints.
    pub async fn run_now(
        &self,
        selector: Selector,
        ignore_constraints: bool,
    ) -> Result<Vec<JobId>, RuntimeError> {
        self.force(
            selector,
            Force {
                time: true,
                constraints: ignore_constraints,
            },
        )
        .await
    }

    /// Gives the failed or cancelled jobs the selector names a fresh cycle ([`Event::Retry`]);
    /// returns them.
    pub async fn retry(&self, selector: Selector) -> Result<Vec<JobId>, RuntimeError> {
        match self.event(Event::Retry(selector)).await? {
            Reply::Retried(ids) => Ok(ids),
            _ => Ok(Vec::new()),
        }
    }

    /// Treats the given gates as met for the next run of the selected jobs.
    pub async fn force(
        &self,
        selector: Selector,
        force: Force,
    ) -> Result<Vec<JobId>, RuntimeError> {
        match self.event(Event::Force { selector, force }).await? {
            Reply::Forced(ids) => Ok(ids),
            _ => Ok(Vec::new()),
        }
    }

    /// Drops the finished jobs that finished at least `older_than` ago (`None`: the
    /// configured retention, `Config::retention`); answers with how many went, how many
    /// finished jobs are kept, and the age used ([`Reply::Pruned`]).
    pub async fn prune(&self, older_than: Option<Duration>) -> Result<Reply, RuntimeError> {
        self.event(Event::Prune { older_than }).await
    }

    /// The job's current record, whole: its input, output and history are read from the store.
    pub async fn job(&self, id: JobId) -> Result<Option<Job>, RuntimeError> {
        self.call(|reply| Command::Job { id, reply }).await?
    }

    /// Every job's current record, whole (each one's payloads and history read from the
    /// store), in enqueue order.
    pub async fn jobs(&self) -> Result<Vec<Job>, RuntimeError> {
        self.call(|reply| Command::Jobs { reply }).await?
    }

    /// The device state the scheduler decides by (the probe's latest report).
    pub async fn device(&self) -> Result<DeviceState, RuntimeError> {
        self.call(|reply| Command::Device { reply }).await
    }

    /// The device state the scheduler decides by, with where each value came from and why
    /// when the probe says ([`Probe::report`]): the explanation is of this very state (the
    /// probe's changes are taken first; one that lands meanwhile is taken too and read again).
    pub async fn device_report(
        &self,
    ) -> Result<(DeviceState, Option<DeviceReadings>), RuntimeError> {
        self.call(|reply| Command::DeviceReport { reply }).await
    }

    /// The jobs the selector names (every job for `None`), in enqueue order, each with every
    /// reason it is not running now — one consistent snapshot.
    ///
    /// The jobs come without their payloads and history (input `Null`, output `None`, no runs):
    /// [`RuntimeHandle::inspect_whole`] reads those from the store too.
    pub async fn inspect(
        &self,
        selector: Option<Selector>,
    ) -> Result<Vec<(Job, Vec<WaitReason>)>, RuntimeError> {
        self.call(|reply| Command::Inspect {
            selector,
            payloads: false,
            reply,
        })
        .await?
    }

    /// As [`RuntimeHandle::inspect`], each job whole: its input, output and history read from
    /// the store (a point read per job), as `show` prints them.
    pub async fn inspect_whole(
        &self,
        selector: Option<Selector>,
    ) -> Result<Vec<(Job, Vec<WaitReason>)>, RuntimeError> {
        self.call(|reply| Command::Inspect {
            selector,
            payloads: true,
            reply,
        })
        .await?
    }

    /// Every reason the job is not running now.
    pub async fn why(&self, id: JobId) -> Result<Vec<WaitReason>, RuntimeError> {
        self.call(|reply| Command::Why { id, reply }).await?
    }

    /// The latest progress of every running job that has reported some (see [`JobProgress`]).
    pub async fn progress(&self) -> Result<BTreeMap<JobId, JobProgress>, RuntimeError> {
        self.call(|reply| Command::ProgressOf { reply }).await
    }

    /// The latest progress job `id`'s running worker reported, if it is running and reported.
    pub async fn progress_of(&self, id: JobId) -> Result<Option<JobProgress>, RuntimeError> {
        Ok(self.progress().await?.remove(&id))
    }

    /// Every job change from now on (state changes after they are durable, and progress reports).
    /// A receiver that falls more than 1024 updates behind skips ahead (`Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<JobUpdate> {
        self.updates.subscribe()
    }

    /// A watch on one job: always holds its latest update, its running worker's latest progress
    /// included. `None` if there is no such job.
    pub async fn watch(
        &self,
        id: JobId,
    ) -> Result<Option<watch::Receiver<JobUpdate>>, RuntimeError> {
        self.call(|reply| Command::Watch { id, reply }).await
    }

    /// The next instant the scheduler will wake at, if any.
    pub async fn next_deadline(&self) -> Result<Option<Time>, RuntimeError> {
        self.call(|reply| Command::NextDeadline { reply }).await
    }

    /// Resolves once no run is in progress and nothing can start right now.
    pub async fn wait_idle(&self) -> Result<(), RuntimeError> {
        self.call(|reply| Command::WaitIdle { reply }).await
    }

    /// The runtime clock's current time.
    pub fn now(&self) -> Time {
        self.clock.now()
    }

    /// What the actor has done so far.
    pub fn stats(&self) -> Stats {
        Stats {
            wakeups: self.counters.wakeups.load(Ordering::Relaxed),
            timer_fires: self.counters.timer_fires.load(Ordering::Relaxed),
            commits: self.counters.commits.load(Ordering::Relaxed),
        }
    }
}

/// A running scheduler: the actor task plus a handle to it. Dropping it shuts the actor down
/// (running workers get the configured grace period); prefer [`Runtime::shutdown`], which waits.
///
/// ```
/// # async fn demo() -> Result<(), backwork_scheduler::RuntimeError> {
/// use backwork_scheduler::{JobRequest, Runtime, WorkResult, worker_fn};
///
/// let runtime = Runtime::builder()
///     .worker("hello", worker_fn(|_ctx| async { WorkResult::success() }))
///     .start()
///     .await?;
/// let id = runtime.enqueue(JobRequest::once("hello")).await?;
/// runtime.wait_idle().await?;
/// # let _ = id;
/// runtime.shutdown(std::time::Duration::from_secs(5)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Runtime {
    handle: RuntimeHandle,
    task: tokio::task::JoinHandle<Result<(), RuntimeError>>,
    services: Vec<tokio::task::JoinHandle<()>>,
    services_stop: CancellationToken,
    _guard: DropGuard,
}

impl std::ops::Deref for Runtime {
    type Target = RuntimeHandle;

    fn deref(&self) -> &RuntimeHandle {
        &self.handle
    }
}

impl Runtime {
    /// A builder with the defaults: in-memory store, manual probe (a healthy plugged-in device),
    /// system clock, the allow-all policy, 4 concurrent runs.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            config: Config::default(),
            policy: Box::new(AllowAll),
            store: Box::new(MemoryStore::new()),
            probe: Arc::new(ManualProbe::new()),
            clock: Arc::new(SystemClock),
            workers: BTreeMap::new(),
            sequential_ids: false,
            log_zone: chrono_tz::Tz::UTC,
            services: Vec::new(),
            interrupted: Vec::new(),
        }
    }

    /// A clonable handle.
    pub fn handle(&self) -> RuntimeHandle {
        self.handle.clone()
    }

    /// Stops starting jobs, asks running ones to stop, waits for them (dropping those still running
    /// after `grace`), writes the final state and closes the store.
    pub async fn shutdown(self, grace: Duration) -> Result<(), RuntimeError> {
        self.services_stop.cancel();
        for service in self.services {
            let _ = service.await;
        }
        let _ = self
            .handle
            .call(|reply| Command::Shutdown { grace, reply })
            .await;
        self.task.await.map_err(|_| RuntimeError::Stopped)?
    }
}

/// Configures and starts a [`Runtime`].
pub struct RuntimeBuilder {
    config: Config,
    policy: Box<dyn Policy>,
    store: Box<dyn Store>,
    probe: Arc<dyn Probe>,
    clock: Arc<dyn Clock>,
    workers: BTreeMap<String, Arc<dyn DynWorker>>,
    sequential_ids: bool,
    services: Vec<Box<dyn Service>>,
    interrupted: Vec<Interruption>,
    log_zone: chrono_tz::Tz,
}

impl std::fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("config", &self.config)
            .field("workers", &self.workers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl RuntimeBuilder {
    /// Sets the core configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Sets how many jobs may run at once (at least 1).
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.config.max_concurrent = n.max(1);
        self
    }

    /// Sets the scheduling policy (an OS profile).
    pub fn policy(mut self, policy: impl Policy) -> Self {
        self.policy = Box::new(policy);
        self
    }

    /// Sets the store.
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Box::new(store);
        self
    }

    /// Sets the device probe.
    pub fn probe(mut self, probe: impl Probe) -> Self {
        self.probe = Arc::new(probe);
        self
    }

    /// Sets the clock.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Registers the worker for jobs of `kind`. Jobs of kinds with no worker stay queued.
    pub fn worker(mut self, kind: impl Into<String>, worker: impl Worker) -> Self {
        self.workers
            .insert(kind.into(), Arc::new(Erased(Arc::new(worker))));
        self
    }

    /// Runs `service` beside the runtime: started once the store is loaded, stopped first on
    /// shutdown.
    pub fn service(mut self, service: impl Service) -> Self {
        self.services.push(Box::new(service));
        self
    }

    /// What the driver knows about runs its last crash interrupted (their real end, a note for
    /// the history); given to the core right after the store is loaded. See [`Interruption`].
    pub fn interrupted(mut self, runs: Vec<Interruption>) -> Self {
        self.interrupted = runs;
        self
    }

    /// The IANA zone the run log shows times in, named (`Mon 2026-11-30 03:00:00 CET`); UTC
    /// unless set (the daemon sets the local zone).
    pub fn log_zone(mut self, zone: chrono_tz::Tz) -> Self {
        self.log_zone = zone;
        self
    }

    /// Generates job ids from the clock and a counter instead of randomness, so a test's ids are
    /// the same on every run.
    pub fn sequential_ids(mut self, yes: bool) -> Self {
        self.sequential_ids = yes;
        self
    }

    /// Loads the store (recovering jobs left running by a crash), then starts the actor task.
    /// Must be called inside a tokio runtime.
    pub async fn start(self) -> Result<Runtime, RuntimeError> {
        let RuntimeBuilder {
            config,
            policy,
            store,
            probe,
            clock,
            workers,
            sequential_ids,
            services,
            interrupted,
            log_zone,
        } = self;
        let store = Arc::new(Mutex::new(store));
        let loader = Arc::clone(&store);
        let jobs = tokio::task::spawn_blocking(move || lock(&loader).load())
            .await
            .map_err(|_| RuntimeError::Stopped)??;

        let mut core = Scheduler::new(config, policy);
        let mut probe_rx = probe.subscribe();
        let device = *probe_rx.borrow_and_update();
        let now = clock.now();
        core.handle(now, Event::DeviceChanged(device))?;
        // a machine about to sleep starts nothing, not even what loading finds due
        let mut sleep_rx = probe.sleeping();
        if let Some(rx) = &mut sleep_rx
            && *rx.borrow_and_update()
        {
            core.handle(now, Event::PrepareForSleep)?;
        }
        for kind in workers.keys() {
            core.handle(now, Event::WorkerRegistered(kind.clone()))?;
        }
        if let Reply::Loaded { jobs, recovered } = core.handle(now, Event::Load(jobs))? {
            tracing::info!(jobs, recovered, "job store loaded");
        }
        if !interrupted.is_empty() {
            core.handle(now, Event::Interrupted(interrupted))?;
        }

        let (tx, rx) = mpsc::channel(MAX_BATCH);
        let (updates, _) = broadcast::channel(1024);
        let handle = RuntimeHandle {
            tx,
            updates: updates.clone(),
            clock: Arc::clone(&clock),
            counters: Arc::default(),
        };
        let stop = CancellationToken::new();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let suspended_seen = clock.suspended();
        let mut actor = Actor {
            core,
            store,
            clock,
            workers,
            rx,
            handle: handle.clone(),
            probe_rx: Some(probe_rx),
            sleep_rx,
            probe,
            waiting_on: std::collections::BTreeSet::new(),
            runs: BTreeMap::new(),
            progress: HashMap::new(),
            done_tx,
            done_rx,
            updates,
            watchers: HashMap::new(),
            idle_waiters: Vec::new(),
            shutdown_waiters: Vec::new(),
            shutting_down: false,
            stop: stop.clone(),
            ids: if sequential_ids {
                IdSource::Sequential(0)
            } else {
                IdSource::Random(uuid::ContextV7::new())
            },
            batch: Vec::new(),
            batch_rest: ChangeSet::default(),
            effects: Vec::new(),
            replies: Vec::new(),
            inflight: None,
            down: None,
            backoff: Duration::ZERO,
            suspended_seen,
            log_zone,
        };
        let services_stop = stop.child_token();
        let mut started = Vec::with_capacity(services.len());
        for service in services {
            let name = service.name();
            match service.start(handle.clone(), services_stop.clone()) {
                Ok(task) => started.push(task),
                Err(detail) => {
                    services_stop.cancel();
                    return Err(RuntimeError::Service { name, detail });
                }
            }
        }
        actor.drain_actions();
        let task = tokio::spawn(actor.run());
        Ok(Runtime {
            handle,
            task,
            services: started,
            services_stop,
            _guard: stop.drop_guard(),
        })
    }
}

fn lock(store: &Mutex<Box<dyn Store>>) -> std::sync::MutexGuard<'_, Box<dyn Store>> {
    store.lock().unwrap_or_else(|e| e.into_inner())
}

enum IdSource {
    Random(uuid::ContextV7),
    Sequential(u64),
}

impl IdSource {
    fn next(&mut self, now: Time) -> JobId {
        match self {
            IdSource::Random(ctx) => {
                let secs = u64::try_from(now.timestamp()).unwrap_or(0);
                let ts = uuid::Timestamp::from_unix(&*ctx, secs, now.timestamp_subsec_nanos());
                JobId(uuid::Uuid::new_v7(ts))
            }
            IdSource::Sequential(n) => {
                *n += 1;
                let mut bytes = [0u8; 10];
                bytes[2..].copy_from_slice(&n.to_be_bytes());
                JobId::new_v7(now, bytes)
            }
        }
    }
}

struct RunHandle {
    token: CancellationToken,
    abort: AbortHandle,
}

type Respond = Box<dyn FnOnce(Option<&StoreError>) + Send>;

// One input at a time lives on the actor's stack; boxing commands would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Input {
    Done((JobId, u32, RunOutcome)),
    Cmd(Command),
    Device(DeviceState),
    /// The probe says the machine is about to sleep (`true`) or resumed (`false`).
    Sleep(bool),
    Timer {
        deadline: Time,
        wake: Wake,
    },
    Dropped,
    /// Time to try reopening the failed store.
    Reopen,
    /// The commit in flight is done (or its blocking task died).
    Committed(Result<Committed, tokio::task::JoinError>),
}

/// What a commit's blocking task hands back: the changes it wrote and whether they are durable.
type Committed = (ChangeSet, Result<(), StoreError>, Reads);

/// The payloads the starts of a batch need (each starting job's and its prerequisites'), read
/// by id after the batch's commit, on the thread that made it.
type Reads = Option<Result<BTreeMap<JobId, Payloads>, StoreError>>;

/// The ids whose payloads the starts among `effects` need (their own and their prerequisites').
fn start_reads(effects: &[Action]) -> Vec<JobId> {
    let mut ids = Vec::new();
    for effect in effects {
        if let Action::Start(start) = effect {
            ids.push(start.id);
            ids.extend(start.prerequisites.iter().copied());
        }
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Commits `changes` to `store`, then (once durable) reads the payloads of `wanted`.
fn commit_and_read(
    store: &mut dyn Store,
    changes: &ChangeSet,
    wanted: &[JobId],
) -> (Result<(), StoreError>, Reads) {
    let result = store.commit(changes);
    if result.is_err() || wanted.is_empty() {
        return (result, None);
    }
    let reads = store
        .payloads(wanted, false)
        .map(|ps| wanted.iter().copied().zip(ps).collect());
    (result, Some(reads))
}

/// The commit on its way to the disk, and what waits for it to be durable: the answers to the
/// callers whose changes it holds (and to every read taken with them) and the starts, stops and
/// aborts the core asked for while feeding it.
struct InFlight {
    task: tokio::task::JoinHandle<Committed>,
    effects: Vec<Action>,
    replies: Vec<Respond>,
}

struct Actor {
    core: Scheduler,
    store: Arc<Mutex<Box<dyn Store>>>,
    clock: Arc<dyn Clock>,
    workers: BTreeMap<String, Arc<dyn DynWorker>>,
    rx: mpsc::Receiver<Command>,
    handle: RuntimeHandle,
    probe_rx: Option<watch::Receiver<DeviceState>>,
    /// The probe's word on system sleep ([`Probe::sleeping`]), if it gives one.
    sleep_rx: Option<watch::Receiver<bool>>,
    probe: Arc<dyn Probe>,
    /// The constraints due jobs wait on, as last told to the probe.
    waiting_on: std::collections::BTreeSet<backwork_constraints::Constraint>,
    runs: BTreeMap<JobId, RunHandle>,
    /// The latest progress of each running job that reported some; an entry goes when its run
    /// ends (never stored).
    progress: HashMap<JobId, JobProgress>,
    done_tx: mpsc::UnboundedSender<(JobId, u32, RunOutcome)>,
    done_rx: mpsc::UnboundedReceiver<(JobId, u32, RunOutcome)>,
    updates: broadcast::Sender<JobUpdate>,
    watchers: HashMap<JobId, watch::Sender<JobUpdate>>,
    idle_waiters: Vec<oneshot::Sender<()>>,
    shutdown_waiters: Vec<oneshot::Sender<()>>,
    shutting_down: bool,
    stop: CancellationToken,
    ids: IdSource,
    /// Changes gathered for the next commit: the latest record of each job, or `None` to delete.
    /// With `batch_rest`, `effects` and `replies` this is the batch being gathered; it was fed
    /// to the core on top of the commit in flight, if any.
    /// Kept in arrival order (appending is the cheap part of bulk work); [`Actor::flush`] sorts
    /// it by id and keeps each job's last entry.
    batch: Vec<(JobId, Option<Job>)>,
    /// The rest of the gathered changes (inputs, outputs, runs), in order: a later entry
    /// replaces an earlier one, and the removes in `batch` apply after them.
    batch_rest: ChangeSet,
    effects: Vec<Action>,
    replies: Vec<Respond>,
    /// The commit on its way to the disk (at most one: redb writes one transaction at a time).
    inflight: Option<InFlight>,
    /// Set while the store cannot take writes.
    down: Option<StoreDown>,
    /// The pause before the next reopen; zero once a commit succeeded.
    backoff: Duration,
    /// The zone the run log shows times in.
    log_zone: chrono_tz::Tz,
    /// The clock's [`Clock::suspended`] when last looked at.
    suspended_seen: Duration,
}

/// The next value of a probe's channel; never, once the probe dropped it.
async fn next_value<T: Copy>(rx: &mut Option<watch::Receiver<T>>) -> T {
    if let Some(r) = rx {
        if r.changed().await.is_ok() {
            return *r.borrow_and_update();
        }
        *rx = None;
    }
    std::future::pending().await
}

/// Resolves when the commit in flight is done; never while there is none.
async fn committed(inflight: &mut Option<InFlight>) -> Result<Committed, tokio::task::JoinError> {
    match inflight {
        Some(f) => (&mut f.task).await,
        None => std::future::pending().await,
    }
}

async fn retry_at(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn wait(sleep: Option<(Time, worker::BoxFuture<Wake>)>) -> (Time, Wake) {
    match sleep {
        Some((deadline, s)) => (deadline, s.await),
        None => std::future::pending().await,
    }
}

/// A timer that fires this much after its deadline means the machine was asleep (or the process
/// stopped): missed slots follow their catch-up policy.
const LATE_WAKE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_string()
    }
}

impl Actor {
    async fn run(mut self) -> Result<(), RuntimeError> {
        let result = self.serve().await;
        let store = Arc::clone(&self.store);
        let closed = tokio::task::spawn_blocking(move || lock(&store).close()).await;
        for w in self.shutdown_waiters.drain(..) {
            let _ = w.send(());
        }
        result?;
        closed.map_err(|_| RuntimeError::Stopped)??;
        Ok(())
    }

    async fn serve(&mut self) -> Result<(), RuntimeError> {
        // Carry out what loading the store produced (recovery writes, immediate starts).
        self.flush().await?;
        loop {
            // (with the store down, runs the core believes started were never started)
            if self.shutting_down
                && (self.core.running() == 0 || (self.down.is_some() && self.runs.is_empty()))
                && self.inflight.is_none()
                && self.gathered_nothing()
            {
                return Ok(());
            }
            // while the store is down nothing can start (a start must be durable first): the
            // core's deadlines wait until it is back
            let deadline = match &self.down {
                None => self.core.poll_timeout(),
                Some(_) => None,
            };
            let reopen_at = self.down.as_ref().map(|d| d.retry_at);
            let input = {
                let sleep = deadline.map(|d| (d, self.clock.sleep_until(d)));
                tokio::select! {
                    biased;
                    done = committed(&mut self.inflight) => Input::Committed(done),
                    Some(done) = self.done_rx.recv() => Input::Done(done),
                    state = next_value(&mut self.probe_rx) => Input::Device(state),
                    sleeping = next_value(&mut self.sleep_rx) => Input::Sleep(sleeping),
                    (deadline, wake) = wait(sleep) => Input::Timer { deadline, wake },
                    () = retry_at(reopen_at) => Input::Reopen,
                    () = self.stop.cancelled(), if !self.shutting_down => Input::Dropped,
                    Some(cmd) = self.rx.recv() => Input::Cmd(cmd),
                }
            };
            match input {
                Input::Committed(done) => {
                    self.handle.counters.wakeups.fetch_add(1, Ordering::Relaxed);
                    // (a reopen or a reload happens only with no commit in flight)
                    let Some(flight) = self.inflight.take() else {
                        continue;
                    };
                    let (changes, result, reads) = done.map_err(|_| RuntimeError::Stopped)?;
                    self.settle(changes, result, reads, flight.effects, flight.replies)
                        .await?;
                }
                Input::Reopen => {
                    self.reopen_store().await?;
                    continue;
                }
                input => {
                    // a write that comes once the next try is due tries first (it may be what
                    // frees the store: space was made, the disk came back)
                    if let (Input::Cmd(cmd), Some(down)) = (&input, &self.down)
                        && cmd.is_write()
                        && tokio::time::Instant::now() >= down.retry_at
                    {
                        self.reopen_store().await?;
                    }
                    self.handle.counters.wakeups.fetch_add(1, Ordering::Relaxed);
                    if matches!(input, Input::Timer { .. }) {
                        self.handle
                            .counters
                            .timer_fires
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    self.take(input);
                }
            }
            // Gather everything else that is ready into the batch, and hand it to the disk if
            // the disk is free; otherwise it goes on gathering while the commit in flight
            // finishes.
            self.gather();
            if self.inflight.is_none()
                && !self.runs.is_empty()
                && !self.gathered_nothing()
                && self.down.is_none()
            {
                // Before the disk is taken, let the workers that are ready now run, so their
                // reports ride in this commit rather than wait a whole commit for the next
                // one: yield while a turn of the scheduler brings something (a few turns at
                // most). No timer; and no turn when no run is out (a turn costs a poll of
                // the IO driver, and a lone caller would only wait for it).
                for _ in 0..SETTLE_TURNS {
                    tokio::task::yield_now().await;
                    if self.gather() == 0 {
                        break;
                    }
                }
            }
            self.flush().await?;
            let waiting = self.core.waiting_constraints();
            if waiting != self.waiting_on {
                self.probe.waiting_on(&waiting);
                self.waiting_on = waiting;
            }
            if self.core.running() == 0
                && self.done_rx.is_empty()
                && self.rx.is_empty()
                && self.inflight.is_none()
            {
                for w in self.idle_waiters.drain(..) {
                    let _ = w.send(());
                }
            }
        }
    }

    /// Takes every input that is ready now (at most [`MAX_BATCH`]) into the batch being
    /// gathered; returns how many it took.
    fn gather(&mut self) -> usize {
        let mut taken = 0;
        for _ in 0..MAX_BATCH {
            // a device change is taken before the commands that follow it, so a caller that
            // changed a manual probe and then asks sees the new state
            if let Some(rx) = &mut self.probe_rx
                && rx.has_changed().unwrap_or(false)
            {
                let state = *rx.borrow_and_update();
                self.take(Input::Device(state));
            }
            if let Ok(done) = self.done_rx.try_recv() {
                self.take(Input::Done(done));
            } else if let Ok(cmd) = self.rx.try_recv() {
                self.take(Input::Cmd(cmd));
            } else {
                break;
            }
            taken += 1;
        }
        taken
    }

    /// True when the batch being gathered holds nothing: no change, no effect, no answer.
    fn gathered_nothing(&self) -> bool {
        self.batch.is_empty()
            && self.batch_rest.is_empty()
            && self.effects.is_empty()
            && self.replies.is_empty()
    }

    fn feed(&mut self, event: Event) -> Result<Reply, CoreError> {
        let now = self.clock.now();
        self.feed_at(now, event)
    }

    /// [`Actor::feed`] at `now`: every part of one request (each job of a bulk enqueue) is
    /// taken at the request's one instant.
    fn feed_at(&mut self, now: Time, event: Event) -> Result<Reply, CoreError> {
        let reply = self.core.handle(now, event);
        self.drain_actions();
        reply
    }

    fn drain_actions(&mut self) {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Persist(changes) => {
                    for job in changes.upserts {
                        self.batch.push((job.id, Some(job)));
                    }
                    for id in changes.removes {
                        self.batch.push((id, None));
                    }
                    let rest = &mut self.batch_rest;
                    rest.inputs.extend(changes.inputs);
                    rest.outputs.extend(changes.outputs);
                    rest.runs.extend(changes.runs);
                    rest.history_len = changes.history_len;
                }
                other => self.effects.push(other),
            }
        }
    }

    /// Answers a change once the commit holding it is done: the core's refusal, the store's
    /// failure, or the result.
    fn respond_after_commit<T: Send + 'static>(
        &mut self,
        tx: oneshot::Sender<Result<T, RuntimeError>>,
        result: Result<T, CoreError>,
    ) {
        self.replies.push(Box::new(move |err| {
            let _ = tx.send(match (err, result) {
                (_, Err(e)) => Err(e.into()),
                (Some(e), Ok(_)) => Err(e.clone().into()),
                (None, Ok(v)) => Ok(v),
            });
        }));
    }

    fn respond<T: Send + 'static>(&mut self, tx: oneshot::Sender<T>, value: T) {
        self.replies.push(Box::new(move |_| {
            let _ = tx.send(value);
        }));
    }

    /// Answers `tx` with `jobs` made whole — their payloads (and runs, when `history`) read
    /// from the store, which the core does not hold — passed through `make`. Like every
    /// answer it waits for the commit of its batch; the reads then run on a blocking thread,
    /// off the actor.
    fn respond_whole<T: Send + 'static>(
        &mut self,
        tx: oneshot::Sender<Result<T, RuntimeError>>,
        mut jobs: Vec<Job>,
        history: bool,
        make: impl FnOnce(Vec<Job>) -> T + Send + 'static,
    ) {
        let store = Arc::clone(&self.store);
        self.replies.push(Box::new(move |_| {
            if jobs.is_empty() {
                let _ = tx.send(Ok(make(jobs)));
                return;
            }
            tokio::task::spawn_blocking(move || {
                let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
                let read = lock(&store).payloads(&ids, history);
                let _ = tx.send(read.map_err(RuntimeError::from).map(|payloads| {
                    for (job, p) in jobs.iter_mut().zip(payloads) {
                        job.request.input = p.input;
                        job.output = p.output;
                        job.history = p.history;
                    }
                    make(jobs)
                }));
            });
        }));
    }

    fn take(&mut self, input: Input) {
        // the time asleep first, so that no limit of a run frozen by the suspend runs out
        // before it is moved (whatever woke the actor: the late timer, logind's resume…)
        let suspended = self.clock.suspended();
        if suspended >= self.suspended_seen + Duration::from_secs(1) {
            let slept = suspended - self.suspended_seen;
            self.suspended_seen = suspended;
            tracing::info!(slept = %humantime::format_duration(slept), "the machine was suspended");
            let _ = self.feed(Event::Suspended(slept));
        }
        match input {
            Input::Done((id, attempt, outcome)) => {
                self.runs.remove(&id);
                self.progress.remove(&id);
                let _ = self.feed(Event::Finished {
                    id,
                    attempt,
                    outcome,
                });
                self.log_run_end(id, attempt);
            }
            Input::Device(state) => {
                let _ = self.feed(Event::DeviceChanged(state));
            }
            Input::Sleep(true) => {
                tracing::info!("the machine is about to sleep: nothing starts until it resumes");
                let _ = self.feed(Event::PrepareForSleep);
            }
            Input::Sleep(false) => {
                tracing::info!("the machine resumed: missed slots follow their catch-up policy");
                let _ = self.feed(Event::Resumed);
            }
            Input::Timer { deadline, wake } => {
                let late = self.clock.now() - deadline > LATE_WAKE;
                if wake == Wake::ClockChanged || late {
                    tracing::info!(?wake, late, "the wall clock jumped or the machine slept");
                    let _ = self.feed(Event::ClockJumped);
                }
                let _ = self.feed(Event::Timeout);
            }
            Input::Dropped => self.begin_shutdown(self.core.config().grace),
            Input::Cmd(cmd) => self.command(cmd),
            Input::Reopen | Input::Committed(_) => {} // handled by the loop
        }
    }

    fn begin_shutdown(&mut self, grace: Duration) {
        if !self.shutting_down {
            self.shutting_down = true;
            tracing::info!(running = self.core.running(), "runtime shutting down");
            let _ = self.feed(Event::Shutdown { grace });
        }
    }

    fn command(&mut self, cmd: Command) {
        // A write whose caller has gone is not made: nobody would learn whether it happened.
        // While the store is down, a write is refused at once with the store's error (its
        // change could not be made durable), before it reaches the core.
        let refusal = self
            .down
            .as_ref()
            .map(|d| RuntimeError::Store(d.error.clone()));
        let cmd = match cmd {
            Command::Enqueue { reply, .. } if reply.is_closed() => return,
            Command::EnqueueMany { reply, .. } if reply.is_closed() => return,
            Command::EnqueueChain { reply, .. } if reply.is_closed() => return,
            Command::EnqueueChain { reply, .. } if refusal.is_some() => {
                return self.respond(reply, Err(refusal.unwrap_or(RuntimeError::Stopped)));
            }
            Command::Event { reply, .. } if reply.is_closed() => return,
            Command::Enqueue { reply, .. } if refusal.is_some() => {
                return self.respond(reply, Err(refusal.unwrap_or(RuntimeError::Stopped)));
            }
            Command::EnqueueMany { reply, .. } if refusal.is_some() => {
                return self.respond(reply, Err(refusal.unwrap_or(RuntimeError::Stopped)));
            }
            Command::Event { reply, .. } if refusal.is_some() => {
                return self.respond(reply, Err(refusal.unwrap_or(RuntimeError::Stopped)));
            }
            other => other,
        };
        match cmd {
            Command::Enqueue { request, reply } => {
                let result = self.enqueue_one(self.clock.now(), request);
                self.respond_after_commit(reply, result);
            }
            Command::EnqueueChain { chain, reply } => {
                let now = self.clock.now();
                let ids = chain.links.iter().map(|_| self.ids.next(now)).collect();
                let result = self
                    .feed(Event::EnqueueChain { ids, chain })
                    .map(|r| match r {
                        Reply::ChainEnqueued {
                            ids,
                            disposition,
                            warnings,
                        } => {
                            for w in &warnings {
                                tracing::warn!("{w}");
                            }
                            ChainReceipt {
                                ids,
                                disposition,
                                warnings,
                            }
                        }
                        _ => ChainReceipt {
                            ids: Vec::new(),
                            disposition: Disposition::Inserted,
                            warnings: Vec::new(),
                        },
                    });
                self.respond_after_commit(reply, result);
            }
            Command::EnqueueMany { requests, reply } => {
                // one request, one instant: its jobs share it (and the wake-up planner's entry
                // for their latest start, instead of one per job)
                let now = self.clock.now();
                // its changes at once: a batch grown by doubling holds up to twice as much
                self.batch.reserve(requests.len());
                let results: Vec<_> = requests
                    .into_iter()
                    .map(|r| self.enqueue_one(now, r))
                    .collect();
                self.replies.push(Box::new(move |err| {
                    let _ = reply.send(match err {
                        Some(e) => Err(e.clone().into()),
                        None => Ok(results),
                    });
                }));
            }
            Command::Event { event, reply } => {
                let result = self.feed(event);
                self.respond_after_commit(reply, result);
            }
            Command::Job { id, reply } => {
                let job: Vec<Job> = self.core.job(id).into_iter().collect();
                self.respond_whole(reply, job, true, |mut jobs| jobs.pop());
            }
            Command::Jobs { reply } => {
                let jobs = self.core.jobs().collect();
                self.respond_whole(reply, jobs, true, |jobs| jobs);
            }
            Command::Inspect {
                selector,
                payloads,
                reply,
            } => {
                let now = self.clock.now();
                let ids: Result<Vec<JobId>, CoreError> = match &selector {
                    Some(s) => self.core.resolve(s),
                    None => Ok(self.core.ids().collect()),
                };
                let out = ids.map_err(RuntimeError::from).map(|ids| {
                    ids.into_iter()
                        .filter_map(|id| {
                            let job = self.core.job(id)?;
                            let why = self.core.why(now, id).unwrap_or_default();
                            Some((job, why))
                        })
                        .collect::<Vec<_>>()
                });
                match out {
                    Ok(found) if payloads => {
                        let (jobs, whys): (Vec<Job>, Vec<_>) = found.into_iter().unzip();
                        self.respond_whole(reply, jobs, true, move |jobs| {
                            jobs.into_iter().zip(whys).collect()
                        });
                    }
                    out => self.respond(reply, out),
                }
            }
            Command::Device { reply } => {
                let device = *self.core.device();
                self.respond(reply, device);
            }
            Command::DeviceReport { reply } => {
                // A probe publishes its state and report together; take what it published
                // before reading the report, and again if it changed in between.
                let mut answer = (*self.core.device(), None);
                for _ in 0..3 {
                    if let Some(rx) = &mut self.probe_rx
                        && rx.has_changed().unwrap_or(false)
                    {
                        let state = *rx.borrow_and_update();
                        let _ = self.feed(Event::DeviceChanged(state));
                    }
                    let device = *self.core.device();
                    match self.probe.report() {
                        Some(report) if report.state == device => {
                            answer = (device, Some(report.readings));
                            break;
                        }
                        Some(_) => answer = (device, None),
                        None => {
                            answer = (device, None);
                            break;
                        }
                    }
                }
                self.respond(reply, answer);
            }
            Command::Why { id, reply } => {
                let why = self
                    .core
                    .why(self.clock.now(), id)
                    .map_err(RuntimeError::from);
                self.respond(reply, why);
            }
            Command::Watch { id, reply } => {
                let now = self.clock.now();
                let rx = self.core.job(id).map(|job| {
                    let update = JobUpdate::of(&job, now, self.progress.get(&id));
                    self.watchers
                        .entry(id)
                        .or_insert_with(|| watch::channel(update).0)
                        .subscribe()
                });
                self.respond(reply, rx);
            }
            Command::NextDeadline { reply } => {
                let t = self.core.poll_timeout();
                self.respond(reply, t);
            }
            Command::WaitIdle { reply } => self.idle_waiters.push(reply),
            Command::Progress { id, attempt, value } => self.take_progress(id, attempt, value),
            Command::ProgressOf { reply } => {
                let all = self
                    .progress
                    .iter()
                    .map(|(id, p)| (*id, p.clone()))
                    .collect();
                self.respond(reply, all);
            }
            Command::Shutdown { grace, reply } => {
                self.shutdown_waiters.push(reply);
                self.begin_shutdown(grace);
            }
        }
    }

    /// Keeps and publishes a progress report of run `attempt` of `id`, if that run is still
    /// out (a report that arrives after its run ended, or from an older attempt, is ignored)
    /// and the value is within the payload cap (WorkManager's `Data` is capped the same way).
    fn take_progress(&mut self, id: JobId, attempt: u32, value: Value) {
        if !self.runs.contains_key(&id) {
            return;
        }
        let Some(job) = self.core.job(id) else {
            return;
        };
        if job.state != JobState::Running || job.attempt != attempt {
            return;
        }
        let size = serde_json::to_vec(&value).map_or(usize::MAX, |v| v.len());
        if size > self.core.config().payload_cap {
            tracing::warn!(
                job = %id.short(),
                size,
                cap = self.core.config().payload_cap,
                "progress report dropped: it is larger than the payload cap; report a smaller value (a percentage and a short message)"
            );
            return;
        }
        let now = self.clock.now();
        let progress = JobProgress {
            value,
            attempt,
            at: now,
        };
        let update = JobUpdate::of(&job, now, Some(&progress));
        self.progress.insert(id, progress);
        self.publish(update);
    }

    /// Enqueues `request` at `now` (the instant of the request it belongs to).
    fn enqueue_one(&mut self, now: Time, request: JobRequest) -> Result<Receipt, CoreError> {
        let id = self.ids.next(now);
        self.feed_at(now, Event::Enqueue { id, request })
            .map(|r| match r {
                Reply::Enqueued {
                    id,
                    disposition,
                    warnings,
                } => {
                    for w in &warnings {
                        tracing::warn!(job = %id, "{w}");
                    }
                    Receipt {
                        id,
                        disposition,
                        warnings,
                    }
                }
                _ => Receipt {
                    id,
                    disposition: Disposition::Inserted,
                    warnings: Vec::new(),
                },
            })
    }

    fn publish(&mut self, update: JobUpdate) {
        if let Some(w) = self.watchers.get(&update.id) {
            if w.receiver_count() == 0 {
                self.watchers.remove(&update.id);
            } else {
                w.send_replace(update.clone());
            }
        }
        let _ = self.updates.send(update);
    }

    /// Hands the gathered batch to the disk when no commit is in flight: its changes go to a
    /// blocking thread as one store commit, and its answers and effects wait in [`InFlight`]
    /// until [`Actor::settle`] learns the commit is durable. A batch without changes (reads,
    /// refusals, a stop that changes no record) is settled at once — nothing it answers is
    /// ahead of the disk, since no earlier commit is pending. While the store is down a batch
    /// with changes is refused without asking it.
    async fn flush(&mut self) -> Result<(), RuntimeError> {
        if self.inflight.is_some() || self.gathered_nothing() {
            return Ok(());
        }
        let mut changes = std::mem::take(&mut self.batch_rest);
        let mut batch = std::mem::take(&mut self.batch);
        // by id (the store writes its keys in order), each job's last entry winning: among one
        // job's entries the last to arrive comes last. A bulk enqueue's batch is in order
        // already and is left as it is (no scratch copy of a big batch); another is ordered on
        // (id, arrival) pairs and its entries — whole jobs of a few hundred bytes — are moved
        // once, not through every step of a sort
        if !batch.is_sorted_by_key(|(id, _)| *id) {
            let mut order: Vec<(JobId, usize)> = batch
                .iter()
                .enumerate()
                .map(|(at, (id, _))| (*id, at))
                .collect();
            order.sort_unstable();
            let mut slots: Vec<Option<(JobId, Option<Job>)>> =
                batch.into_iter().map(Some).collect();
            batch = order
                .into_iter()
                .filter_map(|(_, at)| slots[at].take())
                .collect();
        }
        batch.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept); // a later entry replaces this one
            }
            same
        });
        changes.removes.extend(
            batch
                .iter()
                .filter(|(_, job)| job.is_none())
                .map(|(id, _)| *id),
        );
        // collected in place: the batch's buffer becomes the upserts' (no second copy of a
        // big batch's jobs at once)
        let upserts: Vec<Job> = batch.into_iter().filter_map(|(_, job)| job).collect();
        if changes.upserts.is_empty() {
            changes.upserts = upserts;
        } else {
            changes.upserts.extend(upserts);
        }
        let effects = std::mem::take(&mut self.effects);
        let replies = std::mem::take(&mut self.replies);
        if changes.is_empty() {
            return self.settle(changes, Ok(()), None, effects, replies).await;
        }
        if let Some(down) = &self.down {
            // the store cannot take it; the store is not even asked
            let e = down.error.clone();
            return self.settle(changes, Err(e), None, effects, replies).await;
        }
        let wanted = start_reads(&effects);
        self.handle.counters.commits.fetch_add(1, Ordering::Relaxed);
        let store = Arc::clone(&self.store);
        // Nothing can come in during this commit (no run is out, no caller is waiting to be
        // taken): there is nothing to gather meanwhile, so commit right here on this worker
        // thread (tokio moves its other tasks away meanwhile) — no hand-off to a blocking
        // thread and back on the critical path. A current-thread runtime cannot block; it
        // always hands off.
        let quiet = self.runs.is_empty() && self.done_rx.is_empty() && self.rx.is_empty();
        if quiet
            && tokio::runtime::Handle::current().runtime_flavor()
                == tokio::runtime::RuntimeFlavor::MultiThread
        {
            let (result, reads) = tokio::task::block_in_place(|| {
                commit_and_read(&mut **lock(&store), &changes, &wanted)
            });
            return self.settle(changes, result, reads, effects, replies).await;
        }
        let task = tokio::task::spawn_blocking(move || {
            let (r, reads) = commit_and_read(&mut **lock(&store), &changes, &wanted);
            (changes, r, reads)
        });
        self.inflight = Some(InFlight {
            task,
            effects,
            replies,
        });
        Ok(())
    }

    /// Finishes a batch once its commit is done. Durable: answers its callers, publishes its
    /// changes and carries out its starts, stops and aborts — in that order. Failed: nothing of
    /// it is durable, nor of the batch gathered on top of it meanwhile; both are refused, every
    /// run in flight is dropped (none may go on from a state the store does not have), and the
    /// store is reopened and reloaded.
    async fn settle(
        &mut self,
        changes: ChangeSet,
        result: Result<(), StoreError>,
        reads: Reads,
        effects: Vec<Action>,
        replies: Vec<Respond>,
    ) -> Result<(), RuntimeError> {
        if let Err(e) = result {
            if self.down.is_none() {
                tracing::error!(error = %e, "store commit failed; reopening the store");
            }
            for r in replies {
                r(Some(&e));
            }
            // the batch gathered meanwhile was fed to the core on top of the failed one
            for r in std::mem::take(&mut self.replies) {
                r(Some(&e));
            }
            self.batch.clear();
            self.batch_rest = ChangeSet::default();
            self.effects.clear();
            for run in std::mem::take(&mut self.runs).into_values() {
                run.token.cancel();
                run.abort.abort();
            }
            self.progress.clear();
            return self.recover_store(e).await;
        }
        if !changes.is_empty() {
            self.backoff = Duration::ZERO;
        }
        // observers: only build updates when someone listens (this is the hot path of bulk work)
        if self.updates.receiver_count() > 0 || !self.watchers.is_empty() {
            let now = self.clock.now();
            // the core keeps no outputs: an update's is the one this batch wrote
            let outputs: BTreeMap<JobId, &Option<Value>> =
                changes.outputs.iter().map(|(id, o)| (*id, o)).collect();
            for job in &changes.upserts {
                let mut update = JobUpdate::of(job, now, self.progress.get(&job.id));
                update.output = outputs.get(&job.id).and_then(|o| (*o).clone());
                self.publish(update);
            }
        }
        for r in replies {
            r(None);
        }
        for effect in effects {
            self.carry_out(effect, &reads);
        }
        Ok(())
    }

    /// After a failed commit: the first failure in a while reopens the store at once; otherwise
    /// (the store is down, or failed again soon after it came back) the store is left until
    /// its next try and the core is rebuilt from what the store still reads, so memory never
    /// runs ahead of the disk and nothing refused is applied later.
    async fn recover_store(&mut self, error: StoreError) -> Result<(), RuntimeError> {
        let was_down = self.down.is_some();
        let retry_at = match &self.down {
            Some(d) => d.retry_at,
            None => tokio::time::Instant::now() + self.backoff,
        };
        self.down = Some(StoreDown {
            error: if was_down {
                self.down.take().map_or(error, |d| d.error)
            } else {
                error
            },
            retry_at,
        });
        if !was_down && self.backoff.is_zero() {
            return self.reopen_store().await;
        }
        let store = Arc::clone(&self.store);
        let loaded = tokio::task::spawn_blocking(move || lock(&store).load())
            .await
            .map_err(|_| RuntimeError::Stopped)?;
        match loaded {
            Ok(jobs) => self.reload_while_down(jobs),
            Err(e) => tracing::error!(error = %e, "the store cannot be read either"),
        }
        Ok(())
    }

    /// Rebuilds the core from `jobs` (what is durable) while the store cannot take writes:
    /// whatever the reload would write or start waits until the store is back (it reloads
    /// then).
    fn reload_while_down(&mut self, jobs: Vec<Job>) {
        let _ = self.feed(Event::Reload(jobs));
        self.batch.clear();
        self.batch_rest = ChangeSet::default();
        self.effects.clear();
    }

    /// Tries to reopen the store and load it. On success the core is rebuilt from disk and
    /// scheduling resumes; otherwise the next try is set (0.1 s doubling to 10 s), writes keep
    /// being refused, and reads answer from what the store still reads (a store that cannot
    /// be written, e.g. on a full disk, may still be read). A poisoned transaction is never
    /// retried: the store starts from what is on disk.
    async fn reopen_store(&mut self) -> Result<(), RuntimeError> {
        let store = Arc::clone(&self.store);
        let (reopened, loaded) = tokio::task::spawn_blocking(move || {
            let mut s = lock(&store);
            let reopened = s.reopen();
            let loaded = s.load();
            (reopened, loaded)
        })
        .await
        .map_err(|_| RuntimeError::Stopped)?;
        self.backoff = (self.backoff * 2).clamp(REOPEN_FIRST, REOPEN_MAX);
        let (error, loaded) = match (reopened, loaded) {
            (Ok(()), Ok(jobs)) => {
                self.down = None;
                let n = jobs.len();
                let _ = self.feed(Event::Reload(jobs));
                tracing::info!(jobs = n, "store reopened; scheduling resumes");
                // the reload's own writes (recovery) go through the normal path
                return Box::pin(self.flush()).await;
            }
            (Err(e), loaded) => (e, loaded),
            (Ok(()), Err(e)) => (e.clone(), Err(e)),
        };
        tracing::error!(error = %error, retry_in = ?self.backoff, "the store cannot be reopened yet; writes are refused until it can");
        self.down = Some(StoreDown {
            error,
            retry_at: tokio::time::Instant::now() + self.backoff,
        });
        match loaded {
            Ok(jobs) => self.reload_while_down(jobs),
            Err(e) => tracing::error!(error = %e, "the store cannot be read either"),
        }
        Ok(())
    }

    /// Logs how the run `attempt` of `id` ended, and what happens next (a retry's time, the next
    /// slot, or the job's final state): INFO for a success or a stop that is not the job's fault;
    /// WARN for a failure (retried or not), a time-out, a crash or an expired request.
    fn log_run_end(&self, id: JobId, attempt: u32) {
        if !tracing::enabled!(tracing::Level::WARN) {
            return; // (the hot path of bulk work: no `why` when nobody reads the log)
        }
        let Some(state) = self.core.state_of(id) else {
            return;
        };
        // the core keeps no history when a store does: the run is among those just handed
        let run = self
            .batch_rest
            .runs
            .iter()
            .rev()
            .find(|r| r.id == id)
            .map(|r| &r.record)
            .or_else(|| self.core.last_run(id));
        let Some(run) = run.filter(|r| r.attempt == attempt) else {
            return;
        };
        let took = humanize_approx(
            (run.finished - run.started)
                .to_std()
                .unwrap_or(Duration::ZERO),
        );
        let now = self.clock.now();
        let next = if state.is_finished() {
            format!("no further runs: the job {state}")
        } else {
            let reasons = self.core.why(now, id).unwrap_or_default();
            match WaitReason::next_start(&reasons) {
                Some(at) if at > now => format!(
                    "next start {} (in {})",
                    at.with_timezone(&self.log_zone)
                        .format("%a %Y-%m-%d %H:%M:%S %Z"),
                    humanize_approx((at - now).to_std().unwrap_or(Duration::ZERO))
                ),
                _ => "next start as soon as its constraints and a slot allow".to_string(),
            }
        };
        let name = self.core.unique_name_of(id);
        let job_ref = id.short();
        let note = run.note.as_deref();
        let (warn, what) = match (&run.result, &run.stop_reason) {
            (RunResult::Success, _) => (false, "run succeeded".to_string()),
            (RunResult::Retry | RunResult::Failure, _) => (true, "run failed".to_string()),
            (RunResult::Crashed, _) => (true, "run crashed".to_string()),
            (RunResult::Stopped, Some(StopReason::Timeout)) => {
                (true, "run stopped: it ran past its time limit".to_string())
            }
            (RunResult::Stopped, Some(reason)) if !reason.is_free() => {
                (true, format!("run stopped: {reason}"))
            }
            (RunResult::Stopped, reason) => (
                false,
                format!(
                    "run stopped: {}",
                    reason
                        .as_ref()
                        .map_or_else(|| "by the scheduler".to_string(), |r| r.to_string())
                ),
            ),
        };
        if warn {
            tracing::warn!(job = %job_ref, name, attempt, took, note, next, "{what}");
        } else {
            tracing::info!(job = %job_ref, name, attempt, took, note, next, "{what}");
        }
    }

    /// The input of the run `start`, from the payloads read after its commit (`reads`), or
    /// read now if there are none (a start that rode in no commit). A merge that fails, or a
    /// read that does, is the run's outcome instead.
    fn start_input(&self, start: &StartJob, reads: &Reads) -> Result<StartInput, RunOutcome> {
        let unreadable = |e: &StoreError| {
            RunOutcome::Retry(Some(Value::String(format!(
                "the run's input could not be read from the store: {e}"
            ))))
        };
        let read_now;
        let read = match reads {
            Some(read) => read.as_ref().map_err(unreadable)?,
            None => {
                let wanted = start_reads(std::slice::from_ref(&Action::Start(start.clone())));
                read_now = lock(&self.store)
                    .payloads(&wanted, false)
                    .map(|ps| wanted.iter().copied().zip(ps).collect::<BTreeMap<_, _>>())
                    .map_err(|e| unreadable(&e))?;
                &read_now
            }
        };
        let own = read
            .get(&start.id)
            .map(|p| p.input.clone())
            .unwrap_or_default();
        let outputs: Vec<Option<Value>> = start
            .prerequisites
            .iter()
            .map(|p| read.get(p).and_then(|p| p.output.clone()))
            .collect();
        start
            .input(own, &outputs)
            .map_err(|e| RunOutcome::not_started(&e))
    }

    fn carry_out(&mut self, action: Action, reads: &Reads) {
        match action {
            Action::Persist(_) => {}
            Action::Start(start) => {
                let id = start.id;
                let attempt = start.attempt;
                let input = match self.start_input(&start, reads) {
                    Ok(input) => input,
                    Err(outcome) => {
                        // reported like any run's end, after the start that is now durable
                        let _ = self.done_tx.send((id, attempt, outcome));
                        return;
                    }
                };
                let Some(worker) = self.workers.get(&start.kind).cloned() else {
                    // The core starts only registered kinds; report rather than lose the run.
                    let _ = self.done_tx.send((
                        id,
                        attempt,
                        RunOutcome::Failure(Some(Value::String(format!(
                            "no worker registered for kind {}",
                            start.kind
                        )))),
                    ));
                    return;
                };
                let token = CancellationToken::new();
                if self.core.state_of(id).is_some() {
                    tracing::info!(
                        job = %id.short(),
                        name = self.core.unique_name_of(id),
                        kind = %start.kind,
                        attempt,
                        "run started"
                    );
                }
                let span =
                    tracing::info_span!("job_run", job = %id.short(), kind = %start.kind, attempt);
                let idempotency_key = start.idempotency_key();
                let ctx = WorkContext {
                    id,
                    kind: start.kind,
                    input: input.input,
                    upstream: input.upstream,
                    attempt,
                    idempotency_key,
                    cancel: token.clone(),
                    runtime: self.handle.clone(),
                };
                let inner = tokio::spawn(worker.run_boxed(ctx).instrument(span));
                let abort = inner.abort_handle();
                let done = self.done_tx.clone();
                tokio::spawn(async move {
                    let outcome = match inner.await {
                        Ok(result) => result.into(),
                        Err(e) if e.is_panic() => {
                            RunOutcome::Panicked(panic_message(e.into_panic()))
                        }
                        Err(_) => RunOutcome::Aborted,
                    };
                    let _ = done.send((id, attempt, outcome));
                });
                self.runs.insert(id, RunHandle { token, abort });
            }
            Action::Stop { id, reason } => {
                if let Some(run) = self.runs.get(&id) {
                    tracing::debug!(job = %id, %reason, "asking run to stop");
                    run.token.cancel();
                }
            }
            Action::Abort { id } => {
                if let Some(run) = self.runs.get(&id) {
                    tracing::warn!(job = %id, "run ignored its stop request; dropping it");
                    run.abort.abort();
                }
            }
        }
    }
}
