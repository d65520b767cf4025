//! The instants the core acts on runs in progress — a run's time limit (`timeout`, like
//! systemd's `RuntimeMaxSec=`: the run is asked to stop), then the end of its grace period (it
//! is aborted) — with many runs out at once: each run is stopped at its own limit and no other,
//! aborted at the end of its own grace, and the core asks to be woken exactly at the earliest
//! instant still pending — never for a run that already ended (a wake-up for nothing costs a
//! phone's battery) — however many runs are out. Guards the deadline index that replaced a scan
//! of every run at every input.

mod common;

use backwork_scheduler::{Config, JobRequest, RunOutcome};
use chrono::TimeDelta;
use common::*;

#[test]
fn each_run_is_stopped_at_its_own_limit_and_woken_for_no_other() {
    const RUNS: u64 = 200;
    let grace = secs(30);
    let mut h = Harness::with(
        Config {
            max_concurrent: RUNS as usize,
            grace,
            ..Config::default()
        },
        Box::new(backwork_scheduler::AllowAll),
    );
    let t0 = h.now;
    // job i may run for i + 1 minutes, once (no retry: a retry's start would be a wake-up too)
    let ids: Vec<_> = (0..RUNS)
        .map(|i| {
            h.enqueue(
                JobRequest::once(KIND)
                    .timeout(Some(mins(i + 1)))
                    .max_attempts(1),
            )
        })
        .collect();
    assert_eq!(h.running.len(), RUNS as usize, "every run started at once");
    let at = |m: i64| t0 + TimeDelta::minutes(m);
    assert_eq!(h.core.poll_timeout(), Some(at(1)), "the first limit");

    // the first two runs end in time: their limits no longer count
    h.finish(ids[0], RunOutcome::Success(None));
    h.finish(ids[1], RunOutcome::Success(None));
    assert_eq!(
        h.core.poll_timeout(),
        Some(at(3)),
        "no wake-up for the runs that ended"
    );

    // at 3 minutes exactly the third run is asked to stop, and only it
    h.advance_to(at(3));
    assert_eq!(h.stops(ids[2]), ["time limit exceeded"]);
    for id in &ids[3..] {
        assert!(h.stops(*id).is_empty(), "{id} is within its limit");
    }
    // next: the end of its grace (3 min 30 s), before the fourth run's limit (4 min)
    assert_eq!(
        h.core.poll_timeout(),
        Some(at(3) + TimeDelta::seconds(30)),
        "the end of the stopped run's grace"
    );
    h.advance_to(at(3) + TimeDelta::seconds(30));
    assert_eq!(h.aborts(ids[2]), 1, "aborted when its grace ran out");
    assert_eq!(h.core.poll_timeout(), Some(at(4)));

    // a run that stops when asked is not aborted; the others go on being stopped one by one
    h.advance_to(at(4));
    assert_eq!(h.stops(ids[3]), ["time limit exceeded"]);
    h.finish(ids[3], RunOutcome::Aborted);
    h.advance_to(at(6));
    assert_eq!(h.aborts(ids[3]), 0);
    assert_eq!(h.stops(ids[4]), ["time limit exceeded"]);
    assert_eq!(h.stops(ids[5]), ["time limit exceeded"]);
    assert!(h.stops(ids[6]).is_empty());

    assert_eq!(h.aborts(ids[4]), 1);
    // the wake-ups: the limits at 3, 4, 5 and 6 minutes and the graces of the runs still out
    // when theirs ended (3:30, 5:30) — none at 1 and 2 minutes, nor at 4:30 (run 3 had ended)
    assert_eq!(
        h.wakes,
        [
            at(3),
            at(3) + TimeDelta::seconds(30),
            at(4),
            at(5),
            at(5) + TimeDelta::seconds(30),
            at(6)
        ]
    );
}
