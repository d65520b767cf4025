//! The timeline's legend names every reason code whose waits it shades, under the colour of its
//! family (Doze / profile, quota, constraint, backoff, batching) — guards against shading a
//! reader cannot decode, or a legend that lists codes the picture does not show.

use std::collections::BTreeSet;

use backwork_simulator::{Scenario, simulate, svg};

#[test]
fn the_legend_names_every_reason_code_that_appears() {
    let report = simulate(
        &Scenario::from_toml(
            r#"
        profile = "android"
        start = "2026-11-23T00:00:00Z"
        duration = "2d"
        seed = 5
        device = { screen = "on", charging = false, network = "metered", battery = 80 }

        [[event]]          # in the pocket: Doze
        at = "2h"
        screen = "off"

        [[event]]
        at = "10h"
        screen = "on"
        network = "unmetered"

        [[event]]          # then the app falls into the rare bucket: its quota
        at = "12h"
        bucket = "rare"

        [[job]]
        name = "sync <&>"
        every = "15m"
        count = 6
        outcome = { fail = 0.3, duration = "40s" }

        [[job]]
        name = "upload"
        every = "1h"
        requires = ["unmetered"]
        outcome = { duration = "2m" }
    "#,
        )
        .expect("scenario"),
    )
    .expect("simulation");
    let codes: BTreeSet<String> = report
        .jobs
        .iter()
        .flat_map(|j| report.waits(j))
        .map(|iv| iv.code.into_owned())
        .collect();
    // the families a reader must tell apart are all in this picture
    for code in [
        "doze_deep",
        "standby_quota_sessions",
        "constraint_unmetered",
        "backoff",
    ] {
        assert!(codes.contains(code), "{code} not held: {codes:?}");
    }
    let drawn = svg(&report);
    // names are escaped
    assert!(
        drawn.contains("sync &lt;&amp;&gt;-1"),
        "job name not escaped"
    );
    let legend: Vec<&str> = drawn
        .lines()
        .skip_while(|l| !l.contains("the time each job waited, by reason"))
        .skip(1)
        .filter(|l| l.starts_with("<text"))
        .collect();
    assert!(!legend.is_empty(), "no legend of the waits");
    for code in &codes {
        let family = report.families[code];
        let line = legend
            .iter()
            .find(|l| l.contains(&format!("> {}: ", family.name())))
            .unwrap_or_else(|| panic!("no legend line for {family:?}"));
        let named: Vec<&str> = line
            .rsplit(": ")
            .next()
            .and_then(|r| r.strip_suffix("</text>"))
            .expect("codes")
            .split(", ")
            .collect();
        assert!(named.contains(&code.as_str()), "{code} not in {line}");
        // the legend's swatch is the colour the waits are shaded with
        let colour = line
            .split("fill=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("swatch");
        assert!(
            drawn.lines().any(|l| {
                l.starts_with(r#"<rect class="held""#)
                    && l.contains(&format!(r#"fill="{colour}""#))
                    && l.rsplit(": ")
                        .next()
                        .and_then(|t| t.strip_suffix("</title></rect>"))
                        .is_some_and(|t| t.split(", ").any(|c| c == code))
            }),
            "no {code} wait shaded {colour}"
        );
    }
    // and names nothing else
    let listed: usize = legend
        .iter()
        .filter_map(|l| l.rsplit(": ").next()?.strip_suffix("</text>"))
        .map(|c| c.split(", ").count())
        .sum();
    assert_eq!(listed, codes.len(), "{legend:?}");
}
