//! The Android profile: Doze (light and deep, with maintenance windows), App Standby buckets
//! with their job-time and job-count quotas, JobScheduler's limits, WorkManager's minimums.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backwork_constraints::DeviceState;
use backwork_scheduler::{
    Decision, ExpeditedQuota, HoldKind, JobId, JobRequest, OsState, Policy, PolicyContext,
    PolicyJob, PolicyReason, PolicyStop, Time,
};
use serde::{Deserialize, Serialize};

/// An App Standby bucket: how recently and often the user used the app.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// In use now or very recently.
    #[default]
    Active,
    /// Used often.
    WorkingSet,
    /// Used regularly, not daily.
    Frequent,
    /// Rarely used.
    Rare,
    /// Restricted (misbehaving, or not used for a long time).
    Restricted,
}

impl std::fmt::Display for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Bucket::Active => "active",
            Bucket::WorkingSet => "working_set",
            Bucket::Frequent => "frequent",
            Bucket::Rare => "rare",
            Bucket::Restricted => "restricted",
        })
    }
}

/// A bucket's quota as AOSP's `QuotaController` keeps it: within any rolling `window`, at most
/// `max_job_time` of execution time (counted over timing sessions: overlapping runs once), at
/// most `max_jobs` jobs and at most `max_sessions` timing sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketLimits {
    /// The rolling window (`WINDOW_SIZE_*_MS`).
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Execution time allowed per window (`ALLOWED_TIME_PER_PERIOD_MS`, 10 min).
    #[serde(with = "humantime_serde")]
    pub max_job_time: Duration,
    /// Jobs allowed per window (`MAX_JOB_COUNT_*`).
    pub max_jobs: u32,
    /// Timing sessions allowed per window (`MAX_SESSION_COUNT_*`).
    #[serde(default = "unlimited_sessions")]
    pub max_sessions: u32,
}

fn unlimited_sessions() -> u32 {
    u32::MAX
}

const fn limits(window_mins: u64, max_jobs: u32, max_sessions: u32) -> BucketLimits {
    BucketLimits {
        window: Duration::from_secs(window_mins * 60),
        max_job_time: Duration::from_secs(600),
        max_jobs,
        max_sessions,
    }
}

/// JobScheduler's expedited-job quota: run time of the app's expedited jobs allowed per rolling
/// window, by standby bucket — AOSP `QuotaController.QcConstants` (Android 12 and 13):
/// `EJ_LIMIT_ACTIVE_MS` 30 min, `EJ_LIMIT_WORKING_MS` 30 min, `EJ_LIMIT_FREQUENT_MS` 10 min,
/// `EJ_LIMIT_RARE_MS` 10 min, `EJ_LIMIT_RESTRICTED_MS` 5 min, in `EJ_WINDOW_SIZE_MS` 24 h.
/// While the device charges there is no limit (outside the restricted bucket), as for the
/// regular quota (`isQuotaFreeLocked`). Not modelled: the top-app and temp-allowlist
/// exemptions and the rewards for user interaction (`EJ_REWARD_*`), which need an app in the
/// foreground — this profile emulates a backgrounded app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExpeditedLimits {
    /// The rolling window (`EJ_WINDOW_SIZE_MS`).
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Active bucket (`EJ_LIMIT_ACTIVE_MS`).
    #[serde(with = "humantime_serde")]
    pub active: Duration,
    /// Working-set bucket (`EJ_LIMIT_WORKING_MS`).
    #[serde(with = "humantime_serde")]
    pub working_set: Duration,
    /// Frequent bucket (`EJ_LIMIT_FREQUENT_MS`).
    #[serde(with = "humantime_serde")]
    pub frequent: Duration,
    /// Rare bucket (`EJ_LIMIT_RARE_MS`).
    #[serde(with = "humantime_serde")]
    pub rare: Duration,
    /// Restricted bucket (`EJ_LIMIT_RESTRICTED_MS`).
    #[serde(with = "humantime_serde")]
    pub restricted: Duration,
}

impl Default for ExpeditedLimits {
    fn default() -> Self {
        let m = |n: u64| Duration::from_secs(n * 60);
        ExpeditedLimits {
            window: m(24 * 60),
            active: m(30),
            working_set: m(30),
            frequent: m(10),
            rare: m(10),
            restricted: m(5),
        }
    }
}

/// Every number of the Android profile (DESIGN §6), each overridable — as Android's DeviceConfig
/// overrides them. Durations read like `"60m"` in a scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AndroidSettings {
    /// Light Doze starts this long after the screen goes off on battery.
    #[serde(with = "humantime_serde")]
    pub light_idle_after: Duration,
    /// When light Doze is due while jobs run, it waits for them to finish, at most this long;
    /// then it begins and stops them (DeviceIdleController's `LIGHT_STATE_PRE_IDLE` and
    /// `LIGHT_PRE_IDLE_TIMEOUT`, 3 min in Android 12 and 13: "the amount of time we will wait
    /// from the point where we decide we would like to go idle until we actually do, while
    /// waiting for jobs and other current activity to finish").
    #[serde(with = "humantime_serde")]
    pub light_pre_idle_timeout: Duration,
    /// The first light-idle period; each next one is longer by this much…
    #[serde(with = "humantime_serde")]
    pub light_idle_step: Duration,
    /// …up to this (5 → 10 → 15 min).
    #[serde(with = "humantime_serde")]
    pub light_idle_max: Duration,
    /// A light maintenance window lasts at least this (`LIGHT_IDLE_MAINTENANCE_MIN_BUDGET`,
    /// 1 min): the budget starts here, and a window that ends early, its work done, adds what
    /// it left of this minimum to the next one's budget…
    #[serde(with = "humantime_serde")]
    pub light_maintenance_min: Duration,
    /// …which is at most this (`LIGHT_IDLE_MAINTENANCE_MAX_BUDGET`, 5 min). Windows that run
    /// their whole budget leave the minimum to the next.
    #[serde(with = "humantime_serde")]
    pub light_maintenance_max: Duration,
    /// Deep Doze starts this long after the screen goes off on battery, the device stationary
    /// (DeviceIdleController's `INACTIVE_TIMEOUT` + `IDLE_AFTER_INACTIVE_TIMEOUT`, 30 + 30 min).
    #[serde(with = "humantime_serde")]
    pub deep_idle_after: Duration,
    /// …and no sooner than this after the device stopped moving: motion sends
    /// DeviceIdleController back to `STATE_INACTIVE` with `MOTION_INACTIVE_TIMEOUT` (10 min),
    /// then `IDLE_AFTER_INACTIVE_TIMEOUT` (30 min) of looking for motion: 40 min. While the
    /// device moves, deep Doze is not entered, and motion in deep Doze ends it (light Doze starts
    /// over).
    #[serde(with = "humantime_serde")]
    pub deep_idle_after_motion: Duration,
    /// The first deep-idle period; each next one doubles…
    #[serde(with = "humantime_serde")]
    pub deep_idle_initial: Duration,
    /// …up to this (60 → 120 → 240 → 360 min).
    #[serde(with = "humantime_serde")]
    pub deep_idle_max: Duration,
    /// The first deep maintenance window; each next one doubles…
    #[serde(with = "humantime_serde")]
    pub deep_maintenance_min: Duration,
    /// …up to this (5 → 10 min).
    #[serde(with = "humantime_serde")]
    pub deep_maintenance_max: Duration,
    /// The app's standby bucket to begin with.
    pub bucket: Bucket,
    /// Quota of the active bucket.
    pub active: BucketLimits,
    /// Quota of the working-set bucket.
    pub working_set: BucketLimits,
    /// Quota of the frequent bucket.
    pub frequent: BucketLimits,
    /// Quota of the rare bucket.
    pub rare: BucketLimits,
    /// Quota of the restricted bucket.
    pub restricted: BucketLimits,
    /// JobScheduler's cap on scheduled (unfinished) jobs per app (100 on older releases).
    pub max_scheduled_jobs: usize,
    /// JobScheduler's execution limit: a run is stopped after this long.
    #[serde(with = "humantime_serde")]
    pub execution_limit: Duration,
    /// Runs of an app that start less than this after its last timing session ended join that
    /// session (`TIMING_SESSION_COALESCING_DURATION_MS`, 5 s).
    #[serde(with = "humantime_serde")]
    pub session_coalescing: Duration,
    /// An app out of execution-time quota is back in quota once it has this much left
    /// (`IN_QUOTA_BUFFER_MS`, 30 s).
    #[serde(with = "humantime_serde")]
    pub in_quota_buffer: Duration,
    /// Execution time allowed in any 24 hours, whatever the bucket (`MAX_EXECUTION_TIME_MS`,
    /// 4 h).
    #[serde(with = "humantime_serde")]
    pub max_execution_per_day: Duration,
    /// The rate-limiting window of every bucket (`DEFAULT_RATE_LIMITING_WINDOW_MS`: 1 min in
    /// current AOSP; 10 min in Android 11)…
    #[serde(with = "humantime_serde")]
    pub rate_limit_window: Duration,
    /// …and the jobs and sessions allowed in it (`MAX_JOB_COUNT_PER_RATE_LIMITING_WINDOW`,
    /// `MAX_SESSION_COUNT_PER_RATE_LIMITING_WINDOW`: 20 each).
    pub rate_limit_count: u32,
    /// Apps outside the active bucket run their jobs in batches: when this many are ready…
    pub batch_ready_jobs: usize,
    /// …or when the oldest has waited this long.
    #[serde(with = "humantime_serde")]
    pub batch_max_wait: Duration,
    /// The expedited-job quota per bucket.
    pub expedited: ExpeditedLimits,
}

