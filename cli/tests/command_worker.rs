//! The command worker as the daemon uses it, one run at a time: exit codes map to results, the
//! output's tails are kept, the captured environment and directory are used, and a stopped run's
//! process group is killed — after the grace period when it ignores SIGTERM, at once when the
//! runtime drops the run, and by the worker itself when the run's supervisor is killed. (Moved
//! here from unit tests: the worker now runs each command under a `backwork __supervise`
//! process, which only the built binary provides.)

use std::time::Duration;

use backwork_cli::command::{CommandWorker, TAIL};
use backwork_cli::runs::{RunDir, RunFile};
use backwork_control::{CommandOutput, CommandSpec};
use backwork_scheduler::{JobId, WorkResult};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_backwork");

/// Runs `s` through a worker whose supervisor is the built binary.
fn rand_tail() -> [u8; 10] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mut b = [0u8; 10];
    b[2..].copy_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    b
}

async fn run(s: &CommandSpec, cancel: &CancellationToken, grace: Duration) -> WorkResult {
    // a job id of its own for each run: a run's processes are found by job and attempt, and the
    // tests of this file run at once
    let job = JobId::new_v7(chrono::Utc::now(), rand_tail());
    CommandWorker::new(grace)
        .supervisor(BIN)
        .execute(s, cancel, job, 1)
        .await
}

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

/// If the run's supervisor itself is killed, the worker cannot know how the command ends: it
/// kills the command's group (so a retry cannot run beside it) and asks for a retry. The
/// supervisor is killed once the worker has recorded the started command in the run directory
/// (its first report is in).
#[tokio::test]
async fn a_killed_supervisor_takes_the_command_group_down_and_the_run_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let runs = RunDir::at(dir.path().join("runs")).unwrap();
    // a job id of its own for each run: a run's processes are found by job and attempt, and the
    // tests of this file run at once
    let job = JobId::new_v7(chrono::Utc::now(), rand_tail());
    let run_file = runs.file_of(job);
    let s = spec(&["sh", "-c", "sleep 300"]);
    let token = CancellationToken::new();
    let killer = tokio::spawn(async move {
        loop {
            let recorded = std::fs::read(&run_file)
                .ok()
                .and_then(|b| serde_json::from_slice::<RunFile>(&b).ok())
                .filter(|f| f.command.is_some());
            if let Some(f) = recorded {
                nix::sys::signal::kill(
                    Pid::from_raw(f.supervisor.pid),
                    nix::sys::signal::Signal::SIGKILL,
                )
                .unwrap();
                return f.command.unwrap().pid;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let worker = CommandWorker::new(Duration::from_secs(5))
        .supervisor(BIN)
        .run_dir(runs);
    let r = tokio::time::timeout(Duration::from_secs(30), worker.execute(&s, &token, job, 1))
        .await
        .expect("the run ends when its supervisor is killed");
    let sh = killer.await.unwrap();
    assert!(matches!(r, WorkResult::Retry(_)), "{r:?}");
    assert!(output(&r).error.unwrap().contains("lost track"));
    for _ in 0..100 {
        if !alive(sh) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the command {sh} outlived its killed supervisor");
}

/// signal(7): ignored signals survive execve. The command must not inherit an ignored signal
/// from whoever started the daemon (`nohup`, a background job of a shell): here the test process
/// itself ignores SIGQUIT, and the command's `SigIgn` (proc(5)) must be empty, as under systemd.
#[tokio::test]
async fn the_command_starts_with_default_signal_actions() {
    // SAFETY: setting a disposition to "ignore" has no handler to be unsafe about
    unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGQUIT,
            nix::sys::signal::SigHandler::SigIgn,
        )
        .unwrap();
    }
    let s = spec(&["sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status"]);
    let o = output(&run(&s, &CancellationToken::new(), Duration::from_secs(1)).await);
    let mask = |name: &str| {
        let line = o.stdout.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    assert_eq!(mask("SigBlk:"), 0, "{o:?}");
    // bit n-1 stands for signal n; 32 and up are real-time signals glibc reserves for itself
    // (nptl(7)), outside what a command's shell deals with
    assert_eq!(mask("SigIgn:") & 0x7fff_ffff, 0, "{o:?}");
}

/// A descriptor the daemon inherited (from the shell that started it, say) is not passed on to
/// command jobs: only the standard streams and the progress descriptor are (as systemd passes a
/// service only its standard streams and the sockets it asked for). A reviewer saw fds 10 and
/// 251 of a shell in a command's /proc/self/fd.
#[tokio::test]
async fn a_descriptor_the_daemon_inherited_does_not_reach_the_command() {
    // a descriptor without close-on-exec, as a shell leaves them, at a number nothing else uses
    // (dup2 clears close-on-exec on the copy)
    let file = std::fs::File::open("/dev/null").unwrap();
    // SAFETY: descriptor 77 is not used by anything else in this test process
    let stray = unsafe { nix::unistd::dup2_raw(&file, 77) }.unwrap();
    let never = CancellationToken::new();
    let listed = run(
        &spec(&["sh", "-c", "cd /proc/$$/fd && echo *"]),
        &never,
        Duration::from_secs(1),
    )
    .await;
    drop(stray);
    let fds = output(&listed).stdout;
    let fds: Vec<&str> = fds.split_whitespace().collect();
    assert!(
        !fds.contains(&"77"),
        "the stray descriptor reached the command: {fds:?}"
    );
    assert!(
        fds.contains(&"0") && fds.contains(&"1") && fds.contains(&"2"),
        "{fds:?}"
    );
}
