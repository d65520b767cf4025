//! The daemon's command worker: runs a job's argv as a process group, keeps the tails of its
//! output, and turns its exit into a result.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backwork_control::{CommandOutput, CommandSpec};
use backwork_scheduler::{WorkContext, WorkResult, Worker};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

/// How much of each output stream a run keeps: the last 4 KiB.
pub const TAIL: usize = 4096;

/// Runs command jobs (kind [`backwork_control::COMMAND_KIND`]).
///
/// The process runs directly (no shell), in its own process group, with the environment and
/// working directory captured when the job was added, stdin from `/dev/null`. When the run is
/// asked to stop (time limit, cancel, lost constraint, shutdown) the group gets SIGTERM, then
/// SIGKILL once `grace` has passed; if the runtime drops the run first, the group gets SIGKILL
/// then. Exit 0 is a success; a code listed in `fail_on_exit` a permanent failure; any other exit
/// (or a signal) a retry with backoff.
#[derive(Debug, Clone)]
pub struct CommandWorker {
    grace: Duration,
}

impl CommandWorker {
    /// A worker that gives a stopped process group `grace` between SIGTERM and SIGKILL. Make it
    /// a little shorter than the runtime's grace, so the worker reports the output itself.
    pub fn new(grace: Duration) -> Self {
        CommandWorker { grace }
    }
}

