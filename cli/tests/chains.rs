//! Chains of command jobs through the daemon: `backwork add --after NAME|ID` (repeatable) and
//! `backwork add --chain FILE` must queue the links `blocked` until their prerequisites
//! succeed, show that in `list` (text and JSON) and name the prerequisite in `why`, hand each
//! command its prerequisites' output through the documented files (`BACKWORK_INPUT_STDOUT`:
//! their standard output, `BACKWORK_INPUT`: their merged outputs as JSON — read with `cat` and
//! `read`, no extra tool), add a chain file all or nothing, and fail the links after a failed
//! one. Guards issue 14 ("Chains at the command line").

mod common;

use common::{Daemon, short, state};
use serde_json::Value;

fn jobs(d: &Daemon) -> Vec<Value> {
    d.ok(&["list", "--all", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn view<'a>(jobs: &'a [Value], id: &str) -> &'a Value {
    jobs.iter()
        .find(|j| j["id"].as_str() == Some(id.trim()))
        .unwrap_or_else(|| panic!("{id} is listed: {jobs:?}"))
}

#[test]
fn a_three_link_chain_passes_each_output_on() {
    let d = Daemon::start(&[]);
    let out = d.path("cleanup.txt");
    // the first link waits for the charger, so the chain can be seen waiting
    d.ok(&["device", "set", "charging=false"]);
    let compress = d.add(&[
        "--unique",
        "compress",
        "--requires",
        "charging",
        "--",
        "sh",
        "-c",
        "printf '%s\\n' /tmp/archive-42.tgz",
    ]);
    let upload = d.add(&[
        "--unique",
        "upload",
        "--after",
        "compress",
        "--",
        "sh",
        "-c",
        "read path < \"$BACKWORK_INPUT_STDOUT\"; echo \"uploaded $path\"",
    ]);
    // the third names its prerequisite by short id
    let cleanup = d.add(&[
        "--after",
        &short(&upload),
        "--",
        "sh",
        "-c",
        &format!(
            "cat \"$BACKWORK_INPUT_STDOUT\" > {}; grep -q '\"exit_code\":0' \"$BACKWORK_INPUT\" && echo json-ok >> {}",
            out.display(),
            out.display()
        ),
    ]);

    let listed = jobs(&d);
    assert_eq!(view(&listed, &compress)["state"], "enqueued");
    for (id, on, name) in [
        (&upload, &compress, Some("compress")),
        (&cleanup, &upload, Some("upload")),
    ] {
        let v = view(&listed, id);
        assert_eq!(v["state"], "blocked", "{v}");
        let blocked = v["waiting_on"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "blocked")
            .unwrap_or_else(|| panic!("a blocked reason: {v}"));
        assert_eq!(blocked["on"][0]["id"], on.trim());
        assert_eq!(blocked["on"][0]["name"].as_str(), name);
    }
    let table = d.ok(&["list"]);
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&short(id)))
            .unwrap_or_else(|| panic!("{table}"))
            .to_string()
    };
    assert!(row(&upload).contains("blocked") && row(&upload).contains("after compress"));
    assert!(row(&cleanup).contains("after upload"), "{table}");
    let why = d.ok(&["why", "upload"]);
    assert!(
        why.contains("compress") && why.contains(&short(&compress)),
        "{why}"
    );

    d.ok(&["device", "set", "charging=true"]);
    d.wait_for(&cleanup, "the chain to finish", |r| state(r) == "succeeded");
    for id in [&compress, &upload] {
        assert_eq!(state(&d.record(id)), "succeeded");
    }
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "uploaded /tmp/archive-42.tgz\njson-ok\n"
    );
}

#[test]
fn a_chain_file_is_added_whole_or_not_at_all() {
    let d = Daemon::start(&[]);
    let out = d.path("fan-in.txt");
    let bad = d.path("bad.chain");
    std::fs::write(
        &bad,
        "--label a -- echo a\n--label b --after a -- echo b\n--after b --in forever -- true\n",
    )
    .unwrap();
    let refused = d.cli(&["add", "--chain", bad.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("line 3"), "{err}");
    assert!(jobs(&d).is_empty(), "nothing of the chain was added");
    // refused by the scheduler after two good links: still nothing
    std::fs::write(
        &bad,
        "--label a -- echo a\n--label b --after a -- echo b\n--after b --every 1h -- true\n",
    )
    .unwrap();
    let refused = d.cli(&["add", "--chain", bad.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("link 3") && err.contains("recurring"), "{err}");
    assert!(jobs(&d).is_empty(), "nothing of the chain was added");

    // fan-in: two producers, one consumer gathering both outputs (array-creating merger)
    let good = d.path("good.chain");
    std::fs::write(
        &good,
        format!(
            "# photos, then notify\n\
             --label one -- echo first\n\
             --label two -- sh -c 'echo second'\n\
             \n\
             --after one --after two --input-merger array-creating -- sh -c 'cat \"$BACKWORK_INPUT_STDOUT\" > {}'\n",
            out.display()
        ),
    )
    .unwrap();
    let printed = d.ok(&["add", "--chain", good.to_str().unwrap(), "--unique", "sync"]);
    let ids: Vec<&str> = printed.lines().collect();
    assert_eq!(ids.len(), 3, "{printed}");
    d.wait_for(ids[2], "the consumer to run", |r| state(r) == "succeeded");
    // the outputs in the order its --after named them
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "first\nsecond\n");
    // every link carries the chain's name
    let named: Vec<Value> = jobs(&d)
        .into_iter()
        .filter(|j| j["name"] == "sync")
        .collect();
    assert_eq!(named.len(), 3);
}

#[test]
fn a_failed_link_fails_the_links_after_it() {
    let d = Daemon::start(&[]);
    let first = d.add(&[
        "--unique",
        "fetch",
        "--fail-on-exit",
        "3",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    let second = d.add(&["--after", "fetch", "--in", "1h", "--", "true"]);
    let third = d.add(&["--after", &second, "--", "true"]);
    d.wait_for(&third, "the chain to fail", |r| state(r) == "failed");
    assert_eq!(state(&d.record(&first)), "failed");
    let r = d.record(&second);
    assert_eq!(state(&r), "failed");
    let text = d.ok(&["show", &second]);
    assert!(
        text.contains(first.trim()),
        "the reason names the failed link: {text}"
    );
    // a prerequisite that does not exist is refused, exit 1
    let none = d.cli(&["add", "--after", "no-such-job", "--", "true"]);
    assert_eq!(none.status.code(), Some(1), "{none:?}");
}
