//! The wire protocol of the control socket.
//!
//! Every message is one frame: a 4-byte big-endian length, then that many bytes of JSON. A client
//! sends a [`Request`] and reads one [`Response`] per request, in order, on the same connection.
//! Requests are capped at [`MAX_REQUEST`] bytes; a bigger, truncated or malformed frame gets a
//! [`Response::Error`] and the server keeps serving other connections.
//!
//! ```
//! use backwork_control::{Request, Response};
//!
//! let wire = serde_json::to_string(&Request::List { state: None, tag: Some("sync".into()), all: false }).unwrap();
//! assert_eq!(wire, r#"{"op":"list","state":null,"tag":"sync","all":false}"#);
//! let reply: Response = serde_json::from_str(r#"{"type":"pruned","count":3}"#).unwrap();
//! assert_eq!(reply, Response::Pruned { count: 3, kept: 0, age_ms: 0 });
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use backwork_constraints::{DeviceReadings, DeviceState};
use backwork_scheduler::{
    Disposition, Job, JobId, JobState, RunRecord, RunResult, Selector, Time, WaitReason,
};
use serde::{Deserialize, Serialize};

/// The largest request frame a server reads (1 MiB).
pub const MAX_REQUEST: usize = 1 << 20;

/// The largest response frame a client reads (1 GiB: a listing of every job in a big store).
pub const MAX_RESPONSE: usize = 1 << 30;

/// The worker kind of command jobs, the ones `backwork add` creates and the daemon runs.
pub const COMMAND_KIND: &str = "command";

/// The input of a command job: what to run, with what environment, where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandSpec {
    /// The program and its arguments; run directly, without a shell.
    pub argv: Vec<String>,
    /// The whole environment of the run (captured when the job was added).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The working directory (captured when the job was added).
    pub cwd: PathBuf,
    /// Exit codes that fail the job for good instead of retrying it.
    #[serde(default)]
    pub fail_on_exit: Vec<i32>,
}

impl CommandSpec {
    /// The spec of a command job, if `job` is one and its input parses.
    pub fn of(job: &Job) -> Option<CommandSpec> {
        if job.request.kind != COMMAND_KIND {
            return None;
        }
        serde_json::from_value(job.request.input.clone()).ok()
    }

    /// The command line as a person would type it (see [`command_line`]).
    pub fn display(&self) -> String {
        command_line(&self.argv)
    }
}

