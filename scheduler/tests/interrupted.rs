//! A driver that knows more about the runs a crash interrupted than "they were running" (the
//! daemon's run files) tells the core with `Event::Interrupted` right after the load: the
//! history record of that attempt gets the real end and the driver's note, and is persisted.
//! Guards against a history that calls a run stopped at 10:00 and found at 11:00 "crashed,
//! took 1h", and against amending a record of another attempt.

mod common;

use backwork_scheduler::{
    Action, AllowAll, Config, Event, Interruption, Job, JobRequest, JobState, RunResult, Store,
};
use chrono::TimeDelta;
use common::*;

fn crash_and_reload(h: &Harness, at: backwork_scheduler::Time) -> Harness {
    // what the store holds, loaded by a fresh core over the same store
    let stored: Vec<Job> = h.store.clone().load().expect("a memory store loads");
    let mut fresh = Harness::with(Config::default(), Box::new(AllowAll));
    fresh.store = h.store.clone();
    fresh.jump_to(at);
    fresh.handle(Event::Load(stored)).unwrap();
    fresh
}

#[test]
fn the_interrupted_attempt_gets_its_real_end_and_the_note() {
    let mut h = Harness::new();
    let id = h.enqueue(JobRequest::once(KIND));
    assert_eq!(h.job(id).state, JobState::Running);
    let started = h.job(id).last_started.expect("the run's start");
    // the daemon dies 5 s into the run; its processes are stopped 1 s later; it restarts 1 h on
    let ended = started + TimeDelta::seconds(6);
    let restart = started + TimeDelta::hours(1);
    let mut r = crash_and_reload(&h, restart);
    assert_eq!(
        r.job(id).history[0].finished,
        restart,
        "all a bare load can know"
    );
    r.log.clear();
    r.handle(Event::Interrupted(vec![Interruption {
        id,
        attempt: 1,
        ended,
        note: "interrupted by a daemon crash; stopped by its supervisor".into(),
    }]))
    .unwrap();
    let job = r.job(id);
    let run = &job.history[0];
    assert_eq!(run.result, RunResult::Crashed);
    assert_eq!(run.finished, ended);
    assert_eq!(run.finished - run.started, TimeDelta::seconds(6));
    assert_eq!(
        run.note.as_deref(),
        Some("interrupted by a daemon crash; stopped by its supervisor")
    );
    assert_eq!(job.last_finished, Some(ended));
    assert_eq!(job.attempt, 1, "still charged");
    assert!(
        r.log.iter().any(|(_, a)| matches!(a, Action::Persist(cs)
            if cs.runs.iter().any(|r| r.id == id && r.record.finished == ended))),
        "the amended record is persisted"
    );
}

#[test]
fn another_attempt_or_an_end_out_of_range_is_not_taken_as_is() {
    let mut h = Harness::new();
    let id = h.enqueue(JobRequest::once(KIND));
    let restart = h.now + TimeDelta::minutes(10);
    let mut r = crash_and_reload(&h, restart);
    let before = r.job(id).history[0].clone();
    // a stale file of attempt 7: ignored
    r.handle(Event::Interrupted(vec![Interruption {
        id,
        attempt: 7,
        ended: before.started,
        note: "stale".into(),
    }]))
    .unwrap();
    assert_eq!(r.job(id).history[0], before);
    // an end before the start or after the load is clamped into the run
    r.handle(Event::Interrupted(vec![Interruption {
        id,
        attempt: 1,
        ended: before.started - TimeDelta::hours(1),
        note: "early".into(),
    }]))
    .unwrap();
    assert_eq!(r.job(id).history[0].finished, before.started);
}