impl Worker for CommandWorker {
    async fn run(&self, ctx: WorkContext) -> WorkResult {
        match ctx.input_as::<CommandSpec>() {
            Ok(spec) => run(&spec, ctx.cancellation(), self.grace).await,
            Err(e) => WorkResult::failure_with(CommandOutput {
                error: Some(format!(
                    "the job's input is not a command ({e}); add it again with `backwork add`"
                )),
                ..empty_output()
            }),
        }
    }
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

/// Kills the process group with SIGKILL when dropped, unless disarmed.
struct GroupGuard {
    pgid: Option<Pid>,
}

impl GroupGuard {
    fn signal(&self, sig: Signal) {
        if let Some(pgid) = self.pgid {
            let _ = killpg(pgid, sig);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
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

/// Runs one command to its end (or until stopped) and returns its result with its output.
pub async fn run(spec: &CommandSpec, cancel: &CancellationToken, grace: Duration) -> WorkResult {
    let Some((program, args)) = spec.argv.split_first() else {
        return WorkResult::failure_with(CommandOutput {
            error: Some("the job has an empty command; add it again with a command".into()),
            ..empty_output()
        });
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(&spec.env)
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            // a missing program or directory will not appear by retrying in 30 s
            return WorkResult::failure_with(CommandOutput {
                error: Some(format!(
                    "could not start `{program}` in {}: {e}",
                    spec.cwd.display()
                )),
                ..empty_output()
            });
        }
    };
    let guard = GroupGuard {
        pgid: child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
    };
    let (out, err) = (
        Arc::new(Mutex::new(Tail::default())),
        Arc::new(Mutex::new(Tail::default())),
    );
    let mut readers = tokio::task::JoinSet::new();
    if let Some(s) = child.stdout.take() {
        readers.spawn(collect(s, Arc::clone(&out)));
    }
    if let Some(s) = child.stderr.take() {
        readers.spawn(collect(s, Arc::clone(&err)));
    }
    let mut stopped = false;
    let status = tokio::select! {
        s = child.wait() => s,
        () = cancel.cancelled() => {
            stopped = true;
            guard.signal(Signal::SIGTERM);
            match tokio::time::timeout(grace, child.wait()).await {
                Ok(s) => s,
                Err(_) => {
                    guard.signal(Signal::SIGKILL);
                    child.wait().await
                }
            }
        }
    };
    if stopped {
        // whatever is left of the group goes too
        guard.signal(Signal::SIGKILL);
    }
    // Background processes the command left behind may hold the pipes open: wait briefly for
    // the rest of the output, then take what there is.
    let _ = tokio::time::timeout(Duration::from_millis(200), async {
        while readers.join_next().await.is_some() {}
    })
    .await;
    readers.abort_all();
    let mut guard = guard;
    guard.pgid = None; // the command ended on its own terms; leave what it started alone
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
    match status {
        Err(e) => {
            output.error = Some(format!("could not wait for `{program}`: {e}"));
            WorkResult::retry_with(output)
        }
        Ok(status) => {
            output.exit_code = status.code();
            output.signal = status.signal();
            match status.code() {
                Some(0) => WorkResult::success_with(output),
                Some(c) if spec.fail_on_exit.contains(&c) => WorkResult::failure_with(output),
                _ => WorkResult::retry_with(output),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(argv: &[&str]) -> CommandSpec {
        CommandSpec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: [("PATH".to_string(), "/usr/bin:/bin".to_string())].into(),
            cwd: "/".into(),
            fail_on_exit: vec![3],
        }
    }

    fn output(r: &WorkResult) -> CommandOutput {
        let v = match r {
            WorkResult::Success(v) | WorkResult::Retry(v) | WorkResult::Failure(v) => v,
        };
        serde_json::from_value(v.clone().expect("output")).expect("command output")
    }

    #[tokio::test]
    async fn exit_codes_map_to_results_with_output() {
        let never = CancellationToken::new();
        let g = Duration::from_secs(1);
        let ok = run(&spec(&["sh", "-c", "echo out; echo err >&2"]), &never, g).await;
        assert!(matches!(ok, WorkResult::Success(_)));
        let o = output(&ok);
        assert_eq!(
            (o.stdout.as_str(), o.stderr.as_str(), o.exit_code),
            ("out\n", "err\n", Some(0))
        );
        let retry = run(&spec(&["sh", "-c", "exit 1"]), &never, g).await;
        assert!(matches!(retry, WorkResult::Retry(_)));
        assert_eq!(output(&retry).exit_code, Some(1));
        let fail = run(&spec(&["sh", "-c", "exit 3"]), &never, g).await;
        assert!(matches!(fail, WorkResult::Failure(_)));
        let missing = run(&spec(&["/no/such/program"]), &never, g).await;
        assert!(matches!(missing, WorkResult::Failure(_)));
        assert!(output(&missing).error.unwrap().contains("could not start"));
    }

    #[tokio::test]
    async fn only_the_last_4_kib_of_output_is_kept() {
        let never = CancellationToken::new();
        let r = run(
            &spec(&[
                "sh",
                "-c",
                "i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done",
            ]),
            &never,
            Duration::from_secs(1),
        )
        .await;
        let o = output(&r);
        assert_eq!(o.stdout.len(), TAIL);
        assert!(o.stdout.ends_with("line-1999\n"));
        assert!(o.stdout_dropped > 0);
        assert_eq!(
            o.stdout_dropped as usize + TAIL,
            (0..2000)
                .map(|i| format!("line-{i}\n").len())
                .sum::<usize>()
        );
    }

    #[tokio::test]
    async fn the_environment_and_directory_are_the_captured_ones() {
        let mut s = spec(&["sh", "-c", "echo \"$GREETING\"; pwd"]);
        s.env.insert("GREETING".into(), "hello".into());
        s.cwd = "/tmp".into();
        let o = output(&run(&s, &CancellationToken::new(), Duration::from_secs(1)).await);
        assert_eq!(o.stdout, "hello\n/tmp\n");
    }

    fn alive(pid: i32) -> bool {
        nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')))
    }

    /// A group that ignores SIGTERM: the leader and a child both trap it; after the grace period
    /// both are killed.
    #[tokio::test]
    async fn a_stopped_group_that_ignores_sigterm_is_killed_after_the_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let script = format!(
            "trap '' TERM; sleep 300 & echo $$ $! > {}; wait",
            pids.display()
        );
        let s = spec(&["sh", "-c", &script]);
        let token = CancellationToken::new();
        let stopper = token.clone();
        let pids_path = pids.clone();
        let watcher = tokio::spawn(async move {
            // stop the run once it has written its pids
            while std::fs::read_to_string(&pids_path).map_or(true, |s| !s.ends_with('\n')) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            stopper.cancel();
        });
        let started = std::time::Instant::now();
        let r = run(&s, &token, Duration::from_millis(300)).await;
        watcher.await.unwrap();
        let elapsed = started.elapsed();
        let o = output(&r);
        assert_eq!(o.signal, Some(9), "{o:?}");
        let text = std::fs::read_to_string(&pids).unwrap();
        for pid in text.split_whitespace() {
            let pid: i32 = pid.parse().unwrap();
            assert!(!alive(pid), "process {pid} of the group survived");
        }
        assert!(
            elapsed >= Duration::from_millis(300),
            "SIGKILL came before the grace period"
        );
    }

    /// The runtime drops a run whose grace ran out: dropping the future kills the group.
    #[tokio::test]
    async fn dropping_the_run_kills_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let script = format!("trap '' TERM; echo $$ > {}; sleep 300", pids.display());
        let s = spec(&["sh", "-c", &script]);
        let token = CancellationToken::new();
        let fut = run(&s, &token, Duration::from_secs(60));
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            tokio::pin!(fut);
            tokio::select! {
                _ = &mut fut => {}
                () = async {
                    while std::fs::read_to_string(&pids).map_or(true, |s| !s.ends_with('\n')) {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                } => {}
            }
        })
        .await;
        let pid: i32 = std::fs::read_to_string(&pids)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // the future was dropped above
        for _ in 0..100 {
            if !alive(pid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("process {pid} survived the drop of its run");
    }
}
