//! The job model: what a caller asks for ([`JobRequest`]) and what the scheduler keeps ([`Job`]).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use backwork_constraints::{Constraint, Constraints};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A wall-clock instant. The core never reads a clock: every instant it sees is an argument.
pub type Time = DateTime<Utc>;

/// How many hex digits [`JobId::short`] shows: the last group of the UUID's text form.
pub const SHORT_ID_LEN: usize = 12;

/// A job's identity: a time-ordered UUID (version 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub Uuid);

/// The UUID's byte order, compared as one big-endian integer (the same order as the bytes'; a
/// comparison without a call to `memcmp`, which the core's ordered indexes make at every step).
impl Ord for JobId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.as_u128().cmp(&other.0.as_u128())
    }
}

impl PartialOrd for JobId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl JobId {
    /// The smallest id; useful as a range bound.
    pub const MIN: JobId = JobId(Uuid::nil());
    /// The largest id; useful as a range bound.
    pub const MAX: JobId = JobId(Uuid::max());

    /// A version-7 id for the millisecond `at`, with `random` filling the remaining bits. The
    /// runtime passes random bytes; the test driver passes a counter, so its ids are reproducible.
    pub fn new_v7(at: Time, random: [u8; 10]) -> JobId {
        let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
        JobId(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
    }

    /// The id as a 128-bit integer (its storage key).
    pub fn as_u128(&self) -> u128 {
        self.0.as_u128()
    }

    /// The id from its 128-bit integer form.
    pub fn from_u128(v: u128) -> JobId {
        JobId(Uuid::from_u128(v))
    }

    /// The id's short form: its last 12 hex digits, which are random bits of a version-7 id (the
    /// leading digits are its creation time, shared by every job made in the same minute). What
    /// people see in listings and logs, and what they type (or a prefix of it) to name a job.
    pub fn short(&self) -> String {
        let hex = self.0.simple().to_string();
        hex[hex.len() - SHORT_ID_LEN..].to_string()
    }

    /// A 64-bit digest of the id, used to seed per-job pseudo-random choices (jitter).
    pub fn seed(&self) -> u64 {
        let v = self.0.as_u128();
        (v as u64) ^ ((v >> 64) as u64)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for JobId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(JobId)
    }
}

/// Serde helpers for durations as whole milliseconds, so records read well as JSON: use with
/// `#[serde(with = "millis")]` (a `Duration`) or `#[serde(with = "millis::option")]`.
pub mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `d` as whole milliseconds (saturating at `u64::MAX`).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Reads whole milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }

    /// The same for an optional duration (`null` when absent).
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        /// Writes `d` as whole milliseconds, or `null`.
        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                None => s.serialize_none(),
            }
        }

        /// Reads whole milliseconds, or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            Option::<u64>::deserialize(d).map(|o| o.map(Duration::from_millis))
        }
    }
}

/// How a periodic job's periods are placed in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Anchor {
    /// Periods are a fixed grid anchored at the first enqueue (plus the initial delay): the
    /// schedule never drifts. The desktop default (DESIGN §2).
    #[default]
    Grid,
    /// Each period starts when the previous run finished (WorkManager's behaviour: `WorkSpec`'s
    /// next run time is `lastEnqueueTime + interval`; drifts). The android profile's default.
    AfterRun,
}

/// What a periodic or cron job does about slots missed while the process was down or the machine
/// was off or suspended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CatchUp {
    /// Run once as soon as possible (like systemd's `Persistent=true`).
    #[default]
    One,
    /// Wait for the next slot.
    Skip,
}