/// A program and its arguments as a person would type them: arguments with spaces, quotes or
/// other shell characters are single-quoted; an argument with a control character (a newline,
/// an ESC…) is written in the shell's `$'…'` form with the character escaped (`$'a\nb'`), so
/// the line never holds a raw control character and still pastes back into bash or zsh.
pub fn command_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
            {
                a.clone()
            } else if a.chars().any(needs_escape) {
                ansi_c_quoted(a)
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// True for the characters text output never prints raw: control characters (C0, DEL, C1) and
/// the invisible marks that reorder or split a line (bidirectional overrides and isolates, line
/// and paragraph separators), so a job's name, tag, argument or output can neither forge a row
/// nor send a terminal escape sequence.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `a` in bash's ANSI-C quoting: `$'…'` with backslash, quote and every [`needs_escape`]
/// character escaped (`\n`, `\x1f`, `\u202e`; bash and zsh read these back).
fn ansi_c_quoted(a: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("$'");
    for c in a.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x1b' => out.push_str("\\E"),
            c if needs_escape(c) && c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            // every such character is in the Basic Multilingual Plane: four digits say it
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// What a command run produced: kept as the run's output and shown by `backwork show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutput {
    /// The exit code, when the process exited by itself.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// The last 4 KiB of its standard output (invalid UTF-8 replaced).
    pub stdout: String,
    /// The last 4 KiB of its standard error (invalid UTF-8 replaced).
    pub stderr: String,
    /// How many bytes of standard output were dropped before the tail.
    #[serde(default)]
    pub stdout_dropped: u64,
    /// How many bytes of standard error were dropped before the tail.
    #[serde(default)]
    pub stderr_dropped: u64,
    /// Why it could not be run, when it could not.
    #[serde(default)]
    pub error: Option<String>,
}

impl CommandOutput {
    /// What the command run `run` produced, if it is a command run's record.
    pub fn of_run(run: &RunRecord) -> Option<CommandOutput> {
        run.output
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

/// A request to the server.
// Decoded once per frame and moved into `dispatch`; boxing the request buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Who is serving: answered by [`Response::Pong`].
    Ping,
    /// One summary per job, optionally only those in `state` or with `tag`: the live jobs
    /// (enqueued, blocked, running), or every job with `all` (or a `state`).
    List {
        /// Only jobs in this state.
        state: Option<JobState>,
        /// Only jobs with this tag.
        tag: Option<String>,
        /// Finished jobs too.
        #[serde(default)]
        all: bool,
    },
    /// The whole record of the selected jobs, with their recent runs and why they wait. A name
    /// means its live job (or, when none is live, the last job that had it).
    Show {
        /// Which jobs (an id or a unique name).
        target: Selector,
    },
    /// Why the selected jobs are not running now.
    Why {
        /// Which jobs.
        target: Selector,
    },
    /// Enqueue a job (after the jobs its `after` names, if any).
    Add {
        /// The job, in the protocol's own shape.
        job: crate::NewJob,
    },
    /// Enqueue a chain of jobs: all of them in one durable commit, or none.
    AddChain {
        /// The chain.
        chain: crate::NewChain,
    },
    /// Run the selected jobs now.
    Run {
        /// Which jobs.
        target: Selector,
        /// Also past their constraints.
        ignore_constraints: bool,
    },
    /// Give the selected failed or cancelled jobs a fresh cycle.
    Retry {
        /// Which jobs (by id, short id, name or tag).
        target: Selector,
    },
    /// Cancel the selected jobs.
    Cancel {
        /// Which jobs (by id, name or tag).
        target: Selector,
    },
    /// The device state the scheduler decides by.
    Device,
    /// Change the device state (only a server whose device is set by hand accepts this).
    DeviceSet {
        /// `KEY=VALUE` settings, as `backwork device set` takes them.
        settings: Vec<String>,
    },
    /// Drop the finished jobs that finished at least `older_than` ago (absent: the server's
    /// retention).
    Prune {
        /// The least age, in milliseconds.
        #[serde(default, with = "backwork_scheduler::core::millis::option")]
        older_than: Option<std::time::Duration>,
    },
}

impl Request {
    /// The job or jobs the request names, if it names any.
    pub fn target(&self) -> Option<&Selector> {
        match self {
            Request::Show { target }
            | Request::Why { target }
            | Request::Run { target, .. }
            | Request::Cancel { target }
            | Request::Retry { target } => Some(target),
            _ => None,
        }
    }
}

/// Who answers on a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The serving process.
    pub pid: u32,
    /// Its backwork version.
    pub version: String,
    /// What it is: `daemon`, or the app's own name.
    pub role: String,
    /// Where its device state comes from: `host` or `manual`.
    pub device: String,
    /// Its store file, if it said.
    pub store: Option<PathBuf>,
}

/// One job in a listing: the columns of `backwork list` and the fields of `list --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    /// The job's id.
    pub id: JobId,
    /// Its unique name, if it has one.
    pub name: Option<String>,
    /// Its worker kind.
    pub kind: String,
    /// For command jobs: the program and arguments.
    pub command: Option<Vec<String>>,
    /// The schedule, as text (`every 6h flex 30m`, `cron 0 3 * * 1 Europe/Berlin`, `once at
    /// 2026-12-01 03:00:00Z`; instants in UTC).
    pub schedule: String,
    /// The schedule in fields, for a client to render in its own zone; absent from servers
    /// older than this field.
    #[serde(default)]
    pub schedule_detail: Option<ScheduleView>,
    /// Its state.
    pub state: JobState,
    /// When it may next start, if a time gate (due time, backoff, minimum interval, policy) holds
    /// it; `null` when only other reasons do (see `waiting_on`) or it is running or finished.
    pub next: Option<Time>,
    /// When its last run started.
    pub last: Option<Time>,
    /// How its last run ended.
    pub result: Option<RunResult>,
    /// Why its last run was stopped, when it was: `timeout`, `cancelled`, `constraint_lost`,
    /// `shutdown`, `unknown`, `policy`, `expired`, `prerequisite_failed` (the stop reason's tag).
    #[serde(default)]
    pub stopped_by: Option<String>,
    /// Attempts charged in the current cycle.
    pub attempt: u32,
    /// Runs in all.
    pub runs: u64,
    /// Its tags.
    pub tags: Vec<String>,
    /// Every reason it is not running now (empty when it runs or is about to).
    pub waiting_on: Vec<WaitReason>,
    /// The latest progress its running worker reported (`null` when it is not running or has
    /// reported none; absent from servers older than this field). Kept in memory only.
    #[serde(default)]
    pub progress: Option<ProgressView>,
}

