//! A run that ends — by its time limit, by `backwork cancel`, by the daemon's clean shutdown, or
//! by its command exiting — takes its whole process tree with it, descendants that left the
//! process group with `setsid` included, even one that ignores SIGTERM (it gets SIGKILL after the
//! grace period; signal(7)).
//! Before containment, a `setsid` grandchild survived a timeout kill (issue 9, item 3).
//! Processes are named by pid and start time (proc(5), field 22).

mod common;

use std::time::Duration;

use common::{Daemon, Proc, job_argv, job_procs, state, wait_gone};

/// Adds the containment job (`common/job.sh`) as NAME with `extra` flags; returns its processes.
fn start(d: &Daemon, name: &str, extra: &[&str], when: &str) -> Vec<Proc> {
    let mut args: Vec<String> = vec!["add".into(), "--unique".into(), name.into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.extend(job_argv(d, when));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    d.ok(&args);
    job_procs(d).into_values().collect()
}

#[test]
fn a_timeout_kills_a_setsid_grandchild_that_ignores_sigterm() {
    let d = Daemon::start(&["--grace", "1s"]);
    let procs = start(&d, "t", &["--timeout", "1s"], "wait");
    let r = d.wait_for("t", "the time limit", |r| {
        r["job"]["runs"].as_array().is_some_and(|h| !h.is_empty())
    });
    assert_eq!(
        r["job"]["runs"][0]["stop_reason"]["code"], "timeout",
        "{r:#}"
    );
    // the run is recorded only once its tree is gone
    let survivors = wait_gone(&procs, Duration::from_secs(2));
    assert!(
        survivors.is_empty(),
        "survived the time limit: {survivors:?}"
    );
}

/// A command started directly (no shell that resets its signals) is stopped by SIGTERM, not by
/// the SIGKILL that follows the grace period: it starts with no signal blocked (proc(5): the
/// `SigBlk` mask of `/proc/PID/status` is all zeros), as systemd starts a service. The daemon's
/// per-run supervisor blocks SIGTERM for its own signalfd, and a signal mask survives exec;
/// before the fix, `sleep 30` under `--timeout 1s` ignored SIGTERM and died of SIGKILL.
#[test]
fn a_command_starts_with_no_signal_blocked_and_a_timeout_ends_it_with_sigterm() {
    let d = Daemon::start(&["--grace", "2s"]);
    d.ok(&[
        "add",
        "--unique",
        "mask",
        "--",
        "grep",
        "SigBlk",
        "/proc/self/status",
    ]);
    let r = d.wait_for("mask", "the run", |r| state(r) == "succeeded");
    let out = r["job"]["runs"][0]["output"]["stdout"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(out.trim(), "SigBlk:\t0000000000000000", "{r:#}");

    d.ok(&[
        "add",
        "--unique",
        "slow",
        "--timeout",
        "1s",
        "--",
        "sleep",
        "30",
    ]);
    let r = d.wait_for("slow", "the time limit", |r| {
        r["job"]["runs"].as_array().is_some_and(|h| !h.is_empty())
    });
    let run = &r["job"]["runs"][0];
    assert_eq!(run["stop_reason"]["code"], "timeout", "{r:#}");
    assert_eq!(
        run["output"]["signal"],
        nix::sys::signal::Signal::SIGTERM as i32,
        "sleep(1) has no SIGTERM handler: a SIGTERM that arrives ends it; {r:#}"
    );
    // the time-out is named where the result is shown (issue 12: `list` said `stopped`)
    let list = d.ok(&["list"]);
    let row = list
        .lines()
        .find(|l| l.contains("slow"))
        .unwrap_or_default();
    assert!(row.contains("timeout"), "{list}");
    let json = d.ok(&["list", "--json"]);
    assert!(json.contains(r#""stopped_by":"timeout""#), "{json}");
}

#[test]
fn a_cancel_kills_a_setsid_grandchild() {
    let d = Daemon::start(&["--grace", "1s"]);
    let procs = start(&d, "c", &[], "wait");
    d.ok(&["cancel", "c"]);
    d.wait_for("c", "the cancelled run's end", |r| {
        state(r) == "cancelled" && r["job"]["runs"].as_array().is_some_and(|h| !h.is_empty())
    });
    let survivors = wait_gone(&procs, Duration::from_secs(2));
    assert!(survivors.is_empty(), "survived the cancel: {survivors:?}");
}

#[test]
fn what_a_command_leaves_behind_is_stopped_when_it_exits() {
    let d = Daemon::start(&["--grace", "1s"]);
    let procs = start(&d, "e", &[], "exit");
    let r = d.wait_for("e", "the run", |r| state(r) == "succeeded");
    assert_eq!(r["job"]["runs"][0]["output"]["exit_code"], 0);
    let survivors = wait_gone(&procs, Duration::from_secs(2));
    assert!(survivors.is_empty(), "outlived its run: {survivors:?}");
}

#[test]
fn a_clean_shutdown_of_the_daemon_kills_a_setsid_grandchild() {
    let mut d = Daemon::start(&["--grace", "1s"]);
    let procs = start(&d, "s", &[], "wait");
    let mut daemon = d.child.take().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(daemon.wait().unwrap().success(), "a clean shutdown exits 0");
    let survivors = wait_gone(&procs, Duration::from_secs(2));
    assert!(survivors.is_empty(), "survived the shutdown: {survivors:?}");
}
