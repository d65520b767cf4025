//! The test driver: the real runtime on a virtual clock, for library users' tests.

use std::time::Duration;

use backwork_constraints::{DeviceState, ManualProbe};

use super::{Clock, ManualClock, Runtime, RuntimeBuilder, RuntimeError, RuntimeHandle, Worker};
use crate::core::{AllowAll, Config, Force, JobId, Policy, Selector, Time, add};
use crate::store::MemoryStore;

/// Drives a real [`Runtime`] — real workers, real concurrency limit, real cancellation — on a
/// virtual clock that moves only when told, with a device state the test sets. Like WorkManager's
/// `TestDriver`, it can declare a job's constraints, initial delay or period delay met.
///
/// Workers under a test driver should not wait on timers of their own (the clock is virtual);
/// make them return promptly.
///
/// ```
/// use std::time::Duration;
/// use backwork_scheduler::{Constraints, JobRequest, JobState, TestDriver, WorkResult, worker_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), backwork_scheduler::RuntimeError> {
/// let driver = TestDriver::builder()
///     .worker("sync", worker_fn(|_ctx| async { WorkResult::success() }))
///     .start()
///     .await?;
///
/// // A periodic job that needs the charger, with the device on battery.
/// driver.set_device(|d| d.charging = false).await?;
/// let id = driver
///     .enqueue(
///         JobRequest::periodic("sync", Duration::from_secs(3600))
///             .constraints(Constraints::none().charging()),
///     )
///     .await?;
/// driver.run_until_idle().await?;
/// assert_eq!(driver.job(id).await?.unwrap().runs_total, 0); // deferred: not charging
///
/// driver.set_device(|d| d.charging = true).await?;        // plug in: it runs at once
/// assert_eq!(driver.job(id).await?.unwrap().runs_total, 1);
///
/// // three more periods; each run may start up to the batching window (1 min) after its slot,
/// // so that runs due close together share one wake-up
/// driver.advance(Duration::from_secs(3 * 3600 + 60)).await?;
/// let job = driver.job(id).await?.unwrap();
/// assert_eq!(job.runs_total, 4);
/// assert_eq!(job.state, JobState::Enqueued);
///
/// driver.set_period_delay_met(id).await?;                 // skip the wait for the next period
/// assert_eq!(driver.job(id).await?.unwrap().runs_total, 5);
/// driver.shutdown().await?;
/// # Ok(()) }
/// ```
///
/// **Progress.** A worker's progress ([`WorkContext::set_progress`](super::WorkContext::set_progress))
/// is kept only while its run lasts, so assert on it while the worker is still running: hold
/// the worker on something the test releases (not on a timer), and wait on the job's
/// [`watch`](RuntimeHandle::watch) — which always holds the latest progress — or read
/// [`progress_of`](RuntimeHandle::progress_of).
///
/// ```
/// use std::sync::Arc;
/// use backwork_scheduler::{JobRequest, JobState, TestDriver, WorkResult, worker_fn};
/// use serde_json::json;
/// use tokio::sync::Notify;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), backwork_scheduler::RuntimeError> {
/// let release = Arc::new(Notify::new());
/// let gate = Arc::clone(&release);
/// let driver = TestDriver::builder()
///     .worker("upload", worker_fn(move |ctx| {
///         let gate = Arc::clone(&gate);
///         async move {
///             ctx.set_progress(json!({"percent": 50, "message": "half way"}));
///             gate.notified().await; // the test decides when the upload is done
///             WorkResult::success()
///         }
///     }))
///     .start()
///     .await?;
///
/// let id = driver.enqueue(JobRequest::once("upload")).await?;
/// let mut job = driver.watch(id).await?.expect("the job exists");
/// let update = job.wait_for(|u| u.progress.is_some()).await.expect("the runtime is up");
/// assert_eq!(update.state, JobState::Running);
/// assert_eq!(update.progress, Some(json!({"percent": 50, "message": "half way"})));
/// assert_eq!(driver.progress_of(id).await?.map(|p| p.attempt), Some(1));
/// drop(update);
///
/// release.notify_one();
/// driver.run_until_idle().await?;
/// assert_eq!(driver.job(id).await?.unwrap().state, JobState::Succeeded);
/// assert_eq!(driver.progress_of(id).await?, None); // gone with the run
/// driver.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TestDriver {
    runtime: Runtime,
    clock: ManualClock,
    probe: ManualProbe,
    store: MemoryStore,
}

/// Configures a [`TestDriver`].
#[derive(Debug)]
pub struct TestDriverBuilder {
    builder: RuntimeBuilder,
    start: Time,
    store: MemoryStore,
    probe: ManualProbe,
}

impl TestDriverBuilder {
    /// Starts the virtual clock at `start` (default 2026-01-01T00:00:00Z).
    pub fn start_at(mut self, start: Time) -> Self {
        self.start = start;
        self
    }

    /// Registers a worker.
    pub fn worker(mut self, kind: impl Into<String>, worker: impl Worker) -> Self {
        self.builder = self.builder.worker(kind, worker);
        self
    }

