//! Progress in the simulator: a job's outcome model may script the progress its runs report
//! (`outcome.progress`, percentages spread evenly over the run), and the report gives each run
//! the last value reported before it ended — so a scenario can assert how far work got before
//! a time limit, Doze or a lost constraint stopped it. Guards against a stopped run reported
//! as further along than it got, and against progress invented for jobs that report none.

use backwork_scheduler::RunResult;
use backwork_simulator::{Scenario, SimError, simulate};

#[test]
fn each_run_reports_the_last_progress_it_reached() {
    let s = Scenario::from_toml(
        r#"
        profile = "desktop"
        start = "2026-11-23T00:00:00Z"
        duration = "2h"

        # four reports, at 3m45s, 7m30s, 11m15s and 15m; stopped by its time limit at 5m
        [[job]]
        name = "upload"
        timeout = "5m"
        max_attempts = 1
        outcome = { duration = "15m", progress = [25, 50, 75, 100] }

        # (the default time limit, 10 minutes, would stop it at 50)
        [[job]]
        name = "done"
        timeout = "none"
        outcome = { duration = "15m", progress = [25, 50, 75, 100] }

        [[job]]
        name = "quiet"
        timeout = "none"
        outcome = { duration = "15m" }
        "#,
    )
    .unwrap();
    let r = simulate(&s).unwrap();
    let job = |name: &str| r.jobs.iter().find(|j| j.name == name).unwrap();
    let upload = &job("upload").runs;
    assert_eq!(upload.len(), 1);
    assert_eq!(upload[0].outcome, RunResult::Stopped, "{upload:?}");
    assert_eq!(upload[0].progress, Some(25.0), "3m45s reached, 7m30s not");
    assert_eq!(job("done").runs[0].progress, Some(100.0));
    assert_eq!(job("quiet").runs[0].progress, None);
}

#[test]
fn a_progress_outside_0_to_100_is_refused() {
    let s = Scenario::from_toml(
        r#"
        profile = "desktop"
        start = "2026-11-23T00:00:00Z"
        duration = "1h"

        [[job]]
        name = "j"
        outcome = { progress = [50, 150] }
        "#,
    );
    let err = match s.map(|s| simulate(&s)) {
        Err(e) | Ok(Err(e)) => e,
        Ok(Ok(_)) => panic!("accepted"),
    };
    assert!(matches!(err, SimError::Job { .. }), "{err:?}");
    assert!(err.to_string().contains("150 is not a percentage"), "{err}");
}
