//! Clocks: the system clock's timerfd wait fires at its deadline and notices the wall clock being
//! set; a runtime whose timer fires long after its deadline (the machine slept) applies the
//! catch-up policies.

use std::time::Duration;

use backwork_scheduler::{
    CatchUp, Clock, JobRequest, ManualClock, SystemClock, TestDriver, Wake, WorkResult, worker_fn,
};
use chrono::{TimeDelta, Utc};

#[tokio::test]
async fn the_system_clock_wakes_at_its_deadline() {
    let deadline = Utc::now() + TimeDelta::milliseconds(20);
    let wake = SystemClock.sleep_until(deadline).await;
    assert_eq!(wake, Wake::Deadline);
    assert!(Utc::now() >= deadline);
    // a deadline in the past fires at once
    let wake = SystemClock
        .sleep_until(Utc::now() - TimeDelta::hours(1))
        .await;
    assert_eq!(wake, Wake::Deadline);
}

#[tokio::test]
async fn a_manual_clock_set_backwards_reports_a_change() {
    let start = Utc::now();
    let clock = ManualClock::new(start);
    let waiting = tokio::spawn(clock.sleep_until(start + TimeDelta::hours(1)));
    tokio::task::yield_now().await;
    clock.set(start - TimeDelta::hours(2));
    assert_eq!(waiting.await.unwrap(), Wake::ClockChanged);
    let waiting = tokio::spawn(clock.sleep_until(start));
    tokio::task::yield_now().await;
    clock.set(start + TimeDelta::seconds(1));
    assert_eq!(waiting.await.unwrap(), Wake::Deadline);
}

#[tokio::test]
async fn a_timer_firing_long_after_its_deadline_applies_catch_up() {
    let driver = TestDriver::builder()
        .worker("w", worker_fn(|_| async { WorkResult::success() }))
        .start()
        .await
        .unwrap();
    let start = driver.now();
    let skip = driver
        .enqueue(
            JobRequest::periodic("w", Duration::from_secs(3600))
                .flex(Duration::from_secs(300))
                .catch_up(CatchUp::Skip),
        )
        .await
        .unwrap();
    let one = driver
        .enqueue(
            JobRequest::periodic("w", Duration::from_secs(3600)).flex(Duration::from_secs(300)),
        )
        .await
        .unwrap();
    driver.run_until_idle().await.unwrap();
    // the machine sleeps through five periods: the clock jumps, the timer fires late
    driver
        .clock()
        .set(start + TimeDelta::hours(5) + TimeDelta::minutes(10));
    driver.run_until_idle().await.unwrap();
    assert_eq!(
        driver.job(one).await.unwrap().unwrap().runs_total,
        1,
        "catch-up one: one run"
    );
    let s = driver.job(skip).await.unwrap().unwrap();
    assert_eq!(
        s.runs_total, 0,
        "catch-up skip: no run for the missed periods"
    );
    assert_eq!(
        s.not_before,
        start + TimeDelta::hours(6) - TimeDelta::minutes(5)
    );
    driver.shutdown().await.unwrap();
}
