//! The policy hook: how OS-emulation profiles shape when eligible work may run, without touching
//! the core.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use backwork_constraints::DeviceState;
use serde::{Deserialize, Serialize};

use super::expedited::ExpeditedQuota;
use super::job::{JobId, JobRequest, Time};

/// What kind of hold a policy reason is, for counting without reading sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HoldKind {
    /// The device is in a power-saving state that runs no background work (Doze's idle
    /// periods, iOS waiting for the device to be idle).
    DeviceIdle,
    /// A quota of the app is used up (standby-bucket execution time, job or session counts,
    /// rate limits).
    Quota,
    /// The platform gathers the app's jobs into batches.
    Batching,
    /// The app is stopped (force-quit) until the user opens it.
    AppStopped,
    /// The platform spaces runs apart (iOS app refresh).
    Spacing,
}

/// Why a policy holds a job back: a stable `code` for reports and scripts, its [`HoldKind`], and
/// a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyReason {
    /// A stable identifier, `snake_case` (`doze_deep`, `standby_quota_sessions`…).
    pub code: String,
    /// What kind of hold it is.
    pub kind: HoldKind,
    /// The reason as a sentence.
    pub message: String,
}

impl PolicyReason {
    /// A reason with this code, kind and sentence.
    pub fn new(code: &str, kind: HoldKind, message: impl Into<String>) -> PolicyReason {
        PolicyReason {
            code: code.to_string(),
            kind,
            message: message.into(),
        }
    }
}

/// Why a policy stops a run in progress (see [`Policy::run_deadline`]): a stable `code` for
/// reports and scripts (`execution_limit`, `standby_quota_time`…) and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PolicyStop {
    /// A stable identifier, `snake_case`.
    pub code: Cow<'static, str>,
    /// The reason as a sentence.
    pub message: Cow<'static, str>,
}

impl PolicyStop {
    /// A stop with this code and sentence (borrowed when they are constants: a policy names
    /// the stop that may end every run it lets start, most of which end before it).
    pub fn new(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> PolicyStop {
        PolicyStop {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for PolicyStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Reads `{"code", "message"}`, and the bare sentence that schema-1 and -2 records hold (its
/// code is then `policy`).
impl<'de> Deserialize<'de> for PolicyStop {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Full { code: String, message: String },
        }
        Ok(match Either::deserialize(d)? {
            Either::Text(message) => PolicyStop::new("policy", message),
            Either::Full { code, message } => PolicyStop::new(code, message),
        })
    }
}

impl fmt::Display for PolicyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// An app-wide hold in force (see [`Policy::app_hold`]): every ready job that was not forced
/// waits behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppHold {
    /// Until when; `None`: until the device or the policy changes.
    pub until: Option<Time>,
    /// Why.
    pub reason: PolicyReason,
}

/// The state of the emulated OS at an instant, as a profile reports it for timelines (Doze's
/// phases on android): a stable `code` and until when it lasts if neither the device nor the
/// policy changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsState {
    /// A stable identifier, `snake_case` (`deep_idle`, `light_maintenance`…).
    pub code: &'static str,
    /// When the state ends by itself; `None`: not before the device or the policy changes.
    pub until: Option<Time>,
}

/// A policy's answer when the core is about to start a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start it.
    Allow,
    /// Not before `until`; the core asks again then.
    Defer {
        /// When to ask again.
        until: Time,
        /// Why (shown by `why`).
        reason: PolicyReason,
    },
    /// Not now, with no known time; the core asks again on the next event.
    Deny {
        /// Why (shown by `why`).
        reason: PolicyReason,
    },
}

/// What a policy may look at besides the job.
#[derive(Debug, Clone, Copy)]
pub struct PolicyContext<'a> {
    /// The device state the core currently holds.
    pub device: &'a DeviceState,
    /// How many jobs are running.
    pub running: usize,
    /// How many jobs are queued or running (not finished).
    pub pending: usize,
    /// At admission: for each tag of the request, how many unfinished jobs carry it — not
    /// counting a job with the request's unique name, which the request would replace or
    /// update. Empty elsewhere.
    pub pending_by_tag: &'a [(String, usize)],
}

