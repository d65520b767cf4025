//! A scenario file's TOML errors in words: a syntax or shape error (a stray quote, an unknown
//! key) says the scenario does not parse; a setting whose value means nothing (`duration =
//! "1x"`, `network = "wifi"`) or that is missing (`start`) is named, with what it may be.
//!
//! serde reports a value error with the span of the value; the file is read a second time as
//! a tree of spanned keys and values ([`toml::de::DeTable`]) to find the setting at that span.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::SimError;

/// The error `e`, met reading scenario `text`, as a [`SimError`].
pub(crate) fn explain(e: &toml::de::Error, text: &str) -> SimError {
    let message = e.message().trim().replace('\n', "; ");
    let (Some(span), Ok(root)) = (e.span(), DeTable::parse(text)) else {
        // a syntax error: the text is not TOML
        return SimError::Parse(one_line(e, text));
    };
    if message.starts_with("unknown field") {
        // a key the format does not have: a shape error, and the message lists the keys
        return SimError::Parse(one_line(e, text));
    }
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        let table = table_at(root.get_ref(), &span, Vec::new()).unwrap_or_default();
        let mut path = table;
        path.push(Step::Key(field.to_string()));
        return SimError::Setting {
            setting: location(&path),
            detail: format!("is missing: add {}", example(field)),
        };
    }
    let found = value_at(root.get_ref(), &span, Vec::new()).map(|path| {
        // a value inside a flattened table is reported at the table: find it by its text
        match (node_at(root.get_ref(), &path), literal(&message)) {
            (Some(node), Some(lit)) if matches!(node.get_ref(), DeValue::Table(_)) => {
                find_literal(node, text, &lit, path.clone()).unwrap_or(path)
            }
            _ => path,
        }
    });
    match found {
        Some(path) => {
            let value = node_at(root.get_ref(), &path)
                .and_then(|v| text.get(v.span()))
                .or_else(|| text.get(span.clone()))
                .unwrap_or_default()
                .trim();
            let leaf = path.iter().rev().find_map(|s| match s {
                Step::Key(k) => Some(k.as_str()),
                Step::Item(..) => None,
            });
            SimError::Setting {
                setting: location(&path),
                detail: format!("is {value}: {}", advice(leaf.unwrap_or_default(), &message)),
            }
        }
        None => SimError::Parse(one_line(e, text)),
    }
}