impl Default for AndroidSettings {
    fn default() -> Self {
        let m = |n: u64| Duration::from_secs(n * 60);
        AndroidSettings {
            light_idle_after: m(5),
            light_pre_idle_timeout: m(3),
            light_idle_step: m(5),
            light_idle_max: m(15),
            light_maintenance_min: m(1),
            light_maintenance_max: m(5),
            deep_idle_after: m(60),
            deep_idle_after_motion: m(40),
            deep_idle_initial: m(60),
            deep_idle_max: m(360),
            deep_maintenance_min: m(5),
            deep_maintenance_max: m(10),
            bucket: Bucket::Active,
            // AOSP QuotaController.QcConstants (Android 12+): windows 10 min / 2 h / 8 h /
            // 24 h / 24 h, MAX_JOB_COUNT 75 / 120 / 200 / 48 / 10, MAX_SESSION_COUNT
            // 75 / 10 / 8 / 3 / 1
            active: limits(10, 75, 75),
            working_set: limits(120, 120, 10),
            frequent: limits(480, 200, 8),
            rare: limits(1440, 48, 3),
            restricted: limits(1440, 10, 1),
            session_coalescing: Duration::from_secs(5),
            in_quota_buffer: Duration::from_secs(30),
            max_execution_per_day: m(240),
            rate_limit_window: m(1),
            rate_limit_count: 20,
            max_scheduled_jobs: 150,
            execution_limit: m(10),
            batch_ready_jobs: 5,
            batch_max_wait: m(31),
            expedited: ExpeditedLimits::default(),
        }
    }
}

impl AndroidSettings {
    /// Refuses numbers Doze cannot run with: an idle period or a maintenance window of zero
    /// length would make Doze step through phases without time passing. The error names the
    /// setting and says what to do.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            ("light_idle_step", self.light_idle_step),
            ("light_idle_max", self.light_idle_max),
            ("light_maintenance_min", self.light_maintenance_min),
            ("light_maintenance_max", self.light_maintenance_max),
            ("deep_idle_initial", self.deep_idle_initial),
            ("deep_idle_max", self.deep_idle_max),
            ("deep_maintenance_min", self.deep_maintenance_min),
            ("deep_maintenance_max", self.deep_maintenance_max),
            ("rate_limit_window", self.rate_limit_window),
            ("expedited.window", self.expedited.window),
        ];
        for (name, d) in positive {
            if d < Duration::from_secs(1) {
                return Err(format!(
                    "{name} = {} is too short: Doze and the quotas need periods of at least 1s",
                    humantime::format_duration(d)
                ));
            }
        }
        for (name, l) in [
            ("active", self.active),
            ("working_set", self.working_set),
            ("frequent", self.frequent),
            ("rare", self.rare),
            ("restricted", self.restricted),
        ] {
            if l.window < Duration::from_secs(1) {
                return Err(format!(
                    "the {name} bucket's window is too short: give it at least 1s"
                ));
            }
        }
        Ok(())
    }
}

/// Where Doze is at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DozePhase {
    /// Not dozing (screen on, or charging, or not long enough off).
    Awake,
    /// Idle: no jobs until `until`, when a maintenance window opens.
    Idle {
        /// Deep (true) or light Doze.
        deep: bool,
        /// The end of the idle period.
        until: Time,
    },
    /// A maintenance window: jobs may run until `until`.
    Maintenance {
        /// Deep (true) or light Doze.
        deep: bool,
        /// The start of the window.
        since: Time,
        /// The end of the window.
        until: Time,
    },
}

fn add(t: Time, d: Duration) -> Time {
    backwork_scheduler::core::add(t, d)
}

use backwork_scheduler::core::sub;

/// Walks an idle/maintenance cycle from `start` to `now` (at most a few dozen steps a week):
/// the phase at `now` and the number of the cycle it is in.
fn walk(
    start: Time,
    now: Time,
    deep: bool,
    idle: impl Fn(u32) -> Duration,
    maintenance: impl Fn(u32) -> Duration,
) -> (DozePhase, u32) {
    let mut t = start;
    for k in 0..u32::MAX {
        let idle_end = add(t, idle(k));
        if now < idle_end {
            let phase = DozePhase::Idle {
                deep,
                until: idle_end,
            };
            return (phase, k);
        }
        let window_end = add(idle_end, maintenance(k));
        if now < window_end {
            let phase = DozePhase::Maintenance {
                deep,
                since: idle_end,
                until: window_end,
            };
            return (phase, k);
        }
        t = window_end;
    }
    (DozePhase::Awake, 0)
}

fn doubling(first: Duration, max: Duration, k: u32) -> Duration {
    first.saturating_mul(1u32 << k.min(20)).min(max)
}

/// Held back until an instant, for a reason.
type Hold = (Time, PolicyReason);

/// What the OS knows about the app besides the device: its standby bucket (android), and
/// whether the user force-quit it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppState {
    /// The standby bucket (android).
    pub bucket: Bucket,
    /// Force-quit by the user: nothing runs until the app is opened again.
    pub force_quit: bool,
}

/// Changes the app's state from outside (the simulator's "app usage", "force-quit"). Tell the
/// core with `Event::PolicyChanged` afterwards.
#[derive(Debug, Clone, Default)]
pub struct AppControl(Arc<Mutex<AppState>>);

