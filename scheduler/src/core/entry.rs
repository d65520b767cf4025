//! The core's compact per-job entry: what its decisions need, and nothing a person reads only.
//!
//! A [`Job`] is the whole view of a job — its request with the input payload, its last output,
//! its recent run history. The core decides with far less, and it holds one entry per job for
//! as long as the job is kept (a million pending jobs are a million entries), so it keeps an
//! [`Entry`]: the scheduling fields of a job, its request **without** the input payload, shared
//! ([`Arc`]) between consecutive jobs with equal requests, and its rarely set parts boxed.
//! Payloads and history live in the core's side tables (only for the jobs that have them); a
//! [`Job`] is built from an entry and those tables when someone asks for one
//! ([`Scheduler::job`](super::Scheduler::job)).

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

use super::job::{Force, Job, JobId, JobRequest, JobState, RunRecord, StopReason, Time};
use super::lanes::LanePos;

/// One job as the core keeps it. The field names are those of [`Job`], so that a decision reads
/// the same on either.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// Identity.
    pub id: JobId,
    /// The request, its input taken out (always `Value::Null` here).
    pub request: Arc<JobRequest>,
    /// Current state.
    pub state: JobState,
    /// True when `not_before` is a backoff delay rather than the schedule.
    pub backing_off: bool,
    /// Pending overrides ("run now").
    pub force: Force,
    /// Attempts charged in the current cycle.
    pub attempt: u32,
    /// When it was first enqueued.
    pub enqueued_at: Time,
    /// Earliest start for the current cycle.
    pub not_before: Time,
    /// Recurring jobs: end of the current slot's window.
    pub window_end: Option<Time>,
    /// Start of the last run.
    pub last_started: Option<Time>,
    /// End of the last run.
    pub last_finished: Option<Time>,
    /// Start of the last successful run.
    pub last_success_started: Option<Time>,
    /// When it reached a finished state.
    pub finished_at: Option<Time>,
    /// How many runs it has had in all.
    pub runs_total: u64,
    /// How many cycles have ended.
    pub cycle: u64,
    /// Jobs that must succeed before this one may run (at most one from an enqueue).
    pub prerequisites: Box<[JobId]>,
    /// Why the last run was stopped or the job ended, if it was (boxed: most jobs have none).
    pub stop_reason: Option<Box<StopReason>>,
    /// Where it waits to be dispatched, if it is filed (the lanes' record, kept here: see
    /// [`lanes`](super::lanes)).
    pub lane: Option<LanePos>,
}

impl Entry {
    /// What a policy's hooks see of this job.
    pub fn policy_view(&self) -> super::PolicyJob<'_> {
        super::PolicyJob {
            id: self.id,
            request: &self.request,
            attempt: self.attempt,
            expedited: false,
        }
    }

    /// The entry of `job` (its payloads and history are the caller's to keep), sharing `request`
    /// when it equals the job's request without its input.
    pub fn from_job(job: Job, last: &mut Option<Arc<JobRequest>>) -> (Entry, Payloads) {
        let Job {
            id,
            mut request,
            state,
            enqueued_at,
            attempt,
            not_before,
            backing_off,
            window_end,
            last_started,
            last_finished,
            last_success_started,
            runs_total,
            cycle,
            prerequisites,
            stop_reason,
            output,
            finished_at,
            history,
            force,
        } = job;
        let input = std::mem::take(&mut request.input);
        let entry = Entry {
            id,
            request: share(request, last),
            state,
            backing_off,
            force,
            attempt,
            enqueued_at,
            not_before,
            window_end,
            last_started,
            last_finished,
            last_success_started,
            finished_at,
            runs_total,
            cycle,
            prerequisites: prerequisites.into_boxed_slice(),
            stop_reason: stop_reason.map(Box::new),
            lane: None,
        };
        (
            entry,
            Payloads {
                input,
                output,
                history,
            },
        )
    }

    /// The whole job: this entry with `payloads`.
    pub fn to_job(&self, payloads: Payloads) -> Job {
        let mut request = JobRequest::clone(&self.request);
        request.input = payloads.input;
        Job {
            id: self.id,
            request,
            state: self.state,
            enqueued_at: self.enqueued_at,
            attempt: self.attempt,
            not_before: self.not_before,
            backing_off: self.backing_off,
            window_end: self.window_end,
            last_started: self.last_started,
            last_finished: self.last_finished,
            last_success_started: self.last_success_started,
            runs_total: self.runs_total,
            cycle: self.cycle,
            prerequisites: self.prerequisites.to_vec(),
            stop_reason: self.stop_reason.as_deref().cloned(),
            output: payloads.output,
            finished_at: self.finished_at,
            history: payloads.history,
            force: self.force,
        }
    }

    /// The unique name, if any.
    pub fn unique_name(&self) -> Option<&str> {
        self.request.unique.as_ref().map(|u| u.name.as_str())
    }

    /// Sets (or clears) the stop reason.
    pub fn set_stop_reason(&mut self, reason: Option<StopReason>) {
        self.stop_reason = reason.map(Box::new);
    }
}

/// What a job has besides its scheduling fields: the input payload (`Null`: none), the last
/// output, the recent runs. A store keeps them apart from the job's record and gives them back
/// by id ([`Store::payloads`](crate::Store::payloads)); a core without a store keeps them itself
/// ([`Scheduler::payloads`](super::Scheduler::payloads)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Payloads {
    /// The input payload.
    pub input: Value,
    /// Output of the last run.
    pub output: Option<Value>,
    /// Recent runs, oldest first.
    pub history: Vec<RunRecord>,
}

/// `request` as an [`Arc`]: the one in `last` when they are equal (consecutive jobs of a bulk
/// enqueue, or of a load, usually are), else a new one, which becomes `last`.
pub(crate) fn share(request: JobRequest, last: &mut Option<Arc<JobRequest>>) -> Arc<JobRequest> {
    match last {
        Some(shared) if **shared == request => Arc::clone(shared),
        _ => {
            let shared = Arc::new(request);
            *last = Some(Arc::clone(&shared));
            shared
        }
    }
}

/// `"{id}-{cycle}-{attempt}"`, the id encoded straight into the key (formatting it through
/// `Display` was a good share of a simulated run's cost).
pub(crate) fn idempotency_key(id: JobId, cycle: u64, attempt: u32) -> String {
    let mut buf = Uuid::encode_buffer();
    let id = id.0.hyphenated().encode_lower(&mut buf);
    let mut key = String::with_capacity(id.len() + 16);
    key.push_str(id);
    let _ = write!(key, "-{cycle}-{attempt}");
    key
}

/// The run numbers of a history of `len` records, oldest first: the last is the latest run that
/// ended, numbered `runs_total` (less one while a newer run is under way), and the ones before
/// it count down by one; never below 1 (see [`Job::history_numbers`]).
pub(crate) fn history_numbers(
    len: usize,
    running: bool,
    runs_total: u64,
) -> impl DoubleEndedIterator<Item = u64> + use<> {
    let len = len as u64;
    let last = runs_total.saturating_sub(u64::from(running)).max(len);
    (0..len).map(move |i| last - (len - 1 - i))
}
