//! Progress a worker reports (`WorkContext::set_progress`), as WorkManager's `setProgress`
//! defines it: observers (a subscriber, a watch, `RuntimeHandle::progress`) see the latest
//! report while the run lasts; it is forgotten when the run ends, never carried into the next
//! attempt, and a report from a run that has already ended — or one over the payload cap — is
//! ignored. Guards against progress that lingers after its run, leaks between attempts, or is
//! visible only to subscribers that happened to be listening.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backwork_scheduler::{
    Config, JobRequest, JobState, Runtime, TestDriver, Time, TokioClock, WorkContext, WorkResult,
    worker_fn,
};
use serde_json::json;
use tokio::sync::Notify;

fn t0() -> Time {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

/// A worker that reports `progress` and then waits until the test releases it.
fn gated(gate: Arc<Notify>, progress: serde_json::Value) -> impl backwork_scheduler::Worker {
    worker_fn(move |ctx: WorkContext| {
        let gate = Arc::clone(&gate);
        let progress = progress.clone();
        async move {
            ctx.set_progress(progress);
            gate.notified().await;
            WorkResult::success()
        }
    })
}

#[tokio::test(start_paused = true)]
async fn the_latest_progress_is_seen_while_the_run_lasts_and_forgotten_after() {
    let gate = Arc::new(Notify::new());
    let rt = Runtime::builder()
        .clock(TokioClock::starting_at(t0()))
        .worker(
            "upload",
            gated(
                Arc::clone(&gate),
                json!({"percent": 40, "message": "a.jpg"}),
            ),
        )
        .start()
        .await
        .unwrap();
    let mut updates = rt.subscribe();
    let id = rt.enqueue(JobRequest::once("upload")).await.unwrap();
    let mut watch = rt.watch(id).await.unwrap().unwrap();
    // the watch holds the progress once it is reported, whenever it was made
    let seen = watch
        .wait_for(|u| u.progress.is_some())
        .await
        .unwrap()
        .clone();
    assert_eq!(seen.state, JobState::Running);
    assert_eq!(
        seen.progress,
        Some(json!({"percent": 40, "message": "a.jpg"}))
    );
    let p = rt
        .progress_of(id)
        .await
        .unwrap()
        .expect("running and reported");
    assert_eq!(p.value, json!({"percent": 40, "message": "a.jpg"}));
    assert_eq!(p.attempt, 1);
    // a watch made after the report starts from it too
    let late = rt.watch(id).await.unwrap().unwrap();
    assert_eq!(late.borrow().progress, seen.progress);
    // the subscriber saw the report as an update of its own
    let mut reports = Vec::new();
    while let Ok(u) = updates.try_recv() {
        if let Some(p) = u.progress {
            reports.push((u.state, p));
        }
    }
    assert_eq!(
        reports,
        [(
            JobState::Running,
            json!({"percent": 40, "message": "a.jpg"})
        )]
    );

    gate.notify_one();
    rt.wait_idle().await.unwrap();
    let last = watch.borrow_and_update().clone();
    assert_eq!(last.state, JobState::Succeeded);
    assert_eq!(last.progress, None, "a finished job has no progress");
    assert_eq!(rt.progress_of(id).await.unwrap(), None);
    assert!(rt.progress().await.unwrap().is_empty());
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_report_after_the_run_ended_or_over_the_cap_is_ignored() {
    let kept: Arc<Mutex<Option<WorkContext>>> = Arc::default();
    let gate = Arc::new(Notify::new());
    let (k, g) = (Arc::clone(&kept), Arc::clone(&gate));
    let rt = Runtime::builder()
        .clock(TokioClock::starting_at(t0()))
        .config(Config {
            payload_cap: 64,
            ..Config::default()
        })
        .worker(
            "w",
            worker_fn(move |ctx: WorkContext| {
                let (k, g) = (Arc::clone(&k), Arc::clone(&g));
                async move {
                    *k.lock().unwrap() = Some(ctx.clone());
                    ctx.set_progress(json!({"percent": 10}));
                    ctx.set_progress("x".repeat(100)); // over the 64-byte cap: dropped
                    g.notified().await;
                    WorkResult::success()
                }
            }),
        )
        .start()
        .await
        .unwrap();
    let id = rt.enqueue(JobRequest::once("w")).await.unwrap();
    let mut watch = rt.watch(id).await.unwrap().unwrap();
    watch.wait_for(|u| u.progress.is_some()).await.unwrap();
    // the oversized report was sent after the first one and handled in order
    let p = rt.progress_of(id).await.unwrap().unwrap();
    assert_eq!(p.value, json!({"percent": 10}));
    gate.notify_one();
    rt.wait_idle().await.unwrap();
    // the run is over: its context still exists, but what it says is not taken
    let ctx = kept.lock().unwrap().take().unwrap();
    ctx.set_progress(json!({"percent": 99}));
    rt.wait_idle().await.unwrap();
    assert_eq!(rt.progress_of(id).await.unwrap(), None);
    assert_eq!(watch.borrow().progress, None);
    rt.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_retry_does_not_inherit_the_progress_of_the_attempt_before() {
    let gate = Arc::new(Notify::new());
    let g = Arc::clone(&gate);
    let driver = TestDriver::builder()
        .worker(
            "sync",
            worker_fn(move |ctx: WorkContext| {
                let g = Arc::clone(&g);
                async move {
                    if ctx.attempt() == 1 {
                        ctx.set_progress(json!({"percent": 70}));
                        return WorkResult::retry();
                    }
                    g.notified().await;
                    WorkResult::success()
                }
            }),
        )
        .start()
        .await
        .unwrap();
    let id = driver.enqueue(JobRequest::once("sync")).await.unwrap();
    driver.run_until_idle().await.unwrap();
    assert_eq!(driver.job(id).await.unwrap().unwrap().attempt, 1);
    assert_eq!(driver.progress_of(id).await.unwrap(), None);
    // the backoff (30 s) passes on the virtual clock; attempt 2 runs and has reported nothing
    driver.clock().advance(Duration::from_secs(30));
    let mut watch = driver.watch(id).await.unwrap().unwrap();
    let running = watch
        .wait_for(|u| u.state == JobState::Running)
        .await
        .unwrap()
        .clone();
    assert_eq!(running.attempt, 2);
    assert_eq!(running.progress, None);
    assert_eq!(driver.progress_of(id).await.unwrap(), None);
    gate.notify_one();
    driver.run_until_idle().await.unwrap();
    driver.shutdown().await.unwrap();
}
