//! What the verbs print: tables sized to the terminal, records, reasons, device state.

use std::borrow::Cow;
use std::fmt::Write as _;

use backwork_constraints::{DeviceReadings, DeviceState, Reading};
use backwork_control::{
    CommandOutput, JobDetail, JobReasons, JobRecord, JobView, RunView, ScheduleView, command_line,
};
use backwork_scheduler::{JobState, RunResult, SHORT_ID_LEN, StopReason, Time, WaitReason};
use chrono_tz::Tz;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::time::{instant, instant_long, relative, span};

use backwork_control::needs_escape;

/// `s` with every control character written as an escape, in the style of a C or shell string:
/// newline `\n`, carriage return `\r`, tab `\t`, ESC `\e`, NUL `\0`, other ASCII controls
/// `\x7f`-style, the rest `\u{85}`-style. Other text (backslashes included) is unchanged.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x1b' => out.push_str("\\e"),
            '\0' => out.push_str("\\0"),
            c if needs_escape(c) && c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// How many terminal columns `s` takes (wide characters count two, combining marks none).
fn text_width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// How times and reasons are shown.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// The current time.
    pub now: Time,
    /// The zone instants are shown in.
    pub zone: Tz,
    /// True when the answer comes from the store itself, with no daemon or app serving it: a
    /// missing worker then means that nothing is running.
    pub local: bool,
}

impl Style {
    fn when(&self, t: Time) -> String {
        format!("{} ({})", instant_long(t, self.zone), relative(t, self.now))
    }