/// When a job runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Schedule {
    /// Once, as soon as constraints allow, not before `enqueue time + delay` nor `not_before`.
    Once {
        /// Delay after the enqueue time.
        #[serde(with = "millis", default)]
        delay: Duration,
        /// An absolute instant before which the job does not start.
        #[serde(default)]
        not_before: Option<Time>,
    },
    /// Once per `every`, inside the flex window at the end of each period. The first period
    /// begins `initial_delay` after the enqueue time.
    Periodic {
        /// The period length.
        #[serde(with = "millis")]
        every: Duration,
        /// The flex window at the end of each period; `None` means the whole period.
        #[serde(with = "millis::option", default)]
        flex: Option<Duration>,
        /// How periods are placed; `None` in a request means "the profile's default"
        /// ([`Config::default_anchor`](crate::Config::default_anchor)), which admission fills in,
        /// so an admitted job always names one.
        #[serde(default)]
        anchor: Option<Anchor>,
        /// The delay before the first period begins (WorkManager's
        /// `PeriodicWorkRequest.Builder.setInitialDelay`): with no flex the first run is due at
        /// `enqueue + initial_delay`, with a flex `F` its window is `[enqueue + initial_delay +
        /// every − F, enqueue + initial_delay + every]`. Zero by default.
        #[serde(with = "millis", default)]
        initial_delay: Duration,
    },
    /// At the instants a cron expression names (the `cron` crate's syntax, seconds first), in a
    /// named time zone.
    Cron {
        /// The cron expression, e.g. `0 0 3 * * *`.
        expr: String,
        /// The IANA time zone the expression is read in.
        tz: Tz,
    },
}

impl Schedule {
    /// True for periodic and cron schedules.
    pub fn is_recurring(&self) -> bool {
        !matches!(self, Schedule::Once { .. })
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Once { delay, not_before } => match (delay.is_zero(), not_before) {
                (_, Some(t)) => write!(f, "once at {}", t.format("%Y-%m-%d %H:%M:%SZ")),
                (true, None) => f.write_str("once"),
                (false, None) => write!(f, "once in {}", humanize(*delay)),
            },
            Schedule::Periodic {
                every,
                flex,
                anchor,
                initial_delay,
            } => {
                write!(f, "every {}", humanize(*every))?;
                if let Some(flex) = flex {
                    write!(f, " flex {}", humanize(*flex))?;
                }
                if *anchor == Some(Anchor::AfterRun) {
                    f.write_str(" after-run")?;
                }
                if !initial_delay.is_zero() {
                    write!(f, " first after {}", humanize(*initial_delay))?;
                }
                Ok(())
            }
            Schedule::Cron { expr, tz } => write!(f, "cron {expr} {tz}"),
        }
    }
}

/// Formats a duration compactly (`6h`, `1m 30s`).
pub fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (days, hours, mins, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let mut parts = Vec::new();
    for (v, unit) in [(days, "d"), (hours, "h"), (mins, "m"), (s, "s")] {
        if v > 0 {
            parts.push(format!("{v}{unit}"));
        }
    }
    parts.join(" ")
}

/// Formats a duration to a person's precision: its two largest units (`3h 12m`, `45s`,
/// `2d 4h`; `2h` when the minutes are zero), milliseconds under a second.
pub fn humanize_approx(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut parts = Vec::new();
    let mut rest = secs;
    for (size, unit) in [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")] {
        if rest >= size && parts.len() < 2 {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        } else if !parts.is_empty() {
            break;
        }
    }
    parts.join(" ")
}

/// The shape of the retry delay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackoffKind {
    /// `base · 2^(n−1)`.
    #[default]
    Exponential,
    /// `base · n`.
    Linear,
}

/// Retry backoff: kind, base delay (clamped to [10 s, 5 h]) and an optional ± jitter fraction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    /// Exponential or linear.
    pub kind: BackoffKind,
    /// The base delay (attempt 1's delay).
    #[serde(with = "millis")]
    pub base: Duration,
    /// A fraction in `[0, 1)`: each delay is multiplied by a factor drawn from `[1 − j, 1 + j]`,
    /// reproducibly per job and attempt.
    #[serde(default)]
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            kind: BackoffKind::Exponential,
            base: Duration::from_secs(30),
            jitter: 0.0,
        }
    }
}

impl Backoff {
    /// Exponential backoff from `base`.
    pub fn exponential(base: Duration) -> Self {
        Backoff {
            kind: BackoffKind::Exponential,
            base,
            jitter: 0.0,
        }
    }

    /// Linear backoff from `base`.
    pub fn linear(base: Duration) -> Self {
        Backoff {
            kind: BackoffKind::Linear,
            base,
            jitter: 0.0,
        }
    }

    /// The same backoff with a ± jitter fraction.
    pub fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }
}