impl AppControl {
    fn with<T>(&self, f: impl FnOnce(&mut AppState) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Moves the app to `bucket`.
    pub fn set_bucket(&self, bucket: Bucket) {
        self.with(|a| a.bucket = bucket);
    }

    /// The app's bucket.
    pub fn bucket(&self) -> Bucket {
        self.with(|a| a.bucket)
    }

    /// The user force-quits the app (`true`) or opens it again (`false`).
    pub fn set_force_quit(&self, quit: bool) {
        self.with(|a| a.force_quit = quit);
    }

    /// The app's state.
    pub fn state(&self) -> AppState {
        self.with(|a| *a)
    }
}

/// Why every profile holds the app's jobs while it is force-quit.
pub(crate) fn force_quit_reason() -> PolicyReason {
    PolicyReason::new(
        "force_quit",
        HoldKind::AppStopped,
        "the app was force-quit; nothing runs until it is opened again",
    )
}

/// The refusal every profile gives while the app is force-quit.
pub(crate) fn force_quit_decision() -> Decision {
    Decision::Deny {
        reason: force_quit_reason(),
    }
}

fn doze_reason(deep: bool) -> PolicyReason {
    let (code, which) = if deep {
        ("doze_deep", "deep")
    } else {
        ("doze_light", "light")
    };
    PolicyReason::new(
        code,
        HoldKind::DeviceIdle,
        format!("{which} Doze until the next maintenance window"),
    )
}

/// A timing session of `QuotaController`: a stretch of time in which at least one of the
/// app's jobs ran on battery; runs that overlap share it, and a run that starts within the
/// coalescing time of its end joins it.
#[derive(Debug, Clone, Copy)]
struct Session {
    start: Time,
    /// `None` while jobs of the session run.
    end: Option<Time>,
    /// Jobs started in it.
    jobs: u32,
    /// Jobs started in every earlier session (since the policy began): window sums by
    /// difference, without walking the sessions.
    jobs_before: u64,
    /// The lengths of every earlier session (all closed) added up.
    time_before: Duration,
}

impl Session {
    /// The first session after `self` (closed), starting at `start` with one job.
    fn next(&self, start: Time) -> Session {
        let end = self.end.unwrap_or(start);
        Session {
            start,
            end: None,
            jobs: 1,
            jobs_before: self.jobs_before + u64::from(self.jobs),
            time_before: self.time_before + (end - self.start).to_std().unwrap_or_default(),
        }
    }
}

/// The rate-limiting counters of the window that ends at `ends`.
#[derive(Debug, Clone, Copy)]
struct RateWindow {
    ends: Time,
    jobs: u32,
    sessions: u32,
}

/// What an app used within a window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Usage {
    time: Duration,
    jobs: u32,
    sessions: u32,
}

/// The Android policy. Build it with [`AndroidPolicy::new`]; [`AndroidPolicy::control`] changes
/// the standby bucket.
#[derive(Debug)]
pub struct AndroidPolicy {
    settings: AndroidSettings,
    bucket: AppControl,
    charging: bool,
    /// Since when the screen has been off on battery (Doze counts from here).
    doze_since: Option<Time>,
    /// A light maintenance window that ended early, its work done: light-idle period `k`
    /// starts at this instant (DeviceIdleController's `exitMaintenanceEarlyIfNeededLocked`).
    ///
    /// With it, the budget of the next light maintenance window (`mCurLightIdleBudget` after
    /// the early exit).
    light_cut: Option<(Time, u32, Duration)>,
    /// The last light maintenance window a job ran in, `(since, until, k)`: light Doze is
    /// walked on from it (the windows after it that no job ran in had nothing to do and ended
    /// at once). A later `light_cut` takes over.
    light_visit: Option<(Time, Time, u32)>,
    /// The same for a deep maintenance window (AOSP ends both kinds early).
    deep_cut: Option<(Time, u32)>,
    /// The device is moving: deep Doze waits until it is still.
    moving: bool,
    /// When the device last stopped moving.
    still_since: Option<Time>,
    /// Motion ended deep Doze at this instant: light Doze counts from here, not the screen-off.
    light_from: Option<Time>,
    /// Jobs running now (on battery or not).
    running: usize,
    /// Since when jobs have been running without a break (`None`: none runs).
    busy_since: Option<Time>,
    /// Light Doze was due while jobs ran (`LIGHT_STATE_PRE_IDLE`): it began at this instant,
    /// when they finished or `light_pre_idle_timeout` ran out ("s:predone").
    pre_idle_end: Option<Time>,
    /// The app's timing sessions, oldest first: one history across bucket changes.
    sessions: VecDeque<Session>,
    /// The jobs running in the open session (started on battery).
    open: std::collections::BTreeSet<JobId>,
    /// The app's regular (not expedited) runs in progress, on battery or not: those the
    /// quota starts timing when the charger is unplugged.
    running_regular: std::collections::BTreeSet<JobId>,
    /// Jobs held for a batch (not in the active bucket, on battery), since when.
    batch: std::collections::BTreeMap<JobId, Time>,
    /// Jobs of a batch that was let go: they start whenever a slot is free.
    released: std::collections::BTreeSet<JobId>,
    /// A batch was let go: the core should ask the held jobs again.
    release: bool,
    /// The rate-limiting window in force: AOSP QuotaController counts starts and new sessions
    /// (`jobCountInRateLimitingWindow`, `sessionCountInRateLimitingWindow`) in a window that
    /// opens at the first start after the last one ended (`incrementJobCountLocked`), not over
    /// the sessions that reach into a rolling minute.
    rate: Option<RateWindow>,
    /// The last quota answer, for the instant it was computed at.
    quota_memo: Option<(Time, Bucket, Option<Hold>)>,
    /// The app's usage at an instant over the bucket's window, the rate-limiting window and a
    /// day; kept up to date by starts at that same instant (a thousand jobs starting together
    /// scan the sessions once, not a thousand times).
    usage_memo: Option<(Time, Bucket, [Usage; 3])>,
}

impl AndroidPolicy {
    /// A policy with these settings, the device awake and charging until told otherwise.
    pub fn new(settings: AndroidSettings) -> Self {
        AndroidPolicy {
            bucket: AppControl(Arc::new(Mutex::new(AppState {
                bucket: settings.bucket,
                force_quit: false,
            }))),
            settings,
            charging: true,
            doze_since: None,
            light_cut: None,
            light_visit: None,
            deep_cut: None,
            moving: false,
            still_since: None,
            light_from: None,
            running: 0,
            busy_since: None,
            pre_idle_end: None,
            sessions: VecDeque::new(),
            open: std::collections::BTreeSet::new(),
            running_regular: std::collections::BTreeSet::new(),
            quota_memo: None,
            usage_memo: None,
            rate: None,
            batch: std::collections::BTreeMap::new(),
            released: std::collections::BTreeSet::new(),
            release: false,
        }
    }

    /// A handle that changes the app's standby bucket.
    pub fn control(&self) -> AppControl {
        self.bucket.clone()
    }

