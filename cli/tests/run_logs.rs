//! The daemon logs every run of a command job — its start and its end, with the job's short id,
//! name, attempt, how long it took and what happens next — INFO for a success, WARN for a failure
//! and a time-out (issue 12, item 1: ~30 runs used to leave no line at all, even with `-vv`),
//! and `RUST_LOG` sets the filter as tracing's `EnvFilter` documents.

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, short, state};

/// Waits until the daemon's log holds a line with every one of `parts`; returns that line.
fn line_with(d: &Daemon, parts: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = d.log();
        if let Some(line) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {parts:?}; the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_success_a_failure_and_a_timeout_each_leave_their_lines() {
    let d = Daemon::start(&["--grace", "2s"]);
    let ok = short(&d.add(&["--unique", "nightly-ok", "--", "true"]));
    let line = line_with(&d, &["INFO", "run started", &ok]);
    assert!(line.contains("name=\"nightly-ok\""), "{line}");
    assert!(line.contains("attempt=1"), "{line}");
    let line = line_with(&d, &["run succeeded", &ok]);
    assert!(line.contains("INFO"), "{line}");
    assert!(line.contains("took="), "{line}");
    assert!(
        line.contains("no further runs: the job succeeded"),
        "{line}"
    );
    line_with(&d, &["`true` exited with code 0"]);

    let bad = short(&d.add(&[
        "--unique",
        "sync-bad",
        "--backoff",
        "linear:1m",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]));
    line_with(&d, &["`sh` exited with code 3"]);
    let line = line_with(&d, &["run failed", &bad]);
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("next start"), "a retry says when: {line}");

    let slow = short(&d.add(&[
        "--unique",
        "backup-slow",
        "--timeout",
        "1s",
        "--",
        "sleep",
        "30",
    ]));
    line_with(&d, &["`sleep` was killed by SIGTERM"]);
    let line = line_with(&d, &["run stopped: it ran past its time limit", &slow]);
    assert!(line.contains("WARN"), "{line}");
}

#[test]
fn rust_log_sets_the_filter() {
    let d = Daemon::start_with("export RUST_LOG=warn", &[]);
    let id = short(&d.add(&["--unique", "quiet", "--", "sh", "-c", "exit 3"]));
    d.wait_for("quiet", "the failed run", |r| {
        state(r) == "enqueued" && r["job"]["runs_total"] == 1
    });
    line_with(&d, &["WARN", "run failed", &id]);
    let log = d.log();
    assert!(
        !log.contains("run started"),
        "RUST_LOG=warn must hide INFO lines:\n{log}"
    );
}