/// Parses `exponential:30s`, `linear:1m`, or a bare kind (base 30 s) — the form the command
/// line and scenario files use.
impl FromStr for Backoff {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{value:?} is not a backoff; write exponential:30s or linear:1m");
        let (kind, base) = match value.split_once(':') {
            Some((k, b)) => (k, humantime::parse_duration(b.trim()).map_err(|_| bad())?),
            None => (value, Duration::from_secs(30)),
        };
        match kind.trim() {
            "exponential" | "exp" => Ok(Backoff::exponential(base)),
            "linear" => Ok(Backoff::linear(base)),
            _ => Err(bad()),
        }
    }
}

/// What enqueueing does when a job with the same unique name is already queued or running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// Keep the existing job; the new request is dropped (its id is the existing one).
    Keep,
    /// Cancel the existing job and enqueue the new one. For recurring jobs this is
    /// [`ConflictPolicy::CancelAndReenqueue`].
    Replace,
    /// Update the existing job's request in place, keeping its id and enqueue time.
    Update,
    /// One-off only: run the new job after the existing one succeeds (it waits `blocked`); if the
    /// existing one failed or was cancelled, the new one fails or is cancelled too.
    Append,
    /// One-off only: like `Append`, but if the existing chain failed or was cancelled, start a new
    /// chain instead.
    AppendOrReplace,
    /// Recurring only: cancel the existing job and enqueue the new one.
    CancelAndReenqueue,
}

impl fmt::Display for ConflictPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConflictPolicy::Keep => "keep",
            ConflictPolicy::Replace => "replace",
            ConflictPolicy::Update => "update",
            ConflictPolicy::Append => "append",
            ConflictPolicy::AppendOrReplace => "append_or_replace",
            ConflictPolicy::CancelAndReenqueue => "cancel_and_reenqueue",
        })
    }
}

/// A unique name and what to do on conflict.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Unique {
    /// The unique name.
    pub name: String,
    /// The conflict policy.
    pub policy: ConflictPolicy,
}

/// The default per-run time limit (10 minutes, JobScheduler's execution guarantee).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// What a caller asks to run. Build one with [`JobRequest::once`], [`JobRequest::periodic`] or
/// [`JobRequest::cron`] and the chained setters.
///
/// ```
/// use std::time::Duration;
/// use backwork_scheduler::{Constraints, JobRequest, NetworkRequirement};
///
/// let req = JobRequest::periodic("sync", Duration::from_secs(6 * 3600))
///     .flex(Duration::from_secs(1800))
///     .constraints(Constraints::none().network(NetworkRequirement::Unmetered).charging())
///     .tag("sync");
/// assert!(req.schedule.is_recurring());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRequest {
    /// The worker kind that runs it.
    pub kind: String,
    /// The input payload (a JSON value, capped in size).
    #[serde(default)]
    pub input: Value,
    /// When it runs.
    pub schedule: Schedule,
    /// What the device must offer.
    #[serde(default)]
    pub constraints: Constraints,
    /// Do not start if the last successful run started less than this long ago.
    #[serde(with = "millis::option", default)]
    pub min_interval: Option<Duration>,
    /// Retry backoff.
    #[serde(default)]
    pub backoff: Backoff,
    /// Give up (fail) after this many attempts; `None` retries forever.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Per-run time limit; `None` means no limit.
    #[serde(with = "millis::option", default = "default_timeout")]
    pub timeout: Option<Duration>,
    /// Optional unique name and conflict policy.
    #[serde(default)]
    pub unique: Option<Unique>,
    /// Tags, for listing and cancelling groups.
    #[serde(default)]
    pub tags: BTreeSet<String>,
    /// Missed-slot policy for recurring jobs.
    #[serde(default)]
    pub catch_up: CatchUp,
    /// Start at the due instant exactly: no batching slack (systemd's `AccuracySec=1us`).
    #[serde(default)]
    pub accurate: bool,
    /// A pseudo-random delay added to each due time, to spread a fleet's load.
    #[serde(default)]
    pub jitter: Option<Jitter>,
    /// How the input of a job with prerequisites (a link of a [`Chain`](super::Chain)) is made
    /// from its own input and their outputs; the overwriting merger by default, as WorkManager.
    #[serde(default)]
    pub input_merger: super::InputMerger,
    /// Expedited work (WorkManager's `setExpedited`): started at once when its constraints
    /// hold, ahead of ordinary work, under the expedited quota; what to do when the quota is
    /// used up. One-off jobs without a delay only, requiring at most the network and storage.
    #[serde(default)]
    pub expedited: Option<super::OutOfQuotaPolicy>,
}

