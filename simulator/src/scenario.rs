//! The scenario file: a profile, a time span, a seed, a device timeline and jobs. The format is
//! documented with an annotated example in `docs/simulator.md`.

use std::collections::BTreeSet;
use std::time::Duration;

use backwork_constraints::{DeviceState, Network};
use backwork_profiles::Bucket;
use backwork_scheduler::core::{JobOptions, OptionContext};
use backwork_scheduler::{JobRequest, Time};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::SimError;

/// The longest span a scenario may simulate.
const MAX_SPAN: Duration = Duration::from_secs(10 * 365 * 86_400);
/// The most jobs (copies included) a scenario may hold.
const MAX_JOBS: u64 = 100_000;
/// The most times one event may repeat.
const MAX_REPEATS: f64 = 1_000_000.0;

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A title for the report.
    #[serde(default)]
    pub name: String,
    /// `desktop` or `android`.
    #[serde(default = "desktop")]
    pub profile: String,
    /// Overrides of the profile's numbers (for android: the fields of `AndroidSettings`).
    #[serde(default)]
    pub overrides: toml::Table,
    /// When the simulation starts (RFC 3339).
    pub start: Time,
    /// How long it runs (`7d`, `36h`).
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// The seed of every random choice (outcomes); the same seed gives the same report.
    #[serde(default)]
    pub seed: u64,
    /// The device at the start.
    #[serde(default)]
    pub device: DeviceSpec,
    /// Changes over time.
    #[serde(default, rename = "event")]
    pub events: Vec<EventSpec>,
    /// The jobs.
    #[serde(default, rename = "job")]
    pub jobs: Vec<JobSpec>,
}

fn desktop() -> String {
    "desktop".into()
}

/// A device state, or a change of some of its values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// `on` or `off`.
    pub screen: Option<OnOff>,
    /// On AC power.
    pub charging: Option<bool>,
    /// `none`, `metered` or `unmetered`.
    pub network: Option<Network>,
    /// Battery percent.
    pub battery: Option<u8>,
    /// `low` or `ok`.
    pub storage: Option<StorageSpec>,
    /// The device is idle.
    pub idle: Option<bool>,
    /// The device is moving (carried): android's deep Doze waits until it is still.
    pub moving: Option<bool>,
    /// The app's standby bucket (android): at the start in `device`, or from an event on.
    #[serde(default)]
    pub bucket: Option<Bucket>,
}

/// `on` / `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
}

/// `low` / `ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageSpec {
    /// Free space is low.
    Low,
    /// Free space is fine.
    Ok,
}

impl DeviceSpec {
    /// `base` with these values applied.
    pub fn apply(&self, mut base: DeviceState) -> DeviceState {
        if let Some(s) = self.screen {
            base.screen_on = s == OnOff::On;
        }
        if let Some(c) = self.charging {
            base.charging = c;
        }
        if let Some(n) = self.network {
            base.network = n;
        }
        if let Some(b) = self.battery {
            base.battery = Some(b.min(100));
        }
        if let Some(s) = self.storage {
            base.storage_low = s == StorageSpec::Low;
        }
        if let Some(i) = self.idle {
            base.idle = i;
        }
        if let Some(m) = self.moving {
            base.moving = m;
        }
        base
    }

    fn is_empty(&self) -> bool {
        *self == DeviceSpec::default()
    }
}

/// Something that happens at an offset from the start (and again every `repeat`, if given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// When, from the start (`0s`, `14h 30m`).
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// Repeat every this long (`24h` for a daily routine).
    #[serde(default, with = "humantime_serde")]
    pub repeat: Option<Duration>,
    /// Device values that change, and the app's standby bucket (android).
    #[serde(flatten)]
    pub device: DeviceSpec,
    /// The device reboots: runs in progress are lost; the scheduler starts again from its store
    /// after `down`.
    #[serde(default)]
    pub reboot: bool,
    /// How long a reboot keeps the device down.
    #[serde(default, with = "humantime_serde")]
    pub down: Option<Duration>,
    /// The user force-quits the app: nothing runs until it is opened again (ios, android).
    #[serde(default)]
    pub force_quit: bool,
    /// The user opens the app (after a force-quit).
    #[serde(default)]
    pub app_open: bool,
}

