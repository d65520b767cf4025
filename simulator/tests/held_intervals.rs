//! The held intervals of a job (`JobReport::held`, with its share of the app-wide holds in
//! `Report::app_held` — the picture's shading) agree with its totals (`held_back_ms`,
//! `batching_ms`): the lengths of each code's intervals sum to that code's total, none lies
//! outside the simulated span, and adjacent intervals of one code are merged (the report stays
//! bounded). Guards against the picture and the numbers telling two stories.

mod common;
use common::run;

use std::collections::BTreeMap;
use std::path::Path;

use backwork_simulator::{HeldInterval, Report};

/// The milliseconds `[a0, a1)` and `[b0, b1)` share.
fn overlap(a: &HeldInterval, b: &HeldInterval) -> u64 {
    let (from, to) = (a.start.max(b.start), a.end.min(b.end));
    u64::try_from((to - from).num_milliseconds()).unwrap_or(0)
}

/// No interval of a code starts where another of the same code ends.
fn merged(what: &str, held: &[HeldInterval]) {
    for a in held {
        assert!(
            !held.iter().any(|b| b.code == a.code && b.end == a.start),
            "{what}: {a:?} is not merged with its neighbour"
        );
    }
}

/// Checks every job of `r`; returns how many intervals of each code it saw.
fn check(r: &Report) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for iv in &r.app_held {
        assert!(
            iv.start < iv.end && iv.start >= r.start && iv.end <= r.end,
            "{iv:?}"
        );
        *seen.entry(iv.code.to_string()).or_default() += 1;
    }
    merged("the app", &r.app_held);
    for j in &r.jobs {
        let mut sums: BTreeMap<String, u64> = BTreeMap::new();
        for iv in &j.held {
            assert!(iv.start < iv.end, "{}: an empty interval {iv:?}", j.name);
            assert!(
                iv.start >= r.start && iv.end <= r.end,
                "{}: {iv:?} outside the span",
                j.name
            );
            *seen.entry(iv.code.to_string()).or_default() += 1;
            if iv.code == "app_wide" {
                // its share of the app's holds
                for a in &r.app_held {
                    *sums.entry(a.code.to_string()).or_default() += overlap(iv, a);
                }
                continue;
            }
            *sums.entry(iv.code.to_string()).or_default() += iv.ms();
            assert!(
                r.families.contains_key(&*iv.code),
                "{}: code {} has no family",
                j.name,
                iv.code
            );
        }
        sums.retain(|_, ms| *ms > 0);
        for (code, total) in &j.held_back_ms {
            assert_eq!(
                sums.get(code).copied().unwrap_or(0),
                *total,
                "{}: the intervals of {code} and held_back_ms disagree",
                j.name
            );
        }
        for (code, sum) in &sums {
            match code.as_str() {
                "batching" => assert_eq!(*sum, j.batching_ms, "{}: batching_ms", j.name),
                "backoff" => {}
                _ => assert_eq!(
                    j.held_back_ms.get(code).copied(),
                    Some(*sum),
                    "{}: {code} has intervals but no total",
                    j.name
                ),
            }
        }
        merged(&j.name, &j.held);
        // what the picture shades says the same
        let mut drawn: BTreeMap<String, u64> = BTreeMap::new();
        for iv in r.waits(j) {
            assert_ne!(iv.code, "app_wide");
            *drawn.entry(iv.code.to_string()).or_default() += iv.ms();
        }
        drawn.retain(|_, ms| *ms > 0);
        assert_eq!(drawn, sums, "{}: Report::waits", j.name);
    }
    seen
}

#[test]
fn every_example_scenario_has_intervals_that_sum_to_its_totals() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios");
    for entry in std::fs::read_dir(root).expect("examples") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("scenario");
        check(&run(&text));
    }
}

#[test]
fn quota_doze_constraint_backoff_and_batching_waits_all_sum_to_their_totals() {
    // a rare-bucket app on battery: many jobs held together by its quota (the ready group),
    // Doze in the pocket, an unmet constraint, failing runs backing off
    let android = run(r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "2d"
        seed = 3
        device = { screen = "on", charging = false, network = "metered", battery = 80 }

        [[event]]
        at = "0s"
        bucket = "rare"

        [[event]]
        at = "6h"
        repeat = "24h"
        screen = "off"

        [[event]]
        at = "18h"
        repeat = "24h"
        screen = "on"
        network = "unmetered"

        [[job]]
        name = "sync"
        every = "15m"
        count = 6
        outcome = { fail = 0.3, duration = "40s" }

        [[job]]
        name = "upload"
        every = "1h"
        requires = ["unmetered"]
        outcome = { duration = "2m" }
    "#);
    let seen = check(&android);
    for code in [
        "standby_quota_sessions",
        "standby_batching",
        "constraint_unmetered",
        "backoff",
    ] {
        assert!(seen.contains_key(code), "no {code} interval: {seen:?}");
    }
    // the desktop scheduler's batching: lateness to share a wake-up
    let desktop = run(r#"
        start = "2026-11-23T00:00:00Z"
        duration = "1h"

        [[job]]
        name = "early"
        in = "600s"

        [[job]]
        name = "later"
        in = "640s"
    "#);
    let seen = check(&desktop);
    assert!(seen.contains_key("batching"), "{seen:?}");
}

/// The text report's totals by reason overlap when a job waits for two reasons at once (each
/// counts the whole time it held): the line says so then, and only then — their sum would
/// otherwise read as more waiting than there was.
#[test]
fn the_text_report_says_when_the_reasons_overlap() {
    let r = run(r#"
        start = "2026-11-23T00:00:00Z"
        duration = "4h"
        device = { charging = false, network = "metered" }

        [[job]]
        name = "backup"
        requires = ["charging", "unmetered"]
        accurate = true

        [[job]]
        name = "sync"
        added = "3h"
        requires = ["network"]
        accurate = true

        [[event]]
        at = "1h"
        charging = true

        [[event]]
        at = "2h"
        network = "unmetered"
    "#);
    let backup = &r.jobs[0];
    // waiting 00:00–02:00: for the charger the first hour, for Wi-Fi both hours
    assert_eq!(backup.held_back_ms["constraint_charging"], 3_600_000);
    assert_eq!(backup.held_back_ms["constraint_unmetered"], 7_200_000);
    let text = r.text();
    let line = |job: &str| {
        text.split(&format!("\n{job}  ("))
            .nth(1)
            .and_then(|rest| rest.lines().find(|l| l.contains("held back")))
            .map(str::to_string)
    };
    assert_eq!(
        line("backup").as_deref(),
        Some(
            "  held back (by reason; a wait for two reasons counts for both): constraint unmetered: 2h; constraint charging: 1h"
        )
    );
    // sync was never held: no line; a lone reason has the plain label (checked in the
    // examples below: deep and light Doze follow each other, never overlap)
    assert_eq!(line("sync"), None);
    let phone = run(&std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios/phone-overnight.toml"),
    )
    .unwrap());
    let sync_line = phone
        .text()
        .lines()
        .find(|l| l.contains("held back"))
        .map(str::to_string)
        .unwrap();
    assert!(
        sync_line.starts_with("  held back (by reason): "),
        "{sync_line}"
    );
}