    /// Sets the core configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.builder = self.builder.config(config);
        self
    }

    /// Sets the scheduling policy.
    pub fn policy(mut self, policy: impl Policy) -> Self {
        self.builder = self.builder.policy(policy);
        self
    }

    /// Uses `store` (e.g. one a previous driver wrote, to test a restart).
    pub fn store(mut self, store: MemoryStore) -> Self {
        self.store = store;
        self
    }

    /// Uses `probe` for device state.
    pub fn probe(mut self, probe: ManualProbe) -> Self {
        self.probe = probe;
        self
    }

    /// Starts the runtime on the virtual clock and waits until it is idle.
    pub async fn start(self) -> Result<TestDriver, RuntimeError> {
        let clock = ManualClock::new(self.start);
        let runtime = self
            .builder
            .store(self.store.clone())
            .probe(self.probe.clone())
            .clock(clock.clone())
            .sequential_ids(true)
            .start()
            .await?;
        let driver = TestDriver {
            runtime,
            clock,
            probe: self.probe,
            store: self.store,
        };
        driver.run_until_idle().await?;
        Ok(driver)
    }
}

impl std::ops::Deref for TestDriver {
    type Target = RuntimeHandle;

    fn deref(&self) -> &RuntimeHandle {
        &self.runtime
    }
}

impl TestDriver {
    /// A builder: virtual clock at 2026-01-01T00:00:00Z, healthy device, allow-all policy,
    /// in-memory store, sequential ids.
    pub fn builder() -> TestDriverBuilder {
        TestDriverBuilder {
            builder: Runtime::builder().policy(AllowAll),
            start: chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
            store: MemoryStore::new(),
            probe: ManualProbe::new(),
        }
    }

    /// The virtual clock.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// The device probe.
    pub fn probe(&self) -> &ManualProbe {
        &self.probe
    }

    /// The store the runtime writes to.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// Waits until no run is in progress and nothing can start now.
    pub async fn run_until_idle(&self) -> Result<(), RuntimeError> {
        self.runtime.wait_idle().await
    }

    /// Changes the device state, then runs until idle.
    pub async fn set_device(&self, f: impl FnOnce(&mut DeviceState)) -> Result<(), RuntimeError> {
        self.probe.update(f);
        self.run_until_idle().await
    }

    /// Moves the virtual clock forward by `d`, stopping at every deadline on the way (so a
    /// periodic job runs once per period, a backoff expires at its instant) and running until idle
    /// at each.
    pub async fn advance(&self, d: Duration) -> Result<(), RuntimeError> {
        let target = add(self.clock.now(), d);
        self.advance_to(target).await
    }

    /// Moves the virtual clock forward to `target` (see [`TestDriver::advance`]).
    pub async fn advance_to(&self, target: Time) -> Result<(), RuntimeError> {
        self.run_until_idle().await?;
        let mut stalled = 0;
        while let Some(next) = self.runtime.next_deadline().await? {
            if next > target {
                break;
            }
            if next <= self.clock.now() {
                stalled += 1;
                if stalled > 3 {
                    break;
                }
            } else {
                stalled = 0;
                self.clock.set(next);
            }
            self.run_until_idle().await?;
        }
        if target > self.clock.now() {
            self.clock.set(target);
        }
        self.run_until_idle().await
    }

    async fn force_one(&self, id: JobId, force: Force) -> Result<(), RuntimeError> {
        self.runtime.force(Selector::Id(id), force).await?;
        self.run_until_idle().await
    }

    /// Treats every constraint of job `id` as met for its next run, then runs until idle.
    pub async fn set_all_constraints_met(&self, id: JobId) -> Result<(), RuntimeError> {
        self.force_one(
            id,
            Force {
                time: false,
                constraints: true,
            },
        )
        .await
    }

    /// Treats the initial delay of one-off job `id` as over, then runs until idle.
    pub async fn set_initial_delay_met(&self, id: JobId) -> Result<(), RuntimeError> {
        self.force_one(
            id,
            Force {
                time: true,
                constraints: false,
            },
        )
        .await
    }

    /// Treats the wait for the next period of recurring job `id` as over, then runs until idle.
    pub async fn set_period_delay_met(&self, id: JobId) -> Result<(), RuntimeError> {
        self.set_initial_delay_met(id).await
    }

    /// Shuts the runtime down. Runs that do not stop when asked are dropped after one hour of
    /// virtual time (the driver moves its clock forward to get there).
    pub async fn shutdown(self) -> Result<(), RuntimeError> {
        let grace = Duration::from_secs(3600);
        let clock = self.clock.clone();
        let handle = self.runtime.handle();
        let waiting = tokio::spawn(self.runtime.shutdown(grace));
        // Give runs that ignore their stop request the grace period, in virtual time.
        tokio::task::yield_now().await;
        if !waiting.is_finished() {
            let _ = handle.wait_idle().await;
        }
        if !waiting.is_finished() {
            clock.advance(grace);
        }
        waiting.await.map_err(|_| RuntimeError::Stopped)?
    }
}