/// A pseudo-random delay in `[0, max)` added to each due time (systemd's `RandomizedDelaySec`),
/// derived from the job's id — the same on every run of the program, so a restart does not move
/// it. `fixed`: one offset for the job's whole life (`FixedRandomDelay`); otherwise a new one each
/// cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Jitter {
    /// The largest delay.
    #[serde(with = "millis")]
    pub max: Duration,
    /// The same delay every cycle.
    #[serde(default)]
    pub fixed: bool,
}

fn default_timeout() -> Option<Duration> {
    Some(DEFAULT_TIMEOUT)
}

impl JobRequest {
    fn with_schedule(kind: impl Into<String>, schedule: Schedule) -> Self {
        JobRequest {
            kind: kind.into(),
            input: Value::Null,
            schedule,
            constraints: Constraints::none(),
            min_interval: None,
            backoff: Backoff::default(),
            max_attempts: None,
            timeout: default_timeout(),
            unique: None,
            tags: BTreeSet::new(),
            catch_up: CatchUp::One,
            accurate: false,
            jitter: None,
            input_merger: super::InputMerger::Overwriting,
            expedited: None,
        }
    }

    /// A one-off job of worker kind `kind`, due at once.
    pub fn once(kind: impl Into<String>) -> Self {
        Self::with_schedule(
            kind,
            Schedule::Once {
                delay: Duration::ZERO,
                not_before: None,
            },
        )
    }

    /// A periodic job running once every `every`, anywhere in each period (set a flex to
    /// narrow), its periods placed by the profile's default anchor unless [`anchor`](Self::anchor)
    /// names one.
    pub fn periodic(kind: impl Into<String>, every: Duration) -> Self {
        Self::with_schedule(
            kind,
            Schedule::Periodic {
                every,
                flex: None,
                anchor: None,
                initial_delay: Duration::ZERO,
            },
        )
    }

    /// A cron job: `expr` in the `cron` crate's syntax (seconds first), read in time zone `tz`.
    pub fn cron(kind: impl Into<String>, expr: impl Into<String>, tz: Tz) -> Self {
        Self::with_schedule(
            kind,
            Schedule::Cron {
                expr: expr.into(),
                tz,
            },
        )
    }

    /// Makes it expedited work (WorkManager's `setExpedited(policy)`): it starts at once when
    /// its constraints hold — no batching window, past the profile's holds, ahead of ordinary
    /// work waiting for a slot — as long as the expedited quota lasts; `policy` says what
    /// happens once it is used up. Only a one-off job without a delay may be expedited, and it
    /// may require only the network and storage (`JobInfo.Builder.setExpedited`).
    ///
    /// ```
    /// use backwork_scheduler::{JobRequest, OutOfQuotaPolicy};
    ///
    /// let upload = JobRequest::once("upload").expedited(OutOfQuotaPolicy::RunAsNonExpedited);
    /// assert_eq!(upload.expedited, Some(OutOfQuotaPolicy::RunAsNonExpedited));
    /// ```
    pub fn expedited(mut self, policy: super::OutOfQuotaPolicy) -> Self {
        self.expedited = Some(policy);
        self
    }

    /// Sets the input payload.
    pub fn input(mut self, input: Value) -> Self {
        self.input = input;
        self
    }

    /// One-off: do not start before `delay` after the enqueue time. Periodic: the first period
    /// begins `delay` after the enqueue time (WorkManager's `setInitialDelay`). Cron: no effect.
    pub fn delay(mut self, delay: Duration) -> Self {
        match &mut self.schedule {
            Schedule::Once { delay: d, .. } => *d = delay,
            Schedule::Periodic { initial_delay, .. } => *initial_delay = delay,
            Schedule::Cron { .. } => {}
        }
        self
    }

    /// One-off: do not start before `at`.
    pub fn not_before(mut self, at: Time) -> Self {
        if let Schedule::Once { not_before, .. } = &mut self.schedule {
            *not_before = Some(at);
        }
        self
    }