impl EventSpec {
    /// True when the event changes nothing.
    pub fn is_empty(&self) -> bool {
        self.device.is_empty() && !self.reboot && !self.force_quit && !self.app_open
    }
}

/// How a job's runs turn out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// The probability that a run fails and asks to be retried.
    #[serde(default)]
    pub fail: f64,
    /// How long each run takes.
    #[serde(default = "one_second", with = "humantime_serde")]
    pub duration: Duration,
    /// The progress each run reports (`WorkContext::set_progress`, a command's
    /// `BACKWORK_PROGRESS_FD` line), as percentages: of `n` values, the `i`-th is reported once
    /// `i/n` of `duration` has passed (the last at the run's end). The report gives each run
    /// the last one reported before it ended ([`crate::RunReport::progress`]).
    #[serde(default)]
    pub progress: Vec<f64>,
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

impl Default for Outcome {
    fn default() -> Self {
        Outcome {
            fail: 0.0,
            duration: one_second(),
            progress: Vec::new(),
        }
    }
}

/// A job: the request fields of `backwork add`, an outcome model, and how many copies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Its name (also its unique name).
    pub name: String,
    /// Enqueued this long after the start.
    #[serde(default, with = "humantime_serde")]
    pub added: Option<Duration>,
    /// Once, this long after it is added (`10m`).
    #[serde(default, rename = "in")]
    pub in_: Option<String>,
    /// Once, at this time: RFC 3339, a date and time in `tz`, or `03:00` / `tomorrow 03:00`
    /// after the job is added.
    #[serde(default)]
    pub at: Option<String>,
    /// Periodic: the interval (`6h`).
    #[serde(default)]
    pub every: Option<String>,
    /// Periodic: the flex window.
    #[serde(default)]
    pub flex: Option<String>,
    /// Periodic: `grid` or `after-run`.
    #[serde(default)]
    pub anchor: Option<String>,
    /// Cron: five crontab fields, or six with seconds first.
    #[serde(default)]
    pub cron: Option<String>,
    /// The zone of `cron` and `at` (default UTC in a scenario).
    #[serde(default)]
    pub tz: Option<String>,
    /// `one` or `skip`.
    #[serde(default)]
    pub catch_up: Option<String>,
    /// Constraints: `network`, `unmetered`, `charging`, `battery-not-low`, `storage-not-low`,
    /// `idle`.
    #[serde(default)]
    pub requires: Vec<String>,
    /// Minimum interval between successful starts.
    #[serde(default)]
    pub min_interval: Option<String>,
    /// `exponential:30s` or `linear:1m`.
    #[serde(default)]
    pub backoff: Option<String>,
    /// Spread each retry delay by up to ± this fraction (at least 0, less than 1).
    #[serde(default)]
    pub backoff_jitter: Option<f64>,
    /// Give up after this many attempts.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Time limit of each run (`10m`, or `none` / `never`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Start exactly when due, not batched.
    #[serde(default)]
    pub accurate: bool,
    /// Expedited work (`backwork add --expedited`): `run-as-regular` or `drop`, what to do
    /// once the profile's expedited quota is used up.
    #[serde(default)]
    pub expedited: Option<String>,
    /// Delay each due time by up to this.
    #[serde(default)]
    pub jitter: Option<String>,
    /// With `jitter`: the same delay every time.
    #[serde(default)]
    pub fixed_jitter: bool,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeSet<String>,
    /// What this add does when a job of the same name is still there (a later `[[job]]` with
    /// the same name, added with `added`): `keep`, `replace`, `update`, `append`,
    /// `append-or-replace` (WorkManager's ExistingWorkPolicy). Two jobs with the same name
    /// need it on the later one.
    #[serde(default)]
    pub on_conflict: Option<String>,
    /// How its runs turn out.
    #[serde(default)]
    pub outcome: Outcome,
    /// How many copies of this job (named `name-1`, `name-2`, … when more than one).
    #[serde(default = "one")]
    pub count: u32,
    /// ios: `refresh` or `processing` task (a submit with the same name replaces the pending
    /// one).
    #[serde(default)]
    pub task: Option<IosTask>,
    /// A chain: the names of one-off jobs this one-off job runs after (it waits blocked until
    /// they all succeed, and fails or is cancelled with them). Each names an earlier `[[job]]`
    /// (a job with copies: all of them, or one as `name-2`) added no later than this one.
    #[serde(default)]
    pub after: Vec<String>,
    /// With `after`: `overwriting` (default) or `array-creating`, how the prerequisites'
    /// outputs are merged into this job's input.
    #[serde(default)]
    pub input_merger: Option<String>,
}