    /// Closes the maintenance window open at `now`, if nothing runs in it (its work is done:
    /// AOSP DeviceIdleController's `exitMaintenanceEarlyIfNeededLocked` steps both the light
    /// and the deep state on); true if it closed one.
    fn close_drained_window(&mut self, now: Time) -> bool {
        if self.running != 0 {
            return false;
        }
        let DozePhase::Maintenance { deep, .. } = self.doze_phase(now) else {
            return false;
        };
        if deep {
            let Some((_, k)) = self.deep_phase(now) else {
                return false;
            };
            self.deep_cut = Some((now, k + 1));
        } else {
            let (phase, k) = self.light_phase(now);
            // DeviceIdleController, leaving `LIGHT_STATE_IDLE_MAINTENANCE`: "if (duration <
            // LIGHT_IDLE_MAINTENANCE_MIN_BUDGET) { // We didn't use up all of our minimum
            // budget; add this to the reserve. mCurLightIdleBudget += (MIN_BUDGET - duration);
            // } else { // We used more than our minimum budget; this comes out of the reserve.
            // mCurLightIdleBudget -= (duration - MIN_BUDGET); }" — the window's budget plus
            // the minimum minus what it lasted, either way
            let budget = match phase {
                DozePhase::Maintenance { since, until, .. } => {
                    let planned = (until - since).to_std().unwrap_or_default();
                    let lasted = (now - since).to_std().unwrap_or_default();
                    (planned + self.settings.light_maintenance_min).saturating_sub(lasted)
                }
                _ => self.settings.light_maintenance_min,
            };
            self.light_cut = Some((now, k + 1, budget));
        }
        true
    }

    /// Where Doze is at `now`.
    pub fn doze_phase(&self, now: Time) -> DozePhase {
        let Some(off) = self.doze_since else {
            return DozePhase::Awake;
        };
        let deep_start = self.deep_start(off);
        if let Some((phase, _)) = self.deep_phase(now) {
            return phase;
        }
        let cut = |until: Time| deep_start.map_or(until, |d| until.min(d));
        let (phase, _) = self.light_phase(now);
        // light Doze, cut short where deep Doze begins
        match phase {
            DozePhase::Idle { until, .. } => DozePhase::Idle {
                deep: false,
                until: cut(until),
            },
            DozePhase::Maintenance { since, until, .. } => DozePhase::Maintenance {
                deep: false,
                since,
                until: cut(until),
            },
            DozePhase::Awake => DozePhase::Awake,
        }
    }

    /// Deep Doze at `now`, if it has begun, and the number of its idle/maintenance cycle.
    fn deep_phase(&self, now: Time) -> Option<(DozePhase, u32)> {
        let deep_start = self.deep_start(self.doze_since?)?;
        if now < deep_start {
            return None;
        }
        let s = &self.settings;
        let (from, first) = match self.deep_cut {
            Some((at, k)) if at <= now && at >= deep_start => (at, k),
            _ => (deep_start, 0),
        };
        let (phase, k) = walk(
            from,
            now,
            true,
            |k| doubling(s.deep_idle_initial, s.deep_idle_max, k + first),
            |k| doubling(s.deep_maintenance_min, s.deep_maintenance_max, k + first),
        );
        Some((phase, k + first))
    }

    /// When deep Doze begins for a screen-off at `off`: `deep_idle_after` later, and
    /// `deep_idle_after_motion` after the device last stopped moving; `None` while it moves.
    fn deep_start(&self, off: Time) -> Option<Time> {
        if self.moving {
            return None;
        }
        let s = &self.settings;
        let after_off = add(off, s.deep_idle_after);
        Some(match self.still_since {
            Some(still) => after_off.max(add(still, s.deep_idle_after_motion)),
            None => after_off,
        })
    }

    /// When light Doze is due for a screen-off at `off` (`light_idle_after` later, or after the
    /// motion that ended deep Doze).
    fn light_due(&self, off: Time) -> Time {
        add(
            self.light_from.unwrap_or(off),
            self.settings.light_idle_after,
        )
    }

    /// When light Doze begins, as far as it is known at `now`: when it is due — unless jobs ran
    /// then: DeviceIdleController's `LIGHT_STATE_INACTIVE` step goes to `LIGHT_STATE_PRE_IDLE`
    /// "if (!isOpsInactiveLocked())" ("We have some active ops going on... give them a chance
    /// to finish before going in to our first idle"), and light idle begins when they finish
    /// (`exitMaintenanceEarlyIfNeededLocked`, "s:predone") or `LIGHT_PRE_IDLE_TIMEOUT` after it
    /// was due, whichever comes first. `None`: not yet known (they still run; at the latest
    /// [`AndroidPolicy::pre_idle_deadline`]).
    fn light_idle_start(&self, off: Time, now: Time) -> Option<Time> {
        let due = self.light_due(off);
        if now < due {
            return Some(due); // not yet due: what it will be does not matter before then
        }
        if let Some(end) = self.pre_idle_end.filter(|e| *e >= due) {
            return Some(end);
        }
        if self.running > 0 && self.busy_since.is_some_and(|b| b <= due) {
            let latest = add(due, self.settings.light_pre_idle_timeout);
            return (now >= latest).then_some(latest);
        }
        Some(due)
    }

    /// While the screen is off on battery and light Doze has not begun: the instant by which
    /// it begins whatever runs (when it is due plus `LIGHT_PRE_IDLE_TIMEOUT`), or deep Doze
    /// if that comes first — a run still going then is stopped: DeviceIdleJobsController
    /// restricts jobs in light idle as in deep idle (`updateIdleMode(isDeviceIdleMode() ||
    /// isLightDeviceIdleMode())`).
    fn pre_idle_deadline(&self, now: Time) -> Option<(Time, PolicyStop)> {
        let off = self.doze_since?;
        if !matches!(self.doze_phase(now), DozePhase::Awake) {
            return None;
        }
        let light = add(self.light_due(off), self.settings.light_pre_idle_timeout);
        let deep = self.deep_start(off).filter(|d| *d >= now);
        Some(match deep {
            Some(d) if d < light => (
                d,
                PolicyStop::new("doze_began", "deep Doze began while it ran"),
            ),
            _ => (
                light.max(now),
                PolicyStop::new(
                    "doze_began",
                    format!(
                        "light Doze began while it ran (running jobs get {} to finish: LIGHT_PRE_IDLE_TIMEOUT)",
                        humantime::format_duration(self.settings.light_pre_idle_timeout)
                    ),
                ),
            ),
        })
    }

    /// Light Doze at `now` (ignoring deep Doze), and the number of its idle/maintenance cycle.
    fn light_phase(&self, now: Time) -> (DozePhase, u32) {
        let Some(off) = self.doze_since else {
            return (DozePhase::Awake, 0);
        };
        let s = &self.settings;
        let Some(light_start) = self.light_idle_start(off, now) else {
            return (DozePhase::Awake, 0);
        };
        if now < light_start {
            return (DozePhase::Awake, 0);
        }
        let cut = self.light_cut.filter(|(at, ..)| *at <= now);
        let visit = self
            .light_visit
            .filter(|(since, ..)| *since <= now && cut.is_none_or(|(at, ..)| *since >= at));
        let (from, first, budget) = match (visit, cut) {
            (Some((since, until, k)), _) => {
                if now < until {
                    let phase = DozePhase::Maintenance {
                        deep: false,
                        since,
                        until,
                    };
                    return (phase, k);
                }
                // a window used to its end leaves the minimum to the next
                (until, k + 1, s.light_maintenance_min)
            }
            (None, Some((at, k, budget))) => (at, k, budget),
            (None, None) => (light_start, 0, s.light_maintenance_min),
        };
        // a window lasts the budget, within `LIGHT_IDLE_MAINTENANCE_MIN_BUDGET` and `…_MAX_BUDGET`
        // ("if (mCurLightIdleBudget < MIN_BUDGET) … else if (> MAX_BUDGET) …;
        // scheduleLightAlarmLocked(mCurLightIdleBudget)"), the budget starting at the minimum
        // (`LIGHT_STATE_INACTIVE`). A window no job ran in had nothing to do: it ended at once
        // (`exitMaintenanceEarlyIfNeededLocked`), adding the minimum to the reserve; one a job
        // ran in to its end used its whole budget, leaving the minimum to the next
        let idle = |k: u32| {
            s.light_idle_step
                .saturating_mul((k + first).saturating_add(1))
                .min(s.light_idle_max)
        };
        let (mut t, mut budget) = (from, budget);
        let mut found = (DozePhase::Awake, 0);
        for k in 0..u32::MAX {
            let idle_end = add(t, idle(k));
            if now < idle_end {
                found = (
                    DozePhase::Idle {
                        deep: false,
                        until: idle_end,
                    },
                    k,
                );
                break;
            }
            let len = budget
                .min(s.light_maintenance_max)
                .max(s.light_maintenance_min);
            let end = add(idle_end, len);
            if now < end {
                found = (
                    DozePhase::Maintenance {
                        deep: false,
                        since: idle_end,
                        until: end,
                    },
                    k,
                );
                break;
            }
            (t, budget) = (idle_end, len + s.light_maintenance_min);
        }
        let (phase, k) = found;
        (phase, k + first)
    }

