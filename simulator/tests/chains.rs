//! Scenario files express chains (issue 14, item 5): a job's `after = ["name", …]` makes it run
//! only once every named job has succeeded, in the simulated day as in the runtime (the same
//! core), a failed prerequisite ends it unrun, and a chain the file cannot mean — a name that is
//! not an earlier job, a recurring link — is refused with a sentence naming the job.

mod common;
use common::{at, run};

use backwork_simulator::{Scenario, SimError};

#[test]
fn a_chain_runs_link_after_link_and_fans_in() {
    let r = run(r#"
        start = "2026-11-23T00:00:00Z"
        duration = "6h"
        device = { network = "metered" }

        [[job]]
        name = "compress"
        outcome = { duration = "5m" }

        [[job]]
        name = "thumbnails"
        outcome = { duration = "8m" }

        [[job]]
        name = "upload"
        after = ["compress", "thumbnails"]
        input_merger = "array-creating"
        requires = ["unmetered"]
        outcome = { duration = "5m" }

        [[job]]
        name = "cleanup"
        after = ["upload"]

        [[job]]
        name = "notify"
        after = ["compress", "thumbnails"]

        [[event]]
        at = "1h"
        network = "unmetered"
    "#);
    let job = |name: &str| {
        r.jobs
            .iter()
            .find(|j| j.name == name)
            .unwrap_or_else(|| panic!("{name} in the report"))
    };
    assert_eq!(job("compress").runs[0].start, at(0));
    assert_eq!(job("thumbnails").runs[0].start, at(0));
    // upload waits for both (thumbnails ends at 8 min) and then for the unmetered network
    let upload = &job("upload").runs;
    assert_eq!(upload.len(), 1, "{upload:?}");
    assert_eq!(upload[0].start, at(3600));
    // cleanup starts when upload ends, not before
    let cleanup = &job("cleanup").runs;
    assert_eq!(cleanup.len(), 1, "{cleanup:?}");
    assert_eq!(cleanup[0].start, upload[0].end);
    assert_eq!(job("cleanup").succeeded, 1);
    // fan-in: notify starts when the later of its two prerequisites ends
    assert_eq!(job("notify").runs[0].start, job("thumbnails").runs[0].end);
    assert_eq!(job("thumbnails").runs[0].end, at(480));
}

#[test]
fn a_failed_prerequisite_ends_its_dependents_unrun() {
    let r = run(r#"
        start = "2026-11-23T00:00:00Z"
        duration = "2h"

        [[job]]
        name = "fetch"
        max_attempts = 1
        outcome = { fail = 1.0 }

        [[job]]
        name = "parse"
        after = ["fetch"]
    "#);
    let fetch = r.jobs.iter().find(|j| j.name == "fetch").unwrap();
    assert_eq!(fetch.runs.len(), 1);
    let parse = r.jobs.iter().find(|j| j.name == "parse").unwrap();
    assert!(parse.runs.is_empty(), "{:?}", parse.runs);
}

#[test]
fn a_chain_the_file_cannot_mean_is_refused_naming_the_job() {
    let refused = |toml: &str| match Scenario::from_toml(toml) {
        Err(SimError::Job { job, detail }) => format!("{job}: {detail}"),
        other => panic!("refused: {other:?}"),
    };
    let later = refused(
        r#"
        start = "2026-11-23T00:00:00Z"
        duration = "1h"
        [[job]]
        name = "b"
        after = ["a"]
        [[job]]
        name = "a"
    "#,
    );
    assert!(
        later.starts_with("b: ") && later.contains("not an earlier"),
        "{later}"
    );
    let periodic = refused(
        r#"
        start = "2026-11-23T00:00:00Z"
        duration = "1h"
        [[job]]
        name = "sync"
        every = "15m"
        [[job]]
        name = "after-sync"
        after = ["sync"]
    "#,
    );
    assert!(periodic.contains("never finishes"), "{periodic}");
}