/// A running job's latest progress report, as clients read it: the value the worker reported
/// and, read from it, a percentage and a message when it has them.
///
/// A command job reports `{"percent": n, "message": "…"}` (either may be missing) through
/// `BACKWORK_PROGRESS_FD` (docs/cli.md); a library worker reports any JSON value with
/// `WorkContext::set_progress`. `percent` is read from a number in 0–100 or from an object's
/// `percent` (or `progress`) number in 0–100; `message` from a string or an object's
/// `message` string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressView {
    /// What the worker reported, as it reported it.
    pub value: serde_json::Value,
    /// How far along, from 0 to 100, when the value says.
    pub percent: Option<f64>,
    /// What it is doing, when the value says.
    pub message: Option<String>,
    /// The attempt that reported it.
    pub attempt: u32,
    /// When the server received it.
    pub at: Time,
}

impl ProgressView {
    /// The view of a runtime's progress record.
    pub fn of(p: &backwork_scheduler::JobProgress) -> ProgressView {
        use serde_json::Value;
        let pct = |v: &Value| v.as_f64().filter(|n| (0.0..=100.0).contains(n));
        let (percent, message) = match &p.value {
            Value::Number(_) => (pct(&p.value), None),
            Value::String(s) => (None, Some(s.clone())),
            Value::Object(o) => (
                o.get("percent").or_else(|| o.get("progress")).and_then(pct),
                o.get("message").and_then(Value::as_str).map(str::to_string),
            ),
            _ => (None, None),
        };
        ProgressView {
            value: p.value.clone(),
            percent,
            message,
            attempt: p.attempt,
            at: p.at,
        }
    }

    /// One line for people: `42% compressing`, `42%`, `compressing`, or the value as JSON
    /// when it has neither (not escaped: the caller escapes it).
    pub fn text(&self) -> String {
        let pct = self.percent.map(|p| {
            if p.fract() == 0.0 {
                format!("{p:.0}%")
            } else {
                format!("{p:.1}%")
            }
        });
        match (pct, &self.message) {
            (Some(p), Some(m)) => format!("{p} {m}"),
            (Some(p), None) => p,
            (None, Some(m)) => m.clone(),
            (None, None) => self.value.to_string(),
        }
    }
}

impl JobView {
    /// The summary of `job`, given why it is not running.
    pub fn of(job: &Job, reasons: Vec<WaitReason>) -> JobView {
        let next = WaitReason::next_start(&reasons);
        JobView {
            id: job.id,
            name: job.unique_name().map(str::to_string),
            kind: job.request.kind.clone(),
            command: CommandSpec::of(job).map(|c| c.argv),
            schedule: job.request.schedule.to_string(),
            schedule_detail: Some(ScheduleView::of(job)),
            state: job.state,
            next,
            last: job.last_started,
            result: job.history.last().map(|r| r.result),
            stopped_by: job
                .history
                .last()
                .and_then(|r| r.stop_reason.as_ref())
                .and_then(|reason| {
                    serde_json::to_value(reason)
                        .ok()?
                        .get("reason")?
                        .as_str()
                        .map(str::to_string)
                }),
            attempt: job.attempt,
            runs: job.runs_total,
            tags: job.request.tags.iter().cloned().collect(),
            waiting_on: reasons
                .into_iter()
                .filter(|r| !matches!(r, WaitReason::Running { .. } | WaitReason::Finished { .. }))
                .collect(),
            progress: None,
        }
    }
}

