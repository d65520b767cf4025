//! The command line's fuzz targets (`fuzz/fuzz_targets/`: durations, `--at` instants, cron
//! expressions, scenario files) on stable: 2 000 seeded cases each, half random bytes, half
//! input shaped like the real thing (numbers and units, dates, cron fields, the example
//! scenarios with edits). Guards against any of these inputs panicking the parser, the
//! conversion into a request, or the core that takes it (DESIGN §10). The crashing inputs found
//! by longer runs are kept below as regression cases. `BACKWORK_FUZZ_CASES` sets the number of
//! cases.

use backwork_cli::fuzzing;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config() -> Config {
    Config {
        cases: backwork_scheduler::fuzzing::cases(2_000),
        rng_seed: RngSeed::Fixed(0x0009_c11f),
        failure_persistence: None,
        ..Config::default()
    }
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..64)
}

/// A number: small, large, extreme, with a fraction or a sign.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..1000).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_string()),
        "[0-9]{1,30}",
        "-?[0-9]{1,5}\\.[0-9]{1,5}",
    ]
}

/// humantime's units, and some it does not know.
fn unit() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "ns", "nsec", "us", "usec", "ms", "msec", "s", "sec", "secs", "second", "seconds", "m",
        "min", "mins", "minute", "minutes", "h", "hr", "hrs", "hour", "hours", "d", "day", "days",
        "w", "week", "weeks", "M", "month", "months", "y", "year", "years", "", "x", "µs",
    ])
}

fn duration_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        (number(), unit(), prop::sample::select(vec!["", " ", "  "])),
        1..5,
    )
    .prop_map(|parts| {
        parts
            .into_iter()
            .map(|(n, u, sep)| format!("{n}{sep}{u}"))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

fn at_text() -> impl Strategy<Value = String> {
    let date = (
        prop_oneof![
            (0i64..10_000),
            (-300_000i64..300_000),
            Just(9999),
            Just(262_143)
        ],
        0u32..14,
        0u32..33,
    );
    let time = (0u32..26, 0u32..62, proptest::option::of(0u32..62));
    let offset = prop::sample::select(vec!["", "Z", "+01:00", "-23:59", "+24:00", "+99:99"]);
    let sep = prop::sample::select(vec!["T", " ", "t"]);
    (date, time, offset, sep).prop_map(|((y, mo, d), (h, mi, s), off, sep)| {
        let s = s.map_or(String::new(), |s| format!(":{s:02}"));
        format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}{s}{off}")
    })
}

/// One cron field: numbers, ranges, steps, lists, names, wildcards — in and out of range.
fn cron_field() -> impl Strategy<Value = String> {
    let n = prop_oneof![0u32..70, Just(0), Just(59), Just(99_999), Just(u32::MAX)];
    prop_oneof![
        Just("*".to_string()),
        Just("?".to_string()),
        n.clone().prop_map(|a| a.to_string()),
        (n.clone(), n.clone()).prop_map(|(a, b)| format!("{a}-{b}")),
        (n.clone(), n.clone()).prop_map(|(a, b)| format!("{a},{b}")),
        (n.clone(), n.clone(), n.clone()).prop_map(|(a, b, s)| format!("{a}-{b}/{s}")),
        n.clone().prop_map(|s| format!("*/{s}")),
        prop::sample::select(vec![
            "MON", "sun", "MON-FRI", "JAN", "dec", "FEB-MAR", "L", "W", "#", "1#3", "LW", "5L",
        ])
        .prop_map(str::to_string),
    ]
}

fn cron_data() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u8; 8]>(),
        any::<u8>(),
        proptest::collection::vec(cron_field(), 5..9),
    )
        .prop_map(|(at, tz, fields)| {
            let mut data = at.to_vec();
            data.push(tz);
            data.extend_from_slice(fields.join(" ").as_bytes());
            data
        })
}

/// The example scenarios, each with a few byte edits.
fn scenario_text() -> impl Strategy<Value = Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/scenarios");
    let examples: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    (
        0..examples.len(),
        proptest::collection::vec((any::<usize>(), "[ -~\\n]{0,6}"), 0..4),
    )
        .prop_map(move |(which, edits)| {
            let mut text = examples[which].clone();
            for (at, with) in edits {
                let at = at % (text.len() + 1);
                let end = (at + with.len()).min(text.len());
                text.splice(at..end, with.bytes());
            }
            text
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn durations(pick in any::<u8>(), text in prop_oneof![duration_text(), ".{0,20}"]) {
        let mut data = vec![pick];
        data.extend_from_slice(text.as_bytes());
        fuzzing::duration(&data);
    }

    #[test]
    fn duration_bytes(data in bytes()) {
        fuzzing::duration(&data);
    }

    #[test]
    fn at_instants(zone in any::<u8>(), text in prop_oneof![at_text(), ".{0,24}"]) {
        let mut data = vec![zone];
        data.extend_from_slice(text.as_bytes());
        fuzzing::at(&data);
    }

    #[test]
    fn cron_expressions(data in prop_oneof![cron_data(), bytes()]) {
        fuzzing::cron(&data);
    }
}

proptest! {
    #![proptest_config(Config { cases: config().cases / 10, ..config() })]

    /// A tenth of the cases: each parsable one is simulated for up to an hour.
    #[test]
    fn scenario_files(data in prop_oneof![scenario_text(), bytes()]) {
        fuzzing::scenario(&data);
    }
}
