//! A command that cannot start must be judged by why (DESIGN §2): a transient reason — out of
//! file descriptors (EMFILE, getrlimit(2) RLIMIT_NOFILE), a busy executable (ETXTBSY), memory,
//! processes — is a retry with backoff, never a permanent failure on attempt 1; a permanent one
//! (working directory or program gone) fails the job and the message names the path that is
//! gone. Before this, a
//! deleted directory and EMFILE alike failed a one-off for good (issue 9, item 4).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use backwork_cli::command::CommandWorker;
use backwork_control::{CommandOutput, CommandSpec};
use backwork_scheduler::{JobId, WorkResult};
use common::{BIN, Daemon, state};
use tokio_util::sync::CancellationToken;

fn spec(argv: &[&str]) -> CommandSpec {
    CommandSpec {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: [("PATH".to_string(), "/usr/bin:/bin".to_string())].into(),
        cwd: "/".into(),
        fail_on_exit: vec![],
    }
}

fn output(r: &WorkResult) -> CommandOutput {
    let v = match r {
        WorkResult::Success(v) | WorkResult::Retry(v) | WorkResult::Failure(v) => v,
    };
    serde_json::from_value(v.clone().expect("output")).expect("command output")
}

fn job() -> JobId {
    "01a22912-808a-74a0-9e7b-db25a02bdc3e".parse().unwrap()
}

#[test]
fn a_deleted_working_directory_fails_the_job_and_names_the_directory() {
    let d = Daemon::start(&[]);
    let work = d.path("work");
    std::fs::create_dir(&work).unwrap();
    let w = work.to_str().unwrap();
    d.ok(&[
        "add",
        "--in",
        "1h",
        "--unique",
        "w",
        "--max-attempts",
        "5",
        "--cwd",
        w,
        "--",
        "true",
    ]);
    std::fs::remove_dir(&work).unwrap();
    d.ok(&["run", "w"]);
    let r = d.wait_for("w", "the failed start", |r| state(r) == "failed");
    let run = &r["job"]["runs"][0];
    assert_eq!(run["attempt"], 1);
    let error = run["output"]["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("working directory {w} is gone")),
        "{error}"
    );
}

/// execve(2): ETXTBSY while the executable is open for writing — a real transient start error
/// from the kernel, through the whole daemon: the job backs off (attempt 1 is a retry, not a
/// failure), and runs once the file is free.
#[test]
fn a_busy_executable_is_retried_and_runs_once_it_is_free() {
    let d = Daemon::start(&[]);
    let prog = d.path("busy.sh");
    std::fs::write(&prog, "#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    let writer = std::fs::OpenOptions::new().write(true).open(&prog).unwrap();
    let p = prog.to_str().unwrap();
    d.ok(&["add", "--unique", "busy", "--max-attempts", "5", "--", p]);
    let r = d.wait_for("busy", "the failed start", |r| {
        r["job"]["runs_total"] == 1 && state(r) != "running"
    });
    assert_eq!(state(&r), "enqueued", "backing off, not failed: {r:#}");
    let run = &r["job"]["runs"][0];
    assert_eq!(run["result"], "retry");
    let error = run["output"]["error"].as_str().unwrap();
    assert!(
        error.contains("retried with backoff") && error.contains("Text file busy"),
        "{error}"
    );
    drop(writer);
    d.ok(&["run", "busy"]);
    let r = d.wait_for("busy", "the run once the file is free", |r| {
        state(r) != "running" && r["job"]["runs_total"] == 2
    });
    assert_eq!(state(&r), "succeeded", "{r:#}");
    assert_eq!(r["job"]["runs"][1]["output"]["stdout"], "ran\n");
}

#[tokio::test]
async fn a_missing_program_fails_and_says_where_it_was_looked_for() {
    let w = CommandWorker::new(Duration::from_secs(1)).supervisor(BIN);
    let never = CancellationToken::new();
    let r = w
        .execute(&spec(&["no-such-program-here"]), &never, job(), 1)
        .await;
    assert!(matches!(r, WorkResult::Failure(_)), "{r:?}");
    let e = output(&r).error.unwrap();
    assert!(
        e.contains("no-such-program-here") && e.contains("/usr/bin:/bin"),
        "{e}"
    );
    let r = w
        .execute(&spec(&["/no/such/program"]), &never, job(), 1)
        .await;
    assert!(matches!(r, WorkResult::Failure(_)), "{r:?}");
    assert!(output(&r).error.unwrap().contains("/no/such/program"));
}

/// The supervisor runs under `prlimit --nofile=5` (prlimit(1)): fds 0–2, the progress pipe the
/// daemon passes at fd 3 and its signalfd use the five it may have, so opening /dev/null for
/// the command's stdin fails with EMFILE — the real error, from the kernel, at the real place.
#[tokio::test]
async fn out_of_file_descriptors_is_a_retry_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("limited-supervisor");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec prlimit --nofile=5:5 {BIN} \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let w = CommandWorker::new(Duration::from_secs(1)).supervisor(&wrapper);
    let r = w
        .execute(&spec(&["true"]), &CancellationToken::new(), job(), 1)
        .await;
    assert!(matches!(r, WorkResult::Retry(_)), "{r:?}");
    let e = output(&r).error.unwrap();
    assert!(
        e.contains("out of file descriptors") && e.contains("retried"),
        "{e}"
    );
}
