//! Errors the core returns for requests it refuses. A refused request changes nothing.

use std::time::Duration;

use super::job::{JobId, JobState, humanize};
use super::name::NameError;

/// A request the scheduling core refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The input payload is larger than the configured cap.
    #[error(
        "the input payload is {size} bytes, over the cap of {cap} bytes; store large data elsewhere and pass a reference (a path or a key) (a program that embeds backwork may raise `Config::payload_cap`)"
    )]
    PayloadTooLarge {
        /// Serialized size of the payload.
        size: usize,
        /// The cap.
        cap: usize,
    },
    /// The worker kind is empty.
    #[error("the worker kind is empty; name the worker that runs this job")]
    EmptyKind,
    /// A periodic interval below the minimum.
    #[error("the interval {} is shorter than the minimum of {}; use a longer interval", humanize(*every), humanize(*min))]
    IntervalTooShort {
        /// The interval given.
        every: Duration,
        /// The minimum.
        min: Duration,
    },
    /// A duration too long to be meaningful (over 100 years).
    #[error("the {what} of {} is longer than 100 years; use a shorter one", humanize(*value))]
    DurationTooLong {
        /// Which duration.
        what: &'static str,
        /// Its value.
        value: Duration,
    },
    /// An empty tag, or one with white space at either end.
    #[error(
        "the tag {tag:?} is empty or starts or ends with white space; give a word such as `backup`"
    )]
    BadTag {
        /// The tag.
        tag: String,
    },
    /// A zero duration where one is needed.
    #[error("the {what} must be longer than zero; give a positive duration or leave it unset")]
    ZeroDuration {
        /// Which duration.
        what: &'static str,
    },
    /// A flex window longer than the interval.
    #[error("the flex window {} is longer than the interval {}; use a flex of at most the interval", humanize(*flex), humanize(*every))]
    FlexTooLong {
        /// The flex.
        flex: Duration,
        /// The interval.
        every: Duration,
    },
    /// A flex window below the minimum.
    #[error("the flex window {} is shorter than the minimum of {}; use a longer flex or none", humanize(*flex), humanize(*min))]
    FlexTooShort {
        /// The flex.
        flex: Duration,
        /// The minimum.
        min: Duration,
    },
    /// A jitter as long as the time between slots: a run could pass its next slot.
    #[error("the jitter of {} is not shorter than the {} between slots, so a run could be pushed past its next slot; use a jitter below {}", humanize(*jitter), humanize(*period), humanize(*period))]
    JitterTooLong {
        /// The jitter.
        jitter: Duration,
        /// The time between slots.
        period: Duration,
    },
    /// The cron expression does not parse.
    #[error("{0}")]
    InvalidCron(String),
    /// The cron expression never fires after now.
    #[error("the cron expression `{expr}` never fires after now; check its year and date fields")]
    CronNeverFires {
        /// The expression.
        expr: String,
    },
    /// The conflict policy does not apply to the schedule kind.
    #[error("the conflict policy `{policy}` does not apply to {schedule} jobs; use {allowed}")]
    PolicyNotAllowed {
        /// The policy.
        policy: String,
        /// `one-off` or `recurring`.
        schedule: &'static str,
        /// The allowed policies.
        allowed: &'static str,
    },
    /// Jitter outside `[0, 1)`.
    #[error("the backoff jitter {0} is outside [0, 1); use a fraction such as 0.1")]
    InvalidJitter(f64),
    /// A request marked expedited that expedited work cannot be (WorkManager refuses the same:
    /// `PeriodicWorkRequest`s and delayed requests cannot be expedited; JobScheduler's
    /// expedited jobs require at most the network and storage).
    #[error(
        "{0} cannot be expedited: expedited work is a one-off job that starts at once and requires at most the network and storage not low (as WorkManager's setExpedited and JobScheduler's expedited jobs); drop --expedited (or what makes it {0})"
    )]
    NotExpeditable(&'static str),
    /// `max_attempts` of zero.
    #[error("max attempts must be at least 1; leave it unset to retry forever")]
    ZeroMaxAttempts,
    /// An empty unique name.
    #[error("the unique name is empty; give a name or leave it unset")]
    EmptyUniqueName,
    /// A unique name that is too long, holds a control character or looks like a job id.
    #[error(transparent)]
    InvalidUniqueName(#[from] NameError),
    /// The id is already taken.
    #[error("a job with id {0} already exists; generate a fresh id")]
    DuplicateId(JobId),
    /// No job matches.
    #[error("no job matches `{0}`; list jobs with `backwork list`")]
    NoSuchJob(String),
    /// Only a failed or cancelled job can be retried.
    #[error(
        "job {} {}; only a failed or cancelled job can be retried (`backwork run` runs a queued one now)",
        id.short(),
        state_phrase(*state)
    )]
    NotRetriable {
        /// The job.
        id: JobId,
        /// Its state.
        state: JobState,
    },
    /// The job was cancelled and its run is still stopping.
    #[error("job {} is still stopping its last run; try again in a few seconds", .0.short())]
    StillStopping(JobId),
    /// Retrying would give a unique name two live jobs.
    #[error(
        "the name `{name}` belongs to the live job {} now; cancel that one first, or add this one again",
        live.short()
    )]
    NameTaken {
        /// The name.
        name: String,
        /// The live job that has it.
        live: JobId,
    },
    /// A prerequisite of the job failed or was cancelled.
    #[error(
        "job {} waits for {}, which did not succeed; retry that one first",
        id.short(),
        prerequisite.short()
    )]
    PrerequisiteNotDone {
        /// The job.
        id: JobId,
        /// Its prerequisite.
        prerequisite: JobId,
    },
    /// A short-id prefix matches more than one job.
    #[error(
        "the id prefix `{prefix}` matches {count} jobs ({}); type more of the id",
        candidates.iter().map(|(id, name)| match name {
            Some(n) => format!("{} {n}", id.short()),
            None => id.short(),
        }).collect::<Vec<_>>().join(", ")
    )]
    AmbiguousPrefix {
        /// The prefix given.
        prefix: String,
        /// How many jobs match.
        count: usize,
        /// The first of them (at most eight), with their unique names.
        candidates: Vec<(JobId, Option<String>)>,
    },
    /// The job is already finished.
    #[error("job {id} has already finished ({state}); there is nothing to {action}")]
    AlreadyFinished {
        /// The job.
        id: JobId,
        /// Its state.
        state: JobState,
        /// What was asked.
        action: &'static str,
    },
    /// The job waits for prerequisites and cannot be run now.
    #[error(
        "job {0} is blocked on prerequisites that have not succeeded; run or cancel those first"
    )]
    Blocked(JobId),
    /// The policy rejected the request.
    #[error("the scheduling policy rejected the request: {0}")]
    Rejected(String),
    /// A chain with no link.
    #[error("the chain has no link; give it at least one job")]
    EmptyChain,
    /// The driver gave a chain a different number of ids than it has links (a driver bug).
    #[error("the chain has {links} links but {ids} ids were given; give one id per link")]
    ChainIds {
        /// Ids given.
        ids: usize,
        /// Links in the chain.
        links: usize,
    },
    /// A link of a chain of several links has a unique name of its own. (Links are counted
    /// from 0 in the fields of these errors and from 1 in their messages.)
    #[error(
        "link {} of the chain has a unique name of its own; name the whole chain instead (every link then carries the name)",
        link + 1
    )]
    NamedLink {
        /// The link's index.
        link: usize,
    },
    /// A link of a chain is periodic or cron (WorkManager chains only one-off work).
    #[error(
        "link {} of the chain is recurring; only one-off jobs can be chained (a periodic job never finishes, so nothing could run after it)",
        link + 1
    )]
    RecurringLink {
        /// The link's index.
        link: usize,
    },
    /// A link waits for itself or for a later link.
    #[error(
        "link {} of the chain waits for link {}, which is not an earlier link; list each link after the links it waits for",
        link + 1,
        after + 1
    )]
    LinkOrder {
        /// The link's index.
        link: usize,
        /// The index it names.
        after: usize,
    },
    /// A prerequisite named by id is not held (never was, or was pruned).
    #[error(
        "the prerequisite {} is not queued (it never was, or it finished and was pruned); name a job `backwork list --all` shows",
        .0.short()
    )]
    NoSuchPrerequisite(JobId),
    /// A prerequisite is a recurring job, which never succeeds for good.
    #[error(
        "the prerequisite {} is a recurring job, which never finishes; a job can only run after one-off jobs",
        .0.short()
    )]
    RecurringPrerequisite(JobId),
    /// `Load` was sent to a core that already holds jobs.
    #[error("the core already holds jobs; load a store only into a fresh core")]
    AlreadyLoaded,
}

/// `is running`, `has succeeded`: a state after "job X".
fn state_phrase(state: JobState) -> String {
    match state {
        JobState::Succeeded => "has succeeded".into(),
        other => format!("is {other}"),
    }
}
