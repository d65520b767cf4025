//! With no daemon running, the command line opens the store itself — and must not drop the
//! finished jobs the daemon keeps: only the daemon knows its `--retention` (a `list` run while
//! it was down used the default of one day and deleted, for good, a failed job kept for 400
//! days). A read leaves every finished job in place; `prune` drops them only when asked, by
//! `--older-than` or by the default retention of `daemon --retention` (1 day, docs/cli.md).
//! Replays the review of issue 11 on the committed schema-2 fixture, whose job `…070707070707`
//! failed months before today.

mod common;

use std::path::Path;

use common::{backwork, v2_fixture};
use serde_json::Value;

fn jobs(store: &Path, socket: &Path) -> Vec<Value> {
    let out = backwork(&["list", "--all", "--json"], store, socket);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn reads_without_a_daemon_keep_finished_jobs_and_prune_drops_them_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let store = v2_fixture(dir.path());
    // nothing answers here: every command opens the store itself
    let socket = dir.path().join("none.sock");

    let before = jobs(&store, &socket);
    assert_eq!(before.len(), 8, "the fixture's eight jobs");
    let failed = "070707070707";
    let show = backwork(&["show", failed], &store, &socket);
    assert!(show.status.success(), "{show:?}");
    assert_eq!(jobs(&store, &socket).len(), 8, "a read dropped nothing");

    let prune = backwork(&["prune", "--older-than", "10000d"], &store, &socket);
    assert!(prune.status.success(), "{prune:?}");
    assert_eq!(
        jobs(&store, &socket).len(),
        8,
        "nothing finished that long ago"
    );

    // the default age: the daemon's default retention, one day
    let prune = backwork(&["prune", "--json"], &store, &socket);
    assert!(prune.status.success(), "{prune:?}");
    let answer: Value = serde_json::from_slice(&prune.stdout).unwrap();
    assert!(answer["pruned"].as_u64().unwrap() >= 1, "{answer}");
    let after = jobs(&store, &socket);
    assert!(
        !after
            .iter()
            .any(|j| j["id"].as_str().unwrap().ends_with(failed)),
        "the job that failed months ago went when asked: {after:#?}"
    );
}