/// A job's schedule in fields, as the control protocol carries it (this crate owns the shape;
/// docs/cli.md lists it under `list --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ScheduleView {
    /// Once.
    Once {
        /// Not before this instant: the time it was added plus its delay (`--in`) — for a job
        /// with `--after`, the moment its last prerequisite succeeded plus the delay, `null`
        /// while it is blocked — or its `--at`; `null`: as soon as its constraints allow.
        at: Option<Time>,
    },
    /// Every period.
    Periodic {
        /// The period, in milliseconds.
        #[serde(with = "backwork_scheduler::core::millis")]
        every_ms: std::time::Duration,
        /// The flex window at the end of each period, in milliseconds; `null`: the whole
        /// period.
        #[serde(default, with = "backwork_scheduler::core::millis::option")]
        flex_ms: Option<std::time::Duration>,
        /// Periods counted from the end of each run (WorkManager's behaviour) rather than on a
        /// fixed grid.
        after_run: bool,
        /// The delay before the first period, in milliseconds (0: none).
        #[serde(default, with = "backwork_scheduler::core::millis")]
        initial_delay_ms: std::time::Duration,
    },
    /// At the times of a cron expression.
    Cron {
        /// The expression as written (five crontab fields, six with seconds first, or
        /// `@daily` and the like).
        expr: String,
        /// Its IANA time zone.
        tz: String,
    },
}

impl ScheduleView {
    /// The schedule of `job`.
    pub fn of(job: &Job) -> ScheduleView {
        use backwork_scheduler::Schedule;
        match &job.request.schedule {
            Schedule::Once { delay, not_before } => ScheduleView::Once {
                at: if delay.is_zero() {
                    *not_before
                } else if !job.prerequisites.is_empty() {
                    // the delay counts from the moment the last prerequisite succeeded
                    // (WorkManager's lastEnqueueTime at the unblock): unknown while blocked,
                    // then the core's due time
                    (job.state != JobState::Blocked).then_some(job.not_before)
                } else {
                    let after = backwork_scheduler::core::add(job.enqueued_at, *delay);
                    Some(not_before.map_or(after, |t| t.max(after)))
                },
            },
            Schedule::Periodic {
                every,
                flex,
                anchor,
                initial_delay,
            } => ScheduleView::Periodic {
                every_ms: *every,
                flex_ms: *flex,
                after_run: *anchor == Some(backwork_scheduler::Anchor::AfterRun),
                initial_delay_ms: *initial_delay,
            },
            Schedule::Cron { expr, tz } => ScheduleView::Cron {
                expr: expr.clone(),
                tz: tz.name().to_string(),
            },
        }
    }
}

/// One job with everything known about it: `backwork show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDetail {
    /// The whole record, with its recent runs.
    pub job: crate::record::JobRecord,
    /// Why it is not running now.
    pub reasons: Vec<WaitReason>,
}

/// Why one job is not running: `backwork why`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobReasons {
    /// The job.
    pub id: JobId,
    /// Its unique name, if it has one.
    pub name: Option<String>,
    /// Every reason it is not running now.
    pub reasons: Vec<WaitReason>,
}

/// The kind of a failed request; each maps to an exit code of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Nothing matched the id, name or tag (exit 1).
    NotFound,
    /// The request was invalid, or not allowed here (exit 2).
    Invalid,
    /// The store or the scheduler is unavailable (exit 3).
    Unavailable,
    /// The store is corrupt or newer than this binary (exit 4).
    Corrupt,
    /// The peer is not allowed to use this socket (exit 3).
    Denied,
    /// The server is already serving its maximum number of connections; the request was not
    /// read. Clients retry after a short pause (exit 3 once they give up).
    Busy,
}