/// What a policy's hooks see of a job: its identity, its request (without its input payload)
/// and the attempt of its current cycle — a borrow of the core's entry, not a copy of the job.
#[derive(Debug, Clone, Copy)]
pub struct PolicyJob<'a> {
    /// Its id.
    pub id: JobId,
    /// Its request (`input` is `Value::Null`: the core keeps payloads apart).
    pub request: &'a JobRequest,
    /// Attempts charged in its current cycle.
    pub attempt: u32,
    /// In [`Policy::on_started`] and [`Policy::on_finished`]: the run is expedited work,
    /// charged to the expedited quota (not to the policy's own quotas). `false` elsewhere.
    pub expedited: bool,
}

/// The hook the core consults before it admits a request, before it starts a job, and when it plans
/// its next wake-up. OS profiles (desktop, android, ios) implement it; the default allows
/// everything.
///
/// Like the core, a policy must be deterministic: it gets time as an argument and must not read a
/// clock or do IO.
///
/// A hook gets a [`PolicyJob`]: the job's id, its request without the input payload, and its
/// attempt — a policy decides on the scheduling fields.
pub trait Policy: Send + fmt::Debug + 'static {
    /// Called when a request is enqueued; an `Err` rejects it with that reason.
    fn admit(
        &mut self,
        _now: Time,
        _request: &JobRequest,
        _cx: PolicyContext<'_>,
    ) -> Result<(), String> {
        Ok(())
    }

    /// Called when `job` is due, its constraints hold and a slot is free.
    fn before_start(
        &mut self,
        _now: Time,
        _job: PolicyJob<'_>,
        _cx: PolicyContext<'_>,
    ) -> Decision {
        Decision::Allow
    }

    /// Called with the earliest instant the core needs to act at; returns the instant to wake at
    /// (the same or later, e.g. to batch wake-ups). Deadlines of running jobs are not passed here.
    fn plan_wake(&mut self, _now: Time, earliest: Time) -> Time {
        earliest
    }

    /// Called as `job` starts: an instant at which the policy stops the run, with its reason (an
    /// iOS task budget, a quota running out). The stop is not charged to the job. `None`: only
    /// the job's own time limit applies.
    fn run_deadline(&mut self, _now: Time, _job: PolicyJob<'_>) -> Option<(Time, PolicyStop)> {
        None
    }

    /// Called for each run in progress after the device changed (after [`Policy::on_device`]):
    /// an instant at which the policy stops it now that the device is in its new state (light
    /// Doze beginning while it runs, an iOS processing task when the user starts using the
    /// device), with its reason. It replaces the run's policy deadline when it comes sooner;
    /// as there, the stop is not charged to the job. `None` (the default): nothing changes.
    fn deadline_after_device(
        &mut self,
        _now: Time,
        _job: PolicyJob<'_>,
    ) -> Option<(Time, PolicyStop)> {
        None
    }

    /// Whether a launch uses up the job's request: whatever the run's outcome — it fails, asks
    /// for a retry, hits its own time limit or the policy's deadline — no retry follows (an
    /// iOS `BGTaskRequest` is consumed when the system launches its task: the app must submit
    /// a new one). A one-off job then ends with its run; a recurring one (the app resubmitting
    /// from its handler) moves to its next slot. A stop at the instant
    /// [`Policy::run_deadline`] gave is then `StopReason::Expired` rather than
    /// `StopReason::Policy`. `false` (the default): the job is retried as its request says.
    fn launch_uses_up_request(&self, _job: PolicyJob<'_>) -> bool {
        false
    }

    /// If the policy holds every start at `now` (a device in Doze), until when and why. `why`
    /// reports it for due jobs the core has not asked about yet (it is not woken while held).
    fn hold(&self, _now: Time) -> Option<(Time, PolicyReason)> {
        None
    }

    /// An **app-wide hold**: if at `now` the policy would defer (or deny) *every* job, whichever
    /// it is — the app's quota or rate limit used up, the device in Doze, the app force-quit —
    /// until when (`None`: until the device or the policy changes) and why.
    ///
    /// The core asks this once before it offers ready jobs to [`Policy::before_start`], and
    /// again after each start (a start may use the quota up). While it holds, the core parks
    /// the whole ready lane behind it — no job is asked, none re-filed — and wakes once, at
    /// its end; `why` gives each parked job this reason. A policy that answers `Some` must
    /// answer `before_start` the same way for every job at that instant; per-job holds
    /// (batching, spacing by tag) stay in `before_start`. A policy whose own state changes
    /// with time (Doze's phases) answers an `until` no later than that change, so that the
    /// reason in force is asked again then: the core asks again on its own only at `until`,
    /// on a device change and on `Event::PolicyChanged`.
    fn app_hold(&mut self, _now: Time) -> Option<(Option<Time>, PolicyReason)> {
        None
    }

    /// Asked after the core offered the ready jobs: `true` makes it ask every job the policy
    /// deferred again, at once (a batch the policy was holding jobs for is now complete).
    fn wants_reask(&mut self) -> bool {
        false
    }

    /// The OS state the policy emulates at `now` (Doze's phase on android), for reports and
    /// timelines; `None` (the default) for a policy that emulates none. It must only read: the
    /// simulator asks it whenever its clock moves, and records the changes.
    fn os_state(&self, _now: Time) -> Option<OsState> {
        None
    }

    /// The expedited quota in force at `now` ([`ExpeditedQuota`]); `configured` is the core's
    /// (`Config::expedited_quota`), the answer of a policy that has no quota of its own. The
    /// android profile answers JobScheduler's expedited-job limit of the app's standby bucket,
    /// and no limit while charging.
    fn expedited_quota(&mut self, _now: Time, configured: &ExpeditedQuota) -> ExpeditedQuota {
        *configured
    }

    /// Called when the device state changes (before the core looks at any job again). Every job
    /// the policy deferred or denied is asked again afterwards.
    fn on_device(&mut self, _now: Time, _device: &DeviceState) {}

    /// Called after a job was started.
    fn on_started(&mut self, _now: Time, _job: PolicyJob<'_>) {}

    /// Called after a run ended, with how long it ran.
    fn on_finished(&mut self, _now: Time, _job: PolicyJob<'_>, _ran_for: Duration) {}
}

/// A boxed policy is a policy (profiles are chosen at run time).
impl Policy for Box<dyn Policy> {
    fn admit(&mut self, now: Time, r: &JobRequest, cx: PolicyContext<'_>) -> Result<(), String> {
        (**self).admit(now, r, cx)
    }
    fn before_start(&mut self, now: Time, job: PolicyJob<'_>, cx: PolicyContext<'_>) -> Decision {
        (**self).before_start(now, job, cx)
    }
    fn plan_wake(&mut self, now: Time, earliest: Time) -> Time {
        (**self).plan_wake(now, earliest)
    }
    fn run_deadline(&mut self, now: Time, job: PolicyJob<'_>) -> Option<(Time, PolicyStop)> {
        (**self).run_deadline(now, job)
    }
    fn deadline_after_device(
        &mut self,
        now: Time,
        job: PolicyJob<'_>,
    ) -> Option<(Time, PolicyStop)> {
        (**self).deadline_after_device(now, job)
    }
    fn launch_uses_up_request(&self, job: PolicyJob<'_>) -> bool {
        (**self).launch_uses_up_request(job)
    }
    fn hold(&self, now: Time) -> Option<(Time, PolicyReason)> {
        (**self).hold(now)
    }
    fn app_hold(&mut self, now: Time) -> Option<(Option<Time>, PolicyReason)> {
        (**self).app_hold(now)
    }
    fn wants_reask(&mut self) -> bool {
        (**self).wants_reask()
    }
    fn os_state(&self, now: Time) -> Option<OsState> {
        (**self).os_state(now)
    }
    fn expedited_quota(&mut self, now: Time, configured: &ExpeditedQuota) -> ExpeditedQuota {
        (**self).expedited_quota(now, configured)
    }
    fn on_device(&mut self, now: Time, device: &DeviceState) {
        (**self).on_device(now, device)
    }
    fn on_started(&mut self, now: Time, job: PolicyJob<'_>) {
        (**self).on_started(now, job)
    }
    fn on_finished(&mut self, now: Time, job: PolicyJob<'_>, ran_for: Duration) {
        (**self).on_finished(now, job, ran_for)
    }
}

/// The default policy: everything is allowed at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Policy for AllowAll {}
