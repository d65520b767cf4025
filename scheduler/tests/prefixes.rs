//! `Selector::Prefix`: a job named by its short id (the last 12 hex digits of a version-7 id,
//! its random part — RFC 9562 §5.7) or a prefix of it, as `docker` takes unique id prefixes: one
//! match acts on that job; two are an error naming the candidates, never an action on both; an
//! exact unique name wins over a prefix; a prefix under 4 digits matches nothing.

mod common;

use backwork_scheduler::{CoreError, Event, JobId, JobRequest, Reply, Selector};
use common::*;

/// A version-7 id whose last six bytes (its short id) are `tail`.
fn id_with_tail(h: &Harness, tail: [u8; 6]) -> JobId {
    let mut random = [0u8; 10];
    random[4..].copy_from_slice(&tail);
    JobId::new_v7(h.now, random)
}

#[test]
fn one_match_acts_two_are_an_error_naming_both() {
    let mut h = Harness::new();
    let a = id_with_tail(&h, [0xab, 0xcd, 0x01, 0, 0, 1]);
    let b = id_with_tail(&h, [0xab, 0xcd, 0x02, 0, 0, 2]);
    for (id, name) in [(a, "first"), (b, "second")] {
        let request = JobRequest::once(KIND)
            .delay(mins(60))
            .unique(name, backwork_scheduler::ConflictPolicy::Keep);
        h.handle(Event::Enqueue { id, request }).unwrap();
    }
    assert_eq!(a.short(), "abcd01000001");
    assert_eq!(
        h.core.resolve(&Selector::Prefix("abcd01".into())),
        Ok(vec![a])
    );
    assert_eq!(
        h.core.resolve(&Selector::Prefix("ABCD02000002".into())),
        Ok(vec![b]),
        "hex digits in either case"
    );
    match h.core.resolve(&Selector::Prefix("abcd".into())) {
        Err(e @ CoreError::AmbiguousPrefix { .. }) => {
            let text = e.to_string();
            assert!(text.contains("abcd01000001 first"), "{text}");
            assert!(text.contains("abcd02000002 second"), "{text}");
        }
        other => panic!("expected an ambiguity, got {other:?}"),
    }
    // cancelling by an ambiguous prefix cancels nothing
    assert!(matches!(
        h.handle(Event::Cancel(Selector::Prefix("abcd".into()))),
        Err(CoreError::AmbiguousPrefix { count: 2, .. })
    ));
    assert!(h.core.jobs().all(|j| !j.state.is_finished()));
    // too short to be a prefix
    assert_eq!(h.core.resolve(&Selector::Prefix("abc".into())), Ok(vec![]));
}

#[test]
fn an_exact_name_wins_over_a_prefix() {
    let mut h = Harness::new();
    let a = id_with_tail(&h, [0xbe, 0xef, 0, 0, 0, 1]);
    let request = JobRequest::once(KIND).delay(mins(60));
    h.handle(Event::Enqueue { id: a, request }).unwrap();
    let named = h.fresh_id();
    let request = JobRequest::once(KIND)
        .delay(mins(60))
        .unique("beef", backwork_scheduler::ConflictPolicy::Keep);
    let Ok(Reply::Enqueued { id, .. }) = h.handle(Event::Enqueue { id: named, request }) else {
        panic!("enqueue failed");
    };
    assert_eq!(
        h.core.resolve(&Selector::Prefix("beef".into())),
        Ok(vec![id])
    );
    assert_eq!(
        h.core.resolve(&Selector::Prefix("beef0000".into())),
        Ok(vec![a])
    );
}
