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
    // the schedule is set aside, the constraint is not: `run` says so instead of "runs now"
    // (review of issue 12: it claimed a run that did not come, and --wait waited in silence)
    let out = d.ok(&["run", "later"]);
    let short = common::short(&id);
    assert!(
        out.starts_with(&format!("{short}: set to run now, but it waits on: ")),
        "{out}"
    );
    assert!(out.contains("charging"), "{out}");
    // once the constraint holds, it runs, and `run --wait --json` reports the run as JSON
    d.ok(&["device", "set", "charging=true"]);
    d.wait_for(&id, "the run", |r| common::state(r) == "succeeded");
    let id2 = d.add(&["--unique", "now", "--in", "1h", "--", "sh", "-c", "exit 0"]);
    let out = d.ok(&["run", "--wait", "--json", &common::short(&id2)]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["result"], "success", "{v}");
    assert_eq!(v["exit_code"], 0, "{v}");
    assert_eq!(v["name"], "now", "{v}");
    // a finished job is not run again by `run`: the error points to `retry`
    let out = d.cli(&["run", "now"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("backwork retry now"),
        "{out:?}"
    );
}
