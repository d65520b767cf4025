//! The daemon's command worker: runs a job's argv under a per-run supervisor that contains its
//! whole process tree (see [`crate::supervise`]), keeps the tails of its output, and turns its
//! exit into a result.

use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backwork_control::{CommandOutput, CommandSpec};
use backwork_scheduler::{JobId, WorkContext, WorkResult, Worker};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use crate::procfs::Stamp;
use crate::runs::{RunDir, RunFile};
use crate::supervise::{self, Report, Setup, classify_start_error};

/// How much of each output stream a run keeps: the last 4 KiB.
pub const TAIL: usize = 4096;

/// Runs command jobs (kind [`backwork_control::COMMAND_KIND`]).
///
/// Each run gets its own supervisor process (`backwork __supervise`), recorded durably in the
/// run directory (when there is one) before the command starts. The command runs directly (no
/// shell), in its own process group, with the environment and working directory captured when
/// the job was added, stdin from `/dev/null`, every signal at its default action. When the run is asked to stop (time limit, cancel,
/// lost constraint, shutdown) its whole tree — descendants that left the group included — gets
/// SIGTERM, then SIGKILL once `grace` has passed; processes the command leaves behind when it
/// exits are stopped the same way; if the runtime drops the run, or the daemon dies, the tree is
/// stopped too. Exit 0 is a success; a code listed in `fail_on_exit` a permanent failure; any
/// other exit (or a signal) a retry with backoff. A command that cannot start is retried when the
/// reason may pass (out of file descriptors, memory, processes) and fails when it cannot (program
/// or working directory gone), with the path in the message.
#[derive(Debug, Clone)]
pub struct CommandWorker {
    grace: Duration,
    supervisor: PathBuf,
    runs: Option<RunDir>,
}

impl CommandWorker {
    /// A worker that gives a stopped tree `grace` between SIGTERM and SIGKILL. Make it a little
    /// shorter than the runtime's grace, so the worker reports the output itself. The supervisor
    /// is this very program (`/proc/self/exe`, which still works after an upgrade replaced the
    /// file), and no run is recorded until [`CommandWorker::run_dir`] says where.
    pub fn new(grace: Duration) -> Self {
        CommandWorker {
            grace,
            supervisor: PathBuf::from("/proc/self/exe"),
            runs: None,
        }
    }

    /// Uses the `backwork` binary at `program` as the supervisor (tests, which are other
    /// programs, name the built binary).
    pub fn supervisor(mut self, program: impl Into<PathBuf>) -> Self {
        self.supervisor = program.into();
        self
    }

    /// Records every run in `dir` before its command starts (see [`RunDir`]).
    pub fn run_dir(mut self, dir: RunDir) -> Self {
        self.runs = Some(dir);
        self
    }

    /// Runs `spec` to its end (or until `cancel` fires) as attempt `attempt` of `job`. What the
    /// command writes to its progress descriptor ([`crate::progress`]) is dropped.
    pub async fn execute(
        &self,
        spec: &CommandSpec,
        cancel: &CancellationToken,
        job: JobId,
        attempt: u32,
    ) -> WorkResult {
        run(self, spec, cancel, job, attempt, |_| {}).await
    }
}

/// The environment variable naming the file that holds, as JSON, the outputs of a chained
/// command's prerequisites merged by its input merger.
pub const INPUT_VAR: &str = "BACKWORK_INPUT";
/// The environment variable naming the file that holds the prerequisites' standard output
/// (the merged `stdout`: one tail, or with the array-creating merger each tail in turn).
pub const INPUT_STDOUT_VAR: &str = "BACKWORK_INPUT_STDOUT";

/// Writes what a chained command's prerequisites passed on into a fresh private directory
/// (0700, removed when the returned guard drops): `input.json` and `stdout`. Returns the
/// directory and the variables that name the files.
fn write_upstream(upstream: &Value) -> std::io::Result<(tempfile::TempDir, [(String, String); 2])> {
    let dir = tempfile::Builder::new()
        .prefix("backwork-input-")
        .tempdir()?;
    let json = dir.path().join("input.json");
    std::fs::write(&json, serde_json::to_vec(upstream).unwrap_or_default())?;
    let stdout: String = match upstream.get("stdout") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    };
    let text = dir.path().join("stdout");
    std::fs::write(&text, stdout)?;
    let vars = [
        (INPUT_VAR.to_string(), json.to_string_lossy().into_owned()),
        (
            INPUT_STDOUT_VAR.to_string(),
            text.to_string_lossy().into_owned(),
        ),
    ];
    Ok((dir, vars))
}