    /// One reason as a sentence, with its instants shown locally and relative to now.
    pub fn reason(&self, r: &WaitReason) -> String {
        match r {
            WaitReason::NotDue { until } => format!("not due until {}", self.when(*until)),
            WaitReason::Batched { until, with, more } => {
                let ids: Vec<String> = with.iter().take(3).map(|j| j.to_string()).collect();
                let more = with.len() > ids.len() || *more;
                format!(
                    "batched: starts at {} together with {}{}, due by then",
                    self.when(*until),
                    ids.join(", "),
                    if more { " and others" } else { "" }
                )
            }
            WaitReason::Backoff {
                until,
                attempt,
                stopped_by,
            } => format!(
                "backing off until {} after attempt {attempt} {}",
                self.when(*until),
                match stopped_by {
                    Some(StopReason::Timeout) => "ran past its time limit (timeout)".to_string(),
                    Some(reason) => format!("was stopped ({reason})"),
                    None => "failed".to_string(),
                }
            ),
            WaitReason::MinInterval { until } => format!(
                "minimum interval since the last successful start: not before {}",
                self.when(*until)
            ),
            WaitReason::Running { since, attempt } => {
                format!("running since {} (attempt {attempt})", self.when(*since))
            }
            WaitReason::NoWorker { kind } if self.local => format!(
                "no worker for kind {kind}: no daemon or app is serving the control socket, so nothing runs jobs (start one with `backwork daemon`)"
            ),
            WaitReason::Finished {
                state,
                at,
                stop_reason,
            } => {
                let mut s = format!("finished: {state}");
                if let Some(t) = at {
                    let _ = write!(s, " at {}", self.when(*t));
                }
                // "cancelled at … (cancelled)" says it twice
                if let Some(r) = stop_reason
                    .as_ref()
                    .filter(|r| r.to_string() != state.to_string())
                {
                    let _ = write!(s, " ({r})");
                }
                s
            }
            WaitReason::Policy {
                reason,
                until: Some(t),
            } => format!("profile: {reason} until {}", self.when(*t)),
            WaitReason::Blocked { on } => format!(
                "blocked: runs after {} succeed{}",
                on.iter()
                    .map(|j| match &j.name {
                        Some(n) => format!("{n} ({})", j.id.short()),
                        None => j.id.short(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                if on.len() == 1 { "s" } else { "" }
            ),
            other => other.to_string(),
        }
    }

    /// One reason, short, for the WAITING ON column.
    fn reason_short(&self, r: &WaitReason) -> Option<String> {
        Some(match r {
            WaitReason::NotDue { .. } => return None, // NEXT and LEFT say it
            // (the attempt and the instant are in `why`)
            WaitReason::Backoff {
                stopped_by: Some(StopReason::Timeout),
                ..
            } => "backoff (timeout)".into(),
            WaitReason::Backoff { .. } => "backoff".into(),
            WaitReason::MinInterval { .. } => "min-interval".into(),
            // the constraint's name (`why` gives the device's value): a table cell, not a sentence
            WaitReason::Constraint(u) => u.constraint.to_string(),
            WaitReason::NoWorker { kind } if self.local => format!("no daemon (kind {kind})"),
            WaitReason::NoWorker { kind } => format!("no worker for kind {kind}"),
            WaitReason::Blocked { on } => format!(
                "after {}",
                on.iter()
                    .map(|j| j.name.clone().unwrap_or_else(|| j.id.short()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            WaitReason::Policy { reason, .. } => format!("profile: {reason}"),
            WaitReason::ConcurrencyLimit { limit, .. } => format!("all {limit} slots busy"),
            WaitReason::ShuttingDown => "shutting down".into(),
            WaitReason::Sleeping { .. } => "machine asleep".into(),
            WaitReason::Batched { .. } => return None, // NEXT and LEFT say it
            WaitReason::Running { .. } | WaitReason::Finished { .. } => return None,
        })
    }
}

/// What NAME shows: the unique name whole; for a job without one, its command — cut to
/// [`UNNAMED_WIDTH`] columns when the table must fit a terminal (a command is not what people
/// look a job up by, and a long one would push SCHEDULE and WAITING ON out).
fn display_name(v: &JobView, fit: bool) -> String {
    if let Some(n) = &v.name {
        return n.clone();
    }
    let text = match &v.command {
        Some(argv) => command_line(argv),
        None => format!("({})", v.kind),
    };
    if fit {
        truncate(&escape(&text), UNNAMED_WIDTH)
    } else {
        text
    }
}

/// The most columns NAME gives the command of a job without a name, in a table that must fit.
const UNNAMED_WIDTH: usize = 18;

/// A column: its header, how narrow it may get, and how it gives way if the table is too wide
/// for the terminal — it shrinks down to `min` at rank `shrink`, and is left out at rank `drop`
/// (0: never); the lowest rank gives way first, so a row wraps only once nothing can give.
struct Column {
    header: &'static str,
    min: usize,
    shrink: u8,
    drop: u8,
}

const fn col(header: &'static str, min: usize, shrink: u8) -> Column {
    Column {
        header,
        min,
        shrink,
        drop: 0,
    }
}

/// A column that shrinks at rank `shrink` and is left out at rank `drop` (see [`Column`]).
const fn optional(header: &'static str, min: usize, shrink: u8, drop: u8) -> Column {
    Column {
        header,
        min,
        shrink,
        drop,
    }
}

/// `s` cut to at most `width` terminal columns, with `…` marking the cut. Cuts fall between
/// characters, never inside one.
fn truncate(s: &str, width: usize) -> String {
    if text_width(s) <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// Lays out rows under headers, two spaces apart, shrinking the flexible columns (in their order)
/// until the table fits `width` columns, if a width is given.
fn table(columns: &[Column], rows: &[Vec<String>], width: Option<usize>) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|cell| escape(cell).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |cell| text_width(cell)))
                .chain([c.header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let natural = widths.clone();
    let mut shown: Vec<bool> = vec![true; columns.len()];
    if let Some(limit) = width {
        let total = |w: &[usize], shown: &[bool]| {
            let visible = shown.iter().filter(|s| **s).count();
            w.iter()
                .zip(shown)
                .filter(|(_, s)| **s)
                .map(|(w, _)| w)
                .sum::<usize>()
                + 2 * visible.saturating_sub(1)
        };
        while total(&widths, &shown) > limit {
            // the step of the lowest rank: shrink a column by one, or leave one out
            let step = columns
                .iter()
                .enumerate()
                .filter(|(i, _)| shown[*i])
                .flat_map(|(i, c)| {
                    let shrink = (c.shrink > 0 && widths[i] > c.min.max(c.header.len()))
                        .then_some((c.shrink, i, false));
                    let drop = (c.drop > 0).then_some((c.drop, i, true));
                    shrink.into_iter().chain(drop)
                })
                .min();
            match step {
                Some((_, i, false)) => widths[i] -= 1,
                Some((_, i, true)) => shown[i] = false,
                None => break, // the fixed columns alone are wider: let the terminal wrap
            }
        }
        // leaving a column out may free more room than the shrinking before it took: give it
        // back, to the columns that shrink last first
        let mut slack = limit.saturating_sub(total(&widths, &shown));
        let mut order: Vec<usize> = (0..columns.len()).filter(|i| shown[*i]).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(columns[i].shrink));
        for i in order {
            let grow = natural[i].saturating_sub(widths[i]).min(slack);
            widths[i] += grow;
            slack -= grow;
        }
    }
    let keep = |cells: Vec<String>| -> Vec<String> {
        cells
            .into_iter()
            .zip(&shown)
            .filter(|(_, s)| **s)
            .map(|(c, _)| c)
            .collect()
    };
    let widths: Vec<usize> = widths
        .into_iter()
        .zip(&shown)
        .filter(|(_, s)| **s)
        .map(|(w, _)| w)
        .collect();
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let last = cells.len().saturating_sub(1);
        for (i, (cell, &width)) in cells.iter().zip(&widths).enumerate() {
            let cell = truncate(cell, width);
            out.push_str(&cell);
            if i != last {
                // Padded by hand: a format width is capped (at u16::MAX) and counts chars, not
                // terminal columns.
                out.extend(std::iter::repeat_n(
                    ' ',
                    width.saturating_sub(text_width(&cell)) + 2,
                ));
            }
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(
        keep(columns.iter().map(|c| c.header.to_string()).collect()),
        &mut out,
    );
    for r in rows {
        line(keep(r), &mut out);
    }
    out
}

/// `backwork list` as a table.
pub fn list(jobs: &[JobView], style: &Style, width: Option<usize>) -> String {
    let columns = [
        // the short id; the absolute NEXT goes first (LEFT says the same), then LAST, then
        // WAITING ON shrinks (a person looks for the reason), then SCHEDULE shrinks and goes
        // (`show` has it; LEFT says when), then WAITING ON goes (`why` tells); NAME, which
        // people look jobs up by, shrinks last
        col("ID", SHORT_ID_LEN, 0),
        col("NAME", 12, 7),
        optional("SCHEDULE", 14, 4, 5),
        col("STATE", 9, 0),
        optional("NEXT", 4, 0, 1),
        col("LEFT", 4, 0),
        optional("LAST", 4, 0, 2),
        col("RESULT", 6, 0),
        optional("WAITING ON", 12, 3, 6),
    ];
    let dash = || "-".to_string();
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|v| {
            let waiting: Vec<String> = v
                .waiting_on
                .iter()
                .filter_map(|r| style.reason_short(r))
                .collect();
            vec![
                v.id.short(),
                display_name(v, width.is_some()),
                match &v.schedule_detail {
                    Some(detail) => schedule_label(detail, style),
                    None => v.schedule.clone(),
                },
                // a running job's percentage, when it reported one: `running 40%`
                match v.progress.as_ref().and_then(|p| p.percent) {
                    Some(p) if v.state == JobState::Running => format!("{} {p:.0}%", v.state),
                    _ => v.state.to_string(),
                },
                v.next.map_or_else(dash, |t| instant(t, style.zone)),
                v.next.map_or_else(dash, |t| relative(t, style.now)),
                v.last.map_or_else(dash, |t| relative(t, style.now)),
                // a stopped run says what stopped it: `timeout`, `cancelled`, …
                match (&v.result, &v.stopped_by) {
                    (Some(RunResult::Stopped), Some(by)) => by.replace('_', " "),
                    (r, _) => r.map_or_else(dash, |r| r.to_string()),
                },
                if waiting.is_empty() {
                    dash()
                } else {
                    waiting.join("; ")
                },
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no jobs\n".into();
    }
    table(&columns, &rows, width)
}

/// A schedule as a person reads it, in `style`'s zone: `once at 03:00 CET` (today), `once at
/// Tue 03:00 CET` (this week), `once at 2026-12-24 03:00 CET`; `every 6h flex 30m`; `cron 0 3 *
/// * 1` as written, with its zone when it is not the local one. A one-off job's label is the
/// instant it was due, so it stays true after the run (`once in 10m` did not).
pub fn schedule_label(schedule: &ScheduleView, style: &Style) -> String {
    match schedule {
        ScheduleView::Once { at: None } => "once".into(),
        ScheduleView::Once { at: Some(t) } => {
            let local = t.with_timezone(&style.zone);
            let today = style.now.with_timezone(&style.zone).date_naive();
            let days = (local.date_naive() - today).num_days();
            let format = if days == 0 {
                "%H:%M %Z"
            } else if (1..7).contains(&days) {
                "%a %H:%M %Z"
            } else {
                "%Y-%m-%d %H:%M %Z"
            };
            format!("once at {}", local.format(format))
        }
        ScheduleView::Periodic {
            every_ms,
            flex_ms,
            after_run,
            initial_delay_ms,
        } => {
            let mut s = format!("every {}", duration_text(*every_ms));
            if let Some(f) = flex_ms {
                let _ = write!(s, " flex {}", duration_text(*f));
            }
            if *after_run {
                s.push_str(" after-run");
            }
            if !initial_delay_ms.is_zero() {
                let _ = write!(s, " first after {}", duration_text(*initial_delay_ms));
            }
            s
        }
        ScheduleView::Cron { expr, tz } => {
            if *tz == style.zone.name() {
                format!("cron {expr}")
            } else {
                format!("cron {expr} {tz}")
            }
        }
    }
}

fn duration_text(d: std::time::Duration) -> String {
    backwork_scheduler::core::humanize(d)
}

/// `backwork show`: the record, why it waits, and its recent runs with their output.
pub fn show(detail: &JobDetail, style: &Style) -> String {
    let job: &JobRecord = &detail.job;
    let mut s = String::new();
    let mut field = |k: &str, v: String| {
        let _ = writeln!(s, "{k:<14} {}", escape(&v));
    };
    field("id", job.id.to_string());
    if let Some(n) = &job.name {
        field("name", n.clone());
    }
    match &job.command {
        Some(spec) => {
            field("command", spec.display());
            field("directory", spec.cwd.display().to_string());
            if !spec.fail_on_exit.is_empty() {
                let codes: Vec<String> = spec.fail_on_exit.iter().map(i32::to_string).collect();
                field("fail on exit", codes.join(", "));
            }
        }
        None => {
            field("kind", job.kind.clone());
            if let Some(input) = &job.input {
                field("input", input.to_string());
            }
        }
    }
    field(
        "schedule",
        match &job.schedule {
            ScheduleView::Once { at: Some(t) } => {
                format!("once at {}", instant_long(*t, style.zone))
            }
            other => schedule_label(other, style),
        },
    );
    if job.accurate {
        field("batching", "off (accurate)".into());
    }
    if let Some(e) = &job.expedited {
        field(
            "expedited",
            match e.as_str() {
                "drop" => "yes; dropped if the expedited quota is used up".to_string(),
                _ => "yes; runs as regular work if the expedited quota is used up".to_string(),
            },
        );
    }
    if let Some(j) = job.jitter {
        field(
            "jitter",
            format!(
                "up to {}{}",
                duration_text(std::time::Duration::from_millis(j.max_ms)),
                if j.fixed {
                    ", fixed"
                } else {
                    ", new each cycle"
                }
            ),
        );
    }
    if let Some(c) = &job.catch_up {
        field("catch up", c.clone());
    }
    field("state", job.state.to_string());
    if !job.prerequisites.is_empty() {
        // the jobs it runs after (their names, while it waits, are in its status below)
        field(
            "after",
            job.prerequisites
                .iter()
                .map(|p| p.short())
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if let Some(p) = &job.progress {
        field(
            "progress",
            format!(
                "{} (reported {})",
                p.text(),
                match relative(p.at, style.now).as_str() {
                    "now" => "just now".to_string(),
                    r => r.to_string(),
                }
            ),
        );
    }
    field(
        "requires",
        if job.requires.is_empty() {
            "nothing".into()
        } else {
            job.requires.join(", ")
        },
    );
    if let Some(ms) = job.min_interval_ms {
        field(
            "min interval",
            duration_text(std::time::Duration::from_millis(ms)),
        );
    }
    field(
        "backoff",
        format!(
            "{} from {}",
            job.backoff.kind,
            duration_text(std::time::Duration::from_millis(job.backoff.base_ms))
        ),
    );
    field(
        "attempts",
        match job.max_attempts {
            Some(m) => format!("{} of {m} in this cycle", job.attempt),
            None => format!("{} in this cycle (no limit)", job.attempt),
        },
    );
    field(
        "timeout",
        job.timeout_ms.map_or("none".into(), |ms| {
            duration_text(std::time::Duration::from_millis(ms))
        }),
    );
    if !job.tags.is_empty() {
        field("tags", job.tags.join(", "));
    }
    field("added", style.when(job.added));
    if let Some(t) = job.last_started {
        field("last start", style.when(t));
    }
    field("runs", job.runs_total.to_string());
    if let Some(reason) = &job.stop_reason {
        field("stop reason", reason.text.clone());
    }
    s.push('\n');
    let settled = detail
        .reasons
        .iter()
        .all(|r| matches!(r, WaitReason::Running { .. } | WaitReason::Finished { .. }));
    if detail.reasons.is_empty() {
        s.push_str("runs as soon as a run slot is free\n");
    } else {
        s.push_str(if settled {
            "status:\n"
        } else {
            "why it is not running now:\n"
        });
        for reason in &detail.reasons {
            let _ = writeln!(s, "  - {}", escape(&style.reason(reason)));
        }
    }
    if !job.runs.is_empty() {
        let _ = writeln!(s, "\nrecent runs (oldest first):");
        for run in &job.runs {
            s.push_str(&run_text(run, style));
        }
    }
    s
}

fn run_text(run: &RunView, style: &Style) -> String {
    let mut s = String::new();
    let took = span(run.finished - run.started);
    // a run a crash interrupted says how, when its driver knew ("interrupted by a daemon crash")
    let (result, note, stop) = match (run.result, run.note.as_deref()) {
        (RunResult::Crashed, Some(n)) => {
            let (how, more) = n.split_once("; ").unwrap_or((n, ""));
            (how.to_string(), (!more.is_empty()).then_some(more), None)
        }
        _ => (
            run.result.to_string(),
            run.note.as_deref(),
            run.stop_reason.as_ref(),
        ),
    };
    let _ = write!(
        s,
        "  {}  attempt {}  {}  took {took}",
        instant_long(run.started, style.zone),
        run.attempt,
        escape(&result),
    );
    let command: Option<CommandOutput> = run
        .output
        .as_ref()
        .and_then(|o| serde_json::from_value(o.clone()).ok());
    if let Some(c) = &command {
        match (c.exit_code, c.signal) {
            (Some(code), _) => {
                let _ = write!(s, "  exit {code}");
            }
            (None, Some(sig)) => {
                let _ = write!(s, "  killed by signal {sig}");
            }
            _ => {}
        }
    }
    if let Some(r) = stop {
        let _ = write!(s, "  stopped: {}", escape(&r.text));
    }
    s.push('\n');
    if let Some(n) = note {
        let _ = writeln!(s, "    note: {}", escape(n));
    }
    match (command, &run.output) {
        (Some(c), _) => {
            if let Some(e) = &c.error {
                let _ = writeln!(s, "    error: {}", escape(e));
            }
            for (name, text, dropped) in [
                ("stdout", &c.stdout, c.stdout_dropped),
                ("stderr", &c.stderr, c.stderr_dropped),
            ] {
                if text.is_empty() {
                    continue;
                }
                let cut = if dropped > 0 {
                    format!(
                        " (last {} bytes; {dropped} before them dropped)",
                        text.len()
                    )
                } else {
                    String::new()
                };
                let _ = writeln!(s, "    {name}{cut}:");
                for l in text.lines() {
                    let _ = writeln!(s, "      | {}", escape(l));
                }
            }
        }
        (None, Some(v)) => {
            let _ = writeln!(s, "    output: {}", escape(&v.to_string()));
        }
        (None, None) => {}
    }
    s
}

/// `backwork why`.
pub fn why(entry: &JobReasons, style: &Style, device: Option<&DeviceReadings>) -> String {
    let who = match &entry.name {
        Some(n) => format!("{} ({})", entry.id, escape(n)),
        None => entry.id.to_string(),
    };
    if entry.reasons.is_empty() {
        return format!("{who}: nothing holds it back; it starts as soon as a run slot is free\n");
    }
    let mut s = format!("{who}:\n");
    for r in &entry.reasons {
        let _ = writeln!(s, "  - {}", escape(&style.reason(r)));
        // an unmet constraint: where the device value that fails it came from
        if let (WaitReason::Constraint(u), Some(device)) = (r, device) {
            let _ = writeln!(s, "    source: {}", escape(&device.of(u.constraint).why));
        }
    }
    s
}

/// `backwork device`: one line per value — its name, its value, and where it came from and why
/// (when the server says; older servers do not) — then where the state comes from. With a
/// `width`, the explanations wrap under their column so no line is longer.
pub fn device(
    state: &DeviceState,
    source: &str,
    readings: Option<&DeviceReadings>,
    width: Option<usize>,
) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
    let rows: [(&str, String, Option<&Reading>); 6] = [
        (
            "network",
            state.network.to_string(),
            readings.map(|r| &r.network),
        ),
        (
            "charging",
            yes(state.charging),
            readings.map(|r| &r.charging),
        ),
        (
            "battery",
            state.battery.map_or("none".into(), |b| format!("{b} %")),
            readings.map(|r| &r.battery),
        ),
        (
            "storage",
            if state.storage_low { "low" } else { "ok" }.into(),
            readings.map(|r| &r.storage),
        ),
        ("idle", yes(state.idle), readings.map(|r| &r.idle)),
        (
            "screen",
            if state.screen_on { "on" } else { "off" }.into(),
            readings.map(|r| &r.screen),
        ),
    ];
    const KEY: usize = 10;
    const VALUE: usize = 11;
    let indent = " ".repeat(KEY + VALUE);
    // the explanation column, never narrower than 20 columns
    let room = width.map(|w| w.saturating_sub(KEY + VALUE).max(20));
    let mut out = String::new();
    for (key, value, reading) in rows {
        let Some(reading) = reading else {
            let _ = writeln!(out, "{key:<KEY$}{value}");
            continue;
        };
        let why = escape(&reading.why);
        let lines = match room {
            Some(room) => wrap(&why, room),
            None => vec![why.into_owned()],
        };
        for (i, line) in lines.iter().enumerate() {
            if i == 0 {
                let _ = writeln!(out, "{key:<KEY$}{value:<VALUE$}{line}");
            } else {
                let _ = writeln!(out, "{indent}{line}");
            }
        }
    }
    let _ = writeln!(out, "{:<KEY$}{}", "source", escape(source));
    out
}

/// Breaks `text` into lines of at most `width` columns, at spaces where it can — never between
/// a number and its unit (`81 %`, `1 GiB`) — and inside a word only when the word alone is
/// wider.
fn wrap(text: &str, width: usize) -> Vec<String> {
    const UNITS: [&str; 8] = ["%", "%)", "B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let width = width.max(1);
    let mut words: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match words.last_mut() {
            Some(last)
                if UNITS.contains(&word.trim_end_matches([';', ',']))
                    && last.ends_with(|c: char| c.is_ascii_digit()) =>
            {
                last.push(' ');
                last.push_str(word);
            }
            _ => words.push(word.to_string()),
        }
    }
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in &words {
        let sep = usize::from(!line.is_empty());
        if !line.is_empty() && text_width(&line) + sep + text_width(word) > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        for c in word.chars() {
            let w = UnicodeWidthChar::width(c).unwrap_or(0);
            if text_width(&line) + w > width && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            line.push(c);
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// Issue 12, item 6: a schedule names the local zone and reads like the user wrote it.
    /// Expected values from the calendar (2026-11-30 is a Monday) and the EU's rules (CET is
    /// UTC+1 in winter, CEST UTC+2 in summer).
    #[test]
    fn schedules_read_in_the_local_zone() {
        let style = Style {
            now: t("2026-11-30T12:00:00Z"),
            zone: "Europe/Berlin".parse().unwrap(),
            local: false,
        };
        let once = |at: &str| schedule_label(&ScheduleView::Once { at: Some(t(at)) }, &style);
        assert_eq!(once("2026-11-30T20:00:00Z"), "once at 21:00 CET", "today");
        assert_eq!(
            once("2026-12-01T02:00:00Z"),
            "once at Tue 03:00 CET",
            "this week"
        );
        assert_eq!(once("2026-12-24T17:00:00Z"), "once at 2026-12-24 18:00 CET");
        assert_eq!(
            once("2027-07-01T10:00:00Z"),
            "once at 2027-07-01 12:00 CEST"
        );
        assert_eq!(
            schedule_label(&ScheduleView::Once { at: None }, &style),
            "once"
        );
        let cron = |tz: &str| {
            schedule_label(
                &ScheduleView::Cron {
                    expr: "0 3 * * 1".into(),
                    tz: tz.into(),
                },
                &style,
            )
        };
        assert_eq!(
            cron("Europe/Berlin"),
            "cron 0 3 * * 1",
            "the local zone goes unsaid"
        );
        assert_eq!(cron("America/New_York"), "cron 0 3 * * 1 America/New_York");
        let every = ScheduleView::Periodic {
            every_ms: std::time::Duration::from_secs(6 * 3600),
            flex_ms: Some(std::time::Duration::from_secs(1800)),
            after_run: false,
            initial_delay_ms: std::time::Duration::ZERO,
        };
        assert_eq!(schedule_label(&every, &style), "every 6h flex 30m");
    }

    /// A column left out frees room that a column shrunk before it gets back.
    #[test]
    fn room_freed_by_a_dropped_column_goes_back_to_a_shrunk_one() {
        let columns = [col("SCHEDULE", 4, 1), optional("WAITING ON", 10, 0, 2)];
        let rows = vec![vec![
            "every 6h flex 30m".to_string(),
            "charging: the device is on battery (9 %)".to_string(),
        ]];
        let out = table(&columns, &rows, Some(30));
        assert!(out.contains("every 6h flex 30m"), "{out}");
        assert!(!out.contains("WAITING"), "{out}");
    }

    #[test]
    fn tables_shrink_flexible_columns_to_the_width_and_mark_the_cut() {
        let columns = [col("ID", 4, 0), col("NAME", 4, 1), col("WAITING ON", 10, 2)];
        let rows = vec![vec![
            "abcd".to_string(),
            "a-very-long-name".to_string(),
            "charging: the device is on battery (9 %)".to_string(),
        ]];
        let wide = table(&columns, &rows, None);
        assert!(wide.contains("charging: the device is on battery (9 %)"));
        let narrow = table(&columns, &rows, Some(40));
        for line in narrow.lines() {
            assert!(line.chars().count() <= 40, "{line:?}");
        }
        assert!(narrow.contains('…'));
        assert!(narrow.lines().nth(1).unwrap().starts_with("abcd  "));
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_inside_a_word_only_when_it_is_wider() {
        assert_eq!(
            wrap("load average 1.37 ≥ 0.5 (1 min, /proc/loadavg)", 20),
            ["load average 1.37 ≥", "0.5 (1 min,", "/proc/loadavg)"]
        );
        assert_eq!(
            wrap("on /a/very/long/path/indeed;", 10),
            ["on", "/a/very/lo", "ng/path/in", "deed;"]
        );
        assert_eq!(wrap("", 10), [""]);
        // a number keeps its unit
        assert_eq!(
            wrap("low under 10 % and 1 GiB", 22),
            ["low under 10 % and", "1 GiB"]
        );
        assert_eq!(wrap("free (16 %) on", 9), ["free", "(16 %) on"]);
        assert_eq!(wrap("漢字漢字", 5), ["漢字", "漢字"]);
    }

    #[test]
    fn control_characters_print_escaped() {
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("a\nb"), "a\\nb");
        assert_eq!(escape("\u{1b}[2J"), "\\e[2J");
        assert_eq!(
            escape("cr\r tab\t nul\0 del\u{7f}"),
            "cr\\r tab\\t nul\\0 del\\x7f"
        );
        assert_eq!(escape("c1\u{9b}31m"), "c1\\u{9b}31m");
        assert_eq!(escape("rtl\u{202e}txt"), "rtl\\u{202e}txt");
        assert_eq!(escape("back\\slash é 漢"), "back\\slash é 漢");
    }

    #[test]
    fn a_cell_with_a_newline_stays_on_its_row() {
        let columns = [col("ID", 2, 0), col("NAME", 4, 1), col("STATE", 5, 0)];
        let rows = vec![vec![
            "1".to_string(),
            "x\n2  forged  succeeded\u{1b}[0m".to_string(),
            "enqueued".to_string(),
        ]];
        let text = table(&columns, &rows, None);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!text.contains('\u{1b}'));
        assert!(text.contains("x\\n2"));
    }

    /// Rust's format width is capped at u16::MAX: padding a 65 536-column cell with `{:<w$}`
    /// panicked. Widths are counted in terminal columns, with no cap.
    #[test]
    fn a_cell_wider_than_a_format_width_does_not_panic() {
        let columns = [col("NAME", 4, 1), col("STATE", 5, 0)];
        let long = "n".repeat(65_536);
        let rows = vec![vec![long.clone(), "enqueued".to_string()]];
        let text = table(&columns, &rows, None);
        assert!(text.lines().nth(1).unwrap().starts_with(&long));
        let narrow = table(&columns, &rows, Some(30));
        assert!(narrow.lines().all(|l| text_width(l) <= 30), "{narrow}");
    }

    #[test]
    fn wide_characters_are_cut_and_padded_by_columns() {
        // Each of these CJK characters takes two terminal columns (UAX #11: East Asian Wide).
        assert_eq!(text_width("漢字漢字"), 8);
        assert_eq!(truncate("漢字漢字", 5), "漢字…");
        let columns = [col("NAME", 4, 1), col("STATE", 5, 0)];
        let rows = vec![
            vec!["漢字".to_string(), "a".to_string()],
            vec!["abcd".to_string(), "b".to_string()],
        ];
        let text = table(&columns, &rows, None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(text_width(lines[1]), text_width(lines[2]), "{text}");
    }
}