/// The kind of iOS background task a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IosTask {
    /// `BGAppRefreshTask`: short, frequent.
    Refresh,
    /// `BGProcessingTask`: minutes, while idle and charging.
    Processing,
}

fn one() -> u32 {
    1
}

impl JobSpec {
    /// The request for copy `name` of this job, added at `now`. The options are read by
    /// [`JobOptions::request`], as `backwork add` reads its flags; times of day and dates are
    /// in `tz`, or UTC.
    pub fn request(&self, kind: &str, name: &str, now: Time) -> Result<JobRequest, SimError> {
        if !(0.0..=1.0).contains(&self.outcome.fail) {
            return Err(SimError::Job {
                job: self.name.clone(),
                detail: format!(
                    "outcome.fail {} is not a probability; use a number from 0 to 1",
                    self.outcome.fail
                ),
            });
        }
        if let Some(p) = self
            .outcome
            .progress
            .iter()
            .find(|p| !(0.0..=100.0).contains(*p))
        {
            return Err(SimError::Job {
                job: self.name.clone(),
                detail: format!(
                    "outcome.progress {p} is not a percentage; use numbers from 0 to 100"
                ),
            });
        }
        // progress is reported as the run goes: it never goes back
        if let Some(w) = self.outcome.progress.windows(2).find(|w| w[1] < w[0]) {
            return Err(SimError::Job {
                job: self.name.clone(),
                detail: format!(
                    "outcome.progress goes back from {} to {}; list the values a run reports in order, each at least the one before",
                    w[0], w[1]
                ),
            });
        }
        let mut tags = self.tags.clone();
        // iOS: a submit with the same identifier replaces the pending request
        let policy = match self.task {
            Some(IosTask::Processing) => {
                tags.insert(backwork_profiles::PROCESSING_TAG.into());
                "replace"
            }
            Some(IosTask::Refresh) => {
                tags.insert(backwork_profiles::REFRESH_TAG.into());
                "replace"
            }
            None => "keep",
        };
        let policy = self.on_conflict.as_deref().unwrap_or(policy);
        let options = JobOptions {
            in_: self.in_.clone(),
            at: self.at.clone(),
            every: self.every.clone(),
            flex: self.flex.clone(),
            anchor: self.anchor.clone(),
            cron: self.cron.clone(),
            tz: self.tz.clone(),
            catch_up: self.catch_up.clone(),
            requires: self.requires.clone(),
            min_interval: self.min_interval.clone(),
            backoff: self.backoff.clone(),
            backoff_jitter: self.backoff_jitter,
            max_attempts: self.max_attempts,
            timeout: self.timeout.clone(),
            accurate: self.accurate,
            jitter: self.jitter.clone(),
            fixed_jitter: self.fixed_jitter,
            unique: Some(name.to_string()),
            on_conflict: Some(policy.into()),
            tags: tags.into_iter().collect(),
            input_merger: self.input_merger.clone(),
            expedited: self.expedited.clone(),
        };
        let cx = OptionContext { zone: Tz::UTC, now };
        options
            .request(kind, &cx)
            .map_err(|error| SimError::JobOption {
                job: self.name.clone(),
                error,
            })
    }
}

