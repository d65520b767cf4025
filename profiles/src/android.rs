//! The Android profile: Doze (light and deep, with maintenance windows), App Standby buckets
//! with their job-time and job-count quotas, JobScheduler's limits, WorkManager's minimums.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backwork_constraints::DeviceState;
use backwork_scheduler::{Decision, Job, JobId, JobRequest, Policy, PolicyContext, Time};
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

/// A bucket's quota: at most `max_job_time` of job execution and `max_jobs` job starts within
/// any rolling `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketLimits {
    /// The rolling window.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Job execution time allowed per window.
    #[serde(with = "humantime_serde")]
    pub max_job_time: Duration,
    /// Job starts allowed per window.
    pub max_jobs: u32,
}

const fn limits(window_mins: u64, max_jobs: u32) -> BucketLimits {
    BucketLimits {
        window: Duration::from_secs(window_mins * 60),
        max_job_time: Duration::from_secs(600),
        max_jobs,
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
    /// The first light-idle period; each next one is longer by this much…
    #[serde(with = "humantime_serde")]
    pub light_idle_step: Duration,
    /// …up to this (5 → 10 → 15 min).
    #[serde(with = "humantime_serde")]
    pub light_idle_max: Duration,
    /// The first light maintenance window; each next one doubles…
    #[serde(with = "humantime_serde")]
    pub light_maintenance_min: Duration,
    /// …up to this (1 → 2 → 4 → 5 min).
    #[serde(with = "humantime_serde")]
    pub light_maintenance_max: Duration,
    /// Deep Doze starts this long after the screen goes off on battery (the device is taken to
    /// be stationary while its screen is off).
    #[serde(with = "humantime_serde")]
    pub deep_idle_after: Duration,
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
    /// Apps outside the active bucket run their jobs in batches: when this many are ready…
    pub batch_ready_jobs: usize,
    /// …or when the oldest has waited this long.
    #[serde(with = "humantime_serde")]
    pub batch_max_wait: Duration,
}

impl Default for AndroidSettings {
    fn default() -> Self {
        let m = |n: u64| Duration::from_secs(n * 60);
        AndroidSettings {
            light_idle_after: m(5),
            light_idle_step: m(5),
            light_idle_max: m(15),
            light_maintenance_min: m(1),
            light_maintenance_max: m(5),
            deep_idle_after: m(60),
            deep_idle_initial: m(60),
            deep_idle_max: m(360),
            deep_maintenance_min: m(5),
            deep_maintenance_max: m(10),
            bucket: Bucket::Active,
            active: limits(10, 75),
            working_set: limits(120, 120),
            frequent: limits(480, 200),
            rare: limits(1440, 48),
            restricted: limits(1440, 10),
            max_scheduled_jobs: 150,
            execution_limit: m(10),
            batch_ready_jobs: 5,
            batch_max_wait: m(31),
        }
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
        /// The end of the window.
        until: Time,
    },
}

fn add(t: Time, d: Duration) -> Time {
    backwork_scheduler::core::add(t, d)
}

/// Walks an idle/maintenance cycle from `start` to `now` (at most a few dozen steps a week).
fn walk(
    start: Time,
    now: Time,
    deep: bool,
    idle: impl Fn(u32) -> Duration,
    maintenance: impl Fn(u32) -> Duration,
) -> DozePhase {
    let mut t = start;
    for k in 0.. {
        let idle_end = add(t, idle(k));
        if now < idle_end {
            return DozePhase::Idle {
                deep,
                until: idle_end,
            };
        }
        let window_end = add(idle_end, maintenance(k));
        if now < window_end {
            return DozePhase::Maintenance {
                deep,
                until: window_end,
            };
        }
        t = window_end;
    }
    DozePhase::Awake
}

fn doubling(first: Duration, max: Duration, k: u32) -> Duration {
    first.saturating_mul(1u32 << k.min(20)).min(max)
}

/// Held back until an instant, for a reason.
type Hold = (Time, String);

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

/// The refusal every profile gives while the app is force-quit.
pub(crate) fn force_quit_decision() -> Decision {
    Decision::Deny {
        reason: "the app was force-quit; nothing runs until it is opened again".into(),
    }
}

fn doze_reason(deep: bool) -> String {
    format!(
        "{} Doze until the next maintenance window",
        if deep { "deep" } else { "light" }
    )
}

#[derive(Debug, Clone, Copy)]
struct Run {
    id: JobId,
    start: Time,
    end: Option<Time>,
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
    /// Job runs that count against the bucket quota (started on battery), oldest first.
    runs: VecDeque<Run>,
    /// The sequence number of `runs`' front (runs are numbered as they start).
    first_run: u64,
    /// Each running job's run number.
    open: std::collections::BTreeMap<JobId, u64>,
    /// The last usage computed: (at, window) → (job time, starts); every job asks at the same
    /// instant, so this saves a scan per job.
    usage_memo: Option<(Time, Duration, (Duration, u32))>,
    /// Jobs held for a batch (not in the active bucket, on battery), since when.
    batch: std::collections::BTreeMap<JobId, Time>,
    /// Jobs of a batch that was let go: they start whenever a slot is free.
    released: std::collections::BTreeSet<JobId>,
    /// A batch was let go: the core should ask the held jobs again.
    release: bool,
    /// The last quota answer, for the instant it was computed at.
    quota_memo: Option<(Time, Bucket, Option<Hold>)>,
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
            runs: VecDeque::new(),
            first_run: 0,
            open: std::collections::BTreeMap::new(),
            usage_memo: None,
            quota_memo: None,
            batch: std::collections::BTreeMap::new(),
            released: std::collections::BTreeSet::new(),
            release: false,
        }
    }

    /// A handle that changes the app's standby bucket.
    pub fn control(&self) -> AppControl {
        self.bucket.clone()
    }

    /// Where Doze is at `now`.
    pub fn doze_phase(&self, now: Time) -> DozePhase {
        let Some(off) = self.doze_since else {
            return DozePhase::Awake;
        };
        let s = &self.settings;
        let deep_start = add(off, s.deep_idle_after);
        if now >= deep_start {
            return walk(
                deep_start,
                now,
                true,
                |k| doubling(s.deep_idle_initial, s.deep_idle_max, k),
                |k| doubling(s.deep_maintenance_min, s.deep_maintenance_max, k),
            );
        }
        let light_start = add(off, s.light_idle_after);
        if now < light_start {
            return DozePhase::Awake;
        }
        // light Doze, cut short where deep Doze begins
        match walk(
            light_start,
            now,
            false,
            |k| {
                s.light_idle_step
                    .saturating_mul(k.saturating_add(1))
                    .min(s.light_idle_max)
            },
            |k| doubling(s.light_maintenance_min, s.light_maintenance_max, k),
        ) {
            DozePhase::Idle { until, .. } => DozePhase::Idle {
                deep: false,
                until: until.min(deep_start),
            },
            DozePhase::Maintenance { until, .. } => DozePhase::Maintenance {
                deep: false,
                until: until.min(deep_start),
            },
            DozePhase::Awake => DozePhase::Awake,
        }
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

    /// Job time used and jobs started within `[now − window, now]`, and when enough of each
    /// leaves the window.
    fn usage(&mut self, now: Time, window: Duration) -> (Duration, u32) {
        if let Some((at, w, u)) = self.usage_memo
            && at == now
            && w == window
        {
            return u;
        }
        let u = self.scan_usage(now, window);
        self.usage_memo = Some((now, window, u));
        u
    }

    fn scan_usage(&self, now: Time, window: Duration) -> (Duration, u32) {
        let from = now - chrono::TimeDelta::from_std(window).unwrap_or(chrono::TimeDelta::MAX);
        let mut used = Duration::ZERO;
        let mut count = 0;
        for r in &self.runs {
            let end = r.end.unwrap_or(now).min(now);
            if end <= from && r.end.is_some() {
                continue;
            }
            if r.start >= from {
                count += 1;
            }
            let start = r.start.max(from);
            if end > start {
                used += (end - start).to_std().unwrap_or_default();
            }
        }
        (used, count)
    }

    /// When the quota allows a start again: the first instant at which the window no longer
    /// holds the run that tips it over.
    fn quota_free_at(&self, now: Time, l: BucketLimits, by_count: bool) -> Time {
        let w = chrono::TimeDelta::from_std(l.window).unwrap_or(chrono::TimeDelta::MAX);
        if by_count {
            // the oldest start in the window leaves it
            let from = now - w;
            self.runs
                .iter()
                .find(|r| r.start >= from)
                .map_or(now, |r| r.start + w)
        } else {
            // enough job time leaves: the oldest run's end leaves the window
            self.runs
                .iter()
                .filter_map(|r| r.end.map(|e| e + w))
                .find(|t| *t > now)
                .unwrap_or(now + w)
        }
    }

    /// If the bucket's quota is used up at `now`: until when, and why. The quota is the app's,
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
        let (used, count) = self.usage(now, l.window);
        let window = humantime::format_duration(l.window);
        let answer = if count >= l.max_jobs {
            Some((
                self.quota_free_at(now, l, true),
                format!(
                    "standby bucket {bucket}: {} jobs per {window} used",
                    l.max_jobs
                ),
            ))
        } else if used >= l.max_job_time {
            Some((
                self.quota_free_at(now, l, false),
                format!(
                    "standby bucket {bucket}: {} of job time per {window} used",
                    humantime::format_duration(l.max_job_time)
                ),
            ))
        } else {
            None
        };
        self.quota_memo = Some((now, bucket, answer.clone()));
        answer
    }

    /// Outside the active bucket, jobs wait until enough are ready or the oldest has waited
    /// long enough; then the whole batch goes.
    fn batch_hold(&mut self, now: Time, id: JobId) -> Option<Decision> {
        let bucket = self.bucket.bucket();
        if bucket == Bucket::Active || self.released.contains(&id) {
            return None;
        }
        let since = *self.batch.entry(id).or_insert(now);
        let oldest = self.batch.values().min().copied().unwrap_or(since);
        let deadline = add(oldest, self.settings.batch_max_wait);
        if self.batch.len() >= self.settings.batch_ready_jobs || now >= deadline {
            self.release = self.batch.len() > 1;
            self.released
                .extend(std::mem::take(&mut self.batch).into_keys());
            return None;
        }
        Some(Decision::Defer {
            until: deadline,
            reason: format!(
                "bucket {bucket}: batched until {} jobs are ready or the oldest has waited {}",
                self.settings.batch_ready_jobs,
                humantime::format_duration(self.settings.batch_max_wait)
            ),
        })
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
        let from = now - chrono::TimeDelta::from_std(horizon).unwrap_or(chrono::TimeDelta::MAX);
        while self
            .runs
            .front()
            .is_some_and(|r| r.end.is_some_and(|e| e < from))
        {
            self.runs.pop_front();
            self.first_run += 1;
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

    fn before_start(&mut self, now: Time, job: &Job, _cx: PolicyContext<'_>) -> Decision {
        if self.bucket.state().force_quit {
            return force_quit_decision();
        }
        if let DozePhase::Idle { deep, until } = self.doze_phase(now) {
            return Decision::Defer {
                until,
                reason: doze_reason(deep),
            };
        }
        if self.charging {
            return Decision::Allow; // no quotas or batching while charging
        }
        if let Some(hold) = self.batch_hold(now, job.id) {
            return hold;
        }
        match self.quota_block(now) {
            Some((until, reason)) => Decision::Defer { until, reason },
            None => Decision::Allow,
        }
    }

    fn wants_reask(&mut self) -> bool {
        std::mem::take(&mut self.release)
    }

    fn hold(&self, now: Time) -> Option<(Time, String)> {
        match self.doze_phase(now) {
            DozePhase::Idle { deep, until } => Some((until, doze_reason(deep))),
            _ => None,
        }
    }

    fn plan_wake(&mut self, _now: Time, earliest: Time) -> Time {
        match self.doze_phase(earliest) {
            DozePhase::Idle { until, .. } => until,
            _ => earliest,
        }
    }

    fn run_deadline(&mut self, now: Time, _job: &Job) -> Option<(Time, String)> {
        let mut deadline = (
            add(now, self.settings.execution_limit),
            "the 10-minute execution limit".to_string(),
        );
        if let DozePhase::Maintenance { until, .. } = self.doze_phase(now)
            && until < deadline.0
        {
            deadline = (until, "the Doze maintenance window closed".into());
        }
        if !self.charging {
            let (bucket, l) = self.limits();
            let (used, _) = self.usage(now, l.window);
            let out = add(now, l.max_job_time.saturating_sub(used));
            if out < deadline.0 {
                deadline = (
                    out,
                    format!("standby bucket {bucket}: job-time quota used up"),
                );
            }
        }
        Some(deadline)
    }

    fn on_device(&mut self, now: Time, device: &DeviceState) {
        self.charging = device.charging;
        self.quota_memo = None;
        let dozable = !device.screen_on && !device.charging;
        match (dozable, self.doze_since) {
            (true, None) => self.doze_since = Some(now),
            (false, Some(_)) => self.doze_since = None,
            _ => {}
        }
    }

    fn on_started(&mut self, now: Time, job: &Job) {
        self.batch.remove(&job.id);
        self.released.remove(&job.id);
        self.usage_memo = None;
        self.quota_memo = None;
        if !self.charging {
            self.open
                .insert(job.id, self.first_run + self.runs.len() as u64);
            self.runs.push_back(Run {
                id: job.id,
                start: now,
                end: None,
            });
        }
    }

    fn on_finished(&mut self, now: Time, job: &Job, _ran_for: Duration) {
        self.usage_memo = None;
        self.quota_memo = None;
        let Some(n) = self.open.remove(&job.id) else {
            return;
        };
        let index = n
            .checked_sub(self.first_run)
            .and_then(|i| usize::try_from(i).ok());
        if let Some(r) = index.and_then(|i| self.runs.get_mut(i))
            && r.id == job.id
        {
            r.end = Some(now);
        }
    }
}