    /// No quota applies while the device charges — except in the restricted bucket: AOSP
    /// QuotaController's `isQuotaFreeLocked`: "Restricted jobs require additional constraints
    /// when charging, so don't immediately mark quota as free when charging".
    fn quota_free(&self) -> bool {
        self.charging && self.bucket.bucket() != Bucket::Restricted
    }

    fn limits(&self) -> (Bucket, BucketLimits) {
        let b = self.bucket.bucket();
        let s = &self.settings;
        let l = match b {
            Bucket::Active => s.active,
            Bucket::WorkingSet => s.working_set,
            Bucket::Frequent => s.frequent,
            Bucket::Rare => s.rare,
            Bucket::Restricted => s.restricted,
        };
        (b, l)
    }

    /// What the app used in the window `(at − window, at]`: execution time over its sessions
    /// (a session still open counts up to `at`), and the jobs and sessions of every session
    /// that reaches into the window — as `QuotaController` counts them.
    fn usage(&self, at: Time, window: Duration) -> Usage {
        self.usage_with(at, window, at)
    }

    /// [`AndroidPolicy::usage`] with sessions still open taken to end at `open_until`.
    ///
    /// The sessions that count are those that started by `at` and had not ended by the window's
    /// start: a range of the session list (sessions are in order and do not overlap; only the
    /// last may be open), found by two binary searches. Their jobs and lengths come from the
    /// running sums each session carries; only the two ends of the range are clipped to the
    /// window — the cost does not grow with the number of sessions.
    fn usage_with(&self, at: Time, window: Duration, open_until: Time) -> Usage {
        let from = sub(at, window);
        let sessions = &self.sessions;
        let hi = sessions.partition_point(|s| s.start <= at);
        let lo = sessions.partition_point(|s| s.end.is_some_and(|e| e <= from));
        if lo >= hi {
            return Usage::default();
        }
        let (first, last) = (&sessions[lo], &sessions[hi - 1]);
        // a session's time inside (from, at]
        let clipped = |s: &Session| {
            let end = s.end.unwrap_or(open_until).min(at);
            let start = s.start.max(from);
            if end > start {
                (end - start).to_std().unwrap_or_default()
            } else {
                Duration::ZERO
            }
        };
        let time = if lo + 1 == hi {
            clipped(first)
        } else {
            // the sessions strictly between the two ends lie wholly inside the window
            let between = sessions[hi - 1]
                .time_before
                .saturating_sub(sessions[lo + 1].time_before);
            clipped(first) + between + clipped(last)
        };
        Usage {
            time,
            jobs: u32::try_from(last.jobs_before + u64::from(last.jobs) - first.jobs_before)
                .unwrap_or(u32::MAX),
            sessions: u32::try_from(hi - lo).unwrap_or(u32::MAX),
        }
    }

