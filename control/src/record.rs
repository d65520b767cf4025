//! One job as the control protocol shows it (`backwork show`, `show --json`): a shape this crate
//! owns and `docs/cli.md` documents, built from the core's job record — so the core can change
//! how it keeps a job without changing what clients read.

use backwork_scheduler::{Job, JobId, JobState, RunRecord, RunResult, Schedule, StopReason, Time};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::protocol::{COMMAND_KIND, CommandSpec, ScheduleView};

/// A job, everything known about it, for a person or a script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Its id.
    pub id: JobId,
    /// Its unique name.
    pub name: Option<String>,
    /// Its worker kind (`command` for jobs `backwork add` made).
    pub kind: String,
    /// A command job's command, environment and directory.
    pub command: Option<CommandSpec>,
    /// The input of a job of another kind (`null` when none, and for command jobs).
    pub input: Option<Value>,
    /// The schedule in fields.
    pub schedule: ScheduleView,
    /// Starts exactly when due, not batched.
    pub accurate: bool,
    /// Expedited work, and what it does once the expedited quota is used up: `run-as-regular`
    /// or `drop` (`null`: not expedited).
    #[serde(default)]
    pub expedited: Option<String>,
    /// The random delay of each due time.
    pub jitter: Option<JitterView>,
    /// Recurring jobs: what happens to slots missed while the machine was off: `one` or `skip`.
    pub catch_up: Option<String>,
    /// Its state.
    pub state: JobState,
    /// The constraints, as `add --requires` names them (`charging`, `unmetered`, …).
    pub requires: Vec<String>,
    /// Minimum interval between successful starts, in milliseconds.
    pub min_interval_ms: Option<u64>,
    /// The retry delays.
    pub backoff: BackoffView,
    /// Attempts before the job fails (`null`: retry for ever).
    pub max_attempts: Option<u32>,
    /// Attempts charged in the current cycle.
    pub attempt: u32,
    /// The earliest start of the current cycle: its due time, or the end of a backoff.
    pub not_before: Time,
    /// The time limit of each run, in milliseconds (`null`: none).
    pub timeout_ms: Option<u64>,
    /// Its tags.
    pub tags: Vec<String>,
    /// When it was added.
    pub added: Time,
    /// When its last run started and ended.
    pub last_started: Option<Time>,
    /// When its last run ended.
    pub last_finished: Option<Time>,
    /// When it reached a finished state.
    pub finished_at: Option<Time>,
    /// Runs in all.
    pub runs_total: u64,
    /// Jobs that must succeed before it may run.
    pub prerequisites: Vec<JobId>,
    /// What stopped its last run or ended it, as a code (`timeout`, `cancelled`, …) and a
    /// sentence.
    pub stop_reason: Option<StopView>,
    /// The output of its last run (a command run's is a [`crate::CommandOutput`]).
    pub output: Option<Value>,
    /// Its recent runs, oldest first.
    pub runs: Vec<RunView>,
    /// The latest progress its running worker reported (`null` when it is not running or has
    /// reported none). Kept in the server's memory only: it is gone once the run ends.
    #[serde(default)]
    pub progress: Option<crate::protocol::ProgressView>,
}

/// A jitter: each due time is delayed by up to `max_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JitterView {
    /// The largest delay, in milliseconds.
    pub max_ms: u64,
    /// The same delay every time (systemd's `FixedRandomDelay=`).
    pub fixed: bool,
}

/// Retry delays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackoffView {
    /// `exponential` (base · 2^(n−1)) or `linear` (base · n).
    pub kind: String,
    /// The base, in milliseconds.
    pub base_ms: u64,
    /// Each delay is spread by ± this fraction.
    pub jitter: f64,
}

/// Why a run or a job was stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopView {
    /// A stable code: `timeout`, `cancelled`, `constraint_lost`, `shutdown`, `unknown`,
    /// `policy`, `expired`, `prerequisite_failed`.
    pub code: String,
    /// The same in a sentence (`time limit exceeded`, `constraint charging lost`).
    pub text: String,
    /// For `policy` and `expired`: the profile's own stable code (`execution_limit`,
    /// `doze_window_closed`, `standby_quota_time`, `daily_execution_limit`,
    /// `ios_refresh_budget`, `ios_processing_budget`, `expedited_quota`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_code: Option<String>,
}

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    /// Its attempt number in its cycle.
    pub attempt: u32,
    /// When it started.
    pub started: Time,
    /// When it ended.
    pub finished: Time,
    /// How it ended: `success`, `retry`, `failure`, `stopped`, `crashed`.
    pub result: RunResult,
    /// What stopped it, when something did.
    pub stop_reason: Option<StopView>,
    /// A note (an output over the cap, a crash's story).
    pub note: Option<String>,
    /// Its output (a command run's is a [`crate::CommandOutput`]).
    pub output: Option<Value>,
}

