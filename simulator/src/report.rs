//! What a simulation found: per job, its runs and why it was held back; in all, the wake-ups.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use backwork_constraints::DeviceState;
use backwork_scheduler::{RunResult, Time};
use serde::{Deserialize, Serialize};

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// When it started.
    pub start: Time,
    /// When it ended.
    pub end: Time,
    /// How it ended: `success`, `retry` (the simulated work failed), `stopped` (see `stop`) or
    /// `crashed` (a reboot).
    pub outcome: RunResult,
    /// For a stopped run, the stable code of what stopped it: a key of [`Report::reasons`]
    /// (`execution_limit`, `standby_quota_time`, `ios_refresh_budget`, `timeout`,
    /// `constraint_lost_network`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    /// The last progress (a percentage) the run reported before it ended — what `show` would
    /// have shown last — from the job's `outcome.progress`; `None` if it reported none by then.
    #[serde(default)]
    pub progress: Option<f64>,
}

/// A stretch of time a job waited, and why: one reason code per interval (a wait for two
/// reasons at once is two intervals over the same time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldInterval {
    /// When the wait for this reason began.
    pub start: Time,
    /// When it ended.
    pub end: Time,
    /// The reason code: a key of [`JobReport::held_back_ms`], or `batching` (the lateness of
    /// [`JobReport::batching_ms`]), or `backoff` (a retry's wait after a failed or stopped run,
    /// part of the job's own schedule and in no total), or `app_wide` (a stretch the job was
    /// ready and waited, with the app's other ready jobs, behind the holds of
    /// [`Report::app_held`] — recorded once for all of them, not per job).
    pub code: Cow<'static, str>,
}

impl HeldInterval {
    /// Its length in milliseconds.
    pub fn ms(&self) -> u64 {
        u64::try_from((self.end - self.start).num_milliseconds()).unwrap_or(0)
    }
}

/// What kind of wait a reason code is, for drawing one colour per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitFamily {
    /// The platform holds every job: Doze, an iOS idle wait or spacing, a force-quit.
    Profile,
    /// A quota of the app is used up (standby bucket, rate limit, daily execution time).
    Quota,
    /// A constraint of the job the device does not meet.
    Constraint,
    /// A retry waiting out its backoff.
    Backoff,
    /// Waiting to share a wake-up (the core's batching, a non-active app's batches).
    Batching,
    /// The core's own reasons (run slots busy, prerequisites, no worker).
    Other,
}

impl WaitFamily {
    /// The family as a reader names it.
    pub fn name(self) -> &'static str {
        match self {
            WaitFamily::Profile => "Doze / profile",
            WaitFamily::Quota => "quota",
            WaitFamily::Constraint => "constraint",
            WaitFamily::Backoff => "backoff",
            WaitFamily::Batching => "batching",
            WaitFamily::Other => "other",
        }
    }
}

/// One job's story.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// Its name.
    pub name: String,
    /// Its schedule, as text.
    pub schedule: String,
    /// Every run, in order.
    pub runs: Vec<RunReport>,
    /// Runs that succeeded.
    pub succeeded: u64,
    /// Runs that failed (and were retried or failed the job).
    pub failed: u64,
    /// Runs stopped before their end (by the profile, a lost constraint, a time limit) or lost
    /// in a reboot.
    pub stopped: u64,
    /// Successful runs per day, over the whole days simulated (`None` for less than a day).
    pub per_day: Option<f64>,
    /// What the profile changed in the request (WorkManager raising a short interval…).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Milliseconds it was held back although its schedule let it run, by reason code (stable
    /// identifiers: `doze_deep`, `standby_quota_sessions`, `constraint_charging`…; their
    /// sentences are in [`Report::reasons`]).
    pub held_back_ms: BTreeMap<String, u64>,
    /// Milliseconds it started later than its schedule and the holds let it, waiting for a
    /// wake-up shared with work due a little later (the scheduler's batching: the desktop
    /// `batch_window`, a flex window) — lateness, not a hold, so apart from `held_back_ms`.
    #[serde(default)]
    pub batching_ms: u64,
    /// How many of its waits to start a quota held back (a wait counts once, however often
    /// the quota lets go and takes hold again before the job starts).
    pub quota_hits: u64,
    /// Stopped runs by the code of what stopped them (the sentences are in
    /// [`Report::reasons`]).
    pub stops: BTreeMap<String, u64>,
    /// Every wait, in the order the waits ended (a retry's backoff when it began); adjacent
    /// intervals of the same code are merged. For each code of `held_back_ms`, the lengths of
    /// its intervals here plus those of its [`Report::app_held`] intervals within this job's
    /// `app_wide` stretches sum to its total; the `batching` intervals sum to `batching_ms`.
    /// [`Report::waits`] gives them with the `app_wide` stretches resolved.
    #[serde(default)]
    pub held: Vec<HeldInterval>,
    /// Why the job was cancelled, if it was (by the scenario, or dropped: an expedited job
    /// whose out-of-quota policy is `drop`, once the expedited quota is used up) — its stop
    /// reason as a sentence; `None` otherwise.
    #[serde(default)]
    pub cancelled: Option<String>,
    /// Why this add made no job of its own, if it did not: a job of its name was there and
    /// its `on_conflict` kept that one (`keep`) or gave it this request (`update`) — a
    /// sentence; `None` otherwise.
    #[serde(default)]
    pub not_enqueued: Option<String>,
}

