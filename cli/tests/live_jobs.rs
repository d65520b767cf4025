//! A name means its live job, `list` shows live jobs, and `prune` says why it kept what it kept
//! (issue 12, item 6: `why disk-report` printed four records, three of them cancelled; `prune`
//! removed nothing and did not say why — the retention was undocumented and fixed).

mod common;

use common::Daemon;

#[test]
fn a_name_means_its_live_job_and_list_shows_live_jobs() {
    let d = Daemon::start(&[]);
    let old = d.add(&["--unique", "disk-report", "--in", "1h", "--", "df", "-h"]);
    d.ok(&["cancel", "disk-report"]);
    let new = d.add(&["--unique", "disk-report", "--in", "1h", "--", "df", "-h"]);
    assert_ne!(old, new);
    let why = d.ok(&["why", "disk-report"]);
    assert_eq!(why.matches("disk-report").count(), 1, "{why}");
    assert!(why.contains(new.trim()), "{why}");
    let show = d.ok(&["show", "--json", "disk-report"]);
    assert_eq!(show.lines().count(), 1, "{show}");
    assert!(show.contains(new.trim()), "{show}");

    assert_eq!(d.ok(&["list", "--json"]).lines().count(), 1);
    assert_eq!(d.ok(&["list", "--all", "--json"]).lines().count(), 2);
    assert_eq!(
        d.ok(&["list", "--state", "cancelled", "--json"])
            .lines()
            .count(),
        1
    );

    // once none is live, the name means the last job that had it
    d.ok(&["cancel", "disk-report"]);
    let show = d.ok(&["show", "--json", "disk-report"]);
    assert_eq!(show.lines().count(), 1, "{show}");
    assert!(show.contains(new.trim()), "{show}");
}

#[test]
fn prune_says_what_it_kept_and_older_than_drops_it() {
    let d = Daemon::start(&["--retention", "7d"]);
    d.add(&["--unique", "a", "--in", "1h", "--", "true"]);
    d.ok(&["cancel", "a"]);
    let out = d.ok(&["prune"]);
    assert_eq!(
        out.trim(),
        "pruned 0 finished job(s); 1 finished job(s) kept: they finished less than 7d ago (`backwork prune --older-than 0s` drops them)"
    );
    let out = d.ok(&["prune", "--older-than", "0s"]);
    assert_eq!(out.trim(), "pruned 1 finished job(s)");
    assert_eq!(d.ok(&["list", "--all", "--json"]), "");
}

#[test]
fn retry_runs_a_failed_job_again() {
    let d = Daemon::start(&[]);
    let marker = d.path("second-run");
    let script = format!(
        "if [ -e '{m}' ]; then exit 0; fi; touch '{m}'; exit 3",
        m = marker.display()
    );
    d.add(&[
        "--unique",
        "flaky",
        "--max-attempts",
        "1",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    d.wait_for("flaky", "the failure", |r| common::state(r) == "failed");
    let out = d.ok(&["retry", "flaky"]);
    assert!(out.contains("retried"), "{out}");
    let r = d.wait_for("flaky", "the second run", |r| {
        common::state(r) == "succeeded"
    });
    assert_eq!(r["job"]["runs_total"], 2, "{r:#}");
    // a succeeded job is refused, exit 2
    let out = d.cli(&["retry", "flaky"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