impl StopView {
    /// The view of `reason`.
    pub fn of(reason: &StopReason) -> StopView {
        let code = serde_json::to_value(reason)
            .ok()
            .and_then(|v| v.get("reason")?.as_str().map(str::to_string))
            .unwrap_or_else(|| "unknown".into());
        let policy_code = match reason {
            StopReason::Policy(p) | StopReason::Expired(p) => Some(p.code.to_string()),
            _ => None,
        };
        StopView {
            code,
            text: reason.to_string(),
            policy_code,
        }
    }
}

impl RunView {
    /// The view of `run`.
    pub fn of(run: &RunRecord) -> RunView {
        RunView {
            attempt: run.attempt,
            started: run.started,
            finished: run.finished,
            result: run.result,
            stop_reason: run.stop_reason.as_ref().map(StopView::of),
            note: run.note.clone(),
            output: run.output.clone(),
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl JobRecord {
    /// The record of `job`.
    pub fn of(job: &Job) -> JobRecord {
        let r = &job.request;
        let command = CommandSpec::of(job);
        JobRecord {
            id: job.id,
            name: job.unique_name().map(str::to_string),
            kind: r.kind.clone(),
            input: (r.kind != COMMAND_KIND && !r.input.is_null()).then(|| r.input.clone()),
            command,
            schedule: ScheduleView::of(job),
            accurate: r.accurate,
            expedited: r.expedited.map(|e| e.to_string()),
            jitter: r.jitter.map(|j| JitterView {
                max_ms: millis(j.max),
                fixed: j.fixed,
            }),
            catch_up: match r.schedule {
                Schedule::Once { .. } => None,
                _ => Some(
                    match r.catch_up {
                        backwork_scheduler::CatchUp::One => "one",
                        backwork_scheduler::CatchUp::Skip => "skip",
                    }
                    .into(),
                ),
            },
            state: job.state,
            requires: r
                .constraints
                .list()
                .iter()
                .map(ToString::to_string)
                .collect(),
            min_interval_ms: r.min_interval.map(millis),
            backoff: BackoffView {
                kind: match r.backoff.kind {
                    backwork_scheduler::BackoffKind::Exponential => "exponential",
                    backwork_scheduler::BackoffKind::Linear => "linear",
                }
                .into(),
                base_ms: millis(r.backoff.base),
                jitter: r.backoff.jitter,
            },
            max_attempts: r.max_attempts,
            attempt: job.attempt,
            not_before: job.not_before,
            timeout_ms: r.timeout.map(millis),
            tags: r.tags.iter().cloned().collect(),
            added: job.enqueued_at,
            last_started: job.last_started,
            last_finished: job.last_finished,
            finished_at: job.finished_at,
            runs_total: job.runs_total,
            prerequisites: job.prerequisites.clone(),
            stop_reason: job.stop_reason.as_ref().map(StopView::of),
            output: job.output.clone(),
            runs: job.history.iter().map(RunView::of).collect(),
            progress: None,
        }
    }

    /// Its last run, if it had one.
    pub fn last_run(&self) -> Option<&RunView> {
        self.runs.last()
    }

    /// True when the job is finished (succeeded, failed or cancelled).
    pub fn is_finished(&self) -> bool {
        self.state.is_finished()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backwork_scheduler::JobRequest;

    /// The record's JSON keeps what `show --json` documents (docs/cli.md), in milliseconds and
    /// words, not the core's own shapes.
    #[test]
    fn the_record_is_words_and_milliseconds() {
        let request = JobRequest::periodic("sync", std::time::Duration::from_secs(6 * 3600))
            .requires(backwork_scheduler::Constraint::Charging)
            .timeout(Some(std::time::Duration::from_secs(90)))
            .tag("backup");
        let now: Time = "2026-11-30T12:00:00Z".parse().unwrap();
        let mut core = backwork_scheduler::core::Scheduler::new(
            backwork_scheduler::Config::default(),
            Box::new(backwork_scheduler::core::AllowAll),
        );
        let id = JobId::new_v7(now, [7; 10]);
        core.handle(now, backwork_scheduler::Event::Enqueue { id, request })
            .unwrap();
        let job = core.job(id).unwrap();
        let v = serde_json::to_value(JobRecord::of(&job)).unwrap();
        assert_eq!(v["requires"], serde_json::json!(["charging"]));
        assert_eq!(v["timeout_ms"], 90_000);
        assert_eq!(v["schedule"]["type"], "periodic");
        assert_eq!(v["schedule"]["every_ms"], 6 * 3600 * 1000);
        assert_eq!(v["backoff"]["kind"], "exponential");
        assert_eq!(v["catch_up"], "one");
        assert_eq!(v["tags"], serde_json::json!(["backup"]));
        assert!(v.get("request").is_none(), "no core request inside: {v}");
    }
}
