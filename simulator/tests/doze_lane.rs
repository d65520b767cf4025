//! The OS lane shows deep Doze where AOSP's `DeviceIdleController` puts it. A phone left
//! still, screen off, on battery: the report's OS state and the SVG's Doze lane have their
//! deep-idle bands and maintenance windows at the instants its default constants imply —
//! guards against a lane drawn from anything but the profile's own Doze, or drawn wrong.
//!
//! The constants (AOSP `frameworks/base`, `DeviceIdleController.Constants`):
//! `INACTIVE_TIMEOUT` 30 min + `IDLE_AFTER_INACTIVE_TIMEOUT` 30 min before the first idle
//! period (the motion sensing and location steps, seconds to minutes, are not modelled: DESIGN
//! §6 "≈ 60 min"); `IDLE_TIMEOUT` 60 min, times `IDLE_FACTOR` 2 each cycle, at most
//! `MAX_IDLE_TIMEOUT` 6 h; maintenance windows `IDLE_PENDING_TIMEOUT` 5 min, times
//! `IDLE_PENDING_FACTOR` 2, at most `MAX_IDLE_PENDING_TIMEOUT` 10 min.

use backwork_simulator::{Scenario, simulate, svg};
use chrono::{DateTime, TimeDelta, Utc};

const START: &str = "2026-11-23T00:00:00Z";

fn at(min: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(START)
        .expect("instant")
        .to_utc()
        + TimeDelta::minutes(min)
}

/// Deep Doze from the screen going off at 0: (from, to, code), in minutes.
fn expected() -> Vec<(i64, i64, &'static str)> {
    let inactive = 30 + 30; // INACTIVE_TIMEOUT + IDLE_AFTER_INACTIVE_TIMEOUT
    let (mut idle, mut window) = (60, 5); // IDLE_TIMEOUT, IDLE_PENDING_TIMEOUT
    let mut t = inactive;
    let mut out = Vec::new();
    while t + idle < 24 * 60 {
        out.push((t, t + idle, "deep_idle"));
        out.push((t + idle, t + idle + window, "deep_maintenance"));
        t += idle + window;
        idle = (idle * 2).min(6 * 60); // IDLE_FACTOR, MAX_IDLE_TIMEOUT
        window = (window * 2).min(10); // IDLE_PENDING_FACTOR, MAX_IDLE_PENDING_TIMEOUT
    }
    out.push((t, 24 * 60, "deep_idle"));
    out
}

#[test]
fn deep_idle_bands_and_maintenance_windows_sit_where_device_idle_controller_puts_them() {
    let scenario = Scenario::from_toml(&format!(
        r#"
        profile = "android"
        start = "{START}"
        duration = "1d"
        device = {{ screen = "off", charging = false, battery = 90, network = "unmetered" }}

        # work that outlasts every window keeps each one open to its full length (a window
        # whose work is done ends early: see fidelity.rs)
        [[job]]
        name = "sync"
        every = "30m"
        outcome = {{ duration = "30m" }}
    "#
    ))
    .expect("scenario");
    let report = simulate(&scenario).expect("simulation");
    let want = expected();
    assert_eq!(
        want[..4],
        [
            (60, 120, "deep_idle"),
            (120, 125, "deep_maintenance"),
            (125, 245, "deep_idle"),
            (245, 255, "deep_maintenance")
        ]
    );

    // the report: from the first deep phase on, exactly these spans
    let spans: Vec<(DateTime<Utc>, DateTime<Utc>, &str)> = report
        .os_state
        .iter()
        .enumerate()
        .map(|(i, (t, code))| {
            let until = report.os_state.get(i + 1).map_or(report.end, |(n, _)| *n);
            (*t, until, code.as_str())
        })
        .collect();
    let deep: Vec<_> = spans
        .iter()
        .filter(|(_, _, c)| c.starts_with("deep_"))
        .copied()
        .collect();
    let want_at: Vec<_> = want.iter().map(|(a, b, c)| (at(*a), at(*b), *c)).collect();
    assert_eq!(deep, want_at, "{:?}", report.os_state);
    // before deep Doze: light Doze only, from LIGHT_IDLE_AFTER_INACTIVE on, never deep
    assert_eq!(spans[0].2, "active");
    assert!(
        spans
            .iter()
            .filter(|(t, _, _)| *t < at(60))
            .all(|(_, _, c)| !c.starts_with("deep_")),
        "{spans:?}"
    );

    // the picture: one deep-idle band and one bright window per span, titled with its times
    let drawn = svg(&report);
    for (from, to, code) in &want {
        let name = if *code == "deep_idle" {
            "deep idle"
        } else {
            "deep maintenance window"
        };
        let title = format!(
            "<title>{} – {}: {name}</title>",
            at(*from).format("%a %H:%M:%S"),
            at(*to).format("%a %H:%M:%S")
        );
        assert!(
            drawn
                .lines()
                .any(|l| l.contains(&format!(r#"class="os {code}""#)) && l.contains(&title)),
            "no band {title}"
        );
    }
    let xs: Vec<f64> = drawn
        .lines()
        .filter(|l| l.contains(r#"class="os deep_idle""#))
        .filter_map(|l| l.split(" x=\"").nth(1)?.split('"').next()?.parse().ok())
        .collect();
    let starts: Vec<f64> = want
        .iter()
        .filter(|w| w.2 == "deep_idle")
        .map(|w| w.0 as f64)
        .collect();
    assert_eq!(xs.len(), starts.len());
    // placed in proportion to time: each band's start between the first's and the last's
    let (x0, xn) = (xs[0], xs[xs.len() - 1]);
    let (t0, tn) = (starts[0], starts[starts.len() - 1]);
    for (x, t) in xs.iter().zip(&starts) {
        let (fx, ft) = ((x - x0) / (xn - x0), (t - t0) / (tn - t0));
        assert!((fx - ft).abs() < 0.002, "{xs:?} against {starts:?}");
    }
}
