//! A scenario job with `after` (or appended to a unique name) and an initial delay (`in`) counts
//! the delay from when its prerequisites succeeded, as WorkManager does: a prerequisite that
//! ends late must not make the delay vanish so that the job starts at once.
//!
//! Source: androidx `work-runtime`, `androidx/work/impl/WorkerWrapper.kt`, `setSucceeded`
//! ("Unblock Dependencies and set Period Start Time": a dependent whose prerequisites have all
//! completed gets `setLastEnqueueTime(now)`), and `WorkSpec.calculateNextRunTime`, which puts a
//! one-time job at `lastEnqueueTime + initialDelay`.

mod common;
use common::{at, run};

#[test]
fn a_chained_jobs_delay_runs_from_the_end_of_a_late_prerequisite() {
    let r = run(r#"
        start = "2026-11-23T00:00:00Z"
        duration = "4h"
        device = { charging = false }

        [[job]]
        name = "compress"
        requires = ["charging"]
        outcome = { duration = "5m" }

        [[job]]
        name = "upload"
        after = ["compress"]
        in = "10m"

        [[event]]
        at = "1h"
        charging = true
    "#);
    let job = |name: &str| r.jobs.iter().find(|j| j.name == name).expect(name);
    let compress = &job("compress").runs;
    assert_eq!(
        compress[0].start,
        at(3600),
        "compress waits for the charger"
    );
    assert_eq!(compress[0].end, at(3600 + 300));
    let upload = &job("upload").runs;
    assert_eq!(upload.len(), 1, "{upload:?}");
    // 10 minutes after compress succeeded — not at once (enqueue + 10 min passed long ago)
    assert_eq!(upload[0].start, at(3600 + 300 + 600));
}

#[test]
fn an_appended_jobs_delay_runs_from_the_end_of_the_job_it_follows() {
    let r = run(r#"
        start = "2026-11-23T00:00:00Z"
        duration = "4h"
        device = { charging = false }

        [[job]]
        name = "sync"
        requires = ["charging"]
        outcome = { duration = "5m" }

        [[job]]
        name = "sync"
        added = "1m"
        on_conflict = "append"
        in = "10m"

        [[event]]
        at = "2h"
        charging = true
    "#);
    let starts: Vec<_> = r
        .jobs
        .iter()
        .filter(|j| j.name == "sync")
        .flat_map(|j| j.runs.iter().map(|run| run.start))
        .collect();
    assert_eq!(starts, [at(7200), at(7200 + 300 + 600)], "{:#?}", r.jobs);
}