    /// Periodic: run inside the last `flex` of each period.
    pub fn flex(mut self, flex: Duration) -> Self {
        if let Schedule::Periodic { flex: f, .. } = &mut self.schedule {
            *f = Some(flex);
        }
        self
    }

    /// Periodic: how periods are placed (instead of the profile's default).
    pub fn anchor(mut self, anchor: Anchor) -> Self {
        if let Schedule::Periodic { anchor: a, .. } = &mut self.schedule {
            *a = Some(anchor);
        }
        self
    }

    /// Sets the constraints.
    pub fn constraints(mut self, constraints: Constraints) -> Self {
        self.constraints = constraints;
        self
    }

    /// Adds one constraint.
    pub fn requires(mut self, constraint: Constraint) -> Self {
        self.constraints = self.constraints.with(constraint);
        self
    }

    /// Sets the minimum interval between the starts of successful runs.
    pub fn min_interval(mut self, d: Duration) -> Self {
        self.min_interval = Some(d);
        self
    }

    /// Sets the retry backoff.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Fails the job after `n` attempts.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// Sets the per-run time limit (`None`: no limit).
    pub fn timeout(mut self, limit: Option<Duration>) -> Self {
        self.timeout = limit;
        self
    }

    /// Sets a unique name and its conflict policy.
    pub fn unique(mut self, name: impl Into<String>, policy: ConflictPolicy) -> Self {
        self.unique = Some(Unique {
            name: name.into(),
            policy,
        });
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.insert(tag.into());
        self
    }

    /// Sets the missed-slot policy.
    pub fn catch_up(mut self, catch_up: CatchUp) -> Self {
        self.catch_up = catch_up;
        self
    }

    /// Starts at the due instant exactly, without the batching window that lets the scheduler
    /// run it together with other work (for alarms; costs wake-ups).
    pub fn accurate(mut self) -> Self {
        self.accurate = true;
        self
    }

    /// Delays each due time by a pseudo-random amount in `[0, max)`, new each cycle.
    pub fn jitter(mut self, max: Duration) -> Self {
        self.jitter = Some(Jitter { max, fixed: false });
        self
    }

    /// Sets how the input of this job is made when it runs after prerequisites (see
    /// [`InputMerger`](super::InputMerger)): WorkManager's `setInputMerger`.
    pub fn input_merger(mut self, merger: super::InputMerger) -> Self {
        self.input_merger = merger;
        self
    }

    /// Delays each due time by the same pseudo-random amount in `[0, max)`, fixed for the job.
    pub fn fixed_jitter(mut self, max: Duration) -> Self {
        self.jitter = Some(Jitter { max, fixed: true });
        self
    }
}

/// The six states of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting to run (for its time, its constraints, a worker, or a free slot).
    Enqueued,
    /// Waiting for prerequisite jobs to succeed.
    Blocked,
    /// A worker is running it.
    Running,
    /// Finished successfully (one-off only; recurring jobs go back to `Enqueued`).
    Succeeded,
    /// Finished with a failure, or ran out of attempts.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl JobState {
    /// True for `Succeeded`, `Failed` and `Cancelled`.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobState::Enqueued => "enqueued",
            JobState::Blocked => "blocked",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        })
    }
}

impl FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "enqueued" => JobState::Enqueued,
            "blocked" => JobState::Blocked,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            other => {
                return Err(format!(
                    "unknown state `{other}`; use enqueued, blocked, running, succeeded, failed or cancelled"
                ));
            }
        })
    }
}

/// Why a run was stopped or a job left the running state other than by its own result.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "detail")]
pub enum StopReason {
    /// Cancelled by the app or the user.
    Cancelled,
    /// The run exceeded its time limit.
    Timeout,
    /// A constraint stopped holding while it ran.
    ConstraintLost(Constraint),
    /// The runtime shut down.
    Shutdown,
    /// The process died while it ran (found `running` on recovery).
    Unknown,
    /// The OS-emulation policy stopped it (quota, window), with its reason; it runs again.
    Policy(super::PolicyStop),
    /// The OS-emulation policy stopped it and its request is used up (an iOS task whose budget
    /// ran out: it is not launched again unless the app submits anew): a one-off job fails, a
    /// recurring one moves to its next slot.
    Expired(super::PolicyStop),
    /// A prerequisite failed or was cancelled (the prerequisite named is the one whose end
    /// ended this job: in a chain `a → b → c` where `a` failed, `b` names `a` and `c` names `b`).
    PrerequisiteFailed(JobId),
}

