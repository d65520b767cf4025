//! The report drawn as a timeline: device lanes on top, then the OS state (Doze's phases, the
//! standby bucket), then one lane per job with its runs in front of the time it waited, shaded
//! by the family of the reason; a legend names every colour and every reason code drawn. A
//! fleet report is drawn as its requests per minute.

use std::fmt::Write as _;

use backwork_constraints::{DeviceState, Network};
use backwork_scheduler::{RunResult, Time};

use crate::fleet::FleetReport;
use crate::report::{HeldInterval, Report, WaitFamily};

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

/// A drawing `height` pixels tall, opened: the `svg` element, the text styles, a white ground.
fn open(height: f64) -> String {
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
    s
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
    // a lane per job that was enqueued (an add that `keep` dropped has no story to draw)
    let enqueued = report
        .jobs
        .iter()
        .filter(|j| j.not_enqueued.is_none())
        .count();
    let jobs: Vec<&crate::JobReport> = report
        .jobs
        .iter()
        .filter(|j| j.not_enqueued.is_none())
        .take(MAX_JOB_LANES)
        .collect();
    let os_lane = !report.os_state.is_empty();
    let bucket_lane = !report.bucket.is_empty();
    let lanes = 3.0 + f64::from(u8::from(os_lane)) + f64::from(u8::from(bucket_lane));
    // the families drawn, each with the codes it has in the report
    let mut families: std::collections::BTreeMap<WaitFamily, Vec<&str>> = Default::default();
    let mut drawn_codes: std::collections::BTreeSet<String> = Default::default();
    for j in &jobs {
        drawn_codes.extend(report.waits(j).into_iter().map(|iv| iv.code.into_owned()));
    }
    for code in &drawn_codes {
        let family = family_of(report, code);
        families.entry(family).or_default().push(code.as_str());
    }
    for codes in families.values_mut() {
        codes.sort_unstable();
    }
    let legend_lines = 2 + families.len() + usize::from(os_lane || bucket_lane);
    let height = TOP + (lanes + jobs.len() as f64) * LANE + 40.0 + 17.0 * legend_lines as f64;
    let mut s = open(height);
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
    let lanes_bottom = TOP + (lanes + jobs.len() as f64) * LANE;
    axis(&mut s, &scale, report.start, report.end, TOP, lanes_bottom);
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
    if os_lane {
        os_lane_draw(&mut s, &scale, &report.os_state, report.end, y);
        y += LANE;
    }
    if bucket_lane {
        bucket_lane_draw(&mut s, &scale, &report.bucket, report.end, y);
        y += LANE;
    }
    for j in &jobs {
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
        // the waits behind the runs: a band per family (one colour each), so that two reasons
        // at once read as two bands, not as a mixed colour
        let waits = report.waits(j);
        let bands = family_bands(report, &waits);
        let band_h = (LANE - 2.0) / bands.len().max(1) as f64;
        for (k, (family, spans)) in bands.iter().enumerate() {
            for (from, until, codes) in spans {
                let (x0, x1) = (scale.x(*from), scale.x(*until));
                let _ = writeln!(
                    s,
                    r##"<rect class="held" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{band_h:.1}" fill="{}" fill-opacity="0.55"><title>{} – {}: {}</title></rect>"##,
                    y + 1.0 + k as f64 * band_h,
                    (x1 - x0).max(0.5),
                    family_colour(*family),
                    from.format("%a %H:%M:%S"),
                    until.format("%a %H:%M:%S"),
                    esc(&codes.join(", "))
                );
            }
        }
        for r in &j.runs {
            let color = match r.outcome {
                RunResult::Success => "#2ca02c",
                RunResult::Retry | RunResult::Failure => "#ff7f0e",
                RunResult::Crashed => "#7f7f7f",
                RunResult::Stopped => "#d62728",
            };
            let outcome = match &r.stop {
                Some(code) => format!("stopped: {}", report.reasons.get(code).unwrap_or(code)),
                None => r.outcome.to_string(),
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
                esc(&outcome)
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
    let mut note_y = y + 24.0;
    if enqueued > jobs.len() {
        let _ = writeln!(
            s,
            r##"<text x="8" y="{note_y:.1}" class="note">… and {} more jobs (see the text or JSON report)</text>"##,
            enqueued - jobs.len()
        );
        note_y += 17.0;
    }
    let _ = writeln!(
        s,
        r##"<text x="8" y="{note_y:.1}" class="note">runs: <tspan fill="#2ca02c">■ success</tspan> · <tspan fill="#ff7f0e">■ failed, retried</tspan> · <tspan fill="#d62728">■ stopped</tspan> · <tspan fill="#7f7f7f">■ lost in a reboot</tspan> — network: <tspan fill="#6baed6">■ unmetered</tspan> · <tspan fill="#fdae6b">■ metered</tspan> · blank: none — times UTC</text>"##
    );
    note_y += 17.0;
    if os_lane || bucket_lane {
        let mut line = String::new();
        if os_lane {
            line.push_str("Doze: ");
            let phases: Vec<String> = OS_PHASES
                .iter()
                .map(|(_, name, colour)| format!(r##"<tspan fill="{colour}">■</tspan> {name}"##))
                .collect();
            line.push_str(&phases.join(" · "));
            line.push_str(" · blank: not dozing");
        }
        if bucket_lane {
            if os_lane {
                line.push_str(" — ");
            }
            line.push_str("standby bucket: named in its lane at each change");
        }
        let _ = writeln!(
            s,
            r##"<text x="8" y="{note_y:.1}" class="note">{line}</text>"##
        );
        note_y += 17.0;
    }
    let _ = writeln!(
        s,
        r##"<text x="8" y="{note_y:.1}" class="note">shaded behind the runs: the time each job waited, by reason{}</text>"##,
        if families.is_empty() {
            " (none here)"
        } else {
            ":"
        }
    );
    for (family, codes) in &families {
        note_y += 17.0;
        let _ = writeln!(
            s,
            r##"<text x="20" y="{note_y:.1}" class="note"><tspan fill="{}" fill-opacity="0.55">■</tspan> {}: {}</text>"##,
            family_colour(*family),
            esc(family.name()),
            esc(&codes.join(", "))
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A job's waits by family, each family's intervals joined where they overlap or touch:
/// (from, until, the codes in it), in time order.
type Bands<'a> = Vec<(WaitFamily, Vec<(Time, Time, Vec<&'a str>)>)>;

fn family_bands<'a>(report: &Report, held: &'a [HeldInterval]) -> Bands<'a> {
    let mut by: std::collections::BTreeMap<WaitFamily, Vec<&'a HeldInterval>> = Default::default();
    for iv in held {
        by.entry(family_of(report, &iv.code)).or_default().push(iv);
    }
    by.into_iter()
        .map(|(family, mut ivs)| {
            ivs.sort_by(|a, b| a.start.cmp(&b.start).then(a.end.cmp(&b.end)));
            let mut spans: Vec<(Time, Time, Vec<&'a str>)> = Vec::new();
            for iv in ivs {
                match spans.last_mut() {
                    Some((_, until, codes)) if iv.start <= *until => {
                        *until = (*until).max(iv.end);
                        if !codes.contains(&&*iv.code) {
                            codes.push(&iv.code);
                            codes.sort_unstable();
                        }
                    }
                    _ => spans.push((iv.start, iv.end, vec![&iv.code])),
                }
            }
            (family, spans)
        })
        .collect()
}

/// The family of a reason code, as the report gives it.
fn family_of(report: &Report, code: &str) -> WaitFamily {
    report
        .families
        .get(code)
        .copied()
        .unwrap_or(WaitFamily::Other)
}

/// One colour per family of waits.
fn family_colour(family: WaitFamily) -> &'static str {
    match family {
        WaitFamily::Profile => "#807dba",
        WaitFamily::Quota => "#ef3b2c",
        WaitFamily::Constraint => "#bf812d",
        WaitFamily::Backoff => "#e7298a",
        WaitFamily::Batching => "#1b9e77",
        WaitFamily::Other => "#969696",
    }
}

/// Doze's phases as drawn: code, name, colour (the maintenance windows bright).
const OS_PHASES: [(&str, &str, &str); 4] = [
    ("light_idle", "light idle", "#bcbddc"),
    ("deep_idle", "deep idle", "#3f007d"),
    ("light_maintenance", "light maintenance window", "#ffd92f"),
    ("deep_maintenance", "deep maintenance window", "#ff7f00"),
];

/// Intervals of a state series: (from, until, code), over `[first, end)`.
fn spans(series: &[(Time, String)], end: Time) -> impl Iterator<Item = (Time, Time, &str)> {
    series.iter().enumerate().map(move |(i, (t, code))| {
        let until = series.get(i + 1).map_or(end, |(n, _)| *n);
        (*t, until, code.as_str())
    })
}

/// The OS lane: idle periods as bars, maintenance windows as bright bands at least a few
/// pixels wide (drawn last, so a short window shows between two idle periods).
fn os_lane_draw(out: &mut String, scale: &Scale, series: &[(Time, String)], end: Time, y: f64) {
    let _ = writeln!(
        out,
        r##"<text x="8" y="{:.1}" class="label">Doze</text>"##,
        y + LANE * 0.68
    );
    for maintenance in [false, true] {
        for (from, until, code) in spans(series, end) {
            let Some((_, name, colour)) = OS_PHASES.iter().find(|(c, _, _)| *c == code) else {
                continue; // active: not dozing
            };
            if code.ends_with("_maintenance") != maintenance {
                continue;
            }
            let (x0, x1) = (scale.x(from), scale.x(until));
            // a deep window (5–10 min) stays visible over days; a light one (often seconds,
            // closed once its work is done) must not hide the idle periods around it
            let least = match code {
                "deep_maintenance" => 2.5,
                "light_maintenance" => 1.0,
                _ => 0.5,
            };
            let w = (x1 - x0).max(least);
            let x0 = x0.min(WIDTH - 10.0 - w);
            // windows a little taller than the idle bars, so they stand out
            let (top, h) = if maintenance {
                (y + 1.0, LANE - 2.0)
            } else {
                (y + 4.0, LANE - 8.0)
            };
            let _ = writeln!(
                out,
                r##"<rect class="os {code}" x="{x0:.1}" y="{top:.1}" width="{w:.1}" height="{h:.1}" fill="{colour}"><title>{} – {}: {name}</title></rect>"##,
                from.format("%a %H:%M:%S"),
                until.format("%a %H:%M:%S"),
            );
        }
    }
}

/// The standby-bucket lane: a bar per bucket, named where it begins.
fn bucket_lane_draw(out: &mut String, scale: &Scale, series: &[(Time, String)], end: Time, y: f64) {
    let _ = writeln!(
        out,
        r##"<text x="8" y="{:.1}" class="label">standby bucket</text>"##,
        y + LANE * 0.68
    );
    for (from, until, code) in spans(series, end) {
        let colour = match code {
            "active" => "#e5f5e0",
            "working_set" => "#c7e9c0",
            "frequent" => "#fdd0a2",
            "rare" => "#fc9272",
            _ => "#de2d26",
        };
        let (x0, x1) = (scale.x(from), scale.x(until));
        let _ = writeln!(
            out,
            r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}" stroke="#ffffff"/><text x="{:.1}" y="{:.1}" class="tick">{}</text>"##,
            y + 3.0,
            (x1 - x0).max(0.5),
            LANE - 6.0,
            x0 + 3.0,
            y + LANE * 0.66,
            esc(code)
        );
    }
}

/// The time axis: a tick every hour to every day, depending on the span, labelled in UTC, with
/// grid lines from `top` to `bottom`.
fn axis(out: &mut String, scale: &Scale, start: Time, end: Time, top: f64, bottom: f64) {
    let total_h = (end - start).num_milliseconds() as f64 / 3_600_000.0;
    let step_h: i64 = if total_h > 96.0 {
        24
    } else if total_h > 24.0 {
        6
    } else if total_h > 6.0 {
        2
    } else {
        1
    };
    let mut tick = start;
    while tick <= end {
        let x = scale.x(tick);
        // the label at the right edge ends there instead of being cut off
        let anchor = if x > WIDTH - 40.0 { "end" } else { "middle" };
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#e3e3e3"/><text x="{x:.1}" y="{:.1}" class="tick" text-anchor="{anchor}">{}</text>"##,
            top - 6.0,
            top - 10.0,
            tick.format(if step_h >= 24 { "%a %d" } else { "%a %H:%M" })
        );
        tick += chrono::TimeDelta::hours(step_h);
    }
}

/// A fleet's requests per minute as an SVG document: one bar per minute with any requests,
/// scaled to the busiest minute, with the 99th percentile as a dashed line.
pub fn fleet(report: &FleetReport) -> String {
    const PLOT_TOP: f64 = 60.0;
    const PLOT_H: f64 = 260.0;
    let height = PLOT_TOP + PLOT_H + 60.0;
    let scale = Scale {
        start: report.start,
        ms: ((report.end - report.start).num_milliseconds() as f64).max(1.0),
    };
    let minute_px = 60_000.0 / scale.ms * (WIDTH - LABEL - 10.0);
    let peak = f64::from(report.peak_per_minute.max(1));
    let y_of = |n: f64| PLOT_TOP + PLOT_H - n / peak * PLOT_H;
    let mut s = open(height);
    let title = if report.name.is_empty() {
        "backwork fleet simulation"
    } else {
        &report.name
    };
    let _ = writeln!(
        s,
        r##"<text x="8" y="20" class="title">{} — {} devices, {} requests</text>"##,
        esc(title),
        report.devices,
        report.requests
    );
    axis(
        &mut s,
        &scale,
        report.start,
        report.end,
        PLOT_TOP,
        PLOT_TOP + PLOT_H,
    );
    // the y axis: 0, half the peak, the peak
    for (n, label) in [
        (0.0, "0".to_string()),
        (peak / 2.0, format!("{}", (peak / 2.0).round())),
        (peak, format!("{}", report.peak_per_minute)),
    ] {
        let y = y_of(n);
        let _ = writeln!(
            s,
            r##"<line x1="{LABEL}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{label}</text>"##,
            WIDTH - 10.0,
            LABEL - 6.0,
            y + 3.0
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="8" y="{:.1}" class="label">requests per minute</text>"##,
        PLOT_TOP + PLOT_H / 2.0
    );
    for (minute, n) in &report.per_minute {
        let x = scale.x(*minute);
        let top = y_of(f64::from(*n));
        let _ = writeln!(
            s,
            r##"<rect class="bar" x="{x:.2}" y="{top:.1}" width="{:.2}" height="{:.1}" fill="#3182bd"><title>{}: {n}</title></rect>"##,
            minute_px.max(1.0),
            (PLOT_TOP + PLOT_H - top).max(0.5),
            minute.format("%a %H:%M")
        );
    }
    if let Some(at) = report.peak_at {
        let x = scale.x(at);
        let (x, anchor) = if x > WIDTH - 200.0 {
            (x - 4.0, "end")
        } else {
            (x + 4.0, "start")
        };
        let _ = writeln!(
            s,
            r##"<text x="{x:.1}" y="{:.1}" class="label" text-anchor="{anchor}">peak: {} in the minute from {}</text>"##,
            PLOT_TOP + 12.0,
            report.peak_per_minute,
            at.format("%a %H:%M")
        );
    }
    let p99 = y_of(f64::from(report.p99_per_minute));
    let _ = writeln!(
        s,
        r##"<line x1="{LABEL}" y1="{p99:.1}" x2="{:.1}" y2="{p99:.1}" stroke="#d62728" stroke-dasharray="5 3"/>"##,
        WIDTH - 10.0
    );
    let _ = writeln!(
        s,
        r##"<text x="8" y="{:.1}" class="note"><tspan fill="#3182bd">■</tspan> requests (run starts) in each minute with any · <tspan fill="#d62728">- - -</tspan> 99th percentile: {} · peak {} in the minute from {} · mean {:.2} per minute with any — times UTC</text>"##,
        PLOT_TOP + PLOT_H + 30.0,
        report.p99_per_minute,
        report.peak_per_minute,
        report
            .peak_at
            .map_or("-".into(), |t| t.format("%a %H:%M").to_string()),
        report.mean_per_active_minute
    );
    s.push_str("</svg>\n");
    s
}
