//! The report drawn as a timeline: device lanes on top, one lane per job below with its runs.

use std::fmt::Write as _;

use backwork_constraints::{DeviceState, Network};
use backwork_scheduler::Time;

use crate::report::Report;

const WIDTH: f64 = 1200.0;
const LABEL: f64 = 170.0;
const LANE: f64 = 22.0;
const TOP: f64 = 56.0;
/// Jobs drawn at most; the rest are counted in a note.
const MAX_JOB_LANES: usize = 40;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Scale {
    start: Time,
    ms: f64,
}

impl Scale {
    fn x(&self, t: Time) -> f64 {
        let f = (t - self.start).num_milliseconds() as f64 / self.ms;
        LABEL + f.clamp(0.0, 1.0) * (WIDTH - LABEL - 10.0)
    }
}

/// One device lane: intervals where `on(state)` holds get `color(state)`.
fn device_lane(
    out: &mut String,
    scale: &Scale,
    states: &[(Time, DeviceState)],
    end: Time,
    y: f64,
    label: &str,
    paint: impl Fn(&DeviceState) -> Option<&'static str>,
) {
    let _ = writeln!(
        out,
        r##"<text x="8" y="{:.1}" class="label">{}</text>"##,
        y + LANE * 0.68,
        esc(label)
    );
    // consecutive states with the same paint make one bar
    let mut bars: Vec<(Time, Time, &'static str)> = Vec::new();
    for (i, (t, d)) in states.iter().enumerate() {
        let until = states.get(i + 1).map_or(end, |(n, _)| *n);
        let Some(color) = paint(d) else {
            continue;
        };
        match bars.last_mut() {
            Some((_, e, c)) if *e == *t && *c == color => *e = until,
            _ => bars.push((*t, until, color)),
        }
    }
    for (from, until, color) in bars {
        let (x0, x1) = (scale.x(from), scale.x(until));
        let _ = writeln!(
            out,
            r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"/>"##,
            y + 3.0,
            (x1 - x0).max(0.5),
            LANE - 6.0
        );
    }
}

/// The timeline as an SVG document.
pub fn render(report: &Report) -> String {
    let scale = Scale {
        start: report.start,
        ms: ((report.end - report.start).num_milliseconds() as f64).max(1.0),
    };
    let jobs = &report.jobs[..report.jobs.len().min(MAX_JOB_LANES)];
    let device_lanes = 3.0;
    let height = TOP + (device_lanes + jobs.len() as f64) * LANE + 70.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">"##
    );
    s.push_str(
        r##"<style>.label{font-size:12px;fill:#222}.title{font-size:15px;font-weight:bold;fill:#111}.tick{font-size:10px;fill:#555}.note{font-size:11px;fill:#444}</style>
<rect width="100%" height="100%" fill="#ffffff"/>
"##,
    );
    let title = if report.name.is_empty() {
        "backwork simulation".to_string()
    } else {
        report.name.clone()
    };
    let _ = writeln!(
        s,
        r##"<text x="8" y="20" class="title">{} — profile {}, {:.1} days, {} wake-ups</text>"##,
        esc(&title),
        esc(&report.profile),
        report.days(),
        report.wakeups
    );
    // time axis: a tick every 6 hours (every day past 4 days), labelled with the UTC time
    let total_h = report.days() * 24.0;
    let step_h: i64 = if total_h > 96.0 {
        24
    } else if total_h > 24.0 {
        6
    } else if total_h > 6.0 {
        2
    } else {
        1
    };
    let lanes_bottom = TOP + (device_lanes + jobs.len() as f64) * LANE;
    let mut tick = report.start;
    while tick <= report.end {
        let x = scale.x(tick);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{lanes_bottom:.1}" stroke="#e3e3e3"/><text x="{x:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"##,
            TOP - 6.0,
            TOP - 10.0,
            tick.format(if step_h >= 24 { "%a %d" } else { "%a %H:%M" })
        );
        tick += chrono::TimeDelta::hours(step_h);
    }
    let states = &report.device;
    let mut y = TOP;
    device_lane(&mut s, &scale, states, report.end, y, "screen on", |d| {
        d.screen_on.then_some("#9ecae1")
    });
    y += LANE;
    device_lane(&mut s, &scale, states, report.end, y, "charging", |d| {
        d.charging.then_some("#a1d99b")
    });
    y += LANE;
    device_lane(
        &mut s,
        &scale,
        states,
        report.end,
        y,
        "network",
        |d| match d.network {
            Network::Unmetered => Some("#6baed6"),
            Network::Metered => Some("#fdae6b"),
            Network::None => None,
        },
    );
    y += LANE;
    for j in jobs {
        let _ = writeln!(
            s,
            r##"<line x1="{LABEL}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#f0f0f0"/><text x="8" y="{:.1}" class="label">{} ({})</text>"##,
            y + LANE / 2.0,
            WIDTH - 10.0,
            y + LANE / 2.0,
            y + LANE * 0.68,
            esc(&j.name),
            j.per_day.map_or_else(
                || format!("{} runs", j.runs.len()),
                |d| format!("{d:.1}/day")
            )
        );
        for r in &j.runs {
            let color = match r.outcome.as_str() {
                "success" => "#2ca02c",
                "retry" => "#ff7f0e",
                "crashed" => "#7f7f7f",
                _ => "#d62728",
            };
            let (x0, x1) = (scale.x(r.start), scale.x(r.end));
            let _ = writeln!(
                s,
                r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{} – {}: {}</title></rect>"##,
                y + 4.0,
                (x1 - x0).max(1.5),
                LANE - 8.0,
                r.start.format("%a %H:%M:%S"),
                r.end.format("%H:%M:%S"),
                esc(&r.outcome)
            );
        }
        y += LANE;
    }
    // reboots: a dashed line across every lane
    for (t, what) in &report.timeline {
        if what.contains("reboot") {
            let x = scale.x(*t);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{TOP:.1}" x2="{x:.1}" y2="{y:.1}" stroke="#d62728" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" class="tick" fill="#d62728">reboot</text>"##,
                x + 3.0,
                y + 12.0
            );
        }
    }
    let mut note_y = y + 22.0;
    if report.jobs.len() > jobs.len() {
        let _ = writeln!(
            s,
            r##"<text x="8" y="{note_y:.1}" class="note">… and {} more jobs (see the text or JSON report)</text>"##,
            report.jobs.len() - jobs.len()
        );
        note_y += 18.0;
    }
    let _ = writeln!(
        s,
        r##"<text x="8" y="{note_y:.1}" class="note">runs: <tspan fill="#2ca02c">■ success</tspan> · <tspan fill="#ff7f0e">■ failed, retried</tspan> · <tspan fill="#d62728">■ stopped</tspan> · <tspan fill="#7f7f7f">■ lost in a reboot</tspan> — network: <tspan fill="#6baed6">■ unmetered</tspan> · <tspan fill="#fdae6b">■ metered</tspan> · blank: none — times UTC</text>"##
    );
    s.push_str("</svg>\n");
    s
}