impl Worker for CommandWorker {
    async fn run(&self, ctx: WorkContext) -> WorkResult {
        // the command is the job's own input: a prerequisite's output never changes it
        match serde_json::from_value::<CommandSpec>(ctx.own_input().clone()) {
            Ok(mut spec) => {
                let mut _inputs = None; // kept until the run ends
                if let Some(up) = ctx.upstream() {
                    let up = up.clone();
                    match tokio::task::spawn_blocking(move || write_upstream(&up)).await {
                        Ok(Ok((dir, vars))) => {
                            spec.env.extend(vars);
                            _inputs = Some(dir);
                        }
                        Ok(Err(e)) => {
                            return start_failure(
                                format!(
                                    "could not write the prerequisites' output for the command ({e}); the run is retried with backoff"
                                ),
                                false,
                            );
                        }
                        Err(e) => {
                            return start_failure(
                                format!(
                                    "could not write the prerequisites' output for the command ({e}); the run is retried with backoff"
                                ),
                                false,
                            );
                        }
                    }
                }
                let reporter = ctx.clone();
                run(
                    self,
                    &spec,
                    ctx.cancellation(),
                    ctx.id(),
                    ctx.attempt(),
                    move |v| reporter.set_progress(v),
                )
                .await
            }
            Err(e) => WorkResult::failure_with(CommandOutput {
                error: Some(format!(
                    "the job's input is not a command ({e}); add it again with `backwork add`"
                )),
                ..empty_output()
            }),
        }
    }
}

/// A signal's name as signal(7) gives it (`SIGTERM`), or `signal N` for a number it has none for.
pub fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_string())
}

fn empty_output() -> CommandOutput {
    CommandOutput {
        exit_code: None,
        signal: None,
        stdout: String::new(),
        stderr: String::new(),
        stdout_dropped: 0,
        stderr_dropped: 0,
        error: None,
    }
}

