//! `backwork simulate` explains a scenario it refuses as a user needs it (issue 13, review):
//! only a file that is not TOML, or has a key the format does not have, "does not parse"; a
//! setting whose value means nothing, or that is missing, is named with what it may be (serde's
//! raw "line 1, column 1: missing field `start`" said neither); an `[[event]]` at or after the
//! end is refused (it was silently ignored); and a job that lost its name to `on_conflict =
//! "keep"` says so in the report instead of an empty schedule. Exit code 2 for every refusal.

mod common;

use std::process::Output;

use common::BIN;

const HEAD: &str = "start = \"2026-11-23T00:00:00Z\"\nduration = \"1h\"\n";
const JOB: &str = "[[job]]\nname = \"sync\"\n";

/// `backwork simulate` of a scenario file holding `text`.
fn simulate(text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(&path, text).unwrap();
    std::process::Command::new(BIN)
        .arg("simulate")
        .arg(&path)
        .output()
        .unwrap()
}

/// The one-line error of a refused scenario, after the file's name (exit code 2).
fn refused(text: &str) -> String {
    let out = simulate(text);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{text}\n{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err.split_once("s.toml: ")
        .map(|(_, rest)| rest.trim().to_string())
        .unwrap_or_else(|| panic!("the file is named: {err}"))
}

#[test]
fn a_value_out_of_range_names_the_setting_and_what_is_allowed() {
    let err = refused(&format!("{HEAD}device = {{ battery = 200 }}\n{JOB}"));
    assert_eq!(
        err,
        "`device.battery` is 200: give a percentage from 0 to 100"
    );
    let err = refused(&format!(
        "{HEAD}[[event]]\nat = \"10m\"\nbattery = 101\n{JOB}"
    ));
    assert_eq!(
        err,
        "`battery` of the [[event]] at 10m is 101: give a percentage from 0 to 100"
    );
}

#[test]
fn a_value_that_means_nothing_names_the_setting_not_a_parse_error() {
    for (text, want) in [
        (
            format!("start = \"2026-11-23T00:00:00Z\"\nduration = \"1x\"\n{JOB}"),
            "`duration` is \"1x\": give a duration such as \"90s\", \"15m\", \"36h\" or \"7d\"",
        ),
        (
            format!("start = \"yesterday\"\nduration = \"1h\"\n{JOB}"),
            "`start` is \"yesterday\": give an RFC 3339 instant such as \"2026-11-23T00:00:00Z\"",
        ),
        (
            format!("{HEAD}device = {{ network = \"wifi\" }}\n{JOB}"),
            "`device.network` is \"wifi\": give \"none\", \"metered\" or \"unmetered\"",
        ),
        (
            format!("{HEAD}[[event]]\nat = \"10m\"\nscreen = \"dim\"\n{JOB}"),
            "`screen` of [[event]] number 1 is \"dim\": give \"on\" or \"off\"",
        ),
        (
            format!("{HEAD}{JOB}outcome = {{ duration = \"long\" }}\n"),
            "`outcome.duration` of [[job]] \"sync\" is \"long\": give a duration such as \"90s\", \"15m\", \"36h\" or \"7d\"",
        ),
        (
            format!("{HEAD}seed = -1\n{JOB}"),
            "`seed` is -1: give a whole number from 0 to 18446744073709551615",
        ),
        (
            format!("{HEAD}[[event]]\nat = \"10m\"\nrepeat = \"0s\"\nscreen = \"off\"\n{JOB}"),
            "`repeat` of the [[event]] at 10m is 0s: give a repeat longer than zero, or drop repeat",
        ),
        (
            format!("start = \"2026-11-23T00:00:00Z\"\nduration = \"0s\"\n{JOB}"),
            "`duration` is 0s, so nothing would be simulated; give a span such as \"24h\"",
        ),
    ] {
        let err = refused(&text);
        assert!(!err.contains("does not parse"), "{err}");
        assert_eq!(err, want, "{text}");
    }
}

#[test]
fn a_missing_setting_says_what_to_add() {
    let err = refused(&format!("duration = \"1h\"\n{JOB}"));
    assert_eq!(
        err,
        "`start` is missing: add the instant the simulation begins, such as start = \"2026-11-23T00:00:00Z\""
    );
    let err = refused(&format!("{HEAD}[[job]]\nevery = \"1h\"\n"));
    assert_eq!(
        err,
        "`name` of [[job]] number 1 is missing: add a name for the job, such as name = \"sync\""
    );
    let err = refused(&format!("{HEAD}[[event]]\nscreen = \"off\"\n{JOB}"));
    assert_eq!(
        err,
        "`at` of [[event]] number 1 is missing: add when it happens, counted from the start, such as at = \"1h\""
    );
}

#[test]
fn only_syntax_and_unknown_keys_do_not_parse() {
    let err = refused("start = \"2026-11-23T00:00:00Z\"\nduration = \"1h\n");
    assert!(
        err.starts_with("the scenario does not parse: line 2, column"),
        "{err}"
    );
    let err = refused(&format!("{HEAD}{JOB}bogus = 1\n"));
    assert!(
        err.starts_with("the scenario does not parse: line 5, column 1: unknown field `bogus`"),
        "{err}"
    );
}

#[test]
fn an_event_at_or_after_the_end_is_refused_naming_it_and_the_end() {
    for at in ["1h", "2h"] {
        let err = refused(&format!(
            "{HEAD}[[event]]\nat = \"{at}\"\ncharging = true\n{JOB}"
        ));
        assert_eq!(
            err,
            format!(
                "the [[event]] at {at} is at or after the end of the scenario (1h from the start), so it would never happen; move it earlier or lengthen duration"
            )
        );
    }
    // just before the end is fine
    let out = simulate(&format!(
        "{HEAD}[[event]]\nat = \"59m\"\ncharging = true\n{JOB}"
    ));
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_job_that_lost_its_name_to_keep_says_so_in_the_report() {
    let out = simulate(&format!(
        "{HEAD}[[job]]\nname = \"sync\"\nin = \"5m\"\n\n[[job]]\nname = \"sync\"\nadded = \"1m\"\non_conflict = \"keep\"\n"
    ));
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    // the second add: its schedule as asked, and what happened instead of an empty run list
    let second = text
        .split("\nsync  (")
        .nth(2)
        .unwrap_or_else(|| panic!("two entries: {text}"));
    assert!(second.starts_with("once)\n"), "{second}");
    assert!(
        second.contains(
            "  not enqueued: on_conflict = \"keep\" kept the job named sync that was already there (see its entry)"
        ),
        "{second}"
    );
    assert!(!second.contains("runs 0"), "{second}");
    // in the JSON report too
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(
        &path,
        format!(
            "{HEAD}[[job]]\nname = \"sync\"\nin = \"5m\"\n\n[[job]]\nname = \"sync\"\nadded = \"1m\"\non_conflict = \"keep\"\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["simulate", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["jobs"][0]["not_enqueued"], serde_json::Value::Null);
    assert!(
        report["jobs"][1]["not_enqueued"]
            .as_str()
            .is_some_and(|s| s.starts_with("not enqueued: on_conflict = \"keep\"")),
        "{}",
        report["jobs"][1]
    );
}
