//! `backwork add --expedited[=run-as-regular|drop]` through the daemon: at the concurrency
//! limit an expedited command starts before ordinary commands queued earlier (WorkManager's
//! `setExpedited`); `show` says it is expedited and what happens out of quota; what cannot be
//! expedited (a periodic or delayed job) is refused with exit 2 and nothing is added. Guards
//! against the flag being parsed but lost on its way to the scheduler.

mod common;

use common::{Daemon, state};

fn started(r: &serde_json::Value) -> String {
    r["job"]["runs"][0]["started"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn an_expedited_command_starts_before_ordinary_ones_queued_earlier() {
    let d = Daemon::start(&["--max-concurrent", "1"]);
    let dir = d.dir.path().display().to_string();
    let hold =
        format!("i=0; while [ ! -e {dir}/go ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done");
    d.add(&["--unique", "blocker", "--", "sh", "-c", &hold]);
    d.wait_for("blocker", "the blocker to run", |r| state(r) == "running");
    d.add(&["--unique", "early", "--", "true"]);
    d.add(&["--unique", "later", "--", "true"]);
    d.add(&["--unique", "urgent", "--expedited", "--", "true"]);
    let urgent = d.record("urgent");
    assert_eq!(state(&urgent), "enqueued", "the only slot is taken");
    assert_eq!(urgent["job"]["expedited"], "run-as-regular");
    assert!(
        d.ok(&["show", "urgent"])
            .contains("runs as regular work if the expedited quota is used up")
    );
    std::fs::write(d.path("go"), "").unwrap();
    let urgent = d.wait_for("urgent", "the expedited run", |r| state(r) == "succeeded");
    let early = d.wait_for("early", "the first ordinary run", |r| {
        state(r) == "succeeded"
    });
    let later = d.wait_for("later", "the second ordinary run", |r| {
        state(r) == "succeeded"
    });
    // RFC 3339 in UTC with the same precision: the text orders as the instants do
    assert!(started(&urgent) < started(&early), "{urgent:#} {early:#}");
    assert!(started(&early) < started(&later));
}

#[test]
fn what_cannot_be_expedited_is_refused_and_nothing_is_added() {
    let d = Daemon::start(&[]);
    for extra in [
        &["--every", "1h"][..],
        &["--in", "10m"],
        &["--requires", "charging"],
    ] {
        let mut args = vec!["add", "--expedited=drop"];
        args.extend_from_slice(extra);
        args.extend(["--", "true"]);
        let out = d.cli(&args);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot be expedited"), "{err}");
    }
    let out = d.cli(&["add", "--expedited=soon", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(d.ok(&["list", "--json"]).trim(), "", "nothing was added");
}
