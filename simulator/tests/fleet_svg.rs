//! `--devices N --svg`: the fleet's load drawn as one bar per minute with any requests, as tall
//! as that minute's count against the busiest minute — guards against a chart that drops or
//! invents minutes, or scales them wrong.

use backwork_simulator::{Scenario, fleet_svg, simulate_fleet};

#[test]
fn the_fleet_chart_has_one_bar_per_minute_with_requests() {
    let scenario = Scenario::from_toml(
        r#"
        start = "2026-11-23T00:00:00Z"
        duration = "1d"
        seed = 11
        device = { network = "unmetered" }

        [[job]]
        name = "nightly-upload"
        cron = "0 0 3 * * *"
        jitter = "20m"
        outcome = { duration = "30s" }

        [[job]]
        name = "sync"
        every = "2h"
        outcome = { duration = "5s" }
    "#,
    )
    .expect("scenario");
    let fleet = simulate_fleet(&scenario, 60).expect("fleet");
    let drawn = fleet_svg(&fleet);
    let bars: Vec<(String, f64)> = drawn
        .lines()
        .filter(|l| l.starts_with(r#"<rect class="bar""#))
        .map(|l| {
            let attr = |name: &str| -> f64 {
                l.split(&format!(" {name}=\""))
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .and_then(|v| v.parse().ok())
                    .expect("attribute")
            };
            let title = l
                .split("<title>")
                .nth(1)
                .and_then(|r| r.split("</title>").next())
                .expect("title")
                .to_string();
            (title, attr("height"))
        })
        .collect();
    assert!(fleet.per_minute.len() > 10, "{}", fleet.text());
    assert_eq!(bars.len(), fleet.per_minute.len());
    let tallest = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    for ((minute, n), (title, height)) in fleet.per_minute.iter().zip(&bars) {
        assert!(*n > 0);
        assert_eq!(*title, format!("{}: {n}", minute.format("%a %H:%M")));
        let want = f64::from(*n) / f64::from(fleet.peak_per_minute) * tallest;
        assert!(
            (height - want).abs() < 0.2,
            "{title}: {height} against {want}"
        );
    }
}