impl Scenario {
    /// Parses a scenario from TOML text.
    pub fn from_toml(text: &str) -> Result<Scenario, SimError> {
        let s: Scenario = toml::from_str(text).map_err(|e| crate::toml_error::explain(&e, text))?;
        if s.jobs.is_empty() {
            return Err(SimError::Scenario(
                "the scenario has no [[job]]; add at least one".into(),
            ));
        }
        if s.duration > MAX_SPAN {
            return Err(SimError::Setting {
                setting: "`duration`".into(),
                detail: format!(
                    "is {}, longer than the 10 years a scenario may span; shorten it",
                    humantime::format_duration(s.duration)
                ),
            });
        }
        if s.duration.is_zero() {
            return Err(SimError::Setting {
                setting: "`duration`".into(),
                detail: "is 0s, so nothing would be simulated; give a span such as \"24h\"".into(),
            });
        }
        // the number of copies first: the checks below name each copy
        let copies: u64 = s.jobs.iter().map(|j| u64::from(j.count)).sum();
        if copies > MAX_JOBS {
            return Err(SimError::Scenario(format!(
                "the scenario has {copies} jobs (counting copies); at most {MAX_JOBS} fit a simulation"
            )));
        }
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for j in &s.jobs {
            if let Some(added) = j.added.filter(|a| *a >= s.duration) {
                return Err(SimError::Job {
                    job: j.name.clone(),
                    detail: format!(
                        "added = {} is not before the end of the {} scenario, so it would never be added; add it earlier or lengthen duration",
                        humantime::format_duration(added),
                        humantime::format_duration(s.duration)
                    ),
                });
            }
            if j.task.is_some() && s.profile != "ios" {
                return Err(SimError::Job {
                    job: j.name.clone(),
                    detail: format!(
                        "task (a BGTaskScheduler request) applies to the ios profile only, and this scenario's profile is {}; drop task or use profile = \"ios\"",
                        s.profile
                    ),
                });
            }
            if j.count == 0 {
                return Err(SimError::Job {
                    job: j.name.clone(),
                    detail: "count = 0 adds nothing; give 1 or more, or remove the job".into(),
                });
            }
            // the names the job's copies get (`name-1`, `name-2`, … when more than one)
            let names = (1..=j.count).map(|k| {
                if j.count > 1 {
                    format!("{}-{k}", j.name)
                } else {
                    j.name.clone()
                }
            });
            for name in names {
                if seen.contains(&name) && j.on_conflict.is_none() && j.task.is_none() {
                    return Err(SimError::Job {
                        job: j.name.clone(),
                        detail: format!(
                            "another [[job]] (or one of its copies) is named {name}; rename one, or say what this add does to the other with on_conflict (keep, replace, update, append)"
                        ),
                    });
                }
                seen.insert(name);
            }
        }
        // chains: each `after` names an earlier one-off job (or its copies), added no later
        let recurring = |j: &JobSpec| j.every.is_some() || j.cron.is_some();
        for (i, j) in s.jobs.iter().enumerate() {
            if !j.after.is_empty() && recurring(j) {
                return Err(SimError::Job {
                    job: j.name.clone(),
                    detail: "after applies to one-off jobs only (a periodic or cron job cannot wait for others); drop every/cron or after".into(),
                });
            }
            for a in &j.after {
                let found = s.jobs[..i].iter().find(|p| {
                    p.name == *a
                        || (p.count > 1
                            && a.strip_prefix(&format!("{}-", p.name))
                                .and_then(|k| k.parse::<u32>().ok())
                                .is_some_and(|k| (1..=p.count).contains(&k)))
                });
                let Some(p) = found else {
                    return Err(SimError::Job {
                        job: j.name.clone(),
                        detail: format!(
                            "after names {a}, which is not an earlier [[job]]; list the jobs of a chain in their order"
                        ),
                    });
                };
                if recurring(p) {
                    return Err(SimError::Job {
                        job: j.name.clone(),
                        detail: format!(
                            "after names {a}, a periodic or cron job, which never finishes; a job can only run after one-off jobs"
                        ),
                    });
                }
                if p.added.unwrap_or_default() > j.added.unwrap_or_default() {
                    return Err(SimError::Job {
                        job: j.name.clone(),
                        detail: format!(
                            "after names {a}, which is added later than this job; add it no later"
                        ),
                    });
                }
            }
        }
        let buckets = std::iter::once(&s.device)
            .chain(s.events.iter().map(|e| &e.device))
            .any(|d| d.bucket.is_some());
        if buckets && s.profile != "android" {
            return Err(SimError::Scenario(format!(
                "a standby bucket applies to the android profile only, and this scenario's profile is {}; drop bucket or use profile = \"android\"",
                s.profile
            )));
        }
        // motion matters to android's deep Doze only: elsewhere it would be silently ignored
        let moving = std::iter::once(&s.device)
            .chain(s.events.iter().map(|e| &e.device))
            .any(|d| d.moving.is_some());
        if moving && s.profile != "android" {
            return Err(SimError::Scenario(format!(
                "moving applies to the android profile only (deep Doze waits for a still device), and this scenario's profile is {}; drop moving or use profile = \"android\"",
                s.profile
            )));
        }
        // a one-off job due only after the end (its `in` or `at`) would never run
        let end = backwork_scheduler::core::add(s.start, s.duration);
        for j in s
            .jobs
            .iter()
            .filter(|j| j.after.is_empty() && j.every.is_none() && j.cron.is_none())
        {
            let added = backwork_scheduler::core::add(s.start, j.added.unwrap_or_default());
            let Ok(request) = j.request("simulated", &j.name, added) else {
                continue; // its own error is reported when it is added
            };
            if let backwork_scheduler::Schedule::Once { delay, not_before } = request.schedule {
                let due =
                    backwork_scheduler::core::add(added, delay).max(not_before.unwrap_or(added));
                if due >= end {
                    return Err(SimError::Job {
                        job: j.name.clone(),
                        detail: format!(
                            "it is due at {}, at or after the end of the scenario ({}), so it would never run; make in or at earlier, or lengthen duration",
                            due.format("%Y-%m-%d %H:%M:%S UTC"),
                            end.format("%Y-%m-%d %H:%M:%S UTC")
                        ),
                    });
                }
            }
        }
        let event = |e: &EventSpec| format!("[[event]] at {}", humantime::format_duration(e.at));
        for (setting, spec) in std::iter::once(("`device.battery`".to_string(), &s.device)).chain(
            s.events
                .iter()
                .map(|e| (format!("`battery` of the {}", event(e)), &e.device)),
        ) {
            if let Some(b) = spec.battery.filter(|b| *b > 100) {
                return Err(SimError::Setting {
                    setting,
                    detail: format!("is {b}: give a percentage from 0 to 100"),
                });
            }
        }
        for e in &s.events {
            if e.at >= s.duration {
                return Err(SimError::Scenario(format!(
                    "the {} is at or after the end of the scenario ({} from the start), so it would never happen; move it earlier or lengthen duration",
                    event(e),
                    humantime::format_duration(s.duration)
                )));
            }
            if e.repeat.is_some_and(|r| r.is_zero()) {
                return Err(SimError::Setting {
                    setting: format!("`repeat` of the {}", event(e)),
                    detail: "is 0s: give a repeat longer than zero, or drop repeat".into(),
                });
            }
            if let Some(r) = e.repeat.filter(|r| !r.is_zero()) {
                let times = s.duration.as_secs_f64() / r.as_secs_f64();
                if times > MAX_REPEATS {
                    return Err(SimError::Setting {
                        setting: format!("`repeat` of the {}", event(e)),
                        detail: format!(
                            "is {}: it repeats every {0}, {times:.0} times in the scenario; repeat it at most {MAX_REPEATS} times (a longer repeat)",
                            humantime::format_duration(r)
                        ),
                    });
                }
            }
        }
        Ok(s)
    }
}
