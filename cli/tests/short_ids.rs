//! Ids people can type, and a list that fits (issue 12, item 3): `list` shows the short id —
//! the last 12 hex digits, the random tail of a version-7 id (RFC 9562 §5.7: the leading 48 bits
//! are the creation time, shared by every job added in the same millisecond's neighbourhood) —
//! and every verb takes it or a prefix of it (at least 4 digits), as `docker` takes unique id
//! prefixes; at 80 columns `list` keeps each row on one line and NAME whole.

mod common;

use common::{Daemon, short};

#[test]
fn a_short_id_prefix_works_for_show_why_run_and_cancel() {
    let d = Daemon::start(&[]);
    let id = d.add(&["--unique", "photos", "--in", "1h", "--", "true"]);
    let id = id.trim().to_string();
    let s = short(&id);
    assert_eq!(s.len(), 12);
    let list = d.ok(&["list"]);
    assert!(list.contains(&s), "{list}");
    assert!(
        !list.contains(&id),
        "list shows the short id, not the whole one: {list}"
    );
    for prefix in [&s[..], &s[..8], &s[..4]] {
        let show = d.ok(&["show", prefix]);
        assert!(show.contains(&id), "show {prefix}: {show}");
        let why = d.ok(&["why", prefix]);
        assert!(why.contains("not due"), "why {prefix}: {why}");
    }
    d.ok(&["cancel", &s[..5]]);
    let show = d.ok(&["show", &s]);
    assert!(show.contains("cancelled"), "{show}");
    let other = short(&d.add(&["--in", "1h", "--", "true"]));
    d.ok(&["run", &other[..6]]);
    d.wait_for(&other, "the run", |r| common::state(r) == "succeeded");
    // a prefix that matches nothing is "not found", exit 1
    let zero = if s.starts_with("0000") {
        "ffff"
    } else {
        "0000"
    };
    let out = d.cli(&["show", zero]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // and every verb that names a job says it the same way
    for verb in ["why", "run", "cancel", "retry"] {
        let other = d.cli(&[verb, zero]);
        assert_eq!(other.status.code(), Some(1), "{verb}: {other:?}");
        assert_eq!(other.stderr, out.stderr, "{verb}");
    }
}

#[test]
fn list_at_80_columns_keeps_every_row_on_one_line_and_names_whole() {
    let d = Daemon::start(&[]);
    let names = [
        "photos-backup-nas",
        "nightly-restic",
        "disk-report",
        "calendar-sync",
        "mail-fetch",
    ];
    d.ok(&[
        "add",
        "--unique",
        names[0],
        "--every",
        "6h",
        "--flex",
        "30m",
        "--requires",
        "charging",
        "--requires",
        "unmetered",
        "--",
        "true",
    ]);
    d.ok(&[
        "add",
        "--unique",
        names[1],
        "--cron",
        "0 3 * * *",
        "--tz",
        "Europe/Berlin",
        "--",
        "true",
    ]);
    d.ok(&[
        "add", "--unique", names[2], "--every", "1d", "--", "df", "-h",
    ]);
    d.ok(&[
        "add",
        "--unique",
        names[3],
        "--every",
        "15m",
        "--requires",
        "network",
        "--",
        "true",
    ]);
    d.ok(&["add", "--unique", names[4], "--in", "10m", "--", "true"]);
    let out = std::process::Command::new(common::BIN)
        .arg("list")
        .env("BACKWORK_STORE", d.store())
        .env("BACKWORK_SOCKET", d.socket())
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 6, "{text}");
    for line in text.lines() {
        assert!(
            unicode_width::UnicodeWidthStr::width(line) <= 80,
            "{} columns: {line:?}\n{text}",
            unicode_width::UnicodeWidthStr::width(line)
        );
    }
    for name in names {
        assert!(text.contains(name), "{name} cut: {text}");
    }
}

/// The shell completes job names and short ids by asking the binary at each <Tab>
/// (`clap_complete`'s dynamic engine; fish's protocol prints `value<TAB>help` lines).
#[test]
fn tab_completes_names_and_short_ids() {
    let d = Daemon::start(&[]);
    let id = d.add(&["--unique", "photos-backup", "--in", "1h", "--", "true"]);
    d.add(&["--unique", "mail-fetch", "--in", "1h", "--", "true"]);
    let complete = |word: &str| -> String {
        let out = std::process::Command::new(common::BIN)
            .args(["--", "backwork", "show", word])
            .env("COMPLETE", "fish")
            .env("BACKWORK_STORE", d.store())
            .env("BACKWORK_SOCKET", d.socket())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let names: Vec<String> = complete("pho")
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ["photos-backup"]);
    let s = short(&id);
    let by_id = complete(&s[..4]);
    assert!(
        by_id
            .lines()
            .any(|l| l.starts_with(&format!("{s}\tphotos-backup"))),
        "{by_id}"
    );
}

/// An ambiguous prefix changes nothing and lists the candidates, exit 1 (docker's "multiple
/// IDs found with provided prefix"). Ids are random, so the test adds jobs until two short ids
/// share their first 4 digits — by the birthday bound that takes about 320 jobs (65 536
/// four-digit prefixes); 3 000 make a miss practically impossible (p < e^-60).
#[test]
fn an_ambiguous_prefix_lists_the_candidates_and_changes_nothing() {
    let d = Daemon::start(&[]);
    let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut pair = None;
    for _ in 0..3000 {
        let s = short(&d.add(&["--in", "1h", "--", "true"]));
        if let Some(first) = seen.insert(s[..4].to_string(), s.clone()) {
            pair = Some((first, s));
            break;
        }
    }
    let (a, b) = pair.expect("two short ids share 4 digits");
    let prefix = &a[..4];
    for verb in ["show", "why", "run", "cancel"] {
        let out = d.cli(&[verb, prefix]);
        assert_eq!(out.status.code(), Some(1), "{verb} {prefix}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&a) && err.contains(&b),
            "{verb}: both candidates named: {err}"
        );
    }
    // nothing was cancelled or run
    for s in [&a, &b] {
        let r = d.record(s);
        assert_eq!(common::state(&r), "enqueued", "{r}");
        assert_eq!(r["job"]["runs_total"], 0);
    }
}
