//! `backwork run --wait` follows the run it asked for and exits with its result, the way
//! `docker run` does: 0 for a success, the command's exit code, 128 + N when signal N ended it
//! (the shell's convention, bash(1) "EXIT STATUS"); without `--wait`, `run` says what it did
//! (issue 12, item 4: it printed a bare id, and could not wait).

mod common;

use common::Daemon;

#[test]
fn run_wait_exits_with_the_result_of_the_run() {
    let d = Daemon::start(&[]);
    d.add(&["--unique", "ok", "--in", "1h", "--", "sh", "-c", "echo hi"]);
    d.add(&[
        "--unique",
        "three",
        "--in",
        "1h",
        "--max-attempts",
        "1",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    d.add(&[
        "--unique",
        "killed",
        "--in",
        "1h",
        "--",
        "sh",
        "-c",
        "kill -9 $$",
    ]);

    let out = d.cli(&["run", "--wait", "ok"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok: succeeded after"),
        "{out:?}"
    );

    let out = d.cli(&["run", "--wait", "three"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("three: failed (exit 3)"),
        "{out:?}"
    );

    let out = d.cli(&["run", "--wait", "killed"]);
    assert_eq!(out.status.code(), Some(128 + 9), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("failed (SIGKILL)"), "{out:?}");
    assert!(text.contains("it will be retried"), "{out:?}");
}

#[test]
fn run_says_what_it_did() {
    let d = Daemon::start(&[]);
    let id = d.add(&[
        "--unique",
        "later",
        "--in",
        "1h",
        "--requires",
        "charging",
        "--",
        "true",
    ]);
    d.ok(&["device", "set", "charging=false"]);
    let out = d.ok(&["run", "later"]);
    let short = common::short(&id);
    assert_eq!(
        out.trim(),
        format!("{short}: runs now (`backwork why {short}` says what it waits for)")
    );
}