/// The last [`TAIL`] bytes of a stream, and how many came before them.
#[derive(Debug, Default)]
struct Tail {
    buf: Vec<u8>,
    dropped: u64,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > TAIL {
            let cut = self.buf.len() - TAIL;
            self.buf.drain(..cut);
            self.dropped += cut as u64;
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

async fn collect(mut from: impl AsyncRead + Unpin, into: Arc<Mutex<Tail>>) {
    let mut chunk = [0u8; 8192];
    while let Ok(n) = from.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        into.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(&chunk[..n]);
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Stops the run's supervisor when the run is dropped before it ended (the runtime gave up on
/// it): `kill` skips the grace period, and closing the socket would stop it anyway. Forgets the
/// run's file.
struct Guard {
    control: Option<std::os::unix::net::UnixStream>,
    forget: Option<(RunDir, JobId)>,
}

impl Guard {
    fn disarm(&mut self) {
        self.control = None;
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.control.take() {
            let _ = c.set_nonblocking(true);
            let _ = c.write_all(b"kill\n");
        }
        if let Some((dir, job)) = self.forget.take() {
            dir.forget(job);
        }
    }
}

fn start_failure(message: String, permanent: bool) -> WorkResult {
    let output = CommandOutput {
        error: Some(message),
        ..empty_output()
    };
    if permanent {
        WorkResult::failure_with(output)
    } else {
        WorkResult::retry_with(output)
    }
}

/// Runs one command to its end (or until stopped) and returns its result with its output; hands
/// what it reports on its progress descriptor to `progress`.
async fn run(
    worker: &CommandWorker,
    spec: &CommandSpec,
    cancel: &CancellationToken,
    job: JobId,
    attempt: u32,
    progress: impl FnMut(serde_json::Value) + Send + 'static,
) -> WorkResult {
    let Some(program) = spec.argv.first() else {
        return start_failure(
            "the job has an empty command; add it again with a command".into(),
            true,
        );
    };
    // what goes wrong before the supervisor runs is the daemon's trouble (out of descriptors,
    // say), never the job's fault: always a retry
    let judge = |e: &std::io::Error| {
        let j = classify_start_error(
            e,
            program,
            &spec.cwd,
            spec.env.get("PATH").map(String::as_str),
        );
        let message = if j.permanent {
            format!(
                "could not start the run's supervisor {}: {e}; the run counts as a failed attempt and is retried with backoff unless its attempts are used up",
                worker.supervisor.display()
            )
        } else {
            j.message
        };
        start_failure(message, false)
    };
    let (ours, theirs) = match std::os::unix::net::UnixStream::pair() {
        Ok(p) => p,
        Err(e) => return judge(&e),
    };
    // the progress pipe: both ends close-on-exec here; the write end becomes the supervisor's
    // (and so the command's) descriptor 3
    let (progress_rx, progress_tx) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return judge(&std::io::Error::from(e)),
    };
    // a daemon started with a standard descriptor closed may get 0–2 for the pipe; those are
    // the supervisor's stdin, stdout and stderr in the child, so move the write end above them
    let progress_tx = match crate::progress::above_stdio(progress_tx) {
        Ok(fd) => fd,
        Err(e) => return judge(&e),
    };
    let mut cmd = tokio::process::Command::new(&worker.supervisor);
    cmd.arg0("backwork")
        .arg(supervise::SUBCOMMAND)
        .env_clear()
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let tx_raw = std::os::fd::AsRawFd::as_raw_fd(&progress_tx);
    // SAFETY: dup2(2) and fcntl(2) are async-signal-safe; nothing else runs between fork and
    // exec. The duplicate at PROGRESS_FD is left open on purpose (it is the supervisor's).
    unsafe {
        cmd.pre_exec(move || {
            crate::progress::install(tx_raw)?;
            Ok(())
        });
    }
    let spawned = cmd.spawn();
    drop(cmd); // closes our copy of the supervisor's end
    drop(progress_tx); // the command holds the write end now; the pipe ends when its tree does
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return judge(&e),
    };
    let Some(stamp) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Stamp::of)
    else {
        let _ = child.kill().await;
        return start_failure(
            "the run's supervisor died as it started; the run counts as a failed attempt and is retried with backoff unless its attempts are used up".into(),
            false,
        );
    };
    let mut guard = Guard {
        control: ours.try_clone().ok(),
        forget: None,
    };
    let mut record = worker.runs.as_ref().map(|dir| {
        (
            dir.clone(),
            RunFile {
                job,
                attempt,
                started: chrono::Utc::now(),
                supervisor: stamp,
                command: None,
            },
        )
    });
    if let Some((dir, file)) = &record {
        guard.forget = Some((dir.clone(), job));
        let (d, f) = (dir.clone(), file.clone());
        match tokio::task::spawn_blocking(move || d.record(&f)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return start_failure(e.to_string(), false),
            Err(e) => return start_failure(format!("could not record the run: {e}"), false),
        }
    }
    let (out, err) = (
        Arc::new(Mutex::new(Tail::default())),
        Arc::new(Mutex::new(Tail::default())),
    );
    let mut readers = tokio::task::JoinSet::new();
    // progress is read beside the run and stops with it (a descendant that escaped the tree
    // could hold the pipe open for ever)
    let follower = tokio::net::unix::pipe::Receiver::from_owned_fd(progress_rx)
        .ok()
        .map(|pipe| tokio::spawn(crate::progress::follow(pipe, progress)));
    let _stop_follower = follower.map(|task| task.abort_handle()).map(AbortOnDrop);
    if let Some(s) = child.stdout.take() {
        readers.spawn(collect(s, Arc::clone(&out)));
    }
    if let Some(s) = child.stderr.take() {
        readers.spawn(collect(s, Arc::clone(&err)));
    }
    let mut control = match ours
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(ours))
    {
        Ok(c) => c,
        Err(e) => return judge(&e),
    };
    // borrowed halves: an owned write half would shut the socket down when dropped, and the
    // supervisor would take that for the daemon's death before the guard's `kill` arrives
    let (rd, mut wr) = control.split();
    let mut lines = BufReader::new(rd).lines();
    let setup = Setup {
        progress_fd: Some(crate::progress::PROGRESS_FD),
        spec: spec.clone(),
        grace_ms: u64::try_from(worker.grace.as_millis()).unwrap_or(u64::MAX),
        ended_file: worker.runs.as_ref().map(|d| d.ended_file_of(job)),
        marker: crate::procfs::run_marker(job, attempt),
    };
    let mut line = serde_json::to_string(&setup).unwrap_or_default();
    line.push('\n');
    if let Err(e) = wr.write_all(line.as_bytes()).await {
        return start_failure(
            format!(
                "could not hand the command to its supervisor ({e}); the run counts as a failed attempt and is retried with backoff unless its attempts are used up"
            ),
            false,
        );
    }
    let next = |l: std::io::Result<Option<String>>| -> Option<Report> {
        l.ok().flatten().and_then(|s| serde_json::from_str(&s).ok())
    };
    let command = match next(lines.next_line().await) {
        Some(Report::Started { command }) => {
            if let Some((dir, file)) = &mut record {
                file.command = Some(command);
                let (d, f) = (dir.clone(), file.clone());
                // the supervisor alone can stop the tree; this only helps if it is killed too
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || d.record(&f)).await {
                    tracing::warn!(error = %e, "could not record the command's process group");
                }
            }
            command
        }
        Some(Report::SpawnFailed { message, permanent }) => {
            let _ = child.wait().await;
            guard.disarm();
            return start_failure(message, permanent);
        }
        _ => {
            let _ = child.wait().await;
            guard.disarm();
            return start_failure(
                "the run's supervisor ended before starting the command; the run counts as a failed attempt and is retried with backoff unless its attempts are used up"
                    .into(),
                false,
            );
        }
    };
    let stopped = tokio::select! {
        l = lines.next_line() => Err(next(l)),
        () = cancel.cancelled() => Ok(()),
    };
    let report = match stopped {
        Err(r) => r,
        Ok(()) => {
            let _ = wr.write_all(b"stop\n").await;
            // the supervisor kills the tree after the grace period; this is a backstop
            match tokio::time::timeout(worker.grace.mul_f64(1.1), lines.next_line()).await {
                Ok(l) => next(l),
                Err(_) => {
                    let _ = wr.write_all(b"kill\n").await;
                    next(lines.next_line().await)
                }
            }
        }
    };
    if report.is_none() {
        // the supervisor was killed: what is left of the run goes now — its group, and what
        // carries its marker (`setsid` ones too) — so the retry cannot run beside it
        crate::procfs::kill_run(Some(command), &crate::procfs::run_marker(job, attempt));
    }
    let _ = child.wait().await;
    guard.disarm();
    drop(guard); // forgets the run's file: its processes are gone
    // the tree is gone, so the pipes are closed; the timeout only guards against surprises
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while readers.join_next().await.is_some() {}
    })
    .await;
    readers.abort_all();
    let (stdout, stdout_dropped) = {
        let t = out.lock().unwrap_or_else(|e| e.into_inner());
        (t.text(), t.dropped)
    };
    let (stderr, stderr_dropped) = {
        let t = err.lock().unwrap_or_else(|e| e.into_inner());
        (t.text(), t.dropped)
    };
    let mut output = CommandOutput {
        stdout,
        stderr,
        stdout_dropped,
        stderr_dropped,
        ..empty_output()
    };
    match report {
        Some(Report::Exited {
            code,
            signal,
            leftovers,
        }) => {
            output.exit_code = code;
            output.signal = signal;
            match (code, signal) {
                (Some(code), _) => tracing::info!(
                    code,
                    "`{}` exited with code {code}",
                    crate::render::escape(program)
                ),
                (None, Some(signal)) => {
                    let name = signal_name(signal);
                    tracing::info!(
                        signal,
                        "`{}` was killed by {name}",
                        crate::render::escape(program)
                    );
                }
                (None, None) => {}
            }
            if leftovers > 0 {
                tracing::info!(leftovers, "stopped processes the command left behind");
            }
            match code {
                Some(0) => WorkResult::success_with(output),
                Some(c) if spec.fail_on_exit.contains(&c) => WorkResult::failure_with(output),
                _ => WorkResult::retry_with(output),
            }
        }
        _ => {
            output.error = Some(format!(
                "lost track of `{program}`: its supervisor ended without a report; the \
                 command's process group was killed"
            ));
            WorkResult::retry_with(output)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_keeps_the_last_bytes_and_counts_the_rest() {
        let mut t = Tail::default();
        t.push(&[b'a'; TAIL]);
        t.push(b"xyz");
        assert_eq!(t.buf.len(), TAIL);
        assert!(t.text().ends_with("axyz"));
        assert_eq!(t.dropped, 3);
    }
}
