//! Workers: the code that runs a job, and the context it gets.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Command, RuntimeHandle};
use crate::core::{JobId, RunOutcome};

/// What a worker run returns.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkResult {
    /// The work is done, with optional output.
    Success(Option<Value>),
    /// The work should be tried again later, with backoff; optional output (an error
    /// description, say) is kept with the run.
    Retry(Option<Value>),
    /// The work failed for good, with optional output.
    Failure(Option<Value>),
}

impl WorkResult {
    /// Success without output.
    pub fn success() -> Self {
        WorkResult::Success(None)
    }

    /// Success with output. An output that cannot be serialized is recorded as a failure.
    pub fn success_with(output: impl Serialize) -> Self {
        match serde_json::to_value(output) {
            Ok(v) => WorkResult::Success(Some(v)),
            Err(e) => WorkResult::Failure(Some(Value::String(format!(
                "the output could not be serialized: {e}"
            )))),
        }
    }

    /// Retry without output.
    pub fn retry() -> Self {
        WorkResult::Retry(None)
    }

    /// Retry, keeping an output with the run (what went wrong, say).
    pub fn retry_with(output: impl Serialize) -> Self {
        WorkResult::Retry(serde_json::to_value(output).ok())
    }

    /// Failure without output.
    pub fn failure() -> Self {
        WorkResult::Failure(None)
    }

    /// Failure with output (an error description, say).
    pub fn failure_with(output: impl Serialize) -> Self {
        WorkResult::Failure(serde_json::to_value(output).ok())
    }
}

impl From<WorkResult> for RunOutcome {
    fn from(r: WorkResult) -> Self {
        match r {
            WorkResult::Success(v) => RunOutcome::Success(v),
            WorkResult::Retry(v) => RunOutcome::Retry(v),
            WorkResult::Failure(v) => RunOutcome::Failure(v),
        }
    }
}

/// What a worker gets for one run.
#[derive(Debug, Clone)]
pub struct WorkContext {
    pub(super) id: JobId,
    pub(super) kind: String,
    pub(super) input: Value,
    pub(super) upstream: Option<Box<crate::core::Upstream>>,
    pub(super) attempt: u32,
    pub(super) idempotency_key: String,
    pub(super) cancel: CancellationToken,
    pub(super) runtime: RuntimeHandle,
}

impl WorkContext {
    /// The job's id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// The worker kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The input payload: the job's own, or for a job with prerequisites (a link of a
    /// [`Chain`](crate::Chain)) the merge of its own input and their outputs by its
    /// [`InputMerger`](crate::InputMerger), as WorkManager's `getInputData`.
    pub fn input(&self) -> &Value {
        &self.input
    }

    /// For a job with prerequisites: their outputs merged (an object), without the job's own
    /// input. `None` for a job without prerequisites.
    pub fn upstream(&self) -> Option<&Value> {
        self.upstream.as_deref().map(|u| &u.outputs)
    }

    /// The job's own input as it was enqueued, before any merge with its prerequisites'
    /// outputs (the same as [`WorkContext::input`] for a job without prerequisites).
    pub fn own_input(&self) -> &Value {
        self.upstream
            .as_deref()
            .map_or(&self.input, |u| &u.own_input)
    }

    /// The input payload decoded into `T`.
    pub fn input_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.input)
    }

    /// The attempt number: 1 for the first run of a cycle, 2 for its first retry, …
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// `"{job id}-{cycle}-{attempt}"`: stable for this attempt, also across a crash and restart.
    /// Send it with side effects so a server can drop duplicates.
    pub fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }

    /// Fires when the scheduler asks the run to stop (cancel, time limit, constraint lost,
    /// shutdown). Wind down within the grace period, or the run is dropped.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// True once the run was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Reports how far the run is, as WorkManager's `setProgress` does: each report replaces
    /// the previous one. Observers see the latest through [`RuntimeHandle::subscribe`] and
    /// [`RuntimeHandle::watch`] (a [`JobUpdate`](super::JobUpdate) whose `progress` is set),
    /// [`RuntimeHandle::progress`], and the command line's `show` and `list --json`. Progress is
    /// kept in memory only while the run lasts (never persisted; forgotten when the run ends),
    /// may be dropped under load (a later report replaces it anyway), and a value whose JSON is
    /// larger than the payload cap (`Config::payload_cap`, 10 KiB by default) is dropped with a
    /// warning. A value that cannot be serialized is ignored.
    pub fn set_progress(&self, progress: impl Serialize) {
        if let Ok(value) = serde_json::to_value(progress) {
            self.runtime.send_lossy(Command::Progress {
                id: self.id,
                attempt: self.attempt,
                value,
            });
        }
    }

    /// The runtime, to enqueue follow-up work from inside the run.
    pub fn runtime(&self) -> &RuntimeHandle {
        &self.runtime
    }
}

/// The code that runs jobs of one kind.
///
/// ```
/// use backwork_scheduler::{WorkContext, WorkResult, Worker};
///
/// struct Upload;
///
/// impl Worker for Upload {
///     async fn run(&self, ctx: WorkContext) -> WorkResult {
///         if ctx.attempt() > 3 {
///             return WorkResult::failure_with("server keeps refusing");
///         }
///         WorkResult::success()
///     }
/// }
/// ```
pub trait Worker: Send + Sync + 'static {
    /// Runs one attempt. A panic counts as a failure.
    fn run(&self, ctx: WorkContext) -> impl Future<Output = WorkResult> + Send;
}

/// A worker made from an async closure; see [`worker_fn`].
#[derive(Debug, Clone)]
pub struct FnWorker<F>(F);

/// Makes a worker from a closure returning a future.
///
/// ```
/// use backwork_scheduler::{WorkResult, worker_fn};
///
/// let w = worker_fn(|ctx| async move {
///     println!("running {}", ctx.id());
///     WorkResult::success()
/// });
/// ```
pub fn worker_fn<F, Fut>(f: F) -> FnWorker<F>
where
    F: Fn(WorkContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = WorkResult> + Send + 'static,
{
    FnWorker(f)
}

impl<F, Fut> Worker for FnWorker<F>
where
    F: Fn(WorkContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = WorkResult> + Send + 'static,
{
    fn run(&self, ctx: WorkContext) -> impl Future<Output = WorkResult> + Send {
        (self.0)(ctx)
    }
}

pub(super) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A type-erased worker the runtime can store by kind.
pub(super) trait DynWorker: Send + Sync {
    fn run_boxed(&self, ctx: WorkContext) -> BoxFuture<WorkResult>;
}

pub(super) struct Erased<W>(pub(super) Arc<W>);

impl<W: Worker> DynWorker for Erased<W> {
    fn run_boxed(&self, ctx: WorkContext) -> BoxFuture<WorkResult> {
        let w = Arc::clone(&self.0);
        Box::pin(async move { w.run(ctx).await })
    }
}