    /// The first instant after `now` at which `ok(usage)` holds if the app ran nothing more
    /// (its usage only leaves the window; a session still running taken to end now — the
    /// policy is asked again when it does), found to the second.
    fn free_at(&self, now: Time, window: Duration, ok: impl Fn(Usage) -> bool) -> Option<Time> {
        let usage = |t: Time| self.usage_with(t, window, now);
        let mut hi = add(add(now, window), Duration::from_secs(1));
        if !ok(usage(hi)) {
            return None;
        }
        let mut lo = now;
        while hi - lo > chrono::TimeDelta::seconds(1) {
            let mid = lo + (hi - lo) / 2;
            if ok(usage(mid)) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(hi)
    }

    /// Whether a job starting at `now` joins a timing session rather than opening one: a
    /// session is open, or the last one ended less than the coalescing time ago (it is
    /// reopened, as [`Policy::on_started`] does).
    fn start_joins_session(&self, now: Time) -> bool {
        let coalesce = self.settings.session_coalescing;
        self.sessions
            .back()
            .is_some_and(|s| s.end.is_none_or(|e| add(e, coalesce) > now))
    }

    /// If a quota holds the app's jobs at `now`: until when, and why. The quota is the app's,
    /// so every job asking at one instant gets the same answer (computed once).
    fn quota_block(&mut self, now: Time) -> Option<Hold> {
        let (bucket, l) = self.limits();
        if let Some((at, b, answer)) = &self.quota_memo
            && *at == now
            && *b == bucket
        {
            return answer.clone();
        }
        self.forget_old(now);
        let usages = self.usages(now);
        let answer = self.quota_hold(now, bucket, l, usages);
        self.quota_memo = Some((now, bucket, answer.clone()));
        answer
    }

    /// The app's usage at `now` over the bucket's window, in the rate-limiting window (its
    /// counters) and over a day.
    fn usages(&mut self, now: Time) -> [Usage; 3] {
        let (bucket, l) = self.limits();
        if let Some((at, b, u)) = self.usage_memo
            && at == now
            && b == bucket
        {
            return u;
        }
        let rate = match self.rate {
            Some(w) if now < w.ends => Usage {
                time: Duration::ZERO,
                jobs: w.jobs,
                sessions: w.sessions,
            },
            _ => Usage::default(),
        };
        let u = [
            self.usage(now, l.window),
            rate,
            self.usage(now, Duration::from_secs(86_400)),
        ];
        self.usage_memo = Some((now, bucket, u));
        u
    }

    fn quota_hold(
        &self,
        now: Time,
        bucket: Bucket,
        l: BucketLimits,
        [u, rate, daily]: [Usage; 3],
    ) -> Option<Hold> {
        let s = &self.settings;
        let window = humantime::format_duration(l.window);
        let day = Duration::from_secs(86_400);
        // each check: is the app held, when is it free again, and why
        let until = |w: Duration, ok: &dyn Fn(Usage) -> bool| {
            self.free_at(now, w, ok).unwrap_or_else(|| add(now, w))
        };
        if u.jobs >= l.max_jobs {
            let t = until(l.window, &|u| u.jobs < l.max_jobs);
            let msg = format!(
                "standby bucket {bucket}: {} jobs per {window} used",
                l.max_jobs
            );
            return Some((
                t,
                PolicyReason::new("standby_quota_jobs", HoldKind::Quota, msg),
            ));
        }
        // a start that joins a session (one is open, or the last ended less than the
        // coalescing time ago) opens none, so the session count never holds it:
        // QuotaController.updateExecutionStatsLocked, "Exclude active sessions from the session
        // count so that new jobs aren't prevented from starting due to an app hitting the
        // session limit"
        if u.sessions >= l.max_sessions && !self.start_joins_session(now) {
            let t = until(l.window, &|u| u.sessions < l.max_sessions);
            let msg = format!(
                "standby bucket {bucket}: {} sessions per {window} used",
                l.max_sessions
            );
            return Some((
                t,
                PolicyReason::new("standby_quota_sessions", HoldKind::Quota, msg),
            ));
        }
        if rate.jobs >= s.rate_limit_count || rate.sessions >= s.rate_limit_count {
            let n = s.rate_limit_count;
            // the counters start over when their window ends
            let t = self
                .rate
                .map_or_else(|| add(now, s.rate_limit_window), |w| w.ends);
            let msg = format!(
                "rate limit: {n} jobs or sessions per {} used",
                humantime::format_duration(s.rate_limit_window)
            );
            return Some((t, PolicyReason::new("rate_limit", HoldKind::Quota, msg)));
        }
        let buffer = s.in_quota_buffer;
        // a bucket whose window is no longer than its allowed time (active: 10 min per 10 min)
        // never runs out of it — AOSP QuotaController.getTimeUntilQuotaConsumedLocked: "Since
        // the bucket size equals the allowed time, the app jobs can essentially run until they
        // reach the maximum limit" (the daily one below)
        if l.max_job_time < l.window && u.time >= l.max_job_time {
            let max = l.max_job_time.saturating_sub(buffer);
            let t = until(l.window, &|u| u.time <= max);
            let msg = format!(
                "standby bucket {bucket}: {} of job time per {window} used",
                humantime::format_duration(l.max_job_time)
            );
            return Some((
                t,
                PolicyReason::new("standby_quota_time", HoldKind::Quota, msg),
            ));
        }
        if daily.time >= s.max_execution_per_day {
            let max = s.max_execution_per_day.saturating_sub(buffer);
            let t = until(day, &|u| u.time <= max);
            let msg = format!(
                "{} of job time per day used",
                humantime::format_duration(s.max_execution_per_day)
            );
            return Some((
                t,
                PolicyReason::new("daily_execution_limit", HoldKind::Quota, msg),
            ));
        }
        None
    }

    /// Outside the active bucket, jobs wait until enough are ready or the oldest has waited
    /// long enough; then the whole batch goes. As AOSP JobSchedulerService's
    /// `MaybeReadyJobQueueFunctor` (Android 12 and 13, and the same rules in 14–16) decides
    /// `shouldForceBatchJob`: an expedited job is never batched ("Never batch expedited jobs,
    /// even for RESTRICTED apps"); a job of the restricted bucket always is ("Restricted jobs
    /// must always be batched": no `MAX_NON_ACTIVE_JOB_BATCH_DELAY_MS` lets it go alone); a job
    /// that failed before (`getNumFailures() > 0`: a retry) is not; the others are, outside the
    /// active bucket, until the oldest has waited `MAX_NON_ACTIVE_JOB_BATCH_DELAY_MS`. Whether
    /// the device charges plays no part. A job that is not force-batched lets the whole batch go
    /// (`postProcessLocked`: `unbatchedCount > 0` queues every runnable job).
    fn batch_hold(&mut self, now: Time, job: PolicyJob<'_>) -> Option<Decision> {
        let bucket = self.bucket.bucket();
        let id = job.id;
        if self.released.contains(&id) {
            return None;
        }
        let restricted = bucket == Bucket::Restricted;
        // (an expedited job within its quota never comes here: the core starts it past the
        // profile's holds; one sent back to the ordinary queue is not treated as expedited)
        let unbatched = !restricted && (bucket == Bucket::Active || job.attempt > 0);
        if unbatched {
            // an unbatched job runs, and the batch with it
            if !self.batch.is_empty() {
                self.release = true;
                self.released
                    .extend(std::mem::take(&mut self.batch).into_keys());
            }
            return None;
        }
        let since = *self.batch.entry(id).or_insert(now);
        let oldest = self.batch.values().min().copied().unwrap_or(since);
        let deadline = add(oldest, self.settings.batch_max_wait);
        if self.batch.len() >= self.settings.batch_ready_jobs || (!restricted && now >= deadline) {
            self.release = self.batch.len() > 1;
            self.released
                .extend(std::mem::take(&mut self.batch).into_keys());
            return None;
        }
        let reason = if restricted {
            PolicyReason::new(
                "standby_batching",
                HoldKind::Batching,
                format!(
                    "bucket {bucket}: batched until {} jobs are ready (restricted jobs are always batched)",
                    self.settings.batch_ready_jobs
                ),
            )
        } else {
            PolicyReason::new(
                "standby_batching",
                HoldKind::Batching,
                format!(
                    "bucket {bucket}: batched until {} jobs are ready or the oldest has waited {}",
                    self.settings.batch_ready_jobs,
                    humantime::format_duration(self.settings.batch_max_wait)
                ),
            )
        };
        if restricted {
            // nothing but more ready jobs lets a restricted batch go: no wake-up of its own
            return Some(Decision::Deny { reason });
        }
        Some(Decision::Defer {
            until: deadline,
            reason,
        })
    }

    /// When the app's quota stops its runs (all at once: overlapping runs count once), if it
    /// applies now (not while charging outside the restricted bucket).
    fn quota_deadline(&mut self, now: Time) -> Option<(Time, PolicyStop)> {
        if self.quota_free() {
            return None;
        }
        let mut deadline: Option<(Time, PolicyStop)> = None;
        {
            // the session's time (overlapping runs count once) runs out for every job of the
            // app at the same instant
            let (bucket, l) = self.limits();
            let [u, _, d] = self.usages(now);
            // the bucket's allowed time, where it can run out (not when the window is no longer
            // than the allowed time: see `quota_hold`)…
            if l.max_job_time < l.window {
                let out = add(now, l.max_job_time.saturating_sub(u.time));
                if deadline.as_ref().is_none_or(|x| out < x.0) {
                    deadline = Some((
                        out,
                        PolicyStop::new(
                            "standby_quota_time",
                            format!("standby bucket {bucket}: job-time quota used up"),
                        ),
                    ));
                }
            }
            // …and the daily limit of every bucket (`MAX_EXECUTION_TIME_MS`)
            let daily = self.settings.max_execution_per_day;
            let out = add(now, daily.saturating_sub(d.time));
            if deadline.as_ref().is_none_or(|x| out < x.0) {
                deadline = Some((
                    out,
                    PolicyStop::new(
                        "daily_execution_limit",
                        format!(
                            "{} of job time per day used",
                            humantime::format_duration(daily)
                        ),
                    ),
                ));
            }
        }
        deadline
    }

    /// `n` of the app's jobs start being counted at `now` (started, or running as the charger
    /// is unplugged): they join the open timing session, or one that ended less than the
    /// coalescing time ago, or begin a new one; the rate-limiting window counts them.
    fn count_start(&mut self, now: Time, n: u32) {
        let coalesce = self.settings.session_coalescing;
        let new_session = match self.sessions.back_mut() {
            // a session is open: the run joins it
            Some(s) if s.end.is_none() => {
                s.jobs += n;
                false
            }
            // the last session ended less than the coalescing time ago: it is reopened
            Some(s) if s.end.is_some_and(|e| add(e, coalesce) > now) => {
                s.end = None;
                s.jobs += n;
                false
            }
            _ => {
                let next = match self.sessions.back() {
                    Some(last) => Session {
                        jobs: n,
                        ..last.next(now)
                    },
                    None => Session {
                        start: now,
                        end: None,
                        jobs: n,
                        jobs_before: 0,
                        time_before: Duration::ZERO,
                    },
                };
                self.sessions.push_back(next);
                true
            }
        };
        let rate = match self.rate {
            Some(w) if now < w.ends => w,
            _ => RateWindow {
                ends: add(now, self.settings.rate_limit_window),
                jobs: 0,
                sessions: 0,
            },
        };
        self.rate = Some(RateWindow {
            jobs: rate.jobs.saturating_add(n),
            sessions: rate.sessions.saturating_add(u32::from(new_session)),
            ..rate
        });
        // a start adds a job (and maybe a session) to every window at `now`, and no time yet
        if let Some((at, _, usages)) = &mut self.usage_memo {
            if *at == now {
                for u in usages.iter_mut() {
                    u.jobs += n;
                    u.sessions += u32::from(new_session);
                }
            } else {
                self.usage_memo = None;
            }
        }
    }

    fn forget_old(&mut self, now: Time) {
        let horizon = [
            self.settings.active.window,
            self.settings.working_set.window,
            self.settings.frequent.window,
            self.settings.rare.window,
            self.settings.restricted.window,
        ]
        .into_iter()
        .max()
        .unwrap_or_default();
        let from = sub(now, horizon.max(Duration::from_secs(86_400)));
        while self
            .sessions
            .front()
            .is_some_and(|r| r.end.is_some_and(|e| e < from))
        {
            self.sessions.pop_front();
        }
    }
}

impl Policy for AndroidPolicy {
    fn admit(&mut self, _now: Time, _r: &JobRequest, cx: PolicyContext<'_>) -> Result<(), String> {
        if cx.pending >= self.settings.max_scheduled_jobs {
            return Err(format!(
                "Android allows at most {} scheduled jobs per app; finish or cancel some first",
                self.settings.max_scheduled_jobs
            ));
        }
        Ok(())
    }

