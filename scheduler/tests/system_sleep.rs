//! System suspend announced in advance (logind's `PrepareForSleep(true)` before it,
//! `PrepareForSleep(false)` after the resume, as org.freedesktop.login1(5) documents): nothing
//! starts between the two — a start would only be frozen mid-run by the suspend — and at the
//! resume missed slots follow their catch-up policy at once, instead of when a late timer happens
//! to fire. Guards against the kind of bug where a scheduler notices a suspend only from a timer
//! that fires late (or, on `CLOCK_MONOTONIC`, never), and against the burst of catch-up runs
//! that follows.

mod common;

use backwork_scheduler::{
    CatchUp, Event, Force, JobRequest, JobState, Selector, TestDriver, WaitReason, WorkResult,
    worker_fn,
};
use chrono::TimeDelta;
use common::*;

#[test]
fn nothing_starts_between_prepare_for_sleep_and_the_resume() {
    let mut h = Harness::new().auto_succeed();
    h.handle(Event::PrepareForSleep).unwrap();
    let asleep_at = h.now;
    let id = h.enqueue(JobRequest::once(KIND));
    assert!(
        h.starts(id).is_empty(),
        "a due job must not start while the machine goes to sleep"
    );
    assert_eq!(
        h.core.why(h.now, id).unwrap(),
        [WaitReason::Sleeping { since: asleep_at }]
    );
    // no wake-up is asked for the due job: the resume is what starts it, not a timer
    assert_eq!(h.core.poll_timeout(), None);
    // "run now" does not pass either: the machine is about to stop
    h.handle(Event::Force {
        selector: Selector::Id(id),
        force: Force {
            time: true,
            constraints: true,
        },
    })
    .unwrap();
    assert!(h.starts(id).is_empty());

    h.jump_to(h.now + TimeDelta::minutes(30));
    h.handle(Event::Resumed).unwrap();
    assert_eq!(h.starts(id), [h.now], "it starts at the resume itself");
    assert_eq!(h.job(id).state, JobState::Succeeded);
}

#[test]
fn the_resume_applies_catch_up_at_once() {
    let mut h = Harness::new().auto_succeed();
    let skip = h.enqueue(
        JobRequest::periodic(KIND, hours(1))
            .flex(mins(5))
            .catch_up(CatchUp::Skip),
    );
    let one = h.enqueue(JobRequest::periodic(KIND, hours(1)).flex(mins(5)));
    h.handle(Event::PrepareForSleep).unwrap();
    // asleep from 00:00 to 05:10: five windows (00:55–01:00 … 04:55–05:00) pass unseen
    h.jump_to(t("2026-01-01T05:10:00Z"));
    h.handle(Event::Resumed).unwrap();
    // catch_up = one: a single run at the resume, not five
    assert_eq!(h.starts(one), [t("2026-01-01T05:10:00Z")]);
    // catch_up = skip: nothing now; it waits for the window of the period ending 06:00
    assert!(h.starts(skip).is_empty());
    assert_eq!(h.job(skip).not_before, t("2026-01-01T05:55:00Z"));
}

/// A run that was in progress is frozen with the machine: the suspend does not count against its
/// time limit, as systemd's `RuntimeMaxSec=` does not count it (systemd arms that timer on
/// `CLOCK_MONOTONIC`, which "does not count time that the system is suspended", clock_gettime(2)).
#[test]
fn a_run_in_progress_keeps_its_time_limit_across_a_suspend() {
    let mut h = Harness::new();
    let id = h.enqueue(JobRequest::once(KIND).timeout(Some(mins(10))));
    assert_eq!(h.starts(id).len(), 1);
    h.advance(mins(2));
    h.handle(Event::PrepareForSleep).unwrap();
    assert_eq!(
        h.core.poll_timeout(),
        None,
        "no limit runs out while asleep"
    );
    h.jump_to(h.now + TimeDelta::hours(1));
    // the wall-clock timer fires as the machine thaws, before logind says it resumed; the
    // driver measured the hour asleep first (CLOCK_BOOTTIME − CLOCK_MONOTONIC)
    h.handle(Event::Suspended(hours(1))).unwrap();
    h.handle(Event::ClockJumped).unwrap();
    h.handle(Event::Timeout).unwrap();
    assert!(
        h.stops(id).is_empty(),
        "stopped before the resume was announced"
    );
    h.handle(Event::Resumed).unwrap();
    assert!(
        h.stops(id).is_empty(),
        "an hour asleep is not an hour of run time"
    );
    // 8 of its 10 minutes are left: it is stopped 8 minutes after the resume, not before
    let resumed = h.now;
    h.advance(mins(7) + secs(59));
    assert!(h.stops(id).is_empty());
    h.advance(secs(1));
    assert_eq!(h.stops(id), ["time limit exceeded"]);
    assert_eq!(h.now, resumed + TimeDelta::minutes(8));
}