/// The whole report. The same scenario and seed give the same report, byte for byte.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The scenario's title.
    pub name: String,
    /// The profile.
    pub profile: String,
    /// The seed.
    pub seed: u64,
    /// When the simulation started.
    pub start: Time,
    /// When it ended.
    pub end: Time,
    /// How many times the scheduler's timer woke it.
    pub wakeups: u64,
    /// Wake-ups per day, over the whole days simulated (`None` for less than a day).
    #[serde(default)]
    pub wakeups_per_day: Option<f64>,
    /// How many waits to start a quota held back, over all jobs.
    pub quota_hits: u64,
    /// The sentence of every code in the report: the hold reasons' and the stops'.
    #[serde(default)]
    pub reasons: BTreeMap<String, String>,
    /// When the app's ready jobs were held back all alike (Doze, a quota, the rate limit, busy
    /// run slots…), by code, merged, while any job waited behind it; a job's share is where
    /// these meet its `app_wide` intervals.
    #[serde(default)]
    pub app_held: Vec<HeldInterval>,
    /// The family of every code in the held intervals.
    #[serde(default)]
    pub families: BTreeMap<String, WaitFamily>,
    /// The OS state the profile emulates, from the start and at each change: (instant, code).
    /// android: Doze's phase — `active`, `light_idle`, `light_maintenance`, `deep_idle`,
    /// `deep_maintenance`; empty for a profile without one (desktop, ios).
    #[serde(default)]
    pub os_state: Vec<(Time, String)>,
    /// The app's standby bucket (android), from the start and at each change.
    #[serde(default)]
    pub bucket: Vec<(Time, String)>,
    /// The device-state timeline as applied: (instant, what changed).
    pub timeline: Vec<(Time, String)>,
    /// The device state from the start and after each change.
    pub device: Vec<(Time, DeviceState)>,
    /// Requests the profile refused: (when, job, why).
    pub rejected: Vec<(Time, String, String)>,
    /// One entry per job, in the scenario's order.
    pub jobs: Vec<JobReport>,
}

fn span(ms: u64) -> String {
    backwork_scheduler::core::humanize_approx(std::time::Duration::from_millis(ms))
}