    fn before_start(&mut self, now: Time, job: PolicyJob<'_>, _cx: PolicyContext<'_>) -> Decision {
        match self.app_hold(now) {
            Some((None, reason)) => return Decision::Deny { reason },
            Some((Some(until), reason)) => return Decision::Defer { until, reason },
            None => {}
        }
        // batching gathers the jobs that are ready — within quota — (AOSP JobSchedulerService:
        // `MIN_READY_NON_ACTIVE_JOBS_COUNT` counts jobs whose constraints, `WITHIN_QUOTA`
        // among them, are satisfied), so it comes after the app-wide holds
        self.batch_hold(now, job).unwrap_or(Decision::Allow)
    }

    /// Force-quit, Doze's idle periods and the app's quotas (QuotaController keeps them per
    /// app: its execution time, sessions and jobs, the rate limit) hold every job alike.
    fn app_hold(&mut self, now: Time) -> Option<(Option<Time>, PolicyReason)> {
        if self.bucket.state().force_quit {
            return Some((None, force_quit_reason()));
        }
        if let DozePhase::Idle { deep, until } = self.doze_phase(now) {
            return Some((Some(until), doze_reason(deep)));
        }
        if self.quota_free() {
            return None;
        }
        // the quota's hold lasts until it frees, or until Doze's phase changes by itself if
        // that comes first: the core asks again then, so the reason in force is Doze's while
        // the device dozes (a screen-off, a bucket change and the like reach the core as
        // events, which make it ask again anyway)
        let hold = self.quota_block(now)?;
        // nothing of the app can run in a maintenance window while its quota holds it: the
        // window's work is done at once, and it closes now (as `plan_wake` would close it
        // right after this answer) — so the hold in force is Doze's next idle period
        if self.close_drained_window(now)
            && let DozePhase::Idle { deep, until } = self.doze_phase(now)
        {
            return Some((Some(until), doze_reason(deep)));
        }
        let doze_changes = self.os_state(now).and_then(|s| s.until);
        let (until, reason) = hold;
        Some((Some(doze_changes.map_or(until, |at| until.min(at))), reason))
    }

    fn wants_reask(&mut self) -> bool {
        std::mem::take(&mut self.release)
    }

    /// Doze's phase, named after DeviceIdleController's states: `active` (not dozing, or not
    /// yet), `light_idle`, `light_maintenance` (`LIGHT_STATE_IDLE_MAINTENANCE`), `deep_idle`
    /// (`STATE_IDLE`), `deep_maintenance` (`STATE_IDLE_MAINTENANCE`).
    fn os_state(&self, now: Time) -> Option<OsState> {
        Some(match self.doze_phase(now) {
            DozePhase::Awake => OsState {
                code: "active",
                // screen off on battery, light Doze not begun yet
                until: self
                    .doze_since
                    .map(|off| {
                        self.light_idle_start(off, now).unwrap_or_else(|| {
                            add(self.light_due(off), self.settings.light_pre_idle_timeout)
                        })
                    })
                    .filter(|start| *start > now),
            },
            DozePhase::Idle { deep, until } => OsState {
                code: if deep { "deep_idle" } else { "light_idle" },
                until: Some(until),
            },
            DozePhase::Maintenance { deep, until, .. } => OsState {
                code: if deep {
                    "deep_maintenance"
                } else {
                    "light_maintenance"
                },
                until: Some(until),
            },
        })
    }

    fn hold(&self, now: Time) -> Option<(Time, PolicyReason)> {
        match self.doze_phase(now) {
            DozePhase::Idle { deep, until } => Some((until, doze_reason(deep))),
            _ => None,
        }
    }

    fn plan_wake(&mut self, now: Time, earliest: Time) -> Time {
        // a maintenance window whose work is done ends at once, light or deep: nothing runs
        // and nothing is due in it (AOSP DeviceIdleController: `exitMaintenanceEarlyIfNeededLocked`
        // steps both the light and the deep state on)
        if earliest > now {
            self.close_drained_window(now);
        }
        match self.doze_phase(earliest) {
            DozePhase::Idle { until, .. } => until,
            // work due inside a light window that nothing else opens: the window will have
            // ended before it comes, its work done — wake at the window's start to see
            DozePhase::Maintenance {
                deep: false, since, ..
            } if self.running == 0 && since > now && since < earliest => since,
            _ => earliest,
        }
    }

    fn run_deadline(&mut self, now: Time, _job: PolicyJob<'_>) -> Option<(Time, PolicyStop)> {
        let mut deadline = (
            add(now, self.settings.execution_limit),
            PolicyStop::new("execution_limit", "the 10-minute execution limit"),
        );
        if let DozePhase::Maintenance { until, .. } = self.doze_phase(now)
            && until < deadline.0
        {
            deadline = (
                until,
                PolicyStop::new("doze_window_closed", "the Doze maintenance window closed"),
            );
        }
        if let Some(d) = self.pre_idle_deadline(now)
            && d.0 < deadline.0
        {
            deadline = d;
        }
        if let Some(d) = self.quota_deadline(now)
            && d.0 < deadline.0
        {
            deadline = d;
        }
        Some(deadline)
    }

