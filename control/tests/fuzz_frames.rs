//! The socket-frame fuzz target (`fuzz/fuzz_targets/socket_frames.rs`) on stable: 2 000 seeded
//! cases of what a client may send — random bytes, requests whose JSON has one field replaced by
//! a value of another type or an extreme one, frames with lying lengths. Guards against a client
//! being able to panic the server's decoder, or the core behind an `add` (DESIGN §10).
//! `BACKWORK_FUZZ_CASES` sets the number of cases.

use backwork_control::fuzzing::frames;
use backwork_control::protocol::Request;
use backwork_scheduler::Selector;
use backwork_scheduler::fuzzing::{mutate_json, sample_requests};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::Value;

fn config() -> Config {
    Config {
        cases: backwork_scheduler::fuzzing::cases(2_000),
        rng_seed: RngSeed::Fixed(0x0009_f4a3),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Requests of every kind, as JSON values.
fn requests() -> Vec<Value> {
    let mut all: Vec<Request> = vec![
        Request::Ping,
        Request::List {
            state: None,
            tag: Some("t".into()),
            all: true,
        },
        Request::Prune {
            older_than: Some(std::time::Duration::from_secs(60)),
        },
        Request::Show {
            target: Selector::Name("n".into()),
        },
        Request::Cancel {
            target: Selector::Tag("t".into()),
        },
        Request::DeviceSet {
            settings: vec!["charging=false".into()],
        },
        Request::Prune { older_than: None },
    ];
    all.extend(sample_requests().into_iter().map(|request| Request::Add {
        job: backwork_control::NewJob::of(&request),
    }));
    all.iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect()
}

/// Values that break assumptions: extremes, wrong types, control characters, long text.
fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(Value::from(u64::MAX)),
        Just(Value::from(-1)),
        Just(Value::from(0)),
        ".{0,40}".prop_map(Value::from),
        "[\\x00-\\x1f]{0,8}".prop_map(Value::from),
        (0usize..70_000).prop_map(|n| Value::from("x".repeat(n))),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
    ]
}

/// One frame: a request with one leaf replaced, its length prefix right or wrong.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    let base = requests();
    (
        0..base.len(),
        any::<usize>(),
        odd_value(),
        any::<bool>(),
        any::<u32>(),
    )
        .prop_map(move |(which, pick, with, honest, lie)| {
            let mut v = base[which].clone();
            mutate_json(&mut v, pick, with);
            let body = serde_json::to_vec(&v).unwrap();
            let len = if honest { body.len() as u32 } else { lie };
            let mut out = len.to_be_bytes().to_vec();
            out.extend_from_slice(&body);
            out
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic_the_decoder(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        frames(&data);
    }

    #[test]
    fn mutated_requests_never_panic_the_decoder_or_the_core(
        stream in proptest::collection::vec(frame(), 1..4)
    ) {
        frames(&stream.concat());
    }
}

/// The unmutated requests decode and go through (the mutation tests start from valid input).
#[test]
fn the_seed_requests_are_valid() {
    for v in requests() {
        let body = serde_json::to_vec(&v).unwrap();
        serde_json::from_slice::<Request>(&body).unwrap();
        let mut data = (body.len() as u32).to_be_bytes().to_vec();
        data.extend_from_slice(&body);
        frames(&data);
    }
}

/// Found by `mutated_requests_never_panic_the_decoder_or_the_core`: serde_json's default float
/// parsing is best-effort, so `3.8907834131042995e18` in a request came back one unit in the
/// last place off after a trip over the wire (and any float in a job's payload could). Fixed by
/// serde_json's `float_roundtrip` feature, on for the whole workspace.
#[test]
fn regression_floats_survive_the_wire_exactly() {
    for f in [
        3.890_783_413_104_299_5e18_f64,
        1.945_391_706_552_149_8e18,
        0.1,
        1e-300,
    ] {
        let text = serde_json::to_string(&f).unwrap();
        let back: f64 = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_bits(), f.to_bits(), "{text}");
    }
    let mut add = requests().pop().unwrap();
    add["request"]["input"] = serde_json::json!({ "ratio": 3.890_783_413_104_299_5e18 });
    let body = serde_json::to_vec(&add).unwrap();
    let mut data = (body.len() as u32).to_be_bytes().to_vec();
    data.extend_from_slice(&body);
    frames(&data);
}