impl Report {
    /// `job`'s waits with its `app_wide` stretches resolved into the app's held intervals
    /// within them, in order of their starts: what the timeline shades.
    pub fn waits(&self, job: &JobReport) -> Vec<HeldInterval> {
        // the app's intervals by code: each code's are disjoint, so sorted by start and end
        let mut by_code: BTreeMap<&str, Vec<&HeldInterval>> = BTreeMap::new();
        for iv in &self.app_held {
            by_code.entry(&iv.code).or_default().push(iv);
        }
        for ivs in by_code.values_mut() {
            ivs.sort_by_key(|iv| iv.start);
        }
        let mut out = Vec::new();
        for iv in &job.held {
            if iv.code != "app_wide" {
                out.push(iv.clone());
                continue;
            }
            for (code, ivs) in &by_code {
                let first = ivs.partition_point(|a| a.end <= iv.start);
                for a in ivs[first..].iter().take_while(|a| a.start < iv.end) {
                    out.push(HeldInterval {
                        start: a.start.max(iv.start),
                        end: a.end.min(iv.end),
                        code: Cow::Owned((*code).to_string()),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.start.cmp(&b.start).then(a.code.cmp(&b.code)));
        out
    }

    /// How long `job` was held back for any reason of its `held_back_ms` (the union of those
    /// waits: time held for two reasons at once counts once).
    fn held_union_ms(&self, job: &JobReport) -> u64 {
        let mut waits: Vec<(Time, Time)> = self
            .waits(job)
            .into_iter()
            .filter(|iv| job.held_back_ms.contains_key(&*iv.code))
            .map(|iv| (iv.start, iv.end))
            .collect();
        waits.sort();
        let mut total = 0;
        let mut open: Option<(Time, Time)> = None;
        for (start, end) in waits {
            open = match open {
                Some((s, e)) if start <= e => Some((s, e.max(end))),
                Some((s, e)) => {
                    total += u64::try_from((e - s).num_milliseconds()).unwrap_or(0);
                    Some((start, end))
                }
                None => Some((start, end)),
            };
        }
        if let Some((s, e)) = open {
            total += u64::try_from((e - s).num_milliseconds()).unwrap_or(0);
        }
        total
    }

    /// The days simulated.
    pub fn days(&self) -> f64 {
        ((self.end - self.start).num_milliseconds() as f64 / 86_400_000.0).max(1e-9)
    }

    /// The report as a person reads it.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let title = if self.name.is_empty() {
            "scenario".to_string()
        } else {
            self.name.clone()
        };
        let length = (self.end - self.start).to_std().unwrap_or_default();
        let _ = writeln!(
            s,
            "{title}: profile {}, {} to {} ({}), seed {}",
            self.profile,
            self.start.format("%Y-%m-%d %H:%M UTC"),
            self.end.format("%Y-%m-%d %H:%M UTC"),
            backwork_scheduler::core::humanize_approx(length),
            self.seed
        );
        // per day only over whole days: an hour says nothing per day, and the half day of a
        // 36-hour run is not a day's worth
        let per_day = self
            .wakeups_per_day
            .map(|d| format!(" ({d:.1} per day over the whole days)"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "wake-ups: {}{per_day}; quota hits: {}",
            self.wakeups, self.quota_hits
        );
        for (at, name, why) in &self.rejected {
            let _ = writeln!(
                s,
                "rejected at {}: {name}: {why}",
                at.format("%Y-%m-%d %H:%M UTC")
            );
        }
        for j in &self.jobs {
            let _ = writeln!(s, "\n{}  ({})", j.name, j.schedule);
            if let Some(why) = &j.not_enqueued {
                let _ = writeln!(s, "  {why}");
                continue;
            }
            let per_day = j
                .per_day
                .map(|d| format!("; {d:.1} successful runs per day"))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "  runs {}: {} succeeded, {} failed, {} stopped{per_day}",
                j.runs.len(),
                j.succeeded,
                j.failed,
                j.stopped,
            );
            for w in &j.warnings {
                let _ = writeln!(s, "  warning: {w}");
            }
            if let Some(why) = &j.cancelled {
                let _ = writeln!(s, "  cancelled: {why}");
            }
            let total: u64 = j.held_back_ms.values().sum();
            if total > 0 {
                let mut by: Vec<(&String, &u64)> = j.held_back_ms.iter().collect();
                by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let reasons: Vec<String> = by
                    .iter()
                    .map(|(code, ms)| {
                        let sentence = self.reasons.get(*code).unwrap_or(code);
                        format!("{sentence}: {}", span(**ms))
                    })
                    .collect();
                // a wait for two reasons at once counts for each: say so, or the sum misleads
                let label = if total > self.held_union_ms(j) {
                    "held back (by reason; a wait for two reasons counts for both)"
                } else {
                    "held back (by reason)"
                };
                let _ = writeln!(s, "  {label}: {}", reasons.join("; "));
            }
            if j.batching_ms > 0 {
                let _ = writeln!(
                    s,
                    "  late by batching (waiting to share a wake-up): {}",
                    span(j.batching_ms)
                );
            }
            if !j.stops.is_empty() {
                let stops: Vec<String> = j
                    .stops
                    .iter()
                    .map(|(code, n)| format!("{}: {n}", self.reasons.get(code).unwrap_or(code)))
                    .collect();
                let _ = writeln!(s, "  stopped (by reason): {}", stops.join("; "));
            }
            if j.quota_hits > 0 {
                let _ = writeln!(s, "  quota hits: {}", j.quota_hits);
            }
            // every run, up to a screenful: the first and the last ones (how a scenario ends
            // matters as much as how it starts); --json has them all
            const HALF: usize = 24;
            let n = j.runs.len();
            let hidden = n.saturating_sub(2 * HALF);
            for (k, r) in j.runs.iter().enumerate() {
                if hidden > 0 && k == HALF {
                    let _ = writeln!(s, "    … {hidden} more runs (--json lists them all)");
                }
                if hidden > 0 && (HALF..n - HALF).contains(&k) {
                    continue;
                }
                let mut outcome = match &r.stop {
                    Some(code) => {
                        format!("stopped: {}", self.reasons.get(code).unwrap_or(code))
                    }
                    None => r.outcome.to_string(),
                };
                if let Some(p) = r.progress {
                    let _ = write!(outcome, " (progress {p}%)");
                }
                let _ = writeln!(
                    s,
                    "    {}  {:>8}  {outcome}",
                    r.start.format("%Y-%m-%d %H:%M:%S"),
                    span(u64::try_from((r.end - r.start).num_milliseconds()).unwrap_or(0)),
                );
            }
        }
        s
    }
}
