//! The one mapping between the core's [`Job`] and what the store writes: the job record
//! (scheduling fields, postcard), the run record (postcard) and the payloads (JSON). Reads,
//! commits, migrations and the record fuzz target all go through here. See the
//! [layout](crate::layout) for the byte-level description.
//!
//! The record types mirror the core's types field by field but are owned here: a change to a
//! core type does not silently change the disk format (the compiler points here instead), and
//! the core's serde attributes (made for JSON) play no part. Each enum is encoded by its
//! variant index (postcard's varint); a variant this binary does not know — written by a newer
//! one — decodes to a [`RecordError`], never a panic.

use std::collections::BTreeSet;
use std::time::Duration;

use backwork_scheduler::{
    Anchor, Backoff, BackoffKind, CatchUp, ConflictPolicy, Constraint, Constraints, Force,
    InputMerger, Jitter, Job, JobId, JobRequest, JobState, NetworkRequirement, OutOfQuotaPolicy,
    PolicyStop, RunRecord, RunResult, Schedule, StopReason, Time, Unique,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The format version of the job records this binary writes: the record's first byte.
/// Format 2 added the schedule variant `PeriodicDelayed` (an initial delay and an anchor that
/// may be left to the profile); format 3 added, at the end, the input merger and whether the
/// job is expedited ([`Format3`]); format 4 added, at the end, a small input kept inside the
/// record ([`Format4`]). Formats 1 to 3 are read too.
pub const JOB_FORMAT: u8 = 4;

/// The longest input, as JSON text in bytes, that a job record keeps inside itself (format 4)
/// instead of in the `payloads` table: an enqueue then writes one row of one table, not two
/// (a commit dirties one B-tree's pages instead of two: about a quarter fewer bytes written per
/// enqueue). Larger inputs stay in `payloads`, so loading every record at start stays cheap.
pub const INLINE_INPUT_MAX: usize = 256;

/// True when an input whose JSON text is `json` is kept inside the job record
/// ([`INLINE_INPUT_MAX`]): the one rule every writer follows.
pub fn input_goes_inline(json: &[u8]) -> bool {
    json.len() <= INLINE_INPUT_MAX
}
/// The format version of the run records this binary writes: the record's first byte.
pub const RUN_FORMAT: u8 = 1;

/// A record that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The record is empty (not even its format byte).
    #[error("the record is empty")]
    Empty,
    /// The record's format is newer than this binary reads.
    #[error("its format version {0} is newer than this backwork reads (upgrade backwork)")]
    NewerFormat(u8),
    /// The bytes do not decode as the record's format.
    #[error("its bytes do not decode: {0}")]
    Bytes(String),
    /// The bytes decode but hold a value the core cannot have.
    #[error("it holds {0}")]
    Value(String),
    /// A value could not be encoded (a bug: every value the core holds has an encoding).
    #[error("it cannot be encoded: {0}")]
    Encode(String),
}

impl From<postcard::Error> for RecordError {
    fn from(e: postcard::Error) -> Self {
        RecordError::Bytes(e.to_string())
    }
}

/// An instant: whole seconds since the Unix epoch and nanoseconds (lossless for every `Time`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct At(i64, u32);

impl At {
    fn of(t: Time) -> At {
        At(t.timestamp(), t.timestamp_subsec_nanos())
    }

    fn time(self) -> Result<Time, RecordError> {
        chrono::DateTime::from_timestamp(self.0, self.1)
            .ok_or_else(|| RecordError::Value(format!("an instant out of range ({}s)", self.0)))
    }
}

/// A decoded duration, within what the JSON records of schemas 1 and 2 could hold (`u64`
/// milliseconds): the bound the core's recovery is fuzzed against.
fn dur(d: Duration) -> Result<Duration, RecordError> {
    if d.as_millis() > u128::from(u64::MAX) {
        return Err(RecordError::Value(format!(
            "a duration of {}s, too long",
            d.as_secs()
        )));
    }
    Ok(d)
}

fn dur_opt(d: Option<Duration>) -> Result<Option<Duration>, RecordError> {
    d.map(dur).transpose()
}

fn at_opt(t: Option<Time>) -> Option<At> {
    t.map(At::of)
}

fn time_opt(a: Option<At>) -> Result<Option<Time>, RecordError> {
    a.map(At::time).transpose()
}

#[derive(Debug, Serialize, Deserialize)]
enum ScheduleRec<'a> {
    Once {
        delay: Duration,
        not_before: Option<At>,
    },
    Periodic {
        every: Duration,
        flex: Option<Duration>,
        anchor: AnchorRec,
    },
    Cron {
        expr: &'a str,
        tz: &'a str,
    },
    /// Format 2: every periodic schedule is written so (`Periodic` is read from format 1).
    PeriodicDelayed {
        every: Duration,
        flex: Option<Duration>,
        anchor: Option<AnchorRec>,
        initial_delay: Duration,
    },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum AnchorRec {
    Grid,
    AfterRun,
}

