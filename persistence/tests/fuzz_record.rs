//! The store-record fuzz target (`fuzz/fuzz_targets/store_record.rs`) on stable: 2 000 seeded
//! cases of what a record read from disk may hold — random bytes, real records (binary, and the
//! old JSON form the migration reads) with bytes overwritten, a field replaced by a value of
//! another type or an extreme one, or cut short. Guards against a damaged or foreign store
//! panicking the decoders, the migration's re-encoding, or the core's recovery of what it
//! loads (DESIGN §3, §10). `BACKWORK_FUZZ_CASES` sets the number of cases.

use backwork_persistence::fuzzing::{encode, record};
use backwork_scheduler::fuzzing::{instant_of, mutate_json, sample_jobs};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::Value;

fn config() -> Config {
    Config {
        cases: backwork_scheduler::fuzzing::cases(2_000),
        rng_seed: RngSeed::Fixed(0x0009_5eed),
        failure_persistence: None,
        ..Config::default()
    }
}

fn records() -> &'static [Value] {
    static RECORDS: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    RECORDS.get_or_init(|| {
        sample_jobs(instant_of(1_764_374_400_i64.to_le_bytes()))
            .iter()
            .map(|j| serde_json::to_value(j).unwrap())
            .collect()
    })
}

fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(Value::from(u64::MAX)),
        Just(Value::from(u32::MAX)),
        Just(Value::from(i64::MIN)),
        Just(Value::from(0)),
        ".{0,40}".prop_map(Value::from),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z".prop_map(Value::from),
        "[+-]?[0-9]{5,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z".prop_map(Value::from),
        Just(Value::from("running")),
        Just(Value::from("succeeded")),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        record(&data);
    }

    #[test]
    fn mutated_records_never_panic(
        which in any::<usize>(),
        edits in proptest::collection::vec((any::<usize>(), odd_value()), 1..4),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let base = records();
        let mut v = base[which % base.len()].clone();
        for (pick, with) in edits {
            mutate_json(&mut v, pick, with);
        }
        let mut bytes = serde_json::to_vec(&v).unwrap();
        if let Some(cut) = cut {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        record(&bytes);
    }

    #[test]
    fn damaged_binary_records_never_panic(
        which in any::<usize>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let base = sample_jobs(instant_of(1_764_374_400_i64.to_le_bytes()));
        // every other seed keeps a small input inside its record (format 4's last field)
        let inline = (which % 2 == 0).then_some(&br#"{"k":[1,2]}"#[..]);
        let mut bytes = encode(&base[which % base.len()], inline);
        for (at, with) in edits {
            let n = bytes.len();
            bytes[at % n] = with;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        record(&bytes);
    }
}

/// The seeds are real records that decode (the mutations start from valid input).
#[test]
fn the_seed_records_decode() {
    let base = records();
    assert!(base.len() >= 3, "{base:#?}");
    for v in base {
        let bytes = serde_json::to_vec(v).unwrap();
        serde_json::from_slice::<backwork_scheduler::Job>(&bytes).unwrap();
        record(&bytes);
    }
    for job in sample_jobs(instant_of(1_764_374_400_i64.to_le_bytes())) {
        record(&encode(&job, None));
        record(&encode(&job, Some(br#""a small input""#)));
    }
}

/// Found by `mutated_records_never_panic`: a record whose counters are at their maximum
/// (`cycle` = 2^64 − 1 from a damaged file) made the core's `cycle += 1` overflow when the
/// recurring job moved to its next slot — a panic in debug builds, a silent wrap in release.
/// The counters now saturate.
#[test]
fn regression_counters_at_their_maximum_do_not_overflow() {
    for v in records() {
        let mut v = v.clone();
        v["cycle"] = Value::from(u64::MAX);
        v["attempt"] = Value::from(u32::MAX);
        v["runs_total"] = Value::from(u64::MAX);
        v["state"] = Value::from("running");
        record(&serde_json::to_vec(&v).unwrap());
    }
}
