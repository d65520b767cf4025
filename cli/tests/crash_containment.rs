//! A daemon killed with SIGKILL in the middle of a command run must not leave the run's
//! processes behind — a grandchild that called `setsid` included — and a restarted daemon must
//! never start the retry while anything of the old run is alive (DESIGN §1 "a run is never
//! executed twice at the same time", §5 containment). The command (`common/job.sh`) keeps a
//! ledger: each instance takes an exclusive `flock` (flock(1)) on one file through a descriptor
//! its children inherit, so the lock is held while any process of that instance lives, and
//! writes "overlap" if it finds the lock taken. Processes are named by pid and start time (proc(5), field 22), so a
//! reused pid cannot pass for a survivor. The interrupted attempt's history must say
//! "interrupted by a daemon crash", with an end that is not the restart time.

mod common;

use std::time::{Duration, SystemTime};

use common::{Daemon, Proc, job_argv, job_procs, state, wait_gone};

/// Field 6 of `/proc/PID/stat`: the session.
fn session(pid: i32) -> i32 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest: Vec<&str> = text[text.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    rest[3].parse().unwrap()
}

/// Field 4 of `/proc/PID/stat`: the parent.
fn parent(pid: i32) -> i32 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest: Vec<&str> = text[text.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    rest[1].parse().unwrap()
}

/// Starts the job (see `common/job.sh`) and returns its three processes once they are there.
fn start_run(d: &Daemon) -> Vec<Proc> {
    let mut args = vec![
        "add".to_string(),
        "--unique".into(),
        "long".into(),
        "--".into(),
    ];
    args.extend(job_argv(d, "wait"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    d.ok(&args);
    let procs = job_procs(d);
    let (gc, sh) = (procs["gc"], procs["sh"]);
    // the grandchild really left the command's session (and so its process group)
    assert_eq!(
        session(gc.pid),
        gc.pid,
        "the setsid grandchild leads its own session"
    );
    assert_ne!(session(gc.pid), session(sh.pid));
    vec![gc, procs["child"], sh]
}

/// After the restart: the retry runs (forced now) and the ledger shows no overlap.
fn retry_runs_alone(d: &Daemon) {
    d.ok(&["run", "long"]);
    d.wait_for("long", "the retry", |r| state(r) == "succeeded");
    let ledger = std::fs::read_to_string(d.path("ledger")).unwrap();
    let lines: Vec<&str> = ledger.lines().collect();
    assert!(
        !ledger.contains("overlap"),
        "two instances ran at once:\n{ledger}"
    );
    assert_eq!(lines.len(), 3, "{ledger}");
    assert!(lines[0].starts_with("start") && lines[1].starts_with("start"));
    assert!(lines[2].starts_with("end"));
    let runs: Vec<_> = std::fs::read_dir(format!("{}.runs", d.store().display()))
        .unwrap()
        .collect();
    assert!(
        runs.is_empty(),
        "the run directory is empty after the runs: {runs:?}"
    );
}

fn to_system(v: &serde_json::Value) -> SystemTime {
    let t = chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    SystemTime::from(t)
}

#[test]
fn kill_9_of_the_daemon_takes_the_whole_run_down_and_the_retry_runs_alone() {
    let mut d = Daemon::start(&["--grace", "2s"]);
    let procs = start_run(&d);
    d.kill9();
    // with no daemon at all, the run's supervisor stops the tree
    let survivors = wait_gone(&procs, Duration::from_secs(10));
    assert!(survivors.is_empty(), "survived the daemon: {survivors:?}");
    let gone = SystemTime::now();
    // a visible gap, so an end taken from the restart would show
    std::thread::sleep(Duration::from_millis(1500));
    let restart = SystemTime::now();
    d.launch();
    let r = d.record("long");
    let run = &r["job"]["runs"][0];
    assert_eq!(run["attempt"], 1);
    assert_eq!(run["result"], "crashed");
    let note = run["note"].as_str().unwrap();
    assert!(note.starts_with("interrupted by a daemon crash"), "{note}");
    let finished = to_system(&run["finished"]);
    assert!(
        finished <= gone + Duration::from_millis(500) && finished < restart,
        "the run's end is when its processes were stopped, not the restart: {run:#}"
    );
    let show = d.ok(&["show", "long"]);
    assert!(show.contains("interrupted by a daemon crash"), "{show}");
    assert!(!show.contains("crashed"), "{show}");
    retry_runs_alone(&d);
}

/// The supervisor is frozen (SIGSTOP) right after the daemon's death, in the middle of
/// stopping the tree: the grandchild ignores SIGTERM and is still there. (Frozen before the
/// death, it would be woken: its process group becomes orphaned with a stopped member, and the
/// kernel sends SIGHUP and SIGCONT to such a group — _exit(2).) Recovery must then kill what is left itself, before the daemon says READY.
#[test]
fn leftovers_of_a_run_whose_supervisor_is_stuck_are_killed_before_the_daemon_is_ready() {
    let mut d = Daemon::start(&["--grace", "1s"]);
    let procs = start_run(&d);
    let supervisor = Proc::of(parent(procs[2].pid));
    d.kill9();
    let sup = nix::unistd::Pid::from_raw(supervisor.pid);
    nix::sys::signal::kill(sup, nix::sys::signal::Signal::SIGSTOP).unwrap();
    assert!(
        procs[0].alive(),
        "the grandchild ignores SIGTERM; only SIGKILL after the grace period takes it"
    );
    d.launch();
    // READY comes after recovery: nothing of the old run may be left now
    let survivors = wait_gone(&procs, Duration::from_millis(500));
    assert!(survivors.is_empty(), "survived the restart: {survivors:?}");
    assert!(!supervisor.alive(), "the stuck supervisor was killed");
    let r = d.record("long");
    let note = r["job"]["runs"][0]["note"].as_str().unwrap().to_string();
    assert!(
        note.starts_with("interrupted by a daemon crash") && note.contains("killed"),
        "{note}"
    );
    retry_runs_alone(&d);
}

/// `killall -9 backwork`, an OOM kill of both, a kill of the whole cgroup: the daemon *and* the
/// run's supervisor die at once, so nobody stops the tree. The command's group lives on without
/// its leader's parent, and the `setsid` grandchild is in no group of ours at all. Recovery must
/// find both — the group by its id (never reused while a member lives), the grandchild by the
/// run's `BACKWORK_RUN` marker in its environment — and kill them before READY (the second
/// review found the old run running beside its retry).
#[test]
fn kill_9_of_daemon_and_supervisor_together_still_leaves_nothing_of_the_run() {
    let mut d = Daemon::start(&["--grace", "1s"]);
    let procs = start_run(&d);
    let supervisor = Proc::of(parent(procs[2].pid));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor.pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    d.kill9();
    assert!(
        procs[0].alive() && procs[1].alive(),
        "with its supervisor gone, nothing stops the run by itself"
    );
    d.launch();
    let survivors = wait_gone(&procs, Duration::from_millis(500));
    assert!(survivors.is_empty(), "survived the restart: {survivors:?}");
    let r = d.record("long");
    let note = r["job"]["runs"][0]["note"].as_str().unwrap().to_string();
    assert!(
        note.starts_with("interrupted by a daemon crash") && note.contains("killed"),
        "{note}"
    );
    retry_runs_alone(&d);
}