/// A TOML error on one line: where it is (line and column, 1-based) and what is wrong — the
/// multi-line excerpt toml's `Display` draws does not survive an error line.
fn one_line(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim().replace('\n', "; ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// One step of the way to a setting.
#[derive(Debug, Clone)]
enum Step {
    /// A key of a table.
    Key(String),
    /// Item `n` (0-based) of an array, with the `name` of the table there, if it has one.
    Item(usize, Option<String>),
}

/// The value at `path`.
fn node_at<'a, 'i>(table: &'a DeTable<'i>, path: &[Step]) -> Option<&'a Spanned<DeValue<'i>>> {
    let (Step::Key(first), rest) = path.split_first()? else {
        return None;
    };
    let mut node = table.iter().find(|(k, _)| k.get_ref() == first)?.1;
    for step in rest {
        node = match (step, node.get_ref()) {
            (Step::Key(k), DeValue::Table(t)) => t.iter().find(|(key, _)| key.get_ref() == k)?.1,
            (Step::Item(n, _), DeValue::Array(items)) => items.get(*n)?,
            _ => return None,
        };
    }
    Some(node)
}

/// The value serde's `message` quotes (`` unknown variant `dim` ``, `invalid value: string
/// "long"`, `` integer `-2` ``), if it quotes one.
fn literal(message: &str) -> Option<String> {
    for (open, close) in [
        ("variant `", '`'),
        ("string \"", '"'),
        ("integer `", '`'),
        ("float `", '`'),
    ] {
        if let Some(rest) = message.split_once(open).map(|(_, r)| r)
            && let Some((lit, _)) = rest.split_once(close)
        {
            return Some(lit.to_string());
        }
    }
    None
}

/// The path of a value under `node` whose text (without quotes) is `lit`.
fn find_literal(
    node: &Spanned<DeValue<'_>>,
    text: &str,
    lit: &str,
    path: Vec<Step>,
) -> Option<Vec<Step>> {
    let DeValue::Table(t) = node.get_ref() else {
        let raw = text.get(node.span())?.trim();
        let bare = raw.trim_matches(|c| c == '"' || c == '\'');
        return (bare == lit).then_some(path);
    };
    t.iter().find_map(|(k, v)| {
        let mut here = path.clone();
        here.push(Step::Key(k.get_ref().to_string()));
        find_literal(v, text, lit, here)
    })
}

/// Where `value` and everything in it lie (an array of tables' item spans only its header).
fn extent(value: &Spanned<DeValue<'_>>) -> Range<usize> {
    let mut r = value.span();
    let mut widen = |e: Range<usize>| {
        r.start = r.start.min(e.start);
        r.end = r.end.max(e.end);
    };
    match value.get_ref() {
        DeValue::Table(t) => {
            for (k, v) in t {
                widen(k.span());
                widen(extent(v));
            }
        }
        DeValue::Array(items) => {
            for item in items.iter() {
                widen(extent(item));
            }
        }
        _ => {}
    }
    r
}

/// The path of the innermost key whose value lies over `span`.
fn value_at(table: &DeTable<'_>, span: &Range<usize>, path: Vec<Step>) -> Option<Vec<Step>> {
    for (key, value) in table {
        if !covers(&extent(value), span) {
            continue;
        }
        let mut here = path.clone();
        here.push(Step::Key(key.get_ref().to_string()));
        return Some(inner_value(value, span, here.clone()).unwrap_or(here));
    }
    None
}

fn inner_value(
    value: &Spanned<DeValue<'_>>,
    span: &Range<usize>,
    path: Vec<Step>,
) -> Option<Vec<Step>> {
    match value.get_ref() {
        DeValue::Table(t) => value_at(t, span, path),
        DeValue::Array(items) => items.iter().enumerate().find_map(|(n, item)| {
            if !covers(&extent(item), span) {
                return None;
            }
            let mut here = path.clone();
            here.push(Step::Item(n, name_of(item)));
            Some(inner_value(item, span, here.clone()).unwrap_or(here))
        }),
        _ => None,
    }
}

/// The path of the innermost table over `span` (where a field is missing); the root is the
/// empty path.
fn table_at(table: &DeTable<'_>, span: &Range<usize>, path: Vec<Step>) -> Option<Vec<Step>> {
    for (key, value) in table {
        let mut here = path.clone();
        here.push(Step::Key(key.get_ref().to_string()));
        match value.get_ref() {
            DeValue::Table(t) if covers(&extent(value), span) => {
                return Some(table_at(t, span, here.clone()).unwrap_or(here));
            }
            DeValue::Array(items) => {
                for (n, item) in items.iter().enumerate() {
                    if let DeValue::Table(t) = item.get_ref()
                        && covers(&extent(item), span)
                    {
                        let mut at = here.clone();
                        at.push(Step::Item(n, name_of(item)));
                        return Some(table_at(t, span, at.clone()).unwrap_or(at));
                    }
                }
            }
            _ => {}
        }
    }
    Some(path)
}

/// True when `outer` holds `inner` (an empty `inner` at `outer`'s start too).
fn covers(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

/// The `name` of a table (a `[[job]]`'s), if it is a string.
fn name_of(item: &Spanned<DeValue<'_>>) -> Option<String> {
    let DeValue::Table(t) = item.get_ref() else {
        return None;
    };
    t.iter().find_map(|(k, v)| match v.get_ref() {
        DeValue::String(s) if k.get_ref() == "name" => Some(s.to_string()),
        _ => None,
    })
}

/// Where a setting is, in words: `` `device.battery` ``, `` `at` of [[event]] number 2 ``,
/// `` `outcome.duration` of [[job]] "sync" ``.
fn location(path: &[Step]) -> String {
    // the last array item on the path (a [[job]] or an [[event]]) and the keys after it
    let item = path.iter().enumerate().rev().find_map(|(i, s)| match s {
        Step::Item(n, name) if i > 0 => Some((i, *n, name.clone())),
        _ => None,
    });
    let keys = |steps: &[Step]| {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Key(k) => Some(k.as_str()),
                Step::Item(..) => None,
            })
            .collect::<Vec<_>>()
            .join(".")
    };
    match item {
        Some((i, n, name)) => {
            let table = keys(&path[..i]);
            let which = match name {
                Some(name) => format!("[[{table}]] \"{name}\""),
                None => format!("[[{table}]] number {}", n + 1),
            };
            let rest = keys(&path[i + 1..]);
            if rest.is_empty() {
                which
            } else {
                format!("`{rest}` of {which}")
            }
        }
        None => format!("`{}`", keys(path)),
    }
}

/// What a setting named `key` may be; `message` is serde's, for the keys not listed.
fn advice(key: &str, message: &str) -> String {
    const DURATION: &str = "give a duration such as \"90s\", \"15m\", \"36h\" or \"7d\"";
    let fixed = match key {
        "start" => "give an RFC 3339 instant such as \"2026-11-23T00:00:00Z\"",
        "duration" | "at" | "repeat" | "down" | "added" => DURATION,
        "seed" => "give a whole number from 0 to 18446744073709551615",
        "battery" => "give a percentage from 0 to 100",
        "count" => "give a number of copies from 1 up",
        "max_attempts" => "give a number of attempts from 1 up",
        "screen" => "give \"on\" or \"off\"",
        "network" => "give \"none\", \"metered\" or \"unmetered\"",
        "storage" => "give \"low\" or \"ok\"",
        "bucket" => {
            "give \"active\", \"working_set\", \"frequent\", \"rare\" or \"restricted\" (android's standby buckets)"
        }
        "charging" | "idle" | "moving" | "reboot" | "force_quit" | "app_open" | "accurate"
        | "fixed_jitter" => "give true or false",
        "task" => "give \"refresh\" or \"processing\" (ios)",
        "fail" => "give a probability from 0 to 1",
        "progress" => "give a list of percentages, such as [25, 50, 100]",
        "requires" | "after" => "give a list of words in quotes, such as [\"network\"]",
        "tags" => "give a list of tags in quotes, such as [\"backup\"]",
        _ => "",
    };
    if !fixed.is_empty() {
        return fixed.to_string();
    }
    // serde's "invalid value: …, expected X" / "unknown variant `v`, expected one of …"
    match message.rsplit_once("expected ") {
        Some((_, expected)) => format!("give {}", expected.replace('`', "\"")),
        None => format!("it cannot be read ({message})"),
    }
}

/// What to add for a missing field `key`, with an example line.
fn example(key: &str) -> String {
    match key {
        "start" => {
            "the instant the simulation begins, such as start = \"2026-11-23T00:00:00Z\"".into()
        }
        "duration" => "how long to simulate, such as duration = \"24h\"".into(),
        "name" => "a name for the job, such as name = \"sync\"".into(),
        "at" => "when it happens, counted from the start, such as at = \"1h\"".into(),
        other => format!("a line {other} = … (docs/simulator.md lists what it may be)"),
    }
}