    fn on_device(&mut self, now: Time, device: &DeviceState) {
        let was_free = self.quota_free();
        self.charging = device.charging;
        self.quota_memo = None;
        match (was_free, self.quota_free()) {
            // QuotaController's Timer `onStateChangedLocked`: "if (isQuotaFree) {
            // emitSessionLocked(nowElapsed); }" — plugged in, the open session ends now…
            (false, true) => {
                if !self.open.is_empty() {
                    self.open.clear();
                    if let Some(last) = self.sessions.back_mut()
                        && last.end.is_none()
                    {
                        last.end = Some(now);
                    }
                }
                self.usage_memo = None;
            }
            // …and unplugged, "Start timing from unplug": the runs in progress begin a session
            // now and count as jobs (`mBgJobCount = mRunningBgJobs.size();
            // incrementJobCountLocked(..., mBgJobCount)`)
            (true, false) if !self.running_regular.is_empty() && self.open.is_empty() => {
                self.usage_memo = None;
                let n = u32::try_from(self.running_regular.len()).unwrap_or(u32::MAX);
                self.count_start(now, n);
                self.open = self.running_regular.clone();
            }
            _ => {}
        }
        let dozable = !device.screen_on && !device.charging;
        match (dozable, self.doze_since) {
            (true, None) => self.doze_since = Some(now),
            (false, Some(_)) => {
                self.doze_since = None;
                self.light_cut = None;
                self.light_visit = None;
                self.deep_cut = None;
                self.light_from = None;
                self.pre_idle_end = None;
            }
            _ => {}
        }
        if device.moving != self.moving {
            if device.moving {
                // motion in deep Doze: DeviceIdleController's `handleMotionDetectedLocked`
                // makes both states active (the light one was `LIGHT_STATE_OVERRIDE`) and then
                // inactive again, so light Doze starts over from now
                if let Some(off) = self.doze_since
                    && self.deep_start(off).is_some_and(|d| now >= d)
                {
                    self.light_from = Some(now);
                    self.light_cut = None;
                    self.light_visit = None;
                    self.pre_idle_end = None;
                }
            } else {
                self.still_since = Some(now);
            }
            self.moving = device.moving;
        }
    }

    /// JobScheduler's expedited-job quota of the app's bucket ([`ExpeditedLimits`]), none while
    /// quota is free (charging, outside the restricted bucket).
    fn expedited_quota(&mut self, _now: Time, _configured: &ExpeditedQuota) -> ExpeditedQuota {
        let e = &self.settings.expedited;
        let limit = match self.bucket.bucket() {
            _ if self.quota_free() => None,
            Bucket::Active => Some(e.active),
            Bucket::WorkingSet => Some(e.working_set),
            Bucket::Frequent => Some(e.frequent),
            Bucket::Rare => Some(e.rare),
            Bucket::Restricted => Some(e.restricted),
        };
        ExpeditedQuota {
            limit,
            window: e.window,
        }
    }

    /// A run going when the screen goes off on battery is stopped when Doze begins (light Doze
    /// waiting for it at most `LIGHT_PRE_IDLE_TIMEOUT`); one going when the charger is
    /// unplugged, when the quota that starts timing it then runs out.
    fn deadline_after_device(
        &mut self,
        now: Time,
        job: PolicyJob<'_>,
    ) -> Option<(Time, PolicyStop)> {
        let doze = self.pre_idle_deadline(now);
        // unplugged: the quota times a regular run from now (QuotaController "Start timing
        // from unplug"), and stops it when it runs out
        let quota = if job.expedited {
            None
        } else {
            self.quota_deadline(now)
        };
        match (doze, quota) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    fn on_started(&mut self, now: Time, job: PolicyJob<'_>) {
        if let DozePhase::Maintenance {
            deep: false,
            since,
            until,
        } = self.doze_phase(now)
        {
            let (_, k) = self.light_phase(now);
            self.light_visit = Some((since, until, k));
        }
        if self.running == 0 {
            self.busy_since = Some(now);
        }
        self.running += 1;
        self.batch.remove(&job.id);
        self.released.remove(&job.id);
        self.quota_memo = None;
        if !job.expedited {
            self.running_regular.insert(job.id);
        }
        if self.quota_free() {
            return; // QuotaController counts no session while quota is free
        }
        if job.expedited {
            // an expedited run is charged to the expedited quota, whose timing sessions
            // QuotaController keeps apart (`mEJTimingSessions`, `mEJPkgTimers`); the core keeps
            // that ledger, with the limit `expedited_quota` gives
            return;
        }
        self.count_start(now, 1);
        self.open.insert(job.id);
    }

    fn on_finished(&mut self, now: Time, job: PolicyJob<'_>, _ran_for: Duration) {
        self.running = self.running.saturating_sub(1);
        self.running_regular.remove(&job.id);
        if self.running == 0 {
            // the last run ended: a light Doze that waited for it (`LIGHT_STATE_PRE_IDLE`)
            // begins now ("s:predone")
            if let (Some(busy), Some(off)) = (self.busy_since, self.doze_since) {
                let due = self.light_due(off);
                if busy <= due && now > due && self.pre_idle_end.is_none_or(|e| e < due) {
                    self.pre_idle_end =
                        Some(now.min(add(due, self.settings.light_pre_idle_timeout)));
                }
            }
            self.busy_since = None;
        }
        self.quota_memo = None;
        if self.open.remove(&job.id)
            && self.open.is_empty()
            && let Some(s) = self.sessions.back_mut()
        {
            s.end = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Zero-length Doze phases would make Doze step without time passing (the simulator hung on
    /// them): they are refused, naming the setting.
    #[test]
    fn zero_length_doze_phases_are_refused() {
        for name in [
            "light_maintenance_max",
            "deep_idle_initial",
            "rate_limit_window",
        ] {
            let mut table = toml::Table::new();
            table.insert(name.into(), toml::Value::String("0s".into()));
            let err = crate::Profile::with_overrides("android", &table).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        assert!(AndroidSettings::default().check().is_ok());
    }

    /// The usage of `sessions` in `(at − window, at]` by its definition: every session that
    /// started by `at` and had not ended by the window's start, clipped to the window.
    fn usage_by_scan(sessions: &[Session], at: Time, window: Duration, open: Time) -> Usage {
        let from = sub(at, window);
        let mut u = Usage::default();
        for s in sessions {
            if s.start > at || s.end.is_some_and(|e| e <= from) {
                continue;
            }
            u.jobs += s.jobs;
            u.sessions += 1;
            let (start, end) = (s.start.max(from), s.end.unwrap_or(open).min(at));
            if end > start {
                u.time += (end - start).to_std().unwrap();
            }
        }
        u
    }

    proptest! {
        /// The running sums give what walking the sessions gives, for any sessions, window and
        /// instant (before, inside and after the sessions; the last one open or not).
        #[test]
        fn usage_from_running_sums_matches_the_definition(
            runs in proptest::collection::vec((1u32..4, 1i64..600, 0i64..900), 1..40),
            last_open in any::<bool>(),
            at_offset in -600i64..40_000,
            window_s in 1u64..90_000,
        ) {
            let t0: Time = "2026-11-23T00:00:00Z".parse().unwrap();
            let mut policy = AndroidPolicy::new(AndroidSettings::default());
            policy.charging = false;
            let mut t = t0;
            for (jobs, length, gap) in &runs {
                let session = match policy.sessions.back() {
                    Some(last) => Session { jobs: *jobs, ..last.next(t) },
                    None => Session {
                        start: t,
                        end: None,
                        jobs: *jobs,
                        jobs_before: 0,
                        time_before: Duration::ZERO,
                    },
                };
                policy.sessions.push_back(session);
                t += chrono::TimeDelta::seconds(*length);
                policy.sessions.back_mut().unwrap().end = Some(t);
                t += chrono::TimeDelta::seconds(6 + gap);
            }
            if last_open {
                policy.sessions.back_mut().unwrap().end = None;
            }
            let at = t0 + chrono::TimeDelta::seconds(at_offset);
            let window = Duration::from_secs(window_s);
            let all: Vec<Session> = policy.sessions.iter().copied().collect();
            prop_assert_eq!(
                policy.usage_with(at, window, at),
                usage_by_scan(&all, at, window, at)
            );
        }
    }
}
