//! `show --json` prints a job's input (a command job's command is its input) and its last
//! output, read from the store by id — the scheduling core no longer holds payloads — both
//! through a daemon and, with no daemon, from the store itself. Guards against a `show` that
//! prints what the core happens to hold (nothing) instead of what the job was given and did.

mod common;

use common::{Daemon, state};
use serde_json::Value;

fn argv(record: &Value) -> Vec<String> {
    record["job"]["command"]["argv"]
        .as_array()
        .unwrap_or_else(|| panic!("a command with its argv: {record:#}"))
        .iter()
        .map(|a| a.as_str().expect("an argument").to_string())
        .collect()
}

#[test]
fn show_json_prints_the_input_and_the_output_with_and_without_a_daemon() {
    let mut d = Daemon::start(&[]);
    let done = d.add(&["--", "printf", "%s", "payload-out"]);
    let pending = d.add(&["--in", "1h", "--", "echo", "later"]);
    let r = d.wait_for(&done, "the run to succeed", |r| state(r) == "succeeded");
    assert_eq!(argv(&r), ["printf", "%s", "payload-out"], "the input");
    // printf(1): the format `%s` prints its argument as it is, with no newline
    assert_eq!(
        r["job"]["output"]["stdout"], "payload-out",
        "the output: {r:#}"
    );
    assert_eq!(r["job"]["output"]["exit_code"], 0);
    assert_eq!(
        r["job"]["runs"].as_array().map(Vec::len),
        Some(1),
        "the run: {r:#}"
    );
    assert_eq!(argv(&d.record(&pending)), ["echo", "later"]);

    // the daemon is gone: the command line opens the store and answers the same
    d.kill9();
    let r = d.record(&done);
    assert_eq!(state(&r), "succeeded");
    assert_eq!(argv(&r), ["printf", "%s", "payload-out"]);
    assert_eq!(r["job"]["output"]["stdout"], "payload-out");
    assert_eq!(argv(&d.record(&pending)), ["echo", "later"]);
}