impl StopReason {
    /// A stable code for scripts and reports: `cancelled`, `timeout`, `constraint_lost`,
    /// `shutdown`, `unknown`, `prerequisite_failed`, and for a policy's stop (`policy`,
    /// `expired`) the policy's own code (`execution_limit`, `standby_quota_time`…).
    pub fn code(&self) -> &str {
        match self {
            StopReason::Cancelled => "cancelled",
            StopReason::Timeout => "timeout",
            StopReason::ConstraintLost(_) => "constraint_lost",
            StopReason::Shutdown => "shutdown",
            StopReason::Unknown => "unknown",
            StopReason::Policy(p) | StopReason::Expired(p) => &p.code,
            StopReason::PrerequisiteFailed(_) => "prerequisite_failed",
        }
    }

    /// True when the stop is not the job's fault: the run is not charged as an attempt and the job
    /// goes back to the queue without backoff.
    pub fn is_free(&self) -> bool {
        matches!(
            self,
            StopReason::ConstraintLost(_) | StopReason::Shutdown | StopReason::Policy(_)
        )
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Cancelled => f.write_str("cancelled"),
            StopReason::Timeout => f.write_str("time limit exceeded"),
            StopReason::ConstraintLost(c) => write!(f, "constraint {c} lost"),
            StopReason::Shutdown => f.write_str("shutdown"),
            StopReason::Unknown => f.write_str("unknown (process died during the run)"),
            StopReason::Policy(r) => write!(f, "policy: {r}"),
            StopReason::Expired(r) => write!(f, "expired: {r}"),
            StopReason::PrerequisiteFailed(id) => {
                write!(f, "prerequisite {id} failed or was cancelled")
            }
        }
    }
}

/// What a worker run produced, as the runtime reports it to the core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum RunOutcome {
    /// The work succeeded, with optional output.
    Success(Option<Value>),
    /// The work should be retried with backoff, with optional output.
    Retry(Option<Value>),
    /// The work failed permanently, with optional output.
    Failure(Option<Value>),
    /// The worker panicked (a failure), with the panic message.
    Panicked(String),
    /// The runtime dropped the run after a stop request's grace period ran out.
    Aborted,
    /// The run's worker never ran: its input could not be made (the merge of its
    /// prerequisites' outputs failed, see [`RunOutcome::not_started`]). A failure, recorded
    /// with this note; it is not retried.
    NotStarted(String),
}

impl RunOutcome {
    /// The outcome of a run whose input could not be merged from its prerequisites' outputs
    /// (WorkManager's merge throws and the work fails).
    pub fn not_started(error: &super::MergeError) -> RunOutcome {
        RunOutcome::NotStarted(format!(
            "not started: the input could not be merged from the prerequisites' outputs: {error}"
        ))
    }
}

/// The result of one run, as kept in a job's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunResult {
    /// Succeeded.
    Success,
    /// Asked to be retried.
    Retry,
    /// Failed (including panics).
    Failure,
    /// Stopped by the scheduler (see the run's stop reason).
    Stopped,
    /// The process died during the run.
    Crashed,
}

impl fmt::Display for RunResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunResult::Success => "success",
            RunResult::Retry => "retry",
            RunResult::Failure => "failure",
            RunResult::Stopped => "stopped",
            RunResult::Crashed => "crashed",
        })
    }
}

/// One run of a job, kept in its recent history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The attempt number of the run (1-based within the current cycle).
    pub attempt: u32,
    /// When it started.
    pub started: Time,
    /// When it ended (for a crash: when the crash was discovered).
    pub finished: Time,
    /// How it ended.
    pub result: RunResult,
    /// Output the worker returned, if any (dropped if over the payload cap; see `note`).
    #[serde(default)]
    pub output: Option<Value>,
    /// Why it was stopped, when it was.
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    /// Extra detail: a panic message, a dropped-output notice.
    #[serde(default)]
    pub note: Option<String>,
}