impl ErrorKind {
    /// The command line's exit code for this kind of error.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::NotFound => 1,
            ErrorKind::Invalid => 2,
            ErrorKind::Unavailable | ErrorKind::Denied | ErrorKind::Busy => 3,
            ErrorKind::Corrupt => 4,
        }
    }
}

/// The server's answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// Who is serving.
    Pong {
        /// The server.
        server: ServerInfo,
    },
    /// Job summaries, in enqueue order.
    Jobs {
        /// The jobs.
        jobs: Vec<JobView>,
    },
    /// Whole records.
    Details {
        /// The jobs.
        jobs: Vec<JobDetail>,
    },
    /// Why each selected job is not running.
    Why {
        /// One entry per job.
        jobs: Vec<JobReasons>,
        /// Where each device value came from and why, when a job waits on the device and the
        /// probe says (absent from older servers).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<DeviceReadings>,
    },
    /// The job was added (or resolved against its unique name).
    Added {
        /// The job that now stands for the request.
        id: JobId,
        /// What happened on a unique-name conflict.
        disposition: Disposition,
        /// Values the scheduler changed.
        warnings: Vec<String>,
    },
    /// The chain was added (or resolved against its unique name).
    ChainAdded {
        /// The links' ids, in the chain's order (for `kept`: the unfinished jobs of the name).
        ids: Vec<JobId>,
        /// What happened on a unique-name conflict.
        disposition: Disposition,
        /// Values the scheduler changed.
        warnings: Vec<String>,
    },
    /// These jobs will run now, or as soon as what still holds them lets go.
    Ran {
        /// The jobs.
        ids: Vec<JobId>,
        /// For each job something still holds (a constraint, without `ignore_constraints`), what
        /// it waits on; absent from servers older than this field.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        waiting: Vec<JobReasons>,
    },
    /// These jobs got a fresh cycle.
    Retried {
        /// The jobs.
        ids: Vec<JobId>,
    },
    /// These jobs were cancelled.
    Cancelled {
        /// The jobs.
        ids: Vec<JobId>,
    },
    /// The device state.
    Device {
        /// The state.
        state: DeviceState,
        /// Where it comes from: `host` or `manual`.
        source: String,
        /// Where each value came from and why, when the probe says (absent from older
        /// servers).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        readings: Option<DeviceReadings>,
    },
    /// Finished jobs were dropped.
    Pruned {
        /// How many went.
        count: usize,
        /// How many finished jobs are kept (younger than `age_ms`).
        #[serde(default)]
        kept: usize,
        /// The least age of the jobs that went (the one asked, else the server's retention), in
        /// milliseconds.
        #[serde(default)]
        age_ms: u64,
    },
    /// The request failed.
    Error {
        /// What kind of failure.
        kind: ErrorKind,
        /// A sentence that says what went wrong and what to do.
        message: String,
    },
}