impl From<AnchorRec> for Anchor {
    fn from(a: AnchorRec) -> Anchor {
        match a {
            AnchorRec::Grid => Anchor::Grid,
            AnchorRec::AfterRun => Anchor::AfterRun,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum NetworkRec {
    Connected,
    Unmetered,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct ConstraintsRec {
    network: Option<NetworkRec>,
    charging: bool,
    battery_not_low: bool,
    storage_not_low: bool,
    device_idle: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum ConstraintRec {
    Network(NetworkRec),
    Charging,
    BatteryNotLow,
    StorageNotLow,
    DeviceIdle,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum BackoffKindRec {
    Exponential,
    Linear,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct BackoffRec {
    kind: BackoffKindRec,
    base: Duration,
    jitter: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum PolicyRec {
    Keep,
    Replace,
    Update,
    Append,
    AppendOrReplace,
    CancelAndReenqueue,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum CatchUpRec {
    One,
    Skip,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct JitterRec {
    max: Duration,
    fixed: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum StateRec {
    Enqueued,
    Blocked,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

#[derive(Debug, Serialize, Deserialize)]
enum StopRec<'a> {
    Cancelled,
    Timeout,
    ConstraintLost(ConstraintRec),
    Shutdown,
    Unknown,
    /// Written before policy stops had codes: read as code `policy`.
    Policy(&'a str),
    /// Written before policy stops had codes: read as code `expired`.
    Expired(&'a str),
    PrerequisiteFailed([u8; 16]),
    /// A policy's stop: its code and sentence.
    PolicyCoded(&'a str, &'a str),
    /// A policy's stop that used up the request: its code and sentence.
    ExpiredCoded(&'a str, &'a str),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum ResultRec {
    Success,
    Retry,
    Failure,
    Stopped,
    Crashed,
}

/// The job record, format 1: a job's scheduling fields, in this order (see the layout).
#[derive(Debug, Serialize, Deserialize)]
struct JobRec<'a> {
    kind: &'a str,
    #[serde(borrow)]
    schedule: ScheduleRec<'a>,
    constraints: ConstraintsRec,
    min_interval: Option<Duration>,
    backoff: BackoffRec,
    max_attempts: Option<u32>,
    timeout: Option<Duration>,
    unique: Option<(&'a str, PolicyRec)>,
    #[serde(borrow)]
    tags: Vec<&'a str>,
    catch_up: CatchUpRec,
    accurate: bool,
    jitter: Option<JitterRec>,
    state: StateRec,
    enqueued_at: At,
    attempt: u32,
    not_before: At,
    backing_off: bool,
    window_end: Option<At>,
    last_started: Option<At>,
    last_finished: Option<At>,
    last_success_started: Option<At>,
    runs_total: u64,
    cycle: u64,
    prerequisites: Vec<[u8; 16]>,
    #[serde(borrow)]
    stop_reason: Option<StopRec<'a>>,
    finished_at: Option<At>,
    force: (bool, bool),
}

/// The fields format 3 added after the last field of format 2 (see the layout): postcard
/// encodes a struct as its fields in order, so this is read right after a [`JobRec`].
#[derive(Debug, Default, Serialize, Deserialize)]
struct Format3 {
    /// How a chained job's input is merged from its prerequisites' outputs.
    input_merger: MergerRec,
    /// The request's out-of-quota policy when it is expedited.
    expedited: Option<ExpeditedRec>,
}

/// The field format 4 added after the last field of format 3 (see the layout).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Format4<'a> {
    /// The job's input as JSON text, when it is small enough to live in the record
    /// ([`INLINE_INPUT_MAX`]); none: the input is null or in `payloads`.
    #[serde(borrow)]
    input: Option<&'a [u8]>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
enum MergerRec {
    #[default]
    Overwriting,
    ArrayCreating,
}

/// An expedited request's out-of-quota policy.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum ExpeditedRec {
    RunAsNonExpedited,
    Drop,
}

/// The run record, format 1 (see the layout).
#[derive(Debug, Serialize, Deserialize)]
struct RunRec<'a> {
    attempt: u32,
    started: At,
    finished: At,
    result: ResultRec,
    #[serde(borrow)]
    output: Option<&'a [u8]>,
    #[serde(borrow)]
    stop_reason: Option<StopRec<'a>>,
    note: Option<&'a str>,
}

fn network_rec(n: NetworkRequirement) -> NetworkRec {
    match n {
        NetworkRequirement::Connected => NetworkRec::Connected,
        NetworkRequirement::Unmetered => NetworkRec::Unmetered,
    }
}

fn network(n: NetworkRec) -> NetworkRequirement {
    match n {
        NetworkRec::Connected => NetworkRequirement::Connected,
        NetworkRec::Unmetered => NetworkRequirement::Unmetered,
    }
}

fn constraint_rec(c: Constraint) -> ConstraintRec {
    match c {
        Constraint::Network(n) => ConstraintRec::Network(network_rec(n)),
        Constraint::Charging => ConstraintRec::Charging,
        Constraint::BatteryNotLow => ConstraintRec::BatteryNotLow,
        Constraint::StorageNotLow => ConstraintRec::StorageNotLow,
        Constraint::DeviceIdle => ConstraintRec::DeviceIdle,
    }
}

fn constraint(c: ConstraintRec) -> Constraint {
    match c {
        ConstraintRec::Network(n) => Constraint::Network(network(n)),
        ConstraintRec::Charging => Constraint::Charging,
        ConstraintRec::BatteryNotLow => Constraint::BatteryNotLow,
        ConstraintRec::StorageNotLow => Constraint::StorageNotLow,
        ConstraintRec::DeviceIdle => Constraint::DeviceIdle,
    }
}

fn stop_rec(s: &StopReason) -> StopRec<'_> {
    match s {
        StopReason::Cancelled => StopRec::Cancelled,
        StopReason::Timeout => StopRec::Timeout,
        StopReason::ConstraintLost(c) => StopRec::ConstraintLost(constraint_rec(*c)),
        StopReason::Shutdown => StopRec::Shutdown,
        StopReason::Unknown => StopRec::Unknown,
        StopReason::Policy(r) => StopRec::PolicyCoded(&r.code, &r.message),
        StopReason::Expired(r) => StopRec::ExpiredCoded(&r.code, &r.message),
        StopReason::PrerequisiteFailed(id) => {
            StopRec::PrerequisiteFailed(id.as_u128().to_be_bytes())
        }
    }
}

fn stop(s: StopRec<'_>) -> StopReason {
    match s {
        StopRec::Cancelled => StopReason::Cancelled,
        StopRec::Timeout => StopReason::Timeout,
        StopRec::ConstraintLost(c) => StopReason::ConstraintLost(constraint(c)),
        StopRec::Shutdown => StopReason::Shutdown,
        StopRec::Unknown => StopReason::Unknown,
        StopRec::Policy(r) => StopReason::Policy(PolicyStop::new("policy", r.to_string())),
        StopRec::Expired(r) => StopReason::Expired(PolicyStop::new("expired", r.to_string())),
        StopRec::PolicyCoded(code, r) => {
            StopReason::Policy(PolicyStop::new(code.to_string(), r.to_string()))
        }
        StopRec::ExpiredCoded(code, r) => {
            StopReason::Expired(PolicyStop::new(code.to_string(), r.to_string()))
        }
        StopRec::PrerequisiteFailed(id) => {
            StopReason::PrerequisiteFailed(JobId::from_u128(u128::from_be_bytes(id)))
        }
    }
}

fn state_rec(s: JobState) -> StateRec {
    match s {
        JobState::Enqueued => StateRec::Enqueued,
        JobState::Blocked => StateRec::Blocked,
        JobState::Running => StateRec::Running,
        JobState::Succeeded => StateRec::Succeeded,
        JobState::Failed => StateRec::Failed,
        JobState::Cancelled => StateRec::Cancelled,
    }
}

fn state(s: StateRec) -> JobState {
    match s {
        StateRec::Enqueued => JobState::Enqueued,
        StateRec::Blocked => JobState::Blocked,
        StateRec::Running => JobState::Running,
        StateRec::Succeeded => JobState::Succeeded,
        StateRec::Failed => JobState::Failed,
        StateRec::Cancelled => JobState::Cancelled,
    }
}

fn policy_rec(p: ConflictPolicy) -> PolicyRec {
    match p {
        ConflictPolicy::Keep => PolicyRec::Keep,
        ConflictPolicy::Replace => PolicyRec::Replace,
        ConflictPolicy::Update => PolicyRec::Update,
        ConflictPolicy::Append => PolicyRec::Append,
        ConflictPolicy::AppendOrReplace => PolicyRec::AppendOrReplace,
        ConflictPolicy::CancelAndReenqueue => PolicyRec::CancelAndReenqueue,
    }
}

fn policy(p: PolicyRec) -> ConflictPolicy {
    match p {
        PolicyRec::Keep => ConflictPolicy::Keep,
        PolicyRec::Replace => ConflictPolicy::Replace,
        PolicyRec::Update => ConflictPolicy::Update,
        PolicyRec::Append => ConflictPolicy::Append,
        PolicyRec::AppendOrReplace => ConflictPolicy::AppendOrReplace,
        PolicyRec::CancelAndReenqueue => ConflictPolicy::CancelAndReenqueue,
    }
}

fn result_rec(r: RunResult) -> ResultRec {
    match r {
        RunResult::Success => ResultRec::Success,
        RunResult::Retry => ResultRec::Retry,
        RunResult::Failure => ResultRec::Failure,
        RunResult::Stopped => ResultRec::Stopped,
        RunResult::Crashed => ResultRec::Crashed,
    }
}

fn result(r: ResultRec) -> RunResult {
    match r {
        ResultRec::Success => RunResult::Success,
        ResultRec::Retry => RunResult::Retry,
        ResultRec::Failure => RunResult::Failure,
        ResultRec::Stopped => RunResult::Stopped,
        ResultRec::Crashed => RunResult::Crashed,
    }
}

fn job_rec(job: &Job) -> JobRec<'_> {
    let r = &job.request;
    let c = &r.constraints;
    JobRec {
        kind: &r.kind,
        schedule: match &r.schedule {
            Schedule::Once { delay, not_before } => ScheduleRec::Once {
                delay: *delay,
                not_before: at_opt(*not_before),
            },
            Schedule::Periodic {
                every,
                flex,
                anchor,
                initial_delay,
            } => ScheduleRec::PeriodicDelayed {
                every: *every,
                flex: *flex,
                anchor: anchor.map(|a| match a {
                    Anchor::Grid => AnchorRec::Grid,
                    Anchor::AfterRun => AnchorRec::AfterRun,
                }),
                initial_delay: *initial_delay,
            },
            Schedule::Cron { expr, tz } => ScheduleRec::Cron {
                expr,
                tz: tz.name(),
            },
        },
        constraints: ConstraintsRec {
            network: c.network.map(network_rec),
            charging: c.charging,
            battery_not_low: c.battery_not_low,
            storage_not_low: c.storage_not_low,
            device_idle: c.device_idle,
        },
        min_interval: r.min_interval,
        backoff: BackoffRec {
            kind: match r.backoff.kind {
                BackoffKind::Exponential => BackoffKindRec::Exponential,
                BackoffKind::Linear => BackoffKindRec::Linear,
            },
            base: r.backoff.base,
            jitter: r.backoff.jitter,
        },
        max_attempts: r.max_attempts,
        timeout: r.timeout,
        unique: r
            .unique
            .as_ref()
            .map(|u| (u.name.as_str(), policy_rec(u.policy))),
        tags: r.tags.iter().map(String::as_str).collect(),
        catch_up: match r.catch_up {
            CatchUp::One => CatchUpRec::One,
            CatchUp::Skip => CatchUpRec::Skip,
        },
        accurate: r.accurate,
        jitter: r.jitter.map(|j| JitterRec {
            max: j.max,
            fixed: j.fixed,
        }),
        state: state_rec(job.state),
        enqueued_at: At::of(job.enqueued_at),
        attempt: job.attempt,
        not_before: At::of(job.not_before),
        backing_off: job.backing_off,
        window_end: at_opt(job.window_end),
        last_started: at_opt(job.last_started),
        last_finished: at_opt(job.last_finished),
        last_success_started: at_opt(job.last_success_started),
        runs_total: job.runs_total,
        cycle: job.cycle,
        prerequisites: job
            .prerequisites
            .iter()
            .map(|p| p.as_u128().to_be_bytes())
            .collect(),
        stop_reason: job.stop_reason.as_ref().map(stop_rec),
        finished_at: at_opt(job.finished_at),
        force: (job.force.time, job.force.constraints),
    }
}

/// Appends the job record of `job` (its scheduling fields: not its input, output or history)
/// to `out`: the format byte, then the postcard encoding; `inline` is the JSON text of the
/// job's input when the record keeps it ([`input_goes_inline`]), `None` when the input is null
/// or kept in `payloads`.
pub fn encode_job(job: &Job, inline: Option<&[u8]>, out: &mut Vec<u8>) -> Result<(), RecordError> {
    out.push(JOB_FORMAT);
    *out = postcard::to_extend(&job_rec(job), std::mem::take(out))
        .map_err(|e| RecordError::Encode(e.to_string()))?;
    let tail = Format3 {
        input_merger: match job.request.input_merger {
            InputMerger::Overwriting => MergerRec::Overwriting,
            InputMerger::ArrayCreating => MergerRec::ArrayCreating,
        },
        expedited: job.request.expedited.map(|p| match p {
            OutOfQuotaPolicy::RunAsNonExpedited => ExpeditedRec::RunAsNonExpedited,
            OutOfQuotaPolicy::Drop => ExpeditedRec::Drop,
        }),
    };
    *out = postcard::to_extend(&tail, std::mem::take(out))
        .map_err(|e| RecordError::Encode(e.to_string()))?;
    *out = postcard::to_extend(&Format4 { input: inline }, std::mem::take(out))
        .map_err(|e| RecordError::Encode(e.to_string()))?;
    Ok(())
}

/// The fields of a job record of any format this binary reads, the later formats' defaults
/// filled in for an older record.
fn parts(bytes: &[u8]) -> Result<(JobRec<'_>, Format3, Format4<'_>), RecordError> {
    // format 1 differs from 2 only by a schedule variant it never uses: one decoder reads both;
    // format 3 has the fields of `Format3` after them, format 4 those of `Format4` after those
    let format = bytes.first().copied().unwrap_or(0);
    let body = body(bytes, JOB_FORMAT, 1)?;
    if format < 3 {
        return Ok((whole(body)?, Format3::default(), Format4::default()));
    }
    let (r, rest) = postcard::take_from_bytes(body)?;
    if format == 3 {
        return Ok((r, whole(rest)?, Format4::default()));
    }
    let (tail, rest) = postcard::take_from_bytes(rest)?;
    Ok((r, tail, whole(rest)?))
}

/// The JSON text of the input a job record keeps inside itself (format 4), if it keeps one;
/// `None` for an older record, or an input that is null or kept in `payloads`.
pub fn inline_input(bytes: &[u8]) -> Result<Option<&[u8]>, RecordError> {
    parts(bytes).map(|(_, _, f4)| f4.input)
}

/// False when the record certainly keeps no input inside itself, told without decoding it (a
/// commit asks for every job it rewrites): a record older than format 4, or a format 4 record
/// whose last byte is `0` — field 30 when it is none. A record that keeps a valid input ends
/// with the last byte of a JSON text instead, never `0` (JSON escapes every control
/// character). True: ask [`inline_input`].
pub fn may_keep_input(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|&f| f >= 4) && bytes.last() != Some(&0)
}

/// The body of a record after its format byte, if the format is between `oldest` and `known`.
fn body(bytes: &[u8], known: u8, oldest: u8) -> Result<&[u8], RecordError> {
    match bytes.split_first() {
        None => Err(RecordError::Empty),
        Some((&v, rest)) if (oldest..=known).contains(&v) => Ok(rest),
        Some((&v, _)) if v > known => Err(RecordError::NewerFormat(v)),
        Some((&v, _)) => Err(RecordError::Bytes(format!("unknown format version {v}"))),
    }
}

/// Decodes a whole postcard value: trailing bytes are an error too.
fn whole<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, RecordError> {
    let (v, rest) = postcard::take_from_bytes(bytes)?;
    if !rest.is_empty() {
        return Err(RecordError::Bytes(format!(
            "{} bytes after the end of the record",
            rest.len()
        )));
    }
    Ok(v)
}

/// Decodes the job record of job `id`: a [`Job`] with a null input, no output and no history
/// (the store fills them: the input from [`inline_input`] or `payloads`, the rest from their
/// own tables).
pub fn decode_job(id: JobId, bytes: &[u8]) -> Result<Job, RecordError> {
    let (r, tail, _) = parts(bytes)?;
    let schedule = match r.schedule {
        ScheduleRec::Once { delay, not_before } => Schedule::Once {
            delay: dur(delay)?,
            not_before: time_opt(not_before)?,
        },
        ScheduleRec::Periodic {
            every,
            flex,
            anchor,
        } => Schedule::Periodic {
            every: dur(every)?,
            flex: dur_opt(flex)?,
            anchor: Some(anchor.into()),
            initial_delay: Duration::ZERO,
        },
        ScheduleRec::PeriodicDelayed {
            every,
            flex,
            anchor,
            initial_delay,
        } => Schedule::Periodic {
            every: dur(every)?,
            flex: dur_opt(flex)?,
            anchor: anchor.map(Anchor::from),
            initial_delay: dur(initial_delay)?,
        },
        ScheduleRec::Cron { expr, tz } => Schedule::Cron {
            expr: expr.to_string(),
            tz: tz
                .parse()
                .map_err(|_| RecordError::Value(format!("an unknown time zone {tz:?}")))?,
        },
    };
    let request = JobRequest {
        kind: r.kind.to_string(),
        input: Value::Null,
        schedule,
        constraints: Constraints {
            network: r.constraints.network.map(network),
            charging: r.constraints.charging,
            battery_not_low: r.constraints.battery_not_low,
            storage_not_low: r.constraints.storage_not_low,
            device_idle: r.constraints.device_idle,
        },
        min_interval: dur_opt(r.min_interval)?,
        backoff: Backoff {
            kind: match r.backoff.kind {
                BackoffKindRec::Exponential => BackoffKind::Exponential,
                BackoffKindRec::Linear => BackoffKind::Linear,
            },
            base: dur(r.backoff.base)?,
            jitter: if r.backoff.jitter.is_finite() {
                r.backoff.jitter
            } else {
                return Err(RecordError::Value(format!(
                    "a backoff jitter of {}",
                    r.backoff.jitter
                )));
            },
        },
        max_attempts: r.max_attempts,
        timeout: dur_opt(r.timeout)?,
        unique: r.unique.map(|(name, p)| Unique {
            name: name.to_string(),
            policy: policy(p),
        }),
        tags: r
            .tags
            .into_iter()
            .map(str::to_string)
            .collect::<BTreeSet<_>>(),
        catch_up: match r.catch_up {
            CatchUpRec::One => CatchUp::One,
            CatchUpRec::Skip => CatchUp::Skip,
        },
        accurate: r.accurate,
        jitter: match r.jitter {
            Some(j) => Some(Jitter {
                max: dur(j.max)?,
                fixed: j.fixed,
            }),
            None => None,
        },
        input_merger: match tail.input_merger {
            MergerRec::Overwriting => InputMerger::Overwriting,
            MergerRec::ArrayCreating => InputMerger::ArrayCreating,
        },
        expedited: tail.expedited.map(|e| match e {
            ExpeditedRec::RunAsNonExpedited => OutOfQuotaPolicy::RunAsNonExpedited,
            ExpeditedRec::Drop => OutOfQuotaPolicy::Drop,
        }),
    };
    Ok(Job {
        id,
        request,
        state: state(r.state),
        enqueued_at: r.enqueued_at.time()?,
        attempt: r.attempt,
        not_before: r.not_before.time()?,
        backing_off: r.backing_off,
        window_end: time_opt(r.window_end)?,
        last_started: time_opt(r.last_started)?,
        last_finished: time_opt(r.last_finished)?,
        last_success_started: time_opt(r.last_success_started)?,
        runs_total: r.runs_total,
        cycle: r.cycle,
        prerequisites: r
            .prerequisites
            .into_iter()
            .map(|p| JobId::from_u128(u128::from_be_bytes(p)))
            .collect(),
        stop_reason: r.stop_reason.map(stop),
        output: None,
        finished_at: time_opt(r.finished_at)?,
        history: Vec::new(),
        force: Force {
            time: r.force.0,
            constraints: r.force.1,
        },
    })
}

/// Appends the run record of `run` to `out`: the format byte, then the postcard encoding (its
/// output as JSON bytes).
pub fn encode_run(run: &RunRecord, out: &mut Vec<u8>) -> Result<(), RecordError> {
    out.push(RUN_FORMAT);
    let output = match &run.output {
        Some(v) => {
            let mut json = Vec::new();
            encode_payload(v, &mut json)?;
            Some(json)
        }
        None => None,
    };
    let rec = RunRec {
        attempt: run.attempt,
        started: At::of(run.started),
        finished: At::of(run.finished),
        result: result_rec(run.result),
        output: output.as_deref(),
        stop_reason: run.stop_reason.as_ref().map(stop_rec),
        note: run.note.as_deref(),
    };
    *out = postcard::to_extend(&rec, std::mem::take(out))
        .map_err(|e| RecordError::Encode(e.to_string()))?;
    Ok(())
}

/// Decodes a run record.
pub fn decode_run(bytes: &[u8]) -> Result<RunRecord, RecordError> {
    let r: RunRec<'_> = whole(body(bytes, RUN_FORMAT, RUN_FORMAT)?)?;
    Ok(RunRecord {
        attempt: r.attempt,
        started: r.started.time()?,
        finished: r.finished.time()?,
        result: result(r.result),
        output: r.output.map(decode_payload).transpose()?,
        stop_reason: r.stop_reason.map(stop),
        note: r.note.map(str::to_string),
    })
}

/// Appends a payload (an input or an output) as stored: its JSON text.
pub fn encode_payload(v: &Value, out: &mut Vec<u8>) -> Result<(), RecordError> {
    serde_json::to_writer(out, v).map_err(|e| RecordError::Encode(e.to_string()))
}

/// A stored payload.
pub fn decode_payload(bytes: &[u8]) -> Result<Value, RecordError> {
    serde_json::from_slice(bytes).map_err(|e| RecordError::Bytes(format!("a payload: {e}")))
}

/// The JSON record of schemas 1 and 2 (the core's `Job` as JSON, history and payloads
/// included). Kept for the migration only: nothing writes it any more.
pub fn decode_legacy(bytes: &[u8]) -> Result<Job, RecordError> {
    serde_json::from_slice(bytes).map_err(|e| RecordError::Bytes(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use backwork_scheduler::{AllowAll, Event, Scheduler};

    /// The job the core admits for `request` (so the record holds what a store would get).
    fn admitted(request: JobRequest) -> Job {
        let mut core = Scheduler::new(Default::default(), Box::new(AllowAll));
        let now = "2026-11-30T12:00:00Z".parse().unwrap();
        let id = JobId::from_u128(7);
        core.handle(now, Event::Enqueue { id, request }).unwrap();
        core.jobs().next().unwrap().clone()
    }

    /// A format 1 record (written before initial delays existed) holds schedule variant 1; it
    /// reads as a periodic job with its anchor named and no delay.
    /// A run stopped by a policy keeps the policy's code; one written before stops had codes
    /// (variant `5`, a bare sentence) reads with the code `policy`.
    #[test]
    fn a_policy_stop_keeps_its_code_and_an_older_one_reads_as_policy() {
        let at: Time = "2026-11-30T12:00:00Z".parse().unwrap();
        let run = RunRecord {
            attempt: 1,
            started: at,
            finished: at,
            result: RunResult::Stopped,
            output: None,
            stop_reason: Some(StopReason::Expired(PolicyStop::new(
                "ios_refresh_budget",
                "the iOS app-refresh budget of 30s ran out",
            ))),
            note: None,
        };
        let mut bytes = Vec::new();
        encode_run(&run, &mut bytes).unwrap();
        assert_eq!(decode_run(&bytes).unwrap(), run);

        let old = RunRec {
            attempt: 1,
            started: At::of(at),
            finished: At::of(at),
            result: ResultRec::Stopped,
            output: None,
            stop_reason: Some(StopRec::Policy("the 10-minute execution limit")),
            note: None,
        };
        let mut bytes = vec![RUN_FORMAT];
        bytes = postcard::to_extend(&old, bytes).unwrap();
        let read = decode_run(&bytes).unwrap();
        assert_eq!(
            read.stop_reason,
            Some(StopReason::Policy(PolicyStop::new(
                "policy",
                "the 10-minute execution limit"
            )))
        );
    }

    #[test]
    fn a_format_1_periodic_record_reads_with_its_anchor_and_no_delay() {
        let job = admitted(JobRequest::periodic("sync", Duration::from_secs(3600)));
        let mut rec = job_rec(&job);
        rec.schedule = ScheduleRec::Periodic {
            every: Duration::from_secs(3600),
            flex: Some(Duration::from_secs(600)),
            anchor: AnchorRec::AfterRun,
        };
        let bytes = postcard::to_extend(&rec, vec![1]).unwrap();
        let back = decode_job(job.id, &bytes).unwrap();
        assert_eq!(
            back.request.schedule,
            Schedule::Periodic {
                every: Duration::from_secs(3600),
                flex: Some(Duration::from_secs(600)),
                anchor: Some(Anchor::AfterRun),
                initial_delay: Duration::ZERO,
            }
        );
    }

    /// Format 2 keeps an initial delay and the anchor admission chose.
    #[test]
    fn a_periodic_schedule_round_trips_with_its_delay() {
        let job = admitted(
            JobRequest::periodic("sync", Duration::from_secs(3600)).delay(Duration::from_secs(600)),
        );
        let mut bytes = Vec::new();
        encode_job(&job, None, &mut bytes).unwrap();
        assert_eq!(bytes[0], JOB_FORMAT);
        let back = decode_job(job.id, &bytes).unwrap();
        assert_eq!(back.request.schedule, job.request.schedule);
    }

    /// Format 3 keeps a chained job's input merger and its prerequisites.
    #[test]
    fn a_format_3_record_round_trips_its_input_merger() {
        for merger in [InputMerger::Overwriting, InputMerger::ArrayCreating] {
            let mut job = admitted(JobRequest::once("merge").input_merger(merger));
            job.prerequisites = vec![JobId::from_u128(1), JobId::from_u128(2)];
            job.state = JobState::Blocked;
            let mut bytes = Vec::new();
            encode_job(&job, None, &mut bytes).unwrap();
            assert_eq!(bytes[0], JOB_FORMAT);
            let back = decode_job(job.id, &bytes).unwrap();
            assert_eq!(back, job);
        }
    }

    /// A format 2 record (written before input mergers existed) ends after the force flags; it
    /// reads with the overwriting merger, WorkManager's default. A format 2 record with bytes
    /// after its last field, or a format 3 record without its tail, is refused.
    #[test]
    fn a_format_2_record_reads_with_the_default_merger() {
        let mut job = admitted(JobRequest::once("merge"));
        job.prerequisites = vec![JobId::from_u128(1)];
        let bytes = postcard::to_extend(&job_rec(&job), vec![2]).unwrap();
        let back = decode_job(job.id, &bytes).unwrap();
        assert_eq!(back.request.input_merger, InputMerger::Overwriting);
        assert_eq!(back, job);

        let mut extra = bytes.clone();
        extra.push(1);
        assert!(matches!(
            decode_job(job.id, &extra),
            Err(RecordError::Bytes(_))
        ));
        let mut short = bytes;
        short[0] = 3;
        assert!(decode_job(job.id, &short).is_err());
    }

    /// Format 3 adds the out-of-quota policy of an expedited job at the end: both policies and
    /// "not expedited" round-trip, as one byte each after the format 2 fields.
    #[test]
    fn format_3_keeps_whether_a_job_is_expedited() {
        for expedited in [
            None,
            Some(OutOfQuotaPolicy::RunAsNonExpedited),
            Some(OutOfQuotaPolicy::Drop),
        ] {
            let mut request = JobRequest::once("upload");
            request.expedited = expedited;
            let job = admitted(request);
            let mut bytes = Vec::new();
            encode_job(&job, None, &mut bytes).unwrap();
            assert_eq!(bytes[0], JOB_FORMAT);
            let back = decode_job(job.id, &bytes).unwrap();
            assert_eq!(back.request.expedited, expedited);
            // the format 2 body, then the tail: the merger (`0` overwriting), then `0` none,
            // or `1` and the variant
            let mut v2 = vec![2];
            v2 = postcard::to_extend(&job_rec(&job), v2).unwrap();
            // (and format 4's field: `0`, no input inside the record)
            let tail = &bytes[v2.len()..];
            assert_eq!(
                tail,
                match expedited {
                    None => &[0, 0, 0][..],
                    Some(OutOfQuotaPolicy::RunAsNonExpedited) => &[0, 1, 0, 0][..],
                    Some(OutOfQuotaPolicy::Drop) => &[0, 1, 1, 0][..],
                }
            );
        }
    }

    /// A format 2 record (no tail) still reads, as a job that is not expedited; a format 2
    /// record with the format 3 tail is damaged (bytes after its end).
    #[test]
    fn a_format_2_record_reads_as_not_expedited() {
        let job = admitted(JobRequest::once("upload"));
        let v2 = postcard::to_extend(&job_rec(&job), vec![2]).unwrap();
        let back = decode_job(job.id, &v2).unwrap();
        assert_eq!(back.request.expedited, None);
        assert_eq!(back.request, job.request);
        let mut v2_with_tail = v2.clone();
        v2_with_tail.push(0);
        assert!(decode_job(job.id, &v2_with_tail).is_err());
        // and a format 3 record cut before its tail is damaged too
        let mut v3_cut = v2;
        v3_cut[0] = 3;
        assert!(decode_job(job.id, &v3_cut).is_err());
    }

    /// Format 4 keeps a small input inside the record, as its last field: an option of bytes,
    /// the input's JSON text. The input reads back as written; the scheduling fields are those
    /// of the same record without it; a record without one reads as having none.
    #[test]
    fn format_4_keeps_a_small_input_inside_the_record() {
        let job = admitted(JobRequest::once("sync"));
        let json = br#"{"folder":"/home/me/photos"}"#;
        let mut with = Vec::new();
        encode_job(&job, Some(json), &mut with).unwrap();
        let mut without = Vec::new();
        encode_job(&job, None, &mut without).unwrap();
        assert_eq!((with[0], without[0]), (4, 4));
        assert_eq!(inline_input(&with).unwrap(), Some(&json[..]));
        assert_eq!(inline_input(&without).unwrap(), None);
        assert_eq!(decode_job(job.id, &with).unwrap(), job);
        // postcard: `1`, the varint length, the bytes — in place of the `0` of "none"
        let mut expected = without[..without.len() - 1].to_vec();
        expected.push(1);
        expected.push(json.len() as u8);
        expected.extend_from_slice(json);
        assert_eq!(with, expected);
    }

    /// A format 3 record (written before inputs could live in the record) reads with none; a
    /// format 3 record followed by format 4's field, or a format 4 record cut before it, is
    /// damaged; a format 5 record is newer than this binary reads.
    #[test]
    fn a_format_3_record_reads_with_no_input_inside() {
        let job = admitted(JobRequest::once("sync"));
        let mut v4 = Vec::new();
        encode_job(&job, None, &mut v4).unwrap();
        let mut v3 = v4[..v4.len() - 1].to_vec();
        v3[0] = 3;
        assert_eq!(decode_job(job.id, &v3).unwrap(), job);
        assert_eq!(inline_input(&v3).unwrap(), None);
        let mut v3_with_field = v4.clone();
        v3_with_field[0] = 3;
        assert!(matches!(
            decode_job(job.id, &v3_with_field),
            Err(RecordError::Bytes(_))
        ));
        let mut v4_cut = v3;
        v4_cut[0] = 4;
        assert!(decode_job(job.id, &v4_cut).is_err());
        let mut v5 = v4;
        v5[0] = 5;
        assert_eq!(decode_job(job.id, &v5), Err(RecordError::NewerFormat(5)));
    }

    /// A record without an input inside is told by its last byte; one with an input is not
    /// (whatever the JSON text ends with), and neither is a record older than format 4.
    #[test]
    fn a_record_without_an_input_inside_is_told_by_its_last_byte() {
        let job = admitted(JobRequest::once("sync"));
        for json in [&b"1"[..], b"\"x\"", b"[1,{}]", b"{\"a\":null}", b"true"] {
            let mut bytes = Vec::new();
            encode_job(&job, Some(json), &mut bytes).unwrap();
            assert!(may_keep_input(&bytes), "{json:?}");
        }
        let mut without = Vec::new();
        encode_job(&job, None, &mut without).unwrap();
        assert!(!may_keep_input(&without));
        let mut v3 = without[..without.len() - 1].to_vec();
        v3[0] = 3;
        assert!(!may_keep_input(&v3));
        assert!(!may_keep_input(&[]));
    }

    /// The inline rule: up to 256 bytes of JSON text inside the record, more in `payloads`.
    #[test]
    fn inputs_up_to_256_bytes_of_json_go_inline() {
        assert!(input_goes_inline(&[b'1'; 256]));
        assert!(!input_goes_inline(&[b'1'; 257]));
    }
}