#[test]
fn a_resume_without_a_sleep_before_it_is_only_a_clock_jump() {
    let mut h = Harness::new().auto_succeed();
    let id = h.enqueue(JobRequest::periodic(KIND, hours(1)).flex(mins(5)));
    h.jump_to(t("2026-01-01T03:10:00Z"));
    h.handle(Event::Resumed).unwrap();
    assert_eq!(h.starts(id), [h.now]);
    // and it does not hold anything afterwards
    assert!(
        h.core
            .why(h.now, id)
            .unwrap()
            .iter()
            .all(|r| !matches!(r, WaitReason::Sleeping { .. }))
    );
}

/// The runtime follows the probe's word on sleep (`Probe::sleeping`) by itself: an app that
/// gives it a probe which knows about suspends gets this behaviour with no code of its own.
#[tokio::test]
async fn the_runtime_follows_the_probe_across_a_suspend() {
    let driver = TestDriver::builder()
        .worker(KIND, worker_fn(|_ctx| async { WorkResult::success() }))
        .start()
        .await
        .unwrap();
    let periodic = driver
        .enqueue(JobRequest::periodic(KIND, hours(1)).flex(mins(5)))
        .await
        .unwrap();
    driver.run_until_idle().await.unwrap();

    driver.probe().set_sleeping(true);
    driver.run_until_idle().await.unwrap();
    let once = driver.enqueue(JobRequest::once(KIND)).await.unwrap();
    driver.run_until_idle().await.unwrap();
    let job = driver.job(once).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Enqueued, "nothing starts while asleep");
    assert!(matches!(
        driver.why(once).await.unwrap()[..],
        [WaitReason::Sleeping { .. }]
    ));

    // five hours pass while the machine sleeps; the clock moves without stopping on the way
    let asleep = driver.now();
    let resume = asleep + TimeDelta::hours(5);
    driver.clock().set(resume);
    driver.run_until_idle().await.unwrap();
    assert_eq!(
        driver.job(once).await.unwrap().unwrap().state,
        JobState::Enqueued,
        "a timer that fires while asleep starts nothing"
    );
    assert_eq!(driver.job(periodic).await.unwrap().unwrap().runs_total, 0);

    driver.probe().set_sleeping(false);
    driver.run_until_idle().await.unwrap();
    assert_eq!(
        driver.job(once).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
    let job = driver.job(periodic).await.unwrap().unwrap();
    assert_eq!(
        job.runs_total, 1,
        "catch-up = one: a single run for the five missed windows"
    );
    assert_eq!(job.last_started, Some(resume), "at the resume itself");
    driver.shutdown().await.unwrap();
}

/// Lets the runtime's tasks (the actor, the worker) run what they can now, then asks the
/// actor a question, which it answers after the inputs that came before it.
async fn settle(driver: &TestDriver, id: backwork_scheduler::JobId) -> backwork_scheduler::Job {
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
    driver.job(id).await.unwrap().unwrap()
}

/// A suspend whose announcements come late — logind's `PrepareForSleep(true)` and `(false)`
/// both handled after the thaw, as happens when the daemon holds no delay inhibitor lock
/// (systemd.io/INHIBITOR_LOCKS) — or not at all: the time asleep, measured by the clock
/// (`Clock::suspended`), still does not count against the time limit of a run it froze.
#[tokio::test]
async fn a_suspend_announced_late_or_never_does_not_count_as_run_time() {
    let driver = TestDriver::builder()
        .worker(
            KIND,
            worker_fn(|cx| async move {
                cx.cancellation().cancelled().await;
                WorkResult::retry()
            }),
        )
        .start()
        .await
        .unwrap();
    let id = driver
        .enqueue(JobRequest::once(KIND).timeout(Some(secs(30))))
        .await
        .unwrap();
    assert_eq!(settle(&driver, id).await.state, JobState::Running);
    driver.clock().advance(secs(10));
    assert_eq!(settle(&driver, id).await.state, JobState::Running);

    // an hour asleep, with no word from logind before it
    driver.clock().suspend(hours(1));
    let job = settle(&driver, id).await;
    assert_eq!(
        (job.state, job.runs_total),
        (JobState::Running, 1),
        "the hour asleep was counted as run time: {job:?}"
    );
    // logind's two signals, both late
    driver.probe().set_sleeping(true);
    settle(&driver, id).await;
    driver.probe().set_sleeping(false);
    assert_eq!(settle(&driver, id).await.state, JobState::Running);

    // 20 of its 30 seconds were left
    driver.clock().advance(secs(19));
    assert_eq!(settle(&driver, id).await.state, JobState::Running);
    driver.clock().advance(secs(2));
    let job = settle(&driver, id).await;
    assert_eq!(
        job.history.last().and_then(|r| r.stop_reason.clone()),
        Some(backwork_scheduler::StopReason::Timeout),
        "{job:?}"
    );
    driver.shutdown().await.unwrap();
}