impl Response {
    /// An error response.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
        Response::Error {
            kind,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job added `--after` another with `--in`: its delay counts from when the prerequisite
    /// succeeded (WorkManager's `setLastEnqueueTime` at the unblock, `WorkerWrapper.kt`), so
    /// its schedule has no instant while it is blocked, and then that moment plus the delay —
    /// not the add time plus the delay, which had long passed.
    #[test]
    fn a_chained_jobs_once_at_counts_from_its_unblocking() {
        use backwork_scheduler::{
            AllowAll, Chain, Config, Event, JobRequest, Reply, RunOutcome, Scheduler,
        };
        let mut now: Time = "2026-11-30T12:00:00Z".parse().unwrap();
        let mut core = Scheduler::new(
            Config {
                batch_window: std::time::Duration::ZERO,
                ..Config::default()
            },
            Box::new(AllowAll),
        );
        core.handle(now, Event::WorkerRegistered("w".into()))
            .unwrap();
        let (a, b) = (JobId::from_u128(1), JobId::from_u128(2));
        let chain = Chain::begin_with([JobRequest::once("w")])
            .then([JobRequest::once("w").delay(std::time::Duration::from_secs(600))]);
        let reply = core
            .handle(
                now,
                Event::EnqueueChain {
                    ids: vec![a, b],
                    chain,
                },
            )
            .unwrap();
        assert!(matches!(reply, Reply::ChainEnqueued { .. }));
        while core.poll_action().is_some() {}
        let at = |core: &Scheduler| match ScheduleView::of(&core.job(b).unwrap()) {
            ScheduleView::Once { at } => at,
            other => panic!("{other:?}"),
        };
        assert_eq!(at(&core), None, "blocked: not yet known");
        now += chrono::TimeDelta::minutes(30);
        core.handle(
            now,
            Event::Finished {
                id: a,
                attempt: 1,
                outcome: RunOutcome::Success(None),
            },
        )
        .unwrap();
        assert_eq!(at(&core), Some(now + chrono::TimeDelta::minutes(10)));
    }

    /// The percentage and message are read from the shapes docs/cli.md lists (a command job's
    /// object, a bare number, a string) and from nothing else.
    #[test]
    fn a_progress_view_reads_percent_and_message_from_what_was_reported() {
        let at: Time = "2026-11-30T12:00:00Z".parse().unwrap();
        let view = |value: serde_json::Value| {
            ProgressView::of(&backwork_scheduler::JobProgress {
                value,
                attempt: 2,
                at,
            })
        };
        use serde_json::json;
        let v = view(json!({"percent": 40, "message": "compressing"}));
        assert_eq!(
            (v.percent, v.message.as_deref()),
            (Some(40.0), Some("compressing"))
        );
        assert_eq!(v.text(), "40% compressing");
        assert_eq!(v.attempt, 2);
        assert_eq!(view(json!(12.5)).text(), "12.5%");
        assert_eq!(view(json!({"progress": 7})).percent, Some(7.0));
        assert_eq!(view(json!("uploading")).text(), "uploading");
        // out of range or of another shape: no percentage; the value itself is shown
        assert_eq!(view(json!(250)).percent, None);
        assert_eq!(view(json!({"percent": "40"})).percent, None);
        assert_eq!(view(json!([1, 2])).text(), "[1,2]");
        assert_eq!(view(json!({"files": 3})).text(), r#"{"files":3}"#);
    }

    /// What bash makes of `line` as the arguments of `printf '%s\0'`: the arguments back.
    fn bash_words(line: &str) -> Option<Vec<String>> {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("printf '%s\\0' {line}"))
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        Some(text.split_terminator('\0').map(str::to_string).collect())
    }

    #[test]
    fn command_lines_hold_no_control_character_and_paste_back_into_bash() {
        let argv: Vec<String> = [
            "plain",
            "two words",
            "it's",
            "a\nb",
            "\u{1b}[31mred\r",
            "tab\there 'q' \\n",
            "c1\u{85}x",
            // bidi overrides and isolates would reorder what is shown (review of issue 12)
            "b\u{202e}x",
            "\u{2066}iso\u{2069}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let line = command_line(&argv);
        assert!(!line.chars().any(needs_escape), "{line:?}");
        assert!(line.contains(r"$'a\nb'"), "{line}");
        match bash_words(&line) {
            Some(words) => assert_eq!(words, argv, "{line}"),
            None => eprintln!("bash is not installed; the round trip is not checked"),
        }
    }

    #[test]
    fn device_answers_of_older_servers_still_decode_and_new_ones_carry_readings() {
        // an answer as servers sent it before readings existed
        let old = r#"{"type":"device","state":{"network":"unmetered","charging":true,"battery":80,"storage_low":false,"idle":false,"screen_on":true},"source":"host"}"#;
        match serde_json::from_str::<Response>(old).unwrap() {
            Response::Device { readings, .. } => assert_eq!(readings, None),
            other => panic!("{other:?}"),
        }
        let new = Response::Device {
            state: DeviceState::default(),
            source: "manual".into(),
            readings: Some(DeviceReadings::manual()),
        };
        let text = serde_json::to_string(&new).unwrap();
        assert!(
            text.contains(r#""network":{"source":{"kind":"manual"}"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), new);
    }
}