/// Overrides set by "run now" and by the test driver, cleared when the job next starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Force {
    /// Treat every time gate (delay, period, backoff, min-interval, policy deferral) as met.
    pub time: bool,
    /// Treat every constraint as met.
    pub constraints: bool,
}

/// A job as the scheduler keeps it: the request plus its scheduling state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Identity.
    pub id: JobId,
    /// What was asked for (updated in place by the `update` conflict policy).
    pub request: JobRequest,
    /// Current state.
    pub state: JobState,
    /// When it was first enqueued (periodic grid anchor; kept by `update`).
    pub enqueued_at: Time,
    /// Attempts charged in the current cycle (the one-off job, or the current period).
    pub attempt: u32,
    /// Earliest start for the current cycle: the due time, or the end of a backoff.
    pub not_before: Time,
    /// True when `not_before` is a backoff delay rather than the schedule.
    pub backing_off: bool,
    /// Recurring jobs: end of the current slot's window (catch-up decisions use it).
    #[serde(default)]
    pub window_end: Option<Time>,
    /// Start of the last run.
    #[serde(default)]
    pub last_started: Option<Time>,
    /// End of the last run.
    #[serde(default)]
    pub last_finished: Option<Time>,
    /// Start of the last successful run (min-interval gate).
    #[serde(default)]
    pub last_success_started: Option<Time>,
    /// How many runs it has had in all.
    #[serde(default)]
    pub runs_total: u64,
    /// How many cycles have ended: for a recurring job its periods or cron slots, for a one-off
    /// job the fresh cycles `Event::Retry` gave it (each cycle has its own idempotency keys).
    #[serde(default)]
    pub cycle: u64,
    /// Jobs that must succeed before this one may run.
    #[serde(default)]
    pub prerequisites: Vec<JobId>,
    /// Why the last run was stopped or the job ended, if it was.
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    /// Output of the last run.
    #[serde(default)]
    pub output: Option<Value>,
    /// When it reached a finished state.
    #[serde(default)]
    pub finished_at: Option<Time>,
    /// Recent runs, oldest first.
    #[serde(default)]
    pub history: Vec<RunRecord>,
    /// Pending overrides ("run now").
    #[serde(default)]
    pub force: Force,
}

impl Job {
    /// The unique name, if any.
    pub fn unique_name(&self) -> Option<&str> {
        self.request.unique.as_ref().map(|u| u.name.as_str())
    }

    /// The run number of each record of [`Job::history`], in order: the last record is the
    /// latest run that ended, numbered by [`Job::runs_total`] (less one while a newer run is
    /// under way), and the ones before it count down by one. A record whose number would fall
    /// below 1 (a record from before `runs_total` was kept) is numbered as if `runs_total` were
    /// the history's length, so the numbers are always distinct and at least 1. The store keys
    /// runs by these numbers.
    pub fn history_numbers(&self) -> impl DoubleEndedIterator<Item = u64> + use<> {
        super::entry::history_numbers(
            self.history.len(),
            self.state == JobState::Running,
            self.runs_total,
        )
    }

    /// The stable idempotency key of attempt `attempt` of the current cycle:
    /// `"{id}-{cycle}-{attempt}"`. A retry gets a new key; a run that was stopped without charge
    /// (constraint lost, shutdown) and runs again keeps its key; each period of a recurring job
    /// gets its own keys.
    pub fn idempotency_key(&self, attempt: u32) -> String {
        super::entry::idempotency_key(self.id, self.cycle, attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids order as their bytes do (lexicographically): what `Uuid`'s own order is, and what
    /// "ids are in enqueue order" rests on.
    #[test]
    fn ids_order_as_their_bytes() {
        let samples: Vec<[u8; 16]> = vec![
            [0; 16],
            [0xff; 16],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [
                0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
            [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0],
            [0x01, 0x9a, 0, 0, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, 2],
            [
                0x01, 0x9a, 0, 0, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0x01, 0,
            ],
        ];
        for a in &samples {
            for b in &samples {
                let (x, y) = (JobId(Uuid::from_bytes(*a)), JobId(Uuid::from_bytes(*b)));
                assert_eq!(x.cmp(&y), a.cmp(b), "{x} vs {y}");
                assert_eq!(x.cmp(&y), x.0.cmp(&y.0));
            }
        }
    }
}
