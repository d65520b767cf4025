//! The bodies of the command line's fuzz targets (`fuzz/fuzz_targets/`), as plain functions
//! that stable tests also call: durations, `--at` instants, cron expressions and scenario files,
//! each taken exactly as the command line takes it. None may panic, whatever the input. Not
//! part of the public API.

use std::path::Path;
use std::time::Duration;

use backwork_scheduler::Time;
use backwork_scheduler::fuzzing::{instant_of, zone_of};
use clap::Parser;

use crate::args::{Cli, Verb};

/// The instant the targets take as "now": 2025-11-29T00:00:00Z.
fn now() -> Time {
    instant_of(1_764_374_400_i64.to_le_bytes())
}

/// `backwork add FLAGS -- true` as the command line would run it: parsed by the grammar, turned
/// into a request by `add`, and the request enqueued into a scheduling core and driven.
fn add(flags: &[String]) {
    let mut argv: Vec<String> = vec!["backwork".into(), "add".into()];
    argv.extend_from_slice(flags);
    argv.extend(["--".into(), "true".into()]);
    let Ok(cli) = Cli::try_parse_from(argv) else {
        return;
    };
    let Verb::Add(args) = cli.verb else {
        return;
    };
    let env = [("PATH".to_string(), "/usr/bin:/bin".to_string())];
    if let Ok(request) = crate::add::request(&args, env, Path::new("/"), now()) {
        backwork_scheduler::fuzzing::request(request, now());
    }
}

/// Durations (humantime syntax): the first byte picks the flag (`--in`, `--every`,
/// `--every 1h --flex`, `--timeout`, `--jitter`, `--min-interval`, `--backoff exponential:`),
/// the rest is its value. The value is parsed as the command line parses it, shown back as
/// `show` shows durations, and passed through `backwork add`.
pub fn duration(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(value) = std::str::from_utf8(rest) else {
        return;
    };
    if let Ok(d) = backwork_scheduler::core::parse_duration("in", value) {
        let _ = backwork_scheduler::core::humanize(d);
        let _ = backwork_scheduler::core::humanize_approx(d);
        let _ = crate::time::span(chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX));
    }
    let flags: Vec<String> = match pick % 7 {
        0 => vec![format!("--in={value}")],
        1 => vec![format!("--every={value}")],
        2 => vec!["--every=1h".into(), format!("--flex={value}")],
        3 => vec![format!("--timeout={value}")],
        4 => vec![format!("--jitter={value}")],
        5 => vec![format!("--min-interval={value}")],
        _ => vec![format!("--backoff=exponential:{value}")],
    };
    add(&flags);
}

/// `--at` instants: the first byte picks the time zone, the rest is the text. Parsed as the
/// command line parses it, shown back as tables show instants, and passed through
/// `backwork add --at TEXT --tz ZONE`.
pub fn at(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(value) = std::str::from_utf8(rest) else {
        return;
    };
    let zone = zone_of(pick);
    if let Ok(t) = backwork_scheduler::core::parse_at(value, zone, now()) {
        let _ = crate::time::instant(t, zone);
        let _ = crate::time::instant_long(t, zone);
        let _ = crate::time::relative(t, now());
    }
    add(&[format!("--at={value}"), format!("--tz={}", zone.name())]);
}

/// Cron expressions: the core's parser and next fire times (see
/// [`backwork_scheduler::fuzzing::cron`]), then `backwork add --cron EXPR --tz ZONE` with the
/// same expression and zone.
pub fn cron(data: &[u8]) {
    backwork_scheduler::fuzzing::cron(data);
    if data.len() < 9 {
        return;
    }
    let Ok(expr) = std::str::from_utf8(&data[9..]) else {
        return;
    };
    add(&[
        format!("--cron={expr}"),
        format!("--tz={}", zone_of(data[8]).name()),
    ]);
}

/// Scenario files: parsed as `backwork simulate` parses them; one that parses is simulated
/// (its duration cut to at most an hour, so one case stays fast) and its report written as
/// text, JSON and SVG.
pub fn scenario(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut scenario) = backwork_simulator::Scenario::from_toml(text) else {
        return;
    };
    scenario.duration = scenario.duration.min(Duration::from_secs(3600));
    if scenario.jobs.len() > 16 || scenario.events.len() > 64 {
        return;
    }
    if let Ok(report) = backwork_simulator::simulate(&scenario) {
        let _ = report.text();
        let _ = serde_json::to_string(&report);
        let _ = backwork_simulator::svg(&report);
    }
}
